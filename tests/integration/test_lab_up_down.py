"""The lab's containers come up as the inventory says, lab.json follows contract 4, lab-down removes all.

Drives scripts/lab-up.sh / lab-down.sh with podman (skipped without podman or the base image).
The full `make lab` (converge + gateway answer) is test_lab_full.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOSTS = {"lab-5090": "gpu", "lab-3090ti": "gpu", "lab-jetson-1": "edge", "lab-vps-gateway": "cpu"}
pytestmark = [
    pytest.mark.integration,
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]


def sh(*args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=timeout, check=check)


def podman_names(kind: str) -> set[str]:
    fmt = {"ps": ["ps", "-a", "--format", "{{.Names}}"], "volume": ["volume", "ls", "--format", "{{.Name}}"],
           "network": ["network", "ls", "--format", "{{.Name}}"]}[kind]
    return {n for n in sh("podman", *fmt).stdout.split() if n.startswith("pmoves-lab")}


@pytest.fixture(scope="module")
def lab():
    if sh("podman", "image", "exists", "localhost/pmoves-molecule:bookworm-systemd", check=False).returncode:
        pytest.skip("base image missing: run tests/images/build.sh")
    if os.environ.get("PMOVES_LAB_KEEP") != "1":
        sh("scripts/lab-down.sh")
    up = sh("scripts/lab-up.sh", "--nodes", timeout=900, check=False)
    assert up.returncode == 0, up.stdout + up.stderr
    yield
    if os.environ.get("PMOVES_LAB_KEEP") != "1":
        sh("scripts/lab-down.sh")


def test_one_systemd_container_per_host_with_its_hardware(lab):
    assert podman_names("ps") >= {"pmoves-lab-5090", "pmoves-lab-3090ti", "pmoves-lab-jetson-1",
                                  "pmoves-lab-vps-gateway"}
    assert "pmoves-lab" in podman_names("network")
    assert "pmoves-lab-5090-models" in podman_names("volume")
    pid1 = sh("podman", "exec", "pmoves-lab-5090", "cat", "/proc/1/comm").stdout.strip()
    assert pid1 == "systemd"
    # Each GPU desktop sees exactly its own GPU through the nvidia-smi TEST DOUBLE.
    env = ["env", "PMOVES_HARDWARE_SYSROOT=/opt/pmoves-lab/sysroot"]
    query = ["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader,nounits"]
    assert "RTX 5090" in sh("podman", "exec", "pmoves-lab-5090", *env, *query).stdout
    out = sh("podman", "exec", "pmoves-lab-3090ti", *env, *query).stdout.strip().splitlines()
    assert len(out) == 1 and "3090 Ti" in out[0] and out[0].startswith("0,")
    assert sh("podman", "exec", "pmoves-lab-jetson-1", "test", "-f",
              "/opt/pmoves-lab/sysroot/etc/nv_tegra_release", check=False).returncode == 0


def test_gateway_port_is_published_on_loopback_only(lab):
    ports = sh("podman", "port", "pmoves-lab-vps-gateway").stdout
    assert "127.0.0.1:14000" in ports or "127.0.0.1:" + os.environ.get("PMOVES_LAB_GATEWAY_PORT", "14000") in ports
    assert "0.0.0.0" not in ports


def test_lab_up_again_keeps_the_containers(lab):
    before = sh("podman", "ps", "-q", "--filter", "label=io.pmoves.lab=1").stdout.split()
    sh("podman", "stop", "-t", "2", "pmoves-lab-jetson-1")
    assert sh("scripts/lab-up.sh", "--nodes", timeout=600, check=False).returncode == 0
    after = sh("podman", "ps", "-q", "--filter", "label=io.pmoves.lab=1").stdout.split()
    assert sorted(before) == sorted(after)  # same containers, the stopped one started again


def test_lab_json_follows_contract_4(lab):
    assert sh("scripts/lab-up.sh", "--lab-json").returncode == 0
    data = json.loads((REPO / "artifacts" / "lab.json").read_text())
    assert data["gateway_url"].startswith("http://127.0.0.1:")
    assert data["api_key_file"] == "artifacts/lab-api-key"
    assert (REPO / data["api_key_file"]).read_text().strip()
    assert (REPO / data["api_key_file"]).stat().st_mode & 0o077 == 0
    assert data["plan"] == "artifacts/plan.json" and data["report"] == "artifacts/report.html"
    assert set(data["nodes"]) == set(HOSTS)
    for host, cls in HOSTS.items():
        node = data["nodes"][host]
        assert node["class"] == cls
        assert node["container"] == "pmoves-lab-" + host.removeprefix("lab-")
        assert isinstance(node["models"], list)
    assert data["nodes"]["lab-5090"]["ollama_url"].startswith("http://127.0.0.1:")
    assert data["nodes"]["lab-vps-gateway"]["ollama_url"] is None  # the gateway node holds no models


def test_lab_down_removes_everything():
    if os.environ.get("PMOVES_LAB_KEEP") == "1":
        pytest.skip("PMOVES_LAB_KEEP=1")
    sh("scripts/lab-down.sh")
    assert podman_names("ps") == set()
    assert podman_names("volume") == set()
    assert podman_names("network") == set()
    for name in ("lab.json", "lab-api-key", "report.html", "plan.json"):
        assert not (REPO / "artifacts" / name).exists()
    assert not (REPO / ".cache" / "lab").exists()
