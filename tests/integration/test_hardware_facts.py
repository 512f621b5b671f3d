"""pmoves.fleet.hardware_facts and playbooks/discover.yml driven through the real ansible CLIs.

The fake nvidia-smi / nvpmodel / sysctl / system_profiler (tests/doubles/bin, test doubles) are
first on PATH; they serve the captures of the sysroot the module is pointed at.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
HW = REPO / "tests" / "fixtures" / "hardware"
DOUBLES = REPO / "tests" / "doubles" / "bin"

pytestmark = pytest.mark.integration


def ansible_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{DOUBLES}:{VENV_BIN}:/usr/bin:/bin",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),  # keep the repo's cache clean
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    env.pop("PMOVES_FAKE_HARDWARE_DIR", None)
    return env


def run_module(tmp_path: Path, args: str) -> dict:
    env = ansible_env(tmp_path)
    env.update({"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={PYTHON}", "-m", "pmoves.fleet.hardware_facts", "-a", args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result, _end = json.JSONDecoder().raw_decode(proc.stdout)  # the timer callback prints after the JSON
    return result["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.mark.parametrize(
    ("fixture", "node_class", "library", "gpu_names"),
    [
        ("rtx5090-3090ti-workstation", "gpu", "cuda_v13", ["NVIDIA GeForce RTX 5090", "NVIDIA GeForce RTX 3090 Ti"]),
        ("jetson-agx-orin-r36.4.4", "edge", "jetpack6", ["Orin (nvgpu)"]),
        ("jetson-agx-thor-r38.2", "edge", "cuda_v13", ["NVIDIA Thor"]),
        ("strix-halo-xdna", "apu", "rocm", ["Radeon 8060S Graphics"]),
        ("mac-mini-m4-pro", "apu", "cpu", ["Apple M4 Pro"]),
        ("broken-driver", "cpu", "cpu", []),
        ("nvidia-610-rtx2080super", "gpu", "cuda_v13", ["NVIDIA GeForce RTX 2080 SUPER"]),
        ("nvidia-470-tesla-t4", "gpu", "vulkan", ["Tesla T4"]),
        ("nvidia-550-tesla-p40", "gpu", "vulkan", ["Tesla P40"]),
    ],
)
def test_module_over_fixture(tmp_path: Path, fixture: str, node_class: str, library: str, gpu_names: list[str]) -> None:
    host = run_module(tmp_path, f"sysroot={HW / fixture} use_nvml=false")
    assert host["changed"] is False
    facts = host["ansible_facts"]["pmoves_hardware"]
    assert facts["node_class"] == node_class
    assert facts["ollama_library"] == library
    assert [g["name"] for g in facts["gpus"]] == gpu_names
    assert [d["index"] for d in facts["ollama_gpus"]] == [g["index"] for g in facts["gpus"]]
    assert facts["ollama_release"] == "0.30.10"


def test_module_check_mode_and_nvml_default(tmp_path: Path) -> None:
    """Default use_nvml=true with nvidia-ml-py installed but no driver: warning, then nvidia-smi."""
    env_args = f"sysroot={HW / 'rtx-pro-4000'}"
    host = run_module(tmp_path, env_args)
    facts = host["ansible_facts"]["pmoves_hardware"]
    assert facts["nvidia"]["source"] == "nvidia-smi"
    assert facts["hardware_profile"]["name"] == "rtx-pro-4000"
    assert any(w.startswith("NVML:") for w in facts["warnings"])


def test_module_ollama_version_option(tmp_path: Path) -> None:
    """ollama_version picks the release whose rules apply: 0.31.2 dropped gfx1103 from ROCm; T4 on 535 is
    refused by 0.30.11+ discovery, and cannot load 0.30.10's kernels either."""
    host = run_module(tmp_path, f"sysroot={HW / 'nvidia-535-tesla-t4'} use_nvml=false ollama_version=0.31.2")
    facts = host["ansible_facts"]["pmoves_hardware"]
    assert facts["ollama_release"] == "0.31.2"
    assert facts["ollama_gpus"][0]["fix"] == "install NVIDIA driver 550 or newer"
    assert facts["ollama_library"] == "vulkan"


def test_module_rejects_missing_sysroot(tmp_path: Path) -> None:
    env = ansible_env(tmp_path)
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={PYTHON}", "-m", "pmoves.fleet.hardware_facts",
         "-a", f"sysroot={tmp_path / 'nope'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "is not a directory" in proc.stdout


