"""Inventory checks run before site.yml touches any host (playbooks/validate.yml).

Pure functions over plain data: the inventory's groups, the few ``pmoves_*`` variables each host
sees, and the fleet-wide catalogs. Every problem becomes a sentence a user can act on (what is
wrong, where, what to write instead). ``errors`` stop the run; ``warnings`` are printed and carried
into the report.

Documented rules (docs/inventory.md):

* every host is in exactly one node-class group (gpu_nodes, edge_nodes, apu_nodes, npu_nodes,
  cpu_nodes); a host in none takes ``pmoves_default_node_class`` when it is set, else it is an error;
* ``pmoves_strategy`` is one of STRATEGIES;
* ``pmoves_models`` entries: a name (or a bare string), ``replicas`` an int >= 1, ``pin`` hosts that
  exist, ``vram_mb``/``context`` positive ints, ``cpu_ok`` a bool, ``alias`` a string;
* ``pmoves_services`` entries: ``name`` and ``vram_mb`` (int >= 0) required, ``primary``/``fallback``
  hosts that exist, ``classes`` known node classes, ``port`` 1-65535;
* ``pmoves_gateway_enabled`` (default: true when the inventory declares a ``gateway`` group) needs at
  least one host in that group; service entries may carry extra keys (the planner passes them on);
* a declared ``pmoves_hardware`` is a mapping whose ``node_class`` is a known class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name

# Inventory group -> node class (DESIGN "Node classes").
CLASS_GROUPS: dict[str, str] = {
    "gpu_nodes": "gpu",
    "edge_nodes": "edge",
    "apu_nodes": "apu",
    "npu_nodes": "npu",
    "cpu_nodes": "cpu",
}
NODE_CLASSES: tuple[str, ...] = tuple(CLASS_GROUPS.values())
# Same values as placement.STRATEGIES (a unit test keeps them in step).
STRATEGIES: tuple[str, ...] = ("manual", "vram_based", "latency_optimized", "isolation_first", "balanced",
                               "spread", "binpack")
MODEL_KEYS = frozenset({"name", "replicas", "pin", "vram_mb", "context", "cpu_ok", "alias", "kind", "params_b",
                        "quant", "keep_alive", "tags"})
GATEWAY_GROUP = "gateway"
# Groups Ansible always has; they are not node classes and need no check.
IMPLICIT_GROUPS = frozenset({"all", "ungrouped"})


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


def _as_list(value: Any) -> list[Any] | None:
    """A host list may be written as one string or a list; None when it is neither."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _int_errors(where: str, entry: dict[str, Any], key: str, low: int, high: int | None = None,
                expected: str | None = None) -> list[str]:
    """The error for an integer field ``key`` of ``entry`` outside ``low``..``high``; none when absent.

    ``expected`` words the rule in the message; by default "an integer >= <low>".
    """
    if key not in entry:
        return []
    value = entry[key]
    if _is_int(value) and int(value) >= low and (high is None or int(value) <= high):
        return []
    return [f"{where}: {key} must be {expected or f'an integer >= {low}'}, got {value!r}"]


def _host_errors(where: str, entry: dict[str, Any], key: str, role: str, hosts: set[str]) -> list[str]:
    """Errors for a field naming inventory hosts (one name or a list), e.g. ``pin`` or ``fallback``."""
    names = _as_list(entry.get(key))
    if names is None:
        return [f"{where}: {key} must be a host name or a list of host names"]
    return [f"{where}: {role} host {name!r} is not in the inventory" for name in names if name not in hosts]


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
    """pmoves_models: list of names or mappings (DESIGN contract 2, model catalog entry)."""
    result = CheckResult()
    if models is None:
        return result
    if not isinstance(models, list):
        result.errors.append(f"pmoves_models must be a list, got {type(models).__name__}")
        return result
    seen: dict[str, int] = {}
    for index, raw in enumerate(models):
        where = f"pmoves_models[{index}]"
        entry = {"name": raw} if isinstance(raw, str) else raw
        if not isinstance(entry, dict):
            result.errors.append(f"{where} must be a model name or a mapping with a name, got {raw!r}")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            result.errors.append(f"{where} has no name: write {{name: \"llama3.2:1b\", replicas: 1}}")
            continue
        where = f"{where} ({name})"
        key = normalize_model_name(name)
        if key in seen:
            result.warnings.append(f"{where} repeats pmoves_models[{seen[key]}]; the first entry is used")
        seen.setdefault(key, index)
        result.errors += _int_errors(where, entry, "replicas", 1)
        for int_key in ("vram_mb", "context"):
            result.errors += _int_errors(where, entry, int_key, 1, expected="a positive integer")
        if "cpu_ok" in entry and not isinstance(entry["cpu_ok"], bool):
            result.errors.append(f"{where}: cpu_ok must be true or false, got {entry['cpu_ok']!r}")
        if "alias" in entry and not (isinstance(entry["alias"], str) and entry["alias"].strip()):
            result.errors.append(f"{where}: alias must be a non-empty string, got {entry['alias']!r}")
        result.errors += _host_errors(where, entry, "pin", "pinned", hosts)
        pins, replicas = _as_list(entry.get("pin")), entry.get("replicas")
        if pins is not None and _is_int(replicas) and len(pins) > int(replicas):
            result.warnings.append(f"{where}: {len(pins)} pins but replicas {replicas}; "
                                   f"{len(pins)} replicas will be placed")
        unknown = sorted(set(entry) - MODEL_KEYS)
        if unknown:
            result.warnings.append(f"{where}: unknown keys {', '.join(unknown)} are ignored "
                                   f"(known: {', '.join(sorted(MODEL_KEYS))})")
    return result


