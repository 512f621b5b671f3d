"""The hash-locked requirements files and every place that installs them (fast, no network).

A lock is only worth its hashes when pip resolves nothing at install time: every entry pinned
with == and --hash, every Python the lock serves sees exactly one version of each package and
every input requirement, and every install site passes --no-deps next to --require-hashes.
tests/integration/test_locks.py installs each lock for real.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def _lockcheck():
    name = "pmoves_lockcheck"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "lockcheck.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


lockcheck = _lockcheck()

# lock -> (input, the CPython versions it must serve): the range scripts/lock.sh resolves for.
LOCKS = {
    "roles/mesh/files/requirements-agent.txt": ("roles/mesh/files/requirements-agent.in",
                                                ["3.8.10", "3.9.18", "3.10.12", "3.11.2", "3.12.3", "3.13.5"]),
    "roles/gateway/files/requirements-litellm.txt": ("roles/gateway/files/requirements-litellm.in",
                                                     ["3.10.12", "3.11.2", "3.12.3", "3.13.5"]),
    "requirements.txt": ("requirements.in", ["3.11.2", "3.11.7", "3.12.3", "3.13.5"]),
    "requirements-pip.txt": (None, ["3.11.2", "3.12.3", "3.13.5"]),
    "scripts/lock-tool.txt": ("scripts/lock-tool.in", ["3.8.10", "3.11.7", "3.13.5"]),
}
MACHINES = ["x86_64", "aarch64"]


def linux_env(version: str, machine: str = "x86_64") -> dict[str, str]:
    return {"implementation_name": "cpython", "implementation_version": version, "os_name": "posix",
            "platform_machine": machine, "platform_release": "", "platform_system": "Linux",
            "platform_version": "", "python_full_version": version, "platform_python_implementation": "CPython",
            "python_version": ".".join(version.split(".")[:2]), "sys_platform": "linux"}


def entries(lock: str):
    found, problems = lockcheck.parse_lock(REPO / lock)
    assert not problems, "\n".join(problems)
    return found


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_entry_is_pinned_and_hashed(lock):
    found = entries(lock)
    assert all(e.hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in e.hashes) for e in found)


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_header_says_how_to_install_and_regenerate(lock):
    head = "\n".join((REPO / lock).read_text().splitlines()[:8])
    assert f"pip install --no-deps --require-hashes -r {Path(lock).name}" in head
    assert "`make locks`" in head and "scripts/lock.sh" in head


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_each_supported_python_sees_one_version_of_each_package_and_every_input(lock):
    source, versions = LOCKS[lock]
    found = entries(lock)
    inputs = [Requirement(line) for line in lockcheck.logical_lines((REPO / source).read_text())] if source else []
    for version in versions:
        for machine in MACHINES:
            env = linux_env(version, machine)
            chosen, problems = lockcheck.applicable(found, env)
            assert not problems, problems
            for req in inputs:
                if req.marker and not req.marker.evaluate(dict(env, extra="")):
                    continue
                entry = chosen.get(canonicalize_name(req.name))
                assert entry, f"{lock}: {req} is not locked for Python {version} on {machine}"
                assert req.specifier.contains(Version(entry.version), prereleases=True), (lock, req, entry.version)
                assert {canonicalize_name(e) for e in req.extras} <= set(entry.extras), (lock, req, entry.extras)


@pytest.mark.parametrize("lock", ["roles/mesh/files/requirements-agent.txt",
                                  "roles/gateway/files/requirements-litellm.txt"])
def test_host_download_gets_what_a_debian12_node_installs(lock):
    """scripts/lab-up.sh and the molecule prepare download the wheels with the host's pip, which
    evaluates markers for the host's Python (3.11.x), not the node's (Debian 12: 3.11.2)."""
    found = entries(lock)
    node = lockcheck.applicable(found, linux_env("3.11.2"))[0]
    for host in ("3.11.4", "3.11.7", "3.11.14"):
        assert lockcheck.applicable(found, linux_env(host))[0] == node, f"{lock}: markers split Python 3.11"


def test_litellm_version_of_the_role_is_the_locked_one():
    litellm = {e.name: e for e in entries("roles/gateway/files/requirements-litellm.txt")}["litellm"]
    assert "proxy" in litellm.extras
    defaults = yaml.safe_load((REPO / "roles/gateway/defaults/main.yml").read_text())
    specs = yaml.safe_load((REPO / "roles/gateway/meta/argument_specs.yml").read_text())
    spec_default = specs["argument_specs"]["main"]["options"]["pmoves_gateway_litellm_version"]["default"]
    assert defaults["pmoves_gateway_litellm_version"] == spec_default == litellm.version
    assert Version(litellm.version) >= Version("1.84.0") and litellm.version not in ("1.82.7", "1.82.8")


def test_cli_dependencies_are_in_the_controller_lock():
    import tomllib

    project = tomllib.loads((REPO / "cli" / "pyproject.toml").read_text())
    locked = {e.name for e in entries("requirements.txt")}
    for dep in [*project["project"]["dependencies"], *project["build-system"]["requires"]]:
        req = Requirement(dep)
        assert canonicalize_name(req.name) in locked, f"cli/pyproject.toml needs {req}, requirements.txt lacks it"


def test_pip_is_pinned_once():
    pin = [Requirement(r) for r in lockcheck.logical_lines((REPO / "requirements.in").read_text())
           if Requirement(r).name == "pip"]
    first = [e for e in entries("requirements-pip.txt") if e.name == "pip"]
    in_lock = [e for e in entries("requirements.txt") if e.name == "pip"]
    assert len(pin) == len(first) == len(in_lock) == 1
    assert pin[0].specifier.contains(first[0].version)
    assert (first[0].version, set(first[0].hashes)) == (in_lock[0].version, set(in_lock[0].hashes))


# --- install sites ------------------------------------------------------------------------------

SCANNED = ["roles", "molecule", "scripts", "tests", "mk", "inventories", "playbooks", ".ci", "Makefile"]
SELF = Path(__file__).resolve()


def scanned_files():
    for top in SCANNED:
        path = REPO / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if file.resolve() == SELF or file.suffix in {".txt", ".in", ".md", ".pyc"} or "fixtures" in file.parts:
                continue
            yield file


def yaml_tasks(node):
    """Every mapping that looks like a task (has a module key or name), recursively."""
    if isinstance(node, list):
        for item in node:
            yield from yaml_tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            if key in node:
                yield from yaml_tasks(node[key])


def test_every_hash_locked_install_passes_no_deps():
    offenders, sites = [], 0
    for file in scanned_files():
        rel = file.relative_to(REPO)
        try:
            text = file.read_text()
        except UnicodeDecodeError:
            continue
        if "require-hashes" not in text:
            continue
        if file.suffix in {".yml", ".yaml"}:
            for task in yaml_tasks(yaml.safe_load(text)):
                body = {k: v for k, v in task.items() if k not in ("name", "block", "rescue", "always", "tasks")}
                flat = str(body)
                if "--require-hashes" in flat:
                    sites += 1
                    if "--no-deps" not in flat:
                        offenders.append(f"{rel}: task {task.get('name')!r}")
            continue
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if "--require-hashes" in line:
                sites += 1
                window = "\n".join(lines[max(0, i - 2):i + 3])
                if "--no-deps" not in window:
                    offenders.append(f"{rel}:{i + 1}: {line.strip()}")
    assert not offenders, "--require-hashes without --no-deps (pip would resolve at install time):\n" + \
        "\n".join(offenders)
    assert sites >= 8  # roles (2), molecule prepares (2), lab-up, Makefile, lock.sh, tests


def test_role_pip_tasks_install_their_lock_with_no_deps_and_hashes():
    for tasks, lock in (("roles/gateway/tasks/install.yml", "requirements-litellm.txt"),
                        ("roles/mesh/tasks/venv.yml", "requirements-agent.txt")):
        pip = [t for t in yaml.safe_load((REPO / tasks).read_text()) if "ansible.builtin.pip" in t]
        assert len(pip) == 1, tasks
        args = pip[0]["ansible.builtin.pip"]
        assert args["requirements"].endswith(lock)
        assert "--no-deps" in args["extra_args"] and "--require-hashes" in args["extra_args"]


def test_make_venv_installs_the_lock_without_resolving():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile[makefile.index("$(STAMP):"):makefile.index("\nlocks:")]
    assert "requirements.txt" in recipe.splitlines()[0] and "requirements-pip.txt" in recipe.splitlines()[0]
    steps = [line.strip() for line in recipe.splitlines()[1:] if "pip " in line]
    assert "--no-deps --require-hashes -r requirements-pip.txt" in steps[0]
    assert "--no-deps --require-hashes -r requirements.txt" in steps[1]
    assert "--no-deps --no-build-isolation -e ./cli" in steps[2]
    assert steps[3].endswith("pip check")
    for line in makefile.splitlines() + (REPO / "mk" / "lab.mk").read_text().splitlines():
        if re.search(r"\bpip (install|download)\b", line) and not line.lstrip().startswith("#"):
            assert "--no-deps" in line, line
    assert "scripts/lock.sh" in makefile[makefile.index("\nlocks:"):]
