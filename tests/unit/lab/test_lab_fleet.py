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
# must leave this table). The AMD APUs need amdgpu sysfs (mem_info_*, gfx target), the Mac macOS.
NOT_SYNTHESISED = {
    "evo-x2": "AMD APU sysroot (amdgpu sysfs) not synthesised yet",
    "gtr9-pro": "AMD APU sysroot (amdgpu sysfs) not synthesised yet",
    "ms-s1": "AMD APU sysroot (amdgpu sysfs) not synthesised yet",
    "mac-mini-m4-pro": "Apple silicon: no Linux sysroot stands in for macOS",
}


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
