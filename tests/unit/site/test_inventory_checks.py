"""Broken inventories are refused with a message naming the problem; good ones pass."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import inventory_checks as ic

GOOD_GROUPS = {
    "all": ["gpu-a", "gpu-b", "jetson", "vps"],
    "gpu_nodes": ["gpu-a", "gpu-b"],
    "edge_nodes": ["jetson"],
    "cpu_nodes": ["vps"],
    "gateway": ["vps"],
    "ungrouped": [],
}
GOOD_FLEET = {
    "pmoves_strategy": "balanced",
    "pmoves_models": [
        "nomic-embed-text",
        {"name": "llama3.2:1b", "replicas": 2, "pin": ["gpu-a"], "alias": "S-llama"},
        {"name": "qwen2.5:32b", "replicas": 1, "vram_mb": 21500, "context": 8192, "cpu_ok": False},
    ],
    "pmoves_services": [
        {"name": "whisper", "vram_mb": 4000, "primary": "gpu-b", "fallback": ["jetson"], "classes": ["gpu", "edge"]},
        {"name": "hirag-cpu", "vram_mb": 0, "gpu": False, "port": 8086},
    ],
}


def run(groups=None, fleet=None, hostvars=None):
    return ic.check_inventory(copy.deepcopy(groups or GOOD_GROUPS), hostvars or {}, copy.deepcopy(fleet or GOOD_FLEET))


def test_good_inventory_passes_and_classes_every_host():
    result = run()
    assert result.ok, result.errors
    assert result.classes == {"gpu-a": "gpu", "gpu-b": "gpu", "jetson": "edge", "vps": "cpu"}


def _with(**changes):
    fleet = copy.deepcopy(GOOD_FLEET)
    fleet.update(changes)
    return fleet


@pytest.mark.parametrize(("fleet", "expected"), [
    (_with(pmoves_strategy="fastest"), "pmoves_strategy is 'fastest'"),
    (_with(pmoves_models=[{"replicas": 2}]), "pmoves_models[0] has no name"),
    (_with(pmoves_models=[{"name": ""}]), "pmoves_models[0] has no name"),
    (_with(pmoves_models=[42]), "pmoves_models[0] must be a model name"),
    (_with(pmoves_models={"name": "x"}), "pmoves_models must be a list"),
    (_with(pmoves_models=[{"name": "a", "replicas": 0}]), "replicas must be an integer >= 1, got 0"),
    (_with(pmoves_models=[{"name": "a", "replicas": "two"}]), "replicas must be an integer >= 1, got 'two'"),
    (_with(pmoves_models=[{"name": "a", "replicas": True}]), "replicas must be an integer >= 1, got True"),
    (_with(pmoves_models=[{"name": "a", "pin": ["nohost"]}]), "pinned host 'nohost' is not in the inventory"),
    (_with(pmoves_models=[{"name": "a", "pin": "nohost"}]), "pinned host 'nohost' is not in the inventory"),
    (_with(pmoves_models=[{"name": "a", "pin": {"x": 1}}]), "pin must be a host name or a list"),
    (_with(pmoves_models=[{"name": "a", "vram_mb": -5}]), "vram_mb must be a positive integer"),
    (_with(pmoves_models=[{"name": "a", "cpu_ok": "yes"}]), "cpu_ok must be true or false"),
    (_with(pmoves_services=[{"vram_mb": 10}]), "pmoves_services[0] has no name"),
    (_with(pmoves_services=[{"name": "tts"}]), "vram_mb is required"),
    (_with(pmoves_services=[{"name": "tts", "vram_mb": "lots"}]), "vram_mb must be an integer >= 0, got 'lots'"),
    (_with(pmoves_services=[{"name": "tts", "vram_mb": 1, "primary": "ghost"}]), "primary host 'ghost'"),
    (_with(pmoves_services=[{"name": "tts", "vram_mb": 1, "fallback": ["gpu-a", "ghost"]}]), "fallback host 'ghost'"),
    (_with(pmoves_services=[{"name": "tts", "vram_mb": 1, "classes": ["gpu", "tpu"]}]), "unknown classes ['tpu']"),
    (_with(pmoves_services=[{"name": "tts", "vram_mb": 1, "port": 70000}]), "port must be an integer 1-65535"),
    (_with(pmoves_services="tts"), "pmoves_services must be a list"),
    (_with(pmoves_gateway_enabled="yes"), "pmoves_gateway_enabled must be true or false"),
    (_with(pmoves_default_node_class="tpu"), "pmoves_default_node_class is 'tpu'"),
])
def test_broken_catalogs_and_settings_are_refused(fleet, expected):
    result = run(fleet=fleet)
    assert not result.ok
    assert any(expected in error for error in result.errors), result.errors
    # The message the play fails with names the problem and says nothing was changed.
    message = ic.format_errors(result)
    assert expected in message and "nothing was changed" in message


def test_host_in_no_class_group_is_an_error_unless_a_default_is_set():
    groups = copy.deepcopy(GOOD_GROUPS)
    groups["all"].append("stray")
    result = run(groups=groups)
    assert any("host stray is in no node-class group" in e for e in result.errors)
    result = run(groups=groups, fleet=_with(pmoves_default_node_class="cpu"))
    assert result.ok, result.errors
    assert result.classes["stray"] == "cpu"
    assert any("stray" in w for w in result.warnings)


def test_host_in_two_class_groups_is_an_error():
    groups = copy.deepcopy(GOOD_GROUPS)
    groups["cpu_nodes"].append("gpu-a")
    result = run(groups=groups)
    assert any("host gpu-a is in 2 node-class groups (gpu_nodes, cpu_nodes)" in e for e in result.errors)


def test_gateway_enabled_needs_a_gateway_host():
    without = {k: v for k, v in GOOD_GROUPS.items() if k != "gateway"}
    assert run(groups=without).ok  # no gateway group declared: the gateway is off by default
    result = run(groups=without, fleet=_with(pmoves_gateway_enabled=True))
    assert any("no host in group 'gateway'" in e for e in result.errors)
    empty = dict(GOOD_GROUPS, gateway=[])
    assert any("no host in group 'gateway'" in e for e in run(groups=empty).errors)
    assert run(groups=empty, fleet=_with(pmoves_gateway_enabled=False)).ok


def test_empty_inventory_is_refused():
    result = ic.check_inventory({"all": [], "ungrouped": []}, {}, {})
    assert result.errors == ["the inventory has no hosts; pass one with -i inventories/<fleet>"]


@pytest.mark.parametrize(("hardware", "expected"), [
    ("gpu", "pmoves_hardware must be a mapping"),
    ({"node_class": "tpu"}, "node_class is 'tpu'"),
    ({"gpus": [{"name": "x", "memory_total_mb": "24GB"}]}, "gpus[0].memory_total_mb must be an integer"),
    ({"gpus": "rtx"}, "gpus must be a list"),
    ({"memory_mb": 1.5}, "memory_mb must be an integer"),
])
def test_declared_hardware_must_follow_contract_1(hardware, expected):
    result = run(hostvars={"gpu-a": {"pmoves_hardware": hardware}})
    assert any(e.startswith("host gpu-a: pmoves_hardware") and expected in e for e in result.errors), result.errors


def test_declared_class_disagreeing_with_group_is_a_warning():
    result = run(hostvars={"jetson": {"pmoves_hardware": {"node_class": "gpu", "gpus": []}}})
    assert result.ok
    assert any("jetson is in edge_nodes but its declared pmoves_hardware says node_class gpu" in w
               for w in result.warnings)


def test_repeats_are_warnings_not_errors():
    fleet = _with(pmoves_models=[{"name": "llama3"}, {"name": "llama3:latest"}],
                  pmoves_services=[{"name": "a", "vram_mb": 0, "model": "x"}, {"name": "a", "vram_mb": 1}])
    result = run(fleet=fleet)
    assert result.ok, result.errors
    text = " | ".join(result.warnings)
    assert "repeats pmoves_models[0]" in text
    assert "pmoves_services[1] (a) is listed more than once" in text


@pytest.mark.parametrize(("fleet", "expected"), [
    # A typo is an error naming the entry and listing the known keys (it used to be ignored with a warning).
    (_with(pmoves_models=[{"name": "llama3", "replica": 2}]),
     "pmoves_models[0] (llama3): unknown key 'replica' (known keys: name, replicas, pin,"),
    (_with(pmoves_services=[{"name": "tts", "vram_mb": 1, "imgae": "x"}]),
     "pmoves_services[0] (tts): unknown key 'imgae' (known keys: name, vram_mb,"),
    # Keys earlier releases accepted and nobody read are refused with the reason.
    (_with(pmoves_models=[{"name": "qwen2.5:32b", "quant": "q4_K_M"}]), "key 'quant' is not accepted: the quantisation"),
    (_with(pmoves_models=[{"name": "a", "tags": ["x"]}]), "key 'tags' is not accepted"),
    # Types of the keys the planner now reads.
    (_with(pmoves_models=[{"name": "a", "parallel": 0}]), "parallel must be a positive integer"),
    (_with(pmoves_models=[{"name": "a", "kv_cache_type": "q5"}]), "kv_cache_type must be one of f16, q8_0, q4_0"),
    (_with(pmoves_models=[{"name": "a", "kind": "llm"}]), "kind must be one of chat, code, vision"),
    (_with(pmoves_models=[{"name": "a", "params_b": "big"}]), "params_b must be a number"),
    (_with(pmoves_models=[{"name": "a", "keep_alive": "soon"}]), "keep_alive must be an Ollama duration"),
    (_with(pmoves_models=[{"name": "a", "aliases": "x y"}]), "alias 'x y' is not a valid Ollama name"),
    # Ollama's name grammar for names and aliases; the same rules for service names.
    (_with(pmoves_models=["qwen 2.5"]), "name is not a valid Ollama model name"),
    (_with(pmoves_models=[{"name": "../x"}]), "contains '..'"),
    (_with(pmoves_models=[{"name": "a", "alias": "S LOC"}]), "alias 'S LOC' is not a valid Ollama name"),
    (_with(pmoves_services=[{"name": "my service", "vram_mb": 0}]), "contains whitespace"),
    (_with(pmoves_services=[{"name": "a..b", "vram_mb": 0}]), "contains '..'"),
    (_with(pmoves_gpu_strategy="spread"), "pmoves_gpu_strategy is 'spread'"),
    (_with(pmoves_cpu_ram_share=3), "pmoves_cpu_ram_share must be a number between 0 and 1"),
])
def test_unknown_keys_types_and_names_are_errors(fleet, expected):
    result = run(fleet=fleet)
    assert any(expected in error for error in result.errors), result.errors


def test_a_remote_gateway_and_a_loopback_only_ollama_are_refused():
    """The gateway on vps uses the model nodes' Ollama: serve_network false or a loopback address is refused."""
    result = run(hostvars={"gpu-a": {"pmoves_ollama_serve_network": False}})
    assert any(e.startswith("host gpu-a: pmoves_ollama_serve_network is false, but its Ollama is used from other "
                            "hosts (vps (gateway))") for e in result.errors), result.errors
    result = run(hostvars={"jetson": {"ansible_host": "127.0.0.1"}})
    assert any(e.startswith("host jetson: its Ollama must serve other hosts (vps)") and "loopback" in e
               for e in result.errors), result.errors
    # No remote consumer: loopback is fine, and so is serve_network false.
    without = {k: v for k, v in GOOD_GROUPS.items() if k != "gateway"}
    assert run(groups=without, hostvars={"gpu-a": {"pmoves_ollama_serve_network": False,
                                                   "ansible_host": "127.0.0.1"}}).ok
    # The gateway on a model node itself needs nothing from that node's network.
    same = dict(GOOD_GROUPS, gateway=["gpu-a"])
    assert not any("gpu-a:" in e for e in run(groups=same, hostvars={"gpu-a": {"pmoves_ollama_serve_network": False}})
                   .errors)


