"""The node-service roles on this host, driven by ansible-playbook as a site play would.

* node_env + compose on a CPU node: env files written (secrets 0600, never printed), the project
  applied with podman-compose, a second run and a --check run change nothing;
* nvidia_runtime and jetson skip cleanly with a message where the facts show no NVIDIA GPU / no Jetson;
* nvidia_runtime with a test double of nvidia-ctk: refuses 1.17.7 (CVE-2025-23266), with 1.17.8
  generates the CDI spec once and again only after the driver changed;
* jetson with a test double of nvpmodel: sets the mode once, then reads it and leaves it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_view import fleet_view, node_plan
from test_compose_apply import IMAGE, ensure_busybox_image

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PMOVES = json.loads((REPO / "tests/fixtures/services/fleets/pmoves.json").read_text())
FORGE = json.loads((REPO / "tests/fixtures/services/fleets/forge.json").read_text())


def run_playbook(tmp: Path, roles: list[str], variables: dict, *extra: str, path_prefix: Path | None = None):
    (tmp / "vars.json").write_text(json.dumps(variables))
    playbook = tmp / "site.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n"
                        + "".join(f"    - {r}\n" for r in roles))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CACHE_PLUGIN": "memory"}  # never read or write the shared fact cache
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    proc = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", f"@{tmp / 'vars.json'}", "-e", "ansible_python_interpreter=" + str(REPO / ".venv/bin/python"), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", proc.stdout)
    counts = {"ok": int(recap[1]), "changed": int(recap[2]), "failed": int(recap[3])} if recap else {}
    return proc.returncode, counts, proc.stdout + proc.stderr


def write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)


@pytest.mark.skipif(not (shutil.which("podman") and shutil.which("podman-compose")), reason="needs podman-compose")
def test_cpu_node_env_and_compose_converge_and_are_idempotent(tmp_path):
    ensure_busybox_image(tmp_path)
    project = f"pmovesroles{uuid.uuid4().hex[:6]}"
    port = 18000 + int(uuid.uuid4().int % 2000)
    hardware = PMOVES["hardware"]["pmoves-vps-kvm4-1"]
    catalog = [{"name": "hi-rag-cpu", "vram_mb": 0, "gpu": False, "image": IMAGE, "port": port, "container_port": 8080,
                "command": ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"], "health": "/index.html"}]
    # The plan as apply_plan.yml hands it over (pmoves_node_plan, pmoves_fleet_plan): the roles read no file.
    plan = {"schema": 1, "strategy": "balanced", "nodes": {
        "localhost": {"class": "cpu", "models": [], "services": [{"name": "hi-rag-cpu"}],
                      "ollama": {"client_url": "http://10.8.0.10:11434"}},
        "pmoves-5090": {"class": "gpu", "models": ["qwen2.5:32b"], "services": [],
                        "ollama": {"client_url": "http://127.0.0.1:11434", "url": "http://10.8.0.10:11434"}}}}
    cfg = tmp_path / "etc"
    variables = {
        "pmoves_hardware": hardware, "pmoves_services": catalog,
        "pmoves_node_plan": node_plan(plan, "localhost"), "pmoves_fleet_plan": fleet_view(plan),
        "pmoves_nats_url": "nats://10.8.0.2:4222",
        "pmoves_node_env_config_dir": str(cfg), "pmoves_node_env_secrets": {"HF_TOKEN": "hf_pmoves_secret_value"},
        "pmoves_node_env_addresses": {"pmoves-5090": "10.8.0.10"},
        "pmoves_node_env_overrides": {"TENSORZERO_MODEL_DEFAULT": "openai::qwen3:14b"},
        "pmoves_compose_project_dir": str(tmp_path / "project"), "pmoves_compose_project_name": project,
        "pmoves_compose_env_files": [str(cfg / "fleet.env"), str(cfg / "secrets.env")],
        "pmoves_compose_bind_address": "127.0.0.1", "pmoves_compose_stop_timeout": 1,
        "pmoves_compose_health_timeout": 30,
    }
    roles = ["pmoves.fleet.nvidia_runtime", "pmoves.fleet.jetson", "pmoves.fleet.node_env", "pmoves.fleet.compose"]
    try:
        rc, counts, log = run_playbook(tmp_path, roles, variables)
        assert rc == 0, log
        assert "Skipping NVIDIA Container Toolkit on localhost: no NVIDIA GPU found (accelerator=none)" in log
        assert "Skipping Jetson power and JetPack settings on localhost: not a Jetson" in log
        assert "hf_pmoves_secret_value" not in log
        env = (cfg / "fleet.env").read_text()
        for line in ("NATS_URL=nats://10.8.0.2:4222", "CUDA_VISIBLE_DEVICES=", "GPU_TYPE=cpu",
                     "OLLAMA_HOST=http://10.8.0.10:11434", f"HI_RAG_CPU_URL=http://127.0.0.1:{port}",
                     "TENSORZERO_MODEL_DEFAULT=openai::qwen3:14b", "COMPOSE_PROFILES=api,db"):
            assert line in env.splitlines(), (line, env)
        secrets = cfg / "secrets.env"
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        assert "HF_TOKEN=hf_pmoves_secret_value" in secrets.read_text()
        compose = (tmp_path / "project" / "docker-compose.yml").read_text()
        assert "io.pmoves.config-hash" in compose and str(cfg / "fleet.env") in compose
        assert "COMPOSE_PROFILES=api,db" in (tmp_path / "project" / ".env").read_text()
        ids = subprocess.run(["podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                             capture_output=True, text=True, check=True).stdout.split()
        assert len(ids) == 1

        rc, counts, log = run_playbook(tmp_path, roles, variables)
        assert rc == 0 and counts["changed"] == 0, log
        rc, counts, log = run_playbook(tmp_path, roles, variables, "--check", "--diff")
        assert rc == 0 and counts["changed"] == 0, log
    finally:
        run_playbook(tmp_path, ["pmoves.fleet.compose"], {**variables, "pmoves_compose_state": "absent"})
        subprocess.run(["podman", "network", "rm", "-f", f"{project}_default"], capture_output=True, check=False)


@pytest.mark.skipif(not (shutil.which("podman") and shutil.which("podman-compose")), reason="needs podman-compose")
def test_compose_role_layers_the_users_compose_file_under_the_override(tmp_path):
    """pmoves_compose_user_files (seed 004's docker-compose.prod.yml): a missing file fails before anything is
    written; the user's file is copied verbatim, the role runs `-f docker-compose.prod.yml -f config/...override`,
    leaves the user's own extra service alone, and a rerun changes nothing."""
    ensure_busybox_image(tmp_path)
    project = f"pmovesuser{uuid.uuid4().hex[:6]}"
    port = 20000 + int(uuid.uuid4().int % 2000)
    hardware = PMOVES["hardware"]["pmoves-vps-kvm4-1"]
    catalog = [{"name": "hi-rag-cpu", "vram_mb": 0, "gpu": False, "port": port, "health": "/index.html"}]
    plan = {"schema": 1, "strategy": "balanced", "nodes": {
        "localhost": {"class": "cpu", "models": [], "services": [{"name": "hi-rag-cpu"}]}}}
    user_text = ("# mine\nservices:\n  hi-rag-cpu:\n"
                 f"    image: {IMAGE}\n"
                 '    command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
                 f'    ports: ["127.0.0.1:{port}:8080"]\n'
                 "  my-own-tool:\n"
                 f"    image: {IMAGE}\n")
    variables = {
        "pmoves_hardware": hardware, "pmoves_services": catalog,
        "pmoves_node_plan": node_plan(plan, "localhost"), "pmoves_fleet_plan": fleet_view(plan),
        "pmoves_compose_project_dir": str(tmp_path / "project"), "pmoves_compose_project_name": project,
        "pmoves_compose_bind_address": "127.0.0.1", "pmoves_compose_stop_timeout": 1,
        "pmoves_compose_health_timeout": 30, "pmoves_compose_user_files": [str(tmp_path / "docker-compose.prod.yml")],
    }
    roles = ["pmoves.fleet.compose"]
    try:
        rc, _counts, log = run_playbook(tmp_path, roles, variables)
        assert rc != 0 and "do not exist on the controller" in log and "Nothing was changed" in log, log
        assert not (tmp_path / "project").exists()

        (tmp_path / "docker-compose.prod.yml").write_text(user_text)
        rc, counts, log = run_playbook(tmp_path, roles, variables)
        assert rc == 0, log
        proj = tmp_path / "project"
        assert (proj / "docker-compose.prod.yml").read_text() == user_text
        assert stat.S_IMODE((proj / "docker-compose.prod.yml").stat().st_mode) == 0o644
        assert not (proj / "docker-compose.yml").exists()
        assert "COMPOSE_FILE=docker-compose.prod.yml:config/docker-compose.gpu-override.yml" in (proj / ".env").read_text()
        override = (proj / "config/docker-compose.gpu-override.yml").read_text()
        assert "io.pmoves.config-hash" in override and "image" not in override and "my-own-tool" not in override
        names = subprocess.run(["podman", "ps", "--format", "{{.Labels}}", "--filter",
                                f"label=com.docker.compose.project={project}"],
                               capture_output=True, text=True, check=True).stdout
        assert names.count("hi-rag-cpu") >= 1 and "my-own-tool" not in names

        rc, counts, log = run_playbook(tmp_path, roles, variables)
        assert rc == 0 and counts["changed"] == 0, log
    finally:
        run_playbook(tmp_path, roles, {**variables, "pmoves_compose_state": "absent"})
        subprocess.run(["podman", "network", "rm", "-f", f"{project}_default"], capture_output=True, check=False)


NVIDIA_CTK_DOUBLE = """#!/bin/sh
# Test double of nvidia-ctk: prints a version, records calls, writes a CDI spec.
echo "$@" >> "{log}"
case "$1" in
  --version) echo "NVIDIA Container Toolkit CLI version {version}"; echo "commit: test-double" ;;
  cdi) for a in "$@"; do case "$a" in --output=*) echo "cdiVersion: 0.5.0" > "${{a#--output=}}" ;; esac; done ;;
esac
"""


def test_nvidia_runtime_refuses_old_toolkits_and_regenerates_cdi_only_when_the_driver_changed(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    hardware = json.loads(json.dumps(PMOVES["hardware"]["pmoves-5090"]))
    variables = {"pmoves_hardware": hardware, "pmoves_nvidia_runtime_install": False,
                 "pmoves_nvidia_runtime_cdi_spec": str(tmp_path / "cdi/nvidia.yaml"),
                 "pmoves_nvidia_runtime_state_file": str(tmp_path / "state/nvidia-runtime.json")}
    write_exe(bin_dir / "nvidia-ctk", NVIDIA_CTK_DOUBLE.format(log=calls, version="1.17.7"))
    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.nvidia_runtime"], variables, path_prefix=bin_dir)
    assert rc != 0 and "nvidia-ctk 1.17.7 is older than 1.17.8" in log and "CVE-2025-23266" in log, log
    assert "NVIDIA driver 575.64.03" in log
    assert not (tmp_path / "cdi/nvidia.yaml").exists()

    (tmp_path / "cdi").mkdir()
    write_exe(bin_dir / "nvidia-ctk", NVIDIA_CTK_DOUBLE.format(log=calls, version="1.17.8"))
    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.nvidia_runtime"], variables, path_prefix=bin_dir)
    assert rc == 0 and counts["changed"] >= 1, log
    assert (tmp_path / "cdi/nvidia.yaml").exists()
    assert json.loads((tmp_path / "state/nvidia-runtime.json").read_text())["driver_version"] == "575.64.03"

    calls.write_text("")
    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.nvidia_runtime"], variables, path_prefix=bin_dir)
    assert rc == 0 and counts["changed"] == 0, log
    assert "cdi generate" not in calls.read_text()

    hardware["nvidia"]["driver_version"] = "580.65.06"
    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.nvidia_runtime"], variables, path_prefix=bin_dir)
    assert rc == 0 and "cdi generate" in calls.read_text(), log
    assert "driver changed (575.64.03 -> 580.65.06)" in log


NVPMODEL_DOUBLE = """#!/bin/sh
# Test double of nvpmodel: keeps the mode in a file, prints like the real tool.
state="{state}"
echo "$@" >> "{log}"
names="0:MAXN 1:MODE_15W 2:MODE_30W 3:MODE_50W"
if [ "$1" = "-q" ]; then
  id=$(cat "$state"); for n in $names; do [ "${{n%%:*}}" = "$id" ] && echo "NV Power Mode: ${{n#*:}}"; done; echo "$id"
elif [ "$1" = "-m" ]; then echo "$2" > "$state"
fi
"""


def test_jetson_power_mode_is_read_first_and_set_only_when_different(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    state, calls = tmp_path / "mode", tmp_path / "calls.log"
    state.write_text("2\n")
    write_exe(bin_dir / "nvpmodel", NVPMODEL_DOUBLE.format(state=state, log=calls))
    variables = {"pmoves_hardware": PMOVES["hardware"]["pmoves-jetson-1"], "pmoves_jetson_config_dir": str(tmp_path / "etc")}
    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.jetson"], variables, "--check", path_prefix=bin_dir)
    assert rc == 0 and state.read_text().strip() == "2" and "-m" not in calls.read_text(), log

    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.jetson"], variables, path_prefix=bin_dir)
    assert rc == 0 and state.read_text().strip() == "0", log  # MAXN on AGX Orin (tegra234 profile)
    env = (tmp_path / "etc/jetson.env").read_text()
    assert "JETSON_JETPACK_VERSION=6.2.1" in env and "L4T_VERSION=36.4.4" in env and "JETSON_POWER_MODE=MAXN" in env

    calls.write_text("")
    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.jetson"], variables, path_prefix=bin_dir)
    assert rc == 0 and counts["changed"] == 0, log
    assert calls.read_text().split() == ["-q"]

    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.jetson"], {**variables, "pmoves_jetson_power_mode": "25W"},
                                   path_prefix=bin_dir)
    assert rc != 0 and "power mode '25W' is not defined on this board" in log, log


def test_jetson_role_skips_an_x86_gpu_node(tmp_path):
    rc, counts, log = run_playbook(tmp_path, ["pmoves.fleet.jetson"], {"pmoves_hardware": FORGE["hardware"]["forge-rtx"]})
    assert rc == 0 and counts["changed"] == 0 and "not a Jetson (accelerator=nvidia)" in log, log
