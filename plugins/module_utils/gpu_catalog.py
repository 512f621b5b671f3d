"""Static GPU / Jetson / NPU / Ollama knowledge used by hardware discovery.

Pure data and pure functions only: no I/O, no Ansible import, importable without a GPU. Every table
names its source next to it:

- GPU Feature Discovery, NVIDIA/k8s-device-plugin internal/lm/resource.go (``getArchFamily``,
  ``sanitise``), commit 1b826acc (2026-08-19);
- jetson-stats, rbonghi/jetson_stats jtop/core/jetson_variables.py (``NVIDIA_JETPACK``, ``CUDA_TABLE``,
  ``MODULE_NAME_TABLE``), commit 09d635b0 (2026-07-21);
- Ollama, ollama/ollama at the release tags (discover/*.go, llama/server/CMakePresets.json,
  docs/gpu.mdx): v0.30.0 2c71d8d7, v0.30.1 e828061b, v0.30.10 e1f7f9cb (2026-06-17, the release
  roles/ollama installs), v0.30.11 d26a5855, v0.31.2 a6293eb5, v0.32.2 a51df815;
- libdrm data/amdgpu.ids (freedesktop mesa/drm, mirrored as X11Libre/drm), commit 7d43d9b6 (2025-07-30);
- the Linux ``amdxdna`` and ``intel_vpu`` (ivpu) PCI id tables for the NPUs.
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


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'580.82.09' -> (580, 82, 9); '12.9' -> (12, 9); 'N/A' -> None."""
    if not text:
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)*)", str(text))
    if not match:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def cc_string(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def sm_for_cc(cc: tuple[int, int] | None) -> str | None:
    """(12, 0) -> 'sm_120', (8, 7) -> 'sm_87', (11, 0) -> 'sm_110'."""
    if cc is None:
        return None
    return f"sm_{cc[0]}{cc[1]}"


def gfd_family(cc: tuple[int, int] | None) -> str | None:
    """``nvidia.com/gpu.family`` exactly as GPU Feature Discovery computes it.

    NVIDIA/k8s-device-plugin internal/lm/resource.go ``getArchFamily`` (commit 1b826acc, 2026-08-19):
    majors 10 and 12 are blackwell, 13 rubin; every major it does not list, 11.x (Jetson Thor after
    the CUDA 13 renumbering from 10.1) included, is 'undefined'.
    """
    if cc is None:
        return None
    major, minor = cc
    table = {1: "tesla", 2: "fermi", 3: "kepler", 5: "maxwell", 6: "pascal", 9: "hopper", 10: "blackwell",
             12: "blackwell", 13: "rubin"}  # fmt: skip
    if major in table:
        return table[major]
    if major == 7:
        return "volta" if minor < 5 else "turing"
    if major == 8:
        return "ampere" if minor < 9 else "ada-lovelace"
    return "undefined"


def family_for_cc(cc: tuple[int, int] | None) -> str | None:
    """Architecture family for ``gpus[].family``: GFD's names, plus 11.x = blackwell (Jetson Thor,
    sm_110, is a Blackwell GPU; GFD does not list major 11 and says 'undefined', which the
    ``nvidia.com/gpu.family`` label keeps, see gfd_family)."""
    if cc is not None and cc[0] == 11:
        return "blackwell"
    return gfd_family(cc)


def torch_cuda_arch_list(ccs: list[tuple[int, int]]) -> str | None:
    """Sorted, de-duplicated TORCH_CUDA_ARCH_LIST for the GPUs present: '8.6;12.0'."""
    unique = sorted(set(ccs))
    if not unique:
        return None
    return ";".join(cc_string(cc) for cc in unique)


# --------------------------------------------------------------------------- Ollama's GPU decisions

# What an Ollama release does with each GPU on Linux, as data: the runner libraries it ships, the
# compute capabilities / gfx targets each was compiled for, driver floors, the integrated-GPU rules.
# Source: ollama/ollama at the release tags, files named per key; the release the fleet installs is
# roles/ollama/defaults/main.yml pmoves_ollama_version (0.30.10, tag commit e1f7f9cb, 2026-06-17).
OLLAMA_DEFAULT_RELEASE = "0.30.10"
# Rules of the first release a change shipped in; each entry updates the ones before it.
OLLAMA_RULE_CHANGES: tuple[tuple[str, dict[str, object]], ...] = (
    ("0.30.0", {  # tag commit 2c71d8d7: llama-server only discovery (discover/runner.go, cuda_compat.go)
        # llama/server/CMakePresets.json llama_cuda_v12_linux / _v13_linux / jetpack5 / jetpack6: the
        # exact arch list llama-server prints as "CUDA : ARCHS" and discover/llama_server.go matches.
        "cuda_v12_ccs": ("5.0", "5.2", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "12.0"),
        "cuda_v13_ccs": ("7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1"),
        "jetpack5_ccs": ("7.2", "8.7"),
        "jetpack6_ccs": ("8.7",),
        # docs/gpu.mdx: "driver version 531 and newer" (the CUDA 12 runner); CUDA 13 needs a CUDA 13 driver
        "cuda_v12_min_driver": 531,
        # ...but the cuda_v12 runner is built with compressed fatbins, which need driver 550: older drivers
        # are listed by discovery and fail to load its kernels (ollama#16449; refused from 0.30.11 on)
        "cuda_v12_kernel_min_driver": 550,
        "cuda_v13_min_cuda": "13.0",
        # discover/cuda_compat.go filterOldCUDADriver: compute major < 7 needs driver 570+ (cuda_v12)
        "legacy_cc_major_below": 7,
        "legacy_cc_min_driver": 570,
        # rocm_v7_2_linux AMDGPU_TARGETS (rocblas kernels shipped; discover/amd.go drops the rest)
        "rocm_gfx": ("gfx908", "gfx90a", "gfx942", "gfx950", "gfx1010", "gfx1012", "gfx1030", "gfx1100", "gfx1101",
                     "gfx1102", "gfx1103", "gfx1150", "gfx1151", "gfx1200", "gfx1201"),
        # discover/runner.go: Vulkan discovered unless OLLAMA_VULKAN=0 (envconfig.EnableVulkan(true));
        # the release workflow ships the vulkan runner for linux-amd64 only
        "vulkan_default": True,
        "vulkan_arches": ("x86_64",),
        # discover/runner.go filterIntegratedGPUs: iGPUs are dropped unless OLLAMA_IGPU_ENABLE=1, except
        # CUDA ones (Jetson, GB10) and ROCm gfx targets listed here
        "integrated_rocm_gfx": (),
        # discover/gpu.go cudaJetpack: JetPack runners only for L4T R35 / R36 (or JETSON_JETPACK)
        "jetpack_l4t": {35: "jetpack5", 36: "jetpack6"},
    }),
    ("0.30.1", {"integrated_rocm_gfx": ("gfx1151",)}),  # commit 4c076813: Radeon 8060S iGPU by default
    ("0.30.11", {  # commits f22ec2ec (CUDA: require driver 550 for v12) and 0a408b22 (CC 87 for CUDA v13)
        "cuda_v12_min_driver": 550,
        "cuda_v13_ccs": ("7.5", "8.0", "8.6", "8.7", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1"),
    }),
    ("0.31.2", {  # commit 26acfa42: rocm: remove no longer supported devices
        "rocm_gfx": ("gfx908", "gfx90a", "gfx942", "gfx950", "gfx1030", "gfx1100", "gfx1101", "gfx1102", "gfx1150",
                     "gfx1151", "gfx1200", "gfx1201"),
    }),
    ("0.32.2", {  # commit de1ce459: cuda: add CC 10.0 for linux in CUDA v12
        "cuda_v12_ccs": ("5.0", "5.2", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0"),
    }),
)  # fmt: skip
# Before 0.30.0 discovery worked differently (CGO engines); the nearest rules apply, with Vulkan opt-in
# (OLLAMA_VULKAN=1, commit 6286d9a3 "Enable Vulkan with a temporary opt-in setting", 0.12.11 .. 0.2x).
OLLAMA_PRE_030_CHANGES: dict[str, object] = {"vulkan_default": False, "integrated_rocm_gfx": ()}


def ollama_rules(release: str | None) -> dict[str, object]:
    """The GPU rules of an Ollama release (OLLAMA_DEFAULT_RELEASE when None); 'exact' says whether
    the release lies in the modelled range (0.30.0 and later)."""
    wanted = parse_version(release or OLLAMA_DEFAULT_RELEASE) or parse_version(OLLAMA_DEFAULT_RELEASE) or (0,)
    rules: dict[str, object] = {}
    for first, changes in OLLAMA_RULE_CHANGES:
        if not rules or wanted >= (parse_version(first) or (0,)):
            rules.update(changes)
    exact = wanted >= (0, 30, 0)
    if not exact:
        rules.update(OLLAMA_PRE_030_CHANGES)
    rules["release"] = ".".join(str(p) for p in wanted)
    rules["exact"] = exact
    return rules


# Back-compat names (the defaults of the installed release).
OLLAMA_CUDA_V12_MIN_CC = (5, 0)
OLLAMA_CUDA_V13_MIN_CC = (7, 5)  # CUDA 13 dropped Maxwell, Pascal and Volta (cc < 7.5)
CUDA13_MIN_CC = (7, 5)
OLLAMA_ROCM_GFX = frozenset(ollama_rules(None)["rocm_gfx"])  # type: ignore[arg-type]
OLLAMA_DEFAULT_INTEGRATED_GFX = frozenset(ollama_rules(None)["integrated_rocm_gfx"])  # type: ignore[arg-type]

# Compute capability by product name, for drivers whose nvidia-smi cannot report it (no compute_cap
# before the 510 drivers): Ollama's own table, docs/gpu.mdx at v0.30.10 (commit e1f7f9cb), as
# (compute capability, family column, card). A name matches a card when the card's words appear in it in
# order; the longest match wins, and matches with different capabilities are no answer.
OLLAMA_DOCS_CC_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("12.1", "NVIDIA", ("GB10",)),
    ("12.0", "GeForce RTX 50xx", ("RTX 5060", "RTX 5060 Ti", "RTX 5070", "RTX 5070 Ti", "RTX 5080", "RTX 5090")),
    ("12.0", "NVIDIA Professional", ("RTX PRO 4000 Blackwell", "RTX PRO 4500 Blackwell", "RTX PRO 5000 Blackwell",
                                     "RTX PRO 6000 Blackwell")),
    ("9.0", "NVIDIA", ("H200", "H100")),
    ("8.9", "GeForce RTX 40xx", ("RTX 4090", "RTX 4080 SUPER", "RTX 4080", "RTX 4070 Ti SUPER", "RTX 4070 Ti",
                                 "RTX 4070 SUPER", "RTX 4070", "RTX 4060 Ti", "RTX 4060")),
    ("8.9", "NVIDIA Professional", ("L4", "L40", "RTX 6000")),
    ("8.6", "GeForce RTX 30xx", ("RTX 3090 Ti", "RTX 3090", "RTX 3080 Ti", "RTX 3080", "RTX 3070 Ti", "RTX 3070",
                                 "RTX 3060 Ti", "RTX 3060", "RTX 3050 Ti", "RTX 3050")),
    ("8.6", "NVIDIA Professional", ("A40", "RTX A6000", "RTX A5000", "RTX A4000", "RTX A3000", "RTX A2000", "A10",
                                    "A16", "A2")),
    ("8.0", "NVIDIA", ("A100", "A30")),
    ("7.5", "GeForce GTX/RTX", ("GTX 1650 Ti", "TITAN RTX", "RTX 2080 Ti", "RTX 2080", "RTX 2070", "RTX 2060")),
    ("7.5", "NVIDIA Professional", ("T4", "RTX 5000", "RTX 4000", "RTX 3000", "T2000", "T1200", "T1000", "T600",
                                    "T500")),
    ("7.5", "Quadro", ("RTX 8000", "RTX 6000", "RTX 5000", "RTX 4000")),
    ("7.0", "NVIDIA", ("TITAN V", "V100", "Quadro GV100")),
    ("6.1", "NVIDIA TITAN", ("TITAN Xp", "TITAN X")),
    ("6.1", "GeForce GTX", ("GTX 1080 Ti", "GTX 1080", "GTX 1070 Ti", "GTX 1070", "GTX 1060", "GTX 1050 Ti",
                            "GTX 1050")),
    ("6.1", "Quadro", ("P6000", "P5200", "P4200", "P3200", "P5000", "P4000", "P3000", "P2200", "P2000", "P1000",
                       "P620", "P600", "P500", "P520")),
    ("6.1", "Tesla", ("P40", "P4")),
    ("6.0", "NVIDIA", ("Tesla P100", "Quadro GP100")),
    ("5.2", "GeForce GTX", ("GTX TITAN X", "GTX 980 Ti", "GTX 980", "GTX 970", "GTX 960", "GTX 950")),
    ("5.2", "Quadro", ("M6000 24GB", "M6000", "M5000", "M5500M", "M4000", "M2200", "M2000", "M620")),
    ("5.2", "Tesla", ("M60", "M40")),
    ("5.0", "GeForce GTX", ("GTX 750 Ti", "GTX 750", "NVS 810")),
    ("5.0", "Quadro", ("K2200", "K1200", "K620", "M1200", "M520", "M5000M", "M4000M", "M3000M", "M2000M", "M1000M",
                       "K620M", "M600M", "M500M")),
)  # fmt: skip
# Architecture generations that appear in product names but not in the table's cards: a name carrying
# one the matched card lacks is a newer part ("RTX 5000 Ada Generation" is not the Turing "RTX 5000").
_GENERATION_WORDS = ("ada", "blackwell", "hopper", "ampere")
# `nvidia-smi -q` "Product Architecture" -> compute capability where the architecture has exactly one
# for discrete GPUs (NVIDIA CUDA C++ Programming Guide, compute capabilities table).
CC_BY_ARCHITECTURE: dict[str, str] = {"Volta": "7.0", "Turing": "7.5", "Ada Lovelace": "8.9", "Hopper": "9.0"}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s\-_/,()]+", text.lower()) if w]


def _contains(words: list[str], card: list[str]) -> bool:
    size = len(card)
    return any(words[i : i + size] == card for i in range(len(words) - size + 1))


def cc_from_name(name: str | None) -> str | None:
    """Compute capability for a product name from Ollama's docs table; None when unknown or ambiguous.

    'Tesla T4' -> '7.5', 'NVIDIA GeForce RTX 2080 SUPER' -> '7.5', 'NVIDIA RTX 5000 Ada Generation' -> None.
    """
    if not name:
        return None
    words = _words(name)
    best_len, found = 0, set()
    for cc, _family, cards in OLLAMA_DOCS_CC_TABLE:
        for card in cards:
            card_words = _words(card)
            if not _contains(words, card_words):
                continue
            if any(g in words and g not in card_words for g in _GENERATION_WORDS):
                continue
            if len(card_words) > best_len:
                best_len, found = len(card_words), {cc}
            elif len(card_words) == best_len:
                found.add(cc)
    return found.pop() if len(found) == 1 else None


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

def _alt(*releases: str) -> str:
    """jetson-stats writes an L4T shared by several JetPacks as alternatives joined by ' | '."""
    return " | ".join(releases)


# L4T (Jetson Linux) release -> JetPack release, every row of jetson-stats' table, values verbatim:
# rbonghi/jetson_stats jtop/core/jetson_variables.py NVIDIA_JETPACK, commit 09d635b0 (2026-07-21).
# jtop reports exactly these strings ("7.2 GA", "6.1 (rev1)", "5.1.1 PRE"); keys with two parts
# ("32.5") are the same release as "32.5.0" and are looked up through normalise_l4t.
JETSON_STATS_L4T_TO_JETPACK: dict[str, str] = {
    # JetPack 7 (Thor, SBSA, CUDA 13)
    "39.2.0": "7.2 GA", "39.0.0": "7.2 EA", "38.4.0": "7.1", "38.2.2": "7.0", "38.2.1": "7.0", "38.2.0": "7.0",
    # JetPack 6 (Orin)
    "36.5.0": "6.2.2", "36.4.7": "6.2.1", "36.4.4": "6.2.1", "36.4.3": "6.2", "36.4.2": "6.1 (rev1)",
    "36.4.0": "6.1", "36.3.0": "6.0", "36.2.0": "6.0 DP", "36.0.0": "6.0 EA",
    # JetPack 5 (Xavier, Orin)
    "35.6.4": "5.1.6", "35.6.3": "5.1.5", "35.6.2": "5.1.5", "35.6.1": "5.1.5", "35.6.0": "5.1.4",
    "35.5.0": "5.1.3", "35.4.1": "5.1.2", "35.3.1": "5.1.1", "35.3.0": "5.1.1 PRE", "35.2.1": "5.1",
    "35.1.0": "5.0.2 GA", "34.1.1": "5.0.1 DP", "34.1.0": "5.0 DP", "34.0.1": "5.0 PRE-DP",
    # JetPack 4 (Nano, TX1, TX2, Xavier)
    "32.7.6": "4.6.6", "32.7.5": "4.6.5", "32.7.4": "4.6.4", "32.7.3": "4.6.3", "32.7.2": "4.6.2",
    "32.7.1": "4.6.1", "32.6.1": "4.6", "32.5.2": "4.5.1", "32.5.1": "4.5.1", "32.5.0": "4.5", "32.5": "4.5",
    "32.4.4": "4.4.1", "32.4.3": "4.4", "32.4.2": "4.4 DP", "32.3.1": "4.3", "32.2.3": "4.2.3",
    "32.2.1": "4.2.2", "32.2.0": "4.2.1", "32.2": "4.2.1", "32.1.0": "4.2", "32.1": "4.2",
    "31.1.0": "4.1.1", "31.1": "4.1.1", "31.0.2": "4.1", "31.0.1": "4.0",
    # older JetPack (TK1, TX1, TX2)
    "28.4.0": "3.3.3", "28.2.1": _alt("3.3", "3.2.1"), "28.2.0": "3.2", "28.2": "3.2", "28.1.0": "3.1", "28.1": "3.1",
    "27.1.0": "3.0", "27.1": "3.0", "24.2.1": _alt("3.0", "2.3.1"), "24.2.0": "2.3", "24.2": "2.3",
    "24.1.0": _alt("2.2.1", "2.2"), "24.1": _alt("2.2.1", "2.2"), "23.2.0": "2.1", "23.2": "2.1", "23.1.0": "2.0", "23.1": "2.0",
    "21.5.0": _alt("2.3.1", "2.3"), "21.5": _alt("2.3.1", "2.3"), "21.4.0": _alt("2.2", "2.1", "2.0", "1.2 DP"),
    "21.4": _alt("2.2", "2.1", "2.0", "1.2 DP"), "21.3.0": "1.1 DP", "21.3": "1.1 DP", "21.2.0": "1.0 DP", "21.2": "1.0 DP",
}  # fmt: skip


def normalise_l4t(l4t: str) -> str:
    """'36.4' -> '36.4.0'; '36.4.4' stays."""
    parts = l4t.split(".")
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3])


