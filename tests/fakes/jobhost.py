"""A fake of the provider's job runner (the :class:`provider.jobhost.JobExecutor` port), without Ray.

:class:`FakeCluster` stands in for the provider's Ray cluster: jobs by run id, each with its event log,
outliving the runners attached to it (as Ray jobs outlive a provider process). :class:`FakeExecutor` is one
runner on it, with :class:`provider.jobs.JobRunner`'s contract:

- ``start`` is idempotent per id: a job the cluster already has is re-attached, never submitted twice;
  a job whose rental already ended is refused (FailedPreconditionError).
- ``events`` has one consumer per runner (FailedPreconditionError for a second) and replays the job's
  events from the first, then follows it until one terminal event, or until the runner closes.
- the rental's end stops the job (``stopped``, ``"rental ended"``) when the test moves the clock
  (:meth:`FakeCluster.advance`).
- ``stop`` is idempotent; a job the cluster does not have is as stopped as it gets.

The test drives each job with :meth:`FakeCluster.running`, :meth:`~FakeCluster.log`,
:meth:`~FakeCluster.succeed`, :meth:`~FakeCluster.fail`, and injects failures with ``fail_start``,
``fail_stop`` and ``gate`` (a start that waits until the test opens it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from blendr.clock import ManualClock
from blendr.errors import BlendrError, ComputeError, FailedPreconditionError, NotFoundError
from blendr.payload import JobPayload
from provider.jobs import RENTAL_ENDED, parse_progress
from provider.jobtypes import JobEvent, UpdateKind


@dataclass(eq=False)
class FakeJob:
    """One job on the fake cluster."""

    run_id: str
    payload: JobPayload
    gpus: int
    deadline_unix: float
    events: list[JobEvent] = field(default_factory=list)
    lines: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1].terminal

    def notify(self) -> None:
        """Wake every consumer (a new event, or a runner closing)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        await self._changed.wait()


class FakeCluster:
    """The provider's cluster, faked: jobs, submissions and stops, moved by the test."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self.jobs: dict[str, FakeJob] = {}
        self.submissions: list[str] = []  # run ids, one per real submission (not per re-attach)
        self.start_calls: list[str] = []  # run ids, one per start() call that reached the cluster
        self.stops: list[tuple[str, str]] = []
        self.fail_start: BlendrError | None = None
        self.fail_stop: BlendrError | None = None
        self.gate: asyncio.Event | None = None
        self.not_ready = ""  # set: the readiness probe fails with this reason
        self.probes = 0

    def job(self, run_id: str) -> FakeJob:
        return self.jobs[run_id]

    # --- moving jobs ---------------------------------------------------------------------------------
    def _emit(self, run_id: str, kind: UpdateKind, message: str = "", *, progress: float = -1.0, seq: int = 0,
              exit_code: int | None = None, provider_fault: bool = False) -> None:
        job = self.jobs[run_id]
        if job.ended:
            raise AssertionError(f"{run_id} already ended with {job.events[-1].kind}")
        job.events.append(JobEvent(run_id, kind, message, progress, self.clock.time(), seq, exit_code,
                                   provider_fault=provider_fault))
        job.notify()

    def running(self, run_id: str) -> None:
        self._emit(run_id, UpdateKind.RUNNING)

    def log(self, run_id: str, *lines: str) -> None:
        """Lines of the job's output (a ``BLENDR_PROGRESS <x>`` line also gives a progress event)."""
        job = self.jobs[run_id]
        for line in lines:
            job.lines += 1
            self._emit(run_id, UpdateKind.LOG, line, seq=job.lines)
            if (value := parse_progress(line)) is not None:
                self._emit(run_id, UpdateKind.PROGRESS, progress=value, seq=job.lines)

    def succeed(self, run_id: str) -> None:
        self._emit(run_id, UpdateKind.SUCCEEDED)

    def fail(self, run_id: str, message: str, *, exit_code: int | None = None, provider_fault: bool = False) -> None:
        self._emit(run_id, UpdateKind.FAILED, message, exit_code=exit_code, provider_fault=provider_fault)

    def stop_job(self, run_id: str, reason: str) -> None:
        job = self.jobs.get(run_id)
        if job is not None and not job.ended:
            self._emit(run_id, UpdateKind.STOPPED, reason)

    def advance(self, seconds: float) -> None:
        """Move the clock; every job whose rental ended by then is stopped (``"rental ended"``)."""
        self.clock.advance(seconds)
        for job in self.jobs.values():
            if not job.ended and self.clock.time() >= job.deadline_unix:
                self.stop_job(job.run_id, RENTAL_ENDED)


class FakeExecutor:
    """One job runner attached to a :class:`FakeCluster` (its own, unless one is given)."""

    def __init__(self, cluster: FakeCluster | None = None) -> None:
        self.cluster = cluster or FakeCluster()
        self.closed = False
        self._mine: set[str] = set()
        self._consumed: set[str] = set()

    # Shortcuts to the cluster's records.
    @property
    def started(self) -> dict[str, tuple[JobPayload, int, float]]:
        return {k: (j.payload, j.gpus, j.deadline_unix) for k, j in self.cluster.jobs.items()}

    @property
    def stops(self) -> list[tuple[str, str]]:
        return self.cluster.stops

    async def start(self, job_id: str, payload: JobPayload, *, gpus: int, deadline_unix: float) -> None:
        if self.closed:
            raise FailedPreconditionError("the job runner is closed")
        if self.cluster.gate is not None:
            await self.cluster.gate.wait()
        self.cluster.start_calls.append(job_id)
        if self.cluster.fail_start is not None:
            raise self.cluster.fail_start
        if job_id not in self.cluster.jobs:
            if self.cluster.clock.time() >= deadline_unix:
                raise FailedPreconditionError(f"job {job_id}: its rental already ended")
            self.cluster.jobs[job_id] = FakeJob(job_id, payload, gpus, deadline_unix)
            self.cluster.submissions.append(job_id)
        self._mine.add(job_id)

    def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        if job_id not in self._mine:
            raise NotFoundError(f"no job {job_id} on this provider")
        if job_id in self._consumed:
            raise FailedPreconditionError(f"job {job_id}'s events already have a consumer")
        self._consumed.add(job_id)
        return self._iterate(self.cluster.jobs[job_id])

    async def _iterate(self, job: FakeJob) -> AsyncIterator[JobEvent]:
        i = 0
        while True:
            while i < len(job.events):
                event = job.events[i]
                i += 1
                yield event
                if event.terminal:
                    return
            if self.closed:
                return
            await job.changed()

    async def stop(self, job_id: str, reason: str) -> None:
        if self.closed:
            raise FailedPreconditionError("the job runner is closed")
        self.cluster.stops.append((job_id, reason))
        if self.cluster.fail_stop is not None:
            raise self.cluster.fail_stop
        self.cluster.stop_job(job_id, reason)

    async def probe(self, timeout_s: float) -> None:
        """The readiness check: fails with ``cluster.not_ready`` while it is set."""
        self.cluster.probes += 1
        if self.cluster.not_ready:
            raise ComputeError(self.cluster.not_ready)

    async def close(self) -> None:
        """Detach: the cluster's jobs keep running; this runner's event iterators end."""
        self.closed = True
        for job in self.cluster.jobs.values():
            job.notify()


__all__ = ["FakeCluster", "FakeExecutor", "FakeJob"]
