"""The queen's application core: admission, sessions, liveness and challenges, wired together.

Transport-free: the gRPC servicer converts messages and calls these methods; the core talks back to a
provider through a :class:`ProviderLink` that the servicer implements. Everything time-based runs from
:meth:`QueenCore.tick`, called by the app every ``queen.tick_s`` (tests call it with a manual clock).

Guarantees:

* Every challenge issued gets exactly one verdict (passed, failed, missed or abandoned), whatever the provider
  sends and whatever fails in the queen: a malformed message fails it; a provider that leaves or is replaced
  mid-challenge, and an unexpected error handling its message, abandon it (abandoned counts as failed); a
  store write that fails is logged and the verdict still counts. Every outcome listener is called once per
  verdict, even when another listener fails.
* A provider with ``failures`` failed or abandoned challenges among its last ``window`` decided ones is
  quarantined for ``seconds``: its stream is ended with PERMISSION_DENIED, its admission refused, and the king's
  pool lists it as not alive (so it gets no jobs). The quarantine is kept in the store, so a queen restart keeps
  it. The bounds are governance's (``verification.quarantine_*``, as the queen's governance watch last read them,
  applied from the next verdict on); the config's ``queen.quarantine_*`` only without a deployment or before the
  first read (:meth:`QueenCore.quarantine_bounds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from blendr.clock import Clock
from blendr.config import QueenConfig, RelayConfig
from blendr.errors import (
    BlendrError,
    InvalidArgumentError,
    PermissionDeniedError,
    ProofError,
    ResourceExhaustedError,
)
from blendr.identity import Address, recover_admission_key, to_address
from blendr.proof.prover import Opening
from blendr.store import Store
from blendr.telemetry import Metrics, get_logger
from blendr.types import DeviceKind, Hello, ProviderState, Readiness, Verdict
from blendr.units import parse_wei
from queen.admission import Admission, StakeOracle
from queen.challenges import (
    Challenger,
    DeviceCommitmentIn,
    OpeningPlan,
    Outcome,
    PendingChallenge,
    Policy,
    RandomnessBeacon,
    device_fingerprint,
)
from queen.jobs import Assignment, JobBook, JobEvent, JobOut, JobStartOut, JobStopOut
from queen.pool import Pool, ProviderRecord

log = get_logger("blendr.queen")

NS_CHALLENGES = "challenges"
FLUSH_EVERY_S = 5.0
#: The governance parameters of quarantine (blendr.chain.govparams names): window, failures, seconds.
QUARANTINE_PARAMS = ("verification.quarantine_window", "verification.quarantine_failures", "verification.quarantine_s")


@dataclass(frozen=True)
class QuarantineBounds:
    """When a provider is quarantined: ``failures`` failed or abandoned challenges among its last ``window``
    decided ones, for ``seconds``; ``failures`` 0 (or above ``window``): never."""

    window: int
    failures: int
    seconds: float


@dataclass(frozen=True)
class AdmittedOut:
    address: Address
    heartbeat_interval_s: float
    resumed: bool
    queen: Address


@dataclass(frozen=True)
class ChallengeOut:
    pending: PendingChallenge


@dataclass(frozen=True)
class OpeningRequestOut:
    plan: OpeningPlan


@dataclass(frozen=True)
class ResultOut:
    challenge_id: str
    verdict: Verdict
    reason: str
    reported_tflops: float
    wall_tflops: float


Outbound = ChallengeOut | OpeningRequestOut | ResultOut | JobStartOut | JobStopOut


class ProviderLink(Protocol):
    """The queen's side of one provider stream."""

    def send(self, msg: Outbound) -> None:
        """Queue a message to the provider (never blocks)."""

    def close(self, reason: str) -> None:
        """End the stream with ABORTED (e.g. replaced by a newer connection)."""

    def refuse(self, reason: str) -> None:
        """End the stream with PERMISSION_DENIED (the provider is quarantined)."""


