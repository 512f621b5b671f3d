"""Fixtures: the Ollama test double served from a thread, on a free loopback port."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "doubles" / "ollama_emulator"))

from harness import running_emulator


@pytest.fixture
def emulator(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_TEST_DOUBLE_REGISTRY", raising=False)
    monkeypatch.delenv("OLLAMA_TEST_DOUBLE_OFFLINE", raising=False)
    with running_emulator(tmp_path / "models", node="unit-node") as emu:
        yield emu


@pytest.fixture
def second_emulator(tmp_path):
    with running_emulator(tmp_path / "models-b", node="unit-node-b") as emu:
        yield emu
