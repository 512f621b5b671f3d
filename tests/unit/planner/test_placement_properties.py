"""Property tests: every invariant of contract 2 over random fleets and catalogs (hypothesis)."""

from __future__ import annotations

import random

from ansible_collections.pmoves.fleet.plugins.module_utils.placement import PlanOptions, dumps_plan, plan_fleet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_helpers import check_invariants

CLASSES = [("gpu_nodes", "gpu", False), ("edge_nodes", "edge", True), ("apu_nodes", "apu", True),
           ("npu_nodes", "npu", False), ("cpu_nodes", "cpu", False)]
LIBRARY_NAMES = ["llama3.2:1b", "llama3.2", "llama3.1:8b", "llama3.1:70b", "qwen2.5:32b", "qwen2.5-coder:7b",
                 "qwen3:30b", "deepseek-r1:14b", "gemma3:27b", "phi3.5", "mistral", "nomic-embed-text",
                 "mxbai-embed-large", "llava:13b", "mixtral:8x7b", "tinyllama"]


@st.composite
def hosts_strategy(draw):
    count = draw(st.integers(min_value=1, max_value=12))
    hosts = []
    for i in range(count):
        group, node_class, unified = draw(st.sampled_from(CLASSES))
        gpu_count = 0 if node_class in ("npu", "cpu") else draw(st.integers(min_value=0, max_value=3))
        gpus = [{"index": g, "name": f"GPU{g}", "memory_total_mb": draw(st.integers(min_value=0, max_value=96000)),
                 "unified_memory": unified} for g in range(gpu_count)]
        hardware = {"schema": 1, "node_class": draw(st.sampled_from(["gpu", "edge", "apu", "npu", "cpu"])),
                    "memory_mb": draw(st.integers(min_value=0, max_value=262144)), "gpus": gpus}
        host_vars = {}
        if draw(st.booleans()) and draw(st.booleans()):
            host_vars["pmoves_models_allowed"] = False
        # contract 2 capacity inputs: model disk, offload RAM, max_loaded, size classes and caps
        if draw(st.integers(0, 3)) == 0:
            host_vars["pmoves_models_disk_mb"] = draw(st.integers(min_value=0, max_value=120000))
        if draw(st.integers(0, 3)) == 0:
            host_vars["pmoves_ollama_offload_mb"] = draw(st.integers(min_value=0, max_value=65536))
        if draw(st.integers(0, 3)) == 0:
            host_vars["pmoves_ollama_max_loaded_models"] = draw(st.integers(min_value=1, max_value=4))
        if draw(st.integers(0, 4)) == 0:
            host_vars["pmoves_models_max_params_b"] = draw(st.sampled_from([3, 8, 30]))
        if draw(st.integers(0, 4)) == 0:
            host_vars["pmoves_models_prefer"] = [{"min_params_b": draw(st.sampled_from([0, 8, 30, 70]))}]
        if draw(st.integers(0, 4)) == 0:
            host_vars["pmoves_ollama_num_parallel"] = draw(st.integers(min_value=1, max_value=4))
            host_vars["pmoves_ollama_context_length"] = draw(st.sampled_from([2048, 8192, 131072]))
        hosts.append({"name": f"h{i:02d}", "groups": [group] if draw(st.integers(0, 9)) else [],
                      "hardware": None if draw(st.integers(0, 15)) == 0 else hardware, "vars": host_vars})
    return hosts


@st.composite
def catalog_strategy(draw, host_names):
    entries = []
    names = draw(st.lists(st.sampled_from(LIBRARY_NAMES), unique=True, max_size=8))
    for name in names:
        entry = {"name": name, "replicas": draw(st.integers(min_value=0, max_value=4)), "cpu_ok": draw(st.booleans())}
        if draw(st.booleans()):
            entry["vram_mb"] = draw(st.integers(min_value=0, max_value=60000))
        if draw(st.integers(0, 3)) == 0:
            entry["pin"] = draw(st.lists(st.sampled_from([*host_names, "nowhere"]), unique=True, max_size=2))
        if draw(st.booleans()):
            entry["resident"] = True
        if host_names and draw(st.integers(0, 4)) == 0:
            entry["primary"] = draw(st.sampled_from(host_names))
            entry["fallback"] = draw(st.lists(st.sampled_from(host_names), unique=True, max_size=2))
        entries.append(entry)
    return entries


