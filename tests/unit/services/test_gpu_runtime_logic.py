"""Pure logic of the nvidia_runtime and jetson roles: versions, engine configs, CDI, nvpmodel."""

from __future__ import annotations

import pytest
from ansible_collections.pmoves.fleet.plugins.module_utils.jetson_power import (
    PowerModeError,
    parse_nvpmodel_conf,
    parse_nvpmodel_query,
    reboot_required,
    resolve_mode,
)
from ansible_collections.pmoves.fleet.plugins.module_utils.nvidia_runtime import (
    cdi_needs_regeneration,
    containerd_has_nvidia,
    docker_has_nvidia,
    parse_ctk_version,
    plan_runtime,
    version_at_least,
)

CTK_1178 = "NVIDIA Container Toolkit CLI version 1.17.8\ncommit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d\n"


@pytest.mark.parametrize(("version", "ok"), [
    ("1.17.8", True), ("1.17.9", True), ("1.18.0", True), ("2.0.0", True), ("1.17.7", False), ("1.16.2", False),
    ("1.17.8-rc.1", False), ("1.18.0-rc.1", True), ("1.9.0", False),
])
def test_toolkit_minimum_is_numeric_and_rejects_prereleases_of_the_fix(version, ok):
    assert version_at_least(version, "1.17.8") is ok


def test_ctk_version_parsing():
    assert parse_ctk_version(CTK_1178) == "1.17.8"
    assert parse_ctk_version("NVIDIA Container Toolkit CLI version 1.18.0-rc.1") == "1.18.0-rc.1"
    assert parse_ctk_version("command not found") is None


def test_engine_configs_are_read_before_configuring():
    assert docker_has_nvidia('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}')
    assert not docker_has_nvidia('{"log-driver": "journald"}') and not docker_has_nvidia("") and not docker_has_nvidia("{bad")
    v2 = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n  runtime_type = "io.containerd.runc.v2"\n'
    v3 = '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."nvidia"]\n'
    assert containerd_has_nvidia(v2) and containerd_has_nvidia(v3)
    assert not containerd_has_nvidia('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n')


def test_cdi_regenerated_only_when_missing_or_driver_or_toolkit_changed():
    state = {"driver_version": "575.64.03", "ctk_version": "1.17.8"}
    assert cdi_needs_regeneration(False, state, "575.64.03", "1.17.8") == "no CDI spec yet"
    assert cdi_needs_regeneration(True, None, "575.64.03", "1.17.8").startswith("no record")
    assert cdi_needs_regeneration(True, state, "575.64.03", "1.17.8") is None
    assert cdi_needs_regeneration(True, state, "580.65.06", "1.17.8") == "driver changed (575.64.03 -> 580.65.06)"
    assert cdi_needs_regeneration(True, state, "575.64.03", "1.18.0").startswith("toolkit changed")


def test_runtime_plan_refuses_old_toolkit_and_configures_only_engines_lacking_nvidia():
    old = plan_runtime("NVIDIA Container Toolkit CLI version 1.17.7", {"docker": None}, cdi_spec_exists=False,
                       state=None, driver_version="575.64.03")
    assert not old.ctk_ok and old.configure == [] and "CVE-2025-23266" in old.messages[0]
    assert not plan_runtime(None, {}, cdi_spec_exists=False, state=None, driver_version=None).ctk_ok
    plan = plan_runtime(CTK_1178, {"docker": '{"runtimes": {"nvidia": {}}}', "containerd": "", "podman": None},
                        cdi_spec_exists=True, state={"driver_version": "575.64.03", "ctk_version": "1.17.8"},
                        driver_version="575.64.03")
    assert plan.ctk_ok and plan.configure == ["containerd"] and plan.cdi_reason is None


NVPMODEL_CONF = """
< PARAM TYPE=FILE NAME=CPU_ONLINE >
< POWER_MODEL ID=0 NAME=MAXN >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=MODE_15W >
< POWER_MODEL ID=2 NAME=MODE_30W >
< POWER_MODEL ID=3 NAME=MODE_50W >
< PM_CONFIG DEFAULT=2 >
"""


def test_nvpmodel_query_and_conf_parsing():
    assert parse_nvpmodel_query("NV Power Mode: MODE_30W\n2\n") == ("MODE_30W", 2)
    assert parse_nvpmodel_query("NVPM WARN: fan mode is not set!\nNV Power Mode: MAXN\n0\n") == ("MAXN", 0)
    assert parse_nvpmodel_conf(NVPMODEL_CONF) == {"MAXN": 0, "15W": 1, "30W": 2, "50W": 3}


@pytest.mark.parametrize(("wanted", "want"), [("MAXN", (0, "MAXN")), ("mode_30w", (2, "30W")), ("50W", (3, "50W")),
                                              (1, (1, "15W")), ("3", (3, "50W"))])
def test_modes_resolve_from_the_boards_conf(wanted, want):
    assert resolve_mode(wanted, parse_nvpmodel_conf(NVPMODEL_CONF)) == want


def test_builtin_table_per_board_when_conf_is_missing_and_unknown_modes_fail():
    assert resolve_mode("25W", {}, model="NVIDIA Jetson Orin NX Engineering Reference Developer Kit") == (3, "25W")
    assert resolve_mode("MAXN", {}, soc="tegra264") == (0, "MAXN")
    with pytest.raises(PowerModeError, match="not defined on this board"):
        resolve_mode("25W", parse_nvpmodel_conf(NVPMODEL_CONF))
    with pytest.raises(PowerModeError):
        resolve_mode(9, parse_nvpmodel_conf(NVPMODEL_CONF))


def test_reboot_prompt_is_detected():
    assert reboot_required("NVPM WARN: Reboot required for changing to this power mode: 2\nDO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:")
    assert not reboot_required("")
