"""One health probe per node and kind for the LiteLLM proxy's health checks (pmoves.fleet, issue 17).

Installed next to the proxy's config.yaml and named in ``litellm_settings.callbacks``
(``pmoves_gateway_health.handler``): LiteLLM imports it while it loads the config, and the import
does the work.

Why: LiteLLM's background health check sends one real request per deployment every
``health_check_interval`` seconds. The gateway config (plugins/module_utils/litellm_config.py) points
every replica on a node at the node's probe of its kind (``model_info.health_check_model``), so the
probes of one round for the replicas on one node are the same request to the same Ollama. LiteLLM
still sends each of them: the 23-host homelab's gateway, on a Pi 5, sent 61 probes every 2 s and a
round took 2.5 s. This wraps the function LiteLLM runs per deployment
(``litellm.proxy.health_check._run_model_health_check``, present in the pinned LiteLLM) so that
deployments whose probe is the same (node URL, probe model, mode, token cap, timeout) share one
request started within the last ``PMOVES_GATEWAY_PROBE_SHARE_SECONDS`` (default 1 s, less than the
interval): each gets its own copy of the one answer, so a node that stops answering is marked down
for every replica on it in the same round. Deployments without an ``api_base`` (cloud models) are
checked as before. When the hook is absent the module logs a warning and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from litellm.integrations.custom_logger import CustomLogger

LOG = logging.getLogger("pmoves_gateway_health")
SHARE_ENV = "PMOVES_GATEWAY_PROBE_SHARE_SECONDS"
PROBE_HOOK = "_run_model_health_check"


def probe_key(deployment):
    """What makes two health checks the same request, or None when the deployment is checked on its own."""
    params = deployment.get("litellm_params") or {}
    info = deployment.get("model_info") or {}
    api_base = params.get("api_base")
    model = info.get("health_check_model") or params.get("model")
    if not api_base or not model:
        return None
    return (str(api_base).rstrip("/"), str(model), str(info.get("mode") or "chat"),
            info.get("health_check_max_tokens"), info.get("health_check_timeout"))


def _copy(result):
    return dict(result) if isinstance(result, dict) else result


def share_probes(run_check, window: float = 1.0, clock=time.monotonic):
    """A coroutine function like `run_check` that runs one check per probe key started within `window` seconds.

    Every caller of one key gets a copy of the shared result (or the shared exception). The shared request is
    shielded: a caller that is cancelled does not cancel it for the others.
    """
    started: dict = {}

    async def run(deployment):
        key = probe_key(deployment)
        if key is None:
            return await run_check(deployment)
        now = clock()
        for old in [k for k, (at, task) in started.items() if now - at >= window and task.done()]:
            del started[old]
        entry = started.get(key)
        if entry is None:
            entry = (now, asyncio.ensure_future(run_check(deployment)))
            started[key] = entry
        return _copy(await asyncio.shield(entry[1]))

    run.pmoves_shared = True
    return run


def _window() -> float:
    raw = os.environ.get(SHARE_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else 1.0
    except ValueError:
        LOG.warning("%s=%r is not a number: using 1", SHARE_ENV, raw)
        return 1.0


def install() -> bool:
    """Wrap LiteLLM's per-deployment health check once; False (and a warning) when there is nothing to wrap."""
    try:
        from litellm.proxy import health_check
    except ImportError as err:  # pragma: no cover - the pinned LiteLLM has it
        LOG.warning("pmoves shared health probes not installed: %s", err)
        return False
    check = getattr(health_check, PROBE_HOOK, None)
    if check is None or not asyncio.iscoroutinefunction(check):
        LOG.warning("pmoves shared health probes not installed: this LiteLLM has no %s", PROBE_HOOK)
        return False
    if getattr(check, "pmoves_shared", False):
        return True
    window = _window()
    if window <= 0:
        return False
    setattr(health_check, PROBE_HOOK, share_probes(check, window))
    LOG.info("pmoves shared health probes: one request per node, probe model and mode every %.1f s", window)
    return True


INSTALLED = install()
# LiteLLM's callbacks setting wants an instance; this one only carries the import above.
handler = CustomLogger()
