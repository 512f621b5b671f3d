"""Ollama HTTP API client and the model-state logic behind ``pmoves.fleet.ollama_model``.

Standard library plus ``http_request`` (Ansible's ``open_url``, which needs no module object, so
unit tests drive the client directly), no I/O at import time. The client speaks
the documented API (``/api/version``, ``/api/tags``, ``/api/show``, streamed ``/api/pull``,
``/api/delete``, ``/api/copy``, ``/api/generate``) and turns every failure into an
``OllamaError`` whose message names the request (method and URL) and the cause, quoting the
server's own error text where there is one.

The server is not trusted to behave: bodies are read with a size cap (``max_body_bytes``) and
within ``timeout`` seconds, pull streams line by line with a per-line cap (``max_line_bytes``)
and an overall deadline, and every answer is checked for the JSON shape the code relies on, so
a hung, trickling, oversized or malformed answer is a clear error, never a traceback.

``ensure_model`` holds the decision logic (present / absent / latest, aliases, check mode,
pull retries that resume, free-disk check against the pull's announced sizes); it takes the
client, a clock and a free-space probe as arguments so unit tests drive it without a server.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
import urllib.error
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.http_request import (
    URL_ERRORS,
    ResponseReadError,
    http_open,
    is_timeout,
    iter_lines,
    read_body,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import (
    normalize_model_name,
    require_model_name,
)

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434
# /api/tags of a store with thousands of models is a few hundred KiB; progress lines ~200 bytes.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024

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
# The server's disk is full (ENOSPC on Linux/macOS, Windows' ERROR_DISK_FULL, quota): retrying
# only refills the same disk, and Ollama's own "max retries exceeded" wraps these texts.
DISK_FULL_MARKERS = (
    "no space left on device",
    "not enough space on the disk",
    "disk quota exceeded",
    "disk is full",
    "disk full",
    "enospc",
)


class OllamaError(Exception):
    """An API failure with a user-actionable message.

    ``kind`` says what failed (``unreachable``, ``timeout``, ``http``, ``server``, ``disk_full``,
    ``json``, ``shape``, ``too_large``, ``closed``, ``deadline``, ``disk``), for callers that react
    to one cause; ``transient`` says whether a retry can help.
    """

    def __init__(self, message: str, url: str | None = None, status: int | None = None, transient: bool = False,
                 kind: str | None = None, bytes_read: int | None = None):
        super().__init__(message)
        self.message = message
        self.url = url
        self.status = status
        self.transient = transient
        self.kind = kind
        self.bytes_read = bytes_read

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


def is_disk_full(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in DISK_FULL_MARKERS)


def is_transient(message: str) -> bool:
    lowered = message.lower()
    return not is_disk_full(lowered) and not any(marker in lowered for marker in PERMANENT_ERROR_MARKERS)


def _excerpt(raw: bytes | str, limit: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return repr(text[:limit]) + (" (cut)" if len(text) > limit else "")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------------------------
# Answer shapes: what the code below relies on, checked before it is used
# --------------------------------------------------------------------------------------------


def _shape_error(where: str, what: str, payload: Any) -> OllamaError:
    """``where`` is 'METHOD URL'; wrong shapes are the server's bug, not worth a retry."""
    return OllamaError(f"{where}: unexpected answer, {what}: {_excerpt(json.dumps(payload, default=str))}",
                       where.partition(" ")[2] or where, kind="shape")


