"""compose_apply without an engine: hashes, change plans, and the apply/rollback flow on a fake engine."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_apply import (
    LAST_GOOD_SUFFIX,
    ApplyError,
    ComposeProject,
    Container,
    Engine,
    active_services,
    detect_engine,
    parse_health,
    parse_inspect,
    plan_changes,
    service_hashes,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import CONFIG_HASH_LABEL

BASE = {"services": {
    "db": {"image": "db:1"},
    "api": {"image": "api:1", "depends_on": ["db"], "x-pmoves-health": {"tcp": "127.0.0.1:9", "timeout": 5}},
    "tts": {"image": "tts:1", "profiles": ["tts"]},
}}
OVERRIDE = {"services": {"api": {"environment": {"PMOVES_GPU_INDEX": "0"}}}}


def test_hash_changes_only_for_the_service_whose_sections_or_env_files_change():
    before = service_hashes([BASE, OVERRIDE], {})
    moved = json.loads(json.dumps(OVERRIDE))
    moved["services"]["api"]["environment"]["PMOVES_GPU_INDEX"] = "1"
    after = service_hashes([BASE, moved], {})
    assert before["api"] != after["api"] and before["db"] == after["db"] and before["tts"] == after["tts"]
    with_env = {"services": {**BASE["services"], "db": {"image": "db:1", "env_file": ["/etc/pmoves/fleet.env"]}}}
    assert service_hashes([with_env], {"/etc/pmoves/fleet.env": "a"})["db"] != \
        service_hashes([with_env], {"/etc/pmoves/fleet.env": "b"})["db"]
    labelled = json.loads(json.dumps(BASE))
    labelled["services"]["db"]["labels"] = {CONFIG_HASH_LABEL: "whatever"}
    assert service_hashes([labelled], {})["db"] == service_hashes([BASE], {})["db"]


def test_active_services_follow_profiles_and_dependency_order():
    assert active_services([BASE], []) == ["db", "api"]
    assert active_services([BASE], ["tts"]) == ["db", "api", "tts"]


def c(service, hash_, status="running", cid=None):
    return Container(cid or f"id-{service}", f"p_{service}_1", service, status, hash_)


def test_plan_recreates_changed_missing_and_stopped_services_and_removes_orphans():
    desired = {"db": "h1", "api": "h2", "web": "h3"}
    plan = plan_changes(["db", "api", "web"], desired,
                        [c("db", "h1"), c("api", "old"), c("web", "h3", "exited"), c("gone", "x")])
    assert plan.recreate == {"api": "configuration changed", "web": "not running"}
    assert plan.unchanged == ["db"] and [x.service for x in plan.remove] == ["gone"]
    assert plan_changes(["db"], {"db": "h1"}, []).recreate == {"db": "not created yet"}


def test_podman_pulls_in_running_dependents_of_a_recreated_service():
    plan = plan_changes(["db", "api"], {"db": "new", "api": "h2"}, [c("db", "old"), c("api", "h2")],
                        dependents={"db": ["api"]})
    assert plan.recreate == {"db": "configuration changed", "api": "depends on recreated db"}


def test_inspect_parsing_reads_docker_and_podman_shapes():
    payload = json.dumps([{"Id": "abc", "Name": "/p_api_1", "State": {"Status": "running"}, "RestartCount": 2,
                           "Config": {"Labels": {"com.docker.compose.service": "api", CONFIG_HASH_LABEL: "h"}}}])
    (got,) = parse_inspect(payload)
    assert (got.id, got.name, got.service, got.config_hash, got.restart_count, got.running) == \
        ("abc", "p_api_1", "api", "h", 2, True)


@pytest.mark.parametrize(("spec", "want"), [
    ({"http": "http://127.0.0.1:1/h", "timeout": 7}, ("http", "http://127.0.0.1:1/h", 7)),
    ({"tcp": "127.0.0.1:80"}, ("tcp", "127.0.0.1:80", 30)),
    (None, (None, None, 30)),
])
def test_health_specs(spec, want):
    assert parse_health(spec, 30) == want


def test_bad_tcp_target_is_refused():
    with pytest.raises(ApplyError):
        parse_health({"tcp": "no-port"}, 30)


def test_engine_detection_prefers_docker_compose_then_podman_compose():
    def which(name):
        return f"/usr/bin/{name}"

    def run_docker_ok(argv):
        return (0, "2.29.1\n", "") if argv[:2] == ["docker", "compose"] else (1, "", "")

    assert detect_engine(run_docker_ok, which).kind == "docker"

    def run_no_plugin(argv):
        if argv[:2] == ["docker", "compose"]:
            return 1, "", "docker: unknown command: docker compose"
        return 0, "podman-compose version 1.0.3\npodman version 4.3.1\n", ""

    engine = detect_engine(run_no_plugin, which)
    assert (engine.kind, engine.version, engine.supports_profiles) == ("podman", "1.0.3", False)
    with pytest.raises(ApplyError, match="no usable compose engine"):
        detect_engine(lambda argv: (1, "", "nope"), lambda name: None)


class FakeEngine:
    """Test double of podman + podman-compose: containers in a dict, `up` reads the files written."""

    def __init__(self, project_dir):
        self.dir = project_dir
        self.containers: dict[str, dict] = {}
        self.serial = 0
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        argv = list(argv)
        self.calls.append(argv)
        if argv[0] == "podman" and argv[1] == "ps":
            return 0, "\n".join(self.containers), ""
        if argv[0] == "podman" and argv[1] == "inspect":
            return 0, json.dumps([self.containers[i] for i in argv[2:] if i in self.containers]), ""
        if argv[0] == "podman" and argv[1] == "rm":
            for i in argv[2:]:
                self.containers.pop(i, None)
            return 0, "", ""
        if argv[0] == "podman" and argv[1] == "logs":
            return 0, "model file missing\n", ""
        if argv[0] == "podman-compose" and "up" in argv:
            service = argv[-1]
            svc = yaml.safe_load((self.dir / "docker-compose.yml").read_text())["services"][service]
            hash_ = svc["labels"][CONFIG_HASH_LABEL]
            broken = "broken" in svc["image"]
            self.serial += 1
            cid = f"c{self.serial}"
            self.containers[cid] = {"Id": cid, "Name": f"p_{service}_1", "State": {"Status": "exited" if broken else "running"},
                                    "Config": {"Labels": {"com.docker.compose.service": service, CONFIG_HASH_LABEL: hash_}}}
            return 0, "", ""
        return 0, "", ""


def project(tmp_path, engine, docs):
    return ComposeProject(project_dir=str(tmp_path), project_name="p", compose_files=["docker-compose.yml"],
                          documents={"docker-compose.yml": docs}, engine=Engine("podman", ("podman-compose",), "podman", "1.0.3"),
                          run=engine, settle_seconds=0, poll_interval=0, sleep=lambda s: None,
                          probe=lambda kind, target: (True, "ok"))


def doc(api_image="api:1"):
    return {"services": {"db": {"image": "db:1"}, "api": {"image": api_image, "depends_on": ["db"]}}}


def test_apply_recreates_only_the_changed_service_and_is_idempotent(tmp_path):
    engine = FakeEngine(tmp_path)
    first = project(tmp_path, engine, doc()).apply()
    assert first["recreated"] == ["db", "api"] and first["changed"]
    ids = dict(engine.containers)
    assert project(tmp_path, engine, doc()).apply() == {**first, "changed": False, "recreated": [], "reasons": {},
                                                        "unchanged": ["db", "api"], "files_changed": []}
    second = project(tmp_path, engine, doc("api:2")).apply()
    assert second["recreated"] == ["api"]
    db_ids = [i for i, cont in engine.containers.items() if cont["Config"]["Labels"]["com.docker.compose.service"] == "db"]
    assert db_ids == [i for i, cont in ids.items() if cont["Config"]["Labels"]["com.docker.compose.service"] == "db"]


def test_failed_start_restores_last_good_files_and_service_and_reports_the_log(tmp_path):
    engine = FakeEngine(tmp_path)
    project(tmp_path, engine, doc()).apply()
    good = (tmp_path / "docker-compose.yml").read_text()
    assert (tmp_path / ("docker-compose.yml" + LAST_GOOD_SUFFIX)).read_text() == good
    with pytest.raises(ApplyError) as failure:
        project(tmp_path, engine, doc("api:broken")).apply()
    assert failure.value.details["failed_service"] == "api"
    assert "model file missing" in failure.value.msg and "rolled back" in failure.value.msg
    assert failure.value.details["rollback"]["services_restored"] == ["api"]
    assert (tmp_path / "docker-compose.yml").read_text() == good
    states = {cont["Config"]["Labels"]["com.docker.compose.service"]: cont["State"]["Status"]
              for cont in engine.containers.values()}
    assert states == {"db": "running", "api": "running"}


def test_first_deploy_failure_removes_new_files_and_containers(tmp_path):
    engine = FakeEngine(tmp_path)
    with pytest.raises(ApplyError) as failure:
        project(tmp_path, engine, doc("api:broken")).apply()
    assert failure.value.details["rollback"]["files_removed"] == ["docker-compose.yml"]
    assert not (tmp_path / "docker-compose.yml").exists() and engine.containers == {}


def test_stale_root_override_is_removed_when_ours_and_kept_when_edited(tmp_path):
    """The root-level GPU override of the old layout goes once the project converged with config/."""
    engine = FakeEngine(tmp_path)
    legacy = "docker-compose.gpu-override.yml"
    old_text = "services:\n  api:\n    environment:\n      CUDA_VISIBLE_DEVICES: '0'\n"
    (tmp_path / legacy).write_text(old_text)
    (tmp_path / (legacy + LAST_GOOD_SUFFIX)).write_text(old_text)  # written by the old release's apply
    proj = project(tmp_path, engine, doc())
    proj.stale_files = [legacy]
    assert proj.stale() == ([legacy], [])
    first = proj.apply()
    assert first["stale_removed"] == [legacy] and first["changed"]
    assert not (tmp_path / legacy).exists() and not (tmp_path / (legacy + LAST_GOOD_SUFFIX)).exists()
    again = project(tmp_path, engine, doc())
    again.stale_files = [legacy]
    second = again.apply()
    assert second["changed"] is False and second["stale_removed"] == []

    # A file someone edited (or wrote without us) is kept and reported.
    (tmp_path / legacy).write_text(old_text + "# mine\n")
    (tmp_path / (legacy + LAST_GOOD_SUFFIX)).write_text(old_text)
    kept = project(tmp_path, engine, doc())
    kept.stale_files = [legacy]
    third = kept.apply()
    assert third["stale_kept"] == [legacy] and third["changed"] is False and (tmp_path / legacy).exists()
