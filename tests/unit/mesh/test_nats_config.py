"""NATS mesh config: per-node subjects and permissions, hashed passwords, agent config."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.pmoves.fleet.plugins.filter.fleet import mesh_relay_config, mesh_relay_password
from ansible_collections.pmoves.fleet.plugins.filter.fleet import nats_server_config as nats_server_config_filter
from ansible_collections.pmoves.fleet.plugins.module_utils.nats_config import (
    ANNOUNCE,
    RELAY_USER,
    SEED_SUBJECTS,
    ClientUser,
    MeshConfigError,
    RelayUser,
    ServerOptions,
    agent_config,
    bcrypt_hash,
    build_server_config,
    node_capabilities,
    node_permissions,
    node_services,
    relay_config,
    relay_password,
    render_server_config,
    subject_matches,
    subject_token,
)

PASSWORDS = {"gpu-a": "a" * 24, "jetson-1.lan": "b" * 24}


def _users(config):
    return {u["user"]: u for u in config["authorization"]["users"]}


def test_seed_subjects_are_kept():
    assert SEED_SUBJECTS == ("mesh.node.announce.v1", "mesh.node.offline.v1", "mesh.work.available.v1",
                             "mesh.work.claimed.v1", "mesh.work.completed.v1", "mesh.gpu.status.v1")


def test_each_node_publishes_only_on_its_own_token():
    allow = node_permissions("gpu-a")["publish"]["allow"]
    assert f"{ANNOUNCE}.gpu-a" in allow
    assert all(s.endswith(".gpu-a") or s == "_INBOX.>" for s in allow)
    assert not any(">" in s or "*" in s for s in allow if s != "_INBOX.>")
    assert node_permissions("gpu-a")["subscribe"]["allow"] == ["mesh.>", "_INBOX.>"]


@pytest.mark.parametrize(("node", "token"), [("gpu-a", "gpu-a"), ("jetson-1.lan", "jetson-1_lan"),
                                             ("a*b>c d", "a_b_c_d")])
def test_node_ids_become_single_subject_tokens(node, token):
    assert subject_token(node) == token


def test_tokens_that_collide_are_refused():
    with pytest.raises(MeshConfigError, match="same subject token"):
        build_server_config({"a.b": "x" * 20, "a_b": "y" * 20}, hash_passwords=False)


def test_passwords_are_bcrypt_hashed_deterministically():
    first = build_server_config(PASSWORDS)
    users = _users(first)
    assert users["gpu-a"]["password"].startswith("$2")
    assert "a" * 24 not in render_server_config(first)
    assert first == build_server_config(PASSWORDS)  # rerun: same file
    assert bcrypt_hash("gpu-a", "a" * 24) != bcrypt_hash("gpu-b", "a" * 24)


def test_short_or_missing_passwords_are_refused():
    with pytest.raises(MeshConfigError, match="vault"):
        build_server_config({"gpu-a": "short"})


def test_client_users_get_exactly_their_permissions():
    config = build_server_config(PASSWORDS, [ClientUser("dispatcher", "d" * 20, publish=["mesh.work.available.v1.>"])],
                                 hash_passwords=False)
    assert _users(config)["dispatcher"]["permissions"]["publish"]["allow"] == ["mesh.work.available.v1.>"]


@pytest.mark.skipif(not shutil.which("nats-server"), reason="nats-server (apt) not installed")
def test_rendered_config_passes_nats_server_check(tmp_path):
    path = tmp_path / "nats.conf"
    path.write_text(render_server_config(build_server_config(PASSWORDS, options=ServerOptions(port=4333))))
    result = subprocess.run(["nats-server", "-t", "-c", str(path)], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr


HW_5090 = {"schema": 1, "arch": "x86_64", "memory_mb": 65536, "node_class": "gpu", "accelerator": "nvidia",
           "gpus": [{"index": 0, "vendor": "nvidia", "name": "NVIDIA GeForce RTX 5090", "memory_total_mb": 32607}],
           "nvidia": {"driver_version": "575.57", "cuda_driver_version": "12.8", "source": "nvml"},
           "jetson": None, "npus": [], "ollama_library": "cuda_v12"}


def test_capabilities_in_seed_000_form():
    caps = node_capabilities(HW_5090)
    assert {"gpu:rtx5090", "vram:32gb", "cuda:12.8", "class:gpu"} <= set(caps)


def test_services_from_the_plan():
    plan_node = {"models": ["qwen2.5:32b"], "services": [{"name": "tts", "gpu_index": 0}]}
    assert node_services(plan_node, ["mesh-agent"]) == ["ollama", "tts", "mesh-agent"]
    assert node_services({"models": []}) == []


def test_agent_config_is_json_and_complete():
    config = agent_config("pmoves-5090", ["nats://10.77.0.1:4222"], "p" * 20, HW_5090,
                          {"models": ["qwen2.5:32b"], "services": []}, interval=10)
    assert json.loads(json.dumps(config)) == config
    assert config["subject_token"] == "pmoves-5090"
    assert config["services"] == ["ollama"] and config["models"] == ["qwen2.5:32b"]
    with pytest.raises(MeshConfigError):
        agent_config("n", ["nats://x:4222"], "p" * 20, None, None, interval=0)


@pytest.mark.parametrize(("pattern", "subject", "matches"), [
    ("mesh.>", "mesh.node.announce.v1", True),
    ("mesh.node.announce.v1.>", "mesh.node.announce.v1", False),
    ("mesh.node.announce.v1.>", "mesh.node.announce.v1.gpu-a", True),
    ("mesh.*.announce.v1", "mesh.node.announce.v1", True),
    ("mesh.node.announce.v1.*", "mesh.node.announce.v1", False),
    ("mesh.node.announce.v1", "mesh.node.announce.v1", True),
    ("mesh.node.announce", "mesh.node.announce.v1", False),
    (">", "mesh.gpu.status.v1", True),
])
def test_subject_patterns_match_as_nats_does(pattern, subject, matches):
    assert subject_matches(pattern, subject) is matches


def test_only_the_relay_may_publish_on_the_exact_seed_subjects():
    config = build_server_config(PASSWORDS, relay=RelayUser("r" * 24), hash_passwords=False)
    users = _users(config)
    relay = users[RELAY_USER]["permissions"]
    assert relay["publish"]["allow"] == list(SEED_SUBJECTS)
    assert relay["subscribe"]["allow"] == [f"{s}.*" for s in SEED_SUBJECTS]
    for name, user in users.items():
        if name != RELAY_USER:
            allowed = user["permissions"]["publish"]["allow"]
            assert not any(subject_matches(p, s) for p in allowed for s in SEED_SUBJECTS), name


@pytest.mark.parametrize("publish", [["mesh.>"], [ANNOUNCE], ["mesh.work.*.v1"], [">"]])
def test_a_client_that_could_publish_on_an_exact_seed_subject_is_refused(publish):
    with pytest.raises(MeshConfigError, match="only the hub's relay"):
        build_server_config(PASSWORDS, [ClientUser("producer", "p" * 20, publish=publish)], hash_passwords=False)


@pytest.mark.parametrize("name", [RELAY_USER, "gpu-a"])
def test_the_relay_user_name_is_its_own(name):
    clients = [ClientUser(RELAY_USER, "p" * 20)] if name == RELAY_USER else []
    with pytest.raises(MeshConfigError, match="relay"):
        build_server_config(PASSWORDS, clients, relay=RelayUser("r" * 24, name=name), hash_passwords=False)


def test_the_relay_password_is_explicit_or_derived_from_the_hub():
    derived = relay_password("h" * 24)
    assert derived == relay_password("h" * 24) and len(derived) == 64 and "h" * 24 not in derived
    assert derived != relay_password("i" * 24)
    assert relay_password("h" * 24, "mine-" + "m" * 16) == "mine-" + "m" * 16
    for hub, explicit in (("", None), ("short", None), ("h" * 24, "short")):
        with pytest.raises(MeshConfigError, match="16 characters"):
            relay_password(hub, explicit)
    assert mesh_relay_password("h" * 24, "") == derived
    with pytest.raises(AnsibleFilterError, match="relay"):
        mesh_relay_password("", "")


def test_relay_config_maps_tokens_to_nodes():
    config = relay_config(["jetson-1.lan", "gpu-a"], ["nats://10.77.0.1:4222"], "r" * 24, stats_interval=5)
    assert config["nodes"] == {"gpu-a": "gpu-a", "jetson-1_lan": "jetson-1.lan"}
    assert config["subjects"] == list(SEED_SUBJECTS)
    assert (config["user"], config["stats_interval"]) == (RELAY_USER, 5)
    assert json.loads(json.dumps(config)) == config
    assert mesh_relay_config(["gpu-a"], ["nats://x:4222"], "r" * 24) == relay_config(["gpu-a"], ["nats://x:4222"],
                                                                                     "r" * 24)
    with pytest.raises(MeshConfigError, match="same subject token"):
        relay_config(["a.b", "a_b"], ["nats://x:4222"], "r" * 24)
    with pytest.raises(AnsibleFilterError, match="16 characters"):
        mesh_relay_config(["gpu-a"], ["nats://x:4222"], "short")


def test_the_server_config_filter_adds_the_relay_only_when_asked():
    without = json.loads(nats_server_config_filter(PASSWORDS, hash_passwords=False))
    with_relay = json.loads(nats_server_config_filter(PASSWORDS, hash_passwords=False, relay_password="r" * 24))
    assert RELAY_USER not in _users(without)
    assert _users(with_relay)[RELAY_USER]["password"] == "r" * 24


@pytest.mark.skipif(not shutil.which("nats-server"), reason="nats-server (apt) not installed")
def test_config_with_the_relay_passes_nats_server_check(tmp_path):
    path = tmp_path / "nats.conf"
    path.write_text(render_server_config(build_server_config(PASSWORDS, options=ServerOptions(port=4333),
                                                             relay=RelayUser("r" * 24))))
    result = subprocess.run(["nats-server", "-t", "-c", str(path)], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not shutil.which("nats-server"), reason="nats-server (apt) not installed")
def test_nats_server_cannot_map_node_subjects_onto_the_exact_seed_subject(tmp_path):
    """Why the relay exists: a mapping that drops the node token is refused (checked on the installed server)."""
    path = tmp_path / "mapping.conf"
    path.write_text(json.dumps({"port": 4334, "mappings": {f"{ANNOUNCE}.*": ANNOUNCE}}))
    result = subprocess.run(["nats-server", "-t", "-c", str(path)], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode != 0 and "wildcard" in result.stderr + result.stdout
