"""Benchmark (issue 20): our pmoves.fleet.ollama role vs the public peer role eirikns/ansible-role-ollama, one host.

    .venv/bin/python benchmarks/bench_ollama_vs_peer.py [--reps 3] [--profile 8]

Both roles install the SAME offline release archive (the Ollama TEST DOUBLE packaged like a release by
tests/doubles/ollama_emulator/build_release.sh: ollama-linux-amd64.tar.zst + sha256sum.txt), served over HTTP from
this host at the release URL layout both roles know (<base>/v<version>/<asset>), and the same two small models the
test double's emulated registry serves (each role pulls them its own way: ours through pmoves.fleet.ollama_model_set
and the API, the peer with `ollama list` + `ollama pull`). Each role gets its own fresh systemd container
(localhost/pmoves-molecule:bookworm-systemd, `--systemd=always`, named bench-peer-*), reached over the
containers.podman.podman connection, and runs three phases there:

  first     the first converge on the fresh container (download, unpack, user, unit, start, pull 2 models)
  rerun     the idempotent rerun on the converged container (must report changed=0 for ours)
  check     `--check` on the converged container

Printed per role and phase: wall time (ansible-playbook from start to exit, fact gathering included), the recap's
ok/changed/skipped counts and the requests the release server saw; then the medians over --reps and the ratios
ours/peer (< 1: ours is faster). The order of the two roles alternates between repetitions so a change in machine
load hits both alike. After the first converge both containers are checked alike (service active, `ollama --version`,
both models listed by the API), so both did the same work.

The peer role is not vendored: its tree at PEER_COMMIT is exported at run time (`git archive`) from a local git
directory (--peer-git; default the mirror the fetch tool leaves under /work/.mirror, else a clone of --peer-url)
into a temporary roles directory. Containers and the temporary directory are removed at the end, also on failure.
Not part of any test: timing stays out of pass/fail tests (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/pmoves-molecule:bookworm-systemd"
ANSIBLE_PLAYBOOK = str(ROOT / ".venv" / "bin" / "ansible-playbook")
PEER_REPO = "eirikns/ansible-role-ollama"
PEER_COMMIT = "1e321fd8a0423d40a63a989aab5058cc4a1f828a"  # "Fix two check_mode related issues"
PEER_GIT_DEFAULT = "/work/.mirror/eirikns+ansible-role-ollama/repo"
PEER_URL_DEFAULT = f"https://github.com/{PEER_REPO}.git"
PEER_ROLE_NAME = "eirikns.ollama"
VERSION = "0.30.10"  # the test double's release version (both roles are told to install exactly this)
MODELS = ["all-minilm", "smollm2:135m"]  # two small models of the test double's emulated registry
PHASES = ("first", "rerun", "check")
ROLES = ("ours", "peer")
REMOTE_S = 0.3  # a task that took this long ran a module on the node (podman exec round trips)

OURS_PLAY = """
- name: Bench | pmoves.fleet.ollama
  hosts: bench
  gather_facts: true
  tasks:
    - name: Bench | Apply pmoves.fleet.ollama
      ansible.builtin.include_role:
        name: pmoves.fleet.ollama
      vars:
        pmoves_ollama_version: "{version}"
        pmoves_ollama_release_base_url: "{base}/v{version}"
        # the test double is not the published release the role pins: check it against the served sha256sum.txt,
        # as the peer does
        pmoves_ollama_use_pinned_checksums: false
        pmoves_hardware: {{schema: 1, arch: x86_64, node_class: cpu, accelerator: none, ollama_library: cpu, gpus: []}}
        pmoves_ollama_node_class: cpu
        pmoves_ollama_listen_address: 127.0.0.1
        pmoves_ollama_api_url: http://127.0.0.1:11434
        pmoves_ollama_gpu_uuids: []
        pmoves_ollama_disk_reserve_mb: 0
        pmoves_ollama_models: {models}
"""

PEER_PLAY = """
- name: Bench | {role}
  hosts: bench
  gather_facts: true
  roles:
    - role: {role}
      vars:
        ollama_ver: "{version}"
        ollama_download_base_url: "{base}"
        ollama_host: 127.0.0.1:11434
        ollama_models: {models}
"""


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, check=False, text=True, capture_output=True, **kw)
    if check and p.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


class ReleaseServer:
    """The release directory over HTTP on the podman network's gateway; counts the requests per path."""

    def __init__(self, directory: Path, bind: str) -> None:
        self.hits: Counter[str] = Counter()
        hits = self.hits

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(directory), **k)

            def log_message(self, fmt, *args):  # count the requests, print nothing
                hits[f"{self.command} {self.path}"] += 1

        class Server(http.server.ThreadingHTTPServer):
            def server_bind(self):
                # The podman bridge (and its gateway address) exists only while a container runs: bind it anyway
                # (IP_FREEBIND), the socket answers whenever the bridge is up.
                self.socket.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15), 1)
                super().server_bind()

        self.httpd = Server((bind, 0), Handler)
        self.base = f"http://{bind}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def take(self) -> dict[str, int]:
        out = dict(self.hits)
        self.hits.clear()
        return out

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def podman_gateway() -> str:
    out = sh("podman", "network", "inspect", "podman").stdout
    for net in json.loads(out):
        for subnet in net.get("subnets", []):
            if subnet.get("gateway") and ":" not in subnet["gateway"]:
                return subnet["gateway"]
    sys.exit("no IPv4 gateway on the podman network: pass --bind")


