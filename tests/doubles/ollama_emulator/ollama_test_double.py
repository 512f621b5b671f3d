"""TEST DOUBLE of the Ollama server and CLI -- not Ollama, never a product default.

A single-file, standard-library-only emulator of the Ollama HTTP API, written so the
pmoves.fleet role, module, gateway and lab can be tested where the real Ollama cannot be
downloaded. It keeps what clients rely on:

* the same endpoints, JSON shapes, NDJSON streams and error texts as Ollama
  (``GET /``, ``/api/version``, ``/api/tags``, ``/api/ps``, ``POST /api/show``, ``/api/pull``,
  ``DELETE /api/delete``, ``POST /api/copy``, ``/api/generate``, ``/api/chat``, ``/api/embed``,
  ``/api/embeddings``, ``HEAD/POST /api/blobs/<digest>``, OpenAI-compatible ``/v1/...``);
* the on-disk layout under OLLAMA_MODELS:
  ``manifests/registry.ollama.ai/library/<name>/<tag>`` and ``blobs/sha256-<hex>``,
  blobs verified against their names, ``-partial`` files resumed by a later pull;
* the CLI verbs a role uses: ``serve``, ``--version``/``-v``, ``list``, ``pull``, ``rm``, ``ps``.

What is NOT real (documented in docs/ollama.md):

* "the registry" is a built-in table of library models (extendable with the JSON file named by
  OLLAMA_TEST_DOUBLE_REGISTRY). Blobs are generated deterministically and are SMALL: about one
  byte on disk per megabyte of the real model (llama3:8b, 4.7 GB, becomes a 4.7 KB blob). Every
  size the API reports is the true size of what is on disk, so disk checks and blob copies stay
  honest; ``details.parameter_size``/``quantization_level`` carry the real model's values.
* generation returns deterministic text naming the serving node
  (OLLAMA_TEST_DOUBLE_NODE, else the host name) so failover tests can tell nodes apart;
  embeddings are deterministic unit vectors.

Test knobs (environment of ``serve``):

* OLLAMA_TEST_DOUBLE_REGISTRY  JSON file adding/overriding registry models, re-read on every pull:
  ``{"models": {"name": {"family": "llama", "tags": {"tag": {"size_mb": 4700, "revision": 2}}}}}``
  (``"alias": "8b"`` makes a tag share another tag's blobs, like ``latest``).
* OLLAMA_TEST_DOUBLE_FAIL_PULL  ``name:tag=N[,...]`` -- the next N pulls of that model die midway
  (half a blob written, then ``{"error": "max retries exceeded: unexpected EOF"}``); append
  ``@drop`` to the count to cut the connection instead. Also ``POST /_test_double/fail_pull``.
* OLLAMA_TEST_DOUBLE_OFFLINE=1  every registry access fails like a host without internet.
* OLLAMA_TEST_DOUBLE_PULL_DELAY seconds to sleep between progress lines (slow pulls).
* OLLAMA_TEST_DOUBLE_TOKEN_DELAY seconds per generated piece (slow generation, like a large model): a stream
  sends a piece every that many seconds, a non-streamed answer comes after all of them (``POST
  /_test_double/token_delay`` ``{"seconds": S}`` sets it while serving). ``options.num_predict`` caps the pieces
  (one piece stands for one token), as Ollama caps tokens.
* ``GET /_test_double/stats`` request counts per ``METHOD /path`` (benchmarks, idempotence tests) and
  ``upstream_bytes`` / ``upstream_by_model``: bytes the pulls fetched from the emulated registry;
  ``POST /_test_double/reset_stats``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import select
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TEST_DOUBLE_VERSION = "0.30.10"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
BYTES_PER_REAL_MB = 1  # on-disk scale: one byte per megabyte of the real model
MIN_MODEL_BLOB = 512
PULL_CHUNKS = 4

# --------------------------------------------------------------------------------------------
# The built-in "registry": library models with their real sizes (MB), parameter counts and
# quantisation. "latest" (and any tag listed in "aliases") shares the blobs of its target tag.
# --------------------------------------------------------------------------------------------


def _tags(spec: str) -> dict[str, dict[str, Any]]:
    """``"8b=4700:8.0B,70b=40000:70.6B"`` -> tag table (size in real MB, parameter size)."""
    tags: dict[str, dict[str, Any]] = {}
    for item in spec.split(","):
        tag, rest = item.split("=")
        size_mb, params = rest.split(":")
        tags[tag] = {"size_mb": int(size_mb), "parameter_size": params}
    return tags


BUILTIN_MODELS: dict[str, dict[str, Any]] = {
    "llama3": {"family": "llama", "latest": "8b", "ctx": 8192, "dim": 4096, "tags": _tags("8b=4700:8.0B,70b=40000:70.6B")},
    "llama3.1": {"family": "llama", "latest": "8b", "ctx": 131072, "dim": 4096,
                 "tags": _tags("8b=4900:8.0B,70b=43000:70.6B,405b=243000:405.9B,70b-instruct-q2_k=26000:70.6B")},
    "llama3.2": {"family": "llama", "latest": "3b", "ctx": 131072, "dim": 3072, "tags": _tags("1b=1300:1.2B,3b=2000:3.2B")},
    "llama3.2-vision": {"family": "mllama", "latest": "11b", "ctx": 131072, "dim": 4096, "vision": True,
                        "tags": _tags("11b=7800:10.7B,90b=55000:87.7B")},
    "llama3.3": {"family": "llama", "latest": "70b", "ctx": 131072, "dim": 8192, "tags": _tags("70b=43000:70.6B")},
    "qwen2.5": {"family": "qwen2", "latest": "7b", "ctx": 32768, "dim": 3584,
                "tags": _tags("0.5b=398:494.03M,1.5b=986:1.5B,3b=1900:3.1B,7b=4700:7.6B,14b=9000:14.8B,"
                              "32b=20000:32.8B,72b=47000:72.7B")},
    "qwen2.5-coder": {"family": "qwen2", "latest": "7b", "ctx": 32768, "dim": 3584,
                      "tags": _tags("0.5b=398:494.03M,1.5b=986:1.5B,3b=1900:3.1B,7b=4700:7.6B,14b=9000:14.8B,"
                                    "32b=20000:32.8B")},
    "qwen3": {"family": "qwen3", "latest": "8b", "ctx": 40960, "dim": 4096,
              "tags": _tags("0.6b=523:751.63M,1.7b=1400:2.0B,4b=2500:4.0B,8b=5200:8.2B,14b=9300:14.8B,"
                            "30b=19000:30.5B,32b=20000:32.8B,235b=142000:235.1B")},
    "qwen3-coder": {"family": "qwen3moe", "latest": "30b", "ctx": 262144, "dim": 2048, "tags": _tags("30b=19000:30.5B")},
    "deepseek-r1": {"family": "qwen2", "latest": "8b", "ctx": 131072, "dim": 4096,
                    "tags": _tags("1.5b=1100:1.8B,7b=4700:7.6B,8b=5200:8.2B,14b=9000:14.8B,32b=20000:32.8B,"
                                  "70b=43000:70.6B,671b=404000:671.0B")},
    "deepseek-coder-v2": {"family": "deepseek2", "latest": "16b", "ctx": 163840, "dim": 2048,
                          "tags": _tags("16b=8900:15.7B,236b=133000:235.7B")},
    "gemma2": {"family": "gemma2", "latest": "9b", "ctx": 8192, "dim": 3584, "tags": _tags("2b=1600:2.6B,9b=5400:9.2B,27b=16000:27.2B")},
    "gemma3": {"family": "gemma3", "latest": "4b", "ctx": 131072, "dim": 2560,
               "tags": _tags("1b=815:999.89M,4b=3300:4.3B,12b=8100:12.2B,27b=17000:27.4B")},
    "phi": {"family": "phi2", "latest": "2.7b", "ctx": 2048, "dim": 2560, "tags": _tags("2.7b=1600:3B")},
    "phi3": {"family": "phi3", "latest": "3.8b", "ctx": 131072, "dim": 3072,
             "tags": _tags("3.8b=2200:3.8B,14b=7900:14.0B,mini=2200:3.8B,medium=7900:14.0B")},
    "phi3.5": {"family": "phi3", "latest": "3.8b", "ctx": 131072, "dim": 3072, "tags": _tags("3.8b=2200:3.8B")},
    "phi4": {"family": "phi3", "latest": "14b", "ctx": 16384, "dim": 5120, "tags": _tags("14b=9100:14.7B")},
    "mistral": {"family": "llama", "latest": "7b", "ctx": 32768, "dim": 4096, "tags": _tags("7b=4100:7.2B")},
    "mistral-nemo": {"family": "llama", "latest": "12b", "ctx": 1024000, "dim": 5120, "tags": _tags("12b=7100:12.2B")},
    "mixtral": {"family": "llama", "latest": "8x7b", "ctx": 32768, "dim": 4096, "tags": _tags("8x7b=26000:46.7B,8x22b=80000:140.6B")},
    "codellama": {"family": "llama", "latest": "7b", "ctx": 16384, "dim": 4096,
                  "tags": _tags("7b=3800:7B,13b=7400:13B,34b=19000:34B,70b=39000:69B")},
    "codestral": {"family": "llama", "latest": "22b", "ctx": 32768, "dim": 6144, "tags": _tags("22b=13000:22.2B")},
    "starcoder2": {"family": "starcoder2", "latest": "3b", "ctx": 16384, "dim": 3072, "tags": _tags("3b=1700:3B,7b=4000:7B,15b=9100:16B")},
    "llava": {"family": "llama", "latest": "7b", "ctx": 32768, "dim": 4096, "vision": True,
              "tags": _tags("7b=4700:7B,13b=8000:13B,34b=20000:34B")},
    "tinyllama": {"family": "llama", "latest": "1.1b", "ctx": 2048, "dim": 2048, "tags": _tags("1.1b=638:1B")},
    "smollm2": {"family": "llama", "latest": "1.7b", "ctx": 8192, "dim": 2048,
                "tags": _tags("135m=271:134.52M,360m=726:361.82M,1.7b=1800:1.7B")},
    "nomic-embed-text": {"family": "nomic-bert", "latest": "v1.5", "ctx": 2048, "dim": 768, "embedding": True,
                         "quant": "F16", "tags": _tags("v1.5=274:137M")},
    "mxbai-embed-large": {"family": "bert", "latest": "335m", "ctx": 512, "dim": 1024, "embedding": True,
                          "quant": "F16", "tags": _tags("335m=670:334M")},
    "bge-m3": {"family": "bert", "latest": "567m", "ctx": 8192, "dim": 1024, "embedding": True,
               "quant": "F16", "tags": _tags("567m=1200:566.70M")},
    "granite-embedding": {"family": "bert", "latest": "30m", "ctx": 512, "dim": 384, "embedding": True,
                          "quant": "F16", "tags": _tags("30m=63:30.28M,278m=563:278.26M")},
    "snowflake-arctic-embed": {"family": "bert", "latest": "335m", "ctx": 512, "dim": 1024, "embedding": True,
                               "quant": "F16",
                               "tags": _tags("22m=46:22.57M,33m=67:33.21M,110m=219:108.89M,137m=274:136.73M,"
                                             "335m=669:334.09M")},
    "all-minilm": {"family": "bert", "latest": "22m", "ctx": 256, "dim": 384, "embedding": True, "quant": "F16",
                   "tags": _tags("22m=46:23M,33m=67:33M")},
}

NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
HOST_PART = re.compile(r"^[A-Za-z0-9_.:-]{1,350}$")


# --------------------------------------------------------------------------------------------
# Names and the on-disk store
# --------------------------------------------------------------------------------------------


class ModelName:
    """host/namespace/model:tag with Ollama's defaults and case-insensitive equality."""

    def __init__(self, host: str, namespace: str, model: str, tag: str) -> None:
        self.host, self.namespace, self.model, self.tag = host, namespace, model, tag

    @classmethod
    def parse(cls, raw: str) -> ModelName | None:
        text = (raw or "").strip()
        if "://" in text:
            text = text.split("://", 1)[1]
        if not text or " " in text:
            return None
        tag = DEFAULT_TAG
        last = text.rsplit("/", 1)[-1]
        if ":" in last:
            text, tag = text.rsplit(":", 1)
        parts = text.split("/")
        if len(parts) == 1:
            host, namespace, model = DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0]
        elif len(parts) == 2:
            host, namespace, model = DEFAULT_REGISTRY, parts[0], parts[1]
        elif len(parts) == 3:
            host, namespace, model = parts
        else:
            return None
        if not (NAME_PART.match(model) and NAME_PART.match(namespace) and NAME_PART.match(tag) and HOST_PART.match(host)):
            return None
        return cls(host, namespace, model, tag)

    @property
    def display(self) -> str:
        if self.host == DEFAULT_REGISTRY and self.namespace == DEFAULT_NAMESPACE:
            return f"{self.model}:{self.tag}"
        if self.host == DEFAULT_REGISTRY:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}".lower()


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="microseconds")


