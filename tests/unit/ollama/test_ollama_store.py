"""ollama_store: model paths, verified LAN copy between two model stores."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_store import (
    ModelPath,
    StoreError,
    apply_sync,
    blob_relpath,
    list_models,
    plan_sync,
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
