"""The ollama role refuses bad inputs before changing anything (issue 18), run as users run it, on localhost.

Only the role's validation and model tasks run (tasks_from), against an Ollama URL nobody listens on: nothing is
installed or written. What a user relies on: a drop-in injection through an environment value stops the run naming
the variable; pruning without a plan stops instead of deleting every model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
pytestmark = pytest.mark.integration

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    pmoves_node_plan: {node_plan}
  tasks:
    - name: The role's own tasks
      ansible.builtin.include_role:
        name: pmoves.fleet.ollama
        tasks_from: "{{{{ item }}}}"
      loop: {task_files}
"""
NO_PLAN = {"class": "gpu", "planned": False,
           "ollama": {"listen": "127.0.0.1", "local_url": "http://127.0.0.1:9", "models": [], "gpu_uuids": []}}


def run(tmp_path: Path, task_files: list[str], extra: dict, node_plan: dict | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "pb.yml").write_text(PLAYBOOK.format(node_plan=json.dumps(NO_PLAN if node_plan is None else node_plan), task_files=json.dumps(task_files)))
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", ANSIBLE_CACHE_PLUGIN="memory")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(tmp_path / "pb.yml"), "-e",
                           f"@{tmp_path / 'extra.json'}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("variable, value", [
    ("pmoves_ollama_env_extra", {"OLLAMA_ORIGINS": "*\nExecStartPre=/bin/sh -c id"}),
    ("pmoves_ollama_env_extra", {"OLLAMA_ORIGINS": "a\u0000b"}),
    ("pmoves_ollama_env_extra", {"OLLAMA_ORIGINS": "ends-in\\"}),
    ("pmoves_ollama_keep_alive", "5m\n[Service]"),
])
def test_an_environment_value_that_would_inject_into_the_drop_in_is_refused(tmp_path, variable, value):
    result = run(tmp_path, ["validate.yml"], {variable: value})
    assert result.returncode != 0
    assert "environment values must not hold a line break or NUL" in result.stdout, result.stdout[-3000:]
    assert (variable if variable != "pmoves_ollama_env_extra" else "OLLAMA_ORIGINS") in result.stdout
    assert "Nothing was changed" in result.stdout


@pytest.mark.parametrize("checksums, named", [
    ({"ollama-linux-amd64.tar.zst": "abc123"}, "ollama-linux-amd64.tar.zst"),
    ({"0.30.10": {"ollama-linux-arm64.tar.zst": "sha256:" + "a" * 64}}, "0.30.10/ollama-linux-arm64.tar.zst"),
    ({"ollama-linux-amd64.tar.zst": 12345}, "ollama-linux-amd64.tar.zst"),
])
def test_a_pin_that_is_not_a_sha256_is_refused(tmp_path, checksums, named):
    result = run(tmp_path, ["validate.yml"], {"pmoves_ollama_checksums": checksums})
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "pmoves_ollama_checksums must map asset names" in out, out[-3000:]
    assert f"not {named}." in out and "Nothing was changed" in out


def test_a_well_formed_pin_passes_validation(tmp_path):
    result = run(tmp_path, ["validate.yml"], {"pmoves_ollama_checksums": {
        "ollama-linux-amd64.tar.zst": "A" * 64, "0.30.10": {"ollama-linux-arm64.tar.zst": "0" * 64}}})
    assert result.returncode == 0, result.stdout[-3000:]


def test_prune_without_a_plan_refuses_instead_of_deleting_every_model(tmp_path):
    result = run(tmp_path, ["validate.yml", "wanted.yml", "models.yml"], {"pmoves_ollama_prune": True})
    assert result.returncode != 0
    assert "there is no plan for this host" in result.stdout, result.stdout[-3000:]
    assert "nothing was\n" in result.stdout or "nothing was removed" in result.stdout.replace("\n", " ")
