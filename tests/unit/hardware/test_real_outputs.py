"""Discovery against real tool output and upstream tables, asserting what the real tools report.

- nvidia-smi of every driver generation: tests/fixtures/hardware/nvidia-*/ (PROVENANCE.md in each: real
  captures of the nvidia_gpu_exporter corpus for 590 / 595 / 610, reconstructions for 470 / 535 / 550);
- jetson-stats' L4T -> JetPack, SoC -> CUDA arch and module tables (rbonghi/jetson_stats, commit 09d635b0);
- GPU Feature Discovery's own label test cases (NVIDIA/k8s-device-plugin internal/lm, commit 1b826acc).
"""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import gpu_catalog as cat
from ansible_collections.pmoves.fleet.plugins.module_utils import hardware as hw
from hw_testlib import HW_FIXTURES


def smi(fixture: str, name: str) -> str:
    return (HW_FIXTURES / fixture / ".fixture" / "nvidia-smi" / name).read_text()


# fixture: (driver, CUDA version the driver reports, GPU, memory MiB, cc, Ollama 0.30.10 library, real capture?)
GENERATIONS = {
    "nvidia-470-tesla-t4": ("470.182.03", "11.4", "Tesla T4", 15109, "7.5", "vulkan", False),
    "nvidia-535-tesla-t4": ("535.183.01", "12.2", "Tesla T4", 15360, "7.5", "vulkan", False),
    "nvidia-550-tesla-p40": ("550.54.15", "12.4", "Tesla P40", 24576, "6.1", "vulkan", False),
    "a5500-a400-workstation": ("570.172.08", "12.8", "NVIDIA RTX A5500", 24564, "8.6", "cuda_v12", False),
    "rtx5090-3090ti-workstation": ("580.82.09", "13.0", "NVIDIA GeForce RTX 5090", 32607, "12.0", "cuda_v13", False),
    "nvidia-590-h100": ("590.48.01", "13.1", "NVIDIA H100 80GB HBM3", 81559, "9.0", "cuda_v13", True),
    "nvidia-595-l40s": ("595.80", "13.2", "NVIDIA L40S", 46068, "8.9", "cuda_v13", True),
    "nvidia-595-rtx2080super": ("595.71.05", "13.2", "NVIDIA GeForce RTX 2080 SUPER", 8192, "7.5", "cuda_v13", True),
    "nvidia-610-rtx2080super": ("610.57.04", "13.3", "NVIDIA GeForce RTX 2080 SUPER", 8192, "7.5", "cuda_v13", True),
}  # fmt: skip


@pytest.mark.parametrize("fixture", sorted(GENERATIONS))
def test_header_of_every_driver_generation(fixture: str) -> None:
    driver, cuda, *_rest = GENERATIONS[fixture]
    versions = hw.parse_nvidia_smi_header(smi(fixture, "nvidia-smi.txt"))
    assert (versions["driver_version"], versions["cuda_driver_version"]) == (driver, cuda)


@pytest.mark.parametrize("fixture", sorted(f for f in GENERATIONS if (HW_FIXTURES / f / ".fixture/nvidia-smi/version.txt").exists()))
def test_version_option_of_every_driver_generation(fixture: str) -> None:
    driver, cuda, *_rest = GENERATIONS[fixture]
    parsed = hw.parse_nvidia_smi_version(smi(fixture, "version.txt"))
    assert (parsed["driver_version"], parsed["cuda_driver_version"]) == (driver, cuda)


@pytest.mark.parametrize("fixture", sorted(f for f in GENERATIONS if (HW_FIXTURES / f / ".fixture/nvidia-smi/q.txt").exists()))
def test_q_of_every_driver_generation(fixture: str) -> None:
    driver, cuda, name, *_rest = GENERATIONS[fixture]
    parsed = hw.parse_nvidia_smi_q(smi(fixture, "q.txt"))
    assert (parsed["driver_version"], parsed["cuda_driver_version"]) == (driver, cuda)
    assert parsed["gpus"][0]["name"] == name


