"""Issue 18 in the running lab: limited reruns change nothing, a stopped node is routed around within seconds,
nothing of ours listens on a non-loopback address the inventory did not ask for (lab, opt in).

Runs against a lab that is already up (`make lab`; artifacts/lab.json), does not bring it up or down:
    PMOVES_LAB_RELIABILITY=1 .venv/bin/pytest -q -m lab tests/integration/test_lab_reliability.py -s
The latencies of requests with a replica's node stopped are printed and written to
artifacts/lab-reliability.json (numbers for the report, not pass/fail).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_lab_full import Lab, recap_changed, served_by, sh, wait_until

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("PMOVES_LAB_RELIABILITY") != "1", reason="set PMOVES_LAB_RELIABILITY=1"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
]
LAB_VARS = yaml.safe_load((REPO / "inventories" / "lab" / "group_vars" / "all.yml").read_text())


@pytest.fixture(scope="module")
def lab():
    if not (REPO / "artifacts" / "lab.json").exists():
        pytest.skip("no running lab (make lab)")
    return Lab()


def asked_wildcard_ports() -> set[int]:
    """Ports the lab inventory asks to listen on every interface (its containers have no mesh)."""
    ports: set[int] = set()
    if LAB_VARS.get("pmoves_ollama_bind_all"):
        ports.add(11434)
    if LAB_VARS.get("pmoves_gateway_bind_address") == "0.0.0.0":
        ports.add(4000)
    if LAB_VARS.get("pmoves_mesh_nats_bind_address") == "0.0.0.0":
        ports.add(4222)
    if LAB_VARS.get("pmoves_monitoring_node_exporter_address") == "0.0.0.0":
        ports.add(9100)
    if LAB_VARS.get("pmoves_compose_bind_address") == "0.0.0.0":
        ports.update(int(s["port"]) for s in LAB_VARS.get("pmoves_services") or [] if isinstance(s, dict) and s.get("port"))
    return ports


OUR_PORTS = {11434, 4222, 8222, 4000, 9100, 9090, 9835, 9105, 6379}


def test_nothing_of_ours_listens_on_an_address_the_inventory_did_not_ask_for(lab):
    allowed = asked_wildcard_ports()
    exposed = {}
    for host, node in lab.data["nodes"].items():
        out = sh("podman", "exec", node["container"], "ss", "-ltnH").stdout
        for local in re.findall(r"^\S+\s+\d+\s+\d+\s+(\S+)\s", out, re.M):
            address, _sep, port = local.rpartition(":")
            address = address.strip("[]").split("%")[0]
            if int(port) in OUR_PORTS and not address.startswith("127.") and address not in ("::1",) \
                    and int(port) not in allowed:
                exposed.setdefault(host, []).append(local)
    assert exposed == {}, f"listening beyond loopback/mesh without the inventory asking: {exposed}"


def test_a_stopped_node_is_routed_around_within_seconds(lab):
    model = next(m for m in lab.models("chat") if len(lab.plan["models"][m]["placed"]) > 1)
    primary = lab.plan["models"][model]["placed"][0]
    container = lab.data["nodes"][primary]["container"]
    sh("podman", "stop", "-t", "0", container)
    latencies, served = [], []
    try:
        for _attempt in range(5):
            started = time.monotonic()
            served.append(served_by(lab.chat(model)))
            latencies.append(round(time.monotonic() - started, 2))
    finally:
        sh("podman", "start", container)
    out = REPO / "artifacts" / "lab-reliability.json"
    out.write_text(json.dumps({"model": model, "stopped": primary, "latencies_s": latencies, "served": served},
                              indent=2) + "\n")
    print(f"\n{model} with {primary} stopped: latencies {latencies} s, served by {served}")
    assert primary not in served
    # issue 18: the first request, sent before any health check noticed, is ended by the gateway's TCP deadlines
    # (pmoves_gateway_backend_tcp) and retried on the other replica: seconds, not the router's `timeout`
    # (60.37 s before them); 10 s leaves room for a loaded 2-core machine.
    assert max(latencies) < 10, latencies
    wait_until(lambda: sh("podman", "exec", container, "systemctl", "is-active", "ollama",
                          check=False).stdout.strip() == "active", 120, f"{primary} back")


@pytest.mark.skipif("LAB_LIMIT" not in (REPO / "Makefile").read_text() + "".join(
    p.read_text() for p in (REPO / "mk").glob("*")), reason="make lab LAB_LIMIT=host is not there yet")
@pytest.mark.parametrize("role", ["nats_hub", "gateway", "gpu"])
def test_a_limited_rerun_changes_nothing_on_a_converged_lab(lab, role):
    roles = lab.data.get("roles") or {}
    host = (roles.get(role) or [None])[0] if role != "gpu" else next(
        (h for h, n in lab.data["nodes"].items() if n.get("class") == "gpu"), None)
    if not host:
        pytest.skip(f"the lab runs no {role}")
    result = subprocess.run(["make", "--no-print-directory", "lab", f"LAB_LIMIT={host}"], cwd=REPO,
                            capture_output=True, text=True, timeout=3600, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    changed = recap_changed(result.stdout)
    assert changed and all(c == 0 for counts in changed.values() for c in counts), changed


def recap_counts(stdout: str) -> dict[str, dict[str, int]]:
    """Last PLAY RECAP line per host: {host: {changed, unreachable, failed}}."""
    out: dict[str, dict[str, int]] = {}
    for host, changed, unreachable, failed in re.findall(
            r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout, re.M):
        out[host] = {"changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
    return out


def test_a_stopped_gpu_node_leaves_every_other_host_unchanged_and_converges_when_back(lab):
    """Issue 17/18: one GPU node powered off, site.yml over the whole fleet: every other host changed=0 failed=0,
    the fleet report names the node unreachable, and once it is started the next run converges it."""
    host = next((h for h, n in lab.data["nodes"].items() if n.get("class") == "gpu"), None)
    if not host:
        pytest.skip("the lab runs no GPU node")
    container = lab.data["nodes"][host]["container"]
    sh("podman", "stop", "-t", "0", container)
    try:
        # LAB_LIMIT=all: site.yml over every host on the running lab without starting stopped containers
        # (plain `make lab` would start it first).
        started = time.monotonic()
        down = subprocess.run(["make", "--no-print-directory", "lab", "LAB_LIMIT=all"], cwd=REPO,
                              capture_output=True, text=True, timeout=3600, check=False)
        took = round(time.monotonic() - started, 1)
    finally:
        sh("podman", "start", container)
    found = recap_counts(down.stdout)
    print(f"\nsite.yml with {host} stopped: {took} s, recap {found}")
    assert found.get(host, {}).get("unreachable", 0) >= 1, (found, down.stdout[-4000:])
    others = {h: c for h, c in found.items() if h != host}
    assert set(others) >= set(lab.data["nodes"]) - {host}, found
    assert all(c == {"changed": 0, "unreachable": 0, "failed": 0} for c in others.values()), (others, down.stdout[-6000:])
    report = json.loads((REPO / "artifacts" / "report.json").read_text())
    assert host in report["totals"]["unreachable"], report["totals"]
    assert {r["name"]: r["status"] for r in report["hosts"]}[host] == "unreachable"

    wait_until(lambda: sh("podman", "exec", container, "systemctl", "is-system-running", check=False).stdout.strip()
               in ("running", "degraded"), 120, f"{host} booted")
    back = subprocess.run(["make", "--no-print-directory", "lab"], cwd=REPO, capture_output=True, text=True,
                          timeout=3600, check=False)
    assert back.returncode == 0, back.stdout[-6000:] + back.stderr[-2000:]
    again = recap_counts(back.stdout)
    assert all(c["unreachable"] == 0 and c["failed"] == 0 for c in again.values()), again
    assert again.get(host) is not None, again
