"""The fleet report shows what a user needs after a run, and is deterministic."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils import fleet_report as fr

GOLDEN = Path(__file__).parent / "golden"

PLAN = {
    "schema": 1, "strategy": "balanced",
    "nodes": {
        "lab-5090": {"class": "gpu", "vram_total_mb": 32095, "vram_planned_mb": 6000,
                     "models": ["llama3.2:1b", "tinyllama:latest"], "services": [{"name": "tts", "gpu_index": 0, "vram_mb": 4000}],
                     "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 5090", "total_mb": 32607, "usable_mb": 32095,
                               "services_mb": 4000, "models_mb": 2000, "planned_mb": 6000}]},
        "lab-jetson-1": {"class": "edge", "vram_total_mb": 24000, "vram_planned_mb": 1300,
                         "models": ["llama3.2:1b"], "services": [], "gpus": []},
        "lab-vps-gateway": {"class": "cpu", "vram_total_mb": 2048, "vram_planned_mb": 0, "models": [],
                            "services": [], "gpus": []},
    },
    "models": {"llama3.2:1b": {"wanted": 2, "placed": ["lab-5090", "lab-jetson-1"], "vram_mb": 1300, "alias": "S-llama"},
               "tinyllama:latest": {"wanted": 2, "placed": ["lab-5090"], "vram_mb": 700}},
    "unplaced": [{"model": "tinyllama:latest", "missing": 1, "reason": "no room <on> & edge"}],
    "moved_detail": ["model tinyllama:latest left lab-3090ti"],
    "warnings": ["node lab-5090 is planned at 19%"],
}
HOSTS = {
    "lab-5090": {"hardware": {"arch": "x86_64", "memory_mb": 65536, "node_class": "gpu",
                              "gpus": [{"name": "NVIDIA GeForce RTX 5090", "memory_total_mb": 32607}],
                              "nvidia": {"driver_version": "575.57.08", "cuda_driver_version": "12.9"},
                              "warnings": ["NVML not available"]},
                 "versions": {"ollama": "0.30.10"},
                 "services": [{"name": "ollama.service", "state": "running"}],
                 "health": [{"name": "ollama api", "ok": True, "detail": ""}]},
    "lab-jetson-1": {"hardware": {"arch": "aarch64", "memory_mb": 32768, "node_class": "edge", "gpus": [],
                                  "jetson": {"l4t": "36.4.4", "jetpack": "6.2.1"}},
                     "health": [{"name": "planned models", "ok": False, "detail": "missing llama3.2:1b"}]},
    "lab-vps-gateway": {"hardware": {"arch": "x86_64", "memory_mb": 4096, "node_class": "cpu", "gpus": []}},
    "lab-3090ti": {},
}
RUN = {
    "lab-5090": {"ok": 20, "changed": 2, "failed": 0, "unreachable": 0, "skipped": 3,
                 "changed_tasks": ["Ollama | Pull llama3.2:1b", "Ollama | Pull llama3.2:1b"], "messages": []},
    "lab-jetson-1": {"ok": 18, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 4, "changed_tasks": [],
                     "messages": []},
    "lab-3090ti": {"ok": 0, "changed": 0, "failed": 0, "unreachable": 1, "skipped": 0, "changed_tasks": [],
                   "messages": ["unreachable: Discover | gather pmoves_hardware: container is stopped"]},
    "lab-vps-gateway": {"ok": 10, "changed": 0, "failed": 1, "unreachable": 0, "skipped": 0, "changed_tasks": [],
                        "messages": ["failed: Gateway | Start litellm: exit 1"]},
}

TIMING = {"total_s": 42.5, "tasks_timed": 3,
          "tasks": [{"name": "Ollama | Pull <models>", "role": "ollama", "play": "Ollama", "handler": False, "wall_s": 30.25,
                     "runs": 1, "hosts": {"lab-5090": 30.0, "lab-jetson-1": 12.5}},
                    {"name": "restart ollama", "role": "ollama", "play": "Ollama", "handler": True, "wall_s": 8.0,
                     "runs": 1, "hosts": {"lab-5090": 8.0}},
                    {"name": "Gathering Facts", "role": "(play tasks)", "play": "Base", "handler": False, "wall_s": 4.25,
                     "runs": 1, "hosts": {"lab-5090": 4.0, "lab-jetson-1": 4.25}}],
          "roles": [{"role": "ollama", "wall_s": 38.25, "tasks": 2}, {"role": "(play tasks)", "wall_s": 4.25, "tasks": 1}]}


def make(**kwargs):
    args = {"plan": PLAN, "hosts": HOSTS, "run": RUN, "warnings": ["inventory: pmoves_models[3] repeats"],
            "title": "pmoves fleet lab", "timing": TIMING}
    args.update(kwargs)
    return fr.build_report(**args)


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def test_status_comes_from_this_runs_results():
    report = make()
    status = {h["name"]: h["status"] for h in report["hosts"]}
    assert status == {"lab-3090ti": "unreachable", "lab-5090": "converged", "lab-jetson-1": "converged",
                      "lab-vps-gateway": "failed"}
    assert report["totals"]["unreachable"] == ["lab-3090ti"]
    assert report["totals"]["failed"] == ["lab-vps-gateway"]
    assert report["totals"]["changed"] == 2
    assert report["totals"]["replicas_placed"] == 3 and report["totals"]["replicas_wanted"] == 4


def test_hosts_dropped_from_the_play_count_as_failed_without_callback():
    report = make(run=None, not_converged=["lab-3090ti"], in_play=["lab-3090ti", "lab-5090", "lab-jetson-1"])
    status = {h["name"]: h["status"] for h in report["hosts"]}
    assert status["lab-3090ti"] == "failed"
    assert status["lab-vps-gateway"] == "not in this run"  # outside --limit
    assert report["run_recorded"] is False
    assert "not recorded" in fr.render_html(report)


def test_html_is_self_contained_and_escaped():
    page = fr.render_html(make())
    parsed = parse(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert parsed.urls == []
    assert "<style>" in page
    assert "no room &lt;on&gt; &amp; edge" in page  # reasons are escaped
    assert "<on>" not in page


def test_html_has_every_section_with_the_facts():
    page = fr.render_html(make())
    for section in ("summary", "changes", "nodes", "gpus", "placements", "services", "versions", "timing", "warnings"):
        assert f'id="{section}"' in page
    text = "".join(parse(page).text)
    assert "lab-5090: 2 change(s) — Ollama | Pull llama3.2:1b" in text  # deduplicated task names
    assert "unreachable: Discover | gather pmoves_hardware: container is stopped" in text
    assert "plan: model tinyllama:latest left lab-3090ti" in text
    assert "nvidia driver 575.57.08" in text and "ollama 0.30.10" in text and "JetPack 6.2.1" in text
    assert "lab-5090: NVML not available" in text
    assert "lab-jetson-1: health check planned models failed: missing llama3.2:1b" in text
    assert "inventory: pmoves_models[3] repeats" in text
    assert "ollama.service: running" in text and "tts (GPU 0)" in text
    assert "Ollama | Pull <models>" in text and "lab-5090 30.00 s" in text and "38.2 s" in text


def test_gpu_bar_widths_are_planned_over_usable():
    page = fr.render_html(make())
    # lab-5090 GPU 0: 4000 MB services + 2000 MB models of 32095 usable.
    assert 'class="svc" style="left:0;width:12.5%"' in page
    assert 'class="mdl" style="left:12.5%;width:6.2%"' in page
    assert "6000 / 32095 MB (19%)" in page
    # no GPU entries: node-level bar over the unified/RAM share
    assert "1300 / 24000 MB (5%)" in page


def test_overcommitted_bar_is_capped_at_full_width():
    bar_html = fr._html_bar(30000, 30000, 32000)
    widths = [float(w) for w in re.findall(r"width:([0-9.]+)%", bar_html)]
    assert sum(widths) == pytest.approx(100.0)


def test_converged_rerun_says_nothing_changed():
    quiet = {h: dict(r, changed=0, failed=0, unreachable=0, changed_tasks=[], messages=[]) for h, r in RUN.items()}
    plan = dict(PLAN, moved_detail=[])
    report = make(run=quiet, plan=plan)
    assert report["totals"]["changed"] == 0
    assert "Nothing changed: the fleet was already converged." in fr.render_html(report)


def test_check_mode_is_announced():
    report = make(check_mode=True)
    assert "check mode: nothing was changed" in fr.render_terminal(report)
    assert "check mode: nothing was changed" in fr.render_html(report)


def test_no_plan_still_renders():
    report = fr.build_report(None, {"a": {}}, None, [])
    assert report["hosts"][0]["hardware_summary"] == "hardware not discovered"
    assert "<html" in fr.render_html(report)
    assert fr.render_terminal(report).startswith("pmoves fleet: 1/1 hosts converged")


def test_terminal_summary():
    text = fr.render_terminal(make())
    lines = text.splitlines()
    assert lines[0] == "pmoves fleet lab: 2/4 hosts converged, 3/4 model replicas placed, 7300/58143 MB planned"
    assert any(line.startswith("  lab-5090 ") and "[###" in line and "19%" in line and "changed=2" in line
               and "models: llama3.2:1b, tinyllama:latest" in line for line in lines)
    assert "  unreachable: lab-3090ti" in lines
    assert "  failed: lab-vps-gateway" in lines
    assert max(len(line) for line in lines[1:5]) <= 120


def test_same_inputs_same_bytes_and_golden():
    first = fr.render_html(make())
    assert first == fr.render_html(make())
    report_json = json.dumps(make(), sort_keys=True, indent=2) + "\n"
    golden_html, golden_json = GOLDEN / "report.html", GOLDEN / "report.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden_html.write_text(first)
        golden_json.write_text(report_json)
    assert first == golden_html.read_text(), "report.html changed; rerun with UPDATE_GOLDEN=1 and review the diff"
    assert report_json == golden_json.read_text()
