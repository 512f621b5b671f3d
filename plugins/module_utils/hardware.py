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
NVIDIA_SMI_FIELDS = ("index", "uuid", "name", "pci.bus_id", "memory.total", "memory.free", "driver_version", "compute_cap")
NVIDIA_SMI_QUERY = (f"--query-gpu={','.join(NVIDIA_SMI_FIELDS)}", "--format=csv,noheader,nounits")
# Fields nvidia-smi may reject on old drivers (compute_cap arrived with the 510 drivers): retried without.
NVIDIA_SMI_OPTIONAL_FIELDS = ("compute_cap", "uuid", "pci.bus_id", "memory.free", "driver_version")
# Unified memory: how much of RAM the GPU may use, leaving the OS its share.
UNIFIED_OS_RESERVE_MIN_MB = 2048  # Jetson / GB10: keep at least 2 GiB for the OS ...
UNIFIED_OS_RESERVE_FRACTION = 0.125  # ... or 1/8 of RAM, whichever is larger
APPLE_SMALL_RAM_LIMIT_MB = 36 * 1024  # Metal's default GPU working set: 2/3 of RAM up to 36 GiB, 3/4 above
NA_VALUES = {"", "n/a", "not supported", "unknown error", "insufficient permissions", "n/a (not supported)"}
# nvidia-smi prints unknown values as [N/A], [Not Supported], [Unknown Error], [GPU requires reset],
# [Requested functionality has been deprecated] ...: anything in brackets is no value.
_BRACKETED = re.compile(r"^\[.*\]$")
_UNIT_SUFFIX = re.compile(r"^([-+]?\d+(?:\.\d+)?)\s*(?:MiB|GiB|KiB|MB|GB|KB|B|%|W|MHz|C|KB/s|MB/s)$")
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
    """nvidia-smi's 'no value' spellings ([N/A], [Not Supported], N/A, ...) -> None."""
    if value is None:
        return None
    value = value.strip()
    if value.lower() in NA_VALUES or _BRACKETED.match(value):
        return None
    return value


def _int_or_none(value: str | None) -> int | None:
    """'24576', '24576 MiB' (a query without nounits), '38 %' -> int; [N/A] -> None."""
    value = _na(value)
    if value is None:
        return None
    match = _UNIT_SUFFIX.match(value)
    if match:
        value = match.group(1)
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


def parse_nvidia_smi_csv(text: str, fields: Sequence[str]) -> list[dict[str, str | None]]:
    """CSV of ``--query-gpu=<fields>`` as dicts by field name, with or without the header line
    ('memory.total [MiB]') and units ('24576 MiB'): values stay strings, [N/A]-like ones None."""
    rows = []
    for cells in csv.reader(io.StringIO(text), skipinitialspace=True):
        cells = [c.strip() for c in cells]
        if len(cells) < len(fields) or not any(cells):
            continue
        if cells[0].split(" [")[0] == fields[0]:  # the header line (no 'noheader')
            continue
        rows.append({field: _na(cells[i]) for i, field in enumerate(fields)})
    return rows


def parse_nvidia_smi_query(text: str, fields: Sequence[str] = NVIDIA_SMI_FIELDS) -> list[dict[str, Any]]:
    """Rows of ``nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.free,
    driver_version,compute_cap --format=csv,noheader,nounits`` (or the fields that remained after a
    driver rejected some); [N/A] / [Not Supported] -> None, units tolerated."""
    rows = []
    for row in parse_nvidia_smi_csv(text, fields):
        index = row.get("index")
        if not index or not index.isdigit():
            continue
        rows.append(
            {
                "index": int(index),
                "uuid": row.get("uuid"),
                "name": row.get("name") or "NVIDIA GPU",
                "pci_bus_id": row.get("pci.bus_id"),
                "memory_total_mb": _int_or_none(row.get("memory.total")),
                "memory_free_mb": _int_or_none(row.get("memory.free")),
                "driver_version": row.get("driver_version"),
                "compute_capability": row.get("compute_cap"),
            }
        )
    return rows


def _version_value(value: str | None) -> str | None:
    """'610.57.04 [Deprecated; ...]' -> '610.57.04'; 'Deprecated, see "KMD version" instead' -> None."""
    value = _na(value)
    if value is None:
        return None
    value = value.split(" [")[0].strip()
    if not value or value.lower().startswith("deprecated") or not value[0].isdigit():
        return None
    return value


