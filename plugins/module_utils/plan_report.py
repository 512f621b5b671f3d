"""Human reports of a plan: Markdown (plan.md), a self-contained HTML page (plan.html), and a
short text summary used for ``--diff`` (old plan vs new plan). Pure functions of the plan dict.
"""

from __future__ import annotations

import html
from typing import Any


def _pct(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def summary_lines(plan: dict[str, Any] | None) -> list[str]:
    """One line per placement, sorted: what ``--diff`` compares."""
    if not plan:
        return []
    lines = []
    for name, entry in sorted((plan.get("models") or {}).items()):
        lines.append(f"model {name}: {', '.join(entry.get('placed') or []) or '-'} "
                     f"({len(entry.get('placed') or [])}/{entry.get('wanted', 0)}, {entry.get('vram_mb', 0)} MB)")
    for host, node in sorted((plan.get("nodes") or {}).items()):
        for service in node.get("services") or []:
            lines.append(f"service {service['name']}: {host} gpu {service.get('gpu_index')} "
                         f"({service.get('vram_mb', 0)} MB)")
    return lines


def diff_summary(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, str]:
    """``{before, after}`` texts for Ansible's diff output."""
    return {"before": "\n".join(summary_lines(before)) + "\n", "after": "\n".join(summary_lines(after)) + "\n",
            "before_header": "plan.json (previous)", "after_header": "plan.json (new)"}


def render_markdown(plan: dict[str, Any]) -> str:
    models = plan.get("models") or {}
    nodes = plan.get("nodes") or {}
    wanted = sum(m.get("wanted", 0) for m in models.values())
    placed = sum(len(m.get("placed") or []) for m in models.values())
    out = [
        "# Fleet plan", "",
        f"Strategy: `{plan.get('strategy')}` (GPUs: `{plan.get('gpu_strategy')}`, models across hosts: "
        f"`{plan.get('model_strategy')}`). Replicas placed: {placed} of {wanted}. "
        f"Placements moved since the previous plan: {plan.get('moved', 0)}.", "",
        "## Nodes", "",
        "| host | class | planned / usable VRAM (MB) | share | models | services (GPU) |",
        "|---|---|---|---|---|---|",
    ]
    for host, node in sorted(nodes.items()):
        services = ", ".join(f"{s['name']} ({s['gpu_index'] if s.get('gpu_index') is not None else '-'})"
                             for s in node.get("services") or [])
        out.append(f"| {host} | {node['class']} | {node['vram_planned_mb']} / {node['vram_total_mb']} | "
                   f"{_pct(node['vram_planned_mb'], node['vram_total_mb'])}% | "
                   f"{', '.join(node.get('models') or []) or '-'} | {services or '-'} |")
    out += ["", "## Capacity per node", "",
            "Resident models and services are always loaded; on-demand models are held on disk and loaded when "
            "asked for (at most max_loaded at once). Peak = services + resident + the max_loaded largest "
            "on-demand models.", "",
            "| host | reserved (services + resident) MB | resident | on demand | peak / VRAM MB | max_loaded | "
            "offload MB | disk used / total MB |", "|---|---|---|---|---|---|---|---|"]
    for host, node in sorted(nodes.items()):
        out.append("| " + " | ".join(_capacity_cells(host, node)) + " |")
    out += ["", "## Placements and reasons", "",
            "| host | model | loaded | VRAM when loaded MB | spills to RAM MB | disk MB | why here |",
            "|---|---|---|---|---|---|---|"]
    for host, node in sorted(nodes.items()):
        for model, placement in sorted((node.get("placements") or {}).items()):
            out.append(f"| {host} | {model} | {'resident' if placement.get('resident') else 'on demand'} | "
                       f"{placement.get('vram_mb')} | {placement.get('spill_mb') or 0} | {placement.get('disk_mb')} | "
                       f"{str(placement.get('why') or '').replace('|', '/')} |")
    out += ["", "## Models", "", "| model | alias | VRAM (MB) | wanted | hosts | why |", "|---|---|---|---|---|---|"]
    for name, entry in sorted(models.items()):
        why = "; ".join(f"{h}: {w}" for h, w in (entry.get("why") or {}).items())
        if entry.get("unplaced_reason"):
            why = (why + "; " if why else "") + f"short: {entry['unplaced_reason']}"
        out.append(f"| {name} | {entry.get('alias') or ''} | {entry.get('vram_mb')} | {entry.get('wanted')} | "
                   f"{', '.join(entry.get('placed') or []) or '-'} | {why.replace('|', '/')} |")
    if plan.get("unplaced"):
        out += ["", "## Unplaced", ""]
        out += [f"- **{u['model']}**: {u['missing']} missing: {u['reason']}" for u in plan["unplaced"]]
    if plan.get("warnings"):
        out += ["", "## Warnings", ""]
        out += [f"- {w}" for w in plan["warnings"]]
    return "\n".join(out) + "\n"


def _capacity_cells(host: str, node: dict[str, Any]) -> list[str]:
    """One row of the capacity table: reserved, resident, on demand, peak vs VRAM, max_loaded, offload, disk."""
    disk = node.get("disk") or {}
    total = disk.get("total_mb")
    peak = node.get("peak_mb", node.get("vram_planned_mb", 0))
    over = " (over VRAM)" if peak > node.get("vram_total_mb", 0) and node.get("on_demand") else ""
    return [host, str(node.get("reserved_mb", node.get("vram_planned_mb", 0))),
            ", ".join(node.get("resident") or []) or "-", ", ".join(node.get("on_demand") or []) or "-",
            f"{peak} / {node.get('vram_total_mb', 0)}{over}", str(node.get("max_loaded", "-")),
            str(node.get("offload_mb", 0)), f"{disk.get('used_mb', 0)} / {total if total is not None else 'unknown'}"]


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
.bar{width:320px;height:16px;background:#eee;border:1px solid #999;position:relative;display:inline-block}
.fill{height:100%;background:#4a8}.svc{background:#48c}.over{background:#c44}
.warn{color:#a40}.small{font-size:.85em;color:#555}
"""


def _bar(services_mb: int, models_mb: int, total_mb: int) -> str:
    if total_mb <= 0:
        return '<span class="small">no VRAM</span>'
    svc = min(100.0, 100.0 * services_mb / total_mb)
    mdl = min(100.0 - svc, 100.0 * models_mb / total_mb)
    over = " over" if services_mb + models_mb > total_mb else ""
    return (f'<span class="bar"><span class="fill svc{over}" style="width:{svc:.1f}%;float:left"></span>'
            f'<span class="fill{over}" style="width:{mdl:.1f}%;float:left"></span></span>')


def render_html(plan: dict[str, Any]) -> str:
    """A self-contained page (inline CSS, no scripts, no external assets)."""
    esc = html.escape
    nodes = plan.get("nodes") or {}
    rows = []
    for host, node in sorted(nodes.items()):
        gpus = node.get("gpus") or []
        if gpus:
            for gpu in gpus:
                rows.append(
                    f"<tr><td>{esc(host)}</td><td>{esc(node['class'])}</td><td>GPU {gpu['index']} {esc(gpu['name'])}"
                    f"</td><td>{_bar(gpu['services_mb'], gpu['models_mb'], gpu['usable_mb'])}</td>"
                    f"<td>{gpu['planned_mb']} / {gpu['usable_mb']} MB (total {gpu['total_mb']})</td>"
                    f"<td>{esc(', '.join(gpu.get('services') or []))}</td></tr>")
        else:
            svc = sum(s.get("vram_mb", 0) for s in node.get("services") or [])
            rows.append(
                f"<tr><td>{esc(host)}</td><td>{esc(node['class'])}</td><td>RAM share</td>"
                f"<td>{_bar(svc, node['vram_planned_mb'] - svc, node['vram_total_mb'])}</td>"
                f"<td>{node['vram_planned_mb']} / {node['vram_total_mb']} MB</td>"
                f"<td>{esc(', '.join(s['name'] for s in node.get('services') or []))}</td></tr>")
    model_rows = []
    for name, entry in sorted((plan.get("models") or {}).items()):
        short = entry.get("wanted", 0) - len(entry.get("placed") or [])
        model_rows.append(
            f"<tr><td>{esc(name)}</td><td>{esc(entry.get('alias') or '')}</td><td>{entry.get('vram_mb')}</td>"
            f"<td>{len(entry.get('placed') or [])} / {entry.get('wanted')}</td>"
            f"<td>{esc(', '.join(entry.get('placed') or []))}</td>"
            f"<td class=\"{'warn' if short > 0 else 'small'}\">{esc(entry.get('unplaced_reason') or '')}</td></tr>")
    warnings = "".join(f"<li>{esc(w)}</li>" for w in plan.get("warnings") or [])
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Fleet plan</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Fleet plan</h1>",
        f"<p>Strategy <b>{esc(str(plan.get('strategy')))}</b> (GPUs: {esc(str(plan.get('gpu_strategy')))}, "
        f"models: {esc(str(plan.get('model_strategy')))}); moved since previous plan: {plan.get('moved', 0)}. "
        "Bars: blue = services, green = models, red = over budget.</p>",
        "<h2>VRAM per GPU (planned vs usable)</h2><table><tr><th>host</th><th>class</th><th>device</th>"
        "<th>planned</th><th>MB</th><th>services</th></tr>", "".join(rows), "</table>",
        "<h2>Capacity per node</h2><p class=\"small\">Resident models and services are always loaded; on-demand "
        "models are held on disk and loaded when asked for (at most max_loaded at once); peak = services + "
        "resident + the max_loaded largest on-demand models.</p><table><tr><th>host</th><th>reserved MB</th>"
        "<th>resident</th><th>on demand</th><th>peak / VRAM MB</th><th>max_loaded</th><th>offload MB</th>"
        "<th>disk used / total MB</th></tr>",
        "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in _capacity_cells(host, node)) + "</tr>"
                for host, node in sorted(nodes.items())), "</table>",
        "<h2>Placements and reasons</h2><table><tr><th>host</th><th>model</th><th>loaded</th><th>VRAM MB</th>"
        "<th>spills MB</th><th>disk MB</th><th>why here</th></tr>",
        "".join(f"<tr><td>{esc(host)}</td><td>{esc(model)}</td>"
                f"<td>{'resident' if p.get('resident') else 'on demand'}</td><td>{p.get('vram_mb')}</td>"
                f"<td class=\"{'warn' if p.get('spill_mb') else 'small'}\">{p.get('spill_mb') or 0}</td>"
                f"<td>{p.get('disk_mb')}</td><td class=\"small\">{esc(str(p.get('why') or ''))}</td></tr>"
                for host, node in sorted(nodes.items()) for model, p in sorted((node.get("placements") or {}).items())),
        "</table>",
        "<h2>Models</h2><table><tr><th>model</th><th>alias</th><th>VRAM MB</th><th>replicas</th><th>hosts</th>"
        "<th>short because</th></tr>", "".join(model_rows), "</table>",
        f"<h2>Warnings ({len(plan.get('warnings') or [])})</h2><ul>{warnings}</ul>",
        "</body></html>\n",
    ])
