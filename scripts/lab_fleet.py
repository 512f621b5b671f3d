#!/usr/bin/env python3
"""The lab for any inventory (DESIGN.md contract 4b): hosts, hardware sysroots, overlay, lab.json.

Called by scripts/lab-up.sh; every function below the CLI is pure (or writes only the paths it is
given) and is unit tested in tests/unit/lab.

    lab_fleet.py hosts INVENTORY_JSON                -> host|container|class|ollama_port|publish
    lab_fleet.py sysroot INVENTORY_JSON HOST FIXTURES DEST
    lab_fleet.py overlay INVENTORY_JSON OVERLAY_DIR REPO
    lab_fleet.py lab-json INVENTORY_JSON ARTIFACTS GATEWAY_PORT NATS_PORT

INVENTORY_JSON is the output of `ansible-inventory --list` for the fleet's own inventory (without
the overlay). The overlay may change only connection, addresses, package/image sources, image
stand-ins and secret generation (contract 4b): `OVERLAY_KEYS` is that list, and a unit test keeps
the overlay inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

CLASS_GROUPS = {"gpu_nodes": "gpu", "edge_nodes": "edge", "apu_nodes": "apu", "npu_nodes": "npu", "cpu_nodes": "cpu"}
CONTAINER_PREFIX = "pmoves-lab-"
SYSROOT = "/opt/pmoves-lab/sysroot"
NODE_WHEELHOUSE = "/opt/pmoves-lab/wheelhouse"
OLLAMA_PORT_BASE = 11600  # hosts without pmoves_lab_ollama_port: 11600 + their index
GATEWAY_INNER_PORT = 4000
NATS_INNER_PORT = 4222

# What a lab overlay may set (contract 4b): connection, addresses, package/image sources, image
# stand-ins and secret generation. Never placement inputs (catalog, services, hardware, strategy).
OVERLAY_KEYS = frozenset({
    # connection
    "ansible_connection", "ansible_host", "ansible_python_interpreter",
    # where the hardware probe reads (the synthesised sysroot stands in for the machine)
    "pmoves_hardware_sysroot", "pmoves_hardware_use_nvml",
    # addresses
    "pmoves_ollama_serve_network", "pmoves_ollama_bind_all", "pmoves_gateway_bind_address",
    "pmoves_gateway_node_urls", "pmoves_mesh_nats_bind_address", "pmoves_mesh_nats_url",
    "pmoves_wireguard_enabled", "pmoves_monitoring_node_exporter_address",
    # exposure: the lab's network is private to this machine; the host firewall is shown in a network
    # namespace by tests/unit/mesh/test_host_firewall.py
    "pmoves_base_firewall",
    # package / image sources
    "pmoves_ollama_archive_src", "pmoves_ollama_use_pinned_checksums", "pmoves_gateway_wheelhouse",
    "pmoves_mesh_agent_wheelhouse",
    "pmoves_nvidia_runtime_install", "pmoves_ollama_disk_reserve_mb", "pmoves_ollama_pull_retries",
    # secret generation
    "pmoves_gateway_master_key", "pmoves_gateway_api_key_file", "pmoves_mesh_nats_passwords",
    # ansible-core 2.19 no longer defines it outside templates (see inventories/lab/group_vars/all.yml)
    "ansible_managed",
})


# --------------------------------------------------------------------------- inventory


def container_name(host: str) -> str:
    """Container of an inventory host: pmoves-lab-<host> (lab-X of inventories/lab keeps pmoves-lab-X)."""
    short = host[len("lab-"):] if host.startswith("lab-") else host
    return CONTAINER_PREFIX + short


def host_class(inventory: dict[str, Any], host: str) -> str:
    for group, cls in CLASS_GROUPS.items():
        if host in (inventory.get(group) or {}).get("hosts", []):
            return cls
    return "cpu"


def group_hosts(inventory: dict[str, Any], group: str) -> list[str]:
    """Hosts of a group and of its children (ansible-inventory --list keeps them apart)."""
    seen: list[str] = []
    stack = [group]
    while stack:
        entry = inventory.get(stack.pop()) or {}
        for host in entry.get("hosts", []):
            if host not in seen:
                seen.append(host)
        stack.extend(entry.get("children", []))
    return seen


def lab_hosts(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per inventory host: container, class, Ollama port, what the host publishes."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    gateways = set(group_hosts(inventory, "gateway"))
    hub = mesh_hub(inventory)
    records = []
    for index, host in enumerate(sorted(hostvars)):
        v = hostvars[host]
        records.append({
            "host": host,
            "container": container_name(host),
            "class": host_class(inventory, host),
            "ollama_port": _ollama_port(v, index),
            "gateway": bool(v.get("pmoves_lab_publish_gateway", host in gateways)),
            "nats_hub": host == hub,
        })
    return records


def monitoring_server(inventory: dict[str, Any]) -> list[str]:
    """Prometheus's host as roles/monitoring picks it: pmoves_monitoring_server, else group monitoring,
    else the first host (as a list, empty for an empty fleet)."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    for v in hostvars.values():
        server = v.get("pmoves_monitoring_server")
        if isinstance(server, str) and server in hostvars:
            return [server]
    hosts = group_hosts(inventory, "monitoring") or group_hosts(inventory, "all") or sorted(hostvars)
    return hosts[:1]


