"""Benchmark: a seed fleet's lab, first converge vs idempotent rerun vs a one-host models rerun (issue 20).

    .venv/bin/python benchmarks/bench_fleet_rerun.py --inventory inventories/pmoves          # fresh lab (long)
    .venv/bin/python benchmarks/bench_fleet_rerun.py --inventory inventories/pmoves --running --reps 3

Fresh: `make lab-down`, then the first `make lab LAB_INVENTORY=...` (containers, stand-ins and site.yml), timed.
Then, on the running lab, alternating so machine load hits both alike, --reps times each:
  rerun     site.yml over the whole fleet (`make lab LAB_LIMIT=all`: containers untouched)
  models    `--tags models --limit <host>` (`make lab LAB_LIMIT=<host> ANSIBLE_PLAYBOOK_ARGS="--tags models"`),
            the command users run many times a day; <host> is the first GPU node of lab.json unless --host
For each: wall seconds of the make call and of site.yml alone (the ansible.posix.timer line lab-up enables), and
changed= summed over the recap. Prints the medians and, with a fresh first converge, the ratio rerun/first
(issue 20's target: <= 0.30 on the pmoves lab; the models rerun: <= 20 s). --running skips the first converge
(no ratio: it needs the first run of the same invocation). Leaves the lab up; `make lab-down` removes it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMER = re.compile(r"Playbook run took (\d+) days, (\d+) hours, (\d+) minutes, (\d+) seconds")


def playbook_seconds(stdout: str) -> float | None:
    """site.yml's own time from ansible.posix.timer's summary line (the last one)."""
    found = TIMER.findall(stdout)
    if not found:
        return None
    days, hours, minutes, seconds = (int(v) for v in found[-1])
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def make_lab(inventory: str, label: str, limit: str = "", playbook_args: str = "") -> dict:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", PY_COLORS="0")
    command = ["make", "--no-print-directory", "lab", f"LAB_INVENTORY={inventory}"]
    if limit:
        command.append(f"LAB_LIMIT={limit}")
    if playbook_args:
        env["ANSIBLE_PLAYBOOK_ARGS"] = playbook_args
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    changed = sum(int(c) for c in re.findall(r"changed=(\d+)", result.stdout))
    site = playbook_seconds(result.stdout)
    print(f"{label:<40} wall {wall:8.1f} s  site.yml {site if site is not None else '?':>6} s  "
          f"rc={result.returncode}  changed={changed}", flush=True)
    if result.returncode:
        print(result.stdout[-3000:] + result.stderr[-1000:], file=sys.stderr)
    return {"wall": wall, "site": site, "changed": changed, "rc": result.returncode}


def gpu_host(explicit: str) -> str:
    if explicit:
        return explicit
    nodes = json.loads((REPO / "artifacts" / "lab.json").read_text())["nodes"]
    return next((h for h, n in sorted(nodes.items()) if n.get("class") == "gpu"), sorted(nodes)[0])


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--inventory", default="inventories/pmoves")
    options.add_argument("--running", action="store_true", help="measure on the running lab (no first converge)")
    options.add_argument("--reps", type=int, default=2, help="runs of each rerun kind (median)")
    options.add_argument("--host", default="", help="host of the models rerun (default: first GPU node)")
    args = options.parse_args()
    first = None
    if not args.running:
        subprocess.run(["make", "--no-print-directory", "lab-down", f"LAB_INVENTORY={args.inventory}"], cwd=REPO,
                       check=True, capture_output=True)
        first = make_lab(args.inventory, "first converge (make lab)")
        if first["rc"]:
            return 1
    host = gpu_host(args.host)
    reruns: list[dict] = []
    models: list[dict] = []
    for i in range(args.reps):
        reruns.append(make_lab(args.inventory, f"rerun {i + 1} (LAB_LIMIT=all)", limit="all"))
        models.append(make_lab(args.inventory, f"--tags models --limit {host} ({i + 1})", limit=host,
                               playbook_args="--tags models"))
    print(f"median rerun:        wall {median(reruns, 'wall'):.1f} s, site.yml {median(reruns, 'site')} s")
    print(f"median models rerun: wall {median(models, 'wall'):.1f} s, site.yml {median(models, 'site')} s ({host})")
    if first is not None:
        print(f"ratio rerun/first (wall):     {median(reruns, 'wall') / first['wall']:.2f}")
        if first["site"] and median(reruns, "site"):
            print(f"ratio rerun/first (site.yml): {median(reruns, 'site') / first['site']:.2f}")
    return 0 if all(r["rc"] == 0 for r in reruns + models) else 1


if __name__ == "__main__":
    sys.exit(main())