class QueenMetrics:
    """The queen's Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.providers = metrics.gauge("queen_providers", "Providers in the pool by state", ("state",))
        self.challenges = metrics.counter("queen_challenges", "Decided challenges by verdict", ("verdict",))
        self.verify_seconds = metrics.histogram(
            "queen_verification_seconds", "CPU time to verify one challenge's openings",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.heartbeats = metrics.counter("queen_heartbeats", "Heartbeats received")
        self.admissions = metrics.counter("queen_admissions", "Admission attempts by result", ("result",))


class QueenCore:
    """Admission, liveness and challenges for one queen's pool."""

    def __init__(
        self,
        address: Address,
        cfg: QueenConfig,
        store: Store,
        clock: Clock,
        oracle: StakeOracle,
        *,
        metrics: QueenMetrics | None = None,
        rng: random.Random | None = None,
        beacon: RandomnessBeacon | None = None,
    ) -> None:
        self.address = address
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.admission = Admission(address, oracle)
        self.pool = Pool(store, clock, suspect_after_s=cfg.suspect_after_s, dead_after_s=cfg.dead_after_s,
                         recent_window=cfg.quarantine_window)
        # governance parameters as the queen follows them (blendr.chain.govwatch.GovWatch, set when the queen has a
        # deployment); None: the config's quarantine bounds
        self.gov: Any = None
        self.challenger = Challenger(Policy.from_config(cfg), clock, rng=rng, beacon=beacon)
        self._links: dict[Address, ProviderLink] = {}
        # Every challenge issued and not yet decided (at most one per provider), and those whose openings are
        # being verified off the event loop: what makes "exactly one verdict per challenge" checkable.
        self._open: dict[Address, PendingChallenge] = {}
        self._verifying: set[str] = set()
        self._last_flush = clock.monotonic()
        # Called with every decided challenge (the rental verifier counts those inside rentals).
        self.outcome_listeners: list[Callable[[Address, Outcome], None]] = []
        # Called with every job event for the king, and whenever the pool's membership, liveness or load
        # changes (the king link sends a fresh snapshot).
        self.job_listeners: list[Callable[[JobEvent], None]] = []
        self.pool_listeners: list[Callable[[], None]] = []
        self.jobs = JobBook(store, clock, to_provider=self._send_job, emit=self._emit_job,
                            is_connected=self.is_connected, lost_grace_s=cfg.dead_after_s)
        self.jobs.load_listeners.append(lambda _addr: self._pool_changed())
        # Readiness flips send a snapshot at most this often (the relay's default snapshot interval): a provider
        # flapping its readiness cannot make the queen flood the king.
        self.readiness_snapshot_gap_s = RelayConfig.snapshot_interval_s
        self._last_readiness_snapshot = -math.inf

    def start(self) -> int:
        """Load the pool from the store and schedule every provider; returns how many it knew.

        Challenges that were in flight when the queen stopped are recorded as missed (the queen, not
        the provider, lost them), so issued always equals passed + failed + abandoned + missed.
        """
        n = self.pool.load()
        for rec in self.pool.all():
            lost = rec.issued - (rec.passed + rec.failed + rec.abandoned + rec.missed)
            for _ in range(max(0, lost)):
                self.pool.record_verdict(rec.address, Verdict.MISSED, {
                    "challenge_id": "", "verdict": Verdict.MISSED.value,
                    "reason": "in flight when the queen restarted", "issued": rec.last_seen})
            self.challenger.schedule(rec.address)
        open_jobs = self.jobs.load()
        if open_jobs:
            log.info("open jobs loaded", jobs=open_jobs)
        self._update_gauges()
        return n

    # ------------------------------------------------------------------ admission
    def check_hello(self, hello: Hello) -> None:
        """Validate a provider's hello before spending a nonce on it.

        Raises:
            InvalidArgumentError: no devices, duplicate indices, unknown model, bad memory figures.
            ResourceExhaustedError: more devices than ``queen.max_devices``.
        """
        if not hello.devices:
            raise InvalidArgumentError("hello lists no devices")
        if len(hello.devices) > self.cfg.max_devices:
            raise ResourceExhaustedError(
                f"hello lists {len(hello.devices)} devices; this queen accepts at most {self.cfg.max_devices}"
            )
        indices = [d.index for d in hello.devices]
        if len(set(indices)) != len(indices):
            raise InvalidArgumentError("hello lists duplicate device indices")
        kinds = {d.kind for d in hello.devices}
        if DeviceKind.CPU in kinds and len(hello.devices) > 1:
            raise InvalidArgumentError("a CPU provider offers exactly one CPU device")
        for d in hello.devices:
            device_fingerprint(d)
            if d.memory_bytes <= 0:
                raise InvalidArgumentError(f"device {d.index}: memory_bytes must be > 0")
            if (d.kind is DeviceKind.CPU) != (d.model == "cpu"):
                raise InvalidArgumentError(
                    f"device {d.index}: kind {d.kind.value} does not fit model {d.model!r} "
                    "(a CPU device claims model 'cpu'; a GPU claims a GPU model)")
        models = {d.model for d in hello.devices}
        if len(models) > 1:
            raise InvalidArgumentError(
                f"one provider offers one GPU model (got {', '.join(sorted(models))}): run one agent per model")

    @staticmethod
    def check_ask(ask_per_gpu_hour: str) -> str:
        """A provider's ask from its hello, normalised (empty: ``"0"``, no floor).

        Raises:
            InvalidArgumentError: not a whole number of wei.
        """
        return str(parse_wei(ask_per_gpu_hour or "0", "hello ask_per_gpu_hour"))

    def admit(self, hello: Hello, nonce: bytes, signature: bytes, link: ProviderLink, *,
              ask_per_gpu_hour: str = "0") -> AdmittedOut:
        """Verify the signed nonce and the stake, then register the provider and attach its stream.

        The provider's public key is recovered from the signature and kept in its pool record, with its ask
        (wei per GPU-hour, from :meth:`check_ask`).

        Raises:
            SignatureError: bad, foreign or replayed signature (UNAUTHENTICATED).
            PermissionDeniedError: the stake oracle refuses the address (PERMISSION_DENIED).
        """
        try:
            addr = self.admission.verify(hello.address, nonce, signature)
            public_key = recover_admission_key(self.address, addr, nonce, signature)
        except BlendrError as exc:  # counted and logged here, answered by the servicer
            self._count_admission(type(exc).__name__)
            log.warning("admission refused", provider=hello.address, reason=str(exc))
            raise
        held = self.pool.quarantined(addr)
        if held is not None:
            self._count_admission("quarantined")
            log.warning("admission refused: quarantined", provider=addr, until=_iso(held.quarantined_until))
            raise PermissionDeniedError(
                f"provider {addr} is quarantined until {_iso(held.quarantined_until)} ({held.quarantine}); "
                "it may join again after that")
        old = self._links.pop(addr, None)
        if old is not None and old is not link:
            old.close("replaced by a newer connection from the same provider")
            # Reconnecting must not turn a challenge the provider could not answer into a miss.
            self._abandon(addr, "abandoned: connection replaced mid-challenge")
        _, resumed = self.pool.admit(hello, public_key=public_key, ask_per_gpu_hour=ask_per_gpu_hour,
                                     admission=(nonce, signature))
        self._links[addr] = link
        self._count_admission("admitted")
        self.challenger.schedule(addr, immediate=True)
        self.jobs.provider_admitted(addr)
        self._update_gauges()
        self._pool_changed()
        log.info("provider admitted", provider=addr, devices=len(hello.devices), resumed=resumed,
                 models=",".join(sorted({d.model for d in hello.devices})))
        if not hello.readiness.ready:
            log.warning("provider admitted but cannot run jobs; not offered until it can", provider=addr,
                        reason=hello.readiness.reason)
        return AdmittedOut(addr, self.cfg.heartbeat_interval_s, resumed, self.address)

    def _abandon(self, addr: Address, reason: str) -> None:
        """Decide the provider's open challenge as abandoned, unless its openings are being verified now."""
        p = self._open.get(addr)
        if p is None or p.challenge_id in self._verifying:
            return
        if self.challenger.pending(addr) is p:
            self.challenger.drop(addr)
        self._record(p, self.challenger.finish(p, Verdict.ABANDONED, reason))

    @contextlib.contextmanager
    def _verdict_guard(self, addr: Address) -> Iterator[None]:
        """Around the handling of a provider's challenge message: an unexpected error abandons its open
        challenge (with an error id in the logs and the reason) before it propagates."""
        try:
            yield
        except InvalidArgumentError:
            raise  # the handler decided the challenge (failed) itself
        except Exception as exc:
            self._abandon_for_error(addr, exc)
            raise

    def _abandon_for_error(self, addr: Address, exc: Exception) -> None:
        ref = secrets.token_hex(4)
        log.error("error handling a provider's challenge message", provider=addr, error_id=ref,
                  error_type=type(exc).__name__, exc_info=exc)
        self._abandon(addr, f"abandoned: the queen could not handle the provider's message (error {ref})")

    def _count_admission(self, result: str) -> None:
        if self.metrics:
            self.metrics.admissions.labels(result=result).inc()

    def detach(self, address: Address, link: ProviderLink) -> None:
        """A stream ended. Only the current stream of a provider detaches it."""
        if self._links.get(address) is not link:
            return
        del self._links[address]
        self.pool.disconnected(address)
        log.info("provider disconnected", provider=address)
        self._abandon(address, "abandoned: the provider disconnected mid-challenge")
        self._pool_changed()

    def is_connected(self, address: Address) -> bool:
        return address in self._links

    # ------------------------------------------------------------------ provider messages
    def heartbeat(self, address: Address, readiness: Readiness | None = None) -> None:
        """A sign of life, with the provider's readiness when it reported it (None: unchanged).

        A flip of readiness sends the king a fresh pool (a provider that cannot run jobs is not offered), at most
        once per ``readiness_snapshot_gap_s`` for the whole queen; a flip inside that gap, and a new reason
        alone, go with the king link's next regular snapshot.
        """
        tr = self.pool.heartbeat(address)
        if self.metrics:
            self.metrics.heartbeats.inc()
        if tr is not None:
            log.info("provider alive again", provider=address, was=tr.old.value)
            self._update_gauges()
        if readiness is not None and self.pool.set_readiness(address, readiness):
            if readiness.ready:
                log.info("provider ready for jobs again", provider=address)
            else:
                log.warning("provider cannot run jobs; not offered until it can", provider=address,
                            reason=readiness.reason)
            now = self.clock.monotonic()
            if now >= self._last_readiness_snapshot + self.readiness_snapshot_gap_s:
                self._last_readiness_snapshot = now
                self._pool_changed()

    def commitment(self, address: Address, challenge_id: str, commits: Sequence[DeviceCommitmentIn]) -> None:
        """Handle a commitment: ask for openings, or decide a failing verdict.

        Raises:
            InvalidArgumentError: malformed commitment (the challenge is failed too).
        """
        p = self.challenger.pending(address)
        with self._verdict_guard(address):
            try:
                res = self.challenger.on_commitment(address, challenge_id, commits)
            except InvalidArgumentError as exc:
                if p is not None:
                    self._record(p, self.challenger.finish(p, Verdict.FAILED, str(exc)))
                raise
        if res is None:
            log.info("stale commitment ignored", provider=address, challenge=challenge_id)
        elif isinstance(res, OpeningPlan):
            self._send(address, OpeningRequestOut(res))
        else:
            assert p is not None
            self._record(p, res)

    async def openings(self, address: Address, challenge_id: str, openings: Sequence[Opening]) -> None:
        """Verify openings off the event loop and record the verdict.

        Raises:
            InvalidArgumentError: openings for rows or devices that were not asked for, wrong lengths.
        """
        late = False
        p = self.challenger.pending(address)
        if p is not None and p.challenge_id == challenge_id:
            late = self.clock.monotonic() > p.deadline_mono
        p = self.challenger.take_openings(address, challenge_id)
        if p is None:
            log.info("stale openings ignored", provider=address, challenge=challenge_id)
            return
        t0 = time.process_time()
        self._verifying.add(p.challenge_id)
        try:
            outcome = await asyncio.to_thread(self.challenger.verify_openings, p, openings, late)
        except InvalidArgumentError as exc:
            self._verifying.discard(p.challenge_id)
            self._record(p, self.challenger.finish(p, Verdict.FAILED, f"malformed openings: {exc}"))
            raise
        except asyncio.CancelledError:  # the stream ended meanwhile
            self._verifying.discard(p.challenge_id)
            self._abandon(address, "abandoned: the provider's stream ended while its openings were checked")
            raise
        except Exception as exc:
            self._verifying.discard(p.challenge_id)
            self._abandon_for_error(address, exc)
            raise
        self._verifying.discard(p.challenge_id)
        if self.metrics:
            self.metrics.verify_seconds.observe(time.process_time() - t0)
        self._record(p, outcome)

    def challenge_error(self, address: Address, challenge_id: str, reason: str) -> None:
        """The provider says it cannot run the challenge: a failure."""
        pending = self.challenger.pending(address)
        with self._verdict_guard(address):
            outcome = self.challenger.fail(address, challenge_id, reason)
        if outcome is not None and pending is not None:
            self._record(pending, outcome)

    # ------------------------------------------------------------------ time
    def tick(self) -> None:
        """Liveness sweep, expired challenges, due challenges (persistence of heartbeats: :meth:`flush_due`)."""
        transitions = self.pool.sweep()
        for tr in transitions:
            log.info("provider liveness changed", provider=tr.address, old=tr.old.value, new=tr.new.value)
            if tr.new is ProviderState.DEAD:
                self.jobs.provider_dead(tr.address, f"no sign of life for {self.cfg.dead_after_s:g}s")
        try:
            self.jobs.expire()
        except BlendrError as exc:  # the store: challenges below must still be decided
            log.error("cannot expire jobs", error=str(exc))
        if transitions:
            self._pool_changed()
        for outcome in self.challenger.expired(self.is_connected):
            addr = Address(outcome.record["address"])
            self._record_outcome(addr, outcome)
        for addr, p in list(self._open.items()):
            # A safety net: a challenge that left the challenger's book without a verdict (a path that raised
            # between the two) is abandoned rather than left pending for ever.
            if self.challenger.pending(addr) is not p and p.challenge_id not in self._verifying:
                log.error("challenge lost without a verdict; abandoned", provider=addr, challenge=p.challenge_id)
                self._record(p, self.challenger.finish(p, Verdict.ABANDONED, "abandoned: lost by the queen"))
        lifted = self.pool.lift_ended_quarantines()
        for addr in lifted:
            log.info("quarantine over; the provider may join again", provider=addr)
        if lifted:
            self._pool_changed()
        for addr in self.challenger.due():
            try:
                self._issue(addr)
            except BlendrError as exc:
                # One provider's problem (its record, the store) must not stop challenges for the others.
                log.error("cannot challenge provider", provider=addr, error=str(exc))
                self.challenger.schedule(addr)
        self._update_gauges()

    def flush_due(self) -> dict[str, float] | None:
        """Every ``FLUSH_EVERY_S``: the pool's heartbeat times if they changed, for :meth:`Pool.write`."""
        now = self.clock.monotonic()
        if now - self._last_flush < FLUSH_EVERY_S:
            return None
        self._last_flush = now
        self.jobs.flush()
        return self.pool.take_dirty()

    def _issue(self, addr: Address) -> None:
        rec = self.pool.get(addr)
        if rec is None:
            return
        # Dead providers stay scheduled: every challenge they are away for counts against their uptime.
        self.challenger.schedule(addr)
        if self.challenger.pending(addr) is not None or addr in self._open:
            return  # one challenge in flight per provider
        try:
            p = self.challenger.issue(addr, rec.devices)
        except (InvalidArgumentError, ProofError) as exc:  # an unknown model, no size fits its devices
            log.error("cannot size a challenge", provider=addr, error=str(exc))
            return
        self._open[addr] = p
        self.pool.record_issued(addr, p.summary(Verdict.PENDING))
        if not self.is_connected(addr):
            # Due while the provider was away: that is a missed challenge.
            self.challenger.drop(addr)
            self._record(p, self.challenger.finish(p, Verdict.MISSED, "provider away when challenged"))
            return
        self._send(addr, ChallengeOut(p))
        log.debug("challenge issued", provider=addr, challenge=p.challenge_id, n=p.params.n, count=p.params.count,
                  timeout=round(p.timeout_s, 3))

    # ------------------------------------------------------------------ recording
    def _record(self, p: PendingChallenge, outcome: Outcome) -> None:
        self._record_outcome(p.address, outcome)

    def _record_outcome(self, addr: Address, outcome: Outcome) -> None:
        """Count a verdict once: the pool's figures, the challenge record, quarantine, then every listener.

        A verdict for a challenge that is not open (already decided) is ignored; a store write that fails is
        logged and the rest still happens.
        """
        rec = outcome.record
        cid = str(rec.get("challenge_id", ""))
        p = self._open.get(addr)
        if p is None or p.challenge_id != cid:
            log.error("second verdict for a challenge ignored", provider=addr, challenge=cid,
                      verdict=outcome.verdict.value)
            return
        del self._open[addr]
        fp_tflops = None
        models = rec.get("models") or {}
        if models:
            from blendr.proof import fingerprints

            with contextlib.suppress(ProofError):  # a model dropped from the table since: no fingerprint figure
                fp_tflops = sum(fingerprints.get(m).fp32_tflops for m in models.values()) / len(models)
        summary = {k: rec.get(k) for k in ("challenge_id", "verdict", "reason", "issued", "reported_tflops",
                                           "wall_tflops", "n", "count")}
        bounds = self.quarantine_bounds()
        self.pool.recent_window = bounds.window  # governance's window, from this verdict on
        self.pool.record_verdict(
            addr, outcome.verdict, summary,
            measured_tflops=outcome.wall_tflops if outcome.verdict is Verdict.PASSED else None,
            fingerprint_tflops=fp_tflops,
        )
        try:
            key = f"{addr}/{float(rec.get('issued') or 0.0):017.6f}/{cid}"
            self.store.put(NS_CHALLENGES, key, rec)
            self._prune(addr)
        except BlendrError as exc:
            log.error("cannot store a challenge record", provider=addr, challenge=cid, error=str(exc))
        for listener in self.outcome_listeners:
            try:
                listener(addr, outcome)
            except Exception as exc:
                # Listener boundary (e.g. the rental verifier's store write): the verdict stands and the other
                # listeners still hear of it; a bug is logged with its traceback.
                log.error("challenge listener failed", provider=addr, challenge=cid, error_type=type(exc).__name__,
                          exc_info=exc)
        if self.metrics:
            self.metrics.challenges.labels(verdict=outcome.verdict.value).inc()
        level = log.info if outcome.verdict is Verdict.PASSED else log.warning
        level("challenge decided", provider=addr, challenge=rec.get("challenge_id"), verdict=outcome.verdict.value,
              reason=outcome.reason, tflops=round(outcome.reported_tflops, 4))
        self._send(addr, ResultOut(cid, outcome.verdict, outcome.reason, outcome.reported_tflops,
                                   outcome.wall_tflops))
        if outcome.verdict in (Verdict.FAILED, Verdict.ABANDONED):
            self._maybe_quarantine(addr, bounds)

    def quarantine_bounds(self) -> QuarantineBounds:
        """The bounds quarantine judges by: governance's (WorkVerification.quarantine(), ``verification.quarantine_*``)
        once the queen's governance watch has read all three, else the config's ``queen.quarantine_*`` (a queen
        without a deployment, or before the first successful read)."""
        read = [self.gov.get(n) for n in QUARANTINE_PARAMS] if self.gov is not None else []
        followed = [v for v in read if isinstance(v, int)]
        if len(followed) == len(QUARANTINE_PARAMS):
            window, failures, seconds = followed
            return QuarantineBounds(window, failures, float(seconds))
        return QuarantineBounds(self.cfg.quarantine_window, self.cfg.quarantine_failures, self.cfg.quarantine_s)

    def _maybe_quarantine(self, addr: Address, bounds: QuarantineBounds) -> None:
        """Quarantine the provider when its recent failures reach ``bounds.failures``."""
        limit = bounds.failures
        rec = self.pool.get(addr)
        if limit <= 0 or rec is None or rec.recent_failures < limit:
            return
        reason = (f"{rec.recent_failures} of its last {len(rec.recent)} challenges failed or were abandoned "
                  f"(last: {str((rec.last_challenge or {}).get('reason') or '')[:200]})")
        until = self.clock.time() + bounds.seconds
        self.pool.quarantine(addr, until, reason)
        log.warning("provider quarantined", provider=addr, until=_iso(until), reason=reason)
        # The king hears at once (not at the readiness pace) that it must stop offering the provider: detach
        # sends the pool, or here when the provider is not connected.
        link = self._links.get(addr)
        if link is not None:
            link.refuse(f"quarantined until {_iso(until)}: {reason}")
            self.detach(addr, link)
        else:
            self._pool_changed()

    def _prune(self, addr: Address) -> None:
        keep = self.cfg.keep_challenges
        if keep <= 0:
            return
        old = self.store.scan(NS_CHALLENGES, f"{addr}/", reverse=True, limit=None)[keep:]
        if old:
            with self.store.batch() as b:
                for key, _ in old:
                    b.delete(NS_CHALLENGES, key)

    def _send(self, addr: Address, msg: Outbound) -> None:
        link = self._links.get(addr)
        if link is not None:
            link.send(msg)

    def _send_job(self, addr: Address, msg: JobOut) -> bool:
        link = self._links.get(addr)
        if link is None:
            return False
        link.send(msg)
        return True

    def _emit_job(self, ev: JobEvent) -> None:
        for listener in self.job_listeners:
            try:
                listener(ev)
            except BlendrError as exc:
                log.error("job listener failed", job=ev.job_id, kind=ev.kind, error=str(exc))

    def _pool_changed(self) -> None:
        for listener in self.pool_listeners:
            try:
                listener()
            except BlendrError as exc:
                log.error("pool listener failed", error=str(exc))

    # ------------------------------------------------------------------ jobs
    def assign(self, a: Assignment) -> None:
        """The king's assignment (see :meth:`JobBook.assign`)."""
        self.jobs.assign(a)

    def stop_job(self, job_id: str, attempt: int, reason: str) -> None:
        """The king's stop (see :meth:`JobBook.stop`)."""
        self.jobs.stop(job_id, attempt, reason)

    def job_update(self, address: Address, ev: JobEvent) -> None:
        """A provider's job update; it counts as a sign of life too."""
        self.heartbeat(address)
        self.jobs.update(address, ev)

    def _update_gauges(self) -> None:
        if self.metrics:
            for state, n in self.pool.counts_by_state().items():
                self.metrics.providers.labels(state=state.value).set(n)

    # ------------------------------------------------------------------ queries
    def providers(self, states: Sequence[ProviderState] = ()) -> list[ProviderRecord]:
        recs = self.pool.all()
        return [r for r in recs if not states or r.state in states]

    def challenge_records(self, address: str, limit: int | None = None) -> list[dict[str, Any]]:
        return [v for _, v in self.store.scan(NS_CHALLENGES, f"{to_address(address)}/", reverse=True,
                                              limit=limit)]

    def open_challenges(self) -> dict[Address, str]:
        """The challenges issued and not yet decided: provider -> challenge id."""
        return {a: p.challenge_id for a, p in self._open.items()}

    def shutdown(self) -> None:
        self.jobs.flush()
        self.pool.flush()


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