def test_host_variables_are_typed():
    result = run(hostvars={"gpu-a": {"pmoves_ollama_serve_network": "yes", "pmoves_ollama_port": 0}})
    assert "host gpu-a: pmoves_ollama_serve_network must be true or false, got 'yes'" in result.errors
    assert any("host gpu-a: pmoves_ollama_port must be an integer 1-65535" in e for e in result.errors)


def test_integer_strings_from_extra_vars_are_accepted():
    assert run(fleet=_with(pmoves_models=[{"name": "a", "replicas": "2"}])).ok


def test_every_error_is_reported_at_once():
    fleet = _with(pmoves_strategy="x", pmoves_models=[{"replicas": 0}, {"name": "b", "replicas": -1}])
    assert len(run(fleet=fleet).errors) == 3


def test_strategies_match_the_planner():
    placement = pytest.importorskip("ansible_collections.pmoves.fleet.plugins.module_utils.placement")
    assert set(ic.STRATEGIES) == set(placement.STRATEGIES)


def _meshed(**extra):
    hostvars = {h: {"pmoves_wireguard_enabled": True, "pmoves_wireguard_topology": "hub",
                    "pmoves_wireguard_hub": "vps"} for h in GOOD_GROUPS["all"]}
    for host, values in extra.items():
        hostvars[host].update(values)
    return hostvars


@pytest.mark.parametrize(("hostvars", "expected"), [
    # seed 000's shape: hub and spoke through the exit node, which has a public endpoint
    (_meshed(vps={"pmoves_wireguard_endpoint": "vps.example.net:51820"}), None),
    (_meshed(), "host vps: it is the WireGuard hub of gpu-a but has no pmoves_wireguard_endpoint"),
    (_meshed(vps={"pmoves_wireguard_enabled": False, "pmoves_wireguard_endpoint": "203.0.113.7:51820"}),
     "host gpu-a: pmoves_wireguard_topology is hub but pmoves_wireguard_hub ('vps') is not a host with"),
    (_meshed(jetson={"pmoves_wireguard_topology": "star"}), "host jetson: pmoves_wireguard_topology must be mesh or hub"),
])
def test_a_wireguard_hub_topology_needs_a_member_hub_with_an_endpoint(hostvars, expected):
    result = run(hostvars=hostvars)
    if expected is None:
        assert result.ok, result.errors
    else:
        assert any(e.startswith(expected) for e in result.errors), result.errors
