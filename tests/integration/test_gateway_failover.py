"""The fleet gateway with real processes: LiteLLM proxy + Redis + two Ollama test doubles.

Two Ollama API emulators (tests/doubles/ollama_emulator, a TEST DOUBLE) stand in for two nodes
holding the same models; the real LiteLLM proxy (pinned in roles/gateway/files/
requirements-litellm.txt, installed with --no-deps --require-hashes into the venv under .cache/venvs
that tests/integration/test_locks.py checks too) runs the config that
plugins/module_utils/litellm_config.py generates from a plan, with real redis-server for its
shared state and the master key read from a file. What users rely on (seed 002, contract 4):
requests succeed; a stopped node does not break them; a restarted node is used again; a
missing or wrong key gets 401; embeddings and alias names work.

All servers bind to 127.0.0.1 on free ports and are stopped at the end. LiteLLM's venv is
created from the hashed requirements on first use (a minute or more, then cached until the lock
changes; PMOVES_LITELLM_VENV puts it elsewhere).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.module_utils.litellm_config import (
    GatewayInputs,
    RedisOptions,
    RouterOptions,
    build_litellm_config,
)
from locked_venv import LOCKS, VenvBuildError, ensure_locked_venv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EMULATOR = REPO / "tests" / "doubles" / "ollama_emulator" / "ollama_test_double.py"
GATEWAY_FILES = REPO / "roles" / "gateway" / "files"
LITELLM_VENV = Path(os.environ["PMOVES_LITELLM_VENV"]) if os.environ.get("PMOVES_LITELLM_VENV") else None
CHAT_MODEL = "llama3.2:1b"
EMBED_MODEL = "nomic-embed-text:latest"
ALIAS = "XS-LOC-FRE-llama3.2-1b"
ON_DEMAND_MODEL = "qwen2.5:0.5b"  # plan resident: false: loaded by its first request, never by a health check
MASTER_KEY = "sk-pmoves-test-" + "k" * 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def http(method: str, url: str, body: dict | None = None, key: str | None = None, timeout: float = 60):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        return 0, str(err)


def install_gateway_modules(workdir: Path) -> None:
    """The modules the role installs beside config.yaml (master-key auth, TCP deadlines, shared health probes)."""
    for name in ("pmoves_gateway_auth.py", "pmoves_gateway_tcp.py", "pmoves_gateway_health.py"):
        shutil.copy(GATEWAY_FILES / name, workdir / name)


def role_backend_env() -> dict[str, str]:
    """litellm.env's TCP deadline variables from the role's defaults (pmoves_gateway_backend_tcp)."""
    defaults = yaml.safe_load((REPO / "roles" / "gateway" / "defaults" / "main.yml").read_text())
    tcp = defaults["pmoves_gateway_backend_tcp"]
    return {"AIOHTTP_SO_KEEPALIVE": "True", "AIOHTTP_TCP_KEEPIDLE": str(tcp["keepalive_idle"]),
            "AIOHTTP_TCP_KEEPINTVL": str(tcp["keepalive_interval"]), "AIOHTTP_TCP_KEEPCNT": str(tcp["keepalive_count"]),
            "PMOVES_GATEWAY_TCP_USER_TIMEOUT_MS": str(tcp["user_timeout_ms"]),
            "PMOVES_GATEWAY_TCP_SYN_RETRIES": str(tcp["syn_retries"]), "AIOHTTP_TTL_DNS_CACHE": str(tcp["dns_cache_ttl"])}


def ensure_litellm_venv() -> Path:
    """LiteLLM's venv: built once per lock (--no-deps --require-hashes, then pip check), shared with test_locks.py."""
    try:
        venv = ensure_locked_venv(LOCKS["litellm"], sys.executable, dest=LITELLM_VENV)[0]
    except VenvBuildError as err:
        pytest.fail(f"installing LiteLLM from {LOCKS['litellm']} failed:\n{err}")
    return venv / "bin" / "litellm"


class Process:
    """A child process in its own process group, stopped (and reaped) on request."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.argv, self.env, self.log = argv, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


class OllamaNode:
    def __init__(self, name: str, workdir: Path, host: str = "127.0.0.1", wrap: list[str] | None = None):
        self.name, self.port = name, free_port()
        self.url = f"http://{host}:{self.port}"
        env = dict(os.environ, OLLAMA_HOST=f"{host}:{self.port}", OLLAMA_MODELS=str(workdir / f"models-{name}"),
                   OLLAMA_TEST_DOUBLE_NODE=name)
        self.process = Process([*(wrap or []), sys.executable, str(EMULATOR), "serve"], env,
                               workdir / f"ollama-{name}.log")

    def start(self) -> None:
        self.process.start()
        wait_until(lambda: http("GET", f"{self.url}/api/version")[0] == 200, 20, f"Ollama test double {self.name}")

    def pull(self, model: str) -> None:
        status, body = http("POST", f"{self.url}/api/pull", {"model": model, "stream": False})
        assert status == 200 and body.get("status") == "success", body


TCP_PROBE = """
import socket, sys
sys.path.insert(0, sys.argv[1])
import pmoves_gateway_tcp
from litellm.llms.custom_httpx import http_handler
factory = http_handler._build_aiohttp_keepalive_socket_factory()
if factory is None:
    print("installed=%s factory=none" % pmoves_gateway_tcp.INSTALLED)
    raise SystemExit(0)
