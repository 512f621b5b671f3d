# Copyright: pmoves.fleet developers
# Apache License 2.0 (see LICENSE)

"""Shared documentation of the Ollama client and pull options of ollama_model and ollama_model_set."""

from __future__ import annotations


class ModuleDocFragment:
    # The argument_spec of these options is module_utils/ollama_module.client_argument_spec(): keep both in step.
    DOCUMENTATION = r"""
options:
  host:
    description:
      - Base URL of the Ollama API. C(host:port) without a scheme means C(http); C(0.0.0.0) is
        reached through C(127.0.0.1).
    type: str
    default: http://127.0.0.1:11434
  timeout:
    description:
      - Seconds to wait for an API answer (for a pull, for the next progress line). An answer that is
        not streamed must also arrive completely within this time.
    type: float
    default: 60
  pull_timeout:
    description:
      - Overall seconds one model's pull may take, retries included; a pull still running then fails, naming
        the bytes done (Ollama keeps the partial download, so the next run resumes it).
      - C(0) means no overall limit (each read is still bounded by I(timeout)).
    type: float
    default: 3600
    version_added: "0.3.0"
  retries:
    description:
      - How many times a pull that broke off (connection lost, stream cut, C(max retries exceeded))
        is started again. Permanent errors such as an unknown tag are never retried.
    type: int
    default: 3
  retry_delay:
    description:
      - Seconds to wait before the first retry; later retries wait proportionally longer.
    type: float
    default: 2
  models_dir:
    description:
      - The server's OLLAMA_MODELS directory on this host. When given, free disk space there is
        compared with the sizes each pull announces before the data is written.
    type: path
  disk_reserve_mb:
    description:
      - Space in MiB that must stay free under I(models_dir) after each pull.
    type: int
    default: 0
  progress_file:
    description:
      - When set, each pull writes its progress (model name, bytes completed and total, rate, state; no secrets)
        to this JSON file, replaced atomically at most once a second, and removes it when the task ends. The file
        lists every model pulled in the call.
      - The C(pmoves apply) progress view sets it (through the action plugin of the module) only while the view is
        on; see C(docs/progress.md). The directory must exist. A file that cannot be written only turns the progress
        off (with a warning); the pull goes on.
    type: path
    version_added: "0.3.0"
"""
