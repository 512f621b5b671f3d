# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Render a node's compose project from plan.json, the service catalog and hardware facts.

Pure functions, no I/O: input is data (a plan.json node entry, catalog entries, the
``pmoves_hardware`` fact, class defaults), output is plain dicts that :func:`to_yaml` turns
into deterministic YAML text. The same inputs always give byte-identical files, so
rendered files diff cleanly and the apply step recreates only what really changed.

Files of a project:

* ``docker-compose.yml`` (x86_64) or ``docker-compose.arm64.yml`` (aarch64): the services
  planned for the node, image per architecture, profiles, env files, ports, ordering, health.
* ``config/docker-compose.gpu-override.yml``: the GPU pinning of seed 004; one
  ``deploy.resources.reservations.devices`` entry per GPU service (driver nvidia,
  ``device_ids`` from the plan, capabilities [gpu]; ``count`` is never combined with
  ``device_ids``). Jetson services get ``count: all`` (one integrated GPU, no ids).
* ``config/gpu-assignments.yml``: the human-readable assignment table of seed 004, without
  a ``generated_at`` timestamp so that it stays deterministic.

User files (seed 004: ``podman-compose -f docker-compose.prod.yml -f config/docker-compose.gpu-override.yml``):
when the inventory names the user's own compose files (:class:`UserFile`, role variable
``pmoves_compose_user_files``), they are copied verbatim and carry images, commands, ports, volumes;
the ``-f`` list is those files, then the override, and no ``docker-compose.yml`` is rendered. The
override then carries only what the fleet owns, for every planned service: its labels
(``io.pmoves.node``, ``io.pmoves.service``, and the config hash added by the apply), its
``x-pmoves-health`` probe from the catalog, and for the GPU services the same GPU pinning as in the
default layout (device reservations, ``devices``/``group_add`` on AMD, ``PMOVES_GPU_INDEX``,
``NVIDIA_VISIBLE_DEVICES``, ``CUDA_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES``, ``VRAM_BUDGET_GB``).
Compose merges the files in ``-f`` order: mappings (``environment``, ``labels``, ``deploy``) merge
key by key and the later file (the override) wins on a key both set; lists (``ports``, ``volumes``,
``devices``) are combined; other scalars are replaced by the later file.

Releases before the seed-004 layout wrote the override at the project root
(:data:`LEGACY_GPU_OVERRIDE_FILE`); :data:`STALE_FILES` names it so that the apply removes it
when it is still ours.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONFIG_HASH_LABEL",
    "DEFAULT_CLASS_DEFAULTS",
    "GPU_ASSIGNMENTS_FILE",
    "GPU_OVERRIDE_FILE",
    "LEGACY_GPU_OVERRIDE_FILE",
    "RESERVED_USER_FILE_NAMES",
    "STALE_FILES",
    "RenderError",
    "RenderOptions",
    "RenderedProject",
    "UserFile",
    "compose_file_name",
    "env_name",
    "layer_user_files",
    "render_project",
    "resolve_image",
    "service_order",
    "to_yaml",
]

CONFIG_HASH_LABEL = "io.pmoves.config-hash"
# Seed 004 layout: podman-compose -f docker-compose.prod.yml -f config/docker-compose.gpu-override.yml
GPU_OVERRIDE_FILE = "config/docker-compose.gpu-override.yml"
GPU_ASSIGNMENTS_FILE = "config/gpu-assignments.yml"
LEGACY_GPU_OVERRIDE_FILE = "docker-compose.gpu-override.yml"  # written at the root before the seed-004 layout
STALE_FILES = (LEGACY_GPU_OVERRIDE_FILE,)
# Names a user file may not have in the project directory (ours, or the apply's bookkeeping).
RESERVED_USER_FILE_NAMES = (".env", ".pmoves-compose.last-good.json")

