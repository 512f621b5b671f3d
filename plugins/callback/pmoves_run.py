# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Callback: record per-host results of this run for the fleet report ("what changed in this run")."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: pmoves_run
type: aggregate
short_description: Record per-host results of the run for the pmoves fleet report
version_added: "0.1.0"
description:
  - Counts ok / changed / failed / unreachable / skipped per host and keeps the names of the
    tasks that changed something, the failed and the unreachable messages.
  - Writes them to C($TMPDIR/pmoves-fleet-run-<pid>.json) at the start of every play and at the
    end of the run, so C(pmoves.fleet.fleet_report) in C(verify.yml) can show what changed in
    this run. The file of a finished run is removed.
  - When the run stops before C(verify.yml) wrote the report (more than C(pmoves_max_fail_percentage) % of the
    hosts of a play failed, every host of a play failed, C(any_errors_fatal)), it writes the report itself at the
    end of the run (next to the plan of the run) from the plan and the recorded results, naming the failed and
    unreachable hosts, so a broken run always leaves a report.
  - Records the wall time of every task (overall and per host, handlers included) and sums it per role, so the
    report shows the slowest tasks and the per-role totals of this run (C(timing) in the run file and the report);
    at the end of the run it prints the slowest tasks and the role totals.
  - Enable with C(ANSIBLE_CALLBACKS_ENABLED=pmoves.fleet.pmoves_run) (C(make lab) and the
    C(pmoves) command do this) or in C(ansible.cfg) C(callbacks_enabled).
requirements:
  - enable in configuration
options:
  top_tasks:
    description:
      - How many of the slowest tasks the end-of-run summary prints; C(0) prints no timing summary.
      - The run file and the report keep the slowest C(pmoves.fleet.pmoves_run) tasks regardless (up to 50).
    type: int
    default: 10
    env:
      - name: PMOVES_RUN_TOP_TASKS
    ini:
      - section: callback_pmoves_run
        key: top_tasks
"""

# Ansible wants DOCUMENTATION before the imports (validate-modules: import-before-documentation).
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from ansible.plugins.callback import CallbackBase  # noqa: E402

MAX_TASKS_PER_HOST = 200
MAX_TIMED_TASKS = 50  # slowest tasks kept in the run file (the report shows its own top N of them)
NO_ROLE = "(play tasks)"  # tasks written in a play, outside any role


def _machine_readable_stdout() -> bool:
    """True when the stdout callback prints JSON (json, ansible.posix.json/jsonl): the summary would corrupt it."""
    try:
        from ansible import constants as ansible_constants  # pylint: disable=import-outside-toplevel
        name = str(ansible_constants.config.get_config_value("DEFAULT_STDOUT_CALLBACK") or "")
    except Exception:  # pylint: disable=broad-exception-caught
        return False
    return "json" in name.rsplit(".", 1)[-1]


class RunTimer:
    """Wall time per task (overall and per host) and per role, from the callback's events.

    A task's wall time runs from its start to the start of the next task (or play, or the end of the
    run): with the linear strategy tasks run one after the other, so the times add up to the run's
    wall time. A host's time on a task runs from the task starting on it to its result. A task that
    runs more than once (a handler flushed twice, a task in a loop of includes) adds up.
    """

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._started: float | None = None
        self._current: tuple[str, float] | None = None  # (task key, start)
        self._host_start: dict[tuple[str, str], float] = {}
        self.tasks: dict[str, dict[str, Any]] = {}

    def task_start(self, key: str, name: str, role: str | None, play: str, handler: bool) -> None:
        now = self._clock()
        if self._started is None:
            self._started = now
        self.close(now)
        entry = self.tasks.setdefault(key, {"name": name, "role": role or NO_ROLE, "play": play, "handler": handler,
                                            "wall_s": 0.0, "runs": 0, "hosts": {}})
        entry["runs"] += 1
        self._current = (key, now)

    def host_start(self, key: str, host: str) -> None:
        self._host_start[(key, host)] = self._clock()

    def host_done(self, key: str, host: str) -> None:
        start = self._host_start.pop((key, host), None)
        entry = self.tasks.get(key)
        if start is None or entry is None:
            return
        hosts = entry["hosts"]
        hosts[host] = round(hosts.get(host, 0.0) + self._clock() - start, 3)

    def close(self, now: float | None = None) -> None:
        """End the running task (a play starts, the run ends)."""
        if self._current is None:
            return
        key, start = self._current
        now = self._clock() if now is None else now
        self.tasks[key]["wall_s"] = round(self.tasks[key]["wall_s"] + now - start, 3)
        self._current = None

    def summary(self, limit: int = MAX_TIMED_TASKS) -> dict[str, Any]:
        """JSON-ready: the slowest tasks (longest first, then by name), per-role totals, the run's wall time."""
        roles: dict[str, dict[str, Any]] = {}
        for entry in self.tasks.values():
            role = roles.setdefault(entry["role"], {"role": entry["role"], "wall_s": 0.0, "tasks": 0})
            role["wall_s"] = round(role["wall_s"] + entry["wall_s"], 3)
            role["tasks"] += 1
        ordered = sorted(self.tasks.values(), key=lambda e: (-e["wall_s"], e["role"], e["name"]))
        total = (self._clock() - self._started) if self._started is not None else 0.0
        return {
            "schema": 1,
            "total_s": round(total, 3),
            "tasks_timed": len(self.tasks),
            "tasks": [dict(entry, hosts=dict(sorted(entry["hosts"].items()))) for entry in ordered[:limit]],
            "roles": sorted(roles.values(), key=lambda r: (-r["wall_s"], r["role"])),
        }


