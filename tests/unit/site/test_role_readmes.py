"""Role READMEs are generated from meta/argument_specs.yml and kept up to date."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("gen_role_readme", REPO / "scripts" / "gen-role-readme.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_readme_is_up_to_date(role: Path):
    readme = role / "README.md"
    if not readme.is_file() or gen.MARKER not in readme.read_text():
        pytest.xfail(f"roles/{role.name}/README.md not generated yet: run scripts/gen-role-readme.py {role.name}")
    assert readme.read_text() == gen.render(role), f"run scripts/gen-role-readme.py {role.name}"


def test_readme_lists_every_option_with_type_default_and_choices(tmp_path: Path):
    role = tmp_path / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text("""
argument_specs:
  main:
    short_description: Demo role.
    description: [First paragraph with C(code)., Second one.]
    options:
      pmoves_demo_mode:
        type: str
        default: fast
        choices: [fast, safe]
        description: How to run | with a pipe.
      pmoves_demo_hosts:
        type: list
        elements: str
        required: true
        description: Hosts I(here).
""")
    text = gen.render(role)
    assert text.startswith(gen.MARKER)
    assert "# pmoves.fleet.demo" in text
    assert "First paragraph with `code`.\n\nSecond one." in text
    assert "| `pmoves_demo_hosts` | list of str |  | **Required.** Hosts *here*. |" in text
    assert "| `pmoves_demo_mode` | str | `fast` | How to run \\| with a pipe. Choices: `fast`, `safe`. |" in text


def test_check_mode_reports_stale_readmes(tmp_path: Path, monkeypatch, capsys):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text("argument_specs: {main: {short_description: D, options: {}}}\n")
    monkeypatch.setattr(gen, "REPO", tmp_path)
    assert gen.main(["--check"]) == 1
    assert "out of date: demo" in capsys.readouterr().err
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert (role / "README.md").read_text().startswith(gen.MARKER)


def test_roles_without_argument_specs_are_skipped(tmp_path: Path):
    (tmp_path / "bare").mkdir()
    assert gen.render(tmp_path / "bare") is None