@pytest.mark.parametrize("fixture", sorted(GENERATIONS))
def test_discovery_of_every_driver_generation(fixture: str, discover_fixture) -> None:
    driver, cuda, name, memory, cc, library, _real = GENERATIONS[fixture]
    facts = discover_fixture(fixture)
    assert facts["nvidia"] == {"driver_version": driver, "cuda_driver_version": cuda, "source": "nvidia-smi"}
    gpu = facts["gpus"][0]
    assert (gpu["name"], gpu["memory_total_mb"], gpu["compute_capability"]) == (name, memory, cc)
    assert facts["ollama_library"] == library
    assert facts["labels"]["nvidia.com/cuda.driver-version.full"] == driver
    assert facts["labels"]["nvidia.com/cuda.runtime-version.full"] == cuda
    assert not any("inferred" in w for w in facts["warnings"])  # the driver's own CUDA version, never a guess


def test_610_series_kmd_and_cuda_umd_versions(discover_fixture) -> None:
    """610.57.04 prints 'KMD Version' / 'CUDA UMD Version' and deprecates the old --version lines: 13.3, not a guessed 13.0."""
    version = hw.parse_nvidia_smi_version(smi("nvidia-610-rtx2080super", "version.txt"))
    assert version == {"smi_version": "610.57.04", "driver_version": "610.57.04", "cuda_driver_version": "13.3"}
    labels = discover_fixture("nvidia-610-rtx2080super")["labels"]
    assert (labels["nvidia.com/cuda.runtime-version.major"], labels["nvidia.com/cuda.runtime-version.minor"]) == ("13", "3")
    assert (labels["nvidia.com/cuda.runtime.major"], labels["nvidia.com/cuda.runtime.minor"]) == ("13", "3")
    assert labels["nvidia.com/cuda.driver-version.revision"] == "04"


def test_470_rejects_compute_cap_and_the_gpu_stays(discover_fixture) -> None:
    facts = discover_fixture("nvidia-470-tesla-t4")
    assert [g["name"] for g in facts["gpus"]] == ["Tesla T4"]
    assert any('rejects the query field "compute_cap"' in w and "exit 2" in w for w in facts["warnings"])
    assert any("7.5 derived from its product name" in w for w in facts["warnings"])
    decision = facts["ollama_gpus"][0]
    assert decision["library"] == "vulkan" and "531" in decision["reason"]


def test_p40_on_550_and_t4_on_535_are_not_cuda(discover_fixture) -> None:
    p40 = discover_fixture("nvidia-550-tesla-p40")["ollama_gpus"][0]
    assert p40["fix"] == "install NVIDIA driver 570 or newer"
    t4 = discover_fixture("nvidia-535-tesla-t4")["ollama_gpus"][0]
    assert t4["fix"] == "install NVIDIA driver 550 or newer" and "ollama#16449" in t4["reason"]


def test_query_without_compute_cap_derives_from_q_architecture(doubles_path, tmp_path, monkeypatch) -> None:
    """A product the name table lacks (L40S) on a driver without compute_cap: -q's 'Ada Lovelace' gives 8.9."""
    import shutil

    root = tmp_path / "l40s"
    shutil.copytree(HW_FIXTURES / "nvidia-595-l40s", root)
    fields = root / ".fixture" / "nvidia-smi" / "fields.txt"
    fields.write_text("\n".join(f for f in fields.read_text().split() if f != "compute_cap") + "\n")
    facts = hw.discover(str(root), use_nvml=False)
    assert facts["gpus"][0]["compute_capability"] == "8.9"
    assert any('from its architecture "Ada Lovelace" (nvidia-smi -q)' in w for w in facts["warnings"])


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("[N/A]", None), ("[Not Supported]", None), ("[Requested functionality has been deprecated]", None),
     ("[Unknown Error]", None), ("[GPU requires reset]", None), ("N/A", None), ("8192 MiB", 8192), ("38 %", 38),
     ("24576", 24576)],
)  # fmt: skip
def test_no_value_spellings_and_units(value: str, parsed: int | None) -> None:
    assert hw._int_or_none(value) == parsed


