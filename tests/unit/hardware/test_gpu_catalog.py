"""Static tables: compute capability -> sm/family, GFD sanitising, L4T -> JetPack, NPU and AMD ids."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import gpu_catalog as cat


@pytest.mark.parametrize(
    ("cc", "sm", "family"),
    [
        ("6.1", "sm_61", "pascal"),
        ("7.0", "sm_70", "volta"),
        ("7.5", "sm_75", "turing"),
        ("8.0", "sm_80", "ampere"),
        ("8.6", "sm_86", "ampere"),
        ("8.7", "sm_87", "ampere"),  # Jetson Orin
        ("8.9", "sm_89", "ada-lovelace"),
        ("9.0", "sm_90", "hopper"),
        ("10.0", "sm_100", "blackwell"),  # B200
        ("10.3", "sm_103", "blackwell"),  # B300
        ("11.0", "sm_110", "blackwell"),  # Jetson Thor (CUDA 13 numbering)
        ("12.0", "sm_120", "blackwell"),  # RTX 50 / RTX PRO Blackwell
        ("12.1", "sm_121", "blackwell"),  # GB10
        ("13.0", "sm_130", "rubin"),
        ("4.0", "sm_40", "undefined"),
    ],
)
def test_compute_capability_tables(cc: str, sm: str, family: str) -> None:
    parsed = cat.parse_cc(cc)
    assert cat.sm_for_cc(parsed) == sm
    assert cat.family_for_cc(parsed) == family


@pytest.mark.parametrize("value", ["[N/A]", "", None, "N/A", "[Not Supported]"])
def test_unparseable_compute_capability_is_none(value: str | None) -> None:
    assert cat.parse_cc(value) is None
    assert cat.sm_for_cc(cat.parse_cc(value)) is None


def test_torch_arch_list_sorted_numerically_and_deduplicated() -> None:
    ccs = [(12, 0), (8, 6), (8, 6), (8, 9), (8, 7), (9, 0)]
    assert cat.torch_cuda_arch_list(ccs) == "8.6;8.7;8.9;9.0;12.0"  # seed 000's list
    assert cat.torch_cuda_arch_list([]) is None


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        # GPU Feature Discovery's own sanitise() test cases (k8s-device-plugin internal/lm/resource_test.go)
        ("a space separated string", "a-space-separated-string"),
        ("some(thing)else", "somethingelse"),
        ("some ( thing )else", "some-thing-else"),
        ("NVIDIA-TITAN-X-(Pascal)", "NVIDIA-TITAN-X-Pascal"),
        (" input  with multiple   spaces   ", "input-with-multiple-spaces"),
        ("some [ / thing / ]else", "some-thing-else"),
        ("some-thing.else_new", "some-thing.else_new"),
        # fleet products
        ("NVIDIA GeForce RTX 5090", "NVIDIA-GeForce-RTX-5090"),
        ("NVIDIA RTX PRO 4000 Blackwell", "NVIDIA-RTX-PRO-4000-Blackwell"),
        ("Orin (nvgpu)", "Orin-nvgpu"),
    ],
)
def test_gfd_sanitise_matches_gpu_feature_discovery(raw: str, label: str) -> None:
    assert cat.gfd_sanitise(raw) == label


@pytest.mark.parametrize(
    ("l4t", "jetpack"),
    [
        ("32.7.1", "4.6.1"),
        ("32.7.6", "4.6.6"),
        ("35.4.1", "5.1.2"),
        ("35.6.0", "5.1.4"),
        ("36.3", "6.0"),
        ("36.4.3", "6.2"),
        ("36.4.4", "6.2.1"),
        ("36.5", "6.2.2"),
        ("38.2", "7.0"),
        ("38.2.1", "7.0"),
        ("38.4.0", "7.1"),
    ],
)
def test_l4t_to_jetpack(l4t: str, jetpack: str) -> None:
    assert cat.jetpack_for_l4t(l4t) == jetpack


def test_unknown_l4t_has_no_jetpack_but_a_major() -> None:
    assert cat.jetpack_for_l4t("36.9.9") is None
    assert cat.jetpack_major_for_l4t("36.9.9") == 6
    assert cat.jetpack_major_for_l4t("38.9") == 7
    assert cat.jetpack_major_for_l4t("35.1") == 5


@pytest.mark.parametrize(
    ("compatible", "soc"),
    [
        (["nvidia,p3737-0000+p3701-0005", "nvidia,p3701-0005", "nvidia,tegra234"], "tegra234"),
        (["nvidia,p4071-0000+p3834-0008", "nvidia,p3834-0008", "nvidia,tegra264"], "tegra264"),
        (["raspberrypi,5-model-b", "brcm,bcm2712"], None),
    ],
)
def test_soc_from_device_tree(compatible: list[str], soc: str | None) -> None:
    assert cat.soc_from_compatible(compatible) == soc


def test_jetson_socs_compute_capability() -> None:
    assert cat.TEGRA_SOCS["tegra234"][1] == (8, 7)
    assert cat.TEGRA_SOCS["tegra264"][1] == (11, 0)


@pytest.mark.parametrize(
    ("vendor", "device", "revision", "generation", "platform"),
    [
        ("amd", "0x1502", "0x00", "XDNA1", "Phoenix/Hawk Point"),
        ("amd", "0x17f0", "0x10", "XDNA2", "Strix Point"),
        ("amd", "0x17f0", "0x11", "XDNA2", "Strix Halo"),
        ("amd", "0x17f0", "0x20", "XDNA2", "Krackan Point"),
        ("amd", "0x17F0", "0x99", "XDNA2", "Strix/Krackan"),
        ("intel", "0x7d1d", "0x04", "NPU3720", "Meteor Lake"),
        ("intel", "0xad1d", None, "NPU3720", "Arrow Lake"),
        ("intel", "0x643e", None, "NPU4000", "Lunar Lake"),
        ("intel", "0xb03e", None, "NPU5000", "Panther Lake"),
        ("intel", "0x1234", None, None, None),
    ],
)
def test_npu_generations(
    vendor: str, device: str, revision: str | None, generation: str | None, platform: str | None
) -> None:
    assert cat.npu_generation(vendor, device, revision) == (generation, platform)


@pytest.mark.parametrize(
    ("value", "gfx"),
    [
        (110501, "gfx1151"),
        (110000, "gfx1100"),
        (90010, "gfx90a"),
        (90402, "gfx942"),
        (100300, "gfx1030"),
        (120001, "gfx1201"),
        (0, None),
    ],
)
def test_gfx_target_version(value: int, gfx: str | None) -> None:
    assert cat.gfx_from_target_version(value) == gfx