sock = factory((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 9)))
tcp = socket.IPPROTO_TCP
print("installed=%s keepalive=%d idle=%d intvl=%d cnt=%d user_timeout=%d syncnt=%d" % (
    pmoves_gateway_tcp.INSTALLED, sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    sock.getsockopt(tcp, socket.TCP_KEEPIDLE), sock.getsockopt(tcp, socket.TCP_KEEPINTVL),
    sock.getsockopt(tcp, socket.TCP_KEEPCNT), sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),
    sock.getsockopt(tcp, socket.TCP_SYNCNT)))
"""


@pytest.mark.parametrize(("env", "expected"), [
    ("role", "installed=True keepalive=1 idle=1 intvl=1 cnt=2 user_timeout=2000 syncnt=1"),
    ({"AIOHTTP_SO_KEEPALIVE": "False", "PMOVES_GATEWAY_TCP_USER_TIMEOUT_MS": "0", "PMOVES_GATEWAY_TCP_SYN_RETRIES": "0"},
     "installed=False factory=none"),
], ids=["role-defaults", "all-off"])
def test_litellms_sockets_to_the_nodes_carry_the_roles_tcp_deadlines(env, expected):
    """files/pmoves_gateway_tcp.py, imported as LiteLLM imports it, sets litellm.env's deadlines on every backend
    socket LiteLLM's own factory makes (the pinned LiteLLM; a LiteLLM without the hook is left alone)."""
    python = ensure_litellm_venv().parent / "python"
    env = role_backend_env() if env == "role" else env
    result = subprocess.run([str(python), "-c", TCP_PROBE, str(GATEWAY_FILES)], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, **env), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == expected, result.stdout


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    litellm = ensure_litellm_venv()
    workdir = tmp_path_factory.mktemp("gateway")
    started: list[Process] = []
    try:
        nodes = {name: OllamaNode(name, workdir) for name in ("node-a", "node-b")}
        for node in nodes.values():
            node.start()
            started.append(node.process)
            node.pull(CHAT_MODEL)
            node.pull(EMBED_MODEL)
            node.pull(ON_DEMAND_MODEL)

        redis_port, redis_password = free_port(), "redis-test-password"
        redis = Process(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--requirepass", redis_password], dict(os.environ),
                        workdir / "redis.log").start()
        started.append(redis)

        plan = {"schema": 1, "models": {
            CHAT_MODEL: {"wanted": 2, "placed": ["node-a", "node-b"], "kind": "chat", "alias": ALIAS},
            EMBED_MODEL: {"wanted": 2, "placed": ["node-b", "node-a"], "kind": "embedding"},
            ON_DEMAND_MODEL: {"wanted": 2, "placed": ["node-b", "node-a"], "kind": "chat", "resident": False},
        }}
        config = build_litellm_config(GatewayInputs(
            plan=plan, node_urls={name: node.url for name, node in nodes.items()},
            redis=RedisOptions(host="127.0.0.1", port=redis_port, password_env="REDIS_PASSWORD"),
            router=RouterOptions(num_retries=1, timeout=30, health_check_interval=3),
        ))
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        install_gateway_modules(workdir)
        key_file = workdir / "master.key"
        key_file.write_text(MASTER_KEY + "\n")
        key_file.chmod(0o600)

        port = free_port()
        env = dict(os.environ, LITELLM_MASTER_KEY=key_file.read_text().strip(), REDIS_PASSWORD=redis_password,
                   LITELLM_LOCAL_MODEL_COST_MAP="True", NO_DOCS="True", **role_backend_env())
        proxy = Process([str(litellm), "--config", str(workdir / "config.yaml"), "--host", "127.0.0.1",
                         "--port", str(port)], env, workdir / "litellm.log")
        proxy.start()
        started.append(proxy)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: http("GET", f"{url}/health/liveliness", timeout=2)[0] == 200, 90, "LiteLLM proxy")
        except AssertionError:
            raise AssertionError((workdir / "litellm.log").read_text()[-4000:]) from None
        yield {"url": url, "nodes": nodes, "redis_port": redis_port, "redis_password": redis_password,
               "workdir": workdir}
    finally:
        for process in reversed(started):
            process.stop()


