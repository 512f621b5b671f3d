"""Fleet planner: which Ollama model and which service goes to which host (and GPU).

Pure Python, no Ansible import: ``plan_fleet()`` takes the hosts (inventory groups plus the
contract-1 ``pmoves_hardware`` of each), the model and service catalogs, the strategy and an
optional previous plan, and returns the plan.json document (contract 2). ``dumps_plan()``
serialises it byte-for-byte reproducibly. docs/planner.md explains the rules.

Order of work (each step deterministic, hosts and models always visited in a fixed order):
1. nodes: class (inventory group first, then ``pmoves_hardware.node_class``), usable VRAM;
2. services: primary, then fallback, then by strategy; on a multi-GPU host each service gets a
   ``gpu_index`` by the GPU strategy (seed 004), budgets of adjustable services are trimmed;
3. models: pins, then still-valid placements of the previous plan (sticky), then greedy rounds
   (first replica of every model before any second one, largest first) by spread or binpack
   with the node-class rules, then a repair pass that moves one replica to make room;
4. explanations, warnings and the ``moved`` count against the previous plan.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils import fleet_endpoints
from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import (
    CLASS_GROUPS,
    FLEET_DEFAULTS,
    GATEWAY_GROUP,
    GPU_CLASSES,
    GPU_STRATEGIES,
    IMPLICIT_GROUPS,
    MODEL_FIELDS,
    MODEL_SERVING_CLASSES,
    MODEL_STRATEGIES,
    NODE_CLASSES,
    OLLAMA_CLASS_DEFAULTS,
    OLLAMA_MAX_LOADED_PER_GPU,
    PLANNER_DEFAULTS,
    SERVICE_FIELDS,
    STRATEGIES,
    ModelSpec,
    ServiceSpec,
    declared_view,
    gateway_enabled,
    prefer_rules,
    read_model,
    read_service,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import lookup, normalize_model_name
from ansible_collections.pmoves.fleet.plugins.module_utils.vram import estimate

__all__ = [
    "CLASS_GROUPS", "GPU_CLASSES", "GPU_STRATEGIES", "MODEL_STRATEGIES", "NODE_CLASSES", "STRATEGIES",
    "FleetInputs", "PlanError", "PlanOptions", "dumps_plan", "inputs_digest", "plan_fleet",
]

SCHEMA = 1
PLANNER_VERSION = "4"  # part of inputs_digest: a new planner re-plans even for unchanged inputs
MODELS_DISK_RESERVE_MB = 1024  # kept free under OLLAMA_MODELS (roles/ollama pmoves_ollama_disk_reserve_mb)
XL_PARAMS_B = 70.0  # "70B+ -> the biggest GPU" (seed 000)
EDGE_PARAMS_B = 8.0  # "1-8B -> Jetsons" (seed 000)


class PlanError(ValueError):
    """The inputs cannot be planned (bad strategy, malformed catalog entry, contradictory endpoints)."""


@dataclass
class FleetInputs:
    """Fleet-wide settings beyond the catalogs (from pmoves.fleet.common and group_vars/all)."""

    ollama_port: int = FLEET_DEFAULTS["ollama_port"]  # hosts without pmoves_ollama_port
    gateway_enabled: bool | None = None  # None: true when the inventory declares a gateway group
    wireguard_network: str = FLEET_DEFAULTS["wireguard_network"]
    model_share: bool = True  # a model wanted by several nodes is pulled once and copied over the LAN
    model_share_port: int = FLEET_DEFAULTS["model_share_port"]


@dataclass
class PlanOptions:
    """Knobs of the planner; defaults: fleet_schema.PLANNER_DEFAULTS (what plan.yml uses)."""

    strategy: str = PLANNER_DEFAULTS["strategy"]
    gpu_strategy: str | None = PLANNER_DEFAULTS["gpu_strategy"]  # None: strategy when a GPU strategy, else vram_based
    model_strategy: str | None = PLANNER_DEFAULTS["model_strategy"]  # None: strategy when spread/binpack, else spread
    vram_reserve_mb: int = PLANNER_DEFAULTS["vram_reserve_mb"]
    cpu_ram_share: float = PLANNER_DEFAULTS["cpu_ram_share"]
    unified_memory_share: float = PLANNER_DEFAULTS["unified_memory_share"]
    class_rules: bool = PLANNER_DEFAULTS["class_rules"]
    warn_planned_share: float = 0.9  # warn when a node is planned above this share
    sticky: bool = PLANNER_DEFAULTS["sticky"]
    pin_fallback: bool = PLANNER_DEFAULTS["pin_fallback"]
    offload_ram_share: float = PLANNER_DEFAULTS["offload_ram_share"]
    repair_budget: int = 400_000  # bound on candidate checks of the repair pass (keeps big fleets fast)

    def resolved(self) -> tuple[str, str]:
        if self.strategy not in STRATEGIES:
            raise PlanError(f"unknown pmoves_strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        gpu = self.gpu_strategy or (self.strategy if self.strategy in GPU_STRATEGIES else "vram_based")
        model = self.model_strategy or (self.strategy if self.strategy in MODEL_STRATEGIES else "spread")
        if gpu not in GPU_STRATEGIES:
            raise PlanError(f"unknown GPU strategy {gpu!r}: use one of {', '.join(GPU_STRATEGIES)}")
        if model not in MODEL_STRATEGIES:
            raise PlanError(f"unknown model strategy {model!r}: use one of {', '.join(MODEL_STRATEGIES)}")
        return gpu, model


@dataclass
class Gpu:
    index: int
    name: str
    total_mb: int
    usable_mb: int
    unified: bool
    services_mb: int = 0
    services: list[str] = field(default_factory=list)
    uuid: str | None = None
    vendor: str | None = None


@dataclass
class Node:
    name: str
    node_class: str
    capacity_mb: int
    gpus: list[Gpu]
    gpu_capable: bool
    models_allowed: bool
    hardware_source: str
    planned_mb: int = 0  # reserved VRAM: services + resident models (invariant (a))
    models: dict[str, Placement] = field(default_factory=dict)
    services: list[dict[str, Any]] = field(default_factory=list)
    memory_mb: int = 0
    offload_mb: int = 0  # RAM Ollama may spill layers into (0: the node must not spill)
    max_loaded: int = OLLAMA_MAX_LOADED_PER_GPU  # OLLAMA_MAX_LOADED_MODELS
    disk_mb: int | None = None  # model disk (None: not known, not checked)
    disk_used_mb: int = 0
    max_params_b: float | None = None
    prefer: tuple[tuple[float | None, float | None, frozenset[str] | None], ...] = ()
    pins: tuple[str, ...] = ()  # the host's own list (pmoves_models_pin), as written
    env: tuple[int | None, int | None, str | None] = (None, None, None)  # Ollama context, parallel, KV type
    on_demand: list[int] = field(default_factory=list)  # sizes of the on-demand models held, ascending
    held_mb: int = 0  # sum of on_demand
    services_mb: int = 0  # VRAM of the services (set once they are assigned)
    top: tuple[int, int] = (0, 0)  # top_on_demand(), kept current by the planner

    @property
    def free_mb(self) -> int:
        return self.capacity_mb - self.planned_mb

    def peak_mb(self) -> int:
        """Invariant (c): reserved VRAM + the max_loaded largest on-demand models."""
        return self.planned_mb + sum(self.on_demand[-self.max_loaded:])

    def peak_with(self, size: int) -> int:
        top = self.on_demand[-self.max_loaded:]
        if len(top) < self.max_loaded:
            return self.planned_mb + sum(top) + size
        if size > top[0]:
            return self.planned_mb + sum(top) - top[0] + size
        return self.planned_mb + sum(top)

    def top_on_demand(self) -> tuple[int, int]:
        """(sum of the max_loaded largest on-demand models, the smallest of them; 0 when fewer are held)."""
        top = self.on_demand[-self.max_loaded:]
        return sum(top), (top[0] if len(top) == self.max_loaded else 0)


@dataclass
class ModelReq:
    name: str
    wanted: int
    pins: list[str]
    vram_mb: int | None
    cpu_ok: bool
    params_b: float | None
    kind: str
    alias: str | None  # the first alias as written in the catalog (contract 2 `alias`)
    estimate_source: str
    order: int
    aliases: tuple[str, ...] = ()  # every alias, normalised (what the node holds and the gateway serves)
    keep_alive: str | None = None
    resident: bool = False  # always loaded: reserves VRAM; else on demand (loaded when asked)
    disk_mb: int = 0  # footprint on a holder's model disk
    primary: str | None = None
    fallback: tuple[str, ...] = ()
    pin_sources: dict[str, str] = field(default_factory=dict)  # pinned host -> "catalog" | "host list"
    estimate_entry: dict[str, Any] = field(default_factory=dict)  # re-estimated per node Ollama environment
    fixed_vram: bool = False  # vram_mb given in the catalog: final on every node
    sizes: dict[tuple[int | None, int | None, str | None], int] = field(default_factory=dict)
    nominal_b: float | None = None  # the size its tag names ("8b" -> 8.0; qwen3:8b has 8.2B): host size classes


_SIZE_LABEL = re.compile(r"^(\d+(?:\.\d+)?)([bm])$")


def nominal_params_b(name: str, params_b: float | None) -> float | None:
    """The size a user means by a tag ("8b" -> 8.0), for the size classes of host intent; else params_b."""
    match = lookup(name)
    label = _SIZE_LABEL.match(str(match.size_label or "").lower())
    if label:
        value = float(label.group(1))
        return value if label.group(2) == "b" else value / 1000
    return params_b


@dataclass
class Placement:
    model: str
    host: str
    vram_mb: int  # VRAM when loaded on this host (the host's Ollama context, parallel, KV cache type)
    why: str
    pinned: bool = False
    kept: bool = False  # kept from the previous plan: repair never moves it (stickiness)
    disk_mb: int = 0
    resident: bool = False


ServiceReq = ServiceSpec  # the planner's service record is the schema's


# --------------------------------------------------------------------------- nodes

def _as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def build_nodes(hosts: list[dict[str, Any]], options: PlanOptions, warnings: list[str]) -> tuple[list[Node], list[str]]:
    """Turn host records ``{name, groups, hardware, vars}`` into nodes; hosts without hardware are skipped."""
    nodes: list[Node] = []
    undiscovered: list[str] = []
    for host in sorted(hosts, key=lambda h: str(h["name"])):
        name = str(host["name"])
        groups = set(host.get("groups") or [])
        hardware = host.get("hardware")
        host_vars = host.get("vars") or {}
        group_classes = [cls for group, cls in CLASS_GROUPS if group in groups]
        if not isinstance(hardware, dict):
            if group_classes or host_vars.get("pmoves_models_allowed", True):
                undiscovered.append(name)
            continue
        fact_class = hardware.get("node_class")
        if group_classes:
            node_class = group_classes[0]
            if len(group_classes) > 1:
                warnings.append(f"host {name} is in several class groups ({', '.join(group_classes)}); "
                                f"planning it as {node_class}")
            if fact_class and fact_class != node_class:
                warnings.append(f"host {name}: inventory group says {node_class}, pmoves_hardware.node_class says "
                                f"{fact_class}; the inventory group wins")
        elif fact_class in NODE_CLASSES:
            node_class = fact_class
        else:
            node_class = "cpu"
            warnings.append(f"host {name} is in no class group and pmoves_hardware has no node_class; planned as cpu")
        reserve = _as_int(host_vars.get("pmoves_vram_reserve_mb"), options.vram_reserve_mb)
        cpu_share = float(host_vars.get("pmoves_cpu_ram_share", options.cpu_ram_share))
        unified_share = float(host_vars.get("pmoves_unified_memory_share", options.unified_memory_share))
        memory_mb = max(_as_int(hardware.get("memory_mb")), 0)
        gpus: list[Gpu] = []
        for position, raw in enumerate(hardware.get("gpus") or []):
            total = max(_as_int(raw.get("memory_total_mb")), 0)
            unified = bool(raw.get("unified_memory"))
            # the fact already reports the usable share of unified memory: no second discount
            usable = total if unified else total - min(max(reserve, 0), total // 4)
            gpus.append(Gpu(index=_as_int(raw.get("index"), position), name=str(raw.get("name") or "GPU"),
                            total_mb=total, usable_mb=usable, unified=unified,
                            uuid=str(raw["uuid"]) if raw.get("uuid") else None,
                            vendor=str(raw["vendor"]) if raw.get("vendor") else None))
        gpus.sort(key=lambda g: g.index)
        gpu_capable = node_class in GPU_CLASSES and bool(gpus)
        if node_class in GPU_CLASSES and not gpus:
            if node_class in ("edge", "apu") and memory_mb:
                usable = int(memory_mb * min(max(unified_share, 0.0), 1.0))
                gpus = [Gpu(0, "unified memory", usable, usable, True)]
                gpu_capable = True
            else:
                warnings.append(f"host {name} is a {node_class} node but pmoves_hardware lists no GPU; "
                                "it only takes cpu_ok models")
        if gpu_capable:
            capacity = sum(g.usable_mb for g in gpus)
        else:
            capacity = int(memory_mb * min(max(cpu_share, 0.0), 1.0))
            gpus = []
        tier = (host_vars.get("pmoves_ollama_class_defaults") or OLLAMA_CLASS_DEFAULTS).get(node_class) or {}
        context = _as_int(host_vars.get("pmoves_ollama_context_length") or tier.get("context_length"), 0) or None
        parallel = _as_int(host_vars.get("pmoves_ollama_num_parallel") or tier.get("num_parallel"), 0) or None
        kv_type = host_vars.get("pmoves_ollama_kv_cache_type") or tier.get("kv_cache_type") or None
        max_loaded = (_as_int(host_vars.get("pmoves_ollama_max_loaded_models") or tier.get("max_loaded_models"), 0)
                      or OLLAMA_MAX_LOADED_PER_GPU * max(len(gpus), 1))
        discrete = gpu_capable and not any(g.unified for g in gpus)
        if host_vars.get("pmoves_ollama_offload_mb") is not None:
            offload = max(_as_int(host_vars.get("pmoves_ollama_offload_mb")), 0)
        else:  # unified memory and CPU nodes already plan in RAM: nothing further to spill into
            offload = int(memory_mb * min(max(options.offload_ram_share, 0.0), 1.0)) if discrete else 0
        disk = host_vars.get("pmoves_models_disk_mb")
        measured = hardware.get("models_disk")
        if disk is None and isinstance(measured, dict) and measured.get("free_mb") is not None:
            # what the node could hold: free space plus the models it already holds, less the ollama
            # role's reserve (pmoves_ollama_disk_reserve_mb)
            disk = max(_as_int(measured.get("free_mb")) + _as_int(measured.get("store_mb")) - MODELS_DISK_RESERVE_MB, 0)
        max_params = host_vars.get("pmoves_models_max_params_b")
        pins = host_vars.get("pmoves_models_pin") or []
        nodes.append(Node(name=name, node_class=node_class, capacity_mb=capacity, gpus=gpus, gpu_capable=gpu_capable,
                          models_allowed=bool(host_vars.get("pmoves_models_allowed", True)),
                          hardware_source=str(host.get("hardware_source") or "declared"),
                          memory_mb=memory_mb, offload_mb=offload, max_loaded=max(max_loaded, 1),
                          disk_mb=max(_as_int(disk), 0) if disk is not None else None,
                          max_params_b=float(max_params) if max_params is not None else None,
                          prefer=prefer_rules(host_vars.get("pmoves_models_prefer")),
                          pins=tuple(str(p) for p in (pins if isinstance(pins, list) else [pins])),
                          env=(context, parallel, str(kv_type) if kv_type else None)))
    if undiscovered:
        warnings.append("no pmoves_hardware (never discovered, none declared) for: " + ", ".join(undiscovered)
                        + "; they get nothing (run playbooks/discover.yml or declare pmoves_hardware)")
    return nodes, undiscovered


# --------------------------------------------------------------------------- catalogs

def parse_models(catalog: list[Any], warnings: list[str],
                 served: dict[str, str] | None = None) -> tuple[list[ModelReq], list[dict[str, str]]]:
    """Read the model catalog through the schema; non-Ollama entries are returned separately (skipped).

    ``served``: normalised artefact name -> the service that serves it (its ``serves``); such entries
    are skipped without a warning.
    """
    models: dict[str, ModelReq] = {}
    skipped: list[dict[str, str]] = []
    for order, raw in enumerate(catalog or []):
        try:
            spec: ModelSpec = read_model(order, raw)
        except ValueError as exc:
            raise PlanError(str(exc)) from exc
        est = estimate({"name": spec.raw_name, "vram_mb": spec.vram_mb, "context": spec.context,
                        "parallel": spec.parallel, "kv_cache_type": spec.kv_cache_type, "kind": spec.kind,
                        "params_b": spec.params_b})
        server = (served or {}).get(spec.name)
        if est.not_ollama is not None:
            reason = f"not an Ollama library model ({est.not_ollama})"
            if server:
                reason = f"served by service {server}, not by Ollama"
            else:
                warnings.extend(est.warnings)
            skipped.append({"entry": spec.raw_name, "reason": reason})
            continue
        warnings.extend(est.warnings)
        if est.name in models:
            warnings.append(f"model {est.name} is listed more than once in pmoves_models; the first entry is used")
            continue
        wanted = spec.replicas
        if len(spec.pins) > wanted:
            warnings.append(f"model {est.name}: {len(spec.pins)} pins but replicas {wanted}; wanting {len(spec.pins)}")
            wanted = len(spec.pins)
        disk = spec.disk_mb if spec.disk_mb is not None else (est.weights_mb or est.vram_mb or 0)
        models[est.name] = ModelReq(
            name=est.name, wanted=wanted, pins=list(spec.pins), vram_mb=est.vram_mb, cpu_ok=spec.cpu_ok,
            params_b=est.params_b, kind=est.kind, alias=spec.aliases[0] if spec.aliases else None,
            estimate_source=est.source, order=order, aliases=spec.normalised_aliases, keep_alive=spec.keep_alive,
            resident=spec.resident, disk_mb=disk, primary=spec.primary, fallback=spec.fallback,
            pin_sources={host: "catalog" for host in spec.pins},
            estimate_entry={"name": spec.raw_name, "context": spec.context, "parallel": spec.parallel,
                            "kv_cache_type": spec.kv_cache_type, "kind": spec.kind, "params_b": spec.params_b},
            fixed_vram=spec.vram_mb is not None, nominal_b=nominal_params_b(est.name, est.params_b),
            sizes={(None, None, None): est.vram_mb} if est.vram_mb is not None else {})
    return list(models.values()), skipped


def parse_services(catalog: list[Any], warnings: list[str]) -> list[ServiceReq]:
    services: list[ServiceReq] = []
    seen: set[str] = set()
    for position, raw in enumerate(catalog or []):
        try:
            service = read_service(position, raw)
        except ValueError as exc:
            raise PlanError(str(exc)) from exc
        if service.name in seen:
            warnings.append(f"service {service.name} is listed more than once in pmoves_services; "
                            "the first entry is used")
            continue
        seen.add(service.name)
        services.append(service)
    return services


# --------------------------------------------------------------------------- services

def _service_fits(service: ServiceReq, node: Node) -> str | None:
    """None when the service may go to the node, else why not."""
    if service.classes is not None and node.node_class not in service.classes:
        return f"class {node.node_class} not in {sorted(service.classes)}"
    if service.gpu and not node.gpu_capable:
        return f"needs a GPU; {node.name} is a {node.node_class} node without one"
    if node.free_mb < service.vram_min_mb:
        return f"needs {service.vram_min_mb} MB; {node.free_mb} MB free"
    if any(entry["name"] == service.name for entry in node.services):
        return "already runs it"
    return None


def _admit_service(service: ServiceReq, node: Node, why: str) -> None:
    # adjustable budgets are admitted at their minimum; assign_gpus() sizes them once all are in
    budget = service.vram_min_mb
    node.planned_mb += budget
    node.services.append({"name": service.name, "gpu": service.gpu, "gpu_index": None, "gpu_uuid": None,
                          "vram_mb": budget, "vram_requested_mb": service.vram_mb, "why": why,
                          **service.passthrough})


def place_services(services: list[ServiceReq], nodes: dict[str, Node], model_strategy: str,
                   warnings: list[str], previous: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Put services on hosts: primary, fallback hosts, then the best node by strategy."""
    summary: dict[str, dict[str, Any]] = {}
    ordered = sorted(services, key=lambda s: (s.primary is None, -s.vram_mb, s.name))
    for service in ordered:
        placed: list[str] = []
        reasons: list[str] = []
        candidates: list[tuple[str, str]] = []
        if service.primary:
            candidates.append((service.primary, "primary"))
        candidates += [(host, "fallback") for host in service.fallback]
        for host, role in candidates:
            if len(placed) >= service.replicas:
                break
            node = nodes.get(host)
            if node is None:
                reasons.append(f"{role} {host} is not a planned host")
                continue
            why_not = _service_fits(service, node)
            if why_not:
                reasons.append(f"{role} {host}: {why_not}")
                continue
            why = f"{role} host from the catalog"
            if role == "fallback" and service.primary and service.primary not in placed:
                why = f"fallback host: primary {service.primary} could not take it"
            _admit_service(service, node, why)
            placed.append(host)
        previous_hosts = ((previous or {}).get("services") or {}).get(service.name, {}).get("placed") or []
        for host in previous_hosts:  # sticky: keep where the previous plan put it, while it still fits
            node = nodes.get(host)
            if len(placed) >= service.replicas or node is None or host in placed or _service_fits(service, node):
                continue
            _admit_service(service, node, f"{model_strategy}: best eligible node"
                           + (" (primary and fallback hosts could not take it)" if candidates else ""))
            placed.append(host)
        while len(placed) < service.replicas:
            best = None
            for node in nodes.values():
                if node.name in placed or _service_fits(service, node):
                    continue
                after = (node.planned_mb + service.vram_min_mb) / node.capacity_mb if node.capacity_mb else 1.0
                key = (0 if node.gpu_capable == service.gpu else 1,
                       (after, node.name) if model_strategy == "spread" else (node.free_mb, node.name))
                if best is None or key < best[0]:
                    best = (key, node)
            if best is None:
                break
            node = best[1]
            _admit_service(service, node, f"{model_strategy}: best eligible node"
                           + (" (primary and fallback hosts could not take it)" if candidates else ""))
            placed.append(node.name)
        fallback_ok = [h for h in service.fallback if h in nodes and h not in placed
                       and _service_fits(service, nodes[h]) is None]
        for host in service.fallback:
            if host in nodes and host not in placed and host not in fallback_ok:
                warnings.append(f"service {service.name}: fallback {host} cannot take it in this plan "
                                f"({_service_fits(service, nodes[host]) or 'not eligible'})")
            elif host not in nodes:
                warnings.append(f"service {service.name}: fallback {host} is not a planned host")
        entry: dict[str, Any] = {"wanted": service.replicas, "placed": placed, "vram_mb": service.vram_mb,
                                 "fallback": fallback_ok, "gpu": service.gpu}
        if len(placed) < service.replicas:
            reason = "; ".join(reasons) or "no eligible node with room"
            entry["missing"] = service.replicas - len(placed)
            entry["reason"] = reason
            warnings.append(f"service {service.name}: {len(placed)} of {service.replicas} placed ({reason})")
        summary[service.name] = entry
    return summary


