"""Checks for the hash-locked requirements files (see scripts/lock.sh).

    scripts/lockcheck.py lint LOCK...              every entry pinned with == and --hash
    scripts/lockcheck.py venv --python PY LOCK     the venv of PY holds exactly the lock's entries for
                                                   that Python, and the lock is closed: every
                                                   Requires-Dist of every entry (its extras included,
                                                   markers evaluated for PY) is itself in the lock

`pip check` proves the base requirements of what is installed but not those of extras (it does not
know that litellm[proxy] was meant): the closure check does. Needs `packaging` in the Python that
runs this file, nothing in the checked venv. Tests import it (tests/unit/test_locks.py,
tests/integration/test_locks.py).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# What a venv brings by itself (ensurepip): allowed in a venv without being in its lock.
VENV_SEED = frozenset({"pip", "setuptools"})

# The marker environment of an interpreter, computed by that interpreter (as packaging does).
_ENV_SCRIPT = r"""
import json, os, platform, sys, sysconfig
def fmt(info):
    version = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
print(json.dumps({"env": env, "paths": paths}))
"""


@dataclass(frozen=True)
class Entry:
    """One requirement of a lock: `name[extras]==version ; marker --hash=...`."""

    name: str  # canonical
    extras: frozenset[str]
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]
    text: str

    def applies(self, env: dict[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(dict(env, extra=""))


def logical_lines(text: str) -> list[str]:
    """Requirement lines with continuations joined and comments removed."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(" ".join(current.split()))
        current = ""
    if current.strip():
        lines.append(" ".join(current.split()))
    return lines


def parse_lock(path: Path) -> tuple[list[Entry], list[str]]:
    """The entries of a lock and the problems that make it not a strict hash lock."""
    entries, problems = [], []
    for line in logical_lines(Path(path).read_text()):
        if line.startswith("-"):
            problems.append(f"{path}: option line not allowed in a lock: {line}")
            continue
        parts = line.split(" --")
        spec, options = parts[0], parts[1:]
        hashes = tuple(o.split("=", 1)[1] for o in options if o.startswith("hash=sha256:"))
        others = [o for o in options if not o.startswith("hash=sha256:")]
        try:
            req = Requirement(spec)
        except ValueError as err:
            problems.append(f"{path}: cannot parse {spec!r}: {err}")
            continue
        pins = list(req.specifier)
        if req.url or len(pins) != 1 or pins[0].operator != "==" or "*" in pins[0].version:
            problems.append(f"{path}: {spec!r} is not pinned with a single ==")
            continue
        if not hashes:
            problems.append(f"{path}: {req.name}=={pins[0].version} has no --hash=sha256")
        if others:
            problems.append(f"{path}: {req.name}: unexpected options {others}")
        entries.append(Entry(canonicalize_name(req.name), frozenset(req.extras), pins[0].version, req.marker,
                             hashes, line))
    if not entries:
        problems.append(f"{path}: no requirement in the lock")
    return entries, problems


def interpreter(python: str | Path) -> dict:
    """{"env": marker environment, "paths": [site-packages dirs]} of an interpreter."""
    out = subprocess.run([str(python), "-c", _ENV_SCRIPT], check=True, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


def applicable(entries: list[Entry], env: dict[str, str]) -> tuple[dict[str, Entry], list[str]]:
    """The entries whose markers hold in env, by name; two for one name is a problem."""
    chosen: dict[str, Entry] = {}
    problems = []
    for entry in entries:
        if not entry.applies(env):
            continue
        if entry.name in chosen:
            problems.append(f"{entry.name}: two entries apply for Python {env['python_full_version']}: "
                            f"{chosen[entry.name].version} and {entry.version}")
        chosen[entry.name] = entry
    return chosen, problems


def closure_problems(chosen: dict[str, Entry], requires: dict[str, list[str]], env: dict[str, str]) -> list[str]:
    """Every requirement of every chosen entry (with the entry's extras) is a chosen entry that satisfies it.

    requires: canonical name -> that distribution's Requires-Dist strings.
    """
    problems = []
    for name, entry in sorted(chosen.items()):
        for text in requires.get(name, []):
            req = Requirement(text)
            wanted_for = [extra for extra in ("", *sorted(entry.extras))
                          if req.marker is None or req.marker.evaluate(dict(env, extra=extra))]
            if not wanted_for:
                continue
            why = f"{entry.name}{'[' + ','.join(sorted(entry.extras)) + ']' if entry.extras else ''}=={entry.version}"
            if wanted_for != [""]:
                why += f" (extra {'/'.join(e for e in wanted_for if e) or 'none'})"
            dep = chosen.get(canonicalize_name(req.name))
            if dep is None:
                problems.append(f"{why} requires {text!r}: not in the lock for Python {env['python_full_version']}")
                continue
            if req.specifier and not req.specifier.contains(Version(dep.version), prereleases=True):
                problems.append(f"{why} requires {text!r}: the lock pins {dep.name}=={dep.version}")
            missing = {canonicalize_name(e) for e in req.extras} - {canonicalize_name(e) for e in dep.extras}
            if missing:
                problems.append(f"{why} requires {text!r}: the lock lists {dep.name} without extra(s) "
                                f"{sorted(missing)}, so their dependencies are not checked")
    return problems


def venv_problems(lock: Path, python: str | Path, allow_extra: frozenset[str] = VENV_SEED) -> list[str]:
    """What is wrong with the venv of `python` as an install of `lock` (--no-deps), and with the lock's closure."""
    entries, problems = parse_lock(lock)
    info = interpreter(python)
    env = info["env"]
    chosen, more = applicable(entries, env)
    problems += more
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=info["paths"])}
    for name, entry in sorted(chosen.items()):
        dist = installed.get(name)
        if dist is None:
            problems.append(f"{name}=={entry.version} is in the lock for this Python but not installed")
        elif Version(dist.version) != Version(entry.version):
            problems.append(f"{name}: the lock pins {entry.version}, {dist.version} is installed")
    for name, dist in sorted(installed.items()):
        if name not in chosen and name not in allow_extra:
            problems.append(f"{name}=={dist.version} is installed but not in the lock")
    requires = {name: list(dist.requires or []) for name, dist in installed.items()}
    problems += closure_problems(chosen, requires, env)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lint = sub.add_parser("lint", help="every entry pinned with == and --hash")
    lint.add_argument("locks", nargs="+", type=Path)
    venv = sub.add_parser("venv", help="the venv of --python is exactly the lock, and the lock is closed")
    venv.add_argument("--python", required=True)
    venv.add_argument("--allow", action="append", default=[], help="installed package allowed outside the lock")
    venv.add_argument("lock", type=Path)
    args = parser.parse_args(argv)
    if args.command == "lint":
        problems = [p for lock in args.locks for p in parse_lock(lock)[1]]
    else:
        allow = VENV_SEED | {canonicalize_name(a) for a in args.allow}
        problems = venv_problems(args.lock, args.python, allow)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