def chat(gateway, model: str = CHAT_MODEL, key: str | None = MASTER_KEY):
    return http("POST", f"{gateway['url']}/v1/chat/completions",
                {"model": model, "messages": [{"role": "user", "content": "which node are you?"}]}, key=key)


def serving_node(body) -> str:
    """The test double names the node that generated the reply."""
    content = body["choices"][0]["message"]["content"]
    assert "ollama-test-double node=" in content, content
    return content.split("node=", 1)[1].split()[0]


def test_requests_reach_the_primary(gateway):
    status, body = chat(gateway)
    assert status == 200, body
    assert serving_node(body) == "node-a"


def test_missing_or_wrong_key_is_refused_with_401(gateway):
    assert chat(gateway, key=None)[0] == 401
    assert chat(gateway, key="sk-wrong")[0] == 401
    assert http("GET", f"{gateway['url']}/v1/models")[0] == 401


def test_models_list_names_groups_and_aliases(gateway):
    status, body = http("GET", f"{gateway['url']}/v1/models", key=MASTER_KEY)
    assert status == 200, body
    assert {CHAT_MODEL, EMBED_MODEL, ALIAS} <= {m["id"] for m in body["data"]}


def test_alias_is_a_model_name(gateway):
    status, body = chat(gateway, model=ALIAS)
    assert status == 200, body
    assert serving_node(body) in {"node-a", "node-b"}


def test_embeddings(gateway):
    status, body = http("POST", f"{gateway['url']}/v1/embeddings", {"model": EMBED_MODEL, "input": ["hello"]},
                        key=MASTER_KEY)
    assert status == 200, body
    vector = body["data"][0]["embedding"]
    assert len(vector) == 768 and abs(sum(v * v for v in vector) - 1.0) < 0.01


def test_health_checks_never_load_a_model_the_plan_loads_on_demand(gateway):
    """A health check is a real chat request: probing a model the plan loads on demand every few seconds would keep
    every model on the node loaded (and swap them through VRAM without end). The gateway probes those replicas through
    the node's resident model instead; the on-demand model is loaded by the first request that asks for it."""
    def loaded(node) -> set:
        status, body = http("GET", f"{node.url}/api/ps")
        assert status == 200, body
        return {m["name"] for m in body["models"]}

    def chats(node) -> int:
        return http("GET", f"{node.url}/_test_double/stats")[1]["requests"].get("POST /api/chat", 0)

    before = {name: chats(node) for name, node in gateway["nodes"].items()}
    time.sleep(3 * 2 + 1)  # two health check rounds (interval 3 s); nothing else talks to the nodes meanwhile
    probes = {name: chats(node) - before[name] for name, node in gateway["nodes"].items()}
    assert all(count >= 2 for count in probes.values()), f"health checks did not run: {probes}"
    assert {name: ON_DEMAND_MODEL in loaded(node) for name, node in gateway["nodes"].items()} == {
        "node-a": False, "node-b": False}, "a health check loaded the on-demand model"
    assert all(CHAT_MODEL in loaded(node) for node in gateway["nodes"].values())  # the probes' resident model

    status, body = chat(gateway, model=ON_DEMAND_MODEL)
    assert status == 200, body
    assert ON_DEMAND_MODEL in loaded(gateway["nodes"][serving_node(body)])


def test_stopped_node_fails_over_and_is_used_again_when_back(gateway):
    node_a = gateway["nodes"]["node-a"]
    node_a.process.stop()
    served = []
    for _ in range(5):
        status, body = chat(gateway)
        assert status == 200, f"gateway failed with node-a down: {body}"
        served.append(serving_node(body))
    assert set(served) == {"node-b"}
    status, body = http("POST", f"{gateway['url']}/v1/embeddings", {"model": EMBED_MODEL, "input": "x"},
                        key=MASTER_KEY)
    assert status == 200, body

    node_a.start()  # the models are on disk: a restarted node keeps them

    def primary_back():
        status, body = chat(gateway)
        assert status == 200, body
        return serving_node(body) == "node-a"

    wait_until(primary_back, 45, "node-a to serve again after its restart", interval=1.0)


def test_router_state_is_shared_through_redis(gateway):
    def health_state_in_redis():
        result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(gateway["redis_port"]), "--no-auth-warning",
                                 "-a", gateway["redis_password"], "exists", "litellm:health_check:deployment_health_state"],
                                capture_output=True, text=True, timeout=10)
        return result.stdout.strip() == "1"

    wait_until(health_state_in_redis, 20, "LiteLLM's deployment health state in Redis")


# --- A replica that vanishes without a TCP reset (issue 18) -------------------------------------------------------
# A node that loses power or is cut off answers nothing: connections hang instead of being refused. The tarpit below
# stands in for it at the primary replica's URL (it accepts TCP and never answers, the worst case: a connect timeout
# does not help), node-b holds the other replica. The gateway runs the router settings the gateway role ships
# (roles/gateway/defaults: pmoves_gateway_router), so the numbers are those of a real fleet.


