"""The fleet schema: the one definition of what an inventory may say and what the planner reads.

Pure data and functions, no Ansible import. Everything that used to be copied between the
validator, the planner, the fleet_plan action, the playbooks and the docs lives here:

* node classes and their inventory groups, the classes that serve models, the functional groups
  (``gateway``, ``mesh_hub``, ``monitoring``);
* the GPU and model strategies and the planner's defaults;
* the model and service catalog entries: every key with its type, its meaning and who reads it.
  A key that is not declared is an error that names the entry and lists the known keys; a few
  keys that earlier releases accepted and nobody read are refused with the reason;
* the host variables the planner reads (knobs and the inputs of the Ollama listen decision);
* the name grammar: model names and aliases follow Ollama's (``ollama_library.validate_model_name``),
  service names the same character rules (no ``..``, whitespace or control characters).

``check_model`` / ``check_service`` validate one entry (used by ``inventory_checks``);
``read_model`` / ``read_service`` turn a validated entry into the typed record the planner uses,
reading only declared keys; ``markdown_table`` renders the tables of docs/inventory.md (a unit
test keeps the doc and this module in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import (
    normalize_model_name,
    validate_model_name,
)

# --------------------------------------------------------------------------- classes and groups
# Inventory group -> node class (DESIGN "Node classes"), in the planner's order.
CLASS_GROUPS: tuple[tuple[str, str], ...] = (
    ("gpu_nodes", "gpu"), ("edge_nodes", "edge"), ("apu_nodes", "apu"), ("npu_nodes", "npu"), ("cpu_nodes", "cpu"),
)
CLASS_OF_GROUP: dict[str, str] = dict(CLASS_GROUPS)
NODE_CLASSES: tuple[str, ...] = tuple(cls for _group, cls in CLASS_GROUPS)
# Classes whose GPU or unified memory takes models of any kind (others only take cpu_ok models).
GPU_CLASSES = frozenset({"gpu", "edge", "apu"})
# Classes that run Ollama even when the plan gives them no model yet (CPU nodes only when they hold one).
MODEL_SERVING_CLASSES = frozenset({"gpu", "edge", "apu", "npu"})
GATEWAY_GROUP = "gateway"
MESH_HUB_GROUP = "mesh_hub"
MONITORING_GROUP = "monitoring"
# Groups Ansible always has; they are not node classes and need no check.
IMPLICIT_GROUPS = frozenset({"all", "ungrouped"})

# --------------------------------------------------------------------------- strategies and defaults
GPU_STRATEGIES: tuple[str, ...] = ("manual", "vram_based", "latency_optimized", "isolation_first", "balanced")
MODEL_STRATEGIES: tuple[str, ...] = ("spread", "binpack")
STRATEGIES: tuple[str, ...] = GPU_STRATEGIES + MODEL_STRATEGIES
KV_CACHE_TYPES: tuple[str, ...] = ("f16", "q8_0", "q4_0")
MODEL_KINDS: tuple[str, ...] = ("chat", "code", "vision", "reasoning", "embedding")

# The planner's knobs and their defaults (PlanOptions, the fleet_plan action's argument spec and
# plan.yml all take them from here). Inventory variable: pmoves_<key>.
PLANNER_DEFAULTS: dict[str, Any] = {
    "strategy": "balanced",
    "gpu_strategy": None,  # default: strategy when it is a GPU strategy, else vram_based
    "model_strategy": None,  # default: strategy when spread/binpack, else spread
    "vram_reserve_mb": 512,  # kept free per discrete GPU (CUDA context, display); capped at 25 %
    "cpu_ram_share": 0.5,  # share of RAM a CPU/NPU node gives to cpu_ok models
    "unified_memory_share": 0.75,  # unified-memory node that reports no GPU entry: share of RAM
    "class_rules": True,  # seed 000 placement by size: 70B+ biggest, 1-8B edge, embeddings CPU
    "sticky": True,  # keep still-valid placements of the previous plan
    "pin_fallback": True,  # a pin that cannot hold still gets its replica elsewhere
    "offload_ram_share": 0.75,  # discrete-GPU node: share of RAM Ollama may spill layers into (pmoves_ollama_offload_mb)
}
# Fleet-wide values several roles and plays share (ports, the mesh network, the artifacts directory).
# Their one home: roles/common/defaults/main.yml exposes them as pmoves_* variables through the
# pmoves.fleet.fleet_default lookup, so inventories override them like any role default.
FLEET_DEFAULTS: dict[str, Any] = {
    "artifacts_dir": "artifacts",  # relative to the directory ansible-playbook runs from
    "ollama_port": 11434,
    "gateway_port": 4000,
    "nats_port": 4222,
    "node_exporter_port": 9100,
    "prometheus_port": 9090,
    "wireguard_network": "10.77.0.0/24",
    "model_share_port": 11435,  # read-only HTTP share of a seed node's model store (models fetched once per fleet)
}

# Inventory variable of each planner knob (plan.yml passes them; inventory_check checks them).
PLANNER_VARS: dict[str, str] = {
    "strategy": "pmoves_strategy", "gpu_strategy": "pmoves_gpu_strategy", "model_strategy": "pmoves_model_strategy",
    "vram_reserve_mb": "pmoves_vram_reserve_mb", "cpu_ram_share": "pmoves_cpu_ram_share",
    "unified_memory_share": "pmoves_unified_memory_share", "class_rules": "pmoves_plan_class_rules",
    "sticky": "pmoves_plan_sticky", "pin_fallback": "pmoves_plan_pin_fallback",
    "offload_ram_share": "pmoves_offload_ram_share",
}

# The ollama role's tier defaults (seed 003) by node class: what Ollama runs with when a host sets none of
# pmoves_ollama_{context_length,num_parallel,max_loaded_models,kv_cache_type}. The planner's estimate reads
# them; roles/ollama/defaults/main.yml carries the same table (a unit test keeps the two equal).
OLLAMA_CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "gpu": {"max_loaded_models": 3, "flash_attention": True},
    "edge": {"max_loaded_models": 1, "num_parallel": 1, "flash_attention": True, "kv_cache_type": "q8_0"},
    "apu": {"num_parallel": 4, "context_length": 131072, "flash_attention": True},
    "npu": {},
    "cpu": {},
}
OLLAMA_MAX_LOADED_PER_GPU = 3  # Ollama's own default: 3 x the GPUs (3 on a CPU-only node)

# --------------------------------------------------------------------------- names
_SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_DURATION_RE = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$|^[-+]?\d+$")


def validate_service_name(name: Any) -> str | None:
    """Why ``name`` cannot name a service (compose service, env variable stem, NATS token), or None."""
    if not isinstance(name, str) or not name.strip():
        return "a service name must be a non-empty string"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f"{name!r} contains whitespace or a control character"
    if ".." in name:
        return f"{name!r} contains '..'"
    if not _SERVICE_NAME_RE.match(name) or len(name) > 80:
        return (f"{name!r} must start with a letter, digit or '_' and hold only letters, digits, '_', '-' and '.' "
                "(at most 80 characters)")
    return None


def validate_alias(alias: Any) -> str | None:
    """An alias is created on the node as an Ollama model and served by the gateway: Ollama's grammar."""
    if not isinstance(alias, str) or not alias.strip():
        return "an alias must be a non-empty string"
    return validate_model_name(alias)


