"""The test double's release archives look like Ollama's and install like one."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "tests" / "doubles" / "ollama_emulator" / "build_release.sh"
sys.path.insert(0, str(BUILD.parent))

from harness import emulator_process  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fmt", ["tar.zst", "tgz"])
def test_release_archives_checksums_and_binary(tmp_path, fmt):
    if fmt == "tar.zst" and not shutil.which("zstd"):
        pytest.skip("zstd not installed")
    out = tmp_path / "release"
    subprocess.run([str(BUILD), "0.31.2", str(out), fmt], check=True, capture_output=True, timeout=120)
    names = {
        f"ollama-linux-{suffix}.{fmt}"
        for suffix in ("amd64", "arm64", "arm64-jetpack5", "arm64-jetpack6", "amd64-rocm")
    }
    assert {p.name for p in out.iterdir()} == names | {"sha256sum.txt"}
    for line in (out / "sha256sum.txt").read_text().splitlines():
        digest, name = line.split()
        assert name.startswith("./")
        assert hashlib.sha256((out / name[2:]).read_bytes()).hexdigest() == digest
    prefix = tmp_path / "usr"
    prefix.mkdir()
    decompress = ["zstd", "-dc"] if fmt == "tar.zst" else ["gzip", "-dc"]
    for asset in (f"ollama-linux-amd64.{fmt}", f"ollama-linux-amd64-rocm.{fmt}"):
        data = subprocess.run([*decompress, str(out / asset)], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(prefix)], input=data, check=True)
    binary = prefix / "bin" / "ollama"
    assert (prefix / "lib" / "ollama" / "rocm").is_dir()
    with emulator_process(tmp_path / "models", command=[str(binary)]) as emu:
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30,
                                 env={"OLLAMA_HOST": emu.url, "PATH": "/usr/bin:/bin"})
        assert version.stdout == "ollama version is 0.31.2\n"
        assert emu.get("/api/version") == {"version": "0.31.2"}
