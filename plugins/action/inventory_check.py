# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Action plugin: check the whole inventory on the controller (logic in module_utils/inventory_checks)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import HOST_VARS, PLANNER_VARS
from ansible_collections.pmoves.fleet.plugins.module_utils.inventory_checks import (
    WIREGUARD_VARS,
    check_inventory,
    format_errors,
)

# Fleet-wide variables the checks read (catalogs, planner knobs, gateway switch, the shared values of
# pmoves.fleet.common the endpoint decision needs).
FLEET_VARS = ("pmoves_models", "pmoves_services", "pmoves_gateway_enabled", "pmoves_default_node_class",
              "pmoves_ollama_port", "pmoves_wireguard_network", *PLANNER_VARS.values())


class ActionModule(ActionBase):
    """Runs on the controller only; never connects to a host."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("groups", "hostvars", "fleet", "fail_on_warnings"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        groups = args.get("groups")
        if groups is None:
            groups = {name: list(members) for name, members in (task_vars.get("groups") or {}).items()}
        hostvars = args.get("hostvars")
        if hostvars is None:
            hostvars = self._declared_hardware(task_vars, groups.get("all") or [])
        fleet = args.get("fleet")
        if fleet is None:
            fleet = {name: task_vars[name] for name in FLEET_VARS if name in task_vars}
            fleet = self._templar.template(fleet)
        if not isinstance(groups, dict) or not isinstance(hostvars, dict) or not isinstance(fleet, dict):
            return {"failed": True, "msg": "inventory_check: groups, hostvars and fleet must be mappings"}

        checked = check_inventory(groups, hostvars, fleet)
        result.update(changed=False, **checked.as_dict())
        if checked.errors:
            result.update(failed=True, msg=format_errors(checked))
        elif args.get("fail_on_warnings") and checked.warnings:
            result.update(failed=True, msg="inventory warnings with fail_on_warnings: " + "; ".join(checked.warnings))
        else:
            result["msg"] = (f"inventory ok: {len(checked.classes)} hosts, "
                             f"{len(checked.warnings)} warning(s)")
        return result

    def _declared_hardware(self, task_vars: dict[str, Any], hosts: list[str]) -> dict[str, dict[str, Any]]:
        """Per host only pmoves_hardware, the schema's HOST_VARS and the WireGuard topology: templating every host variable would be
        slow and may fail."""
        all_hostvars = task_vars.get("hostvars") or {}
        declared: dict[str, dict[str, Any]] = {}
        for host in hosts:
            values: dict[str, Any] = {}
            try:
                host_vars = all_hostvars[host]
                for name in ("pmoves_hardware", *HOST_VARS, *WIREGUARD_VARS):
                    if name in host_vars and host_vars.get(name) is not None:
                        values[name] = host_vars.get(name)
            except (KeyError, AnsibleError):
                pass
            declared[host] = values
        return declared
