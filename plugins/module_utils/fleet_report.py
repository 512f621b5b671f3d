"""Fleet report: one self-contained HTML page and a terminal summary after a site.yml run.

Pure functions: data in (plan.json, per-host summaries, this run's per-host results, warnings),
text out. No I/O, no Ansible, no clock: the caller passes everything, so the same inputs give
the same bytes (golden tests rely on it).

Inputs
  plan      plan.json (DESIGN contract 2), or None when no plan was made.
  hosts     {host: HostSummary-shaped dict}: class, status, hardware (contract-1 subset),
            versions {component: version}, services [{name, state}], health [{name, ok, detail}].
  run       {host: {ok, changed, failed, unreachable, skipped, changed_tasks, messages}} from the
            pmoves_run callback, or None when it was not enabled.
  warnings  free-form lines (inventory checks, discovery, health).
  timing    {total_s, tasks_timed, tasks: [{name, role, play, handler, wall_s, runs, hosts {host: s}}],
            roles: [{role, wall_s, tasks}]} from the pmoves_run callback (slowest first), or None.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

REPORT_SCHEMA = 1
TOP_TASKS = 10  # slowest tasks the report shows
STATUS_OK = "converged"
STATUS_FAILED = "failed"
STATUS_UNREACHABLE = "unreachable"
STATUS_NOT_RUN = "not in this run"


@dataclass
class HostRow:
    """Everything the report says about one host."""

    name: str
    node_class: str
    status: str
    vram_total_mb: int = 0
    vram_planned_mb: int = 0
    gpus: list[dict[str, Any]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    planned_services: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    health: list[dict[str, Any]] = field(default_factory=list)
    hardware_summary: str = ""
    run: dict[str, Any] | None = None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def hardware_summary(hardware: dict[str, Any] | None) -> str:
    """One line such as "x86_64, 1x NVIDIA GeForce RTX 5090 (32607 MB), 64 GB RAM"."""
    if not hardware:
        return "hardware not discovered"
    parts = [str(hardware.get("arch") or "?")]
    gpus = hardware.get("gpus") or []
    names: dict[str, list[int]] = {}
    for gpu in gpus:
        names.setdefault(str(gpu.get("name") or "GPU"), []).append(_int(gpu.get("memory_total_mb")))
    parts += [f"{len(mbs)}x {name} ({mbs[0]} MB)" for name, mbs in sorted(names.items())]
    if hardware.get("jetson"):
        jetson = hardware["jetson"]
        parts.append(f"JetPack {jetson.get('jetpack') or '?'} (L4T {jetson.get('l4t') or '?'})")
    if hardware.get("memory_mb"):
        parts.append(f"{round(_int(hardware['memory_mb']) / 1024)} GB RAM")
    return ", ".join(parts)


def hardware_versions(hardware: dict[str, Any] | None) -> dict[str, str]:
    """Versions the hardware facts know: driver, CUDA, L4T/JetPack, Ollama library."""
    hardware = hardware or {}
    versions: dict[str, str] = {}
    nvidia = hardware.get("nvidia") or {}
    if nvidia.get("driver_version"):
        versions["nvidia driver"] = str(nvidia["driver_version"])
    if nvidia.get("cuda_driver_version"):
        versions["CUDA (driver)"] = str(nvidia["cuda_driver_version"])
    cuda = hardware.get("cuda") or {}
    if cuda.get("version"):
        versions["CUDA toolkit"] = str(cuda["version"])
    jetson = hardware.get("jetson") or {}
    if jetson.get("l4t"):
        versions["L4T"] = str(jetson["l4t"])
    if jetson.get("jetpack"):
        versions["JetPack"] = str(jetson["jetpack"])
    if hardware.get("ollama_library"):
        versions["ollama library"] = str(hardware["ollama_library"])
    return versions


def host_status(name: str, run: dict[str, Any] | None, not_converged: set[str], in_play: set[str] | None) -> str:
    """Status from this run's results; hosts dropped from the play without results count as failed."""
    if run and run.get(name):
        result = run[name]
        if _int(result.get("unreachable")):
            return STATUS_UNREACHABLE
        if _int(result.get("failed")):
            return STATUS_FAILED
    if name in not_converged:
        return STATUS_FAILED
    if in_play is not None and name not in in_play:
        return STATUS_NOT_RUN
    return STATUS_OK


