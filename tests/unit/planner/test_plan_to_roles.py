"""The seams between the planner and the roles: what a role renders comes from the plan, decided once.

Each test goes through the real path a site.yml run takes on the controller: the seed inventory as
the fleet_plan action records it -> plan_fleet -> the apply_plan.yml hand-over filters (node_plan,
fleet_view) -> the filters the roles call (compose_project, litellm_config, node_env, ollama_models).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.filter.fleet import litellm_config, ollama_models
from ansible_collections.pmoves.fleet.plugins.filter.services import compose_project, node_env
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import to_yaml
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import FleetInputs, PlanOptions, plan_fleet
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_view import fleet_view, gateway_node_urls, node_plan

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "services" / "golden" / "workstation-from-plan"
UPDATE = os.environ.get("PMOVES_UPDATE_GOLDEN") == "1"


def plan_inventory(inventory: dict, **fleet) -> dict:
    options = PlanOptions(strategy=inventory["strategy"], gpu_strategy=inventory["gpu_strategy"])
    if inventory["cpu_ram_share"] is not None:
        options.cpu_ram_share = inventory["cpu_ram_share"]
    return plan_fleet(inventory["hosts"], inventory["models"], inventory["services"], options, fleet=FleetInputs(**fleet))


def test_workstation_renders_its_gpu_override_with_device_ids_and_budgets(seed_inventories):
    """Seed 004: services without `gpu: true` are GPU services (vram_mb > 0), decided once by the planner, so the
    compose role pins every one of them with device_ids and writes the auto-adjusted budget (VRAM_BUDGET_GB)."""
    inventory = seed_inventories["workstation"]
    plan = plan_inventory(inventory)
    assert all("gpu" not in entry for entry in inventory["services"]), "the seed's catalog never says gpu: true"
    node = node_plan(plan, "workstation")
    hardware = inventory["hostvars"]["workstation"]["pmoves_hardware"]
    rendered = compose_project(node, "workstation", inventory["services"], hardware,
                               options={"strategy": fleet_view(plan)["gpu_strategy"]})
    files = {f["path"]: to_yaml(f["content"]) for f in rendered["files"]}
    assert "config/docker-compose.gpu-override.yml" in rendered["compose_files"]
    override = yaml.safe_load(files["config/docker-compose.gpu-override.yml"])["services"]
    assert sorted(override) == sorted(s["name"] for s in inventory["services"])
    by_index = {s["name"]: s["gpu_index"] for s in plan["nodes"]["workstation"]["services"]}
    for name, service in override.items():
        device = service["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["device_ids"] == [str(by_index[name])] and "count" not in device
        assert service["environment"]["PMOVES_GPU_INDEX"] == str(by_index[name])
    # ai-enrichment (vram_min_mb) was auto-adjusted into what GPU 1 (RTX A400) had left: seed 004's VRAM_BUDGET_GB.
    assert float(override["ai-enrichment"]["environment"]["VRAM_BUDGET_GB"]) < 6.8
    assert by_index["ai-enrichment"] == 1
    assignments = yaml.safe_load(files["config/gpu-assignments.yml"])
    assert assignments["strategy"] == "vram_based" and assignments["assignments"]["ai-llm"]["model"].startswith("Nemotron")
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text)
    for rel, text in files.items():
        assert (GOLDEN / rel).read_text() == text, f"{rel} differs from golden (PMOVES_UPDATE_GOLDEN=1 to accept)"


def test_uuid_device_ids_come_from_the_plan(seed_inventories):
    inventory = seed_inventories["workstation"]
    plan = plan_inventory(inventory)
    node = node_plan(plan, "workstation")
    hardware = inventory["hostvars"]["workstation"]["pmoves_hardware"]
    rendered = compose_project(node, "workstation", inventory["services"], hardware, options={"gpu_device_id": "uuid"})
    override = next(f["content"] for f in rendered["files"] if f["path"] == "config/docker-compose.gpu-override.yml")["services"]
    uuids = {s["name"]: s["gpu_uuid"] for s in node["services"]}
    assert set(uuids.values()) == {"GPU-a5500-0000", "GPU-a400-0000"}
    for name, service in override.items():
        assert service["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == [uuids[name]]


def test_one_name_from_the_catalog_to_the_node_and_the_gateway():
    """Registry-prefixed, upper-case, untagged names with aliases: one spelling in the plan, the node's pull list
    and the gateway's model groups and aliases."""
    hosts = [
        {"name": "gpu-a", "groups": ["gpu_nodes"], "vars": {"ansible_host": "10.0.0.2"},
         "hardware": {"node_class": "gpu", "memory_mb": 65536,
                      "gpus": [{"index": 0, "vendor": "nvidia", "uuid": "GPU-a", "memory_total_mb": 24576}]}},
        {"name": "vps", "groups": ["cpu_nodes", "gateway"], "vars": {},
         "hardware": {"node_class": "cpu", "memory_mb": 4096, "gpus": []}},
    ]
    catalog = [
        {"name": "ollama.com/library/Qwen2.5:0.5B", "alias": "XS-LOC-FRE-qwen", "aliases": ["team/qwen-small"]},
        {"name": "registry.ollama.ai/library/NOMIC-embed-text", "alias": "S-LOC-FRE-nomic-embed-text"},
    ]
    plan = plan_fleet(hosts, catalog, [], PlanOptions())
    assert sorted(plan["models"]) == ["nomic-embed-text:latest", "qwen2.5:0.5b"]
    assert plan["models"]["qwen2.5:0.5b"]["aliases"] == ["xs-loc-fre-qwen:latest", "team/qwen-small:latest"]
    node = node_plan(plan, "gpu-a")
    pulls = ollama_models(node["ollama"]["models"])
    assert [m["name"] for m in pulls] == plan["nodes"]["gpu-a"]["models"]
    # The gateway runs on vps, another host: gpu-a's Ollama serves the network at its declared address.
    assert node["ollama"]["listen"] == "10.0.0.2" and node["ollama"]["consumers"] == ["vps"]
    view = fleet_view(plan)
    assert gateway_node_urls(view) == {"gpu-a": "http://10.0.0.2:11434"}
    served = litellm_config(view["models"], gateway_node_urls(view))["served_models"]
    on_node = {m["name"] for m in pulls} | {a for m in pulls for a in m["aliases"]}
    assert on_node <= set(served), "every name the node holds is a name the gateway serves"
    assert {"XS-LOC-FRE-qwen", "S-LOC-FRE-nomic-embed-text"} <= set(served)  # the catalog spelling too
    for name in on_node:
        assert name == normalize_model_name(name)


