"""Benchmark: a model wanted by N nodes - upstream (registry) bytes vs LAN bytes, ours vs every node pulling.

N Ollama test doubles (own OLLAMA_MODELS each) stand in for N nodes the plan gives the same models. Two
runs of the ollama role's model tasks, one play over the N hosts, as site.yml runs them:

* baseline - every node pulls every model from the registry (``pmoves_model_share: false``);
* ours     - node-0 is the seed and pulls; the others copy from its model share (the role's
             pmoves-model-share.py, a real process) with every blob's sha256 verified.

The double counts the bytes each node's pulls fetched from the (emulated) registry. Printed: upstream
bytes, LAN bytes, the ratio upstream/model size (ours: 1), and wall times.

    .venv/bin/python benchmarks/bench_model_share.py [--nodes 4] [--models qwen2.5:0.5b,all-minilm]
        [--pull-delay 0.01]   # seconds per pull chunk: a slow internet link (the LAN copy is not slowed)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "doubles" / "ollama_emulator"))

from harness import emulator_process, free_port  # noqa: E402

SHARE = REPO / "roles" / "ollama" / "files" / "pmoves-model-share.py"
PLAYBOOK = """
- name: Models of the fleet
  hosts: all
  gather_facts: false
  tasks:
    - name: The role's model tasks
      ansible.builtin.include_role:
        name: pmoves.fleet.ollama
        tasks_from: "{{ task_file }}"
      loop: [validate.yml, wanted.yml, models.yml]
      loop_control:
        loop_var: task_file
"""
COPY = "Ollama | Copy models from the seed node's model share, every blob verified"


@contextlib.contextmanager
def model_share(root: Path, port: int):
    process = subprocess.Popen([sys.executable, str(SHARE), "--root", str(root), "--bind", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=5)


def run(workdir: Path, emus: list, models: list[str], share_url: str | None) -> tuple[float, int, int]:
    """One role run over the nodes; returns (wall seconds, upstream bytes, LAN bytes)."""
    hosts = {}
    for index, emu in enumerate(emus):
        source = ({"kind": "peer", "node": "node-0", "url": share_url} if share_url and index
                  else {"kind": "registry"})
        hosts[f"node-{index}"] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "pmoves_ollama_manage_service": False, "pmoves_ollama_install": False,
            "pmoves_ollama_models_dir": str(emu.models), "pmoves_ollama_disk_reserve_mb": 0,
            "pmoves_node_plan": {"class": "cpu", "planned": True,
                                 "ollama": {"listen": "127.0.0.1", "local_url": emu.url, "gpu_uuids": [],
                                            "models": [{"name": m, "aliases": [], "source": source} for m in models]}},
        }
    inventory = workdir / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    (workdir / "pb.yml").write_text(PLAYBOOK)
    for emu in emus:
        emu.reset_stats()
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
           "ANSIBLE_CACHE_PLUGIN": "memory", "ANSIBLE_FORKS": str(max(5, len(emus)))}
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory),
                           str(workdir / "pb.yml")], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
                          check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"role run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    lan = 0
    for task in report["plays"][0]["tasks"]:
        if task["task"]["name"].split(" : ", 1)[-1] == COPY:
            for result in task["hosts"].values():
                lan += sum(item.get("bytes_copied", 0) for item in result.get("results", []))
    return elapsed, sum(emu.upstream_bytes() for emu in emus), lan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--models", default="qwen2.5:0.5b")
    parser.add_argument("--pull-delay", type=float, default=0.0)
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    extra = {"OLLAMA_TEST_DOUBLE_PULL_DELAY": str(args.pull_delay)} if args.pull_delay else {}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-model-share-") as tmp:
        base = Path(tmp)
        for label in ("baseline", "ours"):
            with contextlib.ExitStack() as stack:
                emus = [stack.enter_context(emulator_process(base / label / f"node-{i}", node=f"node-{i}",
                                                             extra_env=extra)) for i in range(args.nodes)]
                share_url = None
                if label == "ours":
                    share_url = stack.enter_context(model_share(emus[0].models, free_port()))
                rows[label] = run(base / label, emus, models, share_url)
                size = sum(emus[0].get("/api/tags")["models"][i]["size"] for i in range(len(models)))
    print(f"{args.nodes} nodes want {', '.join(models)} ({size} bytes); pull delay {args.pull_delay} s/chunk")
    print(f"{'run':10} {'wall s':>8} {'upstream bytes':>16} {'x model':>8} {'LAN bytes':>14}")
    for label, (wall, upstream, lan) in rows.items():
        print(f"{label:10} {wall:8.1f} {upstream:16d} {upstream / size:8.2f} {lan:14d}")
    base_up, ours_up = rows["baseline"][1], rows["ours"][1]
    print(f"upstream bytes ours/baseline: {ours_up / base_up:.3f} (1/{args.nodes} = {1 / args.nodes:.3f})")
    print(f"wall ours/baseline: {rows['ours'][0] / rows['baseline'][0]:.2f}")


if __name__ == "__main__":
    main()