def _gb(mb: int) -> str:
    return f"{int(mb / 100) / 10:.1f} GB"


def assign_gpus(node: Node, catalog: dict[str, ServiceReq], gpu_strategy: str, warnings: list[str]) -> None:
    """Give every service on the node a gpu_index (seed 004 strategies) and final VRAM budgets."""
    gpu_services = [s for s in node.services if catalog[s["name"]].gpu]
    if not gpu_services or not node.gpus:
        return
    gpus = node.gpus
    by_index = {g.index: g for g in gpus}
    largest = max(gpus, key=lambda g: (g.usable_mb, -g.index))
    fixed = sorted((s for s in gpu_services if catalog[s["name"]].vram_min_mb >= catalog[s["name"]].vram_mb),
                   key=lambda s: (-s["vram_requested_mb"], s["name"]))
    adjustable = sorted((s for s in gpu_services if catalog[s["name"]].vram_min_mb < catalog[s["name"]].vram_mb),
                        key=lambda s: (-s["vram_requested_mb"], s["name"]))

    def free(gpu: Gpu) -> int:
        return gpu.usable_mb - gpu.services_mb

    def most_free(pool: list[Gpu]) -> Gpu:
        return max(pool, key=lambda g: (free(g), -g.index))

    def least_share(pool: list[Gpu], size: int) -> Gpu:
        return min(pool, key=lambda g: ((g.services_mb + size) / g.usable_mb if g.usable_mb else 9e9, g.index))

    def choose(entry: dict[str, Any], size: int) -> tuple[Gpu, str]:
        req = catalog[entry["name"]]
        if gpu_strategy == "manual" or (req.gpu_index is not None):
            if req.gpu_index is not None and req.gpu_index in by_index:
                return by_index[req.gpu_index], "gpu_index from the catalog"
            if req.gpu_index is not None:
                warnings.append(f"service {req.name}: gpu_index {req.gpu_index} does not exist on {node.name}; "
                                f"using GPU {gpus[0].index}")
            elif len(gpus) > 1:
                warnings.append(f"service {req.name}: manual strategy but no gpu_index; using GPU {gpus[0].index}")
            return gpus[0], "manual: default GPU"
        others = [g for g in gpus if g is not largest] or gpus
        if gpu_strategy == "isolation_first":
            isolated = req.isolate or (not any(catalog[s["name"]].isolate for s in gpu_services)
                                       and entry is max(gpu_services, key=lambda s: (s["vram_requested_mb"], s["name"])))
            if isolated:
                return largest, "isolation_first: the LLM gets the largest GPU to itself"
            fitting = [g for g in others if free(g) >= size]
            # Seed 004: the LLM keeps its GPU; the rest share the remaining GPUs even when that
            # overfills them (warn but allow, budgets auto-adjusted below).
            return most_free(fitting or others), "isolation_first: shares the GPUs left by the LLM"
        if gpu_strategy == "latency_optimized":
            if req.latency_critical or req.isolate:
                return largest, "latency_optimized: critical path on the fastest GPU"
            fitting = [g for g in others if free(g) >= size]
            return (most_free(fitting), "latency_optimized: others distributed") if fitting else (
                most_free(gpus), "latency_optimized: most free GPU")
        if gpu_strategy == "balanced":
            fitting = [g for g in gpus if free(g) >= size]
            return least_share(fitting or gpus, size), "balanced: evens out the VRAM share of the GPUs"
        fitting = [g for g in gpus if free(g) >= size]  # vram_based
        return most_free(fitting or gpus), "vram_based: largest first, onto the GPU with most free VRAM"

    # vram_based is seed 004's "sort by VRAM desc, assign to the GPU with most free space" over every
    # service, adjustable ones at their requested budget (trimmed below): so the small services stay on
    # GPU 0 next to the LLM as in the seed's example, and the Model Zoo gets GPU 1.
    chosen: dict[str, tuple[Gpu, str]] = {}
    if gpu_strategy == "vram_based" and adjustable:
        taken = {g.index: g.services_mb for g in gpus}
        for entry in sorted(gpu_services, key=lambda s: (-s["vram_requested_mb"], s["name"])):
            if catalog[entry["name"]].gpu_index is not None:
                continue
            size = entry["vram_requested_mb"]
            fitting = [g for g in gpus if g.usable_mb - taken[g.index] >= size]
            gpu = max(fitting or gpus, key=lambda g: (g.usable_mb - taken[g.index], -g.index))
            taken[gpu.index] += size
            chosen[entry["name"]] = (gpu, "vram_based: largest first (requested budgets), onto the GPU with most "
                                          "free VRAM")

    for entry in fixed:
        size = entry["vram_mb"]
        gpu, why = chosen.get(entry["name"]) or choose(entry, size)
        if size > free(gpu):
            warnings.append(f"{entry['name']} ({_gb(size)}) exceeds free VRAM of GPU {gpu.index} on {node.name} "
                            f"({gpu.name}, {_gb(max(free(gpu), 0))} free of {_gb(gpu.usable_mb)} usable)")
        gpu.services_mb += size
        gpu.services.append(entry["name"])
        entry["gpu_index"] = gpu.index
        entry["gpu_uuid"] = gpu.uuid
        entry["why"] = f"{entry['why']}; GPU {gpu.index} ({gpu.name}): {why}"
    # Adjustable budgets are sized last, into what the fixed services left (seed 004 auto-adjust).
    remaining_min = sum(catalog[e["name"]].vram_min_mb for e in adjustable)
    node_free = node.free_mb + sum(e["vram_mb"] for e in adjustable)
    for entry in adjustable:
        req = catalog[entry["name"]]
        remaining_min -= req.vram_min_mb
        gpu, why = chosen.get(entry["name"]) or choose(entry, req.vram_min_mb)
        budget = min(req.vram_mb, max(free(gpu), req.vram_min_mb), node_free - remaining_min)
        budget = max(budget, req.vram_min_mb)
        node_free -= budget
        if budget < req.vram_mb:
            warnings.append(f"{req.name} VRAM budget ({_gb(req.vram_mb)}) exceeds GPU {gpu.index} on {node.name} "
                            f"({gpu.name}, {_gb(gpu.usable_mb)} usable, {_gb(max(free(gpu), 0))} free). "
                            f"Auto-adjusted to {_gb(budget)}.")
            entry["budget_adjusted"] = True
        gpu.services_mb += budget
        gpu.services.append(req.name)
        node.planned_mb += budget - entry["vram_mb"]
        entry["vram_mb"] = budget
        entry["gpu_index"] = gpu.index
        entry["gpu_uuid"] = gpu.uuid
        entry["why"] = f"{entry['why']}; GPU {gpu.index} ({gpu.name}): {why}"
    for gpu in gpus:
        if gpu.services_mb > gpu.usable_mb and len(gpu.services) > 1:
            warnings.append(f"Combined VRAM of {', '.join(sorted(gpu.services))} (~{_gb(gpu.services_mb)}) exceeds "
                            f"GPU {gpu.index} capacity on {node.name} ({gpu.name}, {_gb(gpu.usable_mb)} usable)")