def build_report(plan: dict[str, Any] | None, hosts: dict[str, dict[str, Any]], run: dict[str, Any] | None,
                 warnings: list[str], *, not_converged: list[str] | None = None, in_play: list[str] | None = None,
                 title: str = "pmoves fleet", check_mode: bool = False, timing: dict[str, Any] | None = None,
                 top_tasks: int = TOP_TASKS) -> dict[str, Any]:
    """The report as data (also written as report.json); render_html/render_terminal format it."""
    plan = plan or {}
    plan_nodes = plan.get("nodes") or {}
    failed_set = set(not_converged or [])
    play_set = set(in_play) if in_play is not None else None
    rows: list[HostRow] = []
    for name in sorted(set(hosts) | set(plan_nodes)):
        summary = hosts.get(name) or {}
        node = plan_nodes.get(name) or {}
        hardware = summary.get("hardware")
        versions = hardware_versions(hardware)
        versions.update({str(k): str(v) for k, v in (summary.get("versions") or {}).items() if v not in (None, "")})
        rows.append(HostRow(
            name=name,
            node_class=str(node.get("class") or summary.get("class") or (hardware or {}).get("node_class") or "?"),
            status=summary.get("status") or host_status(name, run, failed_set, play_set),
            vram_total_mb=_int(node.get("vram_total_mb")),
            vram_planned_mb=_int(node.get("vram_planned_mb")),
            gpus=list(node.get("gpus") or []),
            models=sorted(node.get("models") or []),
            planned_services=list(node.get("services") or []),
            services=sorted(summary.get("services") or [], key=lambda s: str(s.get("name"))),
            versions=dict(sorted(versions.items())),
            health=sorted(summary.get("health") or [], key=lambda h: str(h.get("name"))),
            hardware_summary=hardware_summary(hardware),
            run=(run or {}).get(name),
        ))
    all_warnings = list(dict.fromkeys([*(plan.get("warnings") or []), *warnings]))
    for name in sorted(hosts):
        hardware = (hosts[name] or {}).get("hardware") or {}
        all_warnings += [f"{name}: {w}" for w in hardware.get("warnings") or []]
    for row in rows:
        all_warnings += [f"{row.name}: health check {h.get('name')} failed: {h.get('detail') or ''}".rstrip(": ")
                         for h in row.health if not h.get("ok")]
    models = plan.get("models") or {}
    changed_hosts = {r.name: _int((r.run or {}).get("changed")) for r in rows if _int((r.run or {}).get("changed"))}
    return {
        "schema": REPORT_SCHEMA,
        "title": title,
        "check_mode": check_mode,
        "strategy": plan.get("strategy"),
        "hosts": [row.__dict__ for row in rows],
        "models": {name: models[name] for name in sorted(models)},
        "unplaced": list(plan.get("unplaced") or []),
        "moved": list(plan.get("moved_detail") or []),
        "warnings": list(dict.fromkeys(all_warnings)),
        "run_recorded": run is not None,
        "timing": timing_summary(timing, top_tasks),
        "totals": {
            "hosts": len(rows),
            "converged": sum(r.status == STATUS_OK for r in rows),
            "failed": sorted(r.name for r in rows if r.status == STATUS_FAILED),
            "unreachable": sorted(r.name for r in rows if r.status == STATUS_UNREACHABLE),
            "changed": sum(changed_hosts.values()),
            "changed_hosts": changed_hosts,
            "replicas_wanted": sum(_int(m.get("wanted")) for m in models.values()),
            "replicas_placed": sum(len(m.get("placed") or []) for m in models.values()),
            "vram_total_mb": sum(r.vram_total_mb for r in rows),
            "vram_planned_mb": sum(r.vram_planned_mb for r in rows),
        },
    }


def timing_summary(timing: dict[str, Any] | None, top_tasks: int = TOP_TASKS) -> dict[str, Any] | None:
    """The slowest ``top_tasks`` tasks (longest first; ties by role, name) and every role's total, or None."""
    if not isinstance(timing, dict):
        return None

    def seconds(value: Any) -> float:
        try:
            return round(float(value), 3)
        except (TypeError, ValueError):
            return 0.0

    tasks = [{"name": str(t.get("name") or ""), "role": str(t.get("role") or ""), "play": str(t.get("play") or ""),
              "handler": bool(t.get("handler")), "wall_s": seconds(t.get("wall_s")), "runs": _int(t.get("runs")),
              "hosts": {str(h): seconds(s) for h, s in sorted((t.get("hosts") or {}).items())}}
             for t in timing.get("tasks") or [] if isinstance(t, dict)]
    roles = [{"role": str(r.get("role") or ""), "wall_s": seconds(r.get("wall_s")), "tasks": _int(r.get("tasks"))}
             for r in timing.get("roles") or [] if isinstance(r, dict)]
    return {
        "total_s": seconds(timing.get("total_s")),
        "tasks_timed": _int(timing.get("tasks_timed")) or len(tasks),
        "slowest_tasks": sorted(tasks, key=lambda t: (-t["wall_s"], t["role"], t["name"]))[:max(top_tasks, 0)],
        "roles": sorted(roles, key=lambda r: (-r["wall_s"], r["role"])),
    }


