"""Host firewall (nftables guard): our ports, from the roles' variables, only via loopback/mesh/fleet sources.

The ruleset text is checked by the real nft (`nft -c`) when it is installed, and loaded in a throw-away
network namespace when running as root, where a TCP connection from an outside address is dropped and
one from a fleet address gets through (two namespaces joined by a veth pair; removed at the end).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.host_firewall import (
    FirewallError,
    build_guard,
    firewall_ports,
    trusted_sources,
)

NFT = shutil.which("nft")


def test_ports_come_from_the_role_variables_and_off_features_are_left_out():
    assert firewall_ports([11434, "4222", None, "", 0, 9100, 11434, 9835]) == [4222, 9100, 9835, 11434]
    with pytest.raises(FirewallError, match="'abc'"):
        firewall_ports(["abc"])
    with pytest.raises(FirewallError, match="70000"):
        firewall_ports([70000])


def test_sources_split_by_family_names_reported_and_everything_refused():
    v4, v6, names = trusted_sources(["10.0.0.2", "192.168.1.0/24", "[fd00::1]", "gpu-1", "", None])
    assert (v4, v6, names) == (["10.0.0.2/32", "192.168.1.0/24"], ["fd00::1/128"], ["gpu-1"])
    with pytest.raises(FirewallError, match="every address"):
        trusted_sources(["0.0.0.0/0"])


def test_ruleset_drops_only_our_ports_and_covers_published_container_ports():
    guard = build_guard([11434, 6379], ["wg0"], ["10.0.0.2"])
    text = guard["ruleset"]
    assert "policy accept;" in text  # nothing but our ports is touched
    assert 'iifname { "lo", "wg0" } accept' in text
    assert "tcp dport @ports counter drop" in text
    assert "ct status dnat ct original proto-dst @ports counter drop" in text  # DNAT-ed (docker -p) ports
    assert "elements = { 6379, 11434 }" in text and "elements = { 10.0.0.2/32 }" in text
    assert "22" not in text.split("set ports", 1)[1].split(";")[1]  # never SSH


def test_without_a_mesh_only_loopback_and_fleet_sources_are_trusted():
    text = build_guard([11434], [], [])["ruleset"]
    assert 'iifname { "lo" } accept' in text and "@fleet4" not in text


@pytest.mark.parametrize("case", [([11434], ["wg0"], ["10.0.0.2", "fd00::/64"]), ([], [], []), ([9100], ["wg0"], [])])
@pytest.mark.skipif(not NFT, reason="nft not installed")
def test_nft_accepts_the_ruleset(tmp_path, case):
    path = tmp_path / "guard.nft"
    path.write_text(build_guard(*case)["ruleset"])
    result = subprocess.run([NFT, "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert result.returncode == 0, result.stderr


SUFFIX = str(os.getpid() % 10000)
NS_NODE, NS_PEER = f"pmfw-n-{SUFFIX}", f"pmfw-p-{SUFFIX}"


def _netns_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if not NFT or not shutil.which("ip"):
        return "needs nft and ip"
    return None


def _ip(*argv: str, ns: str | None = None) -> None:
    subprocess.run((["ip", "netns", "exec", ns] if ns else []) + list(argv), check=True, capture_output=True,
                   timeout=20)


@pytest.fixture
def two_namespaces():
    for ns in (NS_NODE, NS_PEER):
        _ip("ip", "netns", "add", ns)
    try:
        _ip("ip", "link", "add", f"pmfwn{SUFFIX}", "netns", NS_NODE, "type", "veth", "peer", "name", f"pmfwp{SUFFIX}",
            "netns", NS_PEER)
        _ip("ip", "addr", "add", "10.215.0.1/24", "dev", f"pmfwn{SUFFIX}", ns=NS_NODE)
        _ip("ip", "addr", "add", "10.215.0.2/24", "dev", f"pmfwp{SUFFIX}", ns=NS_PEER)
        _ip("ip", "addr", "add", "10.215.0.3/24", "dev", f"pmfwp{SUFFIX}", ns=NS_PEER)
        for ns, dev in ((NS_NODE, f"pmfwn{SUFFIX}"), (NS_PEER, f"pmfwp{SUFFIX}")):
            _ip("ip", "link", "set", dev, "up", ns=ns)
            _ip("ip", "link", "set", "lo", "up", ns=ns)
        yield
    finally:
        for ns in (NS_NODE, NS_PEER):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


CONNECT = textwrap.dedent("""
    import socket, sys
    s = socket.socket(); s.settimeout(1.5); s.bind((sys.argv[1], 0))
    try:
        s.connect(("10.215.0.1", int(sys.argv[2]))); print("open")
    except OSError as exc:
        print(type(exc).__name__)
""")


@pytest.mark.integration
@pytest.mark.skipif(bool(_netns_missing()), reason=_netns_missing() or "")
def test_guard_in_a_namespace_drops_outsiders_on_our_port_only(tmp_path, two_namespaces):
    guard = build_guard([18434], ["wg0"], ["10.215.0.2"])
    (tmp_path / "guard.nft").write_text(guard["ruleset"])
    _ip("nft", "-f", str(tmp_path / "guard.nft"), ns=NS_NODE)
    _ip("nft", "-f", str(tmp_path / "guard.nft"), ns=NS_NODE)  # re-applying replaces the table
    listeners = [subprocess.Popen(["ip", "netns", "exec", NS_NODE, sys.executable, "-c",
                                   f"import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
                                   f"socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', {port})); s.listen(8); time.sleep(30)"])
                 for port in (18434, 18500)]
    try:
        def connect(source: str, port: int) -> str:
            return subprocess.run(["ip", "netns", "exec", NS_PEER, sys.executable, "-c", CONNECT, source, str(port)],
                                  capture_output=True, text=True, timeout=20, check=True).stdout.strip()

        for _attempt in range(50):  # wait for the listeners
            if connect("10.215.0.2", 18500) == "open":
                break
        assert connect("10.215.0.2", 18434) == "open"  # fleet member: through
        assert connect("10.215.0.3", 18434) in ("TimeoutError", "timeout")  # outsider on our port: dropped
        assert connect("10.215.0.3", 18500) == "open"  # outsider on a port that is not ours: untouched
    finally:
        for proc in listeners:
            proc.kill()
            proc.wait()
