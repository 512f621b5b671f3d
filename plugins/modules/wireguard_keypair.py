#!/usr/bin/python
# Copyright: pmoves.fleet contributors
# Apache License 2.0 (see LICENSE)
"""Ensure a WireGuard private key exists on the node; return only its public key."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wireguard_keypair
short_description: Generate a WireGuard private key on the node (once) and return its public key
version_added: "0.1.0"
description:
  - Creates I(path) with a new X25519 private key (C(wg genkey), or Python C(cryptography) when
    wireguard-tools is missing) when it does not exist, with mode C(0600).
  - An existing key is never replaced, so reruns keep the node's identity.
  - The private key never leaves the node; only C(public_key) is returned (C(wg pubkey)).
options:
  path:
    description: Private key file on the node.
    type: path
    default: /etc/wireguard/wg0.key
  owner:
    description: Owner of the key file.
    type: str
    default: root
  group:
    description: Group of the key file.
    type: str
    default: root
extends_documentation_fragment:
  - pmoves.fleet.attributes
attributes:
  check_mode:
    support: full
    details: Reports C(changed) when the key would be created; returns no public key then.
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - pmoves.fleet developers (@pmoves)
"""

EXAMPLES = r"""
- name: WireGuard | ensure this node's key pair
  pmoves.fleet.wireguard_keypair:
    path: /etc/wireguard/wg0.key
  register: pmoves_wireguard_keypair

- name: WireGuard | show the public key
  ansible.builtin.debug:
    msg: "{{ pmoves_wireguard_keypair.public_key }}"
"""

RETURN = r"""
public_key:
  description: Base64 public key of the node (null in check mode when the key does not exist yet).
  returned: always
  type: str
  sample: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
path:
  description: The private key file.
  returned: always
  type: str
  sample: /etc/wireguard/wg0.key
created:
  description: Whether the key was generated in this run.
  returned: always
  type: bool
"""

import base64
import os
import shutil

from ansible.module_utils.basic import AnsibleModule


def _generate(module):
    wg = shutil.which("wg")
    if wg:
        rc, out, err = module.run_command([wg, "genkey"])
        if rc != 0:
            module.fail_json(msg=f"wg genkey failed: {err.strip()}")
        return out.strip()
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    except ImportError:
        module.fail_json(msg="neither wireguard-tools (wg) nor python cryptography is available to generate a key; "
                             "install wireguard-tools on the node")
    raw = X25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                    serialization.NoEncryption())
    return base64.b64encode(raw).decode()


def _public(module, private_key):
    wg = shutil.which("wg")
    if wg:
        rc, out, err = module.run_command([wg, "pubkey"], data=private_key)
        if rc != 0:
            module.fail_json(msg=f"wg pubkey failed for the key at {module.params['path']}: {err.strip()}")
        return out.strip()
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    except ImportError:
        module.fail_json(msg="neither wg nor python cryptography is available to derive the public key")
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/wireguard/wg0.key"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    created = False
    if os.path.exists(path):
        with open(path, encoding="ascii") as handle:
            private_key = handle.read().strip()
    elif module.check_mode:
        module.exit_json(changed=True, created=True, public_key=None, path=path)
    else:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            module.fail_json(msg=f"directory {directory} for the WireGuard key does not exist; create it first")
        private_key = _generate(module)
        umask = os.umask(0o077)
        try:
            with open(path, "x", encoding="ascii") as handle:
                handle.write(private_key + "\n")
        finally:
            os.umask(umask)
        created = True
    file_args = module.load_file_common_arguments({"path": path, "mode": "0600", "owner": module.params["owner"],
                                                   "group": module.params["group"]})
    changed = module.set_fs_attributes_if_different(file_args, created)
    try:
        base64.b64decode(private_key, validate=True)
    except ValueError:
        module.fail_json(msg=f"{path} does not hold a base64 WireGuard private key; move it away to regenerate")
    module.exit_json(changed=changed, created=created, public_key=_public(module, private_key), path=path)


if __name__ == "__main__":
    main()
