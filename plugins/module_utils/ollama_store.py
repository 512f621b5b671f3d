"""Ollama's on-disk model store: manifests and blobs, and copying models between stores.

Layout under OLLAMA_MODELS (the same for every Ollama release since 0.1)::

    manifests/<host>/<namespace>/<model>/<tag>     JSON manifest (config + layers, each with digest/size)
    blobs/sha256-<hex>                             content-addressed blob; <hex> is its sha256

A model copied between stores (another node's OLLAMA_MODELS, a cache directory, an NFS
export) is complete when its manifest and every blob it names are there. ``plan_sync`` works
out what is missing; ``apply_sync`` copies blobs first -- hashing each one while it is copied and
refusing any whose sha256 is not the one in its file name -- and writes the manifest last, so a
half-copied model is never visible to Ollama.

The source may also be a peer's read-only model share over HTTP (``HttpStore``: ``GET
<url>/manifests/...`` and ``GET <url>/blobs/sha256-<hex>``, served by the ollama role's
``pmoves-model-share`` on seed nodes): the manifest is fetched first, each missing blob is streamed
into a temporary file while it is hashed, and it is put in place only when its size and sha256 are
the ones the manifest and its name say; the manifest is written last, as for a directory.

Model names come from users and from other machines' stores, and this code runs as root: a
name is checked against Ollama's grammar (``validate_model_name``) before any path is built from
it, and every path read or written must resolve (``os.path.realpath``) inside its store's root,
so neither ``../../x`` nor a symlink planted in a store reaches outside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.http_request import READ_ERRORS, URL_ERRORS, http_open
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import (
    split_model_name,
    validate_model_name,
)

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
CHUNK = 4 * 1024 * 1024
MANIFEST_LIMIT = 4 * 1024 * 1024  # a manifest is a few KiB; a peer that sends more is not a model share


class StoreError(Exception):
    """A store problem with a message naming the file."""


class PeerError(StoreError):
    """A peer's model share could not give a model: unreachable, an HTTP error, a short or corrupt blob."""


@dataclass(frozen=True)
class ModelPath:
    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def from_name(cls, name: str) -> ModelPath:
        """The store path of ``name``; StoreError for a name outside Ollama's grammar."""
        problem = validate_model_name(name)
        if problem:
            raise StoreError(problem)
        model, tag = split_model_name(name)
        parts = model.split("/")
        if len(parts) == 1:
            return cls(DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0], tag)
        if len(parts) == 2:
            return cls(DEFAULT_HOST, parts[0], parts[1], tag)
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2], tag)
        raise StoreError(f"model name {name!r} has too many '/' parts")

    @property
    def relpath(self) -> str:
        return "/".join(("manifests", self.host, self.namespace, self.model, self.tag))

    @property
    def display(self) -> str:
        if (self.host, self.namespace) == (DEFAULT_HOST, DEFAULT_NAMESPACE):
            return f"{self.model}:{self.tag}"
        if self.host == DEFAULT_HOST:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"


