"""Protobuf ↔ the provider's job records, in one place, for the edge (the queen's stream) only.

The job core (:mod:`provider.jobhost`) takes and gives :mod:`provider.jobtypes` records; the agent's
stream converts with these functions as messages arrive and leave. The wire format is unchanged:
``JobUpdate.kind`` carries :class:`~provider.jobtypes.UpdateKind`'s text.
"""

from __future__ import annotations

from protos.blendr.v1 import queen_pb2 as pb
from provider.jobtypes import Assignment, JobId, JobUpdate, StopRequest, UnixSeconds


def assignment_from_proto(m: pb.JobStart) -> Assignment:
    """A ``JobStart`` as an :class:`Assignment` (its payload stays sealed)."""
    return Assignment(job_id=JobId(m.job_id), attempt=m.attempt, gpus=m.gpus,
                      deadline_unix=UnixSeconds(m.deadline_unix), ciphertext=bytes(m.ciphertext),
                      sealed_key=bytes(m.sealed_key), aad=m.aad, max_output_bytes=m.max_output_bytes)


def stop_from_proto(m: pb.JobStopRequest) -> StopRequest:
    """A ``JobStopRequest`` as a :class:`StopRequest`."""
    return StopRequest(job_id=JobId(m.job_id), attempt=m.attempt, reason=m.reason)


def update_to_proto(u: JobUpdate) -> pb.JobUpdate:
    """A :class:`JobUpdate` as the wire's ``JobUpdate``."""
    return pb.JobUpdate(job_id=u.job_id, attempt=u.attempt, seq=u.seq, kind=u.kind.value, message=u.message,
                        progress=u.progress, ts_unix=u.ts_unix, exit_code=u.exit_code,
                        provider_fault=u.provider_fault)


def update_message(u: JobUpdate) -> pb.ProviderMessage:
    """A :class:`JobUpdate` as the provider's stream message that carries it."""
    return pb.ProviderMessage(job_update=update_to_proto(u))


__all__ = ["assignment_from_proto", "stop_from_proto", "update_message", "update_to_proto"]