def _ollama_port(hostvars: dict[str, Any], index: int) -> int | None:
    """Loopback port of the host's Ollama: pmoves_lab_ollama_port; none for a host of a lab inventory
    that names a fixture but no port (inventories/lab's gateway node holds no models); else 11600+index."""
    if hostvars.get("pmoves_lab_ollama_port"):
        return int(hostvars["pmoves_lab_ollama_port"])
    if hostvars.get("pmoves_lab_fixture"):
        return None
    return OLLAMA_PORT_BASE + index


def mesh_hub(inventory: dict[str, Any]) -> str | None:
    """The NATS hub as roles/mesh picks it: pmoves_mesh_hub, else group mesh_hub, else the first host."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    for v in hostvars.values():
        hub = v.get("pmoves_mesh_hub")
        if isinstance(hub, str) and hub in hostvars:
            return hub
    hubs = group_hosts(inventory, "mesh_hub")
    if hubs:
        return hubs[0]
    everyone = group_hosts(inventory, "all") or sorted(hostvars)
    return everyone[0] if everyone else None


# --------------------------------------------------------------------------- hardware


def base_fixture(hw: dict[str, Any]) -> str:
    """The captured tree a synthesised sysroot starts from (os-release, PCI layout, tool outputs)."""
    accel = hw.get("accelerator") or "none"
    arch = hw.get("arch") or "x86_64"
    if accel == "jetson":
        l4t = str((hw.get("jetson") or {}).get("l4t") or "36")
        return "jetson-agx-thor-r38.2" if l4t.startswith("38") else "jetson-agx-orin-r36.4.4"
    if accel == "nvidia":
        return "rtx5090-3090ti-workstation"
    # Not synthesised yet (the captured tree stands in as it is): AMD APUs, NPUs, Apple silicon.
    if accel == "amd":
        return "strix-halo-xdna"
    if accel in ("npu", "intel_npu", "amd_npu") or hw.get("npus"):
        return "meteor-lake-npu"
    if accel in ("apple", "metal"):
        return "mac-mini-m4-pro"
    if arch == "aarch64":
        return "pi5"
    return "cpu-vps"


def meminfo(memory_mb: int) -> str:
    kb = int(memory_mb) * 1024
    return f"MemTotal:       {kb:>10} kB\nMemFree:        {kb * 3 // 4:>10} kB\nMemAvailable:   {kb * 7 // 8:>10} kB\n"


def cpuinfo(hw: dict[str, Any], base_text: str) -> str:
    """Repeat the base fixture's first processor block `cores` times under the declared model name."""
    cpu = hw.get("cpu") or {}
    cores = int(cpu.get("cores") or 1)
    block = base_text.split("\n\n")[0].rstrip("\n")
    lines = []
    for line in block.splitlines():
        key = line.split(":", 1)[0].strip()
        if key == "model name" and cpu.get("model"):
            line = f"model name\t: {cpu['model']}"
        lines.append(line)
    if cpu.get("model") and not any(line.startswith("model name") for line in lines) and hw.get("arch") != "aarch64":
        lines.append(f"model name\t: {cpu['model']}")
    out = []
    for index in range(cores):
        out.append("\n".join(f"processor\t: {index}" if line.startswith("processor") else line for line in lines))
    return "\n\n".join(out) + "\n"


