"""Inventory checks run before site.yml touches any host (playbooks/validate.yml).

Pure functions over plain data: the inventory's groups, the few ``pmoves_*`` variables each host
sees, and the fleet-wide catalogs. Every problem becomes a sentence a user can act on (what is
wrong, where, what to write instead). ``errors`` stop the run; ``warnings`` are printed and carried
into the report.

The rules are those of plugins/module_utils/fleet_schema.py (the one definition of the catalogs,
classes, strategies, host variables and name grammar; docs/inventory.md shows its tables):

* every host is in exactly one node-class group; a host in none takes ``pmoves_default_node_class``
  when it is set, else it is an error;
* ``pmoves_strategy`` (``pmoves_gpu_strategy``, ``pmoves_model_strategy``) is a known strategy;
* ``pmoves_models`` / ``pmoves_services`` entries use declared keys of the right type only (an unknown
  key is an error that lists the known ones), name hosts that exist, and names that follow the grammar;
* ``pmoves_gateway_enabled`` (default: true when the inventory declares a ``gateway`` group) needs at
  least one host in that group;
* a declared ``pmoves_hardware`` is a mapping whose ``node_class`` is a known class;
* the Ollama endpoints can be decided (fleet_endpoints): a node whose Ollama the gateway uses from
  another host can serve the network (not ``pmoves_ollama_serve_network: false``) at an address others
  reach (not loopback); the WireGuard address plan is consistent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils import fleet_endpoints
from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import (
    CLASS_OF_GROUP,
    GATEWAY_GROUP,
    GPU_STRATEGIES,
    HOST_VARS,
    IMPLICIT_GROUPS,
    MODEL_KEYS,
    MODEL_SERVING_CLASSES,
    MODEL_STRATEGIES,
    NODE_CLASSES,
    PLANNER_DEFAULTS,
    PLANNER_VARS,
    STRATEGIES,
    check_host_vars,
    check_model,
    check_service,
    gateway_enabled,
    model_entry,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name

__all__ = ["CLASS_GROUPS", "GATEWAY_GROUP", "MODEL_KEYS", "NODE_CLASSES", "STRATEGIES", "CheckResult",
           "check_inventory", "format_errors"]

CLASS_GROUPS: dict[str, str] = CLASS_OF_GROUP  # inventory group -> node class


@dataclass
class CheckResult:
    """Outcome of the inventory checks; ``classes`` maps every host to its node class."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    classes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"errors": list(self.errors), "warnings": list(self.warnings), "classes": dict(self.classes)}