def parse_nvidia_smi_header(text: str) -> dict[str, str | None]:
    """Versions from the header of plain ``nvidia-smi``, every driver generation:

    '| NVIDIA-SMI 470.63.01    Driver Version: 470.63.01    CUDA Version: 11.4     |' (470 .. 5xx)
    '| NVIDIA-SMI 610.57.04    KMD Version: 610.57.04     CUDA UMD Version: 13.3     |' (610 series)
    """
    result: dict[str, str | None] = {"smi_version": None, "driver_version": None, "cuda_driver_version": None}
    match = re.search(r"NVIDIA-SMI\s+(\S+)", text)
    if match:
        result["smi_version"] = _version_value(match.group(1))
    match = re.search(r"(?:KMD|Driver) Version:\s+(\S+)", text)
    if match:
        result["driver_version"] = _version_value(match.group(1))
    match = re.search(r"CUDA (?:UMD )?Version:\s+(\S+)", text)
    if match:
        result["cuda_driver_version"] = _version_value(match.group(1))
    return result


def parse_nvidia_smi_version(text: str) -> dict[str, str | None]:
    """``nvidia-smi --version``: 'DRIVER version : 550.54.15' / 'CUDA Version : 12.4' (535 .. 5xx), or
    'KMD version : 610.57.04' / 'CUDA UMD version : 13.3' next to the deprecated lines (610 series)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip().lower()] = value.strip()
    driver = _version_value(values.get("kmd version")) or _version_value(values.get("driver version"))
    cuda = _version_value(values.get("cuda umd version")) or _version_value(values.get("cuda version"))
    return {
        "smi_version": _version_value(values.get("nvidia-smi version")),
        "driver_version": driver,
        "cuda_driver_version": cuda,
    }


def parse_nvidia_smi_q(text: str) -> dict[str, Any]:
    """``nvidia-smi -q``: driver / CUDA versions (KMD / CUDA UMD on the 610 series, where the old lines
    carry '[Deprecated; ...]') and per GPU its bus id, product name and architecture."""
    top: dict[str, str] = {}
    gpus: list[dict[str, str | None]] = []
    for line in text.splitlines():
        match = re.match(r"^GPU\s+([0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+\.[0-7])\s*$", line)
        if match:
            gpus.append({"pci_bus_id": match.group(1), "name": None, "architecture": None})
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        indent = len(key) - len(key.lstrip())
        key = key.strip()
        if indent == 0:
            top[key.lower()] = value.strip()
        elif gpus and indent == 4 and key == "Product Name":
            gpus[-1]["name"] = _na(value)
        elif gpus and indent == 4 and key == "Product Architecture":
            gpus[-1]["architecture"] = _na(value)
    return {
        "driver_version": _version_value(top.get("kmd version")) or _version_value(top.get("driver version")),
        "cuda_driver_version": _version_value(top.get("cuda umd version")) or _version_value(top.get("cuda version")),
        "gpus": gpus,
    }


def rejected_query_field(result: CommandResult) -> str | None:
    """'Field "compute_cap" is not a valid field to query.' (exit 2 on drivers before 510) -> 'compute_cap'."""
    match = re.search(r'Field "([^"]+)" is not a valid field to query', f"{result.stdout}\n{result.stderr}")
    return match.group(1) if match else None


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
        missing = [g for g in gpus if not g["compute_capability"]]
        if missing:
            _fill_compute_capability(missing, None, driver, warnings)
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
    """GPUs through nvidia-smi: the CSV query (fields an old driver rejects are dropped and the query
    repeated), then the plain header (or ``--version``) for the driver's CUDA version, and for GPUs
    still without a compute capability the product-name table and ``-q``'s architecture."""
    fields = list(NVIDIA_SMI_FIELDS)
    while True:
        result = run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])
        if result is None:
            warnings.append("nvidia-smi not found on PATH; NVIDIA probe skipped")
            return None
        rejected = rejected_query_field(result) if result.rc != 0 else None
        if rejected in fields and rejected in NVIDIA_SMI_OPTIONAL_FIELDS:
            fields.remove(rejected)
            warnings.append(
                f'nvidia-smi rejects the query field "{rejected}" ({nvidia_smi_failure(result)}, exit {result.rc}; '
                "older driver): queried again without it"
            )
            continue
        break
    if result.rc != 0:
        message = nvidia_smi_failure(result)
        if result.rc == 6 or "No devices were found" in message:
            warnings.append(f"nvidia-smi: {message}")
            return [], {"driver_version": None, "cuda_driver_version": None, "source": "nvidia-smi"}
        warnings.append(f"nvidia-smi failed (exit {result.rc}): {message}; NVIDIA probe skipped")
        return None
    rows = parse_nvidia_smi_query(result.stdout, fields)
    header = run(["nvidia-smi"])
    versions = parse_nvidia_smi_header(header.stdout) if header is not None and header.rc == 0 else {}
    if not versions.get("cuda_driver_version") or not versions.get("driver_version"):
        version = run(["nvidia-smi", "--version"])
        if version is not None and version.rc == 0:
            parsed = parse_nvidia_smi_version(version.stdout)
            versions = {k: versions.get(k) or parsed.get(k) for k in ("driver_version", "cuda_driver_version")}
    if not versions.get("cuda_driver_version"):
        warnings.append(
            "nvidia-smi reports no CUDA version (header and --version; libcuda missing?); cuda_driver_version unknown"
        )
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
    missing = [g for g in gpus if not g["compute_capability"]]
    if missing:
        _fill_compute_capability(missing, run, driver, warnings)
    return gpus, {
        "driver_version": driver,
        "cuda_driver_version": versions.get("cuda_driver_version"),
        "source": "nvidia-smi",
    }