def export_peer(git_dir: str | None, url: str, dest: Path) -> Path:
    """The peer role's tree at PEER_COMMIT under dest/roles/<PEER_ROLE_NAME> (git archive, nothing vendored)."""
    if git_dir is None:
        git_dir = PEER_GIT_DEFAULT if Path(PEER_GIT_DEFAULT).exists() else None
    if git_dir is None:
        git_dir = str(dest / "peer.git")
        sh("git", "clone", "--bare", "--quiet", url, git_dir)
    if sh("git", "--git-dir", git_dir, "cat-file", "-e", f"{PEER_COMMIT}^{{commit}}", check=False).returncode:
        sys.exit(f"{git_dir} does not hold {PEER_REPO} commit {PEER_COMMIT}")
    role = dest / "roles" / PEER_ROLE_NAME
    role.mkdir(parents=True)
    archive = subprocess.run(["git", "--git-dir", git_dir, "archive", "--format=tar", PEER_COMMIT],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(role)], input=archive, check=True)
    return role


def start_container(name: str) -> None:
    sh("podman", "rm", "-f", "-t", "0", name, check=False)
    sh("podman", "run", "-d", "--name", name, "--systemd=always", IMAGE)
    for _attempt in range(60):
        state = sh("podman", "exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.5)
    sys.exit(f"systemd in {name} did not come up")


def run_play(work: Path, playbook: Path, container: str, check: bool) -> dict:
    inventory = work / f"{container}.ini"
    inventory.write_text(f"[bench]\n{container} ansible_connection=containers.podman.podman "
                         "ansible_python_interpreter=/usr/bin/python3\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_ROLES_PATH=f"{work / 'roles'}:{ROOT / 'roles'}",
               ANSIBLE_CACHE_PLUGIN="memory",  # both gather facts on every run, none from a cache
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
               PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", PROFILE_TASKS_SORT_ORDER="descending",
               ANSIBLE_HOST_KEY_CHECKING="False")
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook)] + (["--check"] if check else [])
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True, check=False)
    wall = time.monotonic() - t0
    if p.returncode:
        sys.exit(f"{playbook.name} on {container} failed{' (--check)' if check else ''}:\n"
                 f"{p.stdout[-5000:]}\n{p.stderr[-2000:]}")
    recap = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=\d+\s+skipped=(\d+)", p.stdout)
    if not recap:
        sys.exit(f"no recap in the output of {playbook.name}:\n{p.stdout[-3000:]}")
    ok, changed, skipped = (int(x) for x in recap.groups())
    # profile_tasks' summary: "<task name> ---- 1.23s", slowest first
    summary = p.stdout[p.stdout.rfind("=" * 20):] if "=" * 20 in p.stdout else ""
    tasks = [(m.group(1).strip(), float(m.group(2)))
             for m in re.finditer(r"^(.*?)\s-{2,}\s+([0-9.]+)s\s*$", summary, re.M)]
    return {"wall": wall, "ok": ok, "changed": changed, "skipped": skipped, "tasks": tasks}


def verify(container: str) -> str:
    """Same end state for both roles: the service runs the wanted version and the API lists both models."""
    script = ("import json, urllib.request;"
              "print(' '.join(sorted(m['name'] for m in json.load("
              "urllib.request.urlopen('http://127.0.0.1:11434/api/tags', timeout=10))['models'])))")
    active = sh("podman", "exec", container, "systemctl", "is-active", "ollama", check=False).stdout.strip()
    version = sh("podman", "exec", container, "/usr/local/bin/ollama", "--version", check=False).stdout
    listed = sh("podman", "exec", container, "python3", "-c", script, check=False).stdout.split()
    wanted = sorted(m if ":" in m else f"{m}:latest" for m in MODELS)
    problems = []
    if active != "active":
        problems.append(f"ollama.service is {active or 'unknown'}")
    if f"version is {VERSION}" not in version:
        problems.append(f"`ollama --version` says {version.strip()!r}")
    if listed != wanted:
        problems.append(f"API lists {listed}, wanted {wanted}")
    if problems:
        sys.exit(f"{container} after the first converge: " + "; ".join(problems))
    return f"active, {VERSION}, {' '.join(listed)}"


