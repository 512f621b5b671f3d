"""Engine build decisions: built once, current on rerun, rebuilt on a new spec or checkpoint."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.trt_engine import (
    EngineSpec,
    build_argv,
    build_reason,
    checkpoint_fingerprint,
    container_argv,
    engine_dir,
    manifest_for,
    validate_spec,
)

THOR = EngineSpec("llama-3.1-8b", "aarch64", "fp16", 16, "/models/ckpt")
RTX = EngineSpec("llama-3.1-8b", "x86_64", "fp16", 8, "/models/ckpt")
FP = checkpoint_fingerprint([("config.json", 812, "ab" * 32), ("rank0.safetensors", 16_000_000_000, None)])


def test_engine_paths_follow_the_seed_layout_per_arch():
    assert engine_dir("/engines", THOR) == "/engines/aarch64/llama-3.1-8b-fp16-b16"
    assert engine_dir("/engines", RTX) == "/engines/x86_64/llama-3.1-8b-fp16-b8"


def test_build_command_matches_the_seed_pipeline():
    assert build_argv(RTX, "/engines/x86_64/x") == [
        "trtllm-build", "--checkpoint_dir", "/models/ckpt", "--output_dir", "/engines/x86_64/x",
        "--dtype", "float16", "--max_batch_size", "8",
    ]


@pytest.mark.parametrize(
    ("engine", "gpu_flag"),
    [("docker", ["--gpus", "all"]), ("/usr/bin/podman", ["--device", "nvidia.com/gpu=all"])],
)
def test_container_wrapping_uses_the_engine_gpu_syntax(engine, gpu_flag):
    argv = container_argv(engine, "img:tag", ["trtllm-build"], ["/models/ckpt"])
    assert argv[:3] == [engine, "run", "--rm"]
    assert argv[3:5] == gpu_flag
    assert argv[-2:] == ["img:tag", "trtllm-build"]
    assert argv[5:7] == ["-v", "/models/ckpt:/models/ckpt"]


def test_current_engine_needs_no_build():
    manifest = manifest_for(RTX, FP, build_argv(RTX, "/x"), None)
    assert build_reason(manifest, RTX, FP) is None
    assert build_reason(manifest, RTX, FP, force=True) == "forced rebuild"


def test_missing_engine_is_built():
    assert build_reason(None, RTX, FP) == "no engine built yet"


def test_precision_change_rebuilds_and_names_the_change():
    manifest = manifest_for(RTX, FP, [], None)
    fp8 = EngineSpec(RTX.model, RTX.arch, "fp8", RTX.max_batch_size, RTX.checkpoint_dir)
    assert build_reason(manifest, fp8, FP) == "changed precision 'fp16' -> 'fp8'"


def test_changed_checkpoint_config_rebuilds():
    manifest = manifest_for(RTX, FP, [], None)
    new_fp = checkpoint_fingerprint([("config.json", 812, "cd" * 32), ("rank0.safetensors", 16_000_000_000, None)])
    assert build_reason(manifest, RTX, new_fp) == "checkpoint changed since the last build"


def test_fingerprint_is_order_independent():
    entries = [("b", 1, None), ("a", 2, "x")]
    assert checkpoint_fingerprint(entries) == checkpoint_fingerprint(list(reversed(entries)))


@pytest.mark.parametrize(
    ("spec", "cc", "fragment"),
    [
        (EngineSpec("m", "x86_64", "bf16", 8, "/c"), "6.1", "bf16 needs compute capability >= 8.0"),
        (EngineSpec("m", "x86_64", "fp8", 8, "/c"), "8.6", "fp8 needs compute capability >= 8.9"),
        (EngineSpec("m", "riscv64", "fp16", 8, "/c"), None, "arch 'riscv64'"),
        (EngineSpec("m", "x86_64", "fp16", 0, "/c"), None, "max_batch_size must be >= 1"),
    ],
)
def test_impossible_specs_are_refused_with_the_reason(spec, cc, fragment):
    assert any(fragment in problem for problem in validate_spec(spec, cc))


def test_p40_fp32_and_blackwell_fp8_are_fine():
    assert validate_spec(EngineSpec("m", "x86_64", "fp32", 4, "/c"), "6.1") == []
    assert validate_spec(EngineSpec("m", "x86_64", "fp8", 8, "/c"), "12.0") == []
