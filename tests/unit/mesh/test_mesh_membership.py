"""Fleet-wide membership under --limit and failures (issue 18): addresses, public keys, NATS users.

The mesh is built from the inventory's members and the last plan, never from the hosts a play runs
on; these tests drive the pure functions with every --limit subset of a small fleet and with names
whose hash slots collide.
"""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_endpoints import wireguard_addresses
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import plan_fleet
from ansible_collections.pmoves.fleet.plugins.module_utils.wireguard_config import (
    assign_addresses,
    build_node_config,
    mesh_public_keys,
)

NET = "10.77.0.0/24"


def key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


def slot(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % 254


def test_the_names_used_below_really_collide():
    # node07 and node09 hash to the same slot; node07 sorts first.
    assert slot("node07") == slot("node09")
    assert sorted(["node09", "node07"])[0] == "node07"


def members(*names: str, **extra) -> list[dict]:
    return [{"name": n, "groups": ["cpu_nodes"], "vars": {"pmoves_wireguard_enabled": True, **extra.get(n, {})},
             "hardware": {"schema": 1, "arch": "x86_64", "memory_mb": 8192, "cpu": {"model": "x", "cores": 4},
                          "node_class": "cpu", "accelerator": "none", "gpus": [], "ollama_library": "cpu"}}
            for n in names]


def test_a_colliding_newcomer_never_renumbers_an_existing_member():
    before = assign_addresses(["hub", "node09"], NET)
    # Without the previous plan, node07 (sorts first, same slot) would take node09's address.
    assert assign_addresses(["hub", "node07", "node09"], NET)["node07"] == before["node09"]
    after = assign_addresses(["hub", "node07", "node09"], NET, previous=before)
    assert {name: after[name] for name in before} == before
    assert len(set(after.values())) == 3


def test_the_planner_keeps_the_previous_plans_addresses():
    first = plan_fleet(members("hub", "node09"), [])
    second = plan_fleet(members("hub", "node07", "node09"), [], previous=first)
    old, new = first["fleet"]["wireguard"]["addresses"], second["fleet"]["wireguard"]["addresses"]
    assert {h: new[h] for h in old} == old
    assert len(set(new.values())) == 3
    # another mesh network: nothing to keep, the plan starts afresh in it
    third = plan_fleet(members("hub", "node09"), [], previous={"fleet": {"wireguard": {
        "network": "10.99.0.0/24", "addresses": {"hub": "10.99.0.3"}}}})
    assert third["fleet"]["wireguard"]["addresses"] == old


def test_fixed_addresses_win_over_previous_ones_and_the_loser_moves():
    out = assign_addresses(["a", "b"], NET, fixed={"a": "10.77.0.10"}, previous={"b": "10.77.0.10", "a": "10.77.0.3"})
    assert out["a"] == "10.77.0.10" and out["b"] != "10.77.0.10"


@pytest.mark.parametrize("previous", [{"gone": "10.77.0.5"}, {"a": "garbage"}, {"a": "10.99.0.4"}, {"a": "10.77.0.0"}])
def test_stale_or_damaged_previous_entries_are_ignored(previous):
    out = assign_addresses(["a", "b"], NET, previous=previous)
    assert out == assign_addresses(["a", "b"], NET)


FLEET = ["hub", "node07", "node09", "node23", "node32"]


@pytest.mark.parametrize("limit", [list(c) for r in (1, 2, 4) for c in itertools.combinations(FLEET, r)])
def test_every_limit_subset_renders_the_same_configs(limit):
    """The role renders from the plan's members and addresses: the limit does not enter."""
    addresses = wireguard_addresses(members(*FLEET), NET)
    keys = {h: key(i + 1) for i, h in enumerate(FLEET)}
    full = {h: build_node_config(h, {m: {"public_key": keys[m], "address": addresses[m], "endpoint": "192.0.2.1:51820"}
                                     for m in FLEET}, network=NET)["config"] for h in FLEET}
    # a limited run: only the limited hosts report keys this run; the others come from the cache
    reported = {h: keys[h] for h in limit}
    known = {h: keys[h] for h in FLEET if h not in limit}
    got, missing = mesh_public_keys(FLEET, reported, known)
    assert missing == []
    for host in limit:
        peers = {m: {"public_key": got[m], "address": addresses[m], "endpoint": "192.0.2.1:51820"} for m in FLEET}
        config = build_node_config(host, peers, network=NET)
        assert config["config"] == full[host]
        assert config["config"].count("[Peer]") == len(FLEET) - 1
    assert len(set(addresses.values())) == len(FLEET)


def test_a_member_without_a_key_is_named_not_dropped():
    keys, missing = mesh_public_keys(["a", "b", "c"], {"a": key(1)}, {"b": "not-a-key"})
    assert keys == {"a": key(1)}
    assert missing == ["b", "c"]


def test_a_reported_key_wins_over_a_remembered_one():
    keys, missing = mesh_public_keys(["a"], {"a": key(2)}, {"a": key(1)})
    assert (keys, missing) == ({"a": key(2)}, [])
    keys, _missing = mesh_public_keys(["a"], {"a": ""}, {"a": key(1)})
    assert keys == {"a": key(1)}
