"""Ollama HTTP API client and the model-state logic behind ``pmoves.fleet.ollama_model``.

Standard library plus ``http_request`` (Ansible's ``open_url``, which needs no module object, so
unit tests drive the client directly), no I/O at import time. The client speaks
the documented API (``/api/version``, ``/api/tags``, ``/api/show``, streamed ``/api/pull``,
``/api/delete``, ``/api/copy``, ``/api/generate``) and turns every failure into an
``OllamaError`` whose message names the URL and quotes the server's own error text.

``ensure_model`` holds the decision logic (present / absent / latest, aliases, check mode,
pull retries that resume, free-disk check against the pull's announced sizes); it takes the
client, a clock and a free-space probe as arguments so unit tests drive it without a server.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.http_request import URL_ERRORS, http_open
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434

# Server errors that retrying cannot fix (unknown model/tag, bad name, auth, capability).
PERMANENT_ERROR_MARKERS = (
    "file does not exist",
    "invalid model name",
    "is invalid",
    "not found",
    "unauthorized",
    "does not support",
    "insecure protocol",
    "requires",
    "does not fit",
)


class OllamaError(Exception):
    """An API failure with a user-actionable message."""

    def __init__(self, message: str, url: str | None = None, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.transient = transient

    def __str__(self) -> str:
        return self.message


def base_url(host: str | None) -> str:
    """Normalise ``host`` the way Ollama reads OLLAMA_HOST (envconfig.Host).

    No scheme means ``http`` and port 11434; an explicit ``http://``/``https://`` without a port
    means 80/443. A bind-all address is not connectable, so ``0.0.0.0`` becomes ``127.0.0.1``
    (``::`` becomes ``::1``). A path (``https://gw.example/ollama``) is kept.
    """
    text = (host or "").strip() or DEFAULT_HOST
    scheme, sep, rest = text.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, rest = "http", text
    elif scheme in ("http", "https"):
        default_port = 80 if scheme == "http" else 443
    hostport, _sep, path = rest.partition("/")
    if hostport.startswith("["):
        hostname, _sep, port_text = hostport[1:].partition("]")
        port_text = port_text.lstrip(":")
    elif hostport.count(":") == 1:
        hostname, port_text = hostport.split(":")
    else:  # plain host, or a bare IPv6 address
        hostname, port_text = hostport, ""
    hostname = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(hostname, hostname)
    if ":" in hostname:
        hostname = f"[{hostname}]"
    url = f"{scheme}://{hostname}:{port_text or default_port}"
    path = path.strip("/")
    return f"{url}/{path}" if path else url


def same_model(left: str, right: str) -> bool:
    """Ollama matches names case-insensitively after adding ``:latest``: the normaliser lower-cases."""
    return normalize_model_name(left) == normalize_model_name(right)


def is_transient(message: str) -> bool:
    lowered = message.lower()
    return not any(marker in lowered for marker in PERMANENT_ERROR_MARKERS)


# --------------------------------------------------------------------------------------------
# Pull stream parsing
# --------------------------------------------------------------------------------------------


@dataclass
class LayerProgress:
    total: int
    completed_at_start: int
    completed: int


@dataclass
class PullProgress:
    """What one streamed /api/pull reported."""

    layers: dict[str, LayerProgress] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    success: bool = False

    def feed(self, event: dict[str, Any]) -> bool:
        """Record one NDJSON event; return True when it announced a new layer."""
        status = str(event.get("status", ""))
        if status and (not self.statuses or self.statuses[-1] != status):
            self.statuses.append(status)
        if status == "success":
            self.success = True
        digest = event.get("digest")
        if not digest or "total" not in event:
            return False
        total = int(event.get("total") or 0)
        completed = int(event.get("completed") or 0)
        layer = self.layers.get(digest)
        if layer is None:
            self.layers[digest] = LayerProgress(total, completed, completed)
            return True
        layer.total, layer.completed = total, max(layer.completed, completed)
        return False

    @property
    def total_bytes(self) -> int:
        return sum(layer.total for layer in self.layers.values())

    @property
    def bytes_needed(self) -> int:
        """Bytes this pull still has to write (cached blobs and resumed partials excluded)."""
        return sum(max(0, layer.total - layer.completed_at_start) for layer in self.layers.values())

    @property
    def bytes_transferred(self) -> int:
        return sum(max(0, layer.completed - layer.completed_at_start) for layer in self.layers.values())


def parse_ndjson_line(line: bytes | str, url: str) -> dict[str, Any] | None:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if not text:
        return None
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise OllamaError(f"unreadable line in the pull stream from {url}: {text[:200]!r}", url, transient=True) from exc
    if not isinstance(event, dict):
        raise OllamaError(f"unexpected pull stream item from {url}: {text[:200]!r}", url, transient=True)
    return event


# --------------------------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------------------------


class OllamaClient:
    """Minimal Ollama API client; counts calls per endpoint in ``self.calls``.

    ``opener`` replaces ``http_open`` (same signature) where a test wants to see or fake requests.
    """

    def __init__(self, host: str | None = DEFAULT_HOST, timeout: float = 30.0,
                 opener: Callable[..., Any] | None = None) -> None:
        self.base = base_url(host)
        self.timeout = timeout
        self._opener = opener or http_open
        self.calls: Counter[str] = Counter()

    def _open(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        url = self.base + path
        self.calls[f"{method} {path}"] += 1
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            return self._opener(url, method, data, headers, timeout or self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, url) from exc
        except URL_ERRORS as exc:
            reason = getattr(exc, "reason", exc)
            raise OllamaError(
                f"cannot reach the Ollama API at {url} ({method}): {reason}. Is the ollama service running and "
                f"listening there (OLLAMA_HOST)?", url, transient=True) from exc

    @staticmethod
    def _http_error(exc: urllib.error.HTTPError, method: str, url: str) -> OllamaError:
        try:
            raw = exc.read()
        except OSError:
            raw = b""
        message = raw.decode("utf-8", "replace").strip()
        try:
            payload = json.loads(raw)
            if isinstance(payload, dict) and payload.get("error"):
                error = payload["error"]
                message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        except ValueError:
            pass
        message = message or exc.reason or "no error text"
        return OllamaError(f"{message} (HTTP {exc.code} from {method} {url})", url, exc.code,
                           transient=exc.code >= 500 and is_transient(message))

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        with self._open(method, path, body) as response:
            raw = response.read()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise OllamaError(f"{self.base + path} did not answer with JSON: {raw[:200]!r}", self.base + path) from exc

    def version(self) -> str:
        return str(self._json("GET", "/api/version").get("version", ""))

    def tags(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/tags").get("models") or [])

    def find(self, name: str, tags: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        for entry in self.tags() if tags is None else tags:
            if same_model(entry.get("name") or entry.get("model") or "", name):
                return entry
        return None

    def show(self, name: str) -> dict[str, Any] | None:
        try:
            return self._json("POST", "/api/show", {"model": name})
        except OllamaError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, name: str) -> bool:
        """Delete a model; False when the server says it does not exist."""
        try:
            with self._open("DELETE", "/api/delete", {"model": name}) as response:
                response.read()
        except OllamaError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def copy(self, source: str, destination: str) -> None:
        with self._open("POST", "/api/copy", {"source": source, "destination": destination}) as response:
            response.read()

    def load(self, name: str, keep_alive: str | int) -> None:
        """Warm a model up (generate without a prompt loads it for ``keep_alive``)."""
        value: str | int = keep_alive
        if isinstance(keep_alive, str) and keep_alive.strip().lstrip("-").isdigit():
            value = int(keep_alive)  # Ollama reads a bare number as seconds, a string as a Go duration
        try:
            self._json("POST", "/api/generate", {"model": name, "keep_alive": value, "stream": False})
        except OllamaError as exc:
            if "does not support" not in str(exc):
                raise
            # Embedding models have no completion: /api/embed with no input loads them the same way.
            self._json("POST", "/api/embed", {"model": name, "input": [], "keep_alive": value})

    def pull_stream(self, name: str, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield the NDJSON events of a streamed pull; an ``error`` event raises OllamaError."""
        url = self.base + "/api/pull"
        response = self._open("POST", "/api/pull", {"model": name, "stream": True}, timeout=timeout)
        try:
            while True:
                try:
                    line = response.readline()
                except (TimeoutError, OSError, http.client.HTTPException) as exc:
                    raise OllamaError(f"the pull stream from {url} broke off: {exc or type(exc).__name__}", url,
                                      transient=True) from exc
                if not line:
                    return
                event = parse_ndjson_line(line, url)
                if event is None:
                    continue
                if "error" in event:
                    message = str(event["error"])
                    raise OllamaError(message, url, transient=is_transient(message))
                yield event
        finally:
            response.close()


# --------------------------------------------------------------------------------------------
# Model state logic
# --------------------------------------------------------------------------------------------


@dataclass
class ModelRequest:
    name: str
    state: str = "present"
    alias: str | None = None
    keep_alive: str | None = None
    retries: int = 3
    aliases: tuple[str, ...] = ()  # more aliases (copies of the model under other names), like ``alias``
    retry_delay: float = 2.0
    models_dir: str | None = None
    disk_reserve_mb: int = 0
    pull_timeout: float | None = None


@dataclass
class ModelResult:
    changed: bool = False
    model: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    pulled: bool = False
    attempts: int = 0
    bytes_pulled: int = 0
    alias: dict[str, Any] | None = None  # the first alias
    aliases: list[dict[str, Any]] = field(default_factory=list)  # every alias and the digest it points at
    warnings: list[str] = field(default_factory=list)
    diff: dict[str, str] = field(default_factory=dict)


def disk_free_bytes(path: str) -> tuple[str, int]:
    """Free bytes for unprivileged writers at ``path`` or its nearest existing parent."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    stats = os.statvfs(probe)
    return probe, stats.f_bavail * stats.f_frsize


def room_check(models_dir: str, reserve_bytes: int, name: str,
               free_probe: Callable[[str], tuple[str, int]] = disk_free_bytes) -> Callable[[int], None]:
    """Return a checker that raises when ``needed`` more bytes would not fit under models_dir."""
    probe, free = free_probe(models_dir)

    def check(needed: int) -> None:
        if needed + reserve_bytes > free:
            raise OllamaError(
                f"model {name} does not fit: it needs {needed} more bytes under {models_dir} "
                f"({probe} has {free} bytes free{f', {reserve_bytes} kept in reserve' if reserve_bytes else ''}). "
                f"Free disk space, move OLLAMA_MODELS to a larger disk, or assign a smaller model.",
                transient=False)

    return check


def pull_once(client: OllamaClient, name: str, check: Callable[[int], None] | None,
              timeout: float | None = None) -> PullProgress:
    progress = PullProgress()
    stream = client.pull_stream(name, timeout=timeout)
    try:
        for event in stream:
            if progress.feed(event) and check is not None:
                check(progress.bytes_needed)
    finally:
        stream.close()  # a failed room check drops the connection, which cancels the pull
    if not progress.success:
        raise OllamaError(f"the pull of {name} from {client.base}/api/pull ended before 'success' "
                          f"(last status: {progress.statuses[-1] if progress.statuses else 'none'})",
                          client.base + "/api/pull", transient=True)
    return progress


def pull_with_retries(client: OllamaClient, request: ModelRequest, result: ModelResult,
                      check: Callable[[int], None] | None, sleep: Callable[[float], None] = time.sleep) -> None:
    attempts = max(1, request.retries + 1)
    last: OllamaError | None = None
    for attempt in range(1, attempts + 1):
        result.attempts = attempt
        try:
            progress = pull_once(client, request.name, check, request.pull_timeout)
        except OllamaError as exc:
            if not exc.transient:
                raise
            last = exc
            if attempt < attempts:
                sleep(request.retry_delay * attempt)
            continue
        result.bytes_pulled += progress.bytes_transferred
        return
    raise OllamaError(f"pulling {request.name} failed {attempts} times; last error: {last}",
                      last.url if last else None, transient=True)


def describe(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "absent"
    return f"present digest={entry.get('digest', '')} size={entry.get('size', 0)}"


def ensure_model(client: OllamaClient, request: ModelRequest, check_mode: bool,
                 free_probe: Callable[[str], tuple[str, int]] = disk_free_bytes,
                 sleep: Callable[[float], None] = time.sleep) -> ModelResult:
    """Bring one model to ``request.state``; never sends pull/delete/copy in check mode."""
    name = normalize_model_name(request.name)
    wanted_aliases = ([request.alias] if request.alias else []) + list(request.aliases or ())
    aliases = [a for a in dict.fromkeys(normalize_model_name(a) for a in wanted_aliases) if a != name]
    request = ModelRequest(**{**request.__dict__, "name": name})
    result = ModelResult()
    tags = client.tags()
    before = client.find(name, tags)
    aliases_before = {alias: client.find(alias, tags) for alias in aliases}
    after = before

    if request.state == "absent":
        for target, entry in [*aliases_before.items(), (name, before)]:
            if target and entry is not None:
                result.changed = True
                result.actions.append(f"delete {target}")
                if not check_mode:
                    client.delete(target)
        after = None
    else:
        need_pull = before is None or request.state == "latest"
        if need_pull and check_mode:
            if before is None:
                result.changed = True
                result.actions.append(f"pull {name}")
            else:
                result.warnings.append(
                    f"check mode: {name} is present; whether the registry has a newer digest is only known by pulling")
        elif need_pull:
            check = None
            if request.models_dir:
                check = room_check(request.models_dir, request.disk_reserve_mb * 1024 * 1024, name, free_probe)
            pull_with_retries(client, request, result, check, sleep)
            result.pulled = True
            result.actions.append(f"pull {name}")
            after = client.find(name)
            if after is None:
                raise OllamaError(f"{client.base}/api/pull reported success for {name} but /api/tags does not list it",
                                  client.base + "/api/tags")
            result.changed = before is None or before.get("digest") != after.get("digest")
        target_digest = (after or {}).get("digest")
        for alias, alias_before in aliases_before.items():
            if alias_before is None or target_digest is None or alias_before.get("digest") != target_digest:
                result.changed = True
                result.actions.append(f"copy {name} -> {alias}")
                if not check_mode:
                    client.copy(name, alias)
            result.aliases.append({"name": alias, "digest": target_digest})
        result.alias = result.aliases[0] if result.aliases else None
        if request.keep_alive not in (None, "") and not check_mode and after is not None:
            client.load(name, request.keep_alive)

    result.model = {
        "name": name,
        "digest": (after or {}).get("digest") if request.state != "absent" else None,
        "size": (after or {}).get("size") if request.state != "absent" else None,
    }
    if result.changed:
        if request.state == "absent":
            after_text = "absent"
        elif after is not None and not check_mode:
            after_text = describe(after)
        else:
            after_text = "present (pulled)"
        result.diff = {"before": f"{name}: {describe(before)}\n", "after": f"{name}: {after_text}\n"}
    return result
