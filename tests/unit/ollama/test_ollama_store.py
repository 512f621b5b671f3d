"""ollama_store: model paths, verified LAN copy between two model stores."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_store import (
    ModelPath,
    StoreError,
    apply_sync,
    blob_relpath,
    find_manifest,
    inside_store,
    list_models,
    plan_sync,
    remove_partial_copies,
)


@pytest.mark.parametrize(
    ("name", "relpath", "display"),
    [
        ("llama3", "manifests/registry.ollama.ai/library/llama3/latest", "llama3:latest"),
        ("qwen2.5:7b", "manifests/registry.ollama.ai/library/qwen2.5/7b", "qwen2.5:7b"),
        ("me/tool:v1", "manifests/registry.ollama.ai/me/tool/v1", "me/tool:v1"),
        ("hub.lan:5000/team/m:q4", "manifests/hub.lan:5000/team/m/q4", "hub.lan:5000/team/m:q4"),
    ],
)
def test_model_paths_follow_ollamas_layout(name, relpath, display):
    path = ModelPath.from_name(name)
    assert path.relpath == relpath
    assert path.display == display


def test_blob_names_must_be_sha256_digests():
    assert blob_relpath("sha256:" + "ab" * 32) == "blobs/sha256-" + "ab" * 32
    with pytest.raises(StoreError):
        blob_relpath("sha256:../../etc/passwd")


def test_copy_between_stores_is_complete_verified_and_idempotent(emulator, second_emulator):
    emulator.post("/api/pull", {"model": "qwen2.5:0.5b", "stream": False})
    src, dest = emulator.models, second_emulator.models
    plan = plan_sync(src, dest, "qwen2.5:0.5b")
    assert plan.changed and len(plan.missing) == len(plan.blobs)
    copied = apply_sync(plan, src, dest)
    assert copied == plan.bytes_to_copy
    assert list_models(dest) == ["qwen2.5:0.5b"]
    # the receiving Ollama lists the model with the same digest, no pull needed
    a = emulator.get("/api/tags")["models"][0]
    b = second_emulator.get("/api/tags")["models"][0]
    assert (a["name"], a["digest"], a["size"]) == (b["name"], b["digest"], b["size"])
    assert "POST /api/pull" not in second_emulator.stats()
    again = plan_sync(src, dest, "qwen2.5:0.5b", verify="sha256")
    assert not again.changed


def test_a_corrupt_source_blob_is_refused_and_nothing_becomes_visible(emulator, second_emulator):
    emulator.post("/api/pull", {"model": "all-minilm", "stream": False})
    src, dest = emulator.models, second_emulator.models
    plan = plan_sync(src, dest, "all-minilm")
    model_blob = src / blob_relpath(plan.blobs[0][0])
    data = bytearray(model_blob.read_bytes())
    data[100] ^= 0xFF  # same size, different content
    model_blob.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="is corrupt"):
        apply_sync(plan, src, dest)
    assert list_models(dest) == []
    assert not (dest / blob_relpath(plan.blobs[0][0])).exists()
    assert not list((dest / "blobs").glob("*partial*"))


def test_an_incomplete_source_model_is_reported(emulator, second_emulator):
    emulator.post("/api/pull", {"model": "all-minilm", "stream": False})
    plan = plan_sync(emulator.models, second_emulator.models, "all-minilm")
    (emulator.models / blob_relpath(plan.blobs[-1][0])).unlink()
    with pytest.raises(StoreError, match="incomplete"):
        plan_sync(emulator.models, second_emulator.models, "all-minilm")
    with pytest.raises(StoreError, match="not in"):
        plan_sync(emulator.models, second_emulator.models, "never-pulled")


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", ["../../x", "../../../etc/passwd", "a/../b", "a; rm -rf /", "qwen 2.5:32b",
                                  "a\nb", "a\x00b", ":tag", ""])
def test_a_bad_name_is_refused_before_any_read_or_write(tmp_path, name):
    src, dest = tmp_path / "stores" / "src", tmp_path / "stores" / "dest"
    (src / "manifests").mkdir(parents=True)
    (dest / "blobs").mkdir(parents=True)
    # what '../../x' would reach from inside the stores: a planted manifest the copy must never read
    planted = tmp_path / "stores" / "x" / "latest"
    planted.parent.mkdir(parents=True)
    planted.write_text('{"layers": []}')
    before = _tree(tmp_path)
    with pytest.raises(StoreError, match="Ollama model name"):
        ModelPath.from_name(name)
    with pytest.raises(StoreError, match="Ollama model name"):
        plan_sync(src, dest, name)
    with pytest.raises(StoreError, match="Ollama model name"):
        find_manifest(src, name)
    assert _tree(tmp_path) == before


def test_inside_store_follows_symlinks(tmp_path):
    store, outside = tmp_path / "store", tmp_path / "outside"
    store.mkdir()
    outside.mkdir()
    assert inside_store(store, store / "blobs" / "sha256-x") == store / "blobs" / "sha256-x"
    (store / "blobs").symlink_to(outside)
    with pytest.raises(StoreError, match="outside the model store"):
        inside_store(store, store / "blobs" / "sha256-x")
    with pytest.raises(StoreError, match="outside the model store"):
        inside_store(store, store / ".." / "outside")
    assert inside_store(store, store) == store


def test_a_symlink_planted_in_the_destination_is_not_followed(emulator, second_emulator, tmp_path):
    emulator.post("/api/pull", {"model": "all-minilm", "stream": False})
    src, dest = emulator.models, second_emulator.models
    outside = tmp_path / "outside"
    outside.mkdir()
    blobs = dest / "blobs"
    if blobs.exists():
        blobs.rmdir()
    blobs.symlink_to(outside)  # e.g. planted to make a root-run copy write into /etc
    with pytest.raises(StoreError, match="outside the model store"):
        apply_sync(plan_sync(src, dest, "all-minilm"), src, dest)
    with pytest.raises(StoreError, match="outside the model store"):
        remove_partial_copies(dest)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ("[]", "not an object"),
        ('{"layers": "abc"}', "must be a list"),
        ('{"layers": [5]}', "without a digest"),
        ('{"layers": [{"digest": "sha256:' + "a" * 64 + '", "size": {"n": 1}}]}', "invalid size"),
        ('{"layers": [{"digest": "sha256:../../etc/passwd", "size": 1}]}', "invalid blob digest"),
        ("[" * 100000, "not JSON"),
    ],
)
def test_a_hostile_manifest_is_a_store_error(tmp_path, manifest, why):
    src = tmp_path / "src"
    path = src / ModelPath.from_name("evil").relpath
    path.parent.mkdir(parents=True)
    path.write_text(manifest)
    with pytest.raises(StoreError, match=why):
        plan_sync(src, tmp_path / "dest", "evil")
    assert not (tmp_path / "dest").exists()
