# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""NVIDIA Container Toolkit: what needs doing on a host, decided from what is there (pure).

* ``nvidia-ctk`` must be >= 1.17.8: older releases are open to CVE-2025-23266 (NVIDIAScape,
  container escape through the createContainer hook) and CVE-2025-23267 (ldconfig hook link
  following); a host with an older toolkit is refused, never configured.
* ``nvidia-ctk runtime configure --runtime=docker|containerd`` only when the engine's config
  does not already declare the ``nvidia`` runtime (read first, so no needless daemon restart).
* The CDI spec (``/etc/cdi/nvidia.yaml``, used by podman and by docker's CDI mode) is
  regenerated when it is missing or the driver changed since it was generated; the driver
  version it was made for is recorded in a state file (``/etc/pmoves/nvidia-runtime.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MIN_CTK_VERSION",
    "RuntimePlan",
    "cdi_needs_regeneration",
    "containerd_has_nvidia",
    "docker_has_nvidia",
    "parse_ctk_version",
    "plan_runtime",
    "version_at_least",
]

MIN_CTK_VERSION = "1.17.8"
CVE_NOTE = "CVE-2025-23266 / CVE-2025-23267"


def parse_ctk_version(text: str) -> str | None:
    """``nvidia-ctk --version`` -> '1.17.8' ('NVIDIA Container Toolkit CLI version 1.17.8')."""
    match = re.search(r"version\s+v?(\d+\.\d+\.\d+(?:[-~.][0-9A-Za-z.]+)?)", text or "", re.IGNORECASE)
    return match.group(1) if match else None


def _numbers(version: str) -> tuple[tuple[int, ...], bool]:
    """(x, y, z, is a pre-release): '1.18.0-rc.1' sorts before '1.18.0'."""
    match = re.match(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(.*)$", (version or "").strip())
    if not match:
        return (0, 0, 0), True
    nums = tuple(int(x or 0) for x in match.groups()[:3])
    return nums, bool(re.search(r"rc|alpha|beta|pre", match.group(4), re.IGNORECASE))


def version_at_least(version: str, minimum: str = MIN_CTK_VERSION) -> bool:
    """Numeric comparison of x.y.z; a pre-release of the minimum is not enough."""
    have, have_pre = _numbers(version)
    want = _numbers(minimum)[0]
    return have > want or (have == want and not have_pre)


def docker_has_nvidia(daemon_json: str | None) -> bool:
    """``/etc/docker/daemon.json`` declares the nvidia runtime."""
    if not daemon_json or not daemon_json.strip():
        return False
    try:
        data = json.loads(daemon_json)
    except ValueError:
        return False
    return isinstance(data, dict) and "nvidia" in (data.get("runtimes") or {})


def containerd_has_nvidia(config_toml: str | None) -> bool:
    """``/etc/containerd/config.toml`` (v2 or v3 layout) has a ``runtimes.nvidia`` table."""
    if not config_toml:
        return False
    return re.search(r'^\s*\[[^\]]*\.runtimes\.(?:"nvidia"|nvidia)\]\s*$', config_toml, re.MULTILINE) is not None


def cdi_needs_regeneration(spec_exists: bool, state: Mapping[str, Any] | None, driver_version: str | None,
                           ctk_version: str | None) -> str | None:
    """Why the CDI spec must be (re)generated, or None when it is current."""
    if not spec_exists:
        return "no CDI spec yet"
    if not state:
        return "no record of the driver the CDI spec was generated for"
    if driver_version and state.get("driver_version") != driver_version:
        return f"driver changed ({state.get('driver_version')} -> {driver_version})"
    if ctk_version and state.get("ctk_version") != ctk_version:
        return f"toolkit changed ({state.get('ctk_version')} -> {ctk_version})"
    return None


@dataclass
class RuntimePlan:
    ctk_version: str | None
    ctk_ok: bool
    configure: list[str] = field(default_factory=list)  # runtimes to `nvidia-ctk runtime configure`
    cdi_reason: str | None = None
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ctk_version": self.ctk_version, "ctk_ok": self.ctk_ok, "configure": self.configure,
                "cdi_regenerate": self.cdi_reason is not None, "cdi_reason": self.cdi_reason,
                "messages": self.messages}


def plan_runtime(ctk_version_text: str | None, engines: Mapping[str, str | None], *, cdi_spec_exists: bool,
                 state: Mapping[str, Any] | None, driver_version: str | None,
                 minimum: str = MIN_CTK_VERSION) -> RuntimePlan:
    """Decide from the probes.

    ``engines``: engine name (docker | containerd | podman) -> its config text (None: no file yet);
    only engines installed on the host are given.
    """
    version = parse_ctk_version(ctk_version_text or "")
    if version is None:
        return RuntimePlan(None, False, messages=["nvidia-ctk not found: install nvidia-container-toolkit "
                                                  f">= {minimum}"])
    if not version_at_least(version, minimum):
        return RuntimePlan(version, False, messages=[
            f"nvidia-ctk {version} is older than {minimum} ({CVE_NOTE}): upgrade nvidia-container-toolkit"])
    plan = RuntimePlan(version, True)
    if "docker" in engines and not docker_has_nvidia(engines["docker"]):
        plan.configure.append("docker")
    if "containerd" in engines and not containerd_has_nvidia(engines["containerd"]):
        plan.configure.append("containerd")
    plan.cdi_reason = cdi_needs_regeneration(cdi_spec_exists, state, driver_version, version)
    if not engines:
        plan.messages.append("no container engine found (docker, containerd, podman): only the CDI spec is kept")
    return plan
