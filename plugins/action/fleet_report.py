# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Action plugin: write the fleet report on the controller (logic in module_utils/fleet_report)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_report import (
    TOP_TASKS,
    build_report,
    render_html,
    render_terminal,
)


def _load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write(path: str, text: str) -> None:
    """Atomic write: a reader never sees half a report."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".report-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("artifacts_dir", "plan", "hosts", "run_results", "timing", "top_tasks", "warnings", "title",
                             "dest"))

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        # Default: artifacts/ in the directory ansible-playbook runs from (never inside the
        # installed collection, which is where playbook_dir points for pmoves.fleet.site).
        artifacts_dir = args.get("artifacts_dir") or os.path.join(os.getcwd(), "artifacts")
        artifacts_dir = os.path.abspath(os.path.expanduser(str(artifacts_dir)))
        dest = os.path.abspath(str(args.get("dest") or os.path.join(artifacts_dir, "report.html")))

        plan = args.get("plan")
        if plan is None:
            plan = _load_json(os.path.join(artifacts_dir, "plan.json"))
        if plan is not None and not isinstance(plan, dict):
            return {"failed": True, "msg": "fleet_report: plan must be the plan.json mapping"}
        all_hosts = list((task_vars.get("groups") or {}).get("all") or [])
        hosts = args.get("hosts")
        if hosts is None:
            hosts = self._host_summaries(task_vars, all_hosts)
        run_results = args.get("run_results")
        timing = args.get("timing")
        if run_results is None or timing is None:
            # Written by the pmoves_run callback in the main ansible-playbook process (our parent).
            recorded = _load_json(os.path.join(tempfile.gettempdir(), f"pmoves-fleet-run-{os.getppid()}.json"))
            recorded = recorded if isinstance(recorded, dict) else {}
            run_results = recorded.get("hosts") if run_results is None else run_results
            timing = recorded.get("timing") if timing is None else timing
        in_play = list(task_vars.get("ansible_play_hosts_all") or [])
        remaining = set(task_vars.get("ansible_play_hosts") or in_play)
        report = build_report(
            plan, hosts, run_results, [str(w) for w in args.get("warnings") or []],
            not_converged=sorted(set(in_play) - remaining), in_play=in_play or None,
            title=str(args.get("title") or "pmoves fleet"), check_mode=bool(self._task.check_mode),
            timing=timing if isinstance(timing, dict) else None, top_tasks=int(args.get("top_tasks") or TOP_TASKS))

        summary = render_terminal(report)
        result.update(changed=False, path=dest, summary=summary, summary_lines=summary.splitlines(),
                      totals=report["totals"], timing=report["timing"], written=False)
        if self._task.check_mode:
            result["msg"] = "check mode: report not written"
            return result
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            _write(dest, render_html(report))
            _write(os.path.splitext(dest)[0] + ".json",
                   json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n")
        except OSError as error:
            return {"failed": True, "msg": f"fleet_report: cannot write {dest}: {error}; check pmoves_artifacts_dir"}
        # The report is an output of the run (like a log), not state: writing it is not a change,
        # so a converged fleet reruns with changed=0.
        result.update(written=True, msg=f"fleet report written to {dest}")
        return result

    def _host_summaries(self, task_vars: dict[str, Any], hosts: list[str]) -> dict[str, dict[str, Any]]:
        """pmoves_hardware (fact or declared) and pmoves_verify (set by verify.yml) of every host."""
        all_hostvars = task_vars.get("hostvars") or {}
        summaries: dict[str, dict[str, Any]] = {}
        for host in hosts:
            summary: dict[str, Any] = {}
            try:
                host_vars = all_hostvars[host]
                if "pmoves_hardware" in host_vars:
                    summary["hardware"] = host_vars["pmoves_hardware"]
                if "pmoves_verify" in host_vars:
                    verify = host_vars["pmoves_verify"] or {}
                    summary.update({k: verify[k] for k in ("versions", "services", "health") if k in verify})
            except (KeyError, AnsibleError, TypeError):
                pass
            summaries[host] = summary
        return summaries
