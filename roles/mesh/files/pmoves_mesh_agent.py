#!/usr/bin/env python3
"""pmoves.fleet mesh agent: announces this node on the NATS mesh and takes work it can do.

Run by systemd (pmoves-mesh-agent.service) with ``--credential mesh-agent.json --config -`` (see Config below):

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
its own token.

``--relay`` (pmoves-mesh-relay.service, on the NATS hub only): subscribes to ``<seed subject>.*``
and republishes each payload unchanged on the exact seed subject (``mesh.node.announce.v1``), the
subject seed 000's listeners use, after checking that the payload's ``node_id`` is the node whose
token the subject carries (a forgery is dropped and counted). Its user is the only one the server
lets publish on the exact subjects. Counters, and when each node was last relayed (``last_seen``),
go to ``--stats-file`` (JSON) and the journal. SIGUSR1 makes an agent log its view of its link
(connected, messages sent, bytes still waiting, heartbeats sent and failed).

Config: systemd hands it over as the credential ``--credential NAME`` (LoadCredential=, read from
``$CREDENTIALS_DIRECTORY``); where that directory is empty or unreadable (systemd in a container
whose mounts do not propagate: podman's default, so the credential mount never reaches the service)
the agent reads ``--config`` instead, ``-`` being stdin (StandardInput=file:, opened by systemd as
root, so the file stays 0600 root). Dependencies: Python 3.8+, nats-py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
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
SEED_SUBJECTS = (ANNOUNCE, OFFLINE, WORK_AVAILABLE, WORK_CLAIMED, WORK_COMPLETED, GPU_STATUS)
VERSION = "1"
LOG = logging.getLogger("pmoves-mesh-agent")
# The hub checks each CONNECT's password against a bcrypt hash (cost 11): about 0.1-0.3 s of CPU each. When every
# node connects at once (the hub restarted, or a busy hub: the 23-node homelab lab's agents and relay found no way in
# for 8 minutes, "Readloop processing time: 1m10s" on the server) nats-py's 2 s connect timeout gives up on attempts
# the server is still verifying and retries, each retry one more bcrypt: the herd never gets in. A connect may take
# CONNECT_TIMEOUT_S, and reconnects are spread over RECONNECT_WAIT_S.
CONNECT_TIMEOUT_S = 15
RECONNECT_WAIT_S = (2.0, 6.0)
# A connection that stops carrying packets without a FIN or RST (a WireGuard peer that roamed, a laptop that slept,
# a NAT or conntrack entry dropped) leaves nats-py publishing into the socket until PING_INTERVAL_S *
# (MAX_OUTSTANDING_PINGS + 1) passes unanswered: 80 s here, 6 minutes with nats-py's defaults (120 s, 2), during
# which every heartbeat of the node is lost while the agent believes it is connected.
PING_INTERVAL_S = 20
MAX_OUTSTANDING_PINGS = 3


def reconnect_options(rng: random.Random | None = None) -> dict[str, Any]:
    """nats.connect options for a mesh client: retry forever, wait long for a busy hub, reconnect with jitter,
    notice a silently dead connection within a few heartbeats."""
    low, high = RECONNECT_WAIT_S
    return {"connect_timeout": CONNECT_TIMEOUT_S, "max_reconnect_attempts": -1,
            "reconnect_time_wait": round((rng or random).uniform(low, high), 2),
            "ping_interval": PING_INTERVAL_S, "max_outstanding_pings": MAX_OUTSTANDING_PINGS}


async def connect(config: dict[str, Any], user: str, password: str | None, name: str) -> nats.NATS:
    """The agent's and the relay's NATS connection; every loss and recovery lands in the journal."""
    async def on_error(err: Exception) -> None:
        LOG.warning("nats: %s", err)

    async def on_disconnected() -> None:
        LOG.warning("nats: disconnected from the hub; reconnecting (what it publishes meanwhile waits in memory)")

    async def on_reconnected() -> None:
        LOG.info("nats: reconnected to %s", nc.connected_url.netloc if nc.connected_url else "the hub")

    while True:
        nc = await nats.connect(servers=config["servers"], user=user, password=password, name=name,
                                error_cb=on_error, disconnected_cb=on_disconnected, reconnected_cb=on_reconnected,
                                **reconnect_options())
        if nc.is_connected:
            return nc
        # nats-py (2.16) takes only a PONG as the answer to its first PING. A hub slow on the CONNECT (bcrypt under
        # load: "Readloop processing time" of 4-7 s) sends its own first PING before that PONG; nats.connect then
        # returns a client left in CONNECTING for good: nothing it publishes is sent, no ping, no reconnect, and
        # flush() returns at once (every node of the pmoves lab was silent that way under CI load).
        LOG.warning("nats: the hub's first answer was not the PONG nats-py waits for (a busy hub pinged first): "
                    "the connection is unusable; connecting again")
        with contextlib.suppress(Exception):
            await nc.close()
        await asyncio.sleep(random.uniform(*RECONNECT_WAIT_S))


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


def agent_state(nc: Any, beats: int, failed: int, last_beat: float, now: float | None = None) -> dict[str, Any]:
    """The agent's view of its link (SIGUSR1 logs it): connected or not, what nats-py sent and still holds."""
    now = time.time() if now is None else now
    state: dict[str, Any] = {"beats": beats, "failed_beats": failed,
                             "last_beat_s_ago": round(now - last_beat, 1) if last_beat else None}
    if nc is not None:
        stats = getattr(nc, "stats", {}) or {}
        state.update({"connected": bool(nc.is_connected), "reconnects": stats.get("reconnects", 0),
                      "out_msgs": stats.get("out_msgs", 0), "in_msgs": stats.get("in_msgs", 0),
                      "pending_bytes": getattr(nc, "pending_data_size", None),
                      "pings_outstanding": getattr(nc, "_pings_outstanding", None)})
        flusher = getattr(nc, "_flusher_task", None)
        state["flusher_running"] = flusher is not None and not flusher.done()
    return state


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
        self.beats = self.failed_beats = 0
        self.last_beat = 0.0

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
        self.nc = await connect(self.config, self.config.get("user", self.node_id), password,
                                f"pmoves-mesh-agent {self.node_id}")

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

    async def beat(self, base: str, payload: Any) -> None:
        """One heartbeat message; a failure is logged and the next beat tries again (a heartbeat task that died on
        one exception left a node silent on the mesh while its agent, still running, looked healthy)."""
        try:
            await self.publish(base, await payload() if callable(payload) else payload)
            self.beats += 1
            self.last_beat = time.time()
        except Exception as err:  # any failure of one beat is logged, never fatal
            self.failed_beats += 1
            LOG.warning("heartbeat on %s failed (%d so far): %s: %s", self.subject(base), self.failed_beats,
                        type(err).__name__, err)

    async def gpu_payload(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "gpus": await in_thread(gpu_status), "load": load_average(), "ts": time.time()}

    async def heartbeat(self) -> None:
        interval = float(self.config.get("interval", 15))
        while not self.stopping.is_set():
            await self.beat(GPU_STATUS, self.gpu_payload)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)
            if not self.stopping.is_set():
                await self.beat(ANNOUNCE, self.announcement())

    def log_state(self) -> None:
        """SIGUSR1 (``systemctl kill -s USR1 pmoves-mesh-agent``): what the agent believes about its mesh link."""
        LOG.info("state: %s", json.dumps(agent_state(self.nc, self.beats, self.failed_beats, self.last_beat),
                                         sort_keys=True))

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
        loop.add_signal_handler(signal.SIGUSR1, self.log_state)
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


