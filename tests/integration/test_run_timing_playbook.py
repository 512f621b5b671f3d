"""The pmoves_run callback times tasks, handlers and roles in a real ansible-playbook run, and the report shows it.

Two local hosts, a role with a handler, tasks outside any role, and the fleet_report action at the end, all run by
ansible-playbook with the callback enabled as users enable it. Assertions are about structure and order (which
tasks, roles and hosts are there, longest first), never about how long anything took.
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

ROLE_TASKS = """
- name: Timed | a probe
  ansible.builtin.command: "true"
  changed_when: true
  notify: Timed | handler

- name: Timed | a loop
  ansible.builtin.debug:
    msg: "{{ item }}"
  loop: [1, 2, 3]
"""
ROLE_HANDLERS = """
- name: Timed | handler
  ansible.builtin.command: "true"
  changed_when: false
"""
PLAYBOOK = """
- name: First play
  hosts: all
  gather_facts: false
  roles:
    - role: timed
  tasks:
    - name: Play | a task outside any role
      ansible.builtin.debug:
        msg: hello

- name: Report
  hosts: all
  gather_facts: false
  tasks:
    - name: Report | write the report
      pmoves.fleet.fleet_report:
        artifacts_dir: "{{ report_dir }}"
        top_tasks: 3
      run_once: true
      delegate_to: localhost
      vars:
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


@pytest.fixture(scope="module")
def timed_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("timing")
    role = tmp_path / "roles" / "timed"
    (role / "tasks").mkdir(parents=True)
    (role / "handlers").mkdir()
    (role / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (role / "handlers" / "main.yml").write_text(ROLE_HANDLERS)
    (tmp_path / "hosts.json").write_text(json.dumps({"all": {"hosts": {h: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable} for h in ("h1", "h2")}}}))
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="pmoves.fleet.pmoves_run", ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_ROLES_PATH=str(tmp_path / "roles"), PMOVES_RUN_TOP_TASKS="10")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.json"), str(tmp_path / "pb.yml"),
                             "-e", f"report_dir={tmp_path / 'artifacts'}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "artifacts" / "report.json").read_text())
    return result, report, (tmp_path / "artifacts" / "report.html").read_text()


def test_report_lists_the_slowest_tasks_longest_first(timed_run):
    _result, report, _page = timed_run
    timing = report["timing"]
    slowest = timing["slowest_tasks"]
    assert len(slowest) == 3  # top_tasks
    walls = [t["wall_s"] for t in slowest]
    assert walls == sorted(walls, reverse=True)
    for task in slowest:
        assert set(task) == {"name", "role", "play", "handler", "wall_s", "runs", "hosts"}
    # Up to the report task: the role's three tasks, its handler, the play task and the report task itself.
    assert timing["tasks_timed"] == 5


def test_roles_add_up_and_include_handlers_and_play_tasks(timed_run):
    _result, report, _page = timed_run
    roles = {r["role"]: r for r in report["timing"]["roles"]}
    assert set(roles) == {"timed", "(play tasks)"}
    assert roles["timed"]["tasks"] == 3  # probe, loop, handler
    assert roles["(play tasks)"]["tasks"] == 2  # the debug and the report task (still running)
    walls = [r["wall_s"] for r in report["timing"]["roles"]]
    assert walls == sorted(walls, reverse=True)


def test_callback_prints_every_task_at_the_end(timed_run):
    result, _report, _page = timed_run
    tail = result.stdout[result.stdout.index("pmoves_run: "):]
    assert "slowest:" in tail.splitlines()[0]
    assert "timed | Timed | handler (handler)" in tail
    assert "timed | Timed | a loop" in tail and "timed | Timed | a probe" in tail
    assert "(play tasks) | Play | a task outside any role" in tail
    assert "per role: " in tail and "timed " in tail
    assert len(tail.splitlines()) == 1 + 5 + 1  # header, every task (fewer than PMOVES_RUN_TOP_TASKS), roles


def test_every_host_is_timed_on_the_role_tasks(timed_run):
    _result, report, _page = timed_run
    role_tasks = [t for t in report["timing"]["slowest_tasks"] if t["role"] == "timed" and not t["handler"]]
    assert role_tasks
    for task in role_tasks:
        assert sorted(task["hosts"]) == ["h1", "h2"]


def test_html_report_has_the_timing_tables(timed_run):
    _result, report, page = timed_run
    assert 'id="slowest-tasks"' in page and 'id="role-times"' in page
    for task in report["timing"]["slowest_tasks"]:
        assert f"<td>{task['role']}</td>" in page.replace("(play tasks)", "(play tasks)")
