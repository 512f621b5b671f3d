"""TCP deadlines for the LiteLLM proxy's connections to the fleet's nodes (pmoves.fleet, issue 18).

Installed next to the proxy's config.yaml and named in ``litellm_settings.callbacks``
(``pmoves_gateway_tcp.handler``): LiteLLM imports it while it loads the config, before it opens
any connection, and the import does the work.

Why: a node that vanishes without a TCP reset (power loss, a cut cable, a partition, a WireGuard
peer gone) leaves the proxy's connection to it open and silent. A non-streaming request already
sent on it waits for the whole ``timeout`` (600 s by default), and LiteLLM then reconnects once to
the same node with a connect timeout of that same length. LiteLLM sets keepalive options on its
aiohttp sockets (``AIOHTTP_SO_KEEPALIVE``, ``AIOHTTP_TCP_KEEPIDLE/KEEPINTVL/KEEPCNT``, set by the
role in litellm.env) but has no setting for the two deadlines that end both waits:

* ``TCP_USER_TIMEOUT``: data sent to the node and not acknowledged within this many ms closes the
  connection (a request written on a pooled connection to a node that is gone); with keepalive on, the
  silent connection ends that long after the node's last packet, and on Linux 6.x a connect gives up
  after it too;
* ``TCP_SYNCNT``: SYN retransmissions before connect() gives up (1: about 3 s instead of 127 s).

A healthy node acknowledges within milliseconds and answers keepalive probes while it computes a
long answer, so neither deadline ends a slow answer: only a silent peer. The values come from the
environment (``PMOVES_GATEWAY_TCP_USER_TIMEOUT_MS``, ``PMOVES_GATEWAY_TCP_SYN_RETRIES``; 0 leaves the
kernel's default). This wraps LiteLLM's own socket factory (``http_handler.
_build_aiohttp_keepalive_socket_factory``, present in the pinned LiteLLM); when that hook is absent
the module logs a warning and changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket

from litellm.integrations.custom_logger import CustomLogger

LOG = logging.getLogger("pmoves_gateway_tcp")
USER_TIMEOUT_ENV = "PMOVES_GATEWAY_TCP_USER_TIMEOUT_MS"
SYN_RETRIES_ENV = "PMOVES_GATEWAY_TCP_SYN_RETRIES"
FACTORY_HOOK = "_build_aiohttp_keepalive_socket_factory"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        LOG.warning("%s=%r is not an integer: using %d", name, raw, default)
        return default
    return max(0, value)


def deadline_options(user_timeout_ms: int, syn_retries: int) -> list[tuple[int, int, int]]:
    """The (level, option, value) triples to set on a new socket (options this platform lacks are left out)."""
    options = []
    if user_timeout_ms > 0 and hasattr(socket, "TCP_USER_TIMEOUT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout_ms))
    if syn_retries > 0 and hasattr(socket, "TCP_SYNCNT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_SYNCNT, min(syn_retries, 127)))
    return options


def wrap_factory(build_factory, options):
    """A builder like LiteLLM's whose factory also sets `options` on each TCP socket it makes."""

    def build():
        inner = build_factory()

        def factory(addr_info):
            if inner is not None:
                sock = inner(addr_info)
            else:
                sock = socket.socket(family=addr_info[0], type=addr_info[1], proto=addr_info[2])
                sock.setblocking(False)
            if sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6):
                for level, option, value in options:
                    sock.setsockopt(level, option, value)
            return sock

        return factory

    build.pmoves_wrapped = True
    return build


def install() -> bool:
    """Wrap LiteLLM's socket factory builder once; False (and a warning) when there is nothing to wrap."""
    options = deadline_options(_env_int(USER_TIMEOUT_ENV, 2000), _env_int(SYN_RETRIES_ENV, 1))
    try:
        from litellm.llms.custom_httpx import http_handler
    except ImportError as err:  # pragma: no cover - the pinned LiteLLM has it
        LOG.warning("pmoves TCP deadlines not installed: %s", err)
        return False
    builder = getattr(http_handler, FACTORY_HOOK, None)
    if builder is None or not getattr(http_handler, "_AIOHTTP_SUPPORTS_SOCKET_FACTORY", False):
        LOG.warning("pmoves TCP deadlines not installed: this LiteLLM/aiohttp has no socket factory hook")
        return False
    if not options or getattr(builder, "pmoves_wrapped", False):
        return bool(options)
    setattr(http_handler, FACTORY_HOOK, wrap_factory(builder, options))
    LOG.info("pmoves TCP deadlines on backend sockets: %s", options)
    return True


INSTALLED = install()
# LiteLLM's callbacks setting wants an instance; this one only carries the import above.
handler = CustomLogger()