# The table by normalised key (two-part keys of jetson-stats fold into their x.y.0 twin).
L4T_TO_JETPACK: dict[str, str] = {normalise_l4t(k): v for k, v in JETSON_STATS_L4T_TO_JETPACK.items()}


def jetpack_for_l4t(l4t: str | None) -> str | None:
    """JetPack release for an L4T version (jetson-stats' string), None when the table does not know it."""
    if not l4t:
        return None
    return L4T_TO_JETPACK.get(normalise_l4t(l4t))


def jetpack_major_for_l4t(l4t: str | None) -> int | None:
    """JetPack major: from the table when it knows the release, else from the L4T major (also for
    releases newer than the table). None where one L4T major spans two JetPack majors (R24, R21)."""
    jetpack = jetpack_for_l4t(l4t)
    if jetpack:
        return int(jetpack.split(".")[0])
    version = parse_version(l4t)
    if not version:
        return None
    major = version[0]
    if major >= 38:
        return 7
    for first, jetpack_major in ((36, 6), (34, 5), (31, 4), (27, 3)):
        if major >= first:
            return jetpack_major
    return None


# Tegra SoC -> (GPU name as CUDA / nvidia-smi report it, compute capability, product line).
# Compute capabilities: jetson-stats CUDA_TABLE (jtop/core/jetson_variables.py, commit 09d635b0),
# which also names the SoCs back to tegra124 (Jetson TK1, GK20A GPU).
TEGRA_SOCS: dict[str, tuple[str, tuple[int, int], str]] = {
    "tegra264": ("NVIDIA Thor", (11, 0), "Thor"),
    "tegra234": ("Orin (nvgpu)", (8, 7), "Orin"),
    "tegra194": ("Xavier", (7, 2), "Xavier"),
    "tegra186": ("NVIDIA Tegra X2", (6, 2), "TX2"),
    "tegra210": ("NVIDIA Tegra X1", (5, 3), "Nano/TX1"),
    "tegra124": ("GK20A", (3, 2), "TK1"),
}
# jetson-stats' CUDA_TABLE verbatim: SoC (or SoC family prefix) -> CUDA arch bin.
JETSON_STATS_CUDA_TABLE: dict[str, str] = {
    "tegra26x": "11.0", "tegra264": "11.0", "tegra234": "8.7", "tegra23x": "8.7", "tegra194": "7.2",
    "tegra186": "6.2", "tegra210": "5.3", "tegra124": "3.2",
}  # fmt: skip
# jetson-stats' MODULE_NAME_TABLE verbatim (P-number of /proc/device-tree/nvidia,boardids -> module).
JETSON_MODULES: dict[str, str] = {
    "p3834-0008": "NVIDIA Jetson AGX Thor (Developer kit)",
    "p3767-0005": "NVIDIA Jetson Orin Nano (Developer kit)",
    "p3767-0004": "NVIDIA Jetson Orin Nano (4GB ram)",
    "p3767-0003": "NVIDIA Jetson Orin Nano (8GB ram)",
    "p3767-0001": "NVIDIA Jetson Orin NX (8GB ram)",
    "p3767-0000": "NVIDIA Jetson Orin NX (16GB ram)",
    "p3701-0005": "NVIDIA Jetson AGX Orin (64GB ram)",
    "p3701-0004": "NVIDIA Jetson AGX Orin (32GB ram)",
    "p3701-0002": "NVIDIA Jetson IGX Orin (Developer kit)",
    "p3701-0000": "NVIDIA Jetson AGX Orin",
    "p3668-0003": "NVIDIA Jetson Xavier NX (16GB ram)",
    "p3668-0001": "NVIDIA Jetson Xavier NX",
    "p3668-0000": "NVIDIA Jetson Xavier NX (Developer kit)",
    "p2888-0008": "NVIDIA Jetson AGX Xavier Industrial (32 GB ram)",
    "p2888-0006": "NVIDIA Jetson AGX Xavier (8 GB ram)",
    "p2888-0005": "NVIDIA Jetson AGX Xavier (64 GB ram)",
    "p2888-0004": "NVIDIA Jetson AGX Xavier (32 GB ram)",
    "p2888-0003": "NVIDIA Jetson AGX Xavier (32 GB ram)",
    "p2888-0001": "NVIDIA Jetson AGX Xavier (16 GB ram)",
    "p3448-0003": "NVIDIA Jetson Nano (2 GB ram)",
    "p3448-0002": "NVIDIA Jetson Nano module (16Gb eMMC)",
    "p3448-0000": "NVIDIA Jetson Nano (4 GB ram)",
    "p3636-0001": "NVIDIA Jetson TX2 NX",
    "p3509-0000": "NVIDIA Jetson TX2 NX",
    "p3489-0888": "NVIDIA Jetson TX2 (4 GB ram)",
    "p3489-0000": "NVIDIA Jetson TX2i",
    "p3310-1000": "NVIDIA Jetson TX2",
    "p2180-1000": "NVIDIA Jetson TX1",
    "r375-0001": "NVIDIA Jetson TK1",
    "p3904-0000": "NVIDIA Clara AGX",
    "p2595-0000-A0": "Nintendo Switch",
}
# Module board (P-number prefix) -> SoC, for boards whose device tree lacks 'nvidia,tegraNNN'.
# Derived from the module names above (Thor / Orin / Xavier / Nano / TX1 / TX2 / TK1; Clara AGX is a
# Xavier module, NVIDIA Clara AGX developer kit documentation).
JETSON_MODULE_SOCS: dict[str, str] = {
    "p3834": "tegra264", "p3767": "tegra234", "p3701": "tegra234", "p3668": "tegra194", "p2888": "tegra194",
    "p3904": "tegra194", "p3448": "tegra210", "p2180": "tegra210", "p3636": "tegra186", "p3509": "tegra186",
    "p3489": "tegra186", "p3310": "tegra186", "r375": "tegra124",
}  # fmt: skip


