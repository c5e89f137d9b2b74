"""The king's jobs as stored: every job, its numbered events, its payload, and who is watching it.

Guarantees:

* Every change is written to the store before it is acted on or announced: :meth:`JobBook.save` writes the
  job and its event (numbered without gaps per job) in one commit, then wakes the job's watchers.
* Jobs that are not finished stay in memory (the store is written through), with their latest events, so the
  king's cost per event does not grow with the number of queued jobs; finished jobs are read back from the
  store when asked for. A failed commit drops the job from memory: the store's version is the truth.
* Per-renter counts of open jobs are kept exactly, for the operator's limits.

Stored form: ``job_terms/<id>`` (what the renter submitted: spec, intents, permit, candidates; written once),
``jobs/<id>`` (the job's state: small, rewritten at every change), ``job_events/<id>/<seq>``,
``job_payloads/<id>`` (dropped once the job is over), ``intent_nonces/<renter>/<nonce>`` (replay guard) and
``rental_cancels/<rental>`` (cancels to send).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from blendr.clock import Clock
from blendr.errors import ResourceExhaustedError, StoreError
from blendr.store import Batch, Store
from king.job import EventKind, Job, JobEvent, JobId, JobState

NS_JOBS = "jobs"  # a job's state (small, rewritten at every change)
NS_TERMS = "job_terms"  # what the renter submitted (written once)
NS_EVENTS = "job_events"
NS_PAYLOADS = "job_payloads"
NS_NONCES = "intent_nonces"
NS_CANCELS = "rental_cancels"  # rentals the king must cancel on chain (written before it tries)
WATCH_QUEUE = 1_000
RECENT_EVENTS = 512  # a live job's latest events kept in memory for its watchers


@dataclass(frozen=True)
class Payload:
    """A job's encrypted payload: the ciphertext, its AAD and the key sealed to each candidate provider."""

    ciphertext: bytes
    aad: str
    keys: dict[str, bytes]

    def to_doc(self) -> dict[str, Any]:
        return {"ciphertext": self.ciphertext.hex(), "aad": self.aad, "keys": {p: k.hex() for p, k in self.keys.items()}}

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Payload:
        return cls(bytes.fromhex(d["ciphertext"]), d["aad"], {p: bytes.fromhex(k) for p, k in d["keys"].items()})


def _open(state: JobState) -> bool:
    return state in (JobState.QUEUED, JobState.SCHEDULED, JobState.RUNNING)


