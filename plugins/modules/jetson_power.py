#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see galaxy.yml)
"""Set a Jetson's nvpmodel power mode (read first) and optionally max its clocks."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jetson_power
short_description: Jetson power mode (nvpmodel) and clocks, changed only when different
version_added: "0.1.0"
description:
  - Reads the current mode with C(nvpmodel -q) and sets C(nvpmodel -m <id>) only when it differs.
  - Mode names (C(MAXN), C(30W), C(MODE_30W)) are resolved to ids from the board's C(/etc/nvpmodel.conf);
    a built-in table per board family (AGX Orin, Orin NX, Orin Nano, AGX Thor) is used when that file is missing.
  - When nvpmodel says the change needs a reboot, the module answers "no" to its prompt, does not reboot, and
    returns RV(reboot_required).
  - C(jetson_clocks) (maximum clocks until the next boot) runs at most once per boot, tracked with a marker file
    under C(/run).
author:
  - pmoves.fleet developers (@pmoves)
options:
  mode:
    description: Wanted power mode, by name (C(MAXN), C(30W)) or numeric id.
    type: raw
    required: true
  conf_path:
    description: The board's nvpmodel configuration.
    type: path
    default: /etc/nvpmodel.conf
  model:
    description: Board model (the fact C(pmoves_hardware.jetson.model)), for the built-in table.
    type: str
  soc:
    description: SoC (the fact C(pmoves_hardware.jetson.soc)), for the built-in table.
    type: str
  clocks:
    description: Run C(jetson_clocks) once per boot.
    type: bool
    default: false
  clocks_marker:
    description: Marker file on a tmpfs that records C(jetson_clocks) ran in this boot.
    type: path
    default: /run/pmoves-jetson-clocks.done
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: Reads the current mode and reports whether it would change; sets nothing.
  diff_mode:
    support: full
    details: Shows the power mode before and after.
  idempotent:
    support: full
    details: Nothing is set when the board already runs the wanted mode.
"""

EXAMPLES = r"""
- name: Jetson | power mode from the hardware profile
  pmoves.fleet.jetson_power:
    mode: MAXN
    model: "{{ ansible_facts.pmoves_hardware.jetson.model }}"
    soc: "{{ ansible_facts.pmoves_hardware.jetson.soc }}"
"""

RETURN = r"""
before:
  description: Mode before, as reported by C(nvpmodel -q).
  returned: always
  type: dict
  sample: {name: MODE_30W, id: 2}
after:
  description: Mode after (wanted mode in check mode).
  returned: always
  type: dict
  sample: {name: MAXN, id: 0}
reboot_required:
  description: nvpmodel said the new mode takes effect after a reboot.
  returned: always
  type: bool
clocks_applied:
  description: C(jetson_clocks) ran (or would run) in this call.
  returned: always
  type: bool
"""

import os
import subprocess

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils.jetson_power import (
    PowerModeError,
    parse_nvpmodel_conf,
    parse_nvpmodel_query,
    reboot_required,
    resolve_mode,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "mode": {"type": "raw", "required": True},
            "conf_path": {"type": "path", "default": "/etc/nvpmodel.conf"},
            "model": {"type": "str"},
            "soc": {"type": "str"},
            "clocks": {"type": "bool", "default": False},
            "clocks_marker": {"type": "path", "default": "/run/pmoves-jetson-clocks.done"},
        },
        supports_check_mode=True,
    )
    p = module.params
    nvpmodel = module.get_bin_path("nvpmodel")
    if not nvpmodel:
        module.fail_json(msg="nvpmodel not found on PATH: is this a Jetson with Jetson Linux (L4T) installed?")
    rc, out, err = module.run_command([nvpmodel, "-q"])
    if rc != 0:
        module.fail_json(msg=f"`nvpmodel -q` failed (exit {rc}): {(err or out).strip()[-400:]}")
    name, current = parse_nvpmodel_query(out)
    conf = ""
    if os.path.exists(p["conf_path"]):
        with open(p["conf_path"], encoding="utf-8", errors="replace") as fh:
            conf = fh.read()
    try:
        wanted_id, wanted_name = resolve_mode(p["mode"], parse_nvpmodel_conf(conf), model=p["model"], soc=p["soc"])
    except PowerModeError as exc:
        module.fail_json(msg=str(exc), before={"name": name, "id": current})
    result = {"changed": False, "before": {"name": name, "id": current},
              "after": {"name": name, "id": current}, "reboot_required": False, "clocks_applied": False}
    if current != wanted_id:
        result.update(changed=True, after={"name": wanted_name, "id": wanted_id})
        if not module.check_mode:
            # nvpmodel asks before rebooting for some transitions: answer no, report it instead. subprocess
            # (not run_command) because nvpmodel often exits without reading stdin (EPIPE is ignored here).
            try:
                proc = subprocess.run([nvpmodel, "-m", str(wanted_id)], input="no\n", capture_output=True,
                                      text=True, timeout=120, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                module.fail_json(msg=f"`nvpmodel -m {wanted_id}` could not run: {exc}", **result)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
            if rc != 0 and not reboot_required(out + err):
                module.fail_json(msg=f"`nvpmodel -m {wanted_id}` failed (exit {rc}): {(err or out).strip()[-400:]}",
                                 **result)
            result["reboot_required"] = reboot_required(out + err)
    if p["clocks"] and not os.path.exists(p["clocks_marker"]):
        result.update(changed=True, clocks_applied=True)
        if not module.check_mode:
            clocks = module.get_bin_path("jetson_clocks", required=True)
            rc, out, err = module.run_command([clocks])
            if rc != 0:
                module.fail_json(msg=f"`jetson_clocks` failed (exit {rc}): {(err or out).strip()[-400:]}", **result)
            with open(p["clocks_marker"], "w", encoding="utf-8") as fh:
                fh.write(f"{wanted_id}\n")
    if module._diff and result["changed"]:
        result["diff"] = {"before": f"power_mode: {name} ({current})\n",
                          "after": f"power_mode: {result['after']['name']} ({result['after']['id']})\n"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