# --------------------------------------------------------------------------- value types
def _is_int(value: Any) -> bool:
    """True for real ints (YAML `2`), not bools; strings of digits count (extra-vars arrive as text)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().isdigit()


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def as_list(value: Any) -> list[Any] | None:
    """A host/name list may be written as one string or a list; None when it is neither."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


@dataclass(frozen=True)
class Field:
    """One key of a catalog entry: type, meaning, reader, and a value that changes the outcome.

    ``type``: model_name, service_name, int, number, bool, str, hosts, host, classes, alias, aliases,
    choice, duration, str_list, str_or_list, mapping, env, depends_on, health, any_scalar.
    ``reader``: who uses it (planner, plan, compose, ollama, gateway, node_env, report).
    ``example``: a value whose effect the per-key test (tests/unit/planner/test_fleet_schema.py) observes.
    """

    key: str
    type: str
    doc: str
    reader: str
    example: Any = None
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False


MODEL_FIELDS: tuple[Field, ...] = (
    Field("name", "model_name", "Ollama model name; normalised (registry prefix dropped, `:latest` added, lower case)",
          "planner", required=True),
    Field("replicas", "int", "copies on distinct hosts", "planner", example=2, default=1, minimum=1),
    Field("pin", "hosts", "hosts that must hold a replica; replicas beyond the pins go elsewhere", "planner",
          example=["HOST"]),
    Field("vram_mb", "int", "final planned VRAM in MB (no estimate, no overhead added)", "planner",
          example=9999, minimum=1),
    Field("context", "int", "context length of the KV-cache estimate (default 4096)", "planner",
          example=32768, minimum=1),
    Field("parallel", "int", "requests served at once per loaded model: multiplies the KV cache (default 1)",
          "planner", example=4, minimum=1),
    Field("kv_cache_type", "choice", "KV-cache element type of the estimate (default f16)", "planner",
          example="q4_0", choices=KV_CACHE_TYPES),
    Field("cpu_ok", "bool", "may run on GPU-less (cpu, npu) nodes", "planner", example=True, default=False),
    Field("alias", "alias", "gateway alias (seed 003 naming); created on the node as an Ollama copy", "plan",
          example="S-LOC-FRE-example"),
    Field("aliases", "aliases", "more aliases, a list (same rules as `alias`)", "plan",
          example=["team-default"]),
    Field("kind", "choice", "chat, code, vision, reasoning or embedding: class rules, and the gateway's "
          "chat/embedding endpoint, for models the built-in table does not know (the table wins otherwise)",
          "planner", example="embedding", choices=MODEL_KINDS),
    Field("params_b", "number", "parameters in billions: the VRAM estimate and class rules of models the built-in "
          "table does not know and whose tag names no size", "planner", example=7.0, minimum=0.001),
    Field("keep_alive", "duration", "warm-up: after the pull the node loads the model and keeps it loaded this long "
          "(Ollama duration such as `10m`, `-1` for ever, `0` to unload)", "ollama", example="10m"),
    Field("resident", "bool", "always loaded: reserves VRAM like a service (and warms up with keep_alive -1). "
          "Default: on demand - every holder keeps it on disk and Ollama loads it when asked", "planner",
          example=True, default=False),
    Field("primary", "host", "preferred host of the first replica (kept whenever it fits, else a fallback)",
          "planner", example="HOST"),
    Field("fallback", "hosts", "hosts preferred, in order, for the other replicas and when the primary cannot "
          "take it", "planner", example=["HOST"]),
    Field("disk_mb", "int", "disk footprint on a holder in MB (default: the estimate's weights, else vram_mb)",
          "planner", example=99999, minimum=1),
)

