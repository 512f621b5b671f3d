"""`pmoves` as a newcomer types it: from any directory, with relative paths, venv not activated.

Each test runs the real command (`pmoves plan`: the plan playbook, contacts no host) as a
subprocess from tmp_path, with PATH stripped of every directory that holds ansible-playbook, so
the command must find ansible in its own environment (the venv of the Python running it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def bare_env() -> dict[str, str]:
    """The caller's environment without the venv: no VIRTUAL_ENV, no ansible on PATH."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not (Path(p) / "ansible-playbook").exists())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "PMOVES_")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH=path, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    assert shutil.which("ansible-playbook", path=path) is None
    return env


def pmoves(cwd: Path, *args: str, command: list[str] | None = None) -> subprocess.CompletedProcess:
    """This checkout's CLI, run by the venv's python given by absolute path (as `.venv/bin/pmoves` does)."""
    env = bare_env()
    if command is None:
        command = [sys.executable, "-m", "pmoves_cli.main"]
        env["PYTHONPATH"] = str(REPO / "cli")
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_plan_with_a_relative_inventory_from_another_directory(tmp_path: Path) -> None:
    shutil.copytree(REPO / "inventories" / "homelab", tmp_path / "myfleet")
    (tmp_path / "vars").mkdir()
    (tmp_path / "vars" / "strategy.yml").write_text("pmoves_strategy: spread\n")
    run = pmoves(tmp_path, "plan", "-i", "myfleet", "--artifacts-dir", "out", "-e", "@vars/strategy.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"$ {VENV_BIN / 'ansible-playbook'} {REPO}/playbooks/plan.yml -i {tmp_path}/myfleet" in run.stderr
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert len(plan["nodes"]) == 23 and plan["strategy"] == "spread"
    assert sum(len(m["placed"]) for m in plan["models"].values()) > 0


def test_a_relative_path_into_the_checkout_works_too(tmp_path: Path) -> None:
    inventory = os.path.relpath(REPO / "inventories" / "gpu-mesh", tmp_path)
    run = pmoves(tmp_path, "plan", "-i", inventory, "--artifacts-dir", "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "out" / "plan.json").read_text())["nodes"]


def test_an_empty_inventory_is_an_error_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "empty.yml").write_text("---\nall: {}\n")
    run = pmoves(tmp_path, "plan", "-i", "empty.yml", "--artifacts-dir", "out")
    assert run.returncode != 0
    assert f"pmoves: fleet_plan: the inventory {tmp_path}/empty.yml has no hosts" in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_fleet_without_hardware_plans_no_nodes_and_that_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bare.yml").write_text("---\nall:\n  hosts:\n    box1: {}\n")
    run = pmoves(tmp_path, "plan", "-i", "bare.yml", "--artifacts-dir", "out")
    assert run.returncode == 1
    assert f"pmoves: the plan of inventory {tmp_path}/bare.yml has no nodes" in run.stderr


def test_a_missing_inventory_is_refused(tmp_path: Path) -> None:
    run = pmoves(tmp_path, "plan", "-i", "inventories/homelab")
    assert run.returncode == 2
    assert f"inventory inventories/homelab not found (looked for {tmp_path}/inventories/homelab)" in run.stderr


def test_the_venv_entry_point_without_an_activated_venv(tmp_path: Path) -> None:
    entry = VENV_BIN / "pmoves"
    if not entry.is_file():
        pytest.skip(f"no {entry} (make cli installs it)")
    where = subprocess.run([sys.executable, "-c", "import pmoves_cli; print(pmoves_cli.__file__)"],
                           capture_output=True, text=True, env=bare_env(), check=False).stdout.strip()
    if not where.startswith(str(REPO)):
        pytest.skip(f"{entry} runs another checkout's CLI ({where})")
    shutil.copytree(REPO / "inventories" / "homelab", tmp_path / "myfleet")
    run = pmoves(tmp_path, "plan", "-i", "myfleet", "--artifacts-dir", "out", command=[str(entry)])
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(json.loads((tmp_path / "out" / "plan.json").read_text())["nodes"]) == 23