def test_query_with_header_and_units_parses() -> None:
    text = "index, name, memory.total [MiB], compute_cap\n0, NVIDIA GB10, [N/A], 12.1\n"
    rows = hw.parse_nvidia_smi_query(text, ("index", "name", "memory.total", "compute_cap"))
    assert rows[0]["memory_total_mb"] is None and rows[0]["compute_capability"] == "12.1"


# --------------------------------------------------------------------------- jetson-stats


@pytest.mark.parametrize(("l4t", "jetpack"), sorted(cat.JETSON_STATS_L4T_TO_JETPACK.items()))
def test_every_jetson_stats_row(l4t: str, jetpack: str) -> None:
    """jtop reports NVIDIA_JETPACK[l4t] for the release in /etc/nv_tegra_release; so do we."""
    major, _sep, revision = l4t.partition(".")
    line = f"# R{major} (release), REVISION: {revision}, GCID: 1, BOARD: generic, EABI: aarch64, DATE: x"
    parsed = hw.parse_nv_tegra_release(line)
    assert parsed == cat.normalise_l4t(l4t)
    assert cat.jetpack_for_l4t(parsed) == jetpack


@pytest.mark.parametrize(("soc", "arch"), sorted(cat.JETSON_STATS_CUDA_TABLE.items()))
def test_every_jetson_stats_cuda_arch(soc: str, arch: str) -> None:
    assert cat.jetson_cuda_arch(soc) == arch
    if soc in cat.TEGRA_SOCS:
        assert cat.cc_string(cat.TEGRA_SOCS[soc][1]) == arch


@pytest.mark.parametrize(("part", "module"), sorted(cat.JETSON_MODULES.items()))
def test_every_jetson_stats_module(part: str, module: str) -> None:
    """jtop maps 'p' + nvidia,boardids ('3701:0005' -> 'p3701-0005'); the TK1's 'r375-0001' only comes from its
    EEPROM, which neither jtop's boardids path nor we read."""
    boardids = part[1:].replace("-", ":", 1)
    expected = (part, module) if part.startswith("p") else ("p" + part[1:], None)
    assert cat.module_from_boardids(boardids) == expected


def jetson_root(tmp_path, release: str, model: str, compatible: list[str], boardids: str | None = None):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text(release)
    dt = tmp_path / "proc" / "device-tree"
    dt.mkdir(parents=True)
    (dt / "model").write_text(model + "\x00")
    (dt / "compatible").write_text("".join(c + "\x00" for c in compatible))
    if boardids:
        (dt / "nvidia,boardids").write_text(boardids + "\x00")
    (tmp_path / "proc" / "meminfo").write_text("MemTotal:        3964656 kB\nMemAvailable:    2000000 kB\n")
    return str(tmp_path)


