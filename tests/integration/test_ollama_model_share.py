"""Models fetched once per fleet: one node pulls from the registry, the others copy over the LAN (issue 20).

Three Ollama test doubles (own OLLAMA_MODELS each, real model stores) stand in for three nodes that the
plan gives the same model; node-a is its seed and runs the role's model share (roles/ollama/files/
pmoves-model-share.py, a real process). The ollama role's model tasks run as site.yml runs them, one
play over the three hosts. The double counts the bytes each node's pulls fetched from the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "doubles" / "ollama_emulator"))

from harness import emulator_process, free_port  # noqa: E402

ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
SHARE = REPO / "roles" / "ollama" / "files" / "pmoves-model-share.py"
MODEL = "qwen2.5:0.5b"
SECOND = "all-minilm:latest"
BOTH = (MODEL, SECOND)
NODES = ("node-a", "node-b", "node-c")
pytestmark = pytest.mark.integration

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


@contextlib.contextmanager
def model_share(root: Path, port: int) -> Iterator[str]:
    """The role's model share serving ``root`` on a loopback port, as its systemd unit runs it."""
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


def model_bytes(models: Path, name: str = MODEL) -> int:
    model, tag = name.split(":")
    manifest = json.loads((models / "manifests/registry.ollama.ai/library" / model / tag).read_bytes())
    return sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]


def run_role(tmp_path: Path, emus: dict, share_url: str, name: str = "run", check: bool = False,
             models: tuple[str, ...] = (MODEL,)) -> tuple[int, dict, str]:
    """The role's model tasks on the three nodes; node-a pulls from the registry, b and c copy from its share."""
    hosts = {}
    for node, emu in emus.items():
        source = ({"kind": "registry"} if node == "node-a" else {"kind": "peer", "node": "node-a", "url": share_url})
        hosts[node] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "pmoves_ollama_manage_service": False, "pmoves_ollama_install": False,
            "pmoves_ollama_models_dir": str(emu.models), "pmoves_ollama_disk_reserve_mb": 0,
            "pmoves_node_plan": {"class": "cpu", "planned": True,
                                 "ollama": {"listen": "127.0.0.1", "local_url": emu.url, "gpu_uuids": [],
                                            "models": [{"name": m, "aliases": [], "source": source}
                                                       for m in models]}},
        }
    (tmp_path / f"{name}.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_LOCALHOST_WARNING="false")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / f"{name}.json"), str(tmp_path / "pb.yml"),
                           *(["--check"] if check else [])],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert "{" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    results: dict[str, dict] = {}
    for task in report["plays"][0]["tasks"]:
        for host, result in task["hosts"].items():
            results.setdefault(host, {})[task["task"]["name"].split(" : ", 1)[-1]] = result
    (tmp_path / f"{name}.out").write_text(proc.stdout + proc.stderr)
    return proc.returncode, results, proc.stdout + proc.stderr


COPY = "Ollama | Copy models from the seed node's model share, every blob verified"
PULL_REGISTRY = "Ollama | Pull the models this node fetches from the registry and create their aliases"
PULL_AFTER = "Ollama | Pull what the LAN copy did not bring and create the aliases of the copied models"


@contextlib.contextmanager
def three_nodes(tmp_path: Path) -> Iterator[dict]:
    with contextlib.ExitStack() as stack:
        yield {node: stack.enter_context(emulator_process(tmp_path / node, node=node)) for node in NODES}


def test_three_nodes_fetch_the_model_from_the_registry_once(tmp_path):
    with three_nodes(tmp_path) as emus, model_share(emus["node-a"].models, free_port()) as share_url:
        # check mode first: predicts the pull on the seed, fetches and writes nothing
        rc, results, output = run_role(tmp_path, emus, share_url, name="check", check=True, models=BOTH)
        assert rc == 0, output[-4000:]
        assert results["node-a"][PULL_REGISTRY]["changed"]
        assert results["node-a"][PULL_REGISTRY]["pulled"] == list(BOTH)  # one call predicts both pulls
        assert all(emu.upstream_bytes() == 0 and not emu.get("/api/tags")["models"] for emu in emus.values())
        assert not (emus["node-b"].models / "manifests").exists() or not list((emus["node-b"].models).rglob("0.5b"))
        rc, results, output = run_role(tmp_path, emus, share_url, models=BOTH)
        assert rc == 0, output[-4000:]
        sizes = {m: model_bytes(emus["node-a"].models, m) for m in BOTH}
        size = sum(sizes.values())
        upstream = {node: emu.upstream_bytes() for node, emu in emus.items()}
        # upstream bytes = 1 x the models' size: only the seed pulled them
        assert upstream == {"node-a": size, "node-b": 0, "node-c": 0}
        tags = {node: emu.get("/api/tags")["models"] for node, emu in emus.items()}
        for node in ("node-b", "node-c"):
            copy = results[node][COPY]["results"][0]
            assert copy["copied"] == list(BOTH) and copy["bytes_by_model"] == sizes and not copy["errors"]
            assert "POST /api/pull" not in emus[node].stats(), "the copied model must count as present"
            assert sorted((m["name"], m["digest"], m["size"]) for m in tags[node]) == \
                sorted((m["name"], m["digest"], m["size"]) for m in tags["node-a"])
            assert results[node][PULL_REGISTRY].get("skipped") or not results[node][PULL_REGISTRY]["models"]
            # one call for the copied models: present, nothing pulled
            after = results[node][PULL_AFTER]
            assert not after["changed"] and after["pulled"] == [] and not after["failed_models"]
            assert [m["name"] for m in after["models"]] == list(BOTH)
        # the seed: one call pulled both models
        assert results["node-a"][PULL_REGISTRY]["changed"]
        assert results["node-a"][PULL_REGISTRY]["pulled"] == list(BOTH)
        assert emus["node-a"].stats()["POST /api/pull"] == len(BOTH)
        assert results["node-a"][PULL_AFTER].get("skipped"), "nothing from a peer and no prune: no second call"
        chat = emus["node-c"].post("/api/chat", {"model": MODEL, "stream": False,
                                                 "messages": [{"role": "user", "content": "hello"}]})
        assert "node=node-c" in chat["message"]["content"]
        # a rerun changes nothing and fetches nothing
        for emu in emus.values():
            emu.reset_stats()
        rc, again, output = run_role(tmp_path, emus, share_url, name="again", models=BOTH)
        assert rc == 0, output[-4000:]
        assert not any(result.get("changed") for host in again.values() for result in host.values())
        assert sum(emu.upstream_bytes() for emu in emus.values()) == 0
        # one module call per node for the whole set: a single /api/tags read, no pull, copy or delete
        for node, emu in emus.items():
            stats = emu.stats()
            assert stats.get("GET /api/tags") == 1, (node, stats)
            assert not {"POST /api/pull", "POST /api/copy", "DELETE /api/delete"} & set(stats), (node, stats)
        # and check mode on the converged fleet predicts no change
        rc, check, output = run_role(tmp_path, emus, share_url, name="check-again", check=True, models=BOTH)
        assert rc == 0, output[-4000:]
        assert not any(result.get("changed") for host in check.values() for result in host.values())


