#!/usr/bin/env python3
"""pmoves.fleet mesh agent: announces this node on the NATS mesh and takes work it can do.

Run by systemd (pmoves-mesh-agent.service) with ``--config /etc/pmoves/mesh-agent.json``:

* at start: ``mesh.node.announce.v1.<token>`` ``{node_id, capabilities, services, load, models, ts}``;
  repeated every ``interval`` seconds as the heartbeat;
* every ``interval``: ``mesh.gpu.status.v1.<token>`` with nvidia-smi's utilisation and memory, or
  the load average on nodes without an NVIDIA GPU;
* on SIGTERM/SIGINT: ``mesh.node.offline.v1.<token>`` ``{node_id, reason, ts}``, then exit 0;
* work (seed 000): listens on ``mesh.work.available.v1.>`` for
  ``{work_id, kind, requires: {services, models, capabilities}, input}``; when this node meets
  ``requires`` it publishes ``mesh.work.claimed.v1.<token>`` ``{work_id, node_id}``, waits
  ``claim_window`` seconds, and runs the work only if its claim was the FIRST claim the server
  delivered (one server orders all messages, so every node agrees on the winner); the result
  goes to ``mesh.work.completed.v1.<token>`` ``{work_id, node_id, ok, result | error}``.
  Kinds: ``echo`` (returns ``input``), ``ollama.generate`` / ``ollama.embed`` (local Ollama API).

Subjects are scoped by node (``<seed subject>.<token>``): the server only lets a node publish on
its own token. Dependencies: Python 3.9+, nats-py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from typing import Any

import nats

ANNOUNCE = "mesh.node.announce.v1"
OFFLINE = "mesh.node.offline.v1"
WORK_AVAILABLE = "mesh.work.available.v1"
WORK_CLAIMED = "mesh.work.claimed.v1"
WORK_COMPLETED = "mesh.work.completed.v1"
GPU_STATUS = "mesh.gpu.status.v1"
VERSION = "1"
LOG = logging.getLogger("pmoves-mesh-agent")


def load_average() -> float:
    """1-minute load average per CPU (0.25 = a quarter busy), seed 000's ``load``."""
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except OSError:
        return 0.0


def gpu_status() -> list[dict[str, Any]]:
    """Per-GPU utilisation from nvidia-smi; [] where there is none (or it fails)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    query = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu"
    try:
        out = subprocess.run([smi, f"--query-gpu={query}", "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue

        def num(text: str) -> float | None:
            try:
                return float(text)
            except ValueError:
                return None

        gpus.append({"index": int(num(parts[0]) or 0), "name": parts[1], "utilization": num(parts[2]),
                     "memory_used_mb": num(parts[3]), "memory_total_mb": num(parts[4]),
                     "temperature_c": num(parts[5]) if len(parts) > 5 else None})
    return gpus


def can_do(config: dict[str, Any], requires: dict[str, Any] | None) -> bool:
    requires = requires or {}
    have = {"services": set(config.get("services") or []), "models": set(config.get("models") or []),
            "capabilities": set(config.get("capabilities") or [])}
    return all(set(requires.get(key) or []) <= have[key] for key in have)


def _post(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def run_work(config: dict[str, Any], work: dict[str, Any]) -> dict[str, Any]:
    kind, data = work.get("kind", "echo"), work.get("input") or {}
    if kind == "echo":
        return {"echo": data}
    base = (config.get("ollama_url") or "http://127.0.0.1:11434").rstrip("/")
    if kind == "ollama.generate":
        reply = _post(f"{base}/api/generate", {"model": data["model"], "prompt": data.get("prompt", ""),
                                               "stream": False}, timeout=float(work.get("timeout", 600)))
        return {"response": reply.get("response"), "model": reply.get("model")}
    if kind == "ollama.embed":
        reply = _post(f"{base}/api/embed", {"model": data["model"], "input": data.get("input", "")},
                      timeout=float(work.get("timeout", 120)))
        return {"embeddings": reply.get("embeddings")}
    raise ValueError(f"unknown work kind {kind!r}")


async def in_thread(func: Any, *args: Any) -> Any:
    """asyncio.to_thread without its Python 3.9 requirement: the agent runs on the node's python3 (3.8 on JetPack 5)."""
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