# --------------------------------------------------------------------------- models

class _ModelPlanner:
    """Models onto nodes under contract 2's capacity semantics.

    Resident models reserve VRAM like services; on-demand models (the default) only have to fit when
    loaded alone (VRAM left by services and resident models, plus the node's offload RAM) and on the
    node's model disk. The peak (reserved + the ``max_loaded`` largest on-demand models) is reported,
    and warned about above VRAM, but does not refuse a model: Ollama unloads one to load another.
    """

    def __init__(self, nodes: list[Node], models: list[ModelReq], strategy: str, options: PlanOptions,
                 warnings: list[str]) -> None:
        self.nodes = nodes
        self.by_name = {n.name: n for n in nodes}
        self.by_model = {m.name: m for m in models}
        self.models = sorted(models, key=lambda m: (-(m.vram_mb or 0), m.name))
        self.strategy = strategy
        self.options = options
        self.warnings = warnings
        self.placed: dict[str, list[Placement]] = {m.name: [] for m in models}
        self.notes: dict[str, list[str]] = {m.name: [] for m in models}
        self.max_gpu_capacity = max((n.capacity_mb for n in nodes if n.gpu_capable and n.models_allowed), default=0)
        self.prefer_nodes = [n for n in nodes if n.prefer]  # hosts with pmoves_models_prefer rules

    # -- sizes
    def size(self, model: ModelReq, node: Node) -> int:
        """VRAM of the model when loaded on this node: the estimate at the node's Ollama settings."""
        if model.fixed_vram or model.vram_mb is None:
            model.sizes[node.env] = model.vram_mb or 0
            return model.vram_mb or 0
        cached = model.sizes.get(node.env)
        if cached is None:
            context, parallel, kv_type = node.env
            entry = dict(model.estimate_entry)
            entry["context"] = entry.get("context") or context  # the catalog's own value wins
            entry["parallel"] = entry.get("parallel") or parallel
            entry["kv_cache_type"] = entry.get("kv_cache_type") or kv_type
            cached = estimate(entry).vram_mb or model.vram_mb
            model.sizes[node.env] = cached
        return cached

    # -- eligibility and ranking
    def eligible(self, model: ModelReq, node: Node) -> str | None:
        """Why the node can never hold the model (even holding nothing else), or None."""
        if not node.models_allowed:
            return f"{node.name} takes no models (pmoves_models_allowed: false)"
        if not node.gpu_capable and not model.cpu_ok:
            return f"{node.name} is a {node.node_class} node without GPU and {model.name} is not cpu_ok"
        if node.max_params_b is not None and model.nominal_b is not None and model.nominal_b > node.max_params_b:
            return (f"{node.name} holds models up to {node.max_params_b:g}B (pmoves_models_max_params_b), "
                    f"{model.name} has {model.nominal_b:g}B")
        if model.vram_mb is None:
            return None
        size = self.size(model, node)
        if model.resident and size > node.capacity_mb:
            return f"{node.name} has {node.capacity_mb} MB usable, {model.name} needs {size} MB (resident)"
        if not model.resident and size > node.capacity_mb + node.offload_mb:
            return (f"{node.name} has {node.capacity_mb} MB usable" + (
                f" + {node.offload_mb} MB offload RAM" if node.offload_mb else "") + f", {model.name} needs {size} MB")
        if node.disk_mb is not None and model.disk_mb > node.disk_mb:
            return f"{node.name} has {node.disk_mb} MB of model disk, {model.name} needs {model.disk_mb} MB"
        return None

    def room(self, model: ModelReq, node: Node) -> str | None:
        """Why the node cannot take the model now (invariants (a), (b), (d)), or None."""
        size = self.size(model, node)
        if node.disk_mb is not None and node.disk_used_mb + model.disk_mb > node.disk_mb:
            return (f"{node.name} has {node.disk_mb - node.disk_used_mb} MB of model disk free, "
                    f"{model.name} needs {model.disk_mb} MB")
        free = node.capacity_mb - node.planned_mb
        if model.resident:
            if size > free:
                return f"{node.free_mb} MB free, needs {size} MB"
            if node.on_demand and node.on_demand[-1] > free - size + node.offload_mb:
                return (f"resident {size} MB would leave too little for the on-demand models it holds "
                        f"(largest {node.on_demand[-1]} MB)")
        elif size > free + node.offload_mb:
            return (f"{max(free, 0)} MB VRAM left by services and resident models"
                    + (f" + {node.offload_mb} MB offload RAM" if node.offload_mb else "") + f", needs {size} MB")
        return None

    def preference(self, model: ModelReq, node: Node) -> int:
        """Lower is better: the model's fallback hosts in order, then hosts whose rules prefer it, then the rest."""
        if model.fallback and node.name in model.fallback:
            return model.fallback.index(node.name)
        return len(model.fallback) + (0 if self.prefers(model, node) else 1)

    @staticmethod
    def prefers(model: ModelReq, node: Node) -> bool:
        for low, high, kinds in node.prefer:
            if kinds is not None and model.kind not in kinds:
                continue
            size = model.nominal_b
            if (low is not None or high is not None) and size is None:
                continue
            if low is not None and size < low:
                continue
            if high is not None and size > high:
                continue
            return True
        return False

    def tier(self, model: ModelReq, node: Node) -> int:
        if not self.options.class_rules:
            return 0 if node.gpu_capable else 1
        if model.kind == "embedding":
            return 0 if not node.gpu_capable else (1 if node.node_class == "edge" else 2)
        if model.params_b is not None and model.params_b <= EDGE_PARAMS_B:
            return 0 if node.node_class == "edge" else (1 if node.gpu_capable else 2)
        return 0 if node.gpu_capable else 1

    def rule_text(self, model: ModelReq, node: Node) -> str:
        text = ""
        if model.fallback and node.name in model.fallback:
            text = f"; fallback host {model.fallback.index(node.name) + 1} of {model.name} in the catalog"
        elif node.prefer and self.prefers(model, node):
            text = f"; {node.name} prefers models of this size/kind (pmoves_models_prefer)"
        if not self.options.class_rules:
            return text
        if model.kind == "embedding" and not node.gpu_capable:
            return text + "; embeddings prefer CPU nodes"
        if model.params_b is not None and model.params_b >= XL_PARAMS_B:
            return text + "; 70B+ prefers the biggest GPU node"
        if model.params_b is not None and model.params_b <= EDGE_PARAMS_B and node.node_class == "edge":
            return text + "; 1-8B models prefer edge nodes"
        return text

    def best_node(self, model: ModelReq, exclude: str | None = None) -> Node | None:
        # The hot loop of big fleets (1000 nodes x 500 models): per-node values are looked up, not recomputed.
        xl = self.options.class_rules and model.params_b is not None and model.params_b >= XL_PARAMS_B
        spread = self.strategy == "spread"
        best_key = None
        best = None
        cpu_ok = model.cpu_ok
        name = model.name
        resident = model.resident
        params = model.nominal_b
        disk = model.disk_mb
        sizes = model.sizes
        neutral = len(model.fallback) + 1  # preference of a host that neither is a fallback nor prefers it
        tiers: dict[tuple[str, bool], int] = {}
        for node in self.nodes:
            if (not node.models_allowed or name in node.models or (not cpu_ok and not node.gpu_capable)
                    or node.name == exclude):
                continue
            if node.max_params_b is not None and params is not None and params > node.max_params_b:
                continue
            if node.disk_mb is not None and node.disk_used_mb + disk > node.disk_mb:
                continue
            size = sizes.get(node.env)
            if size is None:
                size = self.size(model, node)
            free = node.capacity_mb - node.planned_mb
            if resident:
                if free < size or (node.on_demand and node.on_demand[-1] > free - size + node.offload_mb):
                    continue
            elif size > free + node.offload_mb:
                continue
            pref = self.preference(model, node) if (node.prefer or model.fallback) else neutral
            tier_key = (node.node_class, node.gpu_capable)
            tier = tiers.get(tier_key)
            if tier is None:
                tier = tiers[tier_key] = self.tier(model, node)
            if resident:  # the planner before on-demand serving, unchanged (an all-resident catalog plans as before)
                if xl:  # discrete GPU nodes first (seed 000: 70B+ on the 5090), biggest first
                    key = (pref, tier, node.node_class != "gpu", -node.capacity_mb, node.planned_mb, node.name)
                elif spread:
                    key = (pref, tier, (node.planned_mb + size) / (node.capacity_mb or 1), node.name)
                else:
                    key = (pref, tier, 0 if node.planned_mb else 1, node.free_mb - size, node.name)
            else:
                # on demand: never spill when a node without spilling exists, then keep the peak within VRAM
                spills = size > free
                top_sum, top_min = node.top
                over = node.planned_mb + top_sum + (size - top_min if size > top_min else 0) > node.capacity_mb
                if xl:
                    key = (pref, tier, spills, node.node_class != "gpu", -node.capacity_mb, over, node.held_mb,
                           node.name)
                elif spread:
                    key = (pref, tier, spills, over, (node.held_mb + size) / (node.capacity_mb or 1), node.name)
                else:
                    key = (pref, tier, spills, over, 0 if node.models else 1, node.name)
            if best_key is None or key < best_key:
                best_key = key
                best = node
        return best

    def place(self, model: ModelReq, node: Node, why: str, pinned: bool = False, kept: bool = False) -> None:
        placement = Placement(model.name, node.name, self.size(model, node), why, pinned, kept, model.disk_mb,
                              model.resident)
        node.models[model.name] = placement
        if placement.resident:
            node.planned_mb += placement.vram_mb
        else:
            bisect.insort(node.on_demand, placement.vram_mb)
            node.held_mb += placement.vram_mb
            node.top = node.top_on_demand()
        node.disk_used_mb += placement.disk_mb
        self.placed[model.name].append(placement)

    def _attach(self, placement: Placement) -> None:
        """Put a removed placement back as it was (undo)."""
        node = self.by_name[placement.host]
        node.models[placement.model] = placement
        if placement.resident:
            node.planned_mb += placement.vram_mb
        else:
            bisect.insort(node.on_demand, placement.vram_mb)
            node.held_mb += placement.vram_mb
            node.top = node.top_on_demand()
        node.disk_used_mb += placement.disk_mb

    def unplace(self, placement: Placement) -> None:
        node = self.by_name[placement.host]
        del node.models[placement.model]
        if placement.resident:
            node.planned_mb -= placement.vram_mb
        else:
            node.on_demand.remove(placement.vram_mb)
            node.held_mb -= placement.vram_mb
            node.top = node.top_on_demand()
        node.disk_used_mb -= placement.disk_mb
        self.placed[placement.model].remove(placement)

    def not_preferred(self, model: ModelReq, node: Node) -> str:
        """Why the model is not on the hosts it prefers (its fallback hosts, hosts whose rules prefer it)."""
        preferred = [self.by_name[h] for h in model.fallback if h in self.by_name]
        preferred += [n for n in self.prefer_nodes if n not in preferred and self.prefers(model, n)]
        if not preferred or node in preferred:
            return ""
        reasons = []
        for other in preferred[:3]:
            if model.name in other.models:
                reasons.append(f"{other.name} already holds it")
            else:
                reasons.append(f"{other.name}: {self.eligible(model, other) or self.room(model, other) or 'ranked lower'}")
        return "; not on a preferred host (" + "; ".join(reasons) + ")"

    def greedy_why(self, model: ModelReq, node: Node) -> str:
        return self._greedy_why(model, node) + self.not_preferred(model, node)

    def _greedy_why(self, model: ModelReq, node: Node) -> str:
        size = self.size(model, node)
        if not model.resident:
            spill = size - (node.capacity_mb - node.planned_mb)
            head = (f"{self.strategy}: on demand, fits when loaded alone ({size} MB of "
                    f"{node.capacity_mb - node.planned_mb} MB VRAM left by services and resident models"
                    + (f", {spill} MB spilled to RAM" if spill > 0 else "") + ")")
            return head + self.rule_text(model, node)
        share = round(100 * (node.planned_mb + size) / node.capacity_mb) if node.capacity_mb else 0
        if self.strategy == "spread":
            head = f"spread: least planned share after placing ({share}% of {node.capacity_mb} MB)"
        else:
            head = f"binpack: tightest fit on a node already in use ({share}% of {node.capacity_mb} MB)"
        return head + self.rule_text(model, node)

    # -- phases
    def run(self, previous: dict[str, Any] | None) -> None:
        for model in self.models:
            if model.vram_mb is None:
                continue
            for host in model.pins:
                node = self.by_name.get(host)
                source = model.pin_sources.get(host, "catalog")
                label = "pin" if source == "catalog" else "pin (the host's list)"
                reason = None
                if node is None:
                    reason = f"{label} {host}: not a planned host (unknown, or no pmoves_hardware)"
                else:
                    reason = self.eligible(model, node) or self.room(model, node)
                    if reason is not None:
                        reason = f"{label} {host}: {reason}"
                if reason is None:
                    where = "in the catalog" if source == "catalog" else "by its list (pmoves_models_pin)"
                    self.place(model, node, f"pinned to {host} {where}" + (
                        "" if model.resident else f"; on demand ({self.size(model, node)} MB when loaded)"),
                        pinned=True)
                else:
                    self.notes[model.name].append(reason)
                    self.warnings.append(f"model {model.name}: {reason}; the pin cannot hold")
        for model in self.models:  # catalog primary: the first replica, kept whenever it fits
            host = model.primary
            if host is None or model.vram_mb is None or len(self.placed[model.name]) >= self.target(model):
                continue
            node = self.by_name.get(host)
            if node is not None and model.name in node.models:
                continue
            reason = "not a planned host" if node is None else (self.eligible(model, node) or self.room(model, node))
            if reason is None:
                self.place(model, node, "primary host from the catalog" + self.rule_text(model, node), kept=True)
            else:
                self.notes[model.name].append(f"primary {host}: {reason}")
                self.warnings.append(f"model {model.name}: primary {host} cannot take it ({reason}); "
                                     "using the fallback hosts")
        if previous and self.options.sticky:
            prior = previous.get("models") or {}
            for model in self.models:
                before = prior.get(model.name) or {}
                why_before = before.get("why") or {}
                for host in before.get("placed") or []:
                    if len(self.placed[model.name]) >= self.target(model) or model.vram_mb is None:
                        break
                    node = self.by_name.get(host)
                    if node is None or model.name in node.models or self.eligible(model, node) is not None:
                        continue
                    if self.room(model, node) is None:
                        self.place(model, node, str(why_before.get(host) or "kept from the previous plan"), kept=True)
        # Greedy orders, best count wins (ties: the first). Largest-first rounds give every model a first
        # replica before any second one and pack well; when the fleet is oversubscribed, smallest-first
        # places more replicas (the quality benchmark compares with the exact optimum).
        start = self.snapshot()
        best_state = None
        for order in ("rounds", "ascending", "descending"):
            if best_state is not None:
                self.restore(start)
            self.greedy(order)
            count = sum(len(p) for p in self.placed.values())
            if best_state is None or count > best_state[0]:
                best_state = (count, self.snapshot())
            if all(len(self.placed[m.name]) >= self.target(m) or m.vram_mb is None for m in self.models):
                break
            if order == "rounds" and not any(self._could_grow(m) for m in self._short()):
                break  # every short model is short of eligible hosts: no other order places more
        self.restore(best_state[1])
        self.repair()

    def snapshot(self) -> tuple[dict[str, tuple[Any, ...]], dict[str, list[Placement]]]:
        return ({n.name: (n.planned_mb, dict(n.models), list(n.on_demand), n.held_mb, n.disk_used_mb)
                 for n in self.nodes},
                {name: list(places) for name, places in self.placed.items()})

    def restore(self, state: tuple[dict[str, tuple[Any, ...]], dict[str, list[Placement]]]) -> None:
        nodes, placed = state
        for node in self.nodes:
            node.planned_mb, models, on_demand, node.held_mb, node.disk_used_mb = nodes[node.name]
            node.models = dict(models)
            node.on_demand = list(on_demand)
            node.top = node.top_on_demand()
        self.placed = {name: list(places) for name, places in placed.items()}

    def greedy(self, order: str) -> None:
        if order == "rounds":
            rounds = max((m.wanted for m in self.models), default=0)
            sequence = [model for replica in range(rounds) for model in self.models if model.wanted > replica]
        else:
            sequence = [model for model in self.models for _replica in range(model.wanted)]
            if order == "ascending":
                sequence.reverse()
        stuck: set[str] = set()
        for model in sequence:
            if model.vram_mb is None or model.name in stuck or len(self.placed[model.name]) >= self.target(model):
                continue
            node = self.best_node(model)
            if node is None:
                stuck.add(model.name)
                continue
            self.place(model, node, self.stand_in(model) + self.greedy_why(model, node))

    def _could_grow(self, model: ModelReq) -> bool:
        """True when some host without a replica could hold the model on an otherwise empty fleet."""
        return any(model.name not in node.models and self.eligible(model, node) is None for node in self.nodes)

    def target(self, model: ModelReq) -> int:
        """Replicas to place: all wanted, or without the failed pins when they may not fall back."""
        if self.options.pin_fallback:
            return model.wanted
        held = {p.host for p in self.placed[model.name] if p.pinned}
        return model.wanted - sum(1 for host in model.pins if host not in held)

    def stand_in(self, model: ModelReq) -> str:
        held = {p.host for p in self.placed[model.name] if p.pinned}
        failed = sum(1 for host in model.pins if host not in held)
        unpinned = sum(1 for p in self.placed[model.name] if not p.pinned)
        return "stands in for a pin that cannot hold; " if unpinned < failed else ""

    def repair(self) -> None:
        """Place short replicas by moving others out of the way; trade one replica for two (bounded work)."""
        budget = self.options.repair_budget
        progress = True
        while progress and budget > 0:
            progress, budget = self._repair_pass(budget)
            if not progress and budget > 0:
                progress, budget = self._eject_for_two(budget)

    def _short(self) -> list[ModelReq]:
        return sorted((m for m in self.models if m.vram_mb is not None and len(self.placed[m.name]) < self.target(m)),
                      key=lambda m: (m.vram_mb or 0, m.name))

    def _repair_pass(self, budget: int) -> tuple[bool, int]:
        progress = False
        for model in self._short():
            while len(self.placed[model.name]) < self.target(model) and budget > 0:
                budget -= len(self.nodes)
                node = self.best_node(model)
                if node is not None:
                    self.place(model, node, self.stand_in(model) + self.greedy_why(model, node))
                    progress = True
                    continue
                moved, budget = self._make_room(model, budget)
                if not moved:
                    break
                progress = True
        return progress, budget

    def _eject_for_two(self, budget: int) -> tuple[bool, int]:
        """Replace one replica on a node by two or more short replicas that fit in its place (net +1)."""
        short = self._short()
        if not short:
            return False, budget
        for node in self.nodes:
            if budget <= 0:
                break
            budget -= len(short)
            if not node.models:
                continue
            fitting = [m for m in short if m.name not in node.models and self.eligible(m, node) is None]
            if len(fitting) < 2:
                continue
            for victim in sorted((p for p in node.models.values() if not p.pinned and not p.kept),
                                 key=lambda p: (-p.vram_mb, p.model)):
                budget -= len(fitting)
                position = self.placed[victim.model].index(victim)
                self.unplace(victim)
                chosen = []
                for model in fitting:
                    if model.name != victim.model and self.room(model, node) is None:
                        self.place(model, node, "")
                        chosen.append(model)
                if len(chosen) >= 2:
                    for model in chosen:
                        self.placed[model.name][-1].why = (
                            f"takes the room of {victim.model} ({len(chosen)} replicas in for one out); "
                            + self.greedy_why(model, node))
                    return True, budget
                for model in chosen:
                    self.unplace(self.placed[model.name][-1])
                self._attach(victim)
                self.placed[victim.model].insert(position, victim)
        return False, budget

    def _make_room(self, model: ModelReq, budget: int) -> tuple[bool, int]:
        """Move replicas off one eligible node (largest first) until the model fits there; undo on failure."""
        for node in self.nodes:
            if budget <= 0:
                return False, budget
            if model.name in node.models or self.eligible(model, node) is not None:
                continue
            movable = sorted((p for p in node.models.values() if not p.pinned and not p.kept),
                             key=lambda p: (-p.vram_mb, p.model))
            size = self.size(model, node)
            # bound: even with every movable replica gone, would it fit?
            freed_vram = sum(p.vram_mb for p in movable if p.resident)
            freed_disk = sum(p.disk_mb for p in movable)
            free_after = node.capacity_mb - node.planned_mb + freed_vram
            if model.resident and free_after < size:
                continue
            if not model.resident and free_after + node.offload_mb < size:
                continue
            if node.disk_mb is not None and node.disk_used_mb - freed_disk + model.disk_mb > node.disk_mb:
                continue
            moves: list[tuple[Placement, Placement]] = []
            order_before = {p.model: list(self.placed[p.model]) for p in movable}
            for placement in movable:
                if self.room(model, node) is None:
                    break
                if not placement.resident and node.disk_mb is None and not model.resident:
                    continue  # an on-demand replica takes no room an on-demand model needs
                other = self.by_model[placement.model]
                budget -= len(self.nodes)
                target = self.best_node(other, exclude=node.name)
                if target is None:
                    continue
                self.unplace(placement)
                self.place(other, target, f"moved here from {node.name} to make room for {model.name}; "
                           + self.greedy_why(other, target))
                moves.append((placement, self.placed[other.name][-1]))
            if self.room(model, node) is None:
                self.place(model, node, f"placed after moving {', '.join(m.model for m, _moved_to in moves)} away; "
                           + self.greedy_why(model, node))
                return True, budget
            for original, moved in reversed(moves):  # undo: this node cannot be freed enough
                self.unplace(moved)
                self._attach(original)
                self.placed[original.model] = order_before[original.model]
        return False, budget

    def unplaced_reason(self, model: ModelReq) -> str:
        notes = list(self.notes[model.name])
        if model.vram_mb is None:
            return "cannot estimate VRAM: set vram_mb in the catalog"
        allowed = [n for n in self.nodes if n.models_allowed and (n.gpu_capable or model.cpu_ok)]
        if not allowed:
            why = "no node allows models" if model.cpu_ok else "it is not cpu_ok and no GPU-capable node allows models"
            base = "no node may take it: " + why
        else:
            eligible = [n for n in allowed if self.eligible(model, n) is None]
            if not eligible:
                def reach(n: Node) -> int:
                    return n.capacity_mb + (0 if model.resident else n.offload_mb)

                largest = max(allowed, key=lambda n: (reach(n), n.name))
                too_small = [n for n in allowed if self.eligible(model, n) and "needs" in str(self.eligible(model, n))
                             and "disk" not in str(self.eligible(model, n))]
                if len(too_small) == len(allowed):
                    base = (f"needs {self.size(model, largest)} MB; largest node has {largest.capacity_mb} MB"
                            + (f" (+{largest.offload_mb} MB offload RAM)" if reach(largest) > largest.capacity_mb
                               else ""))
                else:
                    base = "no node may hold it: " + "; ".join(
                        sorted({str(self.eligible(model, n)) for n in allowed})[:3])
            elif len(eligible) < model.wanted:
                base = (f"needs {model.wanted} replicas on distinct hosts; only {len(eligible)} eligible "
                        f"node(s) can hold it ({model.vram_mb} MB)")
            else:
                candidates = [n for n in eligible if model.name not in n.models]
                reasons = sorted({f"{n.name}: {self.room(model, n)}" for n in candidates[:3] if self.room(model, n)})
                base = f"no room: needs {model.vram_mb} MB" + (f" ({'; '.join(reasons)})" if reasons else "")
        return "; ".join([base, *notes])


