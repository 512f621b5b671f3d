"""Contract 2's capacity semantics: resident vs on demand, offload, max_loaded peak, model disk, node estimates."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import PlanOptions, plan_fleet
from planner_helpers import check_invariants

REPO = Path(__file__).resolve().parents[3]
GOLDEN = sorted((REPO / "tests" / "fixtures" / "planner" / "all_resident").glob("*.json"))


def _resident(entry):
    """The catalog entry as the planner before issue 16 read it: always loaded, estimated at 4096 x 1, f16."""
    entry = {"name": entry} if isinstance(entry, str) else dict(entry)
    entry["resident"] = True
    if entry.get("vram_mb") is None:
        entry.setdefault("context", 4096)
        entry.setdefault("parallel", 1)
        entry.setdefault("kv_cache_type", "f16")
    return entry


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_an_all_resident_catalog_plans_as_before(path: Path) -> None:
    case = json.loads(path.read_text())
    models = [_resident(m) for m in case["models"]]
    plan = plan_fleet(case["hosts"], models, case["services"], PlanOptions(**case["options"]))
    check_invariants(plan, case["hosts"], models)
    expected = case["expected"]
    assert {m: e["placed"] for m, e in plan["models"].items()} == expected["models"]
    assert [[u["model"], u["missing"]] for u in plan["unplaced"]] == expected["unplaced"]
    for host, node in expected["nodes"].items():
        got = plan["nodes"][host]
        assert got["models"] == node["models"], host
        assert got["vram_planned_mb"] == node["vram_planned_mb"], host
        assert got["resident"] == node["models"] and got["on_demand"] == [], host
        assert [[s["name"], s["gpu_index"], s["vram_mb"]] for s in got["services"]] == node["services"], host


def _gpu(name: str, vram: int, ram: int = 65536, **host_vars) -> dict:
    return {"name": name, "groups": ["gpu_nodes"], "vars": host_vars,
            "hardware": {"schema": 1, "node_class": "gpu", "memory_mb": ram,
                         "gpus": [{"index": 0, "name": "RTX", "memory_total_mb": vram, "vendor": "nvidia"}]}}


def _edge(name: str, vram: int = 47130, **host_vars) -> dict:
    return {"name": name, "groups": ["edge_nodes"], "vars": host_vars,
            "hardware": {"schema": 1, "node_class": "edge", "memory_mb": 65536,
                         "gpus": [{"index": 0, "name": "Orin", "memory_total_mb": vram, "unified_memory": True}]}}


def test_a_node_holds_more_on_demand_models_than_fit_at_once() -> None:
    hosts = [_gpu("big", 32607, ram=65536)]
    catalog = [{"name": n} for n in ("qwen2.5:32b", "qwen2.5-coder:32b", "deepseek-r1:32b", "gemma3:27b")]
    plan = plan_fleet(hosts, catalog, [{"name": "tts", "vram_mb": 16000, "primary": "big"}])
    check_invariants(plan, hosts, catalog)
    node = plan["nodes"]["big"]
    assert node["on_demand"] == sorted(node["models"]) and len(node["models"]) == 4
    assert node["resident"] == [] and node["max_loaded"] == 3
    # (c): the peak counts services + the 3 largest on-demand models; above VRAM it is a warning naming the node
    sizes = sorted((p["vram_mb"] for p in node["placements"].values()), reverse=True)
    assert node["vram_planned_mb"] == node["peak_mb"] == 16000 + sum(sizes[:3])
    assert any(w.startswith("node big: planned peak") and "expected slowdown" in w for w in plan["warnings"])
    # (b): they spill into RAM beyond the 16 GB left by the service, with a warning and the slowdown
    assert any("on big" in w and "spills" in w and "slower generation" in w for w in plan["warnings"])
    assert all(p["spill_mb"] > 0 for p in node["placements"].values())


def test_resident_models_reserve_vram_like_services() -> None:
    hosts = [_gpu("a", 24564), _gpu("b", 24564)]
    catalog = [{"name": "qwen2.5:14b", "resident": True, "replicas": 2}, {"name": "llama3.1:8b", "resident": True,
                                                                          "replicas": 2}]
    plan = plan_fleet(hosts, catalog, [])
    check_invariants(plan, hosts, catalog)
    for host in ("a", "b"):
        node = plan["nodes"][host]
        assert node["resident"] == ["llama3.1:8b", "qwen2.5:14b"] and node["on_demand"] == []
        assert node["reserved_mb"] == node["vram_planned_mb"] <= node["vram_total_mb"]
    assert plan["models"]["qwen2.5:14b"]["keep_alive"] == "-1"  # resident: kept loaded on the node


def test_a_resident_model_may_not_crowd_out_an_on_demand_one() -> None:
    hosts = [_gpu("a", 24564, pmoves_ollama_offload_mb=0)]
    catalog = [{"name": "big", "vram_mb": 20000}, {"name": "small", "vram_mb": 8000, "resident": True}]
    plan = plan_fleet(hosts, catalog, [])
    check_invariants(plan, hosts, catalog)
    # both cannot stay: "big" on demand needs 20000 MB alone, the resident 8000 MB would leave 16052
    assert len(plan["nodes"]["a"]["models"]) == 1
    assert plan["unplaced"] and plan["unplaced"][0]["reason"]


def test_offload_lets_a_model_bigger_than_vram_run_where_the_user_runs_it() -> None:
    """Seed 003: deepseek-coder-v2:236b on Akshat-PC (32 GB VRAM + 192 GB RAM) runs with partial offload."""
    hosts = [_gpu("akshat-pc", 32607, ram=196608), _edge("jetson", pmoves_models_max_params_b=8)]
    catalog = [{"name": "deepseek-coder-v2:236b", "pin": ["akshat-pc"]}]
    plan = plan_fleet(hosts, catalog, [])
    check_invariants(plan, hosts, catalog)
    assert plan["models"]["deepseek-coder-v2:236b"]["placed"] == ["akshat-pc"]
    assert plan["nodes"]["akshat-pc"]["offload_mb"] == int(196608 * 0.75)
    no_spill = plan_fleet([_gpu("akshat-pc", 32607, ram=196608, pmoves_ollama_offload_mb=0)], catalog, [])
    assert no_spill["unplaced"][0]["model"] == "deepseek-coder-v2:236b"
    assert "pin akshat-pc" in no_spill["unplaced"][0]["reason"]


def test_model_disk_is_a_hard_limit() -> None:
    hosts = [_gpu("a", 24564, pmoves_models_disk_mb=30000), _gpu("b", 24564)]
    catalog = [{"name": "qwen2.5:14b", "replicas": 2}, {"name": "qwen2.5-coder:14b", "replicas": 2},
               {"name": "deepseek-r1:14b", "replicas": 2}]
    plan = plan_fleet(hosts, catalog, [])
    check_invariants(plan, hosts, catalog)
    node = plan["nodes"]["a"]
    assert node["disk"]["used_mb"] <= 30000 and node["disk"]["total_mb"] == 30000
    assert len(node["models"]) == 3 or plan["unplaced"]
    assert node["disk"]["used_mb"] == sum(plan["models"][m]["disk_mb"] for m in node["models"])
    assert len(plan["nodes"]["b"]["models"]) == 3


def test_the_estimate_follows_the_nodes_ollama_settings() -> None:
    """Seed 003: the APUs run 131072 x 4 parallel; the plan counts that KV cache, not a 4k one."""
    apu = {"name": "apu", "groups": ["apu_nodes"], "vars": {},
           "hardware": {"schema": 1, "node_class": "apu", "memory_mb": 131072,
                        "gpus": [{"index": 0, "name": "8060S", "memory_total_mb": 98304, "unified_memory": True}]}}
    small = copy.deepcopy(apu)
    small["name"] = "apu-4k"
    small["vars"] = {"pmoves_ollama_context_length": 4096, "pmoves_ollama_num_parallel": 1}
    catalog = [{"name": "llama3.1:8b", "replicas": 2}]
    plan = plan_fleet([apu, small], catalog, [])
    sizes = plan["models"]["llama3.1:8b"]["vram_by_host"]
    assert sizes["apu"] > sizes["apu-4k"] + 30000  # 131072 x 4 tokens of KV cache
    assert plan["nodes"]["apu"]["ollama_env"] == {"context_length": 131072, "num_parallel": 4, "kv_cache_type": None}
    # the catalog's own context wins over the node's default
    pinned = plan_fleet([apu], [{"name": "llama3.1:8b", "context": 4096, "parallel": 1}], [])
    assert pinned["models"]["llama3.1:8b"]["vram_by_host"]["apu"] == sizes["apu-4k"]


def test_host_intent_pins_preferences_caps_and_no_models() -> None:
    hosts = [_gpu("rtx5090", 32607, ram=131072, pmoves_models_prefer=[{"min_params_b": 70}]),
             _gpu("rtx3090", 24564, pmoves_models_prefer=[{"min_params_b": 30, "max_params_b": 70}]),
             _edge("jetson-1", pmoves_models_max_params_b=8, pmoves_ollama_offload_mb=0,
                   pmoves_models_prefer=[{"max_params_b": 8, "kinds": ["chat", "code", "vision", "reasoning"]}]),
             {**_gpu("pi", 0), "groups": ["cpu_nodes"], "vars": {"pmoves_models_allowed": False},
              "hardware": {"schema": 1, "node_class": "cpu", "memory_mb": 8192, "gpus": []}},
             _gpu("ws", 24564, pmoves_models_pin=["mistral"])]
    catalog = [{"name": "llama3.1:70b-instruct-q2_K"}, {"name": "qwen2.5:32b"}, {"name": "llama3.2:3b"},
               {"name": "mistral", "cpu_ok": True}, {"name": "phi3.5", "primary": "ws", "fallback": ["rtx3090"],
                                                     "replicas": 2}]
    plan = plan_fleet(hosts, catalog, [])
    check_invariants(plan, hosts, catalog)
    models = plan["models"]
    assert models["llama3.1:70b-instruct-q2_k"]["placed"] == ["rtx5090"]
    assert "prefers models of this size" in models["llama3.1:70b-instruct-q2_k"]["why"]["rtx5090"]
    assert models["qwen2.5:32b"]["placed"] == ["rtx3090"]
    assert models["llama3.2:3b"]["placed"] == ["jetson-1"]
    assert models["mistral:latest"]["placed"] == ["ws"] and "pmoves_models_pin" in models["mistral:latest"]["why"]["ws"]
    assert models["phi3.5:latest"]["placed"] == ["ws", "rtx3090"]
    assert plan["nodes"]["pi"]["models"] == []
    # the Jetson cap is hard: a 70B pinned there is refused with the reason
    capped = plan_fleet(hosts, [{"name": "qwen2.5:32b", "pin": ["jetson-1"]}], [])
    assert any("jetson-1" in w and "up to 8B" in w for w in capped["warnings"])
    assert "jetson-1" not in capped["models"]["qwen2.5:32b"]["placed"]


def test_intent_is_sticky_and_deterministic() -> None:
    hosts = [_gpu(f"n{i}", 24564) for i in range(4)]
    catalog = [{"name": "qwen2.5:14b", "replicas": 2}, {"name": "llama3.1:8b", "replicas": 3, "resident": True}]
    first = plan_fleet(hosts, catalog, [])
    again = plan_fleet(list(reversed(hosts)), catalog, [])
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    grown = plan_fleet([*hosts, _gpu("n9", 32607)], [*catalog, {"name": "mistral"}], [], previous=first)
    assert grown["moved"] == 0


def test_the_ollama_roles_tier_defaults_are_the_planners() -> None:
    """roles/ollama/defaults/main.yml and fleet_schema.OLLAMA_CLASS_DEFAULTS are one table (the estimate reads it)."""
    import yaml
    from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import OLLAMA_CLASS_DEFAULTS

    defaults = yaml.safe_load((REPO / "roles" / "ollama" / "defaults" / "main.yml").read_text())
    assert defaults["pmoves_ollama_class_defaults"] == OLLAMA_CLASS_DEFAULTS


@pytest.mark.parametrize(("host_vars", "message"), [
    ({"pmoves_models_prefer": [{"min_params_b": "big"}]}, "pmoves_models_prefer[0]: min_params_b must be a number"),
    ({"pmoves_models_prefer": [{"kinds": ["huge"]}]}, "kinds must be a list of"),
    ({"pmoves_models_prefer": [{"size": 3}]}, "unknown key 'size'"),
    ({"pmoves_models_prefer": {"min_params_b": 70}}, "must be a list of rules"),
    ({"pmoves_ollama_kv_cache_type": "q2"}, "pmoves_ollama_kv_cache_type must be one of"),
    ({"pmoves_models_disk_mb": -1}, "pmoves_models_disk_mb must be"),
    ({"pmoves_ollama_max_loaded_models": 0}, "pmoves_ollama_max_loaded_models must be"),
])
def test_bad_host_intent_is_an_error_naming_the_host(host_vars: dict, message: str) -> None:
    from ansible_collections.pmoves.fleet.plugins.module_utils.inventory_checks import check_inventory

    result = check_inventory({"all": ["h1"], "gpu_nodes": ["h1"]}, {"h1": host_vars}, {})
    assert any(e.startswith("host h1") and message in e for e in result.errors), result.errors


def test_a_host_list_naming_a_model_outside_the_catalog_is_reported() -> None:
    from ansible_collections.pmoves.fleet.plugins.module_utils.inventory_checks import check_inventory

    result = check_inventory({"all": ["h1"], "gpu_nodes": ["h1"]}, {"h1": {"pmoves_models_pin": ["mistral"]}},
                             {"pmoves_models": [{"name": "llama3.2:1b"}]})
    assert any("h1" in w and "mistral" in w for w in result.warnings)
    plan = plan_fleet([_gpu("h1", 24564, pmoves_models_pin=["mistral"])], [{"name": "llama3.2:1b"}], [])
    assert any("host h1: pmoves_models_pin names mistral" in w for w in plan["warnings"])


def test_the_discovered_model_disk_limits_a_node_unless_declared(tmp_path: Path) -> None:
    import os

    from ansible_collections.pmoves.fleet.plugins.module_utils.hardware import Sysroot, probe_models_disk

    store = tmp_path / "usr/share/ollama/.ollama/models"
    (store / "blobs").mkdir(parents=True)
    (store / "blobs" / "sha256-aaa").write_bytes(b"x" * (3 * 2**20))
    stat = os.statvfs_result((4096, 4096, 1000 * 256, 0, 5000 * 256 // 1000 * 1000 // 1000, 0, 0, 0, 0, 255))
    warnings: list[str] = []
    measured = probe_models_disk(Sysroot(str(tmp_path), warnings), "/usr/share/ollama/.ollama/models",
                                 statvfs=lambda _path: stat)
    assert measured == {"path": "/usr/share/ollama/.ollama/models", "free_mb": 5, "total_mb": 1000, "store_mb": 3}
    assert probe_models_disk(Sysroot(str(tmp_path / "none"), warnings), "/models") is None  # not installed yet
    host = _gpu("a", 24564)
    host["hardware"]["models_disk"] = {"path": "/m", "free_mb": 12000, "total_mb": 500000, "store_mb": 5000}
    plan = plan_fleet([host], [{"name": "qwen2.5:14b"}, {"name": "qwen2.5-coder:14b"}, {"name": "phi3.5"}], [])
    node = plan["nodes"]["a"]
    assert node["disk"]["total_mb"] == 12000 + 5000 - 1024 and node["disk"]["used_mb"] <= 15976
    assert plan["unplaced"]  # the three models need more than the 15976 MB the disk has
    host["vars"] = {"pmoves_models_disk_mb": 100000}  # declared wins
    assert plan_fleet([host], [{"name": "qwen2.5:14b"}], [])["nodes"]["a"]["disk"]["total_mb"] == 100000


def test_a_placement_says_why_it_is_not_on_the_preferred_host() -> None:
    hosts = [_gpu("pref", 24564, pmoves_ollama_offload_mb=0, pmoves_models_prefer=[{"min_params_b": 70}]),
             _gpu("other", 49152, ram=131072)]
    plan = plan_fleet(hosts, [{"name": "llama3.1:70b"}], [])
    assert plan["models"]["llama3.1:70b"]["placed"] == ["other"]
    why = plan["nodes"]["other"]["placements"]["llama3.1:70b"]["why"]
    assert "not on a preferred host (pref: pref has 24052 MB usable, llama3.1:70b needs" in why