def test_discover_playbook(tmp_path: Path) -> None:
    """discover.yml: per-host sysroots, one summary line per host, an unreachable declared host tolerated,
    facts cached so a --limit rerun still sees every host."""
    inventory = tmp_path / "inventory.yml"
    declared = {"schema": 1, "node_class": "cpu", "accelerator": "none", "gpus": [], "memory_mb": 4096,
                "arch": "x86_64", "cpu": {"model": "declared", "cores": 2}}  # fmt: skip
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "ws": {"ansible_connection": "local", "pmoves_hardware_sysroot": str(HW / "rtx5090-3090ti-workstation")},
                        "orin": {"ansible_connection": "local", "pmoves_hardware_sysroot": str(HW / "jetson-agx-orin-r36.4.4")},
                        "gone": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                                 "ansible_ssh_common_args": "-o ConnectTimeout=2", "pmoves_hardware": declared},
                    },
                    "vars": {"ansible_python_interpreter": str(PYTHON)},
                }
            }
        )
    )  # fmt: skip
    env = ansible_env(tmp_path)
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "discover.yml")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ws: gpu | 2 GPU: NVIDIA GeForce RTX 5090 32607 MiB" in out
    assert "orin: edge | 1 GPU: Orin (nvgpu)" in out and "JetPack 6.2.1 (L4T 36.4.4)" in out
    assert "gone: UNREACHABLE, using the pmoves_hardware declared in inventory: cpu" in out
    cache_files = [p for p in (tmp_path / "facts").iterdir() if p.name == "ws" or p.name.endswith("_ws")]
    assert len(cache_files) == 1, list((tmp_path / "facts").iterdir())  # ansible-core 2.19 names it s1_ws
    cached = json.loads(cache_files[0].read_text())
    cached = json.loads(cached["__payload__"]) if "__payload__" in cached else cached
    assert cached["pmoves_hardware"]["node_class"] == "gpu"
    # rerun limited to one host: the other host's facts come from the cache
    proc = subprocess.run([*cmd, "--limit", "orin"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fleet: gone=cpu orin=edge ws=gpu" in proc.stdout


def _discover_statuses(tmp_path: Path, inventory: Path, *extra: str) -> dict[str, dict[str, str]]:
    """Run discover.yml; {task name: {host: ok|skipped|changed|failed}}."""
    env = ansible_env(tmp_path)
    env.update({"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"})
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "discover.yml"),
                           *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result, _end = json.JSONDecoder().raw_decode(proc.stdout)
    statuses: dict[str, dict[str, str]] = {}
    for task in result["plays"][0]["tasks"]:
        statuses[task["task"]["name"]] = {
            host: "skipped" if r.get("skipped") else "failed" if r.get("failed") else "ok"
            for host, r in task["hosts"].items()}
    return statuses


GATHER = "Discover | gather pmoves_hardware"
FINGERPRINT = "Discover | read the driver fingerprint (NVIDIA module, L4T, kernel release)"


@pytest.fixture
def cached_inventory(tmp_path: Path) -> tuple[Path, Path]:
    """A local GPU host on a copy of a sysroot (so the test can change its driver), a Jetson and a CPU-only host."""
    import shutil

    sysroot = tmp_path / "sysroot"
    shutil.copytree(HW / "rtx5090-3090ti-workstation", sysroot, symlinks=True)
    (sysroot / "sys" / "module" / "nvidia").mkdir(parents=True, exist_ok=True)
    (sysroot / "sys" / "module" / "nvidia" / "version").write_text("580.76.05\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {
        "ws": {"ansible_connection": "local", "pmoves_hardware_sysroot": str(sysroot)},
        "orin": {"ansible_connection": "local", "pmoves_hardware_sysroot": str(HW / "jetson-agx-orin-r36.4.4")},
        "vps": {"ansible_connection": "local", "pmoves_hardware_sysroot": str(HW / "cpu-vps")},
    }, "vars": {"ansible_python_interpreter": str(PYTHON)}}}))
    return inventory, sysroot


def test_discover_reuses_cached_hardware_until_driver_inputs_or_refresh_change(tmp_path: Path, cached_inventory) -> None:
    inventory, sysroot = cached_inventory
    first = _discover_statuses(tmp_path, inventory)
    assert first[GATHER] == {"ws": "ok", "orin": "ok", "vps": "ok"}
    rerun = _discover_statuses(tmp_path, inventory)
    assert rerun[GATHER] == {"ws": "skipped", "orin": "skipped", "vps": "skipped"}  # cached, same driver and inputs
    assert rerun[FINGERPRINT] == {"ws": "ok", "orin": "ok", "vps": "skipped"}  # no accelerator: nothing sent
    assert rerun["Discover | one-line summary per host"] == {"ws": "ok", "orin": "ok", "vps": "ok"}  # from the cache
    # the NVIDIA driver changed on ws: only ws probes again
    (sysroot / "sys" / "module" / "nvidia" / "version").write_text("580.95.05\n")
    assert _discover_statuses(tmp_path, inventory)[GATHER] == {"ws": "ok", "orin": "skipped", "vps": "skipped"}
    # an input of the module changed (another Ollama release picks the library): every host probes again
    newer = ("-e", "pmoves_ollama_version=0.31.2")
    assert _discover_statuses(tmp_path, inventory, *newer)[GATHER] == {"ws": "ok", "orin": "ok", "vps": "ok"}
    cached = {"ws": "skipped", "orin": "skipped", "vps": "skipped"}
    assert _discover_statuses(tmp_path, inventory, *newer)[GATHER] == cached


@pytest.mark.parametrize("extra", [("-e", "pmoves_hardware_refresh=true"), ("-e", "pmoves_hardware_cache_max_age=0"),
                                   ("--tags", "facts_refresh")])
def test_discover_refreshes_on_demand(tmp_path: Path, cached_inventory, extra: tuple[str, str]) -> None:
    inventory, _sysroot = cached_inventory
    _discover_statuses(tmp_path, inventory)
    assert _discover_statuses(tmp_path, inventory, *extra)[GATHER] == {"ws": "ok", "orin": "ok", "vps": "ok"}