# --------------------------------------------------------------------------- plan

def _previous_pairs(previous: dict[str, Any] | None) -> set[tuple[str, str, str]]:
    pairs: set[tuple[str, str, str]] = set()
    if not previous:
        return pairs
    for name, entry in (previous.get("models") or {}).items():
        for host in entry.get("placed") or []:
            pairs.add(("model", name, host))
    for name, entry in (previous.get("services") or {}).items():
        for host in (entry or {}).get("placed") or []:
            pairs.add(("service", name, host))
    return pairs


def plan_fleet(hosts: list[dict[str, Any]], models: list[Any], services: list[Any] | None = None,
               options: PlanOptions | None = None, previous: dict[str, Any] | None = None,
               fleet: FleetInputs | None = None) -> dict[str, Any]:
    """Plan the fleet; returns the plan.json document (contract 2 plus explanations).

    ``hosts``: records ``{name, groups, hardware, hardware_source?, vars}`` of every inventory host
    (``groups``: every group the host is in; ``vars``: the schema's HOST_VARS it sets).
    """
    options = options or PlanOptions()
    fleet = fleet or FleetInputs()
    gpu_strategy, model_strategy = options.resolved()
    digest = inputs_digest(hosts, models, services or [], options, fleet)
    if previous and options.sticky and previous.get("inputs_digest") == digest and previous.get("schema") == SCHEMA:
        return copy.deepcopy(previous)  # nothing changed: the previous plan is the plan (byte-identical)
    warnings: list[str] = []
    nodes, undiscovered = build_nodes(hosts, options, warnings)
    node_map = {n.name: n for n in nodes}
    service_reqs = parse_services(services or [], warnings)
    served = {normalize_model_name(artefact): s.name for s in service_reqs for artefact in s.serves}
    model_reqs, skipped = parse_models(models, warnings, served)
    service_catalog = {s.name: s for s in service_reqs}

    services_summary = place_services(service_reqs, node_map, model_strategy, warnings,
                                      previous if options.sticky else None)
    for node in nodes:
        assign_gpus(node, service_catalog, gpu_strategy, warnings)

    for node in nodes:
        node.services_mb = node.planned_mb
    _host_pins(nodes, model_reqs, warnings)

    planner = _ModelPlanner(nodes, model_reqs, model_strategy, options, warnings)
    planner.run(previous)

    models_out: dict[str, Any] = {}
    unplaced: list[dict[str, Any]] = []
    for model in sorted(model_reqs, key=lambda m: m.name):
        placements = planner.placed[model.name]
        entry: dict[str, Any] = {
            "wanted": model.wanted, "placed": [p.host for p in placements], "vram_mb": model.vram_mb or 0,
            "vram_source": model.estimate_source, "cpu_ok": model.cpu_ok, "kind": model.kind,
            "why": {p.host: p.why for p in placements}, "aliases": list(model.aliases),
        }
        if model.params_b is not None:
            entry["params_b"] = model.params_b
        if model.alias:
            entry["alias"] = model.alias
        if model.keep_alive is not None:
            entry["keep_alive"] = model.keep_alive
        elif model.resident:
            entry["keep_alive"] = "-1"  # resident: Ollama keeps it loaded for ever after the warm-up
        entry["resident"] = model.resident
        entry["disk_mb"] = model.disk_mb
        entry["vram_by_host"] = {p.host: p.vram_mb for p in placements}
        if model.primary:
            entry["primary"] = model.primary
        if model.fallback:
            entry["fallback"] = list(model.fallback)
        if model.pins:
            entry["pin"] = list(model.pins)
        models_out[model.name] = entry
        missing = model.wanted - len(placements)
        if missing > 0:
            reason = planner.unplaced_reason(model)
            unplaced.append({"model": model.name, "missing": missing, "reason": reason})
            entry["unplaced_reason"] = reason
            warnings.append(f"model {model.name}: {len(placements)} of {model.wanted} replicas placed ({reason})")

    fleet_out, endpoints = _fleet_section(hosts, nodes, fleet, service_catalog, previous)
    sources, shares, seeds = model_sources(models_out, endpoints, fleet)
    for name, entry in models_out.items():
        entry["seed"] = seeds.get(name)

    nodes_out: dict[str, Any] = {}
    for node in nodes:
        capacity = _node_capacity(node, warnings, options)
        ollama = dict(endpoints[node.name])
        ollama["models"] = [{"name": name, "aliases": models_out[name]["aliases"],
                             **({"keep_alive": models_out[name]["keep_alive"]} if "keep_alive" in models_out[name]
                                else {}),
                             "source": sources[name].get(node.name, REGISTRY_SOURCE)} for name in sorted(node.models)]
        ollama["model_share"] = shares[node.name]
        ollama["gpu_uuids"] = [g.uuid for g in node.gpus if g.uuid and g.vendor == "nvidia"]
        nodes_out[node.name] = {
            "class": node.node_class, "vram_total_mb": node.capacity_mb, "vram_planned_mb": capacity["peak_mb"],
            "models": sorted(node.models), "services": sorted(node.services, key=lambda s: s["name"]),
            "gpu_capable": node.gpu_capable, "models_allowed": node.models_allowed,
            "hardware_source": node.hardware_source, "gpus": _gpu_breakdown(node), "ollama": ollama,
            **capacity,
        }

    new_pairs = {("model", m, h) for m, e in models_out.items() for h in e["placed"]}
    new_pairs |= {("service", s, h) for s, e in services_summary.items() for h in e["placed"]}
    still_wanted = {("model", m) for m in models_out} | {("service", s) for s in services_summary}
    moved = sorted(f"{kind} {name} left {host}" for kind, name, host in _previous_pairs(previous) - new_pairs
                   if (kind, name) in still_wanted)

    return {
        "schema": SCHEMA,
        "inputs_digest": digest,
        "strategy": options.strategy,
        "gpu_strategy": gpu_strategy,
        "model_strategy": model_strategy,
        "nodes": nodes_out,
        "models": models_out,
        "services": services_summary,
        "unplaced": unplaced,
        "skipped": skipped,
        "undiscovered": undiscovered,
        "fleet": fleet_out,
        "moved": len(moved),
        "moved_detail": moved,
        "warnings": list(dict.fromkeys(warnings)),
    }


