"""Env rendering precedence and validation, and render errors users act on."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import RenderError, render_project
from ansible_collections.pmoves.fleet.plugins.module_utils.node_env import EnvError, env_file_text, render_node_env
from conftest import load_fleet

FLEET = load_fleet("pmoves")


def env_for(host, **kwargs):
    return render_node_env(host, FLEET["plan"], FLEET["catalog"], FLEET["hardware"][host],
                           addresses=FLEET["addresses"], **kwargs)


def test_values_come_from_facts_and_plan_not_from_hand_typed_tables():
    env = env_for("pmoves-5090")
    assert env["TORCH_CUDA_ARCH_LIST"] == "12.0" and env["GPU_TYPE"] == "rtx-5090" and env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["WHISPER_URL"] == "http://10.8.0.11:8078"  # catalog primary (3090ti) holds it
    assert env["TTS_STUDIO_URL"] == "http://127.0.0.1:7860"  # this node runs it
    # on the WireGuard mesh the node's compose services publish on its mesh address, not on loopback
    assert env_for("pmoves-5090", local_address="10.8.0.12")["TTS_STUDIO_URL"] == "http://10.8.0.12:7860"
    assert env_for("pmoves-5090", local_address="0.0.0.0")["TTS_STUDIO_URL"] == "http://127.0.0.1:7860"
    jetson = env_for("pmoves-jetson-1")
    assert (jetson["JETSON_JETPACK_VERSION"], jetson["L4T_VERSION"], jetson["OLLAMA_LLM_LIBRARY"]) == \
        ("6.2.1", "36.4.4", "cuda_jetpack6")
    assert env_for("pmoves-vps-kvm4-2")["OLLAMA_HOST"] == "http://10.8.0.10:11434"  # no models: first holder


def test_precedence_class_defaults_then_derived_then_overrides():
    env = env_for("pmoves-vps-kvm4-1", class_env={"cpu": {"TENSORZERO_MODEL_DEFAULT": "openai::x", "EXTRA": "1"}},
                  overrides={"EXTRA": "2", "GPU_TYPE": None})
    assert env["TENSORZERO_MODEL_DEFAULT"] == "openai::x" and env["EXTRA"] == "2" and "GPU_TYPE" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.parametrize("bad", [{"BAD-NAME": "x"}, {"OK": "two\nlines"}, {"OK": {"a": 1}}])
def test_invalid_env_is_refused(bad):
    with pytest.raises(EnvError):
        env_for("pmoves-5090", overrides=bad)


def test_env_file_text_is_plain_key_value_with_header():
    assert env_file_text({"A": "1", "B": ""}, "hdr") == "# hdr\nA=1\nB=\n"


def node(services):
    return {"class": "gpu", "services": services}


def test_render_errors_name_the_problem():
    hw = FLEET["hardware"]["pmoves-5090"]
    with pytest.raises(RenderError, match="no such entry"):
        render_project("h", node([{"name": "nope", "gpu_index": 0}]), FLEET["catalog"], hw)
    with pytest.raises(RenderError, match=r"GPU 3, but the host has GPU indices \[0\]"):
        render_project("h", node([{"name": "vllm", "gpu_index": 3}]), FLEET["catalog"], hw)
    cyc = [{"name": "a", "vram_mb": 0, "gpu": False, "image": "x", "depends_on": ["b"]},
           {"name": "b", "vram_mb": 0, "gpu": False, "image": "x", "depends_on": ["a"]}]
    with pytest.raises(RenderError, match="cycle"):
        render_project("h", node([{"name": "a"}, {"name": "b"}]), cyc, hw)
    jetson_no_l4t = {**FLEET["hardware"]["pmoves-jetson-1"], "jetson": {"l4t": None}}
    with pytest.raises(RenderError, match="needs facts"):
        render_project("h", {"class": "edge", "services": [{"name": "c"}]},
                       [{"name": "c", "vram_mb": 0, "gpu": False}], jetson_no_l4t)


def test_gpu_service_on_a_host_without_gpu_runs_without_and_says_so():
    project = render_project("vps", {"class": "cpu", "services": [{"name": "vllm", "gpu_index": 0}]}, FLEET["catalog"],
                             FLEET["hardware"]["pmoves-vps-kvm4-1"])
    assert project.gpu_override is None and "runs without" in project.warnings[0]
