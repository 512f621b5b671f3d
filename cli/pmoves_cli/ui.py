"""Live per-host table of a run (rich)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .progress import RunProgress, pull_text

STYLES = {"ok": "green", "running": "cyan", "failed": "bold red", "unreachable": "bold yellow", "waiting": "dim"}


def render(progress: RunProgress, title: str) -> Table:
    pulling = any(pull_text(host) for host in progress.hosts.values())
    table = Table(title=title, caption=f"{progress.play} | {progress.task}"[:120], expand=False)
    columns = ["host", "status", "ok", "changed", "failed", "skipped", "now", "models"] + (["pull"] if pulling else [])
    for column in columns:
        table.add_column(column, justify="right" if column in ("ok", "changed", "failed", "skipped") else "left")
    for name in sorted(progress.hosts):
        host = progress.hosts[name]
        models = ", ".join(host.models_done)
        pulls = pull_text(host)
        if host.model_pulling and not pulls:
            models = f"{models} [pulling…]".strip()
        now = host.task if host.status == "running" else host.last_error
        row = [name, Text(host.status, style=STYLES.get(host.status, "")), str(host.ok), str(host.changed),
               str(host.failed + host.unreachable), str(host.skipped), now[:60], models[:60]]
        table.add_row(*row, *([pulls[:90]] if pulling else []))
    return table
