"""LiteLLM gateway config from plan.json: what clients and the router rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.filter.fleet import litellm_config
from ansible_collections.pmoves.fleet.plugins.module_utils.litellm_config import (
    CloudModel,
    GatewayConfigError,
    GatewayInputs,
    RedisOptions,
    RouterOptions,
    build_litellm_config,
    cloud_models_from_inventory,
    is_embedding_model,
    served_names,
)

PLAN = {
    "schema": 1,
    "strategy": "balanced",
    "nodes": {},
    "models": {
        "qwen2.5:14b": {"wanted": 3, "placed": ["gpu-b", "gpu-a", "apu-c"], "kind": "chat",
                        "alias": "M-LOC-FRE-qwen2.5-14b"},
        "nomic-embed-text:latest": {"wanted": 2, "placed": ["cpu-d", "gpu-a"], "kind": "embedding"},
        "llama3.1:405b": {"wanted": 1, "placed": [], "kind": "chat"},
    },
    "unplaced": [{"model": "llama3.1:405b", "missing": 1, "reason": "too big"}],
}
URLS = {"gpu-a": "http://10.77.0.2:11434", "gpu-b": "http://10.77.0.3:11434/", "apu-c": "http://10.77.0.4:11434",
        "cpu-d": "http://10.77.0.5:11434"}


def _config(**overrides):
    return build_litellm_config(GatewayInputs(plan=PLAN, node_urls=URLS, **overrides))


def _deployments(config, group):
    return [d for d in config["model_list"] if d["model_name"] == group]


def test_one_group_per_model_with_primary_then_backups_in_plan_order():
    config = _config()
    chat = _deployments(config, "qwen2.5:14b")
    assert [(d["litellm_params"]["api_base"], d["litellm_params"]["order"]) for d in chat] == [
        ("http://10.77.0.3:11434", 1), ("http://10.77.0.2:11434", 2), ("http://10.77.0.4:11434", 3)]
    assert {d["litellm_params"]["model"] for d in chat} == {"ollama_chat/qwen2.5:14b"}
    assert {d["model_info"]["mode"] for d in chat} == {"chat"}
    # deployment ids are unique (LiteLLM keys cooldown and health state by them)
    ids = [d["model_info"]["id"] for d in config["model_list"]]
    assert len(ids) == len(set(ids))


def test_embedding_models_use_the_embedding_route():
    embed = _deployments(_config(), "nomic-embed-text:latest")
    assert [d["litellm_params"]["model"] for d in embed] == ["ollama/nomic-embed-text:latest"] * 2
    assert {d["model_info"]["mode"] for d in embed} == {"embedding"}


def test_unplaced_models_are_not_served():
    assert _deployments(_config(), "llama3.1:405b") == []


def test_aliases_are_model_names_too():
    config = _config(aliases={"S-LOC-FRE-nomic-embed-text": "nomic-embed-text"})
    names = served_names(config)
    assert names["M-LOC-FRE-qwen2.5-14b"] == "qwen2.5:14b"
    assert names["S-LOC-FRE-nomic-embed-text"] == "nomic-embed-text:latest"
    assert names["qwen2.5:14b"] == "qwen2.5:14b"


def test_alias_colliding_with_a_model_name_is_refused():
    with pytest.raises(GatewayConfigError, match="also a model name"):
        _config(aliases={"qwen2.5:14b": "nomic-embed-text"})


def test_cloud_fallbacks_follow_the_local_replicas():
    cloud = cloud_models_from_inventory([
        {"name": "S-CLD-PAY-gpt-4o-mini", "model": "openai/gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}])
    config = _config(cloud_models=cloud, default_fallbacks=["S-CLD-PAY-gpt-4o-mini"])
    (deployment,) = _deployments(config, "S-CLD-PAY-gpt-4o-mini")
    assert deployment["litellm_params"] == {"model": "openai/gpt-4o-mini", "api_key": "os.environ/OPENAI_API_KEY"}
    # chat groups fall back to the cloud; embedding groups are not sent to a chat model
    assert config["litellm_settings"]["fallbacks"] == [{"qwen2.5:14b": ["S-CLD-PAY-gpt-4o-mini"]}]


def test_explicit_fallbacks_accept_aliases_and_reject_unknown_targets():
    cloud = [CloudModel(name="XL-CLD-PAY-gpt-4o", model="openai/gpt-4o", api_key_env="OPENAI_API_KEY")]
    config = _config(cloud_models=cloud, fallbacks={"M-LOC-FRE-qwen2.5-14b": ["XL-CLD-PAY-gpt-4o"]})
    assert config["litellm_settings"]["fallbacks"] == [{"qwen2.5:14b": ["XL-CLD-PAY-gpt-4o"]}]
    with pytest.raises(GatewayConfigError, match="not a served model group"):
        _config(fallbacks={"qwen2.5:14b": ["no-such-model"]})


def test_secrets_stay_in_the_environment_and_health_checks_route():
    config = _config(redis=RedisOptions(host="127.0.0.1", port=6390, password_env="REDIS_PASSWORD"),
                     router=RouterOptions(num_retries=2, cooldown_time=15, allowed_fails=2, health_check_interval=10))
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["general_settings"]["background_health_checks"] is True
    assert config["general_settings"]["health_check_interval"] == 10
    assert config["general_settings"]["enable_health_check_routing"] is True
    router = config["router_settings"]
    assert (router["redis_host"], router["redis_port"], router["redis_password"]) == (
        "127.0.0.1", 6390, "os.environ/REDIS_PASSWORD")
    assert (router["num_retries"], router["cooldown_time"], router["allowed_fails"]) == (2, 15, 2)
    # a policy turns on LiteLLM's "every replica cooling down: try them anyway" (no 429 for a busy single replica);
    # the first timed-out health check cools a replica down (a blackholed node is skipped from the next round on)
    assert router["allowed_fails_policy"] == {"TimeoutErrorAllowedFails": 0}
    assert "sk-" not in repr(config)


def test_health_checks_can_be_turned_off():
    general = _config(router=RouterOptions(health_check_interval=0))["general_settings"]
    assert general["background_health_checks"] is False
    assert "enable_health_check_routing" not in general
    assert "allowed_fails_policy" not in _config(router=RouterOptions(health_check_interval=0))["router_settings"]


def test_same_inputs_same_config():
    assert _config() == _config()


def test_a_replica_on_a_node_without_url_is_an_error_naming_the_node():
    urls = {k: v for k, v in URLS.items() if k != "apu-c"}
    with pytest.raises(GatewayConfigError, match="apu-c"):
        build_litellm_config(GatewayInputs(plan=PLAN, node_urls=urls))


def test_a_plan_without_placed_models_is_an_error():
    with pytest.raises(GatewayConfigError, match=r"plan\.yml"):
        build_litellm_config(GatewayInputs(plan={"models": {}}, node_urls={}))


@pytest.mark.parametrize(("name", "entry", "expected"), [
    ("nomic-embed-text:latest", {}, True),
    ("mxbai-embed-large:latest", {}, True),
    ("bge-m3:latest", {}, True),
    ("qwen2.5:14b", {}, False),
    ("granite-embedding:latest", {"kind": "embedding"}, True),
    ("embedish-chat:1b", {"kind": "chat"}, False),
])
def test_embedding_detection(name, entry, expected):
    assert is_embedding_model(name, entry) is expected


def test_every_replica_has_a_short_health_check_timeout():
    """A replica that vanishes without a TCP reset is marked down after 2 s, not LiteLLM's 60 s (issue 18)."""
    config = _config()
    assert {d["model_info"]["health_check_timeout"] for d in config["model_list"] if "pmoves_node" in d["model_info"]
            and d["model_info"]["pmoves_node"] != "cloud"} == {2}
    assert config["general_settings"]["health_check_interval"] == 2
    custom = _config(router=RouterOptions(health_check_timeout=3))
    assert {d["model_info"]["health_check_timeout"] for d in custom["model_list"]} == {3}
    off = _config(router=RouterOptions(health_check_interval=0))
    assert all("health_check_timeout" not in d["model_info"] for d in off["model_list"])


