# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Filters of the node-service roles: render a node's compose project and env file on the controller."""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import (
    GPU_ASSIGNMENTS_FILE,
    GPU_OVERRIDE_FILE,
    STALE_FILES,
    RenderError,
    RenderOptions,
    UserFile,
    render_project,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.node_env import EnvError, env_file_text, render_node_env

_OPTION_FIELDS = set(RenderOptions.__dataclass_fields__)


def user_file_paths(paths: list | None, base_dir: str) -> list[str]:
    """``pmoves_compose_user_files`` as absolute controller paths: a relative path is under ``base_dir``
    (the role passes ``inventory_dir``, the directory of the inventory that defines the host)."""
    out = []
    for path in paths or []:
        if not isinstance(path, str) or not path.strip():
            raise AnsibleFilterError(f"compose_user_file_paths: {path!r} is not a file path")
        out.append(os.path.normpath(os.path.join(base_dir or ".", os.path.expanduser(path))))
    return out


def read_user_files(paths: list[str]) -> list[UserFile]:
    """The user's compose files read on the controller: verbatim text and the parsed data (JSON-safe, so that
    the apply on the node, which needs no PyYAML, hashes exactly what the controller parsed)."""
    out = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise AnsibleFilterError(f"compose user file {path}: {exc.strerror or exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AnsibleFilterError(f"compose user file {path} is not valid YAML: {exc}") from exc
        out.append(UserFile(name=os.path.basename(path), text=text,
                            data=json.loads(json.dumps(data, default=str)), source=path))
    return out


def compose_project(node: dict, host: str, catalog: list, hardware: dict, class_defaults: dict | None = None,
                    options: dict | None = None, user_files: list | None = None) -> dict[str, Any]:
    """The node's compose project for the role; ``user_files``: absolute controller paths of the user's own
    compose files (see :func:`user_file_paths`), layered under the GPU override instead of a rendered file."""
    opts = dict(options or {})
    unknown = sorted(set(opts) - _OPTION_FIELDS)
    if unknown:
        raise AnsibleFilterError(f"compose_project: unknown options {unknown} (known: {sorted(_OPTION_FIELDS)})")
    if "env_files" in opts:
        opts["env_files"] = tuple(opts["env_files"])
    users = read_user_files(list(user_files or []))
    try:
        project = render_project(host, node or {}, catalog or [], hardware or {}, class_defaults, RenderOptions(**opts),
                                 user_files=users)
    except (RenderError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"compose_project({host}): {exc}") from exc
    if users:
        return _user_layout(project, catalog or [])
    files = [{"path": project.main_file, "content": project.compose}]
    if project.gpu_override is not None:
        files.append({"path": GPU_OVERRIDE_FILE, "content": project.gpu_override})
    if project.gpu_assignments is not None:
        files.append({"path": GPU_ASSIGNMENTS_FILE, "content": project.gpu_assignments})
    return {"main_file": project.main_file, "compose_files": project.compose_files, "files": files,
            "profiles": project.profiles, "warnings": project.warnings, "stale_files": list(STALE_FILES),
            "services": list(project.compose["services"])}


def _user_layout(project: Any, catalog: list) -> dict[str, Any]:
    planned = list(project.compose["services"])
    known = {str(e.get("name")) for e in catalog if isinstance(e, dict)}
    names = {u.name for u in project.user_files}
    foreign = sorted({str(s) for u in project.user_files for s in (u.data.get("services") or {})} - known)
    files: list[dict[str, Any]] = [{"path": u.name, "content": u.text, "data": u.data} for u in project.user_files]
    files.append({"path": GPU_OVERRIDE_FILE, "content": project.gpu_override})
    if project.gpu_assignments is not None:
        files.append({"path": GPU_ASSIGNMENTS_FILE, "content": project.gpu_assignments})
    # The rendered main file of the default layout goes once the project converged, when still ours.
    stale = list(STALE_FILES) + ([project.main_file] if project.main_file not in names else [])
    return {"main_file": project.main_file, "compose_files": project.compose_files, "files": files,
            "profiles": project.profiles, "warnings": project.warnings, "stale_files": stale, "services": planned,
            "user_files": [u.name for u in project.user_files],
            # Services of the user files the catalog does not know: the user's, never started nor removed by us.
            "keep_services": foreign}


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
        return {"compose_project": compose_project, "compose_user_file_paths": user_file_paths, "node_env": node_env,
                "env_file_text": env_file}
