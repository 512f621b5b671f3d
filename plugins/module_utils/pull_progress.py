# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Model pull progress: a small JSON file on the node, read back by the controller for `pmoves apply`'s view.

Runs on the node (Python 3.8+) inside ``ollama_model`` and on the controller (the action plugin that polls
the file, the ``pmoves`` CLI that shows it). Pure functions and one small writer class with an injected
clock; the only I/O is the writer's atomic replace of its file.

The file (schema 1) holds no secrets, only model names and byte counts::

    {"schema": 1, "updated": 1767225600.0,
     "models": [{"name": "llama3:8b", "state": "pulling", "status": "pulling 6a0746a1ec1a",
                 "completed": 123, "total": 456, "rate_bps": 78.9, "attempt": 1}]}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

SCHEMA = 1
# Model states in the file: what the view shows per model.
STATES = ("waiting", "pulling", "verifying", "done", "failed")
DEFAULT_INTERVAL_S = 1.0  # the writer writes at most this often (state changes are written at once)
DEFAULT_WINDOW_S = 5.0  # the rate is the bytes of the last few seconds
_UNITS = (("TB", 1000.0 ** 4), ("GB", 1000.0 ** 3), ("MB", 1000.0 ** 2), ("KB", 1000.0))


def format_bytes(count: float | None) -> str:
    """Bytes as people read them, decimal units like Ollama's own CLI: 1.2 GB, 950 B."""
    count = max(0, int(count or 0))
    for unit, factor in _UNITS:
        if count >= factor:
            return f"{count / factor:.1f} {unit}"
    return f"{count} B"


def format_rate(bytes_per_s: float | None) -> str:
    """A transfer rate: ``35.2 MB/s``; ``-`` while unknown (no two samples yet)."""
    if bytes_per_s is None or bytes_per_s < 0:
        return "-"
    return format_bytes(bytes_per_s) + "/s"


def window_rate(samples: Sequence[tuple[float, int]], window_s: float = DEFAULT_WINDOW_S) -> float | None:
    """Bytes per second over the samples of the last ``window_s`` seconds.

    ``samples`` are ``(time, bytes_done)`` pairs in time order. None while fewer than two samples
    span any time (the rate is not known yet). Bytes that went backwards (a retry that resumed
    from less) count as no progress rather than a negative rate.
    """
    if len(samples) < 2:
        return None
    last_time, last_bytes = samples[-1]
    first_time, first_bytes = samples[0]
    for sample_time, sample_bytes in samples:
        if sample_time >= last_time - window_s:
            first_time, first_bytes = sample_time, sample_bytes
            break
    if last_time <= first_time:
        return None
    return max(0.0, (last_bytes - first_bytes) / (last_time - first_time))


def state_of(status: str | None, success: bool = False) -> str:
    """The view's state for the last status line Ollama sent."""
    if success:
        return "done"
    status = (status or "").lower()
    if status.startswith(("verifying", "writing manifest", "removing")):
        return "verifying"
    return "pulling"


def describe_model(entry: dict[str, Any]) -> str:
    """One model of a snapshot on one line: ``llama3:8b pulling 1.2 GB/4.7 GB 35.0 MB/s``."""
    name = str(entry.get("name") or "?")
    state = str(entry.get("state") or "pulling")
    total = int(entry.get("total") or 0)
    completed = int(entry.get("completed") or 0)
    text = f"{name} {state}"
    if total:
        text += f" {format_bytes(completed)}/{format_bytes(total)}"
        if state == "pulling":
            text += f" {min(100, completed * 100 // total)}% {format_rate(entry.get('rate_bps'))}"
    attempt = int(entry.get("attempt") or 1)
    if attempt > 1:
        text += f" (attempt {attempt})"
    return text


def parse_snapshot(text: str | bytes | None) -> dict[str, Any] | None:
    """A progress file's text as a checked snapshot; None for anything that is not one (torn, empty, other)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("models"), list):
        return None
    models = []
    for entry in data["models"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        rate = entry.get("rate_bps")
        models.append({
            "name": entry["name"],
            "state": entry.get("state") if entry.get("state") in STATES else "pulling",
            "status": str(entry.get("status") or "")[:100],
            "completed": _count(entry.get("completed")),
            "total": _count(entry.get("total")),
            "rate_bps": float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None,
            "attempt": _count(entry.get("attempt")) or 1,
        })
    updated = data.get("updated")
    return {"schema": SCHEMA, "updated": float(updated) if isinstance(updated, (int, float)) else None,
            "models": models}


def _count(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0


def write_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` in one step (readers see the old or the new file, never half)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pmoves-progress-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class ProgressFile:
    """Writes the pull progress of one module call to ``path``, at most every ``interval_s`` seconds.

    ``update`` takes the model, its bytes and Ollama's last status; state changes (a new model, done,
    failed) are written at once, byte progress at most every ``interval_s``. Writing never fails the
    pull: an unwritable file only turns the progress off (``error`` says why).
    """

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time, interval_s: float = DEFAULT_INTERVAL_S,
                 window_s: float = DEFAULT_WINDOW_S, writer: Callable[[str, str], None] = write_atomic) -> None:
        self.path = path
        self._clock = clock
        self._wallclock = wallclock
        self._interval = interval_s
        self._window = window_s
        self._writer = writer
        self._models: dict[str, dict[str, Any]] = {}  # name -> entry (insertion order is the pull order)
        self._samples: dict[str, list[tuple[float, int]]] = {}  # name -> [(time, bytes)]
        self._last_write: float | None = None
        self.error: str | None = None
        self.writes = 0

    def update(self, name: str, completed: int, total: int, status: str = "", attempt: int = 1,
               success: bool = False) -> None:
        now = self._clock()
        samples = self._samples.setdefault(name, [])
        samples.append((now, int(completed)))
        while len(samples) > 2 and samples[1][0] < now - self._window:
            samples.pop(0)
        entry = self._models.get(name)
        state = state_of(status, success)
        changed_state = entry is None or entry["state"] != state
        rate = window_rate(samples, self._window)
        self._models[name] = {"name": name, "state": state, "status": str(status or "")[:100],
                              "completed": int(completed), "total": int(total),
                              "rate_bps": None if rate is None else round(rate, 1), "attempt": int(attempt)}
        self._flush(now, force=changed_state)

    def finish(self, name: str, failed: bool = False) -> None:
        """The model's pull ended (done or failed): written at once."""
        blank = {"name": name, "status": "", "completed": 0, "total": 0, "rate_bps": None, "attempt": 1}
        entry = self._models.setdefault(name, blank)
        entry["state"] = "failed" if failed else "done"
        if not failed and entry["total"]:
            entry["completed"] = entry["total"]
        self._flush(self._clock(), force=True)

    def snapshot(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "updated": round(self._wallclock(), 3),
                "models": [dict(entry) for entry in self._models.values()]}

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _flush(self, now: float, force: bool) -> None:
        if self.error is not None:
            return
        if not force and self._last_write is not None and now - self._last_write < self._interval:
            return
        try:
            self._writer(self.path, json.dumps(self.snapshot(), sort_keys=True) + "\n")
        except (OSError, ValueError) as exc:
            self.error = f"cannot write the pull progress to {self.path}: {exc}"
            return
        self._last_write = now
        self.writes += 1
