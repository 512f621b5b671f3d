# Copyright: pmoves.fleet developers
# Apache License 2.0 (see LICENSE)

"""Shared documentation of the module attributes every pmoves.fleet module declares."""

from __future__ import annotations


class ModuleDocFragment:
    # Modules extend this and set only `support` (and `details`) per attribute.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
"""

    # Facts modules: they only read.
    FACTS = r"""
options: {}
attributes:
  facts:
    description: Action returns an C(ansible_facts) dictionary that will update existing host facts.
"""
