"""The lab for any inventory (contract 4b): hardware synthesised from `pmoves_hardware` is what
discovery then reports, and the overlay changes only what contract 4b allows."""

from __future__ import annotations

import importlib.util
import json
import stat
from pathlib import Path

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.module_utils import hardware

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "hardware"
DOUBLES = REPO / "tests" / "doubles" / "bin"
SPEC = importlib.util.spec_from_file_location("lab_fleet", REPO / "scripts" / "lab_fleet.py")
lab_fleet = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(lab_fleet)

SEED_FLEETS = ("pmoves", "gpu-mesh", "workstation", "forge", "homelab")


# Hosts whose declared hardware the lab cannot synthesise yet (strict: a host that starts to pass
# must leave this table). Every seed host is synthesised now: NVIDIA, Jetson, AMD APUs (amdgpu sysfs
# and the KFD topology), NPUs (/sys/class/accel) and the Mac (sysctl / system_profiler answers).
NOT_SYNTHESISED: dict[str, str] = {}


def declared_hosts():
    for fleet in SEED_FLEETS:
        for path in sorted((REPO / "inventories" / fleet / "host_vars").glob("*.yml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            hw = data.get("pmoves_hardware")
            if isinstance(hw, dict):
                marks = []
                if path.stem in NOT_SYNTHESISED:
                    marks = [pytest.mark.xfail(reason=NOT_SYNTHESISED[path.stem], strict=True)]
                yield pytest.param(hw, id=f"{fleet}/{path.stem}", marks=marks)


def _gpu_view(gpus, memory_mb):
    # A unified-memory GPU (Jetson, GB10) reports the share of RAM discovery leaves it, as a real
    # node would; a seed that declares another figure is planned with the discovered one.
    return [(g.get("name"), hardware.unified_usable_mb(memory_mb) if g.get("unified_memory") else g.get("memory_total_mb"),
             g.get("compute_capability")) for g in gpus]


@pytest.mark.parametrize("declared", list(declared_hosts()))
def test_synthesised_sysroot_discovers_as_declared(declared, tmp_path, monkeypatch):
    """What planning reads from the lab node (the discovered fact) equals the inventory's declaration."""
    monkeypatch.setenv("PATH", f"{DOUBLES}:/usr/bin:/bin")
    monkeypatch.delenv("PMOVES_FAKE_HARDWARE_DIR", raising=False)
    root = tmp_path / "root"
    lab_fleet.synthesise_sysroot(declared, FIXTURES, root)
    found = hardware.discover(str(root), use_nvml=False)
    assert found["node_class"] == declared["node_class"]
    assert found["accelerator"] == declared["accelerator"]
    assert found["memory_mb"] == declared["memory_mb"]
    assert found["cpu"]["cores"] == declared["cpu"]["cores"]
    assert found["arch"] == declared["arch"]
    assert _gpu_view(found["gpus"], found["memory_mb"]) == _gpu_view(declared["gpus"], declared["memory_mb"])
    if declared.get("jetson"):
        assert found["jetson"]["l4t"] == declared["jetson"]["l4t"]
    if declared.get("nvidia"):
        assert found["nvidia"]["driver_version"] == declared["nvidia"]["driver_version"]
    for gpu, want in zip(found["gpus"], declared["gpus"], strict=True):
        if want.get("vendor") in ("amd", "apple"):  # the pool discovery computes from VRAM/GTT or RAM
            assert gpu["memory_total_mb"] == want["memory_total_mb"]
        if want.get("gfx"):
            assert gpu["gfx"] == want["gfx"]
    # (a seed's NPU generation is its own word, e.g. "meteorlake"; discovery names it from the PCI id table)
    assert [(n["vendor"], n["driver"], n["device_id"]) for n in found["npus"]] == [
        (n["vendor"], n["driver"], n["device_id"]) for n in declared.get("npus") or []]
    if declared["accelerator"] in ("amd", "apple"):  # (forge-dev-p40 declares cuda_v12 on driver 535: Vulkan)
        assert found["ollama_library"] == declared["ollama_library"]
    probe_failures = ("cannot read", "cannot list", "not readable", "KFD", "sysctl", "system_profiler")
    assert not [w for w in found["warnings"] if any(text in w for text in probe_failures)], found["warnings"]


def _inventory():
    return {
        "_meta": {"hostvars": {"a-gpu": {"pmoves_hardware": {}}, "b-vps": {"pmoves_mesh_hub": "b-vps", "pmoves_monitoring_server": "b-vps"}}},
        "all": {"children": ["gpu_nodes", "cpu_nodes", "gateway"]},
        "gpu_nodes": {"hosts": ["a-gpu"]},
        "cpu_nodes": {"hosts": ["b-vps"]},
        "gateway": {"hosts": ["b-vps"]},
    }


def test_hosts_get_containers_ports_and_roles():
    records = {r["host"]: r for r in lab_fleet.lab_hosts(_inventory())}
    assert records["a-gpu"]["container"] == "pmoves-lab-a-gpu"
    assert records["a-gpu"]["class"] == "gpu"
    assert records["b-vps"]["gateway"] and records["b-vps"]["nats_hub"]
    assert not records["a-gpu"]["gateway"]
    assert len({r["ollama_port"] for r in records.values()}) == 2
    assert lab_fleet.container_name("lab-5090") == "pmoves-lab-5090"


def test_overlay_sets_only_contract_4b_keys_and_keeps_secrets_private(tmp_path):
    lab_fleet.write_overlay(_inventory(), tmp_path / "overlay", str(tmp_path))
    for path in (tmp_path / "overlay" / "host_vars").glob("*.yml"):
        keys = set(json.loads(path.read_text(encoding="utf-8")))
        assert keys <= lab_fleet.OVERLAY_KEYS
        assert not keys & {"pmoves_models", "pmoves_services", "pmoves_hardware", "pmoves_strategy"}
    secret = tmp_path / ".cache/lab/secrets/nats-passwords.json"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    first = json.loads(secret.read_text(encoding="utf-8"))
    assert set(first) == {"a-gpu", "b-vps"}
    lab_fleet.write_overlay(_inventory(), tmp_path / "overlay", str(tmp_path))
    assert json.loads(secret.read_text(encoding="utf-8")) == first  # generated once, kept


def test_lab_json_names_roles_and_nats():
    plan = {"nodes": {"a-gpu": {"class": "gpu", "models": ["m:1"], "services": ["x"]}}}
    data = lab_fleet.lab_json(_inventory(), plan, 14000, 14222, "inventories/x")
    assert data["roles"]["gateway"] == ["b-vps"]
    assert data["roles"]["nats_hub"] == ["b-vps"]
    assert data["roles"]["monitoring"] == ["b-vps"]
    assert data["nats_url"] == "nats://127.0.0.1:14222"
    assert data["nodes"]["a-gpu"]["models"] == ["m:1"]
    assert data["nodes"]["a-gpu"]["compose_dir"]


def test_lab_json_names_a_read_only_nats_observer_the_overlay_creates_on_the_hub(tmp_path):
    data = lab_fleet.lab_json(_inventory(), {}, 14000, 14222, "inventories/x")
    assert data["nats_observer"] == {"user": "lab-observer", "password_file": "artifacts/lab-nats-observer"}
    lab_fleet.write_overlay(_inventory(), tmp_path / "overlay", str(tmp_path))
    hub = json.loads((tmp_path / "overlay/host_vars/b-vps.yml").read_text(encoding="utf-8"))
    (client,) = hub["pmoves_mesh_nats_clients"]
    assert client["name"] == data["nats_observer"]["user"]
    assert client["publish"] == [] and client["subscribe"] == ["mesh.>"]
    assert f"{tmp_path}/artifacts/lab-nats-observer" in client["password"]  # read from the 0600 file, never inline


def test_lab_json_has_no_observer_when_the_fleet_runs_no_mesh():
    data = lab_fleet.lab_json(_inventory(), {}, 14000, 14222, "inventories/x", runs_mesh=False)
    assert "nats_observer" not in data and "nats_url" not in data


def test_the_overlay_refuses_an_inventory_with_its_own_nats_clients(tmp_path):
    inventory = _inventory()
    inventory["_meta"]["hostvars"]["b-vps"]["pmoves_mesh_nats_clients"] = [{"name": "dispatcher"}]
    with pytest.raises(ValueError, match="pmoves_mesh_nats_clients"):
        lab_fleet.write_overlay(inventory, tmp_path / "overlay", str(tmp_path))
    assert not (tmp_path / "overlay").exists()  # nothing written


def test_forge_nodes_get_their_checkpoint_dirs_and_a_hardware_url():
    inventory = _inventory()
    inventory["_meta"]["hostvars"]["a-gpu"].update(
        {"pmoves_forge_enabled": True, "pmoves_forge_engines": [{"model": "m", "checkpoint_dir": "/models/ckpt"}]})
    assert lab_fleet.forge_hosts(inventory) == {"a-gpu": ["/models/ckpt"]}
    data = lab_fleet.lab_json(inventory, {}, 14000, 14222, "inventories/x")
    assert data["nodes"]["a-gpu"]["hardware_url"] == "http://127.0.0.1:9106/v1/hardware"
    assert "hardware_url" not in data["nodes"]["b-vps"]


def test_standins_cover_every_seed_image_with_its_ports_and_health_paths():
    services = [
        {"name": "vllm", "image": "vllm/vllm-openai:v0.10.1", "port": 8000, "health": "/health"},
        {"name": "w", "image": "x:1", "image_arm64": "nvcr.io/nvidia/l4t-jetpack:r{l4t}", "port": 9000,
         "container_port": 9001, "health": "http://127.0.0.1:9000/ready"},
        {"name": "bare"},
    ]
    hardware = [{"jetson": {"l4t": "36.4.4"}}, {"jetson": None}]
    found = lab_fleet.standins(services, hardware)
    assert found["vllm/vllm-openai:v0.10.1"] == {"ports": [8000], "paths": ["/health"]}
    assert found["nvcr.io/nvidia/l4t-jetpack:r36.4.4"]["ports"] == [9001]
    assert found["x:1"]["paths"] == ["/ready"]
    assert "python:3.11-slim-bookworm" in found  # a service without image runs its class base image


def test_inventories_lab_keeps_its_ports_and_its_model_less_gateway():
    records = {r["host"]: r for r in lab_fleet.lab_hosts({
        "_meta": {"hostvars": {"lab-5090": {"pmoves_lab_fixture": "x", "pmoves_lab_ollama_port": 11541},
                               "lab-vps-gateway": {"pmoves_lab_fixture": "cpu-vps", "pmoves_lab_publish_gateway": True}}},
        "gateway": {"hosts": ["lab-vps-gateway"]}})}
    assert records["lab-5090"]["ollama_port"] == 11541 and records["lab-5090"]["container"] == "pmoves-lab-5090"
    assert records["lab-vps-gateway"]["ollama_port"] is None and records["lab-vps-gateway"]["gateway"]


# --------------------------------------------------------------------------- AMD, NPU and Apple synthesis


def _discover(hw, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{DOUBLES}:/usr/bin:/bin")
    monkeypatch.delenv("PMOVES_FAKE_HARDWARE_DIR", raising=False)
    root = tmp_path / "root"
    lab_fleet.synthesise_sysroot(hw, FIXTURES, root)
    return root, hardware.discover(str(root), use_nvml=False)


def _amd_host(memory_mb, gpus, npus=()):
    return {"schema": 1, "arch": "x86_64", "memory_mb": memory_mb, "cpu": {"model": "AMD RYZEN AI MAX+ 395", "cores": 16},
            "accelerator": "amd", "gpus": [{"vendor": "amd", **gpu} for gpu in gpus], "npus": list(npus)}


@pytest.mark.parametrize(("memory_mb", "gpu", "vram_mb", "gtt_mb"), [
    # the captured layout: a 512 MiB carve-out, GTT raised to the declared pool
    (131072, {"name": "Radeon 8060S Graphics", "memory_total_mb": 98304, "gfx": "gfx1151", "unified_memory": True}, 512, 98304),
    (65536, {"name": "Radeon 8060S Graphics", "memory_total_mb": 49152, "gfx": "gfx1151", "unified_memory": True}, 512, 49152),
    (131072, {"name": "Radeon 8060S Graphics", "memory_total_mb": 115712, "gfx": "gfx1151", "unified_memory": True}, 512, 115712),
    # a BIOS carve-out larger than the RAM the OS keeps: VRAM is the pool, GTT the kernel default
    (32768, {"name": "Radeon 8060S Graphics", "memory_total_mb": 98304, "gfx": "gfx1151", "unified_memory": True}, 98304, 16384),
    # discovery's own vram_mb / gtt_mb win
    (98304, {"name": "Radeon 8060S Graphics", "memory_total_mb": 65536, "gfx": "gfx1151", "unified_memory": True,
             "vram_mb": 32768, "gtt_mb": 65536}, 32768, 65536),
    # a discrete card: VRAM is its memory, the card says so (mem_info_vram_vendor)
    (65536, {"name": "AMD Radeon RX 7900 XTX", "memory_total_mb": 24560, "gfx": "gfx1100", "unified_memory": False}, 24560, 32768),
], ids=["strix-128g-96g", "strix-64g-48g", "strix-128g-113g", "carveout-96g", "declared-split", "rx7900xtx"])
def test_amd_vram_gtt_split_gives_back_the_declared_pool(memory_mb, gpu, vram_mb, gtt_mb, tmp_path, monkeypatch):
    assert lab_fleet.amd_memory_split(gpu, memory_mb) == (vram_mb, gtt_mb)
    root, found = _discover(_amd_host(memory_mb, [gpu]), tmp_path, monkeypatch)
    card = root / "sys/class/drm/card1/device"
    assert int((card / "mem_info_vram_total").read_text()) == vram_mb * 2**20
    assert int((card / "mem_info_gtt_total").read_text()) == gtt_mb * 2**20
    (got,) = found["gpus"]
    assert (got["vram_mb"], got["gtt_mb"]) == (vram_mb, gtt_mb)
    assert got["memory_total_mb"] == gpu["memory_total_mb"]
    assert got["unified_memory"] is gpu["unified_memory"]
    assert (got["name"], got["gfx"]) == (gpu["name"], gpu["gfx"])
    assert found["node_class"] == ("apu" if gpu["unified_memory"] else "gpu") and found["accelerator"] == "amd"


@pytest.mark.parametrize(("gfx", "version"), [
    ("gfx1151", 110501), ("gfx1150", 110500), ("gfx1100", 110000), ("gfx1030", 100300), ("gfx90a", 90010),
    ("gfx942", 90402), ("gfx1201", 120001), (None, 0), ("sm_90", 0),
])
def test_gfx_target_version_is_the_inverse_of_discovery(gfx, version):
    assert lab_fleet.gfx_target_version(gfx) == version
    if version:
        assert hardware.cat.gfx_from_target_version(version) == gfx


@pytest.mark.parametrize("gfx", ["gfx1151", "gfx1150", "gfx1103", "gfx1030"])
def test_amd_gfx_target_reaches_discovery_through_the_kfd_topology(gfx, tmp_path, monkeypatch):
    gpu = {"name": "Radeon 8060S Graphics", "memory_total_mb": 65536, "gfx": gfx, "unified_memory": True,
           "pci_bus_id": "0000:c5:00.0"}
    root, found = _discover(_amd_host(131072, [gpu]), tmp_path, monkeypatch)
    props = dict(line.split(" ", 1) for line in (root / lab_fleet.KFD_NODES / "1/properties").read_text().splitlines())
    assert props["location_id"] == str(0xC5 << 8) and props["device_id"] == str(0x1586)
    assert found["gpus"][0]["gfx"] == gfx
    assert found["amd"] == {"gfx_targets": [gfx], "rocm_supported": gfx in hardware.cat.OLLAMA_ROCM_GFX, "kfd": True}


def test_synthesised_strix_halo_has_the_captured_layout(tmp_path, monkeypatch):
    """Same files, same formats as tests/fixtures/hardware/strix-halo-xdna: a declaration of the captured
    board gives back the capture's amdgpu and KFD files (memory figures aside)."""
    gpu = {"name": "Radeon 8060S Graphics", "memory_total_mb": 112640, "gfx": "gfx1151", "unified_memory": True,
           "pci_bus_id": "0000:c5:00.0"}
    npu = {"vendor": "amd", "driver": "amdxdna", "device_id": "0x17f0"}
    root, found = _discover(_amd_host(128460, [gpu], [npu]), tmp_path, monkeypatch)
    capture = FIXTURES / "strix-halo-xdna"
    for rel in ("sys/class/drm/card1/device", "sys/class/accel/accel0", "sys/class/accel/accel0/device",
                lab_fleet.KFD_NODES + "/0", lab_fleet.KFD_NODES + "/1"):
        assert sorted(p.name for p in (root / rel).iterdir()) == sorted(p.name for p in (capture / rel).iterdir()), rel
    for rel in ("device", "vendor", "revision", "class", "uevent", "mem_info_vram_total", "mem_info_gtt_total"):
        rel = "sys/class/drm/card1/device/" + rel
        assert (root / rel).read_text() == (capture / rel).read_text(), rel
    for rel in ("device", "vendor", "revision", "class", "uevent"):
        rel = "sys/class/accel/accel0/device/" + rel
        assert (root / rel).read_text() == (capture / rel).read_text(), rel
    rel = lab_fleet.KFD_NODES + "/1/properties"
    assert (root / rel).read_text() == (capture / rel).read_text()
    assert found["gpus"][0]["name"] == "Radeon 8060S Graphics" and found["npus"][0]["platform"] == "Strix Halo"


def test_two_amd_gpus_and_an_unknown_name(tmp_path, monkeypatch):
    gpus = [{"name": "AMD Radeon Pro W7900", "memory_total_mb": 49136, "gfx": "gfx1100", "unified_memory": False},
            {"name": "Lab Radeon", "memory_total_mb": 16368, "gfx": "gfx1030", "unified_memory": False}]
    root, found = _discover(_amd_host(131072, gpus), tmp_path, monkeypatch)
    assert [(g["name"], g["memory_total_mb"], g["gfx"], g["pci_bus_id"]) for g in found["gpus"]] == [
        ("AMD Radeon Pro W7900", 49136, "gfx1100", "0000:c5:00.0"), ("Lab Radeon", 16368, "gfx1030", "0000:c6:00.0")]
    assert not (root / "sys/class/drm/card1/device/product_name").exists()  # a name libdrm knows: PCI ids only
    assert (root / "sys/class/drm/card2/device/product_name").read_text() == "Lab Radeon\n"
    assert found["node_class"] == "gpu" and found["npus"] == []  # the base capture's NPU is not declared


def test_an_amd_gpu_without_gfx_target_is_missing_from_the_kfd_as_discovery_expects(tmp_path, monkeypatch):
    gpu = {"name": "Radeon 8060S Graphics", "memory_total_mb": 98304, "gfx": None, "unified_memory": True}
    _root, found = _discover(_amd_host(131072, [gpu]), tmp_path, monkeypatch)
    assert found["gpus"][0]["gfx"] is None
    assert any("KFD topology" in w for w in found["warnings"])


@pytest.mark.parametrize(("npu", "generation", "platform"), [
    ({"vendor": "amd", "driver": "amdxdna", "device_id": "0x17f0"}, "XDNA2", "Strix Halo"),
    ({"vendor": "amd", "driver": "amdxdna", "device_id": "0x17f0", "platform": "Strix Point"}, "XDNA2", "Strix Point"),
    ({"vendor": "amd", "driver": "amdxdna", "device_id": "0x1502"}, "XDNA1", "Phoenix/Hawk Point"),
    ({"vendor": "intel", "driver": "intel_vpu", "device_id": "0x643e"}, "NPU4000", "Lunar Lake"),
])
def test_npus_are_synthesised_in_the_captured_accel_layout(npu, generation, platform, tmp_path, monkeypatch):
    hw = {"schema": 1, "arch": "x86_64", "memory_mb": 32768, "cpu": {"model": "x", "cores": 8}, "accelerator": "none",
          "gpus": [], "npus": [npu]}
    _root, found = _discover(hw, tmp_path, monkeypatch)
    (got,) = found["npus"]
    assert (got["vendor"], got["driver"], got["device_id"], got["generation"], got["platform"]) == (
        npu["vendor"], npu["driver"], npu["device_id"], generation, platform)
    assert found["node_class"] == "npu"


@pytest.mark.parametrize(("memory_mb", "cores", "gpu_cores", "usable_mb"), [
    (24576, 12, 16, 16384), (16384, 10, 10, 10922), (65536, 14, 20, 49152), (131072, 16, 40, 98304),
])
def test_apple_silicon_answers_sysctl_and_system_profiler_as_a_mac(memory_mb, cores, gpu_cores, usable_mb, tmp_path, monkeypatch):
    """Discovery on macOS reads SystemVersion.plist, then asks sysctl and system_profiler; the synthesised
    answers are the captured Mac's lines with the declared figures."""
    hw = {"schema": 1, "arch": "aarch64", "memory_mb": memory_mb, "cpu": {"model": "Apple M4 Pro", "cores": cores},
          "accelerator": "apple", "gpus": [{"vendor": "apple", "name": "Apple M4 Pro", "gpu_cores": gpu_cores,
                                            "unified_memory": True}], "npus": []}
    root, found = _discover(hw, tmp_path, monkeypatch)
    assert found["platform"] == "Darwin" and (found["node_class"], found["accelerator"]) == ("apu", "apple")
    assert (found["memory_mb"], found["cpu"]["cores"], found["arch"]) == (memory_mb, cores, "aarch64")
    assert [(g["name"], g["gpu_cores"], g["memory_total_mb"]) for g in found["gpus"]] == [("Apple M4 Pro", gpu_cores, usable_mb)]
    sysctl = (root / ".fixture/sysctl/out.txt").read_text()
    assert f"hw.memsize: {memory_mb * 2**20}\n" in sysctl and "hw.machine: arm64\n" in sysctl
    # the captured P/E split (8 + 4) only where it adds up to the declared cores
    assert ("hw.perflevel0.physicalcpu: 8" in sysctl) is (cores == 12)
    assert not found["warnings"]


@pytest.mark.parametrize("tool", ["nvidia-smi", "nvpmodel", "system_profiler"])
def test_node_wrapper_points_a_double_at_the_sysroot(tool):
    text = lab_fleet.double_wrapper(tool, "/srv/root")
    assert text.startswith("#!/bin/sh\n") and "PMOVES_FAKE_HARDWARE_DIR:-/srv/root/.fixture" in text
    assert text.endswith(f'exec /opt/pmoves-lab/bin/{tool} "$@"\n')


@pytest.mark.skipif(not Path("/usr/sbin/sysctl").exists(), reason="needs Linux's /usr/sbin/sysctl")
def test_node_sysctl_wrapper_answers_macos_names_and_leaves_linux_names_to_linux(tmp_path, monkeypatch):
    """The lab's Mac is a Linux container: discovery's sysctl hw.* / machdep.* get the Mac's answers,
    the node's own roles (ansible.posix.sysctl) keep the real tool."""
    import subprocess

    hw = {"arch": "aarch64", "memory_mb": 24576, "cpu": {"model": "Apple M4 Pro", "cores": 12}, "accelerator": "apple",
          "gpus": [{"vendor": "apple", "name": "Apple M4 Pro", "gpu_cores": 16, "unified_memory": True}]}
    root = tmp_path / "root"
    lab_fleet.synthesise_sysroot(hw, FIXTURES, root)
    wrapper = tmp_path / "sysctl"
    wrapper.write_text(lab_fleet.double_wrapper("sysctl", str(root), doubles=str(DOUBLES)), encoding="utf-8")
    wrapper.chmod(0o755)
    monkeypatch.delenv("PMOVES_FAKE_HARDWARE_DIR", raising=False)
    mac = subprocess.run([str(wrapper), "hw.memsize", "hw.ncpu"], capture_output=True, text=True, check=True)
    assert mac.stdout == f"hw.memsize: {24576 * 2**20}\nhw.ncpu: 12\n"
    linux = subprocess.run([str(wrapper), "-n", "kernel.ostype"], capture_output=True, text=True, check=True)
    assert linux.stdout == "Linux\n"


USER_COMPOSE = """services:
  ai-llm:
    image: ghcr.io/example/ai-llm:1.2
    command: ["serve"]
    ports: ["127.0.0.1:8091:8000/tcp", {target: 8001, published: 8092}]
  ai-clip: {image: "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04"}
  built: {build: ./src}
"""


@pytest.mark.parametrize("relative", [True, False])
def test_standins_include_the_images_of_the_user_compose_files(tmp_path, relative, capsys):
    """pmoves_compose_user_files (seed 004's docker-compose.prod.yml): the user's images get stand-ins too, serving
    the container side of their ports and the catalog's health path of the service of the same name."""
    inv = tmp_path / "inventories" / "workstation"
    (inv / "files").mkdir(parents=True)
    (inv / "files" / "docker-compose.prod.yml").write_text(USER_COMPOSE)
    path = "files/docker-compose.prod.yml" if relative else str(inv / "files" / "docker-compose.prod.yml")
    inventory = {"_meta": {"hostvars": {"workstation": {
        "pmoves_compose_user_files": [path],
        "pmoves_services": [{"name": "ai-llm", "vram_mb": 21700, "health": "/health"}, {"name": "ai-clip"}]}}}}
    services = lab_fleet.inventory_services(inventory) + lab_fleet.user_file_services(inventory, str(inv))
    found = lab_fleet.standins(services)
    assert found["ghcr.io/example/ai-llm:1.2"] == {"ports": [8000, 8001], "paths": ["/health"]}
    assert "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04" in found
    assert lab_fleet.inventory_dir_of(str(inv)) == str(inv)
    assert lab_fleet.inventory_dir_of(str(inv / "files" / "docker-compose.prod.yml")) == str(inv / "files")

    # The CLI as scripts/lab-up.sh calls it: INVENTORY_JSON and the inventory directory.
    (tmp_path / "inv.json").write_text(json.dumps(inventory))
    assert lab_fleet.main(["lab_fleet.py", "standins", str(tmp_path / "inv.json"), str(inv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "ghcr.io/example/ai-llm:1.2|8000 8001|/health" in lines
    # Without the inventory argument (an older lab-up.sh), only the catalog's images.
    assert lab_fleet.main(["lab_fleet.py", "standins", str(tmp_path / "inv.json")]) == 0
    assert not any(line.startswith("ghcr.io/example/ai-llm") for line in capsys.readouterr().out.splitlines())


def test_standins_fail_clearly_on_a_missing_user_compose_file(tmp_path, capsys):
    inventory = {"_meta": {"hostvars": {"w": {"pmoves_compose_user_files": ["files/nope.yml"]}}}}
    (tmp_path / "inv.json").write_text(json.dumps(inventory))
    assert lab_fleet.main(["lab_fleet.py", "standins", str(tmp_path / "inv.json"), str(tmp_path)]) == 1
    assert "nope.yml" in capsys.readouterr().err


def test_the_seed_inventories_user_compose_files_get_stand_ins():
    """Every seed inventory that names user compose files: each of their images is a stand-in the lab builds."""
    for fleet in SEED_FLEETS:
        inv = REPO / "inventories" / fleet
        hostvars = {}
        for path in sorted((inv / "host_vars").glob("*.yml")):
            hostvars[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        group_all = inv / "group_vars" / "all"
        shared: dict = {}
        for path in sorted(group_all.glob("*.yml")) if group_all.is_dir() else []:
            shared.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        inventory = {"_meta": {"hostvars": {h: {**shared, **v} for h, v in hostvars.items()}}}
        users = lab_fleet.user_file_services(inventory, str(inv))
        found = lab_fleet.standins(lab_fleet.inventory_services(inventory) + users)
        for entry in users:
            assert entry["image"] in found, (fleet, entry)


def test_the_overlay_keeps_the_inventorys_wireguard_and_routes_the_mesh_over_it(tmp_path):
    """Seed 000 puts every host on WireGuard: the lab leaves it on; the agents dial the hub's mesh address and the
    gateway uses the plan's (mesh) node URLs. Off the mesh, container names as before."""
    def overlay(inventory, host):
        lab_fleet.write_overlay(inventory, tmp_path / "overlay", str(tmp_path))
        return json.loads((tmp_path / f"overlay/host_vars/{host}.yml").read_text(encoding="utf-8"))

    plain = overlay(_inventory(), "a-gpu")
    assert plain["pmoves_mesh_nats_url"] == "nats://b-vps:4222" and "pmoves_gateway_node_urls" in plain
    meshed = _inventory()
    for hostvars in meshed["_meta"]["hostvars"].values():
        hostvars["pmoves_wireguard_enabled"] = True
    for host in ("a-gpu", "b-vps"):
        data = overlay(meshed, host)
        assert "pmoves_wireguard_enabled" not in data and "pmoves_gateway_node_urls" not in data
        assert data["pmoves_mesh_nats_url"] == "nats://{{ pmoves_fleet_plan.wireguard.addresses['b-vps'] }}:4222"
    assert "pmoves_wireguard_enabled" not in lab_fleet.OVERLAY_KEYS  # the lab never turns the mesh off