class JobBook:
    """Storage, cache and watchers of every job; use from one event loop."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[JobId, Job] = {}  # every job not finished
        self._by_renter: dict[str, list[JobId]] = {}  # renter -> job ids, oldest first
        self._known: set[JobId] = set()  # every job id in the store (a miss needs no read)
        self._open: dict[str, set[JobId]] = {}  # renter -> jobs queued or live
        self._watchers: dict[JobId, set[asyncio.Queue[JobId]]] = {}
        self._watching: dict[str, int] = {}  # renter -> watch streams open
        self._recent: dict[JobId, deque[JobEvent]] = {}  # unfinished jobs' latest events (committed ones)
        self._staged: list[JobEvent] = []
        self._stale: set[JobId] = set()  # dropped from memory after a failed commit, to read back

    def load(self) -> list[Job]:
        """Reads every job back after a (re)start; returns those not finished, oldest first."""
        terms = dict(self.store.scan(NS_TERMS, ""))
        jobs = sorted((Job.from_doc({**terms[key], **d}) for key, d in self.store.scan(NS_JOBS, "") if key in terms),
                      key=lambda j: j.submitted)
        for job in jobs:
            self._index(job)
        return [j for j in jobs if not j.finished()]

    def _index(self, job: Job) -> None:
        if job.job_id not in self._known:
            self._known.add(job.job_id)
            self._by_renter.setdefault(job.renter, []).append(job.job_id)
        self._track(job)

    def _track(self, job: Job) -> None:
        if job.finished():
            self._cache.pop(job.job_id, None)
            self._recent.pop(job.job_id, None)
        else:
            self._cache[job.job_id] = job
        opened = self._open.setdefault(job.renter, set())
        if _open(job.state):
            opened.add(job.job_id)
        else:
            opened.discard(job.job_id)

    # ------------------------------------------------------------------ reads
    def get(self, job_id: str) -> Job | None:
        job = self._cache.get(JobId(job_id))
        if job is not None:
            return job
        if job_id not in self._known:
            return None
        d, t = self.store.get(NS_JOBS, job_id), self.store.get(NS_TERMS, job_id)
        if d is None or t is None:
            return None
        job = Job.from_doc({**t, **d})
        if not job.finished():  # dropped from memory after a failed commit: the store's version is the truth
            self._cache[job.job_id] = job
        return job

    def unfinished(self) -> Iterator[Job]:
        """Every job not finished (a snapshot: safe to change jobs while iterating)."""
        for job_id in list(self._stale):
            self._stale.discard(job_id)
            self.get(job_id)
        yield from list(self._cache.values())

    def of_renter(self, renter: str) -> list[JobId]:
        return self._by_renter.get(renter, [])

    def open_jobs(self, renter: str) -> int:
        return len(self._open.get(renter, ()))

    def events(self, job_id: str, after: int, limit: int = 1000) -> list[JobEvent]:
        """The job's events after seq ``after`` (at most ``limit``, oldest first): from memory when the job's
        recent events reach back that far, else read from the store from there on."""
        recent = self._recent.get(JobId(job_id))
        if recent and recent[0].seq <= after + 1:
            return [e for e in recent if e.seq > after][:limit]
        return [JobEvent.from_doc(e) for _, e in self.store.scan(NS_EVENTS, f"{job_id}/",
                                                                start_after=f"{job_id}/{after:012d}", limit=limit)]

    def payload(self, job_id: str) -> Payload | None:
        d = self.store.get(NS_PAYLOADS, job_id)
        return None if d is None else Payload.from_doc(d)

    def nonce_owner(self, renter: str, nonce: int) -> str | None:
        d = self.store.get(NS_NONCES, f"{renter}/{nonce:064x}")
        return None if d is None else str(d["job_id"])

    # ------------------------------------------------------------------ writes
    def _event(self, b: Batch, job: Job, kind: EventKind, message: str, progress: float) -> None:
        job.last_seq += 1
        ev = JobEvent(job.job_id, job.last_seq, kind, self.clock.time(), message, progress, str(job.state))
        b.put(NS_EVENTS, f"{job.job_id}/{job.last_seq:012d}", ev.to_doc())
        self._staged.append(ev)

    def _committed(self) -> None:
        """The batch holding the staged events is committed: they join their jobs' recent events."""
        for ev in self._staged:
            if ev.job_id in self._cache:
                self._recent.setdefault(ev.job_id, deque(maxlen=RECENT_EVENTS)).append(ev)
        self._staged.clear()

    def create(self, job: Job, payload: Payload, kind: EventKind, message: str) -> None:
        """Stores a new job with its payload, its intents' nonces and its first event, in one commit."""
        self._staged.clear()
        with self.store.batch() as b:
            b.put(NS_PAYLOADS, job.job_id, payload.to_doc())
            for it in job.intents:
                b.put(NS_NONCES, f"{job.renter}/{it.nonce:064x}", {"job_id": job.job_id})
            self._event(b, job, kind, message, -1.0)
            b.put(NS_TERMS, job.job_id, job.terms_doc())
            b.put(NS_JOBS, job.job_id, job.state_doc())
        self._index(job)
        self._committed()
        self._publish(job)

    def save(self, job: Job, kind: EventKind | None = None, message: str = "", progress: float = -1.0) -> None:
        """Writes the job (and an event, when ``kind`` is given) in one commit, then tells its watchers."""
        self._staged.clear()
        try:
            with self.store.batch() as b:
                if kind is not None:
                    self._event(b, job, kind, message, progress)
                b.put(NS_JOBS, job.job_id, job.state_doc())
        except StoreError:
            self._forget(job.job_id)
            raise
        self._track(job)
        self._committed()
        self._publish(job)

    def _forget(self, job_id: JobId) -> None:
        """A commit failed: the job in memory may hold changes the store does not; the next read takes the
        store's version."""
        self._staged.clear()
        self._cache.pop(job_id, None)
        self._recent.pop(job_id, None)
        self._stale.add(job_id)

    def drop_payload(self, job_id: str) -> None:
        self.store.delete(NS_PAYLOADS, job_id)

    # ------------------------------------------------------------------ cancels to do on chain
    def cancel_later(self, key: str, job_id: str) -> None:
        """Records that the rental must be cancelled, before anything else happens (survives a crash)."""
        self.store.put(NS_CANCELS, key, {"job_id": job_id})

    def cancel_done(self, key: str) -> None:
        self.store.delete(NS_CANCELS, key)

    def cancels(self) -> list[tuple[str, str]]:
        return [(key, str(d["job_id"])) for key, d in self.store.scan(NS_CANCELS, "")]

    # ------------------------------------------------------------------ watchers
    def subscribe(self, job_id: str, renter: str, limit: int) -> asyncio.Queue[JobId]:
        """A queue woken at each change of the job, for one watcher of ``renter`` (at most ``limit`` at once).

        Raises:
            ResourceExhaustedError: the renter already watches ``limit`` streams.
        """
        if self._watching.get(renter, 0) >= limit:
            raise ResourceExhaustedError(f"you are watching {limit} job streams already (the most this king allows "
                                         "one renter): close some")
        q: asyncio.Queue[JobId] = asyncio.Queue(maxsize=WATCH_QUEUE)
        self._watchers.setdefault(JobId(job_id), set()).add(q)
        self._watching[renter] = self._watching.get(renter, 0) + 1
        return q

    def unsubscribe(self, job_id: str, renter: str, q: asyncio.Queue[JobId]) -> None:
        watchers = self._watchers.get(JobId(job_id))
        if watchers is not None and q in watchers:
            watchers.discard(q)
            if not watchers:
                del self._watchers[JobId(job_id)]
            left = self._watching.get(renter, 0) - 1
            if left > 0:
                self._watching[renter] = left
            else:
                self._watching.pop(renter, None)

    def watched(self, job_id: str) -> bool:
        return bool(self._watchers.get(JobId(job_id)))

    def watched_ids(self) -> list[JobId]:
        return list(self._watchers)

    def _publish(self, job: Job) -> None:
        for q in list(self._watchers.get(job.job_id, ())):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(job.job_id)
