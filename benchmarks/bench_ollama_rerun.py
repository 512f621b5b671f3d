"""Benchmark: second run of the pmoves.fleet.ollama role on a node whose models are in place.

Runs the role's model stage (install/service stages off: no systemd here) twice against the Ollama
TEST DOUBLE on a loopback port and reports, for each run, wall time, the requests the server saw
per endpoint and the role's changed count. The second run must send no pull and change nothing.

    .venv/bin/python benchmarks/bench_ollama_rerun.py [--models 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "doubles" / "ollama_emulator"))

from harness import emulator_process  # noqa: E402

MODELS = ["tinyllama", "qwen2.5:0.5b", "nomic-embed-text", "all-minilm", "smollm2:135m", "llama3.2:1b"]


def run_role(workdir: Path, url: str, models_dir: Path, models: list[str]) -> tuple[float, dict]:
    playbook = workdir / "bench.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": [{"role": "pmoves.fleet.ollama", "vars": {
            "pmoves_ollama_install": False, "pmoves_ollama_manage_service": False,
            "pmoves_ollama_api_url": url, "pmoves_ollama_models_dir": str(models_dir),
            "pmoves_ollama_models": models, "pmoves_ollama_disk_reserve_mb": 0,
            "pmoves_ollama_prune": True, "pmoves_ollama_listen_address": "127.0.0.1",
            "pmoves_ollama_node_class": "cpu", "pmoves_ollama_gpu_uuids": []}}],
    }]))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    start = time.perf_counter()
    proc = subprocess.run([str(REPO / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"role run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    return elapsed, report["stats"]["localhost"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4, help=f"models assigned to the node (max {len(MODELS)})")
    args = parser.parse_args()
    models = MODELS[: max(1, min(args.models, len(MODELS)))]
    with tempfile.TemporaryDirectory(prefix="bench-ollama-") as tmp:
        workdir = Path(tmp)
        with emulator_process(workdir / "models", node="bench-node") as emu:
            rows = []
            for label in ("first run (models missing)", "second run (models in place)"):
                emu.reset_stats()
                elapsed, stats = run_role(workdir, emu.url, workdir / "models", models)
                requests = {k: v for k, v in emu.stats().items() if "/_test_double/" not in k}
                rows.append((label, elapsed, sum(requests.values()), requests, stats))
    print(f"pmoves.fleet.ollama model stage, {len(models)} models, Ollama test double on loopback")
    for label, elapsed, total, requests, stats in rows:
        print(f"  {label:30s} {elapsed:6.2f} s  {total:3d} API calls  changed={stats['changed']}  {requests}")
    (_label1, t1, n1, _requests1, _stats1), (_label2, t2, n2, r2, s2) = rows
    print(f"  second/first: time {t2 / t1:.2f}x, API calls {n2}/{n1} ({n2 / n1:.2f}x); "
          f"pulls on second run: {r2.get('POST /api/pull', 0)}, changed on second run: {s2['changed']}")


if __name__ == "__main__":
    main()
