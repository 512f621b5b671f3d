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


def install(tmp_path: Path, version: str, *args: str, **overrides) -> subprocess.CompletedProcess:
    dist = tmp_path / f"dist-{version}"
    if not dist.exists():
        subprocess.run(["bash", str(BUILD), version, str(dist), "tar.zst"], check=True, capture_output=True, timeout=120)
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    extra = {"pmoves_ollama_version": version, "pmoves_ollama_archive_path": str(dist),
             "pmoves_ollama_install_dir": str(tmp_path / "usr"), "pmoves_ollama_releases_dir": str(tmp_path / "opt"),
             "pmoves_ollama_download_dir": str(tmp_path / "cache"), "pmoves_ollama_library": "cpu",
             "pmoves_ollama_arch": "amd64", "pmoves_ollama_api_url": "http://127.0.0.1:9",
             "pmoves_ollama_manage_service": False,
             # the test double is not the published release: the role's pins for 0.30.x would refuse it
             "pmoves_ollama_use_pinned_checksums": False,
             "pmoves_node_plan": {"class": "cpu", "planned": True, "ollama": {
                 "listen": "127.0.0.1", "local_url": "http://127.0.0.1:9", "models": [], "gpu_uuids": []}},
             **overrides}
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", ANSIBLE_CACHE_PLUGIN="memory")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(tmp_path / "pb.yml"), "-e",
                           f"@{tmp_path / 'extra.json'}", *args], cwd=REPO, env=env, capture_output=True, text=True,
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


# sha256 pins (issue 18): the archives of the test double are not the published releases, which is exactly what a
# pin must catch.
WARNING = "WARNING: no pinned sha256 for Ollama"


def double_sums(tmp_path: Path, version: str) -> dict[str, str]:
    """The test double's own sha256 per asset (what an operator would pin after checking a mirror's archives)."""
    dist = tmp_path / f"dist-{version}"
    if not dist.exists():
        subprocess.run(["bash", str(BUILD), version, str(dist), "tar.zst"], check=True, capture_output=True, timeout=120)
    return {name[2:]: digest for digest, name in
            (line.split() for line in (dist / "sha256sum.txt").read_text().splitlines())}


def legacy_install(tmp_path: Path) -> Path:
    legacy = tmp_path / "legacy"
    subprocess.run(["bash", str(BUILD), "0.30.9", str(legacy), "tar.zst"], check=True, capture_output=True, timeout=120)
    (tmp_path / "usr").mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(legacy / "ollama-linux-amd64.tar.zst"), "-C", str(tmp_path / "usr")],
                   check=True)
    return tmp_path / "usr" / "bin" / "ollama"


def test_an_archive_that_does_not_match_the_roles_pin_stops_before_anything_is_installed(tmp_path):
    binary = legacy_install(tmp_path)
    before = binary.read_bytes()
    result = install(tmp_path, "0.30.10", pmoves_ollama_use_pinned_checksums=True)
    assert result.returncode != 0, result.stdout[-3000:]
    out = " ".join(result.stdout.split())
    assert "Ollama 0.30.10 was not installed" in out, out[-3000:]
    assert "ollama-linux-amd64.tar.zst" in out and "the role's pin for 0.30.10" in out
    assert "046d8f28e58d58477a49558d8d1bcb2e81ca8b287f93c44b12ff919c10d178dd" in out  # the published sha256
    assert WARNING not in out  # pinned: nothing to warn about, the pin is enforced
    # nothing installed: the old release still answers at the binary path, no release directory, no archive kept
    assert not binary.is_symlink() and binary.read_bytes() == before
    assert "0.30.9" in version_of(binary)
    assert not (tmp_path / "opt").exists()
    assert not list((tmp_path / "cache").rglob("*.tar.zst"))


def test_an_inventory_pin_wins_over_the_roles_pin_without_a_warning(tmp_path):
    sums = double_sums(tmp_path, "0.30.10")
    result = install(tmp_path, "0.30.10", pmoves_ollama_use_pinned_checksums=True,
                     pmoves_ollama_checksums={"0.30.10": {"ollama-linux-amd64.tar.zst": sums["ollama-linux-amd64.tar.zst"]}})
    assert result.returncode == 0, result.stdout[-3000:]
    assert WARNING not in result.stdout
    assert "0.30.10" in version_of(tmp_path / "usr" / "bin" / "ollama")


def test_an_inventory_pin_that_does_not_match_names_pmoves_ollama_checksums(tmp_path):
    result = install(tmp_path, "0.33.0", pmoves_ollama_checksums={"ollama-linux-amd64.tar.zst": "0" * 64})
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "Ollama 0.33.0 was not installed" in out and "expected sha256 from pmoves_ollama_checksums" in out, out[-3000:]
    assert not (tmp_path / "usr" / "bin" / "ollama").exists() and not (tmp_path / "opt").exists()


def test_a_release_pinned_nowhere_installs_with_a_loud_warning_and_check_mode_writes_nothing(tmp_path):
    # 0.33.0 is in none of the role's pins: only the release's own sha256sum.txt checks it
    check = install(tmp_path, "0.33.0", "--check", pmoves_ollama_use_pinned_checksums=True)
    assert check.returncode == 0, check.stdout[-3000:]
    out = " ".join(check.stdout.split()).replace('\\"', '"')  # the debug callback prints the msg as JSON
    assert f"{WARNING} 0.33.0 ollama-linux-amd64.tar.zst on localhost" in out, out[-3000:]
    assert 'pmoves_ollama_checksums: {"0.33.0": {"ollama-linux-amd64.tar.zst": "<sha256>"}}' in out, out[-3000:]
    assert not (tmp_path / "usr").exists() and not (tmp_path / "opt").exists() and not (tmp_path / "cache").exists()

    real = install(tmp_path, "0.33.0", pmoves_ollama_use_pinned_checksums=True)
    assert real.returncode == 0, real.stdout[-3000:]
    assert WARNING in real.stdout
    assert "0.33.0" in version_of(tmp_path / "usr" / "bin" / "ollama")
    rerun = install(tmp_path, "0.33.0")
    assert rerun.returncode == 0 and "changed=0" in rerun.stdout, rerun.stdout[-3000:]
    assert WARNING not in rerun.stdout  # nothing is downloaded on a converged node
