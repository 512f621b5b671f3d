"""discover() over captured sysroots, through the real command runner and the test-double PATH."""

from __future__ import annotations

import pytest

# What a user relies on per machine: class, accelerator, GPUs, runner library, arch list, JetPack.
EXPECTED = {
    "rtx5090-3090ti-workstation": {
        "node_class": "gpu", "accelerator": "nvidia", "arch": "x86_64", "ollama_library": "cuda_v13",
        "torch_cuda_arch_list": "8.6;12.0", "profile": "development",
        "gpus": [("NVIDIA GeForce RTX 5090", 32607, "12.0", "sm_120", "blackwell"),
                 ("NVIDIA GeForce RTX 3090 Ti", 24564, "8.6", "sm_86", "ampere")],
    },
    "rtx4090-laptop": {
        "node_class": "gpu", "accelerator": "nvidia", "arch": "x86_64", "ollama_library": "cuda_v12",
        "torch_cuda_arch_list": "8.9", "profile": "development",
        "gpus": [("NVIDIA GeForce RTX 4090 Laptop GPU", 16376, "8.9", "sm_89", "ada-lovelace")],
    },
    "a5500-a400-workstation": {
        "node_class": "gpu", "accelerator": "nvidia", "arch": "x86_64", "ollama_library": "cuda_v12",
        "torch_cuda_arch_list": "8.6", "profile": "development",
        "gpus": [("NVIDIA RTX A5500", 24564, "8.6", "sm_86", "ampere"), ("NVIDIA RTX A400", 4094, "8.6", "sm_86", "ampere")],
    },
    "jetson-agx-orin-r36.4.4": {
        "node_class": "edge", "accelerator": "jetson", "arch": "aarch64", "ollama_library": "jetpack6",
        "torch_cuda_arch_list": "8.7", "profile": "development",
        "gpus": [("Orin (nvgpu)", 54974, "8.7", "sm_87", "ampere")],
    },
    "jetson-orin-nx-r35.6-dpkg": {
        "node_class": "edge", "accelerator": "jetson", "arch": "aarch64", "ollama_library": "jetpack5",
        "torch_cuda_arch_list": "8.7", "profile": "development",
        "gpus": [("Orin (nvgpu)", 13401, "8.7", "sm_87", "ampere")],
    },
    "jetson-agx-thor-r38.2": {
        "node_class": "edge", "accelerator": "jetson", "arch": "aarch64", "ollama_library": "cuda_v13",
        "torch_cuda_arch_list": "11.0", "profile": "jetson-thor",
        "gpus": [("NVIDIA Thor", 110052, "11.0", "sm_110", "blackwell")],
    },
    "rtx-pro-4000": {
        "node_class": "gpu", "accelerator": "nvidia", "arch": "x86_64", "ollama_library": "cuda_v13",
        "torch_cuda_arch_list": "12.0", "profile": "rtx-pro-4000",
        "gpus": [("NVIDIA RTX PRO 4000 Blackwell", 24467, "12.0", "sm_120", "blackwell")],
    },
    "tesla-p40-dev": {
        "node_class": "gpu", "accelerator": "nvidia", "arch": "x86_64", "ollama_library": "cuda_v12",
        "torch_cuda_arch_list": "6.1", "profile": "development",
        "gpus": [("Tesla P40", 24576, "6.1", "sm_61", "pascal")],
    },
    "dgx-spark-gb10": {
        "node_class": "apu", "accelerator": "nvidia", "arch": "aarch64", "ollama_library": "cuda_v13",
        "torch_cuda_arch_list": "12.1", "profile": "development",
        "gpus": [("NVIDIA GB10", 107258, "12.1", "sm_121", "blackwell")],
    },
    "strix-halo-xdna": {
        "node_class": "apu", "accelerator": "amd", "arch": "x86_64", "ollama_library": "rocm",
        "torch_cuda_arch_list": None, "profile": None,
        "gpus": [("Radeon 8060S Graphics", 112640, None, None, None)],
    },
    "meteor-lake-npu": {
        "node_class": "npu", "accelerator": "none", "arch": "x86_64", "ollama_library": "cpu",
        "torch_cuda_arch_list": None, "profile": None, "gpus": [],
    },
    "mac-mini-m4-pro": {
        "node_class": "apu", "accelerator": "apple", "arch": "aarch64", "ollama_library": "cpu",
        "torch_cuda_arch_list": None, "profile": None, "gpus": [("Apple M4 Pro", 16384, None, None, None)],
    },
    "cpu-vps": {
        "node_class": "cpu", "accelerator": "none", "arch": "x86_64", "ollama_library": "cpu",
        "torch_cuda_arch_list": None, "profile": None, "gpus": [],
    },
    "pi5": {
        "node_class": "cpu", "accelerator": "none", "arch": "aarch64", "ollama_library": "cpu",
        "torch_cuda_arch_list": None, "profile": None, "gpus": [],
    },
    "broken-driver": {
        "node_class": "cpu", "accelerator": "none", "arch": "x86_64", "ollama_library": "cpu",
        "torch_cuda_arch_list": None, "profile": None, "gpus": [],
    },
}  # fmt: skip

