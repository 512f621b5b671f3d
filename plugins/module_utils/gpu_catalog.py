"""Static GPU / Jetson / NPU knowledge used by hardware discovery.

Pure data and pure functions only: no I/O, no Ansible import, importable without a GPU.
Sources: CUDA compute-capability tables, NVIDIA GPU Feature Discovery (k8s-device-plugin
``internal/lm/resource.go``: ``getArchFamily`` and ``sanitise``), Jetson Linux release notes
(L4T -> JetPack), the Linux ``amdxdna`` and ``intel_vpu`` (ivpu) PCI id tables, and Ollama's
build presets (which CUDA architectures / AMD gfx targets each runner library contains).
"""

from __future__ import annotations

import re

# --------------------------------------------------------------------------- NVIDIA compute capability


def parse_cc(value: str | None) -> tuple[int, int] | None:
    """'8.6' -> (8, 6); '12.0' -> (12, 0); '[N/A]', '' or None -> None."""
    if not value:
        return None
    match = re.match(r"^\s*(\d+)\.(\d+)\s*$", str(value))
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def cc_string(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def sm_for_cc(cc: tuple[int, int] | None) -> str | None:
    """(12, 0) -> 'sm_120', (8, 7) -> 'sm_87', (11, 0) -> 'sm_110'."""
    if cc is None:
        return None
    return f"sm_{cc[0]}{cc[1]}"


def family_for_cc(cc: tuple[int, int] | None) -> str | None:
    """Architecture family as GPU Feature Discovery names it (``nvidia.com/gpu.family``).

    Matches GFD's getArchFamily, plus 11.x (Jetson Thor after the CUDA 13 renumbering from 10.1)
    which is Blackwell too. Unknown majors give 'undefined' exactly as GFD does.
    """
    if cc is None:
        return None
    major, minor = cc
    table = {1: "tesla", 2: "fermi", 3: "kepler", 5: "maxwell", 6: "pascal", 9: "hopper", 13: "rubin"}
    if major in table:
        return table[major]
    if major == 7:
        return "volta" if minor < 5 else "turing"
    if major == 8:
        return "ampere" if minor < 9 else "ada-lovelace"
    if major in (10, 11, 12):
        return "blackwell"
    return "undefined"


def torch_cuda_arch_list(ccs: list[tuple[int, int]]) -> str | None:
    """Sorted, de-duplicated TORCH_CUDA_ARCH_LIST for the GPUs present: '8.6;12.0'."""
    unique = sorted(set(ccs))
    if not unique:
        return None
    return ";".join(cc_string(cc) for cc in unique)


# Ollama runner libraries and what they were built for (ollama llama/server/CMakePresets.json).
OLLAMA_CUDA_V12_MIN_CC = (5, 0)
OLLAMA_CUDA_V13_MIN_CC = (7, 5)  # CUDA 13 dropped Maxwell, Pascal and Volta (cc < 7.5)
CUDA13_MIN_CC = (7, 5)
# AMD LLVM targets in Ollama's ROCm runner.
OLLAMA_ROCM_GFX = frozenset(
    {
        "gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030", "gfx1100", "gfx1101", "gfx1102",
        "gfx1150", "gfx1151", "gfx1200", "gfx1201",
    }
)  # fmt: skip
# Integrated AMD GPUs Ollama uses through ROCm by default (discover/runner.go): the AI APUs.
OLLAMA_DEFAULT_INTEGRATED_GFX = frozenset({"gfx1151"})


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'580.82.09' -> (580, 82, 9); '12.9' -> (12, 9); 'N/A' -> None."""
    if not text:
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)*)", str(text))
    if not match:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


# --------------------------------------------------------------------------- GFD labels


def gfd_sanitise(text: str) -> str:
    """Sanitise a product name exactly as GPU Feature Discovery does.

    Drop every character outside ``[A-Za-z0-9-_. ]``, collapse runs of blanks and join the
    words with '-': 'NVIDIA GeForce RTX 5090' -> 'NVIDIA-GeForce-RTX-5090',
    'NVIDIA-TITAN-X-(Pascal)' -> 'NVIDIA-TITAN-X-Pascal'.
    """
    kept = re.sub(r"[^A-Za-z0-9\-_. ]", "", text)
    return "-".join(kept.split())


# --------------------------------------------------------------------------- Jetson

# L4T (Jetson Linux) release -> JetPack release, from NVIDIA's Jetson Linux / JetPack archives.
L4T_TO_JETPACK: dict[str, str] = {
    # JetPack 7 (Thor, SBSA, CUDA 13)
    "39.2.0": "7.2",
    "38.4.0": "7.1",
    "38.2.2": "7.0",
    "38.2.1": "7.0",
    "38.2.0": "7.0",
    # JetPack 6 (Orin, CUDA 12.2 .. 12.6)
    "36.5.0": "6.2.2",
    "36.4.7": "6.2.1",
    "36.4.4": "6.2.1",
    "36.4.3": "6.2",
    "36.4.2": "6.1",
    "36.4.0": "6.1",
    "36.3.0": "6.0",
    "36.2.0": "6.0 DP",
    "36.0.0": "6.0 EA",
    # JetPack 5 (Xavier / Orin, CUDA 11.4)
    "35.6.4": "5.1.6",
    "35.6.3": "5.1.5",
    "35.6.2": "5.1.5",
    "35.6.1": "5.1.5",
    "35.6.0": "5.1.4",
    "35.5.0": "5.1.3",
    "35.4.1": "5.1.2",
    "35.3.1": "5.1.1",
    "35.2.1": "5.1",
    "35.1.0": "5.0.2",
    "34.1.1": "5.0.1 DP",
    "34.1.0": "5.0 DP",
    # JetPack 4 (Nano / TX / Xavier, CUDA 10.2)
    "32.7.6": "4.6.6",
    "32.7.5": "4.6.5",
    "32.7.4": "4.6.4",
    "32.7.3": "4.6.3",
    "32.7.2": "4.6.2",
    "32.7.1": "4.6.1",
    "32.6.1": "4.6",
    "32.5.2": "4.5.1",
    "32.5.1": "4.5.1",
    "32.5.0": "4.5",
    "32.4.4": "4.4.1",
    "32.4.3": "4.4",
    "32.3.1": "4.3",
}


def normalise_l4t(l4t: str) -> str:
    """'36.4' -> '36.4.0'; '36.4.4' stays."""
    parts = l4t.split(".")
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3])


def jetpack_for_l4t(l4t: str | None) -> str | None:
    """JetPack release for an L4T version, None when the table does not know it."""
    if not l4t:
        return None
    return L4T_TO_JETPACK.get(normalise_l4t(l4t))


def jetpack_major_for_l4t(l4t: str | None) -> int | None:
    """JetPack major from the L4T major even for releases newer than the table."""
    version = parse_version(l4t)
    if not version:
        return None
    major = version[0]
    if major >= 38:
        return 7
    if major == 36:
        return 6
    if major in (34, 35):
        return 5
    if major in (31, 32):
        return 4
    return None


# Tegra SoC -> (GPU name as CUDA/nvidia-smi report it, compute capability, product line).
TEGRA_SOCS: dict[str, tuple[str, tuple[int, int], str]] = {
    "tegra264": ("NVIDIA Thor", (11, 0), "Thor"),
    "tegra234": ("Orin (nvgpu)", (8, 7), "Orin"),
    "tegra194": ("Xavier", (7, 2), "Xavier"),
    "tegra186": ("NVIDIA Tegra X2", (6, 2), "TX2"),
    "tegra210": ("NVIDIA Tegra X1", (5, 3), "Nano/TX1"),
}


def soc_from_compatible(compatible: list[str]) -> str | None:
    """'nvidia,tegra234' among the device-tree compatible strings -> 'tegra234'."""
    for entry in compatible:
        match = re.match(r"^nvidia,(tegra\d+)$", entry.strip())
        if match:
            return match.group(1)
    return None


def soc_from_model(model: str | None) -> str | None:
    """Best effort when the device tree has no compatible: 'NVIDIA Jetson AGX Orin' -> tegra234."""
    if not model:
        return None
    lowered = model.lower()
    for needle, soc in (
        ("thor", "tegra264"),
        ("orin", "tegra234"),
        ("xavier", "tegra194"),
        ("tx2", "tegra186"),
        ("nano", "tegra210"),
        ("tx1", "tegra210"),
    ):
        if needle in lowered:
            return soc
    return None


# --------------------------------------------------------------------------- NPUs

# AMD XDNA: (PCI device id, revision) -> (generation, platform); revision None = any.
AMD_NPUS: dict[tuple[str, str | None], tuple[str, str]] = {
    ("0x1502", None): ("XDNA1", "Phoenix/Hawk Point"),
    ("0x17f0", "0x10"): ("XDNA2", "Strix Point"),
    ("0x17f0", "0x11"): ("XDNA2", "Strix Halo"),
    ("0x17f0", "0x20"): ("XDNA2", "Krackan Point"),
    ("0x17f0", None): ("XDNA2", "Strix/Krackan"),
}
# Intel NPU (intel_vpu / ivpu): PCI device id -> (generation, platform).
INTEL_NPUS: dict[str, tuple[str, str]] = {
    "0x7d1d": ("NPU3720", "Meteor Lake"),
    "0xad1d": ("NPU3720", "Arrow Lake"),
    "0x643e": ("NPU4000", "Lunar Lake"),
    "0xb03e": ("NPU5000", "Panther Lake"),
    "0xfd3e": ("NPU5000", "Wildcat Lake"),
}


def npu_generation(vendor: str, device_id: str, revision: str | None) -> tuple[str | None, str | None]:
    """(generation, platform) for an NPU's PCI ids, (None, None) when unknown."""
    device_id = device_id.lower()
    if vendor == "amd":
        revision = revision.lower() if revision else None
        hit = AMD_NPUS.get((device_id, revision)) or AMD_NPUS.get((device_id, None))
        return hit if hit else (None, None)
    if vendor == "intel":
        return INTEL_NPUS.get(device_id, (None, None))
    return None, None


# --------------------------------------------------------------------------- AMD


def gfx_from_target_version(value: int) -> str | None:
    """KFD gfx_target_version (decimal MMmmss) -> LLVM target: 110501 -> 'gfx1151', 90010 -> 'gfx90a'."""
    if value <= 0:
        return None
    major, rest = divmod(value, 10000)
    minor, stepping = divmod(rest, 100)
    return f"gfx{major}{minor:x}{stepping:x}"


# PCI device id -> (marketing name, integrated?) for AMD GPUs the fleet is likely to meet.
AMD_GPUS: dict[str, tuple[str, bool]] = {
    "0x1586": ("AMD Radeon 8060S Graphics", True),  # Strix Halo, Ryzen AI Max+ 395
    "0x150e": ("AMD Radeon 890M Graphics", True),  # Strix Point, Ryzen AI 9 HX 370
    "0x1114": ("AMD Radeon 860M Graphics", True),  # Krackan Point
    "0x15bf": ("AMD Radeon 780M Graphics", True),  # Phoenix
    "0x15c8": ("AMD Radeon 740M Graphics", True),  # Phoenix 2
    "0x164e": ("AMD Radeon Graphics", True),  # Raphael iGPU
    "0x1681": ("AMD Radeon 680M", True),  # Rembrandt
    "0x744c": ("AMD Radeon RX 7900 XTX", False),
    "0x7448": ("AMD Radeon PRO W7900", False),
    "0x747e": ("AMD Radeon RX 7800 XT", False),
    "0x7480": ("AMD Radeon RX 7600", False),
    "0x73bf": ("AMD Radeon RX 6900 XT", False),
    "0x7550": ("AMD Radeon RX 9070 XT", False),
    "0x74a1": ("AMD Instinct MI300X", False),
}