def test_a_corrupt_blob_is_refused_and_a_stopped_share_falls_back_to_a_pull(tmp_path):
    with three_nodes(tmp_path) as emus:
        seed = emus["node-a"]
        seed.post("/api/pull", {"model": MODEL, "stream": False})
        size = model_bytes(seed.models)
        manifest = json.loads((seed.models / "manifests/registry.ollama.ai/library/qwen2.5/0.5b").read_bytes())
        largest = max(manifest["layers"], key=lambda layer: layer["size"])
        blob = seed.models / "blobs" / largest["digest"].replace(":", "-")
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, wrong sha256: only the hash can tell
        blob.write_bytes(bytes(data))
        seed.reset_stats()
        with model_share(seed.models, free_port()) as share_url:
            rc, results, output = run_role(tmp_path, emus, share_url)
        assert rc == 0, output[-4000:]
        for node in ("node-b", "node-c"):
            copy = results[node][COPY]["results"][0]
            assert copy["not_found"] == [MODEL] and not copy["copied"]
            assert "is corrupt" in copy["errors"][MODEL] and largest["digest"] in copy["errors"][MODEL]
            # the corrupt bytes never reached the node: the blob it has now is the registry's (the fallback pull)
            pulled = emus[node].models / "blobs" / largest["digest"].replace(":", "-")
            assert "sha256:" + hashlib.sha256(pulled.read_bytes()).hexdigest() == largest["digest"]
            assert not list((emus[node].models / "blobs").glob("*.pmoves-partial"))
            # the fallback: a direct pull from the registry
            assert results[node][PULL_AFTER]["changed"] and emus[node].upstream_bytes() == size
            assert results[node][PULL_AFTER]["pulled"] == [MODEL]

        # the share is stopped (the seed node is down): the copy is skipped and the fallback pull runs
        with emulator_process(tmp_path / "node-d", node="node-d") as fresh:
            emus_d = {"node-a": seed, "node-b": fresh}
            stopped = f"http://127.0.0.1:{free_port()}"
            rc, results, output = run_role(tmp_path, emus_d, stopped, name="stopped")
            assert rc == 0, output[-4000:]
            copy = results["node-b"][COPY]["results"][0]
            assert copy["not_found"] == [MODEL] and "cannot be read" in copy["errors"][MODEL]
            assert results["node-b"][PULL_AFTER]["changed"] and fresh.upstream_bytes() == size
            assert results["node-b"][PULL_AFTER]["pulled"] == [MODEL]


def test_the_module_from_a_share_checks_fails_clearly_and_needs_names(tmp_path):
    with emulator_process(tmp_path / "seed", node="seed") as seed, model_share(seed.models, free_port()) as url:
        seed.post("/api/pull", {"model": MODEL, "stream": False})
        size = model_bytes(seed.models)
        dest = tmp_path / "dest"
        stopped = f"http://127.0.0.1:{free_port()}"
        playbook = tmp_path / "module.yml"
        playbook.write_text(f"""
- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: would copy
      pmoves.fleet.ollama_blob_sync: {{names: ["{MODEL}"], src: "{url}", dest: "{dest}"}}
      check_mode: true
    - name: share down
      pmoves.fleet.ollama_blob_sync: {{names: ["{MODEL}"], src: "{stopped}", dest: "{dest}", timeout: 2}}
      ignore_errors: true
    - name: no names
      pmoves.fleet.ollama_blob_sync: {{src: "{url}", dest: "{dest}"}}
      ignore_errors: true
    - name: not on the share
      pmoves.fleet.ollama_blob_sync: {{names: ["all-minilm"], src: "{url}", dest: "{dest}"}}
      ignore_errors: true
""")
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
                   ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_LOCALHOST_WARNING="false")
        proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(playbook)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        report = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
        results = {t["task"]["name"]: t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]}
    would = results["would copy"]
    assert would["changed"] and would["bytes_by_model"] == {MODEL: size} and not dest.exists()
    assert results["share down"]["failed"] and stopped in results["share down"]["msg"]
    assert results["no names"]["failed"] and "names is required" in results["no names"]["msg"]
    assert results["not on the share"]["failed"] and "does not have all-minilm" in results["not on the share"]["msg"]
    for name in ("share down", "no names", "not on the share"):
        assert "Traceback" not in json.dumps(results[name]), results[name]
