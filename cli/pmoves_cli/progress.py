"""Aggregate ansible-runner events into a per-host view (pure: feed event dicts, read the state)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STALLED_AFTER_S = 15.0  # a pull whose bytes have not moved this long says so
OLLAMA_MODEL_ACTIONS = frozenset({"pmoves.fleet.ollama_model", "ollama_model"})
# One call for a node's whole model set: its result lists every model (``models``), failed or not.
OLLAMA_MODEL_SET_ACTIONS = frozenset({"pmoves.fleet.ollama_model_set", "ollama_model_set"})
FLEET_PLAN_ACTIONS = frozenset({"pmoves.fleet.fleet_plan", "fleet_plan"})


@dataclass
class HostProgress:
    """What one host has done so far in this run."""

    name: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    task: str = ""
    play: str = ""
    models_done: list[str] = field(default_factory=list)
    model_pulling: str | None = None
    last_error: str = ""
    # The node's pull progress as the ollama_model action plugin last copied it (pull_progress schema 1 models).
    pulls: list[dict[str, Any]] = field(default_factory=list)
    pull_stalled_s: float = 0.0  # seconds since the pull progress last moved, once that is STALLED_AFTER_S or more

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        if self.task:
            return "running"
        return "ok" if self.ok else "waiting"


@dataclass
class RunProgress:
    """All hosts, the current play/task, and the final stats once the run ends."""

    hosts: dict[str, HostProgress] = field(default_factory=dict)
    play: str = ""
    task: str = ""
    finished: bool = False
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    # The fleet_plan task of this run: its summary (nodes, replicas, ...) or why it failed.
    plan_summary: dict[str, Any] | None = None
    plan_error: str = ""

    def host(self, name: str) -> HostProgress:
        return self.hosts.setdefault(name, HostProgress(name=name))

    def feed(self, event: dict[str, Any]) -> None:
        """Take one ansible-runner event (the dicts event_handler receives)."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host_name = data.get("host")
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play") or data.get("name") or "")
            return
        if kind == "playbook_on_task_start":
            self.task = str(data.get("task") or data.get("name") or "")
            return
        if kind == "playbook_on_stats":
            self.finished = True
            for key in ("ok", "changed", "failures", "dark", "skipped"):
                for name, count in (data.get(key) or {}).items():
                    self.stats.setdefault(name, {})[key] = int(count)
            for host in self.hosts.values():
                host.task = ""
            return
        if not host_name:
            return
        host = self.host(str(host_name))
        action = str(data.get("resolved_action") or data.get("task_action") or "")
        result = data.get("res") or {}
        if kind == "runner_on_start":
            host.task = str(data.get("task") or "")
            host.play = self.play
        elif kind == "runner_item_on_ok" and action in OLLAMA_MODEL_ACTIONS:
            model = _model_of(result)
            if model and model not in host.models_done:
                host.models_done.append(model)
            host.model_pulling = None
        elif kind == "runner_on_ok":
            host.ok += 1
            if action in FLEET_PLAN_ACTIONS and isinstance(result.get("summary"), dict):
                self.plan_summary = dict(result["summary"])
            if result.get("changed"):
                host.changed += 1
            if action in OLLAMA_MODEL_ACTIONS and not result.get("results"):
                model = _model_of(result)
                if model and model not in host.models_done:
                    host.models_done.append(model)
            if action in OLLAMA_MODEL_SET_ACTIONS:
                _add_models_of_set(host, result)
            host.task = ""
        elif kind == "runner_on_failed":
            if action in OLLAMA_MODEL_SET_ACTIONS:
                _add_models_of_set(host, result)  # the models that succeeded before or after the failed one
            if not data.get("ignore_errors"):
                host.failed += 1
                host.last_error = str(result.get("msg") or "")[:200]
                if action in FLEET_PLAN_ACTIONS:
                    self.plan_error = str(result.get("msg") or "the plan failed")
            host.task = ""
        elif kind == "runner_on_unreachable":
            host.unreachable += 1
            host.last_error = str(result.get("msg") or "")[:200]
            host.task = ""
        elif kind == "runner_on_skipped":
            host.skipped += 1
            host.task = ""
        if kind == "runner_on_start" and action in OLLAMA_MODEL_ACTIONS | OLLAMA_MODEL_SET_ACTIONS:
            host.model_pulling = str(data.get("task_args") or "").strip() or host.task

    def load_pulls(self, directory: str | Path | None, now: float | None = None) -> RunProgress:
        """Take the pull progress files (one per host) the ollama_model action plugin writes there.

        The plugin rewrites a host's file only when the node's progress changed, so the file's ``updated``
        (the controller's clock, like ``now``) says how long the bytes have not moved.
        """
        now = time.time() if now is None else now
        if not directory:
            return self
        from ansible_collections.pmoves.fleet.plugins.module_utils.pull_progress import parse_snapshot

        for path in sorted(Path(directory).glob("*.json")):
            try:
                text = path.read_text(encoding="utf-8")
                record = json.loads(text)
            except (OSError, ValueError):
                continue  # a file being replaced: the next refresh reads it
            snapshot = parse_snapshot(text)
            if snapshot is None or not isinstance(record, dict) or not isinstance(record.get("host"), str):
                continue
            host = self.host(record["host"])
            host.pulls = snapshot["models"]
            updated = record.get("updated")
            age = now - updated if isinstance(updated, (int, float)) else 0.0
            host.pull_stalled_s = age if age >= STALLED_AFTER_S else 0.0
        return self

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP numbers per host (from the final stats, else from the events)."""
        if self.stats:
            return {name: {"ok": s.get("ok", 0), "changed": s.get("changed", 0), "failed": s.get("failures", 0),
                           "unreachable": s.get("dark", 0), "skipped": s.get("skipped", 0)}
                    for name, s in sorted(self.stats.items())}
        return {h.name: {"ok": h.ok, "changed": h.changed, "failed": h.failed, "unreachable": h.unreachable,
                         "skipped": h.skipped} for h in sorted(self.hosts.values(), key=lambda h: h.name)}


def _add_models_of_set(host: HostProgress, result: dict[str, Any]) -> None:
    """The models an ollama_model_set result has in place (its failed and skipped ones are not done)."""
    for entry in result.get("models") or []:
        if not isinstance(entry, dict) or entry.get("failed") or entry.get("skipped"):
            continue
        model = _model_of(entry) or (str(entry["name"]) if entry.get("name") else None)
        if model and model not in host.models_done:
            host.models_done.append(model)
    host.model_pulling = None


def _model_of(result: dict[str, Any]) -> str | None:
    model = result.get("model")
    if isinstance(model, dict) and model.get("name"):
        return str(model["name"])
    item = result.get("item")
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and item.get("name"):
        return str(item["name"])
    return None


def pull_text(host: HostProgress) -> str:
    """The host's pulls that are not finished, one phrase each: ``llama3:8b pulling 1.2 GB/4.7 GB 25% 3.1 MB/s``."""
    from ansible_collections.pmoves.fleet.plugins.module_utils.pull_progress import describe_model

    text = "; ".join(describe_model(entry) for entry in host.pulls if entry.get("state") not in ("done",))
    if text and host.pull_stalled_s and any(entry.get("state") == "pulling" for entry in host.pulls):
        text += f" (no progress for {host.pull_stalled_s:.0f} s)"
    return text


def host_line(host: HostProgress) -> str:
    """One host on one plain line (the view when stdout is not a terminal)."""
    now = host.task if host.status == "running" else host.last_error
    line = (f"{host.name} {host.status} ok={host.ok} changed={host.changed} failed={host.failed + host.unreachable}"
            + (f" | {now[:80]}" if now else ""))
    pulls = pull_text(host)
    return line + (f" | pull: {pulls}" if pulls else "")


def changed_lines(progress: RunProgress, shown: dict[str, str]) -> list[str]:
    """The host lines that differ from what was printed last (``shown`` is updated)."""
    lines = []
    for name in sorted(progress.hosts):
        line = host_line(progress.hosts[name])
        if shown.get(name) != line:
            shown[name] = line
            lines.append(line)
    return lines
