"""Hardware discovery for ``pmoves.fleet.hardware_facts`` (contract 1 of DESIGN.md).

Every file is read under a *sysroot* (``/`` on a real host, a captured tree in tests and in the
lab) and every command goes through an injectable runner (PATH lookup on a real host, test
doubles in tests), so the same code runs against real machines and fixtures. Parsing functions
are pure: text in, data out. ``discover()`` orchestrates the probes:

    NVML (pynvml) -> nvidia-smi (CSV query + plain header) -> sysfs / device tree
    Jetson (nv_tegra_release, dpkg, device tree, nvpmodel) | AMD (drm sysfs + KFD topology)
    NPUs (/sys/class/accel) | Apple silicon (sysctl, system_profiler) | CUDA toolkit

A missing library, driver, tool or file skips that probe and adds a line to ``warnings``;
nothing here raises for absent hardware.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:  # works inside Ansible (module_utils namespace) and under pytest (collections on sys.path)
    from ansible_collections.pmoves.fleet.plugins.module_utils import gpu_catalog as cat
    from ansible_collections.pmoves.fleet.plugins.module_utils.hardware_profiles import (
        merge_profiles,
        resolve_profile,
        validate_profiles,
    )
except ImportError:  # pragma: no cover - direct execution outside a collection tree
    import gpu_catalog as cat  # type: ignore[no-redef]
    from hardware_profiles import merge_profiles, resolve_profile, validate_profiles  # type: ignore[no-redef]

SCHEMA = 1
NVIDIA_SMI_QUERY = (
    "--query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.free,driver_version,compute_cap",
    "--format=csv,noheader,nounits",
)
# Unified memory: how much of RAM the GPU may use, leaving the OS its share.
UNIFIED_OS_RESERVE_MIN_MB = 2048  # Jetson / GB10: keep at least 2 GiB for the OS ...
UNIFIED_OS_RESERVE_FRACTION = 0.125  # ... or 1/8 of RAM, whichever is larger
APPLE_SMALL_RAM_LIMIT_MB = 36 * 1024  # Metal's default GPU working set: 2/3 of RAM up to 36 GiB, 3/4 above
NA_VALUES = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "[insufficient permissions]"}
ENV_SYSROOT = "PMOVES_HARDWARE_SYSROOT"  # exported to probed commands so test doubles can serve captures


# --------------------------------------------------------------------------- command runner


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str = ""


# A runner returns None when the command does not exist (not on PATH, or exit 127).
# Type aliases are evaluated at import time: subscripting collections.abc generics needs Python 3.9+,
# and nodes run 3.8 (JetPack 5), so the alias exists for type checkers only (annotations are strings).
if TYPE_CHECKING:
    CommandRunner = Callable[[Sequence[str]], "CommandResult | None"]


def make_subprocess_runner(sysroot: str = "/", timeout: float = 20.0) -> CommandRunner:
    """Run commands found on PATH; the sysroot travels in the environment (see ENV_SYSROOT)."""
    env = dict(os.environ)
    env[ENV_SYSROOT] = sysroot
    env.setdefault("LC_ALL", "C")

    def run(argv: Sequence[str]) -> CommandResult | None:
        exe = shutil.which(argv[0], path=env.get("PATH"))
        if exe is None:
            return None
        try:
            proc = subprocess.run(  # fixed argv, no shell
                [exe, *argv[1:]], capture_output=True, text=True, timeout=timeout, env=env, check=False
            )
        except FileNotFoundError:
            return None
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"timed out after {timeout:.0f}s")
        except OSError as exc:
            return CommandResult(126, "", str(exc))
        if proc.returncode == 127:
            return None
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    return run


# --------------------------------------------------------------------------- sysroot reader


class Sysroot:
    """Reads files below a root; absent files are None, unreadable ones also add a warning."""

    def __init__(self, root: str, warnings: list[str]) -> None:
        self.root = root or "/"
        self.warnings = warnings

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.path(rel))

    def read(self, rel: str) -> str | None:
        try:
            with open(self.path(rel), "rb") as handle:
                return handle.read().decode("utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            self.warnings.append(f"cannot read {rel}: {exc.strerror or exc}; probe skipped")
            return None

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(rel)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            self.warnings.append(f"cannot list {rel}: {exc.strerror or exc}; probe skipped")
            return []

    def readlink_name(self, rel: str) -> str | None:
        try:
            return os.path.basename(os.readlink(self.path(rel)))
        except OSError:
            return None


# --------------------------------------------------------------------------- pure parsers


def _na(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in NA_VALUES else value


def _int_or_none(value: str | None) -> int | None:
    value = _na(value)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo -> {'MemTotal': kB, ...}."""
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)", line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


ARM_CPU_PARTS = {
    ("0x41", "0xd0b"): "ARM Cortex-A76",
    ("0x41", "0xd08"): "ARM Cortex-A72",
    ("0x41", "0xd03"): "ARM Cortex-A53",
    ("0x41", "0xd42"): "ARM Cortex-A78AE",
    ("0x41", "0xd4f"): "ARM Neoverse-V2",
    ("0x41", "0xd83"): "ARM Neoverse-V3AE",
    ("0x41", "0xd84"): "ARM Neoverse-V3",
    ("0x41", "0xd0c"): "ARM Neoverse-N1",
    ("0x41", "0xd87"): "ARM Cortex-A725",
    ("0x41", "0xd85"): "ARM Cortex-X925",
    ("0x4e", "0x004"): "NVIDIA Carmel",
}


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """/proc/cpuinfo -> {'model': str|None, 'cores': int, 'arch': 'x86_64'|'aarch64'|None}.

    ``cores`` counts logical processors (what the kernel schedules on).
    """
    processors = 0
    model = None
    arch = None
    implementer = part = None
    board = None
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor" and value.isdigit():
            processors += 1
        elif key == "model name" and model is None:
            model = value
        elif key == "vendor_id" or key == "flags":
            arch = arch or "x86_64"
        elif key in ("CPU architecture", "CPU implementer"):
            arch = "aarch64"
            if key == "CPU implementer" and implementer is None:
                implementer = value.lower()
        elif key == "CPU part" and part is None:
            part = value.lower()
        elif key == "Model" and board is None:
            board = value
    if (model is None or model.startswith("ARMv8 Processor")) and implementer and part:
        model = ARM_CPU_PARTS.get((implementer, part), model or f"ARM CPU part {part}")
    return {"model": model, "cores": processors, "arch": arch, "board": board}


