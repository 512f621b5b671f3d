#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Write a compose project and recreate only the services whose configuration changed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_apply
short_description: Apply a compose project, recreating only changed services, with rollback
version_added: "0.1.0"
description:
  - Writes the files of a compose project (compose files given as data, written as deterministic YAML),
    labels every service with C(io.pmoves.config-hash) (its sections in every compose file plus the digests
    of its env files) and compares it with the running containers.
  - Recreates only the services whose hash changed, whose container is missing or not running, one at a
    time in C(depends_on) order; each must be running and pass its C(x-pmoves-health) probe (HTTP or TCP)
    before the next starts.
  - Keeps the files of the last successful apply as C(<file>.last-good). When a service fails to start,
    restores those files, brings the touched services back as they were, and fails with the service's
    log tail.
  - Works with C(docker compose) and C(podman-compose) (Debian 12's 1.0.3 and the 1.x releases).
    On podman, recreating a service also recreates its running dependents (podman links them).
author:
  - pmoves.fleet developers (@pmoves)
options:
  project_dir:
    description: Directory of the project; relative file paths are under it.
    type: path
    required: true
  project_name:
    description: Compose project name (C(-p)); containers are found by the label C(com.docker.compose.project).
    type: str
    default: pmoves
  files:
    description:
      - Files to write. C(content) is a mapping (written as YAML) or a string (written verbatim).
      - Compose files (named in O(compose_files)) must be mappings, or strings written verbatim with their parsed
        content in C(data) (the user's own compose files of seed 004 - copied byte for byte, hashed from C(data),
        never relabelled; the hash label of their services goes into the first mapping file that names them).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path relative to O(project_dir).
        type: str
        required: true
      content:
        description: Mapping or string.
        type: raw
        required: true
      data:
        description:
          - For a compose file given as a string, its parsed content (parsed on the controller; nodes need no PyYAML).
        type: raw
  compose_files:
    description: The C(-f) list, in order (main file first, then overrides). Each must be in O(files).
    type: list
    elements: str
    default: []
  stale_files:
    description:
      - Paths relative to O(project_dir) that an earlier release wrote and this one no longer does (the
        root-level C(docker-compose.gpu-override.yml) before it moved to C(config/)).
      - After a successful apply each is removed, with its C(.last-good) copy, when it is still ours
        (byte-identical to its C(.last-good) copy); one edited since is kept and listed in RV(stale_kept).
    type: list
    elements: str
    default: []
  services:
    description:
      - The services this apply manages (the node's planned services); other services of the files are neither
        started nor recreated, and their containers are removed unless listed in O(keep_services).
      - Not given, every active service of the files is managed.
    type: list
    elements: str
  keep_services:
    description:
      - Services of the files that are left alone - never started, recreated nor removed (services of the user's
        own compose files that the fleet does not manage).
    type: list
    elements: str
    default: []
  profiles:
    description:
      - Active compose profiles (COMPOSE_PROFILES). Services whose C(profiles) do not intersect are not started.
      - podman-compose 1.0.3 has no profiles; services are always named explicitly, so every engine behaves alike.
    type: list
    elements: str
    default: []
  engine:
    description: C(auto) uses C(docker compose) when it answers, else C(podman-compose).
    type: str
    choices: [auto, docker, podman]
    default: auto
  state:
    description: C(present) applies the project; C(absent) removes all its containers (files are kept).
    type: str
    choices: [present, absent]
    default: present
  health_timeout:
    description: Seconds a service may take to become healthy when its C(x-pmoves-health) gives no timeout.
    type: int
    default: 120
  settle_seconds:
    description: Seconds a container must stay running before it counts as started (catches crash loops).
    type: float
    default: 2.0
  stop_timeout:
    description: Seconds a container gets to stop (SIGTERM) before it is killed when it is replaced.
    type: int
    default: 10
  log_lines:
    description: Lines of the failing service's log included in the failure message.
    type: int
    default: 40
  file_mode:
    description: Mode of the written files.
    type: str
    default: "0644"
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: Reports the services that would be recreated or removed and the file changes; runs nothing.
  diff_mode:
    support: full
    details: Shows the rendered file diff.
  idempotent:
    support: full
    details: A second run with the same inputs changes nothing (hashes match the running containers).
notes:
  - Env files named by C(env_file) are hashed (sha256 of their content, never logged), so a changed env file
    recreates the services that read it. In check mode the env files on disk are hashed as they are.
  - podman-compose 1.0.3 ignores C(deploy.resources.reservations.devices); later releases map NVIDIA device
    reservations to CDI devices (C(nvidia.com/gpu=<id>)).
"""

EXAMPLES = r"""
- name: Compose | apply the node's services
  pmoves.fleet.compose_apply:
    project_dir: /opt/pmoves/compose
    files:
      - path: docker-compose.yml
        content: "{{ rendered.compose }}"
      - path: config/docker-compose.gpu-override.yml
        content: "{{ rendered.gpu_override }}"
    compose_files: [docker-compose.yml, config/docker-compose.gpu-override.yml]
    profiles: [gpu, tts]

- name: Compose | seed 004 layout - the user's own compose file under the GPU override
  pmoves.fleet.compose_apply:
    project_dir: /opt/pmoves/compose
    files:
      - path: docker-compose.prod.yml
        content: "{{ lookup('ansible.builtin.file', 'docker-compose.prod.yml', rstrip=false) }}"
        data: "{{ lookup('ansible.builtin.file', 'docker-compose.prod.yml') | from_yaml }}"
      - path: config/docker-compose.gpu-override.yml
        content: "{{ rendered.gpu_override }}"
    compose_files: [docker-compose.prod.yml, config/docker-compose.gpu-override.yml]
    services: [ai-llm, ai-enrichment]
"""

RETURN = r"""
recreated:
  description: Services (re)created, in start order (in check mode, those that would be).
  returned: always
  type: list
  elements: str
  sample: [ai-enrichment]
reasons:
  description: Why each service in RV(recreated) is recreated.
  returned: always
  type: dict
  sample: {ai-enrichment: configuration changed}
unchanged:
  description: Services left running as they were.
  returned: always
  type: list
  elements: str
removed:
  description: Services no longer in the project whose containers were removed.
  returned: always
  type: list
  elements: str
stale_removed:
  description: Stale files (O(stale_files)) removed (or that would be).
  returned: always
  type: list
  elements: str
stale_kept:
  description: Stale files kept because they differ from what this module wrote.
  returned: always
  type: list
  elements: str
files_changed:
  description: Relative paths of the files written (or that would be).
  returned: always
  type: list
  elements: str
services:
  description: Active services of the project in start order.
  returned: always
  type: list
  elements: str
engine:
  description: The compose engine used.
  returned: always
  type: dict
  sample: {kind: podman, version: 1.0.3, command: [/usr/bin/podman-compose]}
failed_service:
  description: The service that failed to start (on failure).
  returned: failure
  type: str
log_tail:
  description: Last log lines of the failed service (on failure).
  returned: failure
  type: str
rollback:
  description: What the rollback restored (on failure).
  returned: failure
  type: dict
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils.compose_apply import (
    ApplyError,
    ComposeProject,
    detect_engine,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import RenderError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project_dir": {"type": "path", "required": True},
            "project_name": {"type": "str", "default": "pmoves"},
            "files": {"type": "list", "elements": "dict", "default": [], "options": {
                "path": {"type": "str", "required": True},
                "content": {"type": "raw", "required": True},
                "data": {"type": "raw"},
            }},
            "services": {"type": "list", "elements": "str"},
            "keep_services": {"type": "list", "elements": "str", "default": []},
            "compose_files": {"type": "list", "elements": "str", "default": []},
            "stale_files": {"type": "list", "elements": "str", "default": []},
            "profiles": {"type": "list", "elements": "str", "default": []},
            "engine": {"type": "str", "choices": ["auto", "docker", "podman"], "default": "auto"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "health_timeout": {"type": "int", "default": 120},
            "settle_seconds": {"type": "float", "default": 2.0},
            "log_lines": {"type": "int", "default": 40},
            "stop_timeout": {"type": "int", "default": 10},
            "file_mode": {"type": "str", "default": "0644"},
        },
        required_if=[("state", "present", ("compose_files",))],
        supports_check_mode=True,
    )
    p = module.params
    documents = {f["path"]: f["content"] for f in p["files"]}
    parsed = {f["path"]: f["data"] for f in p["files"] if isinstance(f["content"], str) and f.get("data") is not None}
    missing = [rel for rel in p["compose_files"] if rel not in documents]
    if missing:
        module.fail_json(msg=f"compose_files {missing} are not in files: give their content")
    try:
        mode = int(p["file_mode"], 8)
    except ValueError:
        module.fail_json(msg=f"file_mode {p['file_mode']!r} is not an octal mode such as '0644'")

    def run(argv):
        return module.run_command(list(argv), cwd=p["project_dir"] if os.path.isdir(p["project_dir"]) else None)

    result = {"changed": False, "recreated": [], "reasons": {}, "unchanged": [], "removed": [],
              "files_changed": [], "stale_removed": [], "stale_kept": [], "services": []}
    try:
        engine = detect_engine(run, shutil.which, p["engine"])
        result["engine"] = {"kind": engine.kind, "version": engine.version, "command": list(engine.compose)}
        project = ComposeProject(
            project_dir=p["project_dir"], project_name=p["project_name"], compose_files=p["compose_files"],
            documents=documents, engine=engine, run=run, profiles=p["profiles"], file_mode=mode,
            health_timeout=p["health_timeout"], settle_seconds=p["settle_seconds"], log_lines=p["log_lines"],
            stop_timeout=p["stop_timeout"], stale_files=p["stale_files"], parsed=parsed, services=p["services"],
            keep_services=p["keep_services"],
        )
        if p["state"] == "absent":
            if module.check_mode:
                gone = project.containers()
                result.update(changed=bool(gone), removed=sorted({c.service or c.name for c in gone}))
            else:
                result.update(project.down())
            module.exit_json(**result)

        texts, before, changes, order = project.plan()
        changed_files = sorted(rel for rel, text in texts.items() if before[rel] != text)
        if module._diff:
            result["diff"] = [{"before_header": os.path.join(p["project_dir"], rel), "after_header": os.path.join(
                p["project_dir"], rel), "before": before[rel] or "", "after": texts[rel]} for rel in changed_files]
        if module.check_mode:
            stale_removed, stale_kept = project.stale()
            result.update(
                changed=bool(changed_files or changes.recreate or changes.remove or stale_removed),
                files_changed=changed_files, stale_removed=stale_removed, stale_kept=stale_kept,
                recreated=list(changes.recreate), reasons=changes.recreate, unchanged=changes.unchanged,
                removed=[c.service or c.name for c in changes.remove], services=order,
            )
            module.exit_json(**result)
        result.update(project.apply())
        for rel in result["stale_kept"]:
            module.warn(f"{rel}: no longer written by this release but edited since; kept (remove it by hand)")
    except ApplyError as exc:
        result.update(exc.details)
        module.fail_json(msg=exc.msg, **result)
    except (RenderError, OSError) as exc:
        module.fail_json(msg=f"compose project {p['project_dir']}: {exc}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
