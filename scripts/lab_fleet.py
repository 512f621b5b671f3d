#!/usr/bin/env python3
"""The lab for any inventory (DESIGN.md contract 4b): hosts, hardware sysroots, overlay, lab.json.

Called by scripts/lab-up.sh; every function below the CLI is pure (or writes only the paths it is
given) and is unit tested in tests/unit/lab.

    lab_fleet.py hosts INVENTORY_JSON                -> host|container|class|ollama_port|publish
    lab_fleet.py sysroot INVENTORY_JSON HOST FIXTURES DEST
    lab_fleet.py overlay INVENTORY_JSON OVERLAY_DIR REPO
    lab_fleet.py lab-json INVENTORY_JSON ARTIFACTS GATEWAY_PORT NATS_PORT
    lab_fleet.py standins INVENTORY_JSON [INVENTORY]   -> image|port port|path path
    lab_fleet.py wrapper TOOL [SYSROOT]              -> /usr/local/bin/TOOL of a node (TEST DOUBLE)

INVENTORY_JSON is the output of `ansible-inventory --list` for the fleet's own inventory (without
the overlay). The overlay may change only connection, addresses, package/image sources, image
stand-ins and secret generation (contract 4b): `OVERLAY_KEYS` is that list, and a unit test keeps
the overlay inside it.
"""

from __future__ import annotations

import json
import os
import re
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
# The lab's NATS observer (contract 4b, lab.json "nats_observer"): may subscribe to mesh.> and publish nothing.
# Its password is generated once per lab by scripts/lab-up.sh into a 0600 file (lab-down removes it).
OBSERVER_USER = "lab-observer"
OBSERVER_PASSWORD_FILE = "artifacts/lab-nats-observer"

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
    "pmoves_monitoring_node_exporter_address",
    # exposure: the lab's network is private to this machine; the host firewall is shown in a network
    # namespace by tests/unit/mesh/test_host_firewall.py
    "pmoves_base_firewall",
    # package / image sources
    "pmoves_ollama_archive_src", "pmoves_ollama_use_pinned_checksums", "pmoves_gateway_wheelhouse",
    "pmoves_mesh_agent_wheelhouse",
    "pmoves_nvidia_runtime_install", "pmoves_ollama_disk_reserve_mb", "pmoves_ollama_pull_retries",
    # secret generation
    "pmoves_gateway_master_key", "pmoves_gateway_api_key_file", "pmoves_mesh_nats_passwords",
    # the lab's read-only NATS observer (lab.json "nats_observer")
    "pmoves_mesh_nats_clients",
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
    (memory, CPU, GPUs, driver/CUDA, Jetson release, AMD VRAM/GTT and gfx target, NPUs, Apple
    silicon); returns the base fixture's name."""
    name = base_fixture(hw)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(fixtures / name, dest, symlinks=True)
    if (dest / APPLE_PLIST).exists():  # macOS: discovery asks sysctl and system_profiler, not /proc
        write_apple(hw, dest)
        return name
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
    amd = [g for g in hw.get("gpus") or [] if g.get("vendor") == "amd"]
    if amd or (dest / "sys/class/kfd").exists():
        write_amd_gpus(amd, int(hw.get("memory_mb") or 0), fixtures, dest)
    if hw.get("npus") is not None or (dest / "sys/class/accel").exists():
        write_npus(hw.get("npus") or [], fixtures, dest)
    return name


# AMD GPUs: the layout of the captured Strix Halo (tests/fixtures/hardware/strix-halo-xdna), the files
# hardware.probe_amd reads: /sys/class/drm/cardN/device/{vendor,device,revision,uevent,mem_info_*}
# and the KFD topology node that carries the gfx target.
AMD_TEMPLATE = "strix-halo-xdna"
AMD_CARD_TEMPLATE = "sys/class/drm/card1/device"
KFD_NODES = "sys/class/kfd/kfd/topology/nodes"
APU_CARVEOUT_MB = 512  # the captured board's UMA frame buffer; the GPU's pool is GTT (system RAM)
DISCRETE_PCI = {"device": "0x744c", "revision": "0xc8"}  # fallback ids of a discrete card (RX 7900 XTX)
INTEGRATED_PCI = {"device": "0x1586", "revision": "0xc1"}  # ... and of an APU (Strix Halo)
MIB = 1024 * 1024


