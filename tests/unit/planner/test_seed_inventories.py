"""The seed fleets (inventories/*) plan without error (their statements: test_seed_plans.py)."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import PlanOptions, dumps_plan, plan_fleet
from planner_helpers import SEED_INVENTORIES, check_invariants


def plan_of(inventory: dict) -> dict:
    options = PlanOptions(strategy=inventory["strategy"], gpu_strategy=inventory["gpu_strategy"])
    if inventory["cpu_ram_share"] is not None:
        options.cpu_ram_share = inventory["cpu_ram_share"]
    return plan_fleet(inventory["hosts"], inventory["models"], inventory["services"], options)


@pytest.mark.parametrize("name", SEED_INVENTORIES)
def test_seed_inventory_plans(seed_inventories, name: str) -> None:
    inventory = seed_inventories[name]
    assert all(h["hardware"] for h in inventory["hosts"]), "every seed host declares pmoves_hardware"
    plan = plan_of(inventory)
    check_invariants(plan, inventory["hosts"], inventory["models"])
    assert set(plan["nodes"]) == {h["name"] for h in inventory["hosts"]}
    assert plan["undiscovered"] == []
    assert not any("group says" in w for w in plan["warnings"]), "inventory groups agree with node_class"
    assert dumps_plan(plan_of(inventory)) == dumps_plan(plan)
    for service, entry in plan["services"].items():
        assert entry["placed"], f"{name}: service {service} unplaced"


def test_homelab_services_where_the_seed_puts_them(seed_inventories) -> None:
    inventory = seed_inventories["homelab"]
    plan = plan_of(inventory)
    # image generation and whisper are services, not models
    assert {"comfyui", "whisper-large-v3"} <= set(plan["services"])
    # Pi5L runs "LiteLLM Proxy + PostgreSQL + Redis + Prometheus + Grafana": LiteLLM and Redis are the
    # gateway role there, Prometheus the monitoring role, the compose project the other two.
    assert plan["services"]["postgresql"]["placed"] == ["pi5l"]
    assert plan["services"]["grafana"]["placed"] == ["pi5l"]
    hostvars = inventory["hostvars"]["pi5l"]
    assert hostvars["pmoves_mesh_hub"] == "pi5l" and hostvars["pmoves_monitoring_server"] == "pi5l"


# Ports the roles open on a node, by what the node runs (roles/common defaults).
GATEWAY_PORTS, REDIS_PORT, NATS_PORTS, PROMETHEUS_PORT = (4000,), 6379, (4222, 8222), 9090


@pytest.mark.parametrize("name", SEED_INVENTORIES)
def test_seed_services_carry_an_image_and_no_port_is_taken_twice_on_a_node(seed_inventories, name: str) -> None:
    """Every seed service names the image it runs, and on every node the planned services' ports,
    the gateway (+ its Redis), the NATS hub and Prometheus never collide."""
    inventory = seed_inventories[name]
    catalog = {s["name"]: s for s in inventory["services"]}
    plan = plan_of(inventory)
    any_vars = next(iter(inventory["hostvars"].values()))
    gateways = {h["name"] for h in inventory["hosts"] if "gateway" in h["all_groups"]}
    for host, node in plan["nodes"].items():
        users: list[tuple[int, str]] = []
        if host in gateways:
            users.append((GATEWAY_PORTS[0], "the gateway"))
            if any_vars.get("pmoves_gateway_redis_install", True):
                users.append((REDIS_PORT, "the gateway's Redis"))
        if any_vars.get("pmoves_mesh_hub") == host:
            users += [(port, "the NATS hub") for port in NATS_PORTS]
        if any_vars.get("pmoves_monitoring_server") == host:
            users.append((PROMETHEUS_PORT, "Prometheus"))
        for service in node.get("services") or []:
            entry = catalog[service["name"] if isinstance(service, dict) else service]
            if name != "workstation":  # seed 004 names its containers, not their images (left to the user)
                assert entry.get("image"), f"{name}: service {entry['name']} names no image"
            if entry.get("port"):
                users.append((int(entry["port"]), f"service {entry['name']}"))
        taken: dict[int, str] = {}
        for port, what in users:
            assert port not in taken, f"{name}/{host}: port {port} of {what} is taken by {taken[port]}"
            taken[port] = what


@pytest.mark.parametrize("name", [n for n in SEED_INVENTORIES if n != "workstation"])
def test_nats_hub_and_prometheus_are_not_the_first_host_by_accident(seed_inventories, name: str) -> None:
    any_vars = next(iter(seed_inventories[name]["hostvars"].values()))
    hosts = {h["name"]: h for h in seed_inventories[name]["hosts"]}
    for key in ("pmoves_mesh_hub", "pmoves_monitoring_server"):
        assert any_vars.get(key) in hosts, f"{name}: {key} is not set to a host of the fleet"


def test_homelab_seed_lists_verbatim_warn_about_non_ollama_entries(seed_inventories) -> None:
    inventory = seed_inventories["homelab"]
    seed_lists = ["stable-diffusion-xl", "flux-schnell", "whisper:large-v3", "qwen2.5-coder:32b-q4", "phi-2:2.7b"]
    plan = plan_fleet(inventory["hosts"], [{"name": n} for n in seed_lists])
    for name in ("stable-diffusion-xl", "flux-schnell", "whisper:large-v3"):
        assert any(w.startswith(f"{name} is not an Ollama library model") for w in plan["warnings"])
        assert name not in plan["models"]
    assert any("qwen2.5-coder:32b-q4" in w and "does not exist" in w for w in plan["warnings"])
    assert any("phi-2:2.7b" in w and "phi:2.7b" in w for w in plan["warnings"])