def fmt_hits(hits: dict[str, int]) -> str:
    if not hits:
        return "-"
    return ", ".join(f"{path.split('/')[-1]} x{n}" for path, n in sorted(hits.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions (fresh containers each); medians are printed")
    ap.add_argument("--peer-git", help=f"git directory holding {PEER_REPO} (default {PEER_GIT_DEFAULT}, else clone)")
    ap.add_argument("--peer-url", default=PEER_URL_DEFAULT, help="clone URL when there is no local git directory")
    ap.add_argument("--bind", help="address the release server binds (default: the podman network's gateway)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the N slowest tasks of each role and phase (last repetition)")
    ap.add_argument("--keep", action="store_true", help="keep the containers and the temporary directory")
    args = ap.parse_args()

    print(f"peer: {PEER_REPO} @ {PEER_COMMIT}")
    print(f"release: Ollama TEST DOUBLE {VERSION} (tar.zst), models {', '.join(MODELS)}, image {IMAGE}")
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    containers: list[str] = []
    server = None
    try:
        export_peer(args.peer_git, args.peer_url, work)
        release = work / "release" / f"v{VERSION}"
        sh(str(ROOT / "tests/doubles/ollama_emulator/build_release.sh"), VERSION, str(release), "tar.zst")
        server = ReleaseServer(work / "release", args.bind or podman_gateway())
        print(f"release server: {server.base}/v{VERSION}/ ({', '.join(sorted(p.name for p in release.iterdir()))})")
        models_yaml = json.dumps(MODELS)
        peer_models_yaml = json.dumps([{"name": m, "state": "present"} for m in MODELS])
        plays = {"ours": work / "ours.yml", "peer": work / "peer.yml"}
        plays["ours"].write_text(OURS_PLAY.format(version=VERSION, base=server.base, models=models_yaml))
        plays["peer"].write_text(PEER_PLAY.format(role=PEER_ROLE_NAME, version=VERSION, base=server.base,
                                                  models=peer_models_yaml))
        print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  (2 cores here; other jobs may run)")
        results: dict[str, dict[str, list[dict]]] = {r: {ph: [] for ph in PHASES} for r in ROLES}
        for rep in range(args.reps):
            order = ROLES if rep % 2 == 0 else ROLES[::-1]
            for role in order:
                name = f"bench-peer-{role}-{os.getpid()}-{rep}"
                containers.append(name)
                start_container(name)
                server.take()
                for phase in PHASES:
                    r = run_play(work, plays[role], name, check=phase == "check")
                    r["hits"] = server.take()
                    results[role][phase].append(r)
                    note = f"  [{verify(name)}]" if phase == "first" else ""
                    print(f"rep {rep} {role:4s} {phase:5s} {r['wall']:7.2f} s  ok={r['ok']:<3d} changed={r['changed']:<3d}"
                          f" skipped={r['skipped']:<3d} release server: {fmt_hits(r['hits'])}{note}", flush=True)
                if not args.keep:
                    sh("podman", "rm", "-f", "-t", "0", name, check=False)
        print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        print(f"\nmedians over {args.reps} repetition(s); ratio = ours / peer (< 1: ours faster)")
        print("ok/changed/skipped: the recap (facts included); remote: tasks of >= 0.3 s, i.e. a module run on the node"
              " (each costs ~1 s over the podman connection; controller-only tasks take < 0.2 s)")
        print(f"{'phase':6s} {'ours s':>8s} {'peer s':>8s} {'ratio':>6s}   {'ours ok/chg/skip remote':24s} "
              "peer ok/chg/skip remote")
        for phase in PHASES:
            med = {r: statistics.median(x["wall"] for x in results[r][phase]) for r in ROLES}
            last = {r: results[r][phase][-1] for r in ROLES}
            counts = {r: f"{last[r]['ok']}/{last[r]['changed']}/{last[r]['skipped']} "
                         f"{sum(1 for _name, t in last[r]['tasks'] if t >= REMOTE_S)}" for r in ROLES}
            print(f"{phase:6s} {med['ours']:8.2f} {med['peer']:8.2f} {med['ours'] / med['peer']:6.2f}   "
                  f"{counts['ours']:24s} {counts['peer']}")
        if args.profile:
            for role in ROLES:
                for phase in PHASES:
                    tasks = results[role][phase][-1]["tasks"]
                    print(f"\n{role} {phase}: {len(tasks)} tasks timed, sum {sum(t for _name, t in tasks):.2f} s; "
                          f"slowest {args.profile}:")
                    for task, secs in tasks[:args.profile]:
                        print(f"  {secs:6.2f} s  {task}")
    finally:
        if server is not None:
            server.close()
        if not args.keep:
            for name in containers:
                sh("podman", "rm", "-f", "-t", "0", name, check=False)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work} and containers {' '.join(containers)}")


if __name__ == "__main__":
    main()
