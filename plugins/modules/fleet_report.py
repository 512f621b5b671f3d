#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Documentation of the fleet_report action (the work happens in plugins/action/fleet_report.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Write the fleet report (self-contained HTML) and return a terminal summary
version_added: "0.1.0"
description:
  - Builds the fleet report from the plan (C(plan.json)), every host's C(pmoves_hardware) and
    C(pmoves_verify) (health, services, versions set by C(playbooks/verify.yml)), this run's
    per-host results and the warnings.
  - Writes C(report.html) (inline CSS, no scripts, no external resources; GPU bars planned vs
    usable, placements, services, versions, warnings, what changed in this run) and
    C(report.json) (the same data) next to it.
  - The section "Where the time went" lists the slowest tasks of this run (wall time overall and on the slowest
    hosts, handlers included) and the wall time per role, as the C(pmoves.fleet.pmoves_run) callback timed them.
  - This run's per-host results come from the C(pmoves.fleet.pmoves_run) callback when it is
    enabled; otherwise hosts dropped from the play are reported as failed and the change list says
    the results were not recorded.
  - This is an action plugin; it runs on the controller only.
author:
  - pmoves.fleet developers (@pmoves)
options:
  artifacts_dir:
    description: Directory of C(plan.json) and of the report. Default C(artifacts) in the working directory of ansible-playbook.
    type: path
  dest:
    description: Path of the HTML report. Default C(artifacts_dir/report.html).
    type: path
  plan:
    description: The plan (contract 2). Default read from C(artifacts_dir/plan.json).
    type: dict
  hosts:
    description:
      - Per host C(hardware), C(versions), C(services), C(health), C(status). Default read from
        C(hostvars) (C(pmoves_hardware), C(pmoves_verify)).
    type: dict
  run_results:
    description:
      - Per host C(ok), C(changed), C(failed), C(unreachable), C(skipped), C(changed_tasks), C(messages).
        Default what the C(pmoves.fleet.pmoves_run) callback recorded for this run.
    type: dict
  timing:
    description:
      - Task and role wall times of this run (C(total_s), C(tasks_timed), C(tasks) with C(name), C(role), C(play),
        C(handler), C(wall_s), C(runs), C(hosts), and C(roles) with C(role), C(wall_s), C(tasks)).
        Default what the C(pmoves.fleet.pmoves_run) callback recorded up to this task.
      - The report shows the O(top_tasks) slowest tasks and every role's total (section "Where the time went").
    type: dict
  top_tasks:
    description: How many of the slowest tasks the report shows.
    type: int
    default: 10
  warnings:
    description: Extra warnings to show (inventory checks, health).
    type: list
    elements: str
    default: []
  title:
    description: Title of the report.
    type: str
    default: pmoves fleet
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    description: In check mode the report is built and summarised but not written.
  diff_mode:
    support: none
    description: The report is an output, not state; there is no diff.
  idempotent:
    support: full
    description: Always returns changed=false; the report is an artifact of the run, not host state.
  action:
    support: full
    description: Runs on the controller.
"""

EXAMPLES = r"""
- name: Report | Write the fleet report
  pmoves.fleet.fleet_report:
    artifacts_dir: "{{ pmoves_artifacts_dir }}"
  run_once: true
  delegate_to: localhost
  register: pmoves_report

- name: Report | Show the summary
  ansible.builtin.debug:
    msg: "{{ pmoves_report.summary_lines }}"
"""

RETURN = r"""
path:
  description: Path of the HTML report (written unless in check mode).
  returned: always
  type: str
written:
  description: Whether the report files were written.
  returned: always
  type: bool
summary:
  description: Terminal summary (plain text, several lines).
  returned: always
  type: str
summary_lines:
  description: The terminal summary split into lines (readable in the default callback).
  returned: always
  type: list
  elements: str
timing:
  description:
    - The slowest tasks (C(slowest_tasks), longest first) and per-role totals (C(roles)) of this run up to the report,
      with C(total_s) and C(tasks_timed); null when the C(pmoves.fleet.pmoves_run) callback was not enabled.
  returned: always
  type: dict
totals:
  description: Counts - hosts, converged, failed, unreachable, changed, changed_hosts, replicas_wanted, replicas_placed, vram_total_mb, vram_planned_mb.
  returned: always
  type: dict
"""
