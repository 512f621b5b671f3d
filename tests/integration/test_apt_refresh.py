"""pmoves.fleet.apt_refresh on a real Debian container whose package lists are empty but recent.

That is the state of a freshly debootstrapped image, a new cloud image or a restored snapshot, and
the one where `apt: update_cache: true, cache_valid_time: 3600` never refreshes (the directory is
minutes old) and every install fails. Driven through the real `ansible` CLI over the podman
connection; skipped without podman or the locally built base image (tests/images/build.sh).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
IMAGE = "localhost/pmoves-molecule:bookworm"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=check)


@contextlib.contextmanager
def throwaway_node(prefix: str) -> Iterator[str]:
    """A running container of the base image (`sleep infinity`) named `<prefix>-<random>`, removed afterwards (also
    after a test stopped it); skips the test when the image is not built."""
    if sh("podman", "image", "exists", IMAGE, check=False).returncode:
        pytest.skip(f"{IMAGE} is not built (tests/images/build.sh)")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    sh("podman", "run", "-d", "--name", name, IMAGE, "sleep", "infinity")
    try:
        yield name
    finally:
        sh("podman", "rm", "-f", "-t", "0", name, check=False)


@pytest.fixture(scope="module")
def node():
    with throwaway_node("pmoves-apt-test") as name:
        # Empty AND recent: the age rule would call these lists fresh.
        sh("podman", "exec", name, "sh", "-c", "rm -rf /var/lib/apt/lists/*_Packages* && touch /var/lib/apt/lists")
        yield name


def ansible(tmp_path: Path, node: str, module: str, args: str) -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    proc = subprocess.run(
        [str(VENV_BIN / "ansible"), node, "-i", f"{node},", "-c", "containers.podman.podman",
         "-e", "ansible_python_interpreter=/usr/bin/python3", "-m", module, "-a", args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    result, _end = json.JSONDecoder().raw_decode(proc.stdout)
    return result["plays"][0]["tasks"][0]["hosts"][node]


def test_the_age_rule_fails_and_the_content_rule_refreshes(tmp_path, node):
    old = ansible(tmp_path, node, "ansible.builtin.apt", "name=python3-venv update_cache=true cache_valid_time=3600")
    assert old.get("failed"), old
    assert "No package matching 'python3-venv'" in old["msg"]

    first = ansible(tmp_path, node, "pmoves.fleet.apt_refresh", "packages=python3-venv")
    assert not first.get("failed"), first
    assert first["changed"] and first["refreshed"]
    assert "empty" in first["reason"]
    assert first["not_installed"] == ["python3-venv"]  # the install task has work to do

    install = ansible(tmp_path, node, "ansible.builtin.apt", "name=python3-venv")
    assert not install.get("failed"), install

    again = ansible(tmp_path, node, "pmoves.fleet.apt_refresh", "packages=python3-venv,zstd")
    assert again["changed"] is False and again["refreshed"] is False

    # everything installed: the install task can be skipped on a rerun (issue 20)
    done = ansible(tmp_path, node, "pmoves.fleet.apt_refresh", "packages=python3-venv")
    assert done["changed"] is False and done["not_installed"] == []


def test_a_package_no_source_has_fails_before_anything_is_installed(tmp_path, node):
    result = ansible(tmp_path, node, "pmoves.fleet.apt_refresh", "packages=python3-venv,no-such-package-pmoves")
    assert result.get("failed"), result
    assert "no install candidate for no-such-package-pmoves even after apt-get update" in result["msg"]
    assert "/etc/apt/sources.list" in result["msg"]
