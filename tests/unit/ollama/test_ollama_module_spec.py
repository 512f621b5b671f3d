"""ollama_module: the options, client, pull settings and progress hook ollama_model and ollama_model_set share."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.doc_fragments.ollama_client import ModuleDocFragment
from ansible_collections.pmoves.fleet.plugins.module_utils import ollama_module
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import LayerProgress, PullProgress
from ansible_collections.pmoves.fleet.plugins.module_utils.pull_progress import ProgressFile

REPO = Path(__file__).resolve().parents[3]
MODULES = ("ollama_model", "ollama_model_set")

# The contract (DESIGN.md and the released docs): these names and defaults never change.
SHARED_DEFAULTS = {
    "host": ("str", "http://127.0.0.1:11434"),
    "timeout": ("float", 60),
    "pull_timeout": ("float", 3600),
    "retries": ("int", 3),
    "retry_delay": ("float", 2),
    "models_dir": ("path", None),
    "disk_reserve_mb": ("int", 0),
    "progress_file": ("path", None),
}


def params(**overrides):
    values = {name: default for name, (_type, default) in SHARED_DEFAULTS.items()}
    values.update(overrides)
    return values


def test_the_shared_spec_keeps_every_name_type_and_default():
    spec = ollama_module.client_argument_spec()
    assert {name: (entry["type"], entry.get("default")) for name, entry in spec.items()} == SHARED_DEFAULTS
    spec["host"]["default"] = "changed"
    assert ollama_module.client_argument_spec()["host"]["default"] == SHARED_DEFAULTS["host"][1]


def test_the_doc_fragment_documents_exactly_the_shared_spec():
    options = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = ollama_module.client_argument_spec()
    assert set(options) == set(spec)
    for name, entry in spec.items():
        assert options[name]["type"] == entry["type"], name
        assert options[name].get("default") == entry.get("default"), name


def _documentation(module: str) -> dict:
    tree = ast.parse((REPO / "plugins" / "modules" / f"{module}.py").read_text())
    text = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "DOCUMENTATION")
    return yaml.safe_load(text)


@pytest.mark.parametrize("module", MODULES)
def test_both_modules_take_the_shared_options_from_the_fragment(module: str):
    documentation = _documentation(module)
    assert "pmoves.fleet.ollama_client" in documentation["extends_documentation_fragment"]
    assert not set(documentation["options"]) & set(SHARED_DEFAULTS), "documented twice: drop it from the module"


@pytest.mark.parametrize(("overrides", "error"), [
    ({}, None),
    ({"pull_timeout": 0}, None),
    ({"timeout": 0}, "timeout must be above 0 and pull_timeout 0 (no limit) or above"),
    ({"pull_timeout": -1}, "timeout must be above 0 and pull_timeout 0 (no limit) or above"),
])
def test_client_option_error(overrides, error):
    assert ollama_module.client_option_error(params(**overrides)) == error


def test_client_from_params_uses_host_and_timeout():
    client = ollama_module.client_from_params(params(host="10.0.0.5:11435", timeout=7.5))
    assert client.base == "http://10.0.0.5:11435"
    assert client.timeout == 7.5


def test_pull_settings_clamp_negatives_and_read_pull_timeout_0_as_no_limit():
    assert ollama_module.pull_settings(params()) == {
        "retries": 3, "retry_delay": 2, "models_dir": None, "disk_reserve_mb": 0, "pull_timeout": 3600}
    assert ollama_module.pull_settings(params(retries=-2, retry_delay=-1.0, disk_reserve_mb=-5, pull_timeout=0,
                                              models_dir="/m")) == {
        "retries": 0, "retry_delay": 0.0, "models_dir": "/m", "disk_reserve_mb": 0, "pull_timeout": None}


def test_progress_file_only_when_set_and_not_in_check_mode(tmp_path):
    path = str(tmp_path / "p.json")
    assert ollama_module.progress_file(params(), False) is None
    assert ollama_module.progress_file(params(progress_file=path), True) is None
    progress = ollama_module.progress_file(params(progress_file=path), False)
    assert isinstance(progress, ProgressFile) and progress.path == path


def test_report_pull_writes_the_bytes_of_every_layer_and_the_last_status(tmp_path):
    path = tmp_path / "p.json"
    progress = ProgressFile(str(path))
    pull = PullProgress(layers={"a": LayerProgress(10, 0, 4), "b": LayerProgress(20, 0, 6)},
                        statuses=["pulling manifest", "pulling a"])
    ollama_module.report_pull(progress, "m:1", 2, pull)
    entry = json.loads(path.read_text())["models"][0]
    assert (entry["name"], entry["completed"], entry["total"], entry["status"], entry["attempt"]) == (
        "m:1", 10, 30, "pulling a", 2)


def test_close_progress_removes_the_file_and_turns_its_error_into_a_warning(tmp_path):
    ollama_module.close_progress(None, [])
    path = tmp_path / "p.json"
    progress = ProgressFile(str(path))
    progress.update("m:1", 1, 2, "pulling a")
    warnings: list[str] = []
    ollama_module.close_progress(progress, warnings)
    assert not path.exists() and warnings == []
    broken = ProgressFile(str(tmp_path / "missing" / "p.json"))
    broken.update("m:1", 1, 2, "pulling a")
    ollama_module.close_progress(broken)  # the failure path: no warnings list, nothing raised
    ollama_module.close_progress(broken, warnings)
    assert len(warnings) == 1 and "cannot write the pull progress" in warnings[0]
