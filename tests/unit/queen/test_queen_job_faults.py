"""The queen's job book relays a provider-side failure (``provider_fault``) to the king and tells its verifier
which rental it voids; a job's own failure does neither."""

from __future__ import annotations

from blendr.clock import ManualClock
from blendr.identity import to_address
from blendr.store import MemoryStore
from queen.jobs import Assignment, JobBook, JobEvent

PROVIDER = to_address("0x" + "ab" * 20)
RENTAL = 0x1234


def book() -> tuple[JobBook, list[JobEvent], list[tuple[int, str]]]:
    emitted: list[JobEvent] = []
    faults: list[tuple[int, str]] = []
    b = JobBook(MemoryStore(), ManualClock(1_800_000_000.0), to_provider=lambda _p, _m: True, emit=emitted.append,
                is_connected=lambda _p: True, lost_grace_s=30.0)
    b.fault_listeners.append(lambda rid, p: faults.append((rid, p)))
    for job_id in ("j-a", "j-b"):
        b.assign(Assignment(job_id, 1, PROVIDER, 1, RENTAL.to_bytes(32, "big"), 1_800_000_600.0, b"ct", b"k", "aad"))
    return b, emitted, faults


def test_a_provider_fault_is_relayed_and_voids_its_rental() -> None:
    b, emitted, faults = book()
    b.update(PROVIDER, JobEvent("j-a", 1, 1, "accepted"))
    b.update(PROVIDER, JobEvent("j-a", 1, 2, "failed", "cannot start the job: the Ray cluster refused it",
                                exit_code=-1, provider_fault=True))
    assert [(e.kind, e.provider_fault) for e in emitted] == [("accepted", False), ("failed", True)]
    assert faults == [(RENTAL, PROVIDER)]
    # a replay after a reconnect carries the flag too
    assert [e.provider_fault for e in b.replay() if e.job_id == "j-a"] == [True]


def test_a_job_failing_by_itself_is_not_a_provider_fault() -> None:
    b, emitted, faults = book()
    b.update(PROVIDER, JobEvent("j-b", 1, 1, "running"))
    b.update(PROVIDER, JobEvent("j-b", 1, 2, "failed", "entrypoint exited with code 3", exit_code=3))
    b.update(PROVIDER, JobEvent("j-a", 1, 1, "succeeded", provider_fault=True))  # only "failed" can be a fault
    assert [e.provider_fault for e in emitted] == [False, False, False] and faults == []


def test_a_fault_reported_after_the_job_ran_is_the_jobs_failure() -> None:
    """Once running, the renter's code had the devices: a "fault" then (its code may crash Ray's supervisor on
    purpose) is relayed as the job's own failure and voids nothing, so the rental settles for verified time."""
    b, emitted, faults = book()
    b.update(PROVIDER, JobEvent("j-a", 1, 1, "running"))
    b.update(PROVIDER, JobEvent("j-a", 1, 2, "log", "working"))
    b.update(PROVIDER, JobEvent("j-a", 1, 3, "failed", "the job supervisor died", exit_code=-1,
                                provider_fault=True))
    assert [(e.kind, e.provider_fault) for e in emitted][-1] == ("failed", False)
    assert faults == []
