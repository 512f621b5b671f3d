# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Controller-side filters: the name normaliser, the plan hand-over, and the config builders.

Config builders compute and change nothing on a host, so they run here on the controller (they were
modules run on the targets before): ``litellm_config`` (gateway), ``nats_server_config`` and
``mesh_agent_config``, ``mesh_relay_config``, ``mesh_relay_password`` (mesh), ``wireguard_config`` (WireGuard). The logic stays in module_utils;
tasks that pass secrets through them run under ``no_log``.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.pmoves.fleet.plugins.module_utils import systemd_units
from ansible_collections.pmoves.fleet.plugins.module_utils.host_firewall import FirewallError, build_guard
from ansible_collections.pmoves.fleet.plugins.module_utils.litellm_config import (
    GatewayConfigError,
    GatewayInputs,
    RedisOptions,
    RouterOptions,
    build_litellm_config,
    cloud_models_from_inventory,
    served_names,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.nats_config import (
    RELAY_USER,
    ClientUser,
    MeshConfigError,
    RelayUser,
    ServerOptions,
    agent_config,
    build_server_config,
    relay_config,
    relay_password,
    render_server_config,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_view import (
    fleet_view,
    gateway_node_urls,
    node_plan,
    ollama_model_entries,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.wireguard_config import (
    WireGuardConfigError,
    build_node_config,
    mesh_public_keys,
)


def ollama_name(name: Any) -> str:
    """THE name normaliser (ollama_library.normalize_model_name): ``Llama3`` -> ``llama3:latest``."""
    try:
        return normalize_model_name(str(name))
    except ValueError as exc:
        raise AnsibleFilterError(f"ollama_name: {exc}") from exc


def systemd_services(list_units: Any, unit_files: Any = "", pattern: Any = "") -> list[dict[str, Any]]:
    """``systemctl list-units`` + ``list-unit-files`` output -> [{name, state, status}] as service_facts gives them."""
    try:
        return systemd_units.systemd_services(str(list_units or ""), str(unit_files or ""), str(pattern or ""))
    except re.error as exc:
        raise AnsibleFilterError(f"systemd_services: the unit pattern {pattern!r} is not a regular expression: {exc}") from exc


def ollama_models(models: Any) -> list[dict[str, Any]]:
    """A node's model list as ``[{name, aliases, keep_alive?}]``, names and aliases normalised, one per name."""
    if models is None:
        return []
    if not isinstance(models, (list, tuple)):
        raise AnsibleFilterError(f"ollama_models: expected a list of names or mappings, got {type(models).__name__}")
    try:
        return ollama_model_entries(list(models))
    except ValueError as exc:
        raise AnsibleFilterError(f"ollama_models: {exc}") from exc


def litellm_config(models: dict[str, Any], node_urls: dict[str, str],
                   cloud_models: list[dict[str, Any]] | None = None, fallbacks: dict[str, list[str]] | None = None,
                   default_fallbacks: list[str] | None = None, embedding_models: list[str] | None = None,
                   router: dict[str, Any] | None = None, redis: dict[str, Any] | None = None,
                   custom_auth: str | None = "pmoves_gateway_auth.user_api_key_auth",
                   callbacks: list[str] | None = None) -> dict[str, Any]:
    """``{config, served_models}`` of the LiteLLM proxy.

    ``models``: the plan's models (``pmoves_fleet_plan.models``: placed hosts, aliases, kind);
    ``node_urls``: host -> Ollama URL (the plan's listen decision, ``gateway_node_urls``).
    """
    router = dict(router or {})
    known = {f.name for f in fields(RouterOptions)}
    unknown = sorted(set(router) - known)
    if unknown:
        raise AnsibleFilterError(f"litellm_config: router: unknown option(s) {unknown}; known: {sorted(known)}")
    try:
        redis_options = None
        if redis and redis.get("host"):
            redis_options = RedisOptions(host=str(redis["host"]), port=int(redis.get("port", 6379)),
                                         password_env=redis.get("password_env") or None)
        inputs = GatewayInputs(
            plan={"models": dict(models or {})}, node_urls=dict(node_urls or {}),
            cloud_models=cloud_models_from_inventory(cloud_models or []),
            fallbacks={k: list(v) for k, v in (fallbacks or {}).items()}, default_fallbacks=list(default_fallbacks or []),
            embedding_models=list(embedding_models or []), router=RouterOptions(**router), redis=redis_options,
            custom_auth=custom_auth or None,
            **({} if callbacks is None else {"callbacks": list(callbacks)}))
        config = build_litellm_config(inputs)
    except (GatewayConfigError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"cannot build the gateway config: {exc}") from exc
    return {"config": config, "served_models": served_names(config)}


def nats_server_config(node_passwords: dict[str, str], clients: list[dict[str, Any]] | None = None,
                       host: str = "127.0.0.1", port: int = 4222, http_port: int | None = 8222,
                       http_host: str = "127.0.0.1", server_name: str = "pmoves-mesh",
                       hash_passwords: bool = True, relay_password: str | None = None,
                       relay_user: str = RELAY_USER) -> str:
    """nats-server config text (JSON syntax) with one permission-scoped user per node (bcrypt hashes).

    ``relay_password`` adds the hub relay's user, the only one that may publish on the exact seed subjects.
    """
    try:
        users = [ClientUser(name=str(c["name"]), password=str(c["password"]), publish=list(c.get("publish") or []),
                            subscribe=list(c.get("subscribe") or ["mesh.>", "_INBOX.>"])) for c in clients or []]
        options = ServerOptions(host=str(host), port=int(port), http_host=str(http_host),
                                http_port=int(http_port) if http_port else None, server_name=str(server_name))
        relay = RelayUser(password=str(relay_password), name=str(relay_user)) if relay_password else None
        config = build_server_config(dict(node_passwords or {}), users, options, hash_passwords=bool(hash_passwords),
                                     relay=relay)
    except (MeshConfigError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"cannot build the NATS server config: {exc}") from exc
    return render_server_config(config)


def mesh_agent_config(node_id: str, servers: list[str], password: str, hardware: dict[str, Any] | None = None,
                      plan_node: dict[str, Any] | None = None, interval: int = 15, ollama_url: str | None = None,
                      extra_services: list[str] | None = None, claim_window: float = 0.5) -> dict[str, Any]:
    """The mesh agent's JSON config of one node (holds its NATS password)."""
    try:
        return agent_config(str(node_id), list(servers), str(password), hardware, plan_node, interval=int(interval),
                            ollama_url=ollama_url, extra_services=list(extra_services or []),
                            claim_window=float(claim_window))
    except (MeshConfigError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"cannot build the mesh agent config of {node_id}: {exc}") from exc


def mesh_relay_password(hub_password: str, explicit: str | None = None) -> str:
    """The hub relay's NATS password: ``explicit`` when set, else derived from the hub node's password."""
    try:
        return relay_password(str(hub_password or ""), str(explicit) if explicit else None)
    except MeshConfigError as exc:
        raise AnsibleFilterError(f"cannot set the mesh relay's password: {exc}") from exc


def mesh_relay_config(node_ids: list[str], servers: list[str], password: str, user: str = RELAY_USER,
                      stats_interval: int = 15) -> dict[str, Any]:
    """The hub relay's JSON config (holds the relay's NATS password): subject token -> node id of every member."""
    try:
        return relay_config([str(n) for n in node_ids], [str(s) for s in servers], str(password), user=str(user),
                            stats_interval=int(stats_interval))
    except (MeshConfigError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"cannot build the mesh relay config: {exc}") from exc


def wireguard_config(nodes: dict[str, dict[str, Any]], node: str, network: str, topology: str = "mesh",
                     hub: str | None = None, keepalive: int = 25, private_key_path: str = "/etc/wireguard/wg0.key",
                     mtu: int | None = None, header: str = "") -> dict[str, Any]:
    """``{address, prefix, config, peers, forward}`` of one node's wg-quick config (no private key in it)."""
    try:
        return build_node_config(str(node), nodes, network=str(network), topology=str(topology), hub=hub or None,
                                 keepalive=int(keepalive), private_key_path=str(private_key_path),
                                 mtu=int(mtu) if mtu else None, header=str(header or ""))
    except (WireGuardConfigError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"cannot build the WireGuard config of {node}: {exc}") from exc


def wireguard_public_keys(members: list[str], reported: dict[str, Any] | None = None,
                          known: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{keys: {host: key}, missing: [hosts]}``: every mesh member's key, reported this run or remembered."""
    keys, missing = mesh_public_keys(list(members or []), dict(reported or {}), dict(known or {}))
    return {"keys": keys, "missing": missing}


def host_firewall(ports: list[Any], interfaces: list[str] | None = None, sources: list[Any] | None = None,
                  header: str = "") -> dict[str, Any]:
    """``{ruleset, ports, sources, unmatched}`` of the node's nftables guard (pmoves.fleet.base)."""
    try:
        return build_guard(list(ports or []), list(interfaces or []), list(sources or []), header=str(header or ""))
    except FirewallError as exc:
        raise AnsibleFilterError(f"cannot build the host firewall: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "ollama_name": ollama_name,
            "ollama_models": ollama_models,
            "systemd_services": systemd_services,
            "node_plan": node_plan,
            "fleet_view": fleet_view,
            "gateway_node_urls": gateway_node_urls,
            "litellm_config": litellm_config,
            "nats_server_config": nats_server_config,
            "mesh_agent_config": mesh_agent_config,
            "mesh_relay_config": mesh_relay_config,
            "mesh_relay_password": mesh_relay_password,
            "wireguard_config": wireguard_config,
            "wireguard_public_keys": wireguard_public_keys,
            "host_firewall": host_firewall,
        }
