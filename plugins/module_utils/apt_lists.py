# Copyright: pmoves.fleet developers
# Apache License 2.0 (see LICENSE)
"""When must a host's apt package lists be refreshed before installing packages?

``apt: update_cache: true, cache_valid_time: 3600`` judges the lists by the age of their
directory, so a host whose lists are EMPTY but recent (a fresh cloud image, a container built
minutes ago, a restored snapshot) is never refreshed and the install fails with "No package
matching 'x' is available". The rule here is by content instead: refresh when no list is there,
or when a wanted package that is not installed has no install candidate, whatever the age.

Pure functions (node side, Python 3.8+): the module runs the commands.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

# What `apt-get update` leaves in /var/lib/apt/lists for a source: ..._Packages (maybe compressed).
_PACKAGES_FILE = re.compile(r"_Packages(\.(gz|xz|lz4|bz2|zst))?$")
_POLICY_HEADER = re.compile(r"^(\S+):$")
_POLICY_FIELD = re.compile(r"^\s+(Installed|Candidate):\s*(\S+)")


def lists_present(names: Iterable[str]) -> bool:
    """True when the lists directory holds at least one source's package index."""
    return any(_PACKAGES_FILE.search(name) for name in names)


def parse_policy(text: str) -> dict[str, dict[str, str | None]]:
    """`LANG=C apt-cache policy p1 p2 ...` -> {package: {installed, candidate}} (None for "(none)").

    Packages apt does not know at all do not appear (apt prints "Unable to locate" on stderr).
    """
    result: dict[str, dict[str, str | None]] = {}
    current: str | None = None
    for line in text.splitlines():
        header = _POLICY_HEADER.match(line)
        if header:
            current = header.group(1)
            result[current] = {"installed": None, "candidate": None}
            continue
        field = _POLICY_FIELD.match(line)
        if field and current is not None:
            value = None if field.group(2) == "(none)" else field.group(2)
            result[current][field.group(1).lower()] = value
    return result


def _base_name(package: str) -> str:
    """`nginx=1.22*` or `foo:arm64` -> the name apt-cache policy prints (arch kept)."""
    return re.split(r"[=<>]", package, maxsplit=1)[0]


def uninstallable(packages: Iterable[str], policy: dict[str, dict[str, str | None]]) -> list[str]:
    """Wanted packages that are not installed and have no candidate: installing them would fail."""
    missing = []
    for package in packages:
        name = _base_name(package)
        entry = policy.get(name) or policy.get(name.split(":", 1)[0])
        if entry is None or (entry["installed"] is None and entry["candidate"] is None):
            missing.append(package)
    return missing


def not_installed(packages: Iterable[str], policy: dict[str, dict[str, str | None]]) -> list[str]:
    """Wanted packages an install task still has to look at: not installed, or pinned to a version (``=``, ``<``,
    ``>``: which version is installed is the install task's call). An empty list means the install would change
    nothing, so the caller can skip it (one package-manager call less on every rerun).
    """
    pending = []
    for package in packages:
        name = _base_name(package)
        entry = policy.get(name) or policy.get(name.split(":", 1)[0])
        if name != package or entry is None or entry["installed"] is None:
            pending.append(package)
    return pending


def refresh_reason(list_names: Iterable[str], packages: list[str],
                   policy: dict[str, dict[str, str | None]] | None) -> tuple[str | None, list[str]]:
    """(why the lists must be refreshed or None, the packages without a candidate).

    Wanted packages that are already installed need no list at all: nothing is refreshed for them.
    """
    missing = uninstallable(packages, policy or {})
    if not missing:
        return None, []
    if not lists_present(list_names):
        return "the package lists are empty (never refreshed on this host)", missing
    return "no install candidate for: " + ", ".join(missing), missing


def list_names(lists_dir: str) -> list[str]:
    """Names in the lists directory; [] when it does not exist."""
    try:
        return sorted(os.listdir(lists_dir))
    except OSError:
        return []
