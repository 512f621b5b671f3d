"""site.yml refuses a bad inventory before touching any host (driven through ansible-playbook)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
pytestmark = pytest.mark.integration

BAD = """
all:
  vars:
    pmoves_strategy: fastest
    pmoves_models: [{name: "llama3.2:1b", replicas: 0, pin: [nobody]}]
  children:
    gpu_nodes:
      hosts:
        gpu-a: {ansible_host: 192.0.2.10}
    cpu_nodes:
      hosts:
        gpu-a: {}
        vps: {ansible_host: 192.0.2.11}
    gateway:
      hosts: {}
"""


def run(playbook: str, inventory: Path, *extra: str, cache: Path) -> subprocess.CompletedProcess:
    # A fact cache of the test's own (never beside a seed inventory, which would then ship a facts/ dir).
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(cache / "facts"))
    return subprocess.run([ANSIBLE_PLAYBOOK, str(REPO / "playbooks" / playbook), "-i", str(inventory), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_bad_inventory_fails_fast_with_every_problem_and_no_host_touched(tmp_path: Path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(BAD)
    result = run("site.yml", inventory, "--limit", "vps", cache=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    for expected in ("host gpu-a is in 2 node-class groups", "pmoves_strategy is 'fastest'",
                     "replicas must be an integer >= 1, got 0", "pinned host 'nobody' is not in the inventory",
                     "no host in group 'gateway'", "nothing was changed on any host"):
        assert expected in out, out[-3000:]
    # Nothing ran after validation: no discovery, no connection attempt to the TEST-NET addresses.
    assert "UNREACHABLE" not in out and "Discover |" not in out


def test_good_seed_inventories_pass_validation(tmp_path: Path):
    for fleet in ("pmoves", "forge", "gpu-mesh", "homelab", "workstation", "lab"):
        if not (REPO / "inventories" / fleet / "hosts.yml").exists():
            continue
        result = run("validate.yml", REPO / "inventories" / fleet / "hosts.yml", cache=tmp_path)
        assert result.returncode == 0, f"{fleet}: {result.stdout[-2000:]}"
