"""Ollama model names and a built-in table of common Ollama library models.

Pure data and functions, no dependencies: imported by the planner (VRAM estimates) and by the
``ollama_model`` module (name normalisation). Sizes are the download sizes shown by the Ollama
library for the default tag (GB as published, converted to MiB); layer and KV-head counts come
from the models' GGUF metadata. The table covers the common library models; anything else is
estimated from the parameter count in its tag or needs an explicit ``vram_mb`` in the catalog.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass

DEFAULT_TAG = "latest"
_SCHEMES = ("https://", "http://")  # Ollama's own parser drops these, nothing else
_REGISTRY_PREFIXES = ("registry.ollama.ai/", "ollama.com/")
_LIBRARY_PREFIX = "library/"


def _strip_scheme(ref: str) -> str:
    for scheme in _SCHEMES:
        if ref.lower().startswith(scheme):
            return ref[len(scheme):]
    return ref


# Ollama's name grammar (types/model/name.go): [host/][namespace/]model[:tag]. Every part starts
# with a letter, digit or '_' and holds only letters, digits, '_', '-' and '.'; a namespace has
# no '.', a host may carry a ':port'. Lengths: host up to 350 characters, the others up to 80.
MAX_HOST_LENGTH = 350
MAX_PART_LENGTH = 80
_PART_START = frozenset(string.ascii_letters + string.digits + "_")
_PART_CHARS = {
    "host": frozenset(string.ascii_letters + string.digits + "_-.:"),
    "namespace": frozenset(string.ascii_letters + string.digits + "_-"),
    "model": frozenset(string.ascii_letters + string.digits + "_-."),
    "tag": frozenset(string.ascii_letters + string.digits + "_-."),
}
_ALLOWED_TEXT = {
    "host": "letters, digits, '_', '-', '.' and ':port'",
    "namespace": "letters, digits, '_' and '-'",
    "model": "letters, digits, '_', '-' and '.'",
    "tag": "letters, digits, '_', '-' and '.'",
}
_NAME_FORM = "[host/][namespace/]model[:tag]"


def split_model_name(name: str) -> tuple[str, str]:
    """Split an Ollama model reference into (model, tag); the tag defaults to ``latest``.

    The tag is what follows the last ``:`` of the last path segment, so a registry port
    (``host:5000/ns/model``) is not mistaken for a tag.
    """
    ref = _strip_scheme(str(name).strip())
    for prefix in _REGISTRY_PREFIXES:
        if ref.lower().startswith(prefix):
            ref = ref[len(prefix):]
            break
    if ref.lower().startswith(_LIBRARY_PREFIX):
        ref = ref[len(_LIBRARY_PREFIX):]
    head, _sep, last = ref.rpartition("/")
    if ":" in last:
        last, _sep, tag = last.partition(":")
    else:
        tag = ""
    model = f"{head}/{last}" if head else last
    return model, (tag or DEFAULT_TAG)


def normalize_model_name(name: str) -> str:
    """Return THE canonical Ollama name with its tag: ``Llama3`` -> ``llama3:latest``.

    The one normaliser of the collection (plan.json keys, pulls, aliases, the gateway's model names;
    Jinja uses it as the ``pmoves.fleet.ollama_name`` filter). Strips surrounding blanks, an
    ``http(s)://`` scheme, the ``registry.ollama.ai/`` or ``ollama.com/`` host and the ``library/``
    namespace, adds ``:latest`` when no tag is given, and lower-cases the result: Ollama compares
    names case-insensitively (``Name.EqualFold``), stores them under lower-case paths and lists them
    that way in ``/api/tags``; Hugging Face quantisation tags are case-insensitive too. Raises
    ValueError for an empty name.
    """
    model, tag = split_model_name(name)
    if not model:
        raise ValueError(f"empty Ollama model name: {name!r}")
    return f"{model}:{tag}".lower()


def _shown(name: str) -> str:
    text = repr(name)
    return text if len(text) <= 120 else text[:100] + "...'"


def _part_problem(kind: str, part: str) -> str | None:
    if not part:
        return f"its {kind} is empty"
    limit = MAX_HOST_LENGTH if kind == "host" else MAX_PART_LENGTH
    if len(part) > limit:
        return f"its {kind} is longer than {limit} characters"
    if ".." in part:
        return f"its {kind} {part!r} contains '..'"
    bad = next((char for char in part if char not in _PART_CHARS[kind]), None)
    if bad is not None:
        return f"its {kind} {part!r} contains {bad!r} (allowed: {_ALLOWED_TEXT[kind]})"
    if part[0] not in _PART_START:
        return f"its {kind} {part!r} must start with a letter, a digit or '_'"
    return None


def validate_model_name(name: object) -> str | None:
    """Why ``name`` is not a valid Ollama model name, or None when it is. Pure, never raises.

    The grammar is Ollama's own (``types/model/name.go``): ``[host/][namespace/]model[:tag]``;
    each part starts with a letter, digit or ``_`` and holds only ``[A-Za-z0-9_.-]`` (a namespace
    no ``.``, a host also ``:port``); no ``..``; host up to 350 characters, other parts up to 80.
    Surrounding blanks are ignored, as ``normalize_model_name`` strips them; whitespace or control
    characters inside the name are not. The ``registry.ollama.ai/`` and ``ollama.com/`` prefixes
    the normaliser accepts are accepted here too. A name that passes is safe to turn into a path
    under a model store (no ``/`` inside a part, no ``..``, no NUL).
    """
    if not isinstance(name, str):
        return f"an Ollama model name must be a string, not {type(name).__name__}"
    ref = name.strip()
    if not ref:
        return "the Ollama model name is empty"
    shown = _shown(name)
    odd = next((char for char in ref if char.isspace() or not char.isprintable()), None)
    if odd is not None:
        return (f"invalid Ollama model name {shown}: it contains whitespace or a control character ({odd!r}); "
                f"the form is {_NAME_FORM}")
    if ".." in ref:
        return f"invalid Ollama model name {shown}: it contains '..'; the form is {_NAME_FORM}"
    ref = _strip_scheme(ref)  # Ollama accepts http(s):// in front of a name, as the normaliser does
    if "://" in ref:
        return f"invalid Ollama model name {shown}: write it without a URL scheme, as {_NAME_FORM}"
    lowered = ref.lower()
    for prefix in _REGISTRY_PREFIXES:
        if lowered.startswith(prefix) and len(ref) > len(prefix):
            ref = ref[len(prefix):]
            break
    head, slash, last = ref.rpartition("/")
    model, colon, tag = last.partition(":")
    prefix_parts = head.split("/") if slash else []
    if len(prefix_parts) > 2:
        return f"invalid Ollama model name {shown}: too many '/' parts; the form is {_NAME_FORM}"
    checks = [("model", model)]
    if len(prefix_parts) == 2:
        checks += [("host", prefix_parts[0]), ("namespace", prefix_parts[1])]
    elif prefix_parts:
        checks.append(("namespace", prefix_parts[0]))
    if colon:
        checks.append(("tag", tag))
    for kind, part in checks:
        problem = _part_problem(kind, part)
        if problem:
            return f"invalid Ollama model name {shown}: {problem}; the form is {_NAME_FORM}"
    return None


def require_model_name(name: str) -> str:
    """The normalised name (``normalize_model_name``) of a valid name; ValueError saying why otherwise."""
    problem = validate_model_name(name)
    if problem:
        raise ValueError(problem)
    return normalize_model_name(name)


# Effective bits per weight of GGUF quantisations (file size / parameters), used to scale a
# known default-tag size to another quantisation and to estimate unknown models.
QUANT_BITS: dict[str, float] = {
    "q2_k": 3.0, "q3_k_s": 3.5, "q3_k_m": 3.9, "q3_k_l": 4.3,
    "q4_0": 4.55, "q4_1": 5.0, "q4_k_s": 4.6, "q4_k_m": 4.85,
    "q5_0": 5.5, "q5_1": 6.0, "q5_k_s": 5.5, "q5_k_m": 5.7,
    "q6_k": 6.6, "q8_0": 8.5, "fp16": 16.0, "f16": 16.0, "bf16": 16.0, "fp32": 32.0, "f32": 32.0,
    "mxfp4": 4.25,
}
_QUANT_RE = re.compile(r"^(q[2-8]_(?:0|1|k(?:_[sml])?)|iq[1-4]_\w+|fp16|f16|bf16|fp32|f32|mxfp4)$", re.I)
# Loose hints users write ("-q4", "-q8", "-int4") that are not Ollama tags but tell the bit width.
_QUANT_HINT_RE = re.compile(r"(?:^|[-_])(?:q|int)([2-8])(?:$|[-_])", re.I)
_SIZE_RE = re.compile(r"^(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])$", re.I)
_SIZE_ANYWHERE_RE = re.compile(r"(?:^|[-_:])(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?=$|[-_])", re.I)
# Variant words that appear in real library tags between the size and the quantisation.
_VARIANTS = frozenset({
    "instruct", "text", "chat", "base", "code", "vision", "it", "pt", "v1.5", "v2", "v0.1", "v0.2",
    "v0.3", "fp16", "python", "lite", "qwen", "llama", "distill", "thinking", "a3b", "a22b", "e2b",
    "e4b", "mini", "medium", "large", "small", "latest", "2407", "2409", "2501", "2503", "2506",
    "0528", "v1", "v1.6", "mistral", "vicuna", "128k", "4k",
})

GB_TO_MB = 1e9 / 2**20  # the library publishes decimal GB; the planner counts MiB like nvidia-smi


@dataclass(frozen=True)
class TagInfo:
    """One size of a library model at its default quantisation."""

    params_b: float
    size_mb: int
    layers: int
    kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class FamilyInfo:
    """A library model (``qwen2.5``) with its sizes, default tag and kind."""

    name: str
    kind: str  # chat | code | vision | reasoning | embedding
    quant: str  # default quantisation of the plain size tags
    context: int  # model's maximum context length
    latest: str  # size label that ``latest`` points at
    sizes: dict[str, TagInfo]
    aliases: dict[str, str]  # named tags ("mini") -> size label


def _family(name: str, kind: str, quant: str, context: int, latest: str,
            sizes: dict[str, tuple[float, float, int, int, int]],
            aliases: dict[str, str] | None = None) -> FamilyInfo:
    return FamilyInfo(
        name=name, kind=kind, quant=quant, context=context, latest=latest,
        sizes={label: TagInfo(params_b=p, size_mb=round(gb * GB_TO_MB), layers=layers, kv_heads=kv, head_dim=hd)
               for label, (p, gb, layers, kv, hd) in sizes.items()},
        aliases=dict(aliases or {}),
    )


# size label: (parameters in billions, download GB, layers, KV heads, head dimension)
_QWEN25 = {"0.5b": (0.5, 0.398, 24, 2, 64), "1.5b": (1.5, 0.986, 28, 2, 128), "3b": (3.1, 1.9, 36, 2, 128),
           "7b": (7.6, 4.7, 28, 4, 128), "14b": (14.8, 9.0, 48, 8, 128), "32b": (32.8, 20.0, 64, 8, 128),
           "72b": (72.7, 47.0, 80, 8, 128)}
_FAMILIES: tuple[FamilyInfo, ...] = (
    _family("llama3.2", "chat", "q4_K_M", 131072, "3b", {"1b": (1.2, 1.3, 16, 8, 64), "3b": (3.2, 2.0, 28, 8, 128)}),
    _family("llama3.1", "chat", "q4_K_M", 131072, "8b",
            {"8b": (8.0, 4.9, 32, 8, 128), "70b": (70.6, 43.0, 80, 8, 128), "405b": (405.0, 243.0, 126, 8, 128)}),
    _family("llama3", "chat", "q4_0", 8192, "8b", {"8b": (8.0, 4.7, 32, 8, 128), "70b": (70.6, 40.0, 80, 8, 128)}),
    _family("llama3.3", "chat", "q4_K_M", 131072, "70b", {"70b": (70.6, 43.0, 80, 8, 128)}),
    _family("llama3.2-vision", "vision", "q4_K_M", 131072, "11b",
            {"11b": (10.7, 7.8, 40, 8, 128), "90b": (87.7, 55.0, 100, 8, 128)}),
    _family("llama4", "vision", "q4_K_M", 1048576, "16x17b",
            {"16x17b": (109.0, 67.0, 48, 8, 128), "128x17b": (402.0, 245.0, 48, 8, 128)}),
    _family("llama2", "chat", "q4_0", 4096, "7b",
            {"7b": (6.7, 3.8, 32, 32, 128), "13b": (13.0, 7.4, 40, 40, 128), "70b": (69.0, 39.0, 80, 8, 128)}),
    _family("codellama", "code", "q4_0", 16384, "7b",
            {"7b": (6.7, 3.8, 32, 32, 128), "13b": (13.0, 7.4, 40, 40, 128), "34b": (34.0, 19.0, 48, 8, 128),
             "70b": (69.0, 39.0, 80, 8, 128)}),
    _family("qwen2.5", "chat", "q4_K_M", 32768, "7b", _QWEN25),
    _family("qwen2.5-coder", "code", "q4_K_M", 32768, "7b", {k: v for k, v in _QWEN25.items() if k != "72b"}),
    _family("qwen2.5vl", "vision", "q4_K_M", 128000, "7b",
            {"3b": (3.8, 3.2, 36, 2, 128), "7b": (8.3, 6.0, 28, 4, 128), "32b": (33.5, 21.0, 64, 8, 128),
             "72b": (73.4, 49.0, 80, 8, 128)}),
    _family("qwen2", "chat", "q4_0", 32768, "7b",
            {"0.5b": (0.5, 0.352, 24, 2, 64), "1.5b": (1.5, 0.935, 28, 2, 128), "7b": (7.6, 4.4, 28, 4, 128),
             "72b": (72.7, 41.0, 80, 8, 128)}),
    _family("qwen3", "reasoning", "q4_K_M", 40960, "8b",
            {"0.6b": (0.6, 0.523, 28, 8, 128), "1.7b": (1.7, 1.4, 28, 8, 128), "4b": (4.0, 2.5, 36, 8, 128),
             "8b": (8.2, 5.2, 36, 8, 128), "14b": (14.8, 9.3, 40, 8, 128), "30b": (30.5, 19.0, 48, 4, 128),
             "32b": (32.8, 20.0, 64, 8, 128), "235b": (235.0, 142.0, 94, 4, 128)}),
    _family("qwen3-coder", "code", "q4_K_M", 262144, "30b",
            {"30b": (30.5, 19.0, 48, 4, 128), "480b": (480.0, 290.0, 62, 8, 128)}),
    _family("qwq", "reasoning", "q4_K_M", 40960, "32b", {"32b": (32.8, 20.0, 64, 8, 128)}),
    _family("deepseek-r1", "reasoning", "q4_K_M", 131072, "8b",
            {"1.5b": (1.8, 1.1, 28, 2, 128), "7b": (7.6, 4.7, 28, 4, 128), "8b": (8.2, 5.2, 36, 8, 128),
             "14b": (14.8, 9.0, 48, 8, 128), "32b": (32.8, 20.0, 64, 8, 128), "70b": (70.6, 43.0, 80, 8, 128),
             "671b": (671.0, 404.0, 61, 128, 128)}),
    _family("deepseek-v3", "chat", "q4_K_M", 163840, "671b", {"671b": (671.0, 404.0, 61, 128, 128)}),
    _family("deepseek-coder-v2", "code", "q4_0", 163840, "16b",
            {"16b": (15.7, 8.9, 27, 16, 128), "236b": (236.0, 133.0, 60, 128, 128)}),
    _family("deepseek-coder", "code", "q4_0", 16384, "6.7b",
            {"1.3b": (1.3, 0.776, 24, 16, 128), "6.7b": (6.7, 3.8, 32, 32, 128), "33b": (33.0, 19.0, 62, 8, 128)}),
    _family("gemma", "chat", "q4_0", 8192, "7b", {"2b": (2.5, 1.7, 18, 1, 256), "7b": (8.5, 5.0, 28, 16, 256)}),
    _family("gemma2", "chat", "q4_0", 8192, "9b",
            {"2b": (2.6, 1.6, 26, 4, 256), "9b": (9.2, 5.4, 42, 8, 256), "27b": (27.2, 16.0, 46, 16, 128)}),
    _family("gemma3", "vision", "q4_K_M", 131072, "4b",
            {"270m": (0.27, 0.292, 18, 1, 256), "1b": (1.0, 0.815, 26, 1, 256), "4b": (4.3, 3.3, 34, 4, 256),
             "12b": (12.2, 8.1, 48, 8, 256), "27b": (27.4, 17.0, 62, 16, 128)}),
    _family("gemma3n", "chat", "q4_K_M", 32768, "e4b", {"e2b": (5.4, 5.6, 30, 2, 256), "e4b": (6.9, 7.5, 35, 2, 256)}),
    _family("phi", "chat", "q4_0", 2048, "2.7b", {"2.7b": (2.7, 1.6, 32, 32, 80)}),
    _family("phi3", "chat", "q4_0", 131072, "3.8b", {"3.8b": (3.8, 2.2, 32, 32, 96), "14b": (14.0, 7.9, 40, 10, 128)},
            {"mini": "3.8b", "medium": "14b"}),
    _family("phi3.5", "chat", "q4_0", 131072, "3.8b", {"3.8b": (3.8, 2.2, 32, 32, 96)}),
    _family("phi4", "chat", "q4_K_M", 16384, "14b", {"14b": (14.7, 9.1, 40, 10, 128)}),
    _family("phi4-mini", "chat", "q4_K_M", 131072, "3.8b", {"3.8b": (3.8, 2.5, 32, 8, 128)}),
    _family("phi4-reasoning", "reasoning", "q4_K_M", 32768, "14b", {"14b": (14.7, 11.0, 40, 10, 128)}),
    _family("mistral", "chat", "q4_K_M", 32768, "7b", {"7b": (7.2, 4.4, 32, 8, 128)}),
    _family("mistral-nemo", "chat", "q4_0", 1024000, "12b", {"12b": (12.2, 7.1, 40, 8, 128)}),
    _family("mistral-small", "chat", "q4_K_M", 131072, "24b",
            {"22b": (22.2, 13.0, 56, 8, 128), "24b": (23.6, 14.0, 40, 8, 128)}),
    _family("mistral-large", "chat", "q4_K_M", 131072, "123b", {"123b": (123.0, 73.0, 88, 8, 128)}),
    _family("mixtral", "chat", "q4_0", 32768, "8x7b",
            {"8x7b": (46.7, 26.0, 32, 8, 128), "8x22b": (140.6, 80.0, 56, 8, 128)}),
    _family("codestral", "code", "q4_0", 32768, "22b", {"22b": (22.2, 13.0, 56, 8, 128)}),
    _family("devstral", "code", "q4_K_M", 131072, "24b", {"24b": (23.6, 14.0, 40, 8, 128)}),
    _family("llava", "vision", "q4_0", 4096, "7b",
            {"7b": (7.2, 4.7, 32, 8, 128), "13b": (13.0, 8.0, 40, 40, 128), "34b": (34.4, 20.0, 60, 8, 128)}),
    _family("llava-llama3", "vision", "q4_K_M", 8192, "8b", {"8b": (8.0, 5.5, 32, 8, 128)}),
    _family("bakllava", "vision", "q4_0", 32768, "7b", {"7b": (7.2, 4.7, 32, 8, 128)}),
    _family("minicpm-v", "vision", "q4_0", 32768, "8b", {"8b": (7.6, 5.5, 28, 4, 128)}),
    _family("moondream", "vision", "q4_0", 2048, "1.8b", {"1.8b": (1.4, 1.7, 24, 32, 64)}),
    _family("tinyllama", "chat", "q4_0", 2048, "1.1b", {"1.1b": (1.1, 0.638, 22, 4, 64)}),
    _family("smollm2", "chat", "q8_0", 8192, "1.7b",
            {"135m": (0.135, 0.271, 30, 3, 64), "360m": (0.36, 0.726, 32, 5, 64), "1.7b": (1.7, 1.8, 24, 32, 64)}),
    _family("starcoder2", "code", "q4_0", 16384, "3b",
            {"3b": (3.0, 1.7, 30, 2, 128), "7b": (7.2, 4.0, 32, 4, 128), "15b": (16.0, 9.1, 40, 4, 128)}),
    _family("granite3.3", "chat", "q4_K_M", 131072, "8b", {"2b": (2.5, 1.5, 40, 8, 64), "8b": (8.2, 4.9, 40, 8, 128)}),
    _family("granite-code", "code", "q4_0", 8192, "3b",
            {"3b": (3.5, 2.0, 32, 32, 80), "8b": (8.1, 4.6, 36, 8, 128), "20b": (20.1, 12.0, 52, 1, 128),
             "34b": (34.0, 19.0, 88, 1, 128)}),
    _family("command-r", "chat", "q4_K_M", 131072, "35b", {"35b": (32.3, 19.0, 40, 8, 128)}),
    _family("gpt-oss", "reasoning", "mxfp4", 131072, "20b",
            {"20b": (20.9, 14.0, 24, 8, 64), "120b": (116.8, 65.0, 36, 8, 64)}),
    # Embedding models: no KV cache to speak of.
    _family("nomic-embed-text", "embedding", "f16", 2048, "v1.5", {"v1.5": (0.137, 0.274, 12, 12, 64)}),
    _family("mxbai-embed-large", "embedding", "f16", 512, "335m", {"335m": (0.335, 0.670, 24, 16, 64)}),
    _family("bge-m3", "embedding", "f16", 8192, "567m", {"567m": (0.567, 1.2, 24, 16, 64)}),
    _family("bge-large", "embedding", "f16", 512, "335m", {"335m": (0.335, 0.671, 24, 16, 64)}),
    _family("snowflake-arctic-embed", "embedding", "f16", 512, "335m",
            {"22m": (0.022, 0.046, 6, 12, 32), "33m": (0.033, 0.067, 12, 12, 32), "110m": (0.11, 0.219, 12, 12, 64),
             "137m": (0.137, 0.274, 12, 12, 64), "335m": (0.335, 0.669, 24, 16, 64)}),
    _family("snowflake-arctic-embed2", "embedding", "f16", 8192, "568m", {"568m": (0.568, 1.2, 24, 16, 64)}),
    _family("all-minilm", "embedding", "f16", 512, "22m", {"22m": (0.022, 0.046, 6, 12, 32),
                                                           "33m": (0.033, 0.067, 12, 12, 32)}),
    _family("granite-embedding", "embedding", "f16", 512, "278m",
            {"30m": (0.03, 0.063, 6, 12, 32), "278m": (0.278, 0.563, 12, 12, 64)}),
    _family("embeddinggemma", "embedding", "bf16", 2048, "300m", {"300m": (0.3, 0.622, 24, 3, 256)}),
    _family("qwen3-embedding", "embedding", "q4_K_M", 32768, "8b",
            {"0.6b": (0.6, 0.639, 28, 8, 128), "4b": (4.0, 2.5, 36, 8, 128), "8b": (7.6, 4.7, 36, 8, 128)}),
)
LIBRARY: dict[str, FamilyInfo] = {family.name: family for family in _FAMILIES}

# Artefacts people list next to Ollama models that Ollama does not serve: (prefix, what it is).
NOT_OLLAMA: tuple[tuple[str, str], ...] = (
    ("stable-diffusion", "image generation: run it as a service (e.g. ComfyUI)"),
    ("sdxl", "image generation: run it as a service (e.g. ComfyUI)"),
    ("sd3", "image generation: run it as a service (e.g. ComfyUI)"),
    ("flux", "image generation: run it as a service (e.g. ComfyUI)"),
    ("whisper", "speech-to-text: run it as a service (e.g. faster-whisper)"),
    ("faster-whisper", "speech-to-text: run it as a service"),
    ("kokoro", "text-to-speech: run it as a service"),
    ("bark", "text-to-speech: run it as a service"),
    ("yolo", "object detection: run it as a service"),
    ("comfyui", "image generation UI: run it as a service"),
)


@dataclass(frozen=True)
class LibraryMatch:
    """What the built-in table says about one normalised model name."""

    name: str  # normalised name
    family: FamilyInfo | None
    size_label: str | None  # resolved size of a known family
    quant: str | None  # real quantisation named in the tag (lower case), None for the default
    tag_known: bool  # the tag has the shape of a real library tag of this family
    params_b: float | None  # from the table or from the tag
    quant_bits: float | None  # from the tag (real quant or a "-q4" hint)
    suggestion: str | None  # a close real name, for warnings


def not_ollama_reason(name: str) -> str | None:
    """Why ``name`` is not an Ollama library model (image generation, speech...), or None."""
    model = split_model_name(name)[0]
    base = model.rsplit("/", 1)[-1].lower()
    for prefix, reason in NOT_OLLAMA:
        if base == prefix or base.startswith(prefix + "-") or base.startswith(prefix + "_") or (
                base.startswith(prefix) and base[len(prefix):].replace(".", "").isdigit()):
            return reason
    return None


def params_from_tag(tag: str) -> float | None:
    """Parameter count in billions named in a tag (``32b``, ``8x22b``, ``335m``), else None."""
    match = _SIZE_ANYWHERE_RE.search(tag)
    if not match:
        return None
    experts, number, unit = match.groups()
    value = float(number) * (int(experts) if experts else 1)
    return value / 1000.0 if unit.lower() == "m" else value


def quant_bits_from_tag(tag: str) -> float | None:
    """Bits per weight for a quantisation named in a tag (real ``q4_K_M`` or a ``-q4`` hint)."""
    for part in tag.split("-"):
        if _QUANT_RE.match(part):
            return QUANT_BITS.get(part.lower(), 4.85)
    hint = _QUANT_HINT_RE.search(tag)
    if hint:
        return {2: 3.0, 3: 3.9, 4: 4.85, 5: 5.7, 6: 6.6, 8: 8.5}.get(int(hint.group(1)), 4.85)
    return None


def lookup(name: str) -> LibraryMatch:
    """Match a model name against the built-in library table."""
    normalised = normalize_model_name(name)
    model, tag = split_model_name(normalised)
    family = LIBRARY.get(model.lower())
    tag_params = params_from_tag(tag)
    tag_bits = quant_bits_from_tag(tag)
    if family is None:
        close = difflib.get_close_matches(model.lower(), list(LIBRARY), n=1, cutoff=0.75)
        suggestion = f"{close[0]}:{tag}" if close else None
        return LibraryMatch(normalised, None, None, None, False, tag_params, tag_bits, suggestion)

    parts = tag.split("-")
    head = parts[0].lower()
    size_label: str | None = None
    if head == DEFAULT_TAG and len(parts) == 1:
        size_label = family.latest
    elif head in family.sizes:
        size_label = head
    elif head in family.aliases:
        size_label = family.aliases[head]
    rest = parts[1:]
    quant: str | None = None
    tag_known = size_label is not None
    for part in rest:
        if _QUANT_RE.match(part):
            quant = part.lower()
        elif part.lower() not in _VARIANTS:
            tag_known = False
    approximate = False
    if size_label is None and tag_params is not None:
        # "32b" of a family that has no 32b: borrow the layer shape of the closest size.
        size_label = min(family.sizes, key=lambda label: abs(family.sizes[label].params_b - tag_params))
        approximate = True
    suggestion = None
    if not tag_known:
        label = size_label or family.latest
        hint_bits = tag_bits
        suffix = ""
        if hint_bits is not None and abs(hint_bits - QUANT_BITS.get(family.quant.lower(), 4.85)) > 0.6:
            suffix = "-" + min(("q4_K_M", "q8_0", "q5_K_M", "q6_K", "q3_K_M", "q2_K"),
                               key=lambda q: abs(QUANT_BITS[q.lower()] - hint_bits))
        suggestion = f"{family.name}:{label}{suffix}"
    params = family.sizes[size_label].params_b if size_label and not approximate else tag_params
    return LibraryMatch(normalised, family, size_label, quant, tag_known, params,
                        tag_bits, suggestion)