# Keys earlier releases accepted and nobody read: refused with what to write instead.
REFUSED_MODEL_KEYS: dict[str, str] = {
    "quant": "the quantisation is part of the tag Ollama pulls: write it there "
             "(qwen2.5:32b-instruct-q4_K_M); a separate key would not change what is pulled",
    "tags": "free-form labels are not read by anything; put notes in a YAML comment",
}

SERVICE_FIELDS: tuple[Field, ...] = (
    Field("name", "service_name", "service name (compose service, `<NAME>_URL`, NATS subjects)", "planner",
          required=True),
    Field("vram_mb", "int", "VRAM budget in MB; 0 for a CPU service", "planner", example=1500, minimum=0,
          required=True),
    Field("vram_min_mb", "int", "smallest acceptable budget: makes the budget adjustable (seed 004 auto-adjust)",
          "planner", example=256, minimum=0),
    Field("gpu", "bool", "needs a GPU (default: `vram_mb > 0`); decided once by the planner for every stage",
          "planner", example=False),
    Field("classes", "classes", "node classes it may run on", "planner", example=["cpu"]),
    Field("primary", "host", "preferred host", "planner", example="HOST"),
    Field("fallback", "hosts", "hosts to use, in order, when the primary cannot take it", "planner",
          example=["HOST"]),
    Field("replicas", "int", "copies on distinct hosts", "planner", example=2, default=1, minimum=1),
    Field("gpu_index", "int", "GPU of the host for the manual strategy", "planner", example=1, minimum=0),
    Field("latency_critical", "bool", "latency_optimized strategy: put it on the fastest GPU", "planner",
          example=True),
    Field("isolate", "bool", "isolation_first strategy: give it a GPU of its own", "planner", example=True),
    Field("uses_ollama", "bool", "the service calls Ollama: a node without models then uses another node's "
          "Ollama, which serves the network for it (and `OLLAMA_HOST` points there)", "planner", example=True),
    Field("serves", "str_list", "non-Ollama artefacts this service serves (`stable-diffusion-xl`): model catalog "
          "entries with these names are skipped without a warning", "planner", example=["stable-diffusion-xl"]),
    Field("port", "int", "published TCP port (`<NAME>_URL`, health check default)", "compose", example=8080,
          minimum=1, maximum=65535),
    Field("container_port", "int", "port inside the container (default `port`)", "compose", example=80, minimum=1,
          maximum=65535),
    Field("health", "health", "apply gate: URL, path, or `{http|tcp, timeout}`", "compose", example="/healthz"),
    Field("image", "str", "image on x86_64 (default: the class base image)", "compose", example="busybox:1.36"),
    Field("image_arm64", "str", "image on aarch64 (default: `image`, then the class base image)", "compose",
          example="busybox:1.36"),
    Field("command", "str_or_list", "compose `command`", "compose", example=["serve"]),
    Field("entrypoint", "str_or_list", "compose `entrypoint`", "compose", example=["/bin/sh"]),
    Field("volumes", "str_list", "compose `volumes`", "compose", example=["/data:/data"]),
    Field("working_dir", "str", "compose `working_dir`", "compose", example="/srv"),
    Field("user", "str", "compose `user`", "compose", example="1000:1000"),
    Field("shm_size", "any_scalar", "compose `shm_size`", "compose", example="2gb"),
    Field("ipc", "str", "compose `ipc`", "compose", example="host"),
    Field("profiles", "str_list", "compose profiles; added to the node's `COMPOSE_PROFILES`", "compose",
          example=["extra"]),
    Field("environment", "env", "mapping or `KEY=VALUE` list", "compose", example={"MODE": "fast"}),
    Field("depends_on", "depends_on", "services started first (on the same node)", "compose", example=["other"]),
    Field("healthcheck", "mapping", "compose `healthcheck` for the engine", "compose",
          example={"test": ["CMD", "true"]}),
    Field("restart", "str", "restart policy (default `unless-stopped`)", "compose", example="always"),
    Field("vram_budget_gb", "number", "fixed VRAM budget written as `VRAM_BUDGET_GB`", "compose", example=3.5,
          minimum=0.1),
    Field("model", "str", "what the service runs, for people: shown in `config/gpu-assignments.yml`", "compose",
          example="YOLO26"),
)

