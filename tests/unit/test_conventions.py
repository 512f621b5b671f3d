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
    # pmoves.fleet.common is the home of the shared values: they keep the names every role and inventory uses.
    prefix = "pmoves_" if role.name == "common" else f"pmoves_{role.name}_"
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


# --------------------------------------------------------------------------- seams (issue 15)
COMMON = REPO / "roles" / "common"
# Facts a role publishes on purpose for other roles (documented in its argument_specs/README).
SHARED_FACTS = {"pmoves_mesh_address"}  # roles/wireguard: the node's mesh address, for the bind defaults


def _declared(role: Path) -> set[str]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return {name for entry in specs.values() for name in (entry.get("options") or {})}


def _internals(role: Path) -> dict[str, str]:
    """Names a role defines for itself (set_fact, register, task vars, loop_var, vars/main.yml) -> where."""
    found: dict[str, str] = {}
    for path in sorted((role / "tasks").glob("*.yml")) + sorted((role / "handlers").glob("*.yml")):
        for task in _walk_tasks(yaml.safe_load(path.read_text()) or []):
            where = f"{path.relative_to(REPO)}: {task.get('name')}"
            facts = task.get("ansible.builtin.set_fact") or {}
            names = [k for k in facts if k != "cacheable"] if isinstance(facts, dict) else []
            names += [task["register"]] if "register" in task else []
            names += list(task.get("vars") or {})
            names += [task["loop_control"]["loop_var"]] if "loop_var" in (task.get("loop_control") or {}) else []
            found.update(dict.fromkeys(names, where))
    vars_main = role / "vars" / "main.yml"
    if vars_main.exists():
        found.update(dict.fromkeys(yaml.safe_load(vars_main.read_text()) or {}, str(vars_main.relative_to(REPO))))
    return found


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_internals_are_named_double_underscore_role(role: Path):
    """set_fact/register/vars a role keeps to itself are `__pmoves_<role>_*`, so an inventory variable of the
    same name can neither be silently overridden by them (set_fact wins over host_vars) nor leak into them."""
    declared = _declared(role)
    prefix = f"__pmoves_{role.name}_"
    wrong = {name: where for name, where in _internals(role).items()
             if not name.startswith(prefix) and name not in declared and name not in SHARED_FACTS}
    assert not wrong, f"{role.name}: name role internals {prefix}*: {wrong}"


def test_shared_values_have_one_home_in_pmoves_fleet_common():
    """The common role's defaults are the only definition of the shared values; every role depends on it."""
    common = yaml.safe_load((COMMON / "defaults" / "main.yml").read_text())
    assert {"pmoves_artifacts_dir", "pmoves_ollama_port", "pmoves_gateway_port", "pmoves_mesh_nats_port",
            "pmoves_wireguard_network"} <= set(common)
    assert all(name.startswith("pmoves_") for name in common)
    for role in ROLES:
        if role == COMMON:
            continue
        redefined = sorted(set(_defaults(role)[0]) & set(common))
        assert not redefined, f"{role.name} redefines shared values of pmoves.fleet.common: {redefined}"
        deps = (yaml.safe_load((role / "meta" / "main.yml").read_text()) or {}).get("dependencies") or []
        names = [d["role"] if isinstance(d, dict) else d for d in deps]
        assert "pmoves.fleet.common" in names, f"{role.name}: add pmoves.fleet.common to meta/main.yml dependencies"
    # The literal values live in fleet_schema.FLEET_DEFAULTS (the planner's table), never in YAML.
    for value in common.values():
        assert "lookup('pmoves.fleet.fleet_default'" in str(value) or "pmoves_mesh_address" in str(value)


def _yaml_texts() -> list[Path]:
    """Role task/handler/template/vars/defaults files and the playbooks (not molecule scenarios)."""
    paths = sorted((REPO / "playbooks").glob("*.yml"))
    for role in ROLES:
        for part in ("tasks", "handlers", "templates", "vars", "defaults"):
            paths += sorted((role / part).glob("*"))
    return [p for p in paths if p.is_file()]


def test_no_role_reads_the_plan_from_disk():
    """The plan reaches roles through one channel: apply_plan.yml hands it over (pmoves_node_plan, pmoves_fleet_plan)."""
    offenders = []
    for path in _yaml_texts():
        text = path.read_text()
        if path.name == "apply_plan.yml":
            continue
        if re.search(r"lookup\(\s*['\"](ansible\.builtin\.)?file['\"][^)]*plan", text) or "_plan_file" in text:
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"read the plan through pmoves_node_plan/pmoves_fleet_plan, not from disk: {offenders}"
    apply_plan = (REPO / "playbooks" / "apply_plan.yml").read_text()
    assert apply_plan.count("plan.json") >= 1 and "hostvars['localhost']['pmoves_plan']['plan']" in apply_plan


# Ad-hoc model-name logic: `:latest` added by a regex, registry/library prefixes stripped by hand.
_AD_HOC_NAME = re.compile(r"\\1:latest|registry\\*\.ollama|\(library/\)|\[\^/:\]|ollama\\*\.com/|"
                          r"regex_(?:replace|search)\([^)]*(?:latest|library|registry)", re.IGNORECASE)


def ad_hoc_name_logic(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if not line.lstrip().startswith("#") and _AD_HOC_NAME.search(line)]


def test_one_normaliser_no_ad_hoc_name_logic_in_roles_or_playbooks():
    """Model names are normalised by pmoves.fleet.ollama_name (ollama_library.normalize_model_name) only."""
    offenders = {str(p.relative_to(REPO)): found for p in _yaml_texts() if (found := ad_hoc_name_logic(p.read_text()))}
    assert not offenders, f"use the pmoves.fleet.ollama_name / ollama_models filters: {offenders}"


def test_the_ad_hoc_name_scan_catches_the_old_jinja_normaliser():
    old = r"""
    pmoves_ollama_prefix_re: '^(registry\.ollama\.ai/)?(library/)?'
    pmoves_ollama_untagged_re: '^((?:[^/]*/)*[^/:]+)$'
    pmoves_ollama_latest_repl: '\1:latest'
    wanted: "{{ names | map('regex_replace', '^(library/)', '') }}"
"""
    assert len(ad_hoc_name_logic(old)) == 4
    assert ad_hoc_name_logic("name: \"{{ item | pmoves.fleet.ollama_name }}\"  # tinyllama:latest") == []