@st.composite
def problem(draw):
    hosts = draw(hosts_strategy())
    catalog = draw(catalog_strategy([h["name"] for h in hosts]))
    services = []
    for i in range(draw(st.integers(0, 4))):
        vram = draw(st.integers(0, 30000))
        services.append({"name": f"svc{i}", "vram_mb": vram,
                         "vram_min_mb": draw(st.integers(0, vram)) if draw(st.booleans()) else vram,
                         "primary": draw(st.sampled_from([None, *[h["name"] for h in hosts]])),
                         "replicas": draw(st.integers(0, 2))})
    strategy = draw(st.sampled_from(["manual", "vram_based", "latency_optimized", "isolation_first", "balanced",
                                     "spread", "binpack"]))
    return hosts, catalog, services, strategy


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem())
def test_contract_invariants_hold(case) -> None:
    hosts, catalog, services, strategy = case
    plan = plan_fleet(hosts, catalog, services, PlanOptions(strategy=strategy))
    check_invariants(plan, hosts, catalog)
    for host in hosts:
        if host["hardware"] is None:
            assert host["name"] not in plan["nodes"]
            if host["groups"] or host["vars"].get("pmoves_models_allowed", True):
                assert any(host["name"] in w and "no pmoves_hardware" in w for w in plan["warnings"])


@settings(max_examples=60, deadline=None)
@given(problem(), st.randoms(use_true_random=False))
def test_same_inputs_give_byte_identical_plan(case, rnd: random.Random) -> None:
    hosts, catalog, services, strategy = case
    first = dumps_plan(plan_fleet(hosts, catalog, services, PlanOptions(strategy=strategy)))
    shuffled = list(hosts)
    rnd.shuffle(shuffled)  # host order of the inventory does not matter
    assert dumps_plan(plan_fleet(shuffled, catalog, services, PlanOptions(strategy=strategy))) == first
    # rerun with the previous plan in the artefacts directory: still identical
    again = plan_fleet(hosts, catalog, services, PlanOptions(strategy=strategy), previous=__import__("json").loads(first))
    assert dumps_plan(again) == first


@settings(max_examples=60, deadline=None)
@given(problem())
def test_adding_a_node_moves_nothing_that_still_fits(case) -> None:
    hosts, catalog, services, strategy = case
    before = plan_fleet(hosts, catalog, services, PlanOptions(strategy=strategy))
    extra = {"name": "zz-new", "groups": ["gpu_nodes"],
             "hardware": {"node_class": "gpu", "memory_mb": 65536,
                          "gpus": [{"index": 0, "name": "RTX 4090", "memory_total_mb": 24564}]}}
    after = plan_fleet([*hosts, extra], catalog, services, PlanOptions(strategy=strategy), previous=before)
    check_invariants(after, [*hosts, extra], catalog)
    assert after["moved"] == 0
    kept = {(m, h) for m, e in before["models"].items() for h in e["placed"]}
    assert kept <= {(m, h) for m, e in after["models"].items() for h in e["placed"]}

    def placed(plan):
        return sum(len(e["placed"]) for e in plan["models"].values())

    assert placed(after) >= placed(before)


def test_adding_a_model_moves_nothing() -> None:
    hosts = [{"name": f"n{i}", "groups": ["gpu_nodes"],
              "hardware": {"node_class": "gpu", "memory_mb": 65536,
                           "gpus": [{"index": 0, "name": "RTX 4090", "memory_total_mb": 24564}]}} for i in range(4)]
    catalog = [{"name": "qwen2.5:14b", "replicas": 2}, {"name": "llama3.1:8b", "replicas": 3}]
    before = plan_fleet(hosts, catalog)
    after = plan_fleet(hosts, [*catalog, {"name": "mistral", "replicas": 2}], previous=before)
    assert after["moved"] == 0
    assert len(after["models"]["mistral:latest"]["placed"]) == 2
    for name in ("qwen2.5:14b", "llama3.1:8b"):
        assert after["models"][name]["placed"] == before["models"][name]["placed"]