def default_models_dir() -> Path:
    configured = os.environ.get("OLLAMA_MODELS", "").strip()
    if configured:
        return Path(configured)
    return Path(os.path.expanduser("~")) / ".ollama" / "models"


class Store:
    """Manifests and blobs under OLLAMA_MODELS, laid out exactly like Ollama's."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifests = root / "manifests"
        self.blobs = root / "blobs"
        self.lock = threading.RLock()

    def ensure(self) -> None:
        self.manifests.mkdir(parents=True, exist_ok=True)
        self.blobs.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")

    def manifest_path(self, name: ModelName) -> Path:
        return self.manifests / name.host / name.namespace / name.model / name.tag

    def resolve(self, name: ModelName) -> ModelName:
        """Reuse the spelling already on disk (Ollama matches names case-insensitively)."""
        for existing in self.all_names():
            if existing.key == name.key:
                return existing
        return name

    def all_names(self) -> list[ModelName]:
        if not self.manifests.is_dir():
            return []
        names = []
        for path in sorted(self.manifests.glob("*/*/*/*")):
            if path.is_file():
                rel = path.relative_to(self.manifests).parts
                names.append(ModelName(rel[0], rel[1], rel[2], rel[3]))
        return names

    def read_manifest(self, name: ModelName) -> tuple[dict[str, Any], bytes] | None:
        path = self.manifest_path(self.resolve(name))
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return json.loads(data), data

    def layers(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(manifest.get("layers", []))
        if manifest.get("config", {}).get("digest"):
            found.append(manifest["config"])
        return found

    def referenced_digests(self) -> set[str]:
        used: set[str] = set()
        for name in self.all_names():
            loaded = self.read_manifest(name)
            if loaded:
                used.update(layer["digest"] for layer in self.layers(loaded[0]))
        return used

    def remove_unused(self, candidates: set[str]) -> None:
        used = self.referenced_digests()
        for digest in candidates - used:
            with contextlib.suppress(FileNotFoundError):
                self.blob_path(digest).unlink()

    def summary(self, name: ModelName) -> dict[str, Any] | None:
        loaded = self.read_manifest(name)
        if loaded is None:
            return None
        manifest, data = loaded
        path = self.manifest_path(self.resolve(name))
        config = self.read_config(manifest)
        modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).astimezone().isoformat()
        return {
            "name": self.resolve(name).display,
            "model": self.resolve(name).display,
            "modified_at": modified,
            "size": sum(int(layer.get("size", 0)) for layer in self.layers(manifest)),
            "digest": hashlib.sha256(data).hexdigest(),
            "details": details_from_config(config),
        }

    def read_config(self, manifest: dict[str, Any]) -> dict[str, Any]:
        digest = manifest.get("config", {}).get("digest")
        if not digest:
            return {}
        try:
            return json.loads(self.blob_path(digest).read_bytes())
        except (OSError, ValueError):
            return {}

    def read_layer_text(self, manifest: dict[str, Any], media_suffix: str) -> str:
        for layer in manifest.get("layers", []):
            if layer.get("mediaType", "").endswith(media_suffix):
                with contextlib.suppress(OSError):
                    return self.blob_path(layer["digest"]).read_text(encoding="utf-8")
        return ""


def details_from_config(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": config.get("model_format", "gguf"),
        "family": config.get("model_family", ""),
        "families": config.get("model_families") or [config.get("model_family", "")],
        "parameter_size": config.get("model_type", ""),
        "quantization_level": config.get("file_type", ""),
    }


# --------------------------------------------------------------------------------------------
# Registry: deterministic blobs
# --------------------------------------------------------------------------------------------


class RegistryError(Exception):
    pass


def deterministic_bytes(seed: str, size: int, header: bytes = b"") -> bytes:
    out = bytearray(header)
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def load_registry() -> dict[str, dict[str, Any]]:
    models = {name: json.loads(json.dumps(entry)) for name, entry in BUILTIN_MODELS.items()}
    path = os.environ.get("OLLAMA_TEST_DOUBLE_REGISTRY", "").strip()
    if path:
        try:
            extra = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"test double registry file {path}: {exc}") from exc
        for name, entry in (extra.get("models") or {}).items():
            base = models.setdefault(name, {"family": entry.get("family", "llama"), "tags": {}})
            tags = entry.get("tags") or {}
            for key, value in entry.items():
                if key != "tags":
                    base[key] = value
            for tag, spec in tags.items():
                base["tags"].setdefault(tag, {}).update(spec)
    return models


def registry_manifest(name: ModelName) -> tuple[bytes, dict[str, bytes]]:
    """Return (manifest bytes, {digest: blob bytes}) for a library model, or raise."""
    if os.environ.get("OLLAMA_TEST_DOUBLE_OFFLINE", "") not in ("", "0"):
        url = f"https://{name.host}/v2/{name.namespace}/{name.model}/manifests/{name.tag}"
        raise RegistryError(f'Get "{url}": dial tcp: lookup {name.host}: no such host')
    if name.host.lower() != DEFAULT_REGISTRY or name.namespace.lower() != DEFAULT_NAMESPACE:
        raise RegistryError("file does not exist")
    models = load_registry()
    entry = models.get(name.model.lower())
    if entry is None:
        raise RegistryError("file does not exist")
    tag = name.tag.lower()
    tags = entry.get("tags", {})
    variant = tag
    if tag == DEFAULT_TAG and DEFAULT_TAG not in tags:
        variant = entry.get("latest") or next(iter(tags), "")
    spec = tags.get(variant)
    if spec is None:
        raise RegistryError("file does not exist")
    if spec.get("alias"):
        variant = spec["alias"]
        spec = {**tags.get(variant, {}), **{k: v for k, v in spec.items() if k != "alias"}}
    revision = spec.get("revision", entry.get("revision", 1))
    seed = f"{name.model.lower()}:{variant}:r{revision}"
    size_mb = int(spec.get("size_mb", 1000))
    model_size = max(MIN_MODEL_BLOB, size_mb * BYTES_PER_REAL_MB)
    family = entry.get("family", "llama")
    quant = spec.get("quantization", entry.get("quant", "Q4_K_M"))
    blobs: dict[str, bytes] = {}

    def add(data: bytes, media: str) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media, "digest": digest, "size": len(data)}

    model_blob = deterministic_bytes(seed, model_size, header=b"GGUF\x03\x00\x00\x00OLLAMA-TEST-DOUBLE\x00")
    layers = [add(model_blob, "application/vnd.ollama.image.model")]
    if not entry.get("embedding"):
        template = f"{{{{ if .System }}}}<|system|>{{{{ .System }}}}{{{{ end }}}}<|user|>{{{{ .Prompt }}}}<|{family}|>"
        layers.append(add(template.encode(), "application/vnd.ollama.image.template"))
    layers.append(add(f"Test-double license text for {name.model} (not the real license).".encode(),
                      "application/vnd.ollama.image.license"))
    params = {"stop": ["<|user|>"]} if not entry.get("embedding") else {"num_ctx": entry.get("ctx", 2048)}
    layers.append(add(json.dumps(params).encode(), "application/vnd.ollama.image.params"))
    config = {
        "model_format": "gguf",
        "model_family": family,
        "model_families": [family],
        "model_type": spec.get("parameter_size", ""),
        "file_type": quant,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        "test_double": {"context_length": entry.get("ctx", 4096), "embedding_length": entry.get("dim", 4096),
                        "embedding": bool(entry.get("embedding")), "vision": bool(entry.get("vision"))},
    }
    config_layer = add(json.dumps(config, separators=(",", ":"), sort_keys=True).encode(),
                       "application/vnd.docker.container.image.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": config_layer,
        "layers": layers,
    }
    return json.dumps(manifest, separators=(",", ":")).encode(), blobs


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class PullAborted(Exception):
    pass


class Emulator:
    def __init__(self, store: Store, node: str, version: str) -> None:
        self.store = store
        self.node = node
        self.version = version
        self.stats: Counter[str] = Counter()
        self.stats_lock = threading.Lock()
        self.upstream: Counter[str] = Counter()  # bytes each pull fetched from the (emulated) registry, per model
        self.fail_pulls: dict[str, list[Any]] = parse_fail_spec(os.environ.get("OLLAMA_TEST_DOUBLE_FAIL_PULL", ""))
        self.loaded: dict[str, dict[str, Any]] = {}
        self.pull_locks: dict[str, threading.Lock] = {}
        self.delay = float(os.environ.get("OLLAMA_TEST_DOUBLE_PULL_DELAY", "0") or 0)
        self.token_delay = float(os.environ.get("OLLAMA_TEST_DOUBLE_TOKEN_DELAY", "0") or 0)

    def count(self, key: str) -> None:
        with self.stats_lock:
            self.stats[key] += 1

    def fetched_upstream(self, name: ModelName, size: int) -> None:
        with self.stats_lock:
            self.upstream[name.display] += size

    def take_failure(self, name: ModelName) -> str | None:
        with self.stats_lock:
            for key in (name.display.lower(), name.key):
                entry = self.fail_pulls.get(key)
                if entry and entry[0] > 0:
                    entry[0] -= 1
                    return entry[1]
        return None

    def lock_for(self, name: ModelName) -> threading.Lock:
        with self.stats_lock:
            return self.pull_locks.setdefault(name.key, threading.Lock())


def parse_fail_spec(spec: str) -> dict[str, list[Any]]:
    table: dict[str, list[Any]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name_text, _sep, count_text = item.partition("=")
        mode = "error"
        if "@" in count_text:
            count_text, mode = count_text.split("@", 1)
        parsed = ModelName.parse(name_text)
        if parsed:
            table[parsed.display.lower()] = [int(count_text or 1), mode]
    return table


def pull_model(emu: Emulator, raw_name: str, emit) -> None:
    """Pull like Ollama: emit progress dicts; raise RegistryError/PullAborted on failure."""
    name = ModelName.parse(raw_name)
    if name is None:
        raise ValueError("invalid model name")
    store = emu.store
    store.ensure()
    name = store.resolve(name)
    with emu.lock_for(name):
        old = store.read_manifest(name)
        old_digests = {layer["digest"] for layer in store.layers(old[0])} if old else set()
        emit({"status": "pulling manifest"})
        try:
            manifest_bytes, blobs = registry_manifest(name)
        except RegistryError as exc:
            raise RegistryError(f"pull model manifest: {exc}") from exc
        manifest = json.loads(manifest_bytes)
        failure = emu.take_failure(name)
        fresh: list[str] = []
        for layer in store.layers(manifest):
            digest, total = layer["digest"], int(layer["size"])
            final = store.blob_path(digest)
            status = f"pulling {digest[7:19]}"
            if final.exists() and final.stat().st_size == total:
                emit({"status": status, "digest": digest, "total": total, "completed": total})
                continue
            data = blobs[digest]
            partial = final.with_name(final.name + "-partial")
            done = partial.stat().st_size if partial.exists() else 0
            if done > total:
                partial.unlink()
                done = 0
            emit({"status": status, "digest": digest, "total": total, **({"completed": done} if done else {})})
            step = max(1, math.ceil(total / PULL_CHUNKS))
            with partial.open("ab") as handle:
                while done < total:
                    if failure and layer is manifest["layers"][0] and done >= total // 2:
                        handle.flush()
                        if failure == "drop":
                            raise PullAborted("drop")
                        raise PullAborted("max retries exceeded: unexpected EOF")
                    upto = min(total, done + step)
                    if failure and layer is manifest["layers"][0]:
                        upto = min(upto, max(done + 1, total // 2))
                    handle.write(data[done:upto])
                    emu.fetched_upstream(name, upto - done)
                    done = upto
                    if emu.delay:
                        time.sleep(emu.delay)
                    emit({"status": status, "digest": digest, "total": total, "completed": done})
            fresh.append(digest)
        emit({"status": "verifying sha256 digest"})
        for digest in fresh:
            partial = store.blob_path(digest).with_name(store.blob_path(digest).name + "-partial")
            if "sha256:" + hashlib.sha256(partial.read_bytes()).hexdigest() != digest:
                partial.unlink()
                raise PullAborted(f"digest mismatch, file must be downloaded again: want {digest}")
            os.replace(partial, store.blob_path(digest))
        emit({"status": "writing manifest"})
        path = store.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(manifest_bytes)
        os.replace(tmp, path)
        unused = old_digests - {layer["digest"] for layer in store.layers(manifest)}
        if unused:
            emit({"status": "removing unused layers"})
            store.remove_unused(unused)
        emit({"status": "success"})


def dumps(payload: Any) -> bytes:
    """Compact JSON like Go's encoding/json."""
    return json.dumps(payload, separators=(",", ":")).encode()


