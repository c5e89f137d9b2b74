"""Converters between the wire contract (``blendr.v1``) and domain types, with input validation.

``*_from_proto`` functions raise :class:`~blendr.errors.InvalidArgumentError` (or
:class:`~blendr.errors.ResourceExhaustedError` for absurd sizes) with a message naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from blendr.errors import InvalidArgumentError, ProofError, ResourceExhaustedError, SignatureError
from blendr.identity import to_address
from blendr.proof.memory import BLOCK_ROWS
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import Opening
from blendr.proof.rowhash import DIGEST_BYTES
from blendr.types import DeviceInfo, DeviceKind, Hello, ProviderState, RayInfo, Readiness, Verdict
from protos.blendr.v1 import queen_pb2 as pb

MAX_TEXT = 256
MAX_PROOF_DEPTH = 64
MAX_ROWS_PER_OPENING = 4096
MAX_PROBE_BLOCK_BYTES = BLOCK_ROWS * DIGEST_BYTES

_KIND_TO_PB = {DeviceKind.GPU: pb.DEVICE_KIND_NVIDIA_GPU, DeviceKind.CPU: pb.DEVICE_KIND_CPU}
_KIND_FROM_PB = {v: k for k, v in _KIND_TO_PB.items()}
STATE_TO_PB = {
    ProviderState.ALIVE: pb.PROVIDER_STATE_ALIVE,
    ProviderState.SUSPECT: pb.PROVIDER_STATE_SUSPECT,
    ProviderState.DEAD: pb.PROVIDER_STATE_DEAD,
}
STATE_FROM_PB = {v: k for k, v in STATE_TO_PB.items()}
VERDICT_TO_PB = {
    Verdict.PENDING: pb.VERDICT_PENDING,
    Verdict.PASSED: pb.VERDICT_PASSED,
    Verdict.FAILED: pb.VERDICT_FAILED,
    Verdict.MISSED: pb.VERDICT_MISSED,
    Verdict.ABANDONED: pb.VERDICT_ABANDONED,
}
VERDICT_FROM_PB = {v: k for k, v in VERDICT_TO_PB.items()}


def _text(value: str, field: str) -> str:
    if len(value) > MAX_TEXT:
        raise InvalidArgumentError(f"{field} is longer than {MAX_TEXT} characters")
    return value


def device_to_proto(d: DeviceInfo) -> pb.Device:
    return pb.Device(
        index=d.index, kind=_KIND_TO_PB[d.kind], name=d.name, uuid=d.uuid, memory_bytes=d.memory_bytes,
        driver_version=d.driver_version, cuda_version=d.cuda_version, model=d.model,
    )


def device_from_proto(m: pb.Device) -> DeviceInfo:
    if m.kind not in _KIND_FROM_PB:
        raise InvalidArgumentError(f"device {m.index}: unknown device kind {m.kind}")
    if not m.model:
        raise InvalidArgumentError(f"device {m.index}: model is empty")
    return DeviceInfo(
        index=m.index, kind=_KIND_FROM_PB[m.kind], name=_text(m.name, "device.name"),
        model=_text(m.model, "device.model"), memory_bytes=m.memory_bytes, uuid=_text(m.uuid, "device.uuid"),
        driver_version=_text(m.driver_version, "device.driver_version"),
        cuda_version=_text(m.cuda_version, "device.cuda_version"),
    )


def hello_to_proto(h: Hello) -> pb.Hello:
    return pb.Hello(
        address=h.address, devices=[device_to_proto(d) for d in h.devices],
        ray=pb.RayResources(ray_version=h.ray.ray_version, num_cpus=h.ray.num_cpus, num_gpus=h.ray.num_gpus,
                            pin_resource=h.ray.pin_resource),
        software_version=h.software_version,
        readiness=readiness_to_proto(h.readiness),
        sandbox=h.sandbox,
    )


MAX_READINESS_REASON = 500


def readiness_to_proto(r: Readiness) -> pb.Readiness:
    return pb.Readiness(ready=r.ready, reason="" if r.ready else r.reason[:MAX_READINESS_REASON])


def readiness_from_proto(m: pb.Readiness) -> Readiness:
    """A provider's readiness; a not-ready one always carries a reason (cut to a bounded length)."""
    if m.ready:
        return Readiness()
    return Readiness(False, m.reason.strip()[:MAX_READINESS_REASON] or "the provider cannot run jobs (no reason given)")


