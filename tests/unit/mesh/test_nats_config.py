"""NATS mesh config: per-node subjects and permissions, hashed passwords, agent config."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.nats_config import (
    ANNOUNCE,
    SEED_SUBJECTS,
    ClientUser,
    MeshConfigError,
    ServerOptions,
    agent_config,
    bcrypt_hash,
    build_server_config,
    node_capabilities,
    node_permissions,
    node_services,
    render_server_config,
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
