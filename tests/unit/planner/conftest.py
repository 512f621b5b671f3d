"""Planner fixtures."""

from __future__ import annotations

from typing import Any

import pytest
from planner_helpers import SEED_INVENTORIES, load_inventory


@pytest.fixture(scope="session")
def seed_inventories() -> dict[str, dict[str, Any]]:
    return {name: load_inventory(name) for name in SEED_INVENTORIES}