def nvidia_query_csv(hw: dict[str, Any]) -> str:
    """The nvidia-smi standard query answer (noheader, nounits) for the declared GPUs."""
    driver = (hw.get("nvidia") or {}).get("driver_version") or "[N/A]"
    rows = []
    for gpu in hw.get("gpus") or []:
        if gpu.get("vendor", "nvidia") != "nvidia":
            continue
        unified = bool(gpu.get("unified_memory"))
        uuid = gpu.get("uuid") or f"GPU-lab-{gpu.get('index', 0):04d}"
        bus = gpu.get("pci_bus_id") or "[N/A]"
        total = "[N/A]" if unified else str(gpu.get("memory_total_mb") or 0)
        free = "[N/A]" if unified else str(gpu.get("memory_free_mb") or gpu.get("memory_total_mb") or 0)
        fields = (gpu.get("index", len(rows)), uuid, gpu.get("name") or "NVIDIA GPU", bus,
                  total, free, driver, gpu.get("compute_capability") or "[N/A]")
        rows.append(", ".join(str(x) for x in fields))
    return "\n".join(rows) + ("\n" if rows else "")


def nvidia_smi_header(hw: dict[str, Any], base_text: str) -> str:
    nvidia = hw.get("nvidia") or {}
    text = base_text
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "Driver Version:" in line:
            driver = nvidia.get("driver_version") or "N/A"
            cuda = nvidia.get("cuda_driver_version") or "N/A"
            lines[i] = f"| NVIDIA-SMI {driver:<21} Driver Version: {driver:<14} CUDA Version: {cuda:<9}|"
    return "\n".join(lines) + "\n"


def cuda_version_json(version: str) -> str:
    parts = [*version.split("."), "0", "0"][:3]
    return json.dumps({"cuda": {"name": "CUDA SDK", "version": ".".join(parts)}}, indent=3) + "\n"


def synthesise_sysroot(hw: dict[str, Any], fixtures: Path, dest: Path) -> str:
    """Write a sysroot under ``dest`` whose discovery gives back the declared ``pmoves_hardware``
    (memory, CPU, GPUs, driver/CUDA, Jetson release); returns the base fixture's name."""
    name = base_fixture(hw)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(fixtures / name, dest, symlinks=True)
    if hw.get("memory_mb"):
        (dest / "proc/meminfo").write_text(meminfo(int(hw["memory_mb"])), encoding="utf-8")
    cpu_file = dest / "proc/cpuinfo"
    if cpu_file.exists():
        cpu_file.write_text(cpuinfo(hw, cpu_file.read_text(encoding="utf-8")), encoding="utf-8")
    smi = dest / ".fixture/nvidia-smi"
    if hw.get("accelerator") in ("nvidia", "jetson") and smi.is_dir():
        for extra in ("query-gpu.csv", "fields.txt", "q.txt", "version.txt"):
            (smi / extra).unlink(missing_ok=True)
        (smi / "query.csv").write_text(nvidia_query_csv(hw), encoding="utf-8")
        header = smi / "nvidia-smi.txt"
        if header.exists():
            header.write_text(nvidia_smi_header(hw, header.read_text(encoding="utf-8")), encoding="utf-8")
        if hw.get("accelerator") == "nvidia":
            # Keep the PCI functions of the declared GPUs only (the base capture has two).
            buses = {str(g.get("pci_bus_id") or "").lower()[-12:] for g in hw.get("gpus") or []}
            pci = dest / "sys/bus/pci/devices"
            for device in pci.iterdir() if pci.is_dir() else []:
                vendor = (device / "vendor").read_text(encoding="utf-8").strip() if (device / "vendor").exists() else ""
                if vendor == "0x10de" and device.name.lower()[:-1] not in {b[:-1] for b in buses}:
                    shutil.rmtree(device)
    cuda = (hw.get("cuda") or {}).get("version")
    if cuda:
        (dest / "usr/local/cuda").mkdir(parents=True, exist_ok=True)
        (dest / "usr/local/cuda/version.json").write_text(cuda_version_json(str(cuda)), encoding="utf-8")
    jetson = hw.get("jetson") or {}
    if jetson.get("model"):
        (dest / "proc/device-tree/model").write_text(jetson["model"] + "\0", encoding="utf-8")
    return name


