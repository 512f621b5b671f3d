"""ollama_api: client, pull stream parsing and ensure_model against the Ollama test double."""

from __future__ import annotations

import json

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import (
    ModelRequest,
    OllamaClient,
    OllamaError,
    PullProgress,
    base_url,
    ensure_model,
    is_transient,
    same_model,
)


def no_sleep(_seconds: float) -> None:
    return None


def ensure(emu, check_mode=False, **kwargs):
    client = OllamaClient(emu.url, timeout=10)
    result = ensure_model(client, ModelRequest(retry_delay=0, **kwargs), check_mode, sleep=no_sleep)
    return result, client


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("10.0.0.5", "http://10.0.0.5:11434"),
        ("http://gpu-1", "http://gpu-1:80"),
        ("https://gw.example/ollama/", "https://gw.example:443/ollama"),
        ("[::1]:11434", "http://[::1]:11434"),
        (None, "http://127.0.0.1:11434"),
    ],
)
def test_base_url_reads_hosts_like_ollama_host(host, url):
    assert base_url(host) == url


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("llama3", "llama3:latest", True),
        ("registry.ollama.ai/library/llama3", "llama3:latest", True),
        ("Llama3:Latest", "llama3", True),
        ("llama3:8b", "llama3", False),
        ("user/llama3", "llama3", False),
    ],
)
def test_same_model_compares_normalised_names(left, right, same):
    assert same_model(left, right) is same


def test_pull_progress_counts_only_bytes_still_to_write():
    lines = [
        {"status": "pulling manifest"},
        {"status": "pulling aaaaaaaaaaaa", "digest": "sha256:" + "a" * 64, "total": 1000},
        {"status": "pulling aaaaaaaaaaaa", "digest": "sha256:" + "a" * 64, "total": 1000, "completed": 1000},
        # a cached blob is announced complete; a resumed one starts at its partial size
        {"status": "pulling bbbbbbbbbbbb", "digest": "sha256:" + "b" * 64, "total": 50, "completed": 50},
        {"status": "pulling cccccccccccc", "digest": "sha256:" + "c" * 64, "total": 400, "completed": 100},
        {"status": "pulling cccccccccccc", "digest": "sha256:" + "c" * 64, "total": 400, "completed": 400},
        {"status": "verifying sha256 digest"},
        {"status": "success"},
    ]
    progress = PullProgress()
    new_layers = [progress.feed(event) for event in lines]
    assert new_layers.count(True) == 3
    assert progress.success
    assert progress.total_bytes == 1450
    assert progress.bytes_needed == 1000 + 0 + 300
    assert progress.bytes_transferred == 1300
    assert progress.statuses[0] == "pulling manifest"


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("pull model manifest: file does not exist", False),
        ("max retries exceeded: unexpected EOF", True),
        ("model 'x' not found", False),
        ('pull model manifest: Get "https://registry.ollama.ai/v2/...": dial tcp: i/o timeout', True),
    ],
)
def test_error_classification(message, transient):
    assert is_transient(message) is transient


def test_present_pulls_a_missing_model_then_never_again(emulator):
    first, client = ensure(emulator, name="tinyllama")
    assert first.changed and first.pulled
    assert first.model["name"] == "tinyllama:latest"
    listed = emulator.get("/api/tags")["models"]
    assert [m["name"] for m in listed] == ["tinyllama:latest"]
    assert first.model["digest"] == listed[0]["digest"]
    assert first.model["size"] == listed[0]["size"] > 0
    assert client.calls["POST /api/pull"] == 1

    for spelling in ("tinyllama", "tinyllama:latest", "registry.ollama.ai/library/tinyllama"):
        again, client = ensure(emulator, name=spelling)
        assert not again.changed and not again.pulled
        assert "POST /api/pull" not in client.calls
        assert again.model == first.model


