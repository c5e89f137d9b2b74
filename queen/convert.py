"""Protobuf ↔ the queen's domain types, for both of its edges, in one place.

The provider side (``QueenService.Connect``, ``QueenAdmin``) and the king side (``KingControl.QueenSession``
and the attestation calls) convert here; :mod:`queen.core`, :mod:`queen.jobs`, :mod:`queen.pool`,
:mod:`queen.verification` and :mod:`queen.attester` never build or read a protobuf message. Conversions the
provider shares (hello, devices, challenges, openings, the state and verdict enums) stay in
:mod:`blendr.rpc.convert`, and the bridge message's in :mod:`blendr.chain.relay` (the king reads it too).
The wire format is the one ``protos/blendr/v1`` defines. ``*_from_proto`` raise
:class:`~blendr.errors.InvalidArgumentError` naming the field for a malformed message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from blendr.chain.bridge import BridgeMessage
from blendr.chain.relay import message_from_proto, message_to_proto
from blendr.errors import InvalidArgumentError
from blendr.rpc import convert as shared
from blendr.types import ProviderState, Verdict
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import queen_pb2 as pb
from queen.attester import KingAck
from queen.challenges import DeviceCommitmentIn
from queen.core import AdmittedOut, ChallengeOut, OpeningRequestOut, Outbound, ResultOut
from queen.jobs import Assignment, JobEvent, JobStartOut, JobStopOut
from queen.pool import ProviderRecord


# ---------------------------------------------------------------------------------------------- providers
def outbound_to_proto(msg: Outbound) -> pb.QueenMessage:
    """What the core sends a provider, as the stream message that carries it."""
    if isinstance(msg, ChallengeOut):
        p = msg.pending
        return pb.QueenMessage(challenge=shared.challenge_to_proto(p.params, p.timeout_s, p.device_indices))
    if isinstance(msg, OpeningRequestOut):
        plan = msg.plan
        return pb.QueenMessage(opening_request=pb.OpeningRequest(
            challenge_id=plan.challenge_id, rows=[pb.RowRef(device_index=d, row=r) for d, r in plan.rows],
            timeout_ms=int(plan.timeout_s * 1000), probe_key=plan.probe_key))
    if isinstance(msg, ResultOut):
        return pb.QueenMessage(challenge_result=pb.ChallengeResult(
            challenge_id=msg.challenge_id, verdict=shared.VERDICT_TO_PB[msg.verdict], reason=msg.reason,
            reported_tflops=msg.reported_tflops, wall_tflops=msg.wall_tflops))
    if isinstance(msg, JobStartOut):
        a = msg.assignment
        return pb.QueenMessage(job_start=pb.JobStart(
            job_id=a.job_id, attempt=a.attempt, gpus=a.gpus, deadline_unix=a.deadline_unix,
            ciphertext=a.ciphertext, sealed_key=a.sealed_key, aad=a.aad))
    if isinstance(msg, JobStopOut):
        return pb.QueenMessage(job_stop=pb.JobStopRequest(job_id=msg.job_id, attempt=msg.attempt, reason=msg.reason))
    raise TypeError(f"unknown outbound message {type(msg).__name__}")


def admission_challenge_to_proto(nonce: bytes, queen: str) -> pb.QueenMessage:
    return pb.QueenMessage(admission_challenge=pb.AdmissionChallenge(nonce=nonce, queen_address=queen))


def admitted_to_proto(a: AdmittedOut) -> pb.QueenMessage:
    return pb.QueenMessage(admitted=pb.Admitted(provider_address=a.address,
                                                heartbeat_interval_seconds=a.heartbeat_interval_s,
                                                resumed=a.resumed, queen_address=a.queen))


def commitment_from_proto(c: pb.Commitment) -> list[DeviceCommitmentIn]:
    return [DeviceCommitmentIn(d.device_index, bytes(d.root), d.work_seconds, d.peak_memory_bytes, bytes(d.probe))
            for d in c.devices]


def job_event_from_proto(u: pb.JobUpdate) -> JobEvent:
    """A provider's ``JobUpdate`` (the job book checks its kind, ids and sequence)."""
    return JobEvent(job_id=u.job_id, attempt=u.attempt, seq=u.seq, kind=u.kind, message=u.message,
                    progress=u.progress, ts_unix=u.ts_unix, exit_code=u.exit_code, provider_fault=u.provider_fault)


def states_from_proto(states: Iterable[pb.ProviderState]) -> list[ProviderState]:
    """The states a ``ListProvidersRequest`` filters on; raises InvalidArgumentError for an unknown one."""
    out = []
    for s in states:
        if s not in shared.STATE_FROM_PB:
            raise InvalidArgumentError(f"unknown provider state {s}")
        out.append(shared.STATE_FROM_PB[s])
    return out


def _verdict_to_proto(value: Any) -> pb.Verdict:
    try:
        return shared.VERDICT_TO_PB[Verdict(value)]
    except ValueError:  # a summary written by an older queen, or none yet
        return pb.VERDICT_UNSPECIFIED


