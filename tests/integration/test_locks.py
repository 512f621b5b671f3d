"""Each hash-locked requirements file installs as it is: `pip install --no-deps --require-hashes`
into a clean venv, then `pip check`, and the result is exactly the lock (nothing missing, nothing
extra) and closed (scripts/lockcheck.py: every Requires-Dist of every entry, with the extras the
lock names, evaluated for that Python, is itself in the lock — what `pip check` cannot see).

- mesh agent lock: on every CPython 3.8 ... 3.13 found (PATH or pyenv), a few seconds each.
- LiteLLM lock: on the running Python (Debian 12's 3.11 in CI), in the venv that
  test_gateway_failover.py uses too (.cache/venvs, keyed by the lock's sha256; about 1.5 min once
  per lock change with a warm pip cache). PMOVES_LOCK_PYTHONS="3.10 3.12 3.13" adds other Pythons.
- controller lock (requirements.txt): the running .venv when `make venv` built it from this very
  lock (its stamp holds the lock's sha256: make venv installs with --no-deps into a fresh .venv in
  CI, then pip check), else a clean venv built the way `make venv` does (about 1.5 min, cached).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from locked_venv import LOCKS, REPO, ensure_locked_venv, find_python, lockcheck, sha256

pytestmark = pytest.mark.integration

AGENT_PYTHONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"


def python_for(minor: str) -> str:
    if minor == CURRENT:
        return sys.executable
    found = find_python(minor)
    if not found:
        pytest.skip(f"no CPython {minor} on this machine (PATH or pyenv)")
    return found


def assert_exact_and_closed(lock: Path, python: str | Path, allow: frozenset[str] = frozenset()) -> None:
    check = lockcheck()
    problems = check.venv_problems(lock, python, check.VENV_SEED | allow)
    assert not problems, "\n".join(problems)
    result = subprocess.run([str(python), "-m", "pip", "check"], check=False, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("minor", AGENT_PYTHONS)
def test_mesh_agent_lock_installs_on_every_node_python(minor):
    venv, stamp = ensure_locked_venv(LOCKS["agent"], python_for(minor))
    python = venv / "bin" / "python"
    assert_exact_and_closed(LOCKS["agent"], python)
    subprocess.run([str(python), "-c", "import nats, nats.js"], check=True, timeout=60)
    print(f"agent lock on {stamp['python']}: built in {stamp['build_seconds']} s")


def litellm_pythons() -> list[str]:
    extra = os.environ.get("PMOVES_LOCK_PYTHONS", "").split()
    return [CURRENT, *[m for m in extra if m != CURRENT]]


@pytest.mark.parametrize("minor", litellm_pythons())
def test_litellm_lock_installs_and_the_proxy_imports(minor):
    venv, stamp = ensure_locked_venv(LOCKS["litellm"], python_for(minor))
    python = venv / "bin" / "python"
    assert_exact_and_closed(LOCKS["litellm"], python)
    # The proxy's own imports (fastapi-sso -> pydantic[email] -> email-validator, prisma, redis ...).
    subprocess.run([str(python), "-c", "import litellm.proxy.proxy_server, prisma, redis, email_validator"],
                   check=True, timeout=300, env=dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True"))
    assert (venv / "bin" / "litellm").exists()
    print(f"LiteLLM lock on {stamp['python']}: built in {stamp['build_seconds']} s")


def running_venv_is_the_controller_lock() -> bool:
    """make venv writes `sha256sum requirements.txt requirements-pip.txt` into .venv/.installed."""
    stamp = Path(sys.prefix) / ".installed"
    if sys.prefix == sys.base_prefix or not stamp.exists():
        return False
    return stamp.read_text().split()[:1] == [sha256(LOCKS["controller"])]


def test_controller_lock_installs_and_is_closed():
    allow = frozenset({"pmoves-cli"})
    if running_venv_is_the_controller_lock():
        assert_exact_and_closed(LOCKS["controller"], sys.executable, allow)
        return
    venv, stamp = ensure_locked_venv(LOCKS["controller"], sys.executable, pip_first=REPO / "requirements-pip.txt")
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "-e", str(REPO / "cli")], check=True, capture_output=True, timeout=300)
    assert_exact_and_closed(LOCKS["controller"], python, allow)
    for tool in ("ansible-playbook", "ansible-lint", "molecule", "pytest", "ruff", "pmoves"):
        assert (venv / "bin" / tool).exists(), tool
    print(f"controller lock on {stamp['python']}: built in {stamp['build_seconds']} s")
