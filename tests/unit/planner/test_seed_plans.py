"""Each seed's statements about models, asserted on the plan of its real inventory (docs/seeds.md lists them)."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name
from planner_helpers import check_invariants
from test_seed_inventories import plan_of

# Seed 003's per-machine `ollama pull` lists, as the seed writes them (host, tag). Seed tags that are
# not library tags map to the library's (SEED_TAGS); entries that are no Ollama model are NOT_OLLAMA.
SEED_003_LISTS = {
    "akshat-pc": ["qwen2.5-coder:32b", "deepseek-coder-v2:236b", "qwen2.5:72b", "llava:34b", "deepseek-r1:14b",
                  "qwen2.5:32b", "llama3.2-vision:90b", "llama3.2-vision:11b", "codestral:22b", "stable-diffusion-xl",
                  "flux-schnell", "whisper:large-v3"],
    "old-office-pc": ["qwen2.5-coder:32b-q4", "llama3.1:70b-q4", "llama3.2-vision:11b", "mistral-nemo:12b",
                      "qwen2.5:14b", "llama3.2:3b", "deepseek-r1:8b", "stable-diffusion-2.1", "nomic-embed-text"],
    "gtr9-pro": ["qwen2.5:72b-q4", "llama3.1:70b-q4", "mixtral:8x22b-q4", "mxbai-embed-large", "bge-m3"],
    "evo-x2": ["deepseek-coder-v2:236b-q4", "qwen2.5:72b-q4", "snowflake-arctic-embed:335m", "nomic-embed-text"],
    "ms-s1": ["qwen2.5:72b-q4", "llama3.1:70b-q4", "granite-embedding"],
    "ser9": ["phi3.5:3.8b", "llama3.2:3b", "qwen2.5:14b", "mistral:7b"],
    "atomman-x7-ti": ["phi3.5:3.8b", "llama3.2:3b", "qwen2.5:14b", "codellama:13b", "nomic-embed-text"],
    "mac-mini-m4-pro": ["qwen2.5:14b", "llama3.2:3b", "phi3.5:3.8b", "stable-diffusion", "nomic-embed-text"],
    "ms01": ["qwen2.5:14b", "codellama:13b", "mistral-nemo:12b", "llama3.2:3b", "deepseek-r1:8b"],
    "borgcube": ["qwen2.5:7b", "mistral:7b", "phi3.5:3.8b", "nomic-embed-text"],
    "retromac": ["tinyllama:1.1b", "phi-2:2.7b", "llama3.2:1b", "nomic-embed-text"],
}
SEED_TAGS = {"qwen2.5-coder:32b-q4": "qwen2.5-coder:32b", "llama3.1:70b-q4": "llama3.1:70b",
             "qwen2.5:72b-q4": "qwen2.5:72b", "mixtral:8x22b-q4": "mixtral:8x22b",
             "deepseek-coder-v2:236b-q4": "deepseek-coder-v2:236b", "phi-2:2.7b": "phi:2.7b"}
# Image generation and speech: served by services (ComfyUI, whisper) or not at all (CoreML on the Mac).
NOT_OLLAMA = {"stable-diffusion-xl": "comfyui", "flux-schnell": "comfyui", "stable-diffusion-2.1": "comfyui",
              "whisper:large-v3": "whisper-large-v3", "stable-diffusion": None}


def seed_003_pairs() -> list[tuple[str, str]]:
    return [(host, normalize_model_name(SEED_TAGS.get(tag, tag))) for host, tags in SEED_003_LISTS.items()
            for tag in tags if tag not in NOT_OLLAMA]


@pytest.fixture(scope="module")
def plans(seed_inventories):
    return {name: plan_of(inventory) for name, inventory in seed_inventories.items()}


def test_every_seed_plan_keeps_the_contract(seed_inventories, plans) -> None:
    for name, plan in plans.items():
        check_invariants(plan, seed_inventories[name]["hosts"], seed_inventories[name]["models"])


# --------------------------------------------------------------------------- seed 000 (pmoves)
def test_pmoves_places_models_by_size_as_the_seed_says(plans) -> None:
    plan = plans["pmoves"]
    models, nodes = plan["models"], plan["nodes"]
    big = [m for m, e in models.items() if e.get("params_b", 0) >= 70]
    assert big, "the seed's 70B+ model is in the catalog"
    for name in big:  # 70B+ -> 5090
        assert models[name]["placed"] == ["pmoves-5090"], name
    assert set(models["qwen2.5:32b"]["placed"]) == {"pmoves-5090", "pmoves-3090ti"}  # 30-70B -> 3090 Ti + 5090
    assert nodes["pmoves-5090"]["models"], "the 5090 (primary inference, large models) holds models"
    for jetson in ("pmoves-jetson-1", "pmoves-jetson-2"):  # 1-8B -> Jetsons, nothing larger
        held = nodes[jetson]["models"]
        assert {"qwen3:8b", "llama3.2:3b"} <= set(held), jetson
        assert all(models[m]["params_b"] <= 8.5 for m in held), jetson
        assert nodes[jetson]["offload_mb"] == 0  # GPU services share the memory: no spill
    assert set(models["nomic-embed-text:latest"]["placed"]) == {"pmoves-vps-kvm4-1", "pmoves-vps-kvm4-2"}
    assert nodes["pmoves-vps-kvm2"]["models"] == []  # the exit node takes no models
    assert plan["unplaced"] == []
    # the services stay resident where the seed puts them; the 70B spills, and the plan says how much
    assert plan["services"]["ultimate-tts-studio"]["placed"] == ["pmoves-5090"]
    assert nodes["pmoves-5090"]["placements"]["llama3.1:70b-instruct-q2_k"]["spill_mb"] > 0
    assert any(w.startswith("model llama3.1:70b-instruct-q2_k on pmoves-5090") and "slower" in w
               for w in plan["warnings"])
    for name, entry in models.items():
        for host in entry["placed"]:
            assert entry["why"][host], (name, host)


# --------------------------------------------------------------------------- seed 003 (homelab)
def test_homelab_keeps_90_percent_of_the_seed_lists_and_explains_the_rest(plans) -> None:
    plan = plans["homelab"]
    pairs = seed_003_pairs()
    assert len(pairs) == 55  # 54 + llama3.2-vision:90b ("if released": it is in the library)
    placed = {(host, name) for name, entry in plan["models"].items() for host in entry["placed"]}
    kept = [pair for pair in pairs if pair in placed]
    assert len(kept) / len(pairs) >= 0.90, (len(kept), len(pairs))
    unplaced = {u["model"]: u["reason"] for u in plan["unplaced"]}
    for host, name in sorted(set(pairs) - placed):
        assert f"{host}:" in unplaced.get(name, ""), (host, name, unplaced.get(name))
        assert any(host in w and name in w and "cannot hold" in w for w in plan["warnings"]), (host, name)
    print(f"seed 003: {len(kept)} of {len(pairs)} host/model pairs kept")


def test_homelab_non_ollama_entries_are_services_or_explained(plans) -> None:
    plan = plans["homelab"]
    assert plan["services"]["comfyui"]["placed"] == ["akshat-pc"]
    assert plan["services"]["whisper-large-v3"]["placed"] == ["akshat-pc"]
    for tag, service in NOT_OLLAMA.items():
        assert normalize_model_name(tag) not in plan["models"]
        if service:
            assert service in plan["services"]


def test_homelab_redundancy_map_tiers_and_settings(plans) -> None:
    plan = plans["homelab"]
    models, nodes = plan["models"], plan["nodes"]
    pis = [h for h in nodes if h.startswith("pi5")]
    assert len(pis) == 12 and all(nodes[h]["models"] == [] for h in pis)  # tier 6: no models
    assert set(models["nomic-embed-text:latest"]["placed"]) == set(nodes) - set(pis)  # embeddings: all but Pis
    # L code: Akshat-PC, Old-Office-PC, MS01; XL vision: Akshat-PC, Old-Office-PC; M vision: + Mac mini
    assert models["qwen2.5-coder:32b"]["placed"] == ["akshat-pc", "old-office-pc", "ms01"]
    assert models["llava:34b"]["placed"] == ["akshat-pc", "old-office-pc"]
    assert set(models["llama3.2-vision:11b"]["placed"]) == {"akshat-pc", "old-office-pc", "mac-mini-m4-pro"}
    # Akshat-PC runs the 236B with partial offload (32 GB VRAM + 192 GB RAM), as its user does
    assert "akshat-pc" in models["deepseek-coder-v2:236b"]["placed"]
    assert nodes["akshat-pc"]["max_loaded"] == 3 and nodes["akshat-pc"]["placements"][
        "deepseek-coder-v2:236b"]["spill_mb"] > 0
    # tier 2 plans at the seed's 131072 x 4 parallel; XL models on the APUs
    for apu in ("gtr9-pro", "evo-x2", "ms-s1"):
        assert nodes[apu]["ollama_env"]["context_length"] == 131072 and nodes[apu]["ollama_env"]["num_parallel"] == 4
        assert "qwen2.5:72b" in nodes[apu]["models"]
    assert models["qwen2.5:72b"]["vram_by_host"]["gtr9-pro"] > models["qwen2.5:72b"]["vram_by_host"]["akshat-pc"]
    # RetroMac: tiny models only
    assert set(nodes["retromac"]["models"]) == {"tinyllama:1.1b", "phi:2.7b", "llama3.2:1b",
                                                "nomic-embed-text:latest"}
    # every alias form of the seed is served
    aliases = {a for entry in models.values() for a in entry["aliases"]}
    for alias in ("s-loc-fre-llama3.2-3b-npu", "s-loc-fre-phi3.5-metal", "xl-loc-fre-qwen2.5-72b-q4-cpu",
                  "s-loc-fre-llama3.2-3b-intel-npu", "xl-loc-fre-qwen2.5-coder-32b-q4"):
        assert normalize_model_name(alias) in aliases, alias


# --------------------------------------------------------------------------- seed 004 (workstation)
def test_workstation_keeps_the_small_services_on_gpu0_as_the_seed_example(plans) -> None:
    plan = plans["workstation"]
    gpu = {s["name"]: s["gpu_index"] for s in plan["nodes"]["workstation"]["services"]}
    assert gpu == {"ai-llm": 0, "ai-yolo26": 0, "ai-florence": 0, "ai-clip": 0, "ai-enrichment": 1}
    assert any("ai-enrichment VRAM budget" in w and "Auto-adjusted" in w for w in plan["warnings"])


# --------------------------------------------------------------------------- seeds 001, 002
def test_gpu_mesh_serves_the_seeds_model_on_both_4090s(plans) -> None:
    plan = plans["gpu-mesh"]
    for name, entry in plan["models"].items():
        assert set(entry["placed"]) == {"mesh-runpod", "mesh-vengeance"}, name  # failover: every model on both
    assert plan["nodes"]["mesh-coordinator"]["models"] == []
    assert "pmoves_models_pin" in plan["models"]["qwen2.5:7b"]["why"]["mesh-runpod"]


def test_forge_keeps_the_engine_budget_and_serves_a_model_on_every_sku(plans) -> None:
    plan = plans["forge"]
    for sku in ("forge-thor", "forge-rtx-pro-4000"):
        node = plan["nodes"][sku]
        assert "forge-inference" in {s["name"] for s in node["services"]}
        assert "llama3.1:8b" in node["on_demand"]
        assert node["reserved_mb"] >= 8000  # the TensorRT engine's budget stays reserved


def test_homelab_cloud_models_are_the_gateways_fallbacks(seed_inventories, plans) -> None:
    """Seed 003: *-CLD-PAY-* models via LiteLLM when local is insufficient (keys from the vault, not here)."""
    from ansible_collections.pmoves.fleet.plugins.filter.fleet import gateway_node_urls, litellm_config
    from ansible_collections.pmoves.fleet.plugins.module_utils.plan_view import fleet_view

    hostvars = seed_inventories["homelab"]["hostvars"]["pi5l"]
    cloud, fallbacks = hostvars["pmoves_gateway_cloud_models"], hostvars["pmoves_gateway_fallbacks"]
    fleet = fleet_view(plans["homelab"])
    result = litellm_config(fleet["models"], gateway_node_urls(fleet), cloud_models=cloud, fallbacks=fallbacks)
    config = result["config"]
    groups = {d["model_name"] for d in config["model_list"]}
    seed = {"XL-CLD-PAY-claude-opus-4.5", "XL-CLD-PAY-gpt-4o", "XL-CLD-PAY-o1", "M-CLD-PAY-claude-sonnet-4.5",
            "M-CLD-PAY-gemini-flash-2.0", "S-CLD-PAY-gpt-4o-mini", "S-CLD-PAY-claude-haiku-4.5"}
    assert seed <= groups
    table = {k: v for entry in config["litellm_settings"]["fallbacks"] for k, v in entry.items()}
    assert table["qwen2.5-coder:32b"] == ["XL-CLD-PAY-claude-opus-4.5"]
    assert table["llama3.2:3b"] == ["S-CLD-PAY-gpt-4o-mini"]
    assert all(d["litellm_params"].get("api_key", "os.environ/").startswith("os.environ/")
               for d in config["model_list"])