class Tarpit:
    """Accepts TCP connections and never answers (a vanished node behind a NAT that still completes handshakes)."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)  # never read, never answered, never closed until stop()

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def role_router_options() -> RouterOptions:
    """RouterOptions as the gateway role passes them (its defaults file), so the test measures the shipped setup."""
    defaults = yaml.safe_load((REPO / "roles" / "gateway" / "defaults" / "main.yml").read_text())
    router = dict(defaults["pmoves_gateway_router"])
    known = set(RouterOptions.__dataclass_fields__)
    return RouterOptions(**{key: value for key, value in router.items() if key in known})


@pytest.fixture(scope="module")
def blackhole_gateway(tmp_path_factory):
    litellm = ensure_litellm_venv()
    workdir = tmp_path_factory.mktemp("gateway-blackhole")
    started: list[Process] = []
    tarpit = Tarpit()
    try:
        node_b = OllamaNode("node-b", workdir)
        node_b.start()
        started.append(node_b.process)
        node_b.pull(CHAT_MODEL)
        plan = {"schema": 1, "models": {CHAT_MODEL: {"wanted": 2, "placed": ["node-a", "node-b"], "kind": "chat"}}}
        config = build_litellm_config(GatewayInputs(
            plan=plan, node_urls={"node-a": tarpit.url, "node-b": node_b.url}, router=role_router_options()))
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        install_gateway_modules(workdir)
        port = free_port()
        env = dict(os.environ, LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True", NO_DOCS="True",
                   **role_backend_env())
        proxy = Process([str(litellm), "--config", str(workdir / "config.yaml"), "--host", "127.0.0.1",
                         "--port", str(port)], env, workdir / "litellm.log")
        proxy.start()
        started.append(proxy)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: http("GET", f"{url}/health/liveliness", timeout=2)[0] == 200, 90, "LiteLLM proxy")
        except AssertionError:
            raise AssertionError((workdir / "litellm.log").read_text()[-4000:]) from None
        yield {"url": url, "workdir": workdir, "config": config}
    finally:
        for process in reversed(started):
            process.stop()
        tarpit.stop()


def test_a_primary_that_never_answers_is_skipped(blackhole_gateway):
    """Every request is answered by the healthy replica; the latencies are written for the report (not asserted)."""
    # Wait for the gateway's first health round (it starts at boot and marks the tarpit down after its timeout).
    time.sleep(float(blackhole_gateway["config"]["model_list"][0]["model_info"].get("health_check_timeout", 0)) + 2)
    latencies, served = [], []
    for _ in range(5):
        started = time.monotonic()
        status, body = http("POST", f"{blackhole_gateway['url']}/v1/chat/completions",
                            {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]},
                            key=MASTER_KEY, timeout=60)
        latencies.append(round(time.monotonic() - started, 2))
        assert status == 200, f"gateway failed with the primary blackholed: {body}"
        served.append(serving_node(body))
    assert set(served) == {"node-b"}
    measured = {"latencies_s": latencies, "router": blackhole_gateway["config"]["router_settings"]}
    out = Path(os.environ.get("PMOVES_MEASURE_DIR", str(blackhole_gateway["workdir"]))) / "gateway-blackhole.json"
    out.write_text(json.dumps(measured, indent=2, default=str) + "\n")
    print(f"\nblackholed primary: request latencies {latencies} s (written to {out})")


@pytest.mark.parametrize("policy", ["role", "without-policy"])
def test_a_busy_single_replica_whose_health_checks_time_out_still_answers(tmp_path, policy):
    """A node whose only replica answers slower than the health check timeout (Ollama queueing the check behind a
    generation; the 23-node homelab lab on a loaded host): its checks time out and cool it down, yet requests for
    the model are still answered by it (LiteLLM's safety net, on with `allowed_fails_policy`), never a 429
    "No deployments available". Without the policy (`without-policy`, the config before the fix) they were 429s."""
    litellm = ensure_litellm_venv()
    node = OllamaNode("node-a", tmp_path)
    node.start()
    proxy = None
    try:
        node.pull(CHAT_MODEL)
        router = role_router_options()
        config = build_litellm_config(GatewayInputs(
            plan={"schema": 1, "models": {CHAT_MODEL: {"wanted": 1, "placed": ["node-a"], "kind": "chat"}}},
            node_urls={"node-a": node.url}, router=router))
        assert config["router_settings"].get("allowed_fails_policy"), config["router_settings"]
        if policy == "without-policy":
            del config["router_settings"]["allowed_fails_policy"]
        # every piece takes longer than a health check may: each check (max_tokens 1) times out
        delay = router.health_check_timeout + 1.5
        assert http("POST", f"{node.url}/_test_double/token_delay", {"seconds": delay})[0] == 200
        proxy, url = start_proxy(litellm, tmp_path, config)
        # two health rounds have timed out on the node (interval + timeout each), so it is cooling down
        time.sleep(2 * (router.health_check_interval + router.health_check_timeout) + 1)
        statuses = []
        for _ in range(3):
            status, body = http("POST", f"{url}/v1/chat/completions",
                                {"model": CHAT_MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]},
                                key=MASTER_KEY, timeout=60)
            statuses.append(status)
            if policy == "role":
                assert status == 200, f"the only replica, busy but alive, was refused: {body}"
                assert "ollama-test-double" in body["choices"][0]["message"]["content"], body  # node-a's one piece
        if policy == "without-policy":
            assert 429 in statuses, statuses  # the failure the policy removes (shows the test can fail)
    finally:
        if proxy is not None:
            proxy.stop()
        node.process.stop()


PROBE_CHAT = ["llama3.2:1b", "llama3.2:3b", "qwen2.5:0.5b", "tinyllama:1.1b"]  # llama3.2:1b is the node's probe
PROBE_EMBED = ["all-minilm:latest", "nomic-embed-text:latest"]  # all-minilm:latest is the node's probe


def probe_counts(node: OllamaNode) -> tuple[int, int]:
    requests = http("GET", f"{node.url}/_test_double/stats")[1]["requests"]
    return (requests.get("POST /api/chat", 0),
            requests.get("POST /api/embed", 0) + requests.get("POST /api/embeddings", 0))


@pytest.mark.parametrize("sharing", ["role", "without-sharing"])
def test_health_checks_cost_one_probe_per_node_and_kind(tmp_path, sharing):
    """issue 17: the homelab's gateway (a Pi 5) probed each of 61 replicas every 2 s and a round outlasted the
    interval. Every replica on a node is probed through the node's probe of its kind, and files/
    pmoves_gateway_health.py sends a round's identical probes once: four chat and two embedding models on one node
    cost one chat and one embedding request per round, and only the two probes get loaded. `without-sharing` (the
    config without the module) sends one request per replica: the cost the change removes."""
    litellm = ensure_litellm_venv()
    node = OllamaNode("node-a", tmp_path)
    node.start()
    proxy = None
    try:
        for model in PROBE_CHAT + PROBE_EMBED:
            node.pull(model)
        router = role_router_options()
        plan = {"schema": 1, "models": {
            **{m: {"wanted": 1, "placed": ["node-a"], "kind": "chat"} for m in PROBE_CHAT},
            **{m: {"wanted": 1, "placed": ["node-a"], "kind": "embedding"} for m in PROBE_EMBED}}}
        config = build_litellm_config(GatewayInputs(plan=plan, node_urls={"node-a": node.url}, router=router))
        if sharing == "without-sharing":
            config["litellm_settings"]["callbacks"].remove("pmoves_gateway_health.handler")
        proxy, _url = start_proxy(litellm, tmp_path, config)
        wait_until(lambda: all(probe_counts(node)), 30, "the first health round")
        time.sleep(router.health_check_interval)  # the first round is over
        assert http("POST", f"{node.url}/_test_double/reset_stats")[0] == 200
        window = 3 * router.health_check_interval  # three rounds at most (each round, then the interval)
        time.sleep(window)
        chats, embeds = probe_counts(node)
        rounds = window // router.health_check_interval + 1
        print(f"\n{sharing}: {chats} chat and {embeds} embedding probes in {window} s for "
              f"{len(PROBE_CHAT)} + {len(PROBE_EMBED)} replicas on one node")
        if sharing == "role":
            assert 1 <= chats <= rounds and 1 <= embeds <= rounds, (chats, embeds)
        else:
            assert chats >= len(PROBE_CHAT) * 2 and embeds >= len(PROBE_EMBED) * 2, (chats, embeds)
        _status, body = http("GET", f"{node.url}/api/ps")
        assert {m["name"] for m in body["models"]} == {PROBE_CHAT[0], PROBE_EMBED[0]}, body
    finally:
        if proxy is not None:
            proxy.stop()
        node.process.stop()


SHARED_ROUND = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import pmoves_gateway_health
from litellm.proxy import health_check
deployments = json.loads(sys.argv[2])
healthy, unhealthy, _ = asyncio.run(health_check._perform_health_check(deployments))
print(json.dumps({"installed": pmoves_gateway_health.INSTALLED,
                  "healthy": sorted(e["model_id"] for e in healthy),
                  "unhealthy": sorted(e["model_id"] for e in unhealthy)}))
"""


def test_a_node_that_stops_answering_is_down_for_every_replica_on_it_in_the_same_round(tmp_path):
    """The shared probe's answer is every replica's answer: with the node up, its four replicas are healthy after
    one request; with it stopped, all four are down in that round (none is left "healthy" by a probe it shared)."""
    python = ensure_litellm_venv().parent / "python"
    node = OllamaNode("node-a", tmp_path)
    node.start()
    try:
        node.pull(PROBE_CHAT[0])
        deployments = [{"model_name": m, "litellm_params": {"model": f"ollama_chat/{m}", "api_base": node.url},
                        "model_info": {"id": f"{m}@node-a", "mode": "chat", "health_check_timeout": 2,
                                       "health_check_max_tokens": 1,
                                       **({"health_check_model": f"ollama_chat/{PROBE_CHAT[0]}"}
                                          if m != PROBE_CHAT[0] else {})}} for m in PROBE_CHAT]
        ids = sorted(f"{m}@node-a" for m in PROBE_CHAT)

        def run_round() -> dict:
            result = subprocess.run([str(python), "-c", SHARED_ROUND, str(GATEWAY_FILES), json.dumps(deployments)],
                                    capture_output=True, text=True, timeout=120,
                                    env=dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True"), check=False)
            assert result.returncode == 0, result.stderr[-3000:]
            return json.loads(result.stdout.strip().splitlines()[-1])

        up = run_round()
        assert up == {"installed": True, "healthy": ids, "unhealthy": []}, up
        assert probe_counts(node)[0] == 1  # one request for the four
        node.process.stop()
        down = run_round()
        assert down == {"installed": True, "healthy": [], "unhealthy": ids}, down
    finally:
        node.process.stop()


# --- A replica that vanishes while the gateway runs (issue 18) ----------------------------------------------------
# Two healthy replicas, then node-a vanishes without a TCP reset, two ways:
#   stop - SIGSTOP of its Ollama process: the kernel still completes handshakes into the listen backlog and acks
#          what is sent, nothing ever answers (a hung node, or one whose Ollama is wedged);
#   drop - node-a lives in its own network namespace and every packet into and out of it is dropped (nft, policy
#          drop): no handshake, no ack, no reset (power loss, a cut cable, a partition). Needs root, ip and nft.
# The helpers are shared with benchmarks/bench_gateway_vanish.py.

SILENT_TABLE = "pmoves_silent"


def netns_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root for a network namespace"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return f"{tool} not installed (apt iproute2 / nftables)"
    return None


class SilentNetns:
    """A network namespace joined to this one by a veth pair; silence() drops every packet into and out of it."""

    def __init__(self, tag: str):
        suffix = f"{os.getpid() % 10000}{tag}"
        self.name, self.veth = f"pmgw-{suffix}", f"pmgw{suffix}"
        octet = 16 + (os.getpid() + len(tag)) % 200
        self.host_address, self.address = f"10.217.{octet}.1", f"10.217.{octet}.2"

    def _ip(self, *argv: str) -> None:
        subprocess.run(["ip", *argv], check=True, capture_output=True, text=True, timeout=30)

    def create(self) -> SilentNetns:
        self.remove()
        self._ip("netns", "add", self.name)
        self._ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        self._ip("addr", "add", f"{self.host_address}/30", "dev", self.veth)
        self._ip("link", "set", self.veth, "up")
        self._ip("-n", self.name, "addr", "add", f"{self.address}/30", "dev", "eth0")
        self._ip("-n", self.name, "link", "set", "eth0", "up")
        self._ip("-n", self.name, "link", "set", "lo", "up")
        return self

    def wrap(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def _nft(self, rules: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, "nft", "-f", "-"], input=rules, check=True,
                       capture_output=True, text=True, timeout=30)

    def silence(self) -> None:
        chains = "".join(f"  chain {hook} {{\n    type filter hook {hook} priority 0; policy drop;\n  }}\n"
                         for hook in ("input", "output"))
        self._nft(f"table inet {SILENT_TABLE} {{\n{chains}}}\n")

    def restore(self) -> None:
        self._nft(f"delete table inet {SILENT_TABLE}\n")

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.veth], check=False, capture_output=True, timeout=30)


