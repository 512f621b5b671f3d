"""The fleet schema is the one definition: what validation accepts, the planner and the roles read, the docs show.

* property: for any catalog the validator accepts, the planner reads no key the schema does not declare
  (every entry is a dict that records which keys were read);
* per key: every declared key changes the outcome (plan.json, or what the roles render from it);
* unknown keys are errors naming the entry and listing the known keys; docs/inventory.md shows the schema's tables.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pmoves.fleet.plugins.filter.services import compose_project
from ansible_collections.pmoves.fleet.plugins.module_utils import fleet_schema as schema
from ansible_collections.pmoves.fleet.plugins.module_utils.inventory_checks import check_inventory
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import PlanOptions, dumps_plan, plan_fleet
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_view import node_plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[3]


class RecordingDict(dict):
    """A catalog entry that records every key read from it (and fails the test on a blind iteration)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def _everything(self) -> None:
        self.read.add("<every key>")

    def keys(self):  # type: ignore[override]
        self._everything()
        return super().keys()

    def items(self):  # type: ignore[override]
        self._everything()
        return super().items()

    def values(self):  # type: ignore[override]
        self._everything()
        return super().values()

    def __iter__(self):
        self._everything()
        return super().__iter__()


GPU = {"node_class": "gpu", "arch": "x86_64", "accelerator": "nvidia", "memory_mb": 131072, "schema": 1,
       "gpus": [{"index": 0, "vendor": "nvidia", "name": "RTX A5500", "uuid": "GPU-0", "memory_total_mb": 24564},
                {"index": 1, "vendor": "nvidia", "name": "RTX A400", "uuid": "GPU-1", "memory_total_mb": 4094}]}
EDGE = {"node_class": "edge", "arch": "aarch64", "accelerator": "jetson", "memory_mb": 65536, "schema": 1,
        "jetson": {"l4t": "36.4.4", "jetpack": "6.2.1"},
        "gpus": [{"index": 0, "vendor": "nvidia", "name": "Orin", "memory_total_mb": 49152, "unified_memory": True}]}
CPU = {"node_class": "cpu", "arch": "x86_64", "accelerator": "none", "memory_mb": 16384, "schema": 1, "gpus": []}
HARDWARE = {"gpu-a": GPU, "gpu-b": GPU, "edge-a": EDGE, "cpu-a": CPU}
HOSTS = [
    {"name": "gpu-a", "groups": ["gpu_nodes"], "hardware": GPU, "vars": {}},
    {"name": "gpu-b", "groups": ["gpu_nodes"], "hardware": GPU, "vars": {}},
    {"name": "edge-a", "groups": ["edge_nodes"], "hardware": EDGE, "vars": {}},
    {"name": "cpu-a", "groups": ["cpu_nodes", "gateway"], "hardware": CPU, "vars": {}},
]
GROUPS = {"all": [h["name"] for h in HOSTS], "gpu_nodes": ["gpu-a", "gpu-b"], "edge_nodes": ["edge-a"],
          "cpu_nodes": ["cpu-a"], "gateway": ["cpu-a"]}


# --------------------------------------------------------------------------- property
def _value(spec: schema.Field) -> st.SearchStrategy:
    hosts = st.sampled_from(GROUPS["all"])
    return {
        "int": st.integers(min_value=int(spec.minimum or 0), max_value=int(min(spec.maximum or 40000, 40000))),
        "number": st.floats(min_value=max(spec.minimum or 0.1, 0.1), max_value=80.0, allow_nan=False),
        "bool": st.booleans(),
        "choice": st.sampled_from(spec.choices),
        "hosts": st.lists(hosts, min_size=1, max_size=2, unique=True),
        "host": hosts,
        "classes": st.lists(st.sampled_from(schema.NODE_CLASSES), min_size=1, max_size=3, unique=True),
        "alias": st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,12}", fullmatch=True),
        "aliases": st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), max_size=2),
        "duration": st.sampled_from(["5m", "-1", "0", "1h30m", 300]),
        "str_list": st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), max_size=2),
    }.get(spec.type, st.just(spec.example))


MODEL_NAMES = st.sampled_from(["llama3.2:1b", "Qwen2.5:0.5B", "ollama.com/library/nomic-embed-text", "mystery:3b",
                               "registry.ollama.ai/library/TinyLlama", "phi3.5", "stable-diffusion-xl"])


@st.composite
def model_entries(draw: st.DrawFn) -> Any:
    optional = [f for f in schema.MODEL_FIELDS if not f.required]
    chosen = draw(st.lists(st.sampled_from(optional), unique_by=lambda f: f.key, max_size=len(optional)))
    entry = {"name": draw(MODEL_NAMES)}
    for spec in chosen:
        entry[spec.key] = draw(_value(spec))
    return entry


