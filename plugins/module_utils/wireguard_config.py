"""WireGuard mesh (seed 000): address plan, peers per node, wg-quick config text.

Pure functions, no I/O. Two topologies:

* ``mesh``: every node peers with every other node (``AllowedIPs`` = the peer's /32); nodes
  behind NAT (no ``endpoint``) are reached by the peers that have one, and keep their own
  NAT mapping open with ``PersistentKeepalive``;
* ``hub``: hub-and-spoke through the exit node (seed 000's ``pmoves-vps-kvm2``): spokes have
  one peer, the hub, with ``AllowedIPs`` = the whole mesh network; the hub has every spoke
  (/32) and forwards between them.

The private key is never in the rendered file: wg-quick loads it from a file that was
generated on the node (``PostUp = wg set %i private-key <path>``), so configs can be rendered
and diffed anywhere while private keys never leave their node.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOPOLOGIES = ("mesh", "hub")
_KEY = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")  # 32 bytes, base64
_IFACE = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")


class WireGuardConfigError(ValueError):
    """Inputs that would give a broken tunnel (message says what to fix)."""


@dataclass(frozen=True)
class WgNode:
    name: str
    address: str  # mesh IP of the node, no prefix ("10.77.0.2")
    public_key: str
    endpoint: str | None = None  # "203.0.113.7:51820" when reachable from the others
    listen_port: int = 51820


@dataclass(frozen=True)
class WgPeer:
    name: str
    public_key: str
    allowed_ips: tuple[str, ...]
    endpoint: str | None
    keepalive: int | None


def valid_public_key(key: str) -> bool:
    return bool(_KEY.match(key or ""))


def _address_slot(name: str, hosts: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % hosts


def assign_addresses(names: Sequence[str], network: str, fixed: Mapping[str, str] | None = None,
                     previous: Mapping[str, str] | None = None) -> dict[str, str]:
    """A mesh address per node: ``fixed`` ones as given, then ``previous`` ones kept, the others by a hash.

    Depends only on the whole membership (the inventory's WireGuard members, never the hosts of a
    ``--limit``ed play) and on ``previous`` (the address plan of the last plan.json): an address once
    given stays with its node while the node is a member and nothing fixed claims it, so adding a
    node whose hash collides with an existing one never renumbers that one; the newcomer probes on
    (linear probing from its hash slot). Give addresses explicitly in the inventory for full control.
    """
    net = ipaddress.ip_network(network, strict=True)
    if net.version != 4:
        raise WireGuardConfigError(f"mesh network {network}: only IPv4 address plans are generated")
    hosts = net.num_addresses - 2
    fixed = dict(fixed or {})
    members = set(names) | set(fixed)
    taken: dict[str, str] = {}
    result: dict[str, str] = {}
    for name, address in sorted(fixed.items()):
        ip = ipaddress.ip_address(address)
        if ip not in net or ip in (net.network_address, net.broadcast_address):
            raise WireGuardConfigError(f"{name}: address {address} is not a host address of {network}")
        if str(ip) in taken:
            raise WireGuardConfigError(f"{name} and {taken[str(ip)]} both have mesh address {ip}")
        taken[str(ip)] = name
        result[name] = str(ip)
    for name, address in sorted((previous or {}).items()):
        if name not in members or name in result:
            continue
        try:
            ip = ipaddress.ip_address(str(address).split("/", 1)[0])
        except ValueError:
            continue  # a damaged previous plan: the node gets a fresh address below
        if ip not in net or ip in (net.network_address, net.broadcast_address) or str(ip) in taken:
            continue
        taken[str(ip)] = name
        result[name] = str(ip)
    for name in sorted(members - set(result)):
        if len(taken) >= hosts:
            raise WireGuardConfigError(f"mesh network {network} has no free address left for {name}")
        slot = _address_slot(name, hosts)
        while True:
            ip = str(net.network_address + 1 + slot)
            if ip not in taken:
                break
            slot = (slot + 1) % hosts
        taken[ip] = name
        result[name] = ip
    return dict(sorted(result.items()))


def mesh_public_keys(members: Sequence[str], reported: Mapping[str, Any],
                     known: Mapping[str, Any] | None = None) -> tuple[dict[str, str], list[str]]:
    """Public key of every mesh member and the members without one: ``(keys, missing)``.

    ``reported``: keys the nodes of this run read from their key files; ``known``: keys kept from
    earlier runs (the controller's cache). A key a node reports wins over a remembered one (a node
    that was rebuilt has a new key). A member in neither - never run, or failed before its key was
    read - is in ``missing``: the caller fails closed naming it instead of leaving it out of the mesh.
    """
    keys: dict[str, str] = {}
    missing: list[str] = []
    for name in sorted(set(members)):
        for source in (reported, known or {}):
            key = str(source.get(name) or "")
            if valid_public_key(key):
                keys[name] = key
                break
        else:
            missing.append(name)
    return keys, missing


def peers_for(name: str, nodes: Mapping[str, WgNode], topology: str, network: str, hub: str | None = None,
              keepalive: int = 25) -> list[WgPeer]:
    """The ``[Peer]`` sections of ``name``'s config."""
    if topology not in TOPOLOGIES:
        raise WireGuardConfigError(f"topology {topology!r} is not one of {TOPOLOGIES}")
    if name not in nodes:
        raise WireGuardConfigError(f"{name} is not a mesh node")
    me = nodes[name]
    for node in nodes.values():
        if not valid_public_key(node.public_key):
            raise WireGuardConfigError(f"{node.name}: public key {node.public_key!r} is not a WireGuard key "
                                       "(run the play on that node first so its key is generated)")
    if topology == "hub":
        if not hub or hub not in nodes:
            raise WireGuardConfigError(f"hub-and-spoke needs a hub that is a mesh node, got {hub!r}")
        if not nodes[hub].endpoint:
            raise WireGuardConfigError(f"hub {hub} needs an endpoint (public address:port) the spokes can reach")
        if name != hub:
            target = nodes[hub]
            return [WgPeer(target.name, target.public_key, (network,), target.endpoint, keepalive)]
        candidates = [n for n in nodes.values() if n.name != hub]
    else:
        candidates = [n for n in nodes.values() if n.name != name]
    peers = []
    for peer in sorted(candidates, key=lambda n: n.name):
        if topology == "mesh" and not peer.endpoint and not me.endpoint:
            continue  # neither side can reach the other: no tunnel possible, route through one with an endpoint
        # keepalive from the side that is behind NAT (has no endpoint) keeps its mapping open
        peers.append(WgPeer(peer.name, peer.public_key, (f"{peer.address}/32",), peer.endpoint,
                            keepalive if not me.endpoint else None))
    return peers