def parse_nvidia_smi_query(text: str) -> list[dict[str, Any]]:
    """Rows of ``nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.free,
    driver_version,compute_cap --format=csv,noheader,nounits``; [N/A] / [Not Supported] -> None."""
    rows = []
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    for fields in reader:
        if len(fields) < 8:
            continue
        index, uuid, name, bus, total, free, driver, cc = (f.strip() for f in fields[:8])
        if not index.isdigit():
            continue
        rows.append(
            {
                "index": int(index),
                "uuid": _na(uuid),
                "name": _na(name) or "NVIDIA GPU",
                "pci_bus_id": _na(bus),
                "memory_total_mb": _int_or_none(total),
                "memory_free_mb": _int_or_none(free),
                "driver_version": _na(driver),
                "compute_capability": _na(cc),
            }
        )
    return rows


def parse_nvidia_smi_header(text: str) -> dict[str, str | None]:
    """'| NVIDIA-SMI 580.82.09   Driver Version: 580.82.09   CUDA Version: 13.0 |' -> versions."""
    result: dict[str, str | None] = {"smi_version": None, "driver_version": None, "cuda_driver_version": None}
    match = re.search(r"NVIDIA-SMI\s+(\S+)", text)
    if match:
        result["smi_version"] = _na(match.group(1))
    match = re.search(r"Driver Version:\s+(\S+)", text)
    if match:
        result["driver_version"] = _na(match.group(1))
    match = re.search(r"CUDA Version:\s+(\S+)", text)
    if match:
        result["cuda_driver_version"] = _na(match.group(1))
    return result


def nvidia_smi_failure(result: CommandResult) -> str:
    """The first meaningful line nvidia-smi printed when it failed (it writes errors to stdout)."""
    for stream in (result.stdout, result.stderr):
        for line in stream.splitlines():
            if line.strip():
                return line.strip()
    return "no output"