def start_proxy(litellm: Path, workdir: Path, config: dict, extra_env: dict[str, str] | None = None):
    """The real LiteLLM proxy on `config` (the auth module beside it); returns (process, url) once it answers."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    install_gateway_modules(workdir)
    port = free_port()
    env = dict(os.environ, LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True", NO_DOCS="True",
               **{**role_backend_env(), **(extra_env or {})})
    proxy = Process([str(litellm), "--config", str(workdir / "config.yaml"), "--host", "127.0.0.1",
                     "--port", str(port)], env, workdir / "litellm.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http("GET", f"{url}/health/liveliness", timeout=2)[0] == 200, 120, "LiteLLM proxy")
    except AssertionError:
        proxy.stop()
        raise AssertionError((workdir / "litellm.log").read_text()[-4000:]) from None
    return proxy, url


def timed_chat(url: str, stream: bool = False, timeout: float = 60, model: str = CHAT_MODEL) -> dict:
    """One chat request: {status, node, content, seconds, first_chunk_s (streams), error}."""
    body = {"model": model, "messages": [{"role": "user", "content": "which node are you?"}], "stream": stream}
    started = time.monotonic()
    result: dict = {"status": 0, "node": None, "content": "", "first_chunk_s": None, "error": None}
    if not stream:
        status, answer = http("POST", f"{url}/v1/chat/completions", body, key=MASTER_KEY, timeout=timeout)
        result["status"] = status
        if status == 200:
            result["content"] = answer["choices"][0]["message"]["content"]
        else:
            result["error"] = str(answer)[:300]
    else:
        request = urllib.request.Request(f"{url}/v1/chat/completions", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {MASTER_KEY}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                result["status"] = response.status
                for raw in response:
                    line = raw.decode().strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    if chunk.get("error"):
                        result["status"], result["error"] = 0, str(chunk["error"])[:300]
                        break
                    piece = ((chunk.get("choices") or [{}])[0].get("delta") or {}).get("content") or ""
                    if piece and result["first_chunk_s"] is None:
                        result["first_chunk_s"] = round(time.monotonic() - started, 2)
                    result["content"] += piece
        except urllib.error.HTTPError as err:
            result["status"], result["error"] = err.code, err.read().decode(errors="replace")[:300]
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as err:
            result["status"], result["error"] = 0, str(err)[:300]
    result["seconds"] = round(time.monotonic() - started, 2)
    if "ollama-test-double node=" in result["content"]:
        result["node"] = result["content"].split("node=", 1)[1].split()[0]
    return result


class VanishingPair:
    """Two replicas of CHAT_MODEL (node-a primary, node-b) behind the real LiteLLM proxy; node-a can vanish."""

    def __init__(self, workdir: Path, router: RouterOptions, mode: str = "stop", token_delay: float = 0.0,
                 extra_env: dict[str, str] | None = None):
        self.workdir, self.router, self.mode, self.extra_env = workdir, router, mode, extra_env
        self.token_delay = token_delay
        self.started: list[Process] = []
        self.netns: SilentNetns | None = None
        self.url = ""
        self.config: dict = {}
        self.vanished = False

    def __enter__(self) -> VanishingPair:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        litellm = ensure_litellm_venv()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.mode == "drop":
            self.netns = SilentNetns("a").create()
            node_a = OllamaNode("node-a", self.workdir, host=self.netns.address, wrap=self.netns.wrap())
        else:
            node_a = OllamaNode("node-a", self.workdir)
        self.nodes = {"node-a": node_a, "node-b": OllamaNode("node-b", self.workdir)}
        for node in self.nodes.values():
            node.process.env["OLLAMA_TEST_DOUBLE_TOKEN_DELAY"] = str(self.token_delay)
            node.start()
            self.started.append(node.process)
            node.pull(CHAT_MODEL)
        plan = {"schema": 1, "models": {CHAT_MODEL: {"wanted": 2, "placed": ["node-a", "node-b"], "kind": "chat"}}}
        self.config = build_litellm_config(GatewayInputs(
            plan=plan, node_urls={name: node.url for name, node in self.nodes.items()}, router=self.router))
        proxy, self.url = start_proxy(litellm, self.workdir, self.config, self.extra_env)
        self.started.append(proxy)

    def wait_primary(self, timeout: float = 90) -> None:
        """Both replicas serve: the primary answers through the gateway (after its health checks said so)."""
        wait_until(lambda: timed_chat(self.url, timeout=30)["node"] == "node-a", timeout, "node-a serving", 1.0)
        time.sleep(self.router.health_check_interval + self.router.health_check_timeout)
        wait_until(lambda: timed_chat(self.url, timeout=30)["node"] == "node-a", timeout, "node-a serving", 1.0)

    def vanish(self) -> None:
        proc = self.nodes["node-a"].process.proc
        if self.mode == "drop":
            self.netns.silence()
        else:
            os.killpg(proc.pid, signal.SIGSTOP)
        self.vanished = True

    def come_back(self) -> None:
        if not self.vanished:
            return
        if self.mode == "drop":
            self.netns.restore()
        else:
            os.killpg(self.nodes["node-a"].process.proc.pid, signal.SIGCONT)
        self.vanished = False

    def close(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.come_back()
        for process in reversed(self.started):
            process.stop()
        if self.netns is not None:
            self.netns.remove()


@pytest.fixture(scope="module", params=["stop", "drop"])
def vanishing_pair(request, tmp_path_factory):
    """node-a and node-b serving through the proxy with the role's router defaults; node-a can vanish."""
    if request.param == "drop" and netns_missing():
        pytest.skip(f"drop mode: {netns_missing()}")
    workdir = tmp_path_factory.mktemp(f"gateway-vanish-{request.param}")
    with VanishingPair(workdir, role_router_options(), mode=request.param) as pair:
        pair.wait_primary()
        yield pair


