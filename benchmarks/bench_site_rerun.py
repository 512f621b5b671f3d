"""Benchmark: idempotent rerun of site.yml on the lab vs the first run, and pipelining on vs off.

    .venv/bin/python benchmarks/bench_site_rerun.py            # fresh lab, 1 first run + reruns
    .venv/bin/python benchmarks/bench_site_rerun.py --keep     # leave the lab up afterwards
    .venv/bin/python benchmarks/bench_site_rerun.py --ssh      # reach the nodes over SSH, as a real fleet

Prints wall times and two ratios measured in this one run:
  rerun/first            how much cheaper a converged fleet is to re-check (lower is better)
  pipelining off/on      what ansible.cfg's pipelining=true buys on reruns (higher means it helps)
Needs podman and the base image (make images). Takes several minutes.

The lab's podman connection plugin cannot pipeline (containers.podman's `has_pipelining = False`),
so without --ssh both pipelining settings run the same way and the second ratio is ~1 by
construction. --ssh installs openssh-server in every lab container, authorises a throw-away key
and points Ansible at the containers' addresses with the ssh connection (a second inventory
source overriding the lab's podman connection per host), which is how a real fleet is reached.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "playbooks/site.yml", "-i", "inventories/lab",
            "-e", f"pmoves_artifacts_dir={REPO / 'artifacts'}",
            # as scripts/lab-up.sh (no nvidia-ctk in the lab containers)
            "--skip-tags", os.environ.get("PMOVES_LAB_SKIP_TAGS", "nvidia")]


def lab_containers() -> dict[str, str]:
    """Lab host name -> container name, from the running lab containers' labels."""
    out = subprocess.run(["podman", "ps", "--filter", "label=io.pmoves.lab.host", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return {c["Labels"]["io.pmoves.lab.host"]: c["Names"][0] for c in json.loads(out or "[]")}


def enable_ssh(workdir: Path) -> Path:
    """Install sshd in every lab container; return an inventory that reaches them over SSH."""
    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    hosts = {}
    for host, container in sorted(lab_containers().items()):
        setup = ("command -v sshd >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                 "apt-get install -y -qq --no-install-recommends openssh-server >/dev/null); "
                 "mkdir -p /root/.ssh && chmod 700 /root/.ssh && cat > /root/.ssh/authorized_keys && "
                 "systemctl enable --now ssh >/dev/null 2>&1")
        subprocess.run(["podman", "exec", "-i", container, "sh", "-c", setup], input=key.with_suffix(".pub").read_text(),
                       text=True, check=True)
        address = subprocess.run(["podman", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                                  container], capture_output=True, text=True, check=True).stdout.strip()
        hosts[host] = {"ansible_connection": "ssh", "ansible_host": address, "ansible_user": "root",
                       "ansible_ssh_private_key_file": str(key),
                       "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
    inventory = workdir / "ssh.yml"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    return inventory


def timed_run(label: str, pipelining: bool, extra: list[str] | None = None) -> tuple[float, int]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_PIPELINING=str(pipelining),
               ANSIBLE_NOCOLOR="1")
    start = time.perf_counter()
    result = subprocess.run(PLAYBOOK + (extra or []), cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    changed = sum(int(c) for c in re.findall(r"changed=(\d+)", result.stdout))
    print(f"{label:<34} {seconds:8.1f} s  rc={result.returncode}  changed={changed}", flush=True)
    if result.returncode not in (0,):
        print(result.stdout[-3000:], file=sys.stderr)
    return seconds, changed


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--keep", action="store_true", help="leave the lab up")
    options.add_argument("--reruns", type=int, default=2, help="reruns per pipelining setting (median)")
    options.add_argument("--ssh", action="store_true", help="reach the lab nodes over SSH (pipelining applies)")
    args = options.parse_args()
    subprocess.run([str(REPO / "scripts" / "lab-down.sh")], cwd=REPO, check=True)
    subprocess.run([str(REPO / "scripts" / "lab-up.sh"), "--nodes"], cwd=REPO, check=True)
    workdir = Path(tempfile.mkdtemp(prefix="pmoves-bench-"))
    try:
        extra = ["-i", str(enable_ssh(workdir))] if args.ssh else []
        print(f"connection: {'ssh' if args.ssh else 'containers.podman.podman (cannot pipeline)'}", flush=True)
        first, _changed = timed_run("first run (pipelining on)", True, extra)
        # Alternate the settings so a change in machine load hits both alike.
        on: list[float] = []
        off: list[float] = []
        for i in range(args.reruns):
            on.append(timed_run(f"rerun {i + 1} (pipelining on)", True, extra)[0])
            off.append(timed_run(f"rerun {i + 1} (pipelining off)", False, extra)[0])
        median_on, median_off = statistics.median(on), statistics.median(off)
        print(f"ratio rerun/first (pipelining on):   {median_on / first:.2f}")
        print(f"ratio rerun pipelining off/on:       {median_off / median_on:.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep:
            subprocess.run([str(REPO / "scripts" / "lab-down.sh")], cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
