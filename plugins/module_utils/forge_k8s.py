"""Kustomize base + one overlay per hardware profile for the Forge inference service (seed 001).

The base holds the Deployment, Service and the profile ConfigMap (``hardware_profiles.yaml`` in
the seed's shape). Each overlay pins the Deployment to its hardware with a required node affinity
on the GPU Feature Discovery label ``nvidia.com/gpu.product`` (values exactly as GFD sanitises
the product name, taken from discovered facts), asks for ``nvidia.com/gpu``, and passes the
profile to the container (HARDWARE_PROFILE, batch size, KV-cache fraction, engine path per arch).
Pure: returns {relative path: YAML text}; the caller writes the files.
"""

from __future__ import annotations

from typing import Any

try:  # PyYAML is on every controller Ansible runs on; a target without it gets a clear error.
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    yaml = None
    HAS_YAML = False

APP = "forge-inference"
PROFILE_KEYS = ("arch", "gpu_memory", "nvlink", "power_mode", "tensorrt_precision", "max_batch_size",
                "kv_cache_fraction")


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def profiles_document(profiles: dict[str, dict[str, Any]]) -> str:
    """hardware_profiles.yaml as the seed's ConfigMap holds it: profiles.<name>.<key>."""
    body = {
        name: {key: profile[key] for key in PROFILE_KEYS if profile.get(key) is not None}
        for name, profile in sorted(profiles.items())
    }
    return _dump({"profiles": body})


def gpu_products(profile_name: str, profile: dict[str, Any], hosts: dict[str, dict[str, Any]]) -> list[str]:
    """GFD product label values of the hosts running a profile, plus any the profile declares."""
    products = set(profile.get("gfd_products") or [])
    for facts in hosts.values():
        selected = (facts.get("hardware_profile") or {}).get("name")
        product = (facts.get("labels") or {}).get("nvidia.com/gpu.product")
        if selected == profile_name and product:
            products.add(product)
    return sorted(products)


def _base(image: str, namespace: str | None, port: int, profiles_yaml: str) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": APP}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "inference",
                        "image": image,
                        "ports": [{"name": "http", "containerPort": port}],
                        "env": [{"name": "HARDWARE_PROFILE", "value": "development"}],
                        "readinessProbe": {"httpGet": {"path": "/v1/hardware", "port": "http"}},
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/config"},
                            {"name": "engines", "mountPath": "/engines"},
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{APP}-config"}},
                        {"name": "engines", "persistentVolumeClaim": {"claimName": "model-engines"}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
    }
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
    }
    if namespace:
        kustomization["namespace"] = namespace
    kustomization.update({
        "resources": ["deployment.yaml", "service.yaml"],
        "configMapGenerator": [{"name": f"{APP}-config", "files": ["hardware_profiles.yaml"]}],
    })
    return {
        "base/kustomization.yaml": _dump(kustomization),
        "base/deployment.yaml": _dump(deployment),
        "base/service.yaml": _dump(service),
        "base/hardware_profiles.yaml": profiles_yaml,
    }


def _overlay(name: str, profile: dict[str, Any], products: list[str], gpus: int) -> dict[str, str]:
    arch = profile.get("arch") or "x86_64"
    env = [
        {"name": "HARDWARE_PROFILE", "value": name},
        {"name": "TENSORRT_PRECISION", "value": str(profile.get("tensorrt_precision") or "fp16")},
        {"name": "MAX_BATCH_SIZE", "value": str(profile.get("max_batch_size") or 1)},
        {"name": "KV_CACHE_FRACTION", "value": str(profile.get("kv_cache_fraction") or 0.3)},
        {"name": "ENGINE_DIR", "value": f"/engines/{arch}"},
    ]
    match_expressions = [{"key": "kubernetes.io/arch", "operator": "In",
                          "values": ["arm64" if arch == "aarch64" else "amd64"]}]
    if products:
        match_expressions.insert(0, {"key": "nvidia.com/gpu.product", "operator": "In", "values": products})
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP},
        "spec": {"template": {"spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": match_expressions}]}}},
            "containers": [{
                "name": "inference",
                "env": env,
                "resources": {"limits": {"nvidia.com/gpu": gpus}},
            }],
        }}},
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
        "nameSuffix": f"-{name}",
        "labels": [{"pairs": {"pmoves.io/hardware-profile": name}, "includeSelectors": True}],
        "patches": [{"path": "deployment-patch.yaml"}],
        "configMapGenerator": [{
            "name": f"{APP}-config",
            "behavior": "merge",
            "literals": [f"HARDWARE_PROFILE={name}"],
        }],
    }
    return {
        f"overlays/{name}/kustomization.yaml": _dump(kustomization),
        f"overlays/{name}/deployment-patch.yaml": _dump(patch),
    }


def render_kustomize(profiles: dict[str, dict[str, Any]], hosts: dict[str, dict[str, Any]], image: str,
                     namespace: str | None = None, port: int = 8000, gpus: int = 1,
                     overlays: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Files of the kustomize tree, and warnings (an overlay with no known GPU product)."""
    files = _base(image, namespace, port, profiles_document(profiles))
    warnings = []
    root = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": []}
    for name in overlays if overlays is not None else sorted(profiles):
        profile = profiles[name]
        products = gpu_products(name, profile, hosts)
        if not products:
            warnings.append(
                f"overlay {name}: no host runs this profile and it declares no gfd_products, so it is pinned by "
                "architecture only; add gfd_products or discover a host of this SKU"
            )
        files.update(_overlay(name, profile, products, gpus))
        root["resources"].append(f"overlays/{name}")
    files["kustomization.yaml"] = _dump(root)
    return dict(sorted(files.items())), warnings


def node_labels(facts: dict[str, Any]) -> dict[str, str]:
    """Labels to put on a Kubernetes node when GFD is not deployed: the GFD-compatible ones we
    discovered plus the selected hardware profile."""
    labels = {key: str(value) for key, value in (facts.get("labels") or {}).items()}
    profile = (facts.get("hardware_profile") or {}).get("name")
    if profile:
        labels["pmoves.io/hardware-profile"] = profile
    return labels