MODEL_KEYS = frozenset(f.key for f in MODEL_FIELDS)
SERVICE_KEYS = frozenset(f.key for f in SERVICE_FIELDS)
MODEL_FIELD = {f.key: f for f in MODEL_FIELDS}
SERVICE_FIELD = {f.key: f for f in SERVICE_FIELDS}
# Service keys the planner decides or reads; the rest are copied into the node's plan entry for the roles.
SERVICE_PLANNER_KEYS = frozenset(f.key for f in SERVICE_FIELDS if f.reader == "planner")
SERVICE_PASSTHROUGH_KEYS: tuple[str, ...] = tuple(f.key for f in SERVICE_FIELDS if f.reader != "planner")

# --------------------------------------------------------------------------- host variables
# Host (or group) variables the planner reads for every host; nothing else of a host is read.
HOST_FIELDS: tuple[Field, ...] = (
    Field("pmoves_models_allowed", "bool", "false: the host takes services but no models (Pi fleet)", "planner",
          default=True),
    Field("pmoves_vram_reserve_mb", "int", "MB kept free per discrete GPU (default 512, at most 25 %)", "planner",
          minimum=0),
    Field("pmoves_cpu_ram_share", "number", "share of RAM for cpu_ok models on cpu/npu nodes (default 0.5)",
          "planner", minimum=0.0, maximum=1.0),
    Field("pmoves_unified_memory_share", "number", "share of RAM of a unified-memory node without a GPU entry "
          "(default 0.75)", "planner", minimum=0.0, maximum=1.0),
    Field("pmoves_ollama_port", "int", "TCP port of the host's Ollama (default from pmoves.fleet.common: 11434)",
          "planner", minimum=1, maximum=65535),
    Field("pmoves_ollama_serve_network", "bool", "unset: Ollama serves the network exactly when something on "
          "another host uses it (the gateway, a `uses_ollama` service); true: always; false: loopback only (an "
          "inventory that gives it a remote user is refused)", "planner"),
    Field("pmoves_ollama_bind_all", "bool", "bind 0.0.0.0 instead of the one address (never by default)",
          "planner", default=False),
    Field("pmoves_listen_address", "str", "the address other hosts reach this host on, when the WireGuard mesh is "
          "off (an IP, or a name that resolves to one on the host)", "planner"),
    Field("pmoves_mesh_address", "str", "the host's address on an existing mesh (Tailscale...), used like "
          "`pmoves_listen_address`", "planner"),
    Field("pmoves_wireguard_enabled", "bool", "the host joins the WireGuard mesh; its mesh address serves Ollama",
          "planner", default=False),
    Field("pmoves_wireguard_address", "str", "the host's fixed WireGuard address (default: picked from the mesh "
          "network by a hash of the host name)", "planner"),
    Field("ansible_host", "str", "the connection address; the last choice for serving Ollama (then the inventory "
          "name)", "planner"),
    Field("pmoves_models_pin", "str_list", "models this host holds (the seed's per-machine list): each is a pin of "
          "that catalog entry, kept whenever it fits", "planner"),
    Field("pmoves_models_prefer", "prefer_rules", "size/kind classes this host is preferred for, a list of "
          "`{min_params_b?, max_params_b?, kinds?: [chat, code, vision, reasoning, embedding]}` (seed 000: "
          "70B+ -> the 5090)", "planner"),
    Field("pmoves_models_max_params_b", "number", "largest model (billions of parameters) this host may hold "
          "(Jetsons: 8)", "planner", minimum=0.001),
    Field("pmoves_models_disk_mb", "int", "disk free for models under OLLAMA_MODELS in MB: a hard limit of what "
          "the host holds (unset: not checked)", "planner", minimum=0),
    Field("pmoves_ollama_offload_mb", "int", "RAM in MB Ollama may spill layers into when a model exceeds free "
          "VRAM (default: pmoves_offload_ram_share of RAM on discrete-GPU nodes, 0 elsewhere; 0: never spill)",
          "planner", minimum=0),
    Field("pmoves_ollama_max_loaded_models", "int", "OLLAMA_MAX_LOADED_MODELS (the ollama role's input): the "
          "planned peak counts this many largest on-demand models", "planner", minimum=1),
    Field("pmoves_ollama_num_parallel", "int", "OLLAMA_NUM_PARALLEL (the ollama role's input): multiplies the "
          "KV cache of the estimate on this host", "planner", minimum=1),
    Field("pmoves_ollama_context_length", "int", "OLLAMA_CONTEXT_LENGTH (the ollama role's input): the context "
          "of the estimate on this host", "planner", minimum=0),
    Field("pmoves_ollama_kv_cache_type", "choice", "OLLAMA_KV_CACHE_TYPE (the ollama role's input): KV cache "
          "element type of the estimate on this host", "planner", choices=KV_CACHE_TYPES),
    Field("pmoves_ollama_class_defaults", "mapping", "the ollama role's tier defaults by class (unset: "
          "fleet_schema.OLLAMA_CLASS_DEFAULTS, the role's default)", "planner"),
)
HOST_VARS: tuple[str, ...] = tuple(f.key for f in HOST_FIELDS)
HOST_FIELD = {f.key: f for f in HOST_FIELDS}


