"""playbooks/plan.yml over a generated 300-host inventory: wall time of the whole ansible-playbook run.

    .venv/bin/python benchmarks/bench_plan_playbook.py [--hosts 300] [--models 200]

Writes a temporary inventory (hosts.yml by class group, host_vars/<host>.yml with pmoves_hardware,
group_vars/all with the catalog), runs plan.yml twice (fresh, then the rerun that reads the
previous plan) and prints both times next to the in-process planning time of the same fleet
(the baseline: what Ansible itself adds). Target: under 30 s.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "collections"), str(ROOT / "benchmarks")]

from ansible_collections.pmoves.fleet.plugins.module_utils.placement import PlanOptions, plan_fleet  # noqa: E402
from bench_plan_fleetgen import make_catalog, make_fleet  # noqa: E402


def write_inventory(base: Path, fleet: list[dict], catalog: list[dict]) -> None:
    classes = ("gpu_nodes", "edge_nodes", "apu_nodes", "npu_nodes", "cpu_nodes")
    groups: dict[str, dict] = {g: {"hosts": {}} for g in classes}
    (base / "host_vars").mkdir(parents=True)
    (base / "group_vars" / "all").mkdir(parents=True)
    for host in fleet:
        groups[host["groups"][0]]["hosts"][host["name"]] = None
        (base / "host_vars" / f"{host['name']}.yml").write_text(yaml.safe_dump({"pmoves_hardware": host["hardware"]}))
    (base / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": groups}}))
    (base / "group_vars" / "all" / "planning.yml").write_text(
        yaml.safe_dump({"pmoves_strategy": "balanced", "pmoves_models": catalog}))


def run(inventory: Path, artifacts: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/plan.yml", "-i", str(inventory),
                    "-e", f"pmoves_artifacts_dir={artifacts}"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--models", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(3)
    fleet = make_fleet(args.hosts, rng)
    catalog = make_catalog(args.models, rng)
    with tempfile.TemporaryDirectory(prefix="pmoves-bench-") as tmp:
        base = Path(tmp)
        write_inventory(base / "inventory", fleet, catalog)
        fresh = run(base / "inventory", base / "artifacts")
        rerun = run(base / "inventory", base / "artifacts")
        plan = json.loads((base / "artifacts" / "plan.json").read_text())
    started = time.perf_counter()
    plan_fleet(fleet, catalog, [], PlanOptions())
    in_process = time.perf_counter() - started
    placed = sum(len(e["placed"]) for e in plan["models"].values())
    print(f"plan.yml over {args.hosts} hosts x {args.models} models: fresh {fresh:.2f} s, rerun {rerun:.2f} s "
          f"(target < 30 s); in-process planning {in_process:.2f} s; Ansible overhead x{fresh / in_process:.1f}; "
          f"{len(plan['nodes'])} nodes, {placed} replicas placed")
    return 0 if fresh < 30 else 1


if __name__ == "__main__":
    sys.exit(main())
