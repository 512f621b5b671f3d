"""pmoves.fleet.lab_podman (the lab's and molecule's container connection): podman's own refusals make the host
unreachable, a command in the container that exits with the same code stays the task's result."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.connection.lab_podman import Connection, podman_refused


# What podman 4.3 (Debian 12) prints, captured on this machine: `podman exec` in a stopped container, in one that
# does not exist, and a command in a running container that exits 125/255 itself.
@pytest.mark.parametrize(("rc", "stderr", "refused"), [
    (255, b"Error: can only create exec sessions on running containers: container state improper\n", True),
    (125, b'Error: no container with name or ID "pmoves-lab-4090" found: no such container\n', True),
    (125, b"Error: container 3f2a is not running\n", True),
    (125, b"", False),  # `sh -c 'exit 125'` in a running container
    (255, b"ssh: connect to host example port 22: no such container of ours\n", False),  # not podman's "Error:"
    (1, b"Error: no such container\n", False),  # exit codes podman does not use for its own errors
])
def test_only_podmans_own_refusal_counts_as_unreachable(rc, stderr, refused):
    assert podman_refused(rc, stderr) is refused


def test_the_connection_pipelines_modules():
    """The point of the plugin: Ansible sends modules on stdin (one podman exec per module task)."""
    assert Connection.has_pipelining is True
    assert Connection.transport == "pmoves.fleet.lab_podman"
