"""Live per-host table of a run (rich)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .progress import RunProgress

STYLES = {"ok": "green", "running": "cyan", "failed": "bold red", "unreachable": "bold yellow", "waiting": "dim"}


def render(progress: RunProgress, title: str) -> Table:
    table = Table(title=title, caption=f"{progress.play} | {progress.task}"[:120], expand=False)
    for column in ("host", "status", "ok", "changed", "failed", "skipped", "now", "models"):
        table.add_column(column, justify="right" if column in ("ok", "changed", "failed", "skipped") else "left")
    for name in sorted(progress.hosts):
        host = progress.hosts[name]
        models = ", ".join(host.models_done)
        if host.model_pulling:
            models = f"{models} [pulling…]".strip()
        now = host.task if host.status == "running" else host.last_error
        table.add_row(name, Text(host.status, style=STYLES.get(host.status, "")), str(host.ok), str(host.changed),
                      str(host.failed + host.unreachable), str(host.skipped), now[:60], models[:60])
    return table
