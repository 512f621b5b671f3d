"""WireGuard membership through the role's own tasks (keys.yml + render.yml), three local hosts, no lab.

Issue 18: `--limit node` used to render that node's wg0.conf from the play's hosts only (0 of N peers), and a
member that failed earlier emptied everyone's. Now keys come from this run or the controller's cache and a
member with no known key stops the run, named. Each host keeps its key in its own temporary directory; nothing
outside tmp_path is written.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
HOSTS = ["wg-a", "wg-b", "wg-c"]
pytestmark = pytest.mark.integration

PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    pmoves_fleet_plan:
      wireguard:
        hosts: {hosts}
        addresses: {addresses}
  tasks:
    - name: Keys and config of the role
      ansible.builtin.include_role:
        name: pmoves.fleet.wireguard
        tasks_from: "{{{{ item }}}}"
      loop: [keys.yml, render.yml]
    - name: Show the config
      ansible.builtin.copy:
        content: "{{{{ __pmoves_wireguard_rendered.config }}}}"
        dest: "{{{{ pmoves_wireguard_dir }}}}/wg0.conf"
        mode: "0600"
"""


def run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    addresses = {h: f"10.77.0.{i + 10}" for i, h in enumerate(HOSTS)}
    (tmp_path / "pb.yml").write_text(PLAYBOOK.format(hosts=json.dumps(HOSTS), addresses=json.dumps(addresses)))
    inventory = {"all": {"hosts": {h: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                       "pmoves_wireguard_dir": str(tmp_path / h),
                                       "pmoves_wireguard_endpoint": f"192.0.2.{i + 1}:51820"}
                                   for i, h in enumerate(HOSTS)},
                         "vars": {"pmoves_artifacts_dir": str(tmp_path / "artifacts")}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    for host in HOSTS:
        (tmp_path / host).mkdir(exist_ok=True, mode=0o700)
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.json"), str(tmp_path / "pb.yml"), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def peers(tmp_path: Path, host: str) -> int:
    return (tmp_path / host / "wg0.conf").read_text().count("[Peer]")


def test_limited_rerun_keeps_every_peer_and_an_unknown_member_fails_closed(tmp_path):
    first = run(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [peers(tmp_path, h) for h in HOSTS] == [2, 2, 2]
    cache = tmp_path / "artifacts" / "wireguard-public-keys.json"
    assert sorted(json.loads(cache.read_text())) == HOSTS
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    full = (tmp_path / "wg-b" / "wg0.conf").read_text()

    limited = run(tmp_path, "--limit", "wg-b")
    assert limited.returncode == 0, limited.stdout + limited.stderr
    assert (tmp_path / "wg-b" / "wg0.conf").read_text() == full  # 2 of 2 peers, byte-identical

    cache.unlink()  # a controller that never saw wg-a and wg-c
    (tmp_path / "wg-b" / "wg0.conf").unlink()
    refused = run(tmp_path, "--limit", "wg-b")
    assert refused.returncode != 0
    assert "no public key for wg-a, wg-c" in refused.stdout
    assert not (tmp_path / "wg-b" / "wg0.conf").exists()
