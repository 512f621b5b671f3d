"""pmoves discover|plan|apply|lab|report: run the playbooks through ansible-runner with a live view.

A thin layer: every command prints the plain ansible-playbook command it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .commands import PLAYBOOKS, Invocation, build_invocation, is_host_list
from .progress import RunProgress


def find_repo(start: Path | None = None) -> Path:
    """The collection checkout: $PMOVES_REPO, else a parent of the cwd or of this package with galaxy.yml."""
    if os.environ.get("PMOVES_REPO"):
        return Path(os.environ["PMOVES_REPO"]).resolve()
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        for candidate in [base, *base.parents]:
            if (candidate / "galaxy.yml").is_file() and (candidate / "playbooks").is_dir():
                return candidate
    raise SystemExit("pmoves: cannot find the pmoves.fleet checkout; run inside it or set PMOVES_REPO")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pmoves", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    for name, (playbook, help_text) in PLAYBOOKS.items():
        cmd = sub.add_parser(name, help=help_text, description=f"{help_text} ({playbook})")
        cmd.add_argument("-i", "--inventory", help="inventory (default: ansible.cfg's, the lab)")
        cmd.add_argument("-l", "--limit", help="hosts to touch; planning still sees the whole fleet")
        cmd.add_argument("-t", "--tags", help="only these concerns (facts, plan, base, ollama, models, ...)")
        cmd.add_argument("--skip-tags")
        cmd.add_argument("-C", "--check", action="store_true", help="show what would change, change nothing")
        cmd.add_argument("-D", "--diff", action="store_true")
        cmd.add_argument("-e", "--extra-vars", action="append", default=[])
        cmd.add_argument("-v", "--verbose", action="count", default=0)
        cmd.add_argument("--artifacts-dir", help="where plan.json and report.html go (default artifacts/)")
        cmd.add_argument("--no-live", action="store_true", help="plain ansible output instead of the live table")
        cmd.add_argument("--dry-run", action="store_true", help="print the ansible-playbook command only")
        if name == "lab":
            cmd.add_argument("--down", action="store_true", help="remove the lab (make lab-down)")
    return top


def ansible_bin_dir() -> Path | None:
    """Where ansible-playbook is: beside the Python running pmoves (its venv, activated or not), else on PATH."""
    own = Path(sys.executable).parent
    if (own / "ansible-playbook").is_file():
        return own
    found = shutil.which("ansible-playbook")
    return Path(found).parent if found else None


def inventory_label(invocation: Invocation, repo: Path) -> str:
    return invocation.inventory or f"of {repo / 'ansible.cfg'} (no -i given)"


def outcome_problem(rc: int, progress: RunProgress, inventory: str) -> str | None:
    """What a run that ansible-playbook calls fine still got wrong: no host at all, or an empty plan."""
    if progress.plan_error:
        return progress.plan_error
    if rc != 0:
        return None
    if progress.plan_summary is not None and not progress.plan_summary.get("nodes"):
        return (f"the plan of inventory {inventory} has no nodes: no host has pmoves_hardware (declared in the "
                "inventory or discovered); run `pmoves discover` against reachable hosts or declare it")
    if not progress.hosts and not progress.stats:
        return f"inventory {inventory} has no hosts that this run matched (empty inventory or --limit); nothing ran"
    return None


def run_playbook(invocation: Invocation, repo: Path, live: bool, title: str) -> tuple[int, RunProgress]:
    import ansible_runner  # heavy import: only when running

    progress = RunProgress()
    # The inventory goes on the command line as the absolute path build_invocation made of it:
    # ansible-runner would take a string it cannot find under its own directory for inventory text.
    inventory = ["-i", invocation.inventory] if invocation.inventory else []
    with tempfile.TemporaryDirectory(prefix="pmoves-runner-") as private:
        kwargs = {"private_data_dir": private, "project_dir": str(repo), "playbook": invocation.playbook,
                  "inventory": [], "cmdline": shlex.join(inventory + invocation.args),
                  "envvars": invocation.env, "quiet": live, "suppress_env_files": True}
        if not live:
            def collect(event: dict[str, Any]) -> bool:
                progress.feed(event)
                return True

            runner = ansible_runner.run(event_handler=collect, **kwargs)
            return runner.rc, progress
        from rich.console import Console
        from rich.live import Live

        from .ui import render

        console = Console()
        with Live(render(progress, title), console=console, refresh_per_second=4) as view:
            def handler(event: dict[str, Any]) -> bool:
                progress.feed(event)
                view.update(render(progress, title))
                return True

            runner = ansible_runner.run(event_handler=handler, **kwargs)
        return runner.rc, progress


def print_recap(progress: RunProgress) -> None:
    for name, counts in progress.recap().items():
        print(f"{name:<24} " + "  ".join(f"{k}={v}" for k, v in counts.items()))


def print_report_summary(repo: Path, artifacts: Path) -> None:
    report_json = artifacts / "report.json"
    if not report_json.is_file():
        return
    sys.path.insert(0, str(repo / "collections"))
    from ansible_collections.pmoves.fleet.plugins.module_utils.fleet_report import render_terminal

    print(render_terminal(json.loads(report_json.read_text())))
    print(f"report: {artifacts / 'report.html'}")


def fail(message: str, rc: int = 1) -> int:
    print(f"pmoves: {message}", file=sys.stderr)
    return rc


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    repo = find_repo()
    if options.command == "lab" and options.down:
        return subprocess.call([str(repo / "scripts" / "lab-down.sh")])
    # Paths the user typed are relative to where they typed them (ansible-playbook runs in the checkout).
    invocation = build_invocation(
        options.command, repo=repo, inventory=options.inventory, limit=options.limit, tags=options.tags,
        skip_tags=options.skip_tags, check=options.check, diff=options.diff, extra_vars=options.extra_vars,
        verbose=options.verbose, artifacts_dir=options.artifacts_dir, cwd=Path.cwd())
    if invocation.inventory and not is_host_list(invocation.inventory) and not Path(invocation.inventory).exists():
        return fail(f"inventory {options.inventory} not found (looked for {invocation.inventory})", 2)
    bin_dir = ansible_bin_dir()
    if bin_dir is None:
        return fail(f"ansible-playbook is neither beside {sys.executable} nor on PATH: install requirements.txt "
                    "into the environment pmoves runs from (make venv)", 2)
    # The ansible-runner child finds ansible-playbook (and its siblings) in pmoves' own environment,
    # also when that venv is not activated.
    invocation.env["PATH"] = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    print("$ " + shlex.join(invocation.command_line(str(bin_dir / "ansible-playbook"))), file=sys.stderr)
    if options.dry_run:
        return 0
    if options.command == "lab":
        rc = subprocess.call([str(repo / "scripts" / "lab-up.sh"), "--nodes"])
        if rc:
            return rc
    live = sys.stdout.isatty() and not options.no_live
    rc, progress = run_playbook(invocation, repo, live, f"pmoves {options.command}")
    if live:
        print_recap(progress)
    problem = outcome_problem(rc, progress, inventory_label(invocation, repo))
    if problem:
        fail(problem)
        rc = rc or 1
    artifacts = Path(invocation.artifacts_dir)
    print_report_summary(repo, artifacts)
    if options.command == "lab" and rc == 0:
        rc = subprocess.call([str(repo / "scripts" / "lab-up.sh"), "--finish"])
    return rc


if __name__ == "__main__":
    sys.exit(main())