# --------------------------------------------------------------------------- overlay


def overlay_host_vars(record: dict[str, Any], all_hosts: list[str], hub: str | None, repo: str) -> dict[str, Any]:
    """The lab's variables for one host: only OVERLAY_KEYS."""
    secrets = f"{repo}/.cache/lab/secrets"
    out: dict[str, Any] = {
        "ansible_connection": "containers.podman.podman",
        "ansible_host": record["container"],
        "ansible_python_interpreter": "/usr/bin/python3",
        "pmoves_hardware_sysroot": SYSROOT,
        "pmoves_hardware_use_nvml": False,
        "pmoves_ollama_archive_src": f"{repo}/.cache/lab/ollama-release",
        # the test double is not the published release the role's sha256 pins name
        "pmoves_ollama_use_pinned_checksums": False,
        "pmoves_ollama_serve_network": True,
        "pmoves_ollama_bind_all": True,
        "pmoves_ollama_disk_reserve_mb": 0,
        "pmoves_ollama_pull_retries": 1,
        "pmoves_nvidia_runtime_install": False,
        "pmoves_gateway_api_key_file": f"{repo}/artifacts/lab-api-key",
        "pmoves_gateway_master_key": "{{ lookup('ansible.builtin.file', pmoves_gateway_api_key_file) }}",
        "pmoves_gateway_bind_address": "0.0.0.0",
        "pmoves_gateway_wheelhouse": NODE_WHEELHOUSE,
        # Each Ollama node by its container DNS name on the lab network (addresses change on restart).
        "pmoves_gateway_node_urls": {h: f"http://{h}:11434" for h in sorted(all_hosts)},
        "pmoves_mesh_agent_wheelhouse": NODE_WHEELHOUSE,
        "pmoves_mesh_nats_bind_address": "0.0.0.0",
        # Generated once per lab by ensure_secrets() into a 0600 file (lab-down removes it).
        "pmoves_mesh_nats_passwords": "{{ lookup('ansible.builtin.file', '" + secrets + "/nats-passwords.json') | from_json }}",
        "pmoves_wireguard_enabled": False,
        "pmoves_monitoring_node_exporter_address": "0.0.0.0",
        "pmoves_base_firewall": False,
        "ansible_managed": "Ansible managed",
    }
    if hub:
        out["pmoves_mesh_nats_url"] = f"nats://{hub}:{NATS_INNER_PORT}"
    unknown = set(out) - OVERLAY_KEYS
    if unknown:  # pragma: no cover - guarded by the unit test
        raise ValueError(f"overlay sets keys outside contract 4b: {sorted(unknown)}")
    return out


def ensure_secrets(hosts: list[str], secrets: Path) -> None:
    """NATS passwords per host, generated once and kept in a 0600 file (nothing printed)."""
    import secrets as _secrets

    secrets.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets, 0o700)
    path = secrets / "nats-passwords.json"
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    wanted = {h: known.get(h) or _secrets.token_urlsafe(24) for h in hosts}
    if wanted != known:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(wanted, handle, sort_keys=True)
    os.chmod(path, 0o600)