def hello_from_proto(m: pb.Hello, *, max_devices: int) -> Hello:
    """Raises InvalidArgumentError / ResourceExhaustedError for a malformed hello."""
    if len(m.devices) > max_devices:
        raise ResourceExhaustedError(f"hello lists {len(m.devices)} devices; at most {max_devices} accepted")
    try:
        address = to_address(m.address)
    except SignatureError:
        raise InvalidArgumentError(f"hello.address is not an Ethereum address: {m.address[:64]!r}") from None
    return Hello(
        address=address,
        devices=tuple(device_from_proto(d) for d in m.devices),
        ray=RayInfo(ray_version=_text(m.ray.ray_version, "ray.ray_version"), num_cpus=m.ray.num_cpus,
                    num_gpus=m.ray.num_gpus, pin_resource=_text(m.ray.pin_resource, "ray.pin_resource")),
        software_version=_text(m.software_version, "software_version"),
        readiness=readiness_from_proto(m.readiness) if m.HasField("readiness") else Readiness(),
        sandbox=sandbox_from_proto(m.sandbox),
    )


SANDBOX_KINDS = frozenset({"bubblewrap", "gvisor", "none"})


def sandbox_from_proto(value: str) -> str:
    """A provider's sandbox as reported: a known kind, else "none" (an older agent, or one that says nothing we know,
    is shown as running jobs unsandboxed)."""
    return value if value in SANDBOX_KINDS else "none"


def challenge_to_proto(params: ChallengeParams, timeout_s: float, devices: Sequence[int]) -> pb.Challenge:
    return pb.Challenge(
        challenge_id=params.challenge_id, seed=params.seed, n=params.n, dtype=pb.DTYPE_FP32, count=params.count,
        timeout_ms=max(1, int(timeout_s * 1000)), device_indices=list(devices), b_seed=params.b_seed,
        hold=params.hold,
    )


def challenge_from_proto(m: pb.Challenge) -> tuple[ChallengeParams, float, list[int]]:
    """A provider's view of a challenge. Raises InvalidArgumentError for bad parameters."""
    if m.dtype != pb.DTYPE_FP32:
        raise InvalidArgumentError(f"challenge dtype {m.dtype} is not supported (only DTYPE_FP32)")
    if not m.challenge_id or len(m.challenge_id) > 64:
        raise InvalidArgumentError("challenge_id must be 1..64 characters")
    params = ChallengeParams(challenge_id=m.challenge_id, seed=bytes(m.seed), n=m.n, count=m.count,
                             b_seed=bytes(m.b_seed), hold=m.hold)
    try:
        params.validate()
    except ProofError as exc:
        raise InvalidArgumentError(str(exc)) from None
    if m.timeout_ms == 0:
        raise InvalidArgumentError("challenge timeout_ms must be > 0")
    if not m.device_indices:
        raise InvalidArgumentError("challenge names no devices")
    if len(set(m.device_indices)) != len(m.device_indices):
        raise InvalidArgumentError("challenge names a device twice")
    return params, m.timeout_ms / 1000.0, list(m.device_indices)


def openings_from_proto(m: pb.Openings) -> list[Opening]:
    if len(m.rows) > MAX_ROWS_PER_OPENING:
        raise ResourceExhaustedError(f"{len(m.rows)} openings in one message; at most {MAX_ROWS_PER_OPENING}")
    out = []
    for r in m.rows:
        if len(r.proof) > MAX_PROOF_DEPTH or any(len(h) != 32 for h in r.proof):
            raise InvalidArgumentError(f"row {r.row}: Merkle proof must be <= {MAX_PROOF_DEPTH} hashes of 32 bytes")
        if len(r.probe_block) > MAX_PROBE_BLOCK_BYTES:
            raise InvalidArgumentError(f"row {r.row}: probe_block must be <= {MAX_PROBE_BLOCK_BYTES} bytes")
        out.append(Opening(device_index=r.device_index, row=r.row, values=bytes(r.values),
                           proof=[bytes(h) for h in r.proof], probe_block=bytes(r.probe_block)))
    return out


def openings_to_proto(challenge_id: str, openings: Sequence[Opening]) -> pb.Openings:
    return pb.Openings(
        challenge_id=challenge_id,
        rows=[pb.RowOpening(device_index=o.device_index, row=o.row, values=o.values, proof=list(o.proof),
                            probe_block=o.probe_block)
              for o in openings],
    )
