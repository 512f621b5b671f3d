"""Benchmark: what a zero-change rerun executes, before (a git ref) and after (this tree), side by side in one run.

    .venv/bin/python benchmarks/bench_zero_change.py                 # before = main
    .venv/bin/python benchmarks/bench_zero_change.py --base HEAD~3 --reruns 3 --hosts 4

Two scenarios that run on localhost (no containers, no root changes; light enough to run next to CI):
  discover   playbooks/discover.yml on N local hosts, each on a captured hardware sysroot
             (tests/fixtures/hardware), with the jsonfile fact cache of a real controller
  ollama     the pmoves.fleet.ollama role's validate + model stages (install and service off: no systemd here)
             against the Ollama test double, models already in place

For each scenario and tree: one first run, then --reruns zero-change reruns, alternating before/after so a
change in machine load hits both alike. Prints per tree the tasks executed on a rerun (host results that were
not skipped, summed over hosts), the median rerun wall time, and the ratios after/before. The base tree is
`git archive <ref>` in a temporary directory, so both run the same ansible, Python and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = str(REPO / ".venv" / "bin" / "ansible-playbook")
PYTHON = str(REPO / ".venv" / "bin" / "python")
sys.path.insert(0, str(REPO / "tests" / "doubles" / "ollama_emulator"))

from harness import emulator_process  # noqa: E402

FIXTURES = ["rtx5090-3090ti-workstation", "jetson-agx-orin-r36.4.4", "strix-halo-xdna", "cpu-vps",
            "nvidia-550-tesla-p40", "dgx-spark-gb10", "a5500-a400-workstation", "jetson-agx-thor-r38.2"]
MODELS = ["tinyllama", "qwen2.5:0.5b", "nomic-embed-text", "all-minilm"]


def export_tree(ref: str, dest: Path) -> Path:
    archive = dest / "base.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=REPO, check=True)
    tree = dest / "base"
    tree.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="tar")  # the collections/ symlink stays inside the tree
    archive.unlink()
    return tree


def run(tree: Path, workdir: Path, inventory: Path, playbook: Path,
        extra: list[str] | None = None) -> tuple[float, int, int, int]:
    """One ansible-playbook run in ``tree``: (wall seconds, tasks executed, tasks skipped, module runs) over all hosts.

    Module runs count each loop item that was not skipped (a task's loop sends its module once per item).
    """
    env = dict(os.environ, ANSIBLE_CONFIG=str(tree / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(workdir / "facts"),
               ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"), ANSIBLE_NOCOLOR="1",
               PATH=f"{REPO / 'tests' / 'doubles' / 'bin'}:{REPO / '.venv' / 'bin'}:/usr/bin:/bin")
    env.pop("PMOVES_FAKE_HARDWARE_DIR", None)
    start = time.perf_counter()
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook), *(extra or [])], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{playbook} in {tree} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    executed = skipped = module_runs = 0
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("skipped"):
                    skipped += 1
                else:
                    executed += 1
                    items = result.get("results")
                    module_runs += (sum(1 for item in items if not item.get("skipped"))
                                    if isinstance(items, list) else 1)
    return seconds, executed, skipped, module_runs


def discover_scenario(workdir: Path, hosts: int) -> tuple[Path, Path]:
    inventory = workdir / "discover-inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        f"node{i}": {"ansible_connection": "local",
                     "pmoves_hardware_sysroot": str(REPO / "tests" / "fixtures" / "hardware" / FIXTURES[i % len(FIXTURES)])}
        for i in range(hosts)}, "vars": {"ansible_python_interpreter": PYTHON}}}))
    return inventory, Path("playbooks/discover.yml")


def ollama_scenario(workdir: Path, url: str) -> tuple[Path, Path]:
    inventory = workdir / "ollama-inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": PYTHON}}}}))
    playbook = workdir / "ollama.yml"
    playbook.write_text(json.dumps([{
        "name": "Ollama role, model stage", "hosts": "localhost", "gather_facts": False,
        "roles": [{"role": "pmoves.fleet.ollama", "vars": {
            "pmoves_ollama_install": False, "pmoves_ollama_manage_service": False,
            "pmoves_ollama_api_url": url, "pmoves_ollama_models_dir": str(workdir / "models"),
            "pmoves_ollama_models": MODELS, "pmoves_ollama_disk_reserve_mb": 0, "pmoves_ollama_prune": True,
            "pmoves_ollama_listen_address": "127.0.0.1", "pmoves_ollama_node_class": "cpu",
            "pmoves_ollama_gpu_uuids": []}}]}]))
    return inventory, playbook


def measure(name: str, trees: dict[str, Path], workdirs: dict[str, Path], scenario: dict[str, tuple[Path, Path]],
            reruns: int, emulators: dict[str, Any] | None = None) -> None:
    """``emulators`` (label -> Ollama test double): also print the API requests of one rerun per tree."""
    firsts = {label: run(trees[label], workdirs[label], *scenario[label]) for label in trees}
    for emu in (emulators or {}).values():
        emu.reset_stats()
    samples: dict[str, list[tuple[float, int, int, int]]] = {label: [] for label in trees}
    for _index in range(reruns):
        for label in trees:
            samples[label].append(run(trees[label], workdirs[label], *scenario[label]))
    print(f"{name}:")
    medians = {}
    for label in trees:
        wall = statistics.median(s[0] for s in samples[label])
        executed = samples[label][-1][1]
        skipped = samples[label][-1][2]
        module_runs = samples[label][-1][3]
        medians[label] = (wall, executed, module_runs)
        print(f"  {label:<7} first {firsts[label][0]:6.2f} s ({firsts[label][1]} tasks executed)   "
              f"rerun {wall:6.2f} s (median of {reruns}), {executed} tasks executed, {skipped} skipped, "
              f"{module_runs} module runs")
    for label, emu in (emulators or {}).items():
        requests = {key: count for key, count in emu.stats().items() if key.split(" ", 1)[-1].startswith("/api/")}
        print(f"  {label:<7} Ollama API requests per rerun: "
              + ", ".join(f"{key} {count / reruns:g}" for key, count in sorted(requests.items())))
    (before_wall, before_tasks, before_runs), (after_wall, after_tasks, after_runs) = medians["before"], medians["after"]
    print(f"  ratio after/before: rerun wall {after_wall / before_wall:.2f}, tasks executed on a rerun "
          f"{after_tasks}/{before_tasks} = {after_tasks / before_tasks:.2f}, module runs "
          f"{after_runs}/{before_runs} = {after_runs / before_runs:.2f}", flush=True)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--base", default="main", help="git ref of the 'before' tree (default main)")
    options.add_argument("--reruns", type=int, default=3, help="zero-change reruns per tree (median)")
    options.add_argument("--hosts", type=int, default=4, help="local hosts in the discover scenario")
    options.add_argument("--only", choices=["discover", "ollama"], help="run one scenario")
    args = options.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="pmoves-bench-zero-"))
    try:
        trees = {"before": export_tree(args.base, scratch), "after": REPO}
        commit = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=REPO, text=True, capture_output=True,
                                check=True).stdout.strip()
        print(f"before = {args.base} ({commit}), after = this tree; {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        if args.only in (None, "discover"):
            workdirs = {label: scratch / f"discover-{label}" for label in trees}
            for path in workdirs.values():
                path.mkdir()
            measure(f"discover.yml, {args.hosts} local hosts on captured sysroots", trees, workdirs,
                    {label: discover_scenario(workdirs[label], args.hosts) for label in trees}, args.reruns)
        if args.only in (None, "ollama"):
            workdirs = {label: scratch / f"ollama-{label}" for label in trees}
            for path in workdirs.values():
                path.mkdir()
            scenario = {}
            with emulator_process(workdirs["before"] / "models", node="bench-before") as before_emu, \
                    emulator_process(workdirs["after"] / "models", node="bench-after") as after_emu:
                for label, emu in (("before", before_emu), ("after", after_emu)):
                    scenario[label] = ollama_scenario(workdirs[label], emu.url)
                measure(f"ollama role (validate + models, {len(MODELS)} models in place, test double)", trees,
                        workdirs, scenario, args.reruns, {"before": before_emu, "after": after_emu})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
