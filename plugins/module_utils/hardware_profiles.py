"""Hardware profiles (seed 001, Forge Cognition): data, not code paths.

A profile says how to run TensorRT / inference on one kind of hardware. Built-ins mirror the
seed's ``hardware_profiles.yaml`` (jetson-thor, rtx-pro-4000) plus the development fallback it
describes (any other NVIDIA GPU, e.g. a Tesla P40). Users merge their own over these through the
module option ``profiles``.

Selection never uses the CPU architecture alone (that would make any arm64 box, a Pi 5 or an
Orin, a "jetson-thor"): a profile matches on the Tegra SoC, a GPU name substring or a compute
capability; ``arch`` only narrows such a match. ``fallback: true`` profiles apply to any host
with an NVIDIA GPU (discrete or Jetson) that no specific profile matched.
"""

from __future__ import annotations

import copy
from typing import Any

# Values None mean "derive from the detected hardware" (see resolve_profile).
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "jetson-thor": {
        "match": {"soc": ["tegra264"], "gpu_name": ["Thor"]},
        "arch": "aarch64",
        "gpu_memory": "64GB",  # unified memory
        "nvlink": True,
        "power_mode": "MAXN",  # or the 30W / 50W nvpmodel modes
        "tensorrt_precision": "fp16",
        "max_batch_size": 16,
        "kv_cache_fraction": 0.4,
    },
    "rtx-pro-4000": {
        "match": {"gpu_name": ["RTX PRO 4000"]},
        "arch": "x86_64",
        "gpu_memory": "20GB",  # discrete VRAM
        "nvlink": False,
        "power_mode": None,
        "tensorrt_precision": "fp16",
        "max_batch_size": 8,
        "kv_cache_fraction": 0.3,
    },
    "development": {
        # Dev environments (seed: Tesla P40 as RTX Pro 4000 proxy, Orin as Thor proxy).
        "match": {"fallback": True},
        "arch": None,
        "gpu_memory": None,
        "nvlink": False,
        "power_mode": None,
        "tensorrt_precision": None,  # fp32 below cc 7.0 (no fast FP16), fp16 otherwise
        "max_batch_size": 4,
        "kv_cache_fraction": 0.3,
    },
}

PROFILE_FIELDS = (
    "arch",
    "gpu_memory",
    "nvlink",
    "power_mode",
    "tensorrt_precision",
    "max_batch_size",
    "kv_cache_fraction",
)


def merge_profiles(user: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Built-ins with the user's profiles merged over them (one level deep, per profile).

    User-defined names come first so that they win over built-ins matching the same host.
    """
    merged: dict[str, dict[str, Any]] = {}
    user = user or {}
    for name, overrides in user.items():
        base = copy.deepcopy(BUILTIN_PROFILES.get(name, {}))
        base.update(copy.deepcopy(overrides or {}))
        merged[name] = base
    for name, profile in BUILTIN_PROFILES.items():
        if name not in merged:
            merged[name] = copy.deepcopy(profile)
    return merged


def validate_profiles(profiles: dict[str, dict[str, Any]]) -> list[str]:
    """Problems a user should fix (a profile that can never match, unknown match keys)."""
    problems = []
    allowed = {"soc", "gpu_name", "compute_capability", "arch", "fallback"}
    for name, profile in profiles.items():
        match = profile.get("match") or {}
        if not isinstance(match, dict):
            problems.append(f"profile {name}: 'match' must be a dict")
            continue
        unknown = set(match) - allowed
        if unknown:
            problems.append(f"profile {name}: unknown match keys {sorted(unknown)} (allowed: {sorted(allowed)})")
        if not (match.get("soc") or match.get("gpu_name") or match.get("compute_capability") or match.get("fallback")):
            problems.append(
                f"profile {name}: needs match.soc, match.gpu_name, match.compute_capability or match.fallback; "
                "match.arch alone never selects a profile"
            )
    return problems


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _specific_match(match: dict[str, Any], facts: dict[str, Any]) -> str | None:
    """Why the profile matches the host (a short reason), or None."""
    arches = _as_list(match.get("arch"))
    if arches and facts.get("arch") not in arches:
        return None
    soc = (facts.get("jetson") or {}).get("soc")
    if soc and soc in _as_list(match.get("soc")):
        return f"soc {soc}"
    nvidia_gpus = [g for g in facts.get("gpus", []) if g.get("vendor") == "nvidia"]
    for needle in _as_list(match.get("gpu_name")):
        for gpu in nvidia_gpus:
            if needle.lower() in str(gpu.get("name", "")).lower():
                return f"gpu name {gpu['name']!r} contains {needle!r}"
    for cc in _as_list(match.get("compute_capability")):
        for gpu in nvidia_gpus:
            if gpu.get("compute_capability") == cc:
                return f"compute capability {cc}"
    return None


def select_profile(profiles: dict[str, dict[str, Any]], facts: dict[str, Any]) -> tuple[str, str] | None:
    """(profile name, reason) for the host, or None when no profile applies."""
    for name, profile in profiles.items():
        reason = _specific_match(profile.get("match") or {}, facts)
        if reason:
            return name, reason
    has_nvidia = any(g.get("vendor") == "nvidia" for g in facts.get("gpus", []))
    if has_nvidia:
        for name, profile in profiles.items():
            match = profile.get("match") or {}
            arches = _as_list(match.get("arch"))
            if match.get("fallback") and (not arches or facts.get("arch") in arches):
                return name, "fallback: NVIDIA GPU without a specific profile"
    return None


def _min_cc(facts: dict[str, Any]) -> tuple[int, int] | None:
    ccs = []
    for gpu in facts.get("gpus", []):
        cc = gpu.get("compute_capability")
        if gpu.get("vendor") == "nvidia" and cc:
            major, minor = cc.split(".")
            ccs.append((int(major), int(minor)))
    return min(ccs) if ccs else None


def resolve_profile(profiles: dict[str, dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any] | None:
    """The ``hardware_profile`` fact: the selected profile with derived values filled in."""
    selected = select_profile(profiles, facts)
    if selected is None:
        return None
    name, reason = selected
    profile = profiles[name]
    nvidia_mb = sum(int(g.get("memory_total_mb") or 0) for g in facts.get("gpus", []) if g.get("vendor") == "nvidia")
    result: dict[str, Any] = {"name": name, "matched_by": reason}
    for field in PROFILE_FIELDS:
        result[field] = copy.deepcopy(profile.get(field))
    if result["arch"] is None:
        result["arch"] = facts.get("arch")
    if result["gpu_memory"] is None and nvidia_mb:
        result["gpu_memory"] = f"{round(nvidia_mb / 1024)}GB"
    if result["tensorrt_precision"] is None:
        min_cc = _min_cc(facts)
        result["tensorrt_precision"] = "fp32" if min_cc is not None and min_cc < (7, 0) else "fp16"
    result["detected_gpu_memory_mb"] = nvidia_mb
    # Extra keys a user profile carries (engine paths, image tags, ...) travel along unchanged.
    for key, value in profile.items():
        if key not in result and key != "match":
            result[key] = copy.deepcopy(value)
    return result
