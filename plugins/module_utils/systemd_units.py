# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""The systemd services of a node from two ``systemctl`` listings, as ``ansible.builtin.service_facts`` reports them.

service_facts also runs every other service manager it finds (``service --status-all`` runs the status action of
each SysV script): seconds per node on every run. The verify play only wants systemd units, so it runs
``systemctl list-units --type service --all --plain --no-legend --no-pager`` and
``systemctl list-unit-files --type service --no-legend --no-pager`` and reads them here, with service_facts'
rules: state ``running`` when the SUB column says so, else ``stopped``; status the ACTIVE column, a bad state
(not-found, masked, failed) found in any column winning; the unit file's state (enabled, disabled, static...)
replacing a status that is not bad; a unit file that is not loaded is ``inactive`` (what service_facts
asks ``systemctl show`` for, once per unit), a template ``unknown``. One difference: an alias that is not loaded
under its own name (redis.service for redis-server.service) is ``unknown`` here, where service_facts gives its
target's state; the units the report shows are never aliases.
"""

from __future__ import annotations

import re
from typing import Any

BAD_STATES = frozenset(["not-found", "masked", "failed"])


def parse_list_units(text: str) -> dict[str, dict[str, Any]]:
    """``systemctl list-units --type service --all --plain``: UNIT LOAD ACTIVE SUB DESCRIPTION per line."""
    services: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(".service"):
            continue
        status = next((bad for bad in sorted(BAD_STATES) if bad in fields[1:4]), fields[2])
        services[fields[0]] = {"name": fields[0], "state": "running" if fields[3] == "running" else "stopped",
                               "status": status, "source": "systemd"}
    return services


def merge_unit_files(services: dict[str, dict[str, Any]], text: str) -> dict[str, dict[str, Any]]:
    """``systemctl list-unit-files --type service``: UNIT FILE STATE [PRESET]; adds units that are not loaded."""
    merged = {name: dict(entry) for name, entry in services.items()}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[0].endswith(".service"):
            continue
        name, status = fields[0], fields[1]
        if name not in merged:
            # Not loaded: inactive, as `systemctl show` (which service_facts asks once per such unit) says; a template
            # (name@.service) has no state; an alias has its target's, which this listing does not name.
            state = "unknown" if name.endswith("@.service") or status == "alias" else "inactive"
            merged[name] = {"name": name, "state": state, "status": status, "source": "systemd"}
        elif merged[name]["status"] not in BAD_STATES:
            merged[name]["status"] = status
    return merged


def systemd_services(list_units: str, unit_files: str, pattern: str = "") -> list[dict[str, Any]]:
    """[{name, state, status}] of the units whose name matches `pattern` (re.search; empty: all), sorted by name."""
    services = merge_unit_files(parse_list_units(list_units or ""), unit_files or "")
    wanted = re.compile(pattern) if pattern else None
    return [{key: entry[key] for key in ("name", "state", "status")}
            for name, entry in sorted(services.items()) if wanted is None or wanted.search(name)]
