"""Model names and the built-in library table."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import (
    lookup,
    normalize_model_name,
    not_ollama_reason,
    params_from_tag,
    validate_model_name,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("nomic-embed-text", "nomic-embed-text:latest"),
    ("llama3", "llama3:latest"),
    (" qwen2.5:32b ", "qwen2.5:32b"),
    ("library/llama3.2:3b", "llama3.2:3b"),
    ("registry.ollama.ai/library/mistral", "mistral:latest"),
    # Ollama compares names case-insensitively and lists them in lower case; HF quant tags are case-insensitive.
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "hf.co/bartowski/llama-3.2-1b-instruct-gguf:q4_k_m"),
    ("myregistry:5000/team/model", "myregistry:5000/team/model:latest"),
    ("qwen2.5:7b-instruct-q4_K_M", "qwen2.5:7b-instruct-q4_k_m"),
    # The case the Jinja copy got wrong: the ollama.com host and the library namespace go.
    ("ollama.com/library/qwen2.5:32b", "qwen2.5:32b"),
    ("https://ollama.com/library/Qwen2.5:32B", "qwen2.5:32b"),
    ("NOMIC-Embed-Text", "nomic-embed-text:latest"),
    ("S-LOC-FRE-nomic-embed-text", "s-loc-fre-nomic-embed-text:latest"),
])
def test_normalize_model_name(raw: str, expected: str) -> None:
    assert normalize_model_name(raw) == expected


@pytest.mark.parametrize("name", ["llama3", "qwen2.5:32b", "registry.ollama.ai/library/mistral:7b",
                                  "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "myregistry:5000/team/model",
                                  "S-LOC-FRE-nomic-embed-text", "_private:v1.0", "https://ollama.com/library/phi3"])
def test_valid_names_follow_ollamas_grammar(name: str) -> None:
    assert validate_model_name(name) is None


@pytest.mark.parametrize(("name", "why"), [
    ("", "empty"), ("llama 3", "whitespace"), ("llama\n3", "whitespace"), ("llama\x01", "control"),
    ("../../etc/passwd", "'..'"), ("qwen2.5:..", "'..'"), ("-llama", "model"), ("llama:-x", "tag"),
    ("ns.x/model", "namespace"), ("a/b/c/d", "[host/]"), ("model:", "tag"), ("/model", "[host/]"),
    ("m" * 81, "80"), (42, "string"),
])
def test_invalid_names_are_refused_with_the_reason(name, why: str) -> None:
    reason = validate_model_name(name)
    assert reason is not None and why in reason, reason


def test_normalize_is_idempotent_and_rejects_empty() -> None:
    assert normalize_model_name(normalize_model_name("Phi3")) == "phi3:latest"
    with pytest.raises(ValueError):
        normalize_model_name("  ")


@pytest.mark.parametrize(("tag", "params"), [("32b", 32.0), ("8x22b", 176.0), ("335m", 0.335),
                                             ("70b-instruct-q4_K_M", 70.0), ("latest", None), ("1.5b", 1.5)])
def test_params_from_tag(tag: str, params: float | None) -> None:
    assert params_from_tag(tag) == params


def test_lookup_known_and_unknown_tags() -> None:
    assert lookup("qwen2.5:32b").tag_known
    assert lookup("qwen2.5:32b-instruct-q8_0").tag_known
    assert lookup("llama3.2").size_label == "3b"
    seed_shorthand = lookup("qwen2.5-coder:32b-q4")
    assert not seed_shorthand.tag_known
    assert seed_shorthand.suggestion == "qwen2.5-coder:32b"
    assert lookup("phi-2:2.7b").family is None
    assert lookup("phi-2:2.7b").suggestion == "phi:2.7b"


@pytest.mark.parametrize("name", ["stable-diffusion-xl", "flux-schnell", "whisper:large-v3", "stable-diffusion-2.1",
                                  "stable-diffusion"])
def test_seed_003_non_ollama_artefacts_are_recognised(name: str) -> None:
    assert not_ollama_reason(name)


@pytest.mark.parametrize("name", ["llama3.1:8b", "nomic-embed-text", "mistral", "phi3.5:3.8b"])
def test_library_models_are_not_flagged(name: str) -> None:
    assert not_ollama_reason(name) is None
