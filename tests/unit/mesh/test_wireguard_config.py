"""WireGuard address plan, peers per topology, wg-quick text without private keys."""

from __future__ import annotations

import base64

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.wireguard_config import (
    WireGuardConfigError,
    assign_addresses,
    build_node_config,
)


def key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


NODES = {
    "pmoves-vps-kvm2": {"public_key": key(1), "endpoint": "203.0.113.2:51820", "address": "10.77.0.1"},
    "pmoves-5090": {"public_key": key(2)},
    "pmoves-jetson-1": {"public_key": key(3)},
    "pmoves-vps-kvm4-1": {"public_key": key(4), "endpoint": "203.0.113.4:51820"},
}


def test_addresses_are_stable_when_a_node_is_added():
    before = assign_addresses(["a", "b", "c"], "10.77.0.0/24")
    after = assign_addresses(["a", "b", "c", "aa", "zz"], "10.77.0.0/24")
    assert {k: after[k] for k in before} == before
    assert len(set(after.values())) == 5


def test_fixed_addresses_are_kept_and_duplicates_refused():
    assert assign_addresses(["a"], "10.77.0.0/24", {"a": "10.77.0.9"}) == {"a": "10.77.0.9"}
    with pytest.raises(WireGuardConfigError, match="both have"):
        assign_addresses([], "10.77.0.0/24", {"a": "10.77.0.9", "b": "10.77.0.9"})
    with pytest.raises(WireGuardConfigError, match="not a host address"):
        assign_addresses([], "10.77.0.0/24", {"a": "10.78.0.9"})


def test_full_mesh_peers_everyone_reachable_with_keepalive_from_behind_nat():
    home = build_node_config("pmoves-5090", NODES, network="10.77.0.0/24")
    names = [p["name"] for p in home["peers"]]
    # home nodes without endpoints cannot reach each other directly; they reach the VPS nodes
    assert names == ["pmoves-vps-kvm2", "pmoves-vps-kvm4-1"]
    assert "PersistentKeepalive = 25" in home["config"]
    vps = build_node_config("pmoves-vps-kvm2", NODES, network="10.77.0.0/24")
    assert [p["name"] for p in vps["peers"]] == ["pmoves-5090", "pmoves-jetson-1", "pmoves-vps-kvm4-1"]
    assert all(p["allowed_ips"][0].endswith("/32") for p in vps["peers"])


def test_hub_and_spoke_through_the_exit_node():
    spoke = build_node_config("pmoves-5090", NODES, network="10.77.0.0/24", topology="hub", hub="pmoves-vps-kvm2")
    assert spoke["peers"] == [{"name": "pmoves-vps-kvm2", "public_key": key(1), "allowed_ips": ["10.77.0.0/24"],
                               "endpoint": "203.0.113.2:51820"}]
    hub = build_node_config("pmoves-vps-kvm2", NODES, network="10.77.0.0/24", topology="hub", hub="pmoves-vps-kvm2")
    assert hub["forward"] is True and len(hub["peers"]) == 3
    assert spoke["forward"] is False


def test_private_key_is_loaded_on_the_node_not_written_in_the_config():
    config = build_node_config("pmoves-5090", NODES, network="10.77.0.0/24",
                               private_key_path="/etc/wireguard/wg0.key")["config"]
    assert "PrivateKey" not in config
    assert "PostUp = wg set %i private-key /etc/wireguard/wg0.key" in config
    assert "[Interface]" in config and "Address = " in config


def test_missing_public_key_names_the_node():
    nodes = dict(NODES, **{"pmoves-jetson-2": {"public_key": ""}})
    with pytest.raises(WireGuardConfigError, match="pmoves-jetson-2"):
        build_node_config("pmoves-5090", nodes, network="10.77.0.0/24")


def test_hub_without_endpoint_is_refused():
    with pytest.raises(WireGuardConfigError, match="endpoint"):
        build_node_config("pmoves-5090", NODES, network="10.77.0.0/24", topology="hub", hub="pmoves-jetson-1")
