"""GPU discovery with a fake NVML module: GPUs with fingerprints, left-out models, CPU fallback."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from blendr.types import DeviceKind
from provider.gpus import Inventory, cpu_device, discover

GIB = 2**30
H100 = ("NVIDIA H100 80GB HBM3", 80 * GIB)


class NVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


@dataclass
class FakeNVML:
    """The handful of pynvml functions discover() uses, over a list of (name, memory) GPUs."""

    NVMLError: ClassVar[type[Exception]] = NVMLError
    gpus: list[tuple[str | bytes, int]] = field(default_factory=list)
    init_error: Exception | None = None
    cuda: int | Exception = 12040
    driver: str | bytes = "550.54.15"
    calls: list[str] = field(default_factory=list)

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        if isinstance(self.cuda, Exception):
            raise self.cuda
        return self.cuda

    def nvmlDeviceGetHandleByIndex(self, i: int) -> Any:
        return SimpleNamespace(i=i)

    def nvmlDeviceGetName(self, h: SimpleNamespace) -> str | bytes:
        return self.gpus[int(h.i)][0]

    def nvmlDeviceGetMemoryInfo(self, h: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(total=self.gpus[int(h.i)][1], free=0, used=0)

    def nvmlDeviceGetUUID(self, h: Any) -> str:
        return f"GPU-{h.i:04d}"


def assert_cpu_only(inv: Inventory) -> None:
    assert inv.cpu_only is True
    assert inv.gpu_count == 0
    [dev] = inv.devices
    assert (dev.index, dev.kind, dev.model) == (0, DeviceKind.CPU, "cpu")
    assert dev.memory_bytes > 0


def test_cpu_device_describes_this_machine() -> None:
    dev = cpu_device()
    assert (dev.index, dev.kind, dev.model) == (0, DeviceKind.CPU, "cpu")
    assert "cores)" in dev.name
    assert dev.memory_bytes > 2**20


def test_nvml_init_failure_gives_a_cpu_provider_with_a_note() -> None:
    nvml = FakeNVML(gpus=[H100], init_error=NVMLError("driver not loaded"))
    inv = discover(nvml=nvml)
    assert_cpu_only(inv)
    assert inv.note == "NVML unavailable (NVMLError): running as a CPU provider"
    assert nvml.calls == ["init"]


def test_two_h100s() -> None:
    nvml = FakeNVML(gpus=[H100, H100])
    inv = discover(nvml=nvml)
    assert inv.cpu_only is False
    assert inv.gpu_count == 2
    assert [d.index for d in inv.devices] == [0, 1]
    for i, d in enumerate(inv.devices):
        assert d.kind is DeviceKind.GPU
        assert d.model == "h100-sxm"
        assert d.name == "NVIDIA H100 80GB HBM3"
        assert d.memory_bytes == 80 * GIB
        assert d.uuid == f"GPU-{i:04d}"
        assert (d.driver_version, d.cuda_version) == ("550.54.15", "12.4")
    assert inv.note == "2 GPU(s), driver 550.54.15, CUDA 12.4"
    assert nvml.calls == ["init", "shutdown"]


def test_bytes_from_older_pynvml_are_decoded() -> None:
    inv = discover(nvml=FakeNVML(gpus=[(b"Tesla T4", 15 * GIB)], driver=b"535.1", cuda=11080))
    [d] = inv.devices
    assert (d.name, d.model, d.driver_version, d.cuda_version) == ("Tesla T4", "t4", "535.1", "11.8")


def test_unknown_cuda_version_is_empty() -> None:
    inv = discover(nvml=FakeNVML(gpus=[H100], cuda=NVMLError("not supported")))
    assert inv.devices[0].cuda_version == ""


def test_gpus_without_a_fingerprint_are_left_out_and_indices_stay_dense() -> None:
    inv = discover(
        nvml=FakeNVML(gpus=[("NVIDIA GeForce GTX 1080", 8 * GIB), H100, ("NVIDIA H100 NVL", 94 * GIB)])
    )
    assert inv.cpu_only is False
    [d] = inv.devices
    assert (d.index, d.model, d.uuid) == (0, "h100-sxm", "GPU-0001")


def test_only_unknown_gpus_fall_back_to_the_cpu() -> None:
    nvml = FakeNVML(gpus=[("NVIDIA GeForce GTX 1080", 8 * GIB), ("NVIDIA A10G", 24 * GIB)])
    inv = discover(nvml=nvml)
    assert_cpu_only(inv)
    assert inv.note == (
        "no GPU with a known fingerprint (NVIDIA GeForce GTX 1080, NVIDIA A10G): running as a CPU provider"
    )
    assert nvml.calls == ["init", "shutdown"]


def test_no_gpu_falls_back_to_the_cpu() -> None:
    inv = discover(nvml=FakeNVML(gpus=[]))
    assert_cpu_only(inv)
    assert inv.note == "no NVIDIA GPU found: running as a CPU provider"


def test_nvml_is_shut_down_even_when_a_query_fails() -> None:
    nvml = FakeNVML(gpus=[H100])

    def broken(h: Any) -> str:
        raise NVMLError("GPU is lost")

    nvml.nvmlDeviceGetName = broken  # type: ignore[method-assign]
    with contextlib.suppress(NVMLError):  # whether discover() raises or falls back is not the point here
        discover(nvml=nvml)
    assert nvml.calls == ["init", "shutdown"]


def test_a_failing_shutdown_is_ignored() -> None:
    nvml = FakeNVML(gpus=[H100])

    def shutdown() -> None:
        raise NVMLError("uninitialized")

    nvml.nvmlShutdown = shutdown  # type: ignore[method-assign]
    assert discover(nvml=nvml).gpu_count == 1


def test_an_error_that_is_not_nvmls_is_a_bug_and_not_hidden() -> None:
    nvml = FakeNVML(gpus=[H100])

    def buggy(h: Any) -> int:
        raise KeyError("total")

    nvml.nvmlDeviceGetMemoryInfo = buggy  # type: ignore[method-assign]
    with pytest.raises(KeyError):
        discover(nvml=nvml)
    assert nvml.calls == ["init", "shutdown"]


def test_a_disabled_nvml_gives_a_cpu_provider() -> None:
    from provider.app import _NoNVML

    inv = discover(nvml=_NoNVML())
    assert_cpu_only(inv)
    assert inv.note == "NVML unavailable (RuntimeError): running as a CPU provider"
