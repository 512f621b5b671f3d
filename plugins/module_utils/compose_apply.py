# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Apply a rendered compose project: recreate only what changed, health-check, roll back on failure.

Works with ``docker compose`` (v2 plugin) and ``podman-compose`` (Debian 12's 1.0.3 as well as
the 1.x releases on PyPI). Engine differences handled here, so the callers never see them:

* identity of a service's configuration: label ``io.pmoves.config-hash`` on every service,
  sha256 of that service's sections in every compose file plus the digests of its env files;
  compared with the label of the running container (``<cli> inspect``);
* only the changed services are recreated, one at a time in dependency order, each checked
  before the next starts (container running, then the ``x-pmoves-health`` probe: HTTP or TCP);
* podman links a container to its dependencies (``--requires``), so recreating a dependency
  on podman also recreates its running dependents (reported as such); docker does not need it;
* podman-compose 1.0.3 ignores ``--no-deps`` / ``--force-recreate`` for named services and
  exits 0 on errors, so containers are removed with ``<cli> rm -f`` first and the outcome is
  always read back from ``<cli> inspect``, never from the exit code alone;
* the files of the last successful apply are kept as ``<file>.last-good`` (and their data in
  ``.pmoves-compose.last-good.json``); a failed start restores them, brings the services back
  as they were and reports the failing service's log tail;