# --------------------------------------------------------------------------- checks
def _type_error(where: str, spec: Field, value: Any, hosts: set[str] | None) -> list[str]:
    """Errors for one value of a declared key ([] when it is fine)."""
    key, kind = spec.key, spec.type
    bounds = ""
    if spec.minimum is not None and spec.maximum is not None:
        bounds = f" {spec.minimum:g}-{spec.maximum:g}"
    elif spec.minimum is not None:
        bounds = f" >= {spec.minimum:g}"
    if kind == "int":
        if _is_int(value) and (spec.minimum is None or int(value) >= spec.minimum) and (
                spec.maximum is None or int(value) <= spec.maximum):
            return []
        expected = "a positive integer" if spec.minimum == 1 and spec.maximum is None and key != "replicas" else (
            f"an integer{bounds}")
        return [f"{where}: {key} must be {expected}, got {value!r}"]
    if kind == "number":
        if _is_number(value) and (spec.minimum is None or float(value) >= spec.minimum) and (
                spec.maximum is None or float(value) <= spec.maximum):
            return []
        return [f"{where}: {key} must be a number{bounds}, got {value!r}"]
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"{where}: {key} must be true or false, got {value!r}"]
    if kind == "choice":
        return [] if value in spec.choices else [f"{where}: {key} must be one of {', '.join(spec.choices)}, "
                                                 f"got {value!r}"]
    if kind == "str":
        return [] if isinstance(value, str) and value.strip() else [
            f"{where}: {key} must be a non-empty string, got {value!r}"]
    if kind == "any_scalar":
        return [] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else [
            f"{where}: {key} must be a string or a number, got {value!r}"]
    if kind == "duration":
        if (_is_int(value) or (isinstance(value, str) and _DURATION_RE.match(value.strip()))) and value != "":
            return []
        return [f"{where}: {key} must be an Ollama duration such as 10m, 1h, -1 or a number of seconds, got {value!r}"]
    if kind in ("hosts", "host"):
        names = as_list(value) if kind == "hosts" else ([value] if isinstance(value, str) else None)
        if names is None or any(not isinstance(n, str) for n in names):
            what = "a host name or a list of host names" if kind == "hosts" else "a host name"
            return [f"{where}: {key} must be {what}"]
        role = {"pin": "pinned", "primary": "primary", "fallback": "fallback"}.get(key, key)
        return [f"{where}: {role} host {name!r} is not in the inventory" for name in names
                if hosts is not None and name not in hosts]
    if kind == "classes":
        names = as_list(value)
        if names is None:
            return [f"{where}: {key} must be a list of node classes"]
        bad = [c for c in names if c not in NODE_CLASSES]
        return [f"{where}: unknown classes {bad}; use {', '.join(NODE_CLASSES)}"] if bad else []
    if kind == "alias":
        reason = validate_alias(value)
        return [f"{where}: alias {value!r} is not a valid Ollama name: {reason}"] if reason else []
    if kind == "aliases":
        names = as_list(value)
        if names is None:
            return [f"{where}: aliases must be a list of names"]
        return [f"{where}: alias {name!r} is not a valid Ollama name: {reason}"
                for name in names for reason in [validate_alias(name)] if reason]
    if kind in ("str_list", "depends_on"):
        names = as_list(value)
        if names is None and kind == "depends_on" and isinstance(value, dict):
            names = list(value)
        if names is None or any(not isinstance(n, str) or not n for n in names):
            return [f"{where}: {key} must be a list of strings, got {value!r}"]
        return []
    if kind == "str_or_list":
        ok = (isinstance(value, str) and value) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        return [] if ok else [f"{where}: {key} must be a string or a list of strings, got {value!r}"]
    if kind == "mapping":
        return [] if isinstance(value, dict) else [f"{where}: {key} must be a mapping, got {value!r}"]
    if kind == "prefer_rules":
        return prefer_rule_errors(where, key, value)
    if kind == "env":
        ok = isinstance(value, dict) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        return [] if ok else [f"{where}: {key} must be a mapping or a list of KEY=VALUE, got {value!r}"]
    if kind == "health":
        ok = (isinstance(value, str) and value) or (isinstance(value, dict) and (value.get("http") or value.get("tcp")))
        return [] if ok else [f"{where}: {key} must be a URL, a path or {{http: URL}} / {{tcp: host:port}}, "
                              f"got {value!r}"]
    if kind == "model_name":
        reason = validate_model_name(value)
        return [f"{where}: name is not a valid Ollama model name: {reason}"] if reason else []
    if kind == "service_name":
        reason = validate_service_name(value)
        return [f"{where}: name {reason}"] if reason else []
    raise ValueError(f"fleet_schema: unknown field type {kind!r} of {key}")


