"""Every rendered compose file is valid Compose: the compose-spec JSON schema and `podman-compose config`.

tests/fixtures/services/compose-spec.json is schema/compose-spec.json of
github.com/compose-spec/compose-spec (Apache-2.0), commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import jsonschema
import pytest
import yaml
from conftest import CASES, SERVICES_FIXTURES, load_fleet, render_case

SCHEMA = json.loads((SERVICES_FIXTURES / "compose-spec.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def compose_files(files: dict[str, str]) -> list[str]:
    main = [f for f in files if f.startswith("docker-compose") and "override" not in f]
    return main + [f for f in files if f == "config/docker-compose.gpu-override.yml"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_compose_file_matches_the_compose_spec_schema(case):
    files = render_case(case)[0]
    for name in compose_files(files):
        errors = sorted(VALIDATOR.iter_errors(yaml.safe_load(files[name])), key=str)
        assert not errors, f"{case}/{name}: {errors[0].message} at {list(errors[0].absolute_path)}"


def test_schema_check_can_fail():
    bad = {"services": {"a": {"image": "x", "deploy": {"resources": {"reservations": {"devices": [{"drivr": "nvidia"}]}}}}}}
    assert list(VALIDATOR.iter_errors(bad))


@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_devices_follow_the_plan_and_never_mix_count_with_device_ids(case):
    fleet_name, host, plan_key, changes = CASES[case]
    fleet = load_fleet(fleet_name)
    plan = fleet["strategies"][plan_key] if plan_key else fleet["plan"]
    gpus = {g["index"]: g for g in fleet["hardware"][host]["gpus"]}
    files = render_case(case)[0]
    override = yaml.safe_load(files.get("config/docker-compose.gpu-override.yml", "services: {}"))["services"]
    catalog = {e["name"]: e for e in fleet["catalog"]}
    for item in plan["nodes"][host]["services"]:
        if not catalog[item["name"]]["gpu"] or item.get("gpu_index") is None:
            assert item["name"] not in override
            continue
        svc = override[item["name"]]
        assert svc["environment"]["PMOVES_GPU_INDEX"] == str(item["gpu_index"])
        if changes.get("gpu_reservations") is False:
            assert "deploy" not in svc
            continue
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert not ("count" in device and "device_ids" in device)
        if fleet["hardware"][host]["accelerator"] == "nvidia":
            gpu = gpus[item["gpu_index"]]
            want = gpu["uuid"] if changes.get("gpu_device_id") == "uuid" else str(gpu["index"])
            assert device["device_ids"] == [want]
            assert svc["environment"]["NVIDIA_VISIBLE_DEVICES"] == want


def _podman_compose_with_config() -> list[str] | None:
    try:
        import podman_compose  # noqa: F401  (the PyPI release pinned in requirements.txt)
    except ImportError:
        return None
    return [sys.executable, "-m", "podman_compose"]


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman-compose config needs the podman binary")
@pytest.mark.parametrize("case", sorted(CASES))
def test_podman_compose_config_accepts_the_project(case, tmp_path):
    cmd = _podman_compose_with_config()
    assert cmd, "podman-compose>=1.1 (requirements.txt) is needed for `config`"
    files = render_case(case)[0]
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    args = [*cmd, "--project-name", "pmoves"]
    # Services with `profiles` start only under COMPOSE_PROFILES of the node class (seed 000).
    profiles = next(line.split("=", 1)[1] for line in files["node.env"].splitlines() if line.startswith("COMPOSE_PROFILES="))
    for profile in filter(None, profiles.split(",")):
        args += ["--profile", profile]
    for name in compose_files(files):
        args += ["-f", str(tmp_path / name)]
    proc = subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    merged = yaml.safe_load(proc.stdout)
    rendered = yaml.safe_load(files[compose_files(files)[0]])
    assert sorted(merged["services"]) == sorted(rendered["services"])
    if "config/docker-compose.gpu-override.yml" in files:
        override = yaml.safe_load(files["config/docker-compose.gpu-override.yml"])["services"]
        for name, svc in override.items():
            assert merged["services"][name]["environment"]["PMOVES_GPU_INDEX"] == svc["environment"]["PMOVES_GPU_INDEX"]
            assert merged["services"][name].get("deploy") == svc.get("deploy")
