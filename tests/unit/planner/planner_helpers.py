"""Planner test helpers (not a test double): seed inventories as host records, contract-2 invariant checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import HOST_VARS, IMPLICIT_GROUPS
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import GPU_CLASSES

REPO = Path(__file__).resolve().parents[3]
SEED_INVENTORIES = ("pmoves", "forge", "gpu-mesh", "homelab", "workstation")


def load_inventory(name: str) -> dict[str, Any]:
    """``ansible-inventory --list`` of inventories/<name>: host records plus the catalogs of group all."""
    binary = Path(sys.executable).parent / "ansible-inventory"
    out = subprocess.run([str(binary), "-i", str(REPO / "inventories" / name), "--list"], cwd=REPO,
                         check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    hostvars = data["_meta"]["hostvars"]
    groups: dict[str, list[str]] = {}

    def walk(group: str) -> list[str]:
        entry = data.get(group, {})
        members = list(entry.get("hosts", []))
        for child in entry.get("children", []):
            members += walk(child)
        groups[group] = members
        return members

    walk("all")
    hosts = []
    for host in sorted(hostvars):
        hv = hostvars[host]
        hosts.append({
            "name": host,
            # As the fleet_plan action records them: every group (not all/ungrouped), the schema's HOST_VARS.
            "groups": sorted(g for g, members in groups.items() if host in members and g not in IMPLICIT_GROUPS),
            "hardware": hv.get("pmoves_hardware"),
            "vars": {k: hv[k] for k in HOST_VARS if hv.get(k) is not None},
            "all_groups": sorted(g for g, members in groups.items() if host in members),
        })
    any_vars = next(iter(hostvars.values()))
    return {"hosts": hosts, "hostvars": hostvars, "models": any_vars.get("pmoves_models", []),
            "services": any_vars.get("pmoves_services", []), "strategy": any_vars.get("pmoves_strategy", "balanced"),
            "gpu_strategy": any_vars.get("pmoves_gpu_strategy"), "cpu_ram_share": any_vars.get("pmoves_cpu_ram_share")}


def check_invariants(plan: dict[str, Any], hosts: list[dict[str, Any]], catalog: list[Any]) -> None:
    """Every invariant of contract 2, asserted on one plan."""
    by_host = {h["name"]: h for h in hosts}
    assert plan["schema"] == 1
    # keys are normalised names
    for name in plan["models"]:
        assert name == normalize_model_name(name)
    for host, node in plan["nodes"].items():
        assert by_host[host]["hardware"], f"{host} has no hardware but is planned"
        # contract 2 invariants (a)-(d)
        services_mb = sum(s["vram_mb"] for s in node["services"])
        placements = node["placements"]
        assert set(placements) == set(node["models"]) == set(node["resident"]) | set(node["on_demand"]), host
        resident_mb = sum(p["vram_mb"] for p in placements.values() if p["resident"])
        reserved = services_mb + resident_mb
        assert node["reserved_mb"] == reserved, host
        if resident_mb:
            assert reserved <= node["vram_total_mb"], host  # (a)
        on_demand = sorted((p["vram_mb"] for p in placements.values() if not p["resident"]), reverse=True)
        for model, placement in placements.items():  # (b)
            assert placement["vram_mb"] == plan["models"][model]["vram_by_host"][host]
            if not placement["resident"] and (resident_mb or services_mb <= node["vram_total_mb"]):
                assert placement["vram_mb"] <= node["vram_total_mb"] - reserved + node["offload_mb"], (host, model)
        peak = reserved + sum(on_demand[:node["max_loaded"]])
        assert node["vram_planned_mb"] == node["peak_mb"] == peak, host  # (c)
        if peak > node["vram_total_mb"] and on_demand:
            assert any(w.startswith(f"node {host}: planned peak") for w in plan["warnings"]), host
        if not on_demand and not services_mb > node["vram_total_mb"]:
            assert node["vram_planned_mb"] <= node["vram_total_mb"], host
        if node["disk"]["total_mb"] is not None:  # (d)
            assert node["disk"]["used_mb"] <= node["disk"]["total_mb"], host
        assert node["disk"]["used_mb"] == sum(p["disk_mb"] for p in placements.values()), host
        gpus_mb = sum(g["memory_total_mb"] for g in by_host[host]["hardware"].get("gpus") or [])
        if node["class"] in GPU_CLASSES and gpus_mb:
            assert 0.75 * gpus_mb <= node["vram_total_mb"] <= gpus_mb, host
        if node["class"] not in GPU_CLASSES:
            for model in node["models"]:
                assert plan["models"][model]["cpu_ok"], f"{model} on {node['class']} node {host} is not cpu_ok"
        if by_host[host].get("vars", {}).get("pmoves_models_allowed") is False:
            assert node["models"] == [], host
        for service in node["services"]:
            assert "name" in service and "gpu_index" in service
            if service["gpu_index"] is not None:
                assert service["gpu_index"] in {g["index"] for g in node["gpus"]}
    unplaced = {u["model"]: u for u in plan["unplaced"]}
    for name, entry in plan["models"].items():
        assert len(set(entry["placed"])) == len(entry["placed"]), f"{name} twice on one host"
        for host in entry["placed"]:
            assert name in plan["nodes"][host]["models"]
        missing = entry["wanted"] - len(entry["placed"])
        if missing > 0:
            assert unplaced[name]["missing"] == missing and unplaced[name]["reason"]
        else:
            assert name not in unplaced
        assert set(entry["why"]) == set(entry["placed"])
    # nothing silently dropped: every catalog entry is in models or named in skipped/warnings
    skipped = {s["entry"] for s in plan.get("skipped", [])}
    for raw in catalog:
        name = raw if isinstance(raw, str) else raw["name"]
        assert normalize_model_name(name) in plan["models"] or name in skipped
    # pins honoured or reported
    for raw in catalog:
        if isinstance(raw, dict) and raw.get("pin"):
            name = normalize_model_name(raw["name"])
            for host in raw["pin"]:
                if name in plan["models"] and host not in plan["models"][name]["placed"]:
                    assert any(host in w and name in w and "pin" in w for w in plan["warnings"]), (name, host)
