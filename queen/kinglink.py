"""The queen's session with its king: one ``KingControl.QueenSession`` stream, kept open.

After a signed registration (:mod:`blendr.rpc.registration`) the queen sends pool snapshots (every
snapshot interval, at once after registering, and whenever a provider joins, leaves, dies or its load
changes) and job events; it receives assignments and stops and hands them to the core's
:class:`~queen.jobs.JobBook`. A broken stream is redialled with bounded exponential backoff and jitter
(tenacity's exponential wait: ``relay.retry_initial_s`` doubling up to ``relay.retry_max_s``); the link never gives up, since the pool
keeps working for its providers while the king is away.

Challenge verdicts and landed ETC batches go to the king for its network view (``ChallengeVerdicts``,
``BatchLanded``): at most once, best effort. They wait in bounded buffers (:data:`VERDICT_BUFFER` verdicts,
:data:`BATCH_BUFFER` batch reports; the oldest go first), leave in messages of at most
:data:`VERDICTS_PER_MESSAGE` verdicts or :data:`BATCH_CHALLENGES_PER_MESSAGE` challenge ids, and are not sent
again after a broken stream: they are the king's view, not a record (the record is the queen's batch on ETC).

Delivery of job events is at least once and in order: events wait in a bounded memory buffer
(``relay.king_event_buffer``) while the king is unreachable, leave it only once written to the stream, and
the last :data:`RESEND_TAIL` written before a stream broke are sent again after the reconnect (a write that
returned may still have been lost with the connection). The king ignores events it has seen (by job,
attempt and ``seq``). When the buffer is full the oldest log or progress event is dropped first (state
events are also in the store: after each reconnect the queen replays every open job's latest state and
every final state not yet written to a king, and a king's repeated assignment is answered with the job's
current state), so what a buffer overflow can lose is log lines, never a job's outcome.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from blendr.aio import wait_event, within
from blendr.clock import Clock
from blendr.config import RelayConfig
from blendr.errors import BlendrError, ConfigError, UnavailableError
from blendr.identity import Address, to_address
from blendr.retry import delay as retry_delay
from blendr.retry import exponential
from blendr.rpc.registration import sign_queen_registration
from blendr.telemetry import get_logger
from blendr.types import Verdict
from protos.blendr.v1 import king_pb2 as kpb
from queen import convert
from queen.challenges import Outcome
from queen.core import QueenCore
from queen.jobs import CHATTER, JobEvent

log = get_logger("blendr.queen.king")

RESEND_TAIL = 256
VERDICT_BUFFER = 5_000  # verdicts waiting for the king
BATCH_BUFFER = 256  # batch reports waiting for the king
VERDICTS_PER_MESSAGE = 200  # the king refuses more than 500 in one message
BATCH_CHALLENGES_PER_MESSAGE = 2_000  # the king refuses more than 5000 challenge ids (500 rentals) in one message
REPORTED = {Verdict.PASSED, Verdict.FAILED, Verdict.ABANDONED}  # missed challenges have no id: not reported
MIN_SNAPSHOT_INTERVAL_S = 0.05
# Snapshots for pool changes come at most this often: a thousand providers joining at once cost a few
# snapshots, not a thousand.
CHANGE_GAP_S = 0.2


@dataclass
class KingLinkStatus:
    """What the link has done, for operators and tests."""

    connected: bool = False
    king_address: str = ""
    sessions: int = 0
    snapshots_sent: int = 0
    events_sent: int = 0
    verdicts_sent: int = 0
    batches_sent: int = 0
    events_dropped: int = 0
    last_error: str = ""


class KingLink:
    """Keeps the queen's session with its king open and carries snapshots, events and assignments."""

    def __init__(
        self,
        core: QueenCore,
        account: Any,
        cfg: RelayConfig,
        *,
        stub: Callable[[], Any],
        clock: Clock,
        endpoint: str,
        call_timeout_s: float,
    ) -> None:
        """
        Args:
            core: The queen's core; the link subscribes to its job events and pool changes.
            account: The queen's eth-account LocalAccount (signs the registration).
            cfg: ``[relay]``: king_address, snapshot_interval_s, king_event_buffer, retry_*.
            stub: Returns a ``KingControlStub`` (called once per session).
            endpoint: The provider endpoint named in the registration.
            call_timeout_s: How long the king may take to answer the registration.

        Raises:
            ConfigError: a non-positive snapshot interval or buffer, or a king_address that is not an address.
        """
        if not cfg.snapshot_interval_s > 0:
            raise ConfigError(f"config relay.snapshot_interval_s must be > 0 (got {cfg.snapshot_interval_s})")
        if cfg.king_event_buffer < 1:
            raise ConfigError(f"config relay.king_event_buffer must be >= 1 (got {cfg.king_event_buffer})")
        try:
            self.king_address = to_address(cfg.king_address) if cfg.king_address else ""
        except BlendrError:
            raise ConfigError(f"config relay.king_address is not an address: {cfg.king_address!r}") from None
        self.core = core
        self.cfg = cfg
        self.status = KingLinkStatus()
        self._account = account
        self._stub = stub
        self._clock = clock
        self._endpoint = endpoint
        self._timeout = call_timeout_s
        self._wait = exponential(cfg.retry_initial_s, cfg.retry_max_s)
        self._buffer: deque[JobEvent] = deque()
        self._recent: deque[JobEvent] = deque(maxlen=RESEND_TAIL)
        self._wake = asyncio.Event()
        self._snapshot_due = True
        self._seq = 0
        self._listed: set[str] = set()  # the providers the last snapshot sent listed
        self._silence = 0.0  # seconds without a message from the king after which the session is given up
        self._verdicts: deque[kpb.ChallengeVerdictMsg] = deque(maxlen=VERDICT_BUFFER)
        self._batches: deque[kpb.BatchLanded] = deque(maxlen=BATCH_BUFFER)
        self._loop: asyncio.AbstractEventLoop | None = None
        # the rental whose task counts a challenge (queen.verification.RentalVerifier.rental_of), when the queen
        # verifies rentals
        self.rental_of: Callable[[Address, float], int | None] | None = None
        core.job_listeners.append(self.enqueue)
        core.pool_listeners.append(self.pool_changed)
        core.outcome_listeners.append(self.on_outcome)

    # ------------------------------------------------------------------ inputs
    def enqueue(self, ev: JobEvent) -> None:
        """Queue a job event for the king (never blocks; see the module docstring for overflow)."""
        if len(self._buffer) >= self.cfg.king_event_buffer:
            self._drop_one()
        self._buffer.append(ev)
        self._wake.set()

    def _drop_one(self) -> None:
        for i, old in enumerate(self._buffer):
            if old.kind in CHATTER:
                del self._buffer[i]
                break
        else:
            self._buffer.popleft()
        self.status.events_dropped += 1
        if self.status.events_dropped in (1, 10, 100) or self.status.events_dropped % 1000 == 0:
            log.warning("king event buffer full; dropping the oldest logs", dropped=self.status.events_dropped,
                        buffer=self.cfg.king_event_buffer)

    def on_outcome(self, addr: Address, outcome: Outcome) -> None:
        """A decided challenge, for the king's network view (never blocks; the oldest waiting goes first)."""
        if outcome.verdict not in REPORTED:
            return
        rec = outcome.record
        issued = float(rec.get("issued") or 0.0)
        rid = self.rental_of(addr, issued) if self.rental_of is not None else None
        self._verdicts.append(kpb.ChallengeVerdictMsg(
            challenge_id=str(rec.get("challenge_id", "")), provider=str(addr), verdict=outcome.verdict.value,
            reason=outcome.reason[:200], issued_unix=issued, decided_unix=float(rec.get("decided") or self._clock.time()),
            rental_id=rid.to_bytes(32, "big") if rid is not None else b""))
        self._wake.set()

    def batch_landed(self, batch_id: str, tx: str, rentals: list[tuple[int, list[str]]]) -> None:
        """A batch landed on ETC (called from the verifier's thread): its report waits for the stream, split in
        messages the king takes."""
        msg = kpb.BatchLanded(batch_id=batch_id, tx=tx)
        ids = 0
        for rid, challenge_ids in rentals:
            for i in range(0, max(1, len(challenge_ids)), BATCH_CHALLENGES_PER_MESSAGE):
                part = challenge_ids[i:i + BATCH_CHALLENGES_PER_MESSAGE]
                if ids + len(part) > BATCH_CHALLENGES_PER_MESSAGE or len(msg.rentals) >= 500:
                    self._batches.append(msg)
                    msg, ids = kpb.BatchLanded(batch_id=batch_id, tx=tx), 0
                msg.rentals.append(kpb.BatchedRental(rental_id=rid.to_bytes(32, "big"), challenge_ids=part))
                ids += len(part)
        self._batches.append(msg)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def pool_changed(self) -> None:
        """Send a fresh snapshot as soon as the stream allows."""
        self._snapshot_due = True
        self._wake.set()

    @property
    def pending_events(self) -> int:
        return len(self._buffer)

    # ------------------------------------------------------------------ the loop
    def backoff(self, failures: int) -> float:
        """Seconds before redial number ``failures`` (>= 1): exponential with jitter, at most ``retry_max_s``."""
        return retry_delay(self._wait, failures)

    async def run(self) -> None:
        """Serve the session until cancelled, redialling after every failure."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        while True:
            registered = False
            try:
                registered = await self._session()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                self.status.last_error = f"{exc.code().name}: {exc.details()}"
                level = log.error if exc.code() in (grpc.StatusCode.PERMISSION_DENIED,
                                                    grpc.StatusCode.UNIMPLEMENTED) else log.warning
                level("king session failed", code=exc.code().name, details=exc.details())
            except (BlendrError, OSError, TimeoutError, asyncio.InvalidStateError) as exc:
                self.status.last_error = str(exc) or type(exc).__name__
                log.warning("king session failed", error=self.status.last_error)
            # A session that registered resets the backoff: the next failure waits the shortest time.
            failures = 1 if registered else failures + 1
            delay = self.backoff(failures)
            log.info("redialling the king", in_s=round(delay, 2), pending_events=len(self._buffer))
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One stream. Returns True when the king registered the queen (and the stream has now ended).

        Raises:
            grpc.aio.AioRpcError: the king refused the queen or the stream broke.
            UnavailableError: the king ended the stream or broke the protocol.
        """
        call = self._stub().QueenSession()
        registered = False
        try:
            await call.write(self._registration())
            first = await within(call.read(), self._timeout)
            if first is grpc.aio.EOF:
                raise UnavailableError(f"the king ended the session before registering: "
                                       f"{(await call.code()).name}: {await call.details()}")
            if first.WhichOneof("body") != "registered":
                raise UnavailableError(f"the king sent {first.WhichOneof('body')} instead of registered")
            registered = True
            reg = first.registered
            self.status.connected, self.status.king_address = True, reg.king_address
            self.status.last_error = ""
            self.status.sessions += 1
            # a king that promises heartbeats and goes silent for three of them is paused or cut off (king.ha)
            self._silence = 3 * reg.heartbeat_interval_s if reg.heartbeat_interval_s > 0 else 0.0
            interval = reg.snapshot_interval_s if reg.snapshot_interval_s > 0 else self.cfg.snapshot_interval_s
            interval = max(MIN_SNAPSHOT_INTERVAL_S, interval)
            log.info("registered with the king", king=reg.king_address, snapshot_interval_s=interval,
                     pending_events=len(self._buffer))
            self._replay()
            self._snapshot_due = True
            await self._serve(call, interval)
        finally:
            self.status.connected = False
            call.cancel()
            # What was written last may have died with the stream: send it again, before anything newer.
            self._buffer.extendleft(reversed(self._recent))
            self._recent.clear()
        return registered

    def _replay(self) -> None:
        queued = {(e.job_id, e.attempt, e.seq) for e in self._buffer}
        for ev in self.core.jobs.replay():
            if (ev.job_id, ev.attempt, ev.seq) not in queued:
                self.enqueue(ev)

    async def _serve(self, call: Any, interval: float) -> None:
        reader = asyncio.create_task(self._read(call))
        writer = asyncio.create_task(self._write(call, interval))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (reader, writer):
                t.cancel()
            call.cancel()  # the stream ends too: neither can go on, even past a cancel that was lost
            # Wait for both; their own errors are collected, not raised here (the exception of the task that ended
            # first is raised below, once). A cancel of this task while it waits still propagates: swallowing it
            # would leave run() redialling forever after being cancelled.
            await asyncio.gather(reader, writer, return_exceptions=True)
        for t in done:
            t.result()

    async def _read(self, call: Any) -> None:
        while True:
            try:
                msg = await within(call.read(), self._silence) if self._silence else await call.read()
            except TimeoutError:
                raise UnavailableError(f"the king sent nothing for {self._silence:.0f} s (paused, or cut off): "
                                       "redialling") from None
            if msg is grpc.aio.EOF:
                code = await call.code()
                raise UnavailableError(f"the king ended the session: {code.name}: {await call.details()}")
            kind = msg.WhichOneof("body")
            if kind == "assign":
                self.core.assign(convert.assignment_from_proto(msg.assign))
            elif kind == "stop":
                self.core.stop_job(msg.stop.job_id, msg.stop.attempt, msg.stop.reason)
            elif kind == "registered":
                continue
            else:
                log.warning("unexpected message from the king", kind=kind)

    async def _write(self, call: Any, interval: float) -> None:
        loop = asyncio.get_running_loop()
        last_snapshot = -math.inf
        next_snapshot = loop.time()

        def snapshot_now() -> bool:
            now = loop.time()
            return now >= next_snapshot or (self._snapshot_due and now >= last_snapshot + CHANGE_GAP_S)

        while True:
            if snapshot_now() or self._verdicts_ahead_of_the_pool():
                self._snapshot_due = False
                await call.write(self.snapshot())
                self.status.snapshots_sent += 1
                last_snapshot = loop.time()
                next_snapshot = last_snapshot + interval
            await self._write_reports(call)
            while self._buffer and not snapshot_now():
                ev = self._buffer[0]
                await call.write(convert.event_to_proto(ev))
                # The buffer may have dropped its head while the write waited.
                if self._buffer and self._buffer[0] is ev:
                    self._buffer.popleft()
                self._recent.append(ev)
                self.status.events_sent += 1
                self.core.jobs.sent(ev)
            self._wake.clear()
            if self._buffer or self._verdicts or self._batches:
                continue
            wake_at = min(next_snapshot, last_snapshot + CHANGE_GAP_S) if self._snapshot_due else next_snapshot
            await wait_event(self._wake, wake_at - loop.time())

    def _verdicts_ahead_of_the_pool(self) -> bool:
        """Whether a waiting verdict names a provider of the pool that no snapshot sent yet lists: the king takes
        verdicts only for providers it knows in this queen's pool, so that snapshot must go first (a provider's
        first challenge is decided moments after it joins, within the gap between snapshots)."""
        unlisted = {v.provider for v in self._verdicts} - self._listed
        return bool(unlisted) and any(str(rec.address) in unlisted for rec in self.core.providers())

    async def _write_reports(self, call: Any) -> None:
        """The waiting verdicts and batch reports (the network view's), at most once each."""
        while self._verdicts:
            n = min(len(self._verdicts), VERDICTS_PER_MESSAGE)
            part = [self._verdicts.popleft() for _ in range(n)]
            await call.write(kpb.QueenToKing(verdicts=kpb.ChallengeVerdicts(verdicts=part)))
            self.status.verdicts_sent += n
        while self._batches:
            await call.write(kpb.QueenToKing(batch_landed=self._batches.popleft()))
            self.status.batches_sent += 1

    # ------------------------------------------------------------------ messages
    def _registration(self) -> kpb.QueenToKing:
        ts = int(self._clock.time())
        sig = sign_queen_registration(self._account, self.king_address, ts, self._endpoint)
        return convert.registration_to_proto(self._account.address, self.king_address, ts, self._endpoint, sig)

    def snapshot(self) -> kpb.QueenToKing:
        """The pool now. ``seq`` increases, across restarts too: it is at least the wall clock in milliseconds."""
        self._seq = max(self._seq + 1, int(self._clock.time() * 1000))
        jobs = self.core.jobs
        recs = self.core.providers()
        self._listed = {str(rec.address) for rec in recs}
        return convert.snapshot_to_proto(self._seq, [(rec, jobs.busy_gpus(rec.address)) for rec in recs])


__all__ = ["RESEND_TAIL", "KingLink", "KingLinkStatus"]
