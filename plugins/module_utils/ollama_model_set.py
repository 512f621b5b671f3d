"""A node's whole model set in one call: the logic behind ``pmoves.fleet.ollama_model_set``.

``ensure_model_set`` reads /api/tags once, brings every wanted model present with its aliases through
``ollama_api.ensure_model`` (the same decisions as ``pmoves.fleet.ollama_model``, one model at a time), and,
when asked, deletes what is installed but neither wanted, an alias of a wanted model, nor kept. A model that
fails does not stop the others (as a loop over ``ollama_model`` would go on), and pruning is skipped when any
model failed. Standard library plus ``ollama_api``; the client, free-space probe and sleep are injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import (
    ModelRequest,
    ModelResult,
    OllamaClient,
    OllamaError,
    PullProgress,
    disk_free_bytes,
    ensure_model,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name

# Failures after which the next model cannot do better: the server is gone or its disk is full.
STOP_KINDS = ("unreachable", "disk_full")


@dataclass
class ModelSpec:
    """One wanted model: its name, the other names it gets (``/api/copy``) and an optional warm-up."""

    name: str
    aliases: tuple[str, ...] = ()
    keep_alive: str | None = None


@dataclass
class SetRequest:
    models: list[ModelSpec]
    retries: int = 3
    retry_delay: float = 2.0
    models_dir: str | None = None
    disk_reserve_mb: int = 0
    pull_timeout: float | None = None
    prune: bool = False
    prune_keep: tuple[str, ...] = ()
    # (name, attempt, PullProgress) after every line of a pull, as ModelRequest.on_progress
    on_progress: Callable[[str, int, PullProgress], None] | None = None
    # (name, failed) once a model is done with, pulled or not
    on_done: Callable[[str, bool], None] | None = None


@dataclass
class SetResult:
    changed: bool = False
    models: list[dict[str, Any]] = field(default_factory=list)  # per model, as ollama_model returns one
    pulled: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    aliases_created: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    bytes_pulled: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # {name, msg, url}
    warnings: list[str] = field(default_factory=list)
    diff: dict[str, str] = field(default_factory=dict)


def model_specs(entries: Sequence[Any]) -> list[ModelSpec]:
    """The ``models`` option as specs: a name, or a mapping with ``name``, ``aliases`` and ``keep_alive``.

    Names are checked later, per model (a bad one fails that model only); here only the shape.
    Other keys (the plan's ``source``) are ignored.
    """
    specs = []
    for index, entry in enumerate(entries or []):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise ValueError(f"models[{index}] must be a model name or a mapping with a non-empty 'name': {entry!r}")
        aliases = entry.get("aliases") or []
        if isinstance(aliases, str) or not all(isinstance(alias, str) for alias in aliases):
            raise ValueError(f"models[{index}] ({entry['name']}): 'aliases' must be a list of names")
        keep_alive = entry.get("keep_alive")
        specs.append(ModelSpec(entry["name"], tuple(aliases),
                               None if keep_alive in (None, "") else str(keep_alive)))
    return specs


def _normalised(name: str) -> str | None:
    try:
        return normalize_model_name(name)
    except ValueError:
        return None


def installed_names(tags: Iterable[dict[str, Any]]) -> list[str]:
    """The normalised names /api/tags lists, in its order, once each."""
    names = (_normalised(entry.get("name") or entry.get("model") or "") for entry in tags)
    return list(dict.fromkeys(name for name in names if name))


def prune_candidates(installed: Iterable[str], wanted: Iterable[ModelSpec], keep: Iterable[str]) -> list[str]:
    """Installed names to delete: neither a wanted model, nor one of their aliases, nor kept.

    All names are compared normalised (``pmoves.fleet.ollama_name``), so ``Llama3`` keeps ``llama3:latest``.
    """
    kept: set[str] = set()
    for spec in wanted:
        kept.update(name for name in map(_normalised, (spec.name, *spec.aliases)) if name)
    kept.update(name for name in map(_normalised, keep) if name)
    return [name for name in dict.fromkeys(filter(None, map(_normalised, installed))) if name not in kept]


def _model_output(result: ModelResult) -> dict[str, Any]:
    """One model's entry of ``models``: the keys ollama_model returns for it."""
    output: dict[str, Any] = {
        "name": result.model.get("name"), "changed": result.changed, "failed": False, "model": result.model,
        "actions": result.actions, "pulled": result.pulled, "attempts": result.attempts,
        "bytes_pulled": result.bytes_pulled,
    }
    if result.aliases:
        output["alias"] = result.alias
        output["aliases"] = result.aliases
    return output


def _failure(name: str, exc: Exception, client: OllamaClient) -> dict[str, Any]:
    """A failed model's entry: its name (normalised when it can be), the cause and the request URL."""
    url = getattr(exc, "url", None) or client.base
    return {"name": _normalised(name) or name, "changed": False, "failed": True, "msg": str(exc), "url": url}


def _diff_text(names: Iterable[str]) -> str:
    return "".join(f"{name}\n" for name in sorted(set(names)))


def failure_message(client: OllamaClient, result: SetResult, total: int) -> str:
    """One message for the task: which models failed on which server, and why (each names its request)."""
    parts = "; ".join(f"{failure['name']}: {failure['msg']}" for failure in result.failures)
    done = [entry["name"] for entry in result.models if not entry.get("failed") and not entry.get("skipped")]
    return (f"{len(result.failures)} of {total} model(s) failed on the Ollama API at {client.base}: {parts}"
            f" (done: {', '.join(done) if done else 'none'})")


def ensure_model_set(client: OllamaClient, request: SetRequest, check_mode: bool,
                     free_probe: Callable[[str], tuple[str, int]] = disk_free_bytes,
                     sleep: Callable[[float], None] = time.sleep) -> SetResult:
    """Bring the node's models to ``request.models`` (and prune the rest when asked); never changes in check mode.

    Raises OllamaError only when the first /api/tags read fails (nothing was done); every other failure is
    recorded in ``failures`` and the model's entry of ``models``, and the remaining models are still handled
    (unless the server became unreachable or its disk is full: those are listed as skipped).
    """
    keep = tuple(normalize_model_name(name) for name in request.prune_keep)  # ValueError: nothing sent yet
    result = SetResult()
    tags: list[dict[str, Any]] | None = client.tags()
    before = installed_names(tags)
    stop: OllamaError | None = None
    for spec in request.models:
        if stop is not None:
            result.models.append({"name": spec.name, "changed": False, "failed": False, "skipped": True,
                                  "msg": f"not attempted: {stop}"})
            continue
        model_request = ModelRequest(
            name=spec.name, aliases=spec.aliases, keep_alive=spec.keep_alive, retries=request.retries,
            retry_delay=request.retry_delay, models_dir=request.models_dir, disk_reserve_mb=request.disk_reserve_mb,
            pull_timeout=request.pull_timeout, on_progress=request.on_progress)
        try:
            if tags is None:
                tags = client.tags()
            outcome = ensure_model(client, model_request, check_mode, free_probe=free_probe, sleep=sleep, tags=tags)
        except (OllamaError, ValueError) as exc:
            result.failures.append(_failure(spec.name, exc, client))
            result.models.append(result.failures[-1])
            tags = None  # a pull may have written part of the model: read the list again
            if request.on_done is not None:
                request.on_done(result.failures[-1]["name"], True)  # normalised, as on_progress names it
            if isinstance(exc, OllamaError) and exc.kind in STOP_KINDS:
                stop = exc
            continue
        if request.on_done is not None:
            request.on_done(outcome.model["name"], False)
        name = outcome.model["name"]
        result.models.append(_model_output(outcome))
        result.actions.extend(outcome.actions)
        result.warnings.extend(outcome.warnings)
        result.bytes_pulled += outcome.bytes_pulled
        result.changed = result.changed or outcome.changed
        if outcome.pulled or f"pull {name}" in outcome.actions:
            result.pulled.append(name)
        result.aliases_created.extend(action.split(" -> ", 1)[1] for action in outcome.actions
                                      if action.startswith(f"copy {name} -> "))
        if outcome.changed and not check_mode:
            tags = None  # the server's list changed: the next model reads it again
    if request.prune:
        if result.failures:
            result.warnings.append(f"nothing pruned: {len(result.failures)} model(s) failed, so the set is not "
                                   f"the plan's yet")
        else:
            _prune(client, request, keep, tags, result, check_mode)
    if result.changed:
        after = (set(before) | set(result.pulled) | set(result.aliases_created)) - set(result.removed)
        result.diff = {"before": _diff_text(before), "after": _diff_text(after)}
    return result


def _prune(client: OllamaClient, request: SetRequest, keep: tuple[str, ...], tags: list[dict[str, Any]] | None,
           result: SetResult, check_mode: bool) -> None:
    try:
        current = installed_names(client.tags() if tags is None else tags)
    except OllamaError as exc:
        result.failures.append(_failure("(prune)", exc, client))
        return
    for name in prune_candidates(current, request.models, keep):
        result.actions.append(f"delete {name}")
        if not check_mode:
            try:
                client.delete(name)
            except OllamaError as exc:
                result.failures.append(_failure(name, exc, client))
                continue
        result.removed.append(name)
        result.changed = True