CLOUD = [CloudModel(name="S-CLD-PAY-gpt-4o-mini", model="openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY")]


@pytest.mark.parametrize(("router", "chat", "embedding"), [
    # defaults: streams bounded to 4 s per chunk, health checks ask for 1 token of chat models
    (RouterOptions(), {"stream_timeout": 4, "health_check_max_tokens": 1}, {}),
    (RouterOptions(stream_timeout=10, health_check_max_tokens=3), {"stream_timeout": 10, "health_check_max_tokens": 3},
     {}),
    # 0 turns each off: LiteLLM's own behaviour (`timeout` for streams, 16 tokens per check)
    (RouterOptions(stream_timeout=0, health_check_max_tokens=0), {}, {}),
    # without health checks nothing health-check related is written; the stream bound stays
    (RouterOptions(health_check_interval=0), {"stream_timeout": 4}, {}),
    # numbers as strings (an inventory written with quotes) are numbers in the config
    (RouterOptions(stream_timeout="6", health_check_max_tokens="2"), {"stream_timeout": 6, "health_check_max_tokens": 2},
     {}),
], ids=["defaults", "custom", "off", "no-health-checks", "strings"])
def test_stream_bound_and_cheap_health_checks_per_local_replica(router, chat, embedding):
    """issue 18: a stream waits at most stream_timeout on a vanished replica; embeddings and cloud models keep
    LiteLLM's timeouts (their answers are not streamed token by token / not ours to bound)."""
    config = _config(router=router, cloud_models=CLOUD)
    keys = ("stream_timeout", "health_check_max_tokens")
    for deployment in config["model_list"]:
        found = {key: value for key, value in {**deployment["litellm_params"], **deployment["model_info"]}.items()
                 if key in keys}
        node = deployment["model_info"]["pmoves_node"]
        expected = {} if node == "cloud" else embedding if deployment["model_info"]["mode"] == "embedding" else chat
        assert found == expected, deployment
    assert config["router_settings"]["timeout"] == router.timeout  # non-streaming requests keep the whole-answer bound
    assert config["litellm_settings"]["request_timeout"] == router.timeout


