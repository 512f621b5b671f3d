"""The apt refresh rule: refresh by content (empty lists, no candidate), never by age alone."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.apt_lists import (
    lists_present,
    not_installed,
    parse_policy,
    refresh_reason,
    uninstallable,
)

# `LANG=C apt-cache policy python3-venv podman no-such-package-xyz` on Debian 12 (bookworm) with
# refreshed lists; the unknown package prints nothing on stdout.
POLICY_REFRESHED = """\
python3-venv:
  Installed: 3.11.2-1+b1
  Candidate: 3.11.2-1+b1
  Version table:
 *** 3.11.2-1+b1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
podman:
  Installed: (none)
  Candidate: 4.3.1+ds1-8+deb12u1+b3
  Version table:
     4.3.1+ds1-8+deb12u1+b3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
"""

# The same on a freshly debootstrapped container before any `apt-get update`: only dpkg's status
# file is known, so installed packages keep a candidate and the others have none.
POLICY_EMPTY_LISTS = """\
python3-venv:
  Installed: (none)
  Candidate: (none)
  Version table:
python3:
  Installed: 3.11.2-1+b1
  Candidate: 3.11.2-1+b1
  Version table:
 *** 3.11.2-1+b1 100
        100 /var/lib/dpkg/status
"""

LISTS_REFRESHED = [
    "auxfiles",
    "deb.debian.org_debian_dists_bookworm_InRelease",
    "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
    "lock",
    "partial",
]
LISTS_EMPTY = ["auxfiles", "lock", "partial"]


@pytest.mark.parametrize(("names", "present"), [
    (LISTS_REFRESHED, True),
    (LISTS_EMPTY, False),
    ([], False),
    (["ports.ubuntu.com_ubuntu-ports_dists_focal_main_binary-arm64_Packages"], True),
    (["repo.example_dists_stable_main_binary-amd64_Packages.xz"], True),
    (["deb.debian.org_debian_dists_bookworm_InRelease"], False),
])
def test_lists_present_needs_a_package_index(names, present):
    assert lists_present(names) is present


def test_parse_policy_reads_installed_and_candidate():
    policy = parse_policy(POLICY_REFRESHED)
    assert policy == {
        "python3-venv": {"installed": "3.11.2-1+b1", "candidate": "3.11.2-1+b1"},
        "podman": {"installed": None, "candidate": "4.3.1+ds1-8+deb12u1+b3"},
    }


@pytest.mark.parametrize(("packages", "policy_text", "missing"), [
    (["python3-venv", "podman"], POLICY_REFRESHED, []),
    (["python3-venv", "no-such-package-xyz"], POLICY_REFRESHED, ["no-such-package-xyz"]),
    (["python3-venv", "python3"], POLICY_EMPTY_LISTS, ["python3-venv"]),
    (["podman=4.3.1*"], POLICY_REFRESHED, []),
    (["podman:amd64"], POLICY_REFRESHED, []),
])
def test_uninstallable_names_packages_without_candidate(packages, policy_text, missing):
    assert uninstallable(packages, parse_policy(policy_text)) == missing


def test_empty_but_recent_lists_are_refreshed():
    # The failure this rule exists for: lists directory minutes old, no index in it.
    reason, missing = refresh_reason(LISTS_EMPTY, ["python3-venv", "python3"], parse_policy(POLICY_EMPTY_LISTS))
    assert reason is not None and "empty" in reason
    assert missing == ["python3-venv"]


def test_installed_packages_need_no_lists():
    # zstd is in the base image: empty lists are no reason to refresh for it.
    assert refresh_reason(LISTS_EMPTY, ["python3"], parse_policy(POLICY_EMPTY_LISTS)) == (None, [])


def test_lists_with_a_missing_candidate_are_refreshed():
    reason, missing = refresh_reason(LISTS_REFRESHED, ["python3-venv", "python3"], parse_policy(POLICY_EMPTY_LISTS))
    assert reason == "no install candidate for: python3-venv"
    assert missing == ["python3-venv"]


def test_lists_that_can_install_everything_are_left_alone():
    assert refresh_reason(LISTS_REFRESHED, ["python3-venv", "podman"], parse_policy(POLICY_REFRESHED)) == (None, [])


@pytest.mark.parametrize(("packages", "policy_text", "pending"), [
    (["python3-venv"], POLICY_REFRESHED, []),  # installed: the install task can be skipped
    (["python3-venv", "podman"], POLICY_REFRESHED, ["podman"]),
    (["no-such-package-xyz"], POLICY_REFRESHED, ["no-such-package-xyz"]),  # unknown: let the install task say so
    (["python3-venv=3.11.2-1+b1"], POLICY_REFRESHED, ["python3-venv=3.11.2-1+b1"]),  # a version is apt's call
    (["python3-venv:amd64"], POLICY_REFRESHED, []),
    (["python3-venv"], POLICY_EMPTY_LISTS, ["python3-venv"]),
    ([], POLICY_REFRESHED, []),
])
def test_not_installed_is_what_the_install_task_still_has_to_do(packages, policy_text, pending):
    assert not_installed(packages, parse_policy(policy_text)) == pending
