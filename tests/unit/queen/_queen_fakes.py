"""Shared builders and fakes for the queen's unit tests (imported by module name, like _proof_oracle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from blendr.identity import Address
from blendr.proof.fingerprints import FINGERPRINTS, GIB
from blendr.types import DeviceInfo, DeviceKind, Hello, RayInfo

T = TypeVar("T")

ADDR_A = Address("0x" + "aa" * 20)
ADDR_B = Address("0x" + "bb" * 20)


def gpu(index: int, model: str = "h100-sxm", memory_bytes: int | None = None) -> DeviceInfo:
    """A GPU whose memory matches its model's fingerprint unless told otherwise."""
    fp = FINGERPRINTS[model]
    mem = memory_bytes if memory_bytes is not None else (fp.memory_bytes or 16 * GIB)
    return DeviceInfo(
        index=index, kind=DeviceKind.GPU, name=fp.name, model=model, memory_bytes=mem, uuid=f"GPU-{index}"
    )


def cpu(index: int = 0) -> DeviceInfo:
    return DeviceInfo(
        index=index, kind=DeviceKind.CPU, name="Test CPU (2 cores)", model="cpu", memory_bytes=8 * GIB
    )


def hello(address: Address, *devices: DeviceInfo, version: str = "blendrchain/test") -> Hello:
    return Hello(
        address=address,
        devices=tuple(devices) or (cpu(),),
        ray=RayInfo(ray_version="2.50.0"),
        software_version=version,
    )


@dataclass
class FakeLink:
    """A provider stream as the queen sees it: records what is sent and why it was closed."""

    sent: list[object] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def send(self, msg: object) -> None:
        self.sent.append(msg)

    def close(self, reason: str) -> None:
        self.closed.append(reason)

    def refuse(self, reason: str) -> None:
        self.refused.append(reason)

    def of(self, kind: type[T]) -> list[T]:
        """The sent messages of one type, in order."""
        return [m for m in self.sent if isinstance(m, kind)]