@st.composite
def service_entries(draw: st.DrawFn, index: int) -> dict[str, Any]:
    planner_keys = [f for f in schema.SERVICE_FIELDS if not f.required and f.reader == "planner"]
    chosen = draw(st.lists(st.sampled_from(planner_keys), unique_by=lambda f: f.key, max_size=6))
    entry = {"name": f"svc-{index}", "vram_mb": draw(st.integers(min_value=0, max_value=9000))}
    for spec in chosen:
        entry[spec.key] = draw(_value(spec))
    return entry


@given(models=st.lists(model_entries(), max_size=5),
       services=st.integers(min_value=0, max_value=3).flatmap(
           lambda n: st.tuples(*[service_entries(i) for i in range(n)])),
       strategy=st.sampled_from(schema.STRATEGIES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_planner_reads_only_declared_keys_of_accepted_catalogs(models, services, strategy):
    fleet = {"pmoves_models": models, "pmoves_services": list(services), "pmoves_strategy": strategy}
    checked = check_inventory(copy.deepcopy(GROUPS), {}, copy.deepcopy(fleet))
    catalog_errors = [e for e in checked.errors if e.startswith(("pmoves_models", "pmoves_services"))]
    assert not catalog_errors, catalog_errors
    recorded_models = [RecordingDict(m) for m in models]
    recorded_services = [RecordingDict(s) for s in services]
    try:
        plan_fleet(copy.deepcopy(HOSTS), recorded_models, recorded_services, PlanOptions(strategy=strategy))
    except ValueError as exc:  # a consistent inventory may still be unplannable (endpoint decisions): not this test
        assert "pmoves_ollama" in str(exc) or "address" in str(exc), exc
    for entry in recorded_models:
        assert entry.read <= schema.MODEL_KEYS, entry.read - schema.MODEL_KEYS
    for entry in recorded_services:
        assert entry.read <= schema.SERVICE_KEYS, entry.read - schema.SERVICE_KEYS


@given(key=st.from_regex(r"[a-z_]{3,12}", fullmatch=True))
@settings(max_examples=40, deadline=None)
def test_an_undeclared_key_is_an_error_naming_the_entry_and_the_known_keys(key):
    for field_list, catalog, entry in ((schema.MODEL_FIELDS, "pmoves_models", {"name": "llama3.2:1b"}),
                                       (schema.SERVICE_FIELDS, "pmoves_services", {"name": "tts", "vram_mb": 0})):
        if key in {f.key for f in field_list}:
            continue
        result = check_inventory(copy.deepcopy(GROUPS), {}, {catalog: [{**entry, key: 1}]})
        name = entry["name"]
        assert any(e.startswith(f"{catalog}[0] ({name}): ") and repr(key) in e and
                   ("known keys: " + ", ".join(f.key for f in field_list) in e or "is not accepted" in e)
                   for e in result.errors), result.errors


# --------------------------------------------------------------------------- per key
BASE_MODEL = {"name": "llama3.2:1b"}
BASE_SERVICE = {"name": "tts", "vram_mb": 1500, "primary": "gpu-a", "port": 8000}
# key -> (catalog entries before the key is set, planner options, host to render): only where the defaults
# above cannot show the key's effect.
MODEL_CONTEXT: dict[str, dict[str, Any]] = {
    "kind": {"entry": {"name": "mystery-model:7b"}},  # the table does not know it: kind counts
    "params_b": {"entry": {"name": "mystery-model"}},  # no size in the tag: params_b counts
}
SERVICE_CONTEXT: dict[str, dict[str, Any]] = {
    "vram_mb": {"entry": {"name": "tts", "primary": "gpu-a", "port": 8000}},
    "gpu_index": {"entry": {"name": "tts", "vram_mb": 1500, "primary": "gpu-a"}},
    # an adjustable budget only matters when its GPU is short: 3900 MB on the 4 GB GPU 1
    "vram_min_mb": {"entry": {"name": "tts", "vram_mb": 3900, "primary": "gpu-a", "gpu_index": 1}},
    "latency_critical": {"options": {"strategy": "latency_optimized"},
                         "others": [{"name": "big", "vram_mb": 3000, "primary": "gpu-a"}]},
    "isolate": {"options": {"strategy": "isolation_first"},
                "others": [{"name": "big", "vram_mb": 3000, "primary": "gpu-a"}]},
    "uses_ollama": {"entry": {"name": "tts", "vram_mb": 0, "classes": ["cpu"], "port": 8000}, "host": "cpu-a",
                    "gateway": False},
    "serves": {"models": [{"name": "llama3.2:1b"}, {"name": "stable-diffusion-xl"}]},
    "image_arm64": {"entry": {"name": "tts", "vram_mb": 1500, "primary": "edge-a", "port": 8000}, "host": "edge-a"},
    "depends_on": {"others": [{"name": "other", "vram_mb": 0, "gpu": False, "primary": "gpu-a"}]},
    "fallback": {"entry": {"name": "tts", "vram_mb": 1500, "primary": "gpu-a", "port": 8000}},
}


def _outcome(models: list, services: list, options: dict, host: str, gateway: bool = True) -> dict[str, str]:
    """plan.json without the input digest, and the compose project the role renders on ``host`` from it."""
    hosts = copy.deepcopy(HOSTS)
    if not gateway:
        for record in hosts:
            record["groups"] = [g for g in record["groups"] if g != "gateway"]
    plan = plan_fleet(hosts, models, services, PlanOptions(**options))
    node = node_plan(plan, host)
    rendered = compose_project(node, host, services, HARDWARE[host])
    plan.pop("inputs_digest")
    return {"plan": dumps_plan(plan), "compose": json.dumps(rendered, sort_keys=True, default=str)}


def _where(spec: schema.Field) -> str:
    """The outcome a key must change: what its reader produces (compose keys: the rendered project)."""
    return "compose" if spec.reader == "compose" else "plan"


def _example(spec: schema.Field, host: str = "gpu-b") -> Any:
    if spec.example == "HOST":
        return host
    if spec.example == ["HOST"]:
        return [host]
    return spec.example


@pytest.mark.parametrize("spec", [f for f in schema.MODEL_FIELDS if not f.required], ids=lambda f: f.key)
def test_every_model_key_changes_the_outcome(spec: schema.Field):
    context = MODEL_CONTEXT.get(spec.key, {})
    base = dict(context.get("entry", BASE_MODEL))
    changed = {**base, spec.key: _example(spec)}
    assert not check_inventory(copy.deepcopy(GROUPS), {}, {"pmoves_models": [changed]}).errors
    where = _where(spec)
    assert _outcome([base], [], {}, "gpu-a")[where] != _outcome([changed], [], {}, "gpu-a")[where], \
        f"{spec.key} changes nothing in the {where}"


@pytest.mark.parametrize("spec", [f for f in schema.SERVICE_FIELDS if f.key != "name"], ids=lambda f: f.key)
def test_every_service_key_changes_the_outcome(spec: schema.Field):
    context = SERVICE_CONTEXT.get(spec.key, {})
    base = dict(context.get("entry", BASE_SERVICE))
    others = context.get("others", [])
    changed = {**base, spec.key: _example(spec)}
    if spec.key == "vram_mb":
        base = {**base, "vram_mb": 0}
    models = context.get("models", [dict(BASE_MODEL)])
    if spec.key == "serves":
        changed["serves"] = ["stable-diffusion-xl"]
    catalog = [changed, *others]
    assert not check_inventory(copy.deepcopy(GROUPS), {}, {"pmoves_services": catalog, "pmoves_models": models}).errors
    host = context.get("host", "gpu-a")
    args = (context.get("options", {}), host, context.get("gateway", True))
    where = _where(spec)
    before = _outcome(models, [base, *others], *args)[where]
    after = _outcome(models, catalog, *args)[where]
    assert before != after, f"{spec.key} changes nothing in the {where}"


# --------------------------------------------------------------------------- docs and copies
def test_docs_inventory_shows_the_schema_tables():
    """docs/inventory.md carries the generated tables between markers (python -m ... to regenerate: see the doc)."""
    text = (REPO / "docs" / "inventory.md").read_text()
    for name, table in schema.docs_tables().items():
        match = re.search(rf"<!-- schema:{name} -->\n(.*?)<!-- /schema:{name} -->", text, re.S)
        assert match, f"docs/inventory.md lacks the <!-- schema:{name} --> block"
        assert match.group(1) == table, f"docs/inventory.md table {name} is out of date: run scripts/gen-schema-docs.py"


def test_fleet_plan_module_documents_the_schema_defaults():
    """plugins/modules/fleet_plan.py (the docs of the action) shows the planner defaults of the schema."""
    import ast

    import yaml

    tree = ast.parse((REPO / "plugins" / "modules" / "fleet_plan.py").read_text())
    doc = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
               and getattr(node.targets[0], "id", "") == "DOCUMENTATION")
    options = yaml.safe_load(doc)["options"]
    for knob, default in schema.PLANNER_DEFAULTS.items():
        assert knob in options, knob
        assert options[knob].get("default") == default, (knob, options[knob].get("default"), default)
    assert set(options["strategy"]["choices"]) == set(schema.STRATEGIES)
    assert options["ollama_port"]["default"] == schema.FLEET_DEFAULTS["ollama_port"]
