"""Release check: the collection as a Galaxy user gets it, run from outside the repository.

`ansible-galaxy collection build` -> `ansible-galaxy collection install <tar>` into an empty
collections path -> `ansible-playbook pmoves.fleet.plan` from a directory outside the checkout,
with the user's own (empty) ansible.cfg: the plan lands in that directory's artifacts/, never in
the installed collection. The dependencies (galaxy.yml) resolve offline from the collections the
`ansible` PyPI package ships, so no Galaxy server is contacted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
# Generous bound on the artifact (about 360 kB at 0.2.0): catches fixtures or molecule leaking in.
MAX_ARTIFACT_BYTES = 600_000


@dataclass
class Installed:
    tarball: Path
    workdir: Path  # the user's directory: their ansible.cfg, their artifacts/
    collection: Path  # where pmoves.fleet was installed
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "ansible-playbook"), *args], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("release")
    workdir, dist, collections = base / "work", base / "dist", base / "collections"
    workdir.mkdir()
    (workdir / "ansible.cfg").write_text("")  # the user's own, empty configuration
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(workdir / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCAL_TEMP=str(base / "tmp"))
    galaxy = str(BIN / "ansible-galaxy")
    build = subprocess.run([galaxy, "collection", "build", str(REPO), "--output-path", str(dist)],
                           cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = dist / f"pmoves-fleet-{GALAXY['version']}.tar.gz"
    install = subprocess.run([galaxy, "collection", "install", "--offline", str(tarball), "-p", str(collections)],
                             cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    collection = collections / "ansible_collections" / "pmoves" / "fleet"
    assert (collection / "MANIFEST.json").is_file()
    return Installed(tarball, workdir, collection, env)


def test_the_artifact_holds_what_runs_and_declares_its_dependencies(installed: Installed) -> None:
    size = installed.tarball.stat().st_size
    print(f"{installed.tarball.name}: {size} bytes")
    assert size < MAX_ARTIFACT_BYTES
    with tarfile.open(installed.tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    for needed in ("playbooks/site.yml", "playbooks/plan.yml", "plugins/action/fleet_plan.py",
                   "plugins/modules/hardware_facts.py", "roles/ollama/tasks/main.yml", "meta/runtime.yml",
                   "README.md", "CHANGELOG.md", "changelogs/changelog.yaml", "docs/planner.md",
                   "inventories/homelab/hosts.yml", "requirements.yml", "LICENSE"):
        assert needed in names, needed
    for left_out in ("tests/unit", "tests/integration", "tests/fixtures", "tests/doubles", "molecule",
                     "roles/ollama/molecule", "benchmarks", "cli", "scripts", "inventories/lab", "ansible.cfg",
                     "collections", ".config", "Makefile", "changelogs/fragments"):
        assert not any(n == left_out or n.startswith(left_out + "/") for n in names), left_out
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    info = manifest["collection_info"]
    assert info["version"] == GALAXY["version"]
    assert info["dependencies"] == GALAXY["dependencies"]


def test_plan_from_the_installed_collection_writes_to_the_callers_directory(installed: Installed) -> None:
    run = installed.run("pmoves.fleet.plan", "-i", str(REPO / "inventories" / "homelab"),
                        "-e", f"ansible_python_interpreter={sys.executable}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"(see {os.path.realpath(installed.workdir)}/artifacts/plan.md)" in run.stdout  # the cwd, resolved
    plan = json.loads((installed.workdir / "artifacts" / "plan.json").read_text())
    assert plan["schema"] == 1 and len(plan["nodes"]) == 23
    assert (installed.workdir / "artifacts" / "plan.md").is_file()
    assert not (installed.collection / "artifacts").exists()
    assert not (installed.collection.parent / "artifacts").exists()


def test_an_empty_inventory_fails_the_plan(installed: Installed) -> None:
    empty = installed.workdir / "empty.yml"
    empty.write_text("---\nall: {}\n")
    run = installed.run("pmoves.fleet.plan", "-i", str(empty), "-e", "pmoves_artifacts_dir=empty-artifacts")
    assert run.returncode != 0
    assert f"the inventory {empty} has no hosts" in run.stdout
    assert not (installed.workdir / "empty-artifacts").exists()


def test_site_from_the_installed_collection_passes_syntax_check(installed: Installed) -> None:
    run = installed.run("pmoves.fleet.site", "-i", str(REPO / "inventories" / "homelab"), "--syntax-check")
    assert run.returncode == 0, run.stdout + run.stderr
    assert str(installed.collection / "playbooks" / "site.yml") in run.stdout
