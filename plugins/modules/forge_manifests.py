#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: forge_manifests
short_description: Render the Forge inference kustomize tree (base + one overlay per hardware profile)
description:
  - Writes a kustomize base (Deployment, Service, the C(hardware_profiles.yaml) ConfigMap) and one
    overlay per hardware profile into I(dest). Each overlay pins the Deployment with a required
    node affinity on C(nvidia.com/gpu.product), with values exactly as GPU Feature Discovery
    sanitises them, taken from the discovered facts of the hosts running that profile.
  - Only files whose content changed are written; files of overlays no longer wanted are removed.
  - Runs where the files should be written, usually the controller (with C(delegate_to=localhost)).
version_added: 0.1.0
author: pmoves.fleet developers (@pmoves)
requirements:
  - PyYAML
options:
  dest:
    description: Directory of the kustomize tree.
    type: path
    required: true
  profiles:
    description:
      - User hardware profiles by name, merged over the built-ins (jetson-thor, rtx-pro-4000,
        development), in the seed's shape (C(arch), C(tensorrt_precision), C(max_batch_size),
        C(kv_cache_fraction), ...). An optional C(gfd_products) list adds product label values.
    type: dict
    default: {}
  hosts:
    description: C(pmoves_hardware) facts by host; their C(labels) and C(hardware_profile) give the GPU products.
    type: dict
    default: {}
  image:
    description: Inference image (multi-arch).
    type: str
    default: forge-inference:latest
  namespace:
    description: Namespace set in the base kustomization.
    type: str
  port:
    description: Container and Service port of the inference API.
    type: int
    default: 8000
  overlays:
    description: Profiles to render overlays for (default every profile).
    type: list
    elements: str
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
"""

EXAMPLES = r"""
- name: Forge | Render kustomize overlays per SKU
  pmoves.fleet.forge_manifests:
    dest: "{{ pmoves_artifacts_dir }}/k8s"
    profiles: "{{ pmoves_forge_profiles }}"
    hosts: "{{ dict(groups['all'] | zip(groups['all'] | map('extract', hostvars, 'pmoves_hardware'))) }}"
    image: registry.example/forge-inference:1.0
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
files:
  description: Relative paths of the files of the tree.
  returned: always
  type: list
  elements: str
written:
  description: Files written (or that would be) because they were new or changed.
  returned: always
  type: list
  elements: str
removed:
  description: Overlay files removed because their profile is no longer rendered.
  returned: always
  type: list
  elements: str
warnings_found:
  description: Overlays pinned by architecture only (no GPU product known).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.pmoves.fleet.plugins.module_utils.forge_k8s import HAS_YAML, render_kustomize
from ansible_collections.pmoves.fleet.plugins.module_utils.hardware_profiles import merge_profiles


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            profiles=dict(type="dict", default={}),
            hosts=dict(type="dict", default={}),
            image=dict(type="str", default="forge-inference:latest"),
            namespace=dict(type="str"),
            port=dict(type="int", default=8000),
            overlays=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    params = module.params
    profiles = merge_profiles(params["profiles"])
    unknown = sorted(set(params["overlays"] or []) - set(profiles))
    if unknown:
        module.fail_json(msg=f"overlays {unknown} name no profile; known profiles: {sorted(profiles)}")
    hosts = {name: facts for name, facts in (params["hosts"] or {}).items() if isinstance(facts, dict)}
    files, warnings = render_kustomize(profiles, hosts, params["image"], params["namespace"],
                                       params["port"], overlays=params["overlays"])
    dest = params["dest"]
    written, diffs = [], []
    for rel, content in files.items():
        path = os.path.join(dest, rel)
        before = _read(path)
        if before == content:
            continue
        written.append(rel)
        diffs.append(dict(before=before or "", after=content, before_header=path, after_header=path))
        if not module.check_mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w") as handle:
                handle.write(content)
            os.replace(tmp, path)
    removed = []
    overlays_dir = os.path.join(dest, "overlays")
    if os.path.isdir(overlays_dir):
        for name in sorted(os.listdir(overlays_dir)):
            for filename in sorted(os.listdir(os.path.join(overlays_dir, name))):
                rel = f"overlays/{name}/{filename}"
                if rel not in files:
                    removed.append(rel)
                    if not module.check_mode:
                        os.remove(os.path.join(dest, rel))
            if not module.check_mode and not os.listdir(os.path.join(overlays_dir, name)):
                os.rmdir(os.path.join(overlays_dir, name))
    for warning in warnings:
        module.warn(warning)
    result = dict(changed=bool(written or removed), files=sorted(files), written=written, removed=removed,
                  warnings_found=warnings)
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
