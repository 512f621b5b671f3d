"""Golden kustomize tree rendered from the facts of the captured Thor, RTX PRO 4000 and P40
sysroots: the SKU a host is and what its overlay pins to both come from discovery.

Regenerate after an intended change with PMOVES_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import hardware
from ansible_collections.pmoves.fleet.plugins.module_utils.forge_k8s import render_kustomize
from ansible_collections.pmoves.fleet.plugins.module_utils.hardware_profiles import merge_profiles

REPO = Path(__file__).resolve().parents[3]
HW = REPO / "tests" / "fixtures" / "hardware"
GOLDEN = REPO / "tests" / "fixtures" / "forge" / "golden"
HOSTS = {"forge-thor": "jetson-agx-thor-r38.2", "forge-rtx": "rtx-pro-4000", "forge-dev-p40": "tesla-p40-dev"}


@pytest.fixture(scope="module")
def fleet_facts():
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{REPO / 'tests' / 'doubles' / 'bin'}:/usr/bin:/bin"
    try:
        return {host: hardware.discover(str(HW / name), use_nvml=False) for host, name in HOSTS.items()}
    finally:
        os.environ["PATH"] = saved


def test_each_fixture_gets_its_sku_profile(fleet_facts):
    profiles = {host: facts["hardware_profile"]["name"] for host, facts in fleet_facts.items()}
    assert profiles == {"forge-thor": "jetson-thor", "forge-rtx": "rtx-pro-4000", "forge-dev-p40": "development"}
    p40 = fleet_facts["forge-dev-p40"]["hardware_profile"]
    assert p40["tensorrt_precision"] == "fp32"  # Pascal: no fast FP16
    assert fleet_facts["forge-dev-p40"]["ollama_library"] == "cuda_v12"  # cc 6.1 rules out CUDA 13 builds


def test_kustomize_tree_matches_golden(fleet_facts):
    files, warnings = render_kustomize(merge_profiles(None), fleet_facts, "forge-inference:1.0", namespace="forge",
                                       overlays=["development", "jetson-thor", "rtx-pro-4000"])
    assert warnings == []
    if os.environ.get("PMOVES_UPDATE_GOLDEN") == "1":
        for rel, content in files.items():
            path = GOLDEN / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    on_disk = {str(p.relative_to(GOLDEN)): p.read_text() for p in sorted(GOLDEN.rglob("*.yaml"))}
    assert on_disk == files