def inside_store(root: Path, path: Path) -> Path:
    """``path`` when it resolves inside the store ``root`` (symlinks followed); StoreError otherwise."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise StoreError(f"{path} resolves to {real}, outside the model store {real_root}; refusing to read or "
                         f"write it (check the name and any symlink inside the store)")
    return path


def blob_relpath(digest: str) -> str:
    if not isinstance(digest, str):
        raise StoreError(f"invalid blob digest {digest!r} (expected sha256:<64 hex>)")
    match = DIGEST_RE.match(digest)
    if not match:
        raise StoreError(f"invalid blob digest {digest!r} (expected sha256:<64 hex>)")
    return f"blobs/sha256-{match.group(1)}"


def find_manifest(root: Path, name: str) -> Path | None:
    """Manifest file for ``name`` under root, matched case-insensitively like Ollama does."""
    wanted = ModelPath.from_name(name)
    exact = inside_store(root, root / wanted.relpath)
    if exact.is_file():
        return exact
    manifests = root / "manifests"
    if not manifests.is_dir():
        return None
    key = wanted.relpath.lower()
    for path in manifests.glob("*/*/*/*"):
        if path.relative_to(root).as_posix().lower() == key and inside_store(root, path).is_file():
            return path
    return None


def manifest_layers(manifest: Any) -> list[tuple[str, int]]:
    """(digest, size) of every blob a manifest names: layers then config, without duplicates."""
    if not isinstance(manifest, dict):
        raise StoreError(f"manifest is a JSON {type(manifest).__name__}, not an object")
    layers = manifest.get("layers") or []
    config = manifest.get("config") or {}
    if not isinstance(layers, list) or not isinstance(config, dict):
        raise StoreError("manifest 'layers' must be a list and 'config' an object")
    entries = list(layers)
    if config.get("digest"):
        entries.append(config)
    seen: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise StoreError(f"manifest layer without a digest: {str(entry)[:200]}")
        digest = entry["digest"]
        blob_relpath(digest)
        size = entry.get("size") or 0
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise StoreError(f"manifest layer {digest} has an invalid size {size!r}")
        seen.setdefault(digest, size)
    return list(seen.items())


def read_manifest(root: Path, name: str) -> tuple[Path, bytes, dict[str, Any]]:
    path = find_manifest(root, name)
    if path is None:
        raise StoreError(f"model {name} is not in {root} (no {root / ModelPath.from_name(name).relpath})")
    data = path.read_bytes()
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StoreError(f"manifest {path} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise StoreError(f"manifest {path} is a JSON {type(manifest).__name__}, not an object")
    return path, data, manifest


def list_models(root: Path) -> list[str]:
    manifests = root / "manifests"
    if not manifests.is_dir():
        return []
    names = []
    for path in sorted(manifests.glob("*/*/*/*")):
        if path.is_file() and not path.name.endswith(".tmp"):
            host, namespace, model, tag = path.relative_to(manifests).parts
            names.append(ModelPath(host, namespace, model, tag).display)
    return names


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def blob_ok(path: Path, digest: str, size: int, verify: str) -> bool:
    """Whether ``path`` holds the blob: by size (cheap) or by re-hashing it (``verify='sha256'``)."""
    try:
        if path.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    return verify != "sha256" or sha256_file(path) == digest


@dataclass
class SyncPlan:
    name: str
    source_manifest: Path
    manifest_bytes: bytes
    blobs: list[tuple[str, int]]
    missing: list[tuple[str, int]] = field(default_factory=list)
    manifest_current: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.missing) or not self.manifest_current

    @property
    def bytes_to_copy(self) -> int:
        return sum(size for _digest, size in self.missing)


def plan_sync(src: Path, dest: Path, name: str, verify: str = "size") -> SyncPlan:
    """What copying ``name`` from store ``src`` into store ``dest`` has to do."""
    ModelPath.from_name(name)  # refuses a bad name before anything is read
    path, data, manifest = read_manifest(src, name)
    try:
        blobs = manifest_layers(manifest)
    except StoreError as exc:
        raise StoreError(f"manifest {path}: {exc}") from exc
    for digest, size in blobs:
        source_blob = inside_store(src, src / blob_relpath(digest))
        if not source_blob.is_file():
            raise StoreError(f"model {name} in {src} is incomplete: {source_blob} is missing")
        if source_blob.stat().st_size != size:
            raise StoreError(f"model {name} in {src} is incomplete: {source_blob} has "
                             f"{source_blob.stat().st_size} bytes, the manifest says {size}")
    relpath = path.relative_to(src).as_posix()
    dest_manifest = inside_store(dest, dest / relpath)
    plan = SyncPlan(name=name, source_manifest=path, manifest_bytes=data, blobs=blobs)
    plan.missing = [(d, s) for d, s in blobs
                    if not blob_ok(inside_store(dest, dest / blob_relpath(d)), d, s, verify)]
    plan.manifest_current = dest_manifest.is_file() and dest_manifest.read_bytes() == data
    return plan


def _write_verified(reader: Any, where: str, target: Path, digest: str, uid: int = -1, gid: int = -1,
                    size: int | None = None, error: type[StoreError] = StoreError) -> int:
    """Stream ``reader`` into ``target`` through a temporary file, hashing; put in place only when the sha256
    (and ``size``, when given) match. Returns bytes written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".pmoves-partial", dir=target.parent)
    tmp = Path(tmp_name)
    copied = 0
    try:
        with os.fdopen(fd, "wb") as writer:
            while True:
                chunk = reader.read(CHUNK)
                if not chunk:
                    break
                hasher.update(chunk)
                writer.write(chunk)
                copied += len(chunk)
                if size is not None and copied > size:
                    raise error(f"blob {where} is corrupt: more than the {size} bytes its manifest says; "
                                "nothing was copied for it")
        if size is not None and copied != size:
            raise error(f"blob {where} is incomplete: {copied} of {size} bytes arrived; nothing was copied for it")
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise error(f"blob {where} is corrupt: its sha256 is {actual}, its name says {digest}; "
                        f"nothing was copied for it")
        os.chmod(tmp, 0o644)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return copied


