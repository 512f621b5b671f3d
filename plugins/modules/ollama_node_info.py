#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Read what the Ollama role needs to know about a node, in one module run (changes nothing)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_node_info
short_description: The Ollama role's probes of a node in one read-only run
version_added: "0.1.0"
description:
  - Reads, in one module run, what C(pmoves.fleet.ollama) used to probe with one task each (issue 20, so a
    zero-change rerun runs fewer tasks). That is whether the task runs in check mode, the installed Ollama version (C(ollama --version)),
    which of the given groups exist, the content of a few small files (the old C(override.conf) drop-in), whether some
    paths exist (the units), what a listen host name resolves to (IPv4), the node's addresses (C(ip -o addr show)) and
    whether the Ollama API answers.
  - Changes nothing; runs the same way in check mode, and reports it (RV(check_mode)), also when a play or task sets
    C(check_mode) (C(ansible_check_mode) only reflects C(--check)).
author:
  - pmoves.fleet developers (@pmoves)
options:
  binary:
    description: Ollama binary to ask C(--version); omitted or missing on the node gives an empty RV(version).
    type: path
  api_url:
    description:
      - Base URL of the node's Ollama API; C(GET <api_url>/api/version) is asked (RV(api)) and C(OLLAMA_HOST) is set to
        it for C(--version).
    type: str
  api_timeout:
    description: Seconds to wait for the API.
    type: float
    default: 5
  groups:
    description: Group names; RV(groups) lists those that exist on the node.
    type: list
    elements: str
    default: []
  read:
    description: Small text files to read (RV(files); null for a file that cannot be read).
    type: list
    elements: path
    default: []
  stat:
    description: Paths whose existence is reported (RV(paths)).
    type: list
    elements: path
    default: []
  links:
    description:
      - Paths whose kind is reported (RV(links)) without following a symlink; the role reads what its binary path
        points at before it swaps a new release in (the release to go back to).
    type: list
    elements: path
    default: []
  resolve:
    description: A host name to resolve to IPv4 addresses on the node, like C(getent ahostsv4) (RV(resolved)).
    type: str
  addresses:
    description: Report the node's addresses (RV(addresses)) from C(ip -o addr show).
    type: bool
    default: false
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: Read only; reports whether it ran in check mode.
  diff_mode:
    support: N/A
    details: Changes nothing.
  idempotent:
    support: full
    details: Read only.
"""

EXAMPLES = r"""
- name: Ollama | Read the node's state
  pmoves.fleet.ollama_node_info:
    binary: /usr/local/bin/ollama
    api_url: http://127.0.0.1:11434
    groups: [render, video]
    read: [/etc/systemd/system/ollama.service.d/override.conf]
    stat: [/etc/systemd/system/ollama.service]
    addresses: true
  register: ollama_node
"""

RETURN = r"""
check_mode:
  description: The module ran in check mode.
  returned: always
  type: bool
version:
  description: Installed client version ("" when not installed or not readable).
  returned: always
  type: str
  sample: 0.30.10
version_output:
  description: What C(ollama --version) printed (stdout and stderr).
  returned: always
  type: str
groups:
  description: The names of O(groups) that exist on the node.
  returned: always
  type: list
  elements: str
  sample: [video]
files:
  description: Content of each file of O(read), null when it cannot be read.
  returned: always
  type: dict
paths:
  description: Whether each path of O(stat) exists.
  returned: always
  type: dict
  sample: {/etc/systemd/system/ollama.service: true}
links:
  description: For each path of O(links), whether it exists, whether it is a symlink and where that points (null target
    for anything else).
  returned: always
  type: dict
  sample: {/usr/local/bin/ollama: {exists: true, islnk: true, target: /usr/local/lib/ollama-releases/0.30.10/bin/ollama}}
resolved:
  description: IPv4 addresses O(resolve) resolves to on the node, in resolver order; null when O(resolve) is not set.
  returned: always
  type: list
  elements: str
addresses:
  description: The node's IPv4 and IPv6 addresses; null when not asked or C(ip) failed.
  returned: always
  type: list
  elements: str
api:
  description: The API's answer to C(GET /api/version) (status -1 when it did not answer or O(api_url) is not set).
  returned: always
  type: dict
  sample: {status: 200, version: 0.30.10}
"""

import grp
import os
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_node import node_info


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(1024 * 1024)
    except OSError:
        return None


def _read_link(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _group_exists(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _resolve_ipv4(name):
    try:
        return [info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)]
    except (OSError, UnicodeError):
        return []


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "binary": {"type": "path"},
            "api_url": {"type": "str"},
            "api_timeout": {"type": "float", "default": 5},
            "groups": {"type": "list", "elements": "str", "default": []},
            "read": {"type": "list", "elements": "path", "default": []},
            "stat": {"type": "list", "elements": "path", "default": []},
            "links": {"type": "list", "elements": "path", "default": []},
            "resolve": {"type": "str"},
            "addresses": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params

    def run(argv, env):
        if argv[0] == "ip":
            found = module.get_bin_path("ip")
            if not found:
                return 127, "", "ip not found"
            argv = [found, *argv[1:]]
        return module.run_command(argv, environ_update=env)

    def http_get(url):
        try:
            response = open_url(url, timeout=p["api_timeout"], validate_certs=False)
            return response.getcode(), response.read().decode("utf-8", "replace")
        except Exception:  # any failure means the API did not answer
            return -1, ""

    info = node_info(
        check_mode=module.check_mode, binary=p["binary"], api_url=p["api_url"], groups=p["groups"], read=p["read"],
        stat=p["stat"], resolve=p["resolve"], addresses=p["addresses"], run=run, read_file=_read,
        exists=os.path.lexists, group_exists=_group_exists, resolve_ipv4=_resolve_ipv4, http_get=http_get,
        links=p["links"], read_link=_read_link,
    )
    module.exit_json(changed=False, **info)


if __name__ == "__main__":
    main()
