# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Lookup pmoves.fleet.fleet_default: a fleet-wide default from plugins/module_utils/fleet_schema.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_default
short_description: A fleet-wide default value (ports, mesh network, planner knobs) from the fleet schema
version_added: "0.3.0"
description:
  - Returns C(FLEET_DEFAULTS[term]) or C(PLANNER_DEFAULTS[term]) of C(plugins/module_utils/fleet_schema.py), the one
    home of values several roles and plays share.
  - Used by the defaults of the C(pmoves.fleet.common) role, which every role depends on, so inventories override
    the resulting C(pmoves_*) variables like any role default.
options:
  _terms:
    description: Names of defaults, e.g. C(ollama_port), C(gateway_port), C(wireguard_network), C(vram_reserve_mb).
    required: true
    type: list
    elements: str
author:
  - pmoves.fleet developers (@pmoves)
"""

EXAMPLES = r"""
- name: Show the default Ollama port
  ansible.builtin.debug:
    msg: "{{ lookup('pmoves.fleet.fleet_default', 'ollama_port') }}"
"""

RETURN = r"""
_raw:
  description: One value per term.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import FLEET_DEFAULTS, PLANNER_DEFAULTS


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        values = []
        known = {**PLANNER_DEFAULTS, **FLEET_DEFAULTS}
        for term in terms:
            if term not in known:
                raise AnsibleLookupError(f"fleet_default: unknown default {term!r}; known: {', '.join(sorted(known))}")
            values.append(known[term])
        return values
