"""Node-side code runs on every node Python, 3.8 (JetPack 5 = Ubuntu 20.04) through 3.13.

Node-side: plugins/modules, plugins/module_utils (shipped inside every module), the files the roles
copy to nodes (roles/*/files/*.py) and the test doubles that stand in for node programs.
Controller-only code (plugins/action, plugins/filter, plugins/callback, scripts, cli, tests) runs
on the controller's Python (3.11+, ansible-core 2.19) and may use newer constructs.

Two guards, both cheap:
* the real thing: under the oldest and the newest node Python (one subprocess each), every module
  and module_utils is imported (as ansible-test's import test does, with ansible's module_utils
  on the path) and every other node-side file is byte-compiled;
* a static scan of what an import cannot reach (function bodies): constructs that are evaluated
  at run time and need Python 3.9+, e.g. `isinstance(x, list | tuple)`, `tuple[int, str]` in a
  type alias, `zip(strict=...)`, `str.removeprefix`, `asyncio.to_thread`, `datetime.UTC`.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import ansible
import pytest

REPO = Path(__file__).resolve().parents[2]
OLDEST_NODE_PYTHON, NEWEST_NODE_PYTHON = "3.8", "3.13"  # JetPack 5 (Ubuntu 20.04) .. the newest supported
MODULES = sorted((REPO / "plugins" / "modules").glob("*.py"))
MODULE_UTILS = sorted((REPO / "plugins" / "module_utils").glob("*.py"))
# Files run on nodes outside Ansible's module wrapper: byte-compiled (their imports, e.g. nats or
# litellm, live in venvs on the node), and scanned.
NODE_FILES = [
    *sorted((REPO / "roles").glob("*/files/*.py")),
    REPO / "tests" / "doubles" / "ollama_emulator" / "ollama_test_double.py",  # the Ollama server in lab nodes
    REPO / "tests" / "doubles" / "trtllm" / "trtllm-build",  # stands in for the node's trtllm-build
]
NODE_SIDE = MODULES + MODULE_UTILS + NODE_FILES
IMPORT_NAMES = [f"ansible_collections.pmoves.fleet.plugins.{p.parent.name}.{p.stem}" for p in MODULES + MODULE_UTILS]

# Runs under the node Python (-I: no user site, no PYTHONPATH; -B: no .pyc in the tree).
DRIVER = r"""
import importlib, json, sys, traceback
job = json.loads(sys.argv[1])
sys.path[:0] = job["sys_path"]
result = {}
for path in job["compile"]:
    try:
        with open(path, encoding="utf-8") as handle:
            compile(handle.read(), path, "exec", dont_inherit=True)
        result[path] = None
    except SyntaxError as exc:
        result[path] = "%s: %s" % (type(exc).__name__, exc)
for name in job["import"]:
    try:
        importlib.import_module(name)
        result[name] = None
    except BaseException:
        result[name] = traceback.format_exc(limit=-4)
print(json.dumps(result))
"""

_RESULTS: dict[str, dict[str, str | None]] = {}


def _results(version: str, interpreter: str, shim: Path) -> dict[str, str | None]:
    """One subprocess per node Python: import every module/module_utils, compile the other node files."""
    if version not in _RESULTS:
        job = {"sys_path": [str(REPO / "collections"), str(shim)], "compile": [str(p) for p in NODE_FILES],
               "import": IMPORT_NAMES}  # fmt: skip
        proc = subprocess.run([interpreter, "-I", "-B", "-c", DRIVER, json.dumps(job)], cwd=str(shim),
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        _RESULTS[version] = json.loads(proc.stdout.splitlines()[-1])
    return _RESULTS[version]


@pytest.fixture(scope="session")
def ansible_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only the controller's `ansible` package: its module_utils support every node Python."""
    shim = tmp_path_factory.mktemp("node-python-shim")
    (shim / "ansible").symlink_to(Path(ansible.__file__).parent, target_is_directory=True)
    return shim


