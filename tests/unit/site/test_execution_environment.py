"""execution-environment.yml is a valid ansible-builder v3 definition that ships this collection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[3]
EE = yaml.safe_load((REPO / "execution-environment.yml").read_text())


def test_schema_is_valid_for_ansible_builder_v3():
    ee_schema = pytest.importorskip("ansible_builder.ee_schema")
    ee_schema.validate_schema(EE)  # raises ValidationError on a bad definition
    assert EE["version"] == 3


def test_a_broken_definition_is_refused_by_the_validator():
    ee_schema = pytest.importorskip("ansible_builder.ee_schema")
    from ansible_builder.exceptions import DefinitionError

    with pytest.raises(DefinitionError, match="imagez"):
        ee_schema.validate_schema({**EE, "imagez": {}})
    with pytest.raises(DefinitionError):
        ee_schema.validate_schema({**EE, "additional_build_files": [{"src": "x"}]})


def test_collections_come_from_requirements_yml():
    assert EE["dependencies"]["galaxy"] == "requirements.yml"
    collections = {c["name"] for c in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]}
    # the run-time collections only (galaxy.yml dependencies); test-only ones stay out of the image
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert collections == set(galaxy["dependencies"]) == {"ansible.posix", "kubernetes.core"}


def test_python_pins_match_requirements_txt():
    # requirements.txt is the hash lock (names normalised by the lock tool: PyYAML -> pyyaml).
    pins = {canonicalize_name(name): version for name, version in
            re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==([^\s;]+)", (REPO / "requirements.txt").read_text(), re.M)}
    for requirement in EE["dependencies"]["python"]:
        name, version = requirement.split("==")
        assert pins.get(canonicalize_name(name)) == version, f"{requirement} differs from requirements.txt"
    core = EE["dependencies"]["ansible_core"]["package_pip"].split("==")
    runner = EE["dependencies"]["ansible_runner"]["package_pip"].split("==")
    assert pins[canonicalize_name(core[0])] == core[1] and pins[canonicalize_name(runner[0])] == runner[1]


def test_the_collection_itself_is_installed_into_the_image():
    steps = " ".join(EE["additional_build_steps"]["append_final"])
    source = EE["additional_build_files"][0]
    assert source["src"].endswith("pmoves-fleet.tar.gz")
    assert "ansible-galaxy collection install" in steps and "pmoves-fleet.tar.gz" in steps
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("pmoves", "fleet")