@pytest.mark.parametrize(
    ("release", "model", "compatible", "boardids", "expected"),
    [
        ("# R32 (release), REVISION: 2.1, GCID: 16294929, BOARD: t210ref, EABI: aarch64, DATE: Tue Aug 13",
         "NVIDIA Jetson Nano Developer Kit", ["nvidia,p3450-0000", "nvidia,jetson-nano", "nvidia,tegra210"], None,
         ("32.2.1", "4.2.2", "tegra210", "5.3", "cpu")),
        ("# R35 (release), REVISION: 3.0, GCID: 1, BOARD: t186ref, EABI: aarch64, DATE: x",
         "Jetson-AGX", ["nvidia,p2972-0000", "nvidia,galen", "nvidia,tegra194"], None,
         ("35.3.0", "5.1.1 PRE", "tegra194", "7.2", "jetpack5")),
        ("# R39 (release), REVISION: 0.0, GCID: 1, BOARD: generic, EABI: aarch64, DATE: x",
         "NVIDIA Jetson AGX Thor Developer Kit", ["nvidia,p3834-0008", "nvidia,tegra264"], "3834:0008",
         ("39.0.0", "7.2 EA", "tegra264", "11.0", "cuda_v13")),
        ("# R31 (release), REVISION: 1.0, GCID: 1, BOARD: t186ref, EABI: aarch64, DATE: x",
         "Jetson-AGX", ["nvidia,p2972-0000", "nvidia,tegra194"], None, ("31.1.0", "4.1.1", "tegra194", "7.2", "cpu")),
        ("# R21 (release), REVISION: 5.0, GCID: 1, BOARD: ardbeg, EABI: hard, DATE: x",
         "NVIDIA Tegra124 Jetson TK1", ["nvidia,jetson-tk1", "nvidia,tegra124"], None,
         ("21.5.0", "2.3.1 | 2.3", "tegra124", "3.2", "cpu")),
        ("# R32 (release), REVISION: 7.1, GCID: 1, BOARD: t186ref, EABI: aarch64, DATE: x",
         "NVIDIA Clara AGX Developer Kit", ["nvidia,p3904-0000"], "3904:0000",
         ("32.7.1", "4.6.1", "tegra194", "7.2", "cpu")),
    ],
)  # fmt: skip
def test_jetson_boards_back_to_tk1(tmp_path, doubles_path, release, model, compatible, boardids, expected) -> None:
    facts = hw.discover(jetson_root(tmp_path, release, model, compatible, boardids), use_nvml=False)
    jetson = facts["jetson"]
    got = (jetson["l4t"], jetson["jetpack"], jetson["soc"], facts["gpus"][0]["compute_capability"], facts["ollama_library"])
    assert got == expected
    assert facts["node_class"] == "edge"
    if boardids:
        assert jetson["module"] == cat.JETSON_MODULES["p" + boardids.replace(":", "-")]


# --------------------------------------------------------------------------- GPU Feature Discovery


@pytest.mark.parametrize(
    ("raw", "label"),
    [  # TestSanitise, internal/lm/resource_test.go
        ("a space separated string", "a-space-separated-string"),
        ("some(thing)else", "somethingelse"),
        ("some ( thing )else", "some-thing-else"),
        ("NVIDIA-TITAN-X-(Pascal)", "NVIDIA-TITAN-X-Pascal"),
        (" input  with multiple   spaces   ", "input-with-multiple-spaces"),
        ("some [ / thing / ]else", "some-thing-else"),
        ("some / thing /else", "some-thing-else"),
        ("some-thing.else_new", "some-thing.else_new"),
    ],
)
def test_gfd_sanitise_cases(raw: str, label: str) -> None:
    assert cat.gfd_sanitise(raw) == label


def nv(name: str, cc: str | None, mb: int, index: int = 0, unified: bool = False) -> dict:
    return {"index": index, "vendor": "nvidia", "name": name, "compute_capability": cc, "memory_total_mb": mb,
            "unified_memory": unified}  # fmt: skip


def test_gfd_resource_labeler_no_sharing() -> None:
    """TestGPUResourceLabeler 'no sharing' (MOCKMODEL, cc 8.0, 300 MiB, count 1) minus the sharing labels
    (gpu.replicas, gpu.sharing-strategy), which depend on GFD's own config and we do not write."""
    labels = hw.gfd_labels([nv("MOCKMODEL", "8.0", 300)], None)
    assert labels == {
        "nvidia.com/gpu.count": "1",
        "nvidia.com/gpu.memory": "300",
        "nvidia.com/gpu.product": "MOCKMODEL",
        "nvidia.com/gpu.family": "ampere",
        "nvidia.com/gpu.compute.major": "8",
        "nvidia.com/gpu.compute.minor": "0",
    }


