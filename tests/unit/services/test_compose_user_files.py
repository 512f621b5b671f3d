"""Seed 004's layout: the user's own compose file(s) under our GPU override (pmoves_compose_user_files, issue #17).

Rendering (compose_render.layer_user_files, the compose_project filter) and the apply on a fake engine that
merges the `-f` files the way podman-compose does (mappings merged, the later file wins).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.pmoves.fleet.plugins.filter.services import compose_project, user_file_paths
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_apply import (
    LAST_GOOD_SUFFIX,
    STATE_FILE,
    ApplyError,
    ComposeProject,
    Engine,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import (
    CONFIG_HASH_LABEL,
    GPU_ASSIGNMENTS_FILE,
    GPU_OVERRIDE_FILE,
    RenderError,
    RenderOptions,
    UserFile,
    render_project,
    to_yaml,
)
from conftest import load_fleet

FLEET = load_fleet("workstation")
NODE = FLEET["strategies"]["manual"]["nodes"]["workstation"]
HARDWARE = FLEET["hardware"]["workstation"]
PLANNED = sorted(s["name"] for s in NODE["services"])

PROD = """# the user's own file: comments and layout are kept byte for byte
services:
  ai-llm:
    image: ghcr.io/pmoves/ai-llm:latest
    command: ["serve", "--model", "nemotron"]
    ports: ["8091:8091"]
    environment:
      - LOG_LEVEL=info
  ai-yolo26: {image: "ghcr.io/pmoves/ai-yolo26:latest", profiles: [vision]}
  ai-florence: {image: "ghcr.io/pmoves/ai-florence:latest"}
  ai-clip: {image: "ghcr.io/pmoves/ai-clip:latest"}
  ai-enrichment:
    image: ghcr.io/pmoves/ai-enrichment:latest
    depends_on: [ai-clip, ai-florence]
  postgres: {image: "postgres:16"}
