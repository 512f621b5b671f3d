"""Subcommand -> playbook and ansible-playbook arguments (pure: no I/O, unit-tested)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Subcommand -> (playbook relative to the repository, what it does).
PLAYBOOKS: dict[str, tuple[str, str]] = {
    "discover": ("playbooks/discover.yml", "gather pmoves_hardware on every host"),
    "plan": ("playbooks/plan.yml", "place models and services over the fleet (writes artifacts/plan.json)"),
    "apply": ("playbooks/site.yml", "converge the fleet: validate, discover, plan, apply, verify + report"),
    "lab": ("playbooks/site.yml", "bring up the local simulated fleet and converge it (make lab)"),
    "report": ("playbooks/site.yml", "health checks and the fleet report (site.yml --tags report)"),
}
LAB_INVENTORY = "inventories/lab"
CALLBACKS = "ansible.posix.timer,pmoves.fleet.pmoves_run"


def is_host_list(inventory: str) -> bool:
    """`-i host1,host2,` names hosts, not a path (ansible's host_list inventory)."""
    return "," in inventory


def resolve(value: str, cwd: Path) -> str:
    """A path the user typed, relative to where they typed it (the runner runs elsewhere)."""
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(value)))


@dataclass
class Invocation:
    """One ansible-playbook run: what to run, with which arguments and environment."""

    playbook: str
    inventory: str | None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    artifacts_dir: str = ""  # where plan.json and the report go (also passed in args)

    def command_line(self, ansible_playbook: str = "ansible-playbook") -> list[str]:
        """The equivalent plain command (printed so users can run it without pmoves)."""
        command = [ansible_playbook, self.playbook]
        if self.inventory:
            command += ["-i", self.inventory]
        return command + self.args


def build_invocation(command: str, *, repo: Path, inventory: str | None = None, limit: str | None = None,
                     tags: str | None = None, skip_tags: str | None = None, check: bool = False,
                     diff: bool = False, extra_vars: list[str] | None = None, verbose: int = 0,
                     artifacts_dir: str | None = None, cwd: Path | None = None) -> Invocation:
    """Map the pmoves options onto ansible-playbook's, one for one.

    With ``cwd`` (the caller's working directory) the paths the user typed (inventory, artifacts
    dir, ``-e @file``, ``--limit @file``) become absolute: ansible-playbook runs in another directory.
    """
    if command not in PLAYBOOKS:
        raise ValueError(f"unknown command {command!r}; use one of {', '.join(PLAYBOOKS)}")
    playbook = str(repo / PLAYBOOKS[command][0])
    if command == "lab":
        inventory = inventory or str(repo / LAB_INVENTORY)
    if cwd is not None:
        if inventory and not is_host_list(inventory):
            inventory = resolve(inventory, cwd)
        if artifacts_dir:
            artifacts_dir = resolve(artifacts_dir, cwd)
        if limit:  # `@file` entries name a file of hosts (ansible reads it per comma-separated entry)
            limit = ",".join("@" + resolve(p[1:], cwd) if p.startswith("@") else p for p in limit.split(","))
        extra_vars = ["@" + resolve(e[1:], cwd) if e.startswith("@") else e for e in extra_vars or []]
    args: list[str] = []
    if limit:
        # plan.yml runs on the controller (localhost): keep it in the limit so a limited run
        # still plans the whole fleet.
        args += ["--limit", limit if "localhost" in limit.split(",") else f"{limit},localhost"]
    if command == "report":
        tags = ",".join(t for t in ["report", tags] if t)
    if tags:
        args += ["--tags", tags]
    if skip_tags:
        args += ["--skip-tags", skip_tags]
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    artifacts = artifacts_dir or str(repo / "artifacts")
    args += ["-e", f"pmoves_artifacts_dir={artifacts}"]
    for extra in extra_vars or []:
        args += ["-e", extra]
    if verbose:
        args.append("-" + "v" * min(verbose, 6))
    env = {"ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "ANSIBLE_CALLBACKS_ENABLED": CALLBACKS}
    return Invocation(playbook=playbook, inventory=inventory, args=args, env=env, artifacts_dir=artifacts)
