#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache-2.0
"""Ansible module: reconcile a node's whole Ollama model set in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_model_set
short_description: Make a node's whole set of Ollama models present, aliased and (optionally) pruned in one call
description:
  - One call does for a list of models what M(pmoves.fleet.ollama_model) does for one with I(state=present),
    through the same HTTP API and the same logic (C(/api/tags), streamed C(/api/pull), C(/api/copy),
    C(/api/delete)); never the CLI. A converged node costs one module run and one C(/api/tags) read, however
    many models it has.
  - Names are compared normalised, so C(llama3) and C(llama3:latest) are the same model, and a model that is
    already listed is not pulled again.
  - A model that fails (unknown tag, a pull that keeps breaking off, a model that does not fit) does not stop the
    others; the task then fails naming every failed model, its request URL and cause, and still returns what was
    done for the others. After a failure that leaves nothing to try (the server cannot be reached, its disk is
    full) the remaining models are reported as skipped.
  - With I(prune), models that are installed but neither in I(models), nor an alias of one, nor in I(prune_keep)
    are deleted, after every model is in place; nothing is deleted when any model failed. With an empty
    I(models) and I(prune_keep), pruning deletes every model.
version_added: "0.3.0"
author: pmoves.fleet developers (@pmoves)
options:
  models:
    description:
      - The models the node should have, one mapping each.
      - An empty list is allowed (nothing to pull; with I(prune), everything not kept is deleted).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Model name as Ollama knows it, as I(name) of M(pmoves.fleet.ollama_model).
        type: str
        required: true
      aliases:
        description:
          - Additional names for the model, created with C(/api/copy), as I(aliases) of M(pmoves.fleet.ollama_model).
        type: list
        elements: str
        default: []
      keep_alive:
        description:
          - Load the model after it is present and keep it in memory this long, as I(keep_alive) of
            M(pmoves.fleet.ollama_model).
        type: str
      source:
        description:
          - Accepted and ignored, so the plan's entries (which say where a model comes from) can be passed as they are.
        type: raw
  prune:
    description:
      - Delete the installed models that are not wanted (see I(prune_keep)).
    type: bool
    default: false
  prune_keep:
    description:
      - Names never deleted by I(prune) (compared normalised), in addition to I(models) and their aliases.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - pmoves.fleet.attributes
  - pmoves.fleet.ollama_client
attributes:
  check_mode:
    support: full
    description:
      - Reports the pulls, copies and deletes that would happen (in C(pulled), C(aliases_created), C(removed))
        and sends none of them.
  diff_mode:
    support: full
    description: Shows the installed model names before and after.
  idempotent:
    support: full
    description: A second run with the same arguments reports no change and sends no pull, copy or delete.
notes:
  - Runs on the host that can reach the API (usually the Ollama node itself).
  - Return value C(api_calls) counts the requests per endpoint.
seealso:
  - module: pmoves.fleet.ollama_model
  - module: pmoves.fleet.ollama_blob_sync
"""

EXAMPLES = r"""
- name: Ollama | The node's models, in one call
  pmoves.fleet.ollama_model_set:
    models:
      - name: qwen2.5-coder:32b
        aliases: [XL-LOC-FRE-qwen2.5-coder-32b]
      - name: nomic-embed-text
        keep_alive: 30m
    models_dir: /var/lib/ollama/models

- name: Ollama | The plan's models, and nothing else
  pmoves.fleet.ollama_model_set:
    models: "{{ pmoves_node_plan.ollama.models }}"
    prune: true
    prune_keep: [llama3.2:1b]
"""

