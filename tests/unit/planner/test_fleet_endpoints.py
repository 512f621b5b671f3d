"""Where each node's Ollama listens, decided once (fleet_endpoints), and the hand-over views (plan_view)."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import fleet_endpoints as fe
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_view import (
    fleet_view,
    keeps_all_loaded,
    node_plan,
    ollama_model_entries,
)


def hosts(**vars_by_host):
    return [{"name": name, "vars": host_vars} for name, host_vars in vars_by_host.items()]


def decide(records, holders=("gpu",), gateway=("vps",), users=None, wireguard=None, runs=None):
    return fe.decide(records, set(runs or holders), set(holders), list(gateway), users, wireguard=wireguard or {})


def test_loopback_without_a_remote_user():
    out, errors = decide(hosts(gpu={"ansible_host": "10.0.0.2"}, vps={}), gateway=())
    assert not errors
    assert out["gpu"] == {**out["gpu"], "network": False, "listen": "127.0.0.1", "url": "http://127.0.0.1:11434",
                          "local_url": "http://127.0.0.1:11434", "consumers": [], "client_url": "http://127.0.0.1:11434"}


def test_gateway_on_another_host_makes_it_serve_at_the_reach_address_in_order():
    wg = {"gpu": "10.77.0.5"}
    for host_vars, wireguard, address, source in [
        ({"ansible_host": "192.0.2.1"}, {}, "192.0.2.1", "ansible_host"),
        ({"ansible_host": "192.0.2.1", "pmoves_mesh_address": "100.64.0.2"}, {}, "100.64.0.2", "pmoves_mesh_address"),
        ({"pmoves_mesh_address": "100.64.0.2", "pmoves_listen_address": "10.1.0.2"}, {}, "10.1.0.2",
         "pmoves_listen_address"),
        ({"pmoves_listen_address": "10.1.0.2"}, wg, "10.77.0.5", "wireguard"),
        ({}, {}, "gpu", "inventory_hostname"),
    ]:
        out, errors = decide(hosts(gpu=host_vars, vps={}), wireguard=wireguard)
        assert not errors
        node = out["gpu"]
        assert (node["network"], node["listen"], node["address_source"]) == (True, address, source)
        assert node["url"] == node["local_url"] == f"http://{address}:11434"
        assert node["consumers"] == ["vps"]


def test_bind_all_only_when_asked_and_serve_network_true_without_a_consumer():
    out, _errors = decide(hosts(gpu={"pmoves_ollama_bind_all": True, "ansible_host": "10.0.0.2"}), gateway=())
    assert (out["gpu"]["listen"], out["gpu"]["url"], out["gpu"]["local_url"]) == (
        "0.0.0.0", "http://10.0.0.2:11434", "http://127.0.0.1:11434")
    out, _errors = decide(hosts(gpu={"pmoves_ollama_serve_network": True, "ansible_host": "10.0.0.2"}), gateway=())
    assert out["gpu"]["network"] and out["gpu"]["listen"] == "10.0.0.2"


def test_contradictions_are_errors_with_the_reason():
    _out, errors = decide(hosts(gpu={"pmoves_ollama_serve_network": False}, vps={}))
    assert errors == ["host gpu: pmoves_ollama_serve_network is false, but its Ollama is used from other hosts "
                      "(vps (gateway)); remove the setting (the plan then serves the network for them) or move what "
                      "uses it"]
    for address in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        _out, errors = decide(hosts(gpu={"ansible_host": address}, vps={}))
        assert len(errors) == 1 and "is loopback" in errors[0] and "pmoves_listen_address" in errors[0], address


def test_a_uses_ollama_service_on_a_node_without_models_makes_the_first_holder_serve_it():
    out, errors = decide(hosts(a={"ansible_host": "10.0.0.2"}, b={"ansible_host": "10.0.0.3"}, cpu={}),
                         holders=("b", "a"), gateway=(), users={"cpu": ["rag"]})
    assert not errors
    assert out["a"]["consumers"] == ["cpu"] and out["a"]["network"] and not out["b"]["network"]
    assert out["cpu"]["client_url"] == "http://10.0.0.2:11434"
    # Without such a service nothing serves the network, and the node's clients get no unreachable URL.
    out, _errors = decide(hosts(a={"ansible_host": "10.0.0.2"}, cpu={}), holders=("a",), gateway=())
    assert out["cpu"]["client_url"] is None


def test_ipv6_addresses_and_ports():
    out, _errors = decide(hosts(gpu={"pmoves_listen_address": "fd00::2", "pmoves_ollama_port": 11500}, vps={}))
    assert out["gpu"]["url"] == "http://[fd00::2]:11500" and out["gpu"]["listen"] == "fd00::2"


def test_wireguard_members_and_addresses_follow_the_role():
    records = [{"name": "a", "vars": {"pmoves_wireguard_enabled": True}},
               {"name": "b", "vars": {"pmoves_wireguard_enabled": True, "pmoves_wireguard_address": "10.77.0.7/24"}},
               {"name": "c", "vars": {}}]
    addresses = fe.wireguard_addresses(records, "10.77.0.0/24")
    assert sorted(addresses) == ["a", "b"] and addresses["b"] == "10.77.0.7"
    with pytest.raises(ValueError, match="WireGuard address plan"):
        fe.wireguard_addresses([{"name": "a", "vars": {"pmoves_wireguard_enabled": True,
                                                       "pmoves_wireguard_address": "192.168.0.1"}}], "10.77.0.0/24")


def test_node_plan_completes_hosts_the_plan_does_not_know():
    plan = {"fleet": {"groups": {"edge_nodes": ["jet"]}, "ollama_port": 11500}, "nodes": {}}
    node = node_plan(plan, "jet")
    assert node["class"] == "edge" and not node["planned"] and node["models"] == []
    assert node["ollama"]["runs"] and node["ollama"]["listen"] == "127.0.0.1"
    assert node["ollama"]["local_url"] == "http://127.0.0.1:11500"
    assert node_plan({}, "pi", ["cpu_nodes"])["ollama"]["runs"] is False


def test_fleet_view_is_compact_and_complete_for_the_roles():
    plan = {"inputs_digest": "d", "strategy": "spread", "gpu_strategy": "vram_based",
            "fleet": {"hosts": ["a", "b"], "groups": {"gateway": ["b"]}, "gateway": {"enabled": True, "hosts": ["b"]}},
            "models": {"m:latest": {"placed": ["a"], "aliases": ["x:latest"], "alias": "X", "kind": "chat", "why": {},
                                    "resident": False, "vram_by_host": {"a": 4200}}},
            "nodes": {"a": {"class": "gpu", "models": ["m:latest"], "services": [{"name": "s"}],
                            "ollama": {"address": "10.0.0.2", "url": "http://10.0.0.2:11434", "network": True}}}}
    view = fleet_view(plan)
    # the gateway needs resident/vram_by_host to probe an on-demand model through a resident one (issue 18)
    assert view["models"] == {"m:latest": {"placed": ["a"], "aliases": ["x:latest"], "kind": "chat", "alias": "X",
                                           "resident": False, "loaded_on": ["a"], "vram_by_host": {"a": 4200}}}
    # a plan written before models were loaded on demand had every model loaded
    del plan["models"]["m:latest"]["resident"]
    assert fleet_view(plan)["models"]["m:latest"]["resident"] is True
    assert view["nodes"]["a"]["services"] == ["s"] and view["addresses"] == {"a": "10.0.0.2"}
    assert view["gateway"]["hosts"] == ["b"] and view["hosts"] == ["a", "b"] and view["inputs_digest"] == "d"


def test_the_ollama_role_model_list_is_normalised_once():
    entries = ollama_model_entries(["TinyLlama", {"name": "ollama.com/library/Qwen2.5:0.5B", "alias": "Q",
                                                  "aliases": ["q", "qwen2.5:0.5b"], "keep_alive": "10m"},
                                    "tinyllama:latest"])
    assert entries == [{"name": "tinyllama:latest", "aliases": []},
                       {"name": "qwen2.5:0.5b", "aliases": ["q:latest"], "keep_alive": "10m"}]


@pytest.mark.parametrize(("node", "expected"), [
    ({"on_demand": ["a", "b"], "max_loaded": 3, "peak_mb": 9000, "vram_total_mb": 24000}, True),
    ({"on_demand": ["a", "b"], "max_loaded": 1, "peak_mb": 9000, "vram_total_mb": 24000}, False),  # a Jetson
    ({"on_demand": ["a", "b"], "max_loaded": 3, "peak_mb": 71767, "vram_total_mb": 32095}, False),  # over its VRAM
    ({"on_demand": [], "max_loaded": 1, "peak_mb": 0, "vram_total_mb": 0}, True),
    ({}, True),  # a plan written before models were loaded on demand
], ids=["fits", "max-loaded", "peak-over-vram", "nothing-on-demand", "old-plan"])
def test_a_node_keeps_all_its_models_loaded_only_when_they_fit_at_once(node, expected):
    assert keeps_all_loaded(node) is expected
    plan = {"models": {"a": {"placed": ["n"], "resident": False}}, "nodes": {"n": node}}
    assert fleet_view(plan)["models"]["a"]["loaded_on"] == (["n"] if expected else [])
