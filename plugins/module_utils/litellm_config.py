"""LiteLLM proxy configuration from the plan: one model group per planned model.

Pure functions, no I/O: the gateway role calls :func:`build_litellm_config` (through the controller
filter ``pmoves.fleet.litellm_config``) with the fleet view of the plan (``pmoves_fleet_plan``: models
with their placed hosts, aliases and kind), the Ollama URL of every node (the plan's listen decision)
and the inventory's cloud models, and writes the returned dict as the proxy's ``config.yaml``.

What the generated config means (LiteLLM proxy, ``litellm --config``):

* every model in ``plan["models"]`` with at least one placed replica becomes a *model group*
  named like the plan (``qwen2.5:14b``); each replica is one deployment of the group,
  ``ollama_chat/<name>`` (``ollama/<name>`` and ``model_info.mode: embedding`` for embedding
  models) with ``api_base`` = the node's Ollama URL;
* ``litellm_params.order`` is the replica's rank in ``placed`` (1 = primary, 2 = backup 1, ...):
  the router sends traffic to the lowest ``order`` among the usable deployments, and when that
  level fails after its retries it falls back to the next order level, then to the group's
  ``fallbacks`` (LiteLLM "order-based fallbacks"): primary -> backup 1 -> backup 2 -> cloud,
  seed 003's redundancy map;
* aliases (``alias``/``aliases`` in the model catalog, seed 003 names such as ``S-LOC-FRE-nomic-embed-text``)
  are ``router_settings.model_group_alias`` entries, so they are real model names for clients: each
  under its normalised name (``s-loc-fre-nomic-embed-text:latest``, the name the node's Ollama holds)
  and as written in the catalog;
* cloud models (seed 003 ``*-CLD-PAY-*``) are extra groups whose keys come from the environment
  (``os.environ/NAME``) and serve as cross-group ``fallbacks`` where the inventory says so;
* every local chat replica carries ``litellm_params.stream_timeout`` (a streaming request's connect and wait for each
  chunk, the first one included) and, with health checks on, ``model_info.health_check_timeout`` and
  ``health_check_max_tokens``: a replica that vanished without a TCP reset costs a stream at most
  ``stream_timeout`` before the retry on another replica, and is skipped once a health check timed out on it
  (issue 18, docs/reliability.md);
* health checks cost one probe per node and kind, not one per replica: every replica on a node is probed through
  the node's probe of its kind (``model_info.health_check_model``; :func:`health_probes`: the smallest model of that
  kind that stays loaded there, else the node's smallest model of that kind, which the checks then keep loaded
  alone), and ``pmoves_gateway_health.py`` (a callback beside config.yaml) sends identical probes of one round once.
  The node is alive when its probe answers. A health check is a real request: probing a model Ollama loads only on
  demand (plan ``resident: false`` on a node holding more models than it keeps loaded at once) every few seconds
  would swap the node's models in and out of VRAM without end, and probing each of 61 replicas every 2 s kept the
  homelab's Pi 5 gateway busy (a round took longer than the interval). Streams of on-demand replicas get
  ``stream_timeout_on_demand``, which leaves room for the cold load;
* ``router_settings`` carries retries, cooldown and Redis (shared cooldown/usage state between
  gateway workers and gateways, seed 002's Redis coordination); ``general_settings`` reads the
  master key from the environment and turns on background health checks.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# plan.json keys are made by this function; the gateway must name models the same way.
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import (
    normalize_model_name as normalise_model_name,
)

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
REDIS_PASSWORD_ENV = "REDIS_PASSWORD"
# roles/gateway/files/pmoves_gateway_auth.py, installed next to config.yaml: master key or 401.
CUSTOM_AUTH = "pmoves_gateway_auth.user_api_key_auth"
# roles/gateway/files/pmoves_gateway_tcp.py, installed next to config.yaml: TCP deadlines on the sockets to the
# nodes (a node that vanished without a reset ends a request in seconds, not after `timeout`).
TCP_DEADLINES_CALLBACK = "pmoves_gateway_tcp.handler"
# roles/gateway/files/pmoves_gateway_health.py, installed next to config.yaml: identical health probes of one round
# (same node, same probe model) are sent once.
SHARED_PROBES_CALLBACK = "pmoves_gateway_health.handler"
ROUTING_STRATEGIES = ("simple-shuffle", "least-busy", "usage-based-routing", "latency-based-routing")
_EMBED_NAME = re.compile(r"embed|^bge-|^e5-|^gte-|minilm", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class GatewayConfigError(ValueError):
    """The inputs cannot give a working gateway (message says what to fix)."""


@dataclass(frozen=True)
class RouterOptions:
    """Reliability knobs of the LiteLLM router (``router_settings``)."""

    routing_strategy: str = "simple-shuffle"
    num_retries: int = 3  # attempts after the first failure, each picks a deployment again
    allowed_fails: int = 1  # failures per minute before a deployment is cooled down
    cooldown_time: int = 30  # seconds a failing deployment is skipped
    timeout: int = 600  # seconds per request to a node (large models are slow): a non-streaming answer, whole
    retry_after: int = 0  # minimum seconds between retries
    health_check_interval: int = 2  # seconds between background health check rounds (0 turns them off)
    health_check_routing: bool = True  # skip deployments the last health check found down
    # Seconds one health check of a deployment may take before it counts as down (LiteLLM's default is 60: a node
    # that vanished without a TCP reset then stayed "healthy" for a minute and every request waited on it).
    health_check_timeout: int = 2
    # Seconds a streaming request to a local replica may wait to connect and for each chunk, the first one included
    # (0: `timeout` applies), then it is retried on another replica. Bounds the first token of a stream without
    # cutting a long answer that keeps streaming. LiteLLM gives Ollama one number for connect and read, so a
    # non-streaming request (its answer comes whole, at the end) has only `timeout`.
    stream_timeout: int = 4
    # Tokens a health check of a local chat model asks for (LiteLLM's default is 16): the probe stays cheap.
    health_check_max_tokens: int = 1
    # stream_timeout for a model loaded on demand (plan ``resident: false``): its first token may wait for Ollama to
    # read the model from disk into VRAM (tens of seconds for tens of GB), which must not count as a dead replica.
    stream_timeout_on_demand: int = 120


@dataclass(frozen=True)
class RedisOptions:
    """Redis shared by the gateway's workers (cooldowns, usage) -- None means in-memory only."""

    host: str
    port: int = 6379
    password_env: str | None = None  # env var holding the password, None for no password