def run_file(pid: int) -> str:
    """Where the run with main process ``pid`` keeps its results (the report reads it from a worker)."""
    return os.path.join(tempfile.gettempdir(), f"pmoves-fleet-run-{pid}.json")


def cli_check_mode() -> bool:
    from ansible import context

    return bool((context.CLIARGS or {}).get("check"))


def write_fallback_report(plan_path: str, hosts: dict[str, dict[str, Any]], timing: dict[str, Any] | None = None) -> str:
    """The report of a run that stopped before verify.yml: the plan plus what each host did, failed hosts named."""
    from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_report import build_report, render_html

    directory = os.path.dirname(plan_path)
    try:
        with open(plan_path, encoding="utf-8") as handle:
            plan = json.load(handle)
    except (OSError, ValueError):
        plan = None
    broken = sorted(name for name, counts in hosts.items() if counts.get("failed") or counts.get("unreachable"))
    warning = ("the run stopped before its report stage (too many hosts failed in one play); failed or unreachable: "
               + (", ".join(broken) or "none recorded"))
    report = build_report(plan if isinstance(plan, dict) else None, {}, hosts, [warning], not_converged=broken,
                          in_play=sorted(hosts) or None, title="pmoves fleet (run stopped early)", timing=timing)
    dest = os.path.join(directory, "report.html")
    for target, text in ((dest, render_html(report)),
                         (os.path.join(directory, "report.json"),
                          json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n")):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    return dest


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "pmoves.fleet.pmoves_run"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hosts: dict[str, dict[str, Any]] = {}
        self._check_mode = False
        self._path = run_file(os.getpid())
        self._plan_path: str | None = None  # plan.json of this run (fleet_plan's result): the report goes beside it
        self._report_written = False
        self._timer = RunTimer()
        self._play_name = ""

    def _host(self, result: Any) -> dict[str, Any]:
        name = result._host.get_name()
        return self._hosts.setdefault(name, {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0,
                                             "changed_tasks": [], "messages": []})

    def _record(self, result: Any, status: str) -> None:
        self._timer.host_done(result._task._uuid, result._host.get_name())
        host = self._host(result)
        host[status] += 1
        task = result._task.get_name()
        if status == "ok" and result._result.get("changed", False):
            host["changed"] += 1
            if len(host["changed_tasks"]) < MAX_TASKS_PER_HOST:
                host["changed_tasks"].append(task)
        if status in ("failed", "unreachable"):
            message = str(result._result.get("msg", "")).splitlines()[0:1]
            host["messages"].append(f"{status}: {task}: {message[0] if message else ''}"[:300])

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "ok")
        action = str(getattr(result._task, "action", "") or "")
        if action.endswith("fleet_plan") and result._result.get("path"):
            self._plan_path = str(result._result["path"])
        if action.endswith("fleet_report") and (result._result.get("written") or result._result.get("msg")):
            self._report_written = True

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            self._record(result, "failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def _task_start(self, task: Any, handler: bool) -> None:
        role = task._role.get_name(include_role_fqcn=False) if getattr(task, "_role", None) else None
        # The task's own name: the role is a field of its own (get_name() would prefix "role : ").
        self._timer.task_start(task._uuid, str(task.name or task.get_name()), role, self._play_name, handler)
        if str(getattr(task, "action", "") or "").endswith("fleet_report"):
            self._write()  # the report (written by this task, in a worker) reads the timing up to here

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._task_start(task, handler=False)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._task_start(task, handler=True)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._timer.host_start(task._uuid, host.get_name())

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._timer.close()
        self._play_name = play.get_name()
        self._check_mode = bool(getattr(play, "check_mode", False)) or self._check_mode
        self._write()

    def _display_timing(self) -> None:
        try:
            top = int(self.get_option("top_tasks"))
        except (KeyError, TypeError, ValueError):
            top = 10
        if top <= 0 or not self._timer.tasks or _machine_readable_stdout():
            return
        timing = self._timer.summary(top)
        lines = [f"pmoves_run: {timing['tasks_timed']} tasks in {timing['total_s']:.1f} s; slowest:"]
        lines += [f"  {t['wall_s']:8.2f} s  {t['role']} | {t['name']}" + (" (handler)" if t["handler"] else "")
                  for t in timing["tasks"]]
        lines.append("per role: " + ", ".join(f"{r['role']} {r['wall_s']:.1f} s" for r in timing["roles"]))
        self._display.display("\n".join(lines))

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._timer.close()
        self._display_timing()
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        broken = any(counts.get("failed") or counts.get("unreachable") for counts in self._hosts.values())
        if self._plan_path and broken and not self._report_written and not (self._check_mode or cli_check_mode()):
            try:
                path = write_fallback_report(self._plan_path, self._hosts, self._timer.summary())
                self._display.warning(f"pmoves_run: the run stopped before its report stage; report written to {path}")
            except (OSError, ValueError) as error:
                self._display.warning(f"pmoves_run: the run stopped before its report stage and no report was "
                                      f"written: {error}")

    def _write(self) -> None:
        data = {"schema": 1, "pid": os.getpid(), "hosts": self._hosts, "timing": self._timer.summary()}
        tmp = f"{self._path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(data, handle, sort_keys=True)
            os.replace(tmp, self._path)
        except OSError as error:  # the report then says run results are unavailable
            self._display.warning(f"pmoves_run: cannot write {self._path}: {error}")
