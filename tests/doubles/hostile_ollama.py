"""A HOSTILE Ollama for tests: an HTTP server on 127.0.0.1 that misbehaves on purpose.

    from hostile_ollama import hostile_ollama
    with hostile_ollama("hang_body") as server:
        server.url          # http://127.0.0.1:<free port>
        server.requests     # Counter of "METHOD /path"

Each scenario is one way a broken, overloaded or malicious server (or whatever answers on its
port) can behave: hang after the headers, answer with the wrong JSON shape, trickle a pull past
any deadline, send 30 MB, report a full disk, cut the connection mid-body. Requests the
scenario does not target get a well-formed answer (``/api/tags`` lists no model), so a client
reaches the misbehaving endpoint through its normal sequence. Handlers that hang wait on an
event that is set when the server stops, so a test never leaves a thread behind.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIGEST = "sha256:" + "ab" * 32
ENOSPC_TEXT = f"write /var/lib/ollama/models/blobs/{DIGEST.replace(':', '-')}-partial: no space left on device"
HUGE_BYTES = 30 * 1024 * 1024
HANG_SECONDS = 15.0  # longest a handler waits when the test forgets to stop the server


def _line(event: dict) -> bytes:
    return json.dumps(event).encode() + b"\n"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HostileServer

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        return None

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- helpers ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests[f"{self.command} {self.path}"] += 1
        behaviour = getattr(self, f"scenario_{self.server.scenario}")
        with contextlib.suppress(OSError):  # the client hanging up on us is the point of most scenarios
            if behaviour() is NotImplemented:
                self.normal()

    def headers_only(self, status: int = 200, length: int | None = None, chunked: bool = False,
                     content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def answer(self, body: bytes, status: int = 200) -> None:
        self.headers_only(status, len(body))
        self.wfile.write(body)
        self.wfile.flush()

    def hang(self) -> None:
        self.server.stopping.wait(HANG_SECONDS)

    def cut(self) -> None:
        """Drop the connection at once (RST), the way a crashed server or a proxy does."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def normal(self) -> None:
        if self.path == "/api/tags":
            self.answer(json.dumps({"models": []}).encode())
        elif self.path == "/api/version":
            self.answer(json.dumps({"version": "0.0.0-hostile"}).encode())
        else:
            self.answer(json.dumps({"error": f"{self.path} is not served here"}).encode(), 404)

    def pull_lines(self, *lines: bytes) -> None:
        self.headers_only(chunked=True, content_type="application/x-ndjson")
        for line in lines:
            self.wfile.write(_chunk(line))
        self.wfile.write(_chunk(b""))
        self.wfile.flush()

    # -- scenarios: return NotImplemented for requests they leave alone ---------------------

    def scenario_hang_headers(self) -> object:
        self.hang()
        return None

    def scenario_hang_body(self) -> object:
        self.headers_only(length=1000)
        self.wfile.write(b'{"models": ')
        self.wfile.flush()
        self.hang()
        return None

    def scenario_reset(self) -> object:
        self.cut()
        return None

    def scenario_json_list(self) -> object:
        self.answer(b"[]")
        return None

    def scenario_models_str(self) -> object:
        self.answer(b'{"models": "abc"}')
        return None

    def scenario_models_entry_int(self) -> object:
        self.answer(b'{"models": [5]}')
        return None

    def scenario_models_size_str(self) -> object:
        self.answer(b'{"models": [{"name": "x:latest", "size": "big"}]}')
        return None

    def scenario_version_number(self) -> object:
        self.answer(b'{"version": 5}')
        return None

    def scenario_not_json(self) -> object:
        self.answer(b"<html><body>502 Bad Gateway</body></html>")
        return None

    def scenario_deep_json(self) -> object:
        self.answer(b"[" * 200_000)
        return None

    def scenario_huge_body(self) -> object:
        self.headers_only(length=HUGE_BYTES)
        block = b" " * (1024 * 1024)
        self.wfile.write(b'{"models": [')
        for _block in range(HUGE_BYTES // len(block)):
            if self.server.stopping.is_set():
                break
            self.wfile.write(block)
        self.wfile.flush()
        return None

    def scenario_trickle_body(self) -> object:
        self.headers_only(length=1000)
        for _byte in range(1000):
            if self.server.stopping.wait(0.05):
                break
            self.wfile.write(b" ")
            self.wfile.flush()
        return None

    def scenario_close_mid_body(self) -> object:
        self.headers_only(length=1000)
        self.wfile.write(b'{"models": [' + b" " * 88)
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        return None

    def scenario_close_mid_chunk(self) -> object:
        self.headers_only(chunked=True)
        self.wfile.write(f"{1000:x}\r\n".encode() + b'{"models": [' + b" " * 88)
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        return None

    def scenario_pull_total_dict(self) -> object:
        if self.path != "/api/pull":
            return NotImplemented
        self.pull_lines(_line({"status": "pulling manifest"}),
                        _line({"status": "pulling abababababab", "digest": DIGEST, "total": {"bytes": 1000}}))
        return None

    def scenario_pull_line_list(self) -> object:
        if self.path != "/api/pull":
            return NotImplemented
        self.pull_lines(_line({"status": "pulling manifest"}), b"[1, 2, 3]\n")
        return None

    def scenario_pull_trickle(self) -> object:
        """A pull that never ends: some real progress, then one byte every 50 ms, never a 'success'."""
        if self.path != "/api/pull":
            return NotImplemented
        self.headers_only(chunked=True, content_type="application/x-ndjson")
        completed = 4096
        for done in (0, completed):
            self.wfile.write(_chunk(_line({"status": "pulling abababababab", "digest": DIGEST, "total": 10**9,
                                           "completed": done})))
        self.wfile.flush()
        while not self.server.stopping.is_set():
            completed += 10
            for byte in _line({"status": "pulling abababababab", "digest": DIGEST, "total": 10**9,
                               "completed": completed}):
                if self.server.stopping.wait(0.05):
                    return None
                self.wfile.write(_chunk(bytes([byte])))
                self.wfile.flush()
        return None

    def scenario_pull_enospc(self) -> object:
        if self.path != "/api/pull":
            return NotImplemented
        self.pull_lines(_line({"status": "pulling manifest"}),
                        _line({"status": "pulling abababababab", "digest": DIGEST, "total": 1000, "completed": 0}),
                        _line({"error": ENOSPC_TEXT}))
        return None

    def scenario_pull_enospc_http(self) -> object:
        if self.path != "/api/pull":
            return NotImplemented
        self.answer(json.dumps({"error": f"max retries exceeded: {ENOSPC_TEXT}"}).encode(), 500)
        return None

    def scenario_pull_long_line(self) -> object:
        if self.path != "/api/pull":
            return NotImplemented
        self.headers_only(chunked=True, content_type="application/x-ndjson")
        block = b"x" * (256 * 1024)
        for _block in range(12):  # 3 MiB without a newline
            if self.server.stopping.is_set():
                break
            self.wfile.write(_chunk(block))
        self.wfile.flush()
        return None

    def scenario_pull_close_mid_line(self) -> object:
        if self.path != "/api/pull":
            return NotImplemented
        self.headers_only(chunked=True, content_type="application/x-ndjson")
        self.wfile.write(_chunk(_line({"status": "pulling manifest"})))
        self.wfile.write(f"{500:x}\r\n".encode() + b'{"status": "pulling ab')
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        return None


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, scenario: str) -> None:
        if not hasattr(Handler, f"scenario_{scenario}"):
            raise ValueError(f"unknown hostile scenario {scenario!r}")
        self.scenario = scenario
        self.requests: Counter[str] = Counter()
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        return None  # a client that hangs up mid-answer is expected here


@dataclass
class RunningHostile:
    url: str
    server: HostileServer

    @property
    def requests(self) -> Counter[str]:
        return self.server.requests


SCENARIOS = sorted(name[len("scenario_"):] for name in dir(Handler) if name.startswith("scenario_"))


@contextlib.contextmanager
def hostile_ollama(scenario: str) -> Iterator[RunningHostile]:
    """Serve ``scenario`` from a thread of this process on a free loopback port."""
    server = HostileServer(scenario)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningHostile(f"http://127.0.0.1:{server.server_address[1]}", server)
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
