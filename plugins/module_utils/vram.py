"""VRAM estimates for Ollama models, in the spirit of Ollama's own memory estimate.

estimate = weights (download size at the tag's quantisation)
         + KV cache (2 x layers x KV heads x head dim x bytes per element x context x parallel)
         + a fixed overhead (CUDA/ROCm context, compute graph for one batch).

A catalog ``vram_mb`` is final and used as is. Unknown models are estimated from the parameter
count in their tag (``...:32b``) at the tag's quantisation (4-bit when none is named); without a
parameter count the entry needs ``vram_mb``. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import (
    QUANT_BITS,
    lookup,
    normalize_model_name,
    not_ollama_reason,
)

DEFAULT_CONTEXT = 4096  # Ollama's default num_ctx
DEFAULT_PARALLEL = 1  # requests served at once per loaded model (OLLAMA_NUM_PARALLEL)
OVERHEAD_MB = 512  # runtime context + compute graph, like Ollama's minimum memory per GPU
EMBEDDING_OVERHEAD_MB = 256  # embedding models run a small graph and keep no KV cache
KV_BYTES = {"f16": 2.0, "q8_0": 1.0, "q4_0": 0.5}  # OLLAMA_KV_CACHE_TYPE
_DEFAULT_BITS = 4.85  # q4_K_M, Ollama's default quantisation


@dataclass(frozen=True)
class VramEstimate:
    """Planned VRAM of one model and how it was obtained."""

    name: str  # normalised name
    vram_mb: int | None  # None: cannot be estimated (needs vram_mb in the catalog)
    source: str  # catalog | library | tag | params_b | none
    params_b: float | None
    kind: str  # chat | code | vision | reasoning | embedding | unknown
    weights_mb: int = 0
    kv_cache_mb: int = 0
    overhead_mb: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    not_ollama: str | None = None  # reason when the entry is no Ollama model at all


def kv_cache_mb(layers: int, kv_heads: int, head_dim: int, context: int, parallel: int = 1,
                kv_cache_type: str = "f16") -> int:
    """KV cache size in MiB: keys and values for every layer, token and parallel slot."""
    per_element = KV_BYTES.get(kv_cache_type, 2.0)
    total = 2 * layers * kv_heads * head_dim * per_element * context * max(parallel, 1)
    return int(-(-total // 2**20))


def weights_from_params_mb(params_b: float, bits: float) -> int:
    """Size of the weights of a model with ``params_b`` billion parameters at ``bits`` per weight."""
    return int(-(-(params_b * 1e9 * bits / 8) // 2**20))


def estimate(entry: dict) -> VramEstimate:
    """Estimate the VRAM of one catalog entry ``{name, vram_mb?, context?, parallel?, kv_cache_type?, kind?,
    params_b?}`` (keys of fleet_schema.MODEL_FIELDS; ``kind`` and ``params_b`` count only for models the
    built-in table does not know, ``params_b`` only when the tag names no size)."""
    raw_name = str(entry.get("name", "")).strip()
    name = normalize_model_name(raw_name)
    reason = not_ollama_reason(name)
    if reason is not None:
        return VramEstimate(name, None, "none", None, "unknown", not_ollama=reason,
                            warnings=(f"{raw_name} is not an Ollama library model ({reason})",))

    match = lookup(name)
    family = match.family
    kind = family.kind if family else str(entry.get("kind") or "unknown")
    params_b = match.params_b
    if family is None and params_b is None and entry.get("params_b") is not None:
        params_b = float(entry["params_b"])
    warnings: list[str] = []
    if family is not None and not match.tag_known:
        warnings.append(f"{raw_name}: tag does not exist in Ollama's library for {family.name}"
                        + (f" (did you mean {match.suggestion}?)" if match.suggestion else "")
                        + "; a pull of this name would fail")
    elif family is None and "/" not in name.split(":", 1)[0] and entry.get("vram_mb") is None:
        warnings.append(f"{raw_name} is not in the built-in table of Ollama library models"
                        + (f" (did you mean {match.suggestion}?)" if match.suggestion else "")
                        + ("; estimated from the parameter count in its tag" if match.params_b else
                           "; estimated from params_b in the catalog" if params_b else
                           "; set vram_mb (or params_b) in the catalog"))

    if entry.get("vram_mb") is not None:
        return VramEstimate(name, int(entry["vram_mb"]), "catalog", params_b, kind,
                            warnings=tuple(warnings))

    context = int(entry.get("context") or DEFAULT_CONTEXT)
    parallel = int(entry.get("parallel") or DEFAULT_PARALLEL)
    kv_type = str(entry.get("kv_cache_type") or "f16")
    if family is not None and match.size_label is not None:
        info = family.sizes[match.size_label]
        default_bits = QUANT_BITS.get(family.quant.lower(), _DEFAULT_BITS)
        if match.quant:
            bits = QUANT_BITS.get(match.quant, default_bits)
        elif match.quant_bits and abs(match.quant_bits - default_bits) > 0.6:
            bits = match.quant_bits  # a "-q8" style hint that differs from the default quantisation
        else:
            bits = default_bits
        weights = round(info.size_mb * bits / default_bits)
        if match.params_b is not None and family.sizes[match.size_label].params_b != match.params_b:
            weights = round(weights * match.params_b / info.params_b)
        if kind == "embedding":
            kv = 0
            overhead = EMBEDDING_OVERHEAD_MB
        else:
            kv = kv_cache_mb(info.layers, info.kv_heads, info.head_dim, min(context, family.context), parallel,
                             kv_type)
            overhead = OVERHEAD_MB
        return VramEstimate(name, weights + kv + overhead, "library", match.params_b, kind, weights, kv, overhead,
                            tuple(warnings))

    if params_b is not None:
        bits = match.quant_bits or _DEFAULT_BITS
        weights = weights_from_params_mb(params_b, bits)
        source = "tag" if match.params_b is not None else "params_b"
        if kind == "embedding":  # embedding models keep no KV cache and run a small graph
            return VramEstimate(name, weights + EMBEDDING_OVERHEAD_MB, source, params_b, kind, weights, 0,
                                EMBEDDING_OVERHEAD_MB, tuple(warnings))
        # Unknown shape: KV cache of a typical GQA model (~0.125 MiB per token per 8B params).
        kv_per_token = max(0.03, 0.125 * (params_b / 8.0) ** 0.5) * KV_BYTES.get(kv_type, 2.0) / 2
        kv = int(kv_per_token * min(context, 131072) * max(parallel, 1))
        return VramEstimate(name, weights + kv + OVERHEAD_MB, source, params_b, kind, weights, kv, OVERHEAD_MB,
                            tuple(warnings))
    if not any("set vram_mb" in w for w in warnings):
        warnings.append(f"{raw_name}: cannot estimate VRAM (unknown model, no parameter count in the tag); "
                        "set vram_mb (or params_b) in the catalog")
    return VramEstimate(name, None, "none", None, kind, warnings=tuple(warnings))
