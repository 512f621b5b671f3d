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
  - Enable with C(ANSIBLE_CALLBACKS_ENABLED=pmoves.fleet.pmoves_run) (C(make lab) and the
    C(pmoves) command do this) or in C(ansible.cfg) C(callbacks_enabled).
requirements:
  - enable in configuration
"""

# Ansible wants DOCUMENTATION before the imports (validate-modules: import-before-documentation).
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

from ansible.plugins.callback import CallbackBase  # noqa: E402

MAX_TASKS_PER_HOST = 200


def run_file(pid: int) -> str:
    """Where the run with main process ``pid`` keeps its results (the report reads it from a worker)."""
    return os.path.join(tempfile.gettempdir(), f"pmoves-fleet-run-{pid}.json")


def cli_check_mode() -> bool:
    from ansible import context

    return bool((context.CLIARGS or {}).get("check"))


def write_fallback_report(plan_path: str, hosts: dict[str, dict[str, Any]]) -> str:
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
                          in_play=sorted(hosts) or None, title="pmoves fleet (run stopped early)")
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

    def _host(self, result: Any) -> dict[str, Any]:
        name = result._host.get_name()
        return self._hosts.setdefault(name, {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0,
                                             "changed_tasks": [], "messages": []})

    def _record(self, result: Any, status: str) -> None:
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

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._check_mode = bool(getattr(play, "check_mode", False)) or self._check_mode
        self._write()

    def v2_playbook_on_stats(self, stats: Any) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        broken = any(counts.get("failed") or counts.get("unreachable") for counts in self._hosts.values())
        if self._plan_path and broken and not self._report_written and not (self._check_mode or cli_check_mode()):
            try:
                path = write_fallback_report(self._plan_path, self._hosts)
                self._display.warning(f"pmoves_run: the run stopped before its report stage; report written to {path}")
            except (OSError, ValueError) as error:
                self._display.warning(f"pmoves_run: the run stopped before its report stage and no report was "
                                      f"written: {error}")

    def _write(self) -> None:
        data = {"schema": 1, "pid": os.getpid(), "hosts": self._hosts}
        tmp = f"{self._path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(data, handle, sort_keys=True)
            os.replace(tmp, self._path)
        except OSError as error:  # the report then says run results are unavailable
            self._display.warning(f"pmoves_run: cannot write {self._path}: {error}")
