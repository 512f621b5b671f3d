"""pull_progress: byte and rate formatting, the rate window, the throttled progress file, the pull hook."""

from __future__ import annotations

import json

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import ModelRequest, OllamaClient, ensure_model
from ansible_collections.pmoves.fleet.plugins.module_utils.pull_progress import (
    ProgressFile,
    describe_model,
    format_bytes,
    format_rate,
    parse_snapshot,
    state_of,
    window_rate,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("count", "text"), [
    (0, "0 B"), (None, "0 B"), (-5, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (4_661_224_676, "4.7 GB"),
    (35_200_000, "35.2 MB"), (2_000_000_000_000, "2.0 TB")])
def test_format_bytes_uses_decimal_units_like_ollama(count, text):
    assert format_bytes(count) == text


@pytest.mark.parametrize(("rate", "text"), [(None, "-"), (-1.0, "-"), (0.0, "0 B/s"), (35_200_000.0, "35.2 MB/s")])
def test_format_rate(rate, text):
    assert format_rate(rate) == text


@pytest.mark.parametrize(("samples", "window", "rate"), [
    ([], 5.0, None),
    ([(0.0, 0)], 5.0, None),
    ([(1.0, 10), (1.0, 20)], 5.0, None),  # no time between them: not known yet
    ([(0.0, 0), (2.0, 200)], 5.0, 100.0),
    ([(0.0, 0), (8.0, 100), (10.0, 300)], 5.0, 100.0),  # only the last 5 s count
    ([(0.0, 0), (1.0, 1000), (2.0, 1000)], 5.0, 500.0),  # a stall lowers the rate
    ([(0.0, 500), (1.0, 100)], 5.0, 0.0),  # a retry that resumed from less: no negative rate
])
def test_window_rate(samples, window, rate):
    assert window_rate(samples, window) == rate


@pytest.mark.parametrize(("status", "success", "state"), [
    ("pulling manifest", False, "pulling"), ("pulling 6a0746a1ec1a", False, "pulling"),
    ("verifying sha256 digest", False, "verifying"), ("writing manifest", False, "verifying"),
    ("removing unused layers", False, "verifying"), ("success", True, "done"), ("", False, "pulling")])
def test_state_of_the_last_status(status, success, state):
    assert state_of(status, success) == state


@pytest.mark.parametrize(("entry", "text"), [
    ({"name": "llama3:8b", "state": "pulling", "completed": 1_200_000_000, "total": 4_700_000_000,
      "rate_bps": 35_000_000.0}, "llama3:8b pulling 1.2 GB/4.7 GB 25% 35.0 MB/s"),
    ({"name": "llama3:8b", "state": "pulling", "completed": 0, "total": 0}, "llama3:8b pulling"),
    ({"name": "llama3:8b", "state": "pulling", "completed": 10, "total": 100, "rate_bps": None, "attempt": 2},
     "llama3:8b pulling 10 B/100 B 10% - (attempt 2)"),
    ({"name": "qwen2.5:0.5b", "state": "verifying", "completed": 397_000_000, "total": 397_000_000},
     "qwen2.5:0.5b verifying 397.0 MB/397.0 MB"),
    ({"name": "qwen2.5:0.5b", "state": "done", "completed": 397_000_000, "total": 397_000_000},
     "qwen2.5:0.5b done 397.0 MB/397.0 MB"),
])
def test_describe_model(entry, text):
    assert describe_model(entry) == text


@pytest.mark.parametrize("text", [None, "", "{", "[]", '{"schema": 2, "models": []}', '{"schema": 1}',
                                  '{"schema": 1, "models": {}}'])
def test_parse_snapshot_refuses_what_is_not_a_snapshot(text):
    assert parse_snapshot(text) is None


def test_parse_snapshot_cleans_entries():
    text = json.dumps({"schema": 1, "updated": 5, "models": [
        {"name": "a", "state": "odd", "completed": True, "total": -3, "rate_bps": "fast", "attempt": 0},
        {"state": "pulling"}, "junk",
        {"name": "b", "state": "done", "completed": 7, "total": 7, "rate_bps": 1.5, "attempt": 2, "status": "x" * 500}]})
    snapshot = parse_snapshot(text)
    assert snapshot["updated"] == 5.0
    assert snapshot["models"] == [
        {"name": "a", "state": "pulling", "status": "", "completed": 0, "total": 0, "rate_bps": None, "attempt": 1},
        {"name": "b", "state": "done", "status": "x" * 100, "completed": 7, "total": 7, "rate_bps": 1.5,
         "attempt": 2}]


def test_progress_file_writes_state_changes_at_once_and_bytes_at_most_every_interval():
    clock, writes = FakeClock(), []
    progress = ProgressFile("/p.json", clock=clock, wallclock=lambda: 1.0, interval_s=1.0,
                            writer=lambda path, text: writes.append(json.loads(text)))
    progress.update("m:1", 0, 1000, "pulling abc")  # new model: written
    clock.now += 0.3
    progress.update("m:1", 100, 1000, "pulling abc")  # too soon: not written
    clock.now += 0.8
    progress.update("m:1", 600, 1000, "pulling abc")  # 1.1 s after the last write
    clock.now += 0.1
    progress.update("m:1", 1000, 1000, "verifying sha256 digest")  # state change: at once
    progress.finish("m:1")
    assert [w["models"][0]["state"] for w in writes] == ["pulling", "pulling", "verifying", "done"]
    assert writes[1]["models"][0]["completed"] == 600
    assert writes[1]["models"][0]["rate_bps"] == round(600 / 1.1, 1)
    assert progress.writes == 4 and progress.error is None


def test_progress_file_that_cannot_be_written_turns_itself_off(tmp_path):
    progress = ProgressFile(str(tmp_path / "missing-dir" / "p.json"))
    progress.update("m:1", 0, 10, "pulling abc")
    progress.update("m:1", 10, 10, "success", success=True)
    assert "cannot write the pull progress" in progress.error and progress.writes == 0


def test_progress_file_is_replaced_atomically_world_readable_and_removed(tmp_path):
    path = tmp_path / "p.json"
    progress = ProgressFile(str(path))
    progress.update("m:1", 5, 10, "pulling abc")
    assert parse_snapshot(path.read_text())["models"][0]["completed"] == 5
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]
    progress.remove()
    progress.remove()
    assert not path.exists()


def test_the_pull_reports_every_attempt_through_on_progress(emulator):
    emulator.post("/_test_double/fail_pull", {"model": "smollm2:135m", "times": 1})
    seen = []
    request = ModelRequest(name="smollm2:135m", retries=2, retry_delay=0,
                           on_progress=lambda name, attempt, pull: seen.append((name, attempt, pull.total_bytes,
                                                                                pull.success)))
    result = ensure_model(OllamaClient(emulator.url, timeout=10), request, False, sleep=lambda _s: None)
    assert result.attempts == 2
    assert {name for name, *_rest in seen} == {"smollm2:135m"}
    assert [attempt for _n, attempt, *_rest in seen].count(1) >= 1 and seen[-1][1] == 2
    assert seen[-1][3] is True and seen[-1][2] == emulator.get("/api/tags")["models"][0]["size"]


def test_no_pull_no_report(emulator):
    seen = []
    request = ModelRequest(name="smollm2:135m", retry_delay=0, on_progress=lambda *args: seen.append(args))
    client = OllamaClient(emulator.url, timeout=10)
    ensure_model(client, request, False)
    count = len(seen)
    ensure_model(client, request, False)
    assert count > 0 and len(seen) == count
