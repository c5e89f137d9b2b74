"""Domain types shared by queens and providers (no grpc, no web3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from blendr.identity import Address


class DeviceKind(StrEnum):
    GPU = "gpu"
    CPU = "cpu"


class ProviderState(StrEnum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"


class Verdict(StrEnum):
    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    MISSED = "missed"
    # The challenge ended without an answer to judge: the provider left or was replaced mid-challenge, or the
    # queen failed handling its message. Counts as failed everywhere (uptime, quarantine, rental records).
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class DeviceInfo:
    """One compute device a provider offers: an NVIDIA GPU found by NVML, or its CPU."""

    index: int
    kind: DeviceKind
    name: str
    model: str
    memory_bytes: int
    uuid: str = ""
    driver_version: str = ""
    cuda_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeviceInfo:
        return cls(**{**d, "kind": DeviceKind(d["kind"])})


@dataclass(frozen=True)
class RayInfo:
    ray_version: str = ""
    num_cpus: float = 0.0
    num_gpus: float = 0.0
    pin_resource: str = ""


@dataclass(frozen=True)
class Readiness:
    """Whether a provider can run renters' jobs now (its job API answers and a trivial job runs to the end);
    ``reason`` says why not, and is empty when ``ready``."""

    ready: bool = True
    reason: str = ""


@dataclass(frozen=True)
class Hello:
    """What a provider says about itself when it connects."""

    address: Address
    devices: tuple[DeviceInfo, ...]
    ray: RayInfo = field(default_factory=RayInfo)
    software_version: str = ""
    readiness: Readiness = field(default_factory=Readiness)
    # Where renters' code runs: "bubblewrap", "gvisor" or "none" (also what an older agent, which says nothing, is).
    sandbox: str = "none"