def write_overlay(inventory: dict[str, Any], overlay: Path, repo: str) -> None:
    """An inventory directory given after the fleet's own (-i fleet -i overlay): its host_vars win
    over the fleet's host_vars for the OVERLAY_KEYS only; every other variable is the fleet's."""
    records = lab_hosts(inventory)
    hosts = [r["host"] for r in records]
    hub = mesh_hub(inventory)
    if overlay.exists():
        shutil.rmtree(overlay)
    (overlay / "host_vars").mkdir(parents=True)
    (overlay / "hosts.yml").write_text(
        "# Generated by scripts/lab_fleet.py: the lab overlay (contract 4b). Do not edit.\n"
        + json.dumps({"all": {"hosts": {h: None for h in hosts}}}, indent=2) + "\n", encoding="utf-8")
    ensure_secrets(hosts, Path(repo) / ".cache/lab/secrets")
    for record in records:
        data = overlay_host_vars(record, hosts, hub, repo)
        (overlay / "host_vars" / f"{record['host']}.yml").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n",
                                                                     encoding="utf-8")


# --------------------------------------------------------------------------- stand-in images

# compose_render's class base images (a service without `image` runs on one of them).
BASE_IMAGES = ("nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04", "python:3.11-slim-bookworm",
               "nvcr.io/nvidia/l4t-jetpack:r{l4t}")


def _expand(image: str, hardware: list[dict[str, Any]]) -> list[str]:
    """An image template ({l4t}, {jetpack}, {cuda}) for every distinct value the fleet's hosts give it."""
    if "{" not in image:
        return [image]
    names = []
    for hw in hardware:
        values = {"l4t": (hw.get("jetson") or {}).get("l4t"), "jetpack": (hw.get("jetson") or {}).get("jetpack"),
                  "cuda": (hw.get("cuda") or {}).get("version")}
        try:
            name = image.format(**{k: v for k, v in values.items() if v})
        except (KeyError, IndexError, ValueError):
            continue
        if name not in names:
            names.append(name)
    return names


def _health_path(health: Any) -> str | None:
    if isinstance(health, dict):
        health = health.get("http")
    if not isinstance(health, str) or not health:
        return None
    if health.startswith("/"):
        return health.split("?")[0]
    rest = health.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1].split("?")[0] if "/" in rest else "/"


