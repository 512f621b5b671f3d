# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""What the Ollama role needs to know about a node before it changes anything, read in one module run.

Pure functions over injected readers (command runner, file reader, group lookup, resolver, HTTP getter), so the
whole probe is unit-tested without a node. plugins/modules/ollama_node_info.py wires in the real ones.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Sequence

_CLIENT_VERSION = re.compile(r"client version is (\S+)")
_SERVER_VERSION = re.compile(r"ollama version is (\S+)")
_IP_ADDR = re.compile(r"\sinet6?\s+([^/\s]+)/")


def installed_version(version_output: str) -> str:
    """The installed client's version from ``ollama --version`` ("" when none).

    "Warning: client version is X" names the binary when the running server differs or is down, so it wins over
    "ollama version is Y" (the server's).
    """
    for pattern in (_CLIENT_VERSION, _SERVER_VERSION):
        match = pattern.search(version_output or "")
        if match:
            return match.group(1)
    return ""


def addresses_from_ip(output: str) -> list[str]:
    """Addresses (IPv4 and IPv6, no prefix length) from ``ip -o addr show``, in order, each once."""
    seen: list[str] = []
    for line in (output or "").splitlines():
        match = _IP_ADDR.search(line)
        if match and match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def unique(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def link_state(path: str, exists: Callable[[str], bool], read_link: Callable[[str], str | None] | None) -> dict[str, Any]:
    """What ``path`` is now: {exists, islnk, target} (target: where a symlink points, null for anything else).

    The role's rollback target before it swaps a new release in: the release a symlink names, or a plain-file install.
    """
    target = read_link(path) if read_link else None
    return {"exists": bool(exists(path)) or target is not None, "islnk": target is not None, "target": target}


def node_info(
    *,
    check_mode: bool,
    binary: str | None,
    api_url: str | None,
    groups: Sequence[str],
    read: Sequence[str],
    stat: Sequence[str],
    resolve: str | None,
    addresses: bool,
    run: Callable[[list[str], dict[str, str]], tuple[int, str, str]],
    read_file: Callable[[str], str | None],
    exists: Callable[[str], bool],
    group_exists: Callable[[str], bool],
    resolve_ipv4: Callable[[str], list[str]],
    http_get: Callable[[str], tuple[int, str]],
    links: Sequence[str] = (),
    read_link: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """Everything the role's rerun used to probe with one task each, as one result (reads only)."""
    result: dict[str, Any] = {"check_mode": bool(check_mode)}

    version_output = ""
    if binary and exists(binary):
        env = {"OLLAMA_HOST": api_url} if api_url else {}
        _rc, out, err = run([binary, "--version"], env)
        version_output = (out or "") + (err or "")
    result["version_output"] = version_output
    result["version"] = installed_version(version_output)

    result["groups"] = [name for name in unique(groups) if group_exists(name)]
    result["files"] = {path: read_file(path) for path in unique(read)}
    result["paths"] = {path: bool(exists(path)) for path in unique(stat)}
    result["links"] = {path: link_state(path, exists, read_link) for path in unique(links)}
    result["resolved"] = unique(resolve_ipv4(resolve)) if resolve else None

    result["addresses"] = None
    if addresses:
        rc, out, _err = run(["ip", "-o", "addr", "show"], {})
        result["addresses"] = addresses_from_ip(out) if rc == 0 else None

    api: dict[str, Any] = {"status": -1, "version": None}
    if api_url:
        status, body = http_get(api_url.rstrip("/") + "/api/version")
        api["status"] = status
        if status == 200:
            try:
                api["version"] = json.loads(body).get("version")
            except (ValueError, AttributeError):
                api["version"] = None
    result["api"] = api
    return result