@pytest.mark.parametrize("version", [OLDEST_NODE_PYTHON, NEWEST_NODE_PYTHON])
@pytest.mark.parametrize("path", NODE_SIDE, ids=[str(p.relative_to(REPO)) for p in NODE_SIDE])
def test_runs_on_node_python(path: Path, version: str, node_python, ansible_shim: Path) -> None:
    results = _results(version, node_python(version), ansible_shim)
    key = (
        str(path) if path in NODE_FILES else f"ansible_collections.pmoves.fleet.plugins.{path.parent.name}.{path.stem}"
    )
    assert results[key] is None, f"{path.relative_to(REPO)} on Python {version}:\n{results[key]}"


# --------------------------------------------------------------------------- static scan
GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}  # builtins: subscriptable from 3.9
ABC_MODULES = {"collections", "collections.abc", "re", "contextlib", "queue", "os"}  # their classes: 3.9
NEW_ATTRIBUTES = {  # attribute -> what it is, all 3.9+
    "removeprefix": "str.removeprefix (3.9)",
    "removesuffix": "str.removesuffix (3.9)",
    "to_thread": "asyncio.to_thread (3.9)",
    "is_relative_to": "Path.is_relative_to (3.9)",
    "with_stem": "Path.with_stem (3.9)",
    "randbytes": "random.randbytes (3.9)",
    "UTC": "datetime.UTC (3.11)",
    "pairwise": "itertools.pairwise (3.10)",
    "batched": "itertools.batched (3.12)",
    "TaskGroup": "asyncio.TaskGroup (3.11)",
    "StrEnum": "enum.StrEnum (3.11)",
    "file_digest": "hashlib.file_digest (3.11)",
    "bit_count": "int.bit_count (3.10)",
    "waitstatus_to_exitcode": "os.waitstatus_to_exitcode (3.9)",
    "BooleanOptionalAction": "argparse (3.9)",
}
NEW_IMPORTS = {"tomllib": "3.11", "zoneinfo": "3.9", "graphlib": "3.9"}
NEW_FROM_IMPORTS = {("datetime", "UTC"), ("functools", "cache"), ("itertools", "pairwise"), ("itertools", "batched"),
                    ("asyncio", "to_thread"), ("enum", "StrEnum"), ("typing", "TypeAlias"), ("typing", "ParamSpec"),
                    ("typing", "Self"), ("typing", "TypeGuard"), ("typing", "Annotated"), ("typing", "Concatenate"),
                    ("contextlib", "chdir"), ("contextlib", "aclosing")}  # fmt: skip


class _RuntimeScan(ast.NodeVisitor):
    """Flags 3.9+ constructs in code that runs; skips postponed annotations and `if TYPE_CHECKING:`."""

    def __init__(self, postponed: bool) -> None:
        self.postponed = postponed  # from __future__ import annotations: annotations are never evaluated
        self.abc_names: set[str] = set()  # names bound by `from collections.abc import Mapping` etc.
        self.problems: list[str] = []

    def flag(self, node: ast.AST, what: str) -> None:
        self.problems.append(f"line {node.lineno}: {what}: {ast.unparse(node)[:100]}")

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d)]:
            self.visit(child)
        if not self.postponed:
            arguments = [
                *node.args.posonlyargs,
                *node.args.args,
                *node.args.kwonlyargs,
                node.args.vararg,
                node.args.kwarg,
            ]
            for annotation in [a.annotation for a in arguments if a is not None] + [node.returns]:
                if annotation is not None:
                    self.visit(annotation)
        for child in node.body:
            self.visit(child)

    visit_FunctionDef = visit_AsyncFunctionDef = _visit_function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        if not self.postponed:
            self.visit(node.annotation)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in NEW_IMPORTS:
                self.flag(node, f"module {top} needs Python {NEW_IMPORTS[top]}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module.split(".")[0] in NEW_IMPORTS:
            self.flag(node, f"module {module} needs Python {NEW_IMPORTS[module.split('.')[0]]}")
        for alias in node.names:
            if (module, alias.name) in NEW_FROM_IMPORTS:
                self.flag(node, f"{module}.{alias.name} is not in Python 3.8")
            if module in ABC_MODULES:
                self.abc_names.add(alias.asname or alias.name)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        value = node.value
        if isinstance(value, ast.Name) and (value.id in GENERICS or value.id in self.abc_names):
            self.flag(node, f"{value.id}[...] evaluated at run time needs Python 3.9 (use typing, or TYPE_CHECKING)")
        elif isinstance(value, ast.Attribute) and ast.unparse(value.value) in ABC_MODULES and value.attr[:1].isupper():
            self.flag(node, f"{ast.unparse(value)}[...] evaluated at run time needs Python 3.9")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        unions = (
            name in ("isinstance", "issubclass")
            and len(node.args) == 2
            and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node.args[1]))
        )
        if unions:
            self.flag(node, f"{name}(x, A | B) needs Python 3.10: use a tuple (A, B)")
        if name == "zip" and any(k.arg == "strict" for k in node.keywords):
            self.flag(node, "zip(strict=...) needs Python 3.10")
        if name == "dataclass" and any(k.arg in ("slots", "kw_only", "match_args") for k in node.keywords):
            self.flag(node, "dataclass(slots=/kw_only=/match_args=) needs Python 3.10")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in NEW_ATTRIBUTES:
            self.flag(node, f"{NEW_ATTRIBUTES[node.attr]} is not in Python 3.8")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.BitOr) and any(
            isinstance(s, ast.Dict | ast.DictComp) for s in (node.left, node.right)
        ):
            self.flag(node, "dict | dict needs Python 3.9: use {**a, **b}")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.BitOr) and isinstance(node.value, ast.Dict | ast.DictComp):
            self.flag(node, "dict |= dict needs Python 3.9: use .update()")
        self.generic_visit(node)


