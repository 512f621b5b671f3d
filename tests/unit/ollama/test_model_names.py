"""validate_model_name: Ollama's name grammar, one pure function beside the normaliser."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import (
    normalize_model_name,
    require_model_name,
    validate_model_name,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "name",
    [
        "llama3",
        "qwen2.5:32b",
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        "registry.ollama.ai/library/llama3:8b",
        "nomic-embed-text:latest",
        "x/y:z",
        "ollama.com/llama3",
        "hub.lan:5000/team/model:q4",
        "qwen2.5:7b-instruct-q4_K_M",
        "XL-LOC-FRE-qwen2.5-coder-32b",
        "_private/model_1:v1.5",
        " llama3 ",  # surrounding blanks are stripped by the normaliser, as before
        "m" * 80 + ":" + "t" * 80,
    ],
)
def test_valid_names(name):
    assert validate_model_name(name) is None
    assert require_model_name(name) == normalize_model_name(name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../x", "'..'"),
        ("a; rm -rf /", "whitespace"),
        ("qwen 2.5:32b", "whitespace"),
        ("a\nb", "whitespace or a control character ('\\n')"),
        ("a\x00b", "control character ('\\x00')"),
        ("a\tb", "whitespace"),
        ("", "empty"),
        ("   ", "empty"),
        (":tag", "its model is empty"),
        ("a/../b", "'..'"),
        ("a:", "its tag is empty"),
        ("a/b/c/d", "too many '/' parts"),
        ("ftp://hf.co/a/b", "URL scheme"),
        ("a..b", "'..'"),
        ("-model", "must start with a letter"),
        (".hidden", "must start with a letter"),
        ("ns.dotted/model", "namespace 'ns.dotted' contains '.'"),
        ("model;id", "contains ';'"),
        ("a:b:c", "tag 'b:c' contains ':'"),
        ("modèle", "contains 'è'"),
        ("a/b\\c", "contains '\\\\'"),
        ("a/$(id)", "contains '$'"),
        ("m" * 81, "longer than 80"),
        (None, "must be a string"),
        (["llama3"], "must be a string"),
    ],
)
def test_invalid_names_say_why(name, why):
    problem = validate_model_name(name)
    assert problem is not None and why in problem, problem
    if isinstance(name, str) and name.strip():
        assert repr(name)[:20] in problem  # the message shows the name, escaped
    with pytest.raises(ValueError, match="Ollama model name"):
        require_model_name(name)


def test_a_valid_name_never_builds_a_path_outside_its_directory():
    """What the grammar guarantees the store relies on: no separator or '..' inside a part."""
    for name in ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "x/y:z", "hub.lan:5000/team/m:q4"):
        for part in normalize_model_name(name).replace(":", "/").split("/"):
            assert part not in ("", ".", "..") and "\x00" not in part


def test_every_model_of_the_seed_inventories_is_a_valid_name():
    names = set()
    for path in sorted((REPO / "inventories").rglob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            continue
        for entry in data.get("pmoves_models") or []:
            names.add(entry["name"] if isinstance(entry, dict) else entry)
            if isinstance(entry, dict) and entry.get("alias"):
                names.add(entry["alias"])
    assert len(names) > 20
    assert {name: validate_model_name(name) for name in names if validate_model_name(name)} == {}
