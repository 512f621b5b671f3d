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


def test_homelab_seed_lists_verbatim_warn_about_non_ollama_entries(seed_inventories) -> None:
    inventory = seed_inventories["homelab"]
    seed_lists = ["stable-diffusion-xl", "flux-schnell", "whisper:large-v3", "qwen2.5-coder:32b-q4", "phi-2:2.7b"]
    plan = plan_fleet(inventory["hosts"], [{"name": n} for n in seed_lists])
    for name in ("stable-diffusion-xl", "flux-schnell", "whisper:large-v3"):
        assert any(w.startswith(f"{name} is not an Ollama library model") for w in plan["warnings"])
        assert name not in plan["models"]
    assert any("qwen2.5-coder:32b-q4" in w and "does not exist" in w for w in plan["warnings"])
    assert any("phi-2:2.7b" in w and "phi:2.7b" in w for w in plan["warnings"])