def _catalog() -> Any:
    """gpu_catalog of the collection this script ships with (its libdrm amdgpu.ids rows)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "plugins" / "module_utils" / "gpu_catalog.py"
    spec = importlib.util.spec_from_file_location("pmoves_lab_gpu_catalog", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def gfx_target_version(gfx: str | None) -> int:
    """LLVM target -> KFD gfx_target_version (decimal MMmmss): 'gfx1151' -> 110501, 'gfx90a' -> 90010;
    0 (no GPU target: discovery reports gfx null) for None or a name that is not a gfx target."""
    match = re.match(r"^gfx(\d+)([0-9a-f])([0-9a-f])$", str(gfx or "").lower())
    if not match:
        return 0
    return int(match.group(1)) * 10000 + int(match.group(2), 16) * 100 + int(match.group(3), 16)


def amd_pci_ids(gpu: dict[str, Any], catalog: Any = None) -> tuple[str, str, str | None]:
    """(PCI device id, revision, product_name) that make discovery name the GPU as declared: the
    declared pci_device_id / pci_revision, else the libdrm amdgpu.ids row of the declared name;
    a name outside that table is written to product_name (amdgpu's FRU name) on fallback ids."""
    catalog = catalog or _catalog()
    name = gpu.get("name")
    device = str(gpu.get("pci_device_id") or "").lower()
    revision = str(gpu.get("pci_revision") or "").lower()
    if device:
        if not revision:
            rows = catalog.AMDGPU_IDS.get(device, {})
            revision = "0x" + rows[name].split()[0] if name in rows else "0x00"
        known = catalog.amd_marketing_name(device, revision)
        return device, revision, None if (not name or name == known) else str(name)
    for device, rows in catalog.AMDGPU_IDS.items():
        if name in rows:
            return device, "0x" + rows[name].split()[0], None
    ids = INTEGRATED_PCI if gpu.get("unified_memory") else DISCRETE_PCI
    return ids["device"], ids["revision"], str(name) if name else None


def amd_memory_split(gpu: dict[str, Any], memory_mb: int) -> tuple[int, int]:
    """(mem_info_vram_total, mem_info_gtt_total) in MiB for a declared AMD GPU.

    Declared ``vram_mb`` / ``gtt_mb`` (discovery's own fields) win. A discrete card's VRAM is its
    memory_total_mb and GTT the kernel default (TTM: half of RAM). An APU (unified_memory) whose pool
    fits in RAM is the captured layout: a 512 MiB carve-out and GTT raised to the pool (amdgpu.gttsize /
    ttm.pages_limit); a pool larger than the OS's RAM is a BIOS carve-out (VRAM) with the default GTT.
    hardware.amd_apu_usable_mb then gives back memory_total_mb."""
    total = int(gpu.get("memory_total_mb") or 0)
    default_gtt = memory_mb // 2
    vram = gpu.get("vram_mb")
    gtt = gpu.get("gtt_mb")
    if not gpu.get("unified_memory"):
        return int(total if vram is None else vram), int(default_gtt if gtt is None else gtt)
    if vram is None:
        vram = total if (memory_mb and total > memory_mb) else APU_CARVEOUT_MB
    if gtt is None:
        gtt = total if total > int(vram) else default_gtt
    return int(vram), int(gtt)


def _pci_slot(gpu: dict[str, Any], position: int) -> tuple[str, int, int]:
    """(PCI_SLOT_NAME, KFD domain, KFD location_id) of the declared pci_bus_id (else c5+position:00.0)."""
    raw = str(gpu.get("pci_bus_id") or "")
    match = re.match(r"^(?:([0-9a-fA-F]+):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$", raw)
    if match:
        domain = int(match.group(1) or "0", 16)
        bus, dev, fn = int(match.group(2), 16), int(match.group(3), 16), int(match.group(4))
    else:
        domain, bus, dev, fn = 0, 0xC5 + position, 0, 0
    return f"{domain:04x}:{bus:02x}:{dev:02x}.{fn}", domain, (bus << 8) | (dev << 3) | fn


def _kv(text: str) -> list[tuple[str, str]]:
    return [(line.split(" ", 1)[0], line.split(" ", 1)[1] if " " in line else "") for line in text.splitlines() if line]


def write_amd_gpus(gpus: list[dict[str, Any]], memory_mb: int, fixtures: Path, dest: Path) -> None:
    """Replace the base tree's AMD cards and KFD GPU nodes by the declared ones (card1, card2, ...,
    renderD128, ..., KFD nodes 1, 2, ...; node 0 is the CPU), in the captured Strix Halo's formats."""
    catalog = _catalog()
    template = fixtures / AMD_TEMPLATE
    drm = dest / "sys/class/drm"
    for entry in drm.iterdir() if drm.is_dir() else []:
        vendor = entry / "device/vendor"
        if re.match(r"^(card\d+|renderD\d+)$", entry.name) and (
                not vendor.exists() or vendor.read_text(encoding="utf-8").strip() == "0x1002"):
            shutil.rmtree(entry)
    kfd = dest / KFD_NODES
    if kfd.is_dir():
        shutil.rmtree(kfd)
    if not gpus:
        return
    shutil.copytree(template / KFD_NODES / "0", kfd / "0")
    gpu_props = _kv((template / KFD_NODES / "1" / "properties").read_text(encoding="utf-8"))
    card_uevent = dict(line.split("=", 1) for line in
                       (template / AMD_CARD_TEMPLATE / "uevent").read_text(encoding="utf-8").splitlines() if "=" in line)
    subsys = card_uevent.get("PCI_SUBSYS_ID", "1F66:0031")
    (drm / "version").parent.mkdir(parents=True, exist_ok=True)
    if not (drm / "version").exists():
        shutil.copy(template / "sys/class/drm/version", drm / "version")
    for position, gpu in enumerate(gpus):
        device, revision, product = amd_pci_ids(gpu, catalog)
        vram, gtt = amd_memory_split(gpu, memory_mb)
        slot, domain, location = _pci_slot(gpu, position)
        card = drm / f"card{position + 1}" / "device"
        card.mkdir(parents=True)
        pci_id = f"1002:{device[2:].upper():0>4}"
        sub_vendor, sub_device = subsys.split(":")
        files = {
            "vendor": "0x1002", "device": device, "revision": revision, "class": "0x030000",
            "uevent": "\n".join((
                "DRIVER=amdgpu", "PCI_CLASS=30000", f"PCI_ID={pci_id}", f"PCI_SUBSYS_ID={subsys}",
                f"PCI_SLOT_NAME={slot}",
                f"MODALIAS=pci:v00001002d0000{pci_id[5:]}sv0000{sub_vendor}sd0000{sub_device}bc03sc00i00")),
            "mem_info_vram_total": str(vram * MIB), "mem_info_vis_vram_total": str(vram * MIB),
            "mem_info_vram_used": str(min(vram * MIB, 141230080)), "mem_info_gtt_total": str(gtt * MIB),
            "mem_info_gtt_used": str(min(gtt * MIB, 27262976)),
        }
        if not gpu.get("unified_memory"):
            files["mem_info_vram_vendor"] = "samsung"  # discrete boards report their VRAM vendor
        if product:
            files["product_name"] = product
        for file_name, text in files.items():
            (card / file_name).write_text(text + "\n", encoding="utf-8")
        render = drm / f"renderD{128 + position}"
        render.mkdir()
        (render / "dev").write_text(f"226:{128 + position}\n", encoding="utf-8")
        version = gfx_target_version(gpu.get("gfx"))
        if not version:
            continue  # no gfx target declared: the KFD does not list the GPU (discovery warns, gfx null)
        values = {"gfx_target_version": str(version), "vendor_id": "4098", "device_id": str(int(device, 16)),
                  "location_id": str(location), "domain": str(domain), "drm_render_minor": str(128 + position)}
        node = kfd / str(position + 1)
        node.mkdir(parents=True)
        (node / "properties").write_text("".join(f"{key} {values.get(key, value)}\n" for key, value in gpu_props),
                                         encoding="utf-8")


# NPUs (/sys/class/accel/accelN/device), in the format of the captured amdxdna (Strix Halo) and
# intel_vpu (Meteor Lake) devices.
NPU_TEMPLATES = {"amd": ("strix-halo-xdna", "0x1022", "amdxdna"), "intel": ("meteor-lake-npu", "0x8086", "intel_vpu")}


def npu_revision(npu: dict[str, Any], template_device: str, template_revision: str, catalog: Any = None) -> str:
    """The declared revision, else the amdxdna table's revision of the declared platform, else the
    captured one when the device is the captured device (else 0x00)."""
    if npu.get("revision"):
        return str(npu["revision"]).lower()
    catalog = catalog or _catalog()
    platform_name = npu.get("platform")
    for (device, revision), (_generation, known_platform) in catalog.AMD_NPUS.items():
        if revision and device == str(npu.get("device_id") or "").lower() and known_platform == platform_name:
            return revision
    return template_revision if str(npu.get("device_id") or template_device).lower() == template_device else "0x00"


def write_npus(npus: list[dict[str, Any]], fixtures: Path, dest: Path) -> None:
    """Replace the base tree's /sys/class/accel by the declared NPUs."""
    catalog = _catalog()
    accel = dest / "sys/class/accel"
    if accel.is_dir():
        shutil.rmtree(accel)
    for position, npu in enumerate(n for n in npus if n.get("vendor") in NPU_TEMPLATES):
        base, vendor_id, driver = NPU_TEMPLATES[npu["vendor"]]
        source = fixtures / base / "sys/class/accel/accel0"
        target = accel / f"accel{position}"
        shutil.copytree(source, target)
        device_dir = target / "device"
        template_device = (device_dir / "device").read_text(encoding="utf-8").strip().lower()
        template_revision = (device_dir / "revision").read_text(encoding="utf-8").strip().lower()
        device = str(npu.get("device_id") or template_device).lower()
        revision = npu_revision(npu, template_device, template_revision, catalog)
        (device_dir / "device").write_text(device + "\n", encoding="utf-8")
        (device_dir / "revision").write_text(revision + "\n", encoding="utf-8")
        (target / "dev").write_text(f"261:{position}\n", encoding="utf-8")
        lines = []
        for line in (device_dir / "uevent").read_text(encoding="utf-8").splitlines():
            key, _sep, value = line.partition("=")
            if key == "DRIVER":
                value = npu.get("driver") or driver
            elif key == "PCI_ID":
                value = f"{vendor_id[2:].upper()}:{device[2:].upper():0>4}"
            elif key == "MODALIAS":
                value = re.sub(r"d0000[0-9A-F]{4}sv", f"d0000{device[2:].upper():0>4}sv", value)
            elif key == "PCI_SLOT_NAME" and position:
                value = f"{value[:-1]}{(int(value[-1]) + position) % 8}"  # the next PCI function
            lines.append(f"{key}={value}")
        (device_dir / "uevent").write_text("\n".join(lines) + "\n", encoding="utf-8")


# Apple silicon: discovery on macOS reads no files but SystemVersion.plist; it asks `sysctl <keys>` and
# `system_profiler SPDisplaysDataType -json` (TEST DOUBLES in tests/doubles/bin answer from .fixture/).
APPLE_PLIST = "System/Library/CoreServices/SystemVersion.plist"
APPLE_SYSCTL_KEYS = ("hw.memsize", "hw.ncpu", "hw.machine", "hw.model", "machdep.cpu.brand_string",
                     "hw.perflevel0.physicalcpu", "hw.perflevel1.physicalcpu")


def apple_sysctl(hw: dict[str, Any], captured: dict[str, str]) -> str:
    """`sysctl <keys>` lines for the declared Mac: memory, logical CPUs, arch, chip; the model and the
    performance/efficiency split from `apple` (else the capture's when they add up to the cores)."""
    apple = hw.get("apple") or {}
    cpu = hw.get("cpu") or {}
    cores = int(cpu.get("cores") or captured.get("hw.ncpu") or 0)
    values = {
        "hw.memsize": str(int(hw.get("memory_mb") or 0) * MIB) if hw.get("memory_mb") else captured.get("hw.memsize"),
        "hw.ncpu": str(cores),
        "hw.machine": "arm64" if (hw.get("arch") or "aarch64") == "aarch64" else "x86_64",
        "hw.model": apple.get("model") or captured.get("hw.model"),
        "machdep.cpu.brand_string": cpu.get("model") or apple.get("chip") or captured.get("machdep.cpu.brand_string"),
    }
    perf, eff = apple.get("performance_cores"), apple.get("efficiency_cores")
    if perf is None or eff is None:
        perf, eff = captured.get("hw.perflevel0.physicalcpu"), captured.get("hw.perflevel1.physicalcpu")
        if perf is None or eff is None or int(perf) + int(eff) != cores:
            perf = eff = None
    values["hw.perflevel0.physicalcpu"] = None if perf is None else str(perf)
    values["hw.perflevel1.physicalcpu"] = None if eff is None else str(eff)
    return "".join(f"{key}: {values[key]}\n" for key in APPLE_SYSCTL_KEYS if values.get(key) is not None)


def apple_displays(hw: dict[str, Any], captured: dict[str, Any]) -> dict[str, Any]:
    """system_profiler SPDisplaysDataType: one built-in GPU entry per declared Apple GPU, shaped like the
    capture's (sppci_model is the name discovery reports, sppci_cores the GPU cores)."""
    template = dict((captured.get("SPDisplaysDataType") or [{}])[0])
    entries = []
    for gpu in hw.get("gpus") or []:
        if gpu.get("vendor") != "apple":
            continue
        entry = dict(template)
        entry["_name"] = entry["sppci_model"] = gpu.get("name") or "Apple GPU"
        cores = gpu.get("gpu_cores") or (hw.get("apple") or {}).get("gpu_cores")
        if cores:
            entry["sppci_cores"] = str(cores)
        else:
            entry.pop("sppci_cores", None)
        metal = (hw.get("apple") or {}).get("metal")
        if metal:
            entry["spdisplays_mtlgpufamilysupport"] = f"spdisplays_{metal}"
        entries.append(entry)
    return {"SPDisplaysDataType": entries}


def write_apple(hw: dict[str, Any], dest: Path) -> None:
    out = dest / ".fixture/sysctl/out.txt"
    captured = {}
    for line in out.read_text(encoding="utf-8").splitlines() if out.exists() else []:
        key, _sep, value = line.partition(": ")
        captured[key] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(apple_sysctl(hw, captured), encoding="utf-8")
    displays = dest / ".fixture/system_profiler/SPDisplaysDataType.json"
    try:
        captured_displays = json.loads(displays.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        captured_displays = {}
    displays.parent.mkdir(parents=True, exist_ok=True)
    displays.write_text(json.dumps(apple_displays(hw, captured_displays), indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- tool doubles on the node

DOUBLES_DIR = "/opt/pmoves-lab/bin"


def double_wrapper(tool: str, sysroot: str = SYSROOT, real: str = "/usr/sbin/sysctl", doubles: str = DOUBLES_DIR) -> str:
    """/usr/local/bin/<tool> on a lab node: the TEST DOUBLE answering from <sysroot>/.fixture for every
    caller (roles too, not only hardware_facts). `sysctl` is also a Linux tool the node's own roles use
    (ansible.posix.sysctl): only macOS names (hw.*, machdep.*) go to the double, the rest to ``real``."""
    head = (f"#!/bin/sh\n# TEST DOUBLE wrapper (pmoves lab): answers from the fixture in {sysroot}/.fixture\n"
            f"PMOVES_FAKE_HARDWARE_DIR=${{PMOVES_FAKE_HARDWARE_DIR:-{sysroot}/.fixture}}\nexport PMOVES_FAKE_HARDWARE_DIR\n")
    if tool != "sysctl":
        return head + f'exec {doubles}/{tool} "$@"\n'
    return head + (f'case "$1" in\n    hw.*|machdep.*) exec {doubles}/sysctl "$@" ;;\nesac\n'
                   f'exec {real} "$@"\n')


# --------------------------------------------------------------------------- overlay


def on_wireguard(inventory: dict[str, Any]) -> set[str]:
    """Hosts the inventory puts on the WireGuard mesh (pmoves_wireguard_enabled: true)."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    return {h for h, v in hostvars.items() if v.get("pmoves_wireguard_enabled") is True}


def overlay_host_vars(record: dict[str, Any], all_hosts: list[str], hub: str | None, repo: str,
                      wireguard: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The lab's variables for one host: only OVERLAY_KEYS.

    ``wireguard``: the hosts the inventory puts on the WireGuard mesh. The lab keeps it on (wireguard-go in the
    privileged seed-lab containers); between mesh members the gateway's node URLs and the agents' NATS URL stay the
    plan's mesh addresses (stable across a container restart), so their traffic crosses the tunnels. Ollama, the
    gateway and NATS also listen on the container's own interface, only so the host reaches them through the
    loopback ports lab.json names (contract 4)."""
    secrets = f"{repo}/.cache/lab/secrets"
    meshed = set(all_hosts) <= set(wireguard)
    out: dict[str, Any] = {
        "ansible_connection": "pmoves.fleet.lab_podman",  # podman exec with pipelining
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
        # Off the mesh: each Ollama node by its container DNS name on the lab network (addresses change on restart).
        **({} if meshed else {"pmoves_gateway_node_urls": {h: f"http://{h}:11434" for h in sorted(all_hosts)}}),
        "pmoves_mesh_agent_wheelhouse": NODE_WHEELHOUSE,
        "pmoves_mesh_nats_bind_address": "0.0.0.0",
        # Generated once per lab by ensure_secrets() into a 0600 file (lab-down removes it).
        "pmoves_mesh_nats_passwords": "{{ lookup('ansible.builtin.file', '" + secrets + "/nats-passwords.json') | from_json }}",
        "pmoves_monitoring_node_exporter_address": "0.0.0.0",
        "pmoves_base_firewall": False,
        "ansible_managed": "Ansible managed",
    }
    if hub:
        # nats-server listens on every interface of the hub container (the host's observer comes through the
        # published port); the agents dial the hub's mesh address when both ends are on the mesh
        out["pmoves_mesh_nats_url"] = (
            f"nats://{{{{ pmoves_fleet_plan.wireguard.addresses['{hub}'] }}}}:{NATS_INNER_PORT}"
            if hub in wireguard and record["host"] in wireguard else f"nats://{hub}:{NATS_INNER_PORT}")
        out["pmoves_mesh_nats_clients"] = [observer_client(repo)]
    unknown = set(out) - OVERLAY_KEYS
    if unknown:  # pragma: no cover - guarded by the unit test
        raise ValueError(f"overlay sets keys outside contract 4b: {sorted(unknown)}")
    return out


def observer_client(repo: str) -> dict[str, Any]:
    """The lab's NATS observer as roles/mesh takes a client user: subscribe mesh.>, publish nothing."""
    return {"name": OBSERVER_USER, "publish": [], "subscribe": ["mesh.>"],
            "password": "{{ lookup('ansible.builtin.file', '" + f"{repo}/{OBSERVER_PASSWORD_FILE}" + "') }}"}


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
    own = sorted(h for h, v in inventory.get("_meta", {}).get("hostvars", {}).items() if v.get("pmoves_mesh_nats_clients"))
    if own:
        raise ValueError(f"the inventory sets pmoves_mesh_nats_clients ({', '.join(own)}): the lab adds its own "
                         f"observer user ({OBSERVER_USER}) there and would replace them; move them to a vault file "
                         "the lab does not load, or run this fleet outside the lab")
    if overlay.exists():
        shutil.rmtree(overlay)
    (overlay / "host_vars").mkdir(parents=True)
    (overlay / "hosts.yml").write_text(
        "# Generated by scripts/lab_fleet.py: the lab overlay (contract 4b). Do not edit.\n"
        + json.dumps({"all": {"hosts": {h: None for h in hosts}}}, indent=2) + "\n", encoding="utf-8")
    ensure_secrets(hosts, Path(repo) / ".cache/lab/secrets")
    wireguard = on_wireguard(inventory)
    for record in records:
        data = overlay_host_vars(record, hosts, hub, repo, wireguard)
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


def _container_port(spec: Any) -> int | None:
    """The container side of a compose `ports` entry: "8080", "8091:8080", "127.0.0.1:8091:8080/tcp", {target: 8080}."""
    target = spec.get("target") if isinstance(spec, dict) else str(spec).split("/", maxsplit=1)[0].rsplit(":", 1)[-1]
    target = str(target or "").split("-", maxsplit=1)[0]
    return int(target) if target.isdigit() else None


def user_file_services(inventory: dict[str, Any], inventory_dir: str) -> list[dict[str, Any]]:
    """Services of the user compose files the hosts name (pmoves_compose_user_files; a relative path is under the
    inventory's directory, as roles/compose resolves it), as catalog-like entries: image, container port, and the
    health of the catalog service of the same name. Their images need stand-ins like the catalog's."""
    import yaml  # the controller's (ansible's) PyYAML; only this command needs it

    health = {e.get("name"): e.get("health") for e in inventory_services(inventory) if isinstance(e, dict)}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _host, v in sorted(inventory.get("_meta", {}).get("hostvars", {}).items()):
        for path in v.get("pmoves_compose_user_files") or []:
            full = os.path.normpath(os.path.join(inventory_dir, os.path.expanduser(str(path))))
            if full in seen:
                continue
            seen.add(full)
            with open(full, encoding="utf-8") as handle:
                try:
                    data = yaml.safe_load(handle) or {}
                except yaml.YAMLError as exc:
                    raise ValueError(f"{full} is not valid YAML: {exc}") from exc
            for name, svc in sorted(((data.get("services") or {}) if isinstance(data, dict) else {}).items()):
                if not isinstance(svc, dict) or not isinstance(svc.get("image"), str) or not svc["image"]:
                    continue  # a service built from source has no image to stand in for
                ports = [p for p in map(_container_port, svc.get("ports") or []) if p] or [None]
                for port in ports:
                    out.append({"name": name, "image": svc["image"], "container_port": port, "health": health.get(name)})
    return out


def inventory_dir_of(path: str) -> str:
    """The directory relative user-file paths are under: the inventory directory (or a file inventory's directory)."""
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


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
        out["nats_observer"] = {"user": OBSERVER_USER, "password_file": OBSERVER_PASSWORD_FILE}
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
    if cmd == "wrapper":  # TOOL [SYSROOT]: the /usr/local/bin wrapper of a TEST DOUBLE
        print(double_wrapper(args[0], args[1] if len(args) > 1 else SYSROOT), end="")
        return 0
    if cmd == "standins":  # image|port port|path path
        inventory = _load(args[0])
        hardware = [v["pmoves_hardware"] for v in inventory["_meta"]["hostvars"].values()
                    if isinstance(v.get("pmoves_hardware"), dict)]
        services = list(inventory_services(inventory))
        if len(args) > 1:  # the inventory itself: the user compose files its hosts name carry images too
            try:
                services += user_file_services(inventory, inventory_dir_of(args[1]))
            except (OSError, ValueError) as exc:
                print(f"standins: cannot read a compose user file: {exc}", file=sys.stderr)
                return 1
        for image, rec in sorted(standins(services, hardware).items()):
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
