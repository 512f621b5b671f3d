"""Pipelining over a real sshd (issue 20): ANSIBLE_PIPELINING=True vs False, podman connection for reference.

Starts ONE throw-away systemd container from localhost/pmoves-molecule:bookworm-systemd, installs
openssh-server in it, authorizes a generated ed25519 key, publishes sshd on 127.0.0.1:<free port> and checks
its host key through a temporary known_hosts filled by ssh-keyscan (host key checking stays on). Runs a
playbook of typical module tasks (converge, then a zero-change rerun) with pipelining on and off,
interleaved, and counts the module-file transfers (PUT/sftp/scp lines in -vvv) to verify pipelining is
in effect, not only faster. The container is removed at the end, also on failure. Run by hand:

    .venv/bin/python benchmarks/bench_ssh_pipelining.py [--reps 3]
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/pmoves-molecule:bookworm-systemd"

PLAYBOOK = """
- name: Bench workload
  hosts: bench
  gather_facts: true
  tasks:
    - name: Apt cache
      ansible.builtin.apt:
        update_cache: true
        cache_valid_time: 86400
{tasks}
"""

TASK_BLOCK = """
    - name: Dir {i}
      ansible.builtin.file:
        path: /opt/bench/{i}
        state: directory
        mode: "0755"
    - name: Copy {i}
      ansible.builtin.copy:
        content: "bench {i}\\n"
        dest: /opt/bench/{i}/file
        mode: "0644"
    - name: Template {i}
      ansible.builtin.template:
        src: bench.j2
        dest: /opt/bench/{i}/conf
        mode: "0644"
    - name: Stat {i}
      ansible.builtin.stat:
        path: /opt/bench/{i}/conf
    - name: Command {i}
      ansible.builtin.command: cat /opt/bench/{i}/file
      changed_when: false
    - name: Service {i}
      ansible.builtin.systemd_service:
        name: {service}
        state: started
"""


def sh(*cmd, check=True, **kw):
    p = subprocess.run(cmd, check=False, text=True, capture_output=True, **kw)
    if check and p.returncode:
        sys.exit(f"{cmd} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_play(workdir, inventory, env_extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer", ANSIBLE_CACHE_PLUGIN="memory", **env_extra)
    t0 = time.monotonic()
    p = subprocess.run(["ansible-playbook", "-vvv", "-i", str(inventory), str(workdir / "play.yml")],
                       cwd=ROOT, env=env, text=True, capture_output=True, check=False)
    wall = time.monotonic() - t0
    if p.returncode:
        sys.exit(f"playbook failed ({env_extra}):\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
    out = p.stdout
    puts = len(re.findall(r"^<[^>]+> PUT ", out, re.M))
    ssh_exec = len(re.findall(r"^<[^>]+> SSH: EXEC ", out, re.M))
    transfers = len(re.findall(r"SSH: EXEC (?:sftp|scp)", out))
    recap = re.search(r"ok=(\d+)\s+changed=(\d+)", out)
    return wall, puts, transfers, ssh_exec, recap.group(0) if recap else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--blocks", type=int, default=5, help="6 tasks each (plus facts and apt cache)")
    args = ap.parse_args()
    name = f"bench-sshpipe-{os.getpid()}"
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-sshpipe-"))
    try:
        sh("podman", "run", "-d", "--name", name, "--systemd=always", "-p", f"127.0.0.1:{port}:22", IMAGE)
        for _attempt in range(30):  # wait for systemd to be up before systemctl
            if sh("podman", "exec", name, "systemctl", "is-system-running", check=False).stdout.strip() in (
                    "running", "degraded"):
                break
            time.sleep(1)
        sh("podman", "exec", name, "sh", "-c",
           "test -x /usr/sbin/sshd || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
           "apt-get install -y -qq openssh-server >/dev/null); systemctl enable --now ssh")
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "id"))
        pub = (work / "id.pub").read_text()
        sh("podman", "exec", "-i", name, "sh", "-c",
           "mkdir -p /root/.ssh && chmod 700 /root/.ssh && cat >> /root/.ssh/authorized_keys "
           "&& chmod 600 /root/.ssh/authorized_keys", input=pub)
        for _attempt in range(30):
            scan = sh("ssh-keyscan", "-p", str(port), "-t", "ed25519", "127.0.0.1", check=False)
            if scan.stdout.strip():
                break
            time.sleep(1)
        (work / "known_hosts").write_text(scan.stdout)
        rtty = sh("podman", "exec", name, "sh", "-c", "grep -rs requiretty /etc/sudoers /etc/sudoers.d || true")
        print(f"requiretty in sudoers: {rtty.stdout.strip() or 'not set'} (root login, no become)")
        (work / "bench.j2").write_text("host={{ inventory_hostname }} py={{ ansible_python_version }}\n")
        (work / "play.yml").write_text(PLAYBOOK.format(
            tasks="".join(TASK_BLOCK.format(i=i, service="ssh") for i in range(args.blocks))))
        ssh_inv = work / "ssh.ini"
        ssh_inv.write_text(
            f"[bench]\nb ansible_host=127.0.0.1 ansible_port={port} ansible_user=root "
            f"ansible_connection=ssh ansible_ssh_private_key_file={work / 'id'} "
            f"ansible_ssh_extra_args='-o UserKnownHostsFile={work / 'known_hosts'}' "
            f"ansible_python_interpreter=/usr/bin/python3\n")
        pod_inv = work / "podman.ini"
        pod_inv.write_text(f"[bench]\nb ansible_host={name} ansible_connection=containers.podman.podman "
                           "ansible_python_interpreter=/usr/bin/python3\n")
        modes = {
            "ssh pipelining=True": (ssh_inv, {"ANSIBLE_PIPELINING": "True"}),
            "ssh pipelining=False": (ssh_inv, {"ANSIBLE_PIPELINING": "False"}),
            "ssh ANSIBLE_SSH_PIPELINING=False only": (ssh_inv, {"ANSIBLE_SSH_PIPELINING": "False"}),
            "podman": (pod_inv, {}),
        }
        res = {m: {"converge": [], "rerun": []} for m in modes}
        for rep in range(args.reps):
            for m, (inv, env) in modes.items():
                sh("podman", "exec", name, "rm", "-rf", "/opt/bench")
                for phase in ("converge", "rerun"):
                    r = run_play(work, inv, env)
                    res[m][phase].append(r)
                    print(f"rep {rep} {m:40s} {phase:8s} {r[0]:6.2f} s  PUT={r[1]} sftp/scp={r[2]} "
                          f"ssh_exec={r[3]} {r[4]}", flush=True)
        print(f"\nload: {os.getloadavg()}  reps={args.reps} tasks={2 + 6 * args.blocks}")
        for phase in ("converge", "rerun"):
            base = statistics.median(x[0] for x in res["ssh pipelining=False"][phase])
            for m in modes:
                med = statistics.median(x[0] for x in res[m][phase])
                last = res[m][phase][-1]
                print(f"{phase:8s} {m:40s} median {med:6.2f} s  ratio vs ssh unpipelined {med / base:.2f}  "
                      f"PUT={last[1]} sftp/scp={last[2]} ssh_exec={last[3]}")
    finally:
        sh("podman", "rm", "-f", "-t", "0", name, check=False)


if __name__ == "__main__":
    main()
