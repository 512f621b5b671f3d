"""The progress view of `pmoves apply` in a real run: host state from the events, model bytes from the node.

A playbook pulls a model from the Ollama test double, served slowly (a pause between progress lines), through
pmoves.fleet.ollama_model (and ollama_model_set) on localhost. The CLI's runner path (`run_playbook`, plain lines as when stdout is not a
terminal) must show the host running the pull with its bytes, and the host's state once done. Without the progress
view (a plain ansible-playbook run) the action plugin adds nothing to the module's arguments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "cli"))
sys.path.insert(0, str(REPO / "tests" / "doubles" / "ollama_emulator"))

from harness import running_emulator  # noqa: E402
from pmoves_cli.commands import CALLBACKS, Invocation  # noqa: E402
from pmoves_cli.main import PROGRESS_DIR_ENV, run_playbook  # noqa: E402

pytestmark = pytest.mark.integration
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
MODEL = "smollm2:135m"
PLAYBOOK = """
- name: Pull with the progress view
  hosts: all
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Ollama | Pull a model
      MODULE_AND_MODEL
        host: "{{ ollama_url }}"
        timeout: 30
      register: pulled

    - name: Check | the pull wrote the model
      ansible.builtin.assert:
        that: not pulled.pulled or pulled.bytes_pulled > 0
"""
LINE = re.compile(r"^pmoves progress: node-a running .* \| pull: smollm2:135m pulling "
                  r"(?P<done>[\d.]+ [KMG]?B)/(?P<total>[\d.]+ [KMG]?B) (?P<pct>\d+)% (?P<rate>\S+ \S+|-)$")


def to_bytes(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]


# The same progress through ollama_model (one model) and ollama_model_set (the node's set in one call, same action).
MODULES = {
    "ollama_model": 'pmoves.fleet.ollama_model:\n        name: "{{ model }}"',
    "ollama_model_set": 'pmoves.fleet.ollama_model_set:\n        models: [{name: "{{ model }}"}]',
}


@pytest.fixture(params=sorted(MODULES))
def playbook(tmp_path, request):
    (tmp_path / "hosts.json").write_text(json.dumps({"all": {"hosts": {"node-a": {"ansible_connection": "local"}}}}))
    (tmp_path / "pb.yml").write_text(PLAYBOOK.replace("MODULE_AND_MODEL", MODULES[request.param]))
    return tmp_path


@pytest.fixture
def slow_emulator(tmp_path):
    with running_emulator(tmp_path / "models", node="progress-node") as emu:
        emu.emulator.delay = 0.4  # about 6 s for the model's 16 progress steps: several polls see it move
        yield emu


def invocation(playbook: Path, emu) -> Invocation:
    return Invocation(playbook=str(playbook / "pb.yml"), inventory=str(playbook / "hosts.json"),
                      args=["-e", f"model={MODEL}", "-e", f"ollama_url={emu.url}"],
                      env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_CALLBACKS_ENABLED": CALLBACKS,
                           "ANSIBLE_CACHE_PLUGIN": "memory", "ANSIBLE_NOCOLOR": "1"})


def test_the_view_shows_the_host_and_the_bytes_of_its_pull(playbook, slow_emulator, capfd):
    rc, progress = run_playbook(invocation(playbook, slow_emulator), REPO, live=False, title="test",
                                progress_lines=True, lines_every_s=0.3)
    out = capfd.readouterr().out
    assert rc == 0, out[-4000:]
    lines = [line for line in out.splitlines() if line.startswith("pmoves progress: ")]
    pulls = [LINE.match(line) for line in lines if re.search(r"\| pull: .* pulling .*/", line)]
    assert len(pulls) >= 2 and all(pulls), "\n".join(lines)
    # The bytes moved while the pull ran (Ollama announces layers one by one: the total grows with them), never
    # past the model's size, and a rate was known once two samples were apart.
    size = slow_emulator.get("/api/tags")["models"][0]["size"]
    assert len({match["done"] for match in pulls}) >= 2
    assert all(to_bytes(match["done"]) <= to_bytes(match["total"]) <= size * 1.05 for match in pulls)
    assert any(match["rate"].endswith("B/s") for match in pulls)
    assert lines[-1] == "pmoves progress: node-a ok ok=2 changed=1 failed=0"
    assert progress.hosts["node-a"].models_done == [MODEL]
    assert slow_emulator.stats()["POST /api/pull"] == 1
    # Nothing is left on the node: the module removes its progress file.
    assert not list(Path("/tmp").glob(".pmoves-pull-progress-*.json"))

    # A converged rerun pulls nothing, so there is no pull to show.
    rc, _progress = run_playbook(invocation(playbook, slow_emulator), REPO, live=False, title="test",
                                 progress_lines=True, lines_every_s=0.3)
    out = capfd.readouterr().out
    assert rc == 0, out[-4000:]
    assert "| pull: " not in out and "pmoves progress: node-a ok ok=2 changed=0 failed=0" in out
    assert slow_emulator.stats()["POST /api/pull"] == 1


def test_without_the_view_the_module_runs_as_before(playbook, slow_emulator):
    slow_emulator.emulator.delay = 0
    env = {k: v for k, v in os.environ.items() if k != PROGRESS_DIR_ENV}
    env.update(invocation(playbook, slow_emulator).env)
    command = invocation(playbook, slow_emulator).command_line(ANSIBLE_PLAYBOOK)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "pmoves progress" not in result.stdout
    assert slow_emulator.stats()["POST /api/pull"] == 1