def set_token_delay(pair: VanishingPair, seconds: float) -> None:
    for node in pair.nodes.values():
        status, body = http("POST", f"{node.url}/_test_double/token_delay", {"seconds": seconds})
        assert status == 200, body


def test_long_answers_outlast_the_stream_bound(vanishing_pair):
    """A stream is bounded per chunk (stream_timeout), not in total; a non-streaming answer only by `timeout`."""
    router = role_router_options()
    set_token_delay(vanishing_pair, 1.0)  # ~9 pieces: about 9 s per answer, past the 4 s stream bound
    try:
        for stream in (True, False):
            result = timed_chat(vanishing_pair.url, stream=stream, timeout=120)
            assert result["status"] == 200, result
            assert "You said: which node are you?" in result["content"], result
            assert result["node"] == "node-a", result  # served by the primary, no failover on a slow answer
            assert result["seconds"] > router.stream_timeout, result
    finally:
        set_token_delay(vanishing_pair, 0.0)


def test_a_non_streaming_request_in_flight_when_its_replica_vanishes_is_answered_by_the_other(vanishing_pair):
    """node-a vanishes without a reset while it computes a non-streaming answer: node-b answers it within seconds.

    Nothing bounds such a request's wait but `timeout` (600 s) in LiteLLM itself; the role's TCP deadlines
    (pmoves_gateway_backend_tcp: keepalive probes, TCP_USER_TIMEOUT, TCP_SYNCNT through files/pmoves_gateway_tcp.py)
    end the silent connection and the reconnect, and the router retries on node-b. `drop` mode only: a process that
    is merely stopped still has its kernel acknowledge everything (a wedged Ollama is bounded by `timeout` alone).
    """
    pair = vanishing_pair
    if pair.mode != "drop":
        pytest.skip("a stopped process's kernel still acknowledges: only `timeout` bounds it (docs/reliability.md)")
    node_a = pair.nodes["node-a"]
    status, body = http("POST", f"{node_a.url}/_test_double/token_delay", {"seconds": 1.0})  # ~9 s answer
    assert status == 200, body
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(timed_chat(pair.url, stream=False, timeout=90)))
    try:
        worker.start()
        time.sleep(2.0)  # the request is on node-a, mid-answer
        pair.vanish()
        vanished_at = time.monotonic()
        worker.join(95)
        answered_after = round(time.monotonic() - vanished_at, 2)
    finally:
        pair.come_back()
        http("POST", f"{node_a.url}/_test_double/token_delay", {"seconds": 0.0})
    print(f"\ndrop: in-flight non-streaming request answered {answered_after} s after node-a vanished: {outcome}")
    assert outcome.get("status") == 200 and outcome.get("node") == "node-b", outcome
    assert answered_after < 10, (answered_after, outcome)
    router = role_router_options()
    wait_until(lambda: timed_chat(pair.url, timeout=30)["node"] == "node-a", router.cooldown_time + 60,
               "node-a to serve again once back", interval=1.0)


