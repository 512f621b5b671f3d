"""ollama_node_info's logic (plugins/module_utils/ollama_node.py): the role's probes in one read."""

from __future__ import annotations

import json

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_node import (
    addresses_from_ip,
    installed_version,
    node_info,
)

IP_O_ADDR = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.88.0.24/16 brd 10.88.255.255 scope global eth0\\       valid_lft forever preferred_lft forever
5: wg0    inet 10.77.0.3/24 scope global wg0\\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::a8c1:abff:fe35:2f6/64 scope link \\       valid_lft forever preferred_lft forever
"""


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("ollama version is 0.30.10\n", "0.30.10"),
        # server down or another version: the client's line names the installed binary
        ("Warning: could not connect to a running Ollama instance\nWarning: client version is 0.30.10\n", "0.30.10"),
        ("ollama version is 0.29.0\nWarning: client version is 0.30.10\n", "0.30.10"),
        ("", ""),
        ("sh: 1: /usr/local/bin/ollama: not found\n", ""),
    ],
)
def test_installed_version(output, version):
    assert installed_version(output) == version


def test_addresses_from_ip():
    assert addresses_from_ip(IP_O_ADDR) == ["127.0.0.1", "::1", "10.88.0.24", "10.77.0.3", "fe80::a8c1:abff:fe35:2f6"]
    assert addresses_from_ip("") == []


class Node:
    """A node to probe: files, groups, names, a command runner and an API, recording what was asked."""

    def __init__(self, *, files=None, groups=(), names=None, ip_rc=0, api=(200, {"version": "0.30.10"}),
                 version_out="ollama version is 0.30.10\n"):
        self.files = dict(files or {})
        self.groups = set(groups)
        self.names = dict(names or {})
        self.ip_rc = ip_rc
        self.api = api
        self.version_out = version_out
        self.commands = []
        self.urls = []

    def run(self, argv, env):
        self.commands.append((argv, env))
        if argv[0] == "ip":
            return (self.ip_rc, IP_O_ADDR if self.ip_rc == 0 else "", "" if self.ip_rc == 0 else "ip: not found")
        return 0, self.version_out, ""

    def read_file(self, path):
        return self.files.get(path)

    def exists(self, path):
        return path in self.files

    def group_exists(self, name):
        return name in self.groups

    def resolve_ipv4(self, name):
        return self.names.get(name, [])

    def http_get(self, url):
        self.urls.append(url)
        status, body = self.api
        return status, json.dumps(body) if isinstance(body, dict) else body

    def info(self, **kw):
        args = {"check_mode": False, "binary": "/usr/local/bin/ollama", "api_url": "http://127.0.0.1:11434",
                "groups": [], "read": [], "stat": [], "resolve": None, "addresses": False}
        args.update(kw)
        return node_info(run=self.run, read_file=self.read_file, exists=self.exists, group_exists=self.group_exists,
                         resolve_ipv4=self.resolve_ipv4, http_get=self.http_get, **args)


def test_converged_node_in_one_read():
    override = "/etc/systemd/system/ollama.service.d/override.conf"
    unit = "/etc/systemd/system/ollama.service"
    share = "/etc/systemd/system/pmoves-model-share.service"
    node = Node(files={"/usr/local/bin/ollama": "#!/bin/sh", unit: "[Unit]", override: "[Service]\n"},
                groups={"video", "ollama"})
    info = node.info(groups=["render", "video", "video"], read=[override, "/nope"], stat=[unit, share],
                     addresses=True)
    assert info == {
        "check_mode": False,
        "version_output": "ollama version is 0.30.10\n",
        "version": "0.30.10",
        "groups": ["video"],
        "files": {override: "[Service]\n", "/nope": None},
        "paths": {unit: True, share: False},
        "links": {},
        "resolved": None,
        "addresses": ["127.0.0.1", "::1", "10.88.0.24", "10.77.0.3", "fe80::a8c1:abff:fe35:2f6"],
        "api": {"status": 200, "version": "0.30.10"},
    }
    # --version talks to the role's API URL, like `ollama` run by hand with OLLAMA_HOST
    assert node.commands[0] == (["/usr/local/bin/ollama", "--version"], {"OLLAMA_HOST": "http://127.0.0.1:11434"})
    assert node.urls == ["http://127.0.0.1:11434/api/version"]


def test_fresh_node_in_check_mode():
    node = Node(api=(-1, ""))
    info = node.info(check_mode=True, stat=["/etc/systemd/system/ollama.service"])
    assert info["check_mode"] is True
    assert info["version"] == "" and info["version_output"] == ""
    assert node.commands == []  # no binary: nothing run
    assert info["paths"] == {"/etc/systemd/system/ollama.service": False}
    assert info["api"] == {"status": -1, "version": None}
    assert info["addresses"] is None  # not asked


def test_no_binary_no_api_asked():
    node = Node(files={"/usr/local/bin/ollama": "x"})
    info = node.info(binary=None, api_url=None)
    assert node.commands == [] and node.urls == []
    assert info["version"] == "" and info["api"] == {"status": -1, "version": None}


def test_resolve_and_failed_ip():
    node = Node(names={"node-a.lan": ["192.168.1.5", "192.168.1.5", "127.0.1.1"]}, ip_rc=127)
    info = node.info(resolve="node-a.lan", addresses=True)
    assert info["resolved"] == ["192.168.1.5", "127.0.1.1"]
    assert info["addresses"] is None  # `ip` failed: the role does not check the bind address then
    assert node.info(resolve="unknown.lan")["resolved"] == []


@pytest.mark.parametrize("api", [(404, "404 page not found"), (200, "not json"), (200, "[]")])
def test_api_answers_without_a_version(api):
    info = Node(api=api).info()
    assert info["api"] == {"status": api[0], "version": None}


@pytest.mark.parametrize(
    ("files", "links", "state"),
    [
        # a release swapped in by the role: the release to go back to is the one the symlink names
        ({}, {"/usr/local/bin/ollama": "/usr/local/lib/ollama-releases/0.30.10/bin/ollama"},
         {"exists": True, "islnk": True, "target": "/usr/local/lib/ollama-releases/0.30.10/bin/ollama"}),
        # install.sh's plain file: kept beside it as the release to go back to
        ({"/usr/local/bin/ollama": "ELF"}, {}, {"exists": True, "islnk": False, "target": None}),
        # a fresh node: nothing to go back to
        ({}, {}, {"exists": False, "islnk": False, "target": None}),
        # a dangling symlink still is one (lexists), and what it names is reported as is
        ({}, {"/usr/local/bin/ollama": "../lib/gone/ollama"}, {"exists": True, "islnk": True, "target": "../lib/gone/ollama"}),
    ],
)
def test_links_report_what_the_binary_path_is_before_a_swap(files, links, state):
    node = Node(files=files)
    info = node.info(binary=None, links=["/usr/local/bin/ollama", "/usr/local/bin/ollama"], read_link=links.get)
    assert info["links"] == {"/usr/local/bin/ollama": state}


def test_links_default_to_none_asked():
    assert Node().info()["links"] == {}
