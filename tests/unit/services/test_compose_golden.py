"""Golden files: every node class of the seed fleets renders byte-identical project files."""

from __future__ import annotations

import os

import pytest
from conftest import CASES, render_case

UPDATE = os.environ.get("PMOVES_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden(case, golden_dir):
    files, warnings = render_case(case)
    files["warnings.txt"] = "".join(f"{w}\n" for w in warnings)
    case_dir = golden_dir / case
    if UPDATE:
        for old in case_dir.rglob("*"):
            if old.is_file():
                old.unlink()
        for rel, text in files.items():
            (case_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (case_dir / rel).write_text(text)
    expected = {str(p.relative_to(case_dir)): p.read_text() for p in case_dir.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(expected), "set of rendered files changed (PMOVES_UPDATE_GOLDEN=1 to accept)"
    for rel, text in files.items():
        assert text == expected[rel], f"{case}/{rel} differs from golden (PMOVES_UPDATE_GOLDEN=1 to accept)"


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_is_deterministic(case):
    assert render_case(case) == render_case(case)
