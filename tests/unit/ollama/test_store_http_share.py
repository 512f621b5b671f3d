"""The model share (roles/ollama/files/pmoves-model-share.py) and ollama_store's copy from it over HTTP."""

from __future__ import annotations

import hashlib
import importlib.util
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_store import (
    HttpStore,
    PeerError,
    StoreError,
    apply_sync_http,
    is_url,
    plan_sync_http,
)

SHARE_SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "ollama" / "files" / "pmoves-model-share.py"
MODEL = "qwen2.5:0.5b"


def _load_share():
    spec = importlib.util.spec_from_file_location("pmoves_model_share", SHARE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


share_module = _load_share()


@pytest.fixture
def seeded(emulator):
    emulator.post("/api/pull", {"model": MODEL, "stream": False})
    server = share_module.make_server(str(emulator.models), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield emulator, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_share_serves_only_manifests_and_blobs_read_only(seeded, tmp_path):
    emulator, url = seeded
    blob = next((emulator.models / "blobs").iterdir()).name
    (tmp_path / "secret").write_text("x")
    (emulator.models / "manifests" / "registry.ollama.ai" / "library" / "evil").mkdir()
    (emulator.models / "manifests" / "registry.ollama.ai" / "library" / "evil" / "latest").symlink_to(tmp_path / "secret")
    assert status(f"{url}/manifests/registry.ollama.ai/library/qwen2.5/0.5b") == 200
    assert status(f"{url}/blobs/{blob}") == 200
    assert status(f"{url}/blobs/{blob}", "HEAD") == 200
    for path in ("/", "/blobs/", "/manifests/", "/blobs/sha256-" + "0" * 64, "/manifests/registry.ollama.ai/library/..%2f..",
                 "/manifests/registry.ollama.ai/library/evil/latest", "/../etc/passwd", "/blobs/../../etc/passwd"):
        assert status(url + path) == 404, path
    for method in ("POST", "PUT", "DELETE"):
        assert status(f"{url}/blobs/{blob}", method) == 405


def test_a_model_copied_from_the_share_is_verified_and_complete(seeded, second_emulator):
    emulator, url = seeded
    share = HttpStore(url)
    plan = plan_sync_http(share, second_emulator.models, MODEL)
    assert plan is not None and plan.changed and plan.bytes_to_copy > 0
    fetched = apply_sync_http(plan, share, second_emulator.models)
    assert fetched == plan.bytes_to_copy
    assert second_emulator.get("/api/tags")["models"][0]["digest"] == emulator.get("/api/tags")["models"][0]["digest"]
    again = plan_sync_http(share, second_emulator.models, MODEL)
    assert again is not None and not again.changed
    assert plan_sync_http(share, second_emulator.models, "not-there:1b") is None


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupt_or_short_blob_is_refused_and_never_put_in_place(seeded, second_emulator, damage):
    emulator, url = seeded
    blob = max((emulator.models / "blobs").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    blob.write_bytes(bytes(data))
    share = HttpStore(url)
    plan = plan_sync_http(share, second_emulator.models, MODEL)
    with pytest.raises(PeerError, match="corrupt" if damage == "flip" else "incomplete"):
        apply_sync_http(plan, share, second_emulator.models)
    target = second_emulator.models / "blobs" / blob.name
    assert not target.exists()
    assert not list((second_emulator.models / "blobs").glob("*.pmoves-partial"))
    assert not (second_emulator.models / "manifests" / "registry.ollama.ai" / "library" / "qwen2.5").exists()


def test_an_unreachable_share_is_a_peer_error_naming_the_url(tmp_path):
    from harness import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PeerError, match=url):
        plan_sync_http(HttpStore(url, timeout=2), tmp_path, MODEL)


def test_names_are_checked_before_any_request(tmp_path):
    calls = []
    share = HttpStore("http://peer:1", opener=lambda *args, **kwargs: calls.append(args))
    with pytest.raises(StoreError, match="invalid Ollama model name"):
        plan_sync_http(share, tmp_path, "../../etc/passwd")
    assert calls == []


@pytest.mark.parametrize(("src", "url"), [("http://10.0.0.1:11435", True), ("HTTPS://seed", True),
                                          ("/srv/ollama-cache", False), ("httpd-cache", False)])
def test_is_url(src, url):
    assert is_url(src) is url


def test_blob_hash_helper_matches_names(seeded):
    emulator, _url = seeded
    for blob in (emulator.models / "blobs").iterdir():
        assert "sha256-" + hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