@pytest.mark.parametrize("knobs", [
    {},
    {"stream_timeout": 0},
    {"stream_timeout": 30, "health_check_interval": 5, "health_check_timeout": 4},
], ids=["role-defaults", "stream-bound-off", "custom"])
def test_role_router_defaults_pass_the_filter(knobs):
    """The role's pmoves_gateway_router (extended, never renamed) is accepted by the controller filter."""
    defaults = yaml.safe_load((Path(__file__).resolve().parents[3] / "roles" / "gateway" / "defaults" / "main.yml")
                              .read_text())["pmoves_gateway_router"]
    assert {"routing_strategy", "num_retries", "allowed_fails", "cooldown_time", "timeout", "health_check_interval",
            "health_check_routing", "health_check_timeout", "stream_timeout", "health_check_max_tokens"} <= set(defaults)
    router = {**defaults, **knobs}
    config = litellm_config(PLAN["models"], URLS, router=router)["config"]
    chat = _deployments(config, "qwen2.5:14b")
    assert {d["litellm_params"].get("stream_timeout") for d in chat} == {router["stream_timeout"] or None}
    assert config["general_settings"]["health_check_interval"] == router["health_check_interval"]
    assert {d["model_info"]["health_check_timeout"] for d in chat} == {router["health_check_timeout"]}


ON_DEMAND_PLAN = {"models": {
    # resident on gpu-a (two of them: the smaller is the probe), nothing resident on gpu-b
    "llama3.2:1b": {"placed": ["gpu-a"], "kind": "chat", "resident": True, "vram_by_host": {"gpu-a": 1300}},
    "qwen2.5:7b": {"placed": ["gpu-a"], "kind": "chat", "resident": True, "vram_by_host": {"gpu-a": 4700}},
    "qwen2.5:32b": {"placed": ["gpu-a", "gpu-b"], "kind": "chat", "resident": False,
                    "vram_by_host": {"gpu-a": 20000, "gpu-b": 20000}},
    "nomic-embed-text:latest": {"placed": ["gpu-b"], "kind": "embedding", "resident": True},
    "bge-m3:latest": {"placed": ["gpu-a", "gpu-b"], "kind": "embedding", "resident": False},
}}


def _by_id(config):
    return {d["model_info"]["id"]: d for d in config["model_list"]}


