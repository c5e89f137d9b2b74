"""Renters' jobs as a queen sees them: the king's assignments, their providers' updates, and losses.

Pure domain logic over the :class:`~blendr.store.Store` port and an injected clock (no grpc): the king link
feeds assignments and stops in, the provider streams feed updates in, and the book answers through two
callbacks — ``to_provider`` (a :class:`JobStartOut` or :class:`JobStopOut` for one provider's stream) and
``emit`` (a :class:`JobEvent` for the king).

Guarantees:

- Idempotent by ``(job_id, attempt)``: a repeated assignment never starts the job twice; the book reports the
  job's latest state again instead (and re-sends the start while the provider has not answered it yet).
- Per job and attempt, events reach ``emit`` with increasing ``seq``: a provider's update whose ``seq`` is not
  above the last one is a duplicate (a provider re-reports its jobs after a reconnect) and is dropped.
- ``lost`` is the queen's own verdict, with ``seq`` one above the provider's last: the provider went away
  (dead by the pool's liveness), was not connected when the job was assigned, or sent no final state by the
  job's deadline (plus a grace). After a terminal event (``succeeded``, ``failed``, ``stopped``, ``lost``)
  nothing more is relayed for that attempt; a provider still running a lost job is told to stop it.
- Durable: each job's record (state, last ``seq``, last state event, whether the final event has been
  handed to the king) is in the store, written at once on state changes and at :meth:`JobBook.flush` (or
  every :data:`MAX_UNPERSISTED`) for logs and progress, so a restarted queen answers repeats and replays
  unreported final states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from blendr.clock import Clock
from blendr.errors import InvalidArgumentError, SignatureError
from blendr.identity import Address, to_address
from blendr.store import Store
from blendr.telemetry import get_logger

log = get_logger("blendr.queen.jobs")

NS_JOBS = "jobs"
TERMINAL = frozenset({"succeeded", "failed", "stopped", "lost"})
# What a provider may report; "lost" is the queen's alone.
PROVIDER_KINDS = frozenset({"accepted", "running", "log", "progress", "succeeded", "failed", "stopped"})
# Events that do not change a job's state: not kept as its "last event", persisted lazily.
CHATTER = frozenset({"log", "progress"})
ASSIGNED = "assigned"
# At most this many logs and progress events of a job go unpersisted: a restarted queen's "lost" jumps past
# them, since the king ignores an event whose seq is not above the last it saw.
MAX_UNPERSISTED = 64
MAX_JOB_ID = 128
MAX_MESSAGE = 4096


@dataclass(frozen=True)
class Assignment:
    """A job the king hands to this queen for one of its providers (``KingToQueen.assign``)."""

    job_id: str
    attempt: int
    provider: str
    gpus: int
    rental_id: bytes
    deadline_unix: float
    ciphertext: bytes
    sealed_key: bytes
    aad: str


@dataclass(frozen=True)
class JobEvent:
    """A job's progress: a provider's ``JobUpdate`` in, a ``QueenJobEvent`` out (same fields).

    ``provider_fault`` (on ``failed``): the provider could not run the job, not the job's own failure.
    """

    job_id: str
    attempt: int
    seq: int
    kind: str
    message: str = ""
    progress: float = 0.0
    ts_unix: float = 0.0
    exit_code: int = 0
    provider_fault: bool = False

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobEvent:
        return cls(**d)


@dataclass(frozen=True)
class JobStartOut:
    """Start a job on the provider's stream (``QueenMessage.job_start``)."""

    assignment: Assignment


@dataclass(frozen=True)
class JobStopOut:
    """Stop a job on the provider's stream (``QueenMessage.job_stop``)."""

    job_id: str
    attempt: int
    reason: str


JobOut = JobStartOut | JobStopOut


