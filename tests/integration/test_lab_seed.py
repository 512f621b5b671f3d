"""The seed fleet labs of DESIGN.md contract 4b, end to end (slow: opt in with PMOVES_LAB_SEED=<fleet>).

`make lab-check` runs it for the pmoves fleet (seed 000, 8 hosts): `make lab-down`, `make lab
LAB_INVENTORY=inventories/pmoves` from scratch (first converge), then against the running lab: every
placed model answers through the gateway under its plan name and its alias, embeddings too, 401
without a key, every service the plan gives a node runs there (the stand-in of its seed image,
healthy on its port), the NATS hub and Prometheus on the seed's VPS, a listener on seed 000's
exact subjects hearing every node, the second `make lab`
changed=0 on every host, and `make lab-down` removing it all. `make lab-all` runs it per fleet.
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
from test_lab_full import served_by, sh, wait_until

REPO = Path(__file__).resolve().parents[2]
FLEET = os.environ.get("PMOVES_LAB_SEED", "")
INVENTORY = f"inventories/{FLEET}"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.lab,
    pytest.mark.skipif(not FLEET, reason="set PMOVES_LAB_SEED=<fleet> (pmoves, gpu-mesh, ...; takes many minutes)"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]


def make(target: str, **env: str) -> subprocess.CompletedProcess:
    return sh("make", "--no-print-directory", target, f"LAB_INVENTORY={INVENTORY}",
              *(f"{k}={v}" for k, v in env.items()), check=False)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """Last PLAY RECAP line per host: {host: {ok, changed, unreachable, failed}}."""
    out: dict[str, dict[str, int]] = {}
    for host, ok, changed, unreachable, failed in re.findall(
            r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout, re.M):
        out[host] = {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
    return out


class Lab:
    def __init__(self, first: subprocess.CompletedProcess | None) -> None:
        self.first = first
        self.data = json.loads((REPO / "artifacts" / "lab.json").read_text())
        self.url = self.data.get("gateway_url") or ""
        self.key = (REPO / self.data["api_key_file"]).read_text().strip()
        self.plan = json.loads((REPO / self.data["plan"]).read_text())

    def post(self, path: str, body: dict[str, Any], key: str | None = "default") -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.key if key == 'default' else key}"
        request = urllib.request.Request(self.url + path, method="POST", data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def placed(self) -> dict[str, dict[str, Any]]:
        return {m: e for m, e in self.plan["models"].items() if e.get("placed")}

    def is_embedding(self, model: str) -> bool:
        return self.plan["models"][model].get("kind") == "embedding" or "embed" in model

    def ask(self, model: str, name: str | None = None) -> None:
        """Ask the gateway for plan model `model` under `name` (its plan name, or its alias)."""
        name = name or model
        if self.is_embedding(model):
            status, body = self.post("/v1/embeddings", {"model": name, "input": "hello lab"})
            assert status == 200 and body["data"][0]["embedding"], f"{name}: {status} {body}"
        else:
            status, body = self.post("/v1/chat/completions",
                                     {"model": name, "messages": [{"role": "user", "content": "hello lab"}]})
            assert status == 200 and body["choices"][0]["message"]["content"], f"{name}: {status} {body}"

    def ask_node(self, host: str, model: str) -> None:
        """Ask `host`'s own Ollama (its published lab port) for plan model `model`: a fleet without a gateway."""
        if self.is_embedding(model):
            path, body = "/api/embed", {"model": model, "input": "hello lab"}
        else:
            path, body = "/api/chat", {"model": model, "stream": False,
                                       "messages": [{"role": "user", "content": "hello lab"}]}
        request = urllib.request.Request(self.data["nodes"][host]["ollama_url"] + path, method="POST",
                                         data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
        assert answer.get("embeddings") if self.is_embedding(model) else answer["message"]["content"], (host, answer)


def inventory_gateways() -> list[str]:
    """The hosts of the inventory's `gateway` group (none: the fleet runs no gateway)."""
    graph = json.loads(sh(".venv/bin/ansible-inventory", "-i", INVENTORY, "--list").stdout)
    return sorted((graph.get("gateway") or {}).get("hosts") or [])


@pytest.fixture(scope="module")
def lab():
    if os.environ.get("PMOVES_LAB_REUSE") == "1":
        # the checks against a lab already up (make lab LAB_INVENTORY=...); the first-converge check is skipped
        yield Lab(None)
        return
    make("lab-down")
    started = time.monotonic()
    first = make("lab")
    print(f"\n{FLEET}: make lab from scratch (first converge) took {time.monotonic() - started:.0f} s")
    assert first.returncode == 0, first.stdout[-8000:] + first.stderr[-3000:]
    yield Lab(first)
    if os.environ.get("PMOVES_LAB_KEEP") != "1":
        make("lab-down")


def test_first_converge_reaches_every_host_without_failures(lab):
    if lab.first is None:
        pytest.skip("PMOVES_LAB_REUSE=1: the lab was up before this run")
    hosts = set(lab.data["nodes"])
    found = recap(lab.first.stdout)
    assert hosts <= set(found), (sorted(hosts - set(found)), lab.first.stdout[-3000:])
    assert all(found[h]["failed"] == 0 and found[h]["unreachable"] == 0 for h in hosts), found


def test_every_placed_model_answers_by_plan_name_and_alias(lab):
    placed = lab.placed()
    if not lab.plan["models"]:
        pytest.skip("this fleet's inventory lists no Ollama model (seed 004: its LLM is a compose service)")
    assert placed, lab.plan["models"]
    if not lab.data["roles"]["gateway"]:
        # seed 001 (Forge): no gateway host; every replica answers on its own node's Ollama
        assert not inventory_gateways()
        for model, entry in sorted(placed.items()):
            for host in entry["placed"]:
                lab.ask_node(host, model)
        return
    for model, entry in sorted(placed.items()):
        lab.ask(model)
        if entry.get("alias"):
            lab.ask(model, entry["alias"])
    assert lab.post("/v1/chat/completions", {"model": sorted(placed)[0], "messages": []}, key=None)[0] == 401
    assert lab.post("/v1/chat/completions", {"model": sorted(placed)[0], "messages": []}, key="sk-wrong-x")[0] == 401


def mesh_address(lab, host: str) -> str | None:
    """The host's WireGuard address when the inventory puts it on the mesh (plan.json "wireguard")."""
    wireguard = (lab.plan.get("fleet") or {}).get("wireguard") or {}
    return wireguard.get("addresses", {}).get(host) if host in (wireguard.get("hosts") or []) else None


def test_every_planned_service_runs_its_seed_image_and_answers_on_its_node(lab):
    catalog = {s["name"]: s for s in json.loads(sh(".venv/bin/ansible-inventory", "-i", INVENTORY, "--host",
                                                   sorted(lab.data["nodes"])[0]).stdout).get("pmoves_services", [])}
    checked = 0
    for host, node in sorted(lab.data["nodes"].items()):
        services = [s["name"] if isinstance(s, dict) else s for s in lab.plan["nodes"][host].get("services") or []]
        if not services:
            continue
        ps = sh("podman", "exec", node["container"], "podman", "ps", "--format", "json").stdout
        running = {c["Labels"].get("com.docker.compose.service"): c for c in json.loads(ps or "[]")}
        for name in services:
            assert name in running and running[name]["State"] == "running", (host, name, sorted(running))
            entry = catalog.get(name, {})
            if entry.get("image"):
                # a per-node placeholder (seed 000's whisper-edge: l4t-jetpack:r{l4t}) is the node's own value
                wanted = re.sub(r"\\\{[a-z0-9_]+\\\}", "[^/:]+", re.escape(entry["image"].split("/")[-1]))
                assert re.search(wanted + "$", running[name]["Image"]), (host, name, running[name]["Image"])
            if entry.get("port"):
                # published on the node's mesh address when it is on WireGuard (seed 000), else on loopback
                address = mesh_address(lab, host) or "127.0.0.1"
                probe = sh("podman", "exec", node["container"], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           f"http://{address}:{entry['port']}/", check=False).stdout
                assert probe == "200", (host, name, address, probe)
            checked += 1
    assert checked, "no service was planned"


def test_nats_hub_and_monitoring_sit_where_the_inventory_puts_them(lab):
    roles = lab.data["roles"]
    # the gateway where the inventory's `gateway` group puts it; a fleet without Ollama models (seed 004) or whose
    # inventory names no gateway host (seed 001) runs none
    assert sorted(roles["gateway"]) == (inventory_gateways() if lab.placed() else []) and len(roles["nats_hub"]) == 1
    hub = roles["nats_hub"][0]
    state = sh("podman", "exec", lab.data["nodes"][hub]["container"], "systemctl", "is-active", "nats-server",
               check=False).stdout.strip()
    assert state == "active", (hub, state)


# Runs inside the NATS hub with the agent's venv and the hub node's own NATS user (it may subscribe to mesh.>):
# python -c LISTENER <seconds> <node,node,...> <subject>...; stops as soon as every subject carried every node.
EXACT_SUBJECT_LISTENER = r"""
import asyncio, json, sys
import nats

async def main(seconds, nodes, subjects):
    with open("/etc/pmoves/mesh-agent.json", encoding="utf-8") as handle:
        config = json.load(handle)
    conn = await nats.connect(servers=config["servers"], user=config["user"], password=config["password"],
                              connect_timeout=10, max_reconnect_attempts=0)
    heard = {subject: set() for subject in subjects}
    everyone = asyncio.Event()

    async def on_msg(msg):
        heard[msg.subject].add(json.loads(msg.data)["node_id"])
        if all(found >= nodes for found in heard.values()):
            everyone.set()

    for subject in subjects:
        await conn.subscribe(subject, cb=on_msg)
    try:
        await asyncio.wait_for(everyone.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    await conn.close()
    print(json.dumps({subject: sorted(found) for subject, found in heard.items()}))

asyncio.run(main(float(sys.argv[1]), set(sys.argv[2].split(",")), sys.argv[3:]))
"""

# What the hub and the unheard nodes say about the mesh when a listener missed them: the relay's counters and when
# it last carried each node, the hub's connections (user, messages in, last activity), each unheard node's agent's
# own view (SIGUSR1: connected, messages sent, bytes waiting, heartbeats), its TCP state towards the hub (a send
# queue that grows is a connection that went silent) and its agent's last journal lines.
HUB_CONNECTIONS = r"""
import json, urllib.request
data = json.load(urllib.request.urlopen("http://127.0.0.1:8222/connz?auth=1", timeout=10))
for c in data["connections"]:
    print(c.get("authorized_user"), c.get("ip"), "in", c.get("in_msgs"), "out", c.get("out_msgs"),
          "pending", c.get("pending_bytes"), "rtt", c.get("rtt"), "last", c.get("last_activity"), "up", c.get("uptime"))
"""


def mesh_diagnostics(lab, hub: str, missing: set[str]) -> tuple[str, str]:
    """``(verdict, details)``: one line per unheard node (relay, hub and agent side by side), then everything."""
    def run(host: str, *argv: str) -> str:
        out = sh("podman", "exec", lab.data["nodes"][host]["container"], *argv, check=False, timeout=60)
        return (out.stdout + out.stderr).strip()

    for host in missing:
        run(host, "systemctl", "kill", "-s", "USR1", "pmoves-mesh-agent")
    time.sleep(2)
    raw_stats = run(hub, "cat", "/run/pmoves-mesh-relay/stats.json")
    try:
        stats = json.loads(raw_stats)
    except ValueError:
        stats = {}
    connections = run(hub, "python3", "-c", HUB_CONNECTIONS)
    verdicts, parts = [], [f"relay stats: {raw_stats}", f"hub connections:\n{connections}",
                           f"nats-server:\n{run(hub, 'journalctl', '-u', 'nats-server', '-n', '15', '--no-pager')}",
                           f"relay:\n{run(hub, 'journalctl', '-u', 'pmoves-mesh-relay', '-n', '15', '--no-pager')}"]
    for host in sorted(missing):
        journal = run(host, "journalctl", "-u", "pmoves-mesh-agent", "-n", "15", "--no-pager", "-o", "cat")
        state = next((line for line in reversed(journal.splitlines()) if "state: " in line), "no state logged")
        seen = stats.get("last_seen", {}).get(host)
        hub_side = [line for line in connections.splitlines() if line.split(" ", 1)[0] == host]
        ago = "never" if seen is None else f"{stats.get('ts', 0) - seen:.0f} s ago"
        verdicts.append(f"{host}: relay last carried it {ago}; "
                        f"hub: {hub_side[0] if hub_side else 'no connection'}; agent {state.split('state: ')[-1]}")
        parts.append(f"{host} towards the hub:\n{run(host, 'ss', '-tno', 'dport', '=', ':4222')}\n{journal}")
    return " | ".join(verdicts), "\n".join(parts)


def test_a_listener_on_the_seeds_exact_subjects_hears_every_node(lab):
    """Seed 000: `mesh.node.announce.v1` and `mesh.gpu.status.v1` with no suffix carry every node (the hub's relay).

    The agents and the relay run sandboxed (DynamicUser) in privileged containers, where systemd's credentials never
    reach the service: this also shows the config arriving on stdin instead."""
    if not lab.data["roles"]["nats_hub"]:
        pytest.skip("this fleet runs no NATS mesh")
    hub = lab.data["roles"]["nats_hub"][0]
    container = lab.data["nodes"][hub]["container"]
    subjects = ["mesh.node.announce.v1", "mesh.gpu.status.v1"]
    nodes = set(lab.data["nodes"])
    relay = sh("podman", "exec", container, "systemctl", "is-active", "pmoves-mesh-relay", check=False).stdout.strip()
    assert relay == "active", (hub, relay)
    # every node announces and reports every 15 s: a node missing for 90 s (six heartbeats) is not on the mesh;
    # the agents give up a connection that went silent within 80 s and reconnect
    started = time.monotonic()
    out = sh("podman", "exec", container, "/opt/pmoves/mesh-agent/bin/python", "-c", EXACT_SUBJECT_LISTENER, "90",
             ",".join(sorted(nodes)), *subjects, check=False, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    heard = json.loads(out.stdout)
    missing = {node for subject in subjects for node in nodes - set(heard[subject])}
    if missing:
        verdict, details = mesh_diagnostics(lab, hub, missing)
        pytest.fail(f"unheard in 90 s: {verdict}\nheard: {heard}\n{details}\nunheard in 90 s: {verdict}")
    print(f"\nevery node heard on {', '.join(subjects)} within {time.monotonic() - started:.0f} s")


def test_the_fleet_meshes_over_wireguard_where_the_inventory_puts_it(lab):
    """Seed 000's WireGuard mesh (hub and spoke through the exit node, wireguard-go in the containers): every member
    completed a handshake, a spoke reaches another spoke's Ollama through the hub, the gateway's node URLs are mesh
    addresses and every agent's NATS connection arrives at the hub from its node's mesh address."""
    wireguard = (lab.plan.get("fleet") or {}).get("wireguard") or {}
    members = sorted(wireguard.get("hosts") or [])
    if not members:
        pytest.skip("this fleet runs no WireGuard mesh")
    addresses = wireguard["addresses"]
    nodes = lab.data["nodes"]

    def on(host: str, *argv: str) -> str:
        return sh("podman", "exec", nodes[host]["container"], *argv, check=False, timeout=60).stdout

    for host in members:
        handshakes = [line.split() for line in on(host, "wg", "show", "wg0", "latest-handshakes").splitlines()]
        assert handshakes and all(int(pair[1]) > 0 for pair in handshakes), (host, handshakes)
    holders = [h for h in members if lab.plan["nodes"][h].get("models")]
    for host in holders:
        assert lab.plan["nodes"][host]["ollama"]["url"] == f"http://{addresses[host]}:11434", host
    if len(holders) >= 2:  # spoke to spoke: only the hub forwards between them
        first, second = holders[:2]
        answer = on(first, "curl", "-s", "--max-time", "20", f"http://{addresses[second]}:11434/api/version")
        assert "version" in answer, (first, second, answer)
    hub = (lab.data["roles"]["nats_hub"] or [None])[0]
    if hub in members:
        connections = sh("podman", "exec", nodes[hub]["container"], "python3", "-c", HUB_CONNECTIONS).stdout
        came_from = {line.split()[0]: line.split()[1] for line in connections.splitlines() if line.strip()}
        for host in members:
            if host != hub:
                assert came_from.get(host) == addresses[host], (host, came_from.get(host), addresses[host])


def test_published_ports_stay_on_loopback_and_lab_json_follows_contract_4b(lab):
    """Contract 4b's lab.json for this fleet (relative paths, a 0600 key, one entry per inventory host with its
    container, class and the plan's models), and no lab container publishes a port on a non-loopback address."""
    data = lab.data
    assert data["inventory"] == INVENTORY
    for key in ("api_key_file", "plan", "report"):
        assert not Path(data[key]).is_absolute() and (REPO / data[key]).is_file(), (key, data[key])
    assert (REPO / data["api_key_file"]).stat().st_mode & 0o077 == 0
    graph = json.loads(sh(".venv/bin/ansible-inventory", "-i", INVENTORY, "--list").stdout)
    hosts = set(graph["_meta"]["hostvars"])
    assert set(data["nodes"]) == hosts
    for host, node in data["nodes"].items():
        assert sorted(node["models"]) == sorted(lab.plan["nodes"][host]["models"]), host
        ports = sh("podman", "port", node["container"], check=False).stdout
        assert "0.0.0.0" not in ports and "[::]" not in ports, (host, ports)


def test_a_stopped_replica_is_routed_around_and_used_again_when_back(lab):
    """Contract 4 on the users' fleet: with one replica's node stopped, its models still answer through the gateway
    from the other replicas; after `podman start` the node serves its models again (kept on its volume) and the
    gateway uses it again once it is the only replica left."""
    if not lab.data["roles"]["gateway"]:
        pytest.skip("this fleet runs no gateway")
    infra = {h for hosts in lab.data["roles"].values() for h in hosts}  # gateway, hub, monitoring stay up
    candidates = [(m, e["placed"][:2]) for m, e in sorted(lab.placed().items())
                  if not lab.is_embedding(m) and len(e["placed"]) >= 2 and not set(e["placed"][:2]) & infra]
    if not candidates:
        pytest.skip("no chat model with two replicas off the gateway, hub and monitoring hosts")
    model, (first, second) = candidates[0]
    nodes = lab.data["nodes"]

    def answer(name: str) -> str:
        status, body = lab.post("/v1/chat/completions", {"model": name, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200, f"{name}: {status} {body}"
        return body["choices"][0]["message"]["content"]

    def ollama_back(host: str) -> bool:
        with urllib.request.urlopen(nodes[host]["ollama_url"] + "/api/tags", timeout=5) as response:
            return set(nodes[host]["models"]) <= {m["name"] for m in json.load(response)["models"]}

    sh("podman", "stop", "-t", "5", nodes[first]["container"])
    try:
        for name in sorted(nodes[first]["models"]):  # every model of the stopped node answers from elsewhere
            if lab.is_embedding(name):
                lab.ask(name)
            elif len(lab.plan["models"][name]["placed"]) > 1:
                assert served_by(answer(name)) != first, name
    finally:
        sh("podman", "start", nodes[first]["container"])
    wait_until(lambda: ollama_back(first), 180, f"{first} to serve its models again after podman start")

    sh("podman", "stop", "-t", "5", nodes[second]["container"])  # now only the restarted node holds `model`
    try:
        answers: list[str] = []
        try:
            wait_until(lambda: answers.append(served_by(answer(model))) or answers[-1] == first, 120,
                       f"the gateway to use the restarted {first} again for {model}")
        except AssertionError as error:
            raise AssertionError(f"{error}; answered by: {answers}") from None
    finally:
        sh("podman", "start", nodes[second]["container"])
    wait_until(lambda: ollama_back(second), 180, f"{second} to serve its models again after podman start")


def test_make_lab_again_changes_nothing(lab):
    again = make("lab")
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    found = recap(again.stdout)
    assert set(lab.data["nodes"]) <= set(found)
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in found.values()), (found, again.stdout[-6000:])


def test_seed_004_layout_gpu_override_and_assignments_under_config(lab):
    """Seed 004: `config/docker-compose.gpu-override.yml` and `config/gpu-assignments.yml` beside the compose file,
    every planned service pinned to a GPU index in both."""
    if "workstation" not in lab.data["nodes"]:
        pytest.skip("seed 004's layout is checked on the workstation fleet")
    node = lab.data["nodes"]["workstation"]
    compose_dir = node.get("compose_dir") or "/opt/pmoves/compose"

    def read(rel: str) -> dict[str, Any]:
        out = sh("podman", "exec", node["container"], "cat", f"{compose_dir}/{rel}")
        return yaml.safe_load(out.stdout)

    override = read("config/docker-compose.gpu-override.yml")["services"]
    assignments = yaml.dump(read("config/gpu-assignments.yml"))
    planned = sorted(s["name"] for s in lab.plan["nodes"]["workstation"]["services"])
    assert sorted(override) == planned
    for name in planned:
        devices = override[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and devices[0]["device_ids"], (name, devices)
        assert name in assignments
    assert sh("podman", "exec", node["container"], "test", "!", "-e", f"{compose_dir}/docker-compose.gpu-override.yml",
              check=False).returncode == 0, "the pre-seed-004 root-level override is still there"
    # the user's own compose file (host_vars pmoves_compose_user_files) verbatim, layered under the override, and
    # no docker-compose.yml of ours beside it: every planned container was started from exactly those two files
    user_file = REPO / "inventories" / "workstation" / ".compose" / "docker-compose.prod.yml"
    if user_file.exists():
        copied = sh("podman", "exec", node["container"], "cat", f"{compose_dir}/docker-compose.prod.yml").stdout
        assert copied == user_file.read_text()
        assert sh("podman", "exec", node["container"], "test", "!", "-e", f"{compose_dir}/docker-compose.yml",
                  check=False).returncode == 0, "a rendered docker-compose.yml beside the user's file"
        ps = json.loads(sh("podman", "exec", node["container"], "podman", "ps", "--format", "json").stdout or "[]")
        files = {c["Labels"].get("com.docker.compose.service"): c["Labels"].get("com.docker.compose.project.config_files")
                 for c in ps}
        expected = f"{compose_dir}/docker-compose.prod.yml,{compose_dir}/config/docker-compose.gpu-override.yml"
        assert all(files.get(name) == expected for name in planned), files


FORGE_API = "http://127.0.0.1:9106/v1/hardware"


def test_forge_nodes_get_their_profile_engines_hardware_api_and_overlays(lab):
    """Seed 001: every forge node has its hardware profile files, a TensorRT-LLM engine built for its architecture
    (the lab's trtllm-build double), GET /v1/hardware answering with its profile, and artifacts/k8s holds the
    kustomize base and an overlay per SKU profile."""
    first = sorted(lab.data["nodes"])[0]
    hostvars = json.loads(sh(".venv/bin/ansible-inventory", "-i", INVENTORY, "--host", first).stdout)
    if not hostvars.get("pmoves_forge_enabled"):
        pytest.skip("this fleet has no forge nodes (seed 001's inventories/forge)")
    profiles = set()
    for host, node in sorted(lab.data["nodes"].items()):
        container = node["container"]
        api = json.loads(sh("podman", "exec", container, "curl", "-sf", FORGE_API).stdout)
        assert {"capabilities", "hardware", "profile"} <= set(api), (host, sorted(api))
        profile = api["profile"]["name"]
        profiles.add(profile)
        files = sh("podman", "exec", container, "ls", "/etc/pmoves/forge").stdout.split()
        assert {"hardware_profiles.yaml", "forge.env", "hardware.json"} <= set(files), (host, files)
        arch = api["capabilities"]["arch"]
        engines = sh("podman", "exec", container, "find", f"/engines/{arch}", "-name", "rank0.engine").stdout.split()
        assert engines, (host, arch, "no engine built")
        manifest = json.loads(sh("podman", "exec", container, "cat",
                                 str(Path(engines[0]).parent / "pmoves-engine.json")).stdout)
        assert manifest, (host, engines[0])
    k8s = REPO / "artifacts" / "k8s"
    assert (k8s / "kustomization.yaml").is_file() and (k8s / "base" / "deployment.yaml").is_file()
    overlays = {p.name for p in (k8s / "overlays").iterdir() if (p / "kustomization.yaml").is_file()}
    assert overlays and overlays <= profiles, (overlays, profiles)


def test_make_lab_down_removes_the_lab(lab):
    if os.environ.get("PMOVES_LAB_KEEP") == "1":
        pytest.skip("PMOVES_LAB_KEEP=1")
    down = make("lab-down")
    assert down.returncode == 0, down.stdout + down.stderr
    names = sh("podman", "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in names if n.startswith("pmoves-lab")]
    assert not (REPO / ".cache" / "lab").exists()
