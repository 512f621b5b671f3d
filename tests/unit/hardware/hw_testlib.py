"""Paths shared by the hardware tests (imported by module name: pytest puts this directory on sys.path)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HW_FIXTURES = REPO / "tests" / "fixtures" / "hardware"
DOUBLES_BIN = REPO / "tests" / "doubles" / "bin"