@dataclass
class JobRecord:
    """What the queen keeps about one job attempt (the payload is not kept: a repeat carries it again)."""

    job_id: str
    attempt: int
    provider: Address
    gpus: int
    rental_id: str
    deadline_unix: float
    assigned_at: float
    state: str = ASSIGNED
    last_seq: int = 0
    last_event: dict[str, Any] | None = None
    # True once the terminal event has been written to a king stream (else it is replayed on connect).
    final_sent: bool = False
    stop_reason: str = ""
    # Not persisted: changed since the last write; the last seq written; whether last_seq is exact (it is
    # not for a record loaded from the store: logs after its last write may have reached the king).
    dirty: bool = field(default=False, compare=False)
    saved_seq: int = field(default=0, compare=False)
    seq_exact: bool = field(default=True, compare=False)

    @property
    def key(self) -> str:
        return job_key(self.job_id, self.attempt)

    @property
    def active(self) -> bool:
        return self.state not in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for transient in ("dirty", "saved_seq", "seq_exact"):
            d.pop(transient)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobRecord:
        rec = cls(**{**d, "provider": Address(d["provider"])})
        rec.saved_seq, rec.seq_exact = rec.last_seq, False
        return rec


def job_key(job_id: str, attempt: int) -> str:
    """The store key of a job attempt; attempts of one job sort in order."""
    return f"{job_id}/{attempt:010d}"


def check_job_id(job_id: str) -> str:
    """Returns ``job_id`` or raises InvalidArgumentError (empty, too long, or with control characters)."""
    if not job_id or len(job_id) > MAX_JOB_ID or not job_id.isprintable() or "/" in job_id:
        raise InvalidArgumentError(f"job id must be 1..{MAX_JOB_ID} printable characters without '/'")
    return job_id


