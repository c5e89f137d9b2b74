"""Placing queued jobs as capacity appears, and noticing queens that went away.

Guarantees:

* A GPU is never promised twice (the scheduler's reservations), and a job is placed only on a provider its
  payload key is wrapped for.
* A rental creation interrupted by a failure or a restart is tried again with the same attempt.
* Jobs on a queen gone longer than the grace period move to other providers; the GPUs its providers hold for
  cancelled jobs not yet confirmed stopped are freed then (or after ``stop_hold_s``).
* The cost of a pass does not grow with the number of queued jobs: waiting reasons are refreshed only for
  jobs someone is watching (others get theirs when they are read); jobs whose wait is over are found in a
  heap.
"""

from __future__ import annotations

import asyncio

from blendr.aio import wait_event
from blendr.errors import BlendrError, FencedError
from blendr.telemetry import get_logger
from king.context import KingContext
from king.job import LIVE, EventKind, JobState
from king.lifecycle import Lifecycle
from king.scheduler import Placement

log = get_logger("blendr.king.placement")

REASONS_EVERY_S = 2.0
CANCELS_EVERY_S = 30.0
UNCLEAR_CANCELLED_EVERY_S = 60.0  # a cancelled job whose rental may still land is checked this often


class Placer:
    """The placement loop (use from the king's event loop)."""

    def __init__(self, ctx: KingContext, lifecycle: Lifecycle) -> None:
        self.ctx = ctx
        self.book = ctx.book
        self.lifecycle = lifecycle
        self._last_reasons = 0.0
        self._last_cancels = 0.0

    async def run(self) -> None:
        """Places queued jobs as capacity appears, forever (cancel to stop)."""
        while not self.ctx.stopped:
            await wait_event(self.ctx.wake, self.ctx.cfg.retry_s)
            self.ctx.wake.clear()
            if self.ctx.stopped:
                return
            try:
                await self.run_pass()
            except FencedError as exc:  # another king leads now: what this pass would have written was refused
                log.warning("placement pass refused: this king no longer leads", error=str(exc)[:300])
            except Exception as exc:  # loop boundary: a bug in one pass must not stop every future placement
                log.exception("placement pass failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")

    async def run_pass(self) -> None:
        ctx = self.ctx
        self.check_queens()
        self.lifecycle.expire_holds()
        self.lifecycle.expire_waits(self.waiting_reason)
        await self.retry_creates()
        for p in ctx.scheduler.schedule(max_placements=64):
            try:
                await self.place(p)
            except BlendrError as exc:  # e.g. the store could not commit: go on from what the store holds
                log.error("placing a job failed; it is retried", job=p.job_id, error=str(exc)[:300])
                self._recover(p.job_id)
        now = ctx.clock.monotonic()
        if now - self._last_reasons >= REASONS_EVERY_S:
            self._last_reasons = now
            self.refresh_watched_reasons()
        if now - self._last_cancels >= CANCELS_EVERY_S:
            self._last_cancels = now
            self.lifecycle.retry_cancels()

    async def place(self, p: Placement) -> None:
        ctx = self.ctx
        job = self.book.get(p.job_id)
        if job is None or job.state != JobState.QUEUED:
            self.lifecycle.release(p.job_id)
            return
        if p.provider not in job.candidates:
            # Defensive: the scheduler places only on the job's candidates (the payload key is wrapped for them).
            ctx.scheduler.exclude(p.job_id, p.provider)
            ctx.scheduler.requeue(p.job_id)
            ctx.wake.set()
            return
        if self.lifecycle.place(job, p.provider, p.queen, int(p.price_per_gpu_hour)) is not None:
            await self.lifecycle.create_rental(job)

    def _recover(self, job_id: str) -> None:
        """After a failed placement: a job the store still holds queued goes back to the queue (its GPUs
        freed); one whose attempt was stored gets its rental creation retried."""
        ctx = self.ctx
        job = self.book.get(job_id)
        if job is not None and job.state == JobState.QUEUED:
            self.lifecycle.release(job_id)
            if ctx.scheduler.placement(job_id) is None:
                self.lifecycle.enqueue(job)
        elif job is not None and job.live and job.current is not None and not job.current.rental_id:
            ctx.retry_create.setdefault(job_id, ctx.clock.monotonic() + ctx.cfg.retry_s * 5)

    async def retry_creates(self) -> None:
        """Rental creations that failed unclearly (or that a restart interrupted) are tried again."""
        ctx = self.ctx
        now = ctx.clock.monotonic()
        for job_id, due in list(ctx.retry_create.items()):
            if due > now or job_id in ctx.busy:
                continue
            job = self.book.get(job_id)
            c = job.current if job else None
            if job is None or c is None or c.rental_id or job.state not in (*LIVE, JobState.CANCELLED):
                ctx.retry_create.pop(job_id, None)
                continue
            if job.state == JobState.CANCELLED:
                from blendr.chain.contracts import RentalStatus

                try:
                    status = await asyncio.to_thread(
                        ctx.chain.status, job.intent(c.intent).rental_id(ctx.chain.chain_id, ctx.chain.rental_address))
                except BlendrError:
                    ctx.retry_create[job_id] = now + ctx.cfg.retry_s * 5
                    continue
                if status == RentalStatus.NONE:
                    self.lifecycle.release(job_id)
                    if ctx.clock.time() > job.intents[c.intent].deadline:  # it can never land now: nothing to cancel
                        ctx.retry_create.pop(job_id, None)
                    else:  # not landed yet; a transaction still pending could land until the intent's deadline
                        ctx.retry_create[job_id] = now + UNCLEAR_CANCELLED_EVERY_S
                    continue
            ctx.retry_create[job_id] = now + ctx.cfg.retry_s * 5
            await self.lifecycle.create_rental(job)

    def check_queens(self) -> None:
        """Jobs on a queen gone longer than the grace period are treated as lost (moved elsewhere)."""
        ctx = self.ctx
        now = ctx.clock.monotonic()
        for queen, since in list(ctx.queen_gone.items()):
            if now - since < ctx.cfg.queen_grace_s:
                continue
            del ctx.queen_gone[queen]
            ctx.market.remove_queen(queen)
            self.lifecycle.release_holds(queen)
            for job in self.book.unfinished():
                if job.live and job.queen == queen:
                    self.lifecycle.lost(job, f"queen {queen[:10]}… went away")

    def refresh_watched_reasons(self) -> None:
        """Queued jobs someone is watching get a ``queued`` event when their waiting reason changes; over jobs
        a ``settling`` event when what their settlement waits for changes (e.g. the bridge's attestations)."""
        for job_id in self.book.watched_ids():
            job = self.book.get(job_id)
            if job is not None and job.open_rentals() and job.state != JobState.QUEUED:
                self.lifecycle.refresh_settling(job)
            if job is None or job.state != JobState.QUEUED:
                continue
            reason = self.waiting_reason(job_id)
            if reason and reason != job.reason:
                job.reason = reason
                self.book.save(job, EventKind.QUEUED, reason)

    def waiting_reason(self, job_id: str) -> str:
        """Why a queued job waits now ('' when the scheduler does not know it), naming the job's candidates that
        are listed but not staked enough for GPURental to accept them."""
        try:
            why = self.ctx.scheduler.waiting_reason(job_id)
        except KeyError:
            return ""
        job = self.book.get(job_id)
        if job is None or job.state != JobState.QUEUED:
            return why
        under = self.ctx.market.understaked
        short = sorted(p for p in job.candidates if p in under and under[p][1] < job.spec.gpus)
        if short:
            names = ", ".join(f"{p[:10]}…" for p in short[:3]) + (f" and {len(short) - 3} more" if len(short) > 3 else "")
            why += f" ({names} {'are' if len(short) > 1 else 'is'} listed but not staked enough for GPURental to " \
                   f"accept a rental)"
        return why