def check_services(services: Any, hosts: set[str]) -> CheckResult:
    """pmoves_services: mappings with name and vram_mb (DESIGN contract 2, service catalog entry)."""
    result = CheckResult()
    if services is None:
        return result
    if not isinstance(services, list):
        result.errors.append(f"pmoves_services must be a list, got {type(services).__name__}")
        return result
    seen: set[str] = set()
    for index, entry in enumerate(services):
        where = f"pmoves_services[{index}]"
        if not isinstance(entry, dict):
            result.errors.append(f"{where} must be a mapping with name and vram_mb, got {entry!r}")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            result.errors.append(f"{where} has no name: write {{name: whisper, vram_mb: 4000}}")
            continue
        where = f"{where} ({name})"
        if name in seen:
            result.warnings.append(f"{where} is listed more than once; the first entry is used")
        seen.add(name)
        if "vram_mb" not in entry:
            result.errors.append(f"{where}: vram_mb is required (0 for a CPU service)")
        result.errors += _int_errors(where, entry, "vram_mb", 0)
        if "gpu" in entry and not isinstance(entry["gpu"], bool):
            result.errors.append(f"{where}: gpu must be true or false, got {entry['gpu']!r}")
        result.errors += _int_errors(where, entry, "replicas", 1)
        result.errors += _int_errors(where, entry, "port", 1, 65535, expected="an integer 1-65535")
        classes = _as_list(entry.get("classes"))
        if classes is None:
            result.errors.append(f"{where}: classes must be a list of node classes")
        else:
            bad = [c for c in classes if c not in NODE_CLASSES]
            if bad:
                result.errors.append(f"{where}: unknown classes {bad}; use {', '.join(NODE_CLASSES)}")
        primary = entry.get("primary")
        if primary not in (None, "") and primary not in hosts:
            result.errors.append(f"{where}: primary host {primary!r} is not in the inventory")
        result.errors += _host_errors(where, entry, "fallback", "fallback", hosts)
    return result


def check_inventory(groups: dict[str, list[str]], hostvars: dict[str, dict[str, Any]],
                    fleet: dict[str, Any]) -> CheckResult:
    """All checks. ``hostvars`` holds per host only the pmoves_* variables the checks read
    (pmoves_hardware); ``fleet`` the fleet-wide settings as the controller sees them
    (pmoves_models, pmoves_services, pmoves_strategy, pmoves_gateway_enabled, pmoves_default_node_class)."""
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
    strategy = fleet.get("pmoves_strategy", "balanced")
    if strategy not in STRATEGIES:
        result.errors.append(f"pmoves_strategy is {strategy!r}; use one of {', '.join(STRATEGIES)}")
    host_set = set(hosts)
    _merge(result, check_models(fleet.get("pmoves_models"), host_set))
    _merge(result, check_services(fleet.get("pmoves_services"), host_set))
    # Default: enabled when the inventory declares a gateway group (a declared but empty group is a mistake).
    enabled = fleet.get("pmoves_gateway_enabled", GATEWAY_GROUP in groups)
    if not isinstance(enabled, bool):
        result.errors.append(f"pmoves_gateway_enabled must be true or false, got {enabled!r}")
    elif enabled and not groups.get(GATEWAY_GROUP):
        result.errors.append(f"the gateway is enabled but the inventory has no host in group {GATEWAY_GROUP!r}; "
                             "add one (a CPU node such as the API VPS) or set pmoves_gateway_enabled: false")
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
