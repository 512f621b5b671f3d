"""The pmoves command maps its options one for one onto ansible-playbook and aggregates runner events."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "cli"))

from pmoves_cli.commands import build_invocation  # noqa: E402
from pmoves_cli.main import main, parser  # noqa: E402
from pmoves_cli.progress import RunProgress  # noqa: E402

EVENTS = Path(__file__).parent / "runner_events.json"


def args_of(command, **kwargs):
    return build_invocation(command, repo=Path("/r"), **kwargs)


@pytest.mark.parametrize(("command", "playbook"), [
    ("discover", "/r/playbooks/discover.yml"), ("plan", "/r/playbooks/plan.yml"), ("apply", "/r/playbooks/site.yml"),
    ("lab", "/r/playbooks/site.yml"), ("report", "/r/playbooks/site.yml")])
def test_each_command_runs_its_playbook(command, playbook):
    assert args_of(command).playbook == playbook


def test_options_pass_through_one_for_one():
    inv = args_of("apply", inventory="inventories/pmoves", limit="pmoves-5090", tags="models", check=True, diff=True,
                  extra_vars=["pmoves_strategy=spread"], verbose=2, skip_tags="gateway")
    assert inv.command_line() == [
        "ansible-playbook", "/r/playbooks/site.yml", "-i", "inventories/pmoves",
        "--limit", "pmoves-5090,localhost", "--tags", "models", "--skip-tags", "gateway", "--check", "--diff",
        "-e", "pmoves_artifacts_dir=/r/artifacts", "-e", "pmoves_strategy=spread", "-vv"]


def test_limit_keeps_the_controller_so_the_plan_sees_the_whole_fleet():
    assert args_of("apply", limit="a,b").args[:2] == ["--limit", "a,b,localhost"]
    assert args_of("apply", limit="a,localhost").args[:2] == ["--limit", "a,localhost"]
    assert "--limit" not in args_of("apply").args


def test_no_options_means_a_plain_run():
    inv = args_of("apply")
    assert inv.inventory is None  # ansible.cfg's inventory
    assert inv.args == ["-e", "pmoves_artifacts_dir=/r/artifacts"]
    assert "pmoves.fleet.pmoves_run" in inv.env["ANSIBLE_CALLBACKS_ENABLED"]
    assert inv.env["ANSIBLE_CONFIG"] == "/r/ansible.cfg"


def test_lab_defaults_to_the_lab_inventory_and_report_adds_its_tag():
    assert args_of("lab").inventory == "/r/inventories/lab"
    assert args_of("report").args[:2] == ["--tags", "report"]
    assert args_of("report", tags="models").args[:2] == ["--tags", "report,models"]


def test_unknown_command_is_refused():
    with pytest.raises(ValueError, match="unknown command"):
        args_of("destroy")


def test_cli_parses_and_dry_runs(capsys, monkeypatch):
    monkeypatch.setenv("PMOVES_REPO", str(REPO))
    assert main(["apply", "--dry-run", "-l", "lab-5090", "-t", "models", "-C"]) == 0
    err = capsys.readouterr().err
    assert f"ansible-playbook {REPO}/playbooks/site.yml --limit lab-5090,localhost --tags models --check" in err
    with pytest.raises(SystemExit):
        parser().parse_args(["frobnicate"])


def test_events_aggregate_per_host():
    progress = RunProgress()
    for event in json.loads(EVENTS.read_text()):
        progress.feed(event)
    a, b, c = progress.hosts["lab-5090"], progress.hosts["lab-jetson-1"], progress.hosts["lab-3090ti"]
    assert (a.ok, a.changed, a.failed, a.skipped) == (3, 2, 0, 1)
    assert a.models_done == ["tinyllama:latest", "llama3.2:1b"]  # from the ollama_model loop items
    assert b.status == "failed" and b.last_error == "API down at http://127.0.0.1:11434"
    assert c.status == "unreachable"
    assert progress.finished
    assert progress.recap()["lab-5090"] == {"ok": 3, "changed": 2, "failed": 0, "unreachable": 0, "skipped": 1}
    assert progress.recap()["lab-3090ti"]["unreachable"] == 1


def test_running_task_is_shown_until_its_result_arrives():
    progress = RunProgress()
    progress.feed({"event": "runner_on_start", "event_data": {"host": "h", "task": "Ollama | Pull models"}})
    assert progress.hosts["h"].status == "running" and progress.hosts["h"].task == "Ollama | Pull models"
    progress.feed({"event": "runner_on_ok", "event_data": {"host": "h", "task": "Ollama | Pull models", "res": {}}})
    assert progress.hosts["h"].status == "ok"


def test_ignored_failures_do_not_count():
    progress = RunProgress()
    progress.feed({"event": "runner_on_failed", "event_data": {"host": "h", "ignore_errors": True, "res": {"msg": "x"}}})
    assert progress.hosts["h"].failed == 0


def test_paths_are_resolved_against_the_callers_directory():
    inv = build_invocation("plan", repo=Path("/r"), cwd=Path("/home/me/work"), inventory="inventories/homelab",
                           artifacts_dir="out", extra_vars=["@vars/fleet.yml", "pmoves_strategy=spread"],
                           limit="@../retry.txt,localhost")
    assert inv.inventory == "/home/me/work/inventories/homelab"
    assert inv.artifacts_dir == "/home/me/work/out"
    assert inv.args == ["--limit", "@/home/me/retry.txt,localhost", "-e", "pmoves_artifacts_dir=/home/me/work/out",
                        "-e", "@/home/me/work/vars/fleet.yml", "-e", "pmoves_strategy=spread"]
    # absolute paths and host lists stay as they are; the default artifacts dir is the checkout's
    same = build_invocation("plan", repo=Path("/r"), cwd=Path("/elsewhere"), inventory="/srv/inv/hosts.yml")
    assert same.inventory == "/srv/inv/hosts.yml" and same.artifacts_dir == "/r/artifacts"
    assert build_invocation("plan", repo=Path("/r"), cwd=Path("/x"), inventory="h1,h2,").inventory == "h1,h2,"


def test_a_missing_inventory_is_refused_before_running(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PMOVES_REPO", str(REPO))
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "-i", "inventories/homelab", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"inventory inventories/homelab not found (looked for {tmp_path}/inventories/homelab)" in err


def test_ansible_playbook_comes_from_the_clis_own_environment(monkeypatch, capsys):
    monkeypatch.setenv("PMOVES_REPO", str(REPO))
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.chdir(REPO)
    assert main(["plan", "-i", "inventories/homelab", "--dry-run"]) == 0
    own = Path(sys.executable).parent / "ansible-playbook"
    assert own.is_file(), "the test venv has ansible-playbook beside its python"
    assert capsys.readouterr().err.startswith(f"$ {own} {REPO}/playbooks/plan.yml -i {REPO}/inventories/homelab ")


def _plan_event(kind, res):
    return {"event": kind, "event_data": {"host": "localhost", "task": "Plan | compute plan.json",
                                          "resolved_action": "pmoves.fleet.fleet_plan", "res": res}}


def test_an_empty_plan_or_no_host_at_all_is_an_error():
    from pmoves_cli.main import outcome_problem

    planned = RunProgress()
    planned.feed(_plan_event("runner_on_ok", {"summary": {"nodes": 3, "replicas_placed": 4}}))
    assert planned.plan_summary["nodes"] == 3
    assert outcome_problem(0, planned, "inv") is None
    empty = RunProgress()
    empty.feed(_plan_event("runner_on_ok", {"summary": {"nodes": 0, "replicas_placed": 0}}))
    assert "the plan of inventory inv has no nodes" in outcome_problem(0, empty, "inv")
    refused = RunProgress()
    refused.feed(_plan_event("runner_on_failed", {"msg": "fleet_plan: the inventory /x has no hosts"}))
    assert outcome_problem(2, refused, "/x") == "fleet_plan: the inventory /x has no hosts"
    nothing = RunProgress()
    nothing.feed({"event": "playbook_on_stats", "event_data": {}})
    assert "inventory inv has no hosts that this run matched" in outcome_problem(0, nothing, "inv")
    assert outcome_problem(4, nothing, "inv") is None  # ansible's own failure speaks for itself
