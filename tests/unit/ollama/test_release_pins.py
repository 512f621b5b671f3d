"""The sha256 pins of Ollama releases in roles/ollama/vars/main.yml, and how the role picks the sha256 it checks (issue 18).

The table is data copied by hand from public package recipes: every entry must be something the role can actually
ask for (a version it accepts, an asset name its bundles produce), a real sha256, and name where it came from. The
selection is the role's own Jinja (vars/main.yml), rendered here by Ansible's templar with the role's defaults and
vars, as a play would: inventory pin (per version, then per asset) > the role's pin > the release's sha256sum.txt.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

try:  # ansible-core >= 2.19 renders only templates marked as trusted (what it loads from a role is)
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - older ansible-core renders every string
    def trust_as_template(value):
        return value

ROLE = Path(__file__).resolve().parents[3] / "roles" / "ollama"
VARS_TEXT = (ROLE / "vars" / "main.yml").read_text()
ROLE_VARS = yaml.safe_load(VARS_TEXT)
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
PINS: dict[str, dict[str, str]] = ROLE_VARS["__pmoves_ollama_pinned_checksums"]

DEFAULT_VERSION = DEFAULTS["pmoves_ollama_version"]
AMD64 = "ollama-linux-amd64.tar.zst"
ARM64 = "ollama-linux-arm64.tar.zst"
JETPACK6 = "ollama-linux-arm64-jetpack6.tar.zst"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def requestable_assets() -> set[str]:
    """Every asset name the role can ask for: its bundles x architectures x archive formats (validate.yml's rules)."""
    names = set()
    for library, suffixes in ROLE_VARS["__pmoves_ollama_bundles"].items():
        for arch in ("amd64", "arm64"):
            if (library.startswith("jetpack") and arch != "arm64") or (library == "rocm" and arch != "amd64"):
                continue
            for fmt in SPECS["pmoves_ollama_archive_format"]["choices"]:
                names.update(f"ollama-linux-{arch}{suffix}.{fmt}" for suffix in suffixes)
    return names


def test_the_table_is_not_empty_and_pins_the_default_release_for_both_architectures():
    assert len(PINS) >= 10
    assert PINS[DEFAULT_VERSION].keys() >= {AMD64, ARM64}
    # the published values (sixiang-world/tribucket and chromebrew/chromebrew agree on amd64)
    assert PINS["0.30.10"][AMD64] == "046d8f28e58d58477a49558d8d1bcb2e81ca8b287f93c44b12ff919c10d178dd"
    assert PINS["0.30.10"][ARM64] == "b626aef722ddb9d64dd20a76eeba9267abc5e9494faabb97839db85462b707d7"


@pytest.mark.parametrize("version", sorted(PINS, key=version_key))
def test_every_pinned_version_is_one_the_role_accepts(version):
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version)
    # never a release the role refuses for its known CVEs (pmoves_ollama_min_version)
    assert version_key(version) >= version_key(DEFAULTS["pmoves_ollama_min_version"])


@pytest.mark.parametrize("version, asset, digest",
                         [(v, a, d) for v, assets in sorted(PINS.items()) for a, d in sorted(assets.items())])
def test_every_pin_is_a_sha256_of_an_asset_the_role_can_request(version, asset, digest):
    assert asset in requestable_assets(), f"{version}: the role never asks for {asset}"
    assert isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest), f"{version} {asset}: {digest!r}"


def test_no_two_pins_share_a_digest():
    digests = [digest for assets in PINS.values() for digest in assets.values()]
    assert len(digests) == len(set(digests))  # a copy-paste slip between versions or architectures


def test_every_pinned_version_names_its_source_repository_path_and_commit():
    lines = VARS_TEXT[VARS_TEXT.index("__pmoves_ollama_pinned_checksums:"):].splitlines()[1:]
    sources: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in lines:
        if line.startswith("  #"):
            pending.append(line)
        elif match := re.fullmatch(r'  "([0-9.]+)":', line):
            sources[match.group(1)] = pending
            pending = []
    assert sources.keys() == PINS.keys()
    for version, comments in sources.items():
        assert comments, f"{version} names no source"
        for comment in comments:
            assert re.fullmatch(r"  # [A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+ \S+ [0-9a-f]{40}", comment), comment


def render(expression: str, **overrides) -> object:
    """Render one of the role's variables as a play would: defaults < role vars < -e, then the expression."""
    def trust(value):
        if isinstance(value, str):
            return trust_as_template(value)
        if isinstance(value, dict):
            return {key: trust(item) for key, item in value.items()}
        if isinstance(value, list):
            return [trust(item) for item in value]
        return value
    variables = {**DEFAULTS, **ROLE_VARS, "pmoves_ollama_arch": "amd64", "pmoves_ollama_library": "cpu", **overrides}
    return Templar(loader=DataLoader(), variables=trust(variables)).template(trust_as_template(expression))


OWN = "a" * 64
OTHER = "b" * 64

# (case, inventory overrides, asset -> expected sha256 or None when only the release's sha256sum.txt checks it)
SELECTION = [
    ("the role's pin for the default release", {}, {AMD64: PINS[DEFAULT_VERSION][AMD64]}),
    ("arm64 main bundle pinned, the jetpack6 bundle pinned nowhere",
     {"pmoves_ollama_arch": "arm64", "pmoves_ollama_library": "jetpack6"},
     {ARM64: PINS[DEFAULT_VERSION][ARM64], JETPACK6: None}),
    ("an inventory pin per asset wins over the role's", {"pmoves_ollama_checksums": {AMD64: OWN}}, {AMD64: OWN}),
    ("an inventory pin for this version wins over a flat one",
     {"pmoves_ollama_checksums": {AMD64: OTHER, DEFAULT_VERSION: {AMD64: OWN}}}, {AMD64: OWN}),
    ("an inventory pin for another version is not used",
     {"pmoves_ollama_checksums": {"0.30.11": {AMD64: OWN}}}, {AMD64: PINS[DEFAULT_VERSION][AMD64]}),
    ("a release the role does not pin", {"pmoves_ollama_version": "0.99.0"}, {AMD64: None}),
    ("an inventory pin for a release the role does not pin",
     {"pmoves_ollama_version": "0.99.0", "pmoves_ollama_checksums": {"0.99.0": {AMD64: OWN}}}, {AMD64: OWN}),
    ("the role's pins switched off (a repackaging mirror)", {"pmoves_ollama_use_pinned_checksums": False}, {AMD64: None}),
    ("switched off, the inventory pin still counts",
     {"pmoves_ollama_use_pinned_checksums": False, "pmoves_ollama_checksums": {AMD64: OWN}}, {AMD64: OWN}),
    ("tgz archives of a pinned release are pinned nowhere", {"pmoves_ollama_archive_format": "tgz"},
     {"ollama-linux-amd64.tgz": None}),
]


@pytest.mark.parametrize("case, overrides, wanted", SELECTION, ids=[row[0] for row in SELECTION])
def test_the_sha256_the_role_checks_each_asset_against(case, overrides, wanted):
    assert render("{{ __pmoves_ollama_assets }}", **overrides) == list(wanted), case
    expected = render("{{ __pmoves_ollama_expected_checksums }}", **overrides)
    for asset, digest in wanted.items():
        assert expected.get(asset) == digest, f"{case}: {asset}"
    # the assets the loud warning names: exactly those without a pin
    assert render("{{ __pmoves_ollama_unpinned }}", **overrides) == [a for a, d in wanted.items() if d is None]
