#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: trt_engine
short_description: Build a TensorRT-LLM engine for this node's hardware profile when it is missing or stale
description:
  - Builds a TensorRT-LLM engine with C(trtllm-build) for one model, architecture, precision and
    maximum batch size, directly or inside the matching container image.
  - The engine lives in I(engines_root)/<arch>/<model>-<precision>-b<batch>/ next to a manifest
    C(pmoves-engine.json) recording the spec, the checkpoint's fingerprint and the command.
    A rerun with the same spec and checkpoint changes nothing; a new precision or batch size, or a
    changed checkpoint, builds again.
  - On a node without an NVIDIA GPU (I(gpu_present=false)) the module skips with a message.
version_added: 0.1.0
author: pmoves.fleet developers (@pmoves)
options:
  model:
    description: Model name, used in the engine directory name.
    type: str
    required: true
  checkpoint_dir:
    description: TensorRT-LLM checkpoint directory (output of the model's convert_checkpoint.py).
    type: path
    required: true
  engines_root:
    description: Root of the engine tree; engines go to I(engines_root)/<arch>/.
    type: path
    default: /engines
  arch:
    description: Target architecture, from the hardware profile.
    type: str
    required: true
    choices: [x86_64, aarch64]
  precision:
    description: Engine precision from the hardware profile (C(tensorrt_precision)).
    type: str
    required: true
    choices: [fp32, fp16, bf16, fp8, int8, int4]
  max_batch_size:
    description: Maximum batch size from the hardware profile.
    type: int
    required: true
  compute_capability:
    description: Compute capability of the GPU, to refuse precisions it cannot run (bf16 below 8.0, fp8 below 8.9).
    type: str
  gpu_present:
    description: Whether the node has an NVIDIA GPU. Without one the module skips.
    type: bool
    default: true
  trtllm_build:
    description: The C(trtllm-build) command (a name on C(PATH) or inside I(image), or a path).
    type: str
    default: trtllm-build
  container_engine:
    description: Run the build in I(image) with this engine; C(none) runs I(trtllm_build) on the host.
    type: str
    default: none
    choices: [none, docker, podman]
  image:
    description: Container image holding TensorRT-LLM for the node's architecture, when I(container_engine) is set.
    type: str
  extra_args:
    description: Extra C(trtllm-build) arguments (e.g. C(--gemm_plugin auto)).
    type: list
    elements: str
    default: []
  force:
    description: Build even when the engine on disk is current.
    type: bool
    default: false
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether and why the engine would be built; builds nothing.
  diff_mode:
    support: full
    details: Shows the manifest before and after.
  idempotent:
    support: full
notes:
  - Weights count by file name and size in the checkpoint fingerprint, config files by content.
"""

EXAMPLES = r"""
- name: Forge | Build the engine for this SKU
  pmoves.fleet.trt_engine:
    model: llama-3.1-8b-instruct
    checkpoint_dir: /models/ckpt/llama-3.1-8b-instruct
    arch: "{{ pmoves_hardware.hardware_profile.arch }}"
    precision: "{{ pmoves_hardware.hardware_profile.tensorrt_precision }}"
    max_batch_size: "{{ pmoves_hardware.hardware_profile.max_batch_size }}"
    gpu_present: "{{ pmoves_hardware.accelerator in ['nvidia', 'jetson'] }}"
    container_engine: docker
    image: nvcr.io/nvidia/tritonserver:24.01-trtllm-python-py3
"""

RETURN = r"""
engine_dir:
  description: Directory of the engine.
  returned: always
  type: str
  sample: /engines/x86_64/llama-3.1-8b-instruct-fp16-b8
built:
  description: Whether an engine was built in this run (false in check mode).
  returned: always
  type: bool
reason:
  description: Why the engine was (or would be) built, or why nothing was done.
  returned: always
  type: str
  sample: "changed precision 'fp16' -> 'fp8'"
skipped:
  description: True when the node has no NVIDIA GPU.
  returned: always
  type: bool
manifest:
  description: The manifest of the engine on disk after the run.
  returned: when an engine exists or was built
  type: dict
command:
  description: The build command that ran (or would run).
  returned: when a build is needed
  type: list
  elements: str
"""

import json
import os
import shutil
import tempfile
import hashlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils.trt_engine import (
    MANIFEST_NAME,
    EngineSpec,
    build_argv,
    build_reason,
    checkpoint_fingerprint,
    container_argv,
    dumps_manifest,
    engine_dir,
    manifest_for,
    validate_spec,
)

# Files at most this big count by content in the checkpoint fingerprint (configs, tokenizers).
SMALL_FILE_BYTES = 1 << 20


def _checkpoint_entries(root):
    entries = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            size = os.path.getsize(path)
            content_sha = None
            if size <= SMALL_FILE_BYTES:
                with open(path, "rb") as handle:
                    content_sha = hashlib.sha256(handle.read()).hexdigest()
            entries.append((os.path.relpath(path, root), size, content_sha))
    return entries


def _read_manifest(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            model=dict(type="str", required=True),
            checkpoint_dir=dict(type="path", required=True),
            engines_root=dict(type="path", default="/engines"),
            arch=dict(type="str", required=True, choices=["x86_64", "aarch64"]),
            precision=dict(type="str", required=True, choices=["fp32", "fp16", "bf16", "fp8", "int8", "int4"]),
            max_batch_size=dict(type="int", required=True),
            compute_capability=dict(type="str"),
            gpu_present=dict(type="bool", default=True),
            trtllm_build=dict(type="str", default="trtllm-build"),
            container_engine=dict(type="str", default="none", choices=["none", "docker", "podman"]),
            image=dict(type="str"),
            extra_args=dict(type="list", elements="str", default=[]),
            force=dict(type="bool", default=False),
        ),
        required_if=[("container_engine", "docker", ["image"]), ("container_engine", "podman", ["image"])],
        supports_check_mode=True,
    )
    params = module.params
    spec = EngineSpec(
        model=params["model"],
        arch=params["arch"],
        precision=params["precision"],
        max_batch_size=params["max_batch_size"],
        checkpoint_dir=params["checkpoint_dir"],
    )
    target = engine_dir(params["engines_root"], spec)
    result = dict(changed=False, built=False, skipped=False, engine_dir=target)

    if not params["gpu_present"]:
        result.update(skipped=True, reason="no NVIDIA GPU on this node: TensorRT engines are not built here")
        module.exit_json(**result)

    problems = validate_spec(spec, params["compute_capability"])
    if problems:
        module.fail_json(msg=f"cannot build engine for {spec.model}: {'; '.join(problems)}", **result)
    if not os.path.isdir(spec.checkpoint_dir):
        module.fail_json(msg=f"checkpoint directory {spec.checkpoint_dir} for {spec.model} does not exist: "
                             "convert the model first (convert_checkpoint.py) or fix checkpoint_dir", **result)

    fingerprint = checkpoint_fingerprint(_checkpoint_entries(spec.checkpoint_dir))
    manifest_path = os.path.join(target, MANIFEST_NAME)
    before = _read_manifest(manifest_path)
    reason = build_reason(before, spec, fingerprint, force=params["force"])
    if reason is None:
        module.exit_json(reason="engine is current", manifest=before, **result)

    inner = build_argv(spec, target, params["extra_args"], params["trtllm_build"])
    if params["container_engine"] == "none":
        argv = inner
        if not module.check_mode and shutil.which(inner[0]) is None and not os.path.isfile(inner[0]):
            module.fail_json(msg=f"{inner[0]} not found on PATH: install TensorRT-LLM or set container_engine "
                                 "and image", **result)
    else:
        engine_bin = module.get_bin_path(params["container_engine"], required=not module.check_mode) or params[
            "container_engine"]
        mounts = [spec.checkpoint_dir, os.path.dirname(target)]
        argv = container_argv(engine_bin, params["image"], inner, mounts)
    manifest = manifest_for(spec, fingerprint, inner, params["image"])
    result.update(changed=True, reason=reason, command=argv)
    if module._diff:
        result["diff"] = dict(before=dumps_manifest(before) if before else "", after=dumps_manifest(manifest),
                              before_header=manifest_path, after_header=manifest_path)
    if module.check_mode:
        module.exit_json(**result)

    # Build into a scratch directory beside the target and swap it in, so a failed build never
    # leaves a half-written engine that looks current.
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".build-", dir=parent)
    run_argv = [scratch if part == target else part for part in argv]
    rc, out, err = module.run_command(run_argv)
    if rc != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        tail = "\n".join((out + err).strip().splitlines()[-20:])
        module.fail_json(msg=f"trtllm-build failed for {spec.model} (rc={rc}); the previous engine is "
                             f"untouched:\n{tail}", rc=rc, stdout=out, stderr=err, **result)
    with open(os.path.join(scratch, MANIFEST_NAME), "w") as handle:
        handle.write(dumps_manifest(manifest))
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.rename(scratch, target)
    result.update(built=True, manifest=manifest, stdout=out)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