@pytest.mark.parametrize(
    ("cc", "family"),
    [((1, 3), "tesla"), ((2, 1), "fermi"), ((3, 7), "kepler"), ((4, 0), "undefined"), ((5, 2), "maxwell"),
     ((6, 1), "pascal"), ((7, 0), "volta"), ((7, 2), "volta"), ((7, 5), "turing"), ((8, 7), "ampere"),
     ((8, 9), "ada-lovelace"), ((9, 0), "hopper"), ((10, 0), "blackwell"), ((11, 0), "undefined"),
     ((12, 1), "blackwell"), ((13, 0), "rubin"), ((14, 0), "undefined")],
)  # fmt: skip
def test_gfd_get_arch_family(cc: tuple[int, int], family: str) -> None:
    """getArchFamily: the label follows GFD, 11.x included ('undefined'); gpus[].family says blackwell for 11.x."""
    assert cat.gfd_family(cc) == family
    assert cat.family_for_cc(cc) == ("blackwell" if cc[0] == 11 else family)


def test_gfd_omits_memory_on_unified_memory() -> None:
    labels = hw.gfd_labels([nv("NVIDIA GB10", "12.1", 107258, unified=True)], None)
    assert "nvidia.com/gpu.memory" not in labels
    assert labels["nvidia.com/gpu.family"] == "blackwell"


def test_gfd_mixed_models_one_product_and_its_count() -> None:
    """GFD labels one model (Go map order: random); ours is the model with the most memory, counted."""
    gpus = [nv("NVIDIA RTX A400", "8.6", 4094, 0), nv("NVIDIA RTX A5500", "8.6", 24564, 1),
            nv("NVIDIA RTX A5500", "8.6", 24564, 2)]  # fmt: skip
    labels = hw.gfd_labels(gpus, None)
    assert (labels["nvidia.com/gpu.product"], labels["nvidia.com/gpu.count"]) == ("NVIDIA-RTX-A5500", "2")
    assert labels["nvidia.com/gpu.memory"] == "24564"


@pytest.mark.parametrize(
    ("driver", "major", "minor", "rev"),
    [("550.54.15", "550", "54", "15"), ("595.80", "595", "80", ""), ("610.57.04", "610", "57", "04")],
)
def test_gfd_version_labels(driver: str, major: str, minor: str, rev: str) -> None:
    """newVersionLabeler: X.Y[.Z] split, revision '' for two parts."""
    labels = hw.gfd_labels([nv("X", "8.0", 1)], {"driver_version": driver, "cuda_driver_version": "13.3"})
    assert (labels["nvidia.com/cuda.driver-version.major"], labels["nvidia.com/cuda.driver-version.minor"],
            labels["nvidia.com/cuda.driver-version.revision"]) == (major, minor, rev)  # fmt: skip
    assert labels["nvidia.com/cuda.driver.rev"] == rev
    assert labels["nvidia.com/cuda.runtime-version.full"] == "13.3"


# --------------------------------------------------------------------------- amdgpu.ids


@pytest.mark.parametrize(
    ("device", "revision", "name"),
    [("0x1586", "0xc1", "Radeon 8060S Graphics"), ("0x1586", "0xc2", "Radeon 8050S Graphics"),
     ("0x7448", "0x00", "AMD Radeon Pro W7900"), ("0x164e", "0xd8", "AMD Radeon 610M"),
     ("0x15bf", "0xc5", "AMD Radeon 740M Graphics"), ("0x744c", "0xcc", "AMD Radeon RX 7900 XT"),
     ("0x7480", "0xcf", "AMD Radeon RX 7600"), ("0x7480", "0xc0", "AMD Radeon RX 7600 XT"),
     ("0x1586", None, "Radeon 8060S Graphics")],
)  # fmt: skip
def test_amd_names_follow_amdgpu_ids(device: str, revision: str | None, name: str) -> None:
    assert cat.amd_marketing_name(device, revision) == name
