#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Documentation of the inventory_check action (the work happens in plugins/action/inventory_check.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: inventory_check
short_description: Refuse a bad fleet inventory before any host is touched
version_added: "0.1.0"
description:
  - Checks the whole inventory on the controller, without connecting to any host, and fails with
    one message listing every problem and what to write instead.
  - Every host must be in exactly one node-class group (C(gpu_nodes), C(edge_nodes), C(apu_nodes),
    C(npu_nodes), C(cpu_nodes)); a host in none takes C(pmoves_default_node_class) when it is set.
  - C(pmoves_models) entries need a name; C(replicas) is an integer >= 1; C(pin) hosts exist.
  - C(pmoves_services) entries need C(name) and C(vram_mb) (integer >= 0); C(primary) and
    C(fallback) hosts exist; C(classes) are node classes.
  - C(pmoves_strategy) is one of manual, vram_based, latency_optimized, isolation_first, balanced,
    spread, binpack.
  - When C(pmoves_gateway_enabled) is true the C(gateway) group has a host. It defaults to true
    when the inventory declares a C(gateway) group, so a declared but empty group is refused.
  - Declared C(pmoves_hardware) mappings follow contract 1 (node_class, memory_mb, gpus[].memory_total_mb).
  - This is an action plugin; it runs on the controller only.
author:
  - pmoves.fleet developers (@pmoves)
options:
  groups:
    description:
      - Inventory groups (name to list of hosts). Default the C(groups) magic variable, which
        holds the whole inventory even under C(--limit).
    type: dict
  hostvars:
    description:
      - Per host the variables the checks read (C(pmoves_hardware)). Default read from C(hostvars).
    type: dict
  fleet:
    description:
      - Fleet-wide settings (C(pmoves_models), C(pmoves_services), C(pmoves_strategy),
        C(pmoves_gateway_enabled), C(pmoves_default_node_class)). Default the task's variables.
    type: dict
  fail_on_warnings:
    description: Treat warnings (unknown catalog keys, repeated entries) as errors.
    type: bool
    default: false
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    description: Only reads the inventory; check mode runs the same checks.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  idempotent:
    support: full
    description: Never changes anything.
  action:
    support: full
    description: Runs on the controller.
notes:
  - Put the catalogs in C(group_vars/all); the checks read them as the first host of the play sees them.
"""

EXAMPLES = r"""
- name: Validate | Check the inventory
  pmoves.fleet.inventory_check:
  run_once: true
  delegate_to: localhost

- name: Validate | Check given data (tests)
  pmoves.fleet.inventory_check:
    groups: {all: [a], gpu_nodes: [a], gateway: [a]}
    hostvars: {a: {}}
    fleet: {pmoves_models: [{name: "llama3.2:1b", replicas: 1}]}
"""

RETURN = r"""
errors:
  description: Every problem found; the task fails when this is not empty.
  returned: always
  type: list
  elements: str
warnings:
  description: Things that work but are probably not meant (also printed as warnings).
  returned: always
  type: list
  elements: str
classes:
  description: Node class of every host, from its group or C(pmoves_default_node_class).
  returned: always
  type: dict
  sample: {lab-5090: gpu, lab-vps-gateway: cpu}
"""
