"""pmoves.fleet.lab_podman on a real container (the connection of `make lab` and the molecule scenarios).

Modules go on the standard input of one `podman exec -i` (no module file copied in), `copy`/`template` files
still arrive, `fetch` reads what the container sees (podman's bind-mounted /etc/hostname), an async task still
runs, and a stopped container makes the host unreachable, not failed (the fleet report and the failure budget
count unreachable hosts apart). Skipped without podman or the locally built base image (tests/images/build.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_apt_refresh import sh, throwaway_node

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]

PLAY = """
- name: Lab connection
  hosts: all
  gather_facts: false
  tasks:
    - name: Stat (a module, pipelined)
      ansible.builtin.stat:
        path: /etc/os-release
      register: os_release
    - name: Copy
      ansible.builtin.copy:
        content: "copied {{ inventory_hostname }}\\n"
        dest: /opt/copied
        mode: "0644"
    - name: Template
      ansible.builtin.template:
        src: "{{ playbook_dir }}/conf.j2"
        dest: /opt/conf
        mode: "0644"
    - name: Fetch the hostname podman bind-mounts into the container
      ansible.builtin.fetch:
        src: /etc/hostname
        dest: "{{ playbook_dir }}/fetched/"
    - name: Async command
      ansible.builtin.command: cat /opt/conf
      async: 30
      poll: 1
      register: conf
      changed_when: false
    - name: What arrived
      ansible.builtin.assert:
        that:
          - os_release.stat.exists
          - conf.stdout == "conf of " ~ inventory_hostname
"""


@pytest.fixture(scope="module")
def node():
    with throwaway_node("pmoves-conn-test") as name:
        yield name


def playbook(tmp_path: Path, node: str) -> subprocess.CompletedProcess:
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "conf.j2").write_text("conf of {{ inventory_hostname }}")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-vvv", "-i", f"{node},", "-c", "pmoves.fleet.lab_podman",
         "-e", "ansible_python_interpreter=/usr/bin/python3", str(tmp_path / "play.yml")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def recap(stdout: str, node: str) -> dict[str, int]:
    found = re.search(rf"^{node}\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout, re.M)
    assert found, stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups()), strict=True))


def test_modules_are_pipelined_and_files_arrive(tmp_path, node):
    run = playbook(tmp_path, node)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert recap(run.stdout, node) == {"ok": 6, "changed": 3, "unreachable": 0, "failed": 0}
    # Only the two file-carrying tasks and the async task put anything into the container; every module is pipelined.
    puts = re.findall(r"^<[^>]+> PUT (\S+) TO (\S+)", run.stdout, re.M)
    assert len(puts) <= 5, puts  # copy + template (their content and, async, the module and its wrapper)
    assert not any(Path(src).name.startswith("AnsiballZ_stat") for src, _dst in puts), puts
    execs = re.findall(r"^<[^>]+> RUN \[.*?'exec', '-i'", run.stdout, re.M)
    assert execs, "no module went over podman exec -i"
    fetched = (tmp_path / "fetched" / node / "etc" / "hostname").read_text().strip()
    assert fetched == sh("podman", "exec", node, "cat", "/etc/hostname").stdout.strip()
    assert sh("podman", "exec", node, "cat", "/opt/copied").stdout == f"copied {node}\n"


def test_a_stopped_container_is_unreachable_not_failed(tmp_path, node):
    sh("podman", "stop", "-t", "0", node)
    try:
        run = playbook(tmp_path, node)
    finally:
        sh("podman", "start", node)
    assert recap(run.stdout, node) == {"ok": 0, "changed": 0, "unreachable": 1, "failed": 0}
    assert "container state improper" in run.stdout, run.stdout[-2000:]
