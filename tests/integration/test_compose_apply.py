"""pmoves.fleet.compose_apply on this host: a real podman-compose project of locally built images.

Brings up a rendered project (three services; the workstation's two GPUs of seed 004), changes
one service's GPU and shows that only that container was recreated, then breaks a service and
shows the rollback to the last good files and containers, with the log tail in the failure.
The same with seed 004's layout: the user's own compose file (two services) under our override
(pmoves_compose_user_files), one line of it edited, then a broken one rolled back.

On a host without GPUs: podman-compose 1.0.3 (Debian 12) ignores
`deploy.resources.reservations.devices`, so the real override file is used; later podman-compose
releases turn the reservation into a CDI device (`nvidia.com/gpu=N`) that cannot exist here,
so the project is rendered with `gpu_reservations=False` (the GPU assignment then lives in the
environment only: PMOVES_GPU_INDEX / NVIDIA_VISIBLE_DEVICES, which change the config hash alike).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_apply import LAST_GOOD_SUFFIX
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import RenderOptions, UserFile, render_project

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("podman") and shutil.which("podman-compose")),
                       reason="needs podman and podman-compose"),
]

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/pmoves-svc-test:busybox"  # test double image: static-enough busybox, built below
FLEET = json.loads((REPO / "tests/fixtures/services/fleets/workstation.json").read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _podman_compose_version() -> tuple[int, ...]:
    out = subprocess.run(["podman-compose", "version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"podman-compos\w* version\s+(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else (0, 0)


def ensure_busybox_image(work_dir: Path) -> str:
    """A tiny image from the host's busybox and the libraries it links (no registry needed)."""
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode == 0:
        return IMAGE
    busybox = shutil.which("busybox")
    if not busybox:
        pytest.skip("needs busybox (apt: busybox) to build the test image")
    tar_path = work_dir / "rootfs.tar"
    libs = re.findall(r"(/\S+\.so[^\s]*)", subprocess.run(["ldd", busybox], capture_output=True, text=True,
                                                          check=False).stdout)
    with tarfile.open(tar_path, "w") as tar:
        tar.add(busybox, "bin/busybox")
        for lib in libs:
            tar.add(os.path.realpath(lib), lib.lstrip("/"))
        www = work_dir / "index.html"
        www.write_text("pmoves ok\n")
        tar.add(www, "www/index.html")
    subprocess.run(["podman", "import", "--change", 'CMD ["/bin/busybox", "sh"]', str(tar_path), IMAGE],
                   check=True, capture_output=True)
    return IMAGE


@pytest.fixture(scope="module")
def busybox_image(tmp_path_factory):
    return ensure_busybox_image(tmp_path_factory.mktemp("rootfs"))


def _catalog(web_port: int, api_port: int, broken: bool = False) -> list[dict]:
    httpd = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
    api_cmd = ["/bin/busybox", "sh", "-c", "echo pmoves-broken-marker: cannot load model; exit 3"] if broken else httpd
    return [
        {"name": "web", "vram_mb": 1000, "gpu": True, "image": IMAGE, "command": httpd, "port": web_port,
         "container_port": 8080, "health": "/index.html"},
        {"name": "worker", "vram_mb": 2000, "gpu": True, "image": IMAGE, "command": ["/bin/busybox", "sleep", "86400"]},
        {"name": "api", "vram_mb": 0, "gpu": False, "image": IMAGE, "command": api_cmd, "port": api_port,
         "container_port": 8080, "depends_on": ["web"], "health": {"tcp": f"127.0.0.1:{api_port}", "timeout": 8}},
    ]