CONTRACT_KEYS = {
    "schema", "arch", "memory_mb", "cpu", "node_class", "accelerator", "gpus", "nvidia", "cuda", "jetson", "npus",
    "torch_cuda_arch_list", "ollama_library", "labels", "warnings",
}  # fmt: skip
GPU_KEYS = {"index", "vendor", "name", "uuid", "pci_bus_id", "memory_total_mb", "memory_free_mb",
            "compute_capability", "sm", "family", "gfx", "unified_memory"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_discovery(name: str, discover_fixture) -> None:
    facts = discover_fixture(name)
    expected = EXPECTED[name]
    assert set(facts) >= CONTRACT_KEYS
    assert facts["schema"] == 1
    for key in ("node_class", "accelerator", "arch", "ollama_library", "torch_cuda_arch_list"):
        assert facts[key] == expected[key], key
    got = [(g["name"], g["memory_total_mb"], g["compute_capability"], g["sm"], g["family"]) for g in facts["gpus"]]
    assert got == expected["gpus"]
    for gpu in facts["gpus"]:
        assert set(gpu) >= GPU_KEYS
        assert isinstance(gpu["memory_total_mb"], int)
    assert (facts["hardware_profile"] or {}).get("name") == expected["profile"]
    assert facts["memory_mb"] > 0 and facts["cpu"]["cores"] > 0 and facts["cpu"]["model"]
    assert facts["summary"].startswith(expected["node_class"])


def test_workstation_details(discover_fixture) -> None:
    facts = discover_fixture("rtx5090-3090ti-workstation")
    assert facts["nvidia"] == {"driver_version": "580.82.09", "cuda_driver_version": "13.0", "source": "nvidia-smi"}
    assert facts["cuda"] == {"version": "12.8.1", "source": "/usr/local/cuda/version.json"}
    first = facts["gpus"][0]
    assert first["uuid"] == "GPU-8f3c2a91-5d7e-4b6a-9c1f-2e4d6a8b0c13"
    assert first["pci_bus_id"] == "00000000:01:00.0"
    assert first["memory_free_mb"] == 31268
    assert first["unified_memory"] is False
    assert facts["labels"] == {
        "nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-5090",
        "nvidia.com/gpu.count": "1",
        "nvidia.com/gpu.memory": "32607",
        "nvidia.com/gpu.family": "blackwell",
        "nvidia.com/gpu.compute.major": "12",
        "nvidia.com/gpu.compute.minor": "0",
        "nvidia.com/cuda.driver-version.major": "580",
        "nvidia.com/cuda.driver-version.minor": "82",
        "nvidia.com/cuda.driver-version.revision": "09",
        "nvidia.com/cuda.driver-version.full": "580.82.09",
        "nvidia.com/cuda.driver.major": "580",
        "nvidia.com/cuda.driver.minor": "82",
        "nvidia.com/cuda.driver.rev": "09",
        "nvidia.com/cuda.runtime-version.major": "13",
        "nvidia.com/cuda.runtime-version.minor": "0",
        "nvidia.com/cuda.runtime-version.full": "13.0",
        "nvidia.com/cuda.runtime.major": "13",
        "nvidia.com/cuda.runtime.minor": "0",
    }
    # only the NVML probe is skipped on this run (use_nvml=False); no other warnings
    assert facts["warnings"] == []


def test_two_identical_gpus_count_in_gfd_labels(discover_fixture) -> None:
    facts = discover_fixture("a5500-a400-workstation")
    assert facts["labels"]["nvidia.com/gpu.product"] == "NVIDIA-RTX-A5500"
    assert facts["labels"]["nvidia.com/gpu.count"] == "1"
    assert facts["labels"]["nvidia.com/cuda.runtime-version.full"] == "12.8"


def test_jetson_orin(discover_fixture) -> None:
    facts = discover_fixture("jetson-agx-orin-r36.4.4")
    jetson = facts["jetson"]
    assert (jetson["l4t"], jetson["jetpack"], jetson["soc"], jetson["power_mode"]) == (
        "36.4.4",
        "6.2.1",
        "tegra234",
        "MAXN",
    )
    assert jetson["model"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert jetson["l4t_source"] == "nv_tegra_release"
    assert facts["power_mode"] == "MAXN"
    gpu = facts["gpus"][0]
    assert gpu["unified_memory"] is True
    assert gpu["memory_total_mb"] < facts["memory_mb"]  # usable share, never all of RAM
    assert facts["cuda"]["version"] == "12.6.68"
    assert facts["labels"]["nvidia.com/gpu.product"] == "Orin-nvgpu"


def test_jetson_dpkg_fallback_without_nvidia_smi(discover_fixture) -> None:
    facts = discover_fixture("jetson-orin-nx-r35.6-dpkg")
    assert facts["jetson"]["l4t"] == "35.6.0"
    assert facts["jetson"]["jetpack"] == "5.1.4"
    assert facts["jetson"]["l4t_source"] == "dpkg nvidia-l4t-core"
    assert facts["jetson"]["power_mode"] == "25W"
    assert facts["nvidia"] is None
    assert any("nvidia-smi not found" in w for w in facts["warnings"])


def test_jetson_thor(discover_fixture) -> None:
    facts = discover_fixture("jetson-agx-thor-r38.2")
    assert facts["jetson"]["jetpack"] == "7.0"
    assert facts["jetson"]["soc"] == "tegra264"
    assert facts["nvidia"]["cuda_driver_version"] == "13.0"
    assert facts["gpus"][0]["unified_memory"] is True
    profile = facts["hardware_profile"]
    assert profile["name"] == "jetson-thor"
    assert profile["matched_by"] == "soc tegra264"
    assert (profile["power_mode"], profile["tensorrt_precision"], profile["max_batch_size"]) == ("MAXN", "fp16", 16)
    assert (profile["kv_cache_fraction"], profile["nvlink"], profile["arch"]) == (0.4, True, "aarch64")
    assert profile["gpu_memory"] == "64GB"


def test_rtx_pro_4000_profile(discover_fixture) -> None:
    profile = discover_fixture("rtx-pro-4000")["hardware_profile"]
    assert profile["name"] == "rtx-pro-4000"
    assert (profile["max_batch_size"], profile["kv_cache_fraction"], profile["nvlink"]) == (8, 0.3, False)


def test_pascal_warns_about_cuda13(discover_fixture) -> None:
    facts = discover_fixture("tesla-p40-dev")
    assert facts["nvidia"]["cuda_driver_version"] == "13.0"  # the driver could run CUDA 13 ...
    assert facts["ollama_library"] == "cuda_v12"  # ... but CUDA 13 builds have no sm_61
    assert any("cc 6.1" in w and "CUDA 13" in w for w in facts["warnings"])
    assert facts["hardware_profile"]["tensorrt_precision"] == "fp32"
    assert facts["hardware_profile"]["gpu_memory"] == "24GB"


def test_gb10_unified_memory_na(discover_fixture) -> None:
    facts = discover_fixture("dgx-spark-gb10")
    gpu = facts["gpus"][0]
    assert gpu["unified_memory"] is True
    assert 0 < gpu["memory_total_mb"] < facts["memory_mb"]
    assert facts["jetson"] is None


def test_strix_halo_apu_and_npu(discover_fixture) -> None:
    facts = discover_fixture("strix-halo-xdna")
    gpu = facts["gpus"][0]
    assert (gpu["vendor"], gpu["gfx"], gpu["unified_memory"]) == ("amd", "gfx1151", True)
    assert gpu["vram_mb"] == 512 and gpu["gtt_mb"] == 112640
    assert gpu["pci_bus_id"] == "0000:c5:00.0"
    assert gpu["memory_total_mb"] <= facts["memory_mb"] + gpu["vram_mb"]
    assert facts["amd"] == {"gfx_targets": ["gfx1151"], "rocm_supported": True, "kfd": True}
    assert facts["npus"] == [
        {
            "vendor": "amd",
            "driver": "amdxdna",
            "device_id": "0x17f0",
            "revision": "0x11",
            "generation": "XDNA2",
            "platform": "Strix Halo",
            "pci_bus_id": "0000:c6:00.1",
            "accel": "accel0",
        }
    ]
    assert facts["labels"] == {}


def test_meteor_lake_npu(discover_fixture) -> None:
    facts = discover_fixture("meteor-lake-npu")
    assert [(n["vendor"], n["driver"], n["device_id"], n["generation"], n["platform"]) for n in facts["npus"]] == [
        ("intel", "intel_vpu", "0x7d1d", "NPU3720", "Meteor Lake")
    ]


def test_mac_mini(discover_fixture) -> None:
    facts = discover_fixture("mac-mini-m4-pro")
    assert facts["platform"] == "Darwin"
    assert facts["memory_mb"] == 24576
    assert facts["cpu"] == {"model": "Apple M4 Pro", "cores": 12}
    assert facts["apple"]["gpu_cores"] == 16
    assert facts["apple"]["model"] == "Mac16,11"
    assert facts["gpus"][0]["vendor"] == "apple"
    assert facts["warnings"] == []


def test_broken_driver_is_a_warning_not_a_gpu(discover_fixture) -> None:
    facts = discover_fixture("broken-driver")
    assert facts["gpus"] == []
    assert facts["nvidia"] is None
    assert facts["unusable_gpus"] == [
        {"vendor": "nvidia", "pci_bus_id": "0000:01:00.0", "device_id": "0x2b85", "driver": None}
    ]
    assert any("exit 9" in w and "couldn't communicate with the NVIDIA driver" in w for w in facts["warnings"])


def test_pi5_is_not_a_jetson(discover_fixture) -> None:
    facts = discover_fixture("pi5")
    assert facts["jetson"] is None
    assert facts["hardware_profile"] is None
    assert facts["cpu"]["model"] == "ARM Cortex-A76"


def test_missing_tools_are_warnings(discover_fixture) -> None:
    facts = discover_fixture("cpu-vps")
    assert facts["warnings"] == ["nvidia-smi not found on PATH; NVIDIA probe skipped"]


def test_empty_sysroot_does_not_fail(tmp_path, doubles_path) -> None:
    from ansible_collections.pmoves.fleet.plugins.module_utils.hardware import discover

    facts = discover(str(tmp_path), use_nvml=False)
    assert facts["node_class"] == "cpu"
    assert any("/proc/meminfo" in w for w in facts["warnings"])


def test_unreadable_sysfs_file_is_a_warning(discover_fixture, monkeypatch) -> None:
    import builtins

    real_open = builtins.open

    def guarded_open(path, *args, **kwargs):
        if str(path).endswith("mem_info_gtt_total"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    facts = discover_fixture("strix-halo-xdna")
    assert any("mem_info_gtt_total" in w and "Permission denied" in w for w in facts["warnings"])
    assert facts["gpus"][0]["gfx"] == "gfx1151"


def test_env_var_override_selects_fixture(doubles_path, monkeypatch, tmp_path) -> None:
    """The nvidia-smi double also serves captures picked by PMOVES_FAKE_HARDWARE_DIR."""
    from ansible_collections.pmoves.fleet.plugins.module_utils.hardware import discover
    from hw_testlib import HW_FIXTURES

    monkeypatch.setenv("PMOVES_FAKE_HARDWARE_DIR", str(HW_FIXTURES / "rtx-pro-4000" / ".fixture"))
    facts = discover(str(HW_FIXTURES / "cpu-vps"), use_nvml=False)
    assert [g["name"] for g in facts["gpus"]] == ["NVIDIA RTX PRO 4000 Blackwell"]
