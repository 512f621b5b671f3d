# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""What ``pmoves.fleet.ollama_model`` and ``pmoves.fleet.ollama_model_set`` share, defined once.

Both modules talk to the same API with the same client and pull the same way, so they take the same
client and pull options (documented once in ``plugins/doc_fragments/ollama_client.py``), check them
alike, build the client and the pull settings of their requests from them alike, and report pull
progress to the same file. Plain functions over the modules' ``params`` mapping (no AnsibleModule),
node-side: Python 3.8+.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import (
    DEFAULT_HOST,
    OllamaClient,
    PullProgress,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.pull_progress import ProgressFile


def client_argument_spec() -> dict[str, dict[str, Any]]:
    """The argument_spec entries of the options both modules take (a new dict on every call)."""
    return {
        "host": {"type": "str", "default": DEFAULT_HOST},
        "timeout": {"type": "float", "default": 60},
        "pull_timeout": {"type": "float", "default": 3600},
        "retries": {"type": "int", "default": 3},
        "retry_delay": {"type": "float", "default": 2},
        "models_dir": {"type": "path"},
        "disk_reserve_mb": {"type": "int", "default": 0},
        "progress_file": {"type": "path"},
    }


def client_option_error(params: Mapping[str, Any]) -> str | None:
    """Why the shared options cannot be used (a message for ``fail_json``), or None when they can."""
    if params["timeout"] <= 0 or params["pull_timeout"] < 0:
        return "timeout must be above 0 and pull_timeout 0 (no limit) or above"
    return None


def client_from_params(params: Mapping[str, Any]) -> OllamaClient:
    """The HTTP client for ``host``, each read bounded by ``timeout``."""
    return OllamaClient(params["host"], timeout=params["timeout"])


def pull_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The pull fields of ``ModelRequest`` / ``SetRequest`` from the shared options (negatives clamped to 0,
    ``pull_timeout`` 0 meaning no overall limit)."""
    return {
        "retries": max(0, params["retries"]),
        "retry_delay": max(0.0, params["retry_delay"]),
        "models_dir": params["models_dir"],
        "disk_reserve_mb": max(0, params["disk_reserve_mb"]),
        "pull_timeout": params["pull_timeout"] or None,
    }


def progress_file(params: Mapping[str, Any], check_mode: bool) -> ProgressFile | None:
    """The progress writer when ``progress_file`` is set; none in check mode (nothing is pulled)."""
    if params["progress_file"] and not check_mode:
        return ProgressFile(params["progress_file"])
    return None


def report_pull(progress: ProgressFile, name: str, attempt: int, pull: PullProgress) -> None:
    """Writes one pull's state to the progress file (the ``on_progress`` hook of both requests)."""
    progress.update(name, sum(layer.completed for layer in pull.layers.values()), pull.total_bytes,
                    pull.statuses[-1] if pull.statuses else "", attempt, pull.success)


def close_progress(progress: ProgressFile | None, warnings: list[str] | None = None) -> None:
    """Removes the progress file when the task ends; a file that could not be written becomes a warning."""
    if progress is None:
        return
    progress.remove()
    if progress.error and warnings is not None:
        warnings.append(progress.error)