* compose files may be given verbatim (the user's own files of seed 004) with their parsed data
  (``parsed``): they are written byte for byte and hashed from the data; the hash label then goes
  into the first rendered file that defines the service (the GPU override). ``services`` limits
  the apply to the planned services, ``keep_services`` names services of the files that are left
  alone (never started, recreated nor removed).

The pure helpers (hashes, change plan, probes parsing) are unit-tested without an engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import (
    CONFIG_HASH_LABEL,
    RenderError,
    config_hash,
    service_order,
    to_yaml,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.http_request import URL_ERRORS, http_open

__all__ = [
    "ApplyError",
    "ChangePlan",
    "ComposeProject",
    "Container",
    "Engine",
    "active_services",
    "detect_engine",
    "plan_changes",
    "service_hashes",
]

LAST_GOOD_SUFFIX = ".last-good"
STATE_FILE = ".pmoves-compose.last-good.json"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"

# Type aliases for type checkers only: at run time `tuple[...]` and `Callable[...]` need Python 3.9+,
# and nodes run 3.8 (JetPack 5); annotations stay unevaluated strings (from __future__ import annotations).
if TYPE_CHECKING:
    RunResult = tuple[int, str, str]
    Runner = Callable[[Sequence[str]], RunResult]


class ApplyError(RuntimeError):
    """A failure the caller reports as is (``msg``) with optional details for the result."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


# --------------------------------------------------------------------------- engine
@dataclass(frozen=True)
class Engine:
    kind: str  # docker | podman
    compose: tuple[str, ...]  # ("docker", "compose") or ("podman-compose",)
    cli: str  # docker | podman
    version: str

    @property
    def supports_profiles(self) -> bool:
        if self.kind == "docker":
            return True
        return _version_tuple(self.version) >= (1, 1)


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(x) for x in match.groups(default="0")) if match else (0,)


def detect_engine(run: Runner, which: Callable[[str], str | None], preference: str = "auto") -> Engine:
    """``docker compose`` when it answers, else ``podman-compose`` (or the one asked for)."""
    tried: list[str] = []
    if preference in ("auto", "docker") and which("docker"):
        rc, out, err = run(["docker", "compose", "version", "--short"])
        if rc == 0:
            return Engine("docker", ("docker", "compose"), "docker", out.strip())
        tried.append(f"`docker compose version` failed: {(err or out).strip()[:200]}")
    elif preference in ("auto", "docker"):
        tried.append("no docker binary on PATH")
    if preference in ("auto", "podman"):
        binary = which("podman-compose")
        if binary and which("podman"):
            rc, out, err = run([binary, "version"])
            match = re.search(r"podman-compos\w* version\s+(\S+)", out + err)
            if rc == 0 or match:
                return Engine("podman", (binary,), "podman", match.group(1) if match else "0")
            tried.append(f"`podman-compose version` failed: {(err or out).strip()[:200]}")
        else:
            tried.append("podman-compose or podman not on PATH")
    raise ApplyError("no usable compose engine (" + "; ".join(tried) + "): install docker with the compose plugin "
                     "or podman + podman-compose")


# --------------------------------------------------------------------------- pure helpers
def _as_label_dict(labels: Any) -> dict[str, str]:
    if not labels:
        return {}
    if isinstance(labels, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in labels.items()}
    out = {}
    for item in labels:
        key, _sep, value = str(item).partition("=")
        out[key] = value
    return out


def _env_files(service: Mapping[str, Any]) -> list[str]:
    value = service.get("env_file") or []
    if isinstance(value, (str, Mapping)):
        value = [value]
    return [str(v["path"] if isinstance(v, Mapping) else v) for v in value]


def merged_services(docs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Service name -> shallow merge of its sections over the compose files (enough for ordering)."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for name, svc in (doc.get("services") or {}).items():
            out.setdefault(name, {}).update(svc or {})
    return out


def active_services(docs: Sequence[Mapping[str, Any]], profiles: Iterable[str]) -> list[str]:
    """Services that run under ``profiles`` (no ``profiles`` key: always), in start order."""
    wanted = set(profiles)
    services = merged_services(docs)
    active = {n: s for n, s in services.items() if not s.get("profiles") or wanted & set(s["profiles"])}
    try:
        return service_order({n: {"depends_on": _deps(s, active)} for n, s in active.items()})
    except RenderError as exc:
        raise ApplyError(str(exc)) from exc


def _deps(service: Mapping[str, Any], known: Mapping[str, Any]) -> list[str]:
    value = service.get("depends_on") or []
    names = list(value) if isinstance(value, (list, tuple, Mapping)) else [str(value)]
    return [n for n in names if n in known]


def service_hashes(docs: Sequence[Mapping[str, Any]], env_digests: Mapping[str, str]) -> dict[str, str]:
    """Config hash per service: its section in each file (hash label left out) + env file digests."""
    hashes: dict[str, str] = {}
    for name in merged_services(docs):
        parts: list[Any] = []
        for doc in docs:
            svc = dict((doc.get("services") or {}).get(name) or {})
            if "labels" in svc:
                svc["labels"] = {k: v for k, v in _as_label_dict(svc["labels"]).items() if k != CONFIG_HASH_LABEL}
                if not svc["labels"]:
                    del svc["labels"]  # a file read back (hash label only) hashes like the one rendered
            parts.append(svc)
            parts.extend((path, env_digests.get(path, "missing")) for path in _env_files(svc))
        hashes[name] = config_hash(parts)
    return hashes


def with_hash_labels(docs: Sequence[Mapping[str, Any]], hashes: Mapping[str, str],
                     verbatim: Sequence[bool] | None = None) -> list[dict[str, Any]]:
    """Copies of ``docs`` with the hash label on each service, in the first file defining it that is not
    written verbatim (``verbatim[i]``: the user's own file, copied byte for byte, never relabelled)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, doc in enumerate(docs):
        new_doc = dict(doc)
        services = {}
        skip = bool(verbatim and verbatim[index])
        for name, svc in (doc.get("services") or {}).items():
            svc = dict(svc or {})
            if name not in seen and not skip:
                seen.add(name)
                labels = _as_label_dict(svc.get("labels"))
                labels[CONFIG_HASH_LABEL] = hashes[name]
                svc["labels"] = labels
            services[name] = svc
        if "services" in doc:
            new_doc["services"] = services
        out.append(new_doc)
    return out


def _labelled(docs: Sequence[Mapping[str, Any]]) -> set[str]:
    return {name for doc in docs for name, svc in (doc.get("services") or {}).items()
            if CONFIG_HASH_LABEL in _as_label_dict((svc or {}).get("labels"))}


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    service: str
    status: str  # running | exited | created | ...
    config_hash: str | None
    restart_count: int = 0

    @property
    def running(self) -> bool:
        return self.status == "running"


def parse_inspect(payload: str) -> list[Container]:
    """Containers from ``docker inspect`` / ``podman inspect`` JSON."""
    try:
        items = json.loads(payload or "[]")
    except ValueError as exc:
        raise ApplyError(f"cannot read container inspect output: {exc}") from exc
    out = []
    for item in items or []:
        labels = (item.get("Config") or {}).get("Labels") or {}
        state = item.get("State") or {}
        out.append(Container(
            id=str(item.get("Id") or item.get("ID") or ""),
            name=str(item.get("Name") or "").lstrip("/"),
            service=str(labels.get(SERVICE_LABEL) or ""),
            status=str(state.get("Status") or "unknown").lower(),
            config_hash=labels.get(CONFIG_HASH_LABEL),
            restart_count=int(item.get("RestartCount") or state.get("RestartCount") or 0),
        ))
    return out


@dataclass
class ChangePlan:
    """What an apply does: services to (re)create with the reason, containers to remove."""

    recreate: dict[str, str] = field(default_factory=dict)  # service -> reason, in start order
    unchanged: list[str] = field(default_factory=list)
    remove: list[Container] = field(default_factory=list)  # orphans: services no longer in the project


def plan_changes(order: Sequence[str], desired: Mapping[str, str], containers: Iterable[Container],
                 dependents: Mapping[str, Sequence[str]] | None = None, keep: Iterable[str] = ()) -> ChangePlan:
    """Compare desired hashes with the containers; ``dependents`` (podman) pulls in running dependents;
    containers of ``keep`` services are never removed (nor recreated: they are not in ``order``)."""
    kept = set(keep)
    by_service: dict[str, list[Container]] = {}
    for c in containers:
        by_service.setdefault(c.service, []).append(c)
    plan = ChangePlan()
    reasons: dict[str, str] = {}
    for name in order:
        found = by_service.get(name) or []
        if not found:
            reasons[name] = "not created yet"
        elif any(c.config_hash != desired[name] for c in found):
            reasons[name] = "configuration changed"
        elif not all(c.running for c in found):
            reasons[name] = "not running"
    if dependents:
        pending = list(reasons)
        while pending:
            name = pending.pop()
            for dep in dependents.get(name, ()):
                if dep not in reasons and by_service.get(dep):
                    reasons[dep] = f"depends on recreated {name}"
                    pending.append(dep)
    plan.recreate = {n: reasons[n] for n in order if n in reasons}
    plan.unchanged = [n for n in order if n not in reasons]
    plan.remove = [c for s, cs in sorted(by_service.items()) if s not in desired and s not in kept for c in cs]
    return plan


def dependents_map(docs: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    services = merged_services(docs)
    out: dict[str, list[str]] = {}
    for name, svc in sorted(services.items()):
        for dep in _deps(svc, services):
            out.setdefault(dep, []).append(name)
    return out


def parse_health(spec: Mapping[str, Any] | None, default_timeout: int) -> tuple[str | None, str | None, int]:
    """(kind, target, timeout) of an ``x-pmoves-health`` entry; kind None: only 'running' is checked."""
    if not spec:
        return None, None, default_timeout
    timeout = int(spec.get("timeout") or default_timeout)
    if spec.get("http"):
        return "http", str(spec["http"]), timeout
    if spec.get("tcp"):
        target = str(spec["tcp"])
        if not re.fullmatch(r"[^:\s]+:\d+", target) and not re.fullmatch(r"\[[0-9a-fA-F:]+\]:\d+", target):
            raise ApplyError(f"health tcp target {target!r} must be host:port")
        return "tcp", target, timeout
    raise ApplyError("x-pmoves-health needs 'http' or 'tcp'")


def probe_once(kind: str, target: str, timeout: float = 3.0) -> tuple[bool, str]:
    """One HTTP (2xx/3xx) or TCP probe."""
    if kind == "http":
        try:
            with http_open(target, timeout=timeout) as resp:
                return 200 <= resp.status < 400, f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            return False, f"HTTP {exc.code}"
        except (*URL_ERRORS, ValueError) as exc:
            return False, str(exc)
    host, _sep, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True, "TCP connect ok"
    except OSError as exc:
        return False, str(exc)


# --------------------------------------------------------------------------- the project
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _write_atomic(path: str, text: str, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", text=True)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class ComposeProject:
    """One compose project on this host, driven through ``run`` (injected, so tests can fake it)."""

    project_dir: str
    project_name: str
    compose_files: list[str]
    documents: dict[str, Any]  # relative path -> mapping (compose and other YAML files) or str (verbatim)
    engine: Engine
    run: Runner
    profiles: list[str] = field(default_factory=list)
    file_mode: int = 0o644
    health_timeout: int = 120
    settle_seconds: float = 2.0
    log_lines: int = 40
    stop_timeout: int = 10
    poll_interval: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    probe: Callable[[str, str], tuple[bool, str]] = probe_once
    events: list[str] = field(default_factory=list)
    # Files an earlier release wrote and this one no longer does (the root-level GPU override before it
    # moved under config/): removed after a successful apply when still ours, see stale().
    stale_files: list[str] = field(default_factory=list)
    # Compose files given verbatim (str in `documents`): relative path -> their parsed content.
    parsed: dict[str, Any] = field(default_factory=dict)
    # The services this apply manages (None: every active service of the files).
    services: list[str] | None = None
    # Services of the files left alone: never started, recreated nor removed (the user's own).
    keep_services: list[str] = field(default_factory=list)

    # ---- rendering of the final files (hash labels injected)
    def __post_init__(self) -> None:
        for rel in self.compose_files:
            doc = self.documents.get(rel)
            if isinstance(doc, str) and isinstance(self.parsed.get(rel), Mapping):
                continue
            if not isinstance(doc, Mapping):
                raise ApplyError(f"compose file {rel!r} must be given as a mapping in `files`, or as text with its "
                                 f"parsed `data` (got {type(doc).__name__})")
        self.project_dir = os.path.abspath(self.project_dir)

    def compose_docs(self) -> list[Mapping[str, Any]]:
        """The compose files as data, in ``-f`` order (verbatim ones as parsed)."""
        return [self.parsed[rel] if isinstance(self.documents[rel], str) else self.documents[rel]
                for rel in self.compose_files]

    def path(self, rel: str) -> str:
        if os.path.isabs(rel) or ".." in rel.split("/"):
            raise ApplyError(f"file path {rel!r} must be relative to project_dir, without '..'")
        return os.path.join(self.project_dir, rel)

    def _env_digests(self, docs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        out = {}
        for svc in merged_services(docs).values():
            for env_path in _env_files(svc):
                full = env_path if os.path.isabs(env_path) else os.path.join(self.project_dir, env_path)
                try:
                    with open(full, "rb") as fh:
                        out[env_path] = _sha(fh.read())
                except OSError:
                    out[env_path] = "missing"
        return out

    def desired(self) -> tuple[dict[str, str], dict[str, str], list[str], dict[str, list[str]]]:
        """(file texts, service hashes, active services in order, dependents)."""
        docs = self.compose_docs()
        hashes = service_hashes(docs, self._env_digests(docs))
        verbatim = [isinstance(self.documents[rel], str) for rel in self.compose_files]
        labelled = with_hash_labels(docs, hashes, verbatim)
        texts: dict[str, str] = {}
        for rel, content in self.documents.items():
            if rel in self.compose_files and not isinstance(content, str):
                content = labelled[self.compose_files.index(rel)]
            texts[rel] = content if isinstance(content, str) else to_yaml(content)
        order = active_services(docs, self.profiles)
        if self.services is not None:
            unknown = sorted(set(self.services) - set(merged_services(docs)))
            if unknown:
                raise ApplyError(f"services {unknown} are in none of the compose files {self.compose_files}")
            order = [n for n in order if n in self.services and n not in self.keep_services]
        else:
            order = [n for n in order if n not in self.keep_services]
        have_label = _labelled(labelled)
        unlabelled = [n for n in order if n not in have_label]
        if unlabelled:
            raise ApplyError(f"services {unlabelled} are defined only in verbatim files: their config hash label "
                             "needs a rendered file (the GPU override) that names them")
        return texts, {n: hashes[n] for n in order}, order, dependents_map(docs)

    # ---- engine access
    def _compose_cmd(self, *args: str) -> list[str]:
        cmd = [*self.engine.compose, "-p", self.project_name]
        for rel in self.compose_files:
            cmd += ["-f", self.path(rel)]
        if self.engine.supports_profiles:
            for profile in self.profiles:
                cmd += ["--profile", profile]
        return [*cmd, *args]

    def containers(self) -> list[Container]:
        rc, out, err = self.run([self.engine.cli, "ps", "-a", "-q", "--no-trunc",
                                 "--filter", f"label={PROJECT_LABEL}={self.project_name}"])
        if rc != 0:
            raise ApplyError(f"`{self.engine.cli} ps` failed: {(err or out).strip()[-500:]}")
        ids = out.split()
        if not ids:
            return []
        rc, out, err = self.run([self.engine.cli, "inspect", *ids])
        if rc != 0:
            # A container can vanish between ps and inspect (restart policy races): retry once.
            _rc, out, err = self.run([self.engine.cli, "ps", "-a", "-q", "--no-trunc",
                                      "--filter", f"label={PROJECT_LABEL}={self.project_name}"])
            ids = out.split()
            rc, out, err = self.run([self.engine.cli, "inspect", *ids]) if ids else (0, "[]", "")
            if rc != 0:
                raise ApplyError(f"`{self.engine.cli} inspect` failed: {(err or out).strip()[-500:]}")
        return parse_inspect(out)

    def log_tail(self, service: str) -> str:
        tails = []
        for c in self.containers():
            if c.service == service:
                _rc, out, err = self.run([self.engine.cli, "logs", "--tail", str(self.log_lines), c.id])
                tails.append(f"--- {c.name} ({c.status}) ---\n{(out + err).strip()}")
        return "\n".join(tails) or f"(no container of {service} exists)"

    def _remove(self, containers: Iterable[Container]) -> None:
        ids = [c.id for c in containers]
        if ids:
            if self.engine.kind == "podman":
                rc, out, err = self.run([self.engine.cli, "rm", "-f", "-t", str(self.stop_timeout), *ids])
            else:
                self.run([self.engine.cli, "stop", "-t", str(self.stop_timeout), *ids])
                rc, out, err = self.run([self.engine.cli, "rm", "-f", *ids])
            if rc != 0 and "no such container" not in (err + out).lower():
                raise ApplyError(f"`{self.engine.cli} rm -f` failed: {(err or out).strip()[-500:]}")

    def _up(self, service: str) -> RunResult:
        if self.engine.kind == "docker":
            return self.run(self._compose_cmd("up", "-d", "--no-deps", "--force-recreate", service))
        return self.run(self._compose_cmd("up", "-d", "--no-deps", service))

    def remove_services(self, services: Sequence[str]) -> None:
        """Remove the containers of ``services``, dependents before their dependencies (podman)."""
        if not services:
            return
        current = self.containers()
        for service in reversed(list(services)):
            self._remove(c for c in current if c.service == service)

    def start_service(self, service: str) -> None:
        """Create and start one service (already removed on podman), wait until it is healthy."""
        self.events.append(f"up {service}")
        rc, out, err = self._up(service)
        self.wait_healthy(service, f"compose exited {rc}: {(err or out).strip()[-300:]}" if rc else "")

    def recreate(self, services: Sequence[str], started: list[str]) -> None:
        """Recreate ``services`` in order; ``started`` collects each one as it is touched."""
        if self.engine.kind == "podman":
            # podman-compose 1.0.3 does not recreate named services and podman refuses to remove a
            # container others require: remove them all first, dependents first.
            self.remove_services(services)
        for service in services:
            started.append(service)
            self.start_service(service)

    def wait_healthy(self, service: str, up_error: str = "") -> None:
        merged = merged_services(self.compose_docs()).get(service) or {}
        kind, target, timeout = parse_health(merged.get("x-pmoves-health"), self.health_timeout)
        deadline = self.clock() + timeout
        settle_until = self.clock() + self.settle_seconds
        last = "no container"
        restarts0: int | None = None
        while True:
            mine = [c for c in self.containers() if c.service == service]
            if not mine:
                last = "no container was created" + (f" ({up_error})" if up_error else "")
            elif any(c.status in ("exited", "dead", "stopped") for c in mine):
                raise ApplyError(f"{service}: container stopped right after start", reason="exited")
            else:
                restarts = sum(c.restart_count for c in mine)
                restarts0 = restarts if restarts0 is None else restarts0
                if restarts > restarts0 or any(c.status == "restarting" for c in mine):
                    raise ApplyError(f"{service}: container keeps restarting", reason="restarting")
                if all(c.running for c in mine) and self.clock() >= settle_until:
                    if kind is None:
                        return
                    ok, last = self.probe(kind, target)
                    if ok:
                        return
                else:
                    last = ", ".join(f"{c.name} {c.status}" for c in mine)
            if self.clock() >= deadline:
                what = f"{kind} {target}" if kind else "running state"
                raise ApplyError(f"{service}: not healthy after {timeout}s ({what}: {last})", reason="timeout")
            self.sleep(self.poll_interval)

    # ---- the apply with rollback
    def plan(self) -> tuple[dict[str, str], dict[str, str | None], ChangePlan, list[str]]:
        texts, desired, order, dependents = self.desired()
        before = {rel: _read(self.path(rel)) for rel in texts}
        containers = self.containers()
        changes = plan_changes(order, desired, containers, dependents if self.engine.kind == "podman" else None,
                               keep=self.keep_services)
        return texts, before, changes, order

    def stale(self) -> tuple[list[str], list[str]]:
        """(stale files that are ours, stale files kept because they were edited since we wrote them).

        A stale file is ours when it is byte-identical to its ``.last-good`` copy (only this module
        writes those); a file written by someone else, or edited since, is kept and reported.
        """
        ours, kept = [], []
        for rel in self.stale_files:
            if rel in self.documents:
                continue
            text = _read(self.path(rel))
            if text is None:
                continue
            (ours if _read(self.path(rel) + LAST_GOOD_SUFFIX) == text else kept).append(rel)
        return ours, kept

    def remove_stale(self) -> tuple[list[str], list[str]]:
        ours, kept = self.stale()
        for rel in ours:
            for path in (self.path(rel), self.path(rel) + LAST_GOOD_SUFFIX):
                if os.path.exists(path):
                    os.unlink(path)
        return ours, kept

    def apply(self) -> dict[str, Any]:
        texts, before, changes, order = self.plan()
        changed_files = sorted(rel for rel, text in texts.items() if before[rel] != text)
        for rel in changed_files:
            _write_atomic(self.path(rel), texts[rel], self.file_mode)
        done: list[str] = []
        try:
            self.recreate(list(changes.recreate), done)
        except ApplyError as exc:
            service = done[-1] if done else "?"
            tail = self.log_tail(service)
            # podman removed every service to recreate up front: all of them need restoring.
            touched = list(changes.recreate) if self.engine.kind == "podman" else done
            rollback = self.rollback(before, changed_files, touched)
            raise ApplyError(
                f"{exc.msg}; rolled back to the last good state ({rollback['summary']}). "
                f"Log tail of {service}:\n{tail}",
                failed_service=service, log_tail=tail, rollback=rollback, recreated=done[:-1],
            ) from exc
        self._remove(changes.remove)
        self.save_last_good(texts)
        # Only after a good apply: until then the rollback may still need the old files.
        stale_removed, stale_kept = self.remove_stale()
        return {
            "changed": bool(changed_files or changes.recreate or changes.remove or stale_removed),
            "files_changed": changed_files,
            "stale_removed": stale_removed,
            "stale_kept": stale_kept,
            "recreated": list(changes.recreate),
            "reasons": changes.recreate,
            "unchanged": changes.unchanged,
            "removed": [c.service or c.name for c in changes.remove],
            "services": order,
        }

    def save_last_good(self, texts: Mapping[str, str]) -> None:
        for rel, text in texts.items():
            if _read(self.path(rel) + LAST_GOOD_SUFFIX) != text:
                _write_atomic(self.path(rel) + LAST_GOOD_SUFFIX, text, self.file_mode)
        state = {"compose_files": self.compose_files, "profiles": self.profiles,
                 "documents": dict(zip(self.compose_files, self.compose_docs()))}
        text = json.dumps(state, sort_keys=True, indent=1) + "\n"
        if _read(self.path(STATE_FILE)) != text:
            _write_atomic(self.path(STATE_FILE), text, 0o600)

    def rollback(self, before: Mapping[str, str | None], changed_files: Sequence[str],
                 touched: Sequence[str]) -> dict[str, Any]:
        """Restore the last good files and bring ``touched`` services back as they were."""
        restored, removed_files = [], []
        for rel in changed_files:
            good = _read(self.path(rel) + LAST_GOOD_SUFFIX)
            if good is None:
                good = before.get(rel)
            if good is None:
                os.unlink(self.path(rel))
                removed_files.append(rel)
            else:
                _write_atomic(self.path(rel), good, self.file_mode)
                restored.append(rel)
        state_text = _read(self.path(STATE_FILE))
        previous = None
        if state_text:
            state = json.loads(state_text)
            previous = ComposeProject(
                project_dir=self.project_dir, project_name=self.project_name,
                compose_files=state["compose_files"], documents=state["documents"], engine=self.engine,
                run=self.run, profiles=state["profiles"], health_timeout=min(self.health_timeout, 60),
                settle_seconds=self.settle_seconds, log_lines=self.log_lines, stop_timeout=self.stop_timeout,
                poll_interval=self.poll_interval,
                sleep=self.sleep, clock=self.clock, probe=self.probe, events=self.events,
            )
        brought_back, dropped, problems = [], [], []
        prev_services = set(merged_services(list(previous.documents.values()))) if previous else set()
        self.events.append("rollback " + " ".join(touched))
        try:
            self.remove_services(touched)
        except ApplyError as exc:
            problems.append(exc.msg)
        for service in touched:
            if previous is None or service not in prev_services:
                dropped.append(service)
                continue
            try:
                previous.start_service(service)
                brought_back.append(service)
            except ApplyError as exc:
                problems.append(f"{service}: {exc.msg}")
        summary = []
        if restored or removed_files:
            summary.append("files restored: " + ", ".join(restored + [f"{r} (removed)" for r in removed_files]))
        if brought_back:
            summary.append("services restored: " + ", ".join(brought_back))
        if dropped:
            summary.append("new services removed: " + ", ".join(dropped))
        if problems:
            summary.append("ROLLBACK PROBLEMS: " + "; ".join(problems))
        return {"files_restored": restored, "files_removed": removed_files, "services_restored": brought_back,
                "services_removed": dropped, "problems": problems,
                "summary": "; ".join(summary) or "nothing to restore"}

    def down(self) -> dict[str, Any]:
        containers = self.containers()
        self._remove(containers)
        return {"changed": bool(containers), "removed": sorted({c.service or c.name for c in containers})}