def provider_info_to_proto(rec: ProviderRecord, connected_seconds: float) -> pb.ProviderInfo:
    """One provider of the operator's pool table (``QueenAdmin.ListProviders``)."""
    info = pb.ProviderInfo(
        address=rec.address, state=shared.STATE_TO_PB[rec.state],
        devices=[shared.device_to_proto(d) for d in rec.devices],
        challenges_issued=rec.issued, challenges_passed=rec.passed, challenges_failed=rec.failed,
        challenges_missed=rec.missed, measured_tflops=rec.measured_tflops,
        fingerprint_tflops=rec.fingerprint_tflops, uptime=rec.uptime, connected_seconds=connected_seconds,
        last_seen_unix=rec.last_seen, software_version=rec.software_version, admitted_unix=rec.admitted_at,
        not_ready=rec.quarantine or rec.not_ready, challenges_abandoned=rec.abandoned,
        quarantined_until_unix=rec.quarantined_until if rec.quarantine else 0.0, sandbox=rec.sandbox,
    )
    lc = rec.last_challenge
    if lc:
        info.last_challenge.CopyFrom(pb.ChallengeSummary(
            challenge_id=str(lc.get("challenge_id") or ""), verdict=_verdict_to_proto(lc.get("verdict")),
            reason=str(lc.get("reason") or ""), issued_unix=float(lc.get("issued") or 0.0),
            reported_tflops=float(lc.get("reported_tflops") or 0.0)))
    return info


# ---------------------------------------------------------------------------------------------- the king
def registration_to_proto(queen: str, king: str, timestamp: int, endpoint: str, signature: bytes) -> kpb.QueenToKing:
    return kpb.QueenToKing(registration=kpb.QueenRegistration(queen_address=queen, king_address=king,
                                                              timestamp=timestamp, endpoint=endpoint,
                                                              signature=signature))


def provider_to_proto(rec: ProviderRecord, busy_gpus: int) -> kpb.PoolProvider:
    """One pool entry: ``gpus`` counts devices, ``vram_bytes`` and ``tflops`` are per device."""
    gpus = len(rec.devices)
    return kpb.PoolProvider(
        address=rec.address,
        public_key=bytes.fromhex(rec.public_key),
        gpu_model=rec.devices[0].model if rec.devices else "",
        gpus=gpus,
        vram_bytes=min((d.memory_bytes for d in rec.devices), default=0),
        tflops=rec.measured_tflops,
        ask_per_gpu_hour=rec.ask_per_gpu_hour or "0",
        uptime=rec.uptime,
        # A provider that cannot run jobs is listed as not alive: the king offers it nothing new.
        alive=rec.state is ProviderState.ALIVE and rec.ready,
        busy_gpus=min(busy_gpus, gpus),
        admission_nonce=bytes.fromhex(rec.admission_nonce),
        admission_signature=bytes.fromhex(rec.admission_signature),
        sandbox=rec.sandbox,
    )


def snapshot_to_proto(seq: int, providers: Sequence[tuple[ProviderRecord, int]]) -> kpb.QueenToKing:
    """A pool snapshot from (provider, GPUs busy through this queen) pairs."""
    return kpb.QueenToKing(snapshot=kpb.PoolSnapshotMsg(
        seq=seq, providers=[provider_to_proto(rec, busy) for rec, busy in providers]))


def event_to_proto(ev: JobEvent) -> kpb.QueenToKing:
    """A job event as the session message that carries it to the king (same fields as the provider's)."""
    return kpb.QueenToKing(job_event=kpb.QueenJobEvent(
        job_id=ev.job_id, attempt=ev.attempt, seq=ev.seq, kind=ev.kind, message=ev.message, progress=ev.progress,
        ts_unix=ev.ts_unix, exit_code=ev.exit_code, provider_fault=ev.provider_fault))


def assignment_from_proto(m: kpb.JobAssignment) -> Assignment:
    """The king's assignment (the job book checks its job id, provider and GPUs)."""
    return Assignment(job_id=m.job_id, attempt=m.attempt, provider=m.provider, gpus=m.gpus,
                      rental_id=bytes(m.rental_id), deadline_unix=m.deadline_unix, ciphertext=bytes(m.ciphertext),
                      sealed_key=bytes(m.sealed_key), aad=m.aad)


def attestation_to_proto(msg: BridgeMessage, signature: bytes) -> kpb.SubmitAttestationRequest:
    return kpb.SubmitAttestationRequest(message=message_to_proto(msg), signature=signature)


def king_ack_from_proto(resp: kpb.SubmitAttestationResponse) -> KingAck:
    return KingAck(kpb.DeliveryState.Name(resp.state), resp.attestations, resp.threshold)


def attestations_from_proto(got: kpb.GetAttestationsResponse) -> tuple[BridgeMessage, dict[str, bytes]]:
    """The message the king holds and its attestations by attester (raises InvalidArgumentError when malformed)."""
    return message_from_proto(got.message), {a.attester: bytes(a.signature) for a in got.attestations}


__all__ = [
    "admission_challenge_to_proto", "admitted_to_proto", "assignment_from_proto", "attestation_to_proto",
    "attestations_from_proto",
    "commitment_from_proto", "event_to_proto", "job_event_from_proto", "king_ack_from_proto", "outbound_to_proto",
    "provider_info_to_proto", "provider_to_proto", "registration_to_proto", "snapshot_to_proto",
    "states_from_proto",
]
