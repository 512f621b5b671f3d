"""The Ollama test double answers like Ollama: stream shapes, error texts, on-disk layout, CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request

import ollama_test_double as double
import pytest
from harness import SCRIPT, emulator_process


def raw_request(url: str, method: str, body: dict) -> tuple[int, list[dict]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, [json.loads(line) for line in raw.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("http", "127.0.0.1", 11434)),
        ("127.0.0.1:11434", ("http", "127.0.0.1", 11434)),
        ("0.0.0.0", ("http", "0.0.0.0", 11434)),
        (":8080", ("http", "0.0.0.0", 8080)),
        ("http://10.1.2.3:11500", ("http", "10.1.2.3", 11500)),
        ("https://example.test", ("https", "example.test", 443)),
        ("[::1]:11434", ("http", "::1", 11434)),
    ],
)
def test_ollama_host_parsing_matches_envconfig(value, expected):
    assert double.parse_host(value) == expected


def test_pull_streams_ndjson_and_lays_out_the_store_like_ollama(emulator):
    status, events = raw_request(emulator.url + "/api/pull", "POST", {"model": "tinyllama"})
    assert status == 200
    statuses = [e["status"] for e in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer_events = [e for e in events if "digest" in e]
    assert all(e["status"] == f"pulling {e['digest'][7:19]}" and e["total"] > 0 for e in layer_events)
    manifest_path = emulator.models / "manifests/registry.ollama.ai/library/tinyllama/latest"
    manifest = json.loads(manifest_path.read_bytes())
    for layer in [*manifest["layers"], manifest["config"]]:
        blob = emulator.models / "blobs" / layer["digest"].replace(":", "-")
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == layer["digest"]
        assert blob.stat().st_size == layer["size"]
    tags = emulator.get("/api/tags")["models"]
    assert tags[0]["digest"] == hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    assert tags[0]["details"]["parameter_size"] == "1B"


def test_latest_and_its_target_tag_share_blobs(emulator):
    emulator.post("/api/pull", {"model": "llama3.2", "stream": False})
    emulator.post("/api/pull", {"model": "llama3.2:3b", "stream": False})
    tags = {m["name"]: m["digest"] for m in emulator.get("/api/tags")["models"]}
    assert tags["llama3.2:latest"] == tags["llama3.2:3b"]


def test_unknown_model_errors_have_ollamas_text_and_status(emulator):
    status, events = raw_request(emulator.url + "/api/pull", "POST", {"model": "nosuchmodel", "stream": False})
    assert (status, events) == (500, [{"error": "pull model manifest: file does not exist"}])
    status, events = raw_request(emulator.url + "/api/pull", "POST", {"model": "nosuchmodel"})
    assert status == 200
    assert events == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    status, events = raw_request(emulator.url + "/api/delete", "DELETE", {"model": "nosuchmodel"})
    assert (status, events) == (404, [{"error": "model 'nosuchmodel' not found"}])
    status, events = raw_request(emulator.url + "/api/copy", "POST", {"source": "nope", "destination": "x"})
    assert (status, events) == (404, [{"error": 'model "nope" not found'}])


def test_offline_registry_fails_like_a_host_without_internet(emulator, monkeypatch):
    monkeypatch.setenv("OLLAMA_TEST_DOUBLE_OFFLINE", "1")
    status, events = raw_request(emulator.url + "/api/pull", "POST", {"model": "llama3", "stream": False})
    assert status == 500
    assert events[0]["error"].startswith('pull model manifest: Get "https://registry.ollama.ai/v2/library/llama3')


def test_generation_names_the_serving_node_and_is_deterministic(emulator):
    emulator.post("/api/pull", {"model": "tinyllama", "stream": False})
    body = {"model": "tinyllama", "messages": [{"role": "user", "content": "ping"}], "stream": False}
    first = emulator.post("/api/chat", body)
    assert "node=unit-node" in first["message"]["content"]
    assert emulator.post("/api/chat", body)["message"]["content"] == first["message"]["content"]
    openai = emulator.post("/v1/chat/completions", {"model": "tinyllama", "messages": body["messages"]})
    assert openai["choices"][0]["message"]["content"] == first["message"]["content"]
    status, lines = raw_request(emulator.url + "/api/generate", "POST", {"model": "tinyllama", "prompt": "hi"})
    assert status == 200 and lines[-1]["done"] is True
    assert "".join(line["response"] for line in lines).startswith("[ollama-test-double node=unit-node")
    status, events = raw_request(emulator.url + "/api/chat", "POST", {"model": "absent-model", "messages": []})
    assert (status, events) == (404, [{"error": "model 'absent-model' not found"}])


@pytest.mark.parametrize(("stream", "num_predict", "pieces"), [
    (False, 1, 1), (True, 1, 1), (True, 3, 3), (False, None, None), (True, 0, None),
], ids=["whole-1", "stream-1", "stream-3", "whole-uncapped", "stream-0-is-no-cap"])
def test_num_predict_caps_the_pieces_and_token_delay_slows_them(emulator, stream, num_predict, pieces):
    """Gateway tests rely on both: LiteLLM's health check asks for few tokens (num_predict), slow answers
    stand for large models (token delay per piece, settable while serving)."""
    emulator.post("/api/pull", {"model": "tinyllama", "stream": False})
    body = {"model": "tinyllama", "messages": [{"role": "user", "content": "ping pong"}], "stream": stream}
    if num_predict is not None:
        body["options"] = {"num_predict": num_predict}
    full = emulator.post("/api/chat", {**body, "stream": False, "options": {}})["message"]["content"]
    status, lines = raw_request(emulator.url + "/api/chat", "POST", body)
    assert status == 200 and lines[-1]["done"] is True
    text = "".join(line["message"]["content"] for line in lines)
    if pieces is None:
        assert text == full
    else:
        assert text.split() == full.split()[:pieces]
    emulator.post("/_test_double/token_delay", {"seconds": 0.05})
    try:
        assert emulator.emulator.token_delay == 0.05
    finally:
        emulator.post("/_test_double/token_delay", {"seconds": 0})


def test_embeddings_are_deterministic_unit_vectors(emulator):
    emulator.post("/api/pull", {"model": "nomic-embed-text", "stream": False})
    one = emulator.post("/api/embed", {"model": "nomic-embed-text", "input": ["a", "b"]})["embeddings"]
    assert len(one) == 2 and len(one[0]) == 768
    assert abs(sum(v * v for v in one[0]) - 1) < 1e-3
    assert one[0] != one[1]
    openai = emulator.post("/v1/embeddings", {"model": "nomic-embed-text", "input": "a"})
    assert openai["data"][0]["embedding"] == one[0]
    assert [m["id"] for m in emulator.get("/v1/models")["data"]] == ["nomic-embed-text:latest"]


def test_cli_version_list_and_pull_talk_to_the_server(tmp_path):
    env_models = tmp_path / "m"
    with emulator_process(env_models, node="cli-node") as emu:
        env = {"OLLAMA_HOST": emu.url, "PATH": "/usr/bin:/bin", "OLLAMA_TEST_DOUBLE_BAKED_VERSION": "0.30.10"}

        def run(*args):
            return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                                  timeout=30, check=False)

        assert run("--version").stdout == "ollama version is 0.30.10\n"
        assert run("pull", "all-minilm").returncode == 0
        listing = run("list").stdout.splitlines()
        assert listing[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
        assert listing[1].startswith("all-minilm:latest")
        bad = run("pull", "all-minilm:nope")
        assert bad.returncode == 1 and "Error: pull model manifest: file does not exist" in bad.stderr
    down = subprocess.run([sys.executable, str(SCRIPT), "-v"], capture_output=True, text=True, timeout=30,
                          env={"OLLAMA_HOST": "127.0.0.1:9", "OLLAMA_TEST_DOUBLE_BAKED_VERSION": "0.17.1"}, check=False)
    assert down.stdout.splitlines() == ["Warning: could not connect to a running Ollama instance",
                                        "Warning: client version is 0.17.1"]