def parse_nv_tegra_release(text: str) -> str | None:
    """'# R36 (release), REVISION: 4.4, GCID: ...' -> '36.4.4'."""
    match = re.search(r"#\s*R(\d+)\s*\(\w+\),\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    return cat.normalise_l4t(f"{match.group(1)}.{match.group(2).rstrip('.')}")


def parse_dpkg_l4t_core(text: str) -> str | None:
    """Version of the installed nvidia-l4t-core package in /var/lib/dpkg/status -> '36.4.4'."""
    for stanza in re.split(r"\n\s*\n", text):
        if not re.search(r"^Package:\s*nvidia-l4t-core\s*$", stanza, re.M):
            continue
        if not re.search(r"^Status:.*\binstalled\b", stanza, re.M):
            continue
        match = re.search(r"^Version:\s*(\d+\.\d+(?:\.\d+)?)", stanza, re.M)
        if match:
            return cat.normalise_l4t(match.group(1))
    return None


def parse_dt_strings(text: str | None) -> list[str]:
    """Device-tree string lists are NUL-separated: 'a\\0b\\0' -> ['a', 'b']."""
    if not text:
        return []
    return [part.strip() for part in text.split("\x00") if part.strip()]


def parse_nvpmodel(text: str) -> str | None:
    """``nvpmodel -q`` -> 'MAXN' (from 'NV Power Mode: MAXN')."""
    match = re.search(r"NV Power Mode:\s*(\S.*?)\s*$", text, re.M)
    return match.group(1) if match else None


def parse_kv_lines(text: str) -> dict[str, str]:
    """KFD 'properties' (one 'key value' per line)."""
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            values[parts[0]] = parts[1]
    return values


def parse_uevent(text: str | None) -> dict[str, str]:
    values = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def parse_cuda_version_json(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    version = (data.get("cuda") or {}).get("version") if isinstance(data, dict) else None
    return str(version) if version else None


def parse_cuda_version_txt(text: str) -> str | None:
    match = re.search(r"CUDA Version\s+([\d.]+)", text)
    return match.group(1) if match else None


def parse_nvcc_version(text: str) -> str | None:
    """'Cuda compilation tools, release 12.8, V12.8.93' -> '12.8.93'."""
    match = re.search(r"release\s+[\d.]+,\s*V([\d.]+)", text)
    if match:
        return match.group(1)
    match = re.search(r"release\s+([\d.]+)", text)
    return match.group(1) if match else None


def parse_sysctl(text: str) -> dict[str, str]:
    """'hw.memsize: 25769803776' lines -> dict."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            values[key.strip()] = value.strip()
    return values


def parse_system_profiler_displays(text: str) -> list[dict[str, Any]]:
    """Apple GPUs from ``system_profiler SPDisplaysDataType -json``."""
    try:
        data = json.loads(text)
    except ValueError:
        return []
    gpus = []
    for item in data.get("SPDisplaysDataType", []) if isinstance(data, dict) else []:
        vendor = str(item.get("spdisplays_vendor", ""))
        name = item.get("sppci_model") or item.get("_name") or "Apple GPU"
        if "apple" not in vendor.lower() and not str(name).startswith("Apple"):
            continue
        cores = item.get("sppci_cores")
        metal = str(item.get("spdisplays_mtlgpufamilysupport", "")).replace("spdisplays_", "") or None
        gpus.append({"name": str(name), "gpu_cores": int(cores) if str(cores).isdigit() else None, "metal": metal})
    return gpus


# --------------------------------------------------------------------------- memory policy


def unified_usable_mb(ram_mb: int) -> int:
    """Usable GPU share of RAM on Jetson / GB10-class unified memory: RAM minus an OS reserve."""
    reserve = max(UNIFIED_OS_RESERVE_MIN_MB, int(ram_mb * UNIFIED_OS_RESERVE_FRACTION))
    return max(ram_mb - reserve, 0)


def apple_usable_mb(ram_mb: int) -> int:
    """Metal's default recommendedMaxWorkingSetSize: 2/3 of RAM up to 36 GiB, 3/4 above."""
    return ram_mb * 2 // 3 if ram_mb <= APPLE_SMALL_RAM_LIMIT_MB else ram_mb * 3 // 4


def amd_apu_usable_mb(vram_mb: int, gtt_mb: int, ram_mb: int) -> int:
    """Strix-Halo-class APU: the GPU allocates from its carve-out (VRAM) or from GTT (system RAM),
    so the larger pool is usable, bounded by the physical memory (OS RAM + carve-out)."""
    bound = ram_mb + vram_mb if ram_mb else max(vram_mb, gtt_mb)
    return min(max(vram_mb, gtt_mb), bound)


# --------------------------------------------------------------------------- NVIDIA probes


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def _gpu_record(index: int, name: str, **extra: Any) -> dict[str, Any]:
    record = {
        "index": index,
        "vendor": "nvidia",
        "name": name,
        "uuid": None,
        "pci_bus_id": None,
        "memory_total_mb": 0,
        "memory_free_mb": None,
        "compute_capability": None,
        "sm": None,
        "family": None,
        "gfx": None,
        "unified_memory": False,
    }
    record.update(extra)
    return record


def _finish_nvidia_gpu(record: dict[str, Any]) -> dict[str, Any]:
    cc = cat.parse_cc(record.get("compute_capability"))
    record["compute_capability"] = cat.cc_string(cc) if cc else None
    record["sm"] = cat.sm_for_cc(cc)
    record["family"] = cat.family_for_cc(cc)
    return record


def probe_nvml(nvml: Any, warnings: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """GPUs through NVML (pynvml or a compatible object). None when NVML cannot start."""
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        warnings.append(f"NVML: nvmlInit failed ({_err(exc)}); probe skipped, trying nvidia-smi")
        return None
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda_driver = None
        for getter in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
            if hasattr(nvml, getter):
                try:
                    raw = int(getattr(nvml, getter)())
                    cuda_driver = f"{raw // 1000}.{(raw % 1000) // 10}"
                    break
                except Exception:  # try the older entry point
                    continue
        gpus = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            record = _gpu_record(index, _text(nvml.nvmlDeviceGetName(handle)))
            record["uuid"] = _nvml_optional(lambda h=handle: _text(nvml.nvmlDeviceGetUUID(h)))
            pci = _nvml_optional(lambda h=handle: nvml.nvmlDeviceGetPciInfo(h))
            record["pci_bus_id"] = _text(pci.busId) if pci is not None else None
            memory = _nvml_optional(lambda h=handle: nvml.nvmlDeviceGetMemoryInfo(h))
            if memory is not None:
                record["memory_total_mb"] = int(memory.total) // (1024 * 1024)
                record["memory_free_mb"] = int(memory.free) // (1024 * 1024)
            else:  # unified-memory parts (GB10, Thor) do not report framebuffer memory
                record["memory_total_mb"] = None
            cc = _nvml_optional(lambda h=handle: nvml.nvmlDeviceGetCudaComputeCapability(h))
            record["compute_capability"] = f"{cc[0]}.{cc[1]}" if cc else None
            gpus.append(_finish_nvidia_gpu(record))
        return gpus, {"driver_version": driver, "cuda_driver_version": cuda_driver, "source": "nvml"}
    except Exception as exc:
        warnings.append(f"NVML: query failed ({_err(exc)}); trying nvidia-smi")
        return None
    finally:
        with contextlib.suppress(Exception):  # shutdown errors change nothing for the facts
            nvml.nvmlShutdown()


def _nvml_optional(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:  # NVMLError_NotSupported on unified-memory parts, etc.
        return None


def probe_nvidia_smi(run: CommandRunner, warnings: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """GPUs through nvidia-smi (CSV query, then the plain header for the CUDA driver version)."""
    result = run(["nvidia-smi", *NVIDIA_SMI_QUERY])
    if result is None:
        warnings.append("nvidia-smi not found on PATH; NVIDIA probe skipped")
        return None
    if result.rc != 0:
        message = nvidia_smi_failure(result)
        if result.rc == 6 or "No devices were found" in message:
            warnings.append(f"nvidia-smi: {message}")
            return [], {"driver_version": None, "cuda_driver_version": None, "source": "nvidia-smi"}
        warnings.append(f"nvidia-smi failed (exit {result.rc}): {message}; NVIDIA probe skipped")
        return None
    rows = parse_nvidia_smi_query(result.stdout)
    header = run(["nvidia-smi"])
    versions = parse_nvidia_smi_header(header.stdout) if header is not None and header.rc == 0 else {}
    if not versions.get("cuda_driver_version"):
        warnings.append("nvidia-smi header has no CUDA Version (libcuda missing?); cuda_driver_version unknown")
    driver = next((r["driver_version"] for r in rows if r["driver_version"]), None) or versions.get("driver_version")
    gpus = []
    for row in rows:
        record = _gpu_record(
            row["index"],
            row["name"],
            uuid=row["uuid"],
            pci_bus_id=row["pci_bus_id"],
            memory_total_mb=row["memory_total_mb"],
            memory_free_mb=row["memory_free_mb"],
            compute_capability=row["compute_capability"],
        )
        gpus.append(_finish_nvidia_gpu(record))
    return gpus, {
        "driver_version": driver,
        "cuda_driver_version": versions.get("cuda_driver_version"),
        "source": "nvidia-smi",
    }


def probe_pci_nvidia(root: Sysroot) -> list[dict[str, Any]]:
    """NVIDIA display/3D controllers on the PCI bus (seen even when the driver is broken)."""
    found = []
    for slot in root.listdir("/sys/bus/pci/devices"):
        base = f"/sys/bus/pci/devices/{slot}"
        vendor = (root.read(f"{base}/vendor") or "").strip().lower()
        pci_class = (root.read(f"{base}/class") or "").strip().lower()
        if vendor != "0x10de" or not pci_class.startswith("0x03"):
            continue
        uevent = parse_uevent(root.read(f"{base}/uevent"))
        found.append(
            {
                "vendor": "nvidia",
                "pci_bus_id": slot,
                "device_id": (root.read(f"{base}/device") or "").strip().lower() or None,
                "driver": uevent.get("DRIVER") or root.readlink_name(f"{base}/driver"),
            }
        )
    return found


# --------------------------------------------------------------------------- Jetson


def probe_jetson(root: Sysroot, run: CommandRunner, warnings: list[str]) -> dict[str, Any] | None:
    """L4T, JetPack, board model, SoC and power mode; None when this is not a Jetson."""
    release = root.read("/etc/nv_tegra_release")
    model_text = root.read("/proc/device-tree/model") or root.read("/sys/firmware/devicetree/base/model")
    compatible = parse_dt_strings(
        root.read("/proc/device-tree/compatible") or root.read("/sys/firmware/devicetree/base/compatible")
    )
    soc = cat.soc_from_compatible(compatible)
    if release is None and soc is None:
        return None
    model = (parse_dt_strings(model_text) or [None])[0]
    soc = soc or cat.soc_from_model(model)
    l4t = parse_nv_tegra_release(release) if release else None
    l4t_source = "nv_tegra_release" if l4t else None
    if l4t is None:
        status = root.read("/var/lib/dpkg/status")
        l4t = parse_dpkg_l4t_core(status) if status else None
        l4t_source = "dpkg nvidia-l4t-core" if l4t else None
        if l4t is None:
            warnings.append("Jetson: no /etc/nv_tegra_release and no installed nvidia-l4t-core package; L4T unknown")
    jetpack = cat.jetpack_for_l4t(l4t)
    if l4t and jetpack is None:
        warnings.append(f"Jetson: L4T {l4t} is not in the L4T->JetPack table; JetPack unknown (major guessed)")
    power_mode = None
    result = run(["nvpmodel", "-q"])
    if result is None:
        warnings.append("nvpmodel not found on PATH; Jetson power mode unknown")
    elif result.rc != 0:
        warnings.append(f"nvpmodel -q failed (exit {result.rc}): {nvidia_smi_failure(result)}")
    else:
        power_mode = parse_nvpmodel(result.stdout)
    return {
        "l4t": l4t,
        "l4t_source": l4t_source,
        "jetpack": jetpack,
        "jetpack_major": cat.jetpack_major_for_l4t(l4t),
        "model": model,
        "compatible": compatible,
        "soc": soc,
        "power_mode": power_mode,
    }


# --------------------------------------------------------------------------- AMD


def _bytes_to_mb(text: str | None) -> int | None:
    value = _int_or_none(text)
    return value // (1024 * 1024) if value is not None else None


def _kfd_gpu_nodes(root: Sysroot) -> list[dict[str, str]]:
    nodes = []
    base = "/sys/class/kfd/kfd/topology/nodes"
    for node in sorted(root.listdir(base), key=lambda n: int(n) if n.isdigit() else 0):
        props = parse_kv_lines(root.read(f"{base}/{node}/properties") or "")
        if int(props.get("gfx_target_version", "0") or 0) > 0:
            nodes.append(props)
    return nodes


def _pci_location(slot: str) -> tuple[int, int] | None:
    """'0000:c5:00.0' -> (domain, KFD location_id = bus << 8 | device << 3 | function)."""
    match = re.match(r"^([0-9a-fA-F]+):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$", slot)
    if not match:
        return None
    domain, bus, dev = (int(match.group(i), 16) for i in range(1, 4))
    function = int(match.group(4))
    return domain, (bus << 8) | (dev << 3) | function


def probe_amd(root: Sysroot, ram_mb: int, warnings: list[str]) -> list[dict[str, Any]]:
    """AMD GPUs from /sys/class/drm/card*/device and the KFD topology (gfx target)."""
    cards = []
    for entry in root.listdir("/sys/class/drm"):
        if not re.match(r"^card\d+$", entry):
            continue
        dev = f"/sys/class/drm/{entry}/device"
        if (root.read(f"{dev}/vendor") or "").strip().lower() != "0x1002":
            continue
        uevent = parse_uevent(root.read(f"{dev}/uevent"))
        cards.append(
            {
                "card": entry,
                "device_id": (root.read(f"{dev}/device") or "").strip().lower(),
                "pci_bus_id": uevent.get("PCI_SLOT_NAME"),
                "driver": uevent.get("DRIVER"),
                "product_name": (root.read(f"{dev}/product_name") or "").strip() or None,
                "vram_mb": _bytes_to_mb(root.read(f"{dev}/mem_info_vram_total")),
                "vram_used_mb": _bytes_to_mb(root.read(f"{dev}/mem_info_vram_used")),
                "gtt_mb": _bytes_to_mb(root.read(f"{dev}/mem_info_gtt_total")),
                "gtt_used_mb": _bytes_to_mb(root.read(f"{dev}/mem_info_gtt_used")),
            }
        )
    if not cards:
        return []
    kfd = _kfd_gpu_nodes(root)
    if not kfd:
        warnings.append("AMD GPU present but the KFD topology (/sys/class/kfd) is not readable: gfx target unknown")
    gpus = []
    unmatched = list(kfd)
    for position, card in enumerate(cards):
        node = None
        location = _pci_location(card["pci_bus_id"] or "")
        for candidate in unmatched:
            if (
                location
                and candidate.get("location_id") == str(location[1])
                and candidate.get("domain", "0") == str(location[0])
            ):
                node = candidate
                break
        if node is None:
            for candidate in unmatched:
                if card["device_id"] and candidate.get("device_id") == str(int(card["device_id"], 16)):
                    node = candidate
                    break
        if node is None and unmatched and len(unmatched) == len(cards) - position:
            node = unmatched[0]
        if node is not None:
            unmatched.remove(node)
        gfx = cat.gfx_from_target_version(int(node["gfx_target_version"])) if node else None
        known_name, known_integrated = cat.AMD_GPUS.get(card["device_id"], (None, None))
        vram = card["vram_mb"] or 0
        gtt = card["gtt_mb"] or 0
        if card["vram_mb"] is None:
            warnings.append(f"AMD {card['card']}: mem_info_vram_total not readable (amdgpu not loaded?)")
        # An APU: known integrated id, or the signature of a small carve-out next to a big GTT pool.
        integrated = bool(known_integrated) if known_integrated is not None else (0 < vram <= 2048 and gtt >= 4 * vram)
        if integrated:
            total = amd_apu_usable_mb(vram, gtt, ram_mb)
            used = (card["vram_used_mb"] or 0) + (card["gtt_used_mb"] or 0)
        else:
            total = vram
            used = card["vram_used_mb"] or 0
        gpus.append(
            {
                "index": len(gpus),
                "vendor": "amd",
                "name": card["product_name"] or known_name or (f"AMD Radeon ({gfx})" if gfx else "AMD Radeon GPU"),
                "uuid": None,
                "pci_bus_id": card["pci_bus_id"],
                "memory_total_mb": total,
                "memory_free_mb": max(total - used, 0) if card["vram_mb"] is not None else None,
                "compute_capability": None,
                "sm": None,
                "family": None,
                "gfx": gfx,
                "unified_memory": integrated,
                "pci_device_id": card["device_id"] or None,
                "vram_mb": card["vram_mb"],
                "gtt_mb": card["gtt_mb"],
                "driver": card["driver"],
            }
        )
    return gpus


# --------------------------------------------------------------------------- NPUs


def probe_npus(root: Sysroot) -> list[dict[str, Any]]:
    npus = []
    for entry in root.listdir("/sys/class/accel"):
        dev = f"/sys/class/accel/{entry}/device"
        uevent = parse_uevent(root.read(f"{dev}/uevent"))
        driver = uevent.get("DRIVER") or root.readlink_name(f"{dev}/driver")
        vendor_id = (root.read(f"{dev}/vendor") or "").strip().lower()
        device_id = (root.read(f"{dev}/device") or "").strip().lower()
        revision = (root.read(f"{dev}/revision") or "").strip().lower() or None
        vendor = {"0x1022": "amd", "0x8086": "intel"}.get(vendor_id)
        if vendor is None and driver in ("amdxdna", "intel_vpu"):
            vendor = "amd" if driver == "amdxdna" else "intel"
        if vendor is None:
            continue
        generation, platform_name = cat.npu_generation(vendor, device_id, revision)
        npus.append(
            {
                "vendor": vendor,
                "driver": driver,
                "device_id": device_id or None,
                "revision": revision,
                "generation": generation,
                "platform": platform_name,
                "pci_bus_id": uevent.get("PCI_SLOT_NAME"),
                "accel": entry,
            }
        )
    return npus


# --------------------------------------------------------------------------- CUDA toolkit


def probe_cuda_toolkit(root: Sysroot, run: CommandRunner, use_path_nvcc: bool) -> dict[str, str] | None:
    text = root.read("/usr/local/cuda/version.json")
    version = parse_cuda_version_json(text) if text else None
    if version:
        return {"version": version, "source": "/usr/local/cuda/version.json"}
    text = root.read("/usr/local/cuda/version.txt")
    version = parse_cuda_version_txt(text) if text else None
    if version:
        return {"version": version, "source": "/usr/local/cuda/version.txt"}
    if use_path_nvcc:
        result = run(["nvcc", "--version"])
        if result is not None and result.rc == 0:
            version = parse_nvcc_version(result.stdout)
            if version:
                return {"version": version, "source": "nvcc"}
    return None


# --------------------------------------------------------------------------- Apple


def probe_darwin(run: CommandRunner, warnings: list[str]) -> dict[str, Any]:
    keys = [
        "hw.memsize",
        "hw.ncpu",
        "hw.machine",
        "hw.model",
        "machdep.cpu.brand_string",
        "hw.perflevel0.physicalcpu",
        "hw.perflevel1.physicalcpu",
    ]
    values: dict[str, str] = {}
    result = run(["sysctl", *keys])
    if result is None:
        warnings.append("sysctl not found on PATH; CPU and memory unknown")
    else:
        values = parse_sysctl(result.stdout)  # sysctl exits non-zero for unknown keys yet prints the rest
    displays = []
    result = run(["system_profiler", "SPDisplaysDataType", "-json"])
    if result is None:
        warnings.append("system_profiler not found on PATH; Apple GPU probe skipped")
    elif result.rc != 0:
        warnings.append(f"system_profiler failed (exit {result.rc}); Apple GPU probe skipped")
    else:
        displays = parse_system_profiler_displays(result.stdout)
    return {"sysctl": values, "displays": displays}


# --------------------------------------------------------------------------- derived facts


def _normalise_arch(machine: str | None) -> str | None:
    if not machine:
        return None
    return {"arm64": "aarch64", "amd64": "x86_64", "x64": "x86_64"}.get(machine.lower(), machine)


def _cuda_driver_tuple(nvidia: dict[str, Any] | None, warnings: list[str]) -> tuple[int, ...] | None:
    if not nvidia:
        return None
    cuda = cat.parse_version(nvidia.get("cuda_driver_version"))
    if cuda:
        return cuda
    driver = cat.parse_version(nvidia.get("driver_version"))
    if driver:  # minimum Linux drivers: CUDA 13.0 >= 580.65, CUDA 12.0 >= 525.60
        inferred = (13, 0) if driver >= (580, 65) else (12, 0) if driver >= (525, 60) else (11, 0)
        warnings.append(
            f"CUDA driver version inferred from driver {nvidia['driver_version']} as {inferred[0]}.{inferred[1]}"
        )
        return inferred
    return None


def choose_ollama_library(facts: dict[str, Any], warnings: list[str]) -> str:
    """Which Ollama runner library fits: cuda_v12/cuda_v13/jetpack5/jetpack6/rocm/vulkan/cpu."""
    gpus = facts["gpus"]
    jetson = facts.get("jetson")
    if jetson:
        major = jetson.get("jetpack_major")
        if major is None and jetson.get("soc") == "tegra264":
            major = 7
        if major is not None and major >= 7:
            return "cuda_v13"  # Thor: SBSA CUDA 13, same runner as servers
        if major == 6:
            return "jetpack6"
        if major == 5:
            return "jetpack5"
        warnings.append(
            f"Jetson with JetPack {jetson.get('jetpack') or 'unknown'}: no Ollama GPU runner (needs JetPack 5+); CPU only"
        )
        return "cpu"
    nvidia_gpus = [g for g in gpus if g["vendor"] == "nvidia"]
    if nvidia_gpus:
        ccs = [cat.parse_cc(g["compute_capability"]) for g in nvidia_gpus]
        known = [cc for cc in ccs if cc is not None]
        min_cc = min(known) if known else None
        cuda = _cuda_driver_tuple(facts.get("nvidia"), warnings)
        if min_cc is not None and min_cc < cat.OLLAMA_CUDA_V12_MIN_CC:
            warnings.append(
                f"compute capability {cat.cc_string(min_cc)} is below what Ollama's CUDA runners support (5.0)"
            )
            return "vulkan"
        if cuda is not None and cuda >= (13, 0) and (min_cc is None or min_cc >= cat.OLLAMA_CUDA_V13_MIN_CC):
            return "cuda_v13"
        if cuda is None or cuda >= (12, 0):
            return "cuda_v12"
        warnings.append(
            f"driver supports CUDA {'.'.join(map(str, cuda))} only; Ollama needs CUDA 12+ (driver 550+): using vulkan"
        )
        return "vulkan"
    amd_gpus = [g for g in gpus if g["vendor"] == "amd" and _amd_gpu_counts(g)]
    if amd_gpus:
        if all(g.get("gfx") in cat.OLLAMA_ROCM_GFX for g in amd_gpus):
            return "rocm"
        return "vulkan"
    if any(g["vendor"] == "amd" for g in gpus):
        return "vulkan"  # small iGPU Ollama's ROCm runner skips by default; Vulkan can use it
    return "cpu"  # includes Apple: Metal is built into the macOS binary, no runner library to pick


def _amd_gpu_counts(gpu: dict[str, Any]) -> bool:
    """Discrete AMD GPUs count as accelerators; integrated ones only when Ollama uses them (AI APUs)."""
    return not gpu.get("unified_memory") or gpu.get("gfx") in cat.OLLAMA_DEFAULT_INTEGRATED_GFX


def classify(facts: dict[str, Any]) -> tuple[str, str]:
    """(node_class, accelerator)."""
    gpus = facts["gpus"]
    if facts.get("jetson"):
        return "edge", "jetson"
    nvidia_gpus = [g for g in gpus if g["vendor"] == "nvidia"]
    if nvidia_gpus:
        if all(g["unified_memory"] for g in nvidia_gpus):
            return "apu", "nvidia"  # GB10-class superchips: unified memory
        return "gpu", "nvidia"
    amd_gpus = [g for g in gpus if g["vendor"] == "amd" and _amd_gpu_counts(g)]
    if any(not g["unified_memory"] for g in amd_gpus):
        return "gpu", "amd"
    if amd_gpus:
        return "apu", "amd"
    if any(g["vendor"] == "apple" for g in gpus):
        return "apu", "apple"
    if facts["npus"]:
        return "npu", "none"
    return "cpu", "none"


def gfd_labels(gpus: list[dict[str, Any]], nvidia: dict[str, Any] | None) -> dict[str, str]:
    """GPU Feature Discovery labels for the node's NVIDIA GPUs.

    As in GFD, product/count/memory/family/compute describe one product: with mixed models we
    take the one with the most memory (lowest index on ties) and count the GPUs of that model.
    """
    nvidia_gpus = [g for g in gpus if g["vendor"] == "nvidia"]
    if not nvidia_gpus:
        return {}
    primary = sorted(nvidia_gpus, key=lambda g: (-(g["memory_total_mb"] or 0), g["index"]))[0]
    labels = {
        "nvidia.com/gpu.product": cat.gfd_sanitise(primary["name"]),
        "nvidia.com/gpu.count": str(sum(1 for g in nvidia_gpus if g["name"] == primary["name"])),
    }
    if primary["memory_total_mb"]:
        labels["nvidia.com/gpu.memory"] = str(primary["memory_total_mb"])
    cc = cat.parse_cc(primary["compute_capability"])
    if cc:
        labels["nvidia.com/gpu.family"] = cat.family_for_cc(cc) or "undefined"
        labels["nvidia.com/gpu.compute.major"] = str(cc[0])
        labels["nvidia.com/gpu.compute.minor"] = str(cc[1])
    driver = (nvidia or {}).get("driver_version")
    parts = driver.split(".") if driver else []
    if 2 <= len(parts) <= 3:
        rev = parts[2] if len(parts) == 3 else ""
        labels.update(
            {
                "nvidia.com/cuda.driver-version.major": parts[0],
                "nvidia.com/cuda.driver-version.minor": parts[1],
                "nvidia.com/cuda.driver-version.revision": rev,
                "nvidia.com/cuda.driver-version.full": driver,
                # deprecated GFD names, still emitted by GFD
                "nvidia.com/cuda.driver.major": parts[0],
                "nvidia.com/cuda.driver.minor": parts[1],
                "nvidia.com/cuda.driver.rev": rev,
            }
        )
    cuda = cat.parse_version((nvidia or {}).get("cuda_driver_version"))
    if cuda and len(cuda) >= 2:
        labels.update(
            {
                "nvidia.com/cuda.runtime-version.major": str(cuda[0]),
                "nvidia.com/cuda.runtime-version.minor": str(cuda[1]),
                "nvidia.com/cuda.runtime-version.full": f"{cuda[0]}.{cuda[1]}",
                "nvidia.com/cuda.runtime.major": str(cuda[0]),
                "nvidia.com/cuda.runtime.minor": str(cuda[1]),
            }
        )
    return labels


def summarise(facts: dict[str, Any]) -> str:
    """One line for the discover play: class, GPUs with memory, driver/CUDA, JetPack."""
    parts = [facts["node_class"]]
    if facts["gpus"]:
        gpu_text = ", ".join(
            f"{g['name']} {g['memory_total_mb'] or 0} MiB{' unified' if g['unified_memory'] else ''}"
            for g in facts["gpus"]
        )
        parts.append(f"{len(facts['gpus'])} GPU: {gpu_text}")
    else:
        parts.append(f"no GPU ({facts['cpu']['cores']} cpu, {facts['memory_mb']} MiB RAM)")
    if facts["nvidia"]:
        parts.append(
            f"driver {facts['nvidia']['driver_version'] or '?'} CUDA {facts['nvidia']['cuda_driver_version'] or '?'}"
        )
    if facts["jetson"]:
        parts.append(f"JetPack {facts['jetson']['jetpack'] or '?'} (L4T {facts['jetson']['l4t'] or '?'})")
    if facts["npus"]:
        parts.append("NPU " + ", ".join(f"{n['vendor']} {n['generation'] or n['device_id']}" for n in facts["npus"]))
    if facts["unusable_gpus"]:
        parts.append(f"{len(facts['unusable_gpus'])} GPU unusable (driver)")
    parts.append(f"ollama {facts['ollama_library']}")
    return " | ".join(parts)


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in items if not (i in seen or seen.add(i))]


def default_nvml_loader() -> Any:
    """pynvml (nvidia-ml-py) when importable, else None."""
    try:
        import pynvml  # optional dependency, imported only when probing
    except Exception:
        return None
    return pynvml


def detect_platform(root: Sysroot) -> str:
    """'Darwin' when the sysroot is a macOS system (SystemVersion.plist), else 'Linux'."""
    if root.exists("/System/Library/CoreServices/SystemVersion.plist"):
        return "Darwin"
    return "Linux"


# --------------------------------------------------------------------------- orchestration


def discover(
    sysroot: str = "/",
    use_nvml: bool = True,
    runner: CommandRunner | None = None,
    nvml_loader: Callable[[], Any] | None = None,
    profiles: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Probe the machine below ``sysroot`` and return the ``pmoves_hardware`` fact."""
    warnings: list[str] = []
    root = Sysroot(sysroot, warnings)
    run = runner or make_subprocess_runner(sysroot)
    system = detect_platform(root)

    facts: dict[str, Any] = {
        "schema": SCHEMA,
        "platform": system,
        "arch": None,
        "memory_mb": 0,
        "cpu": {"model": None, "cores": 0},
        "node_class": "cpu",
        "accelerator": "none",
        "gpus": [],
        "nvidia": None,
        "cuda": None,
        "jetson": None,
        "npus": [],
        "torch_cuda_arch_list": None,
        "ollama_library": "cpu",
        "labels": {},
        "warnings": warnings,
        "power_mode": None,
        "apple": None,
        "amd": None,
        "unusable_gpus": [],
        "hardware_profile": None,
        "summary": "",
    }

    if system == "Darwin":
        _discover_darwin(facts, run, warnings)
    else:
        _discover_linux(facts, root, run, use_nvml, nvml_loader, sysroot, warnings)

    ccs = [cat.parse_cc(g["compute_capability"]) for g in facts["gpus"] if g["vendor"] == "nvidia"]
    facts["torch_cuda_arch_list"] = cat.torch_cuda_arch_list([cc for cc in ccs if cc])
    facts["node_class"], facts["accelerator"] = classify(facts)
    facts["ollama_library"] = choose_ollama_library(facts, warnings)
    facts["labels"] = gfd_labels(facts["gpus"], facts["nvidia"])
    for gpu in facts["gpus"]:
        cc = cat.parse_cc(gpu["compute_capability"])
        if gpu["vendor"] == "nvidia" and cc and cc < cat.CUDA13_MIN_CC:
            warnings.append(
                f"GPU {gpu['index']} {gpu['name']} is {gpu['family']} (cc {gpu['compute_capability']}): CUDA 13 builds "
                "(cuda_v13 runner, CUDA 13 toolkits and images) dropped cc < 7.5; use CUDA 12.x builds"
            )

    merged = merge_profiles(profiles)
    warnings.extend(validate_profiles(merged))
    facts["hardware_profile"] = resolve_profile(merged, facts)
    facts["summary"] = summarise(facts)
    facts["warnings"] = _dedupe(warnings)
    return facts


def _discover_darwin(facts: dict[str, Any], run: CommandRunner, warnings: list[str]) -> None:
    probed = probe_darwin(run, warnings)
    sysctl = probed["sysctl"]
    memsize = _int_or_none(sysctl.get("hw.memsize"))
    facts["memory_mb"] = memsize // (1024 * 1024) if memsize else 0
    facts["arch"] = _normalise_arch(sysctl.get("hw.machine")) or _normalise_arch(platform.machine())
    facts["cpu"] = {"model": sysctl.get("machdep.cpu.brand_string"), "cores": _int_or_none(sysctl.get("hw.ncpu")) or 0}
    usable = apple_usable_mb(facts["memory_mb"])
    for index, display in enumerate(probed["displays"]):
        facts["gpus"].append(
            {
                "index": index,
                "vendor": "apple",
                "name": display["name"],
                "uuid": None,
                "pci_bus_id": None,
                "memory_total_mb": usable,
                "memory_free_mb": None,
                "compute_capability": None,
                "sm": None,
                "family": None,
                "gfx": None,
                "unified_memory": True,
                "gpu_cores": display["gpu_cores"],
            }
        )
    if probed["displays"]:
        first = probed["displays"][0]
        facts["apple"] = {
            "model": sysctl.get("hw.model"),
            "chip": sysctl.get("machdep.cpu.brand_string"),
            "gpu_cores": first["gpu_cores"],
            "metal": first["metal"],
            "performance_cores": _int_or_none(sysctl.get("hw.perflevel0.physicalcpu")),
            "efficiency_cores": _int_or_none(sysctl.get("hw.perflevel1.physicalcpu")),
            "gpu_working_set_mb": usable,
        }


def _discover_linux(
    facts: dict[str, Any],
    root: Sysroot,
    run: CommandRunner,
    use_nvml: bool,
    nvml_loader: Callable[[], Any] | None,
    sysroot: str,
    warnings: list[str],
) -> None:
    meminfo_text = root.read("/proc/meminfo")
    meminfo = parse_meminfo(meminfo_text) if meminfo_text else {}
    if not meminfo_text:
        warnings.append("cannot read /proc/meminfo; memory_mb is 0")
    facts["memory_mb"] = meminfo.get("MemTotal", 0) // 1024
    available_mb = meminfo.get("MemAvailable", meminfo.get("MemFree", 0)) // 1024
    cpuinfo = parse_cpuinfo(root.read("/proc/cpuinfo") or "")
    facts["arch"] = cpuinfo["arch"] or _normalise_arch(platform.machine())
    facts["cpu"] = {"model": cpuinfo["model"], "cores": cpuinfo["cores"] or (os.cpu_count() or 0)}

    # NVIDIA: NVML first, then nvidia-smi.
    probed = None
    if use_nvml:
        nvml = (nvml_loader or default_nvml_loader)()
        if nvml is None:
            warnings.append("NVML: pynvml (nvidia-ml-py) not importable; probe skipped, trying nvidia-smi")
        else:
            probed = probe_nvml(nvml, warnings)
    if probed is None:
        probed = probe_nvidia_smi(run, warnings)
    nvidia_gpus, nvidia_info = probed if probed is not None else ([], None)

    jetson = probe_jetson(root, run, warnings)
    if jetson:
        name, cc, _line = cat.TEGRA_SOCS.get(jetson["soc"] or "", ("NVIDIA Tegra GPU", None, None))
        if not nvidia_gpus:
            nvidia_gpus = [
                _finish_nvidia_gpu(_gpu_record(0, name, compute_capability=cat.cc_string(cc) if cc else None))
            ]
        for gpu in nvidia_gpus:
            gpu["unified_memory"] = True
            if not gpu["compute_capability"] and cc:
                gpu["compute_capability"] = cat.cc_string(cc)
                _finish_nvidia_gpu(gpu)
        facts["power_mode"] = jetson["power_mode"]
        facts["jetson"] = {
            k: jetson[k]
            for k in ("l4t", "jetpack", "model", "soc", "power_mode", "l4t_source", "jetpack_major", "compatible")
        }
    for gpu in nvidia_gpus:
        if not gpu["memory_total_mb"]:  # [N/A]: unified memory (Jetson, GB10)
            gpu["unified_memory"] = True
        if gpu["unified_memory"]:
            gpu["memory_total_mb"] = unified_usable_mb(facts["memory_mb"])
            gpu["memory_free_mb"] = min(available_mb, gpu["memory_total_mb"]) if available_mb else None
    facts["gpus"].extend(nvidia_gpus)
    facts["nvidia"] = nvidia_info if nvidia_info and (nvidia_gpus or nvidia_info.get("driver_version")) else None

    if not nvidia_gpus and not jetson:
        broken = probe_pci_nvidia(root)
        if broken:
            facts["unusable_gpus"] = broken
            slots = ", ".join(f"{b['pci_bus_id']} ({b['device_id']}, driver {b['driver'] or 'none'})" for b in broken)
            warnings.append(
                f"NVIDIA GPU on PCI {slots} but neither NVML nor nvidia-smi can use it: driver not loaded or "
                "broken; listed under unusable_gpus, not gpus. Fix the driver (nvidia-smi must work) and rerun discovery"
            )

    amd = probe_amd(root, facts["memory_mb"], warnings)
    facts["gpus"].extend(amd)
    if amd:
        gfx = sorted({g["gfx"] for g in amd if g["gfx"]})
        facts["amd"] = {
            "gfx_targets": gfx,
            "rocm_supported": bool(gfx) and all(t in cat.OLLAMA_ROCM_GFX for t in gfx),
            "kfd": bool(_kfd_gpu_nodes(root)),
        }
    facts["npus"] = probe_npus(root)
    if nvidia_gpus:
        facts["cuda"] = probe_cuda_toolkit(root, run, use_path_nvcc=os.path.realpath(sysroot) == "/")
        if facts["cuda"] is None:
            warnings.append("CUDA toolkit not found (/usr/local/cuda/version.json, version.txt, nvcc); cuda is null")