"""


def user(text: str, name: str = "docker-compose.prod.yml") -> UserFile:
    return UserFile(name=name, text=text, data=yaml.safe_load(text), source=f"/inv/files/{name}")


def render(*files: UserFile, **options):
    return render_project("workstation", NODE, FLEET["catalog"], HARDWARE,
                          options=RenderOptions(strategy="manual", **options), user_files=list(files))


def test_default_layout_is_unchanged_without_user_files():
    plain = render_project("workstation", NODE, FLEET["catalog"], HARDWARE, options=RenderOptions(strategy="manual"))
    empty = render()
    assert empty.files() == plain.files() and empty.compose_files == plain.compose_files == [
        "docker-compose.yml", GPU_OVERRIDE_FILE]


def test_user_file_is_copied_verbatim_and_layered_under_an_override_of_only_ours():
    project = render(user(PROD))
    assert project.compose_files == ["docker-compose.prod.yml", GPU_OVERRIDE_FILE]
    files = project.files()
    assert set(files) == {"docker-compose.prod.yml", GPU_OVERRIDE_FILE, GPU_ASSIGNMENTS_FILE}
    assert files["docker-compose.prod.yml"] == PROD
    default = render_project("workstation", NODE, FLEET["catalog"], HARDWARE, options=RenderOptions(strategy="manual"))
    gpu = default.gpu_override["services"]
    override = yaml.safe_load(files[GPU_OVERRIDE_FILE])["services"]
    assert sorted(override) == PLANNED  # postgres is the user's: not in the override
    for name, svc in override.items():
        assert not {"image", "command", "ports", "volumes", "env_file", "restart"} & set(svc), (name, svc)
        assert svc["labels"] == {"io.pmoves.node": "workstation", "io.pmoves.service": name}
        # The GPU pinning is exactly the default layout's override entry.
        assert {k: v for k, v in svc.items() if k not in ("labels", "x-pmoves-health")} == gpu[name]
    assert override["ai-llm"]["x-pmoves-health"] == {"http": "http://127.0.0.1:8091/health", "timeout": 120}
    assert files[GPU_ASSIGNMENTS_FILE] == default.files()[GPU_ASSIGNMENTS_FILE]
    assert "vision" in project.profiles and "gpu" in project.profiles


@pytest.mark.parametrize(("files", "match"), [
    ([user(PROD.replace("  ai-clip: {image: \"ghcr.io/pmoves/ai-clip:latest\"}\n", ""))],
     r"places ai-clip on this node but no user compose file defines it \(files: /inv/files/docker-compose.prod.yml\)"),
    ([user("services:\n  other: {image: x}\n", "a.yml"), user("services: {}\n", "b.yml")],
     r"places ai-clip, ai-enrichment, ai-florence, ai-llm, ai-yolo26 .* defines them \(files: /inv/files/a.yml, "
     r"/inv/files/b.yml\)"),
    ([user(PROD), user(PROD)], r"share a name"),
    ([user(PROD, ".env")], r"reserved"),
    ([user(PROD, "x.yml.last-good")], r"reserved"),
    ([user("- just\n- a list\n")], r"is not a compose file"),
])
def test_bad_user_files_fail_before_anything_is_written(files, match):
    with pytest.raises(RenderError, match=match):
        render(*files)


def test_split_user_files_and_warnings_for_gpu_settings_the_override_replaces():
    base = user(PROD.replace("      - LOG_LEVEL=info\n", "      - CUDA_VISIBLE_DEVICES=1\n"), "docker-compose.prod.yml")
    extra = user("services:\n  ai-clip:\n    deploy: {resources: {reservations: {devices: [{driver: nvidia, count: all,"
                 " capabilities: [gpu]}]}}}\n", "docker-compose.clip.yml")
    project = render(base, extra)
    assert project.compose_files == ["docker-compose.prod.yml", "docker-compose.clip.yml", GPU_OVERRIDE_FILE]
    assert any("ai-llm sets CUDA_VISIBLE_DEVICES" in w and "override wins" in w for w in project.warnings)
    assert any("ai-clip reserves devices in its user compose file" in w for w in project.warnings)


def test_the_filter_reads_the_files_on_the_controller_and_names_what_is_kept(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "docker-compose.prod.yml").write_text(PROD)
    paths = user_file_paths(["files/docker-compose.prod.yml"], str(tmp_path))
    assert paths == [str(tmp_path / "files" / "docker-compose.prod.yml")]
    assert user_file_paths(["/abs/x.yml"], str(tmp_path)) == ["/abs/x.yml"]
    out = compose_project(NODE, "workstation", FLEET["catalog"], HARDWARE, options={"strategy": "manual"},
                          user_files=paths)
    assert out["compose_files"] == ["docker-compose.prod.yml", GPU_OVERRIDE_FILE]
    prod = out["files"][0]
    assert prod["path"] == "docker-compose.prod.yml" and prod["content"] == PROD
    assert prod["data"]["services"]["ai-llm"]["command"] == ["serve", "--model", "nemotron"]
    assert out["services"] == ["ai-clip", "ai-florence", "ai-enrichment", "ai-llm", "ai-yolo26"]
    assert out["keep_services"] == ["postgres"]
    assert "docker-compose.yml" in out["stale_files"]  # the default layout's file goes when still ours
    with pytest.raises(AnsibleFilterError, match="No such file"):
        compose_project(NODE, "workstation", FLEET["catalog"], HARDWARE, user_files=[str(tmp_path / "missing.yml")])


# --------------------------------------------------------------------------- apply on a fake engine


def _merge(target: dict, source: dict) -> dict:
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, list) and isinstance(target.get(key), list):
            target[key] = target[key] + value
        else:
            target[key] = value
    return target


class MergingEngine:
    """Test double of podman + podman-compose: `up` merges the `-f` files (mappings merged, later wins)."""

    def __init__(self):
        self.containers: dict[str, dict] = {}
        self.serial = 0

    def __call__(self, argv):
        argv = list(argv)
        if argv[:2] == ["podman", "ps"]:
            return 0, "\n".join(self.containers), ""
        if argv[:2] == ["podman", "inspect"]:
            return 0, json.dumps([self.containers[i] for i in argv[2:] if i in self.containers]), ""
        if argv[:2] == ["podman", "rm"]:
            for i in argv[2:]:
                self.containers.pop(i, None)
            return 0, "", ""
        if argv[:2] == ["podman", "logs"]:
            return 0, "boom\n", ""
        if argv[0] == "podman-compose" and "up" in argv:
            service = argv[-1]
            merged: dict = {}
            for i, arg in enumerate(argv):
                if arg == "-f":
                    doc = yaml.safe_load(Path(argv[i + 1]).read_text())
                    _merge(merged, json.loads(json.dumps((doc.get("services") or {}).get(service) or {})))
            labels = merged.get("labels") or {}
            self.serial += 1
            cid = f"c{self.serial}"
            self.containers[cid] = {
                "Id": cid, "Name": f"p_{service}_1",
                "State": {"Status": "exited" if "broken" in merged.get("image", "") else "running"},
                "Config": {"Labels": {"com.docker.compose.service": service, **labels}}}
            return 0, "", ""
        return 0, "", ""

    def ids(self) -> dict[str, str]:
        return {c["Config"]["Labels"]["com.docker.compose.service"]: i for i, c in self.containers.items()}


USER = """services:
  web: {image: "web:1", command: ["httpd"]}
  worker: {image: "worker:1"}
  db: {image: "db:1"}
