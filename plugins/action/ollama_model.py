# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Action plugin of ollama_model: runs the module as usual; with the progress view on, also shows its pull progress.

Without ``PMOVES_PROGRESS_DIR`` in the controller's environment this is exactly the normal action (nothing is
added to the task, no extra command reaches the node). With it (``pmoves apply`` sets it while its live view or
``--progress`` is on), the module gets a ``progress_file`` on the node and, while the module runs, a thread reads
that file once a second over a copy of the task's connection and writes it to
``$PMOVES_PROGRESS_DIR/<inventory_hostname>.json`` on the controller, where the view reads it. The first read
waits a second, so a model that is already present costs no extra command.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ansible.plugins.action.normal import ActionModule as NormalAction

from ansible_collections.pmoves.fleet.plugins.module_utils.pull_progress import (
    SCHEMA,
    parse_snapshot,
    write_atomic,
)
import contextlib

PROGRESS_DIR_ENV = "PMOVES_PROGRESS_DIR"
POLL_INTERVAL_S = 1.0


def controller_progress_path(directory: str, host: str) -> str:
    """Where the view finds one host's pull progress (host names become file names: no path separators)."""
    return os.path.join(directory, host.replace(os.sep, "_").replace("\0", "_") + ".json")


def host_record(host: str, task: str, snapshot: dict[str, Any], wallclock: Callable[[], float] = time.time) -> str:
    """The controller-side file: the node's snapshot plus which host and task it belongs to."""
    return json.dumps({"schema": SCHEMA, "host": host, "task": task, "updated": round(wallclock(), 3),
                       "models": snapshot.get("models", [])}, sort_keys=True) + "\n"


def finished(snapshot: dict[str, Any], failed: bool) -> dict[str, Any]:
    """The last snapshot once the module returned: models still pulling are done (or failed with the task)."""
    models = []
    for entry in snapshot.get("models", []):
        entry = dict(entry)
        if entry.get("state") not in ("done", "failed"):
            entry["state"] = "failed" if failed else "done"
            if not failed and entry.get("total"):
                entry["completed"] = entry["total"]
        models.append(entry)
    return dict(snapshot, models=models)


class ProgressPoller(threading.Thread):
    """Reads the node's progress file every ``interval_s`` and hands each new snapshot to ``sink``."""

    def __init__(self, read: Callable[[], str | None], sink: Callable[[dict[str, Any]], None],
                 interval_s: float = POLL_INTERVAL_S) -> None:
        super().__init__(name="pmoves-pull-progress", daemon=True)
        self._read = read
        self._sink = sink
        self._interval = interval_s
        self._stop_event = threading.Event()
        self.last: dict[str, Any] | None = None

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                text = self._read()
            except Exception:  # pylint: disable=broad-exception-caught
                return  # the connection refused a second command: no progress, the task goes on
            snapshot = parse_snapshot(text) if text else None
            if snapshot is not None and snapshot != self.last:
                self.last = snapshot
                try:
                    self._sink(snapshot)
                except OSError:
                    return

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class ActionModule(NormalAction):
    """The normal action, plus the pull progress of the module when the progress view asks for it."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        directory = os.environ.get(PROGRESS_DIR_ENV, "")
        if (not directory or not os.path.isdir(directory) or self._task.async_val or self._play_context.check_mode
                or self._task.args.get("progress_file")
                or self._task.args.get("state", "present") == "absent"):
            return super().run(tmp, task_vars)
        host = str((task_vars or {}).get("inventory_hostname") or self._task.get_name())
        local_path = controller_progress_path(directory, host)
        remote_path = f"/tmp/.pmoves-pull-progress-{uuid.uuid4().hex}.json"
        self._task.args = dict(self._task.args, progress_file=remote_path)
        task_name = self._task.get_name()
        copies: list[Any] = []

        def read() -> str | None:
            # A copy of the connection, taken at the first read (the module's command has connected it by then):
            # the module's own command keeps the original's per-command state to itself.
            if not copies:
                copies.append(copy.copy(self._connection))
            rc, out, _err = copies[0].exec_command(f"cat {shlex.quote(remote_path)}", sudoable=False)
            return out.decode("utf-8", "replace") if rc == 0 else None

        def sink(snapshot: dict[str, Any]) -> None:
            write_atomic(local_path, host_record(host, task_name, snapshot))

        poller = ProgressPoller(read, sink)
        poller.start()
        result: dict[str, Any] = {}
        try:
            result = super().run(tmp, task_vars)
        finally:
            poller.stop()
            if poller.last is not None:
                with contextlib.suppress(OSError):
                    sink(finished(poller.last, bool(result.get("failed")) or not result))
        return result