def copy_blob(source: Path, target: Path, digest: str, uid: int = -1, gid: int = -1) -> int:
    """Copy one blob, hashing while copying; the target appears only when the hash matches."""
    with source.open("rb") as reader:
        return _write_verified(reader, str(source), target, digest, uid, gid)


def apply_sync(plan: SyncPlan, src: Path, dest: Path, uid: int = -1, gid: int = -1) -> int:
    """Copy missing blobs (verified) then the manifest; return bytes copied."""
    copied = 0
    for digest, _size in plan.missing:
        copied += copy_blob(inside_store(src, src / blob_relpath(digest)),
                            inside_store(dest, dest / blob_relpath(digest)), digest, uid, gid)
    write_manifest(dest, plan.source_manifest.relative_to(src).as_posix(), plan.manifest_bytes, uid, gid)
    return copied


def write_manifest(dest: Path, relpath: str, data: bytes, uid: int = -1, gid: int = -1) -> None:
    """Write a manifest into store ``dest`` atomically (tmp + replace), unless it is already there."""
    target = inside_store(dest, dest / relpath)
    if not (target.is_file() and target.read_bytes() == data):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
            for parent in _new_dirs(dest, target.parent):
                os.chown(parent, uid, gid)
        os.replace(tmp, target)


def is_url(src: str) -> bool:
    """Whether a blob_sync source is a peer's model share (http/https URL) rather than a directory."""
    return str(src).lower().startswith(("http://", "https://"))


class HttpStore:
    """A peer's read-only model share: ``<url>/manifests/<host>/<namespace>/<model>/<tag>``, ``<url>/blobs/...``.

    ``opener`` is ``http_request.http_open`` (injected in tests). Every failure is a ``PeerError`` naming
    the URL, so a caller can fall back to a registry pull.
    """

    def __init__(self, url: str, timeout: float = 30.0, opener: Any = http_open) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.opener = opener

    def _open(self, relpath: str) -> Any:
        url = f"{self.url}/{relpath}"
        try:
            return self.opener(url, timeout=self.timeout)
        except URL_ERRORS as exc:  # HTTPError included: 404, 403, 500 from the share
            code = getattr(exc, "code", None)
            if code == 404:
                return None
            reason = f"HTTP {code}" if code else str(getattr(exc, "reason", None) or exc)
            raise PeerError(f"model share {url} cannot be read: {reason}") from exc

    def manifest(self, name: str) -> tuple[str, bytes, dict[str, Any]] | None:
        """(relpath, bytes, parsed) of ``name``'s manifest on the share; None when the share does not have it."""
        relpath = ModelPath.from_name(name).relpath  # validates the name before any URL is built from it
        response = self._open(relpath)
        if response is None:
            return None
        url = f"{self.url}/{relpath}"
        try:
            with response:
                data = response.read(MANIFEST_LIMIT + 1)
        except READ_ERRORS as exc:
            raise PeerError(f"model share {url}: reading the manifest failed: {exc}") from exc
        if len(data) > MANIFEST_LIMIT:
            raise PeerError(f"model share {url}: the manifest is larger than {MANIFEST_LIMIT} bytes")
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise PeerError(f"model share {url}: the manifest is not JSON: {exc}") from exc
        if not isinstance(manifest, dict):
            raise PeerError(f"model share {url}: the manifest is a JSON {type(manifest).__name__}, not an object")
        return relpath, data, manifest

    def fetch_blob(self, digest: str, size: int, target: Path, uid: int = -1, gid: int = -1) -> int:
        """Stream one blob into ``target``, verified by size and sha256; returns bytes fetched."""
        relpath = blob_relpath(digest)
        url = f"{self.url}/{relpath}"
        response = self._open(relpath)
        if response is None:
            raise PeerError(f"model share {url}: the blob is not there (HTTP 404)")
        try:
            with response:
                return _write_verified(response, url, target, digest, uid, gid, size=size, error=PeerError)
        except READ_ERRORS as exc:
            raise PeerError(f"model share {url}: the download broke off: {exc}") from exc


