# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""The one way this collection's module_utils make an HTTP request: Ansible's ``open_url``.

``open_url`` (``ansible.module_utils.urls``) needs no module object, so the pure clients that use it
(the Ollama API client, the compose health probe) stay importable and unit-testable on their own.
The options keep plain urllib's behaviour: proxies from the environment, certificates validated,
redirects followed as urllib does, no credentials read from ``~/.netrc``. An HTTP error status
raises ``urllib.error.HTTPError``; an unreachable host ``urllib.error.URLError`` or ``OSError``;
``URL_ERRORS`` lists everything a caller catches to report "cannot reach".

A response body is read with ``read_body`` (whole body, with a size cap) or ``iter_lines``
(NDJSON streams, with a per-line cap), both with an optional overall deadline. They read with
``read1`` (at most one system call per read), so the deadline is checked between the server's
writes: a server that trickles a byte at a time cannot keep the reader busy for ever, and a
server that stops sending is cut off by the socket's per-read timeout. Every failure while
reading is a ``ResponseReadError`` that says how many bytes arrived.
"""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

# Failures to reach the server at all (HTTPError, a subclass of URLError, is caught before these).
URL_ERRORS: tuple[type[Exception], ...] = (urllib.error.URLError, OSError, http.client.HTTPException,
                                           UrlsConnectionError)
# What reading an open response raises: socket timeouts and resets (OSError), a cut-off chunked or
# sized body (IncompleteRead), a garbled chunk header (ValueError from http.client).
READ_ERRORS: tuple[type[Exception], ...] = (OSError, http.client.HTTPException, ValueError)
READ_CHUNK = 64 * 1024


def http_open(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None,
              timeout: float = 10.0) -> Any:
    """Send one request and return the open response (``status``, ``read()``, ``readline()``, ``close()``)."""
    return open_url(url, data=data, headers=headers or {}, method=method, timeout=timeout, use_netrc=False,
                    follow_redirects="urllib2")


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a socket timeout (``socket.timeout`` is not ``TimeoutError`` before 3.10)."""
    reason = getattr(exc, "reason", None)  # URLError wraps the timeout of a connect
    return isinstance(exc, (socket.timeout, TimeoutError)) or isinstance(reason, (socket.timeout, TimeoutError))


class ResponseReadError(Exception):
    """Reading a response body failed.

    ``kind`` is one of ``timeout`` (no data within the per-read timeout), ``closed`` (connection
    reset or closed before the body was complete), ``deadline`` (the overall deadline passed),
    ``too_large`` (body above the cap), ``line_too_long`` (an NDJSON line above the cap).
    ``bytes_read`` counts the body bytes that did arrive.
    """

    def __init__(self, message: str, kind: str, bytes_read: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.bytes_read = bytes_read


def _read_some(response: Any, size: int, bytes_read: int) -> bytes:
    reader = getattr(response, "read1", None) or response.read
    try:
        return reader(size)
    except READ_ERRORS as exc:
        if is_timeout(exc):
            raise ResponseReadError(f"no data arrived within the read timeout after {bytes_read} bytes of the body",
                                    "timeout", bytes_read) from exc
        cause = str(exc) or type(exc).__name__
        raise ResponseReadError(f"the connection broke off after {bytes_read} bytes of the body ({cause})",
                                "closed", bytes_read) from exc


def _check_complete(response: Any, bytes_read: int) -> None:
    """A sized body whose connection closed early reads as a clean end: compare with Content-Length."""
    remaining = getattr(response, "length", None)
    if isinstance(remaining, int) and not isinstance(remaining, bool) and remaining > 0:
        raise ResponseReadError(f"the connection closed after {bytes_read} bytes of the body, "
                                f"{remaining} bytes short of its Content-Length", "closed", bytes_read)


def _check_deadline(deadline: float | None, clock: Callable[[], float], bytes_read: int) -> None:
    if deadline is not None and clock() > deadline:
        raise ResponseReadError(f"the answer was not complete by the deadline ({bytes_read} bytes received)",
                                "deadline", bytes_read)


def read_body(response: Any, limit: int, deadline: float | None = None,
              clock: Callable[[], float] = time.monotonic) -> bytes:
    """Read a whole body of at most ``limit`` bytes, by ``deadline`` (a ``clock()`` value) when given."""
    chunks: list[bytes] = []
    size = 0
    while True:
        _check_deadline(deadline, clock, size)
        chunk = _read_some(response, min(READ_CHUNK, limit + 1 - size), size)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ResponseReadError(f"the body is larger than {limit} bytes; refusing to read more",
                                    "too_large", size)
        chunks.append(chunk)
    _check_complete(response, size)
    return b"".join(chunks)


def iter_lines(response: Any, max_line: int, deadline: float | None = None,
               clock: Callable[[], float] = time.monotonic) -> Iterator[bytes]:
    """Yield the lines of a streamed body (without the newline), each at most ``max_line`` bytes."""
    buffer = bytearray()
    size = 0
    while True:
        _check_deadline(deadline, clock, size)
        chunk = _read_some(response, READ_CHUNK, size)
        if not chunk:
            break
        size += len(chunk)
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            if end - start > max_line:
                raise ResponseReadError(f"a line of the stream is longer than {max_line} bytes", "line_too_long", size)
            yield bytes(buffer[start:end])
            start = end + 1
        del buffer[:start]
        if len(buffer) > max_line:
            raise ResponseReadError(f"a line of the stream is longer than {max_line} bytes", "line_too_long", size)
    _check_complete(response, size)
    if buffer:
        yield bytes(buffer)
