"""Benchmark: what the hub's relay costs seed 000's listeners, in one run (real nats-server on loopback).

node-a publishes announces on its own subject (``mesh.node.announce.v1.node-a``); one listener
hears them directly there, another on the exact seed subject ``mesh.node.announce.v1`` through the
relay (``pmoves_mesh_agent.py --relay``, its own process, as on the hub). Two measurements:

1. latency - one message at a time: publish -> direct arrival and publish -> relayed arrival;
             prints medians, p95 and the ratio relayed / direct (what the extra hop costs).
2. burst   - N messages as fast as node-a can publish: relayed messages/s and how many arrived
             (must be all: the relay drops only forgeries).

A fleet sends one announce and one gpu.status per node every 15 s, so even 23 nodes are ~3 msg/s.
Usage: .venv/bin/python benchmarks/bench_mesh_relay.py [-n 200] [--burst 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "collections"))

import nats  # noqa: E402
from ansible_collections.pmoves.fleet.plugins.module_utils.nats_config import (  # noqa: E402
    ANNOUNCE,
    ClientUser,
    RelayUser,
    ServerOptions,
    build_server_config,
    relay_config,
    render_server_config,
)

AGENT = REPO / "roles" / "mesh" / "files" / "pmoves_mesh_agent.py"
PASSWORDS = {"node-a": "node-a-password-" + "x" * 12, "node-b": "node-b-password-" + "y" * 12}
RELAY = RelayUser("relay-password-" + "r" * 12)
WATCHER = ClientUser("watcher", "watcher-password-" + "z" * 12)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("nats-server did not start")


async def measure(url: str, rounds: int, burst: int) -> dict:
    listener = await nats.connect(url, user=WATCHER.name, password=WATCHER.password)
    node = await nats.connect(url, user="node-a", password=PASSWORDS["node-a"])
    direct_q: asyncio.Queue = asyncio.Queue()
    relayed_q: asyncio.Queue = asyncio.Queue()

    async def on_direct(msg):
        direct_q.put_nowait(time.perf_counter())

    async def on_relayed(msg):
        relayed_q.put_nowait(time.perf_counter())

    await listener.subscribe(f"{ANNOUNCE}.node-a", cb=on_direct)
    await listener.subscribe(ANNOUNCE, cb=on_relayed)
    await listener.flush()
    payload = json.dumps({"node_id": "node-a", "capabilities": ["gpu:rtx3090ti"], "services": ["ollama"],
                          "load": 0.25}).encode()
    # warm-up: the relay is subscribed once a relayed message arrives
    while True:
        await node.publish(f"{ANNOUNCE}.node-a", payload)
        await node.flush()
        try:
            await asyncio.wait_for(relayed_q.get(), timeout=0.5)
            break
        except TimeoutError:
            continue
    await asyncio.sleep(0.2)
    for queue in (direct_q, relayed_q):
        while not queue.empty():
            queue.get_nowait()
    direct, relayed = [], []
    for _round in range(rounds):
        start = time.perf_counter()
        await node.publish(f"{ANNOUNCE}.node-a", payload)
        await node.flush()
        direct.append(await asyncio.wait_for(direct_q.get(), timeout=5) - start)
        relayed.append(await asyncio.wait_for(relayed_q.get(), timeout=5) - start)
    start = time.perf_counter()
    for _message in range(burst):
        await node.publish(f"{ANNOUNCE}.node-a", payload)
    await node.flush()
    arrived, last = 0, start
    while arrived < burst:
        try:
            last = await asyncio.wait_for(relayed_q.get(), timeout=5)
            arrived += 1
        except TimeoutError:
            break
    await node.close()
    await listener.close()
    return {"direct": direct, "relayed": relayed, "burst": burst, "arrived": arrived, "burst_s": last - start}


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="latency rounds")
    parser.add_argument("--burst", type=int, default=5000, help="messages in the burst")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "nats.conf"
        conf.write_text(render_server_config(build_server_config(
            PASSWORDS, [WATCHER], ServerOptions(host="127.0.0.1", port=port, http_port=None), relay=RELAY)))
        server = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        relay = None
        try:
            wait_port(port)
            relay_conf = Path(tmp) / "relay.json"
            relay_conf.write_text(json.dumps(relay_config(sorted(PASSWORDS), [f"nats://127.0.0.1:{port}"],
                                                          RELAY.password)))
            relay = subprocess.Popen([sys.executable, str(AGENT), "--relay", "--config", str(relay_conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            result = asyncio.run(measure(f"nats://127.0.0.1:{port}", args.n, args.burst))
        finally:
            for proc in (relay, server):
                if proc and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=10)
    direct_ms = [d * 1000 for d in result["direct"]]
    relayed_ms = [r * 1000 for r in result["relayed"]]
    print(f"latency over {args.n} rounds (ms): direct median {statistics.median(direct_ms):.3f} p95 {p95(direct_ms):.3f}; "
          f"relayed median {statistics.median(relayed_ms):.3f} p95 {p95(relayed_ms):.3f}; "
          f"ratio relayed/direct (median) {statistics.median(relayed_ms) / statistics.median(direct_ms):.2f}")
    rate = result["arrived"] / result["burst_s"] if result["burst_s"] > 0 else float("inf")
    print(f"burst: {result['arrived']}/{result['burst']} relayed in {result['burst_s']:.2f} s = {rate:.0f} msg/s "
          f"(a 23-node fleet sends ~3 msg/s: {rate / 3:.0f}x headroom)")
    return 0 if result["arrived"] == result["burst"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
