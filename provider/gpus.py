"""GPU discovery with NVML (pynvml); a machine without NVML becomes a CPU provider."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from typing import Any

from blendr.proof import fingerprints
from blendr.telemetry import get_logger
from blendr.types import DeviceInfo, DeviceKind

log = get_logger("blendr.provider.gpus")


@dataclass(frozen=True)
class Inventory:
    """The devices a provider offers, and why it is a CPU provider when it is one."""

    devices: tuple[DeviceInfo, ...]
    cpu_only: bool
    note: str

    @property
    def gpu_count(self) -> int:
        return sum(1 for d in self.devices if d.kind is DeviceKind.GPU)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cpu_device() -> DeviceInfo:
    """The machine's CPU as one compute device (memory = physical RAM)."""
    name = platform.processor() or platform.machine() or "cpu"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = 1
    return DeviceInfo(index=0, kind=DeviceKind.CPU, name=f"{name} ({os.cpu_count()} cores)", model="cpu",
                      memory_bytes=int(mem))


def nvml_errors(nvml: Any) -> tuple[type[Exception], ...]:
    """What an NVML binding raises when the driver, the library or a GPU fails.

    pynvml raises its ``NVMLError`` (library not found, function not found, GPU lost, ...); loading the
    shared library can raise OSError, and a stand-in for a disabled NVML raises RuntimeError.
    """
    errors: tuple[type[Exception], ...] = (OSError, RuntimeError)
    binding_error = getattr(nvml, "NVMLError", None)
    if isinstance(binding_error, type) and issubclass(binding_error, Exception):
        errors += (binding_error,)
    return errors


def _cuda_version(nvml: Any) -> str:
    try:
        v = int(nvml.nvmlSystemGetCudaDriverVersion_v2())
    except nvml_errors(nvml):  # an old driver without the call: the version is left unknown
        return ""
    return f"{v // 1000}.{(v % 1000) // 10}"


def discover(nvml: Any | None = None) -> Inventory:
    """Find NVIDIA GPUs with NVML; without NVML (or with no GPU) return the CPU as the only device.

    GPUs whose model has no fingerprint are left out (they could not be challenged) and said so.
    """
    if nvml is None:
        try:
            import pynvml as nvml_mod
        except ImportError:
            return Inventory((cpu_device(),), True, "nvidia-ml-py is not installed")
        nvml = nvml_mod
    errors = nvml_errors(nvml)
    try:
        nvml.nvmlInit()
    except errors as exc:
        return Inventory((cpu_device(),), True, f"NVML unavailable ({type(exc).__name__}): running as a CPU provider")
    try:
        return _inventory(nvml)
    except errors as exc:
        return Inventory((cpu_device(),), True,
                         f"NVML failed while listing GPUs ({type(exc).__name__}: {exc}): running as a CPU provider")
    finally:
        with contextlib.suppress(*errors):
            nvml.nvmlShutdown()


def _inventory(nvml: Any) -> Inventory:
    count = int(nvml.nvmlDeviceGetCount())
    driver = _text(nvml.nvmlSystemGetDriverVersion())
    cuda = _cuda_version(nvml)
    devices: list[DeviceInfo] = []
    skipped: list[str] = []
    for i in range(count):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        name = _text(nvml.nvmlDeviceGetName(h))
        mem = int(nvml.nvmlDeviceGetMemoryInfo(h).total)
        model = fingerprints.match_model(name, mem)
        if model is None:
            skipped.append(name)
            continue
        devices.append(DeviceInfo(index=len(devices), kind=DeviceKind.GPU, name=name, model=model,
                                  memory_bytes=mem, uuid=_text(nvml.nvmlDeviceGetUUID(h)),
                                  driver_version=driver, cuda_version=cuda))
    if skipped:
        log.warning("GPUs without a fingerprint left out", gpus=", ".join(skipped))
    if not devices:
        why = "no NVIDIA GPU found" if not skipped else f"no GPU with a known fingerprint ({', '.join(skipped)})"
        return Inventory((cpu_device(),), True, f"{why}: running as a CPU provider")
    return Inventory(tuple(devices), False, f"{len(devices)} GPU(s), driver {driver}, CUDA {cuda}")