def _check_object(payload: Any, where: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _shape_error(where, f"{_json_type(payload)} where a JSON object was expected", payload)
    return payload


def _check_optional(payload: dict[str, Any], key: str, types: tuple[type, ...], expected: str, where: str) -> None:
    value = payload.get(key)
    if value is None:
        return
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        raise _shape_error(where, f"'{key}' is {_json_type(value)}, expected {expected}", payload)


def _check_count(event: dict[str, Any], key: str, where: str) -> None:
    """Byte counts are non-negative numbers; normalised to int in place."""
    value = event.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise _shape_error(where, f"'{key}' is {_json_type(value)} {value!r:.40}, expected a byte count", event)
    event[key] = int(value)


def check_tags(payload: Any, where: str) -> list[dict[str, Any]]:
    """The ``models`` of an /api/tags answer: a list of objects, each with a string name."""
    models = _check_object(payload, where).get("models")
    if models is None:
        return []
    if not isinstance(models, list):
        raise _shape_error(where, f"'models' is {_json_type(models)}, expected a list", payload)
    for entry in models:
        if not isinstance(entry, dict):
            raise _shape_error(where, f"an entry of 'models' is {_json_type(entry)}, expected an object", entry)
        name = entry.get("name") or entry.get("model")
        if not isinstance(name, str) or not name.strip():
            raise _shape_error(where, "an entry of 'models' has no 'name'", entry)
        _check_optional(entry, "name", (str,), "a string", where)
        _check_optional(entry, "model", (str,), "a string", where)
        _check_optional(entry, "digest", (str,), "a string", where)
        _check_optional(entry, "size", (int,), "a byte count", where)
    return models


def check_version(payload: Any, where: str) -> str:
    version = _check_object(payload, where).get("version", "")
    if not isinstance(version, str):
        raise _shape_error(where, f"'version' is {_json_type(version)}, expected a string", payload)
    return version


def check_show(payload: Any, where: str) -> dict[str, Any]:
    show = _check_object(payload, where)
    _check_optional(show, "capabilities", (list,), "a list", where)
    for key in ("details", "model_info"):
        _check_optional(show, key, (dict,), "an object", where)
    return show


def check_pull_event(event: Any, where: str) -> dict[str, Any]:
    """One NDJSON line of a pull: an object; status/digest strings, total/completed byte counts."""
    event = _check_object(event, where)
    for key in ("status", "digest"):
        _check_optional(event, key, (str,), "a string", where)
    for key in ("total", "completed"):
        _check_count(event, key, where)
    return event


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
    """What one streamed /api/pull reported (events already checked by ``check_pull_event``)."""

    layers: dict[str, LayerProgress] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    success: bool = False

    def feed(self, event: dict[str, Any]) -> bool:
        """Record one NDJSON event; return True when it announced a new layer."""
        status = str(event.get("status") or "")
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


def parse_ndjson_line(line: bytes | str, url: str, where: str | None = None) -> dict[str, Any] | None:
    """One pull stream line as a checked event; None for a blank line; OllamaError otherwise."""
    where = where or f"POST {url}"
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if not text:
        return None
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise OllamaError(f"{where}: unreadable line in the pull stream: {_excerpt(text)}", url, transient=True,
                          kind="json") from exc
    return check_pull_event(event, where)


# --------------------------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------------------------


class OllamaClient:
    """Minimal Ollama API client; counts calls per endpoint in ``self.calls``.

    ``timeout`` bounds every wait for the server: the connection, the response headers, each read
    of a body and (for answers that are not streamed) the whole body. ``opener`` replaces
    ``http_open`` (same signature) where a test wants to see or fake requests; ``clock`` is the
    monotonic clock the deadlines are measured with.
    """

    def __init__(self, host: str | None = DEFAULT_HOST, timeout: float = 30.0,
                 opener: Callable[..., Any] | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                 max_line_bytes: int = MAX_LINE_BYTES, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base_url(host)
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.max_line_bytes = max_line_bytes
        self.clock = clock
        self._opener = opener or http_open
        self.calls: Counter[str] = Counter()

    @property
    def node(self) -> str:
        """The server's host name, for messages that tell the user which machine to look at."""
        return urllib.parse.urlsplit(self.base).hostname or self.base

    def _open(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        url = self.base + path
        self.calls[f"{method} {path}"] += 1
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        wait = timeout or self.timeout
        try:
            return self._opener(url, method, data, headers, wait)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, url) from exc
        except URL_ERRORS as exc:
            reason = getattr(exc, "reason", None) or exc
            if is_timeout(exc):
                raise OllamaError(
                    f"no answer from the Ollama API at {url} ({method}) within {wait:g} s ({reason}). Is the "
                    f"server overloaded or stuck, or the port filtered? Raise 'timeout' for slow servers.",
                    url, transient=True, kind="timeout") from exc
            if isinstance(reason, ConnectionResetError):  # http.client.RemoteDisconnected included
                raise OllamaError(
                    f"the Ollama API at {url} ({method}) closed the connection without answering: {reason}",
                    url, transient=True, kind="closed") from exc
            raise OllamaError(
                f"cannot reach the Ollama API at {url} ({method}): {reason}. Is the ollama service running and "
                f"listening there (OLLAMA_HOST)?", url, transient=True, kind="unreachable") from exc
        except ValueError as exc:  # a URL urllib refuses (bad characters, port)
            raise OllamaError(f"cannot use the Ollama API URL {url} ({method}): {exc}", url,
                              kind="unreachable") from exc

    def _server_error(self, message: str, where: str, url: str, status: int | None = None) -> OllamaError:
        """An error the server reported (HTTP error body or an ``error`` line of a stream)."""
        suffix = f"HTTP {status} from {where}" if status else where
        if is_disk_full(message):
            return OllamaError(
                f"the disk of the Ollama server on {self.node} is full: {message} ({suffix}). Free space in "
                f"its OLLAMA_MODELS directory, move OLLAMA_MODELS to a larger disk or assign this node smaller "
                f"models; not retried.", url, status, transient=False, kind="disk_full")
        transient = is_transient(message) and (status is None or status >= 500)
        return OllamaError(f"{message} ({suffix})", url, status, transient=transient,
                           kind="http" if status else "server")

    def _http_error(self, exc: urllib.error.HTTPError, method: str, url: str) -> OllamaError:
        try:
            raw = read_body(exc, MAX_ERROR_BODY_BYTES, self.clock() + self.timeout, self.clock)
        except (ResponseReadError, AttributeError):
            raw = b""
        message = raw.decode("utf-8", "replace").strip()
        try:
            payload = json.loads(raw)
            if isinstance(payload, dict) and payload.get("error"):
                error = payload["error"]
                message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        except (ValueError, RecursionError):
            pass
        message = message[:2000] or str(exc.reason or "") or "no error text"
        return self._server_error(message, f"{method} {url}", url, exc.code)

    def _read_failure(self, exc: ResponseReadError, where: str, url: str, timeout: float) -> OllamaError:
        cause = f"the server stopped sending: {exc} ({timeout:g} s)" if exc.kind == "timeout" else str(exc)
        return OllamaError(f"{where}: {cause}", url, transient=exc.kind in ("timeout", "closed"),
                           kind={"line_too_long": "too_large"}.get(exc.kind, exc.kind), bytes_read=exc.bytes_read)

    def _request(self, method: str, path: str, body: Any = None) -> tuple[bytes, str]:
        """Send a request and read its whole (capped) body within ``timeout``; (body, 'METHOD URL')."""
        url = self.base + path
        where = f"{method} {url}"
        response = self._open(method, path, body)
        try:
            raw = read_body(response, self.max_body_bytes, self.clock() + self.timeout, self.clock)
        except ResponseReadError as exc:
            if exc.kind == "deadline":
                raise OllamaError(f"{where}: the answer was not complete within {self.timeout:g} s "
                                  f"({exc.bytes_read} bytes received); the server is trickling or overloaded",
                                  url, transient=True, kind="deadline", bytes_read=exc.bytes_read) from exc
            raise self._read_failure(exc, where, url, self.timeout) from exc
        finally:
            response.close()
        return raw, where

    def _json(self, method: str, path: str, body: Any = None) -> tuple[Any, str]:
        raw, where = self._request(method, path, body)
        if not raw.strip():
            return {}, where
        try:
            return json.loads(raw), where
        except (ValueError, RecursionError) as exc:
            raise OllamaError(f"{where} did not answer with JSON: {_excerpt(raw)}", self.base + path,
                              kind="json") from exc

    def version(self) -> str:
        return check_version(*self._json("GET", "/api/version"))

    def tags(self) -> list[dict[str, Any]]:
        return list(check_tags(*self._json("GET", "/api/tags")))

    def find(self, name: str, tags: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        for entry in self.tags() if tags is None else tags:
            if same_model(entry.get("name") or entry.get("model") or "", name):
                return entry
        return None

    def show(self, name: str) -> dict[str, Any] | None:
        try:
            return check_show(*self._json("POST", "/api/show", {"model": name}))
        except OllamaError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, name: str) -> bool:
        """Delete a model; False when the server says it does not exist."""
        try:
            self._request("DELETE", "/api/delete", {"model": name})
        except OllamaError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def copy(self, source: str, destination: str) -> None:
        self._request("POST", "/api/copy", {"source": source, "destination": destination})

    def load(self, name: str, keep_alive: str | int) -> None:
        """Warm a model up (generate without a prompt loads it for ``keep_alive``)."""
        value: str | int = keep_alive
        if isinstance(keep_alive, str) and keep_alive.strip().lstrip("-").isdigit():
            value = int(keep_alive)  # Ollama reads a bare number as seconds, a string as a Go duration
        try:
            _check_object(*self._json("POST", "/api/generate", {"model": name, "keep_alive": value, "stream": False}))
        except OllamaError as exc:
            if "does not support" not in str(exc):
                raise
            # Embedding models have no completion: /api/embed with no input loads them the same way.
            _check_object(*self._json("POST", "/api/embed", {"model": name, "input": [], "keep_alive": value}))

    def pull_stream(self, name: str, timeout: float | None = None,
                    deadline: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield the checked NDJSON events of a streamed pull; an ``error`` event raises OllamaError.

        ``timeout`` bounds each wait for data (default: the client's), ``deadline`` (a ``clock()``
        value) the whole stream; passing it raises OllamaError with ``kind='deadline'``.
        """
        url = self.base + "/api/pull"
        where = f"POST {url}"
        response = self._open("POST", "/api/pull", {"model": name, "stream": True}, timeout=timeout)
        try:
            for line in iter_lines(response, self.max_line_bytes, deadline, self.clock):
                event = parse_ndjson_line(line, url, where)
                if event is None:
                    continue
                if event.get("error") is not None:
                    error = event["error"]
                    message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
                    raise self._server_error(message[:2000] or "error without text", where, url)
                yield event
        except ResponseReadError as exc:
            raise self._read_failure(exc, where, url, timeout or self.timeout) from exc
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
    # Overall seconds a pull may take, retries included (None or 0: no limit). The per-read
    # timeout is the client's.
    pull_timeout: float | None = None
    # Called with (name, attempt number, PullProgress of this attempt) after every line of the pull
    # stream (the progress view's pull_progress.ProgressFile); None: nothing is reported.
    on_progress: Callable[[str, int, PullProgress], None] | None = None


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
                transient=False, kind="disk")

    return check


def pull_once(client: OllamaClient, name: str, check: Callable[[int], None] | None,
              timeout: float | None = None, deadline: float | None = None,
              pull_timeout: float | None = None,
              on_progress: Callable[[PullProgress], None] | None = None) -> PullProgress:
    """One streamed pull; ``deadline`` (a ``client.clock()`` value) ends it, naming the bytes done."""
    progress = PullProgress()
    stream = client.pull_stream(name, timeout=timeout, deadline=deadline)
    try:
        for event in stream:
            if progress.feed(event) and check is not None:
                check(progress.bytes_needed)
            if on_progress is not None:
                on_progress(progress)
    except OllamaError as exc:
        if exc.kind != "deadline":
            raise
        limit = f"pull_timeout={pull_timeout:g} s" if pull_timeout else "its deadline"
        raise OllamaError(
            f"the pull of {name} from POST {client.base}/api/pull did not finish within {limit}: "
            f"{progress.bytes_transferred} of {progress.total_bytes} bytes of its layers written "
            f"({exc.bytes_read or 0} bytes of progress stream received, last status: "
            f"{progress.statuses[-1] if progress.statuses else 'none'}). Ollama keeps the partial download, "
            f"so the next run resumes it; raise pull_timeout (0: no limit) for large models on slow links.",
            exc.url, transient=False, kind="deadline", bytes_read=exc.bytes_read) from exc
    finally:
        stream.close()  # a failed room check drops the connection, which cancels the pull
    if not progress.success:
        raise OllamaError(f"the pull of {name} from POST {client.base}/api/pull ended before 'success' "
                          f"(last status: {progress.statuses[-1] if progress.statuses else 'none'})",
                          client.base + "/api/pull", transient=True, kind="closed")
    return progress


def pull_with_retries(client: OllamaClient, request: ModelRequest, result: ModelResult,
                      check: Callable[[int], None] | None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Pull with retries for transient failures, all within ``request.pull_timeout`` when set."""
    attempts = max(1, request.retries + 1)
    deadline = client.clock() + request.pull_timeout if request.pull_timeout else None
    last: OllamaError | None = None
    for attempt in range(1, attempts + 1):
        result.attempts = attempt
        try:
            report = functools.partial(request.on_progress, request.name, attempt) if request.on_progress else None
            progress = pull_once(client, request.name, check, deadline=deadline, pull_timeout=request.pull_timeout,
                                 on_progress=report)
        except OllamaError as exc:
            if not exc.transient:
                raise
            last = exc
            if attempt == attempts:
                break
            delay = request.retry_delay * attempt
            if deadline is not None and client.clock() + delay >= deadline:
                raise OllamaError(f"pulling {request.name} failed after {attempt} attempts and no time is left "
                                  f"within pull_timeout={request.pull_timeout:g} s; last error: {exc}",
                                  exc.url, transient=False, kind="deadline") from exc
            sleep(delay)
            continue
        result.bytes_pulled += progress.bytes_transferred
        return
    raise OllamaError(f"pulling {request.name} failed {attempts} times; last error: {last}",
                      last.url if last else None, transient=True, kind=last.kind if last else None)


def describe(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "absent"
    return f"present digest={entry.get('digest', '')} size={entry.get('size', 0)}"


def ensure_model(client: OllamaClient, request: ModelRequest, check_mode: bool,
                 free_probe: Callable[[str], tuple[str, int]] = disk_free_bytes,
                 sleep: Callable[[float], None] = time.sleep,
                 tags: list[dict[str, Any]] | None = None) -> ModelResult:
    """Bring one model to ``request.state``; never sends pull/delete/copy in check mode.

    ``tags`` is a current /api/tags list when the caller already read one (``ensure_model_set`` reads it once for
    every model); None reads it here.
    """
    name = require_model_name(request.name)  # ValueError for a name outside Ollama's grammar
    wanted_aliases = ([request.alias] if request.alias else []) + list(request.aliases or ())
    aliases = [a for a in dict.fromkeys(require_model_name(a) for a in wanted_aliases) if a != name]
    request = ModelRequest(**{**request.__dict__, "name": name})
    result = ModelResult()
    tags = client.tags() if tags is None else tags
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