def _is_int(value: Any) -> bool:
    """True for real ints (YAML `2`), not bools; strings of digits count (extra-vars arrive as text)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().isdigit()


def check_node_classes(groups: dict[str, list[str]], hosts: list[str], default_class: str | None,
                       declared: dict[str, Any] | None = None) -> CheckResult:
    """Every host in exactly one node-class group (or the documented default)."""
    result = CheckResult()
    declared = declared or {}
    if default_class not in (None, "") and default_class not in NODE_CLASSES:
        result.errors.append(f"pmoves_default_node_class is {default_class!r}; use one of {', '.join(NODE_CLASSES)}")
        default_class = None
    for host in hosts:
        member_of = [g for g in CLASS_GROUPS if host in (groups.get(g) or [])]
        if len(member_of) > 1:
            result.errors.append(f"host {host} is in {len(member_of)} node-class groups ({', '.join(member_of)}); "
                                 "put it in exactly one")
            continue
        if not member_of:
            if default_class:
                result.classes[host] = default_class
                result.warnings.append(f"host {host} is in no node-class group; using pmoves_default_node_class "
                                       f"{default_class}")
            else:
                result.errors.append(f"host {host} is in no node-class group; add it to one of "
                                     f"{', '.join(CLASS_GROUPS)} (or set pmoves_default_node_class)")
            continue
        result.classes[host] = CLASS_GROUPS[member_of[0]]
        hardware = declared.get(host)
        if isinstance(hardware, dict) and hardware.get("node_class") not in (None, result.classes[host]):
            result.warnings.append(f"host {host} is in {member_of[0]} but its declared pmoves_hardware says "
                                   f"node_class {hardware.get('node_class')}; the group decides")
    return result


def check_hardware(host: str, hardware: Any) -> list[str]:
    """A declared pmoves_hardware must look like contract 1 (the planner trusts it)."""
    if hardware is None:
        return []
    where = f"host {host}: pmoves_hardware"
    if not isinstance(hardware, dict):
        return [f"{where} must be a mapping (contract 1), got {type(hardware).__name__}"]
    errors = []
    if "node_class" in hardware and hardware["node_class"] not in NODE_CLASSES:
        errors.append(f"{where}.node_class is {hardware['node_class']!r}; use one of {', '.join(NODE_CLASSES)}")
    if "memory_mb" in hardware and not _is_int(hardware["memory_mb"]):
        errors.append(f"{where}.memory_mb must be an integer (MB), got {hardware['memory_mb']!r}")
    gpus = hardware.get("gpus", [])
    if not isinstance(gpus, list):
        errors.append(f"{where}.gpus must be a list, got {type(gpus).__name__}")
        gpus = []
    for index, gpu in enumerate(gpus):
        if not isinstance(gpu, dict):
            errors.append(f"{where}.gpus[{index}] must be a mapping")
        elif not _is_int(gpu.get("memory_total_mb")):
            errors.append(f"{where}.gpus[{index}].memory_total_mb must be an integer (MB), "
                          f"got {gpu.get('memory_total_mb')!r}")
    return errors


def check_models(models: Any, hosts: set[str]) -> CheckResult:
    """pmoves_models: list of names or mappings (fleet_schema.MODEL_FIELDS)."""
    result = CheckResult()
    if models is None:
        return result
    if not isinstance(models, list):
        result.errors.append(f"pmoves_models must be a list, got {type(models).__name__}")
        return result
    seen: dict[str, int] = {}
    for index, raw in enumerate(models):
        errors, warnings = check_model(index, raw, hosts)
        result.errors += errors
        result.warnings += warnings
        entry = model_entry(raw)
        if errors or entry is None:
            continue
        key = normalize_model_name(entry["name"])
        if key in seen:
            result.warnings.append(f"pmoves_models[{index}] ({entry['name']}) repeats pmoves_models[{seen[key]}]; "
                                   "the first entry is used")
        seen.setdefault(key, index)
    return result


def check_services(services: Any, hosts: set[str]) -> CheckResult:
    """pmoves_services: mappings with name and vram_mb (fleet_schema.SERVICE_FIELDS)."""
    result = CheckResult()
    if services is None:
        return result
    if not isinstance(services, list):
        result.errors.append(f"pmoves_services must be a list, got {type(services).__name__}")
        return result
    seen: set[str] = set()
    for index, entry in enumerate(services):
        errors, warnings = check_service(index, entry, hosts)
        result.errors += errors
        result.warnings += warnings
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            if entry["name"] in seen:
                result.warnings.append(f"pmoves_services[{index}] ({entry['name']}) is listed more than once; "
                                       "the first entry is used")
            seen.add(entry["name"])
    return result


def check_planner_settings(fleet: dict[str, Any]) -> list[str]:
    """pmoves_strategy and the other planner knobs (fleet_schema.PLANNER_DEFAULTS)."""
    errors = []
    strategy = fleet.get("pmoves_strategy", PLANNER_DEFAULTS["strategy"])
    if strategy not in STRATEGIES:
        errors.append(f"pmoves_strategy is {strategy!r}; use one of {', '.join(STRATEGIES)}")
    for var, allowed in (("pmoves_gpu_strategy", GPU_STRATEGIES), ("pmoves_model_strategy", MODEL_STRATEGIES)):
        value = fleet.get(var)
        if value not in (None, "") and value not in allowed:
            errors.append(f"{var} is {value!r}; use one of {', '.join(allowed)}")
    for knob, var in PLANNER_VARS.items():
        value, default = fleet.get(var), PLANNER_DEFAULTS[knob]
        if value is None or knob in ("strategy", "gpu_strategy", "model_strategy"):
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            errors.append(f"{var} must be true or false, got {value!r}")
        elif isinstance(default, int) and not isinstance(default, bool) and not _is_int(value):
            errors.append(f"{var} must be an integer, got {value!r}")
        elif isinstance(default, float):
            try:
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError
            except (TypeError, ValueError):
                errors.append(f"{var} must be a number between 0 and 1, got {value!r}")
    return errors


def check_endpoints(hosts: list[str], classes: dict[str, str], hostvars: dict[str, dict[str, Any]],
                    groups: dict[str, list[str]], fleet: dict[str, Any], gateway_on: bool) -> list[str]:
    """The Ollama listen decision for every host that may hold models, as the planner will make it."""
    records = [{"name": h, "vars": {k: v for k, v in (hostvars.get(h) or {}).items() if k in HOST_VARS}}
               for h in hosts]
    try:
        wireguard = fleet_endpoints.wireguard_addresses(records, fleet.get("pmoves_wireguard_network"))
    except ValueError as exc:
        return [str(exc)]
    models = fleet.get("pmoves_models") if isinstance(fleet.get("pmoves_models"), list) else []
    any_cpu_ok = any(isinstance(m, dict) and m.get("cpu_ok") is True for m in models)
    may_hold = {h for h in hosts if (hostvars.get(h) or {}).get("pmoves_models_allowed", True) is not False
                and (classes.get(h) in MODEL_SERVING_CLASSES or any_cpu_ok) and models}
    runs = may_hold | {h for h in hosts if classes.get(h) in MODEL_SERVING_CLASSES}
    gateway_hosts = [h for h in groups.get(GATEWAY_GROUP) or [] if h in hosts] if gateway_on else []
    port = fleet.get("pmoves_ollama_port")
    _endpoints, errors = fleet_endpoints.decide(records, runs, may_hold, gateway_hosts,
                                                default_port=int(port) if _is_int(port) else None, wireguard=wireguard)
    return errors


# The wireguard role's inputs this check reads besides fleet_schema.HOST_VARS (not planner inputs: they stay out of
# the plan's inputs digest).
WIREGUARD_VARS = ("pmoves_wireguard_topology", "pmoves_wireguard_hub", "pmoves_wireguard_endpoint")


def check_wireguard(hosts: list[str], hostvars: dict[str, dict[str, Any]]) -> list[str]:
    """The topology is one the role renders and a hub topology's hub is a mesh member with an endpoint the spokes
    dial (the role would otherwise stop in the WireGuard play, after the base play changed every host)."""
    members = [h for h in hosts if (hostvars.get(h) or {}).get("pmoves_wireguard_enabled") is True]
    errors = []
    for host in members:
        host_vars = hostvars.get(host) or {}
        topology = host_vars.get("pmoves_wireguard_topology") or "mesh"
        if topology not in ("mesh", "hub"):
            errors.append(f"host {host}: pmoves_wireguard_topology must be mesh or hub, got {topology!r}")
        if topology != "hub":
            continue
        hub = host_vars.get("pmoves_wireguard_hub")
        if not hub or hub not in members:
            errors.append(f"host {host}: pmoves_wireguard_topology is hub but pmoves_wireguard_hub ({hub!r}) is not a "
                          f"host with pmoves_wireguard_enabled: true; name the exit node (seed 000: pmoves-vps-kvm2)")
        elif not str((hostvars.get(hub) or {}).get("pmoves_wireguard_endpoint") or "").strip():
            errors.append(f"host {hub}: it is the WireGuard hub of {host} but has no pmoves_wireguard_endpoint; set "
                          "its public address:port (e.g. 203.0.113.7:51820) so the spokes can dial it")
    return sorted(set(errors))


def check_host_pins(hostvars: dict[str, dict[str, Any]], catalog: Any) -> list[str]:
    """Warnings for a host's own model list (pmoves_models_pin) naming a model the catalog lacks."""
    names = set()
    for raw in catalog if isinstance(catalog, list) else []:
        name = raw if isinstance(raw, str) else (raw.get("name") if isinstance(raw, dict) else None)
        if isinstance(name, str) and name.strip():
            names.add(normalize_model_name(name))
    warnings = []
    for host, host_vars in sorted(hostvars.items()):
        pins = (host_vars or {}).get("pmoves_models_pin")
        for pin in pins if isinstance(pins, list) else []:
            if isinstance(pin, str) and normalize_model_name(pin) not in names:
                warnings.append(f"host {host}: pmoves_models_pin names {pin}, which is not in pmoves_models; "
                                "the planner ignores it (add it to the catalog)")
    return warnings