@dataclass(frozen=True)
class CloudModel:
    """A paid API model group (seed 003 ``XL-CLD-PAY-...``); its key stays in the environment."""

    name: str
    model: str  # LiteLLM model string, "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"
    api_key_env: str | None = None
    api_base: str | None = None
    mode: str = "chat"


@dataclass
class GatewayInputs:
    plan: Mapping[str, Any]
    node_urls: Mapping[str, str]  # host -> "http://10.77.0.2:11434"
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> plan model name
    cloud_models: Sequence[CloudModel] = ()
    fallbacks: Mapping[str, Sequence[str]] = field(default_factory=dict)  # group -> [groups]
    default_fallbacks: Sequence[str] = ()  # appended to every local chat group's fallbacks
    embedding_models: Sequence[str] = ()  # force "embedding" mode for these names
    router: RouterOptions = field(default_factory=RouterOptions)
    redis: RedisOptions | None = None
    custom_auth: str | None = CUSTOM_AUTH  # None: LiteLLM's own key check (400 for a wrong key without a DB)
    callbacks: Sequence[str] = (TCP_DEADLINES_CALLBACK, SHARED_PROBES_CALLBACK)  # litellm_settings.callbacks (modules beside config.yaml)


def is_embedding_model(name: str, entry: Mapping[str, Any], forced: Sequence[str] = ()) -> bool:
    """The plan's ``kind`` decides; without one, the name (``*embed*``, ``bge-m3``) does."""
    if name in forced or normalise_model_name(name) in {normalise_model_name(f) for f in forced}:
        return True
    kind = entry.get("kind")
    if kind and kind != "unknown":
        return kind == "embedding"
    return bool(_EMBED_NAME.search(name.split(":", 1)[0]))


