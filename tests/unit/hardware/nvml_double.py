"""TEST DOUBLE for pynvml: implements only the NVML calls hardware.probe_nvml makes.

No GPU exists on the CI machine, so the NVML path is exercised against this object. Devices are
given as dicts; a value of ``NOT_SUPPORTED`` makes that query raise like NVML_ERROR_NOT_SUPPORTED
does on unified-memory parts (GB10, Thor).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

NOT_SUPPORTED = object()


class FakeNVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class FakeNVML:
    def __init__(
        self, devices: list[dict[str, Any]], driver: str = "580.82.09", cuda: int = 13000, init_error: str | None = None
    ) -> None:
        self.devices = devices
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.initialised = False
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise FakeNVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1
        self.initialised = False

    def _check(self) -> None:
        if not self.initialised:
            raise FakeNVMLError("Uninitialized")

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check()
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._check()
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._check()
        return index

    def _value(self, handle: int, key: str) -> Any:
        value = self.devices[handle][key]
        if value is NOT_SUPPORTED:
            raise FakeNVMLError("Not Supported")
        return value

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._value(handle, "name")

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._value(handle, "uuid")

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(busId=self._value(handle, "bus"))

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        total = self._value(handle, "total")
        return SimpleNamespace(total=total, free=self.devices[handle].get("free", total), used=0)

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        return self._value(handle, "cc")