def test_check_mode_reports_the_pull_and_sends_none(emulator):
    result, client = ensure(emulator, check_mode=True, name="qwen2.5:0.5b", alias="XS-LOC-FRE-qwen2.5-0.5b")
    assert result.changed
    assert result.actions == ["pull qwen2.5:0.5b", "copy qwen2.5:0.5b -> xs-loc-fre-qwen2.5-0.5b:latest"]
    assert set(client.calls) == {"GET /api/tags"}
    assert emulator.get("/api/tags")["models"] == []
    assert not (emulator.models / "manifests").exists() or not any((emulator.models / "manifests").rglob("*.*"))


def test_absent_deletes_only_when_present(emulator):
    ensure(emulator, name="all-minilm")
    gone, client = ensure(emulator, name="all-minilm:latest", state="absent")
    assert gone.changed and gone.actions == ["delete all-minilm:latest"]
    assert gone.model == {"name": "all-minilm:latest", "digest": None, "size": None}
    assert emulator.get("/api/tags")["models"] == []
    assert not list((emulator.models / "blobs").iterdir()), "delete must remove the model's blobs"
    again, client = ensure(emulator, name="all-minilm", state="absent")
    assert not again.changed
    assert "DELETE /api/delete" not in client.calls


def test_unknown_tag_fails_with_the_server_text_and_is_not_retried(emulator):
    with pytest.raises(OllamaError) as caught:
        ensure(emulator, name="llama3:70b-typo", retries=3)
    assert "pull model manifest: file does not exist" in str(caught.value)
    assert emulator.stats()["POST /api/pull"] == 1
    assert emulator.get("/api/tags")["models"] == []


def test_api_down_fails_naming_the_url():
    client = OllamaClient("127.0.0.1:9", timeout=2)
    with pytest.raises(OllamaError) as caught:
        ensure_model(client, ModelRequest(name="llama3"), False)
    assert "http://127.0.0.1:9/api/tags" in str(caught.value)


@pytest.mark.parametrize("mode", ["error", "drop"])
def test_a_pull_that_dies_midway_is_retried_and_resumes(emulator, mode):
    emulator.post("/_test_double/fail_pull", {"model": "smollm2:135m", "times": 1, "mode": mode})
    result, client = ensure(emulator, name="smollm2:135m", retries=2)
    assert result.changed and result.attempts == 2
    assert client.calls["POST /api/pull"] == 2
    total = emulator.get("/api/tags")["models"][0]["size"]
    # the second attempt resumed the partial blob: fewer bytes than the whole model
    assert 0 < result.bytes_pulled < total
    assert not list((emulator.models / "blobs").glob("*-partial"))


def test_pull_failing_more_often_than_retries_gives_up_clearly(emulator):
    emulator.post("/_test_double/fail_pull", {"model": "smollm2:135m", "times": 5})
    with pytest.raises(OllamaError) as caught:
        ensure(emulator, name="smollm2:135m", retries=1)
    assert "failed 2 times" in str(caught.value)
    assert "max retries exceeded" in str(caught.value)


def test_latest_reports_change_only_when_the_digest_changes(emulator, tmp_path, monkeypatch):
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"models": {"tinyllama": {"tags": {"1.1b": {"revision": 1}}}}}))
    monkeypatch.setenv("OLLAMA_TEST_DOUBLE_REGISTRY", str(registry))
    first, _client = ensure(emulator, name="tinyllama", state="latest")
    assert first.changed
    same, client = ensure(emulator, name="tinyllama", state="latest")
    assert same.pulled and not same.changed
    assert client.calls["POST /api/pull"] == 1
    registry.write_text(json.dumps({"models": {"tinyllama": {"tags": {"1.1b": {"revision": 2}}}}}))
    newer, _client = ensure(emulator, name="tinyllama", state="latest")
    assert newer.changed
    assert newer.model["digest"] != first.model["digest"]
    assert newer.diff["before"] != newer.diff["after"]


def test_latest_in_check_mode_on_a_present_model_warns_and_sends_nothing(emulator):
    ensure(emulator, name="tinyllama")
    result, client = ensure(emulator, check_mode=True, name="tinyllama", state="latest")
    assert not result.changed
    assert result.warnings
    assert "POST /api/pull" not in client.calls