def human_size(size: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


def deterministic_vector(model: str, text: str, dim: int, normalise: bool = True) -> list[float]:
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        digest = hashlib.sha256(f"{model}\x00{text}\x00{counter}".encode()).digest()
        values.extend((byte - 127.5) / 127.5 for byte in digest)
        counter += 1
    values = values[:dim]
    if normalise:
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        values = [v / norm for v in values]
    return [round(v, 6) for v in values]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-test-double"
    emu: Emulator  # set on the subclass built by make_server

    # ---- plumbing -------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("OLLAMA_DEBUG"):
            sys.stderr.write(f"[GIN] {self.command} {self.path} {format % args}\n")

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def json_body(self) -> dict[str, Any] | None:
        raw = self.read_body()
        if not raw.strip():
            self.send_json(400, {"error": "missing request body"})
            return None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            self.send_json(400, {"error": f"invalid character in request body: {exc}"})
            return None
        if not isinstance(body, dict):
            self.send_json(400, {"error": "json: cannot unmarshal into Go value of type api.Request"})
            return None
        return body

    def send_json(self, status: int, payload: Any, content_type: str = "application/json; charset=utf-8") -> None:
        data = dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_empty(self, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def start_stream(self, content_type: str = "application/x-ndjson") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def client_gone(self, wait: float = 0.0) -> bool:
        """True when the client closed its side (Ollama cancels a pull whose client went away)."""
        try:
            readable = select.select([self.connection], [], [], wait)[0]
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    # ---- dispatch -------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_HEAD(self) -> None:
        self.dispatch("HEAD")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def dispatch(self, method: str) -> None:
        path = self.route()
        self.emu.count(f"{method} {path if not path.startswith('/api/blobs/') else '/api/blobs'}")
        routes = {
            ("GET", "/"): self.root, ("HEAD", "/"): self.root,
            ("GET", "/api/version"): self.version, ("HEAD", "/api/version"): self.version,
            ("GET", "/api/tags"): self.tags, ("HEAD", "/api/tags"): self.tags,
            ("GET", "/api/ps"): self.ps,
            ("POST", "/api/show"): self.show,
            ("POST", "/api/pull"): self.pull,
            ("DELETE", "/api/delete"): self.delete,
            ("POST", "/api/copy"): self.copy,
            ("POST", "/api/generate"): self.generate,
            ("POST", "/api/chat"): self.chat,
            ("POST", "/api/embed"): self.embed,
            ("POST", "/api/embeddings"): self.embeddings,
            ("POST", "/v1/chat/completions"): self.openai_chat,
            ("POST", "/v1/completions"): self.openai_completions,
            ("POST", "/v1/embeddings"): self.openai_embeddings,
            ("GET", "/v1/models"): self.openai_models,
            ("GET", "/_test_double/stats"): self.td_stats,
            ("POST", "/_test_double/reset_stats"): self.td_reset,
            ("POST", "/_test_double/fail_pull"): self.td_fail_pull,
            ("POST", "/_test_double/token_delay"): self.td_token_delay,
        }
        handler = routes.get((method, path))
        try:
            if handler is not None:
                handler()
            elif path.startswith("/api/blobs/") and method in ("HEAD", "POST"):
                self.blob(method, path.rsplit("/", 1)[-1])
            elif path.startswith("/v1/models/") and method == "GET":
                self.openai_model(path[len("/v1/models/"):])
            elif any(p == path for (_method, p) in routes):
                self.send_text(405, "405 method not allowed")
            else:
                self.send_text(404, "404 page not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- basic endpoints ------------------------------------------------------------------
    def root(self) -> None:
        self.send_text(200, "Ollama is running")

    def version(self) -> None:
        self.send_json(200, {"version": self.emu.version})

    def tags(self) -> None:
        store = self.emu.store
        models = [summary for name in store.all_names() if (summary := store.summary(name))]
        models.sort(key=lambda m: m["modified_at"], reverse=True)
        self.send_json(200, {"models": models})

    def ps(self) -> None:
        now = time.time()
        models = []
        for key, info in sorted(self.emu.loaded.items()):
            if info["expires"] is not None and info["expires"] < now:
                continue
            summary = self.emu.store.summary(ModelName.parse(key))
            if summary:
                models.append({**summary, "expires_at": info["expires_at"], "size_vram": summary["size"],
                               "context_length": info.get("ctx", 4096)})
        self.send_json(200, {"models": models})

    def show(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model") or body.get("name") or ""
        if not raw:
            self.send_json(400, {"error": "model is required"})
            return
        name = ModelName.parse(raw)
        loaded = self.emu.store.read_manifest(name) if name else None
        if loaded is None:
            self.send_json(404, {"error": f"model '{raw}' not found"})
            return
        manifest = loaded[0]
        store = self.emu.store
        config = store.read_config(manifest)
        extra = config.get("test_double", {})
        family = config.get("model_family", "llama")
        template = store.read_layer_text(manifest, ".template")
        params = store.read_layer_text(manifest, ".params")
        capabilities = ["embedding"] if extra.get("embedding") else ["completion"]
        if extra.get("vision"):
            capabilities.append("vision")
        self.send_json(200, {
            "license": store.read_layer_text(manifest, ".license"),
            "modelfile": f"# Modelfile generated by \"ollama show\" (ollama test double)\nFROM {name.display}\n"
                         f"TEMPLATE \"\"\"{template}\"\"\"\n",
            "parameters": "\n".join(f"{k} {json.dumps(v)}" for k, v in (json.loads(params) if params else {}).items()),
            "template": template,
            "details": details_from_config(config),
            "model_info": {
                "general.architecture": family,
                "general.parameter_count": parameter_count(config.get("model_type", "")),
                f"{family}.context_length": extra.get("context_length", 4096),
                f"{family}.embedding_length": extra.get("embedding_length", 4096),
            },
            "capabilities": capabilities,
            "modified_at": store.summary(name)["modified_at"],
        })

    # ---- model management -----------------------------------------------------------------
    def pull(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model") or body.get("name") or ""
        stream = body.get("stream", True) is not False
        if ModelName.parse(raw) is None:
            self.send_json(400, {"error": "invalid model name"})
            return
        if not stream:
            last: dict[str, Any] = {}

            def keep(event: dict[str, Any]) -> None:
                last.clear()
                last.update(event)

            try:
                pull_model(self.emu, raw, keep)
            except (RegistryError, PullAborted) as exc:
                self.send_json(500, {"error": str(exc)})
                return
            self.send_json(200, last)
            return
        self.start_stream()

        seen: set[str] = set()

        def emit(event: dict[str, Any]) -> None:
            self.chunk(dumps(event) + b"\n")
            # Give a client the moment a real multi-GB download would give it to look at the
            # announced size and hang up (disk check); then stop, keeping the -partial file.
            announced = "total" in event and event.get("completed", 0) < event["total"] and event["digest"] not in seen
            seen.add(event.get("digest", ""))
            if self.client_gone(0.02 if announced else 0.0):
                raise BrokenPipeError("client went away")

        try:
            pull_model(self.emu, raw, emit)
        except PullAborted as exc:
            if str(exc) == "drop":
                # Cut the connection mid-stream, as a dying proxy or network would.
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            emit({"error": str(exc)})
        except RegistryError as exc:
            emit({"error": str(exc)})
        self.end_stream()

    def delete(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model") or body.get("name") or ""
        name = ModelName.parse(raw)
        if name is None:
            self.send_json(400, {"error": f"name \"{raw}\" is invalid"})
            return
        store = self.emu.store
        with store.lock:
            loaded = store.read_manifest(name)
            if loaded is None:
                self.send_json(404, {"error": f"model '{raw}' not found"})
                return
            store.manifest_path(store.resolve(name)).unlink()
            store.remove_unused({layer["digest"] for layer in store.layers(loaded[0])})
        self.emu.loaded.pop(name.display, None)
        self.send_empty(200)

    def copy(self) -> None:
        body = self.json_body()
        if body is None:
            return
        src_raw, dst_raw = body.get("source", ""), body.get("destination", "")
        src, dst = ModelName.parse(src_raw), ModelName.parse(dst_raw)
        if src is None:
            self.send_json(400, {"error": f"source \"{src_raw}\" is invalid"})
            return
        if dst is None:
            self.send_json(400, {"error": f"destination \"{dst_raw}\" is invalid"})
            return
        store = self.emu.store
        loaded = store.read_manifest(src)
        if loaded is None:
            self.send_json(404, {"error": f"model \"{src_raw}\" not found"})
            return
        path = store.manifest_path(store.resolve(dst))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(loaded[1])
        self.send_empty(200)

    def blob(self, method: str, digest: str) -> None:
        if not re.fullmatch(r"sha256[:-][0-9a-f]{64}", digest):
            self.send_json(400, {"error": "invalid digest format"})
            return
        digest = digest.replace("-", ":", 1)
        path = self.emu.store.blob_path(digest)
        if method == "HEAD":
            if path.exists():
                self.send_empty(200)
            else:
                self.send_json(404, {"error": f"blob \"{digest}\" not found"})
            return
        data = self.read_body()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            self.send_json(400, {"error": "digest mismatch"})
            return
        self.emu.store.ensure()
        if not path.exists():
            path.write_bytes(data)
        self.send_empty(201)

    # ---- inference ------------------------------------------------------------------------
    def load(self, raw: str, keep_alive: Any) -> tuple[ModelName, dict[str, Any]] | None:
        name = ModelName.parse(raw) if raw else None
        loaded = self.emu.store.read_manifest(name) if name else None
        if loaded is None:
            return None
        config = self.emu.store.read_config(loaded[0])
        seconds = parse_keep_alive(keep_alive)
        if seconds == 0:
            self.emu.loaded.pop(name.display, None)
        else:
            expires = None if seconds is None or seconds < 0 else time.time() + seconds
            self.emu.loaded[self.emu.store.resolve(name).display] = {
                "expires": expires,
                "expires_at": datetime.fromtimestamp(expires or 4102444800, timezone.utc).isoformat(),
                "ctx": config.get("test_double", {}).get("context_length", 4096),
            }
        return name, config

    def load_for(self, raw: str, keep_alive: Any,
                 verb: str | None = None) -> tuple[ModelName, dict[str, Any]] | None:
        """Load ``raw`` for a native endpoint, or answer the error Ollama gives and return None.

        404 when the model is not pulled; 400 when ``verb`` (``generate``, ``chat``) is asked of an
        embedding model (which is still loaded first, as Ollama does).
        """
        found = self.load(raw, keep_alive)
        if found is None:
            self.send_json(404, {"error": f"model '{raw}' not found"})
            return None
        if verb is not None and found[1].get("test_double", {}).get("embedding"):
            self.send_json(400, {"error": f"\"{raw}\" does not support {verb}"})
            return None
        return found

    def reply_text(self, model: str, prompt: str) -> str:
        short = " ".join(prompt.split())[:120]
        return f"[ollama-test-double node={self.emu.node} model={model}] You said: {short}"

    def generate(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model", "")
        found = self.load_for(raw, body.get("keep_alive"), "generate")
        if found is None:
            return
        name = found[0]
        prompt = body.get("prompt") or ""
        base = {"model": raw, "created_at": now_rfc3339()}
        if not prompt and not body.get("images"):
            reason = "unload" if parse_keep_alive(body.get("keep_alive")) == 0 else "load"
            self.send_json(200, {**base, "response": "", "done": True, "done_reason": reason})
            return
        text = self.reply_text(name.display, prompt)
        self.respond_tokens(body, base, text, lambda piece: {"response": piece})

    def chat(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model", "")
        found = self.load_for(raw, body.get("keep_alive"), "chat")
        if found is None:
            return
        name = found[0]
        messages = body.get("messages") or []
        base = {"model": raw, "created_at": now_rfc3339()}
        if not messages:
            self.send_json(200, {**base, "message": {"role": "assistant", "content": ""}, "done": True,
                                 "done_reason": "load"})
            return
        prompt = last_user_text(messages)
        text = self.reply_text(name.display, prompt)
        self.respond_tokens(body, base, text, lambda piece: {"message": {"role": "assistant", "content": piece}})

    def respond_tokens(self, body: dict[str, Any], base: dict[str, Any], text: str, shape) -> None:
        pieces = [word + " " for word in text.split(" ")]
        pieces[-1] = pieces[-1].rstrip()
        limit = (body.get("options") or {}).get("num_predict")
        if isinstance(limit, int) and limit > 0:  # Ollama's max tokens: one piece stands for one token here
            pieces = pieces[:limit]
            text = "".join(pieces)
        stats = {"total_duration": 1_000_000 * len(pieces), "load_duration": 100_000, "prompt_eval_count": 8,
                 "prompt_eval_duration": 200_000, "eval_count": len(pieces), "eval_duration": 700_000 * len(pieces)}
        if body.get("stream", True) is False:
            time.sleep(self.emu.token_delay * len(pieces))
            done = {**base, **shape(text), "done": True, "done_reason": "stop", **stats}
            if "response" in done:
                done["context"] = [1, 2, 3]
            self.send_json(200, done)
            return
        self.start_stream()
        for piece in pieces:
            time.sleep(self.emu.token_delay)
            self.chunk(dumps({**base, **shape(piece), "done": False}) + b"\n")
        self.chunk(dumps({**base, **shape(""), "done": True, "done_reason": "stop", **stats}) + b"\n")
        self.end_stream()

    def embed(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model", "")
        found = self.load_for(raw, body.get("keep_alive"))
        if found is None:
            return
        name, config = found
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        dim = int(config.get("test_double", {}).get("embedding_length", 768))
        if body.get("dimensions"):
            dim = int(body["dimensions"])
        vectors = [deterministic_vector(name.display, str(text), dim) for text in inputs]
        self.send_json(200, {"model": raw, "embeddings": vectors, "total_duration": 1_000_000,
                             "load_duration": 100_000, "prompt_eval_count": sum(len(str(t).split()) for t in inputs)})

    def embeddings(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model", "")
        found = self.load_for(raw, body.get("keep_alive"))
        if found is None:
            return
        name, config = found
        prompt = body.get("prompt", "")
        if not prompt:
            self.send_json(200, {"embedding": []})
            return
        dim = int(config.get("test_double", {}).get("embedding_length", 768))
        self.send_json(200, {"embedding": deterministic_vector(name.display, prompt, dim, normalise=False)})

    # ---- OpenAI compatibility -------------------------------------------------------------
    def openai_error(self, status: int, message: str, kind: str = "api_error") -> None:
        self.send_json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

    def openai_chat(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model", "")
        found = self.load(raw, None)
        if found is None:
            self.openai_error(404, f"model \"{raw}\" not found, try pulling it first", "not_found_error")
            return
        name, config = found
        if config.get("test_double", {}).get("embedding"):
            self.openai_error(400, f"\"{raw}\" does not support chat", "invalid_request_error")
            return
        text = self.reply_text(name.display, last_user_text(body.get("messages") or []))
        created = int(time.time())
        ident = "chatcmpl-" + hashlib.sha256(f"{created}{text}".encode()).hexdigest()[:8]
        usage = {"prompt_tokens": 8, "completion_tokens": len(text.split()), "total_tokens": 8 + len(text.split())}
        if not body.get("stream"):
            self.send_json(200, {"id": ident, "object": "chat.completion", "created": created, "model": raw,
                                 "system_fingerprint": "fp_ollama",
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop"}], "usage": usage})
            return
        self.start_stream("text/event-stream")
        pieces = [word + " " for word in text.split(" ")]
        for piece in pieces:
            chunk = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": raw,
                     "system_fingerprint": "fp_ollama",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}]}
            self.chunk(b"data: " + dumps(chunk) + b"\n\n")
        final = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": raw,
                 "system_fingerprint": "fp_ollama",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]}
        if (body.get("stream_options") or {}).get("include_usage"):
            final["usage"] = usage
        self.chunk(b"data: " + dumps(final) + b"\n\n")
        self.chunk(b"data: [DONE]\n\n")
        self.end_stream()

    def openai_completions(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model", "")
        found = self.load(raw, None)
        if found is None:
            self.openai_error(404, f"model \"{raw}\" not found, try pulling it first", "not_found_error")
            return
        text = self.reply_text(found[0].display, str(body.get("prompt", "")))
        self.send_json(200, {"id": "cmpl-1", "object": "text_completion", "created": int(time.time()), "model": raw,
                             "system_fingerprint": "fp_ollama",
                             "choices": [{"text": text, "index": 0, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 8, "completion_tokens": len(text.split()),
                                       "total_tokens": 8 + len(text.split())}})

    def openai_embeddings(self) -> None:
        body = self.json_body()
        if body is None:
            return
        raw = body.get("model", "")
        found = self.load(raw, None)
        if found is None:
            self.openai_error(404, f"model \"{raw}\" not found, try pulling it first", "not_found_error")
            return
        name, config = found
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        if not inputs:
            self.openai_error(400, "invalid input", "invalid_request_error")
            return
        dim = int(body.get("dimensions") or config.get("test_double", {}).get("embedding_length", 768))
        data = [{"object": "embedding", "embedding": deterministic_vector(name.display, str(text), dim), "index": i}
                for i, text in enumerate(inputs)]
        tokens = sum(len(str(t).split()) for t in inputs)
        self.send_json(200, {"object": "list", "data": data, "model": raw,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def openai_models(self) -> None:
        store = self.emu.store
        data = []
        for name in store.all_names():
            path = store.manifest_path(name)
            data.append({"id": name.display, "object": "model", "created": int(path.stat().st_mtime),
                         "owned_by": name.namespace})
        self.send_json(200, {"object": "list", "data": data})

    def openai_model(self, raw: str) -> None:
        name = ModelName.parse(raw)
        if name is None or self.emu.store.read_manifest(name) is None:
            self.openai_error(404, f"model \"{raw}\" not found", "invalid_request_error")
            return
        path = self.emu.store.manifest_path(self.emu.store.resolve(name))
        self.send_json(200, {"id": raw, "object": "model", "created": int(path.stat().st_mtime),
                             "owned_by": name.namespace})

    # ---- test-double controls -------------------------------------------------------------
    def td_stats(self) -> None:
        with self.emu.stats_lock:
            counts = dict(self.emu.stats)
            upstream = dict(self.emu.upstream)
        self.send_json(200, {"test_double": True, "node": self.emu.node, "requests": counts,
                             "upstream_bytes": sum(upstream.values()), "upstream_by_model": upstream})

    def td_reset(self) -> None:
        self.read_body()
        with self.emu.stats_lock:
            self.emu.stats.clear()
            self.emu.upstream.clear()
        self.send_empty(200)

    def td_fail_pull(self) -> None:
        body = self.json_body()
        if body is None:
            return
        name = ModelName.parse(body.get("model", ""))
        if name is None:
            self.send_json(400, {"error": "invalid model name"})
            return
        with self.emu.stats_lock:
            self.emu.fail_pulls[name.display.lower()] = [int(body.get("times", 1)), body.get("mode", "error")]
        self.send_empty(200)

    def td_token_delay(self) -> None:
        body = self.json_body()
        if body is None:
            return
        self.emu.token_delay = float(body.get("seconds", 0) or 0)
        self.send_empty(200)


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content", "")
            if isinstance(content, list):  # OpenAI content parts
                content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content)
    return ""


def parse_keep_alive(value: Any) -> float | None:
    """Seconds, None for the default (5m), negative for forever, 0 to unload."""
    if value is None or value == "":
        return 300.0
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(ms|s|m|h)?", str(value).strip())
    if not match:
        return 300.0
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def parameter_count(text: str) -> int:
    match = re.fullmatch(r"([\d.]+)([MBK]?)", text.strip())
    if not match:
        return 0
    return int(float(match.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9, "": 1}[match.group(2)])


# --------------------------------------------------------------------------------------------
# OLLAMA_HOST handling and the CLI
# --------------------------------------------------------------------------------------------


def parse_host(value: str | None) -> tuple[str, str, int]:
    """Ollama's envconfig.Host(): returns (scheme, host, port); default http 127.0.0.1:11434."""
    text = (value or "").strip()
    default_port = 11434
    scheme, sep, hostport = text.partition("://")
    if not sep:
        scheme, hostport = "http", text
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.split("/", 1)[0]
    host, port = "127.0.0.1", default_port
    match = re.fullmatch(r"\[?([^\]]*?)\]?:(\d+)", hostport) if hostport.count(":") <= 1 or "]" in hostport else None
    if match:
        host = match.group(1) or "0.0.0.0"  # ":11434" binds every interface, like Go
        port = int(match.group(2))
    elif hostport:
        host = hostport.strip("[]")
    if not 0 <= port <= 65535:
        port = default_port
    return scheme, host, port


def client_base() -> str:
    scheme, host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def baked_version() -> str:
    return os.environ.get("OLLAMA_TEST_DOUBLE_BAKED_VERSION") or TEST_DOUBLE_VERSION


def make_server(host: str, port: int, emu: Emulator) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"emu": emu})
    server_class = ThreadingHTTPServer
    if ":" in host:
        server_class = type("V6Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    server = server_class((host, port), handler)
    server.daemon_threads = True
    return server


def cmd_serve() -> int:
    _scheme, host, port = parse_host(os.environ.get("OLLAMA_HOST"))
    store = Store(default_models_dir())
    store.ensure()
    node = os.environ.get("OLLAMA_TEST_DOUBLE_NODE") or socket.gethostname()
    emu = Emulator(store, node, baked_version())
    try:
        server = make_server(host, port, emu)
    except OSError as exc:
        print(f"Error: listen tcp {host}:{port}: bind: {exc.strerror.lower() if exc.strerror else exc}",
              file=sys.stderr)
        return 1
    sys.stderr.write(f'time={now_rfc3339()} level=INFO source=routes.go msg="Listening on {host}:{port} '
                     f'(version {emu.version})" test_double=true models={store.root}\n')
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def api(method: str, path: str, body: Any = None, timeout: float = 5.0):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(client_base() + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=timeout)


def cmd_version() -> int:
    client = baked_version()
    server = ""
    try:
        with api("GET", "/api/version", timeout=2) as response:
            server = json.loads(response.read()).get("version", "")
    except (OSError, ValueError):
        print("Warning: could not connect to a running Ollama instance")
    if server:
        print(f"ollama version is {server}")
    if server != client:
        print(f"Warning: client version is {client}")
    return 0


def fail(exc: Exception) -> int:
    if isinstance(exc, urllib.error.HTTPError):
        try:
            message = json.loads(exc.read()).get("error", str(exc))
        except ValueError:
            message = str(exc)
    elif isinstance(exc, urllib.error.URLError):
        message = "could not connect to ollama app, is it running?"
    else:
        message = str(exc)
    print(f"Error: {message}", file=sys.stderr)
    return 1


def cmd_list() -> int:
    try:
        with api("GET", "/api/tags") as response:
            models = json.loads(response.read())["models"]
    except (OSError, ValueError) as exc:
        return fail(exc)
    print(f"{'NAME':<40}{'ID':<16}{'SIZE':<10}MODIFIED")
    for model in models:
        print(f"{model['name']:<40}{model['digest'][:12]:<16}{human_size(model['size']):<10}{model['modified_at']}")
    return 0


def cmd_ps() -> int:
    try:
        with api("GET", "/api/ps") as response:
            models = json.loads(response.read())["models"]
    except (OSError, ValueError) as exc:
        return fail(exc)
    print(f"{'NAME':<40}{'ID':<16}{'SIZE':<10}{'PROCESSOR':<12}UNTIL")
    for model in models:
        print(f"{model['name']:<40}{model['digest'][:12]:<16}{human_size(model['size']):<10}{'100% GPU':<12}"
              f"{model['expires_at']}")
    return 0


def cmd_pull(name: str) -> int:
    try:
        with api("POST", "/api/pull", {"model": name}, timeout=600) as response:
            for line in response:
                if not line.strip():
                    continue
                event = json.loads(line)
                if "error" in event:
                    print(f"Error: {event['error']}", file=sys.stderr)
                    return 1
                status = event.get("status", "")
                if event.get("total"):
                    print(f"{status} {human_size(event.get('completed', 0))}/{human_size(event['total'])}")
                else:
                    print(status)
    except (OSError, ValueError) as exc:
        return fail(exc)
    return 0


def cmd_rm(names: list[str]) -> int:
    for name in names:
        try:
            with api("DELETE", "/api/delete", {"model": name}):
                pass
        except (OSError, ValueError) as exc:
            return fail(exc)
        print(f"deleted '{name}'")
    return 0


def cmd_cp(source: str, destination: str) -> int:
    try:
        with api("POST", "/api/copy", {"source": source, "destination": destination}):
            pass
    except (OSError, ValueError) as exc:
        return fail(exc)
    print(f"copied '{source}' to '{destination}'")
    return 0


USAGE = """Large language model runner (OLLAMA TEST DOUBLE: an API emulator for tests, not Ollama)

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  pull        Pull a model from a registry
  list        List models
  ps          List running models
  cp          Copy a model
  rm          Remove a model

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    verb, args = argv[0], argv[1:]
    if verb in ("-v", "--version", "version"):
        return cmd_version()
    if verb in ("serve", "start"):
        return cmd_serve()
    if verb in ("list", "ls"):
        return cmd_list()
    if verb == "ps":
        return cmd_ps()
    if verb == "pull" and len(args) == 1:
        return cmd_pull(args[0])
    if verb in ("rm", "delete") and args:
        return cmd_rm(args)
    if verb in ("cp", "copy") and len(args) == 2:
        return cmd_cp(args[0], args[1])
    print(f'Error: unknown command "{verb}" for "ollama" (test double)', file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
