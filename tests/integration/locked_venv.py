"""Venvs built from the hash-locked requirements files, cached under .cache/venvs.

One venv per (lock, Python): `pip install --no-deps --require-hashes -r LOCK` into a clean venv,
then `pip check`. The venv records the sha256 of the lock it was built from; a venv of an older
lock (or a half-built one) is removed and built again. test_locks.py and test_gateway_failover.py
share the LiteLLM venv, so its install (minutes) happens once per lock change.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "venvs"
STAMP = ".pmoves-lock.json"

LOCKS = {
    "agent": REPO / "roles" / "mesh" / "files" / "requirements-agent.txt",
    "litellm": REPO / "roles" / "gateway" / "files" / "requirements-litellm.txt",
    "controller": REPO / "requirements.txt",
}


def lockcheck():
    """scripts/lockcheck.py as a module."""
    name = "pmoves_lockcheck"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "lockcheck.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look the module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def python_version(python: str | Path) -> str:
    out = subprocess.run([str(python), "-c", "import platform; print(platform.python_version())"],
                         check=True, capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


class VenvBuildError(RuntimeError):
    pass


def _run(argv: list[str], timeout: float) -> None:
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise VenvBuildError(f"{' '.join(argv)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


@contextlib.contextmanager
def _exclusive(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_locked_venv(lock: Path, python: str | Path = sys.executable, dest: Path | None = None,
                       pip_first: Path | None = None, timeout: float = 1800) -> tuple[Path, dict]:
    """The venv of `lock` for `python` (built now when missing or stale) and its stamp.

    pip_first: a lock holding pip, installed (--no-deps --require-hashes) before the lock itself,
    as `make venv` does. The stamp holds the lock's sha256, the Python version and the build time.
    """
    lock = Path(lock)
    version = python_version(python)
    if dest is None:
        dest = CACHE / f"{lock.stem}-py{'.'.join(version.split('.')[:2])}"
    want = {"lock": str(lock.relative_to(REPO)) if lock.is_relative_to(REPO) else str(lock),
            "sha256": sha256(lock), "python": version,
            "pip_first": sha256(pip_first) if pip_first else None}
    with _exclusive(dest.parent / f".{dest.name}.lock"):
        stamp_file = dest / STAMP
        if stamp_file.exists():
            stamp = json.loads(stamp_file.read_text())
            if {k: stamp.get(k) for k in want} == want:
                return dest, stamp
        shutil.rmtree(dest, ignore_errors=True)
        start = time.monotonic()
        try:
            _run([str(python), "-m", "venv", str(dest)], 300)
            pip = [str(dest / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                   "--no-deps", "--require-hashes", "-r"]
            if pip_first:
                _run([*pip, str(pip_first)], 600)
            _run([*pip, str(lock)], timeout)
            _run([str(dest / "bin" / "python"), "-m", "pip", "check"], 300)
        except (VenvBuildError, subprocess.TimeoutExpired):
            shutil.rmtree(dest, ignore_errors=True)
            raise
        stamp = dict(want, build_seconds=round(time.monotonic() - start, 1), pip_check="passed")
        stamp_file.write_text(json.dumps(stamp, indent=1) + "\n")
        return dest, stamp


def find_python(minor: str) -> str | None:
    """A working interpreter for Python <minor> ("3.10"): under pyenv's versions or on PATH.

    A pyenv shim on PATH exists for every installed version but fails unless that version is
    selected, so each candidate is run once.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(root.glob(f"{minor}.*/bin/python{minor}"), reverse=True)]
    candidates.append(shutil.which(f"python{minor}") or "")
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 check=False, capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == minor:
            return candidate
    return None