class Agent:
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.node_id = config["node_id"]
        self.token = config.get("subject_token") or self.node_id
        self.nc: nats.NATS | None = None
        self.stopping = asyncio.Event()
        self.first_claim: dict[str, str] = {}  # work_id -> node_id of the first claim seen
        self.tasks: set[asyncio.Task] = set()

    def subject(self, base: str) -> str:
        return f"{base}.{self.token}"

    async def publish(self, base: str, payload: dict[str, Any]) -> None:
        assert self.nc is not None
        await self.nc.publish(self.subject(base), json.dumps(payload, sort_keys=True).encode())

    def announcement(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "capabilities": list(self.config.get("capabilities") or []),
                "services": list(self.config.get("services") or []), "load": load_average(),
                "models": list(self.config.get("models") or []), "ts": time.time(), "agent_version": VERSION}

    async def connect(self) -> None:
        password = self.config.get("password")
        if not password and self.config.get("password_file"):
            with open(self.config["password_file"], encoding="utf-8") as handle:
                password = handle.read().strip()

        async def on_error(err: Exception) -> None:
            LOG.warning("nats: %s", err)

        self.nc = await nats.connect(servers=self.config["servers"], user=self.config.get("user", self.node_id),
                                     password=password, name=f"pmoves-mesh-agent {self.node_id}",
                                     error_cb=on_error, max_reconnect_attempts=-1, reconnect_time_wait=2)

    async def on_claim(self, msg) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            claim = json.loads(msg.data)
            self.first_claim.setdefault(str(claim["work_id"]), str(claim["node_id"]))

    async def on_work(self, msg) -> None:
        try:
            work = json.loads(msg.data)
            work_id = str(work["work_id"])
        except (ValueError, KeyError, TypeError):
            LOG.warning("ignoring malformed work on %s", msg.subject)
            return
        if not can_do(self.config, work.get("requires")):
            return
        await self.publish(WORK_CLAIMED, {"work_id": work_id, "node_id": self.node_id, "ts": time.time()})
        await asyncio.sleep(float(self.config.get("claim_window", 0.5)))
        if self.first_claim.get(work_id) != self.node_id:
            return  # another node claimed it first
        try:
            result = await in_thread(run_work, self.config, work)
            payload = {"work_id": work_id, "node_id": self.node_id, "ok": True, "result": result}
        except Exception as err:
            payload = {"work_id": work_id, "node_id": self.node_id, "ok": False, "error": str(err)}
        payload["ts"] = time.time()
        await self.publish(WORK_COMPLETED, payload)

    async def on_work_message(self, msg) -> None:
        # nats-py runs one callback at a time per subscription: handle each offer in its own task
        task = asyncio.create_task(self.on_work(msg))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def heartbeat(self) -> None:
        interval = float(self.config.get("interval", 15))
        while not self.stopping.is_set():
            await self.publish(GPU_STATUS, {"node_id": self.node_id, "gpus": await in_thread(gpu_status),
                                            "load": load_average(), "ts": time.time()})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)
            if not self.stopping.is_set():
                await self.publish(ANNOUNCE, self.announcement())

    async def run(self) -> int:
        await self.connect()
        assert self.nc is not None
        await self.nc.subscribe(f"{WORK_CLAIMED}.>", cb=self.on_claim)
        await self.nc.subscribe(f"{WORK_AVAILABLE}.>", cb=self.on_work_message)
        await self.publish(ANNOUNCE, self.announcement())
        await self.nc.flush()
        LOG.info("announced %s on %s", self.node_id, self.subject(ANNOUNCE))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        beat = asyncio.create_task(self.heartbeat())
        await self.stopping.wait()
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await self.publish(OFFLINE, {"node_id": self.node_id, "reason": "shutdown", "ts": time.time()})
        await self.nc.flush(timeout=5)
        await self.nc.drain()
        LOG.info("offline %s", self.node_id)
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="/etc/pmoves/mesh-agent.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    return asyncio.run(Agent(config).run())


if __name__ == "__main__":
    raise SystemExit(main())
