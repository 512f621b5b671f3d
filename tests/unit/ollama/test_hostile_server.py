"""The Ollama client against a HOSTILE server: every misbehaviour ends as an OllamaError naming the URL.

Each case runs against a real HTTP server on 127.0.0.1 (``tests/doubles/hostile_ollama.py``) with
small timeouts, and must end within a generous bound; no case may leak a TimeoutError,
AttributeError or TypeError.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import (
    MAX_BODY_BYTES,
    MAX_LINE_BYTES,
    ModelRequest,
    OllamaClient,
    OllamaError,
    check_pull_event,
    check_tags,
    ensure_model,
    is_transient,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "doubles"))

from hostile_ollama import ENOSPC_TEXT, SCENARIOS, hostile_ollama

BOUND = 5.0  # seconds; every case is built to end in about one second
TIMEOUT = 0.5  # the client's per-read timeout in these tests


def no_sleep(_seconds: float) -> None:
    return None


def failure(scenario: str, action: Callable[[OllamaClient], Any], timeout: float = TIMEOUT) -> tuple[OllamaError, Any]:
    """Run ``action`` against the scenario; return the OllamaError it raised and the server."""
    with hostile_ollama(scenario) as server:
        client = OllamaClient(server.url, timeout=timeout)
        started = time.monotonic()
        with pytest.raises(OllamaError) as caught:
            action(client)
        elapsed = time.monotonic() - started
        assert elapsed < BOUND, f"{scenario}: took {elapsed:.1f} s"
        return caught.value, server


def ensure(request: ModelRequest) -> Callable[[OllamaClient], Any]:
    return lambda client: ensure_model(client, request, False, sleep=no_sleep)


TAGS = ("GET", "/api/tags")


CASES = [
    ("hang_headers", TAGS, OllamaClient.tags, ["no answer", f"within {TIMEOUT:g} s"], "timeout"),
    ("hang_body", TAGS, OllamaClient.tags, ["stopped sending", "after 11 bytes"], "timeout"),
    ("reset", TAGS, OllamaClient.tags, ["closed the connection without answering"], "closed"),
    ("json_list", TAGS, OllamaClient.tags, ["a list where a JSON object was expected"], "shape"),
    ("models_str", TAGS, OllamaClient.tags, ["'models' is a string, expected a list", "abc"], "shape"),
    ("models_entry_int", TAGS, OllamaClient.tags, ["an entry of 'models' is a number"], "shape"),
    ("models_size_str", TAGS, OllamaClient.tags, ["'size' is a string, expected a byte count"], "shape"),
    ("version_number", ("GET", "/api/version"), OllamaClient.version, ["'version' is a number"], "shape"),
    ("json_list", ("POST", "/api/show"), lambda c: c.show("llama3"), ["a list where a JSON object"], "shape"),
    ("json_list", ("POST", "/api/generate"), lambda c: c.load("llama3", "5m"), ["a list where"], "shape"),
    ("not_json", TAGS, OllamaClient.tags, ["did not answer with JSON", "502 Bad Gateway"], "json"),
    ("deep_json", TAGS, OllamaClient.tags, ["did not answer with JSON"], "json"),
    ("huge_body", TAGS, OllamaClient.tags, [f"larger than {MAX_BODY_BYTES} bytes"], "too_large"),
    ("trickle_body", TAGS, OllamaClient.tags, [f"not complete within {TIMEOUT:g} s", "trickling"], "deadline"),
    ("close_mid_body", TAGS, OllamaClient.tags, ["closed after 100 bytes", "900 bytes short"], "closed"),
    ("close_mid_chunk", TAGS, OllamaClient.tags, ["broke off after"], "closed"),
    ("hang_body", ("DELETE", "/api/delete"), lambda c: c.delete("llama3"), ["stopped sending"], "timeout"),
    ("pull_total_dict", ("POST", "/api/pull"), lambda c: list(c.pull_stream("llama3")),
     ["'total' is an object", "expected a byte count"], "shape"),
    ("pull_line_list", ("POST", "/api/pull"), lambda c: list(c.pull_stream("llama3")),
     ["a list where a JSON object was expected"], "shape"),
    ("pull_long_line", ("POST", "/api/pull"), lambda c: list(c.pull_stream("llama3")),
     [f"longer than {MAX_LINE_BYTES} bytes"], "too_large"),
]


@pytest.mark.parametrize(("scenario", "endpoint", "action", "words", "kind"), CASES,
                         ids=[f"{case[0]}-{case[1][1].rsplit('/', 1)[-1]}" for case in CASES])
def test_every_misbehaviour_is_an_ollama_error_naming_the_request(scenario, endpoint, action, words, kind):
    error, server = failure(scenario, action)
    method, path = endpoint
    message = str(error)
    assert f"{server.url}{path}" in message and method in message, message
    for word in words:
        assert word in message, message
    assert error.kind == kind
    assert error.url == server.url + path


def test_the_hostile_server_offers_every_scenario_used_here():
    assert {"hang_headers", "hang_body", "json_list", "models_str", "pull_total_dict", "pull_trickle",
            "huge_body", "pull_enospc", "close_mid_body"} <= set(SCENARIOS)


def test_a_trickling_pull_ends_at_pull_timeout_naming_the_bytes_done():
    request = ModelRequest(name="tinyllama", retries=3, retry_delay=0, pull_timeout=1.0)
    error, server = failure("pull_trickle", ensure(request), timeout=2.0)
    message = str(error)
    assert f"POST {server.url}/api/pull" in message
    assert "did not finish within pull_timeout=1 s" in message
    assert "4096 of 1000000000 bytes of its layers written" in message
    assert "bytes of progress stream received" in message
    assert error.kind == "deadline" and not error.transient
    assert error.bytes_read and error.bytes_read > 0
    assert server.requests["POST /api/pull"] == 1, "a pull that ran out of time is not started again"


@pytest.mark.parametrize("scenario", ["pull_enospc", "pull_enospc_http"])
def test_a_full_disk_on_the_server_is_permanent_and_names_the_node(scenario):
    request = ModelRequest(name="tinyllama", retries=3, retry_delay=0)
    error, server = failure(scenario, ensure(request))
    message = str(error)
    assert f"POST {server.url}/api/pull" in message
    assert "the disk of the Ollama server on 127.0.0.1 is full" in message
    assert "no space left on device" in message and "OLLAMA_MODELS" in message
    assert error.kind == "disk_full" and not error.transient
    assert server.requests["POST /api/pull"] == 1, "a full disk is not a reason to retry"


def test_a_pull_cut_mid_line_is_transient_and_retried_then_reported():
    request = ModelRequest(name="tinyllama", retries=1, retry_delay=0)
    error, server = failure("pull_close_mid_line", ensure(request))
    message = str(error)
    assert "failed 2 times" in message and f"POST {server.url}/api/pull" in message
    assert "broke off" in message
    assert server.requests["POST /api/pull"] == 2


@pytest.mark.parametrize(
    "message",
    [
        ENOSPC_TEXT,
        f"max retries exceeded: {ENOSPC_TEXT}",
        "write C:\\Users\\x\\.ollama\\models\\blobs\\sha256-1-partial: There is not enough space on the disk.",
        "write /srv/ollama/blobs/x: disk quota exceeded",
    ],
)
def test_disk_full_texts_are_never_transient(message):
    assert not is_transient(message)


def test_the_bounded_reads_still_accept_a_normal_server(emulator):
    client = OllamaClient(emulator.url, timeout=5, max_body_bytes=64 * 1024, max_line_bytes=4096)
    assert client.tags() == []
    events = list(client.pull_stream("all-minilm", deadline=client.clock() + 30))
    assert events[-1]["status"] == "success"
    assert all(isinstance(event.get("total", 0), int) for event in events)
    assert [entry["name"] for entry in client.tags()] == ["all-minilm:latest"]
    assert client.version()


def test_retries_stop_when_pull_timeout_leaves_no_time_for_them():
    request = ModelRequest(name="tinyllama", retries=3, retry_delay=5, pull_timeout=1.0)
    error, server = failure("pull_close_mid_line", ensure(request))
    assert "failed after 1 attempts and no time is left within pull_timeout=1 s" in str(error)
    assert "broke off" in str(error) and f"POST {server.url}/api/pull" in str(error)
    assert server.requests["POST /api/pull"] == 1


WHERE = "GET http://node-1:11434/api/tags"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"models": [{"name": ""}]}, "has no 'name'"),
        ({"models": [{"model": 5}]}, "has no 'name'"),
        ({"models": [{"name": "a", "digest": 5}]}, "'digest' is a number"),
        ({"models": [{"name": "a", "size": True}]}, "'size' is a boolean"),
        ({"models": {"name": "a"}}, "'models' is an object"),
        ("models", "a string where a JSON object"),
    ],
)
def test_tags_shapes(payload, why):
    with pytest.raises(OllamaError, match=why) as caught:
        check_tags(payload, WHERE)
    assert WHERE in str(caught.value) and caught.value.url == "http://node-1:11434/api/tags"


def test_tags_shapes_accept_what_ollama_sends():
    entry = {"name": "llama3:latest", "model": "llama3:latest", "digest": "365c", "size": 4661224676,
             "details": {"family": "llama"}, "modified_at": "2025-01-01T00:00:00Z"}
    assert check_tags({"models": [entry]}, WHERE) == [entry]
    assert check_tags({"models": None}, WHERE) == [] == check_tags({}, WHERE)


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"status": "x", "total": {"a": 1}}, "'total' is an object"),
        ({"status": "x", "completed": "12"}, "'completed' is a string"),
        ({"status": "x", "total": -1}, "'total' is a number -1"),
        ({"status": "x", "total": float("inf")}, "'total' is a number inf"),
        ({"status": "x", "total": True}, "'total' is a boolean"),
        ({"status": ["x"]}, "'status' is a list"),
        ({"digest": 5}, "'digest' is a number"),
    ],
)
def test_pull_event_shapes(event, why):
    with pytest.raises(OllamaError, match=why):
        check_pull_event(event, "POST http://node-1:11434/api/pull")


def test_pull_event_counts_become_ints():
    event = check_pull_event({"status": "pulling", "digest": "sha256:x", "total": 1000.0, "completed": None}, WHERE)
    assert event["total"] == 1000 and isinstance(event["total"], int)
