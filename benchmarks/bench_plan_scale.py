"""Planner scale: in-process planning time for 100..1000 nodes x 500 models.

    .venv/bin/python benchmarks/bench_plan_scale.py [--models 500] [--sizes 100,250,500,750,1000]

Prints one row per fleet size (wall and CPU time, replicas placed, time per node) and the growth ratio
1000 vs 100 nodes; target: 1000 nodes x 500 models under 10 s. Also adds one node and one model
to the 1000-node plan and reports how many placements moved (stickiness). The catalog is on demand
(contract 2's default); --resident-share makes that share of it resident.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "collections"), str(ROOT / "benchmarks")]

from ansible_collections.pmoves.fleet.plugins.module_utils.placement import (  # noqa: E402
    PlanOptions,
    dumps_plan,
    plan_fleet,
)
from bench_plan_fleetgen import NODE_KINDS, make_catalog, make_fleet, make_host  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--sizes", default="100,250,500,750,1000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--resident-share", type=float, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)
    catalog = make_catalog(args.models, rng, resident_share=args.resident_share)
    fleets = {size: make_fleet(size, random.Random(size)) for size in sizes}
    times = {}
    print(f"{'nodes':>6} {'models':>6} {'wanted':>6} {'placed':>6} {'seconds':>8} {'cpu s':>6} {'ms/node':>8}")
    plan = None
    for size in sizes:
        started = time.perf_counter()
        cpu_started = time.process_time()  # the machine may be shared: CPU time shows the planner's own cost
        plan = plan_fleet(fleets[size], catalog, [], PlanOptions())
        dumps_plan(plan)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        times[size] = elapsed
        wanted = sum(e["wanted"] for e in plan["models"].values())
        placed = sum(len(e["placed"]) for e in plan["models"].values())
        print(f"{size:>6} {args.models:>6} {wanted:>6} {placed:>6} {elapsed:>8.2f} {cpu:>6.2f} {1000 * elapsed / size:>8.2f}")
    first, last = sizes[0], sizes[-1]
    print(f"\ngrowth {first} -> {last} nodes: x{times[last] / times[first]:.1f} time for x{last / first:.0f} nodes; "
          f"{last} nodes x {args.models} models in {times[last]:.2f} s (target < 10 s)")

    # Stickiness: add one node, then one model, to the largest plan.
    base_fleet = fleets[last]
    grown = [*base_fleet, make_host("node-new", NODE_KINDS[0])]
    started = time.perf_counter()
    plus_node = plan_fleet(grown, catalog, [], PlanOptions(), previous=plan)
    sticky_time = time.perf_counter() - started
    plus_model = plan_fleet(base_fleet, [*catalog, {"name": "qwen2.5:14b-instruct-q8_0", "replicas": 2}], [],
                            PlanOptions(), previous=plan)
    fresh_plus_node = plan_fleet(grown, catalog, [], PlanOptions())
    placements = sum(len(e["placed"]) for e in plan["models"].values())
    print(f"add one node:  moved {plus_node['moved']} of {placements} placements (sticky, {sticky_time:.2f} s); "
          f"without the previous plan {_moved(plan, fresh_plus_node)} would move")
    print(f"add one model: moved {plus_model['moved']} of {placements} placements")
    return 0 if times[last] < 10 else 1


def _moved(before: dict, after: dict) -> int:
    pairs = {(m, h) for m, e in before["models"].items() for h in e["placed"]}
    return len(pairs - {(m, h) for m, e in after["models"].items() for h in e["placed"]})


if __name__ == "__main__":
    sys.exit(main())