class Project:
    def __init__(self, tmp: Path, reservations: bool):
        self.dir = tmp / "project"
        self.name = f"pmovestest{uuid.uuid4().hex[:8]}"
        self.env_file = tmp / "node.env"
        self.env_file.write_text("PMOVES_NODE=workstation\n")
        self.web_port, self.api_port = _free_port(), _free_port()
        self.reservations = reservations
        self.tmp = tmp

    def render(self, gpu_of_worker: int, broken: bool = False) -> dict:
        node = {"class": "gpu", "services": [{"name": "web", "gpu_index": 0}, {"name": "worker", "gpu_index": gpu_of_worker},
                                             {"name": "api", "gpu_index": None}]}
        opts = RenderOptions(project_name=self.name, env_files=(str(self.env_file),), bind_address="127.0.0.1",
                             gpu_reservations=self.reservations, strategy="manual", health_timeout=20)
        rendered = render_project("workstation", node, _catalog(self.web_port, self.api_port, broken),
                                  FLEET["hardware"]["workstation"], options=opts)
        files = [{"path": rendered.main_file, "content": rendered.compose}]
        files.append({"path": "config/docker-compose.gpu-override.yml", "content": rendered.gpu_override})
        files.append({"path": "config/gpu-assignments.yml", "content": rendered.gpu_assignments})
        return {"files": files, "compose_files": rendered.compose_files, "profiles": rendered.profiles}

    def apply(self, rendered: dict, *extra: str, state: str = "present") -> tuple[int, dict, str]:
        args = {"project_dir": str(self.dir), "project_name": self.name, "state": state, "stop_timeout": 1,
                "settle_seconds": 1.5, "health_timeout": 20, "log_lines": 5, **rendered}
        vars_file = self.tmp / "vars.json"
        vars_file.write_text(json.dumps({"apply_args": args, "result_file": str(self.tmp / "result.json")}))
        (self.tmp / "result.json").unlink(missing_ok=True)
        playbook = self.tmp / "apply.yml"
        playbook.write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - name: Compose | apply\n      pmoves.fleet.compose_apply: '{{ apply_args }}'\n"
            "      register: applied\n      ignore_errors: true\n"
            "    - name: Compose | keep the result\n      ansible.builtin.copy:\n"
            "        content: '{{ applied | to_json }}'\n        dest: '{{ result_file }}'\n        mode: '0600'\n"
            "      check_mode: false\n      diff: false\n"
        )
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CACHE_PLUGIN": "memory"}  # never read or write the shared fact cache
        proc = subprocess.run(
            [str(REPO / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
             "-e", f"@{vars_file}", "-e", "ansible_python_interpreter=" + str(REPO / ".venv/bin/python"), *extra],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
        )
        result = json.loads((self.tmp / "result.json").read_text()) if (self.tmp / "result.json").exists() else {}
        return proc.returncode, result, proc.stdout + proc.stderr

    def containers(self) -> dict[str, dict]:
        out = subprocess.run(["podman", "ps", "-a", "--format", "json", "--filter",
                              f"label=com.docker.compose.project={self.name}"], capture_output=True, text=True,
                             check=True).stdout
        return {c["Labels"]["com.docker.compose.service"]: {"id": c["Id"], "state": c["State"],
                                                            "hash": c["Labels"].get("io.pmoves.config-hash")}
                for c in json.loads(out or "[]")}

    def cleanup(self) -> None:
        ids = [c["id"] for c in self.containers().values()]
        if ids:
            subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True, check=False)
        subprocess.run(["podman", "network", "rm", "-f", f"{self.name}_default"], capture_output=True, check=False)


@pytest.fixture
def project(tmp_path, busybox_image):
    proj = Project(tmp_path, reservations=_podman_compose_version() < (1, 1))
    yield proj
    proj.cleanup()


def test_only_the_changed_service_is_recreated_and_a_broken_one_rolls_back(project):
    v1 = project.render(gpu_of_worker=0)
    rc, res, log = project.apply(v1)
    assert rc == 0 and not res.get("failed"), log
    assert res["changed"] and res["recreated"] == ["web", "api", "worker"], res  # dependencies first
    first = project.containers()
    assert {s: c["state"] for s, c in first.items()} == {"web": "running", "worker": "running", "api": "running"}
    assert (project.dir / ("docker-compose.yml" + LAST_GOOD_SUFFIX)).exists()

    # Idempotent: same inputs, nothing recreated.
    rc, res, log = project.apply(v1)
    assert rc == 0 and res["changed"] is False and res["recreated"] == [], log
    assert project.containers() == first

    # Move the worker to GPU 1: check mode predicts it, changes nothing.
    v2 = project.render(gpu_of_worker=1)
    rc, res, log = project.apply(v2, "--check", "--diff")
    assert rc == 0 and res["changed"] and res["recreated"] == ["worker"], log
    assert res["files_changed"] == ["config/docker-compose.gpu-override.yml", "config/gpu-assignments.yml",
                                    "docker-compose.yml"]
    assert "gpu: 1" in next(d["after"] for d in res["diff"] if d["after_header"].endswith("gpu-assignments.yml"))
    assert project.containers() == first

    rc, res, log = project.apply(v2)
    assert rc == 0 and res["recreated"] == ["worker"] and res["reasons"] == {"worker": "configuration changed"}, log
    second = project.containers()
    assert second["worker"]["id"] != first["worker"]["id"]
    assert second["web"]["id"] == first["web"]["id"] and second["api"]["id"] == first["api"]["id"]
    assert "gpu: 1" in (project.dir / "config/gpu-assignments.yml").read_text().split("worker:")[1]
    good_compose = (project.dir / "docker-compose.yml").read_text()

    # Break the api: the apply fails with the log tail, files and containers are back to v2.
    v3 = project.render(gpu_of_worker=1, broken=True)
    rc, res, log = project.apply(v3)
    assert res.get("failed"), log
    assert res["failed_service"] == "api"
    assert "pmoves-broken-marker: cannot load model" in res["msg"]
    assert "rolled back" in res["msg"] and res["rollback"]["services_restored"] == ["api"], res["msg"]
    assert (project.dir / "docker-compose.yml").read_text() == good_compose
    third = project.containers()
    assert third["api"]["state"] == "running" and third["api"]["hash"] == second["api"]["hash"]
    assert third["web"]["id"] == second["web"]["id"] and third["worker"]["id"] == second["worker"]["id"]
    with socket.create_connection(("127.0.0.1", project.api_port), timeout=5):
        pass

    # After the rollback the good state is current: re-applying v2 changes nothing.
    rc, res, log = project.apply(v2)
    assert rc == 0 and res["changed"] is False, log

    rc, res, log = project.apply(v2, state="absent")
    assert rc == 0 and res["changed"] and project.containers() == {}, log