def scan(source: str) -> list[str]:
    tree = ast.parse(source)
    postponed = any(
        isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    scanner = _RuntimeScan(postponed)
    scanner.visit(tree)
    return scanner.problems


@pytest.mark.parametrize("path", NODE_SIDE, ids=[str(p.relative_to(REPO)) for p in NODE_SIDE])
def test_no_runtime_constructs_newer_than_python_38(path: Path) -> None:
    problems = scan(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(REPO)} runs on Python 3.8 nodes:\n" + "\n".join(problems)


def test_scan_catches_what_broke_python_38() -> None:
    """The constructs that crashed hardware_facts and compose_apply on JetPack 5, and their 3.8 forms."""
    broken = """
from __future__ import annotations
from collections.abc import Callable, Sequence
from datetime import UTC
Runner = Callable[[Sequence[str]], tuple[int, str, str]]
def f(value: list[int] | None) -> dict[str, int]:
    x: list[int] = []
    return isinstance(value, list | tuple) and dict(zip(value, x, strict=True)) | {"a": 1} and "x".removeprefix("y")
"""
    problems = scan(broken)
    for what in ("datetime.UTC", "Callable[...]", "Sequence[...]", "tuple[...]", "isinstance(x, A | B)",
                 "zip(strict", "dict | dict", "removeprefix"):  # fmt: skip
        assert any(what in p for p in problems), (what, problems)
    fine = """
from __future__ import annotations
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    Runner = Callable[[Sequence[str]], tuple[int, str, str]]
def f(value: list[int] | None, run: Runner) -> dict[str, int]:
    x: list[int] = []
    return isinstance(value, (list, tuple, Mapping)) and {**dict(zip(value, x)), "a": 1, "b": 1 | 2}
"""
    assert scan(fine) == []
    # annotations without the __future__ import are evaluated at definition time
    assert scan("def f(x: list[int]) -> None: pass\n")


def test_driver_reports_a_real_python_38_failure(node_python, tmp_path: Path) -> None:
    """The subprocess guard is not vacuous: the old hardware.py alias fails to import on 3.8."""
    interpreter = node_python(OLDEST_NODE_PYTHON)
    (tmp_path / "old_alias.py").write_text("from collections.abc import Callable, Sequence\n"
                                           "CommandRunner = Callable[[Sequence[str]], 'CommandResult | None']\n")  # fmt: skip
    job = {"sys_path": [str(tmp_path)], "compile": [], "import": ["old_alias"]}
    proc = subprocess.run([interpreter, "-I", "-B", "-c", DRIVER, json.dumps(job)],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert "is not subscriptable" in json.loads(proc.stdout)["old_alias"]