REGISTRY_SOURCE: dict[str, Any] = {"kind": "registry"}


def _is_public(address: str) -> bool:
    """Whether an address is a global (internet) IP; host names and private, CGNAT and ULA addresses are not."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return ip.is_global


def model_sources(models_out: dict[str, Any], endpoints: dict[str, dict[str, Any]], fleet: FleetInputs,
                  ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]], dict[str, str]]:
    """Where each node gets each of its models: the registry, or a peer's model share (fetched once per fleet).

    A model placed on two or more nodes is pulled from the registry by one of them, its seed, and copied
    by the others from the seed's read-only model share over the LAN (``ollama_blob_sync`` verifies every
    blob's sha256; a failed copy falls back to a registry pull). The seed is chosen among the holders
    with a non-loopback address: a private address (or a host name) before a public IP, then a holder
    whose Ollama already serves the network (its address is known to reach the fleet), then the first
    by name. None (every holder on loopback, or ``model_share`` off) means every holder pulls. Returns (``{model: {host: source}}``,
    ``{host: model_share}`` for ``nodes[host].ollama.model_share``, ``{model: seed host}``).
    """
    port = int(fleet.model_share_port)
    sources: dict[str, dict[str, dict[str, Any]]] = {}
    seeds: dict[str, str] = {}
    for name, entry in sorted(models_out.items()):
        holders = sorted(entry.get("placed") or [])
        sources[name] = {}
        if not fleet.model_share or len(holders) < 2:
            continue
        reachable = [h for h in holders if endpoints.get(h, {}).get("address")
                     and not fleet_endpoints.is_loopback(str(endpoints[h]["address"]))]
        if not reachable:
            continue
        # LAN first (a public address, such as a rented cloud GPU's, would send every copy over the internet),
        # then a holder that already serves the network, then the name
        seed = min(reachable, key=lambda h: (_is_public(str(endpoints[h]["address"])), not endpoints[h].get("network"),
                                             h))
        seeds[name] = seed
        url = "http://" + fleet_endpoints.host_port(str(endpoints[seed]["address"]), port)
        for host in holders:
            if host != seed:
                sources[name][host] = {"kind": "peer", "node": seed, "url": url}
    seeded: dict[str, list[str]] = {}
    for name, seed in seeds.items():
        seeded.setdefault(seed, []).append(name)
    shares: dict[str, dict[str, Any]] = {}
    for host, endpoint in sorted(endpoints.items()):
        models = sorted(seeded.get(host, []))
        address = str(endpoint.get("address")) if models else None
        shares[host] = {"serve": bool(models), "models": models, "port": port, "listen": address,
                        "url": ("http://" + fleet_endpoints.host_port(address, port)) if address else None}
    return sources, shares, seeds


def _host_pins(nodes: list[Node], models: list[ModelReq], warnings: list[str]) -> None:
    """The hosts' own lists (pmoves_models_pin) become pins of the catalog entries they name."""
    by_name = {m.name: m for m in models}
    for node in nodes:
        for raw in node.pins:
            name = normalize_model_name(raw)
            model = by_name.get(name)
            if model is None:
                warnings.append(f"host {node.name}: pmoves_models_pin names {raw}, which is not in pmoves_models "
                                "(or is not an Ollama model); add it to the catalog")
                continue
            if node.name in model.pins:
                continue
            model.pins.append(node.name)
            model.pin_sources[node.name] = "host list"
            model.wanted = max(model.wanted, len(model.pins))


