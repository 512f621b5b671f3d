# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""The node environment file of seed 000, derived from facts, the plan and class defaults.

Pure functions. Precedence, lowest first:

1. class defaults (``NVIDIA_DRIVER_CAPABILITIES=compute,utility`` on GPU nodes,
   ``TENSORZERO_MODEL_DEFAULT`` on CPU nodes, ...);
2. values derived from ``pmoves_hardware`` and the plan (``GPU_TYPE``, ``CUDA_VISIBLE_DEVICES``,
   ``TORCH_CUDA_ARCH_LIST``, ``JETSON_JETPACK_VERSION``, ``OLLAMA_HOST``, ``<SERVICE>_URL`` ...),
   so nothing the machine already tells is typed by hand; ``OLLAMA_HOST`` is the plan's decision
   (the node's own Ollama when it holds models, else a model holder's that serves the network);
3. overrides from group_vars / host_vars (``pmoves_node_env_overrides``); a value of ``None``
   removes a variable.

The file format is the env-file format of docker/podman (``--env-file``) and systemd
(``EnvironmentFile=``): ``KEY=value`` per line, no quoting, no shell expansion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import env_name, gpu_type, probe_host

__all__ = [
    "DEFAULT_CLASS_ENV",
    "EnvError",
    "env_file_text",
    "ollama_llm_library",
    "render_node_env",
    "service_urls",
]