def _check_url(host: str, url: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise GatewayConfigError(f"node {host}: Ollama URL {url!r} is not an http(s) URL; "
                                 "set it in pmoves_gateway_node_urls or the host's mesh address")
    return url.rstrip("/")


def model_deployments(name: str, hosts: Sequence[str], node_urls: Mapping[str, str],
                      embedding: bool, health_check_timeout: int | None = None,
                      stream_timeout: int = 0, health_check_max_tokens: int = 0,
                      on_demand: Collection[str] = (), stream_timeout_on_demand: int = 0,
                      probes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One deployment per replica, ``order`` = rank in ``placed`` (1 is the primary).

    ``stream_timeout`` (> 0) bounds a streaming request's connect and each wait for a chunk on the replica;
    ``health_check_max_tokens`` (> 0, chat models, with health checks on) caps what a health check generates.
    ``on_demand``: the hosts where Ollama loads this model only when asked; those replicas' streams get
    ``stream_timeout_on_demand``. ``probes``: host -> the model a health check of a replica there asks
    (:func:`health_probes`, the node's probe of this kind); a replica whose host has none, or which is the probe
    itself, is probed itself.
    """
    probes = probes or {}
    deployments = []
    for rank, host in enumerate(hosts, start=1):
        if host not in node_urls:
            raise GatewayConfigError(f"model {name} is placed on {host}, but no Ollama URL is known for {host}; "
                                     "add it to pmoves_gateway_node_urls (or give the host a mesh address)")
        prefix = "ollama" if embedding else "ollama_chat"
        deployments.append({
            "model_name": name,
            "litellm_params": {"model": f"{prefix}/{name}", "api_base": _check_url(host, node_urls[host]),
                               "order": rank},
            "model_info": {"id": f"{name}@{host}", "mode": "embedding" if embedding else "chat",
                           "pmoves_node": host, "pmoves_rank": rank},
        })
        bound = stream_timeout_on_demand if host in on_demand else stream_timeout
        if int(bound or 0) > 0 and not embedding:
            deployments[-1]["litellm_params"]["stream_timeout"] = int(bound)
        if health_check_timeout:
            info = deployments[-1]["model_info"]
            if probes.get(host, name) != name:
                info["health_check_model"] = f"{prefix}/{probes[host]}"
            info["health_check_timeout"] = int(health_check_timeout)
            if int(health_check_max_tokens or 0) > 0 and not embedding:
                info["health_check_max_tokens"] = int(health_check_max_tokens)
    return deployments


def loaded_on(entry: Mapping[str, Any]) -> list[str]:
    """The hosts where the model stays loaded: ``loaded_on`` of the fleet view (resident there, or the node keeps all
    its models loaded at once), else every placed host of a resident model. A plan without ``resident`` (written
    before models were loaded on demand) had every model loaded."""
    if "loaded_on" in entry:
        return list(entry.get("loaded_on") or [])
    return list(entry.get("placed") or []) if entry.get("resident", True) else []


def health_probes(plan_models: Mapping[str, Any], embedding_of: Mapping[str, bool]) -> dict[tuple[str, bool], str]:
    """(host, embedding) -> the node's probe of that kind, the model every health check of a replica of that kind on
    the host asks: the smallest always-loaded model of that kind there; on a node with none, its smallest model of
    that kind (the checks keep that one loaded, the others load only when asked). Smallest by ``vram_by_host``, then
    by name, so the choice is stable."""
    found: dict[tuple[str, bool], tuple[int, int, str]] = {}
    for name, entry in plan_models.items():
        entry = entry or {}
        always = set(loaded_on(entry))
        for host in entry.get("placed") or []:
            key = (host, embedding_of[name])
            rank = (0 if host in always else 1,
                    int((entry.get("vram_by_host") or {}).get(host) or entry.get("vram_mb") or 0), name)
            if key not in found or rank < found[key]:
                found[key] = rank
    return {key: rank[2] for key, rank in found.items()}


def cloud_deployment(cloud: CloudModel) -> dict[str, Any]:
    params: dict[str, Any] = {"model": cloud.model}
    if cloud.api_key_env:
        if not _ENV_NAME.match(cloud.api_key_env):
            raise GatewayConfigError(f"cloud model {cloud.name}: api_key_env {cloud.api_key_env!r} "
                                     "must be an environment variable name (A-Z, 0-9, _)")
        params["api_key"] = f"os.environ/{cloud.api_key_env}"
    if cloud.api_base:
        params["api_base"] = cloud.api_base
    return {"model_name": cloud.name, "litellm_params": params,
            "model_info": {"id": f"{cloud.name}@cloud", "mode": cloud.mode, "pmoves_node": "cloud"}}


def collect_aliases(plan_models: Mapping[str, Any], extra: Mapping[str, str], groups: set[str]) -> dict[str, str]:
    """alias -> group: every alias of the plan (``aliases``, normalised like the names Ollama holds, and the
    catalog's ``alias`` as written, for clients using seed 003 names) plus ``extra``; collisions are errors."""
    aliases: dict[str, str] = {}
    wanted: list[tuple[str, str]] = []
    for name, entry in sorted(plan_models.items()):
        names = list(entry.get("aliases") or []) + ([entry["alias"]] if entry.get("alias") else [])
        wanted += [(alias, name) for alias in dict.fromkeys(names)]
    wanted += sorted(extra.items())
    for alias, target in wanted:
        target_name = target if target in groups else normalise_model_name(target)
        if target_name not in groups:
            continue  # the model is not served (unplaced or not planned): no alias to a missing group
        if alias in groups:
            raise GatewayConfigError(f"alias {alias!r} is also a model name; pick another alias")
        if aliases.get(alias, target_name) != target_name:
            raise GatewayConfigError(f"alias {alias!r} points at both {aliases[alias]} and {target_name}")
        aliases[alias] = target_name
    return aliases


def build_litellm_config(inputs: GatewayInputs) -> dict[str, Any]:
    """The LiteLLM proxy config (a dict ready for ``to_nice_yaml``) plus nothing else.

    Deterministic: same inputs, same dict (models sorted by name, replicas in plan order).
    """
    options = inputs.router
    if options.routing_strategy not in ROUTING_STRATEGIES:
        raise GatewayConfigError(f"routing_strategy {options.routing_strategy!r} is not one of {ROUTING_STRATEGIES}")
    plan_models: Mapping[str, Any] = inputs.plan.get("models") or {}
    model_list: list[dict[str, Any]] = []
    local_chat: list[str] = []
    groups: set[str] = set()
    embedding_of = {name: is_embedding_model(name, plan_models[name] or {}, inputs.embedding_models)
                    for name in plan_models}
    probes = health_probes(plan_models, embedding_of)
    for name in sorted(plan_models):
        entry = plan_models[name] or {}
        hosts = list(entry.get("placed") or [])
        if not hosts:
            continue
        embedding = embedding_of[name]
        loaded = set(loaded_on(entry))
        model_list += model_deployments(
            name, hosts, inputs.node_urls, embedding,
            options.health_check_timeout if options.health_check_interval > 0 else None,
            stream_timeout=options.stream_timeout, health_check_max_tokens=options.health_check_max_tokens,
            on_demand=[host for host in hosts if host not in loaded],
            stream_timeout_on_demand=options.stream_timeout_on_demand,
            probes={host: probes[(host, embedding)] for host in hosts})
        groups.add(name)
        if not embedding:
            local_chat.append(name)
    for cloud in sorted(inputs.cloud_models, key=lambda c: c.name):
        if cloud.name in groups:
            raise GatewayConfigError(f"cloud model {cloud.name} has the name of a local model group")
        model_list.append(cloud_deployment(cloud))
        groups.add(cloud.name)
    if not model_list:
        raise GatewayConfigError("plan.json places no model on any node: the gateway would serve nothing; "
                                 "run playbooks/plan.yml first")

    aliases = collect_aliases(plan_models, inputs.aliases, groups)
    fallbacks = build_fallbacks(local_chat, inputs.fallbacks, inputs.default_fallbacks, groups, aliases)

    router_settings: dict[str, Any] = {
        "routing_strategy": options.routing_strategy,
        "num_retries": options.num_retries,
        "allowed_fails": options.allowed_fails,
        "cooldown_time": options.cooldown_time,
        "timeout": options.timeout,
        "retry_after": options.retry_after,
    }
    if options.health_check_interval > 0 and options.health_check_routing:
        # A policy (any) makes cooldown the router's only exclusion and turns on LiteLLM's safety net: when every
        # replica of a model is cooling down, the request is still tried on them instead of a 429 "No deployments
        # available". A health check that timed out on a node that is only busy (Ollama queueing the check behind a
        # generation, a loaded host: the 23-node homelab lab lost 10 of 27 models' aliases to 429s that way) then costs
        # nothing where the node has no other replica, and a vanished one still fails fast on the TCP deadlines.
        # No timeout is allowed: the first health check that times out cools the replica down at once (what the
        # health filter did before the policy switched it off), so a blackholed replica is skipped from the next
        # round on; other errors keep allowed_fails.
        router_settings["allowed_fails_policy"] = {"TimeoutErrorAllowedFails": 0}
    if aliases:
        router_settings["model_group_alias"] = dict(sorted(aliases.items()))
    if inputs.redis is not None:
        router_settings["redis_host"] = inputs.redis.host
        router_settings["redis_port"] = int(inputs.redis.port)
        if inputs.redis.password_env:
            router_settings["redis_password"] = f"os.environ/{inputs.redis.password_env}"

    litellm_settings: dict[str, Any] = {"drop_params": True, "num_retries": options.num_retries,
                                        "request_timeout": options.timeout}
    if fallbacks:
        litellm_settings["fallbacks"] = fallbacks
    if inputs.callbacks:
        litellm_settings["callbacks"] = list(inputs.callbacks)

    general_settings: dict[str, Any] = {"master_key": f"os.environ/{MASTER_KEY_ENV}"}
    if inputs.custom_auth:
        general_settings["custom_auth"] = inputs.custom_auth
    if options.health_check_interval > 0:
        general_settings["background_health_checks"] = True
        general_settings["health_check_interval"] = options.health_check_interval
        # Without this a stopped node (connection refused) is never cooled down by LiteLLM:
        # connection errors are exempt from cooldown, so only the health check can skip it.
        general_settings["enable_health_check_routing"] = options.health_check_routing
    else:
        general_settings["background_health_checks"] = False

    return {"model_list": model_list, "router_settings": router_settings,
            "litellm_settings": litellm_settings, "general_settings": general_settings}


def build_fallbacks(local_chat: Sequence[str], explicit: Mapping[str, Sequence[str]], default: Sequence[str],
                    groups: set[str], aliases: Mapping[str, str]) -> list[dict[str, list[str]]]:
    """``[{group: [fallback groups...]}]``: the inventory's list per group, then the default list.

    Fallback targets that are not served (unknown group) are errors: a silent no-op fallback is
    exactly what a user would only discover during an outage.
    """
    def resolve(name: str, what: str) -> str:
        if name in groups:
            return name
        if name in aliases:
            return aliases[name]
        if normalise_model_name(name) in groups:
            return normalise_model_name(name)
        raise GatewayConfigError(f"{what} {name!r} is not a served model group (known: {', '.join(sorted(groups))})")

    table: dict[str, list[str]] = {}
    for source, targets in sorted(explicit.items()):
        try:
            group = resolve(source, "fallback source")
        except GatewayConfigError:
            continue  # a model that is not placed (unplaced, not in this plan) needs no fallback entry
        table.setdefault(group, [])
        for target in targets:
            resolved = resolve(target, f"fallback target of {source}:")
            if resolved != group and resolved not in table[group]:
                table[group].append(resolved)
    for group in local_chat:
        for target in default:
            resolved = resolve(target, "default fallback")
            if resolved != group and resolved not in table.setdefault(group, []):
                table[group].append(resolved)
    return [{group: targets} for group, targets in sorted(table.items()) if targets]


def cloud_models_from_inventory(items: Sequence[Mapping[str, Any]]) -> list[CloudModel]:
    """``pmoves_gateway_cloud_models`` entries -> CloudModel (``name`` and ``model`` required)."""
    models = []
    for index, item in enumerate(items):
        if not item.get("name") or not item.get("model"):
            raise GatewayConfigError(f"cloud model #{index}: needs 'name' (the group clients ask for) and "
                                     "'model' (the LiteLLM model string, e.g. openai/gpt-4o-mini)")
        models.append(CloudModel(name=str(item["name"]), model=str(item["model"]),
                                 api_key_env=item.get("api_key_env"), api_base=item.get("api_base"),
                                 mode=str(item.get("mode", "chat"))))
    return models


def served_names(config: Mapping[str, Any]) -> dict[str, str]:
    """Every name a client may send -> the group that serves it (groups and aliases)."""
    names = {d["model_name"]: d["model_name"] for d in config.get("model_list", [])}
    names.update((config.get("router_settings") or {}).get("model_group_alias") or {})
    return dict(sorted(names.items()))
