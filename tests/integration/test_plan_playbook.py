"""playbooks/plan.yml as users run it: controller only, creates DIR, byte-identical reruns, check mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def run_plan(inventory: str, artifacts: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run([PLAYBOOK, "playbooks/plan.yml", "-i", f"inventories/{inventory}",
                           "-e", f"pmoves_artifacts_dir={artifacts}", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_homelab_plan_twice_is_byte_identical(tmp_path: Path) -> None:
    artifacts = tmp_path / "new" / "dir"  # does not exist yet: plan.yml creates it
    first = run_plan("homelab", artifacts)
    assert first.returncode == 0, first.stdout + first.stderr
    plan_bytes = (artifacts / "plan.json").read_bytes()
    assert (artifacts / "plan.md").is_file() and (artifacts / "plan.html").is_file()
    second = run_plan("homelab", artifacts)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (artifacts / "plan.json").read_bytes() == plan_bytes
    assert "changed=0" in second.stdout
    fresh = tmp_path / "fresh"
    assert run_plan("homelab", fresh).returncode == 0
    assert (fresh / "plan.json").read_bytes() == plan_bytes  # a fresh directory gives the same bytes
    plan = json.loads(plan_bytes)
    assert plan["schema"] == 1 and "nomic-embed-text:latest" in plan["models"]
    assert str(tmp_path) not in plan_bytes.decode() and str(REPO) not in plan_bytes.decode()


def test_check_mode_writes_nothing_and_limit_still_plans_the_fleet(tmp_path: Path) -> None:
    checked = run_plan("pmoves", tmp_path / "check", "--check", "--diff")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not (tmp_path / "check").exists()
    # the play targets the controller: a --limit must name localhost for the plan play to run
    limited = run_plan("pmoves", tmp_path / "limited", "--limit", "pmoves-5090,localhost")
    assert limited.returncode == 0, limited.stdout + limited.stderr
    plan = json.loads((tmp_path / "limited" / "plan.json").read_text())
    assert len(plan["nodes"]) == 8


def test_diff_reports_a_catalog_change(tmp_path: Path) -> None:
    assert run_plan("gpu-mesh", tmp_path).returncode == 0
    changed = run_plan("gpu-mesh", tmp_path, "--diff", "-e",
                       '{"pmoves_models": [{"name": "qwen2.5:7b", "replicas": 2}, {"name": "mistral", "replicas": 1}]}')
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "+model mistral:latest" in changed.stdout