def test_a_model_loaded_on_demand_is_probed_through_one_model_of_its_node_that_stays_loaded():
    """issue 18 + contract 2: a health check is a real request. Probing every on-demand model every 2 s would swap
    the node's models through VRAM without end; its replicas are probed through the node's smallest resident model
    of the same kind, else the node's smallest model of that kind (kept loaded alone), and its streams leave room
    for the cold load."""
    config = build_litellm_config(GatewayInputs(plan=ON_DEMAND_PLAN, node_urls=URLS))
    by_id = _by_id(config)
    on_a, on_b = by_id["qwen2.5:32b@gpu-a"], by_id["qwen2.5:32b@gpu-b"]
    assert on_a["model_info"]["health_check_model"] == "ollama_chat/llama3.2:1b"
    assert on_a["model_info"]["health_check_timeout"] == 2 and on_a["litellm_params"]["stream_timeout"] == 120
    # gpu-b holds no resident chat model: its only chat model is its probe, asked itself
    assert "health_check_model" not in on_b["model_info"] and on_b["model_info"]["health_check_timeout"] == 2
    assert on_b["litellm_params"]["stream_timeout"] == 120
    # an embedding model is probed through a resident embedding model, never a chat model
    assert by_id["bge-m3:latest@gpu-b"]["model_info"]["health_check_model"] == "ollama/nomic-embed-text:latest"
    assert "health_check_model" not in by_id["bge-m3:latest@gpu-a"]["model_info"]  # gpu-a's only embedding model
    assert not any("disable_background_health_check" in d["model_info"] for d in config["model_list"])
    # the probes are probed themselves; the node's other resident models through its probe (one probe per node and
    # kind: issue 17), with the short stream bound
    for probe in ("llama3.2:1b@gpu-a", "nomic-embed-text:latest@gpu-b"):
        assert "health_check_model" not in by_id[probe]["model_info"]
    assert by_id["qwen2.5:7b@gpu-a"]["model_info"]["health_check_model"] == "ollama_chat/llama3.2:1b"
    assert not any("disable_background_health_check" in d["model_info"] for d in config["model_list"])
    assert by_id["qwen2.5:7b@gpu-a"]["litellm_params"]["stream_timeout"] == 4


def test_on_demand_knobs_follow_the_router_options():
    config = build_litellm_config(GatewayInputs(plan=ON_DEMAND_PLAN, node_urls=URLS,
                                                router=RouterOptions(stream_timeout_on_demand=0)))
    assert "stream_timeout" not in _by_id(config)["qwen2.5:32b@gpu-a"]["litellm_params"]  # 0: `timeout` applies
    off = _by_id(build_litellm_config(GatewayInputs(plan=ON_DEMAND_PLAN, node_urls=URLS,
                                                    router=RouterOptions(health_check_interval=0))))
    # without health checks there is nothing to redirect
    assert "health_check_model" not in off["qwen2.5:32b@gpu-a"]["model_info"]


def test_a_node_with_one_model_of_a_kind_probes_that_model_itself():
    """A plan written before models were loaded on demand (no ``resident``), one model per kind per node: each
    replica is its node's probe, asked itself."""
    config = _config()
    assert not any({"health_check_model", "disable_background_health_check"} & set(d["model_info"])
                   for d in config["model_list"])


def test_every_replica_on_a_node_shares_the_nodes_probe_of_its_kind():
    """issue 17: one probe per node and kind. The homelab's gateway probed each of 61 replicas every 2 s; with every
    replica pointed at its node's probe (the smallest resident model of its kind), a round is one request per node
    and kind (files/pmoves_gateway_health.py sends identical probes once)."""
    plan = {"models": {
        name: {"placed": ["gpu-a", "gpu-b"], "kind": "chat", "vram_by_host": {"gpu-a": vram, "gpu-b": vram}}
        for name, vram in (("qwen2.5:14b", 9000), ("llama3.2:3b", 2000), ("qwen2.5:7b", 4700), ("phi4:14b", 9100))}}
    plan["models"]["nomic-embed-text:latest"] = {"placed": ["gpu-a"], "kind": "embedding"}
    plan["models"]["bge-m3:latest"] = {"placed": ["gpu-a"], "kind": "embedding"}
    config = build_litellm_config(GatewayInputs(plan=plan, node_urls=URLS))
    asked = {(d["model_info"]["pmoves_node"], d["model_info"]["mode"],
              d["model_info"].get("health_check_model") or d["litellm_params"]["model"]) for d in config["model_list"]}
    assert asked == {("gpu-a", "chat", "ollama_chat/llama3.2:3b"), ("gpu-b", "chat", "ollama_chat/llama3.2:3b"),
                     ("gpu-a", "embedding", "ollama/bge-m3:latest")}
    assert len(config["model_list"]) == 10


