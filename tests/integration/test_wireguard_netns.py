"""A real WireGuard tunnel between two network namespaces from the generated configs.

Keys come from the pmoves.fleet.wireguard_keypair module run through `ansible` (as the role
runs it: on the node, the private key stays in its file); the wg-quick configs come from
plugins/module_utils/wireguard_config.py. wg-quick brings the tunnel up with the kernel module
where present and wireguard-go otherwise. What users rely on: ping and HTTP cross the tunnel;
a rerun keeps the keys and changes nothing.

Needs root, `ip netns`, wg-quick and (kernel wireguard or wireguard-go). Everything lives in two
throw-away namespaces joined by a veth pair, and is removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.wireguard_config import build_node_config

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).with_name("ansible")
SUFFIX = f"{os.getpid() % 10000}"
NS = {"a": f"pmwg-a-{SUFFIX}", "b": f"pmwg-b-{SUFFIX}"}
IFACE = {"a": f"pmwga{SUFFIX}", "b": f"pmwgb{SUFFIX}"}
UNDERLAY = {"a": "10.213.7.1", "b": "10.213.7.2"}
MESH_NETWORK = "10.214.7.0/24"
CONF_DIR = Path(f"/run/pmoves-test-wg-{SUFFIX}")
USERSPACE_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}


def _kernel_wireguard() -> bool:
    probe = subprocess.run(["ip", "link", "add", f"pmwgp{SUFFIX}", "type", "wireguard"], capture_output=True)
    if probe.returncode == 0:
        subprocess.run(["ip", "link", "del", f"pmwgp{SUFFIX}"], check=False)
    return probe.returncode == 0


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "wg", "wg-quick", "ping"):
        if not shutil.which(tool):
            return f"{tool} not installed (apt wireguard-tools / iproute2 / iputils-ping)"
    if not _kernel_wireguard() and not shutil.which("wireguard-go"):
        return "neither the wireguard kernel module nor wireguard-go (apt) is available"
    return None


pytestmark = [pytest.mark.integration, pytest.mark.skipif(bool(_missing()), reason=_missing() or "")]


def sh(*argv: str, ns: str | None = None, check: bool = True, timeout: float = 30, env: dict | None = None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})))
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def keypair(path: Path, check_mode: bool = False) -> dict:
    argv = [str(ANSIBLE), "localhost", "-c", "local", "-i", "localhost,", "-o",
            "-e", f"ansible_python_interpreter={sys.executable}", "-m", "pmoves.fleet.wireguard_keypair",
            "-a", f"path={path}"]
    if check_mode:
        argv.append("--check")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("localhost |"))  # -o: one line per host
    return json.loads(line.split("=>", 1)[1])


@pytest.fixture
def namespaces():
    try:
        for side in ("a", "b"):
            sh("ip", "netns", "add", NS[side])
            sh("ip", "link", "set", "lo", "up", ns=NS[side])
        sh("ip", "link", "add", f"pmva{SUFFIX}", "netns", NS["a"], "type", "veth", "peer", "name", f"pmvb{SUFFIX}",
           "netns", NS["b"])
        for side in ("a", "b"):
            sh("ip", "addr", "add", f"{UNDERLAY[side]}/24", "dev", f"pmv{side}{SUFFIX}", ns=NS[side])
            sh("ip", "link", "set", f"pmv{side}{SUFFIX}", "up", ns=NS[side])
        yield NS
    finally:
        for side in ("a", "b"):
            sh("wg-quick", "down", str(CONF_DIR / f"{IFACE[side]}.conf"), ns=NS[side], check=False)
            pids = sh("ip", "netns", "pids", NS[side], check=False).stdout.split()
            for pid in pids:
                subprocess.run(["kill", pid], check=False)
            sh("ip", "netns", "del", NS[side], check=False)
            (CONF_DIR / f"{IFACE[side]}.conf").unlink(missing_ok=True)
            Path(f"/var/run/wireguard/{IFACE[side]}.sock").unlink(missing_ok=True)
        shutil.rmtree(CONF_DIR, ignore_errors=True)


def test_generated_configs_bring_up_a_working_tunnel_and_reruns_keep_keys(namespaces, tmp_path):
    keys = {side: tmp_path / f"{side}.key" for side in ("a", "b")}
    # check mode predicts the key without creating it
    predicted = keypair(keys["a"], check_mode=True)
    assert predicted["changed"] is True and not keys["a"].exists()
    first = {side: keypair(path) for side, path in keys.items()}
    assert all(r["changed"] and r["created"] for r in first.values())
    assert oct(keys["a"].stat().st_mode & 0o777) == "0o600"
    again = keypair(keys["a"])
    assert (again["changed"], again["public_key"]) == (False, first["a"]["public_key"])

    inventory = {
        "node-a": {"public_key": first["a"]["public_key"], "endpoint": f"{UNDERLAY['a']}:51820", "listen_port": 51820},
        "node-b": {"public_key": first["b"]["public_key"], "endpoint": f"{UNDERLAY['b']}:51821", "listen_port": 51821},
    }
    built = {side: build_node_config(f"node-{side}", inventory, network=MESH_NETWORK, topology="mesh",
                                     private_key_path=str(keys[side])) for side in ("a", "b")}
    assert "PrivateKey" not in built["a"]["config"]
    assert (Path(keys["a"]).read_text().strip()) not in built["a"]["config"]
    rerun = build_node_config("node-a", inventory, network=MESH_NETWORK, private_key_path=str(keys["a"]))
    assert rerun == built["a"]  # same inputs, same file: a rerun changes nothing

    use_userspace = not _kernel_wireguard()
    for side in ("a", "b"):
        CONF_DIR.mkdir(mode=0o700, exist_ok=True)
        conf = CONF_DIR / f"{IFACE[side]}.conf"
        conf.write_text(built[side]["config"])
        conf.chmod(0o600)
        sh("wg-quick", "up", str(conf), ns=NS[side], env=USERSPACE_ENV if use_userspace else None)

    b_address = built["b"]["address"]
    ping = sh("ping", "-c", "3", "-i", "0.3", "-W", "3", b_address, ns=NS["a"], check=False, timeout=30)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    shown = sh("wg", "show", IFACE["a"], "dump", ns=NS["a"]).stdout
    assert first["b"]["public_key"] in shown

    server = subprocess.Popen(["ip", "netns", "exec", NS["b"], sys.executable, "-m", "http.server", "8765",
                               "--bind", b_address, "--directory", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (tmp_path / "hello.txt").write_text("across the tunnel\n")
    try:
        fetch = (f"import urllib.request,time\nfor i in range(50):\n  try:\n"
                 f"    print(urllib.request.urlopen('http://{b_address}:8765/hello.txt',timeout=2).read().decode());break\n"
                 f"  except OSError: time.sleep(0.2)\n")
        got = sh(sys.executable, "-c", fetch, ns=NS["a"], timeout=30)
        assert got.stdout.strip() == "across the tunnel"
        # the underlay alone cannot reach the service: it listens on the mesh address only
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://{b_address}:8765/hello.txt", timeout=1)  # from the root namespace
    finally:
        server.terminate()
        server.wait(timeout=10)