def jetson_cuda_arch(soc: str | None) -> str | None:
    """jetson-stats' lookup: the first CUDA_TABLE key contained in the SoC string ('tegra234' -> '8.7')."""
    for key, arch in JETSON_STATS_CUDA_TABLE.items():
        if soc and key in soc:
            return arch
    return None


def soc_from_compatible(compatible: list[str]) -> str | None:
    """'nvidia,tegra234' among the device-tree compatible strings -> 'tegra234'."""
    for entry in compatible:
        match = re.match(r"^nvidia,(tegra\d+)$", entry.strip())
        if match:
            return match.group(1)
    return None


def module_from_boardids(boardids: str | None) -> tuple[str | None, str | None]:
    """/proc/device-tree/nvidia,boardids '3701:0005' -> ('p3701-0005', module name or None)."""
    if not boardids:
        return None, None
    part = "p" + boardids.strip().strip("\x00").replace(":", "-")
    return part, JETSON_MODULES.get(part)


def soc_from_model(model: str | None) -> str | None:
    """Best effort when the device tree has no compatible: 'NVIDIA Jetson AGX Orin' -> tegra234."""
    if not model:
        return None
    lowered = model.lower()
    for needle, soc in (
        ("thor", "tegra264"),
        ("orin", "tegra234"),
        ("xavier", "tegra194"),
        ("clara agx", "tegra194"),
        ("tx2", "tegra186"),
        ("nano", "tegra210"),
        ("tx1", "tegra210"),
        ("tk1", "tegra124"),
        ("tegra124", "tegra124"),
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


# PCI device id -> (marketing name, integrated?) for AMD GPUs the fleet is likely to meet. The names
# are the fallback when the revision is unknown; AMDGPU_IDS below is the source for names.
AMD_GPUS: dict[str, tuple[str, bool]] = {
    "0x1586": ("Radeon 8060S Graphics", True),  # Strix Halo, Ryzen AI Max+ 395
    "0x150e": ("AMD Radeon 890M Graphics", True),  # Strix Point, Ryzen AI 9 HX 370
    "0x1114": ("AMD Radeon 860M Graphics", True),  # Krackan Point
    "0x15bf": ("AMD Radeon 780M Graphics", True),  # Phoenix
    "0x1900": ("AMD Radeon 780M Graphics", True),  # Phoenix 2 / Hawk Point
    "0x15c8": ("AMD Radeon 740M Graphics", True),  # Phoenix 2
    "0x164e": ("AMD Radeon 610M", True),  # Raphael iGPU
    "0x1681": ("AMD Radeon 680M", True),  # Rembrandt
    "0x744c": ("AMD Radeon RX 7900 XTX", False),
    "0x7448": ("AMD Radeon Pro W7900", False),
    "0x747e": ("AMD Radeon RX 7800 XT", False),
    "0x7480": ("AMD Radeon RX 7600", False),
    "0x73bf": ("AMD Radeon RX 6900 XT", False),
    "0x7550": ("AMD Radeon RX 9070 XT", False),
    "0x7551": ("AMD Radeon AI PRO R9700", False),
    "0x74a1": ("AMD Instinct MI300X", False),
}
# Marketing names by (device id, revision), the rows of libdrm's data/amdgpu.ids for the ids above
# (freedesktop mesa/drm, mirrored as X11Libre/drm, file last changed in commit 7d43d9b6, 2025-07-30):
# device -> {name: "revisions"}.
AMDGPU_IDS: dict[str, dict[str, str]] = {
    "0x1586": {"Radeon 8060S Graphics": "c1 d1", "Radeon 8050S Graphics": "c2 c4 d2 d4", "Radeon 8040S Graphics": "d5"},
    "0x150e": {"AMD Radeon 890M Graphics": "c1 c4 c5 c6 d1 d2 d3"},
    "0x1114": {"AMD Radeon 860M Graphics": "c2 d2", "AMD Radeon 840M Graphics": "c3 d3"},
    "0x15bf": {"AMD Radeon 780M Graphics": "00 02 c1 c2 c4 c6 c7 c9 cf d0 d1 d2 d3 d4 d7 d9 da dd",
               "AMD Radeon 760M Graphics": "01 03 c3 c8 cb cd d5 d6 db dc df f0",
               "AMD Radeon 740M Graphics": "c5 ca cc d8 de"},
    "0x15c8": {"AMD Radeon 740M Graphics": "c1 c2 c3 c4 d1 d2 d3 d4"},
    "0x164e": {"AMD Radeon 610M": "d8 d9 da db dc"},
    "0x1681": {"AMD Radeon 680M": "06 0a c7 c8", "AMD Radeon 660M": "07 0b c9"},
    "0x1900": {"AMD Radeon 780M Graphics": "01 03 05 06 b0 b1 b2 b3 b4 b5 b6 b9 ba bb c0 c2 c4 c5 c7 c9 cb cc ce d0 "
                                           "d2 d4 d5 d7 d9 db dc de f0 f1 f2",
               "AMD Radeon 760M Graphics": "02 04 07 b7 b8 c1 c3 c6 c8 ca cd cf d1 d3 d6 d8 da dd df"},
    "0x744c": {"AMD Radeon RX 7900 XTX": "c8", "AMD Radeon RX 7900 XT": "cc", "AMD Radeon RX 7900 GRE": "ce",
               "AMD Radeon RX 7900M": "cf"},
    "0x7448": {"AMD Radeon Pro W7900": "00"},
    "0x747e": {"AMD Radeon RX 7800 XT": "c8", "AMD Radeon RX 7800M": "d8", "AMD Radeon RX 7700 XT": "ff"},
    "0x7480": {"AMD Radeon Pro W7600": "00", "AMD Radeon RX 7600 XT": "c0", "AMD Radeon RX 7700S": "c1",
               "AMD Radeon RX 7650 GRE": "c2", "AMD Radeon RX 7600S": "c3", "AMD Radeon RX 7600M XT": "c7",
               "AMD Radeon RX 7600": "cf"},
    "0x73bf": {"AMD Radeon RX 6900 XT": "c0", "AMD Radeon RX 6800 XT": "c1", "AMD Radeon RX 6800": "c3"},
    "0x7550": {"AMD Radeon RX 9070 XT": "c0", "AMD Radeon RX 9070 GRE": "c2", "AMD Radeon RX 9070": "c3"},
    "0x7551": {"AMD Radeon AI PRO R9700": "c0"},
    "0x74a1": {"AMD Instinct MI300X": "00"},
}  # fmt: skip


def amd_marketing_name(device_id: str | None, revision: str | None) -> str | None:
    """amdgpu.ids name for (device, revision): ('0x1586', '0xc1') -> 'Radeon 8060S Graphics'."""
    if not device_id:
        return None
    names = AMDGPU_IDS.get(device_id.lower())
    if names and revision:
        rev = revision.lower().replace("0x", "").zfill(2)
        for name, revisions in names.items():
            if rev in revisions.split():
                return name
    known = AMD_GPUS.get(device_id.lower())
    return known[0] if known else None


# Ollama's integrated-GPU test on Linux (discover/amd.go readROCmDRMDevice, v0.30.10): a card with
# mem_info_vram_vendor or board_info is discrete; else VRAM <= 4 GiB with GTT >= 8 GiB and >= 4 x VRAM
# is integrated; anything else is left to the HIP runtime's own flag.
OLLAMA_IGPU_MAX_VRAM_MB = 4 * 1024
OLLAMA_IGPU_MIN_GTT_MB = 8 * 1024
