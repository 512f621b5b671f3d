"""Modules on a Python 3.8 node (JetPack 5 = Ubuntu 20.04), driven through the real `ansible` CLI.

Each test runs a module on localhost (connection local) with
`-e ansible_python_interpreter=<python3.8>`, as a user targets a Jetson on JetPack 5:
* pmoves.fleet.hardware_facts over the JetPack 5 fixture sysroot (Orin NX, L4T 35.6, found through
  dpkg because there is no nvidia-smi), with the test-double nvpmodel (tests/doubles/bin) first on PATH;
* pmoves.fleet.compose_apply in check mode against a test-double `docker` that answers
  `compose version` and an empty `ps`, so the whole plan (render, hashes, change plan) runs on 3.8.
Skipped, saying how to get one, when this machine has no Python 3.8.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
HW = REPO / "tests" / "fixtures" / "hardware"
DOUBLES = REPO / "tests" / "doubles" / "bin"
JETPACK5 = HW / "jetson-orin-nx-r35.6-dpkg"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def python38(node_python) -> str:
    return node_python("3.8")


def ansible(tmp_path: Path, interpreter: str, module: str, args: str, *extra: str, path: str = "") -> dict:
    """`ansible localhost -m MODULE -a ARGS` on the given interpreter; the host's JSON result."""
    env = dict(os.environ)
    env.update({
        "PATH": f"{path}{DOUBLES}:{VENV_BIN}:/usr/bin:/bin",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),  # keep the repo's cache clean
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    })  # fmt: skip
    env.pop("PMOVES_FAKE_HARDWARE_DIR", None)
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={interpreter}", "-m", module, "-a", args, *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result, _end = json.JSONDecoder().raw_decode(proc.stdout)  # the timer callback prints after the JSON
    return result["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_interpreter_is_python_38(tmp_path: Path, python38: str) -> None:
    """The interpreter the module tests below run on really is 3.8 (what ansible reports for it)."""
    host = ansible(tmp_path, python38, "ansible.builtin.setup", "gather_subset=!all,!min,python")
    assert host["ansible_facts"]["ansible_python"]["version"]["major"] == 3
    assert host["ansible_facts"]["ansible_python"]["version"]["minor"] == 8
    assert host["ansible_facts"]["ansible_python"]["executable"] == python38


def test_hardware_facts_jetpack5_on_python_38(tmp_path: Path, python38: str) -> None:
    host = ansible(tmp_path, python38, "pmoves.fleet.hardware_facts", f"sysroot={JETPACK5}")
    assert host["changed"] is False
    facts = host["ansible_facts"]["pmoves_hardware"]
    assert (facts["node_class"], facts["accelerator"], facts["arch"]) == ("edge", "jetson", "aarch64")
    assert facts["jetson"]["l4t"] == "35.6.0"
    assert facts["jetson"]["l4t_source"] == "dpkg nvidia-l4t-core"  # no nvidia-smi on JetPack 5
    assert (facts["jetson"]["jetpack"], facts["jetson"]["jetpack_major"]) == ("5.1.4", 5)
    assert facts["jetson"]["soc"] == "tegra234"
    assert facts["jetson"]["model"] == "NVIDIA Orin NX Developer Kit"
    assert facts["jetson"]["power_mode"] == "25W"  # from the test-double nvpmodel -q
    assert facts["ollama_library"] == "jetpack5"
    assert facts["torch_cuda_arch_list"] == "8.7"
    assert facts["cuda"] == {"version": "11.4.19", "source": "/usr/local/cuda/version.json"}
    assert facts["nvidia"] is None
    [gpu] = facts["gpus"]
    assert (gpu["name"], gpu["sm"], gpu["family"], gpu["unified_memory"]) == ("Orin (nvgpu)", "sm_87", "ampere", True)
    assert gpu["memory_total_mb"] == 13401 < facts["memory_mb"]  # the usable share of RAM, never all of it
    assert facts["labels"]["nvidia.com/gpu.product"] == "Orin-nvgpu"
    # Python 3.8 without nvidia-ml-py: NVML is skipped with a warning, not a crash
    assert any(w.startswith("NVML:") for w in facts["warnings"])
    assert any("nvidia-smi not found" in w for w in facts["warnings"])
    assert facts["ollama_gpus"] == [{"index": 0, "name": "Orin (nvgpu)", "vendor": "nvidia", "library": "jetpack5",
                                     "reason": None, "fix": None, "env": None}]  # fmt: skip


def test_hardware_facts_470_driver_on_python_38(tmp_path: Path, python38: str) -> None:
    """The retry without compute_cap, the name table and Ollama's decisions run on Python 3.8 too."""
    host = ansible(tmp_path, python38, "pmoves.fleet.hardware_facts", f"sysroot={HW / 'nvidia-470-tesla-t4'}")
    facts = host["ansible_facts"]["pmoves_hardware"]
    assert [(g["name"], g["compute_capability"]) for g in facts["gpus"]] == [("Tesla T4", "7.5")]
    assert facts["nvidia"]["cuda_driver_version"] == "11.4"
    assert facts["ollama_gpus"][0]["library"] == "vulkan"
    assert any('rejects the query field "compute_cap"' in w for w in facts["warnings"])


FAKE_DOCKER = """#!/bin/sh
# TEST DOUBLE for docker (written by tests/integration/test_node_python38.py): answers the two
# commands compose_apply's check mode runs on a fresh node; anything else fails loudly.
case "$1 $2" in
  "compose version") echo 2.29.7 ;;
  "ps -a") ;;  # no container of the project exists yet
  *) echo "test double docker: unexpected command: $*" >&2; exit 2 ;;
esac
"""


def test_compose_apply_check_mode_on_python_38(tmp_path: Path, python38: str) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "docker").write_text(FAKE_DOCKER)
    (fake_bin / "docker").chmod(0o755)
    project = tmp_path / "project"
    compose = {"services": {
        "api": {"image": "busybox", "command": ["sleep", "600"], "depends_on": ["cache"],
                "environment": {"PMOVES_GPU_INDEX": "0"}, "labels": ["tier=api"]},
        "cache": {"image": "busybox", "command": ["sleep", "600"], "ports": ["127.0.0.1:6390:6379"]},
    }}  # fmt: skip
    args = {"project_dir": str(project), "project_name": "py38", "compose_files": ["compose.yaml"],
            "files": [{"path": "compose.yaml", "content": compose}, {"path": "api.env", "content": "A=1\n"}]}  # fmt: skip
    host = ansible(tmp_path, python38, "pmoves.fleet.compose_apply", json.dumps(args), "--check", path=f"{fake_bin}:")
    assert host["changed"] is True
    assert host["engine"]["kind"] == "docker" and host["engine"]["version"] == "2.29.7"
    assert host["files_changed"] == ["api.env", "compose.yaml"]
    assert host["services"] == ["cache", "api"]  # depends_on order
    assert sorted(host["recreated"]) == ["api", "cache"]
    assert not project.exists() or not any(project.iterdir())  # check mode writes nothing
