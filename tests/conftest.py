"""Shared pytest fixtures: paths into the repository, and the node Pythons."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"

# Node-side code (modules, module_utils, files shipped to nodes) runs on the managed node's Python:
# 3.8 (JetPack 5 = Ubuntu 20.04) through 3.13. The controller runs 3.11+ (ansible-core 2.19).
OLDEST_NODE_PYTHON = "3.8"
NEWEST_NODE_PYTHON = "3.13"


@functools.cache
def find_python(version: str) -> str | None:
    """pythonX.Y on PATH when it runs (a pyenv shim may not), else the newest pyenv build of X.Y."""
    candidates = [shutil.which(f"python{version}")]
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if versions.is_dir():
        builds = [p for p in versions.iterdir() if re.fullmatch(rf"{re.escape(version)}\.\d+", p.name)]
        builds.sort(key=lambda p: int(p.name.rsplit(".", 1)[1]), reverse=True)
        candidates += [str(p / "bin" / f"python{version}") for p in builds]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run([candidate, "-c", ""], capture_output=True, check=False, timeout=60)
            if probe.returncode == 0:
                return candidate
    return None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def node_python() -> Callable[[str], str]:
    """node_python("3.8") -> path of that interpreter; skips the test, saying how to get it, when there is none."""

    def get(version: str) -> str:
        path = find_python(version)
        if path is None:
            pytest.skip(
                f"no python{version} on PATH nor under ~/.pyenv/versions: `pyenv install {version}` "
                f"(node-side code must run on Python {OLDEST_NODE_PYTHON}-{NEWEST_NODE_PYTHON})"
            )
        return path

    return get
