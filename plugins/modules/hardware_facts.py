#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Facts module: GPU / Jetson / APU / NPU / Apple discovery for one host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hardware_facts
short_description: Discover GPUs, Jetson, AMD APUs, NPUs and Apple silicon as C(pmoves_hardware) facts
version_added: "0.1.0"
description:
  - Probes the host in this order and returns C(ansible_facts.pmoves_hardware)
    (contract 1 of the pmoves.fleet design, schema 1).
  - NVIDIA through NVML (C(pynvml) from nvidia-ml-py), then C(nvidia-smi --query-gpu=...) plus
    the plain C(nvidia-smi) header for the CUDA driver version, then PCI sysfs to report GPUs whose
    driver is broken.
  - Jetson from C(/etc/nv_tegra_release) (fallback the C(nvidia-l4t-core) package in the dpkg
    status), the device tree and C(nvpmodel -q); JetPack from a built-in L4T table.
  - AMD GPUs from C(/sys/class/drm/card*/device) and the KFD topology (gfx target); NPUs from
    C(/sys/class/accel) (amdxdna, intel_vpu); Apple silicon from C(sysctl) and
    C(system_profiler SPDisplaysDataType -json).
  - Derives node_class, accelerator, torch_cuda_arch_list, ollama_library, C(ollama_gpus) (what Ollama
    does with each GPU, with the reason and fix for every GPU it will not use), GPU Feature Discovery
    compatible labels, a one-line summary and the seed-001 C(hardware_profile).
  - Reads nvidia-smi output of every driver generation (470 to the 610 series, whose header says
    C(KMD Version) and C(CUDA UMD Version)); a query field an old driver rejects is dropped and the
    query repeated, and a compute capability it cannot report is derived (named in C(warnings)).
  - A missing library, driver, tool or file skips that probe and adds a line to
    C(pmoves_hardware.warnings); the module does not fail for absent hardware.
  - Never changes anything on the host.
author:
  - pmoves.fleet developers (@pmoves)
options:
  sysroot:
    description:
      - Root below which every file is read (C(/proc), C(/sys), C(/etc), C(/usr/local/cuda), ...).
      - Lets the lab and tests point the module at a captured hardware tree. Commands
        (C(nvidia-smi), C(nvpmodel), C(sysctl), C(system_profiler)) are still found on C(PATH);
        they see the sysroot in the environment variable C(PMOVES_HARDWARE_SYSROOT).
    type: path
    default: /
  use_nvml:
    description:
      - Query NVIDIA GPUs through NVML (pynvml) before falling back to C(nvidia-smi).
    type: bool
    default: true
  ollama_version:
    description:
      - Ollama release whose GPU rules C(ollama_gpus) and C(ollama_library) follow (driver and compute
        capability floors per runner, ROCm targets, integrated-GPU and Vulkan defaults).
      - Default the release roles/ollama installs (C(pmoves_ollama_version), 0.30.10). Rules are modelled
        for 0.30.0 and later; an older release gives an approximate answer and a warning.
    type: str
  models_path:
    description:
      - Ollama's model store (C(OLLAMA_MODELS)) below C(sysroot); C(models_disk) reports the free space of its
        file system and the size of its blobs, which the planner uses as the node's model disk limit when
        the inventory declares no C(pmoves_models_disk_mb). Nothing is reported while the directory does not exist.
      - An empty string skips the probe.
    type: str
    default: /usr/share/ollama/.ollama/models
  profiles:
    description:
      - Hardware profiles merged over the built-ins (C(jetson-thor), C(rtx-pro-4000), C(development)),
        one level deep per profile name.
      - Each profile has C(match) (keys C(soc), C(gpu_name), C(compute_capability), C(arch), C(fallback))
        and values C(arch), C(gpu_memory), C(nvlink), C(power_mode), C(tensorrt_precision),
        C(max_batch_size), C(kv_cache_fraction) plus any extra keys you want carried along.
      - C(match.arch) only narrows a match; it never selects a profile on its own.
    type: dict
    default: {}
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    description: Only reads; check mode returns the same facts.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  idempotent:
    support: full
    description: Never changes anything; changed is always false.
  facts:
    support: full
    description: Returns C(ansible_facts.pmoves_hardware).
notes:
  - Unified memory (Jetson, GB10, Strix Halo, Apple) reports the usable share of RAM as
    C(memory_total_mb), see docs/hardware.md for the policy.
requirements:
  - python >= 3.8
  - nvidia-ml-py (optional, for the NVML probe)
"""

EXAMPLES = r"""
- name: Discover | gather hardware facts
  pmoves.fleet.hardware_facts:

- name: Discover | gather from a captured sysroot without NVML
  pmoves.fleet.hardware_facts:
    sysroot: /srv/fixtures/jetson-agx-orin
    use_nvml: false

- name: Discover | add a profile for an RTX 5090 workstation
  pmoves.fleet.hardware_facts:
    profiles:
      rtx-5090:
        match:
          gpu_name: ["RTX 5090"]
        arch: x86_64
        gpu_memory: 32GB
        nvlink: false
        tensorrt_precision: fp8
        max_batch_size: 16
        kv_cache_fraction: 0.35

