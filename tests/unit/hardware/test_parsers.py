"""Pure parsers over captured tool output."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import hardware as hw
from hw_testlib import HW_FIXTURES


def fixture_text(name: str, rel: str) -> str:
    return (HW_FIXTURES / name / rel).read_text()


def test_query_csv_two_gpus() -> None:
    rows = hw.parse_nvidia_smi_query(fixture_text("rtx5090-3090ti-workstation", ".fixture/nvidia-smi/query.csv"))
    assert [r["name"] for r in rows] == ["NVIDIA GeForce RTX 5090", "NVIDIA GeForce RTX 3090 Ti"]
    assert rows[0]["memory_total_mb"] == 32607
    assert rows[1]["pci_bus_id"] == "00000000:08:00.0"
    assert rows[1]["compute_capability"] == "8.6"
    assert rows[0]["driver_version"] == "580.82.09"


@pytest.mark.parametrize("na", ["[N/A]", "[Not Supported]", "N/A"])
def test_query_csv_unified_memory_values_are_none(na: str) -> None:
    rows = hw.parse_nvidia_smi_query(f"0, GPU-b10c, NVIDIA GB10, 0000000F:01:00.0, {na}, {na}, 580.95.05, 12.1\n")
    assert rows[0]["memory_total_mb"] is None
    assert rows[0]["memory_free_mb"] is None
    assert rows[0]["compute_capability"] == "12.1"


@pytest.mark.parametrize(
    ("fixture", "driver", "cuda"),
    [
        ("rtx5090-3090ti-workstation", "580.82.09", "13.0"),
        ("rtx4090-laptop", "575.64.03", "12.9"),
        ("jetson-agx-orin-r36.4.4", "540.4.0", "12.6"),
        ("jetson-agx-thor-r38.2", "580.00", "13.0"),
    ],
)
def test_header_versions(fixture: str, driver: str, cuda: str) -> None:
    versions = hw.parse_nvidia_smi_header(fixture_text(fixture, ".fixture/nvidia-smi/nvidia-smi.txt"))
    assert versions["driver_version"] == driver
    assert versions["cuda_driver_version"] == cuda


def test_header_without_cuda_version() -> None:
    header = "| NVIDIA-SMI 575.64.03              Driver Version: 575.64.03      CUDA Version: N/A      |"
    assert hw.parse_nvidia_smi_header(header)["cuda_driver_version"] is None


@pytest.mark.parametrize(
    ("text", "l4t"),
    [
        ("# R36 (release), REVISION: 4.4, GCID: 41062509, BOARD: generic, EABI: aarch64, DATE: Mon Jun 16", "36.4.4"),
        ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22", "38.2.0"),
        ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19", "32.7.1"),
        ("# R36 (release), REVISION: 5.0, GCID: 42000000, BOARD: generic, EABI: aarch64, DATE: Tue Jan 13", "36.5.0"),
        ("garbage", None),
    ],
)
def test_nv_tegra_release(text: str, l4t: str | None) -> None:
    assert hw.parse_nv_tegra_release(text) == l4t


def test_dpkg_status_fallback_ignores_removed_packages() -> None:
    status = (
        "Package: nvidia-l4t-core\nStatus: deinstall ok config-files\nVersion: 35.4.1-20230801124926\n\n"
        + fixture_text("jetson-orin-nx-r35.6-dpkg", "var/lib/dpkg/status")
    )
    assert hw.parse_dpkg_l4t_core(status) == "35.6.0"


def test_cpuinfo_arm_without_model_name_maps_cpu_part() -> None:
    info = hw.parse_cpuinfo(fixture_text("pi5", "proc/cpuinfo"))
    assert info == {"model": "ARM Cortex-A76", "cores": 4, "arch": "aarch64", "board": "Raspberry Pi 5 Model B Rev 1.0"}


def test_cpuinfo_x86() -> None:
    info = hw.parse_cpuinfo(fixture_text("rtx5090-3090ti-workstation", "proc/cpuinfo"))
    assert info["model"] == "12th Gen Intel(R) Core(TM) i9-12900K"
    assert info["cores"] == 24
    assert info["arch"] == "x86_64"


def test_meminfo() -> None:
    values = hw.parse_meminfo(fixture_text("cpu-vps", "proc/meminfo"))
    assert values["MemTotal"] == 8131676
    assert values["Active(anon)"] > 0


def test_nvpmodel_and_device_tree_strings() -> None:
    assert hw.parse_nvpmodel("NVPM WARN: fan mode is not set!\nNV Power Mode: MAXN\n0\n") == "MAXN"
    assert hw.parse_nvpmodel("NV Power Mode: 25W\n3\n") == "25W"
    assert hw.parse_dt_strings("nvidia,p3701-0005\x00nvidia,tegra234\x00") == ["nvidia,p3701-0005", "nvidia,tegra234"]


def test_cuda_toolkit_versions() -> None:
    assert hw.parse_cuda_version_json('{"cuda": {"name": "CUDA SDK", "version": "12.8.1"}}') == "12.8.1"
    assert hw.parse_cuda_version_txt("CUDA Version 10.2.300\n") == "10.2.300"
    nvcc = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.8, V12.8.93\nBuild cuda_12.8.r12.8/compiler.35583870_0\n"
    assert hw.parse_nvcc_version(nvcc) == "12.8.93"


def test_system_profiler_apple_gpu() -> None:
    gpus = hw.parse_system_profiler_displays(
        fixture_text("mac-mini-m4-pro", ".fixture/system_profiler/SPDisplaysDataType.json")
    )
    assert gpus == [{"name": "Apple M4 Pro", "gpu_cores": 16, "metal": "metal3"}]


@pytest.mark.parametrize(
    ("ram", "usable"),
    [(65536, 57344), (16384, 14336), (8192, 6144)],
)
def test_unified_memory_share(ram: int, usable: int) -> None:
    assert hw.unified_usable_mb(ram) == usable


def test_apple_and_apu_memory_policy() -> None:
    assert hw.apple_usable_mb(24576) == 16384  # 2/3 up to 36 GiB
    assert hw.apple_usable_mb(131072) == 98304  # 3/4 above
    # Strix Halo: 512 MiB carve-out, 110 GiB GTT -> GTT wins; bounded by RAM + carve-out
    assert hw.amd_apu_usable_mb(512, 112640, 128460) == 112640
    assert hw.amd_apu_usable_mb(98304, 16384, 31000) == 98304  # BIOS carve-out of 96 GiB
    assert hw.amd_apu_usable_mb(512, 200000, 64000) == 64512  # GTT larger than memory: bounded