def complete_in(root: Path, name: str, verify: str = "size") -> bool:
    """Whether store ``root`` holds ``name`` completely: its manifest and every blob it names."""
    try:
        if find_manifest(root, name) is None:
            return False
        _path, _data, manifest = read_manifest(root, name)
        blobs = manifest_layers(manifest)
        return all(blob_ok(inside_store(root, root / blob_relpath(d)), d, s, verify) for d, s in blobs)
    except StoreError:
        return False  # unreadable or outside the store here: copy it again (the copy checks everything)


def plan_sync_http(share: HttpStore, dest: Path, name: str, verify: str = "size") -> SyncPlan | None:
    """What copying ``name`` from a peer's model share into ``dest`` has to do; None when the share lacks it."""
    found = share.manifest(name)
    if found is None:
        return None
    relpath, data, manifest = found
    try:
        blobs = manifest_layers(manifest)
    except StoreError as exc:
        raise PeerError(f"model share {share.url}/{relpath}: {exc}") from exc
    dest_manifest = inside_store(dest, dest / relpath)
    plan = SyncPlan(name=name, source_manifest=Path(relpath), manifest_bytes=data, blobs=blobs)
    plan.missing = [(d, s) for d, s in blobs
                    if not blob_ok(inside_store(dest, dest / blob_relpath(d)), d, s, verify)]
    plan.manifest_current = dest_manifest.is_file() and dest_manifest.read_bytes() == data
    return plan


def apply_sync_http(plan: SyncPlan, share: HttpStore, dest: Path, uid: int = -1, gid: int = -1) -> int:
    """Fetch the missing blobs from the share (each verified) then write the manifest; return bytes fetched."""
    fetched = 0
    for digest, size in plan.missing:
        fetched += share.fetch_blob(digest, size, inside_store(dest, dest / blob_relpath(digest)), uid, gid)
    write_manifest(dest, plan.source_manifest.as_posix(), plan.manifest_bytes, uid, gid)
    return fetched


def _new_dirs(root: Path, leaf: Path) -> list[Path]:
    parts = []
    current = leaf
    while current != root and root in current.parents:
        parts.append(current)
        current = current.parent
    return parts


def remove_partial_copies(dest: Path) -> None:
    blobs = dest / "blobs"
    if blobs.is_dir() and inside_store(dest, blobs):
        for stale in blobs.glob("*.pmoves-partial"):
            stale.unlink()


__all__ = [
    "HttpStore",
    "ModelPath",
    "PeerError",
    "StoreError",
    "SyncPlan",
    "apply_sync",
    "apply_sync_http",
    "blob_ok",
    "blob_relpath",
    "complete_in",
    "copy_blob",
    "find_manifest",
    "inside_store",
    "is_url",
    "list_models",
    "manifest_layers",
    "plan_sync",
    "plan_sync_http",
    "read_manifest",
    "remove_partial_copies",
    "sha256_file",
    "write_manifest",
]
