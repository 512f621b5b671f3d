#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Read the NVIDIA Container Toolkit state of a host and say what needs doing (changes nothing)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_runtime_info
short_description: What the NVIDIA Container Toolkit set-up of a host needs (read only)
version_added: "0.1.0"
description:
  - Reads C(nvidia-ctk --version), the config of each container engine installed (docker C(daemon.json),
    containerd C(config.toml), podman uses CDI only), the CDI spec and the state file that records the driver
    the CDI spec was generated for.
  - Returns which engines need C(nvidia-ctk runtime configure), whether the CDI spec must be regenerated and
    whether the toolkit is new enough (>= 1.17.8 by default, for CVE-2025-23266 / CVE-2025-23267).
author:
  - pmoves.fleet developers (@pmoves)
options:
  driver_version:
    description: NVIDIA driver version found by discovery (C(pmoves_hardware.nvidia.driver_version)).
    type: str
  min_version:
    description: Oldest accepted nvidia-ctk.
    type: str
    default: 1.17.8
  cdi_spec:
    description: CDI spec path.
    type: path
    default: /etc/cdi/nvidia.yaml
  state_file:
    description: JSON file recording the driver and toolkit the CDI spec was generated for.
    type: path
    default: /etc/pmoves/nvidia-runtime.json
  docker_config:
    description: docker daemon config.
    type: path
    default: /etc/docker/daemon.json
  containerd_config:
    description: containerd config.
    type: path
    default: /etc/containerd/config.toml
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: Read only.
  diff_mode:
    support: N/A
    details: Changes nothing.
  idempotent:
    support: full
    details: Read only.
"""

EXAMPLES = r"""
- name: NVIDIA runtime | read the toolkit state
  pmoves.fleet.nvidia_runtime_info:
    driver_version: "{{ ansible_facts.pmoves_hardware.nvidia.driver_version }}"
  register: pmoves_nvidia_runtime_state
"""

RETURN = r"""
ctk_version:
  description: nvidia-ctk version, null when not installed.
  returned: always
  type: str
  sample: 1.17.8
ctk_ok:
  description: nvidia-ctk is installed and at least O(min_version).
  returned: always
  type: bool
engines:
  description: Container engines found on the host.
  returned: always
  type: list
  elements: str
  sample: [docker]
configure:
  description: Engines whose config lacks the nvidia runtime.
  returned: always
  type: list
  elements: str
cdi_regenerate:
  description: The CDI spec must be (re)generated.
  returned: always
  type: bool
cdi_reason:
  description: Why the CDI spec must be regenerated.
  returned: always
  type: str
messages:
  description: Human-readable findings.
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils.nvidia_runtime import plan_runtime


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "driver_version": {"type": "str"},
            "min_version": {"type": "str", "default": "1.17.8"},
            "cdi_spec": {"type": "path", "default": "/etc/cdi/nvidia.yaml"},
            "state_file": {"type": "path", "default": "/etc/pmoves/nvidia-runtime.json"},
            "docker_config": {"type": "path", "default": "/etc/docker/daemon.json"},
            "containerd_config": {"type": "path", "default": "/etc/containerd/config.toml"},
        },
        supports_check_mode=True,
    )
    p = module.params
    ctk = module.get_bin_path("nvidia-ctk")
    version_text = None
    if ctk:
        rc, out, _err = module.run_command([ctk, "--version"])
        version_text = out if rc == 0 else None
    engines = {}
    if module.get_bin_path("dockerd"):
        engines["docker"] = _read(p["docker_config"])
    if module.get_bin_path("containerd"):
        engines["containerd"] = _read(p["containerd_config"])
    if module.get_bin_path("podman"):
        engines["podman"] = None
    state_text = _read(p["state_file"])
    try:
        state = json.loads(state_text) if state_text else None
    except ValueError:
        state = None
    plan = plan_runtime(version_text, engines, cdi_spec_exists=os.path.exists(p["cdi_spec"]), state=state,
                        driver_version=p["driver_version"], minimum=p["min_version"])
    module.exit_json(changed=False, engines=sorted(engines), **plan.as_dict())


if __name__ == "__main__":
    main()