def _fill_compute_capability(
    gpus: list[dict[str, Any]], run: CommandRunner | None, driver: str | None, warnings: list[str]
) -> None:
    """Compute capability the driver did not report: Ollama's product table, else the architecture
    ``nvidia-smi -q`` names where it has one capability. Each derivation is a warning."""
    architectures: dict[str, str | None] = {}
    for gpu in gpus:
        cc = cat.cc_from_name(gpu["name"])
        source = "its product name (Ollama's GPU table)"
        if cc is None and run is not None:
            if not architectures:
                result = run(["nvidia-smi", "-q"])
                parsed = parse_nvidia_smi_q(result.stdout) if result is not None and result.rc == 0 else {"gpus": []}
                architectures = {_bus_key(g["pci_bus_id"]): g["architecture"] for g in parsed["gpus"]} or {"": None}
            arch = architectures.get(_bus_key(gpu["pci_bus_id"]))
            cc = cat.CC_BY_ARCHITECTURE.get(arch or "")
            source = f'its architecture "{arch}" (nvidia-smi -q)'
        label = f"GPU {gpu['index']} {gpu['name']}"
        if cc is None:
            warnings.append(
                f"{label}: driver {driver or '?'} reports no compute capability and neither the product name nor "
                "the architecture gives one; compute_capability unknown"
            )
            continue
        gpu["compute_capability"] = cc
        _finish_nvidia_gpu(gpu)
        warnings.append(f"{label}: driver {driver or '?'} reports no compute capability; {cc} derived from {source}")


def _bus_key(bus_id: str | None) -> str:
    """'00000000:0C:00.0' and '0000:0c:00.0' -> '0c:00.0' (nvidia-smi's domain has 4 or 8 digits)."""
    return ":".join((bus_id or "").lower().split(":")[-2:])


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
    boardids = (parse_dt_strings(root.read("/proc/device-tree/nvidia,boardids")) or [None])[0]
    part_number, module = cat.module_from_boardids(boardids)
    soc = soc or cat.JETSON_MODULE_SOCS.get((part_number or "").split("-")[0]) or cat.soc_from_model(model)
    if soc is None:
        warnings.append(f"Jetson: SoC unknown (device tree model {model!r}, compatible {compatible})")
    elif soc not in cat.TEGRA_SOCS:
        warnings.append(f"Jetson: SoC {soc} is not in the Tegra table; GPU name and compute capability unknown")
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
        "module": module,
        "part_number": part_number,
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
                "revision": (root.read(f"{dev}/revision") or "").strip().lower() or None,
                "discrete_marker": root.exists(f"{dev}/mem_info_vram_vendor") or root.exists(f"{dev}/board_info"),
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
        known_name = cat.amd_marketing_name(card["device_id"], card["revision"])
        vram = card["vram_mb"] or 0
        gtt = card["gtt_mb"] or 0
        if card["vram_mb"] is None:
            warnings.append(f"AMD {card['card']}: mem_info_vram_total not readable (amdgpu not loaded?)")
        integrated, integrated_by = amd_integrated(card, vram, gtt)
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
                "pci_revision": card["revision"],
                "integrated_by": integrated_by,
                "vram_mb": card["vram_mb"],
                "gtt_mb": card["gtt_mb"],
                "driver": card["driver"],
            }
        )
    return gpus


def amd_integrated(card: dict[str, Any], vram_mb: int, gtt_mb: int) -> tuple[bool, str]:
    """Integrated or discrete, decided as Ollama decides on Linux (discover/amd.go): a card with
    mem_info_vram_vendor or board_info is discrete; VRAM <= 4 GiB with GTT >= 8 GiB and >= 4 x VRAM is
    integrated; otherwise the HIP runtime's own flag, for which the PCI id table stands in."""
    if card.get("discrete_marker"):
        return False, "sysfs (mem_info_vram_vendor / board_info)"
    if 0 < vram_mb <= cat.OLLAMA_IGPU_MAX_VRAM_MB and gtt_mb >= cat.OLLAMA_IGPU_MIN_GTT_MB and gtt_mb >= 4 * vram_mb:
        return True, "sysfs (VRAM <= 4 GiB, GTT >= 8 GiB and >= 4 x VRAM)"
    known = cat.AMD_GPUS.get(card.get("device_id") or "")
    if known is not None:
        return known[1], "PCI id table"
    return False, "default (no integrated signature)"


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


