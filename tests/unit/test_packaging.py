"""The collection as it is released: declared dependencies, versions, what the artifact ships.

galaxy.yml `dependencies` and requirements.yml must list exactly the collections that the shipped
roles, playbooks, plugins and example inventories use (ansible.builtin and pmoves.fleet aside);
tests/requirements.yml holds the ones only the tests use. galaxy.yml's version is the newest
release of the changelog.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1].parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
SELF = {"ansible.builtin", "pmoves.fleet"}
# Places where a collection's plugin is named in YAML, Jinja or Python.
NAME = r"([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"
USES = [
    re.compile(rf"^\s*(?:-\s+)?{NAME}\s*:", re.M),  # a task's module
    re.compile(rf"(?:lookup|query|q)\(\s*['\"]{NAME}"),  # lookups
    re.compile(rf"\|\s*{NAME}"),  # filters
    re.compile(rf"\bis\s+(?:not\s+)?{NAME}"),  # tests
    re.compile(rf"\b(?:action|module|ansible_connection|connection|strategy|become_method|"
               rf"callbacks_enabled|stdout_callback)\s*[:=]\s*['\"]?{NAME}"),
    re.compile(r"ansible_collections\.([a-z0-9_]+\.[a-z0-9_]+)\."),  # Python imports
]
SHIPPED_TOP = ("roles", "playbooks", "plugins", "meta", "inventories")
CODE_SUFFIXES = {".yml", ".yaml", ".py", ".j2", ".cfg", ".ini"}


def ignored(rel: str) -> bool:
    """ansible-galaxy's own rule: a path is left out when a build_ignore pattern matches it."""
    return any(fnmatch.fnmatch(rel, pattern) for pattern in GALAXY["build_ignore"])


def shipped_files() -> list[Path]:
    files = []
    for top in SHIPPED_TOP:
        for root, dirs, names in os.walk(REPO / top):
            rel_root = os.path.relpath(root, REPO)
            dirs[:] = sorted(d for d in dirs if not ignored(os.path.join(rel_root, d)))
            files += [Path(root) / n for n in sorted(names)
                      if Path(n).suffix in CODE_SUFFIXES and not ignored(os.path.join(rel_root, n))]
    return files


def used_collections() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for path in shipped_files():
        text = path.read_text(errors="replace")
        for pattern in USES:
            for name in pattern.findall(text):
                if name not in SELF and not name.startswith("ansible_collections"):
                    used.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return used


def requirements(path: Path) -> dict[str, str]:
    return {c["name"]: c["version"] for c in yaml.safe_load(path.read_text())["collections"]}


def test_the_scan_sees_the_known_uses():
    used = used_collections()
    assert "roles/wireguard/tasks/configure.yml" in used["ansible.posix"]
    assert "roles/forge/tasks/k8s.yml" in used["kubernetes.core"]
    assert not any(name.startswith(("os.", "self.", "ansible.module_utils")) for name in used)


def test_declared_dependencies_are_exactly_the_used_collections():
    used = set(used_collections())
    declared = set(GALAXY["dependencies"])
    assert declared == used, f"galaxy.yml declares {sorted(declared)}, the shipped files use {sorted(used)}"
    assert requirements(REPO / "requirements.yml") == GALAXY["dependencies"]


def test_test_only_collections_stay_out_of_the_release():
    tests_only = requirements(REPO / "tests" / "requirements.yml")
    assert tests_only and not set(tests_only) & set(GALAXY["dependencies"])
    assert ignored("tests/requirements.yml") and ignored("molecule") and ignored("inventories/lab")


def test_dependency_ranges_admit_the_collections_of_the_venv():
    """The dev/CI venv (the `ansible` PyPI package) satisfies every range, so an offline install works."""
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements

    try:
        import ansible_collections  # the `ansible` package's collections
    except ImportError:  # pragma: no cover - ansible-core only
        return
    roots = [Path(p) for p in ansible_collections.__path__]
    for name, spec in {**GALAXY["dependencies"], **requirements(REPO / "tests" / "requirements.yml")}.items():
        namespace, collection = name.split(".")
        manifests = [r / namespace / collection / "MANIFEST.json" for r in roots]
        manifest = next((m for m in manifests if m.is_file()), None)
        assert manifest is not None, f"{name} is not installed in the venv"
        version = yaml.safe_load(manifest.read_text())["collection_info"]["version"]
        assert meets_requirements(version, spec), f"{name} {version} does not meet {spec}"


def test_galaxy_version_is_the_newest_release_of_the_changelog():
    version = GALAXY["version"]
    releases = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())["releases"]
    newest = max(releases, key=lambda v: tuple(int(x) for x in v.split(".")))
    assert version == newest, f"galaxy.yml {version} but changelogs/changelog.yaml's newest release is {newest}"
    # antsibull-changelog escapes Markdown: "## v0\.2\.0"
    headings = [h.replace("\\", "") for h in re.findall(r"^## v(\S+)", (REPO / "CHANGELOG.md").read_text(), re.M)]
    assert headings and headings[0] == version, f"CHANGELOG.md starts with {headings[:1]}, galaxy.yml {version}"
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["options"]["tags"] == [f"pmoves-fleet-ee:{version}"]


def test_playbooks_and_roles_never_default_into_the_collection_tree():
    """An installed collection is read-only to its users: outputs default to the caller's directory."""
    offenders = [str(p.relative_to(REPO)) for p in shipped_files()
                 if re.search(r"playbook_dir\s*~?\s*['\"]?/\.\./|playbook_dir\s*}}/\.\./|role_path\s*~?\s*['\"]?/\.\./",
                              p.read_text(errors="replace"))]
    assert not offenders


def test_changelog_fragments_are_lists_of_strings():
    # antsibull-changelog (and ansible-test's changelog sanity test) reject a fragment whose item YAML
    # reads as a mapping (an unquoted "text: more text"); catch it here, minutes before sanity would.
    for fragment in sorted((REPO / "changelogs" / "fragments").glob("*.y*ml")):
        sections = yaml.safe_load(fragment.read_text())
        assert isinstance(sections, dict), fragment
        for section, items in sections.items():
            bad = [item for item in items if not isinstance(item, str)]
            assert not bad, f"{fragment.name}: section {section!r} has non-string items (quote them): {bad}"