def standins(services: list[dict[str, Any]], hardware: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Seed image -> {"ports": container ports it must serve, "paths": health paths}: the lab tags a
    locally built stand-in with the seed's own image name, so the compose files keep image and
    command (the stand-in's entrypoint ignores the command and serves the ports)."""
    out: dict[str, dict[str, Any]] = {}
    for entry in services or []:
        if not isinstance(entry, dict):
            continue
        images = [entry[k] for k in ("image", "image_arm64") if isinstance(entry.get(k), str) and entry.get(k)]
        if not images:
            images = list(BASE_IMAGES)
        port = entry.get("container_port") or entry.get("port")
        path = _health_path(entry.get("health"))
        for image in [name for template in images for name in _expand(template, hardware or [])]:
            rec = out.setdefault(image, {"ports": [], "paths": []})
            if port and int(port) not in rec["ports"]:
                rec["ports"].append(int(port))
            if path and path not in rec["paths"]:
                rec["paths"].append(path)
    for rec in out.values():
        rec["ports"].sort()
        rec["paths"].sort()
    return out


def inventory_services(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """The fleet's pmoves_services (group_vars/all: the same on every host)."""
    for v in inventory.get("_meta", {}).get("hostvars", {}).values():
        if isinstance(v.get("pmoves_services"), list):
            return v["pmoves_services"]
    return []


# --------------------------------------------------------------------------- forge nodes


def forge_hosts(inventory: dict[str, Any]) -> dict[str, list[str]]:
    """Forge nodes (as playbooks/apply_forge.yml picks them) -> the checkpoint dirs of their engines,
    which the lab fills with a TEST DOUBLE checkpoint next to the trtllm-build double."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    members = set(group_hosts(inventory, "forge_nodes"))
    out: dict[str, list[str]] = {}
    for host in sorted(hostvars):
        v = hostvars[host]
        enabled = v.get("pmoves_forge_enabled") in (True, "true", "True", "yes")
        if enabled or host in members:
            out[host] = sorted({str(e.get("checkpoint_dir")) for e in v.get("pmoves_forge_engines") or []
                                if isinstance(e, dict) and e.get("checkpoint_dir")})
    return out


# --------------------------------------------------------------------------- lab.json


def lab_json(inventory: dict[str, Any], plan: dict[str, Any], gateway_port: int, nats_port: int,
             inventory_path: str, runs_mesh: bool = True, compose_dir: str = "/opt/pmoves/compose") -> dict[str, Any]:
    records = lab_hosts(inventory)
    forge = forge_hosts(inventory)
    plan_nodes = plan.get("nodes") or {}
    nodes = {}
    for r in records:
        node = plan_nodes.get(r["host"]) or {}
        entry: dict[str, Any] = {"container": r["container"], "class": node.get("class", r["class"]),
                                 "ollama_url": f"http://127.0.0.1:{r['ollama_port']}" if r["ollama_port"] else None,
                                 "models": sorted(node.get("models") or [])}
        if node.get("services"):
            entry["compose_dir"] = compose_dir
        if r["host"] in forge:
            entry["hardware_url"] = "http://127.0.0.1:9106/v1/hardware"
        nodes[r["host"]] = entry
    gateways = [r["host"] for r in records if r["gateway"]]
    hub = mesh_hub(inventory)
    roles = {"gateway": gateways, "nats_hub": [hub] if (hub and runs_mesh) else [],
             "monitoring": monitoring_server(inventory)}
    out: dict[str, Any] = {"gateway_url": f"http://127.0.0.1:{gateway_port}", "api_key_file": "artifacts/lab-api-key",
                           "nodes": nodes, "plan": "artifacts/plan.json", "report": "artifacts/report.html",
                           "inventory": inventory_path, "roles": roles}
    if runs_mesh and hub:
        out["nats_url"] = f"nats://127.0.0.1:{nats_port}"
    return out


# --------------------------------------------------------------------------- CLI


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "hosts":
        for r in lab_hosts(_load(args[0])):
            print("|".join(str(r[k]).lower() if isinstance(r[k], bool) else str(r[k])
                           for k in ("host", "container", "class", "ollama_port", "gateway", "nats_hub")))
        return 0
    if cmd == "sysroot":
        inventory, host, fixtures, dest = _load(args[0]), args[1], Path(args[2]), Path(args[3])
        v = inventory["_meta"]["hostvars"][host]
        fixture = v.get("pmoves_lab_fixture")
        if fixture:  # a captured tree the host names (inventories/lab)
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(fixtures / fixture, dest, symlinks=True)
            print(f"fixture {fixture}")
            return 0
        hw = v.get("pmoves_hardware")
        if not isinstance(hw, dict):
            print(f"{host}: neither pmoves_lab_fixture nor pmoves_hardware in the inventory", file=sys.stderr)
            return 1
        print(f"synthesised from pmoves_hardware (base {synthesise_sysroot(hw, fixtures, dest)})")
        return 0
    if cmd == "standins":  # image|port port|path path
        inventory = _load(args[0])
        hardware = [v["pmoves_hardware"] for v in inventory["_meta"]["hostvars"].values()
                    if isinstance(v.get("pmoves_hardware"), dict)]
        for image, rec in sorted(standins(inventory_services(inventory), hardware).items()):
            print(f"{image}|{' '.join(map(str, rec['ports']))}|{' '.join(rec['paths'])}")
        return 0
    if cmd == "forge":  # host|checkpoint_dir checkpoint_dir
        for host, dirs in forge_hosts(_load(args[0])).items():
            print(f"{host}|{' '.join(dirs)}")
        return 0
    if cmd == "overlay":
        write_overlay(_load(args[0]), Path(args[1]), args[2])
        return 0
    if cmd == "lab-json":
        inventory, artifacts = _load(args[0]), args[1]
        try:
            plan = _load(os.path.join(artifacts, "plan.json"))
        except (OSError, ValueError):
            plan = {}
        data = lab_json(inventory, plan, int(args[2]), int(args[3]), args[4] if len(args) > 4 else "inventories/lab")
        with open(os.path.join(artifacts, "lab.json"), "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
