"""``KingCore``: the king's jobs without a transport. The gRPC servicers (king.gateway, king.queens) only
convert messages and call it; tests and benches drive it directly with fakes (tests/fakes).

It composes the job modules: :mod:`king.intake` (quotes, submissions), :mod:`king.placement` (the placement
loop), :mod:`king.lifecycle` (rentals, queen events, cancels, settlement) over :mod:`king.jobbook` (storage,
events, watchers) and :mod:`king.market` (the queens' pools). Ports: :class:`king.rentals.RentalChain`
(Ethereum) and :class:`king.context.QueenPort` (the queens' sessions). Use from one event loop; chain calls
run in worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from blendr.clock import Clock
from blendr.errors import BlendrError, NotFoundError, UnavailableError
from blendr.hashing import checksum_address
from blendr.jobspec import Spec
from blendr.store import Store
from blendr.telemetry import get_logger
from blendr.units import fmt_tokens
from king.context import BridgeView, JobsConfig, KingContext, QueenPort
from king.intake import Intake
from king.job import LIVE, Job, JobEvent, JobId, JobState, Submission, check_job_id, shown
from king.jobbook import JobBook
from king.lifecycle import Lifecycle, QueenEvent, StopHold
from king.market import Market, Quote
from king.outputs import OutputDesk, OutputStore
from king.placement import Placer
from king.rentals import RentalChain, RentalParams
from king.rewards import RewardHolding, reward_holdings
from king.scheduler import ModelOffer, Placement, ProviderOffer, Scheduler
from king.stakes import StakeBook
from king.vouchers import BurnTotals, VoucherHolding, VoucherView

log = get_logger("blendr.king.core")
NS_POOLS = "queen_pools"  # each queen's latest pool snapshot, for the next king that starts or leads
POOL_KEEP_S = 10.0  # an unchanged pool is written again this often (its age says whether it is still worth loading)
LIST_SCAN = 2_000  # a renter's most recent jobs ListJobs looks through
OUTPUTS_TICK_S = 2.0  # how often outputs past due fail and expired ones are removed


@dataclass(frozen=True)
class Wallet:
    address: str
    balance: int
    allowance: int
    in_escrow: int
    permit_nonce: int
    # GPU-hours as tokens and the usage burn (king.vouchers); empty / None where the king has no ComputeVoucher
    vouchers: tuple[VoucherHolding, ...] = ()
    burns: BurnTotals | None = None
    rewards: tuple[RewardHolding, ...] = ()  # the epoch rewards published for it, newest first (king.rewards)


class KingCore:
    """Every job of this king, behind a transport-free API."""

    def __init__(self, store: Store, clock: Clock, scheduler: Scheduler, chain: RentalChain, queens: QueenPort,
                 cfg: JobsConfig | None = None, *, reputation: Callable[[str], int] | None = None,
                 outputs: OutputStore | None = None, output_wait_s: float = 600.0,
                 stakes: StakeBook | None = None, bridge: BridgeView | None = None,
                 vouchers: VoucherView | None = None) -> None:
        cfg = cfg or JobsConfig()
        self.store = store
        self.clock = clock
        self.scheduler = scheduler
        self.chain = chain
        self.vouchers = vouchers  # read for wallets (king.vouchers); None: no ComputeVoucher deployed
        self.book = JobBook(store, clock)
        self.market = Market(scheduler, reputation, cfg.candidates, stakes)  # stakes: what GPURental accepts
        self.ctx = KingContext(self.book, clock, scheduler, self.market, chain, queens, cfg, bridge=bridge)
        self.intake = Intake(self.ctx)
        self.lifecycle = Lifecycle(self.ctx, store)
        self.placer = Placer(self.ctx, self.lifecycle)
        # jobs' outputs (king.outputs); None: this king takes none (uploads are FAILED_PRECONDITION)
        self.outputs = OutputDesk(self.ctx, outputs, wait_s=output_wait_s) if outputs is not None else None
        self._kept: dict[str, tuple[float, list[Any]]] = {}  # queen -> (monotonic time, pool) last kept in the store

    @property
    def cfg(self) -> JobsConfig:
        return self.ctx.cfg

    @cfg.setter
    def cfg(self, cfg: JobsConfig) -> None:
        self.ctx.cfg = cfg

    # ------------------------------------------------------------------ start
    async def prepare(self) -> None:
        """Reads GPURental's governance parameters (GPUs, durations, quote bounds); call before serving, and
        again to pick up a change.

        Raises:
            BlendrError: Ethereum could not be read (the last known parameters stay).
        """
        p = await asyncio.to_thread(self.chain.params)
        if self.ctx.params != p:
            self.ctx.params = p
            self.on_params(p)

    def on_params(self, p: RentalParams) -> None:
        """New governance parameters: quotes follow the price bounds at once."""
        pricer = self.scheduler.pricer
        if p.max_quote and (pricer.params.min_per_gpu_hour, pricer.params.max_per_gpu_hour) != (p.min_quote,
                                                                                                 p.max_quote):
            pricer.params = replace(pricer.params, min_per_gpu_hour=p.min_quote, max_per_gpu_hour=p.max_quote)
            self.scheduler.reprice()
            log.info("quote bounds from governance", min=fmt_tokens(p.min_quote), max=fmt_tokens(p.max_quote))

    def load(self) -> int:
        """Rebuilds the scheduler and pending work from the store after a (re)start; returns live jobs."""
        ctx = self.ctx
        live = 0
        for job in self.book.load():
            for r in job.open_rentals():
                ctx.pending_rentals[r.rental_id] = job.job_id
            c = job.current
            if job.state == JobState.QUEUED:
                self.lifecycle.enqueue(job)
                live += 1
            elif job.live and c is not None:
                self.scheduler.restore(Placement(job.job_id, job.renter, c.queen, c.provider, job.spec.gpus, c.price),
                                       job.spec, frozenset(job.candidates))
                if not c.rental_id:
                    # the king stopped while creating the rental: create it again (a rental that landed is adopted
                    # by its nonce, never created twice)
                    ctx.retry_create[job.job_id] = 0.0
                # a queen that never comes back: its jobs move after the grace period
                ctx.queen_gone.setdefault(c.queen, self.clock.monotonic())
                live += 1
            elif job.state == JobState.CANCELLED and c is not None and not c.rental_id:
                ctx.retry_create[job.job_id] = 0.0  # did its rental land before the cancel? find out
            elif job.state == JobState.CANCELLED and c is not None:
                # its provider may still be running it: its GPUs stay promised until the provider's final event
                # (the stop is sent again when its queen connects; a queen answers the stop of an attempt that is
                # over with that attempt's final event), its queen is gone, or the stop hold's time is up
                self.scheduler.restore(Placement(job.job_id, job.renter, c.queen, c.provider, job.spec.gpus, c.price),
                                       job.spec, frozenset(job.candidates))
                self.lifecycle.holds[job.job_id] = StopHold(c.queen, c.attempt, c.provider, self.clock.monotonic())
                ctx.queen_gone.setdefault(c.queen, self.clock.monotonic())  # freed after the grace if it never comes
        if self.outputs is not None:
            self.outputs.load(list(self.book.unfinished()))
        self._load_pools()
        ctx.wake.set()
        return live

    async def run(self) -> None:
        """The placement loop (and the outputs' timer), forever (cancel to stop)."""
        if self.outputs is None:
            await self.placer.run()
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.placer.run())
            tg.create_task(self._outputs_loop())

    def stop(self) -> None:
        """This king stops leading (king.ha): its loops end at their next turn (the caller cancels them too)."""
        self.ctx.stopped = True
        self.ctx.wake.set()

    async def _outputs_loop(self) -> None:
        assert self.outputs is not None
        while not self.ctx.stopped:
            try:
                self.outputs.tick()
            except BlendrError as exc:  # the store failed this once; the next tick tries again
                log.warning("outputs tick failed", error=str(exc)[:200])
            await asyncio.sleep(OUTPUTS_TICK_S)

    async def drain(self) -> None:
        """Waits for background chain work in flight (cancels)."""
        await self.ctx.drain()

    # ------------------------------------------------------------------ queens
    def on_snapshot(self, queen: str, seq: int, providers: list[tuple[ProviderOffer, bytes, int]]) -> None:
        self.market.on_snapshot(queen, seq, providers)
        self.ctx.queen_gone.pop(checksum_address(queen), None)
        self.ctx.wake.set()
        self._keep_pool(checksum_address(queen), seq, providers)

    def _keep_pool(self, queen: str, seq: int, providers: list[tuple[ProviderOffer, bytes, int]]) -> None:
        """Keeps the queen's latest pool in the store (when it changed, or every POOL_KEEP_S), so that a king that
        starts, or takes over as leader (king.ha), offers and places at once, before the queens have redialled it."""
        doc = [[asdict(o), pub.hex(), busy] for o, pub, busy in providers]
        now = self.clock.monotonic()
        last = self._kept.get(queen)
        if last is not None and last[1] == doc and now - last[0] < POOL_KEEP_S:
            return
        try:
            self.store.put(NS_POOLS, queen, {"seq": seq, "at": self.clock.time(), "providers": doc})
            self._kept[queen] = (now, doc)
        except BlendrError as exc:  # only a head start for the next king: the live pool is in memory
            log.warning("keeping a queen's pool in the store failed", queen=queen, error=str(exc)[:200])

    def _load_pools(self) -> int:
        """The queens' pools kept by the king before (see :meth:`_keep_pool`), those younger than the queens' grace
        period; each queen is counted as away until it connects, so its pool goes if it does not within the grace."""
        loaded = 0
        for queen, d in self.store.scan(NS_POOLS, ""):
            if self.clock.time() - float(d.get("at", 0)) > self.ctx.cfg.queen_grace_s:
                continue
            try:
                providers = [(ProviderOffer(**o), bytes.fromhex(pub), int(busy)) for o, pub, busy in d["providers"]]
                self.market.on_snapshot(queen, int(d["seq"]), providers)
            except (BlendrError, TypeError, ValueError, KeyError) as exc:  # a stale or foreign row: the queen resends
                log.warning("a kept queen pool could not be read", queen=queen, error=str(exc)[:200])
                continue
            self.ctx.queen_gone.setdefault(queen, self.clock.monotonic())
            loaded += 1
        return loaded

    def on_queen_connected(self, queen: str) -> None:
        """Re-sends the assignments of the queen's live jobs and its pending stops (repeats are idempotent)."""
        queen = checksum_address(queen)
        self.ctx.queen_gone.pop(queen, None)
        for job in self.book.unfinished():
            c = job.current
            if c is None or c.queen != queen or not c.rental_id:
                continue
            if job.live:
                self.ctx.queens.assign(queen, self.lifecycle.assignment(job))
            elif job.state == JobState.CANCELLED:
                self.ctx.queens.stop(queen, job.job_id, c.attempt, job.reason)

    def on_queen_disconnected(self, queen: str) -> None:
        self.ctx.queen_gone[checksum_address(queen)] = self.clock.monotonic()

    def on_queen_event(self, queen: str, ev: QueenEvent) -> None:
        self.lifecycle.on_queen_event(checksum_address(queen), ev)
        if self.outputs is not None:
            self.outputs.on_queen_event(queen, ev.job_id, ev.attempt, ev.kind)

    def poll_settlements(self) -> None:
        self.lifecycle.poll_settlements()

    # ------------------------------------------------------------------ renters
    def quote(self, spec: Spec) -> Quote:
        return self.intake.quote(spec)

    async def submit(self, renter: str, sub: Submission) -> Job:
        """Checks and queues a job (idempotent by request id); see :meth:`king.intake.Intake.submit`."""
        job, created = await self.intake.submit(renter, sub)
        if created:
            self.lifecycle.enqueue(job)
            self.ctx.wake.set()
        return job

    def get(self, renter: str, job_id: str) -> Job:
        """The renter's job.

        Raises:
            NotFoundError: no such job, or not this renter's (the same answer, so ids cannot be probed).
        """
        job = self.book.get(check_job_id(job_id)) if check_job_id(job_id) else None
        if job is None or job.renter != checksum_address(renter):
            raise NotFoundError(f"no job {shown(job_id)} of yours")
        return job

    def list_jobs(self, renter: str, states: set[JobState], limit: int) -> list[Job]:
        """The renter's jobs, newest first (only ``states`` when given), at most ``limit``."""
        out: list[Job] = []
        # newest first, and at most LIST_SCAN of the renter's jobs looked at per call (a long history with a state
        # filter must not hold the event loop)
        for job_id in reversed(self.book.of_renter(checksum_address(renter))[-LIST_SCAN:]):
            job = self.book.get(job_id)
            if job is not None and (not states or job.state in states):
                out.append(job)
                if len(out) >= (limit or 50):
                    break
        return out

    def events(self, job_id: JobId, after: int, limit: int = 1000) -> list[JobEvent]:
        return self.book.events(job_id, after, limit)

    def reason(self, job: Job) -> str:
        """Why the job is where it is; a queued job's reason is the scheduler's now."""
        if job.state == JobState.QUEUED:
            return self.placer.waiting_reason(job.job_id) or job.reason
        settling = self.lifecycle.settling_reason(job)
        return f"{job.reason}; {settling}" if settling and job.reason else settling or job.reason

    async def cancel(self, renter: str, job_id: str, reason: str = "") -> Job:
        self.get(renter, job_id)
        return self.lifecycle.cancel(checksum_address(renter), job_id, reason[:200])

    def offers(self) -> list[ModelOffer]:
        return self.scheduler.offers()

    def cost_so_far(self, job: Job) -> int:
        return job.cost_so_far(self.clock.time())

    def in_escrow(self, renter: str) -> int:
        """Escrow locked in the renter's rentals that are not settled yet (as the king followed them)."""
        renter = checksum_address(renter)
        pending = set(self.ctx.pending_rentals.values())
        total = 0
        for job_id in self.book.of_renter(renter):
            job = self.book.get(job_id) if job_id in pending else None
            if job is not None:
                total += sum(r.escrow for r in job.open_rentals())
        return total

    async def wallet(self, renter: str) -> Wallet:
        """The renter's GPUTOKEN balance, allowance to GPURental and permit nonce on Ethereum, escrow, vouchers, and
        the epoch rewards published for it (kept in the store by whichever king published them).

        Raises:
            UnavailableError: Ethereum cannot be read now.
            StoreError: the store cannot be read.
        """
        ch = self.chain
        renter = checksum_address(renter)
        try:
            balance, allowance, nonce = await asyncio.gather(
                asyncio.to_thread(ch.balance, renter), asyncio.to_thread(ch.allowance, renter),
                asyncio.to_thread(ch.permit_nonce, renter))
        except BlendrError as exc:  # the RPC's error text may carry its URL (and an API key): log it, do not send it
            log.warning("reading a wallet failed", error=str(exc)[:200])
            raise UnavailableError("the king cannot read Ethereum right now; try again") from None
        held: list[VoucherHolding] = []
        burns = None
        if self.vouchers is not None:
            try:
                held, burns = await asyncio.gather(asyncio.to_thread(self.vouchers.holdings, renter),
                                                   asyncio.to_thread(self.vouchers.burn_totals))
            except BlendrError as exc:
                log.warning("reading a wallet's vouchers failed", error=str(exc)[:200])
                raise UnavailableError("the king cannot read Ethereum right now; try again") from None
        rewards = await asyncio.to_thread(reward_holdings, self.store, renter)
        return Wallet(renter, balance, allowance, self.in_escrow(renter), nonce, tuple(held), burns, tuple(rewards))

    # ------------------------------------------------------------------ reads for operators and tests
    def job_states(self) -> dict[JobState, int]:
        out: dict[JobState, int] = {}
        for job in self.book.unfinished():
            out[job.state] = out.get(job.state, 0) + 1
        return out

    def live_jobs(self) -> list[Job]:
        return [j for j in self.book.unfinished() if j.state in LIVE]
