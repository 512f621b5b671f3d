"""Benchmark: how long requests take while one of two replicas has vanished (issue 18), old vs new router knobs.

The real LiteLLM proxy (the pinned lock, the venv tests/integration builds under .cache/venvs) serves one model
from two Ollama test doubles, node-a (the primary) and node-b. Once both serve, node-a vanishes without a TCP reset
and N requests are sent one after the other, starting at once (the worst case: the gateway has not noticed yet):

* ``--mode stop``: SIGSTOP of node-a's process (the kernel still accepts and acks; nothing answers);
* ``--mode drop``: node-a in its own network namespace, every packet into it dropped (power loss); needs root.

Each request's latency, status and serving node is printed for the old knobs (the role's defaults before issue 18:
health checks every 10 s with a 5 s timeout, no stream bound, no TCP deadlines on the sockets to the nodes) and the new ones (roles/gateway/defaults), streaming
and non-streaming, then the ratio new / old of the slowest request, measured in one run. ``--long`` adds one
check that a generation slower than the new stream bound (the test double's token delay) still completes.

Usage: .venv/bin/python benchmarks/bench_gateway_vanish.py [--mode stop|drop] [-n 5] [--client-timeout 60]
       [--knobs '{"timeout": 20}'] (overrides for the new knobs, to try others)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "collections"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from ansible_collections.pmoves.fleet.plugins.module_utils.litellm_config import RouterOptions  # noqa: E402
from test_gateway_failover import VanishingPair, netns_missing, role_router_options, timed_chat  # noqa: E402

# roles/gateway/defaults/main.yml before issue 18 (health checks every 10 s, 5 s each, nothing bounds a stream).
OLD = RouterOptions(routing_strategy="simple-shuffle", num_retries=2, allowed_fails=1, cooldown_time=30, timeout=600,
                    health_check_interval=10, health_check_routing=True, health_check_timeout=5, stream_timeout=0,
                    health_check_max_tokens=0)
# litellm.env before the TCP deadlines (pmoves_gateway_backend_tcp): no keepalive, no TCP_USER_TIMEOUT, no TCP_SYNCNT.
OLD_ENV = {"AIOHTTP_SO_KEEPALIVE": "False", "PMOVES_GATEWAY_TCP_USER_TIMEOUT_MS": "0",
           "PMOVES_GATEWAY_TCP_SYN_RETRIES": "0"}


def run(label: str, router: RouterOptions, mode: str, count: int, client_timeout: float, workdir: Path,
        env: dict[str, str] | None = None) -> dict:
    rows: dict[str, list[dict]] = {}
    for stream in (False, True):
        kind = "stream" if stream else "non-stream"
        with VanishingPair(workdir / f"{label}-{kind}", router, mode=mode, extra_env=env) as pair:
            pair.wait_primary()
            pair.vanish()
            vanished_at = time.monotonic()
            rows[kind] = []
            for _request in range(count):
                sent = round(time.monotonic() - vanished_at, 2)
                result = timed_chat(pair.url, stream=stream, timeout=client_timeout)
                result["sent_after_vanish_s"] = sent
                rows[kind].append(result)
                status = "timeout" if result["status"] == 0 and "timed out" in str(result["error"]) else result["status"]
                print(f"  {label:4} {mode:4} {kind:10} sent +{sent:6.2f} s: {result['seconds']:7.2f} s "
                      f"status {status} node {result['node']}"
                      + (f" first chunk {result['first_chunk_s']} s" if stream else "")
                      + (f" ({result['error'][:120]})" if result["error"] else ""), flush=True)
    return rows


def spray(label: str, router: RouterOptions, mode: str, seconds: float, every: float, client_timeout: float,
          workdir: Path, env: dict[str, str] | None = None) -> list[dict]:
    """Non-streaming requests every `every` s for `seconds` after the vanish, concurrently: which ones hang?"""
    import threading

    results: list[dict] = []
    with VanishingPair(workdir / f"{label}-spray", router, mode=mode, extra_env=env) as pair:
        pair.wait_primary()
        pair.vanish()
        vanished_at = time.monotonic()
        threads = []

        def one(sent: float) -> None:
            result = timed_chat(pair.url, timeout=client_timeout)
            result["sent_after_vanish_s"] = sent
            results.append(result)

        while time.monotonic() - vanished_at < seconds:
            thread = threading.Thread(target=one, args=(round(time.monotonic() - vanished_at, 2),))
            thread.start()
            threads.append(thread)
            time.sleep(every)
        for thread in threads:
            thread.join()
    slow = sorted(r["sent_after_vanish_s"] for r in results if r["status"] != 200 or r["seconds"] > 5)
    print(f"  {label:4} {mode:4} non-stream every {every} s for {seconds:.0f} s: {len(results)} requests, "
          f"{len(results) - len(slow)} answered within 5 s, {len(slow)} not"
          + (f" (sent at +{slow[0]:.2f} .. +{slow[-1]:.2f} s after the vanish)" if slow else ""), flush=True)
    return results


def inflight(label: str, router: RouterOptions, mode: str, client_timeout: float, workdir: Path,
             env: dict[str, str] | None = None, delay: float = 1.0, after: float = 2.0) -> dict:
    """A non-streaming answer under way on node-a (``delay`` s per token) when node-a vanishes ``after`` s in."""
    import threading

    with VanishingPair(workdir / f"{label}-inflight", router, mode=mode, extra_env=env) as pair:
        pair.wait_primary()
        set_token_delay(pair.nodes["node-a"].url, delay)  # node-b answers at once: the retry's cost is its own
        holder: dict = {}
        thread = threading.Thread(target=lambda: holder.update(timed_chat(pair.url, timeout=client_timeout)))
        started = time.monotonic()
        thread.start()
        time.sleep(after)
        pair.vanish()
        thread.join()
        result = holder
        result["after_vanish_s"] = round(time.monotonic() - started - after, 2)
    print(f"  {label:4} {mode:4} non-stream in flight when node-a vanished {after} s in: {result['seconds']} s status "
          f"{result['status']} node {result['node']}" + (f" ({result['error'][:120]})" if result["error"] else ""),
          flush=True)
    return result


def set_token_delay(node_url: str, delay: float) -> None:
    import urllib.request

    request = urllib.request.Request(f"{node_url}/_test_double/token_delay", data=json.dumps({"seconds": delay}).encode(),
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def long_generation(router: RouterOptions, mode: str, workdir: Path, delay: float) -> None:
    """A generation slower than the stream bound (no replica vanished) must still complete, both ways."""
    with VanishingPair(workdir / "long", router, mode=mode, token_delay=delay) as pair:
        wait = max(60.0, 30 * delay)
        for stream in (False, True):
            result = timed_chat(pair.url, stream=stream, timeout=wait * 2)
            kind = "stream" if stream else "non-stream"
            print(f"  long generation ({delay} s per token) {kind}: {result['seconds']} s status {result['status']} "
                  f"node {result['node']}" + (f" first chunk {result['first_chunk_s']} s" if stream else "")
                  + (f" ({result['error'][:160]})" if result["error"] else ""), flush=True)


def worst(rows: list[dict], client_timeout: float) -> float:
    return max(r["seconds"] if r["status"] == 200 else client_timeout for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--mode", choices=("stop", "drop"), default="stop")
    parser.add_argument("-n", type=int, default=5, help="requests after the vanish (default 5; 0: none)")
    parser.add_argument("--client-timeout", type=float, default=60.0, help="seconds a client waits (default 60)")
    parser.add_argument("--knobs", default="{}", help="JSON overrides of the new router knobs")
    parser.add_argument("--env", default="{}", help="JSON environment added to the new knobs' proxy")
    parser.add_argument("--only", choices=("old", "new"), help="measure one set of knobs only")
    parser.add_argument("--spray", type=float, default=0.0, metavar="SECONDS",
                        help="also send a non-streaming request every 0.5 s for SECONDS after the vanish (both knob sets)")
    parser.add_argument("--inflight", action="store_true",
                        help="also vanish node-a while a non-streaming answer is under way on it (both knob sets)")
    parser.add_argument("--long", type=float, default=0.0, metavar="DELAY",
                        help="also check a generation with DELAY s per token under the new knobs")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # kill PID: the with-blocks still stop what they started
    if args.mode == "drop" and netns_missing():
        parser.error(f"--mode drop: {netns_missing()}")
    new = dataclasses.replace(role_router_options(), **json.loads(args.knobs))
    variants = {"old": OLD, "new": new}
    if args.only:
        variants = {args.only: variants[args.only]}
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-vanish-") as tmp:
        for label, router in variants.items():
            print(f"{label}: {json.dumps(dataclasses.asdict(router))}", flush=True)
            if args.n <= 0:
                continue
            results[label] = run(label, router, args.mode, args.n, args.client_timeout, Path(tmp),
                                 json.loads(args.env) if label == "new" else OLD_ENV)
        if args.spray:
            for label, router in variants.items():
                spray(label, router, args.mode, args.spray, 0.5, args.client_timeout, Path(tmp),
                      json.loads(args.env) if label == "new" else OLD_ENV)
        if args.inflight:
            in_flight = {label: inflight(label, router, args.mode, args.client_timeout, Path(tmp),
                                         json.loads(args.env) if label == "new" else OLD_ENV)
                         for label, router in variants.items()}
            if len(in_flight) == 2:
                waits = {label: r["after_vanish_s"] if r["status"] == 200 else args.client_timeout
                         for label, r in in_flight.items()}
                print(f"  in flight: answered {waits['new']:.2f} s after the vanish (new) vs {waits['old']:.2f} s (old; "
                      f"the client gives up at {args.client_timeout:.0f} s): ratio new/old {waits['new'] / waits['old']:.3f}",
                      flush=True)
        if args.long:
            long_generation(new, args.mode, Path(tmp), args.long)
    if not results:
        return 0
    print(f"\nsummary ({args.mode}, {args.n} requests right after node-a vanished, client gives up after "
          f"{args.client_timeout:.0f} s; a request it gave up on counts as {args.client_timeout:.0f} s):")
    for kind in ("non-stream", "stream"):
        line = []
        for label, rows in results.items():
            answered = sum(1 for r in rows[kind] if r["status"] == 200 and r["node"] == "node-b")
            seconds = [r["seconds"] for r in rows[kind]]
            line.append(f"{label}: {answered}/{len(seconds)} answered by node-b, worst {worst(rows[kind], args.client_timeout):.2f} s, "
                        f"median {statistics.median(seconds):.2f} s")
        if len(results) == 2:
            ratio = worst(results["new"][kind], args.client_timeout) / worst(results["old"][kind], args.client_timeout)
            line.append(f"ratio new/old (worst) {ratio:.3f}")
        print(f"  {kind:10} " + "; ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
