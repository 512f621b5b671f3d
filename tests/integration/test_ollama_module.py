"""pmoves.fleet.ollama_model and ollama_blob_sync driven by ansible-playbook, as users call them.

The Ollama test double runs as a real process on a loopback port (two of them, with separate
model directories, for the LAN copy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "doubles" / "ollama_emulator"))
sys.path.insert(0, str(REPO / "tests" / "doubles"))

from harness import emulator_process  # noqa: E402
from hostile_ollama import hostile_ollama  # noqa: E402

pytestmark = pytest.mark.integration


def play(tmp_path: Path, tasks: str, check: bool = False, name: str = "play.yml") -> tuple[int, dict]:
    """Run tasks (YAML text) on localhost; return (rc, {task name: result}) from the json callback."""
    playbook = tmp_path / name
    header = ("- hosts: localhost\n  gather_facts: false\n"
              "  vars:\n    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n  tasks:\n")
    playbook.write_text(header + textwrap.indent(textwrap.dedent(tasks), "    "))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    argv = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "{" in proc.stdout, proc.stdout + proc.stderr
    # the json document, without what other enabled callbacks (timer) print after it
    report = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    results = {}
    for task in report["plays"][0]["tasks"]:
        results[task["task"]["name"]] = task["hosts"]["localhost"]
    return proc.returncode, results


def test_module_pulls_once_aliases_checks_and_fails_clearly(tmp_path):
    with emulator_process(tmp_path / "models", node="int-node") as emu:
        tasks = f"""\
            - name: pull
              pmoves.fleet.ollama_model:
                name: tinyllama
                alias: XS-LOC-FRE-tinyllama-1.1b
                host: {emu.url}
                models_dir: {tmp_path / "models"}
            """
        rc, first = play(tmp_path, tasks)
        assert rc == 0 and first["pull"]["changed"]
        assert first["pull"]["model"]["name"] == "tinyllama:latest"
        assert first["pull"]["api_calls"]["POST /api/pull"] == 1
        rc, second = play(tmp_path, tasks.replace("name: tinyllama\n", "name: tinyllama:latest\n"))
        assert rc == 0 and not second["pull"]["changed"]
        assert "POST /api/pull" not in second["pull"]["api_calls"]
        assert second["pull"]["model"] == first["pull"]["model"]

        rc, check = play(tmp_path, f"""\
            - name: would pull
              pmoves.fleet.ollama_model:
                name: all-minilm
                host: {emu.url}
            - name: would delete
              pmoves.fleet.ollama_model:
                name: tinyllama
                state: absent
                host: {emu.url}
            """, check=True)
        assert rc == 0 and check["would pull"]["changed"] and check["would delete"]["changed"]
        assert emu.stats().get("POST /api/pull") == 1 and "DELETE /api/delete" not in emu.stats()

        rc, typo = play(tmp_path, f"""\
            - name: typo
              pmoves.fleet.ollama_model:
                name: tinyllama:1.1b-typo
                host: {emu.url}
            """)
        assert rc != 0 and typo["typo"]["failed"]
        assert "pull model manifest: file does not exist" in typo["typo"]["msg"]
        assert "Traceback" not in json.dumps(typo["typo"])

    rc, down = play(tmp_path, """\
        - name: down
          pmoves.fleet.ollama_model:
            name: tinyllama
            host: http://127.0.0.1:9
            timeout: 3
        """)
    assert rc != 0 and "http://127.0.0.1:9/api/tags" in down["down"]["msg"]


def test_lan_copy_between_two_nodes_avoids_a_second_download(tmp_path):
    models_a, models_b = tmp_path / "node-a", tmp_path / "node-b"
    with emulator_process(models_a, node="node-a") as node_a, emulator_process(models_b, node="node-b") as node_b:
        node_a.post("/api/pull", {"model": "qwen2.5:0.5b", "stream": False})
        tasks = f"""\
            - name: copy
              pmoves.fleet.ollama_blob_sync:
                names: [qwen2.5:0.5b, not-cached:7b]
                src: {models_a}
                dest: {models_b}
                missing: skip
            - name: ensure on b
              pmoves.fleet.ollama_model:
                name: qwen2.5:0.5b
                host: {node_b.url}
            """
        rc, results = play(tmp_path, tasks)
        assert rc == 0
        assert results["copy"]["changed"] and results["copy"]["copied"] == ["qwen2.5:0.5b"]
        assert results["copy"]["not_found"] == ["not-cached:7b"]
        assert not results["ensure on b"]["changed"], "the copied model must count as present"
        assert "POST /api/pull" not in node_b.stats()
        a = node_a.get("/api/tags")["models"][0]
        b = node_b.get("/api/tags")["models"][0]
        assert (a["name"], a["digest"], a["size"]) == (b["name"], b["digest"], b["size"])
        chat = node_b.post("/api/chat", {"model": "qwen2.5:0.5b", "stream": False,
                                         "messages": [{"role": "user", "content": "hello"}]})
        assert "node=node-b" in chat["message"]["content"]
        rc, again = play(tmp_path, tasks, name="again.yml")
        assert rc == 0 and not again["copy"]["changed"]
        assert again["copy"]["present"] == ["qwen2.5:0.5b"]


def test_a_hostile_server_and_bad_names_fail_the_task_cleanly(tmp_path):
    """A hung body, a path-traversing name and a shell-ish name: failed tasks with a clear msg, no traceback."""
    stores = tmp_path / "stores"
    src, dest = stores / "src", stores / "dest"
    (src / "manifests").mkdir(parents=True)
    planted = stores / "x" / "latest"  # where '../../x' points from src/manifests
    planted.parent.mkdir(parents=True)
    planted.write_text('{"layers": []}')
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with hostile_ollama("hang_body") as server:
        _rc, results = play(tmp_path, f"""\
            - name: hung body
              pmoves.fleet.ollama_model:
                name: tinyllama
                host: {server.url}
                timeout: 1
              ignore_errors: true
            - name: traversal
              pmoves.fleet.ollama_blob_sync:
                names: ["../../x"]
                src: {src}
                dest: {dest}
              ignore_errors: true
            - name: shell name
              pmoves.fleet.ollama_model:
                name: "a; rm -rf /"
                host: {server.url}
              ignore_errors: true
            """)
        requests = dict(server.requests)
    hung = results["hung body"]
    assert hung["failed"]
    assert f"GET {server.url}/api/tags" in hung["msg"] and "stopped sending" in hung["msg"], hung["msg"]
    assert hung["url"] == f"{server.url}/api/tags"
    for name in ("hung body", "traversal", "shell name"):
        # ansible-core 2.19 adds "exception": "(traceback unavailable)" to any fail_json called in an except block
        assert "Traceback" not in json.dumps(results[name]) and "MODULE FAILURE" not in results[name]["msg"]
    assert results["traversal"]["failed"] and "invalid Ollama model name '../../x'" in results["traversal"]["msg"]
    assert results["shell name"]["failed"] and "whitespace" in results["shell name"]["msg"]
    assert requests == {"GET /api/tags": 1}, "a bad name is refused before any request"
    assert sorted(str(p) for p in tmp_path.rglob("*") if p.suffix != ".yml") == before


def test_model_set_reconciles_the_whole_set_in_one_call(tmp_path):
    """ollama_model_set as users call it: one task for every model, check mode, diff, failures that keep the others."""
    with emulator_process(tmp_path / "models", node="int-set") as emu:
        emu.post("/api/pull", {"model": "smollm2:135m", "stream": False})
        emu.reset_stats()
        tasks = f"""\
            - name: set
              pmoves.fleet.ollama_model_set:
                models:
                  - {{name: tinyllama, aliases: [XS-LOC-FRE-tinyllama-1.1b]}}
                  - {{name: all-minilm, source: {{kind: registry}}}}
                host: {emu.url}
                models_dir: {tmp_path / "models"}
                prune: true
              diff: true
            """
        rc, check = play(tmp_path, tasks, check=True)
        assert rc == 0, check
        would = check["set"]
        assert would["changed"] and would["pulled"] == ["tinyllama:latest", "all-minilm:latest"]
        assert would["aliases_created"] == ["xs-loc-fre-tinyllama-1.1b:latest"] and would["removed"] == ["smollm2:135m"]
        assert would["api_calls"] == {"GET /api/tags": 1}
        assert not {"POST /api/pull", "POST /api/copy", "DELETE /api/delete"} & set(emu.stats())
        assert "smollm2:135m" in would["diff"]["before"] and "smollm2:135m" not in would["diff"]["after"]

        rc, first = play(tmp_path, tasks)
        assert rc == 0, first
        done = first["set"]
        assert done["changed"] and done["pulled"] == would["pulled"] and done["removed"] == ["smollm2:135m"]
        assert [m["name"] for m in done["models"]] == ["tinyllama:latest", "all-minilm:latest"]
        assert done["models"][0]["aliases"][0]["name"] == "xs-loc-fre-tinyllama-1.1b:latest"
        assert sorted(m["name"] for m in emu.get("/api/tags")["models"]) == [
            "all-minilm:latest", "tinyllama:latest", "xs-loc-fre-tinyllama-1.1b:latest"]

        rc, again = play(tmp_path, tasks)
        assert rc == 0 and not again["set"]["changed"]
        assert again["set"]["api_calls"] == {"GET /api/tags": 1}

        rc, typo = play(tmp_path, f"""\
            - name: typo
              pmoves.fleet.ollama_model_set:
                models: [{{name: tinyllama}}, {{name: "tinyllama:1.1b-typo"}}, {{name: smollm2:135m}}]
                host: {emu.url}
            """)
        failed = typo["typo"]
        assert rc != 0 and failed["failed"] and failed["failed_models"] == ["tinyllama:1.1b-typo"]
        assert "tinyllama:1.1b-typo" in failed["msg"] and f"{emu.url}/api/pull" in failed["msg"]
        assert "pull model manifest: file does not exist" in failed["msg"]
        assert failed["pulled"] == ["smollm2:135m"]  # the model after the failed one was still pulled
        assert "Traceback" not in json.dumps(failed)

    rc, down = play(tmp_path, """\
        - name: down
          pmoves.fleet.ollama_model_set:
            models: [{name: tinyllama}]
            host: http://127.0.0.1:9
            timeout: 3
        """)
    assert rc != 0 and "http://127.0.0.1:9/api/tags" in down["down"]["msg"]
