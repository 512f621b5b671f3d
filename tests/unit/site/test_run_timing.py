"""Task and role wall times: the pmoves_run callback's timer and the report's "Where the time went" (issue 20).

A fake clock drives the timer, so the numbers here are exact and no test depends on how fast the machine is.
"""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.callback.pmoves_run import NO_ROLE, RunTimer
from ansible_collections.pmoves.fleet.plugins.module_utils import fleet_report as fr


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def run_events(events: list[tuple]) -> tuple[RunTimer, FakeClock]:
    """events: ("task", key, name, role, handler) | ("host", key, host) | ("done", key, host) | ("tick", s) | ("close",)"""
    clock = FakeClock()
    timer = RunTimer(clock)
    for event in events:
        kind, *args = event
        if kind == "task":
            key, name, role, handler = args
            timer.task_start(key, name, role, "play", handler)
        elif kind == "host":
            timer.host_start(*args)
        elif kind == "done":
            timer.host_done(*args)
        elif kind == "tick":
            clock.tick(args[0])
        else:
            timer.close()
    return timer, clock


SEQUENCE = [
    ("task", "t1", "Base | packages", "base", False), ("host", "t1", "a"), ("host", "t1", "b"),
    ("tick", 2.0), ("done", "t1", "a"), ("tick", 3.0), ("done", "t1", "b"),
    ("task", "t2", "Ollama | probe", "ollama", False), ("host", "t2", "a"), ("tick", 1.0), ("done", "t2", "a"),
    ("task", "t3", "Play | note", None, False), ("host", "t3", "a"), ("tick", 0.5), ("done", "t3", "a"),
    ("task", "h1", "restart ollama", "ollama", True), ("host", "h1", "a"), ("tick", 4.0), ("done", "h1", "a"),
    # the same handler flushed a second time adds up
    ("task", "h1", "restart ollama", "ollama", True), ("host", "h1", "a"), ("tick", 1.0), ("done", "h1", "a"),
    ("close",),
]


def test_task_wall_runs_until_the_next_task_and_hosts_are_timed_apart():
    timer, _clock = run_events(SEQUENCE)
    summary = timer.summary()
    by_name = {t["name"]: t for t in summary["tasks"]}
    assert by_name["Base | packages"]["wall_s"] == 5.0
    assert by_name["Base | packages"]["hosts"] == {"a": 2.0, "b": 5.0}
    assert by_name["restart ollama"] == {"name": "restart ollama", "role": "ollama", "play": "play", "handler": True,
                                         "wall_s": 5.0, "runs": 2, "hosts": {"a": 5.0}}
    assert by_name["Play | note"]["role"] == NO_ROLE
    assert summary["total_s"] == 11.5 and summary["tasks_timed"] == 4


def test_summary_orders_longest_first_and_sums_roles():
    summary = run_events(SEQUENCE)[0].summary()
    # ties (5.0): by role, then name
    assert [t["name"] for t in summary["tasks"]] == ["Base | packages", "restart ollama", "Ollama | probe", "Play | note"]
    assert summary["roles"] == [{"role": "ollama", "wall_s": 6.0, "tasks": 2},
                                {"role": "base", "wall_s": 5.0, "tasks": 1},
                                {"role": NO_ROLE, "wall_s": 0.5, "tasks": 1}]
    assert sum(r["wall_s"] for r in summary["roles"]) == summary["total_s"]


@pytest.mark.parametrize("limit", [0, 1, 3, 50])
def test_summary_keeps_the_slowest_n(limit):
    summary = run_events(SEQUENCE)[0].summary(limit)
    assert len(summary["tasks"]) == min(limit, 4)
    assert len(summary["roles"]) == 3  # roles always complete


def test_a_result_without_a_start_is_ignored():
    timer, _clock = run_events([("task", "t1", "x", None, False), ("done", "t1", "a"), ("done", "nope", "a"), ("close",)])
    assert timer.summary()["tasks"][0]["hosts"] == {}


def test_an_empty_run_has_no_times():
    assert RunTimer(FakeClock()).summary() == {"schema": 1, "total_s": 0.0, "tasks_timed": 0, "tasks": [], "roles": []}


@pytest.mark.parametrize(("top", "expected"), [(2, ["Base | packages", "restart ollama"]), (0, [])])
def test_report_shows_top_n_and_role_totals(top, expected):
    timing = run_events(SEQUENCE)[0].summary()
    report = fr.build_report(None, {"a": {}, "b": {}}, None, [], timing=timing, top_tasks=top)
    assert [t["name"] for t in report["timing"]["slowest_tasks"]] == expected
    assert [r["role"] for r in report["timing"]["roles"]] == ["ollama", "base", NO_ROLE]
    page = fr.render_html(report)
    assert 'id="timing"' in page and 'id="role-times"' in page
    assert all(f"<td>{name}" in page for name in expected)
    assert "time per role: ollama 6.0 s, base 5.0 s, (play tasks) 0.5 s" in fr.render_terminal(report)


@pytest.mark.parametrize("timing", [None, "garbage", {}])
def test_report_without_timing_says_so(timing):
    report = fr.build_report(None, {"a": {}}, None, [], timing=timing)
    page = fr.render_html(report)
    assert 'id="timing"' in page
    if timing is None or timing == "garbage":
        assert report["timing"] is None
        assert "Task times were not recorded" in page
    else:
        assert report["timing"]["slowest_tasks"] == [] and report["timing"]["roles"] == []


def test_report_timing_reorders_an_unsorted_input():
    tasks = [{"name": "b", "role": "r", "wall_s": 1}, {"name": "a", "role": "r", "wall_s": 2},
             {"name": "c", "role": "q", "wall_s": "x"}]
    timing = {"total_s": 3, "tasks": tasks, "roles": [{"role": "q", "wall_s": 0}, {"role": "r", "wall_s": 3, "tasks": 2}]}
    report = fr.build_report(None, {}, None, [], timing=timing)
    assert [t["name"] for t in report["timing"]["slowest_tasks"]] == ["a", "b", "c"]
    assert report["timing"]["roles"][0] == {"role": "r", "wall_s": 3.0, "tasks": 2}
    assert report["timing"]["tasks_timed"] == 3