def test_alias_is_created_once_and_removed_with_the_model(emulator):
    alias = "XL-LOC-FRE-qwen2.5-coder-32b"
    first, _client = ensure(emulator, name="qwen2.5-coder:32b", alias=alias)
    assert first.changed
    names = {m["name"]: m["digest"] for m in emulator.get("/api/tags")["models"]}
    # The alias is created under its normalised (lower-case) name, as plan.json and the gateway name it.
    assert names[f"{alias.lower()}:latest"] == names["qwen2.5-coder:32b"]
    again, client = ensure(emulator, name="qwen2.5-coder:32b", alias=alias)
    assert not again.changed
    assert "POST /api/copy" not in client.calls
    gone, _client = ensure(emulator, name="qwen2.5-coder:32b", alias=alias, state="absent")
    assert gone.changed
    assert emulator.get("/api/tags")["models"] == []


def test_every_alias_of_a_list_is_created_and_an_upper_case_request_matches(emulator):
    first, _client = ensure(emulator, name="Registry.Ollama.AI/library/Qwen2.5-Coder:32B", aliases=("Team-Coder", "coder"))
    assert first.changed and first.model["name"] == "qwen2.5-coder:32b"
    names = sorted(m["name"] for m in emulator.get("/api/tags")["models"])
    assert names == ["coder:latest", "qwen2.5-coder:32b", "team-coder:latest"]
    assert [a["name"] for a in first.aliases] == ["team-coder:latest", "coder:latest"]
    again, client = ensure(emulator, name="qwen2.5-coder:32b", aliases=("TEAM-CODER", "Coder:latest"))
    assert not again.changed and "POST /api/copy" not in client.calls and "POST /api/pull" not in client.calls


def test_a_model_that_does_not_fit_fails_before_writing_it(emulator, tmp_path):
    client = OllamaClient(emulator.url, timeout=10)
    request = ModelRequest(name="llama3.1:405b", models_dir=str(emulator.models), retry_delay=0)
    with pytest.raises(OllamaError) as caught:
        ensure_model(client, request, False, free_probe=lambda path: (path, 1000), sleep=no_sleep)
    message = str(caught.value)
    assert "does not fit" in message and str(emulator.models) in message
    assert client.calls["POST /api/pull"] == 1, "a full disk is not a reason to retry"
    assert emulator.get("/api/tags")["models"] == []


def test_disk_reserve_counts_against_free_space(emulator):
    client = OllamaClient(emulator.url, timeout=10)
    request = ModelRequest(name="all-minilm", models_dir=str(emulator.models), disk_reserve_mb=1)
    with pytest.raises(OllamaError, match="kept in reserve"):
        ensure_model(client, request, False, free_probe=lambda path: (path, 1024 * 1024))
    request.disk_reserve_mb = 0
    assert ensure_model(client, request, False, free_probe=lambda path: (path, 1024 * 1024)).changed


def test_keep_alive_warms_the_model_up(emulator):
    result, client = ensure(emulator, name="tinyllama", keep_alive="10m")
    assert client.calls["POST /api/generate"] == 1
    assert [m["name"] for m in emulator.get("/api/ps")["models"]] == ["tinyllama:latest"]
    assert result.changed


def test_show_returns_none_for_a_missing_model(emulator):
    client = OllamaClient(emulator.url)
    assert client.show("nothing-here") is None
    ensure(emulator, name="nomic-embed-text")
    assert "embedding" in client.show("nomic-embed-text")["capabilities"]


def test_keep_alive_warms_up_chat_and_embedding_models(emulator):
    """Catalog `keep_alive`: loaded after the pull; embedding models (no /api/generate) through /api/embed."""
    for name in ("tinyllama", "nomic-embed-text"):
        result, client = ensure(emulator, name=name, keep_alive="10m")
        assert result.changed and not result.warnings
        assert client.calls.get("POST /api/generate" if name == "tinyllama" else "POST /api/embed") == 1
    loaded = sorted(m["name"] for m in emulator.get("/api/ps")["models"])
    assert loaded == ["nomic-embed-text:latest", "tinyllama:latest"]