def _slowdown(spill_mb: int, size_mb: int) -> float:
    """Rough generation slowdown of a model with spill_mb of size_mb in system RAM (RAM ~10x slower than VRAM)."""
    share = min(max(spill_mb / size_mb, 0.0), 1.0) if size_mb else 0.0
    return 1.0 + 9.0 * share


def _node_capacity(node: Node, warnings: list[str], options: PlanOptions) -> dict[str, Any]:
    """Contract 2 per node: resident, on demand with the peak, offload, disk, every placement's reason; warnings."""
    placements = sorted(node.models.values(), key=lambda p: p.model)
    on_demand = [p for p in placements if not p.resident]
    resident_mb = sum(p.vram_mb for p in placements if p.resident)
    top = sorted(on_demand, key=lambda p: (-p.vram_mb, p.model))[:node.max_loaded]
    peak = node.peak_mb()
    left = node.capacity_mb - node.planned_mb  # VRAM an on-demand model finds when loaded alone
    if peak > node.capacity_mb and on_demand:
        largest = top[0]
        warnings.append(
            f"node {node.name}: planned peak {peak} MB (services {node.services_mb} + resident {resident_mb} + the "
            f"{len(top)} largest on-demand models {', '.join(p.model for p in top)}) exceeds its {node.capacity_mb} MB "
            f"of VRAM: when they are asked for together Ollama unloads one to load another (expected slowdown: a "
            f"reload of up to {_gb(largest.vram_mb)}, about {max(1, round(largest.vram_mb / 2000))} s from disk, "
            f"per switch)")
    elif node.capacity_mb and peak / node.capacity_mb > options.warn_planned_share:
        warnings.append(f"node {node.name} is planned at {round(100 * peak / node.capacity_mb)}% of its usable VRAM "
                        f"({peak} of {node.capacity_mb} MB)")
    for placement in on_demand:
        spill = placement.vram_mb - left
        if spill > 0:
            warnings.append(f"model {placement.model} on {node.name}: {placement.vram_mb} MB when loaded, {max(left, 0)} "
                            f"MB VRAM left by services and resident models; Ollama spills {spill} MB to RAM "
                            f"(expected slowdown: about {_slowdown(spill, placement.vram_mb):.1f}x slower generation)")
    context, parallel, kv_type = node.env
    return {
        "reserved_mb": node.planned_mb,
        "services_mb": node.services_mb,
        "resident": [p.model for p in placements if p.resident],
        "on_demand": [p.model for p in on_demand],
        "peak_mb": peak,
        "peak_models": sorted(p.model for p in top),
        "offload_mb": node.offload_mb,
        "max_loaded": node.max_loaded,
        "disk": {"total_mb": node.disk_mb, "used_mb": node.disk_used_mb,
                 "free_mb": node.disk_mb - node.disk_used_mb if node.disk_mb is not None else None},
        "ollama_env": {"context_length": context, "num_parallel": parallel, "kv_cache_type": kv_type},
        "placements": {p.model: {"vram_mb": p.vram_mb, "disk_mb": p.disk_mb, "resident": p.resident,
                                 "spill_mb": max(p.vram_mb - left, 0) if not p.resident else 0,
                                 "pinned": p.pinned, "why": p.why} for p in placements},
    }


