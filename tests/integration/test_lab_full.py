"""`make lab` end to end, as contract 4 of DESIGN.md says (slow: opt in with PMOVES_LAB_FULL=1).

One module-scoped lab: `make lab-down`, `make lab` (fresh), then every contract-4 behaviour against
it, `make lab` again (changed=0 in every PLAY RECAP, after a node was stopped and started), and
`make lab-down` removing every container, volume, network and file the lab created.

The Ollama TEST DOUBLE names the node that generated an answer ("[ollama-test-double node=lab-5090
...]"), so the failover tests can tell which replica served a request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = ["base", "node_env", "nvidia_runtime", "jetson", "ollama", "compose", "gateway", "mesh", "monitoring"]
HOSTS = {"lab-5090": "gpu", "lab-3090ti": "gpu", "lab-jetson-1": "edge", "lab-vps-gateway": "cpu"}
GATEWAY_HOST = "lab-vps-gateway"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("PMOVES_LAB_FULL") != "1", reason="set PMOVES_LAB_FULL=1 (takes minutes)"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]


def sh(*args: str, check: bool = True, timeout: int = 5400, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command in the repository (the seed labs' 23-host converge takes up to 90 min)."""
    return subprocess.run(list(args), cwd=REPO, capture_output=True, text=True, timeout=timeout, check=check,
                          env={**os.environ, **(env or {})})


def make(target: str) -> subprocess.CompletedProcess:
    return sh("make", "--no-print-directory", target, check=False)


def lab_names(kind: str) -> set[str]:
    fmt = {"ps": ["ps", "-a", "--format", "{{.Names}}"], "volume": ["volume", "ls", "--format", "{{.Name}}"],
           "network": ["network", "ls", "--format", "{{.Name}}"]}[kind]
    return {n for n in sh("podman", *fmt).stdout.split() if n.startswith("pmoves-lab")}


def catalog() -> list[dict[str, Any]]:
    return yaml.safe_load((REPO / "inventories/lab/group_vars/all.yml").read_text())["pmoves_models"]