"""
OVERRIDE = {"services": {
    "web": {"labels": {"io.pmoves.service": "web"}, "environment": {"NVIDIA_VISIBLE_DEVICES": "0"}},
    "worker": {"labels": {"io.pmoves.service": "worker"}, "environment": {"NVIDIA_VISIBLE_DEVICES": "1"}},
}}


def user_project(tmp_path, engine, text=USER, keep=("db",)):
    return ComposeProject(
        project_dir=str(tmp_path), project_name="p", compose_files=["docker-compose.prod.yml", GPU_OVERRIDE_FILE],
        documents={"docker-compose.prod.yml": text, GPU_OVERRIDE_FILE: OVERRIDE},
        parsed={"docker-compose.prod.yml": yaml.safe_load(text)}, services=["web", "worker"],
        keep_services=list(keep), engine=Engine("podman", ("podman-compose",), "podman", "1.0.3"), run=engine,
        settle_seconds=0, poll_interval=0, sleep=lambda s: None, probe=lambda kind, target: (True, "ok"))


@pytest.mark.parametrize(("edit", "recreated"), [
    (lambda t: t.replace('image: "web:1"', 'image: "web:2"'), ["web"]),
    (lambda t: t.replace('image: "worker:1"}', 'image: "worker:1", environment: [A=1]}'), ["worker"]),
    (lambda t: t.replace('image: "db:1"', 'image: "db:2"'), []),  # the user's own service: not ours to recreate
    (lambda t: "# a comment only\n" + t, []),  # same data: the file is rewritten, no container recreated
])
def test_a_changed_user_file_recreates_only_the_services_whose_config_changed(tmp_path, edit, recreated):
    engine = MergingEngine()
    first = user_project(tmp_path, engine).apply()
    assert first["recreated"] == ["web", "worker"] and first["services"] == ["web", "worker"]
    assert (tmp_path / "docker-compose.prod.yml").read_text() == USER  # verbatim, never relabelled
    override = yaml.safe_load((tmp_path / GPU_OVERRIDE_FILE).read_text())["services"]
    assert set(override["web"]["labels"]) == {"io.pmoves.service", CONFIG_HASH_LABEL}
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state["documents"]["docker-compose.prod.yml"] == yaml.safe_load(USER)
    before = engine.ids()
    engine.containers["cdb"] = {"Id": "cdb", "Name": "p_db_1", "State": {"Status": "running"},
                                "Config": {"Labels": {"com.docker.compose.service": "db"}}}
    second = user_project(tmp_path, engine, edit(USER)).apply()
    assert second["recreated"] == recreated and second["removed"] == []
    assert (tmp_path / "docker-compose.prod.yml").read_text() == edit(USER)
    after = engine.ids()
    assert after["db"] == "cdb"  # keep_services: never removed
    for name in ("web", "worker"):
        assert (after[name] != before[name]) == (name in recreated)


def test_without_keep_services_a_service_outside_the_plan_is_removed(tmp_path):
    engine = MergingEngine()
    user_project(tmp_path, engine, keep=()).apply()
    engine.containers["cdb"] = {"Id": "cdb", "Name": "p_db_1", "State": {"Status": "running"},
                                "Config": {"Labels": {"com.docker.compose.service": "db"}}}
    assert user_project(tmp_path, engine, keep=()).apply()["removed"] == ["db"]


def test_a_failing_user_file_change_rolls_back_to_the_previous_copy(tmp_path):
    engine = MergingEngine()
    user_project(tmp_path, engine).apply()
    good_ids = engine.ids()
    assert (tmp_path / ("docker-compose.prod.yml" + LAST_GOOD_SUFFIX)).read_text() == USER
    with pytest.raises(ApplyError) as failure:
        user_project(tmp_path, engine, USER.replace('image: "web:1"', 'image: "web:broken"')).apply()
    assert failure.value.details["failed_service"] == "web"
    assert "docker-compose.prod.yml" in failure.value.details["rollback"]["files_restored"]
    assert failure.value.details["rollback"]["services_restored"] == ["web"]
    assert (tmp_path / "docker-compose.prod.yml").read_text() == USER
    assert set(engine.ids()) == {"web", "worker"} and engine.ids()["worker"] == good_ids["worker"]
    assert all(c["State"]["Status"] == "running" for c in engine.containers.values())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"parsed": {}}, "must be given as a mapping in `files`, or as text with its parsed `data`"),
    ({"services": ["web", "ghost"]}, r"services \['ghost'\] are in none of the compose files"),
    ({"documents_override": {"services": {"web": {"environment": {"A": "1"}}}}},
     r"services \['worker'\] are defined only in verbatim files"),
])
def test_inconsistent_inputs_are_refused_before_anything_changes(tmp_path, kwargs, match):
    docs = {"docker-compose.prod.yml": USER, GPU_OVERRIDE_FILE: kwargs.pop("documents_override", OVERRIDE)}
    args = {"project_dir": str(tmp_path), "project_name": "p",
            "compose_files": ["docker-compose.prod.yml", GPU_OVERRIDE_FILE], "documents": docs,
            "parsed": {"docker-compose.prod.yml": yaml.safe_load(USER)}, "services": ["web", "worker"],
            "engine": Engine("podman", ("podman-compose",), "podman", "1.0.3"), "run": MergingEngine(), **kwargs}
    with pytest.raises(ApplyError, match=match):
        ComposeProject(**args).apply()
    assert list(tmp_path.iterdir()) == []


def test_override_text_is_plain_yaml_of_the_rendered_mapping():
    assert yaml.safe_load(to_yaml(render(user(PROD)).gpu_override)) == render(user(PROD)).gpu_override


@pytest.mark.parametrize(("bind", "probed"), [
    ("127.0.0.1", "127.0.0.1"),
    ("10.8.0.12", "10.8.0.12"),  # WireGuard: published on the mesh address only, probed there (not on loopback)
    ("0.0.0.0", "127.0.0.1"),
    ("fd00::12", "[fd00::12]"),
])
def test_the_health_gate_probes_where_the_port_is_published(bind, probed):
    project = render_project("workstation", NODE, FLEET["catalog"], HARDWARE,
                             options=RenderOptions(strategy="manual", bind_address=bind))
    services = project.compose["services"]
    assert services["ai-llm"]["ports"] == [f"{bind}:8091:8091"]
    assert services["ai-llm"]["x-pmoves-health"]["http"] == f"http://{probed}:8091/health"
