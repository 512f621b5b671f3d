"""The lab's connection (pmoves.fleet.lab_podman, modules pipelined over `podman exec -i`) vs the podman driver's
(containers.podman.podman, which cannot pipeline), on the same running containers.

Starts N throw-away systemd containers from localhost/pmoves-molecule:bookworm-systemd (named bench-conn-*,
removed at the end, also on failure) and runs one playbook of typical module tasks over each connection,
alternating which goes first per repetition: a first converge (files written) and a zero-change rerun.
Counts the `podman` commands each run issues (-vvv "RUN" lines) to show where the time goes. Run by hand:

    .venv/bin/python benchmarks/bench_lab_connection.py [--nodes 4] [--blocks 5] [--reps 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench_ssh_pipelining.py's image, task block (file, copy, template, stat, command, service) and command runner; run
# as a script, benchmarks/ is on sys.path.
from bench_ssh_pipelining import IMAGE, TASK_BLOCK, sh

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = {"stock": "containers.podman.podman", "lab_podman": "pmoves.fleet.lab_podman"}

PLAYBOOK = """
- name: Bench workload
  hosts: bench
  gather_facts: true
  tasks:
{tasks}
"""


def run_play(work: Path, names: list[str], connection: str) -> tuple[float, int, str]:
    inventory = work / "hosts.ini"
    inventory.write_text("[bench]\n" + "".join(
        f"{n} ansible_connection={connection} ansible_python_interpreter=/usr/bin/python3\n" for n in names))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="0",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", ANSIBLE_CACHE_PLUGIN="memory")
    t0 = time.monotonic()
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-vvv", "-i", str(inventory),
                        str(work / "play.yml")], cwd=work, env=env, text=True, capture_output=True, check=False)
    wall = time.monotonic() - t0
    if p.returncode:
        sys.exit(f"playbook failed over {connection}:\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
    podman_calls = len(re.findall(r"^<[^>]+> RUN \[", p.stdout, re.M))
    recap = re.search(r"ok=(\d+)\s+changed=(\d+)", p.stdout)
    return wall, podman_calls, recap.group(0) if recap else "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--blocks", type=int, default=5, help="6 tasks each (plus facts)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-conn-"))
    (work / "bench.j2").write_text("host={{ inventory_hostname }} py={{ ansible_python_version }}\n")
    blocks = "".join(TASK_BLOCK.format(i=i, service="systemd-journald") for i in range(args.blocks))
    (work / "play.yml").write_text(PLAYBOOK.format(tasks=blocks))
    names = [f"bench-conn-{os.getpid()}-{i}" for i in range(args.nodes)]
    results: dict[tuple[str, str], list[float]] = {}
    calls: dict[tuple[str, str], int] = {}
    try:
        for rep in range(args.reps):
            order = list(CONNECTIONS) if rep % 2 == 0 else list(reversed(CONNECTIONS))
            for label in order:
                sh("podman", "rm", "-f", "-t", "0", *names, check=False)
                for name in names:
                    sh("podman", "run", "-d", "--name", name, "--systemd=always", IMAGE, "/sbin/init")
                for phase in ("converge", "rerun"):
                    wall, podman_calls, recap = run_play(work, names, CONNECTIONS[label])
                    results.setdefault((label, phase), []).append(wall)
                    calls[(label, phase)] = podman_calls
                    print(f"rep {rep + 1} {label:10s} {phase:8s} {wall:6.1f} s  podman commands {podman_calls:4d}  "
                          f"{recap}", flush=True)
    finally:
        sh("podman", "rm", "-f", "-t", "0", *names, check=False)
    tasks = 1 + 6 * args.blocks
    print(f"\n{args.nodes} systemd containers, {tasks} tasks, {args.reps} repetitions, medians:")
    for phase in ("converge", "rerun"):
        stock = statistics.median(results[("stock", phase)])
        ours = statistics.median(results[("lab_podman", phase)])
        print(f"  {phase:8s} containers.podman.podman {stock:6.1f} s ({calls[('stock', phase)]} podman commands)  "
              f"pmoves.fleet.lab_podman {ours:6.1f} s ({calls[('lab_podman', phase)]})  "
              f"ratio {stock / ours:.2f}x")


if __name__ == "__main__":
    main()
