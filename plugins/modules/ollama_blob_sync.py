#!/usr/bin/python
# Copyright: pmoves.fleet developers
# Apache-2.0
"""Ansible module: copy Ollama models (manifest + verified blobs) between model stores."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ollama_blob_sync
short_description: Copy Ollama models between model directories, verifying every blob
description:
  - Copies models from one Ollama model store (a peer's C(OLLAMA_MODELS) mounted or staged on this
    host, a local cache directory, removable media) into another, so a fleet downloads each model
    from the internet once and fans it out over the LAN.
  - Both stores use Ollama's layout, C(manifests/<host>/<namespace>/<model>/<tag>) and
    C(blobs/sha256-<hex>).
  - Every copied blob is hashed while it is copied and must match the sha256 in its file name;
    a corrupt blob fails the task and is never put in place. Blobs go first, the manifest last, so
    Ollama never sees a half-copied model. Blobs already present are not copied again.
  - I(src) may also be the URL of a peer's read-only model share (C(http://seed:11435), served by the
    pmoves.fleet.ollama role on the node the plan makes the model's seed) - the manifest is fetched first,
    each missing blob is streamed into a temporary file while it is hashed and put in place only when its
    size and sha256 match, and the manifest is written last. The plan sets this up per (model, node) and
    the role falls back to a registry pull when the copy fails.
  - Ollama lists a copied model at once (C(/api/tags) reads the manifests on disk); no restart.
  - Model names must follow Ollama's grammar C([host/][namespace/]model[:tag]); a name such as C(../../x)
    fails the task before anything is read or written. Every file read or written must resolve inside
    I(src) or I(dest), symlinks followed.
version_added: "0.1.0"
author: pmoves.fleet developers (@pmoves)
options:
  names:
    description:
      - Models to copy, for example C(qwen2.5:14b) (C(:latest) when no tag).
      - Empty means every model found in I(src).
    type: list
    elements: str
    default: []
  src:
    description:
      - Source model store (the directory that holds C(manifests/) and C(blobs/)), or the C(http://) or
        C(https://) URL of a peer's model share serving that layout read-only.
    type: path
    required: true
  dest:
    description: Destination model store, usually the node's C(OLLAMA_MODELS).
    type: path
    required: true
  missing:
    description:
      - What to do when a requested model is not in I(src). C(fail) stops the task; C(skip) reports
        it in C(not_found) (useful for an opportunistic cache before a registry pull).
      - With a share URL, C(skip) also covers a share that is down or answers with an error and a blob
        that arrives short or corrupt (nothing of it is put in place) - the model goes into C(not_found)
        with the reason in C(errors), so a registry pull can follow.
    type: str
    choices: [fail, skip]
    default: fail
  verify:
    description:
      - How blobs already in I(dest) are checked. C(size) trusts a blob of the right size (names are
        hashes, and blobs copied by this module or pulled by Ollama were verified when written);
        C(sha256) re-hashes them and replaces any that do not match.
    type: str
    choices: [size, sha256]
    default: size
  timeout:
    description: Seconds to wait for an answer (each read) from a share URL.
    type: int
    default: 30
  owner:
    description: Owner of the files written in I(dest) (the ollama service user).
    type: str
  group:
    description: Group of the files written in I(dest).
    type: str
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    description: Reports the models and bytes that would be copied and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: A model whose manifest and blobs are already in I(dest) is not copied again (with a share URL,
      the share is not even asked).
"""

EXAMPLES = r"""
- name: Ollama | Seed this node from the LAN cache instead of the internet
  pmoves.fleet.ollama_blob_sync:
    names: [qwen2.5:14b, nomic-embed-text]
    src: /srv/ollama-cache
    dest: /var/lib/ollama/models
    owner: ollama
    group: ollama
    missing: skip

- name: Ollama | Export this node's models into the shared cache
  pmoves.fleet.ollama_blob_sync:
    src: /var/lib/ollama/models
    dest: /srv/ollama-cache
"""

RETURN = r"""
copied:
  description: Models whose manifest or blobs were copied (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["qwen2.5:14b"]
present:
  description: Requested models that were already complete in I(dest).
  returned: always
  type: list
  elements: str
not_found:
  description: Requested models not found in I(src), or not copied from a share URL because of an error (with I(missing=skip)).
  returned: always
  type: list
  elements: str
errors:
  description: Per model not copied from a share URL, why (share down, HTTP error, corrupt or short blob).
  returned: always
  type: dict
  sample: {"qwen2.5:14b": "blob http://10.0.0.1:11435/blobs/sha256-... is corrupt: ..."}
bytes_by_model:
  description: Bytes copied (in check mode, bytes that would be copied) per model.
  returned: always
  type: dict
  sample: {"qwen2.5:14b": 8988124069}
blobs_copied:
  description: Number of blobs copied.
  returned: always
  type: int
bytes_copied:
  description: Bytes copied (in check mode, bytes that would be copied).
  returned: always
  type: int
"""

import grp
import os
import pwd
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_library import validate_model_name
from ansible_collections.pmoves.fleet.plugins.module_utils.ollama_store import (
    HttpStore,
    PeerError,
    StoreError,
    apply_sync,
    apply_sync_http,
    complete_in,
    find_manifest,
    is_url,
    list_models,
    plan_sync,
    plan_sync_http,
    remove_partial_copies,
)


