#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache License 2.0 (see LICENSE)
"""Refresh apt's package lists when they cannot install the wanted packages, whatever their age."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apt_refresh
short_description: Refresh apt package lists when they are empty or lack a wanted package
version_added: "0.2.0"
description:
  - Runs C(apt-get update) when a wanted package that is not installed has no install candidate in the
    current lists (the lists directory holds no package index, or the package is not in it), whatever the
    lists' age. Wanted packages that are all installed refresh nothing.
  - C(ansible.builtin.apt) with C(cache_valid_time) judges the lists by their age only, so a host whose
    lists are empty but recent (a new cloud image, a freshly built container, a restored snapshot) is
    never refreshed and the install fails with C(No package matching 'x' is available).
  - Fails, naming the packages and the configured sources, when a refresh still leaves a wanted package
    without a candidate (a typo, a missing repository), before anything is installed.
  - On a host without C(apt-get) (not Debian/Ubuntu) it does nothing.
author:
  - pmoves.fleet developers (@pmoves)
options:
  packages:
    description: Packages the next install task wants (names as given to C(ansible.builtin.apt)).
    type: list
    elements: str
    required: true
  lists_dir:
    description: apt's lists directory.
    type: path
    default: /var/lib/apt/lists
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: >-
      The lists are refreshed in check mode too: they are package metadata, not configuration, and without
      them the install task's check-mode prediction would fail on a fresh host.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Once the lists can install the packages, nothing is refreshed.
"""

EXAMPLES = r"""
- name: Gateway | Refresh the package lists when they cannot install the gateway's packages
  pmoves.fleet.apt_refresh:
    packages: [python3-venv, redis-server]
  register: gateway_packages

- name: Gateway | Install them (skipped on a rerun where both are installed)
  ansible.builtin.apt:
    name: [python3-venv, redis-server]
  when: gateway_packages.not_installed | length > 0
"""

RETURN = r"""
refreshed:
  description: C(apt-get update) ran in this call.
  returned: always
  type: bool
reason:
  description: Why the lists were refreshed (empty lists, packages without a candidate), or null.
  returned: always
  type: str
  sample: "no install candidate for: python3-venv"
not_installed:
  description:
    - Wanted packages that are not installed, or that carry a version (C(name=1.2*)), that is what the install
      task still has to do. Empty when every wanted package is installed, so the install task can be skipped
      with C(when) on C(result.not_installed | length > 0). Every wanted package on a host without apt.
  returned: always
  type: list
  elements: str
  sample: ["python3-venv"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils.apt_lists import (
    list_names,
    not_installed,
    parse_policy,
    refresh_reason,
    uninstallable,
)

_C_LOCALE = {"LANG": "C", "LC_ALL": "C", "LANGUAGE": "C"}


def _policy(module: AnsibleModule, apt_cache: str, packages: list) -> dict:
    rc, out, err = module.run_command([apt_cache, "policy", *packages], environ_update=_C_LOCALE)
    if rc != 0:
        module.fail_json(msg=f"apt-cache policy failed (rc={rc}): {err.strip() or out.strip()}")
    return parse_policy(out)


def _sources() -> str:
    found = [path for path in ("/etc/apt/sources.list", "/etc/apt/sources.list.d") if os.path.exists(path)]
    return ", ".join(found) or "no apt sources configured"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "required": True},
            "lists_dir": {"type": "path", "default": "/var/lib/apt/lists"},
        },
        supports_check_mode=True,
    )
    packages = [p for p in module.params["packages"] if p]
    apt_get, apt_cache = module.get_bin_path("apt-get"), module.get_bin_path("apt-cache")
    if not apt_get or not apt_cache:
        module.exit_json(changed=False, refreshed=False, reason=None, not_installed=packages)

    names = list_names(module.params["lists_dir"])
    policy = _policy(module, apt_cache, packages) if packages else {}
    pending = not_installed(packages, policy)
    reason, _missing = refresh_reason(names, packages, policy)
    if reason is None:
        module.exit_json(changed=False, refreshed=False, reason=None, not_installed=pending)

    rc, out, err = module.run_command([apt_get, "update", "-q"], environ_update=_C_LOCALE)
    if rc != 0:
        module.fail_json(msg=f"apt-get update failed (rc={rc}) while {reason}: {(err or out).strip()[-2000:]}",
                         refreshed=False, reason=reason)
    still = uninstallable(packages, _policy(module, apt_cache, packages)) if packages else []
    if still:
        module.fail_json(msg=f"no install candidate for {', '.join(still)} even after apt-get update: check the "
                             f"package names and the apt sources ({_sources()})", refreshed=True, reason=reason)
    module.exit_json(changed=True, refreshed=True, reason=reason, not_installed=pending)


if __name__ == "__main__":
    main()
