"""The queen's converters: what it writes, the provider and the king read back unchanged (the wire format)."""

from __future__ import annotations

import pytest

from blendr.errors import InvalidArgumentError
from king.convert import queen_event_from_proto
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import queen_pb2 as pb
from provider.convert import assignment_from_proto as provider_assignment
from queen import convert
from queen.jobs import Assignment, JobEvent, JobStartOut, JobStopOut

A = Assignment(job_id="j-1", attempt=3, provider="0x" + "ab" * 20, gpus=2, rental_id=b"\x07" * 32,
               deadline_unix=1234.5, ciphertext=b"sealed", sealed_key=b"key", aad="aad")
EV = JobEvent("j-1", 3, 9, "running", "half way", 0.5, 99.0, 0)


def test_a_job_start_reaches_the_provider_as_assigned() -> None:
    wire = pb.QueenMessage.FromString(convert.outbound_to_proto(JobStartOut(A)).SerializeToString())
    got = provider_assignment(wire.job_start)
    assert (got.job_id, got.attempt, got.gpus, got.deadline_unix, got.ciphertext, got.sealed_key, got.aad) == (
        A.job_id, A.attempt, A.gpus, A.deadline_unix, A.ciphertext, A.sealed_key, A.aad)


def test_a_job_stop_reaches_the_provider() -> None:
    wire = convert.outbound_to_proto(JobStopOut("j-1", 3, "cancelled"))
    assert wire.job_stop == pb.JobStopRequest(job_id="j-1", attempt=3, reason="cancelled")


def test_a_kings_assignment_round_trips() -> None:
    m = kpb.JobAssignment(job_id=A.job_id, attempt=A.attempt, provider=A.provider, gpus=A.gpus, rental_id=A.rental_id,
                          deadline_unix=A.deadline_unix, ciphertext=A.ciphertext, sealed_key=A.sealed_key, aad=A.aad)
    assert convert.assignment_from_proto(kpb.JobAssignment.FromString(m.SerializeToString())) == A


def test_a_job_event_reaches_the_king_with_every_field() -> None:
    wire = kpb.QueenToKing.FromString(convert.event_to_proto(EV).SerializeToString())
    got = queen_event_from_proto(wire.job_event)
    assert (got.job_id, got.attempt, got.seq, got.kind, got.message, got.progress, got.ts, got.exit_code) == (
        EV.job_id, EV.attempt, EV.seq, EV.kind, EV.message, EV.progress, EV.ts_unix, EV.exit_code)


def test_a_providers_job_update_is_read_as_sent() -> None:
    u = pb.JobUpdate(job_id="j-1", attempt=3, seq=9, kind="running", message="half way", progress=0.5, ts_unix=99.0)
    assert convert.job_event_from_proto(u) == EV


def test_an_unknown_provider_state_filter_is_invalid() -> None:
    assert convert.states_from_proto([]) == []
    with pytest.raises(InvalidArgumentError, match="unknown provider state 42"):
        convert.states_from_proto([42])  # type: ignore[list-item]