def resolve_ids(module: AnsibleModule) -> tuple[int, int]:
    uid = gid = -1
    try:
        if module.params["owner"]:
            uid = pwd.getpwnam(module.params["owner"]).pw_uid
        if module.params["group"]:
            gid = grp.getgrnam(module.params["group"]).gr_gid
    except KeyError as exc:
        module.fail_json(msg=f"unknown owner or group: {exc}")
    return uid, gid


def ensure_store_dirs(dest: Path, uid: int, gid: int) -> None:
    for directory in (dest / "blobs", dest / "manifests"):
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o755)
            if uid != -1 or gid != -1:
                os.chown(directory, uid, gid)


def sync_from_share(module: AnsibleModule, url: str, dest: Path, uid: int, gid: int) -> None:
    """Copy models from a peer's model share (HTTP); with missing=skip, a failed model is left for a pull."""
    share = HttpStore(url, timeout=module.params["timeout"])
    skip = module.params["missing"] == "skip"
    result = {"copied": [], "present": [], "not_found": [], "errors": {}, "bytes_by_model": {}}
    blobs = 0
    if not module.params["names"]:
        module.fail_json(msg=f"names is required with a share URL ({url}): a share does not list its models",
                         blobs_copied=0, bytes_copied=0, **result)
    if not module.check_mode:
        remove_partial_copies(dest)
    for name in module.params["names"]:
        try:
            if complete_in(dest, name, module.params["verify"]):
                # already complete here: a rerun asks the share nothing (and does not need the seed to be up)
                result["present"].append(name)
                continue
            plan = plan_sync_http(share, dest, name, module.params["verify"])
            if plan is None:
                raise PeerError(f"model share {url} does not have {name}")
            if not plan.changed:
                result["present"].append(name)
                continue
            if module.check_mode:
                size = plan.bytes_to_copy
            else:
                ensure_store_dirs(dest, uid, gid)
                size = apply_sync_http(plan, share, dest, uid, gid)
        except PeerError as exc:
            if not skip:
                module.fail_json(msg=str(exc), blobs_copied=blobs, bytes_copied=sum(result["bytes_by_model"].values()),
                                 **result)
            result["not_found"].append(name)
            result["errors"][name] = str(exc)
            continue
        except (StoreError, OSError) as exc:
            module.fail_json(msg=str(exc), blobs_copied=blobs, bytes_copied=sum(result["bytes_by_model"].values()),
                             **result)
        result["copied"].append(name)
        result["bytes_by_model"][name] = size
        blobs += len(plan.missing)
    module.exit_json(changed=bool(result["copied"]), blobs_copied=blobs,
                     bytes_copied=sum(result["bytes_by_model"].values()), **result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "default": []},
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "missing": {"type": "str", "default": "fail", "choices": ["fail", "skip"]},
            "verify": {"type": "str", "default": "size", "choices": ["size", "sha256"]},
            "timeout": {"type": "int", "default": 30},
            "owner": {"type": "str"},
            "group": {"type": "str"},
        },
        supports_check_mode=True,
    )
    invalid = [problem for problem in map(validate_model_name, module.params["names"]) if problem]
    if invalid:
        module.fail_json(msg="; ".join(invalid), copied=[], present=[], not_found=[], errors={}, bytes_by_model={},
                         blobs_copied=0, bytes_copied=0)
    dest = Path(module.params["dest"])
    uid, gid = resolve_ids(module)
    if is_url(module.params["src"]):
        sync_from_share(module, module.params["src"], dest, uid, gid)
    src = Path(module.params["src"])
    if not src.is_dir():
        if module.params["missing"] == "skip":
            module.exit_json(changed=False, copied=[], present=[], not_found=list(module.params["names"]),
                             errors={}, bytes_by_model={}, blobs_copied=0, bytes_copied=0)
        module.fail_json(msg=f"source model store {src} does not exist or is not a directory")
    if src.resolve() == dest.resolve():
        module.fail_json(msg=f"src and dest are the same directory ({src})")
    names = module.params["names"] or list_models(src)
    copied, present, not_found = [], [], []
    by_model: dict[str, int] = {}
    blobs = 0
    try:
        if not module.check_mode:
            remove_partial_copies(dest)
        for name in names:
            if find_manifest(src, name) is None and module.params["missing"] == "skip":
                not_found.append(name)
                continue
            plan = plan_sync(src, dest, name, module.params["verify"])
            if not plan.changed:
                present.append(name)
                continue
            copied.append(name)
            blobs += len(plan.missing)
            if module.check_mode:
                by_model[name] = plan.bytes_to_copy
            else:
                ensure_store_dirs(dest, uid, gid)
                by_model[name] = apply_sync(plan, src, dest, uid, gid)
    except (StoreError, OSError) as exc:
        module.fail_json(msg=str(exc), copied=copied, present=present, not_found=not_found, errors={},
                         bytes_by_model=by_model)
    module.exit_json(changed=bool(copied), copied=copied, present=present, not_found=not_found, errors={},
                     bytes_by_model=by_model, blobs_copied=blobs, bytes_copied=sum(by_model.values()))


if __name__ == "__main__":
    main()
