"""Ollama's own GPU decisions mirrored: runner per GPU (ollama_gpus) and the host's ollama_library.

Cases come from Ollama's discovery code and tests (ollama/ollama at tag v0.30.10, commit e1f7f9cb, unless
a later release is named): discover/runner_test.go TestFilterIntegratedGPUs / TestFilterOverlapByLibrary,
discover/amd_test.go TestApplyLinuxROCmRefinement, discover/cuda_compat.go, docs/gpu.mdx.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import gpu_catalog as cat
from ansible_collections.pmoves.fleet.plugins.module_utils.hardware import (
    amd_integrated,
    choose_ollama_library,
    classify,
    ollama_admits_integrated,
    ollama_cuda_overlap,
    ollama_gpu_decisions,
)

REPO = Path(__file__).resolve().parents[3]


def nvidia_facts(ccs: list[str], cuda: str | None, driver: str = "580.95.05", arch: str = "x86_64") -> dict:
    gpus = [{"index": i, "name": f"GPU{i}", "vendor": "nvidia", "compute_capability": cc, "unified_memory": False}
            for i, cc in enumerate(ccs)]  # fmt: skip
    return {"gpus": gpus, "jetson": None, "npus": [], "arch": arch,
            "nvidia": {"driver_version": driver, "cuda_driver_version": cuda, "source": "nvidia-smi"}}  # fmt: skip


@pytest.mark.parametrize(
    ("ccs", "cuda", "driver", "library"),
    [
        (["12.0"], "13.0", "580.95.05", "cuda_v13"),
        (["12.0"], "12.8", "570.172.08", "cuda_v12"),  # RTX 5090 on a 570 driver
        (["8.6", "12.0"], "13.0", "580.95.05", "cuda_v13"),
        (["6.1"], "13.0", "580.95.05", "cuda_v12"),  # Pascal: no cuda_v13 kernels
        (["7.0", "8.6"], "13.0", "580.95.05", "cuda_v12"),  # one Volta: cuda_v13 does not cover every GPU
        (["7.5"], "13.0", "580.95.05", "cuda_v13"),
        (["8.9"], "11.8", "520.61.05", "vulkan"),  # driver too old for any CUDA runner
        (["3.5"], "12.2", "535.183.01", "vulkan"),  # Kepler: no runner has sm_35
        (["6.1"], "12.4", "550.54.15", "vulkan"),  # cuda_compat.go: cc < 7 needs driver 570
        (["7.5"], "12.2", "535.183.01", "vulkan"),  # cuda_v12 kernels need driver 550 (ollama#16449)
        (["7.5"], "11.4", "470.182.03", "vulkan"),  # below the documented 531 floor
        (["8.7"], "12.6", "560.35.03", "vulkan"),  # Orin-class cc on a dGPU runner: no sm_87 in cuda_v12
        (["12.1"], "12.9", "575.57.08", "cpu"),  # GB10 on a CUDA 12 driver: cuda_v12 lacks sm_121; arm64
    ],
)
def test_nvidia_library(ccs: list[str], cuda: str, driver: str, library: str) -> None:
    facts = nvidia_facts(ccs, cuda, driver, arch="aarch64" if "12.1" in ccs else "x86_64")
    assert choose_ollama_library(facts, []) == library


def test_cuda_driver_inferred_from_driver_when_header_missing() -> None:
    warnings: list[str] = []
    assert choose_ollama_library(nvidia_facts(["12.0"], None, driver="580.82.09"), warnings) == "cuda_v13"
    assert any("inferred" in w for w in warnings)


@pytest.mark.parametrize(
    ("name", "v12", "v13", "expected"),
    [  # TestFilterOverlapByLibrary: GPU indices each runner supports -> the runner that keeps each GPU
        ("single no overlap", {0}, set(), {0: "cuda_v12"}),
        ("100% overlap picks the newest", {0, 1}, {0, 1}, {0: "cuda_v13", 1: "cuda_v13"}),
        ("partial overlap pick older", {0, 1}, {0}, {0: "cuda_v12", 1: "cuda_v12"}),
        ("only cuda_v13 has it", {0}, {0, 1}, {0: "cuda_v12", 1: "cuda_v13"}),
        ("empty", set(), set(), {}),
    ],
)
def test_cuda_runner_overlap_follows_ollama(name: str, v12: set, v13: set, expected: dict) -> None:
    assert ollama_cuda_overlap(v12, v13) == expected, name


RULES = cat.ollama_rules("0.30.10")
IGPUS = [("CUDA", None, True), ("Vulkan", None, True), ("ROCm", "gfx1103", True), ("ROCm", "gfx1151", True)]


@pytest.mark.parametrize(
    ("igpu_enable", "kept"),
    [  # TestFilterIntegratedGPUs (Linux): auto admits CUDA iGPUs and gfx1151 only; explicit wins
        (None, [True, False, False, True]),
        (True, [True, True, True, True]),
        (False, [False, False, False, False]),
    ],
)
def test_integrated_gpu_filter_follows_ollama(igpu_enable: bool | None, kept: list[bool]) -> None:
    assert [ollama_admits_integrated(lib, gfx, igpu_enable, RULES) for lib, gfx, _i in IGPUS] == kept


def test_gfx1151_default_admission_arrived_in_0_30_1() -> None:
    assert not ollama_admits_integrated("ROCm", "gfx1151", None, cat.ollama_rules("0.30.0"))
    assert ollama_admits_integrated("ROCm", "gfx1151", None, cat.ollama_rules("0.30.1"))


MiB = 1
GiB = 1024


@pytest.mark.parametrize(
    ("name", "vram", "gtt", "marker", "integrated"),
    [  # TestApplyLinuxROCmRefinement
        ("apu is integrated", 2 * GiB, 32 * GiB, False, True),
        ("low vram dgpu is not integrated", 4 * GiB, 32 * GiB, True, False),
        ("mixed system: 48 GiB discrete card", 48 * GiB, 64 * GiB, True, False),
        ("mixed system: 512 MiB iGPU", 512 * MiB, 32 * GiB, False, True),
        ("remapped: 2 GiB / 32 GiB iGPU", 2 * GiB, 32 * GiB, False, True),
        # the boundary the issue names: 3 GiB carve-out with 16 GiB GTT is integrated for Ollama
        ("3 GiB VRAM, 16 GiB GTT", 3 * GiB, 16 * GiB, False, True),
        ("4 GiB VRAM, 8 GiB GTT: GTT < 4 x VRAM", 4 * GiB, 8 * GiB, False, False),
        ("1 GiB VRAM, 6 GiB GTT: GTT < 8 GiB", 1 * GiB, 6 * GiB, False, False),
    ],
)
def test_amd_integrated_follows_ollama(name: str, vram: int, gtt: int, marker: bool, integrated: bool) -> None:
    card = {"device_id": "0x9999", "discrete_marker": marker}
    assert amd_integrated(card, vram, gtt)[0] is integrated, name


def test_amd_integrated_falls_back_to_the_pci_table() -> None:
    """Strix Halo with a 96 GiB BIOS carve-out: no sysfs signature; the id table says integrated (HIP does too)."""
    assert amd_integrated({"device_id": "0x1586", "discrete_marker": False}, 96 * GiB, 16 * GiB) == (True, "PCI id table")


def amd(gfx: str, unified: bool, name: str = "AMD GPU") -> dict:
    return {"index": 0, "name": name, "vendor": "amd", "gfx": gfx, "unified_memory": unified, "compute_capability": None}


@pytest.mark.parametrize(
    ("gpus", "npus", "library", "node_class", "env"),
    [
        ([amd("gfx1151", True)], [], "rocm", "apu", None),  # Strix Halo: admitted by default
        ([amd("gfx1100", False)], [], "rocm", "gpu", None),  # RX 7900 XTX
        ([amd("gfx1103", False)], [], "rocm", "gpu", None),  # in 0.30.10's ROCm targets
        ([amd("gfx1032", False)], [], "vulkan", "gpu", {"HSA_OVERRIDE_GFX_VERSION": "10.3.0"}),  # RX 6600
        ([amd("gfx1150", True)], [{"vendor": "amd"}], "cpu", "npu", {"OLLAMA_IGPU_ENABLE": "1"}),  # 890M + XDNA2
        ([amd("gfx1103", True)], [], "cpu", "cpu", {"OLLAMA_IGPU_ENABLE": "1"}),  # 780M: dropped by default
        ([amd("gfx90c", True)], [], "cpu", "cpu", {"OLLAMA_IGPU_ENABLE": "1"}),  # Cezanne iGPU: Vulkan drops it
    ],
)
def test_amd_library_and_class(gpus: list[dict], npus: list[dict], library: str, node_class: str, env) -> None:
    facts = {"gpus": gpus, "npus": npus, "nvidia": None, "jetson": None, "arch": "x86_64"}
    assert choose_ollama_library(facts, []) == library
    assert classify(facts)[0] == node_class
    assert ollama_gpu_decisions(facts, [])[0]["env"] == env


def test_gfx1103_left_rocm_in_0_31_2() -> None:
    facts = {"gpus": [amd("gfx1103", False)], "npus": [], "nvidia": None, "jetson": None, "arch": "x86_64"}
    decision = ollama_gpu_decisions(facts, [], "0.31.2")[0]
    assert decision["library"] == "vulkan"
    assert decision["env"] == {"HSA_OVERRIDE_GFX_VERSION": "11.0.0"}


def test_igpu_warning_names_reason_and_fix() -> None:
    warnings: list[str] = []
    facts = {"gpus": [amd("gfx1103", True, "AMD Radeon 780M Graphics")], "npus": [], "nvidia": None, "jetson": None,
             "arch": "x86_64"}  # fmt: skip
    decision = ollama_gpu_decisions(facts, warnings)[0]
    assert decision["library"] is None
    assert "OLLAMA_IGPU_ENABLE=1" in decision["fix"]
    assert any("will not use GPU 0 AMD Radeon 780M Graphics" in w and "OLLAMA_IGPU_ENABLE=1" in w for w in warnings)


def test_vulkan_was_opt_in_before_0_30() -> None:
    facts = nvidia_facts(["7.5"], "11.4", driver="470.182.03")
    decision = ollama_gpu_decisions(facts, [], "0.17.1")[0]
    assert decision["library"] is None
    assert decision["env"] == {"OLLAMA_VULKAN": "1"}
    assert ollama_gpu_decisions(facts, [], "0.30.10")[0]["library"] == "vulkan"


def test_no_vulkan_runner_on_arm64() -> None:
    facts = nvidia_facts(["7.5"], "11.4", driver="470.182.03", arch="aarch64")
    decision = ollama_gpu_decisions(facts, [])[0]
    assert decision["library"] is None and "no Vulkan runner for aarch64" in decision["reason"]


def test_mixed_pascal_and_blackwell_share_cuda_v12() -> None:
    facts = nvidia_facts(["6.1", "12.0"], "13.0")
    decisions = ollama_gpu_decisions(facts, [])
    assert [d["library"] for d in decisions] == ["cuda_v12", "cuda_v12"]
    assert "covers every GPU" in decisions[1]["reason"]


def test_b200_next_to_an_ampere_card_splits_runners() -> None:
    """0.30.10's cuda_v12 has no sm_100: the B200 stays on cuda_v13, the 3090 on cuda_v12; from 0.32.2 on
    (sm_100 in cuda_v12) both runners cover both GPUs and Ollama keeps the newest, cuda_v13."""
    facts = nvidia_facts(["8.6", "10.0"], "13.0")
    assert [d["library"] for d in ollama_gpu_decisions(facts, [])] == ["cuda_v12", "cuda_v13"]
    assert [d["library"] for d in ollama_gpu_decisions(facts, [], "0.32.2")] == ["cuda_v13", "cuda_v13"]


@pytest.mark.parametrize(
    ("jetpack_major", "l4t", "soc", "cc", "library", "env"),
    [
        (5, "35.6.0", "tegra234", "8.7", "jetpack5", None),
        (6, "36.4.4", "tegra234", "8.7", "jetpack6", None),
        (5, "35.3.0", "tegra194", "7.2", "jetpack5", None),  # Xavier on JetPack 5.1.1 PRE
        (6, "36.4.4", "tegra194", "7.2", None, None),  # jetpack6 runner: sm_87 only
        (5, "34.1.1", "tegra234", "8.7", "jetpack5", {"JETSON_JETPACK": "5"}),  # R34: not auto-detected
        (7, "38.2.0", "tegra264", "11.0", "cuda_v13", None),
        (None, None, "tegra264", "11.0", "cuda_v13", None),
        (4, "32.7.1", "tegra210", "5.3", None, None),
        (4, "32.2.1", "tegra194", "7.2", None, None),
        (None, "21.5.0", "tegra124", "3.2", None, None),  # TK1
    ],
)
def test_jetson_library(jetpack_major, l4t, soc, cc, library, env) -> None:
    gpu = {"index": 0, "name": cat.TEGRA_SOCS[soc][0], "vendor": "nvidia", "compute_capability": cc, "unified_memory": True}
    facts = {"gpus": [gpu], "npus": [], "nvidia": None, "arch": "aarch64",
             "jetson": {"jetpack_major": jetpack_major, "l4t": l4t, "soc": soc, "jetpack": cat.jetpack_for_l4t(l4t)}}  # fmt: skip
    decision = ollama_gpu_decisions(facts, [])[0]
    assert (decision["library"], decision["env"]) == (library, env)
    assert choose_ollama_library(facts, []) == (library or "cpu")


def test_xavier_on_jetpack4_fix_is_an_upgrade() -> None:
    gpu = {"index": 0, "name": "Xavier", "vendor": "nvidia", "compute_capability": "7.2", "unified_memory": True}
    facts = {"gpus": [gpu], "npus": [], "nvidia": None, "arch": "aarch64",
             "jetson": {"jetpack_major": 4, "l4t": "32.7.1", "soc": "tegra194", "jetpack": "4.6.1"}}  # fmt: skip
    assert ollama_gpu_decisions(facts, [])[0]["fix"] == "upgrade to JetPack 5 or 6 (L4T R35 / R36)"


def test_default_release_is_the_one_roles_ollama_installs() -> None:
    defaults = (REPO / "roles" / "ollama" / "defaults" / "main.yml").read_text()
    assert f'pmoves_ollama_version: "{cat.OLLAMA_DEFAULT_RELEASE}"' in defaults


def test_apple_gpu_is_metal() -> None:
    gpu = {"index": 0, "name": "Apple M4 Pro", "vendor": "apple", "unified_memory": True}
    facts = {"gpus": [gpu], "npus": [], "nvidia": None, "jetson": None, "arch": "aarch64"}
    assert ollama_gpu_decisions(facts, [])[0]["library"] == "metal"
    assert choose_ollama_library(facts, []) == "cpu"
