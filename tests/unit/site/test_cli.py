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
