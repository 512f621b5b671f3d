"""Human reports: Markdown, self-contained HTML with one bar per GPU, diff summary."""

from __future__ import annotations

from ansible_collections.pmoves.fleet.plugins.module_utils.placement import plan_fleet
from ansible_collections.pmoves.fleet.plugins.module_utils.plan_report import diff_summary, render_html, render_markdown

HOSTS = [{"name": "ws", "groups": ["gpu_nodes"], "hardware": {"node_class": "gpu", "memory_mb": 65536, "gpus": [
    {"index": 0, "name": "RTX A5500", "memory_total_mb": 24564}, {"index": 1, "name": "RTX A400", "memory_total_mb": 4094}]}},
    {"name": "vps", "groups": ["cpu_nodes"], "hardware": {"node_class": "cpu", "memory_mb": 8192, "gpus": []}}]
CATALOG = [{"name": "qwen2.5:14b"}, {"name": "llama3.1:405b"}, {"name": "nomic-embed-text", "cpu_ok": True}]


def test_html_is_self_contained_with_a_bar_per_gpu() -> None:
    page = render_html(plan_fleet(HOSTS, CATALOG))
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('class="bar"') == 3  # two GPUs of ws + the RAM share of vps
    assert "<script" not in page and "http" not in page and "<link" not in page
    assert "llama3.1:405b" in page and "largest node has" in page


def test_markdown_has_nodes_models_unplaced_and_warnings() -> None:
    text = render_markdown(plan_fleet(HOSTS, CATALOG))
    for heading in ("## Nodes", "## Models", "## Unplaced", "## Warnings"):
        assert heading in text
    assert "| qwen2.5:14b |" in text


def test_diff_summary_shows_moves() -> None:
    before = plan_fleet(HOSTS, CATALOG[:1])
    after = plan_fleet(HOSTS, CATALOG)
    diff = diff_summary(before, after)
    assert "nomic-embed-text:latest" not in diff["before"] and "nomic-embed-text:latest: vps" in diff["after"]


def test_reports_show_resident_on_demand_peak_disk_and_reasons() -> None:
    hosts = [{**HOSTS[0], "vars": {"pmoves_models_disk_mb": 90000}}, HOSTS[1]]
    catalog = [{"name": "qwen2.5:14b", "resident": True}, {"name": "qwen2.5:32b"}, {"name": "deepseek-r1:32b"},
               {"name": "nomic-embed-text", "cpu_ok": True}]
    plan = plan_fleet(hosts, catalog)
    node = plan["nodes"]["ws"]
    text = render_markdown(plan)
    assert "## Capacity per node" in text and "## Placements and reasons" in text
    row = next(line for line in text.splitlines() if line.startswith("| ws | ") and "qwen2.5:14b" in line
               and "/ 90000" in line)
    assert f"{node['peak_mb']} / {node['vram_total_mb']}" in row and "qwen2.5:32b" in row
    assert f"{node['disk']['used_mb']} / 90000" in row
    assert "| ws | qwen2.5:14b | resident |" in text and "| ws | qwen2.5:32b | on demand |" in text
    page = render_html(plan)
    assert "Capacity per node" in page and "Placements and reasons" in page and "on demand" in page