def _user_file(web_port: int, worker_cmd: str = "/bin/busybox sleep 86400", web_image: str = IMAGE) -> str:
    """The user's own compose file (seed 004's docker-compose.prod.yml): images, commands, ports are theirs."""
    return (
        "# the user's file: copied verbatim\n"
        "services:\n"
        "  web:\n"
        f"    image: {web_image}\n"
        '    command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n'
        f'    ports: ["127.0.0.1:{web_port}:8080"]\n'
        "  worker:\n"
        f"    image: {IMAGE}\n"
        f'    command: ["/bin/busybox", "sh", "-c", "{worker_cmd}"]\n'
    )


def _user_rendered(project: Project, text: str) -> dict:
    catalog = [{"name": "web", "vram_mb": 1000, "gpu": True, "port": project.web_port, "health": "/index.html"},
               {"name": "worker", "vram_mb": 2000, "gpu": True}]
    node = {"class": "gpu", "services": [{"name": "web", "gpu_index": 0}, {"name": "worker", "gpu_index": 1}]}
    opts = RenderOptions(project_name=project.name, gpu_reservations=project.reservations, strategy="manual",
                         health_timeout=20)
    user = UserFile(name="docker-compose.prod.yml", text=text, data=yaml.safe_load(text))
    rendered = render_project("workstation", node, catalog, FLEET["hardware"]["workstation"], options=opts,
                              user_files=[user])
    files = [{"path": user.name, "content": text, "data": user.data},
             {"path": "config/docker-compose.gpu-override.yml", "content": rendered.gpu_override},
             {"path": "config/gpu-assignments.yml", "content": rendered.gpu_assignments}]
    return {"files": files, "compose_files": rendered.compose_files, "profiles": rendered.profiles,
            "services": list(rendered.compose["services"])}


def test_user_compose_file_under_the_override_recreates_only_the_edited_service_and_rolls_back(project):
    """Seed 004's layout with the real podman-compose: `-f docker-compose.prod.yml -f config/docker-compose.gpu-override.yml`."""
    v1_text = _user_file(project.web_port)
    v1 = _user_rendered(project, v1_text)
    assert v1["compose_files"] == ["docker-compose.prod.yml", "config/docker-compose.gpu-override.yml"]
    rc, res, log = project.apply(v1)
    assert rc == 0 and not res.get("failed"), log
    assert sorted(res["recreated"]) == ["web", "worker"], res
    first = project.containers()
    assert {s: c["state"] for s, c in first.items()} == {"web": "running", "worker": "running"}
    assert all(c["hash"] for c in first.values())  # the label came from the override, the user file is verbatim
    assert (project.dir / "docker-compose.prod.yml").read_text() == v1_text
    assert not (project.dir / "docker-compose.yml").exists()
    with socket.create_connection(("127.0.0.1", project.web_port), timeout=5):
        pass

    rc, res, log = project.apply(v1)
    assert rc == 0 and res["changed"] is False and res["recreated"] == [], log
    assert project.containers() == first

    # Edit one service's line in the user file: only that container is recreated.
    v2_text = _user_file(project.web_port, worker_cmd="/bin/busybox sleep 86401")
    v2 = _user_rendered(project, v2_text)
    rc, res, log = project.apply(v2)
    assert rc == 0 and res["recreated"] == ["worker"], (res, log)
    # The user file, and the override for worker's new config hash label.
    assert res["files_changed"] == ["config/docker-compose.gpu-override.yml", "docker-compose.prod.yml"], res
    second = project.containers()
    assert second["worker"]["id"] != first["worker"]["id"] and second["web"]["id"] == first["web"]["id"]
    assert (project.dir / ("docker-compose.prod.yml" + LAST_GOOD_SUFFIX)).read_text() == v2_text

    # A user file whose web cannot start: failure, the previous user file copy is back, web runs as before.
    v3_text = _user_file(project.web_port, worker_cmd="/bin/busybox sleep 86401").replace(
        '"httpd", "-f", "-p", "8080", "-h", "/www"]', '"sh", "-c", "echo pmoves-user-broken; exit 3"]')
    rc, res, log = project.apply(_user_rendered(project, v3_text))
    assert res.get("failed") and res["failed_service"] == "web", log
    assert "pmoves-user-broken" in res["msg"] and "rolled back" in res["msg"], res["msg"]
    assert "docker-compose.prod.yml" in res["rollback"]["files_restored"], res["rollback"]
    assert (project.dir / "docker-compose.prod.yml").read_text() == v2_text
    third = project.containers()
    assert third["web"]["state"] == "running" and third["web"]["hash"] == second["web"]["hash"]
    assert third["worker"]["id"] == second["worker"]["id"]
    with socket.create_connection(("127.0.0.1", project.web_port), timeout=5):
        pass
    rc, res, log = project.apply(v2)
    assert rc == 0 and res["changed"] is False, log
