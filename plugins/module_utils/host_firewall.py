"""Host firewall (nftables) of a fleet node, independent of WireGuard: our ports, mesh and fleet only.

Pure functions, no I/O. The ruleset is one table of its own (``inet pmoves_guard``) so other
rulesets on the host (Docker's, ufw's, an operator's) are left alone, and re-applying replaces just
this table. Policy ``accept`` for everything else: the guard only drops OUR ports (Ollama, NATS,
gateway, exporters, Prometheus, compose services), derived from the roles' variables, when they
arrive on an interface that is not trusted (loopback, the WireGuard interface) from a source that is
not a fleet member's address.

Published container ports are DNAT-ed in prerouting and never reach the input hook; the ``forward``
chain matches them by their original destination port (``ct original proto-dst``), which covers
what Docker's ``DOCKER-USER`` chain is for without touching Docker's own chains (a drop in any base
chain of a hook is final in nftables).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

TABLE = "pmoves_guard"
_IFACE = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")


class FirewallError(ValueError):
    """Inputs that would give a broken or an open ruleset (the message names the entry)."""


def firewall_ports(values: Iterable[Any]) -> list[int]:
    """Sorted unique TCP ports from the roles' port variables (None/''/0 entries are features that are off)."""
    ports: set[int] = set()
    for raw in values:
        if raw in (None, "", 0, "0"):
            continue
        try:
            port = int(raw)
        except (TypeError, ValueError):
            raise FirewallError(f"port {raw!r} is not a number") from None
        if not 0 < port < 65536:
            raise FirewallError(f"port {port} is outside 1-65535")
        ports.add(port)
    return sorted(ports)


def trusted_sources(addresses: Iterable[Any]) -> tuple[list[str], list[str], list[str]]:
    """(IPv4 networks, IPv6 networks, entries that are names) from fleet addresses and allowed CIDRs.

    Names (an inventory name used as address) cannot be matched by a packet filter; the caller warns.
    Loopback and unspecified addresses (0.0.0.0) are refused: they would trust everything or nothing.
    """
    v4: set[str] = set()
    v6: set[str] = set()
    names: set[str] = set()
    for raw in addresses:
        text = str(raw or "").strip().strip("[]")
        if not text:
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            names.add(text)
            continue
        if net.network_address.is_unspecified and net.prefixlen == 0:
            raise FirewallError(f"trusted source {raw!r} would trust every address; list the fleet's networks")
        (v4 if net.version == 4 else v6).add(str(net))
    return sorted(v4, key=_net_key), sorted(v6, key=_net_key), sorted(names)


def _net_key(text: str) -> tuple[int, int]:
    net = ipaddress.ip_network(text)
    return int(net.network_address), net.prefixlen


def render_ruleset(ports: list[int], interfaces: Iterable[str], sources_v4: list[str], sources_v6: list[str],
                   header: str = "") -> str:
    """nft -f text of the guard table (delete + create, so it is idempotent)."""
    trusted = ["lo"] + [i for i in dict.fromkeys(interfaces) if i and i != "lo"]
    for name in trusted:
        if not _IFACE.match(name):
            raise FirewallError(f"interface name {name!r}: 1-15 characters of a-z A-Z 0-9 _ = + . -")
    lines = ["#!/usr/sbin/nft -f"]
    if header:
        lines.append(header.rstrip("\n"))
    lines += [
        "# Our ports (Ollama, NATS, gateway, exporters, Prometheus, compose services) reach this node only",
        "# through loopback, the mesh interface or from the fleet's addresses; everything else is left alone.",
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        "",
        f"table inet {TABLE} {{",
    ]
    if not ports:
        lines += ["}"]
        return "\n".join(lines) + "\n"
    port_set = ", ".join(str(p) for p in ports)
    iface_set = ", ".join(f'"{i}"' for i in trusted)
    lines += [f"  set ports {{ type inet_service; elements = {{ {port_set} }}; }}"]
    if sources_v4:
        lines += [f"  set fleet4 {{ type ipv4_addr; flags interval; elements = {{ {', '.join(sources_v4)} }}; }}"]
    if sources_v6:
        lines += [f"  set fleet6 {{ type ipv6_addr; flags interval; elements = {{ {', '.join(sources_v6)} }}; }}"]
    for chain, hook, match in (("input", "input", "tcp dport @ports"),
                               ("forward", "forward", "meta l4proto tcp ct status dnat ct original proto-dst @ports")):
        lines += ["", f"  chain {chain} {{",
                  f"    type filter hook {hook} priority filter - 1; policy accept;",
                  f"    iifname {{ {iface_set} }} accept"]
        if sources_v4:
            lines.append("    ip saddr @fleet4 accept")
        if sources_v6:
            lines.append("    ip6 saddr @fleet6 accept")
        lines += [f"    {match} counter drop", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def build_guard(ports: Iterable[Any], interfaces: Iterable[str], sources: Iterable[Any],
                header: str = "") -> dict[str, Any]:
    """``{ruleset, ports, sources, unmatched}``: the rendered table and what went into it."""
    port_list = firewall_ports(ports)
    v4, v6, names = trusted_sources(sources)
    return {"ruleset": render_ruleset(port_list, interfaces, v4, v6, header=header), "ports": port_list,
            "sources": v4 + v6, "unmatched": names}