def relay_verdict(subject: str, data: bytes, subjects: Any, nodes: dict[str, str]) -> tuple[str, str]:
    """What the relay does with one message: ``(relay, <exact subject>)`` or ``(forged | malformed, why)``.

    ``subject`` is ``<seed subject>.<token>`` (the server let only the token's owner publish it);
    ``nodes`` maps subject tokens to node ids. A payload that names a ``node_id`` must name the
    token's node; one without ``node_id`` is relayed only on work.available (a producer's offer:
    seed 000 gives it no sender field, and the server already let only the token's user publish it).
    """
    base, dot, token = subject.rpartition(".")
    if not dot or base not in subjects or not token:
        return "malformed", f"not a relayed subject: {subject}"
    try:
        payload = json.loads(data)
    except ValueError:
        return "malformed", f"payload on {subject} is not JSON"
    if not isinstance(payload, dict):
        return "malformed", f"payload on {subject} is not a JSON object"
    if "node_id" not in payload:
        if base == WORK_AVAILABLE:
            return "relay", base
        return "forged", f"payload on {subject} has no node_id"
    owner = nodes.get(token)
    if owner is None or payload.get("node_id") != owner:
        return "forged", f"node_id {payload.get('node_id')!r} published on {subject} (token of {owner or 'no node'})"
    return "relay", base