def test_ollama_listens_on_loopback_without_a_remote_user_and_never_on_all_interfaces_by_default(seed_inventories):
    plan = plan_inventory(seed_inventories["workstation"])
    assert plan["nodes"]["workstation"]["ollama"]["listen"] == "127.0.0.1"
    for name in ("pmoves", "homelab", "gpu-mesh", "forge"):
        plan = plan_inventory(seed_inventories[name])
        for host, node in plan["nodes"].items():
            assert node["ollama"]["listen"] != "0.0.0.0", (name, host)
            gateway = plan["fleet"]["gateway"]["hosts"]
            remote = node["models"] and any(g != host for g in gateway)
            assert node["ollama"]["network"] == bool(remote), (name, host)


def test_a_contradictory_inventory_cannot_be_planned(seed_inventories):
    inventory = seed_inventories["gpu-mesh"]
    hosts = [dict(h, vars={**h["vars"], "pmoves_ollama_serve_network": False}) if h["name"] == "mesh-runpod" else h
             for h in inventory["hosts"]]
    with pytest.raises(ValueError, match="mesh-runpod: pmoves_ollama_serve_network is false"):
        plan_fleet(hosts, inventory["models"], inventory["services"], PlanOptions(strategy="spread"))


def test_node_env_points_ollama_host_where_the_plan_says(seed_inventories):
    inventory = seed_inventories["pmoves"]
    plan = plan_inventory(inventory)
    view = fleet_view(plan)
    for host in ("pmoves-5090", "pmoves-vps-kvm4-1"):
        hardware = inventory["hostvars"][host]["pmoves_hardware"]
        env = node_env(view, host, inventory["services"], hardware, addresses=view["addresses"])
        assert env.get("OLLAMA_HOST") == (plan["nodes"][host]["ollama"]["client_url"] or None)


