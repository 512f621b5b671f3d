# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Filters of the node-service roles: render a node's compose project and env file on the controller."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import (
    GPU_ASSIGNMENTS_FILE,
    GPU_OVERRIDE_FILE,
    STALE_FILES,
    RenderError,
    RenderOptions,
    render_project,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.node_env import EnvError, env_file_text, render_node_env

_OPTION_FIELDS = set(RenderOptions.__dataclass_fields__)


def compose_project(node: dict, host: str, catalog: list, hardware: dict, class_defaults: dict | None = None,
                    options: dict | None = None) -> dict[str, Any]:
    opts = dict(options or {})
    unknown = sorted(set(opts) - _OPTION_FIELDS)
    if unknown:
        raise AnsibleFilterError(f"compose_project: unknown options {unknown} (known: {sorted(_OPTION_FIELDS)})")
    if "env_files" in opts:
        opts["env_files"] = tuple(opts["env_files"])
    try:
        project = render_project(host, node or {}, catalog or [], hardware or {}, class_defaults, RenderOptions(**opts))
    except (RenderError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"compose_project({host}): {exc}") from exc
    files = [{"path": project.main_file, "content": project.compose}]
    if project.gpu_override is not None:
        files.append({"path": GPU_OVERRIDE_FILE, "content": project.gpu_override})
    if project.gpu_assignments is not None:
        files.append({"path": GPU_ASSIGNMENTS_FILE, "content": project.gpu_assignments})
    return {"main_file": project.main_file, "compose_files": project.compose_files, "files": files,
            "profiles": project.profiles, "warnings": project.warnings, "stale_files": list(STALE_FILES),
            "services": list(project.compose["services"])}


def node_env(plan: dict, host: str, catalog: list, hardware: dict, **kwargs: Any) -> dict[str, str]:
    try:
        return render_node_env(host, plan or {}, catalog or [], hardware or {}, **kwargs)
    except (EnvError, RenderError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"node_env({host}): {exc}") from exc


def env_file(env: dict, header: str | None = None) -> str:
    try:
        return env_file_text(env or {}, header)
    except EnvError as exc:
        raise AnsibleFilterError(f"env_file_text: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"compose_project": compose_project, "node_env": node_env, "env_file_text": env_file}
