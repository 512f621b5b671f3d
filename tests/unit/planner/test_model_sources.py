"""Models fetched once per fleet: which node pulls a model from the registry and which copy it from a peer."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import (
    FleetInputs,
    dumps_plan,
    model_sources,
    plan_fleet,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_view import node_plan, ollama_model_entries


def endpoint(address, network=False):
    return {"address": address, "network": network}


@pytest.mark.parametrize(("placed", "endpoints", "seed"), [
    # first by name among the holders with a reachable address
    (["c", "a", "b"], {"a": endpoint("10.0.0.1"), "b": endpoint("10.0.0.2"), "c": endpoint("10.0.0.3")}, "a"),
    # a holder whose Ollama already serves the network is preferred (its address is known to reach the fleet)
    (["a", "b", "c"], {"a": endpoint("10.0.0.1"), "b": endpoint("10.0.0.2", True), "c": endpoint("10.0.0.3", True)},
     "b"),
    # a LAN address before a public one (a rented cloud GPU would serve every copy over the internet)
    (["a", "b"], {"a": endpoint("209.170.80.132", True), "b": endpoint("192.168.1.20")}, "b"),
    (["a", "b"], {"a": endpoint("209.170.80.132"), "b": endpoint("100.111.115.92")}, "b"),  # CGNAT (Tailscale)
    (["a", "b"], {"a": endpoint("209.170.80.132"), "b": endpoint("209.170.80.133")}, "a"),  # all public: by name
    # loopback addresses cannot seed anyone
    (["a", "b"], {"a": endpoint("127.0.0.1"), "b": endpoint("10.0.0.2")}, "b"),
    (["a", "b"], {"a": endpoint("localhost"), "b": endpoint("gpu-b.lan")}, "b"),
])
def test_the_seed_is_chosen_deterministically(placed, endpoints, seed):
    models = {"m:latest": {"placed": placed}}
    sources, shares, seeds = model_sources(models, endpoints, FleetInputs())
    assert seeds == {"m:latest": seed}
    port = FleetInputs().model_share_port
    url = f"http://{endpoints[seed]['address']}:{port}"
    assert sources["m:latest"] == {h: {"kind": "peer", "node": seed, "url": url} for h in placed if h != seed}
    assert shares[seed] == {"serve": True, "models": ["m:latest"], "port": port,
                            "listen": endpoints[seed]["address"], "url": url}
    assert all(not shares[h]["serve"] and shares[h]["listen"] is None for h in endpoints if h != seed)
    # same inputs, same answer, whatever the order of the placement list
    again = model_sources({"m:latest": {"placed": list(reversed(placed))}}, dict(reversed(endpoints.items())),
                          FleetInputs())
    assert again == (sources, shares, seeds)


@pytest.mark.parametrize(("placed", "endpoints", "fleet"), [
    (["a"], {"a": endpoint("10.0.0.1")}, FleetInputs()),  # one holder: nothing to share
    (["a", "b"], {"a": endpoint("127.0.0.1"), "b": endpoint("::1")}, FleetInputs()),  # nobody reachable
    (["a", "b"], {"a": endpoint("10.0.0.1"), "b": endpoint("10.0.0.2")}, FleetInputs(model_share=False)),
])
def test_every_holder_pulls_when_no_peer_can_seed(placed, endpoints, fleet):
    sources, shares, seeds = model_sources({"m:latest": {"placed": placed}}, endpoints, fleet)
    assert seeds == {} and sources == {"m:latest": {}}
    assert not any(share["serve"] for share in shares.values())


def test_ipv6_share_url_and_custom_port():
    sources, shares, _seeds = model_sources({"m:latest": {"placed": ["a", "b"]}},
                                            {"a": endpoint("fd00::1"), "b": endpoint("fd00::2")},
                                            FleetInputs(model_share_port=8099))
    assert sources["m:latest"]["b"]["url"] == "http://[fd00::1]:8099"
    assert shares["a"]["url"] == "http://[fd00::1]:8099"


def _hosts(addresses):
    hardware = {"schema": 1, "arch": "x86_64", "memory_mb": 65536, "cpu": {"model": "x", "cores": 8},
                "node_class": "cpu", "accelerator": "none", "gpus": []}
    return [{"name": name, "groups": ["cpu_nodes"], "hardware": hardware,
             "vars": {"ansible_host": address} if address else {}} for name, address in addresses.items()]


def test_the_plan_carries_the_sources_and_stays_byte_identical():
    hosts = _hosts({"node-c": "10.0.0.3", "node-a": "10.0.0.1", "node-b": "10.0.0.2"})
    catalog = [{"name": "nomic-embed-text", "replicas": 3, "cpu_ok": True},
               {"name": "all-minilm", "replicas": 1, "cpu_ok": True}]
    plan = plan_fleet(hosts, catalog)
    assert dumps_plan(plan) == dumps_plan(plan_fleet(list(reversed(hosts)), catalog))
    model = plan["models"]["nomic-embed-text:latest"]
    assert sorted(model["placed"]) == ["node-a", "node-b", "node-c"] and model["seed"] == "node-a"
    assert plan["models"]["all-minilm:latest"]["seed"] is None
    by_host = {h: {m["name"]: m["source"] for m in plan["nodes"][h]["ollama"]["models"]} for h in plan["nodes"]}
    assert by_host["node-a"]["nomic-embed-text:latest"] == {"kind": "registry"}
    for host in ("node-b", "node-c"):
        assert by_host[host]["nomic-embed-text:latest"] == {"kind": "peer", "node": "node-a",
                                                            "url": "http://10.0.0.1:11435"}
    assert plan["nodes"]["node-a"]["ollama"]["model_share"]["serve"] is True
    assert plan["nodes"]["node-a"]["ollama"]["model_share"]["listen"] == "10.0.0.1"
    assert plan["nodes"]["node-b"]["ollama"]["model_share"]["serve"] is False
    # the role receives the source with each model entry
    entries = ollama_model_entries(node_plan(plan, "node-b")["ollama"]["models"])
    assert {e["name"]: e["source"]["kind"] for e in entries}["nomic-embed-text:latest"] == "peer"
    off = plan_fleet(hosts, catalog, fleet=FleetInputs(model_share=False))
    assert off["inputs_digest"] != plan["inputs_digest"]
    assert all(m["source"] == {"kind": "registry"} for n in off["nodes"].values() for m in n["ollama"]["models"])


def test_without_reachable_addresses_everyone_pulls():
    plan = plan_fleet(_hosts({"node-a": None, "node-b": "127.0.0.1"}),
                      [{"name": "nomic-embed-text", "replicas": 2, "cpu_ok": True}])
    # node-a's address is its inventory name, which peers may resolve: it seeds; node-b is loopback
    assert plan["models"]["nomic-embed-text:latest"]["seed"] == "node-a"
    plan = plan_fleet(_hosts({"node-a": "127.0.0.1", "node-b": "localhost"}),
                      [{"name": "nomic-embed-text", "replicas": 2, "cpu_ok": True}])
    assert plan["models"]["nomic-embed-text:latest"]["seed"] is None
    assert all(m["source"] == {"kind": "registry"} for n in plan["nodes"].values() for m in n["ollama"]["models"])


def test_node_plan_of_an_unknown_host_serves_no_share():
    assert node_plan({}, "ghost")["ollama"]["model_share"]["serve"] is False