RETURN = r"""
models:
  description:
    - One entry per model of I(models), in order, with the keys M(pmoves.fleet.ollama_model) returns for it
      (C(model), C(actions), C(pulled), C(attempts), C(bytes_pulled), C(alias), C(aliases)) and C(name), C(changed),
      C(failed).
    - A failed model has C(failed=true), C(msg) and C(url); one not attempted after an earlier fatal failure has
      C(skipped=true) and C(msg).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "llama3:latest", "changed": true, "failed": false, "pulled": true, "attempts": 1,
            "actions": ["pull llama3:latest"], "bytes_pulled": 4661224676,
            "model": {"name": "llama3:latest", "digest": "365c0bd3...", "size": 4661224676}}]
pulled:
  description: Models pulled (in check mode, that would be pulled), normalised.
  returned: always
  type: list
  elements: str
  sample: ["llama3:latest"]
aliases_created:
  description: Aliases created or re-pointed (in check mode, that would be), normalised.
  returned: always
  type: list
  elements: str
  sample: ["xl-loc-fre-qwen2.5-coder-32b:latest"]
removed:
  description: Models deleted by I(prune) (in check mode, that would be deleted), normalised.
  returned: always
  type: list
  elements: str
  sample: ["mistral:7b"]
failed_models:
  description: Names of the models that failed (the task fails when it is not empty).
  returned: always
  type: list
  elements: str
actions:
  description: API operations performed (or, in check mode, that would be performed), over all models.
  returned: always
  type: list
  elements: str
  sample: ["pull llama3:latest", "delete mistral:7b"]
bytes_pulled:
  description: Bytes the pulls wrote, over all models.
  returned: always
  type: int
url:
  description: The URL of the first failed request.
  returned: failure
  type: str
api_calls:
  description: Requests sent, per C(METHOD /path).
  returned: always
  type: dict
  sample: {"GET /api/tags": 1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils import ollama_module
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import OllamaError
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_model_set import (
    SetRequest,
    ensure_model_set,
    failure_message,
    model_specs,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "models": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "aliases": {"type": "list", "elements": "str", "default": []},
                "keep_alive": {"type": "str"},
                "source": {"type": "raw"},
            }},
            "prune": {"type": "bool", "default": False},
            "prune_keep": {"type": "list", "elements": "str", "default": []},
            **ollama_module.client_argument_spec(),
        },
        supports_check_mode=True,
    )
    params = module.params
    option_error = ollama_module.client_option_error(params)
    if option_error:
        module.fail_json(msg=option_error)
    client = ollama_module.client_from_params(params)
    try:
        specs = model_specs(params["models"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    progress = ollama_module.progress_file(params, module.check_mode)
    reported: set[str] = set()

    def on_progress(name, attempt, pull):
        reported.add(name)
        ollama_module.report_pull(progress, name, attempt, pull)

    def on_done(name, failed):
        if name in reported:
            progress.finish(name, failed)

    request = SetRequest(
        models=specs,
        prune=params["prune"],
        prune_keep=tuple(params["prune_keep"]),
        on_progress=on_progress if progress is not None else None,
        on_done=on_done if progress is not None else None,
        **ollama_module.pull_settings(params),
    )
    try:
        result = ensure_model_set(client, request, module.check_mode)
    except (OllamaError, ValueError) as exc:
        ollama_module.close_progress(progress)
        module.fail_json(msg=f"ollama_model_set on {client.base}: {exc}", url=getattr(exc, "url", None),
                         models=[], pulled=[], removed=[], aliases_created=[], failed_models=[],
                         api_calls=dict(client.calls))
    ollama_module.close_progress(progress, result.warnings)
    for warning in result.warnings:
        module.warn(warning)
    output = {
        "changed": result.changed,
        "models": result.models,
        "pulled": result.pulled,
        "removed": result.removed,
        "aliases_created": result.aliases_created,
        "failed_models": [failure["name"] for failure in result.failures],
        "actions": result.actions,
        "bytes_pulled": result.bytes_pulled,
        "api_calls": dict(client.calls),
    }
    if module._diff and result.diff:
        output["diff"] = result.diff
    if result.failures:
        module.fail_json(msg=failure_message(client, result, len(specs)), url=result.failures[0]["url"], **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
