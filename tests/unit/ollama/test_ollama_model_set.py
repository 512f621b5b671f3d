"""ollama_model_set: a node's whole model set in one call, against the Ollama test double."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import OllamaClient, OllamaError
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import normalize_model_name
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_model_set import (
    ModelSpec,
    SetRequest,
    ensure_model_set,
    failure_message,
    installed_names,
    model_specs,
    prune_candidates,
)


def no_sleep(_seconds: float) -> None:
    return None


def reconcile(emu, models, check_mode=False, **kwargs):
    client = OllamaClient(emu.url, timeout=10)
    request = SetRequest(models=model_specs(models), retry_delay=0, **kwargs)
    return ensure_model_set(client, request, check_mode, sleep=no_sleep), client


def listed(emu) -> list[str]:
    return sorted(m["name"] for m in emu.get("/api/tags")["models"])


def preinstall(emu, names):
    for name in names:
        emu.post("/api/pull", {"model": name, "stream": False})
    emu.reset_stats()


@pytest.mark.parametrize(
    ("installed", "wanted", "pulled", "aliases"),
    [
        ([], [{"name": "tinyllama"}], ["tinyllama:latest"], []),
        ([], [{"name": "tinyllama", "aliases": ["Tiny"]}, {"name": "all-minilm"}],
         ["tinyllama:latest", "all-minilm:latest"], ["tiny:latest"]),
        (["tinyllama"], [{"name": "tinyllama:latest", "aliases": ["tiny", "T2"]}, {"name": "smollm2:135m"}],
         ["smollm2:135m"], ["tiny:latest", "t2:latest"]),
        (["tinyllama", "all-minilm"], [{"name": "TinyLlama"}, {"name": "registry.ollama.ai/library/all-minilm"}],
         [], []),
    ],
    ids=["one-missing", "two-missing-one-alias", "one-present-one-missing", "all-present"],
)
def test_one_call_pulls_the_missing_aliases_and_skips_the_present(emulator, installed, wanted, pulled, aliases):
    preinstall(emulator, installed)
    first, client = reconcile(emulator, wanted)
    assert first.pulled == pulled and first.aliases_created == aliases
    assert first.changed is bool(pulled or aliases)
    assert not first.failures and not first.removed
    assert client.calls.get("POST /api/pull", 0) == len(pulled)
    assert [entry["name"] for entry in first.models] == [normalize_model_name(m["name"]) for m in wanted]
    names = listed(emulator)
    for name in pulled + aliases:
        assert name in names
    digests = {m["name"]: m["digest"] for m in emulator.get("/api/tags")["models"]}
    assert all(digests[alias] in digests.values() for alias in aliases)
    if first.changed:
        assert first.diff["before"] != first.diff["after"]
        assert all(f"{name}\n" in first.diff["after"] for name in pulled + aliases)
    # converged: one /api/tags read for the whole set, no pull, no copy, no change
    again, client = reconcile(emulator, wanted)
    assert not again.changed and not again.pulled and not again.aliases_created and not again.diff
    assert dict(client.calls) == {"GET /api/tags": 1}
    assert all(not entry["changed"] and not entry["failed"] for entry in again.models)


@pytest.mark.parametrize(
    ("installed", "wanted", "keep", "removed"),
    [
        (["tinyllama", "all-minilm"], [{"name": "tinyllama"}], [], ["all-minilm:latest"]),
        (["tinyllama", "all-minilm"], [{"name": "tinyllama"}], ["All-MiniLM"], []),
        (["tinyllama", "all-minilm", "smollm2:135m"], [], ["smollm2:135m"], ["all-minilm:latest", "tinyllama:latest"]),
        (["tinyllama"], [{"name": "tinyllama", "aliases": ["tiny"]}], [], []),
        (["tinyllama", "smollm2:135m"], [{"name": "all-minilm"}], [], ["smollm2:135m", "tinyllama:latest"]),
    ],
    ids=["unlisted", "kept", "empty-set-keeps-only-kept", "alias-is-wanted", "pull-then-prune"],
)
def test_prune_removes_only_the_unlisted_and_not_kept(emulator, installed, wanted, keep, removed):
    preinstall(emulator, installed)
    result, client = reconcile(emulator, wanted, prune=True, prune_keep=tuple(keep))
    assert sorted(result.removed) == removed
    assert client.calls.get("DELETE /api/delete", 0) == len(removed)
    names = listed(emulator)
    assert not set(removed) & set(names)
    expected = ({f"{n}:latest" if ":" not in n else n for n in installed} - set(removed)) | set(result.pulled) \
        | set(result.aliases_created)
    assert set(names) == expected
    again, client = reconcile(emulator, wanted, prune=True, prune_keep=tuple(keep))
    assert not again.changed and not again.removed and "DELETE /api/delete" not in client.calls


def test_without_prune_nothing_is_deleted(emulator):
    preinstall(emulator, ["tinyllama", "all-minilm"])
    result, client = reconcile(emulator, [{"name": "tinyllama"}])
    assert not result.changed and not result.removed and "DELETE /api/delete" not in client.calls
    assert listed(emulator) == ["all-minilm:latest", "tinyllama:latest"]


@pytest.mark.parametrize(
    ("installed", "wanted", "pulled", "aliases", "removed"),
    [
        ([], [{"name": "tinyllama", "aliases": ["tiny"]}], ["tinyllama:latest"], ["tiny:latest"], []),
        (["all-minilm"], [{"name": "tinyllama"}], ["tinyllama:latest"], [], ["all-minilm:latest"]),
        (["tinyllama"], [{"name": "tinyllama"}], [], [], []),
    ],
    ids=["pull-and-alias", "pull-and-prune", "converged"],
)
def test_check_mode_reports_what_would_change_and_changes_nothing(
        emulator, installed, wanted, pulled, aliases, removed):
    preinstall(emulator, installed)
    before = emulator.get("/api/tags")["models"]
    result, client = reconcile(emulator, wanted, check_mode=True, prune=True)
    assert (result.pulled, result.aliases_created, result.removed) == (pulled, aliases, removed)
    assert result.changed is bool(pulled or aliases or removed)
    assert set(client.calls) == {"GET /api/tags"} and client.calls["GET /api/tags"] == 1
    assert emulator.get("/api/tags")["models"] == before
    assert all(not entry["pulled"] for entry in result.models)


def test_a_bad_tag_fails_naming_the_model_and_url_and_reports_the_others(emulator):
    preinstall(emulator, ["smollm2:135m"])
    wanted = [{"name": "tinyllama"}, {"name": "llama3:70b-typo"}, {"name": "all-minilm", "aliases": ["mini"]}]
    result, client = reconcile(emulator, wanted, prune=True, retries=3)
    assert [f["name"] for f in result.failures] == ["llama3:70b-typo"]
    failure = result.failures[0]
    assert "file does not exist" in failure["msg"] and failure["url"] == f"{client.base}/api/pull"
    # the others were still done, and are reported as done
    assert result.pulled == ["tinyllama:latest", "all-minilm:latest"]
    assert result.aliases_created == ["mini:latest"]
    assert [(e["name"], e["failed"]) for e in result.models] == [
        ("tinyllama:latest", False), ("llama3:70b-typo", True), ("all-minilm:latest", False)]
    # a permanent error is not retried; pruning is skipped while the set is incomplete
    assert emulator.stats()["POST /api/pull"] == 3
    assert not result.removed and "smollm2:135m" in listed(emulator)
    assert any("nothing pruned" in warning for warning in result.warnings)
    message = failure_message(client, result, len(wanted))
    assert "llama3:70b-typo" in message and f"{client.base}/api/pull" in message
    assert "done: tinyllama:latest, all-minilm:latest" in message


def test_an_unreachable_server_fails_at_the_first_read_naming_the_url():
    client = OllamaClient("127.0.0.1:9", timeout=2)
    with pytest.raises(OllamaError) as caught:
        ensure_model_set(client, SetRequest(models=model_specs([{"name": "tinyllama"}])), False)
    assert "http://127.0.0.1:9/api/tags" in str(caught.value)


def test_a_server_that_goes_away_midway_skips_the_rest(emulator):
    client = OllamaClient(emulator.url, timeout=10)
    request = SetRequest(models=model_specs([{"name": "tinyllama"}, {"name": "all-minilm"}, {"name": "smollm2:135m"}]),
                         retry_delay=0)
    done = []

    def on_done(name, failed):
        done.append((name, failed))
        if name == "tinyllama:latest":
            client.base = "http://127.0.0.1:9"  # the server is gone from the second model on

    request.on_done = on_done
    result = ensure_model_set(client, request, False, sleep=no_sleep)
    assert result.pulled == ["tinyllama:latest"]
    assert [f["name"] for f in result.failures] == ["all-minilm:latest"]
    assert "127.0.0.1:9" in result.failures[0]["msg"]
    assert result.models[2]["skipped"] and "not attempted" in result.models[2]["msg"]
    assert done == [("tinyllama:latest", False), ("all-minilm:latest", True)]


def test_progress_is_reported_per_model(emulator):
    seen = []
    result, _client = reconcile(emulator, [{"name": "tinyllama"}, {"name": "all-minilm"}],
                                on_progress=lambda name, attempt, pull: seen.append(name))
    assert result.changed
    assert list(dict.fromkeys(seen)) == ["tinyllama:latest", "all-minilm:latest"]


@pytest.mark.parametrize(
    ("installed", "wanted", "keep", "expected"),
    [
        (["llama3:latest", "mistral:7b"], [ModelSpec("Llama3")], [], ["mistral:7b"]),
        (["llama3:latest", "coder:latest"], [ModelSpec("llama3", ("Coder",))], [], []),
        (["llama3:latest", "mistral:7b"], [], ["registry.ollama.ai/library/mistral:7b"], ["llama3:latest"]),
        (["Llama3", "llama3:latest"], [], [], ["llama3:latest"]),
        ([], [ModelSpec("llama3")], [], []),
    ],
    ids=["unlisted", "alias-kept", "keep-normalised", "same-model-twice", "nothing-installed"],
)
def test_prune_candidates(installed, wanted, keep, expected):
    assert prune_candidates(installed, wanted, keep) == expected


def test_installed_names_are_normalised_once_each():
    tags = [{"name": "Llama3"}, {"model": "llama3:latest"}, {"name": "mistral:7b"}]
    assert installed_names(tags) == ["llama3:latest", "mistral:7b"]


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ([{"aliases": []}], "non-empty 'name'"),
        ([{"name": " "}], "non-empty 'name'"),
        ([42], "non-empty 'name'"),
        ([{"name": "llama3", "aliases": "x"}], "'aliases' must be a list"),
    ],
)
def test_model_specs_refuse_bad_entries(entries, error):
    with pytest.raises(ValueError, match=error):
        model_specs(entries)


def test_model_specs_take_the_plan_entries_as_they_are():
    specs = model_specs([{"name": "llama3", "aliases": ["a"], "keep_alive": -1, "source": {"kind": "registry"}},
                         "tinyllama"])
    assert specs == [ModelSpec("llama3", ("a",), "-1"), ModelSpec("tinyllama")]
