"""The collection's own rules, checked on every role, module and plugin in the tree.

These are the conventions users rely on when they read or override our roles: every input is
prefixed with the role's name, commented in defaults, declared in argument_specs (so a wrong
input fails before anything changes), and every module documents check/diff support honestly.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (REPO / "roles").iterdir() if p.is_dir())
MODULES = sorted((REPO / "plugins" / "modules").glob("*.py"))
MODULE_UTILS = sorted((REPO / "plugins" / "module_utils").glob("*.py"))


def test_collection_metadata():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("pmoves", "fleet")
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=")


def test_fqcn_symlink_points_at_repo_root():
    link = REPO / "collections" / "ansible_collections" / "pmoves" / "fleet"
    assert link.is_symlink()
    assert link.resolve() == REPO


def _defaults(role: Path) -> tuple[dict, str]:
    path = role / "defaults" / "main.yml"
    if not path.exists():
        return {}, ""
    text = path.read_text()
    return yaml.safe_load(text) or {}, text


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_defaults_are_prefixed_and_commented(role: Path):
    defaults, text = _defaults(role)
    prefix = f"pmoves_{role.name}_"
    lines = text.splitlines()
    for name in defaults:
        assert name.startswith(prefix), f"{role.name}: default {name} must start with {prefix}"
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
        above = lines[index - 1].strip() if index else ""
        assert above.startswith("#"), f"{role.name}: default {name} needs a one-line comment above it"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_inputs_are_declared_in_argument_specs(role: Path):
    spec_path = role / "meta" / "argument_specs.yml"
    assert spec_path.exists(), f"{role.name}: meta/argument_specs.yml is missing"
    specs = yaml.safe_load(spec_path.read_text())["argument_specs"]
    assert "main" in specs
    declared = set(specs["main"].get("options", {}))
    defaults = _defaults(role)[0]
    undeclared = sorted(set(defaults) - declared)
    assert not undeclared, f"{role.name}: defaults not declared in argument_specs: {undeclared}"
    for name, option in specs["main"].get("options", {}).items():
        assert option.get("description"), f"{role.name}: option {name} has no description"
        assert option.get("type"), f"{role.name}: option {name} has no type"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_tasks_use_fqcn_and_guard_commands(role: Path):
    for path in sorted((role / "tasks").glob("*.yml")) + sorted((role / "handlers").glob("*.yml")):
        for task in _walk_tasks(yaml.safe_load(path.read_text()) or []):
            module = next((k for k in task if "." in k and k not in ("ansible.builtin.include_vars",)), None)
            actions = [k for k in task if k in {"command", "shell", "copy", "template", "file", "service"}]
            assert not actions, f"{path.relative_to(REPO)}: use FQCNs, found {actions} in {task.get('name')}"
            if module in {"ansible.builtin.command", "ansible.builtin.shell"}:
                assert "changed_when" in task, f"{path.relative_to(REPO)}: {task.get('name')} needs changed_when"


def _walk_tasks(tasks):
    for task in tasks:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk_tasks(task.get(key, []))


def _module_docs(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    docs = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in {"DOCUMENTATION", "EXAMPLES", "RETURN"}:
                    docs[target.id] = node.value.value
    return docs


@pytest.mark.parametrize("module", MODULES, ids=[m.stem for m in MODULES])
def test_module_documentation_is_complete(module: Path):
    docs = _module_docs(module)
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, f"{module.name}: missing doc blocks"
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == module.stem
    attributes = documentation.get("attributes", {})
    for attribute in ("check_mode", "diff_mode"):
        assert attribute in attributes, f"{module.name}: attributes.{attribute} must be declared"
        assert attributes[attribute]["support"] in {"full", "partial", "none", "N/A"}
    yaml.safe_load(docs["EXAMPLES"])
    yaml.safe_load(docs["RETURN"])


@pytest.mark.parametrize("path", MODULE_UTILS, ids=[m.stem for m in MODULE_UTILS])
def test_module_utils_do_not_need_a_gpu_at_import(path: Path):
    """pynvml may be imported only lazily (inside a function or a try block)."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] + [getattr(node, "module", "") or ""]
            assert not any(re.match(r"pynvml", n) for n in names), f"{path.name}: top-level pynvml import"
