"""Ollama upgrades into a release directory of its own, swapped in by one symlink (issue 18).

The role's install tasks run on localhost with every path under tmp_path (install prefix, releases, downloads),
from release-style archives of the Ollama TEST DOUBLE (tests/doubles/ollama_emulator/build_release.sh). What a user
relies on: the old release stays on disk, untouched, while the new one is unpacked; the binary path switches in
one step; a plain-file install of earlier releases is kept as the release to go back to; a rerun changes nothing.
(Putting the old release back when the new one does not answer needs systemd: roles/ollama/tasks/service.yml.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "tests" / "doubles" / "ollama_emulator" / "build_release.sh"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("zstd") or os.geteuid() != 0,
                                 reason="needs zstd and root (the role unpacks as root:root)")]

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: The role's install tasks
      ansible.builtin.include_role:
        name: pmoves.fleet.ollama
        tasks_from: "{{ task_file }}"
      loop: [validate.yml, install.yml]
      loop_control:
        loop_var: task_file
"""


def install(tmp_path: Path, version: str) -> subprocess.CompletedProcess:
    dist = tmp_path / f"dist-{version}"
    if not dist.exists():
        subprocess.run(["bash", str(BUILD), version, str(dist), "tar.zst"], check=True, capture_output=True, timeout=120)
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    extra = {"pmoves_ollama_version": version, "pmoves_ollama_archive_path": str(dist),
             "pmoves_ollama_install_dir": str(tmp_path / "usr"), "pmoves_ollama_releases_dir": str(tmp_path / "opt"),
             "pmoves_ollama_download_dir": str(tmp_path / "cache"), "pmoves_ollama_library": "cpu",
             "pmoves_ollama_arch": "amd64", "pmoves_ollama_api_url": "http://127.0.0.1:9",
             "pmoves_ollama_manage_service": False,
             "pmoves_node_plan": {"class": "cpu", "planned": True, "ollama": {
                 "listen": "127.0.0.1", "local_url": "http://127.0.0.1:9", "models": [], "gpu_uuids": []}}}
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", ANSIBLE_CACHE_PLUGIN="memory")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(tmp_path / "pb.yml"), "-e",
                           f"@{tmp_path / 'extra.json'}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def version_of(binary: Path) -> str:
    return subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False,
                          env=dict(os.environ, OLLAMA_HOST="127.0.0.1:9")).stdout


def test_upgrade_swaps_a_symlink_and_keeps_the_old_release(tmp_path):
    # an install of earlier releases: a plain file with its libraries beside it
    legacy = tmp_path / "legacy"
    subprocess.run(["bash", str(BUILD), "0.30.9", str(legacy), "tar.zst"], check=True, capture_output=True, timeout=120)
    (tmp_path / "usr").mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(legacy / "ollama-linux-amd64.tar.zst"), "-C", str(tmp_path / "usr")],
                   check=True)
    binary = tmp_path / "usr" / "bin" / "ollama"
    assert binary.is_file() and not binary.is_symlink()

    first = install(tmp_path, "0.30.10")
    assert first.returncode == 0, first.stdout[-3000:]
    assert binary.is_symlink() and os.readlink(binary) == str(tmp_path / "opt" / "0.30.10-cpu" / "bin" / "ollama")
    assert "0.30.10" in version_of(binary)
    kept = tmp_path / "usr" / "bin" / ".ollama.pre-pmoves"
    assert "0.30.9" in version_of(kept)  # the release to go back to
    assert (tmp_path / "usr" / "lib" / "ollama").is_dir()  # its libraries were not removed

    second = install(tmp_path, "0.30.11")
    assert second.returncode == 0, second.stdout[-3000:]
    assert os.readlink(binary) == str(tmp_path / "opt" / "0.30.11-cpu" / "bin" / "ollama")
    assert "0.30.11" in version_of(binary)
    assert "0.30.10" in version_of(tmp_path / "opt" / "0.30.10-cpu" / "bin" / "ollama")  # old release intact

    rerun = install(tmp_path, "0.30.11")
    assert rerun.returncode == 0 and "changed=0" in rerun.stdout, rerun.stdout[-3000:]
