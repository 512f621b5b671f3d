"""The hub relay's decision and the agent's config loading (roles/mesh/files/pmoves_mesh_agent.py).

The relay itself runs against a real nats-server in tests/integration/test_mesh_nats.py; here the pure
part: which message is republished on the exact seed subject, which is a forgery, and where the config
comes from when systemd's credential does (or does not) reach the service.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

AGENT_PATH = Path(__file__).resolve().parents[3] / "roles" / "mesh" / "files" / "pmoves_mesh_agent.py"
_SPEC = importlib.util.spec_from_file_location("pmoves_mesh_agent", AGENT_PATH)
agent = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(agent)

NODES = {"gpu-a": "gpu-a", "jetson-1_lan": "jetson-1.lan"}
ANNOUNCE = "mesh.node.announce.v1"


@pytest.mark.parametrize(("subject", "payload", "verdict", "detail"), [
    (f"{ANNOUNCE}.gpu-a", {"node_id": "gpu-a", "load": 0.1}, "relay", ANNOUNCE),
    (f"{ANNOUNCE}.jetson-1_lan", {"node_id": "jetson-1.lan"}, "relay", ANNOUNCE),
    ("mesh.gpu.status.v1.gpu-a", {"node_id": "gpu-a", "gpus": []}, "relay", "mesh.gpu.status.v1"),
    ("mesh.work.claimed.v1.gpu-a", {"work_id": "w", "node_id": "gpu-a"}, "relay", "mesh.work.claimed.v1"),
    # a producer's offer has no sender field: the server already checked who may publish on the token
    ("mesh.work.available.v1.dispatcher", {"work_id": "w", "kind": "echo"}, "relay", "mesh.work.available.v1"),
    # gpu-a (its own subject, so the server let it through) claiming to be jetson-1.lan
    (f"{ANNOUNCE}.gpu-a", {"node_id": "jetson-1.lan"}, "forged", "jetson-1.lan"),
    (f"{ANNOUNCE}.gpu-a", {"load": 0.1}, "forged", "no node_id"),
    (f"{ANNOUNCE}.dispatcher", {"node_id": "dispatcher"}, "forged", "no node"),
    ("mesh.work.available.v1.dispatcher", {"work_id": "w", "node_id": "gpu-a"}, "forged", "gpu-a"),
    (f"{ANNOUNCE}.gpu-a", [1, 2], "malformed", "not a JSON object"),
    ("mesh.other.v1.gpu-a", {"node_id": "gpu-a"}, "malformed", "not a relayed subject"),
])
def test_relay_verdict(subject, payload, verdict, detail):
    got, why = agent.relay_verdict(subject, json.dumps(payload).encode(), agent.SEED_SUBJECTS, NODES)
    assert got == verdict
    assert detail in why


def test_relay_verdict_drops_payloads_that_are_not_json():
    assert agent.relay_verdict(f"{ANNOUNCE}.gpu-a", b"\xff{", agent.SEED_SUBJECTS, NODES)[0] == "malformed"


def test_the_agent_names_the_seed_subjects_as_module_utils_does():
    from ansible_collections.pmoves.fleet.plugins.module_utils.nats_config import SEED_SUBJECTS

    assert agent.SEED_SUBJECTS == SEED_SUBJECTS


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "mesh-agent.json"
    path.write_text(json.dumps({"node_id": "from-file"}))
    return path


@pytest.mark.parametrize("credentials", ["present", "empty", "unreadable", "unset"])
def test_config_comes_from_the_credential_else_stdin(tmp_path, monkeypatch, config_file, credentials):
    """Privileged podman: systemd's credential mount never reaches the service (empty dir, or 0700 root for a
    DynamicUser): the agent falls back to the unit's stdin (StandardInput=file:, opened by systemd as root)."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    if credentials == "present":
        (creds / "mesh-agent.json").write_text(json.dumps({"node_id": "from-credential"}))
    if credentials == "unset":
        monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    else:
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    if credentials == "unreadable":
        def deny(*args, **kwargs):
            raise PermissionError(13, "Permission denied", args[0])
        real_open = open
        monkeypatch.setattr("builtins.open", lambda path, *a, **k: deny(path) if str(path).startswith(str(creds))
                            else real_open(path, *a, **k))
    monkeypatch.setattr("sys.stdin", io.StringIO(config_file.read_text()))
    config = agent.load_config("mesh-agent.json", "-")
    assert config["node_id"] == ("from-credential" if credentials == "present" else "from-file")


def test_config_from_a_path_without_systemd(monkeypatch, config_file):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert agent.load_config(None, str(config_file)) == {"node_id": "from-file"}


class _FlakyConnection:
    """Stands in for the NATS connection only where the agent hands it a message: the first ``failures`` publishes
    raise as nats-py does when its buffer is full (the real client runs in tests/integration/test_mesh_nats.py)."""

    def __init__(self, failures: int):
        self.failures = failures
        self.sent: list[str] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("outbound buffer limit exceeded")
        self.sent.append(subject)


def test_a_failed_heartbeat_is_logged_and_the_next_one_still_goes_out(caplog):
    import asyncio

    node = agent.Agent({"node_id": "gpu-a", "interval": 0.01})
    node.nc = _FlakyConnection(failures=2)

    async def three_rounds():
        task = asyncio.create_task(node.heartbeat())
        while len(node.nc.sent) < 3 and not task.done():
            await asyncio.sleep(0.01)
        node.stopping.set()
        await task

    asyncio.run(asyncio.wait_for(three_rounds(), 10))
    assert node.failed_beats == 2 and node.beats >= 3
    assert node.nc.sent[:2] in (["mesh.gpu.status.v1.gpu-a", "mesh.node.announce.v1.gpu-a"],
                                ["mesh.node.announce.v1.gpu-a", "mesh.gpu.status.v1.gpu-a"])
    assert "heartbeat on mesh.gpu.status.v1.gpu-a failed (1 so far): RuntimeError" in caplog.text


def test_the_agent_state_says_what_waits_and_when_it_last_beat():
    class Link:
        is_connected = True
        pending_data_size = 120
        _pings_outstanding = 1
        stats = {"out_msgs": 40, "in_msgs": 3, "reconnects": 1}

    state = agent.agent_state(Link(), beats=40, failed=0, last_beat=1000.0, now=1012.5)
    assert state == {"beats": 40, "failed_beats": 0, "last_beat_s_ago": 12.5, "connected": True, "reconnects": 1,
                     "out_msgs": 40, "in_msgs": 3, "pending_bytes": 120, "pings_outstanding": 1,
                     "flusher_running": False}
    assert agent.agent_state(None, 0, 0, 0.0)["last_beat_s_ago"] is None