def _hsa_override(gfx: str | None, supported: Sequence[str]) -> str | None:
    """HSA_OVERRIDE_GFX_VERSION that maps a gfx target onto the nearest one Ollama ships:
    same major and minor first (gfx1032 -> gfx1030 -> '10.3.0'), then same major (gfx1103 -> '11.0.0')."""
    match = re.match(r"^gfx(\d+)([0-9a-f])([0-9a-f])$", gfx or "")
    if not match:
        return None
    major, minor = match.group(1), match.group(2)
    for prefix in (f"gfx{major}{minor}", f"gfx{major}"):
        for target in sorted(supported):
            found = re.match(r"^gfx(\d+)([0-9a-f])([0-9a-f])$", target)
            if found and target.startswith(prefix) and target != gfx:
                return f"{int(found.group(1))}.{int(found.group(2), 16)}.{int(found.group(3), 16)}"
    return None


def _decision(gpu: dict[str, Any], library: str | None, reason: str | None = None, fix: str | None = None,
              env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"index": gpu.get("index"), "name": gpu.get("name"), "vendor": gpu.get("vendor"), "library": library,
            "reason": reason, "fix": fix, "env": env or None}  # fmt: skip


class _OllamaContext:
    """What Ollama's decisions depend on besides the GPU: its release rules, CPU arch, driver/CUDA."""

    def __init__(self, facts: dict[str, Any], rules: dict[str, Any], warnings: list[str]) -> None:
        self.rules = rules
        self.release = rules["release"]
        self.arch = facts.get("arch") or "x86_64"
        nvidia = facts.get("nvidia")
        driver = cat.parse_version((nvidia or {}).get("driver_version"))
        self.driver = (nvidia or {}).get("driver_version")
        self.driver_major = driver[0] if driver else None
        self.cuda = _cuda_driver_tuple(nvidia, warnings) if nvidia else None

    def vulkan(self, gpu: dict[str, Any], why: str, fix: str | None, env: dict[str, str] | None = None,
               integrated: bool = False) -> dict[str, Any]:  # fmt: skip
        """The GPU as Ollama's Vulkan runner would take it, after its own runner said no (why)."""
        env = dict(env or {})
        if self.arch not in self.rules["vulkan_arches"]:
            return _decision(gpu, None, f"{why}; Ollama ships no Vulkan runner for {self.arch}", fix, env)
        if integrated and not ollama_admits_integrated("Vulkan", gpu.get("gfx"), None, self.rules):
            env["OLLAMA_IGPU_ENABLE"] = "1"
            if not self.rules["vulkan_default"]:
                env["OLLAMA_VULKAN"] = "1"
            return _decision(gpu, None, f"{why}; on Vulkan it is an integrated GPU, which Ollama drops by default",
                             fix or f"set {', '.join(f'{k}={v}' for k, v in env.items())} to run it on Vulkan", env)  # fmt: skip
        if not self.rules["vulkan_default"]:
            env["OLLAMA_VULKAN"] = "1"
            return _decision(gpu, None, f"{why}; Vulkan is opt-in in Ollama {self.release}",
                             fix or "set OLLAMA_VULKAN=1 to run it on Vulkan", env)  # fmt: skip
        return _decision(gpu, "vulkan", why, fix, env)


