"""A job's rentals on Ethereum and its life on a provider: create, assign, follow, cancel, move, settle.

Guarantees:

* Money moves on chain only, once per rental: a rental is created from a renter-signed intent whose nonce the
  chain refuses twice (a retried or restarted create adopts the rental already there); an unclear failure
  keeps the attempt as it is (same intent, provider, queen, price) and tries again, so a possibly-landed
  intent never goes to another provider.
* A rental is cancelled when its job ends early, is cancelled, or loses its provider; the cancel is stored
  before it is sent and retried until the chain has it (``rental_cancels``), so a crash cannot forget it.
* A job that loses its provider moves to another with its next unused intent, never back to a provider it
  left; the last rental's end is never extended by moving a job whose rental is over.
* Events from a queen count only for the job's current attempt on that queen, in order, once.
* A job that failed on the provider's side (``provider_fault``) is moved like a lost one: its rental is
  cancelled (the queen voids its verification, so it pays nothing and slashes nothing) and it goes to another
  candidate. A job none of whose candidates is left ends failed at once rather than wait for nobody.
* No job waits without bound: a job queued longer than its wait (``Job.max_wait_s``, from when it entered the
  queue) ends failed with the scheduler's reason; it holds no rental then, so its escrow is never touched.
* A renter's cancel frees the provider's GPUs in the scheduler only when the provider has said the job is over
  (its ``stopped``, or any final event, for that attempt — even after the job has settled), when its queen is
  gone past the grace period, or after ``JobsConfig.stop_hold_s`` (logged): no job is placed on devices the
  provider still runs the cancelled job on (which it would refuse as not free, a provider fault).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from blendr.errors import (
    BlendrError,
    ContractRevertError,
    DeadlineExceededError,
    FailedPreconditionError,
    NotFoundError,
    UnavailableError,
)
from blendr.store import Store
from blendr.telemetry import get_logger
from blendr.units import fmt_duration, fmt_tokens
from king.context import Assignment, KingContext
from king.job import LIVE, Attempt, EventKind, Job, JobState, RentalRecord, shown
from king.rentals import Created
from king.settlements import NS_RENTALS, rid_key


def settled_text(r: RentalRecord) -> str:
    """A settled rental's money in one line: what the renter paid (the provider's payment and the fee, as
    the receipt shows them) and what came back."""
    return (f"you paid {fmt_tokens(r.provider_payment + r.fee)} GPUTOKEN for {r.verified_seconds} s verified "
            f"(provider {fmt_tokens(r.provider_payment)} + fee {fmt_tokens(r.fee)}), refunded "
            f"{fmt_tokens(r.refund)}")

log = get_logger("blendr.king.lifecycle")

# Reverts that are the chosen provider's or queen's fault: try another provider. Anything else is the renter's.
PROVIDER_SIDE = frozenset({"GPURentalInsufficientStake", "GPURentalInsufficientQueenStake",
                           "GPURentalQueenIsProvider", "GPURentalProviderNotCandidate", "GPURentalStakeReserved"})
RENTER_HINTS = {
    "ERC20InsufficientAllowance": "the escrow allowance is too low: sign a larger permit (or approve GPURental)",
    "ERC20InsufficientBalance": "insufficient GPUTOKEN balance for the escrow",
    "GPURentalIntentExpired": "the signed intent expired before a provider was found; submit the job again",
    "GPURentalNonceUsed": "the intent's nonce was already used by another rental",
    "GPURentalInvalidSignature": "the intent's signature is not the renter's",
    "GPURentalInvalidPrice": "the price is above the intent's max price",
    "GPURentalNotScheduler": "the job's intents are bound to another scheduler address than this king's; submit the "
                             "job again",
    "ERC1155InsufficientBalance": "too few vouchers left for the rental's GPU-hours (`blendr vouchers buy`)",
    "GPURentalUnknownVoucherClass": "the job's voucher class does not exist",
    "GPURentalVouchersNotSet": "GPURental takes no vouchers (no ComputeVoucher is set)",
}
# Reverts after which the intent can never create a rental again.
INTENT_SPENT = frozenset({"GPURentalNonceUsed", "GPURentalIntentExpired"})
CANCEL_ATTEMPTS = 6
# A queen's final events for an attempt: after one of them the provider no longer runs it.
FINAL = frozenset({"succeeded", "failed", "stopped", "lost"})
CHAIN_WAITING = "Ethereum is not answering; the rental will be created when it is"


@dataclass(frozen=True)
class QueenEvent:
    """A job event relayed by a queen (``kind``: accepted, running, log, progress, succeeded, failed, stopped,
    lost)."""

    job_id: str
    attempt: int
    seq: int
    kind: str
    message: str = ""
    progress: float = -1.0
    ts: float = 0.0
    exit_code: int = 0
    provider_fault: bool = False  # on "failed": the provider could not run the job (not the job's own failure)


@dataclass(frozen=True)
class StopHold:
    """A cancelled job's placement kept in the scheduler until its provider says the attempt is over."""

    queen: str
    attempt: int
    provider: str
    since: float  # monotonic


