#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see LICENSE)
"""Compute one node's wg-quick config for the fleet's WireGuard mesh."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wireguard_config
short_description: wg-quick config (address, peers) of one node of the WireGuard mesh
version_added: "0.1.0"
description:
  - Pure computation, changes nothing; the wireguard role writes the returned C(config).
  - Full mesh or hub-and-spoke; addresses from the inventory or picked from C(network) by a hash
    of the host name (stable when nodes are added).
  - The private key is not in the config; wg-quick loads it from C(private_key_path) on the node.
options:
  node:
    description: The node to render (inventory host name).
    type: str
    required: true
  nodes:
    description: Host to C({public_key, address, endpoint, listen_port}) for every mesh node.
    type: dict
    required: true
  network:
    description: The mesh network (CIDR).
    type: str
    required: true
  topology:
    description: C(mesh) (every node peers with every node) or C(hub) (spokes reach each other through the hub).
    type: str
    choices: [mesh, hub]
    default: mesh
  hub:
    description: The hub node for C(topology=hub).
    type: str
  keepalive:
    description: PersistentKeepalive seconds from nodes without a public endpoint.
    type: int
    default: 25
  private_key_path:
    description: Private key file on the node.
    type: path
    default: /etc/wireguard/wg0.key
  mtu:
    description: Interface MTU (omit for wg-quick's choice).
    type: int
  header:
    description: Comment block put first (ansible_managed).
    type: str
    default: ""
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - pmoves.fleet developers (@pmoves)
"""

EXAMPLES = r"""
- name: WireGuard | compute this node's config
  pmoves.fleet.wireguard_config:
    node: "{{ inventory_hostname }}"
    nodes: "{{ pmoves_wireguard_nodes }}"
    network: 10.77.0.0/24
  register: pmoves_wireguard_rendered
"""

RETURN = r"""
config:
  description: wg-quick config text.
  returned: success
  type: str
address:
  description: The node's mesh address.
  returned: success
  type: str
  sample: 10.77.0.2
prefix:
  description: Prefix length of the mesh network.
  returned: success
  type: int
peers:
  description: The peers of this node.
  returned: success
  type: list
  elements: dict
forward:
  description: Whether this node must forward between peers (the hub).
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pmoves.fleet.plugins.module_utils.wireguard_config import (
    WireGuardConfigError,
    build_node_config,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "node": {"type": "str", "required": True},
            "nodes": {"type": "dict", "required": True},
            "network": {"type": "str", "required": True},
            "topology": {"type": "str", "choices": ["mesh", "hub"], "default": "mesh"},
            "hub": {"type": "str"},
            "keepalive": {"type": "int", "default": 25},
            "private_key_path": {"type": "path", "default": "/etc/wireguard/wg0.key"},
            "mtu": {"type": "int"},
            "header": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = build_node_config(p["node"], p["nodes"], network=p["network"], topology=p["topology"], hub=p["hub"],
                                   keepalive=p["keepalive"], private_key_path=p["private_key_path"], mtu=p["mtu"],
                                   header=p["header"])
    except (WireGuardConfigError, KeyError, TypeError, ValueError) as err:
        module.fail_json(msg=f"cannot build the WireGuard config of {p['node']}: {err}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
