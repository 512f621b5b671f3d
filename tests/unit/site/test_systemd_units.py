"""The verify play's systemd units: two systemctl listings read as ansible.builtin.service_facts reports them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.systemd_units import (
    merge_unit_files,
    parse_list_units,
    systemd_services,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "systemd"
CAPTURES = sorted(p for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_the_listings_give_what_service_facts_gave_on_the_same_node(capture):
    expected = json.loads((capture / "service_facts.json").read_text())
    got = {s["name"]: s for s in systemd_services((capture / "list-units.txt").read_text(),
                                                  (capture / "list-unit-files.txt").read_text())}
    assert set(got) == set(expected)
    # aliases not loaded under their own name: service_facts asks systemctl for their target's state
    aliases = {name for name, s in got.items() if s["status"] == "alias" and s["state"] == "unknown"}
    assert {n: s for n, s in got.items() if n not in aliases} == {n: s for n, s in expected.items() if n not in aliases}
    assert len(aliases) <= 12 and len(got) > 100


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_the_report_pattern_keeps_the_fleets_units(capture):
    pattern = "^(pmoves|ollama|litellm|nats|prometheus|node.exporter|wg-quick|nvidia|nvpmodel|jetson)"
    got = systemd_services((capture / "list-units.txt").read_text(), (capture / "list-unit-files.txt").read_text(),
                           pattern)
    names = [s["name"] for s in got]
    assert names == sorted(names) and all(re.search(pattern, n) for n in names)
    assert {"ollama.service", "pmoves-litellm.service", "nats-server.service", "pmoves-mesh-agent.service"} <= set(names)
    by_name = {s["name"]: s for s in got}
    assert by_name["ollama.service"] == {"name": "ollama.service", "state": "running", "status": "enabled"}


@pytest.mark.parametrize(("line", "state", "status"), [
    ("ollama.service loaded active running Ollama Service", "running", "active"),
    ("pmoves-x.service loaded failed failed pmoves x", "stopped", "failed"),
    ("gone.service not-found inactive dead gone.service", "stopped", "not-found"),
    ("console-getty.service masked inactive dead console-getty.service", "stopped", "masked"),
    ("oneshot.service loaded active exited Run once", "stopped", "active"),
])
def test_a_unit_line(line, state, status):
    assert parse_list_units(line).popitem()[1] == {"name": line.split()[0], "state": state, "status": status,
                                                   "source": "systemd"}


def test_unit_files_set_the_status_unless_it_is_bad_and_add_units_not_loaded():
    units = parse_list_units("a.service loaded active running A\nb.service not-found inactive dead b.service\n")
    merged = merge_unit_files(units, "a.service enabled enabled\nb.service disabled enabled\n"
                                     "c.service disabled enabled\nd.socket enabled enabled\n")
    assert merged["a.service"]["status"] == "enabled"
    assert merged["b.service"]["status"] == "not-found"
    assert merged["c.service"] == {"name": "c.service", "state": "inactive", "status": "disabled", "source": "systemd"}
    assert "d.socket" not in merged


def test_empty_or_garbled_listings_give_no_units():
    assert systemd_services("", "") == []
    assert systemd_services("UNIT LOAD\n\n  \n", "garbage") == []
