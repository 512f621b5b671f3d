"""The run's failure budget comes from the inventory, and a run that stops early still leaves a report (issue 18).

Three local hosts, one fails; the apply plays' gate (playbooks/tasks/fail_gate.yml) reads
pmoves_max_fail_percentage from group_vars (the play keyword only ever saw -e). The report a stopped run leaves
is written by the pmoves_run callback (write_fallback_report), checked here on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.callback.pmoves_run import write_fallback_report

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
pytestmark = pytest.mark.integration

PLAYBOOK = f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: One host fails
      ansible.builtin.fail:
        msg: boom
      when: inventory_hostname == 'h1'
  post_tasks:
    - name: The gate every apply play ends with
      ansible.builtin.import_tasks: {REPO / 'playbooks' / 'tasks' / 'fail_gate.yml'}

- hosts: all
  gather_facts: false
  tasks:
    - name: The next stage
      ansible.builtin.debug:
        msg: next stage ran
"""


def run(tmp_path: Path, group_vars: dict, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "group_vars").mkdir(exist_ok=True)
    (tmp_path / "group_vars" / "all.json").write_text(json.dumps(group_vars))
    (tmp_path / "hosts.json").write_text(json.dumps({"all": {"hosts": {h: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable} for h in ("h1", "h2", "h3")}}}))
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", ANSIBLE_CACHE_PLUGIN="memory")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.json"), str(tmp_path / "pb.yml"), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_budget_in_group_vars_stops_the_run(tmp_path):
    result = run(tmp_path, {"pmoves_max_fail_percentage": 0})
    assert "next stage ran" not in result.stdout
    assert "1 of 3 hosts failed or are unreachable (h1), more than pmoves_max_fail_percentage=0 %" in result.stdout


def test_within_the_budget_the_run_goes_on(tmp_path):
    result = run(tmp_path, {"pmoves_max_fail_percentage": 50})
    assert result.stdout.count("next stage ran") == 2  # h2 and h3
    assert "hosts failed or are unreachable" not in result.stdout


def test_extra_vars_still_win(tmp_path):
    result = run(tmp_path, {"pmoves_max_fail_percentage": 0}, "-e", "pmoves_max_fail_percentage=50")
    assert result.stdout.count("next stage ran") == 2


def test_a_stopped_run_leaves_a_report_naming_failed_and_unreachable_hosts(tmp_path):
    plan = {"schema": 1, "nodes": {"h1": {"class": "gpu", "models": ["llama3.2:1b"]}, "h2": {"class": "cpu"},
                                   "h3": {"class": "cpu"}}, "models": {}, "warnings": []}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    hosts = {"h1": {"ok": 3, "changed": 0, "failed": 1, "unreachable": 0, "skipped": 0, "changed_tasks": [],
                    "messages": ["failed: Ollama | pull: boom"]},
             "h2": {"ok": 1, "changed": 0, "failed": 0, "unreachable": 1, "skipped": 0, "changed_tasks": [],
                    "messages": ["unreachable: Gathering Facts: ssh"]},
             "h3": {"ok": 9, "changed": 2, "failed": 0, "unreachable": 0, "skipped": 0, "changed_tasks": ["x"],
                    "messages": []}}
    path = write_fallback_report(str(tmp_path / "plan.json"), hosts)
    assert path == str(tmp_path / "report.html")
    report = json.loads((tmp_path / "report.json").read_text())
    text = json.dumps(report)
    assert "failed or unreachable: h1, h2" in text
    assert "h1" in (tmp_path / "report.html").read_text() and "h2" in (tmp_path / "report.html").read_text()
