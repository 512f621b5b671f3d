# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Jetson power modes (nvpmodel): parse what the board says, resolve a wanted mode, decide (pure).

Mode ids differ per board (AGX Orin: MAXN=0, 15W=1, 30W=2, 50W=3; Orin NX 16GB: MAXN=0, 10W=1,
15W=2, 25W=3; Thor: MAXN=0 ...), so names are resolved from the board's own
``/etc/nvpmodel.conf`` (``< POWER_MODEL ID=2 NAME=MODE_30W >``); the built-in table below is
only used when that file cannot be read. A number is taken as an id as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "BUILTIN_MODES",
    "PowerModeError",
    "normalise_mode_name",
    "parse_nvpmodel_conf",
    "parse_nvpmodel_query",
    "reboot_required",
    "resolve_mode",
]

# Fallback name -> id per SoC/board family (from NVIDIA's Jetson Linux developer guides).
BUILTIN_MODES: dict[str, dict[str, int]] = {
    "agx-orin": {"MAXN": 0, "15W": 1, "30W": 2, "50W": 3},
    "orin-nx": {"MAXN": 0, "10W": 1, "15W": 2, "25W": 3},
    "orin-nano": {"15W": 0, "7W": 1, "MAXN_SUPER": 2},
    "agx-thor": {"MAXN": 0, "120W": 1, "90W": 2, "70W": 3, "40W": 4},
}


class PowerModeError(ValueError):
    """A wanted mode the board does not have."""


def normalise_mode_name(name: str) -> str:
    """'mode_30w' / '30W' / 'MODE_30W' -> '30W'; 'maxn' -> 'MAXN'."""
    text = str(name).strip().upper().replace(" ", "_")
    return re.sub(r"^MODE_", "", text)


def parse_nvpmodel_query(text: str) -> tuple[str | None, int | None]:
    """``nvpmodel -q`` -> (name, id): 'NV Power Mode: MAXN' then the id on its own line."""
    name = None
    mode_id = None
    for line in (text or "").splitlines():
        line = line.strip()
        match = re.match(r"NV Power Mode\s*:\s*(\S.*)$", line)
        if match:
            name = match.group(1).strip()
        elif re.fullmatch(r"\d+", line) and name is not None and mode_id is None:
            mode_id = int(line)
    return name, mode_id


def parse_nvpmodel_conf(text: str) -> dict[str, int]:
    """Normalised mode name -> id from ``/etc/nvpmodel.conf`` (``< POWER_MODEL ID=.. NAME=.. >``)."""
    modes: dict[str, int] = {}
    for match in re.finditer(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", text or ""):
        modes[normalise_mode_name(match.group(2))] = int(match.group(1))
    return modes


def board_family(model: str | None, soc: str | None) -> str | None:
    text = (model or "").lower()
    if soc == "tegra264" or "thor" in text:
        return "agx-thor"
    if "orin nano" in text:
        return "orin-nano"
    if "orin nx" in text:
        return "orin-nx"
    if "orin" in text or soc == "tegra234":
        return "agx-orin"
    return None


def resolve_mode(wanted: str | int, conf_modes: Mapping[str, int] | None, *, model: str | None = None,
                 soc: str | None = None) -> tuple[int, str]:
    """(id, name) for a wanted mode name or id; the board's conf first, then the built-in table."""
    table = dict(conf_modes or {}) or BUILTIN_MODES.get(board_family(model, soc) or "", {})
    if isinstance(wanted, int) or str(wanted).strip().isdigit():
        mode_id = int(wanted)
        names = [n for n, i in table.items() if i == mode_id]
        if table and not names:
            raise PowerModeError(f"power mode id {mode_id} is not defined on this board "
                                 f"(modes: {_describe(table)})")
        return mode_id, names[0] if names else str(mode_id)
    name = normalise_mode_name(str(wanted))
    if name in table:
        return table[name], name
    raise PowerModeError(f"power mode {wanted!r} is not defined on this board ({model or soc or 'unknown'}; "
                         f"modes: {_describe(table) or 'none known: give the numeric id'})")


def _describe(table: Mapping[str, int]) -> str:
    return ", ".join(f"{n}={i}" for n, i in sorted(table.items(), key=lambda kv: kv[1]))


def reboot_required(output: str) -> bool:
    """nvpmodel asks for a reboot when the mode change needs one (e.g. leaving MAXN_SUPER)."""
    return re.search(r"reboot", output or "", re.IGNORECASE) is not None
