#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see LICENSE)
"""Compute the NATS server config (hub) or a node's mesh agent config."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mesh_config
short_description: NATS server config with per-node users, or a node's mesh agent config
version_added: "0.1.0"
description:
  - Pure computation, changes nothing; the mesh role writes the results.
  - C(server) gives the nats-server config (JSON syntax) with one bcrypt-hashed user per node that
    may publish only on C(<seed subject>.<node token>) and subscribe to C(mesh.>).
  - C(agent) gives the JSON config of roles/mesh/files/pmoves_mesh_agent.py for one node, with
    capabilities from the C(pmoves_hardware) fact and services from the plan.
options:
  server:
    description:
      - C({node_passwords, clients, host, port, http_host, http_port, server_name, hash_passwords}).
      - C(clients) is a list of C({name, password, publish, subscribe}).
    type: dict
  agent:
    description:
      - C({node_id, servers, password, hardware, plan_node, interval, ollama_url, extra_services, claim_window}).
    type: dict
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
- name: Mesh | compute the NATS server config
  pmoves.fleet.mesh_config:
    server:
      node_passwords: "{{ pmoves_mesh_nats_passwords }}"
      host: 10.77.0.1
  register: pmoves_mesh_server
  no_log: true
"""

RETURN = r"""
server_config:
  description: nats-server config text (JSON syntax, passwords bcrypt-hashed).
  returned: when server is given
  type: str
agent_config:
  description: The agent's JSON config (holds the node's own NATS password).
  returned: when agent is given
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pmoves.fleet.plugins.module_utils.nats_config import (
    ClientUser,
    MeshConfigError,
    ServerOptions,
    agent_config,
    build_server_config,
    render_server_config,
)


def main():
    module = AnsibleModule(argument_spec={"server": {"type": "dict"}, "agent": {"type": "dict", "no_log": False}},
                           supports_check_mode=True, required_one_of=[("server", "agent")])
    result = {"changed": False}
    try:
        server = module.params["server"]
        if server:
            clients = [ClientUser(name=str(c["name"]), password=str(c["password"]), publish=list(c.get("publish") or []),
                                  subscribe=list(c.get("subscribe") or ["mesh.>", "_INBOX.>"]))
                       for c in server.get("clients") or []]
            options = ServerOptions(host=str(server.get("host", "127.0.0.1")), port=int(server.get("port", 4222)),
                                    http_host=str(server.get("http_host", "127.0.0.1")),
                                    http_port=server.get("http_port", 8222),
                                    server_name=str(server.get("server_name", "pmoves-mesh")))
            config = build_server_config(server.get("node_passwords") or {}, clients, options,
                                         hash_passwords=bool(server.get("hash_passwords", True)))
            result["server_config"] = render_server_config(config)
        agent = module.params["agent"]
        if agent:
            result["agent_config"] = agent_config(
                str(agent["node_id"]), list(agent["servers"]), str(agent["password"]), agent.get("hardware"),
                agent.get("plan_node"), interval=int(agent.get("interval", 15)), ollama_url=agent.get("ollama_url"),
                extra_services=list(agent.get("extra_services") or []),
                claim_window=float(agent.get("claim_window", 0.5)))
    except (MeshConfigError, KeyError, TypeError, ValueError) as err:
        module.fail_json(msg=f"cannot build the mesh config: {err}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