# --------------------------------------------------------------------------- terminal

def _pct(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def _text_bar(planned: int, total: int, width: int = 20) -> str:
    filled = min(width, round(width * planned / total)) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


def render_terminal(report: dict[str, Any]) -> str:
    """A short plain-text summary for the end of a run (fits 100 columns)."""
    totals = report["totals"]
    lines = [f"{report['title']}: {totals['converged']}/{totals['hosts']} hosts converged"
             + (" (check mode: nothing was changed)" if report["check_mode"] else "")
             + f", {totals['replicas_placed']}/{totals['replicas_wanted']} model replicas placed, "
             f"{totals['vram_planned_mb']}/{totals['vram_total_mb']} MB planned"]
    width = max([len(h["name"]) for h in report["hosts"]] + [4])
    for host in report["hosts"]:
        changed = (host["run"] or {}).get("changed")
        lines.append(f"  {host['name']:<{width}}  {host['node_class']:<4}  {host['status']:<15} "
                     f"{_text_bar(host['vram_planned_mb'], host['vram_total_mb'])} "
                     f"{_pct(host['vram_planned_mb'], host['vram_total_mb']):>3}%"
                     + (f"  changed={changed}" if changed is not None else "")
                     + (f"  models: {', '.join(host['models'])}" if host["models"] else ""))
    for label in ("unreachable", "failed"):
        if totals[label]:
            lines.append(f"  {label}: {', '.join(totals[label])}")
    if report["unplaced"]:
        lines.append("  unplaced: " + "; ".join(f"{u.get('model')} (-{u.get('missing', '?')}: {u.get('reason', '')})"
                                                for u in report["unplaced"]))
    if report["warnings"]:
        lines.append(f"  {len(report['warnings'])} warning(s); first: {report['warnings'][0]}")
    timing = report.get("timing")
    if timing and timing["roles"]:
        lines.append("  time per role: " + ", ".join(f"{r['role']} {r['wall_s']:.1f} s" for r in timing["roles"][:6]))
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9d1e0}main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:8px;padding:12px 18px;margin:16px 0}
h2{font-size:16px;margin:4px 0 10px}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
th{font-weight:600;color:#4a5468;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.bar{position:relative;height:14px;background:#eef0f3;border-radius:3px;overflow:hidden;min-width:220px}
.bar span{position:absolute;top:0;bottom:0}.svc{background:#e59a3a}.mdl{background:#3a78e5}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;margin:1px 2px 1px 0;background:#eef0f3}
.converged{background:#d8f3df;color:#1d6b33}.failed{background:#fbdada;color:#8a1c1c}
.unreachable{background:#fde7c8;color:#8a4b00}.not{background:#eef0f3;color:#4a5468}
.warn li{color:#8a4b00}.muted{color:#6b7486}.kpi{display:inline-block;margin-right:28px}
.kpi b{font-size:20px;display:block}code{font:12px ui-monospace,Menlo,Consolas,monospace}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _status_pill(status: str) -> str:
    css = {STATUS_OK: "converged", STATUS_FAILED: "failed", STATUS_UNREACHABLE: "unreachable"}.get(status, "not")
    return f'<span class="pill {css}">{_e(status)}</span>'


def _html_bar(services_mb: int, models_mb: int, total_mb: int) -> str:
    if total_mb <= 0:
        return '<div class="bar" title="no usable VRAM"></div>'
    svc = min(100.0, 100 * services_mb / total_mb)
    mdl = min(100.0 - svc, 100 * models_mb / total_mb)
    return (f'<div class="bar" title="services {services_mb} MB + models {models_mb} MB of {total_mb} MB">'
            f'<span class="svc" style="left:0;width:{svc:.1f}%"></span>'
            f'<span class="mdl" style="left:{svc:.1f}%;width:{mdl:.1f}%"></span></div>')


def _gpu_rows(host: dict[str, Any]) -> list[str]:
    rows = []
    name = _e(host["name"])
    if host["gpus"]:
        for gpu in host["gpus"]:
            usable = _int(gpu.get("usable_mb") or gpu.get("total_mb"))
            planned = _int(gpu.get("planned_mb"))
            rows.append(f"<tr><td>{name}</td><td>GPU {_e(gpu.get('index', 0))} {_e(gpu.get('name', ''))}</td>"
                        f"<td>{_html_bar(_int(gpu.get('services_mb')), _int(gpu.get('models_mb')), usable)}</td>"
                        f"<td>{planned} / {usable} MB ({_pct(planned, usable)}%)</td></tr>")
    else:
        services_mb = sum(_int(s.get("vram_mb")) for s in host["planned_services"])
        planned, total = host["vram_planned_mb"], host["vram_total_mb"]
        label = "unified / RAM share" if host["node_class"] != "gpu" else "all GPUs"
        rows.append(f"<tr><td>{name}</td><td>{_e(label)}</td>"
                    f"<td>{_html_bar(services_mb, max(planned - services_mb, 0), total)}</td>"
                    f"<td>{planned} / {total} MB ({_pct(planned, total)}%)</td></tr>")
    return rows


def _list(items: list[str], empty: str = "none") -> str:
    if not items:
        return f'<span class="muted">{_e(empty)}</span>'
    return "".join(f'<span class="pill">{_e(i)}</span>' for i in items)


def _timing_section(timing: dict[str, Any] | None) -> list[str]:
    out = ['<section id="timing"><h2>Where the time went</h2>']
    if not timing:
        out.append('<p class="muted">Task times were not recorded: enable the callback <code>pmoves.fleet.pmoves_run</code>.</p>'
                   "</section>")
        return out
    out.append(f'<p class="muted">{timing["tasks_timed"]} tasks timed, {timing["total_s"]:.1f} s up to the report; '
               "a task's wall time runs until the next task starts, handlers included.</p>")
    out.append('<table id="slowest-tasks"><tr><th>task</th><th>role</th><th>wall</th><th>slowest hosts</th></tr>')
    for task in timing["slowest_tasks"]:
        hosts = sorted(task["hosts"].items(), key=lambda item: (-item[1], item[0]))[:3]
        label = _e(task["name"]) + (' <span class="pill">handler</span>' if task["handler"] else "")
        out.append(f"<tr><td>{label}</td><td>{_e(task['role'])}</td><td>{task['wall_s']:.2f} s</td>"
                   f"<td>{_list([f'{h} {s:.2f} s' for h, s in hosts], '-')}</td></tr>")
    out.append('</table><table id="role-times"><tr><th>role</th><th>tasks</th><th>wall</th></tr>')
    for role in timing["roles"]:
        out.append(f"<tr><td>{_e(role['role'])}</td><td>{role['tasks']}</td><td>{role['wall_s']:.1f} s</td></tr>")
    out.append("</table></section>")
    return out


def render_html(report: dict[str, Any]) -> str:
    """The whole page: inline CSS, no scripts, no external resources."""
    totals = report["totals"]
    hosts = report["hosts"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(report['title'])} report</title><style>{_CSS}</style></head><body>",
           f"<header><h1>{_e(report['title'])}</h1><p>strategy {_e(report.get('strategy') or 'n/a')}"
           + (" &middot; check mode: nothing was changed" if report["check_mode"] else "") + "</p></header><main>"]

    out.append('<section id="summary"><h2>Summary</h2>'
               f'<div class="kpi"><b>{totals["converged"]}/{totals["hosts"]}</b>hosts converged</div>'
               f'<div class="kpi"><b>{totals["replicas_placed"]}/{totals["replicas_wanted"]}</b>model replicas placed</div>'
               f'<div class="kpi"><b>{totals["vram_planned_mb"]} / {totals["vram_total_mb"]} MB</b>VRAM planned</div>'
               f'<div class="kpi"><b>{totals["changed"]}</b>changes in this run</div>'
               f'<div class="kpi"><b>{len(report["warnings"])}</b>warnings</div></section>')

    out.append('<section id="changes"><h2>What changed in this run</h2>')
    if not report["run_recorded"]:
        out.append('<p class="muted">Per-host results were not recorded: enable the callback '
                   "<code>pmoves.fleet.pmoves_run</code> (ANSIBLE_CALLBACKS_ENABLED) or run through "
                   "<code>pmoves apply</code>.</p>")
    items = []
    for host in hosts:
        run = host["run"] or {}
        if _int(run.get("changed")):
            tasks = ", ".join(dict.fromkeys(run.get("changed_tasks") or []))
            items.append(f"<li><b>{_e(host['name'])}</b>: {_int(run['changed'])} change(s)"
                         + (f" &mdash; {_e(tasks)}" if tasks else "") + "</li>")
        for message in run.get("messages") or []:
            items.append(f"<li><b>{_e(host['name'])}</b>: {_e(message)}</li>")
        if host["status"] in (STATUS_FAILED, STATUS_UNREACHABLE) and not run.get("messages"):
            items.append(f"<li><b>{_e(host['name'])}</b>: {_e(host['status'])}; dropped from the run</li>")
    items += [f"<li>plan: {_e(move)}</li>" for move in report["moved"]]
    if items:
        out.append("<ul>" + "".join(items) + "</ul>")
    elif report["run_recorded"]:
        out.append('<p class="muted">Nothing changed: the fleet was already converged.</p>')
    out.append("</section>")

    out.append('<section id="nodes"><h2>Nodes</h2><table><tr><th>host</th><th>class</th><th>status</th>'
               "<th>hardware</th><th>models</th></tr>")
    for host in hosts:
        out.append(f"<tr><td>{_e(host['name'])}</td><td>{_e(host['node_class'])}</td>"
                   f"<td>{_status_pill(host['status'])}</td><td>{_e(host['hardware_summary'])}</td>"
                   f"<td>{_list(host['models'])}</td></tr>")
    out.append("</table></section>")

    out.append('<section id="gpus"><h2>GPU memory: planned vs usable</h2>'
               '<p class="muted"><span class="pill svc">&nbsp;</span> services '
               '<span class="pill mdl">&nbsp;</span> models</p><table><tr><th>host</th><th>device</th>'
               "<th>planned</th><th>MB</th></tr>")
    for host in hosts:
        out.extend(_gpu_rows(host))
    out.append("</table></section>")

    out.append('<section id="placements"><h2>Model placements</h2><table><tr><th>model</th><th>alias</th>'
               "<th>replicas</th><th>hosts</th><th>VRAM</th></tr>")
    for name, model in report["models"].items():
        placed = model.get("placed") or []
        out.append(f"<tr><td><code>{_e(name)}</code></td><td>{_e(model.get('alias') or '')}</td>"
                   f"<td>{len(placed)}/{_int(model.get('wanted'))}</td><td>{_list(placed)}</td>"
                   f"<td>{_int(model.get('vram_mb'))} MB</td></tr>")
    out.append("</table>")
    if report["unplaced"]:
        out.append('<ul class="warn">' + "".join(
            f"<li><code>{_e(u.get('model'))}</code>: {_e(u.get('missing', '?'))} replica(s) unplaced &mdash; "
            f"{_e(u.get('reason', ''))}</li>" for u in report["unplaced"]) + "</ul>")
    out.append("</section>")

    out.append('<section id="services"><h2>Services</h2><table><tr><th>host</th><th>planned</th>'
               "<th>running</th><th>health</th></tr>")
    for host in hosts:
        planned = [f"{s.get('name')}" + (f" (GPU {s['gpu_index']})" if s.get("gpu_index") is not None else "")
                   for s in host["planned_services"]]
        running = [f"{s.get('name')}: {s.get('state')}" for s in host["services"]]
        health = "".join(f'<span class="pill {"converged" if h.get("ok") else "failed"}">{_e(h.get("name"))}</span>'
                         for h in host["health"])
        health = health or '<span class="muted">not checked</span>'
        out.append(f"<tr><td>{_e(host['name'])}</td><td>{_list(planned)}</td><td>{_list(running)}</td>"
                   f"<td>{health}</td></tr>")
    out.append("</table></section>")

    out.append('<section id="versions"><h2>Versions</h2><table><tr><th>host</th><th>versions</th></tr>')
    for host in hosts:
        out.append(f"<tr><td>{_e(host['name'])}</td>"
                   f"<td>{_list([f'{k} {v}' for k, v in host['versions'].items()], 'unknown')}</td></tr>")
    out.append("</table></section>")

    out.extend(_timing_section(report.get("timing")))

    out.append('<section id="warnings"><h2>Warnings</h2>')
    out.append('<ul class="warn">' + "".join(f"<li>{_e(w)}</li>" for w in report["warnings"]) + "</ul>"
               if report["warnings"] else '<p class="muted">none</p>')
    out.append("</section></main></body></html>")
    return "\n".join(out) + "\n"