class Relay:
    """Republishes ``<seed subject>.<token>`` on ``<seed subject>`` when node_id matches the token."""

    def __init__(self, config: dict[str, Any], stats_file: str | None = None):
        self.config = config
        self.subjects = tuple(config.get("subjects") or SEED_SUBJECTS)
        self.nodes = {str(k): str(v) for k, v in (config.get("nodes") or {}).items()}
        self.stats_file = stats_file
        self.counts: dict[str, dict[str, int]] = {"relayed": {}, "forged": {}, "malformed": {}}
        self.last_seen: dict[str, float] = {}  # node id -> when the relay last relayed one of its messages
        self.nc: nats.NATS | None = None
        self.stopping = asyncio.Event()

    def stats(self) -> dict[str, Any]:
        return {**{kind: dict(sorted(per.items())) for kind, per in self.counts.items()},
                "last_seen": dict(sorted(self.last_seen.items())), "nodes": len(self.nodes), "ts": time.time()}

    def write_stats(self) -> None:
        if not self.stats_file:
            return
        tmp = f"{self.stats_file}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(self.stats(), handle, sort_keys=True)
            os.replace(tmp, self.stats_file)
        except OSError as err:
            LOG.warning("cannot write %s: %s", self.stats_file, err)

    async def on_message(self, msg) -> None:
        verdict, detail = relay_verdict(msg.subject, msg.data, self.subjects, self.nodes)
        base = msg.subject.rpartition(".")[0]
        per = self.counts["relayed" if verdict == "relay" else verdict]
        per[base] = per.get(base, 0) + 1
        if verdict != "relay":
            LOG.warning("dropped (%s, %d so far on %s): %s", verdict, per[base], base, detail)
            self.write_stats()
            return
        assert self.nc is not None
        token = msg.subject.rpartition(".")[2]
        self.last_seen[self.nodes.get(token, token)] = time.time()
        await self.nc.publish(detail, msg.data, headers={"Pmoves-Relayed-From": msg.subject})

    async def run(self) -> int:
        self.nc = await connect(self.config, self.config["user"], self.config["password"], "pmoves-mesh-relay")
        for subject in self.subjects:
            await self.nc.subscribe(f"{subject}.*", cb=self.on_message)
        await self.nc.flush()
        LOG.info("relaying %s for %d nodes", ", ".join(f"{s}.*" for s in self.subjects), len(self.nodes))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        interval = float(self.config.get("stats_interval", 15))
        self.write_stats()
        while not self.stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)
            self.write_stats()
        await self.nc.drain()
        LOG.info("relay stopped: %s", json.dumps(self.stats(), sort_keys=True))
        return 0


def load_config(credential: str | None, config: str) -> dict[str, Any]:
    """The config from systemd's credential when it is there, else from ``config`` (``-``: stdin)."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if credential and directory:
        try:
            with open(os.path.join(directory, credential), encoding="utf-8") as handle:
                return json.load(handle)
        except (FileNotFoundError, PermissionError) as err:
            # systemd in a container with private mount propagation (podman's default) mounts the credentials in a
            # namespace the service never sees: the directory is empty (root 0700). The unit's stdin has the file.
            LOG.warning("credential %s not readable (%s): reading the config from %s", credential,
                        err.strerror, "stdin" if config == "-" else config)
    if config == "-":
        return json.load(sys.stdin)
    with open(config, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="/etc/pmoves/mesh-agent.json", help="config file; - reads stdin")
    parser.add_argument("--credential", help="systemd credential holding the config (LoadCredential=); preferred")
    parser.add_argument("--relay", action="store_true", help="run the hub's relay instead of the agent")
    parser.add_argument("--stats-file", help="relay: write the relayed/forged/malformed counters here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = load_config(args.credential, args.config)
    if args.relay:
        return asyncio.run(Relay(config, args.stats_file).run())
    return asyncio.run(Agent(config).run())


if __name__ == "__main__":
    raise SystemExit(main())