# Class defaults from seed 000 (profiles, base images) and seed 001 (l4t-jetpack per JetPack).
# `{l4t}`, `{jetpack}` and `{cuda}` in an image name are filled from the hardware facts.
DEFAULT_CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "gpu": {
        "profiles": ["gpu"],
        "base_image": "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04",
        "base_image_arm64": "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04",
    },
    "edge": {
        "profiles": ["edge"],
        "base_image": "python:3.11-slim-bookworm",
        "base_image_arm64": "nvcr.io/nvidia/l4t-jetpack:r{l4t}",
    },
    "apu": {
        "profiles": ["apu"],
        "base_image": "python:3.11-slim-bookworm",
        "base_image_arm64": "python:3.11-slim-bookworm",
    },
    "npu": {
        "profiles": ["npu"],
        "base_image": "python:3.11-slim-bookworm",
        "base_image_arm64": "python:3.11-slim-bookworm",
    },
    "cpu": {
        "profiles": ["api", "db"],
        "base_image": "python:3.11-slim-bookworm",
        "base_image_arm64": "python:3.11-slim-bookworm",
    },
}

# Keys of a catalog entry that are copied into the compose service verbatim when present.
_PASSTHROUGH_KEYS = ("command", "entrypoint", "healthcheck", "volumes", "working_dir", "user", "shm_size", "ipc")
_VRAM_BUDGET_RESERVE_MB = 512  # head-room left on a GPU when a budget is auto-adjusted (seed 004)


class RenderError(ValueError):
    """Inputs that cannot give a valid project (unknown service, GPU index not on the host...)."""


@dataclass(frozen=True)
class RenderOptions:
    """Node-level knobs of the rendering (role variables of pmoves.fleet.compose)."""

    project_name: str = "pmoves"
    # Written by pmoves.fleet.node_env (fleet.env: derived values, secrets.env: vault values, 0600).
    env_files: tuple[str, ...] = ("/etc/pmoves/fleet.env", "/etc/pmoves/secrets.env")
    # Published ports: loopback unless the role passes the mesh address (or the inventory asks for 0.0.0.0).
    bind_address: str = "127.0.0.1"
    restart: str = "unless-stopped"
    # "index" (seed 004: '0', '1') or "uuid" (stable across PCIe re-enumeration; falls back to index).
    gpu_device_id: str = "index"
    # False: hosts whose engine cannot honour NVIDIA device reservations (lab simulation, CI
    # without GPUs); the override then carries only the GPU environment of each service.
    gpu_reservations: bool = True
    health_timeout: int = 120
    strategy: str | None = None


@dataclass(frozen=True)
class UserFile:
    """One of the user's own compose files: its name in the project directory (the basename of the
    controller path), its text (copied verbatim) and its parsed content (the apply hashes it)."""

    name: str
    text: str
    data: Mapping[str, Any]
    source: str = ""  # the controller path, for messages


@dataclass
class RenderedProject:
    """Everything the compose role writes, as data (YAML text via :func:`to_yaml`)."""

    main_file: str
    compose: dict[str, Any]
    gpu_override: dict[str, Any] | None
    gpu_assignments: dict[str, Any] | None
    profiles: list[str]
    warnings: list[str] = field(default_factory=list)
    # The user's own compose files (seed 004 layout); empty: ``main_file`` is rendered from the catalog.
    user_files: list[UserFile] = field(default_factory=list)

    @property
    def compose_files(self) -> list[str]:
        """The ``-f`` list in order (main file or the user files first, then the GPU override)."""
        if self.user_files:
            return [u.name for u in self.user_files] + [GPU_OVERRIDE_FILE]
        return [self.main_file] + ([GPU_OVERRIDE_FILE] if self.gpu_override is not None else [])

    def files(self) -> dict[str, str]:
        """Relative path -> rendered text for every file of the project."""
        user = {u.name: u.text for u in self.user_files}
        out = user or {self.main_file: to_yaml(self.compose)}
        if self.gpu_override is not None:
            out[GPU_OVERRIDE_FILE] = to_yaml(self.gpu_override)
        if self.gpu_assignments is not None:
            out[GPU_ASSIGNMENTS_FILE] = to_yaml(self.gpu_assignments)
        return out