def test_requests_are_answered_while_a_replica_has_vanished(vanishing_pair):
    """node-a vanishes without a reset: each request is answered by node-b; node-a serves again once back.

    Streams are sent at once (the gateway has not noticed yet: stream_timeout bounds the wait, then the retry goes
    to node-b); non-streaming requests once a health check round has timed out on node-a (a non-streaming request
    sent to it before that waits `timeout`, docs/reliability.md). The latencies are printed, and each must be under
    10 s: what a user sees, with room for a loaded machine.
    """
    router = role_router_options()
    pair = vanishing_pair
    pair.vanish()
    vanished_at = time.monotonic()
    measured: dict[str, list[float]] = {"stream": [], "non-stream": []}
    try:
        for _ in range(5):
            result = timed_chat(pair.url, stream=True, timeout=30)
            assert result["status"] == 200 and result["node"] == "node-b", result
            measured["stream"].append(result["seconds"])
        time.sleep(max(0.0, router.health_check_interval + router.health_check_timeout + 3
                       - (time.monotonic() - vanished_at)))
        for _ in range(5):
            result = timed_chat(pair.url, stream=False, timeout=30)
            assert result["status"] == 200 and result["node"] == "node-b", result
            measured["non-stream"].append(result["seconds"])
    finally:
        pair.come_back()
    print(f"\n{pair.mode}: latencies with node-a vanished (s): {measured}")
    assert max(measured["stream"] + measured["non-stream"]) < 10, measured
    wait_until(lambda: timed_chat(pair.url, timeout=30)["node"] == "node-a", router.cooldown_time + 60,
               "node-a to serve again once back", interval=1.0)