def _fleet_section(hosts: list[dict[str, Any]], nodes: list[Node], fleet: FleetInputs,
                   catalog: dict[str, ServiceSpec], previous: dict[str, Any] | None = None,
                   ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Membership from the inventory groups, the WireGuard address plan and every Ollama endpoint.

    Mesh addresses of the previous plan are kept (whatever ``sticky`` says): renumbering a running
    mesh cuts every tunnel, and a newcomer's hash collision must not move an existing member."""
    names = sorted(str(h["name"]) for h in hosts)
    groups: dict[str, list[str]] = {}
    for host in hosts:
        for group in host.get("groups") or []:
            if group not in IMPLICIT_GROUPS:
                groups.setdefault(str(group), []).append(str(host["name"]))
    groups = {group: sorted(members) for group, members in sorted(groups.items())}
    gateway_on = gateway_enabled(groups, fleet.gateway_enabled)
    gateway_hosts = groups.get(GATEWAY_GROUP, []) if gateway_on else []
    try:
        prior = (((previous or {}).get("fleet") or {}).get("wireguard") or {})
        wireguard = fleet_endpoints.wireguard_addresses(
            hosts, fleet.wireguard_network,
            prior.get("addresses") if prior.get("network") == fleet.wireguard_network else None)
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    holders = {n.name for n in nodes if n.models}
    runs = holders | {n.name for n in nodes if n.node_class in MODEL_SERVING_CLASSES}
    users: dict[str, list[str]] = {}
    for node in nodes:
        for service in node.services:
            if catalog[service["name"]].uses_ollama:
                users.setdefault(node.name, []).append(service["name"])
    planned = [h for h in hosts if str(h["name"]) in {n.name for n in nodes}]
    endpoints, errors = fleet_endpoints.decide(planned, runs, holders, gateway_hosts, users,
                                               default_port=fleet.ollama_port, wireguard=wireguard)
    if errors:
        raise PlanError("; ".join(errors))
    fleet_out = {
        "hosts": names,
        "groups": groups,
        "gateway": {"enabled": gateway_on, "hosts": gateway_hosts},
        "wireguard": {"network": fleet.wireguard_network, "hosts": sorted(wireguard),
                      "addresses": dict(sorted(wireguard.items()))},
        "ollama_port": int(fleet.ollama_port),
    }
    return fleet_out, endpoints


def inputs_digest(hosts: list[dict[str, Any]], models: list[Any], services: list[Any], options: PlanOptions,
                  fleet: FleetInputs | None = None) -> str:
    """sha256 of everything a plan depends on (hosts, catalogs, options, fleet settings, planner version)."""
    # The catalogs as the planner reads them (declared keys only), so the digest and the plan agree.
    canonical = json.dumps({"hosts": sorted(hosts, key=lambda h: str(h.get("name"))),
                            "models": [declared_view(m, MODEL_FIELDS) for m in models or []],
                            "services": [declared_view(s, SERVICE_FIELDS) for s in services or []],
                            "options": asdict(options),
                            "fleet": asdict(fleet or FleetInputs()), "version": PLANNER_VERSION},
                           sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _gpu_breakdown(node: Node) -> list[dict[str, Any]]:
    """Per GPU: services on it plus the models' share (Ollama splits layers by free memory)."""
    if not node.gpus:
        return []
    models_mb = node.peak_mb() - node.services_mb  # resident + the peak's on-demand models
    free = [max(g.usable_mb - g.services_mb, 0) for g in node.gpus]
    total_free = sum(free) or 1
    shares = [models_mb * f // total_free for f in free]
    if shares:
        shares[free.index(max(free))] += models_mb - sum(shares)
    # one share per GPU by construction (zip(strict=True) would need Python 3.10; nodes run 3.8)
    return [{"index": g.index, "name": g.name, "total_mb": g.total_mb, "usable_mb": g.usable_mb,
             "unified_memory": g.unified, "services": sorted(g.services), "services_mb": g.services_mb,
             "models_mb": share, "planned_mb": g.services_mb + share} for g, share in zip(node.gpus, shares)]


def dumps_plan(plan: dict[str, Any]) -> str:
    """The one serialisation of plan.json: sorted keys, fixed separators, trailing newline."""
    return json.dumps(plan, sort_keys=True, indent=2, ensure_ascii=False, separators=(",", ": ")) + "\n"
