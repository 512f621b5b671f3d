"""Plan quality: replicas placed by the planner vs the exact optimum (ILP, HiGHS) of the same problem.

    .venv/bin/python benchmarks/bench_plan_quality.py [--instances 30] [--seed 1]

Instances are random fleets (10-40 nodes of the seed hardware kinds, a share of them with a declared
model disk) and catalogs (15-60 models, 1-3 replicas, library tags plus synthetic sizes, a mix of
resident and on-demand models: --resident-share), small enough for HiGHS to solve exactly. The ILP
keeps the planner's services (their VRAM) and solves contract 2's capacity model exactly
(bench_plan_fleetgen.ilp_optimum). --resident-share 1 --disk-share 0 is the all-resident problem of
the planner before on-demand serving. Target: >= 98 %.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "collections"), str(ROOT / "benchmarks")]

from ansible_collections.pmoves.fleet.plugins.module_utils.placement import PlanOptions, plan_fleet  # noqa: E402
from bench_plan_fleetgen import ilp_optimum, make_catalog, make_fleet  # noqa: E402


def placed(plan: dict) -> int:
    return sum(len(entry["placed"]) for entry in plan["models"].values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategy", default="spread", choices=["spread", "binpack"])
    parser.add_argument("--resident-share", type=float, default=0.5)
    parser.add_argument("--disk-share", type=float, default=0.6)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total_ours = total_best = 0
    worst = 1.0
    print(f"{'instance':>10} {'nodes':>5} {'models':>6} {'wanted':>6} {'ours':>5} {'ILP':>5} {'ratio':>6} {'ILP s':>6}")
    for number in range(args.instances):
        fleet = make_fleet(rng.randint(10, 40), rng, disk_share=args.disk_share)
        catalog = make_catalog(rng.randint(15, 60), rng, resident_share=args.resident_share)
        plan = plan_fleet(fleet, catalog, [], PlanOptions(strategy=args.strategy))
        started = time.perf_counter()
        best, status = ilp_optimum(plan, catalog)
        elapsed = time.perf_counter() - started
        ours = placed(plan)
        ratio = ours / best if best else 1.0
        worst = min(worst, ratio)
        total_ours += ours
        total_best += best
        wanted = sum(e["wanted"] for e in plan["models"].values())
        print(f"{number:>10} {len(fleet):>5} {len(catalog):>6} {wanted:>6} {ours:>5} {best:>5} {ratio:>6.3f} "
              f"{elapsed:>6.2f} {'' if status == 'Optimal' else status}")
    overall = total_ours / total_best if total_best else 1.0
    print(f"\nplaced replicas, ours / ILP optimum: {total_ours} / {total_best} = {overall:.4f} "
          f"(worst instance {worst:.4f}); target >= 0.98")
    return 0 if overall >= 0.98 else 1


if __name__ == "__main__":
    sys.exit(main())
