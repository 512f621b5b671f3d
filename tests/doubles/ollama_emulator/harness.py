"""Start the Ollama TEST DOUBLE for tests: in a thread (fast unit tests) or as a process.

    from harness import running_emulator
    with running_emulator(tmp_path / "models", node="node-a") as emu:
        emu.url            # http://127.0.0.1:<free port>
        emu.stats()        # request counts per "METHOD /path"
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "ollama_test_double.py"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import ollama_test_double as double  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningEmulator:
    url: str
    models: Path
    emulator: Any = None
    process: subprocess.Popen | None = None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.loads(response.read())

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else {}

    def stats(self) -> dict[str, int]:
        return self.get("/_test_double/stats")["requests"]

    def upstream_bytes(self) -> int:
        """Bytes this node's pulls fetched from the (emulated) registry since the last reset."""
        return int(self.get("/_test_double/stats")["upstream_bytes"])

    def reset_stats(self) -> None:
        self.post("/_test_double/reset_stats", {})


@contextlib.contextmanager
def running_emulator(models: Path, node: str = "test-node", version: str = double.TEST_DOUBLE_VERSION) -> Iterator[RunningEmulator]:
    """Serve the emulator from a thread of this process on a free loopback port."""
    store = double.Store(Path(models))
    store.ensure()
    emu = double.Emulator(store, node, version)
    server = double.make_server("127.0.0.1", 0, emu)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningEmulator(f"http://127.0.0.1:{server.server_address[1]}", Path(models), emulator=emu)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def emulator_process(models: Path, node: str = "test-node", extra_env: dict[str, str] | None = None,
                     command: list[str] | None = None) -> Iterator[RunningEmulator]:
    """Run ``ollama serve`` (the double, or ``command``) as a child process; stopped by its pid."""
    port = free_port()
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(models),
           "OLLAMA_TEST_DOUBLE_NODE": node, **(extra_env or {})}
    argv = command or [sys.executable, str(SCRIPT)]
    process = subprocess.Popen([*argv, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + "/", timeout=0.5).close()
                break
            if process.poll() is not None:
                raise RuntimeError(f"emulator exited: {process.stderr.read().decode()}")
            time.sleep(0.05)
        else:
            raise RuntimeError("emulator did not answer within 10 s")
        yield RunningEmulator(url, Path(models), process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()
