"""Benchmark: pmoves.fleet.hardware_facts versus ansible.builtin.setup on this host, in one run.

Two measurements, alternating the two modules run by run so drift hits both equally:

1. module  - each module executed directly by the venv's Python with an args file (what runs on a
             managed host once Ansible has shipped it): the modules' own cost.
2. cli     - ``ansible localhost -m <module>`` end to end (includes ansible's ~1 s start-up, which
             is the same for both and so pulls the ratio towards 1).

Prints medians and the ratio hardware_facts / setup for each; the target is a ratio under 1/3
for the module measurement. It also prints the floor every module pays before its own code runs
(the interpreter plus ``import AnsibleModule``) as a ratio of setup, so a miss can be told apart
from a machine where even that floor is above 1/3. Usage: .venv/bin/python benchmarks/bench_hardware_facts.py [-n 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def measure(label: str, ours: list[str], baseline: list[str], runs: int, env: dict[str, str],
            name: str = "hardware_facts") -> float:  # fmt: skip
    timed(ours, env)  # warm caches (page cache, .pyc) for both before measuring
    timed(baseline, env)
    ours_t, base_t = [], []
    for _run in range(runs):
        ours_t.append(timed(ours, env))
        base_t.append(timed(baseline, env))
    ours_m, base_m = statistics.median(ours_t), statistics.median(base_t)
    ratio = ours_m / base_m
    print(f"{label:7s} {name} median {ours_m * 1000:8.1f} ms | setup median {base_m * 1000:8.1f} ms | "
          f"ratio {ratio:.3f} ({runs} runs each)")  # fmt: skip
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=7, help="runs per module and measurement (default 7)")
    parser.add_argument("--skip-cli", action="store_true", help="only the direct module measurement")
    args = parser.parse_args()

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "collections")
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    with tempfile.TemporaryDirectory() as tmp:
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(Path(tmp) / "facts")  # do not touch the repo's fact cache
        env["ANSIBLE_LOCAL_TEMP"] = str(Path(tmp) / "ansible-tmp")
        ours_args = Path(tmp) / "ours.json"
        ours_args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {}}))
        setup_args = Path(tmp) / "setup.json"
        setup_args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {}}))
        module_ratio = measure(
            "module",
            [str(PYTHON), str(REPO / "plugins" / "modules" / "hardware_facts.py"), str(ours_args)],
            [str(PYTHON), "-m", "ansible.modules.setup", str(setup_args)],
            args.runs,
            env,
        )
        floor = [str(PYTHON), "-c", "from ansible.module_utils.basic import AnsibleModule"]
        measure("floor", floor, [str(PYTHON), "-m", "ansible.modules.setup", str(setup_args)], args.runs, env,
                name="python + import AnsibleModule")  # fmt: skip
        if not args.skip_cli:
            cli = [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                   "-e", f"ansible_python_interpreter={PYTHON}", "-m"]  # fmt: skip
            measure("cli", [*cli, "pmoves.fleet.hardware_facts"], [*cli, "ansible.builtin.setup"], args.runs, env)
    verdict = "meets" if module_ratio < 1 / 3 else "MISSES"
    print(f"target: module ratio < 0.333 -> {verdict} ({module_ratio:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
