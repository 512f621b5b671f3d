"""VRAM estimates (Ollama-style: weights + KV cache + overhead)."""

from __future__ import annotations

from ansible_collections.pmoves.fleet.plugins.module_utils.vram import OVERHEAD_MB, estimate, kv_cache_mb


def test_catalog_vram_is_final() -> None:
    result = estimate({"name": "qwen2.5:32b", "vram_mb": 12345, "context": 131072})
    assert (result.vram_mb, result.source) == (12345, "catalog")


def test_llama31_8b_matches_ollama_scale() -> None:
    result = estimate({"name": "llama3.1:8b"})
    # 4.9 GB of weights, 512 MiB KV at 4096 tokens (32 layers x 8 KV heads x 128), fixed overhead
    assert result.kv_cache_mb == 512
    assert result.overhead_mb == OVERHEAD_MB
    assert 5400 < result.vram_mb < 6000


def test_kv_cache_grows_with_context_and_parallel() -> None:
    small = estimate({"name": "llama3.1:8b", "context": 4096}).vram_mb
    big = estimate({"name": "llama3.1:8b", "context": 32768}).vram_mb
    parallel = estimate({"name": "llama3.1:8b", "context": 4096, "parallel": 4}).vram_mb
    assert big - small == kv_cache_mb(32, 8, 128, 32768) - kv_cache_mb(32, 8, 128, 4096)
    assert parallel - small == 3 * 512
    assert estimate({"name": "llama3.1:8b", "context": 32768, "kv_cache_type": "q8_0"}).vram_mb < big


def test_quantisation_changes_weights() -> None:
    q4 = estimate({"name": "qwen2.5:32b"}).weights_mb
    q8 = estimate({"name": "qwen2.5:32b-instruct-q8_0"}).weights_mb
    fp16 = estimate({"name": "qwen2.5:32b-instruct-fp16"}).weights_mb
    assert q4 < q8 < fp16
    assert 1.6 < q8 / q4 < 1.9


def test_embeddings_have_no_kv_cache() -> None:
    result = estimate({"name": "nomic-embed-text"})
    assert result.kind == "embedding" and result.kv_cache_mb == 0 and result.vram_mb < 1024


def test_unknown_model_estimated_from_tag_with_warning() -> None:
    result = estimate({"name": "phi-2:2.7b"})
    assert result.source == "tag" and 1500 < result.vram_mb < 4000
    assert any("phi-2:2.7b" in w and "phi:2.7b" in w for w in result.warnings)


def test_nonexistent_tag_of_known_model_warns_and_names_entry() -> None:
    result = estimate({"name": "llama3.1:70b-q4"})
    assert result.vram_mb and any("llama3.1:70b-q4" in w and "does not exist" in w for w in result.warnings)


def test_unknown_model_without_size_needs_vram_mb() -> None:
    result = estimate({"name": "my-private-model"})
    assert result.vram_mb is None and any("vram_mb" in w for w in result.warnings)
    assert estimate({"name": "my-private-model", "vram_mb": 3000}).vram_mb == 3000


def test_non_ollama_artefact_is_a_warning_not_an_estimate() -> None:
    result = estimate({"name": "stable-diffusion-xl"})
    assert result.vram_mb is None and result.not_ollama
    assert result.warnings == ("stable-diffusion-xl is not an Ollama library model "
                               "(image generation: run it as a service (e.g. ComfyUI))",)