- name: Discover | show the GPUs
  ansible.builtin.debug:
    msg: "{{ ansible_facts.pmoves_hardware.summary }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    pmoves_hardware:
      description: Hardware of the host (contract 1, schema 1; extra keys are additive extensions).
      returned: always
      type: dict
      contains:
        schema:
          description: Schema version.
          type: int
          sample: 1
        platform:
          description: Linux or Darwin.
          type: str
          sample: Linux
        arch:
          description: CPU architecture.
          type: str
          sample: x86_64
        memory_mb:
          description: System RAM in MiB (MemTotal, or hw.memsize on macOS).
          type: int
          sample: 192000
        cpu:
          description: CPU model and logical core count.
          type: dict
          sample: {model: "12th Gen Intel(R) Core(TM) i9-12900K", cores: 24}
        node_class:
          description: gpu, edge, apu, npu or cpu.
          type: str
          sample: gpu
        accelerator:
          description: nvidia, jetson, amd, apple or none.
          type: str
          sample: nvidia
        gpus:
          description: Usable GPUs (index, vendor, name, uuid, pci_bus_id, memory_total_mb, memory_free_mb,
            compute_capability, sm, family, gfx, unified_memory).
          type: list
          elements: dict
        nvidia:
          description: Driver and CUDA driver version and the probe that found them, or null.
          type: dict
          sample: {driver_version: "580.82.09", cuda_driver_version: "13.0", source: nvidia-smi}
        cuda:
          description: Installed CUDA toolkit, or null.
          type: dict
          sample: {version: "12.8.1", source: /usr/local/cuda/version.json}
        jetson:
          description: L4T, JetPack, board model, SoC and power mode, or null.
          type: dict
          sample: {l4t: "36.4.4", jetpack: "6.2.1", model: "NVIDIA Jetson AGX Orin Developer Kit",
                   soc: tegra234, power_mode: MAXN}
        npus:
          description: NPUs from /sys/class/accel.
          type: list
          elements: dict
        torch_cuda_arch_list:
          description: TORCH_CUDA_ARCH_LIST for the NVIDIA GPUs present, or null.
          type: str
          sample: "8.6;12.0"
        ollama_library:
          description: Ollama runner library the host needs (cuda_v12, cuda_v13, jetpack5, jetpack6, rocm, vulkan,
            cpu), from C(ollama_gpus); cpu when Ollama would use none of the GPUs.
          type: str
          sample: cuda_v13
        ollama_gpus:
          description: Per GPU what Ollama does with it (index, name, vendor, library or null, reason, fix, env).
          type: list
          elements: dict
          sample: [{index: 0, name: Tesla P40, vendor: nvidia, library: vulkan,
                    reason: "CUDA: compute capability 6.1 needs driver 570+ ...", fix: install NVIDIA driver 570 or newer,
                    env: null}]
        ollama_release:
          description: Ollama release the decisions follow.
          type: str
          sample: "0.30.10"
        labels:
          description: GPU Feature Discovery compatible labels.
          type: dict
          sample: {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-5090", "nvidia.com/gpu.count": "1"}
        hardware_profile:
          description: Selected hardware profile (seed 001) with derived values, or null.
          type: dict
        power_mode:
          description: Jetson nvpmodel power mode, or null.
          type: str
        apple:
          description: Apple silicon details, or null.
          type: dict
        amd:
          description: AMD gfx targets and ROCm support, or null.
          type: dict
        unusable_gpus:
          description: GPUs seen on the PCI bus whose driver does not work.
          type: list
          elements: dict
        summary:
          description: One-line summary.
          type: str
        warnings:
          description: Probes that were skipped and why.
          type: list
          elements: str
        models_disk:
          description:
            - Ollama's model store (C(models_path)) - C(path), C(free_mb) and C(total_mb) of its file system,
              C(store_mb) the size of its blobs; null while the store does not exist.
          type: dict
          returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils.hardware import discover


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "sysroot": {"type": "path", "default": "/"},
            "use_nvml": {"type": "bool", "default": True},
            "profiles": {"type": "dict", "default": {}},
            "ollama_version": {"type": "str"},
            "models_path": {"type": "str", "default": "/usr/share/ollama/.ollama/models"},
        },
        supports_check_mode=True,
    )
    sysroot = module.params["sysroot"]
    if not os.path.isdir(sysroot):
        module.fail_json(msg=f"sysroot {sysroot!r} is not a directory: give the root of the tree to probe (default /)")
    profiles = module.params["profiles"] or {}
    bad = [name for name, value in profiles.items() if not isinstance(value, dict)]
    if bad:
        module.fail_json(msg=f"profiles {bad} must be dicts (match: ..., tensorrt_precision: ..., ...)")
    try:
        facts = discover(
            sysroot=sysroot,
            use_nvml=module.params["use_nvml"],
            profiles=profiles,
            ollama_version=module.params["ollama_version"],
            models_path=module.params["models_path"] or None,
        )
    except Exception as exc:  # a parser bug must not become a bare traceback
        module.fail_json(msg=f"hardware discovery failed under {sysroot}: {type(exc).__name__}: {exc}")
    module.exit_json(changed=False, ansible_facts={"pmoves_hardware": facts})


if __name__ == "__main__":
    main()
