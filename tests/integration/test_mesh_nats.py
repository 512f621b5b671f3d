"""The mesh with a real nats-server (Debian's) and the real agent process.

The server runs the config plugins/module_utils/nats_config.py generates (bcrypt passwords,
per-node publish permissions) on a loopback port; the agent is roles/mesh/files/
pmoves_mesh_agent.py started as systemd would start it. What users rely on: a node's announce
arrives with seed 000's payload; it goes offline cleanly on SIGTERM; a node cannot publish on
another node's subject; work is claimed by exactly one node that can do it; with the hub's relay
(the same script with --relay), a subscriber on seed 000's exact subjects hears every node, a node
cannot publish there itself, and a node announcing another node's id on its own subject is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.nats_config import (
    ANNOUNCE,
    GPU_STATUS,
    OFFLINE,
    WORK_AVAILABLE,
    WORK_CLAIMED,
    WORK_COMPLETED,
    ClientUser,
    RelayUser,
    ServerOptions,
    agent_config,
    build_server_config,
    relay_config,
    render_server_config,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("nats-server"), reason="nats-server (apt) not installed")]

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "roles" / "mesh" / "files" / "pmoves_mesh_agent.py"
PASSWORDS = {"node-a": "node-a-password-" + "x" * 12, "node-b": "node-b-password-" + "y" * 12}
RELAY = RelayUser("relay-password-" + "r" * 12)
WATCHER = ClientUser("watcher", "watcher-password-" + "z" * 12, publish=[f"{WORK_AVAILABLE}.watcher"])
HARDWARE = {"node_class": "gpu", "arch": "x86_64", "memory_mb": 32768,
            "gpus": [{"index": 0, "vendor": "nvidia", "name": "NVIDIA GeForce RTX 3090 Ti", "memory_total_mb": 24564}],
            "nvidia": {"cuda_driver_version": "12.8"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nats")
    port = free_port()
    config = build_server_config(PASSWORDS, [WATCHER], ServerOptions(host="127.0.0.1", port=port, http_port=None),
                                 relay=RELAY)
    conf = workdir / "nats-server.conf"
    conf.write_text(render_server_config(config))
    check = subprocess.run(["nats-server", "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    log = (workdir / "nats.log").open("wb")
    proc = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("nats-server did not start")
    yield {"url": f"nats://127.0.0.1:{port}", "workdir": workdir}
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def start_agent(server, node_id: str, plan_node: dict, tmp_path: Path, *, via_stdin: bool = False) -> subprocess.Popen:
    """The agent as its unit starts it; ``via_stdin``: as in a privileged podman container, where systemd's
    credentials directory reaches the service empty and the config arrives on stdin (StandardInput=file:)."""
    config = agent_config(node_id, [server["url"]], PASSWORDS[node_id], HARDWARE, plan_node, interval=1,
                          claim_window=0.3)
    path = tmp_path / f"{node_id}.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    if not via_stdin:
        return subprocess.Popen([sys.executable, str(AGENT), "--config", str(path)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    empty_credentials = tmp_path / f"{node_id}-credentials"
    empty_credentials.mkdir(mode=0o700)
    with path.open("rb") as stdin:
        return subprocess.Popen([sys.executable, str(AGENT), "--credential", "mesh-agent.json", "--config", "-"],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "CREDENTIALS_DIRECTORY": str(empty_credentials)})


@pytest.fixture
def relay(nats_server, tmp_path):
    """The hub's relay (pmoves_mesh_agent.py --relay) with the config the role writes; ready once it wrote stats."""
    path = tmp_path / "mesh-relay.json"
    path.write_text(json.dumps(relay_config(sorted(PASSWORDS), [nats_server["url"]], RELAY.password, stats_interval=1)))
    path.chmod(0o600)
    stats = tmp_path / "relay-stats.json"
    proc = subprocess.Popen([sys.executable, str(AGENT), "--relay", "--config", str(path), "--stats-file", str(stats)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 15
    while not stats.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not stats.exists():
        stop(proc)
        pytest.fail(f"relay did not start: {proc.stdout.read().decode() if proc.stdout else ''}")
    yield {"proc": proc, "stats": stats}
    stop(proc)


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        return -9


async def watch(server, subjects: list[str]):
    nc = await nats.connect(server["url"], user=WATCHER.name, password=WATCHER.password, allow_reconnect=False)
    queue: asyncio.Queue = asyncio.Queue()
    for subject in subjects:
        await nc.subscribe(subject, cb=queue.put)
    await nc.flush()
    return nc, queue


async def next_on(queue: asyncio.Queue, prefix: str, timeout: float = 10, node: str | None = None):
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(queue.get(), timeout=max(0.01, deadline - time.monotonic()))
        payload = json.loads(msg.data)
        if msg.subject.startswith(prefix) and (node is None or payload.get("node_id") == node):
            return msg.subject, payload


def test_agent_announces_with_the_seed_payload_and_goes_offline_on_stop(nats_server, tmp_path):
    async def scenario():
        nc, queue = await watch(nats_server, ["mesh.>"])
        agent = start_agent(nats_server, "node-a", {"models": ["llama3.2:1b"], "services": [{"name": "tts"}]},
                            tmp_path)
        try:
            subject, payload = await next_on(queue, ANNOUNCE, timeout=15)
            assert subject == f"{ANNOUNCE}.node-a"
            assert {"node_id", "capabilities", "services", "load"} <= set(payload)
            assert payload["node_id"] == "node-a"
            assert {"gpu:rtx3090ti", "vram:24gb", "cuda:12.8"} <= set(payload["capabilities"])
            assert payload["services"] == ["ollama", "tts"]
            assert isinstance(payload["load"], float)
            _, status = await next_on(queue, "mesh.gpu.status.v1.node-a", timeout=5)
            assert status["node_id"] == "node-a" and "load" in status
            assert stop(agent) == 0
            subject, payload = await next_on(queue, OFFLINE, timeout=10)
            assert (subject, payload["node_id"], payload["reason"]) == (f"{OFFLINE}.node-a", "node-a", "shutdown")
        finally:
            stop(agent)
            await nc.close()

    asyncio.run(scenario())


def test_a_node_cannot_publish_on_another_nodes_subject(nats_server):
    async def scenario():
        watcher, queue = await watch(nats_server, [f"{ANNOUNCE}.>"])
        errors: list[Exception] = []

        async def on_error(err):
            errors.append(err)

        node_a = await nats.connect(nats_server["url"], user="node-a", password=PASSWORDS["node-a"],
                                    error_cb=on_error, allow_reconnect=False)
        try:
            forged = json.dumps({"node_id": "node-b", "capabilities": [], "services": [], "load": 0}).encode()
            await node_a.publish(f"{ANNOUNCE}.node-b", forged)
            await node_a.publish(f"{ANNOUNCE}.node-a", json.dumps({"node_id": "node-a"}).encode())
            await node_a.flush()
            subject, _ = await next_on(queue, ANNOUNCE, timeout=5)
            assert subject == f"{ANNOUNCE}.node-a"  # the forged one never arrived, the own one did
            deadline = time.monotonic() + 5
            while not errors and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert any("permissions violation" in str(e).lower() and f"{ANNOUNCE}.node-b" in str(e) for e in errors), errors
            with pytest.raises(asyncio.TimeoutError):
                await next_on(queue, f"{ANNOUNCE}.node-b", timeout=0.5)
        finally:
            await node_a.close()
            await watcher.close()

    asyncio.run(scenario())


def test_wrong_password_is_refused(nats_server):
    async def scenario():
        with pytest.raises(Exception, match="Authorization Violation"):
            await nats.connect(nats_server["url"], user="node-a", password="not-the-password-at-all",
                               allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3)

    asyncio.run(scenario())


def test_work_is_claimed_and_completed_by_one_capable_node(nats_server, tmp_path):
    async def scenario():
        nc, queue = await watch(nats_server, [f"{ANNOUNCE}.>", f"{WORK_CLAIMED}.>", f"{WORK_COMPLETED}.>"])
        agents = [start_agent(nats_server, "node-a", {"models": ["llama3.2:1b"]}, tmp_path),
                  start_agent(nats_server, "node-b", {"models": []}, tmp_path)]
        try:
            seen = set()
            while seen != {"node-a", "node-b"}:
                _, payload = await next_on(queue, ANNOUNCE, timeout=15)
                seen.add(payload["node_id"])
            work = {"work_id": "w-1", "kind": "echo", "requires": {"services": ["ollama"], "models": ["llama3.2:1b"]},
                    "input": {"hello": "mesh"}}
            await nc.publish(f"{WORK_AVAILABLE}.watcher", json.dumps(work).encode())
            _, claim = await next_on(queue, WORK_CLAIMED, timeout=10)
            assert claim == {"work_id": "w-1", "node_id": "node-a", "ts": claim["ts"]}
            subject, done = await next_on(queue, WORK_COMPLETED, timeout=10)
            assert subject == f"{WORK_COMPLETED}.node-a"
            assert (done["work_id"], done["ok"], done["result"]) == ("w-1", True, {"echo": {"hello": "mesh"}})
            # node-b cannot do it and never claims it
            with pytest.raises(asyncio.TimeoutError):
                await next_on(queue, WORK_CLAIMED, timeout=1.0, node="node-b")
        finally:
            for agent in agents:
                stop(agent)
            await nc.close()

    asyncio.run(scenario())


def relay_stats(relay, ready, timeout: float = 5) -> dict:
    """The relay's counters once ``ready(stats)`` (it writes them every stats_interval, 1 s here)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = json.loads(relay["stats"].read_text())
        if ready(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.1)


async def connect_node(server, node_id: str, errors: list):
    async def on_error(err):
        errors.append(err)

    return await nats.connect(server["url"], user=node_id, password=PASSWORDS[node_id], error_cb=on_error,
                              allow_reconnect=False)


def test_a_subscriber_on_the_exact_seed_subjects_hears_every_node(nats_server, relay, tmp_path):
    async def scenario():
        # seed 000's listener: the exact subjects, no wildcard
        nc, queue = await watch(nats_server, [ANNOUNCE, GPU_STATUS, OFFLINE])
        agents = {"node-a": start_agent(nats_server, "node-a", {"models": ["llama3.2:1b"]}, tmp_path),
                  "node-b": start_agent(nats_server, "node-b", {"models": []}, tmp_path, via_stdin=True)}
        try:
            heard: dict[str, set[str]] = {ANNOUNCE: set(), GPU_STATUS: set()}
            deadline = time.monotonic() + 20
            while any(nodes != set(agents) for nodes in heard.values()):
                msg = await asyncio.wait_for(queue.get(), timeout=max(0.01, deadline - time.monotonic()))
                payload = json.loads(msg.data)
                assert msg.subject in heard, msg.subject  # exact subjects only, nothing else
                heard[msg.subject].add(payload["node_id"])
                if msg.subject == ANNOUNCE:
                    assert {"node_id", "capabilities", "services", "load"} <= set(payload)  # seed 000's payload
                    assert msg.headers["Pmoves-Relayed-From"] == f"{ANNOUNCE}.{payload['node_id']}"
            os.kill(agents["node-a"].pid, signal.SIGUSR1)  # the agent logs its view of the link
            await asyncio.sleep(0.5)
            assert stop(agents["node-b"]) == 0
            _, offline = await next_on(queue, OFFLINE, timeout=10, node="node-b")
            assert offline["reason"] == "shutdown"
        finally:
            for proc in agents.values():
                stop(proc)
            await nc.close()
        log = agents["node-a"].stdout.read().decode()
        state = json.loads(next(line for line in log.splitlines() if line.startswith("INFO state: "))[12:])
        assert state["connected"] and state["beats"] >= 1 and state["failed_beats"] == 0, state
        assert state["out_msgs"] >= state["beats"] and state["flusher_running"], state
        stats = relay_stats(relay, lambda st: st["relayed"].get(ANNOUNCE, 0) >= 2)
        assert stats["relayed"][ANNOUNCE] >= 2 and stats["forged"] == {}
        # when the relay last carried each node: the node that goes quiet stands out
        assert set(stats["last_seen"]) == set(agents) and all(stats["ts"] - t < 60 for t in stats["last_seen"].values())

    asyncio.run(scenario())


def test_the_relay_drops_a_forged_announce_and_a_node_cannot_publish_on_the_exact_subject(nats_server, relay):
    async def scenario():
        watcher, queue = await watch(nats_server, [ANNOUNCE])
        errors: list[Exception] = []
        node_a = await connect_node(nats_server, "node-a", errors)
        try:
            # node-a on its own subject (the server lets it) claiming to be node-b: the relay drops it
            await node_a.publish(f"{ANNOUNCE}.node-a", json.dumps({"node_id": "node-b", "load": 0.0}).encode())
            # node-a straight on the exact subject: the server refuses it (only the relay may publish there)
            await node_a.publish(ANNOUNCE, json.dumps({"node_id": "node-a", "direct": True}).encode())
            await node_a.publish(f"{ANNOUNCE}.node-a", json.dumps({"node_id": "node-a", "load": 0.5}).encode())
            await node_a.flush()
            msg = await asyncio.wait_for(queue.get(), timeout=10)
            # the first (and only) message on the exact subject is node-a's honest one, via the relay
            assert json.loads(msg.data) == {"node_id": "node-a", "load": 0.5}
            assert msg.headers["Pmoves-Relayed-From"] == f"{ANNOUNCE}.node-a"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(queue.get(), timeout=1.0)
            deadline = time.monotonic() + 5
            while not errors and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert any("permissions violation" in str(e).lower() and f'"{ANNOUNCE}"' in str(e) for e in errors), errors
        finally:
            await node_a.close()
            await watcher.close()
        stats = relay_stats(relay, lambda st: st["relayed"].get(ANNOUNCE))
        assert stats["forged"] == {ANNOUNCE: 1}
        assert stats["relayed"] == {ANNOUNCE: 1}
        assert set(stats["last_seen"]) == {"node-a"}  # a forgery does not count as hearing a node

    asyncio.run(scenario())


def test_work_offers_claims_and_results_reach_the_exact_seed_subjects(nats_server, relay, tmp_path):
    async def scenario():
        nc, queue = await watch(nats_server, [ANNOUNCE, WORK_AVAILABLE, WORK_CLAIMED, WORK_COMPLETED])
        agent = start_agent(nats_server, "node-a", {"models": ["llama3.2:1b"]}, tmp_path)
        try:
            await next_on(queue, ANNOUNCE, timeout=15, node="node-a")
            work = {"work_id": "w-exact", "kind": "echo", "requires": {"models": ["llama3.2:1b"]}, "input": {"x": 1}}
            await nc.publish(f"{WORK_AVAILABLE}.watcher", json.dumps(work).encode())
            seen: dict[str, dict] = {}
            deadline = time.monotonic() + 15
            while set(seen) != {WORK_AVAILABLE, WORK_CLAIMED, WORK_COMPLETED}:
                msg = await asyncio.wait_for(queue.get(), timeout=max(0.01, deadline - time.monotonic()))
                if msg.subject != ANNOUNCE:
                    seen[msg.subject] = json.loads(msg.data)
            assert seen[WORK_AVAILABLE] == work  # the producer's offer, unchanged
            assert (seen[WORK_CLAIMED]["work_id"], seen[WORK_CLAIMED]["node_id"]) == ("w-exact", "node-a")
            assert (seen[WORK_COMPLETED]["node_id"], seen[WORK_COMPLETED]["result"]) == ("node-a", {"echo": {"x": 1}})
        finally:
            stop(agent)
            await nc.close()

    asyncio.run(scenario())


def load_agent_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("pmoves_mesh_agent", AGENT)
    agent_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent_module)
    return agent_module


class SlowHub:
    """A TCP path to the real nats-server that holds the server's answer to each CONNECT (what follows its INFO) for
    `delay` seconds: a hub busy verifying bcrypt passwords for a herd of reconnecting nodes answers that late.

    It can also go silent: after `silence()` the connections open at that moment carry nothing in either direction
    and are never closed (no FIN, no RST: a peer that roamed or slept, a dropped conntrack entry); connections opened
    later pass again."""

    def __init__(self, upstream_port: int, delay: float = 0.0, pings_first: int = 0):
        self.upstream_port, self.delay = upstream_port, delay
        self.pings_first = pings_first  # this many connections get the server's PING before its answer to CONNECT
        self.port = free_port()
        self.server = None
        self.generation = 0

    async def _pipe(self, reader, writer, generation: int, hold_after_first: float = 0.0, ping_second: bool = False):
        try:
            first = True
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if generation != self.generation:
                    continue  # a silenced connection swallows what it is given
                if ping_second and not first:
                    # what a hub slow on the CONNECT sends: its own first PING, then the PONG to the client's PING
                    data, ping_second = b"PING\r\n" + data, False
                writer.write(data)
                await writer.drain()
                if first and hold_after_first:
                    await asyncio.sleep(hold_after_first)
                first = False
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        generation = self.generation
        ping_second, self.pings_first = self.pings_first > 0, max(self.pings_first - 1, 0)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(self._pipe(client_reader, up_writer, generation),
                                 self._pipe(up_reader, client_writer, generation, self.delay, ping_second),
                                 return_exceptions=True)

    def silence(self) -> None:
        self.generation += 1

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc):
        self.server.close()


def test_a_node_gets_into_a_hub_that_answers_slower_than_nats_pys_default_connect_timeout(nats_server):
    """The agent's and relay's connect options (a long connect timeout, jittered reconnects) get a node into a hub
    that takes 4 s to answer; nats-py's defaults (2 s) never do (the homelab lab's 23 agents were locked out for
    8 minutes that way)."""
    agent_module = load_agent_module()
    upstream = int(nats_server["url"].rsplit(":", 1)[1])

    async def scenario():
        async with SlowHub(upstream, delay=4.0) as hub:
            url = f"nats://127.0.0.1:{hub.port}"
            with pytest.raises(Exception):  # noqa: B017 - nats-py raises its own timeout/no-servers errors
                await nats.connect(url, user="node-a", password=PASSWORDS["node-a"], allow_reconnect=False,
                                   max_reconnect_attempts=0)
            options = agent_module.reconnect_options()
            assert options["connect_timeout"] > 4 and options["max_reconnect_attempts"] == -1
            nc = await nats.connect(url, user="node-a", password=PASSWORDS["node-a"], **options)
            try:
                sub = await nc.subscribe("_INBOX.slowhub")
                await nc.publish("_INBOX.slowhub", b"in")
                msg = await sub.next_msg(timeout=10)
                assert msg.data == b"in"
            finally:
                await nc.close()

    asyncio.run(scenario())


def test_a_node_gets_in_when_a_busy_hub_pings_before_it_answers_the_connect(nats_server):
    """A hub slow on the CONNECT (bcrypt under load) sends its own first PING before the PONG nats-py waits for:
    nats.connect then returns a client stuck in CONNECTING (publishes never sent, flush() returns at once, no
    reconnect; every node of the pmoves lab fell silent so under CI load). The agent's connect notices and connects
    again; what it publishes then reaches a subscriber."""
    agent_module = load_agent_module()
    upstream = int(nats_server["url"].rsplit(":", 1)[1])

    async def scenario():
        async with SlowHub(upstream, pings_first=1) as hub:
            url = f"nats://127.0.0.1:{hub.port}"
            stuck = await nats.connect(url, user="node-a", password=PASSWORDS["node-a"],
                                       **agent_module.reconnect_options())
            try:
                assert not stuck.is_connected and stuck.is_connecting  # nats-py 2.16 (requirements-agent.txt)
            finally:
                await stuck.close()
            hub.pings_first = 1
            watcher = await nats.connect(nats_server["url"], user=WATCHER.name, password=WATCHER.password)
            sub = await watcher.subscribe(f"{agent_module.ANNOUNCE}.node-a")
            nc = await agent_module.connect({"servers": [url]}, "node-a", PASSWORDS["node-a"], "agent node-a")
            try:
                assert nc.is_connected and hub.pings_first == 0  # its first connection was the stuck one
                await nc.publish(f"{agent_module.ANNOUNCE}.node-a", b"heard")
                msg = await sub.next_msg(timeout=10)
                assert msg.data == b"heard"
            finally:
                await nc.close()
                await watcher.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("keepalive", ["agent", "nats-py-default"])
def test_a_node_whose_connection_goes_silent_reconnects_and_is_heard_again(nats_server, keepalive):
    """The agent's connection to the hub stops carrying packets without being closed: with the agent's keepalive
    (here scaled to 0.5 s pings) it notices, reconnects and its heartbeats reach listeners again within seconds;
    with nats-py's defaults (a ping every 120 s) it keeps publishing into the dead socket and nobody hears it
    for the whole 30 s window."""
    agent_module = load_agent_module()
    # the real settings: a silent connection is given up within 90 s (6 heartbeats), not nats-py's 6 minutes
    assert agent_module.PING_INTERVAL_S * (agent_module.MAX_OUTSTANDING_PINGS + 1) <= 90
    agent_module.PING_INTERVAL_S, agent_module.RECONNECT_WAIT_S = 0.5, (0.5, 1.0)
    upstream = int(nats_server["url"].rsplit(":", 1)[1])
    subject = f"{ANNOUNCE}.node-a"

    async def scenario():
        async with SlowHub(upstream) as path:
            listener = await nats.connect(nats_server["url"], user="node-b", password=PASSWORDS["node-b"])
            heard = asyncio.Queue()
            await listener.subscribe(subject, cb=heard.put)
            await listener.flush()
            options = agent_module.reconnect_options()
            if keepalive == "nats-py-default":
                options = {k: v for k, v in options.items() if k not in ("ping_interval", "max_outstanding_pings")}
            reconnected = asyncio.Event()

            async def on_reconnected():
                reconnected.set()

            node = await nats.connect(f"nats://127.0.0.1:{path.port}", user="node-a", password=PASSWORDS["node-a"],
                                      reconnected_cb=on_reconnected, **options)
            try:
                await node.publish(subject, b"before")
                assert (await asyncio.wait_for(heard.get(), 5)).data == b"before"
                path.silence()
                got = []
                # 30 scaled heartbeats: the agent's keepalive needs about 3 s here (4 pings of 0.5 s, a reconnect), more
                # on a loaded CI machine (8 s was too short there); nats-py's default sends its first ping at 120 s
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not got:
                    await node.publish(subject, b"beat")  # the agent's heartbeat, every 1 s here
                    with contextlib.suppress(asyncio.TimeoutError):
                        got.append(await asyncio.wait_for(heard.get(), 1.0))
                if got:  # nats-py sends what waited in memory before it calls reconnected_cb
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(reconnected.wait(), 5)
                return reconnected.is_set(), got
            finally:
                await node.close()
                await listener.close()

    reconnected, got = asyncio.run(scenario())
    if keepalive == "agent":
        assert reconnected and got and got[0].data == b"beat", (reconnected, got)
    else:
        assert not reconnected and not got, (reconnected, got)


def test_reconnects_are_spread_so_a_restarted_hub_is_not_hit_by_every_node_at_once():
    import random
    agent_module = load_agent_module()
    waits = [agent_module.reconnect_options(random.Random(seed))["reconnect_time_wait"] for seed in range(23)]
    low, high = agent_module.RECONNECT_WAIT_S
    assert all(low <= w <= high for w in waits) and len(set(waits)) > 15, waits