class Lifecycle:
    """Rentals and provider-side life of jobs (use from the king's event loop)."""

    def __init__(self, ctx: KingContext, store: Store) -> None:
        self.ctx = ctx
        self.book = ctx.book
        self.store = store  # the settlement follower's records (king.settlements)
        self._cancelling: set[str] = set()  # rental keys with a cancel in flight
        self.holds: dict[str, StopHold] = {}  # cancelled jobs whose providers have not said they stopped

    # ------------------------------------------------------------------ the scheduler's GPUs
    def release(self, job_id: str) -> None:
        """Frees the job's GPUs in the scheduler (and its stop hold, if any); idempotent."""
        if self.holds.pop(job_id, None) is not None:
            self.ctx.wake.set()  # GPUs came free: place what waits for them now
        self.ctx.scheduler.release(job_id)

    def release_holds(self, queen: str) -> None:
        """The queen is gone (past its grace period): its providers' stops will not be confirmed through it."""
        for job_id, hold in list(self.holds.items()):
            if hold.queen == queen:
                log.info("queen gone: freeing the provider of a cancelled job without its stop", job=job_id,
                         provider=hold.provider)
                self.release(job_id)

    def expire_holds(self) -> int:
        """Stop holds older than ``stop_hold_s`` are freed (logged); returns how many."""
        limit = self.ctx.clock.monotonic() - self.ctx.cfg.stop_hold_s
        late = [job_id for job_id, hold in self.holds.items() if hold.since <= limit]
        for job_id in late:
            log.warning("no stop from the provider of a cancelled job in time; its GPUs are free again", job=job_id,
                        provider=self.holds[job_id].provider, waited_s=self.ctx.cfg.stop_hold_s)
            self.release(job_id)
        return len(late)

    # ------------------------------------------------------------------ creation
    async def create_rental(self, job: Job) -> None:
        """Creates the current attempt's rental on chain, records it, and hands the job to the queen."""
        ctx = self.ctx
        c = job.current
        if c is None:
            return
        attempt, idx = c.attempt, c.intent
        permit = job.permit if job.permit is not None and not job.permit_used and not job.voucher_id else None
        ctx.busy.add(job.job_id)
        intent, signature, chain = job.intent(idx), job.intents[idx].signature, ctx.chain
        proof = job.candidate_proof(c.provider)

        def create() -> tuple[Created, float]:
            created = chain.create(intent, signature, c.price, c.queen, c.provider, permit, proof,
                                   voucher_id=job.voucher_id)
            # Block time may run behind or ahead of this clock: the provider stops the job on its wall clock, so
            # the rental's end is carried over in wall-clock time.
            try:
                skew = ctx.clock.time() - chain.now()
            except BlendrError:
                skew = 0.0
            return created, skew

        try:
            created, skew = await asyncio.to_thread(create)
        except ContractRevertError as exc:
            self._create_reverted(self.book.get(job.job_id) or job, attempt, exc)
            return
        except (UnavailableError, DeadlineExceededError) as exc:  # RPC down, no receipt: did it land? try again
            job = self.book.get(job.job_id) or job
            log.warning("rental creation failed; retrying the same attempt", job=job.job_id, error=str(exc)[:200])
            if self._same_attempt(job, attempt) and job.state in (*LIVE, JobState.CANCELLED):
                ctx.retry_create[job.job_id] = ctx.clock.monotonic() + ctx.cfg.retry_s * 5
                if job.state != JobState.CANCELLED and job.reason != CHAIN_WAITING:
                    job.reason = CHAIN_WAITING
                    self.book.save(job, EventKind.SCHEDULED, job.reason)
            return
        except BlendrError as exc:  # refused before anything was sent (a call that cannot be built): never lands
            job = self.book.get(job.job_id) or job
            log.warning("rental creation refused", job=job.job_id, error=str(exc)[:200])
            self.release(job.job_id)
            if job.state != JobState.CANCELLED and self._same_attempt(job, attempt):
                self.fail(job, "the rental could not be created: Ethereum refused the call (the king logged why)")
            return
        finally:
            ctx.busy.discard(job.job_id)
        ctx.retry_create.pop(job.job_id, None)
        job = self.book.get(job.job_id) or job  # the store's version if a failed commit dropped ours meanwhile
        key = rid_key(created.rental_id)
        job.intents[idx].used = True
        job.permit_used = job.permit_used or permit is not None
        if job.rental(key) is None:
            if (stakes := ctx.market.stakes) is not None:  # its slash share is reserved now: offer the rest only
                stakes.reserve(c.provider, intent.gpus)
            # a rental paid with vouchers is at the class price, which intake made the spec's max price
            price = job.spec.max_price_per_gpu_hour if job.voucher_id else c.price
            job.rentals.append(RentalRecord(key, c.provider, c.queen, price, created.escrow, created.tx,
                                            created.start, created.start + skew, created.duration))
        ctx.pending_rentals[key] = job.job_id
        if job.state not in LIVE or not self._same_attempt(job, attempt):
            # cancelled, moved or ended while the rental was being created: record it and cancel it
            self.book.cancel_later(key, job.job_id)
            self.book.save(job, EventKind.RENTAL_CREATED, f"rental {key[:12]}… created; cancelling it")
            ctx.spawn(self.cancel_rental(job.job_id, key))
            return
        cur = job.current  # the job's own attempt object (the job may have been read back from the store)
        assert cur is not None  # _same_attempt held
        cur.rental_id, cur.deadline = key, float(created.start + created.duration + skew)
        self.book.save(job, EventKind.RENTAL_CREATED, f"rental {key[:12]}… locks {fmt_tokens(created.escrow)} "
                                                      f"GPUTOKEN in escrow (tx {created.tx or 'adopted'})")
        if not ctx.queens.assign(cur.queen, self.assignment(job)):
            # the queen may be restarting: it gets the assignment when it is back, or after the grace period the
            # job moves to another provider
            ctx.queen_gone.setdefault(cur.queen, ctx.clock.monotonic())

    def _create_reverted(self, job: Job, attempt: int, exc: ContractRevertError) -> None:
        c = job.current
        if job.state == JobState.CANCELLED or c is None or not self._same_attempt(job, attempt):
            self.release(job.job_id)
            return
        if exc.error in PROVIDER_SIDE:
            stakes = self.ctx.market.stakes
            if stakes is not None and exc.error != "GPURentalQueenIsProvider":
                stakes.forget(c.provider, c.queen)  # a stake changed since it was read: read it again
                self.ctx.market.restake()
            self.move(job, f"provider {c.provider[:10]}… cannot take the rental ({exc.error}); trying another")
            return
        job.intents[c.intent].used = exc.error in INTENT_SPENT
        self.release(job.job_id)
        self.fail(job, RENTER_HINTS.get(exc.error, "the rental could not be created: " + (exc.error or "reverted")))

    def creating(self, job_id: str) -> bool:
        """Whether the job's rental creation is in flight or waits to be retried (it may have landed)."""
        return job_id in self.ctx.busy or job_id in self.ctx.retry_create

    @staticmethod
    def _same_attempt(job: Job, attempt: int) -> bool:
        return job.current is not None and job.current.attempt == attempt

    def assignment(self, job: Job) -> Assignment:
        c = job.current
        if c is None or not c.rental_id:
            raise FailedPreconditionError(f"job {job.job_id} has no rental to assign")
        pl = self.book.payload(job.job_id)
        return Assignment(job_id=job.job_id, attempt=c.attempt, provider=c.provider, gpus=job.spec.gpus,
                          rental_id=bytes.fromhex(c.rental_id), deadline_unix=c.deadline,
                          ciphertext=pl.ciphertext if pl else b"", sealed_key=pl.keys.get(c.provider, b"") if pl else b"",
                          aad=pl.aad if pl else "", max_output_bytes=self.ctx.cfg.max_output_bytes)

    # ------------------------------------------------------------------ cancels on chain
    async def cancel_rental(self, job_id: str, key: str) -> None:
        """Cancels a rental on chain; the intent is stored first, so a failure or a restart retries it."""
        if key in self._cancelling:
            return
        self._cancelling.add(key)
        self.book.cancel_later(key, job_id)
        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(CANCEL_ATTEMPTS),
                                               wait=wait_exponential_jitter(multiplier=self.ctx.cfg.retry_s, max=30.0),
                                               retry=retry_if_exception_type(BlendrError), reraise=False):
                with attempt:
                    tx = await asyncio.to_thread(self.ctx.chain.cancel, int(key, 16))
            if tx:
                log.info("rental cancelled on chain", job=job_id, rental=key[:12], tx=tx)
            self.book.cancel_done(key)
        except RetryError as exc:
            log.error("could not cancel the rental yet; retrying later", rental=key[:12],
                      error=str(exc.last_attempt.exception())[:200])
        finally:
            self._cancelling.discard(key)

    def retry_cancels(self) -> None:
        """Cancels that failed or that a restart interrupted are tried again (each is idempotent on chain)."""
        for key, job_id in self.book.cancels():
            if key not in self._cancelling:
                self.ctx.spawn(self.cancel_rental(job_id, key))

    def _cancel_current(self, job: Job) -> None:
        """Stores, then sends in the background, the cancel of the current attempt's rental."""
        c = job.current
        if c is not None and c.rental_id:
            self.book.cancel_later(c.rental_id, job.job_id)
            self.ctx.spawn(self.cancel_rental(job.job_id, c.rental_id))

    # ------------------------------------------------------------------ queen events
    def on_queen_event(self, queen: str, ev: QueenEvent) -> None:
        """A job event relayed by a queen (stale attempts and repeated seqs are ignored)."""
        hold = self.holds.get(ev.job_id)
        if hold is not None and ev.kind in FINAL and (hold.queen, hold.attempt) == (queen, ev.attempt):
            self.release(ev.job_id)  # the provider no longer runs the cancelled job (it may have settled already)
        job = self.book.get(ev.job_id)
        if job is None:
            return
        c = job.current
        if c is None or c.attempt != ev.attempt or queen != c.queen:
            return
        if not c.rental_id or job.state not in (*LIVE, JobState.CANCELLED):
            return  # not assigned yet (the queen cannot know this attempt), or already over
        if ev.seq <= c.queen_seq:  # repeated, stale, or unnumbered (a queen numbers every event from 1)
            return
        c.queen_seq = ev.seq
        cfg = self.ctx.cfg
        if ev.kind == "running" and job.state == JobState.SCHEDULED:
            job.move_to(JobState.RUNNING)
            job.started = job.started or self.ctx.clock.time()
            job.reason = f"running on provider {c.provider}"
            self.book.save(job, EventKind.RUNNING, job.reason)
        elif ev.kind == "log" and job.logs < cfg.max_log_events:
            job.logs += 1
            self.book.save(job, EventKind.LOG, ev.message)
        elif ev.kind == "log" and job.logs == cfg.max_log_events:
            job.logs += 1
            self.book.save(job, EventKind.LOG, f"[blendr] more than {cfg.max_log_events} log lines and progress "
                                               "reports: the rest are dropped")
        elif ev.kind == "progress" and job.logs < cfg.max_log_events:
            job.logs += 1  # log lines and progress reports share one cap of stored events
            job.progress = ev.progress
            self.book.save(job, EventKind.PROGRESS, ev.message[:200], progress=ev.progress)
        elif ev.kind == "progress":
            job.progress = ev.progress  # over the cap: kept with the job's next write, no event
        elif ev.kind == "failed" and ev.provider_fault and job.live and job.state != JobState.RUNNING:
            # (once running, a failure is the job's: its rental settles for the verified time)
            self.lost(job, f"provider {c.provider} could not run the job ({ev.message[:300] or 'no reason given'}); "
                           "its rental is cancelled and pays nothing")
        elif ev.kind in ("succeeded", "failed", "stopped"):
            self.stopped(job, ev.kind, ev.message, ev.exit_code)
        elif ev.kind == "lost" and job.live:
            self.lost(job, ev.message or "the provider went away")
        else:
            self.book.save(job)  # accepted, a repeated running, a log over the limit: the queen's seq only

    def stopped(self, job: Job, kind: str, message: str = "", exit_code: int = 0) -> None:
        """The job stopped on its provider: it ends (a cancelled job stays cancelled); an early end cancels
        the rental so the renter pays only for the verified time."""
        self.release(job.job_id)
        c = job.current
        job.exit_code = exit_code
        job.ended = self.ctx.clock.time()
        if job.state != JobState.CANCELLED:
            job.move_to(JobState.ENDED)
            job.outcome = kind
        msg = {"succeeded": "the job finished", "failed": f"the job failed: {message}".strip(),
               "stopped": f"the job was stopped: {message}".strip()}[kind]
        if job.state != JobState.CANCELLED:
            job.reason = msg
        early = bool(c and c.rental_id and self.ctx.clock.time() < c.deadline)
        if early and c is not None:
            self.book.cancel_later(c.rental_id, job.job_id)
        self.book.save(job, EventKind.ENDED, msg)
        if early:
            self._cancel_current(job)
        self.ctx.wake.set()

    def lost(self, job: Job, why: str) -> None:
        """The provider (or its queen) is gone: cancel its rental, move the job to another provider."""
        c = job.current
        if c is not None and not c.rental_id and self.creating(job.job_id):
            # the rental's creation is unclear (it may have landed): it is settled first — adopted and then
            # cancelled when its queen is still away, or found absent — never left behind by moving the job
            log.info("provider lost while its rental's creation is unclear; resolving that first", job=job.job_id)
            return
        if c is not None and c.rental_id and self.ctx.clock.time() >= c.deadline:
            # the rental is over anyway: the job ends; moving it would rent (and charge) a second time
            self.stopped(job, "stopped", f"rental ended ({why})")
            return
        self._cancel_current(job)
        if job.state == JobState.CANCELLED:
            self.release(job.job_id)
            self.book.save(job)
            return
        self.move(job, f"{why}; moving the job to another provider")

    def move(self, job: Job, why: str) -> None:
        """Back to the queue, never again on the provider it leaves; fails when no intent or no candidate is
        left."""
        if job.current is not None:
            job.excluded = sorted({*job.excluded, job.current.provider})
        self.release(job.job_id)
        job.current = None
        if job.next_intent() is None:
            self.fail(job, f"{why}, but no signed intent is left to rent another provider")
            return
        if job.candidates and set(job.candidates) <= set(job.excluded):
            self.fail(job, f"{why}, but every provider the job's payload is encrypted for has already failed it; "
                           "submit the job again to reach other providers")
            return
        job.move_to(JobState.QUEUED)
        job.reason = why
        job.queued_since = self.ctx.clock.time()
        self.book.save(job, EventKind.RESCHEDULED, why)
        self.enqueue(job)
        self.ctx.wake.set()

    def fail(self, job: Job, why: str) -> None:
        job.move_to(JobState.FAILED)
        job.reason, job.outcome = why, "failed"
        job.ended = job.ended or self.ctx.clock.time()
        self.book.save(job, EventKind.FAILED, why)
        self.maybe_settled(job)

    def enqueue(self, job: Job) -> None:
        """Queues the job in the scheduler, only on its candidates, never on a provider it was moved off, until
        its wait is over (``expire_waits``)."""
        self.ctx.scheduler.submit(job.job_id, job.renter, job.spec, frozenset(job.candidates))
        for p in job.excluded:
            self.ctx.scheduler.exclude(job.job_id, p)
        if not job.queued_since:  # a job stored by an older king
            job.queued_since = job.submitted
        if not job.max_wait_s:
            job.max_wait_s = self.ctx.cfg.default_max_wait_s
        heapq.heappush(self.ctx.waits, (job.gives_up_at(), job.job_id))

    def expire_waits(self, explain: Callable[[str], str]) -> int:
        """Queued jobs whose wait is over end failed with why they could not be placed (``explain``: the
        scheduler's reason); returns how many. Costs O(log n) per job that gave up, nothing for the others."""
        now, waits, n = self.ctx.clock.time(), self.ctx.waits, 0
        while waits and waits[0][0] <= now:
            _due, job_id = heapq.heappop(waits)
            job = self.book.get(job_id)
            if job is None or job.state != JobState.QUEUED or job.current is not None or job.gives_up_at() > now:
                continue  # placed, cancelled, or queued again since (its later entry stands for it)
            if self.creating(job_id):
                heapq.heappush(waits, (now + self.ctx.cfg.retry_s, job_id))
                continue
            reason = explain(job_id) or job.reason or "no provider could take it"
            self.ctx.scheduler.cancel(job_id)
            self.fail(job, f"not placed within {fmt_duration(job.max_wait_s)} (--max-wait): {reason}")
            n += 1
        return n

    # ------------------------------------------------------------------ the renter's cancel
    def cancel(self, renter: str, job_id: str, reason: str = "") -> Job:
        """Cancels the renter's job: a queued one at once; a live one is stopped and its rental cancelled
        (stored first, sent in the background). A job handed to its provider keeps the provider's GPUs in the
        scheduler until the provider says it stopped (see the module's guarantees)."""
        job = self.book.get(job_id)
        if job is None or job.renter != renter:
            raise NotFoundError(f"no job {shown(job_id)} of yours")
        why = reason or "cancelled by the renter"
        if job.state == JobState.CANCELLED:
            return job
        if job.state != JobState.QUEUED and not job.live:
            raise FailedPreconditionError(f"job {job_id} has already {job.state}")
        c = job.current
        job.move_to(JobState.CANCELLED)
        job.reason, job.outcome, job.ended = why, "cancelled", self.ctx.clock.time()
        if c is None:
            self.ctx.scheduler.cancel(job.job_id)
            self.book.save(job, EventKind.CANCELLED, why)
            self.maybe_settled(job)
            return job
        if c.rental_id:
            self.book.cancel_later(c.rental_id, job.job_id)
        self.book.save(job, EventKind.CANCELLED, why)
        self.ctx.queens.stop(c.queen, job.job_id, c.attempt, why)  # re-sent when the queen reconnects
        if c.rental_id:  # handed to the queen: the provider may be running it until it says otherwise
            self.holds[job.job_id] = StopHold(c.queen, c.attempt, c.provider, self.ctx.clock.monotonic())
        else:  # its rental is still being created: no provider has it (a rental that lands is cancelled unassigned)
            self.release(job.job_id)
        if c.rental_id:
            self.ctx.spawn(self.cancel_rental(job.job_id, c.rental_id))
        return job

    # ------------------------------------------------------------------ settlement
    def poll_settlements(self) -> None:
        """Applies the rentals the settlement follower has seen settle (or expire) to their jobs."""
        for key, job_id in list(self.ctx.pending_rentals.items()):
            r = self.store.get(NS_RENTALS, key)
            if r is None or r.get("state") not in ("settled", "expired"):
                continue
            del self.ctx.pending_rentals[key]
            job = self.book.get(job_id)
            rs = job.rental(key) if job is not None else None
            if job is None or rs is None:
                continue
            rs.state = r["state"]
            rs.verified_seconds = int(r.get("verified_seconds", 0))
            rs.failed = bool(r.get("failed", False))
            rs.provider_payment, rs.fee = int(r.get("provider_payment") or 0), int(r.get("fee") or 0)
            rs.refund, rs.slashed = int(r.get("refund") or 0), int(r.get("slashed") or 0)
            rs.settled_tx = r.get("settled_tx", "")
            if rs.state == "settled":
                self.book.save(job, EventKind.VERIFIED, f"rental {key[:12]}…: {rs.verified_seconds} s verified"
                                                        f"{' — verification FAILED, provider slashed' if rs.failed else ''}")
            self.book.save(job, EventKind.SETTLED, f"rental {key[:12]}… {rs.state}: {settled_text(rs)} (tx "
                                                   f"{rs.settled_tx or 'none'})")
            self.maybe_settled(job)

    def maybe_settled(self, job: Job) -> None:
        """A job over whose rentals are all settled becomes ``settled``; its payload is dropped."""
        if job.state not in (JobState.ENDED, JobState.FAILED, JobState.CANCELLED) or job.open_rentals():
            return
        if job.rentals:
            job.move_to(JobState.SETTLED)
            charged = sum(r.provider_payment + r.fee for r in job.rentals)
            refunded = sum(r.refund for r in job.rentals)
            outcome = job.reason if job.outcome in ("failed", "cancelled") else ""
            # a voucher rental's refund comes back as vouchers for its whole GPU-hours (ComputeVoucher)
            back = (f" (as class {job.voucher_id} vouchers for whole GPU-hours, the rest as GPUTOKEN less the "
                    "redemption fee)" if job.voucher_id and refunded else "")
            job.reason = (f"{outcome}; " if outcome else "") + (
                f"settled: you paid {fmt_tokens(charged)} GPUTOKEN, {fmt_tokens(refunded)} refunded{back}")
            self.book.save(job, EventKind.SETTLED, "every rental of the job is settled: you paid "
                                                   f"{fmt_tokens(charged)} GPUTOKEN, {fmt_tokens(refunded)} refunded")
        else:
            self.book.save(job)
        self.book.drop_payload(job.job_id)  # the job is over: its encrypted payload is not needed

    def settling_reason(self, job: Job) -> str:
        """What an over job whose rentals are not all settled waits for ('' for any other job)."""
        if job.state not in (JobState.ENDED, JobState.FAILED, JobState.CANCELLED):
            return ""
        waits = []
        for r in job.open_rentals():
            bridge = self.ctx.bridge.rental_wait(int(r.rental_id, 16)) if self.ctx.bridge is not None else ""
            waits.append(f"rental {r.rental_id[:12]}…: " + (bridge or "waiting for its verification result (the "
                         "queen finalizes it on Ethereum Classic after the rental's end; it then crosses the "
                         "bridge to settle on Ethereum)"))
        return "; ".join(waits)

    def refresh_settling(self, job: Job) -> None:
        """Records a ``settling`` event when what the over job's settlement waits for has changed."""
        why = self.settling_reason(job)
        if not why or why == job.settling:
            return
        job.settling = why
        self.book.save(job, EventKind.SETTLING, why)

    # ------------------------------------------------------------------ placement
    def place(self, job: Job, provider: str, queen: str, price: int) -> Attempt | None:
        """Makes ``provider`` the job's new attempt with the next unused intent (None: no intent left, the job
        failed)."""
        idx = job.next_intent()
        if idx is None:
            self.release(job.job_id)
            self.fail(job, "no signed intent left to rent another provider; submit the job again")
            return None
        job.attempt += 1
        job.move_to(JobState.SCHEDULED)
        job.current = Attempt(job.attempt, provider, queen, price, idx)
        job.reason = f"placed on provider {provider} (queen {queen}) at {fmt_tokens(price)}/GPU-hour"
        self.book.save(job, EventKind.SCHEDULED, job.reason)
        return job.current
