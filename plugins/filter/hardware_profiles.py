"""Filters over the hardware profiles of seed 001 (built-ins merged with the user's)."""

from __future__ import annotations

from ansible_collections.pmoves.fleet.plugins.module_utils.forge_k8s import node_labels
from ansible_collections.pmoves.fleet.plugins.module_utils.hardware_profiles import PROFILE_FIELDS, merge_profiles


def merge_hardware_profiles(user_profiles: dict | None) -> dict:
    """{name: {arch, gpu_memory, nvlink, power_mode, tensorrt_precision, max_batch_size, kv_cache_fraction}}."""
    return {
        name: {key: profile.get(key) for key in PROFILE_FIELDS if profile.get(key) is not None}
        for name, profile in sorted(merge_profiles(user_profiles).items())
    }


class FilterModule:
    def filters(self):
        return {"merge_hardware_profiles": merge_hardware_profiles, "gfd_node_labels": node_labels}