# --------------------------------------------------------------------------- YAML emitter
# A small deterministic emitter so that targets need no PyYAML and the bytes never depend on
# a library version. Scalars that could be read back as anything but the same string are
# double-quoted (JSON escaping is valid YAML double-quoted style).
# Plain (unquoted) only for strings starting with a letter, '_' or '/', made of safe characters;
# ':' allowed inside (image tags, URLs) but never followed by a space or at the end.
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@+:-]*$")
_NON_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_SPECIAL = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|null|Null|NULL|~|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN|[-+]?\.(?:inf|Inf|INF))$"
)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise RenderError(f"cannot write non-finite number {value!r}")
        return repr(value)
    if isinstance(value, str):
        if value and _PLAIN.fullmatch(value) and not _SPECIAL.fullmatch(value) and not value.endswith((".", ":")):
            return value
        # JSON escaping is YAML double-quoted style; characters YAML forbids raw get \\u escapes.
        return _NON_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))
    raise RenderError(f"cannot write {type(value).__name__} value {value!r} as YAML")


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RenderError(f"mapping keys must be strings, got {key!r}")
            head = f"{pad}{_scalar(key)}:"
            if isinstance(item, (Mapping, list, tuple)) and item:
                lines.append(head)
                _emit(item, indent + 1, lines)
            else:
                lines.append(f"{head} {_inline(item)}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, Mapping) and item:
                sub: list[str] = []
                _emit(item, indent + 1, sub)
                first = sub[0][len(pad) + 2 :]
                lines.append(f"{pad}- {first}")
                lines.extend(sub[1:])
            elif isinstance(item, (list, tuple)) and item:
                sub = []
                _emit(item, indent + 1, sub)
                lines.append(f"{pad}-")
                lines.extend(sub)
            else:
                lines.append(f"{pad}- {_inline(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    return _scalar(value)


def to_yaml(data: Any) -> str:
    """Deterministic block-style YAML (keys keep insertion order), ending with a newline."""
    if not isinstance(data, (Mapping, list, tuple)) or not data:
        return _inline(data) + "\n"
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- helpers
def env_name(service: str, suffix: str = "") -> str:
    """``hi-rag-gpu`` -> ``HI_RAG_GPU`` (+ suffix): the name of a service in environment variables."""
    base = re.sub(r"[^A-Za-z0-9]+", "_", service).strip("_").upper()
    if not base:
        raise RenderError(f"service name {service!r} gives no environment variable name")
    if base[0].isdigit():
        base = "S_" + base
    return base + suffix


def compose_file_name(arch: str) -> str:
    """The main compose file per architecture (seed 000: ``docker-compose.arm64.yml`` on arm64)."""
    return "docker-compose.arm64.yml" if arch in ("aarch64", "arm64") else "docker-compose.yml"


def config_hash(parts: Sequence[Any]) -> str:
    """sha256 (first 16 hex digits) of a canonical JSON of ``parts``: a service's identity."""
    text = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _format_image(template: str, hardware: Mapping[str, Any]) -> str:
    jetson = hardware.get("jetson") or {}
    cuda = hardware.get("cuda") or {}
    values = {
        "l4t": jetson.get("l4t") or "",
        "jetpack": jetson.get("jetpack") or "",
        "cuda": cuda.get("version") or "",
    }
    try:
        image = template.format_map(values)
    except (KeyError, ValueError, IndexError) as exc:
        raise RenderError(f"image template {template!r}: {exc}") from exc
    if re.search(r":r?$|:$", image) or "::" in image:
        raise RenderError(
            f"image template {template!r} needs facts this host does not have "
            f"(l4t={values['l4t']!r}, jetpack={values['jetpack']!r}, cuda={values['cuda']!r})"
        )
    return image


def resolve_image(entry: Mapping[str, Any], node_class: str, hardware: Mapping[str, Any],
                  class_defaults: Mapping[str, Mapping[str, Any]]) -> str:
    """Image for a service on this host: catalog ``image_arm64``/``image``, else the class base image."""
    arm = hardware.get("arch") in ("aarch64", "arm64")
    defaults = class_defaults.get(node_class) or {}
    for candidate in (entry.get("image_arm64") if arm else None, entry.get("image"),
                      defaults.get("base_image_arm64") if arm else defaults.get("base_image")):
        if candidate:
            return _format_image(str(candidate), hardware)
    raise RenderError(f"service {entry.get('name')!r}: no image and no base image for class {node_class!r}")


def service_order(services: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Services in start order: dependencies first, ties by name (stable, deterministic)."""
    deps = {name: sorted(_depends(svc) & set(services)) for name, svc in services.items()}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise RenderError("depends_on cycle: " + " -> ".join((*path, name)))
        state[name] = 1
        for dep in deps[name]:
            visit(dep, (*path, name))
        state[name] = 2
        order.append(name)

    for name in sorted(services):
        visit(name, ())
    return order


def _depends(service: Mapping[str, Any]) -> set[str]:
    value = service.get("depends_on") or []
    return set(value) if isinstance(value, (list, tuple, Mapping)) else {str(value)}


def _gpu_slug(name: str) -> str:
    drop = {"nvidia", "geforce", "gpu", "corporation"}
    tokens = [t for t in re.findall(r"[a-z0-9]+", name.lower()) if t not in drop]
    return "-".join(tokens) or "gpu"


def gpu_type(hardware: Mapping[str, Any]) -> str:
    """A short GPU type for env files and labels: ``rtx-5090``, ``jetson-agx-orin``, ``gfx1151``, ``cpu``."""
    gpus = hardware.get("gpus") or []
    if hardware.get("accelerator") == "jetson":
        model = (hardware.get("jetson") or {}).get("model") or (gpus[0]["name"] if gpus else "jetson")
        slug = _gpu_slug(model.replace("Developer Kit", ""))
        return slug if slug.startswith("jetson") else "jetson-" + slug
    if not gpus:
        return "cpu"
    first = gpus[0]
    if first.get("vendor") == "amd" and first.get("gfx"):
        return str(first["gfx"])
    return _gpu_slug(str(first.get("name") or "gpu"))


def probe_host(bind_address: str) -> str:
    """Where the node itself reaches a port published on ``bind_address``: that address (a mesh address is only
    there, not on loopback), loopback when it is published on every interface. IPv6 in brackets."""
    host = bind_address or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        return "127.0.0.1"
    return f"[{host.strip('[]')}]" if ":" in host else host


def _health(entry: Mapping[str, Any], timeout: int, bind_address: str = "127.0.0.1") -> dict[str, Any] | None:
    """``x-pmoves-health`` of a service: HTTP when the catalog gives ``health``, else TCP on ``port``; a health
    path or a bare port is probed where the port is published (``bind_address``)."""
    health = entry.get("health")
    port = entry.get("port")
    host = probe_host(bind_address)
    if isinstance(health, Mapping):
        out = {k: health[k] for k in ("http", "tcp") if health.get(k)}
        if not out:
            raise RenderError(f"service {entry['name']!r}: health needs 'http' or 'tcp'")
        out["timeout"] = int(health.get("timeout", timeout))
        return out
    if health:
        url = str(health)
        if url.startswith("/"):
            if not port:
                raise RenderError(f"service {entry['name']!r}: health path {url!r} needs a port")
            url = f"http://{host}:{port}{url}"
        return {"http": url, "timeout": timeout}
    if port:
        return {"tcp": f"{host}:{port}", "timeout": timeout}
    return None


def _as_env_mapping(value: Any, where: str) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else _env_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        out: dict[str, str] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            out[key] = val if sep else ""
        return out
    raise RenderError(f"{where}: environment must be a mapping or a list of KEY=VALUE")


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _device_id(gpu: Mapping[str, Any], mode: str, planned_uuid: str | None = None) -> str:
    if mode == "uuid" and (planned_uuid or gpu.get("uuid")):
        return str(planned_uuid or gpu["uuid"])
    return str(gpu["index"])


def _uses_gpu(planned: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    """The planner decides whether a service uses a GPU (plan entry ``gpu``: catalog ``gpu``, else
    ``vram_mb > 0``), once for every stage; a plan without the flag falls back to the same rule."""
    if "gpu" in planned:
        return bool(planned["gpu"])
    if entry.get("gpu") is not None:
        return bool(entry["gpu"])
    return int(entry.get("vram_mb") or 0) > 0


def _budget_gb(total_mb: int) -> float:
    return math.floor(max(total_mb - _VRAM_BUDGET_RESERVE_MB, 0) / 100) / 10


# --------------------------------------------------------------------------- main entry
def render_project(
    host: str,
    node: Mapping[str, Any],
    catalog: Iterable[Mapping[str, Any]],
    hardware: Mapping[str, Any],
    class_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    options: RenderOptions | None = None,
    user_files: Sequence[UserFile] | None = None,
) -> RenderedProject:
    """Render the compose project of ``host`` (its plan.json node entry) as data.

    Raises :class:`RenderError` with an actionable message when the plan names a service that
    is not in the catalog, a GPU index the host does not have, or a dependency cycle; with
    ``user_files``, also when a planned service is in none of them (see :func:`layer_user_files`).
    """
    opts = options or RenderOptions()
    defaults = {**DEFAULT_CLASS_DEFAULTS, **(class_defaults or {})}
    node_class = str(node.get("class") or hardware.get("node_class") or "cpu")
    by_name = {str(e["name"]): e for e in catalog}
    planned = list(node.get("services") or [])
    warnings: list[str] = []
    if opts.gpu_device_id not in ("index", "uuid"):
        raise RenderError(f"gpu_device_id must be 'index' or 'uuid', not {opts.gpu_device_id!r}")

    missing = [s["name"] for s in planned if s["name"] not in by_name]
    if missing:
        raise RenderError(f"{host}: plan places {', '.join(missing)} but pmoves_services has no such entry")
    names = {s["name"] for s in planned}

    gpus = {int(g["index"]): g for g in hardware.get("gpus") or []}
    accelerator = hardware.get("accelerator") or "none"
    arch = str(hardware.get("arch") or "x86_64")

    services: dict[str, dict[str, Any]] = {}
    profiles: set[str] = set(defaults.get(node_class, {}).get("profiles") or [])
    for item in sorted(planned, key=lambda s: s["name"]):
        name = item["name"]
        entry = by_name[name]
        try:
            svc: dict[str, Any] = {"image": resolve_image(entry, node_class, hardware, defaults)}
        except RenderError:
            if not user_files:
                raise
            svc = {}  # the user's file names the image
        for key in _PASSTHROUGH_KEYS:
            if entry.get(key) is not None:
                svc[key] = entry[key]
        if entry.get("profiles"):
            svc["profiles"] = sorted(entry["profiles"])
            profiles.update(entry["profiles"])
        svc["restart"] = entry.get("restart", opts.restart)
        if opts.env_files:
            svc["env_file"] = list(opts.env_files)
        env = {"PMOVES_SERVICE": name, "PMOVES_NODE": host}
        env.update(_as_env_mapping(entry.get("environment"), f"service {name!r}"))
        svc["environment"] = dict(sorted(env.items()))
        if entry.get("port"):
            target = int(entry.get("container_port") or entry["port"])
            svc["ports"] = [f"{opts.bind_address}:{int(entry['port'])}:{target}"]
        deps = sorted(_depends(entry))
        local_deps = [d for d in deps if d in names]
        for dep in deps:
            if dep not in names:
                warnings.append(f"{host}: {name} depends on {dep}, which is not planned on this node (dependency left out)")
        if local_deps:
            svc["depends_on"] = local_deps
        svc["labels"] = {"io.pmoves.node": host, "io.pmoves.service": name}
        health = _health(entry, opts.health_timeout, opts.bind_address)
        if health:
            svc["x-pmoves-health"] = health
        services[name] = svc

    ordered = {name: services[name] for name in service_order(services)}
    compose: dict[str, Any] = {"name": opts.project_name, "services": ordered}

    override, assignments = _render_gpu(host, node_class, accelerator, planned, by_name, gpus, opts, warnings)
    if accelerator == "nvidia" and node_class == "gpu" and override is None and any(
        _uses_gpu(s, by_name[s["name"]]) for s in planned
    ):
        warnings.append(f"{host}: GPU services planned but none has a gpu_index in the plan")
    project = RenderedProject(
        main_file=compose_file_name(arch),
        compose=compose,
        gpu_override=override,
        gpu_assignments=assignments,
        profiles=sorted(profiles),
        warnings=warnings,
    )
    return layer_user_files(host, project, user_files) if user_files else project


def _as_mapping(value: Any) -> dict[str, Any]:
    """``environment`` / ``labels`` of a compose service as a mapping (list form ``KEY=VALUE``)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return dict(str(item).partition("=")[::2] for item in value)
    return {}


def layer_user_files(host: str, project: RenderedProject, user_files: Sequence[UserFile]) -> RenderedProject:
    """The project in the seed-004 layout: the user's files, then our override for every planned service.

    The override keeps of each rendered service only what the fleet owns (labels, health probe, GPU
    pinning); image, command, ports, volumes, env files and restart policy are the user's. Raises
    :class:`RenderError` when a planned service is in none of the user files, or a file is no compose file.
    """
    names = [u.name for u in user_files]
    for u in user_files:
        if not u.name or "/" in u.name or u.name in (GPU_OVERRIDE_FILE, GPU_ASSIGNMENTS_FILE) \
                or u.name in RESERVED_USER_FILE_NAMES or u.name.endswith(".last-good"):
            raise RenderError(f"{host}: user compose file {u.source or u.name!r}: the name {u.name!r} is reserved "
                              "in the project directory; rename the file")
        if not isinstance(u.data, Mapping) or not isinstance(u.data.get("services") or {}, Mapping):
            raise RenderError(f"{host}: user compose file {u.source or u.name!r} is not a compose file "
                              "(a mapping with a `services` mapping)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RenderError(f"{host}: user compose files {dupes} share a name in the project directory "
                          "(each is copied under its basename)")
    defined: dict[str, dict[str, Any]] = {}
    for u in user_files:
        for name, svc in (u.data.get("services") or {}).items():
            defined.setdefault(str(name), {}).update(svc or {})
    planned = list(project.compose["services"])
    missing = sorted(n for n in planned if n not in defined)
    if missing:
        raise RenderError(f"{host}: the plan places {', '.join(missing)} on this node but no user compose file "
                          f"defines {'it' if len(missing) == 1 else 'them'} (files: "
                          f"{', '.join(u.source or u.name for u in user_files)}); add the service to one of them "
                          "or leave pmoves_compose_user_files empty")
    warnings = list(project.warnings)
    gpu = (project.gpu_override or {}).get("services") or {}
    override: dict[str, Any] = {}
    profiles = set(project.profiles)
    for name in planned:
        rendered = project.compose["services"][name]
        svc: dict[str, Any] = {"labels": dict(rendered["labels"])}
        if "x-pmoves-health" in rendered:
            svc["x-pmoves-health"] = rendered["x-pmoves-health"]
        svc.update(gpu.get(name) or {})
        override[name] = svc
        profiles.update(defined[name].get("profiles") or [])
        mine = _as_mapping(defined[name].get("environment"))
        clash = sorted(k for k in (svc.get("environment") or {}) if k in mine)
        if clash:
            warnings.append(f"{host}: {name} sets {', '.join(clash)} in its user compose file; the GPU override "
                            "wins (it is layered last)")
        if name in gpu and ((defined[name].get("deploy") or {}).get("resources") or {}).get("reservations"):
            warnings.append(f"{host}: {name} reserves devices in its user compose file too; compose combines the "
                            "lists, so it may get more GPUs than the plan gives it (leave GPUs to the override)")
    return RenderedProject(
        main_file=project.main_file,
        compose=project.compose,
        gpu_override={"services": override},
        gpu_assignments=project.gpu_assignments,
        profiles=sorted(profiles),
        warnings=warnings,
        user_files=list(user_files),
    )


def _render_gpu(host: str, node_class: str, accelerator: str, planned: list[Mapping[str, Any]],
                by_name: Mapping[str, Mapping[str, Any]], gpus: Mapping[int, Mapping[str, Any]],
                opts: RenderOptions, warnings: list[str]) -> tuple[dict | None, dict | None]:
    """The seed-004 override and assignment table (None, None when no service uses a GPU)."""
    gpu_services = [s for s in sorted(planned, key=lambda s: s["name"])
                    if _uses_gpu(s, by_name[s["name"]]) and s.get("gpu_index") is not None]
    if not gpu_services or accelerator not in ("nvidia", "jetson", "amd"):
        for s in gpu_services:
            warnings.append(f"{host}: {s['name']} wants a GPU but the host has accelerator {accelerator!r}; runs without")
        return None, None

    override: dict[str, Any] = {}
    table: dict[str, Any] = {}
    gpu_warnings: list[str] = []
    used_mb: dict[int, int] = {}
    for item in gpu_services:
        name = item["name"]
        entry = by_name[name]
        index = int(item["gpu_index"])
        if index not in gpus:
            have = ", ".join(str(i) for i in sorted(gpus)) or "none"
            raise RenderError(f"{host}: plan pins {name} to GPU {index}, but the host has GPU indices [{have}]"
                              " (rerun discovery and planning)")
        gpu = gpus[index]
        vram_mb = int(item.get("vram_mb") or entry.get("vram_mb") or 0)
        total_mb = int(gpu.get("memory_total_mb") or 0)
        used_mb[index] = used_mb.get(index, 0) + vram_mb
        budget = item.get("vram_budget_gb", entry.get("vram_budget_gb"))
        requested_mb = int(item.get("vram_requested_mb") or entry.get("vram_mb") or 0)
        if budget is None and (item.get("budget_adjusted") or 0 < vram_mb < requested_mb):
            # The planner sized an adjustable budget into what the GPU had left (seed 004 auto-adjust).
            budget = math.floor(vram_mb / 100) / 10
            gpu_warnings.append(f"{host}: {name} VRAM budget ({requested_mb / 1000:.1f} GB) auto-adjusted by the "
                                f"planner to {budget} GB on GPU {index} ({total_mb / 1000:.1f} GB)")
        elif budget is None and total_mb and vram_mb > total_mb:
            budget = _budget_gb(total_mb)
            gpu_warnings.append(f"{host}: {name} VRAM budget ({vram_mb / 1000:.1f} GB) exceeds GPU {index} "
                                f"({total_mb / 1000:.1f} GB); auto-adjusted to {budget} GB")
        env: dict[str, str] = {"PMOVES_GPU_INDEX": str(index)}
        svc: dict[str, Any] = {}
        if accelerator == "jetson":
            device = {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
        elif accelerator == "amd":
            device = None
            svc["devices"] = ["/dev/kfd", "/dev/dri"]
            svc["group_add"] = ["video", "render"]
            env["HIP_VISIBLE_DEVICES"] = str(index)
        else:
            device_id = _device_id(gpu, opts.gpu_device_id, item.get("gpu_uuid"))
            device = {"driver": "nvidia", "device_ids": [device_id], "capabilities": ["gpu"]}
            # Inside the container the reserved GPU is device 0; NVIDIA_VISIBLE_DEVICES keeps a
            # default-runtime=nvidia engine from exposing every GPU through the env file's "all".
            env["NVIDIA_VISIBLE_DEVICES"] = device_id
            env["CUDA_VISIBLE_DEVICES"] = "0"
        if device is not None and opts.gpu_reservations:
            svc["deploy"] = {"resources": {"reservations": {"devices": [device]}}}
        if budget is not None:
            env["VRAM_BUDGET_GB"] = _env_value(budget)
        svc["environment"] = dict(sorted(env.items()))
        override[name] = svc
        table[name] = {
            "gpu": index,
            "vram_budget": budget,
            "device_id": _device_id(gpu, opts.gpu_device_id, item.get("gpu_uuid")),
            "gpu_name": gpu.get("name"),
            "vram_mb": vram_mb,
        }
        if entry.get("model"):
            table[name]["model"] = entry["model"]
    for index, used in sorted(used_mb.items()):
        total = int(gpus[index].get("memory_total_mb") or 0)
        if total and used > total and len([s for s in gpu_services if int(s["gpu_index"]) == index]) > 1:
            gpu_warnings.append(f"{host}: combined VRAM (~{used / 1000:.1f} GB) exceeds GPU {index} "
                                f"capacity ({total / 1000:.1f} GB)")
    doc = {
        "host": host,
        "strategy": opts.strategy or "plan",
        "assignments": table,
        "gpus": {str(i): {"name": g.get("name"), "memory_total_mb": g.get("memory_total_mb"), "uuid": g.get("uuid")}
                 for i, g in sorted(gpus.items())},
        "warnings": gpu_warnings,
    }
    warnings.extend(gpu_warnings)
    return {"services": override}, doc