def test_on_a_node_with_no_model_that_stays_loaded_the_smallest_one_is_the_probe_of_the_others():
    plan = {"models": {
        "qwen2.5:32b": {"placed": ["gpu-b"], "kind": "chat", "resident": False, "vram_by_host": {"gpu-b": 20000}},
        "qwen2.5:14b": {"placed": ["gpu-b"], "kind": "chat", "resident": False, "vram_by_host": {"gpu-b": 9000}},
        "llama3.2:3b": {"placed": ["gpu-b"], "kind": "chat", "resident": False, "vram_by_host": {"gpu-b": 2000}},
    }}
    by_id = _by_id(build_litellm_config(GatewayInputs(plan=plan, node_urls=URLS)))
    assert {i: d["model_info"].get("health_check_model") for i, d in by_id.items()} == {
        "llama3.2:3b@gpu-b": None, "qwen2.5:14b@gpu-b": "ollama_chat/llama3.2:3b",
        "qwen2.5:32b@gpu-b": "ollama_chat/llama3.2:3b"}


def test_a_node_that_keeps_all_its_models_loaded_gets_the_short_stream_bound_and_one_probe():
    """The fleet view's loaded_on: on a node whose on-demand models all stay loaded at once, streams get the short
    bound; its replicas are probed through one of them like on any node (one probe per node and kind)."""
    plan = {"models": {"qwen2.5:32b": {"placed": ["gpu-a", "gpu-b"], "kind": "chat", "resident": False,
                                       "loaded_on": ["gpu-a"], "vram_by_host": {"gpu-a": 20000, "gpu-b": 20000}},
                       "llama3.2:3b": {"placed": ["gpu-a"], "kind": "chat", "resident": False,
                                       "loaded_on": ["gpu-a"], "vram_by_host": {"gpu-a": 2000}}}}
    by_id = _by_id(build_litellm_config(GatewayInputs(plan=plan, node_urls=URLS)))
    assert by_id["qwen2.5:32b@gpu-a"]["model_info"]["health_check_model"] == "ollama_chat/llama3.2:3b"
    assert "health_check_model" not in by_id["llama3.2:3b@gpu-a"]["model_info"]
    assert "health_check_model" not in by_id["qwen2.5:32b@gpu-b"]["model_info"]  # gpu-b's only chat model
    assert by_id["qwen2.5:32b@gpu-a"]["litellm_params"]["stream_timeout"] == 4
    assert by_id["qwen2.5:32b@gpu-b"]["litellm_params"]["stream_timeout"] == 120


ROLE = Path(__file__).resolve().parents[3] / "roles" / "gateway"


def test_the_tcp_deadlines_module_is_a_callback_the_role_installs_beside_the_config():
    """issue 18: a node that vanished without a reset ends a non-streaming request in seconds, not `timeout`:
    the config names the module (LiteLLM imports it from config.yaml's directory), the role copies it there and
    litellm.env carries the deadlines it and LiteLLM's keepalive read."""
    callbacks = ["pmoves_gateway_tcp.handler", "pmoves_gateway_health.handler"]
    assert _config()["litellm_settings"]["callbacks"] == callbacks
    assert "callbacks" not in _config(callbacks=())["litellm_settings"]
    filtered = litellm_config(PLAN["models"], URLS)["config"]
    assert filtered["litellm_settings"]["callbacks"] == callbacks
    assert "callbacks" not in litellm_config(PLAN["models"], URLS, callbacks=[])["config"]["litellm_settings"]
    copies = [t for t in yaml.safe_load((ROLE / "tasks" / "configure.yml").read_text())
              if (t.get("ansible.builtin.copy") or {}).get("src") == "{{ item }}"]
    assert len(copies) == 1 and copies[0]["ansible.builtin.copy"]["dest"].endswith("/{{ item }}"), copies
    for callback in callbacks:  # each module the config names is a file the role copies beside config.yaml
        module = callback.split(".", maxsplit=1)[0] + ".py"
        assert (ROLE / "files" / module).is_file() and module in copies[0]["loop"], module
    env = (ROLE / "templates" / "litellm.env.j2").read_text()
    for name in ("AIOHTTP_SO_KEEPALIVE=True", "AIOHTTP_TCP_KEEPIDLE=", "AIOHTTP_TCP_KEEPINTVL=", "AIOHTTP_TCP_KEEPCNT=",
                 "PMOVES_GATEWAY_TCP_USER_TIMEOUT_MS=", "PMOVES_GATEWAY_TCP_SYN_RETRIES="):
        assert name in env, name
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["pmoves_gateway_backend_tcp"]
    assert set(defaults) == {"keepalive_idle", "keepalive_interval", "keepalive_count", "user_timeout_ms", "syn_retries",
                             "dns_cache_ttl"}
    assert "AIOHTTP_TTL_DNS_CACHE=" in env and defaults["dns_cache_ttl"] <= 10  # a readdressed node is back in seconds