def _cuda_checks(ctx: _OllamaContext, gpu: dict[str, Any]) -> dict[str, tuple[bool, str | None, str | None]]:
    """Per CUDA runner: (usable, why not, fix), as Ollama's discovery decides for this GPU and driver."""
    rules = ctx.rules
    cc = cat.parse_cc(gpu.get("compute_capability"))
    ccs = cat.cc_string(cc) if cc else None
    drv = f"driver {ctx.driver}" if ctx.driver else "the driver"
    checks: dict[str, tuple[bool, str | None, str | None]] = {}
    floor = int(rules["cuda_v12_min_driver"])
    legacy_floor = int(rules["legacy_cc_min_driver"])
    if ccs and ccs not in rules["cuda_v12_ccs"]:
        checks["cuda_v12"] = (False, f"Ollama's cuda_v12 runner has no kernels for compute capability {ccs}",
                              f"none with Ollama's release builds (a source build with CMAKE_CUDA_ARCHITECTURES="
                              f"{cc[0]}{cc[1]} could)" if cc else None)  # fmt: skip
    elif ctx.driver_major is not None and ctx.driver_major < floor:
        checks["cuda_v12"] = (False, f"{drv} is older than {floor}, the floor of Ollama {ctx.release}'s CUDA 12 runner",
                              f"install NVIDIA driver {max(floor, legacy_floor) if cc and cc[0] < 7 else floor} or newer")  # fmt: skip
    elif ctx.driver_major is not None and ctx.driver_major < int(rules["cuda_v12_kernel_min_driver"]):
        kernel_floor = int(rules["cuda_v12_kernel_min_driver"])
        checks["cuda_v12"] = (False, f"{drv} is older than {kernel_floor}: Ollama {ctx.release}'s cuda_v12 runner "
                              "lists the GPU but cannot load its kernels (compressed fatbins need driver "
                              f"{kernel_floor}+, ollama#16449; Ollama 0.30.11 and later refuse the GPU)",
                              f"install NVIDIA driver {kernel_floor} or newer")  # fmt: skip
    elif ctx.cuda is not None and ctx.cuda < (12, 0):
        checks["cuda_v12"] = (False, f"{drv} supports CUDA {'.'.join(map(str, ctx.cuda[:2]))} only; Ollama's "
                              "CUDA runners need CUDA 12+", f"install NVIDIA driver {floor} or newer")  # fmt: skip
    elif cc and cc[0] < int(rules["legacy_cc_major_below"]) and ctx.driver_major is not None and ctx.driver_major < legacy_floor:
        checks["cuda_v12"] = (False, f"compute capability {ccs} needs driver {legacy_floor}+ in Ollama "
                              f"(discover/cuda_compat.go) and this is {ctx.driver}",
                              f"install NVIDIA driver {legacy_floor} or newer")  # fmt: skip
    else:
        checks["cuda_v12"] = (True, None, None)
    if ccs and ccs not in rules["cuda_v13_ccs"]:
        checks["cuda_v13"] = (False, f"Ollama's cuda_v13 runner has no kernels for compute capability {ccs}", None)
    elif (ctx.cuda is not None and ctx.cuda < (13, 0)) or (ctx.cuda is None and (ctx.driver_major or 0) < 580):
        cuda = ".".join(map(str, ctx.cuda[:2])) if ctx.cuda else "unknown"
        checks["cuda_v13"] = (False, f"{drv} supports CUDA {cuda}; the cuda_v13 runner needs a CUDA 13 driver",
                              "install NVIDIA driver 580 or newer")  # fmt: skip
    else:
        checks["cuda_v13"] = (True, None, None)
    return checks


def ollama_cuda_overlap(v12: set[int], v13: set[int]) -> dict[int, str]:
    """Ollama's discover/runner.go filterOverlapByLibrary for the two CUDA runners: GPUs -> runner.
    cuda_v13 (the newest) is kept when it supports every GPU cuda_v12 does; otherwise the walk ends on
    cuda_v12, which keeps its GPUs, and cuda_v13 keeps only those cuda_v12 lacks."""
    if v13 and v13 == v12:
        return {i: "cuda_v13" for i in v13}
    chosen = {i: "cuda_v13" for i in v13 - v12}
    chosen.update({i: "cuda_v12" for i in v12})
    return chosen


def ollama_admits_integrated(library: str, gfx_target: str | None, igpu_enable: bool | None,
                             rules: dict[str, Any]) -> bool:  # fmt: skip
    """Ollama's discover/runner.go filterIntegratedGPUs for one integrated GPU: OLLAMA_IGPU_ENABLE set
    decides outright; unset, CUDA iGPUs (Jetson, GB10) and the ROCm targets listed in the rules pass."""
    if igpu_enable is not None:
        return igpu_enable
    if library == "CUDA":
        return True
    if library == "ROCm":
        return gfx_target in rules["integrated_rocm_gfx"]
    return False