PREFER_RULE_KEYS = ("min_params_b", "max_params_b", "kinds")


def prefer_rule_errors(where: str, key: str, value: Any) -> list[str]:
    """Errors of a ``pmoves_models_prefer`` list (each rule: min_params_b?, max_params_b?, kinds?)."""
    if not isinstance(value, list):
        return [f"{where}: {key} must be a list of rules {{min_params_b, max_params_b, kinds}}, got {value!r}"]
    errors = []
    for position, rule in enumerate(value):
        label = f"{where}: {key}[{position}]"
        if not isinstance(rule, dict) or not rule:
            errors.append(f"{label} must be a non-empty mapping of {', '.join(PREFER_RULE_KEYS)}, got {rule!r}")
            continue
        for unknown in sorted(set(rule) - set(PREFER_RULE_KEYS), key=str):
            errors.append(f"{label}: unknown key {unknown!r} (known keys: {', '.join(PREFER_RULE_KEYS)})")
        for bound in ("min_params_b", "max_params_b"):
            if bound in rule and not (_is_number(rule[bound]) and float(rule[bound]) >= 0):
                errors.append(f"{label}: {bound} must be a number >= 0, got {rule[bound]!r}")
        kinds = as_list(rule.get("kinds"))
        if kinds is None or any(k not in MODEL_KINDS for k in kinds):
            errors.append(f"{label}: kinds must be a list of {', '.join(MODEL_KINDS)}, got {rule.get('kinds')!r}")
    return errors


def prefer_rules(value: Any) -> tuple[tuple[float | None, float | None, frozenset[str] | None], ...]:
    """Typed ``pmoves_models_prefer`` rules: (min_params_b, max_params_b, kinds); bad rules are dropped."""
    rules = []
    for rule in value if isinstance(value, list) else []:
        if not isinstance(rule, dict):
            continue
        low, high = rule.get("min_params_b"), rule.get("max_params_b")
        kinds = as_list(rule.get("kinds"))
        rules.append((float(low) if _is_number(low) else None, float(high) if _is_number(high) else None,
                      frozenset(str(k) for k in kinds) if kinds else None))
    return tuple(rules)


def _unknown_keys(where: str, entry: dict[str, Any], fields: tuple[Field, ...],
                  refused: dict[str, str] | None = None) -> list[str]:
    known = [f.key for f in fields]
    errors = []
    for key in sorted(set(entry) - set(known), key=str):
        if refused and key in refused:
            errors.append(f"{where}: key {key!r} is not accepted: {refused[key]}")
        else:
            errors.append(f"{where}: unknown key {key!r} (known keys: {', '.join(known)})")
    return errors


def model_entry(raw: Any) -> dict[str, Any] | None:
    """A catalog item as a mapping (a bare string is ``{name: ...}``); None when it is neither."""
    if isinstance(raw, str):
        return {"name": raw}
    if isinstance(raw, dict):
        return raw
    return None


def model_label(index: int, raw: Any) -> str:
    entry = model_entry(raw) or {}
    name = entry.get("name")
    return f"pmoves_models[{index}]" + (f" ({name})" if isinstance(name, str) and name.strip() else "")


