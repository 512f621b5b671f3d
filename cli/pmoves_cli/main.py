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
import threading
from pathlib import Path
from typing import Any

from .commands import PLAYBOOKS, Invocation, build_invocation, is_host_list
from .progress import RunProgress, changed_lines

PROGRESS_DIR_ENV = "PMOVES_PROGRESS_DIR"  # read by the ollama_model action plugin (plugins/action/ollama_model.py)
PROGRESS_LINES_EVERY_S = 5.0


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
        cmd.add_argument("--progress", action="store_true",
                         help="when stdout is not a terminal: ansible's output plus a plain line per host whose "
                              "state or model pull changed (every 5 s); on a terminal the live table shows it anyway")
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


def use_collection(repo: Path) -> None:
    """Make the checkout's module_utils importable (the report summary and the pull progress use them)."""
    collections = str(repo / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)


def machine_readable_stdout(env: dict[str, str]) -> bool:
    """True when ansible prints JSON (json, ansible.posix.json/jsonl stdout callbacks): no lines of ours in it."""
    name = env.get("ANSIBLE_STDOUT_CALLBACK") or os.environ.get("ANSIBLE_STDOUT_CALLBACK") or ""
    return "json" in name.rsplit(".", 1)[-1]


def print_progress_lines(progress: RunProgress, shown: dict[str, str], directory: str) -> None:
    for line in changed_lines(progress.load_pulls(directory), shown):
        print(f"pmoves progress: {line}", flush=True)


def run_playbook(invocation: Invocation, repo: Path, live: bool, title: str, progress_lines: bool = False,
                 lines_every_s: float = PROGRESS_LINES_EVERY_S) -> tuple[int, RunProgress]:
    """Run through ansible-runner: the live table (``live``), or ansible's output plus plain progress lines."""
    import ansible_runner  # heavy import: only when running

    use_collection(repo)
    progress = RunProgress()
    lock = threading.Lock()  # events arrive in the runner's thread, the view refreshes in its own
    # The inventory goes on the command line as the absolute path build_invocation made of it:
    # ansible-runner would take a string it cannot find under its own directory for inventory text.
    inventory = ["-i", invocation.inventory] if invocation.inventory else []
    with tempfile.TemporaryDirectory(prefix="pmoves-runner-") as private:
        env = dict(invocation.env)
        pulls_dir = ""
        if live or progress_lines:
            # Model pulls report their bytes here (plugins/action/ollama_model.py); nothing is polled without it.
            pulls_dir = os.path.join(private, "pull-progress")
            os.mkdir(pulls_dir)
            env[PROGRESS_DIR_ENV] = pulls_dir
        kwargs = {"private_data_dir": private, "project_dir": str(repo), "playbook": invocation.playbook,
                  "inventory": [], "cmdline": shlex.join(inventory + invocation.args),
                  "envvars": env, "quiet": live, "suppress_env_files": True}

        def collect(event: dict[str, Any]) -> bool:
            with lock:
                progress.feed(event)
            return True

        if not live:
            shown: dict[str, str] = {}
            done = threading.Event()

            def tick() -> None:
                while not done.wait(lines_every_s):
                    with lock:
                        print_progress_lines(progress, shown, pulls_dir)

            ticker = threading.Thread(target=tick, name="pmoves-progress-lines", daemon=True)
            if progress_lines:
                ticker.start()
            try:
                runner = ansible_runner.run(event_handler=collect, **kwargs)
            finally:
                done.set()
            if progress_lines:
                ticker.join()
                with lock:
                    print_progress_lines(progress, shown, pulls_dir)
            return runner.rc, progress
        from rich.console import Console
        from rich.live import Live

        from .ui import render

        def current() -> Any:
            with lock:
                return render(progress.load_pulls(pulls_dir), title)

        console = Console()
        with Live(console=console, refresh_per_second=4, get_renderable=current):
            runner = ansible_runner.run(event_handler=collect, **kwargs)
        return runner.rc, progress


def print_recap(progress: RunProgress) -> None:
    for name, counts in progress.recap().items():
        print(f"{name:<24} " + "  ".join(f"{k}={v}" for k, v in counts.items()))


def print_report_summary(repo: Path, artifacts: Path) -> None:
    report_json = artifacts / "report.json"
    if not report_json.is_file():
        return
    use_collection(repo)
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
    progress_lines = options.progress and not live and not machine_readable_stdout(invocation.env)
    if options.progress and not live and not progress_lines:
        print("pmoves: --progress prints no lines into the JSON output of ansible's stdout callback", file=sys.stderr)
    rc, progress = run_playbook(invocation, repo, live, f"pmoves {options.command}", progress_lines=progress_lines)
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