# Seed 000 "Environment Variables by Node" (static parts; the rest is derived).
DEFAULT_CLASS_ENV: dict[str, dict[str, str]] = {
    "gpu": {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"},
    "edge": {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"},
    "apu": {},
    "npu": {},
    "cpu": {"CUDA_VISIBLE_DEVICES": "", "TENSORZERO_MODEL_DEFAULT": "openai::qwen3:8b"},
}

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Ollama's runner directories for the fact's `ollama_library` values.
_OLLAMA_LIBRARY = {"jetpack5": "cuda_jetpack5", "jetpack6": "cuda_jetpack6"}


class EnvError(ValueError):
    """A variable name or value that cannot be written to an env file."""


def ollama_llm_library(fact_value: str | None) -> str | None:
    """``OLLAMA_LLM_LIBRARY`` for the fact's ``ollama_library`` (jetpack6 -> cuda_jetpack6)."""
    if not fact_value:
        return None
    return _OLLAMA_LIBRARY.get(fact_value, fact_value)


def _address(host: str, addresses: Mapping[str, str]) -> str:
    return str(addresses.get(host) or host)


def service_urls(host: str, plan: Mapping[str, Any], catalog: Iterable[Mapping[str, Any]],
                 addresses: Mapping[str, str], local_address: str = "127.0.0.1") -> dict[str, str]:
    """``<SERVICE>_URL`` for every planned service with a port.

    The node itself when it runs the service (``local_address``: where its compose services publish their
    ports - loopback, or its mesh address on a WireGuard fleet), else the catalog's ``primary`` when the
    plan placed it there, else the first node of the plan (sorted) that runs it.
    """
    local = probe_host(local_address)  # where compose published them: the same host its health gate probes
    placed: dict[str, list[str]] = {}
    for node_name in sorted(plan.get("nodes") or {}):
        for svc in plan["nodes"][node_name].get("services") or []:
            placed.setdefault(svc["name"] if isinstance(svc, Mapping) else str(svc), []).append(node_name)
    out: dict[str, str] = {}
    for entry in sorted(catalog, key=lambda e: e["name"]):
        name, port = entry["name"], entry.get("port")
        hosts = placed.get(name)
        if not port or not hosts:
            continue
        if host in hosts:
            target = local
        elif entry.get("primary") in hosts:
            target = _address(entry["primary"], addresses)
        else:
            target = _address(hosts[0], addresses)
        out[env_name(name, "_URL")] = f"http://{target}:{int(port)}"
    return out


def render_node_env(
    host: str,
    plan: Mapping[str, Any],
    catalog: Iterable[Mapping[str, Any]],
    hardware: Mapping[str, Any],
    *,
    addresses: Mapping[str, str] | None = None,
    class_env: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    nats_url: str | None = None,
    compose_profiles: Iterable[str] | None = None,
    local_address: str = "127.0.0.1",
) -> dict[str, str]:
    """The node's environment as an ordered dict (sorted by name).

    ``plan``: plan.json or its fleet view (``pmoves_fleet_plan``): ``nodes[host]`` with ``class``, the
    services (names or entries) and the Ollama client URL the planner decided (``ollama.client_url`` in
    plan.json, ``ollama_client_url`` in the view).
    """
    addresses = addresses or {}
    catalog = list(catalog)
    node = (plan.get("nodes") or {}).get(host) or {}
    node_class = str(node.get("class") or hardware.get("node_class") or "cpu")
    classes = {**DEFAULT_CLASS_ENV, **(class_env or {})}
    env: dict[str, Any] = dict(classes.get(node_class) or {})

    accelerator = hardware.get("accelerator") or "none"
    gpus = hardware.get("gpus") or []
    derived: dict[str, Any] = {
        "PMOVES_NODE": host,
        "PMOVES_NODE_CLASS": node_class,
        "PMOVES_ARCH": hardware.get("arch"),
        "GPU_TYPE": gpu_type(hardware),
        "GPU_COUNT": str(len(gpus)),
        "TORCH_CUDA_ARCH_LIST": hardware.get("torch_cuda_arch_list"),
        "OLLAMA_LLM_LIBRARY": ollama_llm_library(hardware.get("ollama_library")),
        "NATS_URL": nats_url,
    }
    if accelerator in ("nvidia", "jetson"):
        derived["CUDA_VISIBLE_DEVICES"] = ",".join(str(g["index"]) for g in sorted(gpus, key=lambda g: g["index"])) or "0"
    elif accelerator == "amd":
        derived["HIP_VISIBLE_DEVICES"] = ",".join(str(g["index"]) for g in gpus)
    else:
        derived["CUDA_VISIBLE_DEVICES"] = ""
    if hardware.get("nvidia"):
        derived["NVIDIA_DRIVER_VERSION"] = hardware["nvidia"].get("driver_version")
        derived["CUDA_DRIVER_VERSION"] = hardware["nvidia"].get("cuda_driver_version")
    jetson = hardware.get("jetson")
    if jetson:
        derived["JETSON_JETPACK_VERSION"] = jetson.get("jetpack")
        derived["L4T_VERSION"] = jetson.get("l4t")
        derived["JETSON_SOC"] = jetson.get("soc")
        derived["JETSON_MODEL"] = jetson.get("model")

    # Ollama: the plan decided where this node's clients go (its own server when it holds models, else the
    # first model holder, which then serves the network when a service here uses it): no second decision.
    client_url = node.get("ollama_client_url") or (node.get("ollama") or {}).get("client_url")
    if client_url:
        derived["OLLAMA_HOST"] = str(client_url)
    derived.update(service_urls(host, plan, catalog, addresses, local_address))
    if compose_profiles is not None:
        derived["COMPOSE_PROFILES"] = ",".join(sorted(set(compose_profiles)))

    env.update({k: v for k, v in derived.items() if v is not None})
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return {key: _check(key, value) for key, value in sorted(env.items())}


def _check(key: str, value: Any) -> str:
    if not _KEY.fullmatch(str(key)):
        raise EnvError(f"{key!r} is not a valid environment variable name")
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        raise EnvError(f"{key}: a mapping cannot be an environment value")
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise EnvError(f"{key}: value contains a line break or NUL, which env files cannot hold")
    return text


def env_file_text(env: Mapping[str, Any], header: str | None = None) -> str:
    """Env-file text: an optional ``#`` header, then ``KEY=value`` lines in the given order."""
    lines = [f"# {line}".rstrip() for line in (header or "").splitlines()]
    lines.extend(f"{key}={_check(key, value)}" for key, value in env.items())
    return "\n".join(lines) + "\n" if lines else ""
