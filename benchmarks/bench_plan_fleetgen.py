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


def make_fleet(count: int, rng: random.Random, disk_share: float = 0.0) -> list[dict[str, Any]]:
    """``count`` hosts of random kinds; ``disk_share`` of them declare a small model disk (20-150 GB)."""
    hosts = [make_host(f"node-{i:04d}", rng.choice(NODE_KINDS)) for i in range(count)]
    for host in hosts:
        if disk_share and rng.random() < disk_share:
            host["vars"] = {"pmoves_models_disk_mb": rng.choice((20000, 40000, 60000, 100000, 150000))}
    return hosts


LIBRARY_TAGS = sorted(f"{family.name}:{label}" for family in LIBRARY.values() for label in family.sizes)


def make_catalog(count: int, rng: random.Random, max_replicas: int = 3,
                 resident_share: float | None = None) -> list[dict[str, Any]]:
    """``count`` distinct model entries: library tags first, then synthetic ``vram_mb`` entries.

    ``resident_share``: None leaves ``resident`` unset (on demand); else that share is ``resident: true``.
    """
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
        if resident_share is not None and rng.random() < resident_share:
            entry["resident"] = True
        catalog.append(entry)
    return catalog


def ilp_optimum(plan: dict[str, Any], catalog: list[Any] | None = None, time_limit: float = 60.0) -> tuple[int, str]:
    """Most replicas placeable for the plan's nodes/models (services' VRAM kept), solved exactly with HiGHS.

    Contract 2's capacity model, per node n (services S_n, VRAM C_n, offload O_n, model disk D_n):
    resident models:  sum size(r, n) x[r, n] <= C_n - S_n                                  (a)
    on-demand m:      size(m, n) x[m, n] + sum size(r, n) x[r, n] <= C_n - S_n + O_n       (b)
    model disk:       sum disk(m) x[m, n] <= D_n when known                                 (d)
    plus distinct hosts, cpu_ok on GPU-less nodes, pmoves_models_allowed; objective = placed replicas.
    ``size(m, n)`` is the estimate at the node's Ollama settings (plan.json's ollama_env), as the planner's.
    """
    import highspy
    from ansible_collections.pmoves.fleet.plugins.module_utils.vram import estimate

    entries = {}
    for raw in catalog or []:
        entry = {"name": raw} if isinstance(raw, str) else raw
        entries[estimate({"name": entry["name"]}).name] = entry
    nodes = plan["nodes"]
    models = plan["models"]
    sizes: dict[tuple[str, str], int] = {}

    def size(model: str, host: str) -> int:
        if (model, host) not in sizes:
            entry = entries.get(model, {})
            env = nodes[host].get("ollama_env") or {}
            if entry.get("vram_mb") is not None or not entries:
                value = models[model]["vram_mb"]
            else:
                value = estimate({"name": entry["name"], "context": entry.get("context") or env.get("context_length"),
                                  "parallel": entry.get("parallel") or env.get("num_parallel"),
                                  "kv_cache_type": entry.get("kv_cache_type") or env.get("kv_cache_type")}).vram_mb
            sizes[(model, host)] = value
        return sizes[(model, host)]

    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", time_limit)
    variables: dict[tuple[str, str], Any] = {}
    for model, entry in models.items():
        for host, node in nodes.items():
            if not node["models_allowed"] or (not node["gpu_capable"] and not entry["cpu_ok"]):
                continue
            services_mb = sum(s["vram_mb"] for s in node["services"])
            room = node["vram_total_mb"] - services_mb + (0 if entry.get("resident", True) else node.get("offload_mb", 0))
            disk = (node.get("disk") or {}).get("total_mb")
            if size(model, host) > room or (disk is not None and entry.get("disk_mb", 0) > disk):
                continue
            variables[(model, host)] = highs.addBinary(obj=-1.0)
    for model, entry in models.items():
        row = [v for (m, _node), v in variables.items() if m == model]
        if row:
            highs.addConstr(sum(row) <= entry["wanted"])
    for host, node in nodes.items():
        services_mb = sum(s["vram_mb"] for s in node["services"])
        here = [(m, v) for (m, h), v in variables.items() if h == host]
        resident = [(size(m, host), v) for m, v in here if models[m].get("resident", True)]
        if resident:
            highs.addConstr(sum(mb * v for mb, v in resident) <= node["vram_total_mb"] - services_mb)
        for m, v in here:
            if not models[m].get("resident", True) and resident:
                highs.addConstr(size(m, host) * v + sum(mb * r for mb, r in resident)
                                <= node["vram_total_mb"] - services_mb + node.get("offload_mb", 0))
        disk = (node.get("disk") or {}).get("total_mb")
        if disk is not None and here:
            highs.addConstr(sum(models[m].get("disk_mb", 0) * v for m, v in here) <= disk)
    highs.run()
    status = highs.modelStatusToString(highs.getModelStatus())
    return round(-highs.getInfo().objective_function_value), status
