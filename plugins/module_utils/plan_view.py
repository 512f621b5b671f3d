"""The plan as the roles receive it: one node's share and a compact fleet-wide view.

Pure functions. ``playbooks/apply_plan.yml`` (the only reader of the plan) calls them through the
``pmoves.fleet.node_plan`` and ``pmoves.fleet.fleet_view`` filters and hands every host
``pmoves_node_plan`` and ``pmoves_fleet_plan``; each role's inputs default to their share of these.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import (
    CLASS_GROUPS,
    FLEET_DEFAULTS,
    MODEL_SERVING_CLASSES,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name

LOOPBACK_URL = "http://127.0.0.1:{port}"


def _class_of(host: str, plan: dict[str, Any], group_names: list[str] | None) -> str:
    groups = (plan.get("fleet") or {}).get("groups") or {}
    for group, cls in CLASS_GROUPS:
        if host in (groups.get(group) or []) or group in (group_names or []):
            return cls
    return "cpu"


def default_ollama(node_class: str, port: int) -> dict[str, Any]:
    """The endpoint of a host the plan does not know (undiscovered, or no plan): loopback."""
    url = LOOPBACK_URL.format(port=port)
    return {"runs": node_class in MODEL_SERVING_CLASSES, "network": False, "listen": "127.0.0.1", "port": port,
            "address": None, "address_source": "none", "url": url, "local_url": url, "client_url": None,
            "consumers": [], "models": [], "gpu_uuids": [],
            "model_share": {"serve": False, "models": [], "port": FLEET_DEFAULTS["model_share_port"], "listen": None,
                            "url": None}}


def node_plan(plan: dict[str, Any] | None, host: str, group_names: list[str] | None = None) -> dict[str, Any]:
    """``pmoves_node_plan``: the host's plan.json node entry, completed for hosts the plan does not know."""
    plan = plan or {}
    node = dict((plan.get("nodes") or {}).get(host) or {})
    node_class = str(node.get("class") or _class_of(host, plan, group_names))
    port = int((plan.get("fleet") or {}).get("ollama_port") or FLEET_DEFAULTS["ollama_port"])
    ollama = {**default_ollama(node_class, port), **(node.get("ollama") or {})}
    out = {"class": node_class, "models": [], "services": [], "gpus": [], "planned": bool(node)}
    out.update(node)
    out["ollama"] = ollama
    out["planned"] = bool(node)
    return out


def keeps_all_loaded(node: dict[str, Any]) -> bool:
    """The node keeps every model it holds loaded at once (contract 2: its on-demand models fit ``max_loaded`` and
    the planned peak fits its VRAM), so loading one never unloads another. A plan node without these keys (written
    before models were loaded on demand) had every model loaded."""
    if "on_demand" not in node:
        return True
    if len(node.get("on_demand") or []) > int(node.get("max_loaded") or 0):
        return False
    return int(node.get("peak_mb") or 0) <= int(node.get("vram_total_mb") or 0)


def fleet_view(plan: dict[str, Any] | None) -> dict[str, Any]:
    """``pmoves_fleet_plan``: what roles need of the whole fleet, without the per-node detail."""
    plan = plan or {}
    fleet = plan.get("fleet") or {}
    nodes = plan.get("nodes") or {}
    return {
        "planned": bool(plan.get("nodes") is not None),
        "inputs_digest": plan.get("inputs_digest"),
        "strategy": plan.get("strategy"),
        "gpu_strategy": plan.get("gpu_strategy"),
        "model_strategy": plan.get("model_strategy"),
        "hosts": list(fleet.get("hosts") or sorted(nodes)),
        "groups": dict(fleet.get("groups") or {}),
        "gateway": dict(fleet.get("gateway") or {"enabled": False, "hosts": []}),
        "wireguard": dict(fleet.get("wireguard") or {"hosts": [], "addresses": {}}),
        # Address other hosts reach each planned host at (WireGuard, pmoves_listen_address, pmoves_mesh_address,
        # ansible_host, else its inventory name): service URLs, scrape targets.
        "addresses": {host: (node.get("ollama") or {}).get("address") or host for host, node in sorted(nodes.items())},
        "models": {
            name: {"placed": list(entry.get("placed") or []), "aliases": list(entry.get("aliases") or []),
                   "kind": entry.get("kind"), **({"alias": entry["alias"]} if entry.get("alias") else {}),
                   # loaded on demand (false) or always; loaded_on: the hosts where it stays loaded (resident, or
                   # the node keeps every model it holds loaded at once): the gateway probes it only there
                   "resident": bool(entry.get("resident", True)),
                   "loaded_on": [host for host in entry.get("placed") or []
                                 if entry.get("resident", True) or keeps_all_loaded(nodes.get(host) or {})],
                   "vram_by_host": dict(entry.get("vram_by_host") or {})}
            for name, entry in sorted((plan.get("models") or {}).items())
        },
        "nodes": {
            host: {"class": node.get("class"), "models": list(node.get("models") or []),
                   "services": sorted(s["name"] for s in node.get("services") or []),
                   "address": (node.get("ollama") or {}).get("address"),
                   "ollama_url": (node.get("ollama") or {}).get("url"),
                   "ollama_network": bool((node.get("ollama") or {}).get("network")),
                   "ollama_client_url": (node.get("ollama") or {}).get("client_url")}
            for host, node in sorted(nodes.items())
        },
    }


def gateway_node_urls(view: dict[str, Any]) -> dict[str, str]:
    """Host -> the Ollama URL the gateway uses for it (the plan's decision), for every model holder."""
    return {host: node["ollama_url"] for host, node in (view.get("nodes") or {}).items()
            if node.get("models") and node.get("ollama_url")}


def ollama_model_entries(models: list[Any] | None) -> list[dict[str, Any]]:
    """The ollama role's model list, normalised: ``[{name, aliases, keep_alive?, source?}]``, one entry per name.

    Entries may be plain names or mappings ``{name, aliases?, alias?, keep_alive?, source?}`` (the plan's
    ``nodes[host].ollama.models``); names and aliases go through the one normaliser.
    """
    out: dict[str, dict[str, Any]] = {}
    for raw in models or []:
        entry = {"name": raw} if isinstance(raw, str) else dict(raw or {})
        name = normalize_model_name(str(entry.get("name") or ""))
        aliases = ([entry["alias"]] if entry.get("alias") else []) + list(entry.get("aliases") or [])
        item = out.setdefault(name, {"name": name, "aliases": []})
        for alias in aliases:
            normalised = normalize_model_name(str(alias))
            if normalised != name and normalised not in item["aliases"]:
                item["aliases"].append(normalised)
        if entry.get("keep_alive") not in (None, "") and "keep_alive" not in item:
            item["keep_alive"] = str(entry["keep_alive"])
        source = entry.get("source")
        valid = isinstance(source, dict) and (source.get("kind") == "registry"
                                              or (source.get("kind") == "peer" and bool(source.get("url"))))
        if valid and ("source" not in item or item["source"].get("kind") != "peer"):
            item["source"] = dict(source)  # a peer's model share wins when a name is listed twice
    return list(out.values())