class Lab:
    def __init__(self) -> None:
        self.data = json.loads((REPO / "artifacts" / "lab.json").read_text())
        self.url = self.data["gateway_url"]
        self.key = (REPO / self.data["api_key_file"]).read_text().strip()
        self.plan = json.loads((REPO / self.data["plan"]).read_text())

    def post(self, path: str, body: dict[str, Any], key: str | None = "default") -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.key if key == 'default' else key}"
        request = urllib.request.Request(self.url + path, method="POST", data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def chat(self, model: str) -> str:
        status, body = self.post("/v1/chat/completions",
                                 {"model": model, "messages": [{"role": "user", "content": "hello lab"}]})
        assert status == 200, f"{model}: {status} {body}"
        content = body["choices"][0]["message"]["content"]
        assert content, body
        return content

    def embed(self, model: str) -> list[float]:
        status, body = self.post("/v1/embeddings", {"model": model, "input": "hello lab"})
        assert status == 200, f"{model}: {status} {body}"
        vector = body["data"][0]["embedding"]
        assert vector and all(isinstance(x, float) for x in vector)
        return vector

    def models(self, kind: str) -> list[str]:
        names = sorted(m for m, e in self.plan["models"].items() if e.get("placed"))
        embedding = [m for m in names if self.plan["models"][m].get("kind") == "embedding" or "embed" in m]
        return embedding if kind == "embedding" else [m for m in names if m not in embedding]


def served_by(answer: str) -> str:
    """The Ollama test double names the node that generated an answer."""
    found = re.search(r"node=(\S+)", answer)
    assert found, f"not an answer of the Ollama test double: {answer!r}"
    return found.group(1)


def wait_until(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (AssertionError, OSError) as error:
            last = error
        time.sleep(2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}: {last}")


def recap_changed(stdout: str) -> dict[str, list[int]]:
    changed: dict[str, list[int]] = {}
    for host, count in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", stdout, re.M):
        changed.setdefault(host, []).append(int(count))
    return changed


@pytest.fixture(scope="module")
def lab():
    missing = [r for r in ROLES if not (REPO / "roles" / r / "tasks" / "main.yml").exists()]
    if missing:
        pytest.skip(f"roles not in the tree yet: {', '.join(missing)}")
    if sh("podman", "image", "exists", "localhost/pmoves-molecule:bookworm-systemd", check=False).returncode:
        pytest.skip("base image missing: run tests/images/build.sh")
    make("lab-down")
    first = make("lab")
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    yield Lab()
    if os.environ.get("PMOVES_LAB_KEEP") != "1":
        make("lab-down")


def test_lab_json_follows_contract_4(lab):
    data = lab.data
    assert set(data) >= {"gateway_url", "api_key_file", "nodes", "plan", "report"}
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", data["gateway_url"])
    for key in ("api_key_file", "plan", "report"):
        path = Path(data[key])
        assert not path.is_absolute() and (REPO / path).is_file(), (key, data[key])
    assert (REPO / data["api_key_file"]).stat().st_mode & 0o077 == 0
    assert set(data["nodes"]) == set(HOSTS)
    for host, cls in HOSTS.items():
        node = data["nodes"][host]
        assert node["container"] == "pmoves-lab-" + host.removeprefix("lab-")
        assert node["class"] == cls
        assert sorted(node["models"]) == sorted(lab.plan["nodes"][host]["models"])
        if node["models"]:  # each model node's Ollama answers on its loopback URL with its models
            with urllib.request.urlopen(node["ollama_url"] + "/api/tags", timeout=10) as response:
                held = {m["name"] for m in json.load(response)["models"]}
            assert set(node["models"]) <= held, (host, held)


def test_gateway_runs_on_its_own_node_published_on_loopback(lab):
    assert lab.data["nodes"][GATEWAY_HOST]["models"] == []
    assert all(lab.plan["models"][m]["placed"] for m in lab.plan["models"])
    ports = sh("podman", "port", "pmoves-lab-vps-gateway").stdout
    port = lab.url.rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}" in ports and "0.0.0.0" not in ports
    assert sh("podman", "exec", "pmoves-lab-vps-gateway", "systemctl", "is-active", "pmoves-litellm").stdout.strip() == "active"
    for host in HOSTS:
        if host != GATEWAY_HOST:
            active = sh("podman", "exec", lab.data["nodes"][host]["container"], "systemctl", "is-active",
                        "pmoves-litellm", check=False).stdout.strip()
            assert active != "active", f"{host} runs a gateway"


def test_every_planned_chat_model_answers_under_its_name_and_alias(lab):
    aliases = {e["name"] if ":" in e["name"] else e["name"] + ":latest": e["alias"] for e in catalog() if e.get("alias")}
    chat = lab.models("chat")
    assert len(chat) >= 2, lab.plan["models"]
    for model in chat:
        assert f"model={model}" in lab.chat(model)
        if model in aliases:
            assert lab.chat(aliases[model])
    assert set(aliases) <= set(chat)


def test_embedding_models_answer_on_v1_embeddings(lab):
    embedding = lab.models("embedding")
    assert embedding, lab.plan["models"]
    for model in embedding:
        assert len(lab.embed(model)) > 8


def test_requests_without_the_key_or_with_a_wrong_one_get_401(lab):
    body = {"model": lab.models("chat")[0], "messages": [{"role": "user", "content": "hi"}]}
    assert lab.post("/v1/chat/completions", body, key=None)[0] == 401
    assert lab.post("/v1/chat/completions", body, key="sk-wrong-" + "x" * 24)[0] == 401
    assert lab.post("/v1/embeddings", {"model": lab.models("embedding")[0], "input": "x"}, key="nope")[0] == 401


OBSERVER = r"""
import asyncio, json, sys
import nats

async def main(url, user, password_file, seconds, expected):
    errors, heard = [], {}
    with open(password_file, encoding="utf-8") as handle:
        password = handle.read().strip()

    async def on_error(error):
        errors.append(str(error))

    async def on_msg(msg):
        try:
            heard.setdefault(json.loads(msg.data).get("node_id"), set()).add(msg.subject)
        except ValueError:
            pass

    conn = await nats.connect(url, user=user, password=password, connect_timeout=10, max_reconnect_attempts=0,
                              error_cb=on_error, allow_reconnect=False)
    await conn.subscribe("mesh.>", cb=on_msg)
    await conn.publish("mesh.node.announce.v1", b'{"node_id": "forged"}')  # refused by the server
    await conn.flush(timeout=5)
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline and not (expected <= set(heard) and errors):
        await asyncio.sleep(0.5)
    await conn.close()
    print(json.dumps({"heard": {k: sorted(v) for k, v in heard.items() if k}, "errors": errors}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), set(sys.argv[5:])))
"""


def test_the_nats_observer_hears_every_node_and_may_publish_nothing(lab):
    """Contract 4b: lab.json names a NATS user that may subscribe to mesh.> and publish nothing."""
    data = lab.data
    assert re.fullmatch(r"nats://127\.0\.0\.1:\d+", data["nats_url"])
    observer = data["nats_observer"]
    password_file = REPO / observer["password_file"]
    assert not Path(observer["password_file"]).is_absolute() and password_file.stat().st_mode & 0o077 == 0
    # at most two agent intervals (15 s): every node announces at least once
    out = sh(str(REPO / ".venv/bin/python"), "-c", OBSERVER, data["nats_url"], observer["user"],
             str(password_file), "35", *HOSTS, check=False, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert set(result["heard"]) == set(HOSTS), result
    assert "forged" not in result["heard"]
    assert any("permissions violation" in e.lower() and "publish" in e.lower() for e in result["errors"]), result


def test_a_stopped_replica_is_routed_around_and_a_restarted_one_keeps_its_models_and_is_used_again(lab):
    model = lab.models("chat")[0]
    first, second = lab.plan["models"][model]["placed"][:2]
    first_c, second_c = (lab.data["nodes"][h]["container"] for h in (first, second))
    held_before = set(lab.data["nodes"][first]["models"])
    sh("podman", "stop", "-t", "5", first_c)
    try:
        for name in sorted(held_before):  # every model of the stopped node still answers, from elsewhere
            if name in lab.models("embedding"):
                lab.embed(name)
            else:
                assert served_by(lab.chat(name)) != first
    finally:
        sh("podman", "start", first_c)

    def ollama_back() -> bool:
        with urllib.request.urlopen(lab.data["nodes"][first]["ollama_url"] + "/api/tags", timeout=5) as response:
            return held_before <= {m["name"] for m in json.load(response)["models"]}
    wait_until(ollama_back, 120, f"{first} to serve its models again after podman start")  # kept on its volume

    sh("podman", "stop", "-t", "5", second_c)  # now only the restarted node holds `model`
    try:
        answers: list[str] = []
        wait_until(lambda: answers.append(served_by(lab.chat(model))) or answers[-1] == first, 120,
                   f"the gateway to use the restarted {first} again")
    finally:
        sh("podman", "start", second_c)


def test_make_lab_again_converges_with_changed_0(lab):
    again = make("lab")
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    changed = recap_changed(again.stdout)
    assert set(changed) >= set(HOSTS) | {"localhost"}, again.stdout[-3000:]
    assert all(c == 0 for counts in changed.values() for c in counts), (changed, again.stdout[-6000:])
    assert lab.chat(lab.models("chat")[0])  # and still answers


def test_make_lab_down_removes_everything(lab):
    if os.environ.get("PMOVES_LAB_KEEP") == "1":
        pytest.skip("PMOVES_LAB_KEEP=1")
    down = make("lab-down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert lab_names("ps") == set() and lab_names("volume") == set() and lab_names("network") == set()
    for name in ("lab.json", "lab-api-key", "plan.json", "report.html", "report.json"):
        assert not (REPO / "artifacts" / name).exists(), name
    assert not (REPO / ".cache" / "lab").exists()
    facts = REPO / ".cache" / "facts"  # ansible-core 2.19's jsonfile cache names files s1_<host>
    assert not (list(facts.glob("lab-*")) + list(facts.glob("s1_lab-*")) if facts.is_dir() else [])
    leftover = sh("pgrep", "-af", "pmoves-lab", check=False).stdout
    assert "conmon" not in leftover and "rootlessport" not in leftover, leftover