def render_wg_quick(node: WgNode, peers: Sequence[WgPeer], prefix: int, private_key_path: str,
                    mtu: int | None = None, header: str = "") -> str:
    """wg-quick config text; the private key is loaded from ``private_key_path`` by PostUp."""
    if not private_key_path.startswith("/"):
        raise WireGuardConfigError("private_key_path must be absolute")
    lines = [header.rstrip("\n")] if header else []
    lines += ["[Interface]", f"# {node.name}", f"Address = {node.address}/{prefix}",
              f"ListenPort = {node.listen_port}"]
    if mtu:
        lines.append(f"MTU = {mtu}")
    lines.append(f"PostUp = wg set %i private-key {private_key_path}")
    for peer in peers:
        lines += ["", "[Peer]", f"# {peer.name}", f"PublicKey = {peer.public_key}",
                  f"AllowedIPs = {', '.join(peer.allowed_ips)}"]
        if peer.endpoint:
            lines.append(f"Endpoint = {peer.endpoint}")
        if peer.keepalive:
            lines.append(f"PersistentKeepalive = {peer.keepalive}")
    return "\n".join(lines) + "\n"


def build_node_config(name: str, inventory: Mapping[str, Mapping[str, Any]], *, network: str, topology: str = "mesh",
                      hub: str | None = None, keepalive: int = 25, private_key_path: str = "/etc/wireguard/wg0.key",
                      mtu: int | None = None, header: str = "") -> dict[str, Any]:
    """Everything the role needs for one node from per-host data.

    ``inventory``: host -> ``{public_key, address?, endpoint?, listen_port?}``. Returns
    ``{address, prefix, peers: [...], config: <wg-quick text>, forward: bool}``.
    """
    net = ipaddress.ip_network(network, strict=True)
    fixed = {h: str(v["address"]).split("/", maxsplit=1)[0] for h, v in inventory.items() if v.get("address")}
    addresses = assign_addresses(list(inventory), network, fixed)
    nodes = {h: WgNode(name=h, address=addresses[h], public_key=str(v.get("public_key") or ""),
                       endpoint=v.get("endpoint") or None, listen_port=int(v.get("listen_port") or 51820))
             for h, v in inventory.items()}
    peers = peers_for(name, nodes, topology, network, hub=hub, keepalive=keepalive)
    config = render_wg_quick(nodes[name], peers, net.prefixlen, private_key_path, mtu=mtu, header=header)
    return {"address": nodes[name].address, "prefix": net.prefixlen, "config": config,
            "peers": [{"name": p.name, "public_key": p.public_key, "allowed_ips": list(p.allowed_ips),
                       "endpoint": p.endpoint} for p in peers],
            "forward": topology == "hub" and name == hub}


def check_interface_name(name: str) -> str:
    if not _IFACE.match(name):
        raise WireGuardConfigError(f"interface name {name!r}: 1-15 characters of a-z A-Z 0-9 _ = + . -")
    return name