def check_inventory(groups: dict[str, list[str]], hostvars: dict[str, dict[str, Any]],
                    fleet: dict[str, Any]) -> CheckResult:
    """All checks. ``hostvars`` holds per host only the variables the checks read (pmoves_hardware and
    fleet_schema.HOST_VARS); ``fleet`` the fleet-wide settings as the controller sees them (pmoves_models,
    pmoves_services, pmoves_strategy and the planner knobs, pmoves_gateway_enabled,
    pmoves_default_node_class, pmoves_ollama_port, pmoves_wireguard_network)."""
    hosts = sorted(set(groups.get("all") or []) | set(hostvars))
    result = CheckResult()
    if not hosts:
        result.errors.append("the inventory has no hosts; pass one with -i inventories/<fleet>")
        return result
    declared = {h: (hostvars.get(h) or {}).get("pmoves_hardware") for h in hosts}
    classes = check_node_classes(groups, hosts, fleet.get("pmoves_default_node_class"), declared)
    _merge(result, classes)
    result.classes = classes.classes
    for host in hosts:
        result.errors.extend(check_hardware(host, declared[host]))
        result.errors.extend(check_host_vars(host, hostvars.get(host) or {}))
    result.errors.extend(check_planner_settings(fleet))
    host_set = set(hosts)
    models = check_models(fleet.get("pmoves_models"), host_set)
    services = check_services(fleet.get("pmoves_services"), host_set)
    _merge(result, models)
    _merge(result, services)
    result.warnings.extend(check_host_pins(hostvars, fleet.get("pmoves_models")))
    # Default: enabled when the inventory declares a gateway group (a declared but empty group is a mistake).
    enabled = fleet.get("pmoves_gateway_enabled")
    if enabled is not None and not isinstance(enabled, bool):
        result.errors.append(f"pmoves_gateway_enabled must be true or false, got {enabled!r}")
        enabled = None
    gateway_on = gateway_enabled(groups, enabled)
    if gateway_on and not groups.get(GATEWAY_GROUP):
        result.errors.append(f"the gateway is enabled but the inventory has no host in group {GATEWAY_GROUP!r}; "
                             "add one (a CPU node such as the API VPS) or set pmoves_gateway_enabled: false")
    result.errors.extend(check_endpoints(hosts, result.classes, hostvars, groups, fleet, gateway_on))
    result.errors.extend(check_wireguard(hosts, hostvars))
    for group in sorted(set(groups) - IMPLICIT_GROUPS - set(CLASS_GROUPS)):
        if group.endswith("_nodes"):
            result.warnings.append(f"group {group} looks like a node class but is not one of "
                                   f"{', '.join(CLASS_GROUPS)}; its hosts get no class from it")
    return result


def _merge(into: CheckResult, other: CheckResult) -> None:
    into.errors.extend(other.errors)
    into.warnings.extend(other.warnings)


def format_errors(result: CheckResult) -> str:
    """One message for fail: every error on its own line, then how to proceed."""
    lines = [f"the inventory has {len(result.errors)} problem(s); nothing was changed on any host:"]
    lines += [f"  - {error}" for error in result.errors]
    lines.append("See docs/inventory.md for the inventory format.")
    return "\n".join(lines)
