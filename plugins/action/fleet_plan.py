# Copyright: pmoves.fleet contributors
# Apache License 2.0
"""Action for pmoves.fleet.fleet_plan: plans on the controller from every host's pmoves_hardware.

Reading ``hostvars`` here (instead of a Jinja expression over the fleet) keeps a 300-host plan
fast; the planning itself is the pure ``module_utils.placement``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_schema import (
    FLEET_DEFAULTS,
    HOST_VARS,
    IMPLICIT_GROUPS,
    PLANNER_DEFAULTS,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.placement import (
    FleetInputs,
    PlanError,
    PlanOptions,
    dumps_plan,
    plan_fleet,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_report import (
    diff_summary,
    render_html,
    render_markdown,
)


def _spec(default):
    kind = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(default), "str")
    return {"type": kind, "default": default} if default is not None else {"type": kind}


# The planner's knobs and defaults come from fleet_schema (one definition for the action, PlanOptions,
# plan.yml and the docs; a unit test checks plugins/modules/fleet_plan.py documents the same).
ARGUMENT_SPEC = {
    "artifacts_dir": {"type": "path", "required": True},
    "models": {"type": "list", "elements": "raw", "default": []},
    "services": {"type": "list", "elements": "raw", "default": []},
    **{knob: _spec(default) for knob, default in PLANNER_DEFAULTS.items()},
    "ollama_port": {"type": "int", "default": FLEET_DEFAULTS["ollama_port"]},
    "gateway_enabled": {"type": "bool"},
    "wireguard_network": {"type": "str", "default": FLEET_DEFAULTS["wireguard_network"]},
    "model_share": {"type": "bool", "default": True},
    "model_share_port": {"type": "int", "default": FLEET_DEFAULTS["model_share_port"]},
    "report": {"type": "bool", "default": True},
}


def to_plain(value):
    """Deep copy into plain dict/list/str/int/float/bool/None (hostvars values may be tagged types)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def _host_records(self, task_vars):
        """Every inventory host: its groups (all of them), hardware and the schema's HOST_VARS it sets."""
        hostvars = task_vars.get("hostvars") or {}
        groups = task_vars.get("groups") or {}
        membership = {}
        for group, members in groups.items():
            if group in IMPLICIT_GROUPS:
                continue
            for host in members or []:
                membership.setdefault(host, []).append(group)
        records = []
        for host in sorted(set(groups.get("all") or [])):
            host_vars = hostvars[host]
            facts = host_vars.get("ansible_facts") or {}
            hardware = facts.get("pmoves_hardware") if isinstance(facts, Mapping) else None
            source = "discovered"
            if not isinstance(hardware, Mapping):
                hardware = host_vars.get("pmoves_hardware")
                source = "declared"
            knobs = {}
            for knob in HOST_VARS:
                value = host_vars.get(knob) if knob in host_vars else None
                if value is not None:
                    knobs[knob] = to_plain(value)
            records.append({
                "name": host,
                "groups": sorted(membership.get(host, [])),
                "hardware": to_plain(hardware) if isinstance(hardware, Mapping) else None,
                "hardware_source": source,
                "vars": knobs,
            })
        return records

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        options = PlanOptions(**{knob: args[knob] for knob in PLANNER_DEFAULTS})
        fleet = FleetInputs(ollama_port=args["ollama_port"], gateway_enabled=args["gateway_enabled"],
                            wireguard_network=args["wireguard_network"], model_share=args["model_share"],
                            model_share_port=args["model_share_port"])
        artifacts_dir = args["artifacts_dir"]
        plan_path = os.path.join(artifacts_dir, "plan.json")
        previous = None
        old_text = None
        if os.path.isfile(plan_path):
            with open(plan_path, encoding="utf-8") as handle:
                old_text = handle.read()
            try:
                previous = json.loads(old_text)
            except ValueError:
                result.setdefault("warnings", []).append(f"{plan_path} is not valid JSON; planning from scratch")
        records = self._host_records(task_vars)
        if not records:
            # An empty fleet is a wrong -i (ansible-playbook only warns about a path it cannot parse
            # and goes on with the implicit localhost), never a plan: fail instead of planning nothing.
            sources = [str(s) for s in task_vars.get("ansible_inventory_sources") or []]
            raise AnsibleActionFail(
                f"fleet_plan: the inventory {', '.join(sources) or '(none given)'} has no hosts, so there is "
                "no fleet to plan; pass a fleet inventory, e.g. -i inventories/homelab")
        try:
            plan = plan_fleet(records, to_plain(args["models"]), to_plain(args["services"]),
                              options, previous, fleet)
        except PlanError as exc:
            raise AnsibleActionFail(f"fleet_plan: {exc}") from exc
        text = dumps_plan(plan)
        changed = text != old_text
        if changed and not self._task.check_mode:
            os.makedirs(artifacts_dir, exist_ok=True)
            outputs = {"plan.json": text}
            if args["report"]:
                outputs["plan.md"] = render_markdown(plan)
                outputs["plan.html"] = render_html(plan)
            for name, content in outputs.items():
                tmp_path = os.path.join(artifacts_dir, f".{name}.tmp")
                with open(tmp_path, "w", encoding="utf-8") as handle:
                    handle.write(content)
                os.replace(tmp_path, os.path.join(artifacts_dir, name))
        models = plan["models"]
        result.update({
            "changed": changed,
            "path": plan_path,
            "plan": plan,
            "summary": {
                "nodes": len(plan["nodes"]),
                "models": len(models),
                "replicas_wanted": sum(m["wanted"] for m in models.values()),
                "replicas_placed": sum(len(m["placed"]) for m in models.values()),
                "unplaced": len(plan["unplaced"]),
                "warnings": len(plan["warnings"]),
                "moved": plan["moved"],
            },
            "plan_warnings": plan["warnings"],
        })
        if self._task.diff and changed:
            result["diff"] = diff_summary(previous, plan)
        return result