def test_the_wireguard_address_the_plan_announces_is_the_one_the_role_assigns():
    from ansible_collections.pmoves.fleet.plugins.module_utils.wireguard_config import assign_addresses

    hosts = [{"name": f"n{i}", "groups": ["gpu_nodes" if i else "cpu_nodes"] + (["gateway"] if not i else []),
              "vars": {"pmoves_wireguard_enabled": True, **({"pmoves_wireguard_address": "10.77.0.9"} if i == 2 else {})},
              "hardware": {"node_class": "gpu" if i else "cpu", "memory_mb": 32768,
                           "gpus": [{"index": 0, "memory_total_mb": 16384}] if i else []}} for i in range(4)]
    plan = plan_fleet(hosts, ["llama3.2:1b"], [], PlanOptions(), fleet=FleetInputs(wireguard_network="10.77.0.0/24"))
    addresses = plan["fleet"]["wireguard"]["addresses"]
    assert addresses["n2"] == "10.77.0.9"
    assert addresses == assign_addresses([f"n{i}" for i in range(4)], "10.77.0.0/24", {"n2": "10.77.0.9"})
    holder = plan["models"]["llama3.2:1b"]["placed"][0]
    assert plan["nodes"][holder]["ollama"]["listen"] == addresses[holder]
    assert plan["nodes"][holder]["ollama"]["address_source"] == "wireguard"


def test_workstation_layers_its_own_compose_file_under_the_gpu_override(seed_inventories):
    """Seed 004's layout (issue #17): inventories/workstation names its .compose/docker-compose.prod.yml; the role's filter
    copies it verbatim, layers the override (every planned service, the same GPU pinning as without it) on top, and
    every service keeps the image it renders with today."""
    from ansible_collections.pmoves.fleet.plugins.filter.services import user_file_paths

    inventory = seed_inventories["workstation"]
    plan = plan_inventory(inventory)
    node = node_plan(plan, "workstation")
    hostvars = inventory["hostvars"]["workstation"]
    hardware = hostvars["pmoves_hardware"]
    paths = user_file_paths(hostvars["pmoves_compose_user_files"], str(Path(__file__).resolve().parents[3] / "inventories" / "workstation"))
    options = {"strategy": fleet_view(plan)["gpu_strategy"]}
    layered = compose_project(node, "workstation", inventory["services"], hardware, options=options, user_files=paths)
    plain = compose_project(node, "workstation", inventory["services"], hardware, options=options)
    assert layered["compose_files"] == ["docker-compose.prod.yml", "config/docker-compose.gpu-override.yml"]
    files = {f["path"]: f for f in layered["files"]}
    assert files["docker-compose.prod.yml"]["content"] == Path(paths[0]).read_text()
    user = files["docker-compose.prod.yml"]["data"]["services"]
    rendered = next(f["content"] for f in plain["files"] if f["path"] == plain["main_file"])["services"]
    assert sorted(user) == sorted(rendered) == sorted(layered["services"])
    for name, svc in user.items():
        assert svc["image"] == rendered[name]["image"], name
    gpu = next(f["content"] for f in plain["files"] if f["path"] == "config/docker-compose.gpu-override.yml")["services"]
    override = files["config/docker-compose.gpu-override.yml"]["content"]["services"]
    for name, svc in override.items():
        assert svc["deploy"] == gpu[name]["deploy"] and svc["environment"] == gpu[name]["environment"]
        assert "image" not in svc
    assert layered["keep_services"] == [] and layered["warnings"] == plain["warnings"]
    # The file sits in a dot-directory: ansible never reads it as part of the inventory (no "services" group).
    listed = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(Path(paths[0]).parents[1]),
                             "--list"], check=True, capture_output=True, text=True)
    assert "services" not in json.loads(listed.stdout) and "unexpected key" not in listed.stderr
    assert Path(paths[0]).parent.name.startswith(".")
