"""Runner library choice from driver CUDA version, compute capability and JetPack."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.hardware import choose_ollama_library, classify


def nvidia_facts(ccs: list[str], cuda: str | None, driver: str = "580.95.05") -> dict:
    gpus = [{"vendor": "nvidia", "compute_capability": cc, "unified_memory": False} for cc in ccs]
    return {"gpus": gpus, "jetson": None, "npus": [],
            "nvidia": {"driver_version": driver, "cuda_driver_version": cuda, "source": "nvidia-smi"}}  # fmt: skip


@pytest.mark.parametrize(
    ("ccs", "cuda", "library"),
    [
        (["12.0"], "13.0", "cuda_v13"),
        (["12.0"], "12.8", "cuda_v12"),  # RTX 5090 on a 570 driver
        (["8.6", "12.0"], "13.0", "cuda_v13"),
        (["6.1"], "13.0", "cuda_v12"),  # Pascal: CUDA 13 builds dropped cc < 7.5
        (["7.0", "8.6"], "13.0", "cuda_v12"),  # one Volta forces the whole host to v12
        (["7.5"], "13.0", "cuda_v13"),
        (["8.9"], "11.8", "vulkan"),  # driver too old for Ollama's CUDA 12 runner
        (["3.5"], "12.2", "vulkan"),  # Kepler: below cc 5.0
    ],
)
def test_nvidia_library(ccs: list[str], cuda: str, library: str) -> None:
    assert choose_ollama_library(nvidia_facts(ccs, cuda), []) == library


def test_cuda_driver_inferred_from_driver_when_header_missing() -> None:
    warnings: list[str] = []
    assert choose_ollama_library(nvidia_facts(["12.0"], None, driver="580.82.09"), warnings) == "cuda_v13"
    assert any("inferred" in w for w in warnings)


@pytest.mark.parametrize(
    ("jetpack_major", "soc", "library"),
    [(5, "tegra234", "jetpack5"), (6, "tegra234", "jetpack6"), (7, "tegra264", "cuda_v13"), (None, "tegra264", "cuda_v13"),
     (4, "tegra210", "cpu")],
)  # fmt: skip
def test_jetson_library(jetpack_major: int | None, soc: str, library: str) -> None:
    facts = {
        "gpus": [],
        "npus": [],
        "nvidia": None,
        "jetson": {"jetpack_major": jetpack_major, "soc": soc, "jetpack": None},
    }
    assert choose_ollama_library(facts, []) == library


def amd(gfx: str, unified: bool) -> dict:
    return {"vendor": "amd", "gfx": gfx, "unified_memory": unified, "compute_capability": None}


@pytest.mark.parametrize(
    ("gpus", "npus", "library", "node_class"),
    [
        ([amd("gfx1151", True)], [], "rocm", "apu"),  # Strix Halo
        ([amd("gfx1100", False)], [], "rocm", "gpu"),  # RX 7900 XTX
        ([amd("gfx1103", False)], [], "vulkan", "gpu"),  # not in Ollama's ROCm targets
        ([amd("gfx1150", True)], [{"vendor": "amd"}], "vulkan", "npu"),  # Strix Point iGPU + XDNA2 (SER9)
        ([amd("gfx1103", True)], [], "vulkan", "cpu"),  # Phoenix iGPU: not an AI accelerator
    ],
)
def test_amd_library_and_class(gpus: list[dict], npus: list[dict], library: str, node_class: str) -> None:
    facts = {"gpus": gpus, "npus": npus, "nvidia": None, "jetson": None}
    assert choose_ollama_library(facts, []) == library
    assert classify(facts)[0] == node_class
