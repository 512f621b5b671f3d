"""LiteLLM proxy custom auth for pmoves.fleet: the master key, nothing else, 401 otherwise.

Installed next to the proxy's config.yaml and named in ``general_settings.custom_auth``.
Why: without a database LiteLLM answers a wrong key with ``400 No connected db`` (it looks
virtual keys up in Postgres); the fleet gateway has no database, and clients (and the lab
contract) expect ``401`` for a missing or wrong key. The key is compared in constant time
with ``LITELLM_MASTER_KEY`` from the service's environment (written from the vault).
"""

from __future__ import annotations

import hmac
import os

from litellm.proxy._types import LitellmUserRoles, ProxyErrorTypes, ProxyException, UserAPIKeyAuth

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"


def _presented_key(api_key: str | None) -> str:
    key = (api_key or "").strip()
    if key.lower().startswith("bearer "):
        key = key[7:].strip()
    return key


async def user_api_key_auth(request, api_key: str) -> UserAPIKeyAuth:
    expected = os.environ.get(MASTER_KEY_ENV, "")
    presented = _presented_key(api_key)
    if expected and presented and hmac.compare_digest(presented.encode(), expected.encode()):
        return UserAPIKeyAuth(api_key=presented, user_role=LitellmUserRoles.PROXY_ADMIN, user_id="pmoves-gateway")
    raise ProxyException(message="Authentication Error: missing or invalid API key", type=ProxyErrorTypes.auth_error,
                         param="api_key", code=401)
