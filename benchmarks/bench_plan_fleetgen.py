"""Random fleets and catalogs for the planner benchmarks and the ILP reference (not product code)."""

from __future__ import annotations

import random
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import LIBRARY

# (group, class, GPU MiB list, RAM MiB, unified)
NODE_KINDS: tuple[tuple[str, str, tuple[int, ...], int, bool], ...] = (
    ("gpu_nodes", "gpu", (32607,), 65536, False),  # RTX 5090
    ("gpu_nodes", "gpu", (24564,), 65536, False),  # RTX 4090 / 3090 Ti
    ("gpu_nodes", "gpu", (16376,), 32768, False),  # RTX 4090 laptop
    ("gpu_nodes", "gpu", (8192,), 32768, False),  # RTX 2080 Super
    ("gpu_nodes", "gpu", (24564, 4094), 131072, False),  # A5500 + A400
    ("gpu_nodes", "gpu", (24564, 24564), 131072, False),  # 2x 4090
    ("edge_nodes", "edge", (47130,), 62841, True),  # AGX Orin 64
    ("edge_nodes", "edge", (5800,), 7620, True),  # Orin Nano
    ("apu_nodes", "apu", (98304,), 131072, True),  # Strix Halo
    ("apu_nodes", "apu", (16384,), 24576, True),  # Mac mini
    ("npu_nodes", "npu", (), 32768, False),
    ("cpu_nodes", "cpu", (), 16384, False),
    ("cpu_nodes", "cpu", (), 8192, False),
)


def make_host(name: str, kind: tuple[str, str, tuple[int, ...], int, bool]) -> dict[str, Any]:
    group, node_class, gpus, ram, unified = kind
    return {
        "name": name, "groups": [group],
        "hardware": {"schema": 1, "node_class": node_class, "memory_mb": ram,
                     "gpus": [{"index": i, "name": f"GPU{i}", "memory_total_mb": mb, "unified_memory": unified}
                              for i, mb in enumerate(gpus)]},
    }


def make_fleet(count: int, rng: random.Random) -> list[dict[str, Any]]:
    return [make_host(f"node-{i:04d}", rng.choice(NODE_KINDS)) for i in range(count)]


LIBRARY_TAGS = sorted(f"{family.name}:{label}" for family in LIBRARY.values() for label in family.sizes)


def make_catalog(count: int, rng: random.Random, max_replicas: int = 3) -> list[dict[str, Any]]:
    """``count`` distinct model entries: library tags first, then synthetic ``vram_mb`` entries."""
    names = list(LIBRARY_TAGS)
    rng.shuffle(names)
    catalog: list[dict[str, Any]] = []
    for i in range(count):
        entry: dict[str, Any] = {"replicas": rng.randint(1, max_replicas), "cpu_ok": rng.random() < 0.3}
        if i < len(names):
            entry["name"] = names[i]
        else:
            entry["name"] = f"custom/model-{i}:latest"
            entry["vram_mb"] = int(rng.choice((600, 1500, 3000, 5000, 7000, 10000, 14000, 21000, 45000)))
        catalog.append(entry)
    return catalog


def ilp_optimum(plan: dict[str, Any], time_limit: float = 60.0) -> tuple[int, str]:
    """Most replicas placeable for the plan's nodes/models (services' VRAM kept), solved exactly with HiGHS.

    Same constraints as the planner: distinct hosts per model, node capacity, cpu_ok on GPU-less
    nodes, pmoves_models_allowed; objective = number of placed replicas.
    """
    import highspy

    nodes = plan["nodes"]
    models = plan["models"]
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", time_limit)
    variables: dict[tuple[str, str], Any] = {}
    for model, entry in models.items():
        for host, node in nodes.items():
            if not node["models_allowed"] or (not node["gpu_capable"] and not entry["cpu_ok"]):
                continue
            services_mb = sum(s["vram_mb"] for s in node["services"])
            if entry["vram_mb"] > node["vram_total_mb"] - services_mb:
                continue
            variables[(model, host)] = highs.addBinary(obj=-1.0)
    for model, entry in models.items():
        row = [v for (m, _node), v in variables.items() if m == model]
        if row:
            highs.addConstr(sum(row) <= entry["wanted"])
    for host, node in nodes.items():
        services_mb = sum(s["vram_mb"] for s in node["services"])
        row = [(models[m]["vram_mb"], v) for (m, h), v in variables.items() if h == host]
        if row:
            highs.addConstr(sum(mb * v for mb, v in row) <= node["vram_total_mb"] - services_mb)
    highs.run()
    status = highs.modelStatusToString(highs.getModelStatus())
    return round(-highs.getInfo().objective_function_value), status
