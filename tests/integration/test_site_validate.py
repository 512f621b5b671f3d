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


CONTRADICTORY = """
all:
  vars:
    pmoves_models: ["ollama.com/library/Qwen2.5:0.5B", {name: nomic-embed-text, alias: "S LOC", replica: 2}]
  children:
    gpu_nodes:
      hosts:
        gpu-a: {ansible_host: 192.0.2.10, pmoves_ollama_serve_network: false}
        gpu-b: {ansible_host: 127.0.0.1}
    cpu_nodes:
      hosts:
        vps: {ansible_host: 192.0.2.11}
    gateway:
      hosts:
        vps:
"""


def test_an_ollama_the_gateway_cannot_reach_fails_validation_before_any_host(tmp_path: Path):
    """The gateway on vps uses the GPU nodes' Ollama: one may not serve the network, the other has only a loopback
    address. Both are refused with the reason, with the catalog's typo and bad alias, before discovery."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(CONTRADICTORY)
    result = run("site.yml", inventory, cache=tmp_path)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    for expected in ("host gpu-a: pmoves_ollama_serve_network is false, but its Ollama is used from other hosts "
                     "(vps (gateway))",
                     "host gpu-b: its Ollama must serve other hosts (vps) but its address '127.0.0.1' (from "
                     "ansible_host) is loopback",
                     "pmoves_models[1] (nomic-embed-text): unknown key 'replica' (known keys: name, replicas,",
                     "alias 'S LOC' is not a valid Ollama name", "nothing was changed on any host"):
        assert expected in out, out[-3000:]
    assert "UNREACHABLE" not in out and "Discover |" not in out