class JobBook:
    """The jobs a queen runs for its king, keyed by ``(job_id, attempt)``."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        to_provider: Callable[[Address, JobOut], bool],
        emit: Callable[[JobEvent], None],
        is_connected: Callable[[Address], bool],
        lost_grace_s: float,
    ) -> None:
        """
        Args:
            to_provider: Queues a message on a provider's stream; returns False when it has none.
            emit: Takes an event for the king (never blocks).
            is_connected: Whether a provider has a stream now.
            lost_grace_s: Seconds past a job's deadline without a final state before it is ``lost``.
        """
        self._store = store
        self._clock = clock
        self._to_provider = to_provider
        self._emit = emit
        self._is_connected = is_connected
        self._grace = lost_grace_s
        self._active: dict[str, JobRecord] = {}
        self._unsent: dict[str, JobRecord] = {}
        # Called when the GPUs busy on a provider change (the king link sends a fresh snapshot).
        self.load_listeners: list[Callable[[Address], None]] = []
        # Called with (rental id, provider) when a job failed on the provider's side: its rental pays nothing.
        self.fault_listeners: list[Callable[[int, Address], None]] = []

    # ------------------------------------------------------------------ persistence
    def load(self) -> int:
        """Load open jobs and unreported final states from the store; returns how many jobs are open."""
        for _, value in self._store.scan(NS_JOBS):
            rec = JobRecord.from_dict(value)
            if rec.active:
                self._active[rec.key] = rec
            elif not rec.final_sent:
                self._unsent[rec.key] = rec
        return len(self._active)

    def flush(self) -> int:
        """Persist records changed only by logs and progress; returns how many were written."""
        dirty = [r for r in self._active.values() if r.dirty]
        if dirty:
            with self._store.batch() as b:
                for rec in dirty:
                    b.put(NS_JOBS, rec.key, rec.to_dict())
            for rec in dirty:
                rec.dirty, rec.saved_seq = False, rec.last_seq
        return len(dirty)

    def _save(self, rec: JobRecord) -> None:
        self._store.put(NS_JOBS, rec.key, rec.to_dict())
        rec.dirty, rec.saved_seq = False, rec.last_seq

    def _get(self, job_id: str, attempt: int) -> JobRecord | None:
        key = job_key(job_id, attempt)
        rec = self._active.get(key) or self._unsent.get(key)
        if rec is None:
            value = self._store.get(NS_JOBS, key)
            rec = JobRecord.from_dict(value) if value is not None else None
        return rec

    # ------------------------------------------------------------------ from the king
    def assign(self, a: Assignment) -> None:
        """Take an assignment: start it on its provider, or answer why not (never raises for bad input).

        A malformed assignment is answered ``failed``; one for a provider that has no stream now ``lost``.
        A repeat of a known ``(job_id, attempt)`` reports the latest state again.
        """
        try:
            check_job_id(a.job_id)
            provider = to_address(a.provider)
            if a.gpus < 1:
                raise InvalidArgumentError(f"an assignment needs gpus >= 1 (got {a.gpus})")
        except (InvalidArgumentError, SignatureError) as exc:  # a bad job id, provider address or gpus
            log.warning("malformed assignment refused", job=a.job_id[:MAX_JOB_ID], error=str(exc))
            if a.job_id and len(a.job_id) <= MAX_JOB_ID and "/" not in a.job_id and a.job_id.isprintable():
                self._emit(JobEvent(a.job_id, a.attempt, 1, "failed", f"invalid assignment: {exc}"[:MAX_MESSAGE],
                                    ts_unix=self._clock.time()))
            return
        rec = self._get(a.job_id, a.attempt)
        if rec is not None:
            self._repeat(rec, a)
            return
        rec = JobRecord(job_id=a.job_id, attempt=a.attempt, provider=provider, gpus=a.gpus,
                        rental_id=a.rental_id.hex(), deadline_unix=a.deadline_unix, assigned_at=self._clock.time())
        if not self._is_connected(provider):
            self._lose(rec, f"provider {provider} is not connected to this queen")
            return
        self._active[rec.key] = rec
        self._save(rec)
        self._to_provider(provider, JobStartOut(replace(a, provider=provider)))
        log.info("job assigned", job=a.job_id, attempt=a.attempt, provider=provider, gpus=a.gpus)
        self._load_changed(provider)

    def _repeat(self, rec: JobRecord, a: Assignment) -> None:
        if rec.last_event is not None:
            self._emit(JobEvent.from_dict(rec.last_event))
        elif rec.active and self._is_connected(rec.provider):
            # The provider has not answered yet: the start may have been lost with its previous stream.
            # A provider that knows the job only reports it again, so this never starts it twice.
            self._to_provider(rec.provider, JobStartOut(replace(a, provider=rec.provider)))

    def stop(self, job_id: str, attempt: int, reason: str) -> None:
        """Ask the job's provider to stop it; kept until the provider is connected. A finished job re-reports."""
        rec = self._get(job_id, attempt)
        if rec is None:
            log.warning("stop for a job this queen does not run", job=job_id[:MAX_JOB_ID], attempt=attempt)
            return
        if not rec.active:
            if rec.last_event is not None:
                self._emit(JobEvent.from_dict(rec.last_event))
            return
        rec.stop_reason = reason or "stopped by the king"
        self._save(rec)
        self._to_provider(rec.provider, JobStopOut(job_id, attempt, rec.stop_reason))

    # ------------------------------------------------------------------ from providers
    def update(self, provider: Address, ev: JobEvent) -> None:
        """A provider's update: relay it when it is new, drop duplicates, stop what it should not run."""
        if ev.kind not in PROVIDER_KINDS:
            log.warning("job update of an unknown kind ignored", provider=provider, kind=ev.kind[:32])
            return
        rec = self._get(ev.job_id, ev.attempt) if ev.job_id and "/" not in ev.job_id else None
        if rec is None or rec.provider != provider:
            if not ev.terminal:
                # Not assigned to this provider through this queen (e.g. it failed over from another
                # queen, which has declared the job lost): its events cannot reach the king.
                self._to_provider(provider, JobStopOut(ev.job_id, ev.attempt, "not assigned through this queen"))
            log.warning("update for a job this queen did not assign to the provider", provider=provider,
                        job=ev.job_id[:MAX_JOB_ID], attempt=ev.attempt)
            return
        if not rec.active:
            if rec.state == "lost" and not ev.terminal:
                self._to_provider(provider, JobStopOut(ev.job_id, ev.attempt, "the queen declared this job lost"))
            return
        if ev.seq <= rec.last_seq:
            return
        # A fault counts only before the job ran: once running, the renter's code had the devices (and could
        # crash Ray on purpose to look like the provider's failure and run for free).
        ran = rec.state == "running"
        ev = replace(ev, message=ev.message[:MAX_MESSAGE],
                     provider_fault=ev.kind == "failed" and ev.provider_fault and not ran)
        rec.last_seq, rec.seq_exact = ev.seq, True
        if ev.kind in CHATTER:
            rec.dirty = True
            if rec.state == ASSIGNED:
                rec.state = "running"
        else:
            rec.state = ev.kind
            rec.last_event = ev.to_dict()
        if ev.terminal:
            del self._active[rec.key]
            self._unsent[rec.key] = rec
        if ev.kind not in CHATTER or rec.last_seq - rec.saved_seq >= MAX_UNPERSISTED:
            self._save(rec)
        self._emit(ev)
        if ev.terminal:
            log.info("job ended", job=ev.job_id, attempt=ev.attempt, kind=ev.kind, provider=provider,
                     provider_fault=ev.provider_fault)
            if ev.provider_fault and rec.rental_id:
                for listener in self.fault_listeners:
                    listener(int(rec.rental_id, 16), provider)
            self._load_changed(provider)

    def provider_admitted(self, provider: Address) -> None:
        """A provider (re)joined: send the stops it missed while it was away."""
        for rec in list(self._active.values()):
            if rec.provider == provider and rec.stop_reason:
                self._to_provider(provider, JobStopOut(rec.job_id, rec.attempt, rec.stop_reason))

    def provider_dead(self, provider: Address, why: str) -> int:
        """The pool declared ``provider`` dead: each of its open jobs is ``lost``. Returns how many."""
        recs = [r for r in self._active.values() if r.provider == provider]
        for rec in recs:
            self._lose(rec, f"provider {provider} went away: {why}")
        return len(recs)

    def expire(self) -> int:
        """Open jobs past their deadline plus the grace without a final state are ``lost``; returns how many."""
        now = self._clock.time()
        late = [r for r in self._active.values() if r.deadline_unix > 0 and now > r.deadline_unix + self._grace]
        for rec in late:
            self._lose(rec, f"no final state from provider {rec.provider} by the job's deadline")
        return len(late)

    def _lose(self, rec: JobRecord, why: str) -> None:
        seq = rec.last_seq + 1 + (0 if rec.seq_exact else MAX_UNPERSISTED)
        ev = JobEvent(rec.job_id, rec.attempt, seq, "lost", why, ts_unix=self._clock.time())
        rec.last_seq, rec.state, rec.last_event = ev.seq, "lost", ev.to_dict()
        self._active.pop(rec.key, None)
        self._unsent[rec.key] = rec
        self._save(rec)
        log.warning("job lost", job=rec.job_id, attempt=rec.attempt, provider=rec.provider, reason=why)
        self._emit(ev)
        self._load_changed(rec.provider)

    def _load_changed(self, provider: Address) -> None:
        for listener in self.load_listeners:
            listener(provider)

    # ------------------------------------------------------------------ the king link
    def replay(self) -> list[JobEvent]:
        """The latest state event of every open job and every final state not yet handed to the king.

        The king link sends these after each (re)connect; the king ignores those it has seen.
        """
        recs = sorted([*self._active.values(), *self._unsent.values()], key=lambda r: r.assigned_at)
        return [JobEvent.from_dict(r.last_event) for r in recs if r.last_event is not None]

    def sent(self, ev: JobEvent) -> None:
        """``ev`` was written to a king stream: a final state is then no longer replayed."""
        if not ev.terminal:
            return
        key = job_key(ev.job_id, ev.attempt)
        rec = self._unsent.get(key)
        if rec is not None and rec.last_seq == ev.seq:
            del self._unsent[key]
            rec.final_sent = True
            self._save(rec)

    # ------------------------------------------------------------------ queries
    def busy_gpus(self, provider: Address) -> int:
        """GPUs of the provider's open jobs through this queen."""
        return sum(r.gpus for r in self._active.values() if r.provider == provider)

    def get(self, job_id: str, attempt: int) -> JobRecord | None:
        return self._get(job_id, attempt)

    def open_jobs(self) -> list[JobRecord]:
        return sorted(self._active.values(), key=lambda r: r.assigned_at)


__all__ = ["Assignment", "JobBook", "JobEvent", "JobOut", "JobRecord", "JobStartOut", "JobStopOut"]
