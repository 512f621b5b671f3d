"""Golden cases for node services: one per node class of the seed fleets (000, 001, 004).

Each case renders a host's compose project and env file from a fleet fixture
(tests/fixtures/services/fleets/*.json: plan.json, service catalog, pmoves_hardware per host).
Set PMOVES_UPDATE_GOLDEN=1 to rewrite tests/fixtures/services/golden/ after an intended change.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import RenderOptions, render_project
from ansible_collections.pmoves.fleet.plugins.module_utils.node_env import env_file_text, render_node_env

SERVICES_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "services"
STRATEGIES = ("manual", "vram_based", "latency_optimized", "isolation_first", "balanced")

# case name -> (fleet fixture, host, plan key (None: "plan"), render option changes)
CASES: dict[str, tuple[str, str, str | None, dict]] = {
    "pmoves-5090-gpu": ("pmoves", "pmoves-5090", None, {}),
    "pmoves-3090ti-gpu-uuid": ("pmoves", "pmoves-3090ti", None, {"gpu_device_id": "uuid"}),
    "pmoves-jetson-1-edge": ("pmoves", "pmoves-jetson-1", None, {}),
    "pmoves-vps-kvm4-1-cpu": ("pmoves", "pmoves-vps-kvm4-1", None, {}),
    "forge-thor-edge": ("forge", "forge-thor", None, {}),
    "forge-rtx-gpu": ("forge", "forge-rtx", None, {}),
    **{f"workstation-{s}": ("workstation", "workstation", s, {}) for s in STRATEGIES},
    "workstation-manual-no-reservations": ("workstation", "workstation", "manual", {"gpu_reservations": False}),
}


def load_fleet(name: str) -> dict:
    return json.loads((SERVICES_FIXTURES / "fleets" / f"{name}.json").read_text())


def render_case(case: str) -> tuple[dict[str, str], list[str]]:
    """Relative path -> text of every file the roles write for this case, and the warnings."""
    fleet_name, host, plan_key, changes = CASES[case]
    fleet = load_fleet(fleet_name)
    plan = fleet["strategies"][plan_key] if plan_key else fleet["plan"]
    hardware = fleet["hardware"][host]
    options = replace(RenderOptions(strategy=plan.get("gpu_strategy") or plan["strategy"]), **changes)
    project = render_project(host, plan["nodes"][host], fleet["catalog"], hardware, options=options)
    env = render_node_env(host, plan, fleet["catalog"], hardware, addresses=fleet["addresses"],
                          nats_url=fleet["nats_url"], compose_profiles=project.profiles)
    files = project.files()
    files["node.env"] = env_file_text(env)
    return files, project.warnings


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return SERVICES_FIXTURES / "golden"
