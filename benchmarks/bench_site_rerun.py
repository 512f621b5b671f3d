#!/usr/bin/env python3
"""Benchmark: idempotent rerun of site.yml on the lab vs the first run, and pipelining on vs off.

    .venv/bin/python benchmarks/bench_site_rerun.py            # fresh lab, 1 first run + reruns
    .venv/bin/python benchmarks/bench_site_rerun.py --keep     # leave the lab up afterwards

Prints wall times and two ratios measured in this one run:
  rerun/first            how much cheaper a converged fleet is to re-check (lower is better)
  pipelining off/on      what ansible.cfg's pipelining=true buys on reruns (higher means it helps)
Needs podman and the base image (make images). Takes several minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "playbooks/site.yml", "-i", "inventories/lab",
            "-e", f"pmoves_artifacts_dir={REPO / 'artifacts'}",
            # as scripts/lab-up.sh (no NVIDIA driver for nvidia-ctk in the lab)
            "--skip-tags", os.environ.get("PMOVES_LAB_SKIP_TAGS", "nvidia")]


def timed_run(label: str, pipelining: bool) -> tuple[float, int]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_PIPELINING=str(pipelining),
               ANSIBLE_NOCOLOR="1")
    start = time.perf_counter()
    result = subprocess.run(PLAYBOOK, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    changed = sum(int(c) for c in re.findall(r"changed=(\d+)", result.stdout))
    print(f"{label:<34} {seconds:8.1f} s  rc={result.returncode}  changed={changed}", flush=True)
    if result.returncode not in (0,):
        print(result.stdout[-3000:], file=sys.stderr)
    return seconds, changed


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--keep", action="store_true", help="leave the lab up")
    options.add_argument("--reruns", type=int, default=2, help="reruns per pipelining setting (median)")
    args = options.parse_args()
    subprocess.run([str(REPO / "scripts" / "lab-down.sh")], cwd=REPO, check=True)
    subprocess.run([str(REPO / "scripts" / "lab-up.sh"), "--nodes"], cwd=REPO, check=True)
    try:
        first, _ = timed_run("first run (pipelining on)", True)
        on = sorted(timed_run(f"rerun {i + 1} (pipelining on)", True)[0] for i in range(args.reruns))
        off = sorted(timed_run(f"rerun {i + 1} (pipelining off)", False)[0] for i in range(args.reruns))
        median_on, median_off = on[len(on) // 2], off[len(off) // 2]
        print(f"ratio rerun/first (pipelining on):   {median_on / first:.2f}")
        print(f"ratio rerun pipelining off/on:       {median_off / median_on:.2f}")
    finally:
        if not args.keep:
            subprocess.run([str(REPO / "scripts" / "lab-down.sh")], cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
