"""The progress view of `pmoves apply`: per-host state from runner events, model pulls from the action plugin's files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.action.ollama_model import (
    ProgressPoller,
    controller_progress_path,
    finished,
    host_record,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.pull_progress import parse_snapshot

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "cli"))

from pmoves_cli.main import machine_readable_stdout  # noqa: E402
from pmoves_cli.progress import RunProgress, changed_lines, host_line, pull_text  # noqa: E402
from pmoves_cli.ui import render  # noqa: E402

PULL_TASK = "Ollama | Pull the models this node fetches from the registry and create their aliases"


def event(kind: str, host: str = "node-a", **data) -> dict:
    return {"event": kind, "event_data": {"host": host, "task": PULL_TASK,
                                          "resolved_action": "pmoves.fleet.ollama_model", **data}}


def pulling(name: str = "llama3:8b", completed: int = 1_200_000_000, total: int = 4_700_000_000,
            state: str = "pulling", rate: float | None = 35_000_000.0) -> dict:
    return {"name": name, "state": state, "status": "pulling 6a0746a1ec1a", "completed": completed, "total": total,
            "rate_bps": rate, "attempt": 1}


@pytest.mark.parametrize(("events", "status", "counts"), [
    ([], "waiting", (0, 0, 0)),
    ([event("runner_on_start")], "running", (0, 0, 0)),
    ([event("runner_on_start"), event("runner_on_ok", res={"changed": True})], "ok", (1, 1, 0)),
    ([event("runner_on_start"), event("runner_on_failed", res={"msg": "pull failed"})], "failed", (0, 0, 1)),
    ([event("runner_on_ok", res={}), event("runner_on_start")], "running", (1, 0, 0)),
    ([event("runner_on_failed", res={"msg": "x"}), event("runner_on_start")], "failed", (0, 0, 1)),
    ([event("runner_on_unreachable", res={"msg": "ssh: no route"})], "unreachable", (0, 0, 0)),
    ([event("runner_on_start"), event("runner_on_skipped")], "waiting", (0, 0, 0)),
])
def test_host_state_follows_the_events(events, status, counts):
    progress = RunProgress()
    progress.host("node-a")
    for item in events:
        progress.feed(item)
    host = progress.hosts["node-a"]
    assert host.status == status
    assert (host.ok, host.changed, host.failed) == counts


def write_host_file(directory: Path, host: str, models: list[dict]) -> None:
    snapshot = {"schema": 1, "updated": 1.0, "models": models}
    (directory / f"{host}.json").write_text(host_record(host, PULL_TASK, snapshot, wallclock=lambda: 2.0))


def test_pull_files_reach_their_hosts_and_junk_is_skipped(tmp_path):
    write_host_file(tmp_path, "node-a", [pulling()])
    write_host_file(tmp_path, "node-b", [pulling("qwen2.5:0.5b", 10, 10, "done")])
    (tmp_path / "torn.json").write_text('{"schema": 1, "host": "x", "mod')
    (tmp_path / "nohost.json").write_text(json.dumps({"schema": 1, "models": [pulling()]}))
    progress = RunProgress().load_pulls(tmp_path, now=2.0)
    assert sorted(progress.hosts) == ["node-a", "node-b"]
    assert pull_text(progress.hosts["node-a"]) == "llama3:8b pulling 1.2 GB/4.7 GB 25% 35.0 MB/s"
    assert pull_text(progress.hosts["node-b"]) == ""  # done: the models column lists it once the task is ok
    assert RunProgress().load_pulls(None).hosts == {} and RunProgress().load_pulls(tmp_path / "none").hosts == {}


@pytest.mark.parametrize(("events", "models", "line"), [
    ([event("runner_on_start")], [pulling()],
     f"node-a running ok=0 changed=0 failed=0 | {PULL_TASK[:80]} | pull: llama3:8b pulling 1.2 GB/4.7 GB 25% 35.0 MB/s"),
    ([event("runner_on_start")], [pulling(rate=None, completed=0)],
     f"node-a running ok=0 changed=0 failed=0 | {PULL_TASK[:80]} | pull: llama3:8b pulling 0 B/4.7 GB 0% -"),
    ([event("runner_on_start"), event("runner_on_ok", res={"changed": True, "model": {"name": "llama3:8b"}})],
     [pulling(completed=4_700_000_000, state="done")], "node-a ok ok=1 changed=1 failed=0"),
    ([event("runner_on_start"), event("runner_on_failed", res={"msg": "model does not fit"})],
     [pulling(state="failed")], "node-a failed ok=0 changed=0 failed=1 | model does not fit | pull: llama3:8b failed "
                                "1.2 GB/4.7 GB"),
])
def test_host_line(tmp_path, events, models, line):
    progress = RunProgress()
    for item in events:
        progress.feed(item)
    write_host_file(tmp_path, "node-a", models)
    assert host_line(progress.load_pulls(tmp_path, now=3.0).hosts["node-a"]) == line


@pytest.mark.parametrize(("now", "state", "suffix"), [
    (2.0, "pulling", ""), (16.9, "pulling", ""), (17.0, "pulling", " (no progress for 15 s)"),
    (62.4, "pulling", " (no progress for 60 s)"), (100.0, "verifying", "")])
def test_a_pull_whose_bytes_do_not_move_says_so(tmp_path, now, state, suffix):
    write_host_file(tmp_path, "node-a", [pulling(state=state)])  # written at 2.0 on the controller's clock
    text = pull_text(RunProgress().load_pulls(tmp_path, now=now).hosts["node-a"])
    assert text.startswith(f"llama3:8b {state}")
    assert text.endswith(suffix) and text.count("no progress") == (1 if suffix else 0)


def test_plain_lines_only_for_hosts_that_changed(tmp_path):
    progress, shown = RunProgress(), {}
    progress.feed(event("runner_on_start"))
    progress.feed(event("runner_on_start", host="node-b"))
    assert [line.split()[0] for line in changed_lines(progress, shown)] == ["node-a", "node-b"]
    assert changed_lines(progress, shown) == []
    write_host_file(tmp_path, "node-b", [pulling()])
    assert [line.split()[0] for line in changed_lines(progress.load_pulls(tmp_path, now=2.0), shown)] == ["node-b"]


def test_the_live_table_gets_a_pull_column_while_a_host_pulls(tmp_path):
    from rich.console import Console

    progress = RunProgress()
    progress.feed(event("runner_on_start"))
    progress.feed(event("runner_on_ok", host="node-b", res={}))

    def text() -> str:
        console = Console(width=240, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        console.print(render(progress, "pmoves apply"))
        return console.export_text()

    assert "pull" not in text().split("\n")[2]
    write_host_file(tmp_path, "node-a", [pulling()])
    progress.load_pulls(tmp_path, now=2.0)
    table = text()
    assert "llama3:8b pulling 1.2 GB/4.7 GB 25% 35.0 MB/s" in table
    row = next(line for line in table.splitlines() if "node-a" in line)
    assert "running" in row and "llama3:8b pulling" in row


@pytest.mark.parametrize(("env", "outer", "json_out"), [
    ({}, None, False), ({"ANSIBLE_STDOUT_CALLBACK": "json"}, None, True),
    ({}, "ansible.posix.jsonl", True), ({}, "ansible.builtin.default", False), ({}, "community.general.yaml", False)])
def test_machine_readable_stdout(monkeypatch, env, outer, json_out):
    if outer:
        monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", outer)
    else:
        monkeypatch.delenv("ANSIBLE_STDOUT_CALLBACK", raising=False)
    assert machine_readable_stdout(env) is json_out


@pytest.mark.parametrize(("failed", "state", "completed"), [
    (False, "done", 4_700_000_000), (True, "failed", 1_200_000_000)])
def test_the_last_snapshot_is_closed_with_the_task(failed, state, completed):
    snapshot = {"schema": 1, "updated": 1.0, "models": [pulling(), pulling("other:1", 5, 5, "done")]}
    closed = finished(snapshot, failed)
    assert closed["models"][0]["state"] == state and closed["models"][0]["completed"] == completed
    assert closed["models"][1]["state"] == "done"
    assert snapshot["models"][0]["state"] == "pulling"  # the original is left alone


@pytest.mark.parametrize(("host", "name"), [("node-a", "node-a.json"), ("a/b", "a_b.json"),
                                            ("10.0.0.5", "10.0.0.5.json")])
def test_controller_progress_path(tmp_path, host, name):
    assert controller_progress_path(str(tmp_path), host) == str(tmp_path / name)


def test_poller_passes_on_each_new_snapshot_and_stops_on_a_broken_connection():
    texts = [None, "", "{", json.dumps({"schema": 1, "models": [pulling()]}),
             json.dumps({"schema": 1, "models": [pulling()]}),
             json.dumps({"schema": 1, "models": [pulling(completed=2_000_000_000)]})]
    seen = []

    def read():
        if not texts:
            raise ConnectionError("gone")
        return texts.pop(0)

    poller = ProgressPoller(read, seen.append, interval_s=0.001)
    poller.start()
    poller.join(timeout=10)
    assert not poller.is_alive()
    assert [s["models"][0]["completed"] for s in seen] == [1_200_000_000, 2_000_000_000]
    assert poller.last == parse_snapshot(json.dumps({"schema": 1, "models": [pulling(completed=2_000_000_000)]}))


@pytest.mark.parametrize(("kind", "failed"), [("runner_on_ok", False), ("runner_on_failed", True)])
def test_one_model_set_call_reports_every_model_it_put_in_place(kind, failed):
    """ollama_model_set: one result for the node's models; the failed and skipped ones are not done."""
    models = [{"name": "tinyllama:latest", "failed": False, "model": {"name": "tinyllama:latest"}},
              {"name": "llama3:70b-typo", "failed": True, "msg": "file does not exist", "url": "http://x/api/pull"},
              {"name": "all-minilm:latest", "failed": False, "model": {"name": "all-minilm:latest"}},
              {"name": "qwen2.5:0.5b", "failed": False, "skipped": True, "msg": "not attempted"}]
    progress = RunProgress()
    set_action = {"resolved_action": "pmoves.fleet.ollama_model_set"}
    progress.feed(event("runner_on_start", **set_action))
    assert progress.hosts["node-a"].model_pulling
    progress.feed(event(kind, res={"changed": True, "failed": failed, "msg": "1 of 4 failed", "models": models},
                        **set_action))
    host = progress.hosts["node-a"]
    assert host.models_done == ["tinyllama:latest", "all-minilm:latest"]
    assert host.model_pulling is None
    assert host.status == ("failed" if failed else "ok")
