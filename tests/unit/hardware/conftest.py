"""Fixtures for the hardware discovery tests: the fixture sysroots and the test-double PATH."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import hardware
from hw_testlib import DOUBLES_BIN, HW_FIXTURES


@pytest.fixture
def doubles_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the fake nvidia-smi / nvpmodel / sysctl / system_profiler first on PATH."""
    monkeypatch.setenv("PATH", f"{DOUBLES_BIN}:/usr/bin:/bin")
    monkeypatch.delenv("PMOVES_FAKE_HARDWARE_DIR", raising=False)
    return DOUBLES_BIN


@pytest.fixture
def discover_fixture(doubles_path: Path):
    """discover() over a named fixture sysroot, NVML off unless a loader is given."""

    def run(name: str, **kwargs):
        kwargs.setdefault("use_nvml", False)
        return hardware.discover(str(HW_FIXTURES / name), **kwargs)

    return run
