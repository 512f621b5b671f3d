#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see LICENSE)
"""Compute the LiteLLM proxy config of the fleet gateway from plan.json."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_config
short_description: LiteLLM proxy config (model groups, order, fallbacks, Redis) from plan.json
version_added: "0.1.0"
description:
  - Pure computation, changes nothing; the gateway role writes the returned C(config) as the
    proxy's config.yaml.
  - One model group per planned model; one deployment per replica with C(order) = rank in
    C(placed) (primary first); aliases as C(model_group_alias); cloud models and fallbacks
    from the inventory; master key and Redis password read from the environment.
options:
  plan:
    description: The plan.json document (contract 2).
    type: dict
    required: true
  node_urls:
    description: Host name to the Ollama URL the gateway uses for it (mesh address).
    type: dict
    required: true
  aliases:
    description: Alias to plan model name (seed 003 names), in addition to the catalog's C(alias).
    type: dict
    default: {}
  cloud_models:
    description: Extra model groups served by paid APIs, C({name, model, api_key_env, api_base, mode}).
    type: list
    elements: dict
    default: []
  fallbacks:
    description: Model group (or alias) to the groups to try after all its replicas failed.
    type: dict
    default: {}
  default_fallbacks:
    description: Groups every local chat model falls back to last (cloud models).
    type: list
    elements: str
    default: []
  embedding_models:
    description: Model names to serve as embedding models whatever the plan says.
    type: list
    elements: str
    default: []
  router:
    description: Router knobs (routing_strategy, num_retries, allowed_fails, cooldown_time, timeout,
      retry_after, health_check_interval, health_check_routing).
    type: dict
    default: {}
  redis:
    description: C({host, port, password_env}) of the Redis the router shares state through; omit for none.
    type: dict
  custom_auth:
    description: LiteLLM custom auth function (module.function next to config.yaml); empty for LiteLLM's own.
    type: str
    default: pmoves_gateway_auth.user_api_key_auth
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - pmoves.fleet developers (@pmoves)
"""

EXAMPLES = r"""
- name: Gateway | compute the LiteLLM config
  pmoves.fleet.gateway_config:
    plan: "{{ lookup('ansible.builtin.file', 'artifacts/plan.json') | from_json }}"
    node_urls: {gpu-a: "http://10.77.0.2:11434", gpu-b: "http://10.77.0.3:11434"}
    redis: {host: 127.0.0.1, port: 6379, password_env: REDIS_PASSWORD}
  register: pmoves_gateway_litellm
"""

RETURN = r"""
config:
  description: The LiteLLM proxy config (model_list, router_settings, litellm_settings, general_settings).
  returned: success
  type: dict
served_models:
  description: Every model name clients may use mapped to the group serving it (groups and aliases).
  returned: success
  type: dict
  sample: {"qwen2.5:14b": "qwen2.5:14b", "M-LOC-FRE-qwen2.5-14b": "qwen2.5:14b"}
"""

from dataclasses import fields

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pmoves.fleet.plugins.module_utils.litellm_config import (
    GatewayConfigError,
    GatewayInputs,
    RedisOptions,
    RouterOptions,
    build_litellm_config,
    cloud_models_from_inventory,
    served_names,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict", "required": True},
            "node_urls": {"type": "dict", "required": True},
            "aliases": {"type": "dict", "default": {}},
            "cloud_models": {"type": "list", "elements": "dict", "default": []},
            "fallbacks": {"type": "dict", "default": {}},
            "default_fallbacks": {"type": "list", "elements": "str", "default": []},
            "embedding_models": {"type": "list", "elements": "str", "default": []},
            "router": {"type": "dict", "default": {}},
            "redis": {"type": "dict"},
            "custom_auth": {"type": "str", "default": "pmoves_gateway_auth.user_api_key_auth"},
        },
        supports_check_mode=True,
    )
    p = module.params
    known = {f.name for f in fields(RouterOptions)}
    unknown = sorted(set(p["router"]) - known)
    if unknown:
        module.fail_json(msg=f"router: unknown option(s) {unknown}; known: {sorted(known)}")
    try:
        redis = None
        if p["redis"]:
            redis = RedisOptions(host=str(p["redis"]["host"]), port=int(p["redis"].get("port", 6379)),
                                 password_env=p["redis"].get("password_env") or None)
        inputs = GatewayInputs(
            plan=p["plan"], node_urls=p["node_urls"], aliases=p["aliases"],
            cloud_models=cloud_models_from_inventory(p["cloud_models"]),
            fallbacks={k: list(v) for k, v in p["fallbacks"].items()}, default_fallbacks=p["default_fallbacks"],
            embedding_models=p["embedding_models"], router=RouterOptions(**p["router"]), redis=redis,
            custom_auth=p["custom_auth"] or None)
        config = build_litellm_config(inputs)
    except (GatewayConfigError, KeyError, TypeError, ValueError) as err:
        module.fail_json(msg=f"cannot build the gateway config: {err}")
    module.exit_json(changed=False, config=config, served_models=served_names(config))


if __name__ == "__main__":
    main()
