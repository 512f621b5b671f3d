# Copyright: pmoves.fleet developers
# Apache License 2.0 (see galaxy.yml)
"""Connection: run tasks in a local podman container with pipelining (the lab's and molecule's nodes)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: lab_podman
short_description: Run tasks in a local podman container, modules pipelined over podman exec
version_added: "0.1.0"
description:
  - The connection C(make lab) and the molecule scenarios use for their containers (each one a simulated
    fleet node). Like C(containers.podman.podman), but a module's code goes to the container's Python on the
    standard input of one C(podman exec -i) (Ansible's pipelining), instead of a temporary directory made
    with one C(podman exec), a file copied into it and a second C(podman exec) to run and remove it.
  - One C(podman exec) per module task instead of two or three, each about 0.13 s on a 2-core machine
    (C(benchmarks/bench_lab_connection.py) measures both connections on the same containers).
  - The files of C(copy), C(template) and the like go to Ansible's temporary directory through the container's
    mounted root (C(podman mount), as root) or C(podman cp); C(fetch) uses C(podman cp), which sees the files
    podman bind-mounts into the container (C(/etc/hostname), volumes) as the container does.
  - Nothing on the nodes of a real fleet uses it; they are reached over ssh (with pipelining, C(ansible.cfg)).
options:
  remote_addr:
    description:
      - The name or ID of the running container.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_podman_host
  remote_user:
    description:
      - The user (name or UID) commands run as inside the container; unset, the container's own user.
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_executable:
    description:
      - The podman command.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  podman_extra_args:
    description:
      - Extra arguments for every podman command (before the subcommand).
    default: ''
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  pipelining:
    description:
      - Send modules on the standard input of C(podman exec -i) instead of copying them into the container.
      - Async tasks and C(keep_remote_files) still copy the module (Ansible decides that per task).
    type: boolean
    default: true
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""

import os
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display

display = Display()


# What podman itself prints (exit 125 or 255) when it cannot exec in the container, as opposed to a command in the
# container that exits non-zero.
PODMAN_REFUSALS = (b"no such container", b"container state improper", b"is not running")


def podman_refused(rc: int, err: bytes) -> bool:
    """True when `podman exec` failed before running anything (no such container, container stopped)."""
    lowered = err.lower()
    return rc in (125, 255) and lowered.lstrip().startswith(b"error:") and any(r in lowered for r in PODMAN_REFUSALS)


class Connection(ConnectionBase):
    """podman exec with pipelining; files through the mounted root or podman cp."""

    transport = "pmoves.fleet.lab_podman"
    has_pipelining = True
    has_tty = False

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super().__init__(play_context, new_stdin, *args, **kwargs)
        self._mount_point: bytes | None = None
        self._mount_tried = False

    @property
    def _container(self) -> str:
        return self.get_option("remote_addr")

    def _podman(self, args: list[str], in_data: bytes | None = None) -> tuple[int, bytes, bytes]:
        try:
            podman = get_bin_path(self.get_option("podman_executable"))
        except ValueError as error:
            raise AnsibleConnectionFailure(f"podman is not installed on the controller: {error}") from error
        cmd = [podman, *shlex.split(self.get_option("podman_extra_args") or ""), *args]
        display.vvv(f"RUN {cmd}", host=self._container)
        proc = subprocess.run([to_bytes(a, errors="surrogate_or_strict") for a in cmd], input=in_data,
                              capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def _connect(self):
        super()._connect()
        self._connected = True
        return self

    def _mounted_root(self) -> bytes | None:
        """The container's root on the controller (podman mount, rootful), or None: then podman cp."""
        if not self._mount_tried and not self.get_option("remote_user"):
            self._mount_tried = True
            rc, out, err = self._podman(["mount", self._container])
            root = out.strip()
            if rc == 0 and root and os.path.isdir(root) and os.listdir(root):
                self._mount_point = root
            else:
                display.vvvv(f"podman mount {self._container} unusable ({to_native(err.strip())}): podman cp",
                             host=self._container)
        return self._mount_point

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("-i")
        if self.get_option("remote_user"):
            args += ["--user", self.get_option("remote_user")]
        args.append(self._container)
        args += shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        rc, out, err = self._podman(args, in_data)
        if podman_refused(rc, err):  # the container is gone or stopped: the host is unreachable, not failed
            raise AnsibleConnectionFailure(f"podman exec in {self._container}: {to_native(err.strip())}")
        return rc, out, err

    @ensure_connect
    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        root = self._mounted_root()
        if root:
            shutil.copyfile(to_bytes(in_path, errors="surrogate_or_strict"),
                            root + to_bytes(out_path, errors="surrogate_or_strict"))
            return
        rc, _out, err = self._podman(["cp", in_path, f"{self._container}:{out_path}"])
        if rc != 0:
            raise AnsibleError(f"failed to copy {in_path} to {out_path} in container {self._container}: "
                               f"{to_native(err.strip())}")
        if self.get_option("remote_user"):
            rc, _out, err = self._podman(["exec", self._container, "chown", self.get_option("remote_user"), out_path])
            if rc != 0:
                raise AnsibleError(f"failed to chown {out_path} in container {self._container}: {to_native(err.strip())}")

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container)
        # podman cp, not the mounted root: files podman bind-mounts into the container (/etc/hostname, /etc/hosts,
        # volumes) are not in the root filesystem's layers, and the mounted root holds another file there.
        rc, _out, err = self._podman(["cp", f"{self._container}:{in_path}", out_path])
        if rc != 0:
            raise AnsibleError(f"failed to fetch {in_path} from container {self._container}: {to_native(err.strip())}")

    def close(self):
        super().close()
        self._connected = False
