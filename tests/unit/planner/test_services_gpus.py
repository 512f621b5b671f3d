"""Services on hosts and on the GPUs of a multi-GPU host (seed 004 strategies, seed 000 primary/fallback)."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import PlanOptions, plan_fleet

WORKSTATION = [{"name": "ws", "groups": ["gpu_nodes"], "hardware": {
    "node_class": "gpu", "memory_mb": 131072,
    "gpus": [{"index": 0, "name": "NVIDIA RTX A5500", "memory_total_mb": 24564},
             {"index": 1, "name": "NVIDIA RTX A400", "memory_total_mb": 4094}]}}]
SERVICES = [
    {"name": "ai-llm", "vram_mb": 21700, "isolate": True, "latency_critical": True},
    {"name": "ai-yolo26", "vram_mb": 650, "latency_critical": True},
    {"name": "ai-florence", "vram_mb": 1500},
    {"name": "ai-clip", "vram_mb": 1200},
    {"name": "ai-enrichment", "vram_mb": 6800, "vram_min_mb": 1024},
]


def gpu_of(plan: dict) -> dict[str, int]:
    return {s["name"]: s["gpu_index"] for s in plan["nodes"]["ws"]["services"]}


@pytest.mark.parametrize("strategy", ["vram_based", "latency_optimized", "isolation_first", "balanced", "manual"])
def test_every_strategy_places_all_five_within_the_node(strategy: str) -> None:
    plan = plan_fleet(WORKSTATION, [], SERVICES, PlanOptions(strategy=strategy))
    node = plan["nodes"]["ws"]
    assert sorted(gpu_of(plan)) == sorted(s["name"] for s in SERVICES)
    assert node["vram_planned_mb"] <= node["vram_total_mb"]
    assert sum(g["planned_mb"] for g in node["gpus"]) == node["vram_planned_mb"]


def test_vram_based_puts_the_llm_on_the_largest_gpu_and_adjusts_the_enrichment_budget() -> None:
    plan = plan_fleet(WORKSTATION, [], SERVICES, PlanOptions(strategy="vram_based"))
    assert gpu_of(plan)["ai-llm"] == 0
    assert gpu_of(plan)["ai-enrichment"] == 1
    enrichment = next(s for s in plan["nodes"]["ws"]["services"] if s["name"] == "ai-enrichment")
    assert enrichment["budget_adjusted"] and 1024 <= enrichment["vram_mb"] < 6800
    assert any("ai-enrichment VRAM budget (6.8 GB) exceeds GPU 1" in w and "Auto-adjusted" in w
               for w in plan["warnings"])


def test_isolation_first_gives_the_llm_its_own_gpu() -> None:
    plan = plan_fleet(WORKSTATION, [], SERVICES, PlanOptions(strategy="isolation_first"))
    gpus = gpu_of(plan)
    assert gpus["ai-llm"] == 0
    # Seed 004: the LLM has GPU 0 to itself; the rest share GPU 1 even when that overfills it
    # (warn but allow), and the adjustable budget shrinks to its floor.
    assert {name for name, index in gpus.items() if index == 0} == {"ai-llm"}
    enrichment = next(s for s in plan["nodes"]["ws"]["services"] if s["name"] == "ai-enrichment")
    assert enrichment["vram_mb"] == 1024
    assert any("exceeds GPU 1" in w and "ai-enrichment" in w for w in plan["warnings"])


def test_latency_optimized_keeps_the_critical_path_on_gpu0() -> None:
    gpus = gpu_of(plan_fleet(WORKSTATION, [], SERVICES, PlanOptions(strategy="latency_optimized")))
    assert gpus["ai-llm"] == 0 and gpus["ai-yolo26"] == 0


def test_manual_honours_gpu_index_and_warns_but_allows_an_overfull_gpu() -> None:
    services = [dict(s, gpu_index=0) for s in SERVICES[:4]] + [dict(SERVICES[4], gpu_index=1)]
    plan = plan_fleet(WORKSTATION, [], services, PlanOptions(strategy="manual"))
    assert gpu_of(plan) == {"ai-llm": 0, "ai-yolo26": 0, "ai-florence": 0, "ai-clip": 0, "ai-enrichment": 1}
    assert any("Combined VRAM" in w and "GPU 0" in w for w in plan["warnings"])  # 25.05 GB on a 24 GB card
    assert any("ai-enrichment VRAM budget" in w for w in plan["warnings"])


def test_primary_then_fallback_then_unplaced_with_reason() -> None:
    hosts = [{"name": n, "groups": ["gpu_nodes"], "hardware": {
        "node_class": "gpu", "memory_mb": 65536, "gpus": [{"index": 0, "name": "GPU", "memory_total_mb": mb}]}}
        for n, mb in (("big", 32607), ("small", 16376))]
    services = [{"name": "filler", "vram_mb": 20000, "primary": "big"},
                {"name": "tts", "vram_mb": 16000, "primary": "big", "fallback": ["small"]}]
    plan = plan_fleet(hosts, [], services)
    assert plan["services"]["tts"]["placed"] == []  # small has 15864 MB usable: 16 GB+ does not fit
    assert plan["services"]["tts"]["missing"] == 1
    assert any("service tts: 0 of 1 placed" in w for w in plan["warnings"])
    services[1]["vram_mb"] = 14000
    plan = plan_fleet(hosts, [], services)
    assert plan["services"]["tts"]["placed"] == ["small"]
    assert "primary big could not take it" in plan["nodes"]["small"]["services"][0]["why"]


def test_cpu_services_take_no_vram_and_no_gpu() -> None:
    hosts = [{"name": "vps", "groups": ["cpu_nodes"], "hardware": {"node_class": "cpu", "memory_mb": 8192, "gpus": []}}]
    plan = plan_fleet(hosts, [], [{"name": "nginx", "gpu": False, "primary": "vps"}])
    assert plan["nodes"]["vps"]["services"][0]["gpu_index"] is None
    assert plan["nodes"]["vps"]["vram_planned_mb"] == 0
    gpu_service = plan_fleet(hosts, [], [{"name": "whisper", "vram_mb": 3000, "primary": "vps"}])
    assert gpu_service["services"]["whisper"]["placed"] == []
