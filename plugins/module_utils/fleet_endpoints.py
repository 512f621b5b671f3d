"""Where each node's Ollama listens and how the rest of the fleet reaches it: decided once.

Pure functions over the inventory (host variables, groups) and the plan (who holds models, where
services run). The planner writes the result into plan.json (``nodes[host].ollama``); the ollama
role binds to it, the gateway and the mesh agent use its URLs, node_env writes ``OLLAMA_HOST`` from
it, and validation refuses a contradictory inventory with the same function before any host is
touched.

The rule:

* a node's Ollama is *consumed from another host* when the gateway (group ``gateway``, when enabled)
  runs on another host and the node holds models, or when a service with ``uses_ollama: true`` runs
  on a node that holds no model (it then uses the first model-holding node, by name);
* it then serves the network on the host's reachable address: its WireGuard address when the host
  is on the mesh, else ``pmoves_listen_address``, else ``pmoves_mesh_address``, else ``ansible_host``,
  else the inventory name; otherwise it listens on loopback. ``pmoves_ollama_serve_network: true``
  serves the network without a consumer, ``false`` forbids it (a remote consumer is then an error),
  ``pmoves_ollama_bind_all: true`` binds 0.0.0.0 (never by default);
* serving the network at a loopback address is an error too: nobody else could reach it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import FLEET_DEFAULTS
from ansible_collections.pmoves.fleet.plugins.module_utils.wireguard_config import (
    WireGuardConfigError,
    assign_addresses,
)

LOOPBACK = "127.0.0.1"
ANY_ADDRESS = ("0.0.0.0", "::")
_ADDRESS_VARS = ("pmoves_listen_address", "pmoves_mesh_address", "ansible_host")


def _vars(host: dict[str, Any]) -> dict[str, Any]:
    return host.get("vars") or {}


def wireguard_members(hosts: list[dict[str, Any]]) -> list[str]:
    """Hosts that join the WireGuard mesh (``pmoves_wireguard_enabled: true``), sorted."""
    return sorted(str(h["name"]) for h in hosts if _vars(h).get("pmoves_wireguard_enabled") is True)


def wireguard_addresses(hosts: list[dict[str, Any]], network: str | None = None,
                        previous: dict[str, str] | None = None) -> dict[str, str]:
    """Mesh address of every WireGuard member: fixed ones as declared, ``previous`` ones (the last plan's) kept,
    the others picked by name.

    The same function (``wireguard_config.assign_addresses``) and inputs as the wireguard role, so the
    address the plan announces is the address the interface gets. Raises ValueError on a bad plan.
    """
    members = wireguard_members(hosts)
    if not members:
        return {}
    by_name = {str(h["name"]): _vars(h) for h in hosts}
    fixed = {name: str(by_name[name]["pmoves_wireguard_address"]).split("/", 1)[0] for name in members
             if by_name[name].get("pmoves_wireguard_address")}
    try:
        return assign_addresses(members, network or FLEET_DEFAULTS["wireguard_network"], fixed, previous)
    except (WireGuardConfigError, ValueError) as exc:
        raise ValueError(f"WireGuard address plan: {exc}") from exc


def reach_address(name: str, host_vars: dict[str, Any], wireguard: dict[str, str]) -> tuple[str, str]:
    """(address, where it came from) other hosts use to reach ``name``."""
    if name in wireguard:
        return wireguard[name], "wireguard"
    for key in _ADDRESS_VARS:
        value = host_vars.get(key)
        if value not in (None, ""):
            return str(value).strip(), key
    return name, "inventory_hostname"


def is_loopback(address: str) -> bool:
    text = address.strip().strip("[]").lower()
    if text in ("localhost", "localhost.localdomain", "ip6-localhost", "") or text in ANY_ADDRESS:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def host_port(address: str, port: int) -> str:
    try:
        if ipaddress.ip_address(address.strip("[]")).version == 6:
            return f"[{address.strip('[]')}]:{port}"
    except ValueError:
        pass
    return f"{address}:{port}"


def _port(host_vars: dict[str, Any], default: int) -> int:
    try:
        return int(host_vars.get("pmoves_ollama_port") or default)
    except (TypeError, ValueError):
        return default


def consumers(hosts: list[str], holders: set[str], gateway_hosts: list[str],
              ollama_users: dict[str, list[str]] | None = None) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Who uses each node's Ollama from another host, and which node a holder-less host uses.

    ``ollama_users``: host -> names of its ``uses_ollama`` services. Returns
    (``{node: {consumer host: why}}``, ``{host without models: the node its clients use}``).
    """
    users: dict[str, dict[str, str]] = {h: {} for h in hosts}
    ordered_holders = sorted(holders)
    client_target: dict[str, str] = {}
    for node in ordered_holders:
        for gateway in gateway_hosts:
            if gateway != node:
                users.setdefault(node, {})[gateway] = "gateway"
    if ordered_holders:
        for host in hosts:
            if host in holders:
                continue
            target = ordered_holders[0]
            client_target[host] = target
            services = (ollama_users or {}).get(host) or []
            if services:
                users.setdefault(target, {})[host] = "uses_ollama: " + ", ".join(sorted(services))
    return users, client_target


def decide(hosts: list[dict[str, Any]], runs: set[str], holders: set[str], gateway_hosts: list[str],
           ollama_users: dict[str, list[str]] | None = None, *, default_port: int | None = None,
           wireguard: dict[str, str] | None = None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The Ollama endpoint of every host (``nodes[host].ollama`` of plan.json) and the errors.

    ``hosts``: records ``{name, vars}``; ``runs``: hosts that run Ollama; ``holders``: hosts that hold
    models (a subset of ``runs``).
    """
    port_default = int(default_port or FLEET_DEFAULTS["ollama_port"])
    wireguard = wireguard or {}
    names = sorted(str(h["name"]) for h in hosts)
    by_name = {str(h["name"]): _vars(h) for h in hosts}
    users, client_target = consumers(names, holders, gateway_hosts, ollama_users)
    errors: list[str] = []
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        host_vars = by_name[name]
        port = _port(host_vars, port_default)
        remote = dict(sorted(users.get(name, {}).items())) if name in runs else {}
        address, source = reach_address(name, host_vars, wireguard)
        serve = host_vars.get("pmoves_ollama_serve_network")
        bind_all = host_vars.get("pmoves_ollama_bind_all") is True
        if serve is False and remote:
            errors.append(
                f"host {name}: pmoves_ollama_serve_network is false, but its Ollama is used from other hosts "
                f"({', '.join(f'{h} ({why})' for h, why in remote.items())}); remove the setting (the plan then "
                "serves the network for them) or move what uses it")
        network = name in runs and (bind_all or serve is True or (serve is None and bool(remote)))
        if network and is_loopback(address):
            errors.append(
                f"host {name}: its Ollama must serve other hosts ({', '.join(remote) or 'pmoves_ollama_serve_network'}"
                f") but its address {address!r} (from {source}) is loopback, which they cannot reach; set "
                "pmoves_listen_address (or ansible_host) to an address they reach, or enable the WireGuard mesh")
        listen = ANY_ADDRESS[0] if (network and bind_all) else (address if network else LOOPBACK)
        local = LOOPBACK if listen in ANY_ADDRESS or not network else address
        out[name] = {
            "runs": name in runs, "network": network, "listen": listen, "port": port,
            "address": address, "address_source": source,
            "url": f"http://{host_port(address if network else LOOPBACK, port)}",
            "local_url": f"http://{host_port(local, port)}",
            "consumers": sorted(remote),
        }
    for name in names:
        target = client_target.get(name)
        if name in holders:
            out[name]["client_url"] = out[name]["local_url"]
        elif target is not None and out[target]["network"]:
            out[name]["client_url"] = out[target]["url"]
        else:
            out[name]["client_url"] = None
    return out, errors
