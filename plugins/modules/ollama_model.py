#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache-2.0
"""Ansible module: manage one Ollama model through the HTTP API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_model
short_description: Pull, update, alias or delete an Ollama model through the HTTP API
description:
  - Makes one model present, latest or absent on an Ollama server, using only the HTTP API
    (C(/api/tags), streamed C(/api/pull), C(/api/delete), C(/api/copy), C(/api/show)); never the CLI.
  - Names are compared normalised, so C(llama3) and C(llama3:latest) are the same model.
  - A model that is already listed by C(/api/tags) is not pulled again (no request to C(/api/pull)).
  - A pull that breaks off midway is retried; Ollama resumes from the partial blobs it kept.
  - With I(models_dir), every layer the pull announces is checked against the free space under that
    directory, and the task fails with a clear message (and the pull is cancelled) when the model
    cannot fit.
  - Unknown models or tags and registry errors fail with the server's own error text in C(msg).
  - Every failure names the request (method and URL) and its cause, such as a server that cannot be
    reached, stops sending, trickles, answers with more than 8 MiB or with something that is not the
    JSON the API documents, or reports a full disk. A full disk on the server is never retried.
  - I(name) and I(alias) must follow Ollama's name grammar C([host/][namespace/]model[:tag]) (letters,
    digits, C(_), C(-), C(.); no blanks, no C(..)); anything else fails before a request is sent.
version_added: "0.1.0"
author: pmoves.fleet developers (@pmoves)
options:
  name:
    description:
      - Model name as Ollama knows it, for example C(qwen2.5-coder:32b). Without a tag, C(:latest) is meant.
      - The C(registry.ollama.ai/library/) or C(ollama.com/library/) prefix is accepted and stripped; names are
        compared and reported in lower case, as Ollama compares and lists them.
    type: str
    required: true
  state:
    description:
      - C(present) pulls the model when it is missing.
      - C(latest) pulls again and reports a change only when the model's digest changed.
      - C(absent) deletes the model (and I(alias) and I(aliases), when given).
    type: str
    choices: [present, absent, latest]
    default: present
  keep_alive:
    description:
      - When set, load the model after it is present and keep it in memory this long (Ollama
        duration such as C(30m), C(-1) for ever). A warm-up does not count as a change.
    type: str
  alias:
    description:
      - Additional name for the model, created with C(/api/copy) (seed convention such as
        C(XL-LOC-FRE-qwen2.5-coder-32b)). Re-pointed when the model's digest changes; deleted with
        I(state=absent).
    type: str
  aliases:
    description:
      - More additional names, handled like I(alias).
    type: list
    elements: str
    default: []
    version_added: "0.3.0"
extends_documentation_fragment:
  - pmoves.fleet.attributes
  - pmoves.fleet.ollama_client
attributes:
  check_mode:
    support: full
    description:
      - Reports the pull, delete or copy that would happen and sends none of them. For
        I(state=latest) on a model that is present, check mode cannot know whether the registry
        has a newer digest and reports no change with a warning.
  diff_mode:
    support: full
    description: Shows the model's presence and digest before and after.
  idempotent:
    support: full
    description: A second run with the same arguments reports no change and sends no pull.
notes:
  - Runs on the host that can reach the API (usually the Ollama node itself).
  - Return value C(api_calls) counts the requests per endpoint, so tests and benchmarks can prove
    that a converged run pulls nothing.
seealso:
  - module: pmoves.fleet.ollama_blob_sync
"""

EXAMPLES = r"""
- name: Ollama | Make sure the coder model is there
  pmoves.fleet.ollama_model:
    name: qwen2.5-coder:32b
    alias: XL-LOC-FRE-qwen2.5-coder-32b
    models_dir: /var/lib/ollama/models

- name: Ollama | Follow the registry's newest llama3.2
  pmoves.fleet.ollama_model:
    name: llama3.2
    state: latest
    host: http://10.0.0.5:11434

- name: Ollama | Remove a model the plan no longer assigns
  pmoves.fleet.ollama_model:
    name: mistral:7b
    state: absent
"""

RETURN = r"""
model:
  description: The model after the task (digest and size are null when it is absent).
  returned: success
  type: dict
  contains:
    name:
      description: Normalised name with its tag.
      type: str
      sample: llama3:latest
    digest:
      description: Digest of the model's manifest as listed by C(/api/tags).
      type: str
      sample: 365c0bd3c000a25d28ddbf732fe1c6add414de7275464c4e4d1c3b5fcb5d8ad1
    size:
      description: Size in bytes of all the model's blobs.
      type: int
      sample: 4661224676
alias:
  description: The first alias and the digest it points at, when I(alias) or I(aliases) was given and state is not absent.
  returned: when an alias is given
  type: dict
  sample: {"name": "xl-loc-fre-qwen2.5-coder-32b:latest", "digest": "365c0bd3..."}
aliases:
  description: Every alias (normalised) and the digest it points at.
  returned: when an alias is given
  type: list
  elements: dict
  version_added: "0.3.0"
actions:
  description: API operations performed (or, in check mode, that would be performed).
  returned: always
  type: list
  elements: str
  sample: ["pull llama3:latest"]
pulled:
  description: Whether a pull ran.
  returned: always
  type: bool
attempts:
  description: Number of pull attempts (0 when no pull ran).
  returned: always
  type: int
bytes_pulled:
  description: Bytes the pulls wrote (blobs already present or resumed parts are not counted).
  returned: always
  type: int
api_calls:
  description: Requests sent, per C(METHOD /path).
  returned: always
  type: dict
  sample: {"GET /api/tags": 1}
"""

import functools

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils import ollama_module
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_api import (
    ModelRequest,
    OllamaError,
    ensure_model,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent", "latest"]},
            "keep_alive": {"type": "str"},
            "alias": {"type": "str"},
            "aliases": {"type": "list", "elements": "str", "default": []},
            **ollama_module.client_argument_spec(),
        },
        supports_check_mode=True,
    )
    params = module.params
    if not params["name"].strip():
        module.fail_json(msg="name must not be empty")
    option_error = ollama_module.client_option_error(params)
    if option_error:
        module.fail_json(msg=option_error)
    client = ollama_module.client_from_params(params)
    request = ModelRequest(
        name=params["name"],
        state=params["state"],
        alias=params["alias"],
        aliases=tuple(params["aliases"]),
        keep_alive=params["keep_alive"],
        **ollama_module.pull_settings(params),
    )
    progress = ollama_module.progress_file(params, module.check_mode)
    if progress is not None:
        request.on_progress = functools.partial(ollama_module.report_pull, progress)
    try:
        result = ensure_model(client, request, module.check_mode)
    except (OllamaError, ValueError) as exc:
        ollama_module.close_progress(progress)
        module.fail_json(msg=str(exc), url=getattr(exc, "url", None), api_calls=dict(client.calls))
    ollama_module.close_progress(progress, result.warnings)
    for warning in result.warnings:
        module.warn(warning)
    output = {
        "changed": result.changed,
        "model": result.model,
        "actions": result.actions,
        "pulled": result.pulled,
        "attempts": result.attempts,
        "bytes_pulled": result.bytes_pulled,
        "api_calls": dict(client.calls),
    }
    if result.alias is not None:
        output["alias"] = result.alias
    if result.aliases:
        output["aliases"] = result.aliases
    if module._diff and result.diff:
        output["diff"] = result.diff
    module.exit_json(**output)


if __name__ == "__main__":
    main()