def check_model(index: int, raw: Any, hosts: set[str] | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one model catalog entry."""
    where = f"pmoves_models[{index}]"
    entry = model_entry(raw)
    if entry is None:
        return [f"{where} must be a model name or a mapping with a name, got {raw!r}"], []
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        return [f"{where} has no name: write {{name: \"llama3.2:1b\", replicas: 1}}"], []
    where = model_label(index, raw)
    errors = _unknown_keys(where, entry, MODEL_FIELDS, REFUSED_MODEL_KEYS)
    warnings: list[str] = []
    for spec in MODEL_FIELDS:
        if spec.key in entry:
            errors += _type_error(where, spec, entry[spec.key], hosts)
    pins, replicas = as_list(entry.get("pin")), entry.get("replicas")
    if pins is not None and _is_int(replicas) and len(pins) > int(replicas):
        warnings.append(f"{where}: {len(pins)} pins but replicas {replicas}; {len(pins)} replicas will be placed")
    return errors, warnings


def check_service(index: int, raw: Any, hosts: set[str] | None = None) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one service catalog entry."""
    where = f"pmoves_services[{index}]"
    if not isinstance(raw, dict):
        return [f"{where} must be a mapping with name and vram_mb, got {raw!r}"], []
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        return [f"{where} has no name: write {{name: whisper, vram_mb: 4000}}"], []
    where = f"{where} ({name})"
    errors = _unknown_keys(where, raw, SERVICE_FIELDS)
    if "vram_mb" not in raw:
        errors.append(f"{where}: vram_mb is required (0 for a CPU service)")
    for spec in SERVICE_FIELDS:
        if spec.key in raw:
            errors += _type_error(where, spec, raw[spec.key], hosts)
    return errors, []


def check_host_vars(host: str, host_vars: dict[str, Any]) -> list[str]:
    """Type errors of the planner's host variables (undefined or null means: the default)."""
    errors = []
    for spec in HOST_FIELDS:
        value = host_vars.get(spec.key)
        if value is None:
            continue
        if spec.type == "str" and not isinstance(value, str):
            value = str(value)
        errors += _type_error(f"host {host}", spec, value, None)
    return errors


# --------------------------------------------------------------------------- typed records
@dataclass(frozen=True)
class ModelSpec:
    """A model catalog entry as the planner reads it (only declared keys, typed)."""

    index: int
    raw_name: str
    name: str  # normalised
    replicas: int
    pins: tuple[str, ...]
    vram_mb: int | None
    context: int | None
    parallel: int | None
    kv_cache_type: str | None
    cpu_ok: bool
    aliases: tuple[str, ...]  # as written: `alias` first, then `aliases`, duplicates dropped
    kind: str | None
    params_b: float | None
    keep_alive: str | None
    resident: bool = False
    primary: str | None = None
    fallback: tuple[str, ...] = ()
    disk_mb: int | None = None

    @property
    def normalised_aliases(self) -> tuple[str, ...]:
        """The aliases as Ollama names (what the node holds and the gateway serves)."""
        return tuple(dict.fromkeys(normalize_model_name(a) for a in self.aliases))


@dataclass(frozen=True)
class ServiceSpec:
    """A service catalog entry as the planner reads it (only declared keys, typed)."""

    name: str
    vram_mb: int
    vram_min_mb: int
    gpu: bool
    classes: frozenset[str] | None
    primary: str | None
    fallback: tuple[str, ...]
    replicas: int
    gpu_index: int | None
    latency_critical: bool
    isolate: bool
    uses_ollama: bool
    serves: tuple[str, ...]
    passthrough: dict[str, Any] = field(default_factory=dict)  # declared keys the roles read (port, image...)


def _int_or(value: Any, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def read_model(index: int, raw: Any) -> ModelSpec:
    """The typed record of a model entry, reading only declared keys (``entry.get(key)``)."""
    entry = model_entry(raw)
    if entry is None:
        raise ValueError(f"pmoves_models[{index}] must be a model name or a mapping, got {raw!r}")
    values = {spec.key: entry.get(spec.key) for spec in MODEL_FIELDS}
    raw_name = str(values["name"] or "").strip()
    if not raw_name:
        raise ValueError(f"pmoves_models[{index}] has no name: {raw!r}")
    pins = [str(p) for p in (as_list(values["pin"]) or [])]
    aliases = [str(values["alias"])] if values["alias"] else []
    aliases += [str(a) for a in (as_list(values["aliases"]) or [])]
    keep_alive = values["keep_alive"]
    params = values["params_b"]
    return ModelSpec(
        index=index, raw_name=raw_name, name=normalize_model_name(raw_name),
        replicas=max(_int_or(values["replicas"], 1) or 0, 0), pins=tuple(dict.fromkeys(pins)),
        vram_mb=_int_or(values["vram_mb"], None), context=_int_or(values["context"], None),
        parallel=_int_or(values["parallel"], None),
        kv_cache_type=str(values["kv_cache_type"]) if values["kv_cache_type"] else None,
        cpu_ok=bool(values["cpu_ok"]), aliases=tuple(dict.fromkeys(aliases)),
        kind=str(values["kind"]) if values["kind"] else None,
        params_b=float(params) if params is not None and _is_number(params) else None,
        keep_alive=str(keep_alive) if keep_alive not in (None, "") else None,
        resident=bool(values["resident"]),
        primary=str(values["primary"]) if values["primary"] else None,
        fallback=tuple(dict.fromkeys(str(h) for h in (as_list(values["fallback"]) or []))),
        disk_mb=_int_or(values["disk_mb"], None),
    )


def read_service(index: int, raw: Any) -> ServiceSpec:
    """The typed record of a service entry, reading only declared keys."""
    if not isinstance(raw, dict):
        raise ValueError(f"pmoves_services[{index}] must be a mapping, got {raw!r}")
    values = {spec.key: raw.get(spec.key) for spec in SERVICE_FIELDS}
    name = str(values["name"] or "").strip()
    if not name:
        raise ValueError(f"pmoves_services[{index}] has no name: {raw!r}")
    vram = max(_int_or(values["vram_mb"], 0) or 0, 0)
    gpu = bool(values["gpu"]) if values["gpu"] is not None else vram > 0  # the one place `gpu` is decided
    vram = vram if gpu else 0  # CPU services plan no VRAM
    vram_min = min(max(_int_or(values["vram_min_mb"], vram) or 0, 0), vram)
    classes = as_list(values["classes"])
    return ServiceSpec(
        name=name, vram_mb=vram, vram_min_mb=vram_min, gpu=gpu,
        classes=frozenset(str(c) for c in classes) if classes else None,
        primary=str(values["primary"]) if values["primary"] else None,
        fallback=tuple(str(h) for h in (as_list(values["fallback"]) or [])),
        replicas=max(_int_or(values["replicas"], 1) or 0, 0),
        gpu_index=_int_or(values["gpu_index"], None) if values["gpu_index"] is not None else None,
        latency_critical=bool(values["latency_critical"]), isolate=bool(values["isolate"]),
        uses_ollama=bool(values["uses_ollama"]),
        serves=tuple(str(s) for s in (as_list(values["serves"]) or [])),
        passthrough={key: values[key] for key in SERVICE_PASSTHROUGH_KEYS if values[key] is not None},
    )


def declared_view(raw: Any, fields: tuple[Field, ...]) -> Any:
    """The declared keys of a catalog entry (what the planner may read); other values are returned as they are."""
    if not isinstance(raw, dict):
        return raw
    return {spec.key: raw.get(spec.key) for spec in fields if spec.key in raw}


def gateway_enabled(groups: dict[str, Any], value: Any = None) -> bool:
    """``pmoves_gateway_enabled``; default: true when the inventory declares a gateway group."""
    if value is None:
        return GATEWAY_GROUP in groups
    return bool(value)


# --------------------------------------------------------------------------- docs
def _type_text(spec: Field) -> str:
    text = {
        "model_name": "str (Ollama name)", "service_name": "str", "int": "int", "number": "number", "bool": "bool",
        "str": "str", "hosts": "host or [hosts]", "host": "host", "classes": "[classes]", "alias": "str (Ollama name)",
        "aliases": "[str]", "choice": " \\| ".join(spec.choices), "duration": "duration", "str_list": "[str]",
        "str_or_list": "str or [str]", "mapping": "mapping", "env": "mapping or [KEY=VALUE]",
        "depends_on": "[services]", "health": "URL, path or mapping", "any_scalar": "str or int",
        "prefer_rules": "[mapping]",
    }[spec.type]
    if spec.minimum is not None and spec.type in ("int", "number"):
        text += f" >= {spec.minimum:g}" if spec.maximum is None else f" {spec.minimum:g}-{spec.maximum:g}"
    return text


def markdown_table(fields: tuple[Field, ...]) -> str:
    """The docs table of a field list: key, type, required, read by, meaning."""
    lines = ["| key | type | required | read by | meaning |", "|---|---|---|---|---|"]
    for spec in fields:
        lines.append(f"| `{spec.key}` | {_type_text(spec)} | {'yes' if spec.required else ''} | {spec.reader} | "
                     f"{spec.doc} |")
    return "\n".join(lines) + "\n"


def docs_tables() -> dict[str, str]:
    """Generated blocks of docs/inventory.md, by marker name."""
    refused = "\n".join(f"* `{key}`: {why}" for key, why in sorted(REFUSED_MODEL_KEYS.items())) + "\n"
    return {"model-fields": markdown_table(MODEL_FIELDS), "refused-model-keys": refused,
            "service-fields": markdown_table(SERVICE_FIELDS), "host-fields": markdown_table(HOST_FIELDS)}
