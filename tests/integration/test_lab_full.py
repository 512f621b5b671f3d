"""`make lab` end to end: converge with site.yml (changed=0 on the second run) and a gateway answer.

Slow (minutes); needs every role site.yml applies. Opt in with PMOVES_LAB_FULL=1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROLES = ["base", "node_env", "nvidia_runtime", "jetson", "ollama", "compose", "gateway", "mesh", "monitoring"]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("PMOVES_LAB_FULL") != "1", reason="set PMOVES_LAB_FULL=1 (takes minutes)"),
]


def run_lab() -> subprocess.CompletedProcess:
    return subprocess.run(["scripts/lab-up.sh"], cwd=REPO, capture_output=True, text=True, timeout=3600, check=False)


def test_make_lab_converges_idempotently_and_the_gateway_answers():
    missing = [r for r in ROLES if not (REPO / "roles" / r / "tasks" / "main.yml").exists()]
    if missing:
        pytest.xfail(f"roles not in the tree yet: {', '.join(missing)}")
    first = run_lab()
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    second = run_lab()
    assert second.returncode == 0, second.stdout[-4000:]
    recap = re.findall(r"^\S+\s+: ok=\d+\s+changed=(\d+)", second.stdout, re.M)
    assert recap and set(recap) == {"0"}, second.stdout[-4000:]
    lab = json.loads((REPO / "artifacts" / "lab.json").read_text())
    key = (REPO / lab["api_key_file"]).read_text().strip()
    model = next(m for n in lab["nodes"].values() for m in n["models"] if "embed" not in m)
    request = urllib.request.Request(f"{lab['gateway_url']}/v1/chat/completions", method="POST",
                                     data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert json.load(response)["choices"][0]["message"]["content"]
