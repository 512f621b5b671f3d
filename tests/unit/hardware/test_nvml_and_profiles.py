"""The NVML path (against a pynvml test double) and hardware profile selection."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import hardware_profiles as hp
from nvml_double import NOT_SUPPORTED, FakeNVML

RTX5090 = {"name": "NVIDIA GeForce RTX 5090", "uuid": "GPU-aaaa", "bus": "00000000:01:00.0",
           "total": 32607 * 1024 * 1024, "free": 31000 * 1024 * 1024, "cc": (12, 0)}  # fmt: skip
GB10 = {"name": "NVIDIA GB10", "uuid": "GPU-bbbb", "bus": "0000000F:01:00.0", "total": NOT_SUPPORTED, "cc": (12, 1)}


def test_nvml_is_preferred_over_nvidia_smi(discover_fixture) -> None:
    fake = FakeNVML([RTX5090], driver="580.95.05", cuda=13000)
    # the sysroot's nvidia-smi capture says 5090 + 3090 Ti: NVML must win
    facts = discover_fixture("rtx5090-3090ti-workstation", use_nvml=True, nvml_loader=lambda: fake)
    assert facts["nvidia"] == {"driver_version": "580.95.05", "cuda_driver_version": "13.0", "source": "nvml"}
    assert [(g["name"], g["memory_total_mb"], g["memory_free_mb"], g["sm"]) for g in facts["gpus"]] == [
        ("NVIDIA GeForce RTX 5090", 32607, 31000, "sm_120")
    ]
    assert facts["gpus"][0]["uuid"] == "GPU-aaaa"
    assert fake.shutdowns == 1
    assert facts["ollama_library"] == "cuda_v13"


def test_nvml_cuda_12_9_version_encoding(discover_fixture) -> None:
    fake = FakeNVML([RTX5090], driver="575.57.08", cuda=12090)
    facts = discover_fixture("cpu-vps", use_nvml=True, nvml_loader=lambda: fake)
    assert facts["nvidia"]["cuda_driver_version"] == "12.9"
    assert facts["ollama_library"] == "cuda_v12"


def test_nvml_unified_memory_not_supported(discover_fixture) -> None:
    fake = FakeNVML([GB10], driver="580.95.05", cuda=13000)
    facts = discover_fixture("dgx-spark-gb10", use_nvml=True, nvml_loader=lambda: fake)
    gpu = facts["gpus"][0]
    assert gpu["unified_memory"] is True
    assert gpu["memory_total_mb"] == 107258  # usable share of RAM, same as the nvidia-smi path
    assert facts["node_class"] == "apu"


def test_nvml_init_failure_falls_back_to_nvidia_smi(discover_fixture) -> None:
    fake = FakeNVML([], init_error="Driver Not Loaded")
    facts = discover_fixture("rtx4090-laptop", use_nvml=True, nvml_loader=lambda: fake)
    assert facts["nvidia"]["source"] == "nvidia-smi"
    assert facts["gpus"][0]["name"] == "NVIDIA GeForce RTX 4090 Laptop GPU"
    assert any("nvmlInit failed" in w and "Driver Not Loaded" in w for w in facts["warnings"])


def test_pynvml_missing_is_a_warning(discover_fixture) -> None:
    facts = discover_fixture("cpu-vps", use_nvml=True, nvml_loader=lambda: None)
    assert facts["warnings"][0].startswith("NVML: pynvml (nvidia-ml-py) not importable")


def test_real_pynvml_without_driver_is_skipped(discover_fixture) -> None:
    """nvidia-ml-py is installed here but there is no libnvidia-ml: a warning, not a failure."""
    facts = discover_fixture("cpu-vps", use_nvml=True)
    assert facts["node_class"] == "cpu"
    assert any(w.startswith("NVML:") for w in facts["warnings"])


def test_module_utils_import_without_pynvml(monkeypatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    module = importlib.import_module("ansible_collections.pmoves.fleet.plugins.module_utils.hardware")
    assert module.default_nvml_loader() is None


# --------------------------------------------------------------------------- profiles


def _facts(arch: str, gpus: list[dict], soc: str | None = None) -> dict:
    return {"arch": arch, "gpus": gpus, "jetson": {"soc": soc} if soc else None}


def _gpu(name: str, cc: str, mb: int = 24576) -> dict:
    return {"vendor": "nvidia", "name": name, "compute_capability": cc, "memory_total_mb": mb}


def test_arm64_alone_never_selects_jetson_thor() -> None:
    profiles = hp.merge_profiles(None)
    assert hp.resolve_profile(profiles, _facts("aarch64", [])) is None  # Pi 5
    orin = hp.resolve_profile(profiles, _facts("aarch64", [_gpu("Orin (nvgpu)", "8.7")], soc="tegra234"))
    assert orin["name"] == "development"


def test_thor_by_gpu_name_without_device_tree() -> None:
    profile = hp.resolve_profile(hp.merge_profiles(None), _facts("aarch64", [_gpu("NVIDIA Thor", "11.0")]))
    assert profile["name"] == "jetson-thor"


def test_user_profiles_merge_over_builtins_and_win() -> None:
    user = {
        "jetson-thor": {"power_mode": "50W"},
        "rtx-5090": {"match": {"gpu_name": ["RTX 5090"]}, "tensorrt_precision": "fp8", "max_batch_size": 16,
                     "engine_dir": "/engines/sm120"},
    }  # fmt: skip
    profiles = hp.merge_profiles(user)
    assert profiles["jetson-thor"]["power_mode"] == "50W"
    assert profiles["jetson-thor"]["max_batch_size"] == 16  # untouched built-in value kept
    profile = hp.resolve_profile(profiles, _facts("x86_64", [_gpu("NVIDIA GeForce RTX 5090", "12.0", 32607)]))
    assert (profile["name"], profile["tensorrt_precision"], profile["engine_dir"]) == (
        "rtx-5090",
        "fp8",
        "/engines/sm120",
    )
    assert profile["detected_gpu_memory_mb"] == 32607


def test_arch_only_profile_is_reported_and_never_selected() -> None:
    profiles = hp.merge_profiles({"arm-box": {"match": {"arch": ["aarch64"]}, "max_batch_size": 1}})
    problems = hp.validate_profiles(profiles)
    assert any("arm-box" in p and "match.arch alone" in p for p in problems)
    assert hp.resolve_profile(profiles, _facts("aarch64", [])) is None


def test_profiles_option_through_discover(discover_fixture) -> None:
    facts = discover_fixture(
        "rtx5090-3090ti-workstation",
        profiles={"rtx-5090": {"match": {"gpu_name": ["RTX 5090"]}, "max_batch_size": 12}},
    )
    assert facts["hardware_profile"]["name"] == "rtx-5090"
    assert facts["hardware_profile"]["max_batch_size"] == 12


@pytest.mark.parametrize(("cc", "precision"), [("6.1", "fp32"), ("7.5", "fp16"), ("12.0", "fp16")])
def test_development_precision_by_compute_capability(cc: str, precision: str) -> None:
    profile = hp.resolve_profile(hp.merge_profiles(None), _facts("x86_64", [_gpu("Some GPU", cc)]))
    assert profile["name"] == "development"
    assert profile["tensorrt_precision"] == precision
