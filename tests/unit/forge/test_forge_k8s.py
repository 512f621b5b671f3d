"""Kustomize overlays per hardware profile: GFD affinity, GPU limits, profile ConfigMap; each
overlay builds with kustomize and validates against the Kubernetes schema."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.module_utils.forge_k8s import node_labels, render_kustomize
from ansible_collections.pmoves.fleet.plugins.module_utils.hardware_profiles import BUILTIN_PROFILES

HOSTS = {
    "forge-thor": {
        "hardware_profile": {"name": "jetson-thor"},
        "labels": {"nvidia.com/gpu.product": "NVIDIA-Thor", "nvidia.com/gpu.count": "1"},
    },
    "forge-rtx": {
        "hardware_profile": {"name": "rtx-pro-4000"},
        "labels": {"nvidia.com/gpu.product": "NVIDIA-RTX-PRO-4000-Blackwell"},
    },
    "pi5": {"hardware_profile": None, "labels": {}},
}


@pytest.fixture(scope="module")
def tree():
    return render_kustomize(BUILTIN_PROFILES, HOSTS, "forge-inference:1.0", namespace="forge",
                            overlays=["jetson-thor", "rtx-pro-4000"])


def _write(tmp_path, files):
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def test_overlay_pins_to_the_discovered_gfd_product(tree):
    files, warnings = tree
    assert warnings == []
    patch = yaml.safe_load(files["overlays/rtx-pro-4000/deployment-patch.yaml"])
    terms = patch["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    expressions = {e["key"]: e["values"] for e in terms[0]["matchExpressions"]}
    assert expressions == {"nvidia.com/gpu.product": ["NVIDIA-RTX-PRO-4000-Blackwell"],
                           "kubernetes.io/arch": ["amd64"]}
    container = patch["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env == {"HARDWARE_PROFILE": "rtx-pro-4000", "TENSORRT_PRECISION": "fp16", "MAX_BATCH_SIZE": "8",
                   "KV_CACHE_FRACTION": "0.3", "ENGINE_DIR": "/engines/x86_64"}


def test_thor_overlay_uses_arm64_engines_and_batch_16(tree):
    files = tree[0]
    patch = yaml.safe_load(files["overlays/jetson-thor/deployment-patch.yaml"])
    env = {item["name"]: item["value"] for item in patch["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ENGINE_DIR"] == "/engines/aarch64"
    assert env["MAX_BATCH_SIZE"] == "16"
    assert env["KV_CACHE_FRACTION"] == "0.4"


def test_profile_configmap_has_the_seed_shape(tree):
    files = tree[0]
    profiles = yaml.safe_load(files["base/hardware_profiles.yaml"])["profiles"]
    assert profiles["jetson-thor"] == {
        "arch": "aarch64", "gpu_memory": "64GB", "nvlink": True, "power_mode": "MAXN",
        "tensorrt_precision": "fp16", "max_batch_size": 16, "kv_cache_fraction": 0.4,
    }
    assert "match" not in profiles["rtx-pro-4000"]


def test_profile_without_hosts_or_products_warns():
    warnings = render_kustomize(BUILTIN_PROFILES, {}, "img", overlays=["jetson-thor"])[1]
    assert len(warnings) == 1 and "jetson-thor" in warnings[0]


def test_node_labels_when_gfd_is_absent():
    assert node_labels(HOSTS["forge-thor"]) == {
        "nvidia.com/gpu.product": "NVIDIA-Thor", "nvidia.com/gpu.count": "1",
        "pmoves.io/hardware-profile": "jetson-thor",
    }


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
@pytest.mark.parametrize("overlay", ["jetson-thor", "rtx-pro-4000"])
def test_each_overlay_builds_and_validates_against_the_kubernetes_schema(tree, tmp_path, overlay):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    files = tree[0]
    _write(tmp_path, files)
    built = subprocess.run(["kubectl", "kustomize", str(tmp_path / "overlays" / overlay)],
                           check=True, capture_output=True, text=True).stdout
    docs = [doc for doc in yaml.safe_load_all(built) if doc]
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32.0", strict=True)
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == f"forge-inference-{overlay}"
    assert deployment["metadata"]["namespace"] == "forge"
    # The generated ConfigMap (hash-suffixed) is the one the pod mounts.
    configmap = next(doc for doc in docs if doc["kind"] == "ConfigMap")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": configmap["metadata"]["name"]}} in volumes
    assert configmap["data"]["HARDWARE_PROFILE"] == overlay
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["pmoves.io/hardware-profile"] == overlay


def test_merge_filter_keeps_builtins_and_applies_overrides():
    from ansible_collections.pmoves.fleet.plugins.filter.hardware_profiles import merge_hardware_profiles

    merged = merge_hardware_profiles({"rtx-pro-4000": {"max_batch_size": 12}, "orin": {
        "match": {"soc": ["tegra234"]}, "arch": "aarch64", "max_batch_size": 8}})
    assert merged["rtx-pro-4000"]["max_batch_size"] == 12
    assert merged["jetson-thor"]["max_batch_size"] == 16
    assert merged["orin"] == {"arch": "aarch64", "max_batch_size": 8}
    assert "match" not in merged["rtx-pro-4000"]


def test_the_rendered_tree_covers_every_forge_node_of_the_inventory_not_the_plays_hosts():
    """issue 18: `--limit forge-thor` rendered the tree from forge-thor alone (the rtx-pro-4000 overlay lost its
    host and the file changed, changed=1 on every limited rerun). The render names the inventory's forge nodes."""
    from pathlib import Path

    tasks = yaml.safe_load((Path(__file__).resolve().parents[3] / "roles" / "forge" / "tasks" / "k8s.yml").read_text())
    render = next(t for t in tasks if "pmoves.fleet.forge_manifests" in t)
    assert "ansible_play_hosts" not in render["pmoves.fleet.forge_manifests"]["hosts"]
    members = render["vars"]["__pmoves_forge_members"]
    assert "groups['all']" in members and "pmoves_forge_enabled" in members and "forge_nodes" in members
    assert "ansible_play_hosts" not in members