def _nvidia_decisions(ctx: _OllamaContext, gpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CUDA runner per NVIDIA GPU, then Ollama's choice between the runners (ollama_cuda_overlap)."""
    checks = [_cuda_checks(ctx, g) for g in gpus]
    v12 = {i for i, c in enumerate(checks) if c["cuda_v12"][0]}
    v13 = {i for i, c in enumerate(checks) if c["cuda_v13"][0]}
    chosen = ollama_cuda_overlap(v12, v13)
    decisions = []
    for i, gpu in enumerate(gpus):
        if chosen.get(i) == "cuda_v13":
            decisions.append(_decision(gpu, "cuda_v13"))
            continue
        if i in v12:
            reason = None
            if i in v13:
                reason = "cuda_v12, not cuda_v13: Ollama takes the runner that covers every GPU of the host"
            elif ctx.cuda is not None and ctx.cuda >= (13, 0):
                reason = f"cuda_v12, not cuda_v13: {checks[i]['cuda_v13'][1]}"
            decisions.append(_decision(gpu, "cuda_v12", reason))
            continue
        _ok, why, fix = checks[i]["cuda_v12"]
        decisions.append(ctx.vulkan(gpu, f"CUDA: {why}", fix, integrated=bool(gpu.get("unified_memory"))))
    return decisions


def _jetson_decisions(ctx: _OllamaContext, facts: dict[str, Any], gpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    jetson = facts["jetson"]
    l4t = cat.parse_version(jetson.get("l4t"))
    l4t_major = l4t[0] if l4t else None
    jp_major = jetson.get("jetpack_major")
    if jp_major is None and jetson.get("soc") == "tegra264":
        jp_major = 7
    runner = ctx.rules["jetpack_l4t"].get(l4t_major) if l4t_major else None
    env = None
    if runner is None and jp_major in (5, 6):
        runner, env = f"jetpack{jp_major}", {"JETSON_JETPACK": str(jp_major)}
    decisions = []
    for gpu in gpus:
        cc = gpu.get("compute_capability")
        if runner:
            if cc and cc not in ctx.rules[f"{runner}_ccs"]:
                decisions.append(_decision(gpu, None, f"Ollama's {runner} runner has no kernels for compute capability "
                                           f"{cc}", "none: CPU only"))  # fmt: skip
                continue
            note = None
            if env:
                note = (f"Ollama picks its JetPack runner by L4T R35/R36 only; JETSON_JETPACK={env['JETSON_JETPACK']} "
                        "selects it (roles/ollama sets it from this fact)")  # fmt: skip
            decisions.append(_decision(gpu, runner, note, None, env))
        elif (jp_major or 0) >= 7:
            if ctx.cuda is None:
                ctx.cuda = (13, 0)  # JetPack 7 ships the CUDA 13 driver
            decisions.extend(_nvidia_decisions(ctx, [gpu]))
        else:
            what = f"JetPack {jetson.get('jetpack') or jp_major or '?'} (L4T {jetson.get('l4t') or '?'})"
            fix = ("upgrade to JetPack 5 or 6 (L4T R35 / R36)" if cc in ("7.2", "8.7")
                   else f"none: no Ollama GPU runner for compute capability {cc or '?'}; CPU only")  # fmt: skip
            decisions.append(_decision(gpu, None, f"{what}: Ollama's JetPack runners need L4T R35 or R36 and its "
                                       "CUDA 12/13 runners a CUDA 12+ driver", fix))  # fmt: skip
    return decisions


def _amd_decision(ctx: _OllamaContext, gpu: dict[str, Any]) -> dict[str, Any]:
    rules = ctx.rules
    gfx = gpu.get("gfx")
    integrated = bool(gpu.get("unified_memory"))
    if ctx.arch == "x86_64" and gfx in rules["rocm_gfx"]:
        if integrated and not ollama_admits_integrated("ROCm", gfx, None, rules):
            return _decision(gpu, None, f"integrated GPU ({gfx}): Ollama {ctx.release} drops integrated GPUs other "
                             f"than {', '.join(rules['integrated_rocm_gfx']) or 'none'} unless OLLAMA_IGPU_ENABLE=1",  # type: ignore[arg-type]
                             "set OLLAMA_IGPU_ENABLE=1 (its ROCm runner has this target)",
                             {"OLLAMA_IGPU_ENABLE": "1"})  # fmt: skip
        return _decision(gpu, "rocm")
    if ctx.arch != "x86_64":
        why = f"ROCm: Ollama ships its ROCm runner for x86_64 only, this is {ctx.arch}"
        return ctx.vulkan(gpu, why, None, integrated=integrated)
    why = f"ROCm: {gfx or 'an unknown gfx target'} is not among the ROCm targets of Ollama {ctx.release}"
    hsa = _hsa_override(gfx, rules["rocm_gfx"])  # type: ignore[arg-type]
    env = {"HSA_OVERRIDE_GFX_VERSION": hsa} if hsa else None
    fix = f"HSA_OVERRIDE_GFX_VERSION={hsa} makes ROCm treat it as a supported target (unsupported by AMD)" if hsa else None
    decision = ctx.vulkan(gpu, why, fix, integrated=integrated)
    if decision["library"] is None and env and not integrated:
        decision["env"] = {**(decision["env"] or {}), **env}
    elif decision["library"] == "vulkan" and env:
        decision["env"] = env
    return decision


LIBRARY_PREFERENCE = ("jetpack6", "jetpack5", "cuda_v12", "cuda_v13", "rocm", "vulkan")


def ollama_gpu_decisions(facts: dict[str, Any], warnings: list[str], release: str | None = None) -> list[dict[str, Any]]:
    """What Ollama (the release the fleet installs, or ``release``) does with each GPU of the host:
    one entry per ``gpus`` item with the runner library or None, why not the preferred one, and the
    fix / environment variable that would change the decision. Each exclusion is a warning."""
    rules = cat.ollama_rules(release)
    ctx = _OllamaContext(facts, rules, warnings)
    gpus = facts["gpus"]
    decisions: list[dict[str, Any]] = []
    nvidia = [g for g in gpus if g.get("vendor") == "nvidia"]
    if nvidia:
        decisions.extend(_jetson_decisions(ctx, facts, nvidia) if facts.get("jetson") else _nvidia_decisions(ctx, nvidia))
    for gpu in gpus:
        if gpu.get("vendor") == "amd":
            decisions.append(_amd_decision(ctx, gpu))
        elif gpu.get("vendor") == "apple":
            decisions.append(_decision(gpu, "metal"))
    if not rules["exact"] and decisions:
        warnings.append(f"Ollama {rules['release']}: GPU rules are modelled on 0.30.0 and later; older releases "
                        "discover GPUs differently, so ollama_gpus is approximate")  # fmt: skip
    for d in decisions:
        label = f"GPU {d['index']} {d['name']}"
        if d["library"] is None:
            warnings.append(f"Ollama {ctx.release} will not use {label}: {d['reason']}; fix: {d['fix'] or 'none'}")
        elif d["library"] == "vulkan" and d["reason"]:
            warnings.append(f"Ollama {ctx.release} runs {label} on Vulkan: {d['reason']}; fix: {d['fix'] or 'none'}")
        elif d["env"]:
            warnings.append(f"Ollama {ctx.release}: {label} needs {d['reason']}")
    return decisions


def library_for_decisions(decisions: list[dict[str, Any]]) -> str:
    """The host's ollama_library: the runner most of its used GPUs take (ties: LIBRARY_PREFERENCE
    order), 'cpu' when Ollama uses none (Apple: Metal is built into the macOS binary, also 'cpu')."""
    counts: dict[str, int] = {}
    for d in decisions:
        if d["library"] in LIBRARY_PREFERENCE:
            counts[d["library"]] = counts.get(d["library"], 0) + 1
    if not counts:
        return "cpu"
    return max(LIBRARY_PREFERENCE, key=lambda lib: (counts.get(lib, 0), -LIBRARY_PREFERENCE.index(lib)))


def choose_ollama_library(facts: dict[str, Any], warnings: list[str], release: str | None = None) -> str:
    """Which Ollama runner library the host needs: cuda_v12/cuda_v13/jetpack5/jetpack6/rocm/vulkan/cpu."""
    gpus = [dict(g) for g in facts["gpus"]]
    for i, gpu in enumerate(gpus):
        gpu.setdefault("index", i)
        gpu.setdefault("name", gpu.get("vendor", "GPU"))
    jetson = facts.get("jetson")
    if jetson and not gpus:
        name, cc, _line = cat.TEGRA_SOCS.get(jetson.get("soc") or "", ("NVIDIA Tegra GPU", None, None))
        gpus = [{"index": 0, "name": name, "vendor": "nvidia", "compute_capability": cat.cc_string(cc) if cc else None,
                 "unified_memory": True}]  # fmt: skip
    return library_for_decisions(ollama_gpu_decisions({**facts, "gpus": gpus}, warnings, release))


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
    """GPU Feature Discovery labels for the node's NVIDIA GPUs (k8s-device-plugin internal/lm, commit
    1b826acc): the same keys and values GFD writes, with the differences documented in docs/hardware.md:

    - mixed models: GFD builds one labeler per model and merges them in Go map order, so which model
      the product/count/memory/family/compute labels describe is random; we take the model with the
      most memory (lowest index on ties) and, as GFD, count the GPUs of that model;
    - gpu.memory is omitted when the GPU reports no framebuffer memory (unified memory: GB10, Thor,
      Jetson), as GFD omits it when NVML's memory info is unsupported;
    - gpu.family is GFD's getArchFamily: 'undefined' for compute capability 11.x (Thor).
    """
    nvidia_gpus = [g for g in gpus if g["vendor"] == "nvidia"]
    if not nvidia_gpus:
        return {}
    primary = sorted(nvidia_gpus, key=lambda g: (-(g["memory_total_mb"] or 0), g["index"]))[0]
    labels = {
        "nvidia.com/gpu.product": cat.gfd_sanitise(primary["name"]),
        "nvidia.com/gpu.count": str(sum(1 for g in nvidia_gpus if g["name"] == primary["name"])),
    }
    if primary["memory_total_mb"] and not primary["unified_memory"]:
        labels["nvidia.com/gpu.memory"] = str(primary["memory_total_mb"])
    cc = cat.parse_cc(primary["compute_capability"])
    if cc:
        labels["nvidia.com/gpu.family"] = cat.gfd_family(cc) or "undefined"
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


def nvidia_driver_present(root: Sysroot) -> bool:
    """Whether NVML could start: the NVIDIA kernel driver is loaded (/proc/driver/nvidia, /dev/nvidiactl),
    WSL's GPU paravirtualisation (/dev/dxg), or a Jetson (nvgpu; NVML where JetPack ships it)."""
    return any(
        root.exists(path)
        for path in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/etc/nv_tegra_release")
    ) or "nvidia,tegra" in (root.read("/proc/device-tree/compatible") or "")


def detect_platform(root: Sysroot) -> str:
    """'Darwin' when the sysroot is a macOS system (SystemVersion.plist), else 'Linux'."""
    if root.exists("/System/Library/CoreServices/SystemVersion.plist"):
        return "Darwin"
    return "Linux"


# --------------------------------------------------------------------------- model disk

DEFAULT_MODELS_PATH = "/usr/share/ollama/.ollama/models"  # OLLAMA_MODELS of roles/ollama (pmoves_ollama_models_dir)


def probe_models_disk(root: Sysroot, models_path: str, statvfs: Callable[[str], Any] = os.statvfs) -> dict[str, Any] | None:
    """Free space of the file system holding Ollama's model store and the store's own size (blobs).

    None while the store does not exist (Ollama not installed yet): the planner then has no disk limit.
    The planner's limit is ``free_mb + store_mb`` (what the node could hold with every model it holds now).
    """
    path = root.path(models_path)
    if not os.path.isdir(path):
        return None
    try:
        stat = statvfs(path)
    except OSError as exc:
        root.warnings.append(f"cannot stat {models_path}: {exc.strerror or exc}; model disk not measured")
        return None
    store = 0
    blobs = os.path.join(path, "blobs")
    try:
        with os.scandir(blobs) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    store += entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        pass
    except OSError as exc:
        root.warnings.append(f"cannot list {models_path}/blobs: {exc.strerror or exc}; store size counted as 0")
    return {"path": models_path, "free_mb": int(stat.f_bavail * stat.f_frsize // 2**20),
            "total_mb": int(stat.f_blocks * stat.f_frsize // 2**20), "store_mb": int(store // 2**20)}


# --------------------------------------------------------------------------- orchestration


def discover(
    sysroot: str = "/",
    use_nvml: bool = True,
    runner: CommandRunner | None = None,
    nvml_loader: Callable[[], Any] | None = None,
    profiles: dict[str, dict[str, Any]] | None = None,
    ollama_version: str | None = None,
    models_path: str | None = None,
) -> dict[str, Any]:
    """Probe the machine below ``sysroot`` and return the ``pmoves_hardware`` fact; Ollama's decisions
    follow ``ollama_version`` (default: the release roles/ollama installs)."""
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
        "ollama_gpus": [],
        "ollama_release": None,
        "labels": {},
        "warnings": warnings,
        "power_mode": None,
        "apple": None,
        "amd": None,
        "unusable_gpus": [],
        "hardware_profile": None,
        "summary": "",
        "models_disk": None,
    }

    if system == "Darwin":
        _discover_darwin(facts, run, warnings)
    else:
        _discover_linux(facts, root, run, use_nvml, nvml_loader, sysroot, warnings)

    ccs = [cat.parse_cc(g["compute_capability"]) for g in facts["gpus"] if g["vendor"] == "nvidia"]
    facts["torch_cuda_arch_list"] = cat.torch_cuda_arch_list([cc for cc in ccs if cc])
    facts["node_class"], facts["accelerator"] = classify(facts)
    facts["ollama_gpus"] = ollama_gpu_decisions(facts, warnings, ollama_version)
    facts["ollama_library"] = library_for_decisions(facts["ollama_gpus"])
    facts["ollama_release"] = cat.ollama_rules(ollama_version)["release"]
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
    if models_path:
        facts["models_disk"] = probe_models_disk(root, models_path)
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
    if use_nvml and nvml_loader is None and not nvidia_driver_present(root):
        # loading libnvidia-ml only to hear "driver not loaded" costs more than the rest of discovery
        warnings.append(
            "NVML: no NVIDIA kernel driver (/proc/driver/nvidia, /dev/nvidiactl, /dev/dxg absent, not a Jetson); "
            "probe skipped, trying nvidia-smi"
        )
    elif use_nvml:
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
            for k in ("l4t", "jetpack", "model", "soc", "power_mode", "l4t_source", "jetpack_major", "compatible",
                      "module", "part_number")
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
