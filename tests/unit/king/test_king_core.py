"""The king's money path, fast: KingCore over a fake GPURental/GPUToken and fake queens (tests/fakes).

Every test that moves money ends with the escrow invariant (GPURental holds exactly the escrow of its rentals
not settled), conservation of tokens, and one rental on chain per rental the job records.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from blendr.chain.contracts import RentalStatus, candidates_root
from blendr.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    StoreError,
)
from blendr.jobspec import Spec, spec_hash
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.store import MemoryStore
from blendr.store.base import Op
from king.context import JobsConfig
from king.core import KingCore
from king.job import JobState, SignedIntent, Submission, rental_intent
from king.lifecycle import QueenEvent
from king.pricing import Pricer, PricingParams, tokens
from king.scheduler import ProviderOffer, Scheduler
from tests.fakes.queens import FakeClock, FakeQueens
from tests.fakes.rental_chain import CHAIN_ID, RENTAL_ADDRESS, SCHEDULER, FakeRentalChain, Fault

QUEEN_A, QUEEN_B = Account.create().address, Account.create().address
P1, P2, P3 = (Account.create().address for _ in range(3))
MODEL = "h100-sxm"
FUNDS = tokens("1000")


class Net:
    """One king core, a fake Ethereum, fake queens with providers, a renter; restartable over one store."""

    def __init__(self, cfg: JobsConfig | None = None) -> None:
        self.clock = FakeClock()
        self.store = MemoryStore()
        self.chain = FakeRentalChain(now=self.clock.time)
        self.queens = FakeQueens()
        self.cfg = cfg or JobsConfig()
        self.renter: LocalAccount = Account.create()
        self.chain.fund(self.renter.address, FUNDS, allowance=FUNDS)
        self.supply = self.chain.total_supply_seen()
        self.core = self._core()
        self.pools: dict[str, list[str]] = {QUEEN_A: [P1, P2], QUEEN_B: [P3]}

    def _core(self) -> KingCore:
        sched = Scheduler(Pricer(PricingParams(base_per_gpu_hour={MODEL: tokens("2")}, surge=0.0)),
                          known_models=FINGERPRINTS)
        return KingCore(self.store, self.clock, sched, self.chain, self.queens, self.cfg)

    async def start(self) -> None:
        await self.core.prepare()
        self.core.load()
        for queen in self.pools:
            self.connect(queen)

    def connect(self, queen: str) -> None:
        self.queens.connect(queen)
        self.core.on_queen_connected(queen)
        self.snapshot(queen)

    def snapshot(self, queen: str, seq: int = 1) -> None:
        offers = [(ProviderOffer(p, queen, MODEL, 8, 80 * 2**30, 60.0, tokens("1"), 5000, 1.0), os.urandom(64), 0)
                  for p in self.pools[queen]]
        self.core.on_snapshot(queen, seq, offers)

    async def restart_without_queens(self) -> None:
        """The king process dies and starts again over the same store; no queen has redialled it yet."""
        for t in list(self.core.ctx.tasks):
            t.cancel()
        await asyncio.gather(*self.core.ctx.tasks, return_exceptions=True)
        self.queens.up.clear()
        self.core = self._core()
        await self.core.prepare()
        self.core.load()

    async def restart(self) -> None:
        """The king process dies (its background work with it) and starts again over the same store."""
        for t in list(self.core.ctx.tasks):
            t.cancel()
        await asyncio.gather(*self.core.ctx.tasks, return_exceptions=True)
        self.core = self._core()
        await self.start()

    def submission(self, request_id: str = "req-0000000000000001", *, intents: int = 2,
                   providers: tuple[str, ...] = (P1, P2, P3), max_price: int = tokens("3"),
                   gpus: int = 1, duration_s: int = 3600, scheduler: str = SCHEDULER,
                   bound_to: tuple[str, ...] | None = None) -> Submission:
        spec = Spec(gpus=gpus, duration_s=duration_s, max_price_per_gpu_hour=max_price, gpu_model=MODEL)
        ct = os.urandom(300)
        sh = spec_hash(spec, ct)
        signed = []
        # the renter binds the providers it wraps the key for (or ``bound_to``), and this king (or ``scheduler``)
        root = candidates_root(providers if bound_to is None else bound_to)
        for _ in range(intents):
            nonce, deadline = int.from_bytes(os.urandom(32), "big"), int(self.clock.time()) + 86400
            sig = rental_intent(self.renter.address, spec, sh, nonce, deadline, root, scheduler).sign(
                self.renter, CHAIN_ID, RENTAL_ADDRESS)
            signed.append(SignedIntent(nonce, deadline, sig))
        return Submission(request_id, "test", spec, sh, tuple(signed), None, ct,
                          {p: os.urandom(120) for p in providers})

    async def submit(self, **kw: object) -> str:
        job = await self.core.submit(self.renter.address, self.submission(**kw))  # type: ignore[arg-type]
        return job.job_id

    def job(self, job_id: str):  # type: ignore[no-untyped-def]
        return self.core.get(self.renter.address, job_id)

    def event(self, job_id: str, kind: str, seq: int, **kw: object) -> None:
        job = self.job(job_id)
        assert job.current is not None
        self.core.on_queen_event(job.queen, QueenEvent(job_id, job.current.attempt, seq, kind, **kw))  # type: ignore[arg-type]

    async def settle_ended(self) -> None:
        """Settles every rental that is over (cancelled or past its end) for the time it ran, then the king
        follows the settlements."""
        await self.core.drain()
        now = int(self.clock.time())
        for rid, r in list(self.chain.rentals.items()):
            over = r.status == RentalStatus.CANCELLED or (r.status == RentalStatus.ACTIVE and now >= r.start + r.duration)
            if over:
                self.chain.settle(rid, (r.ended_at or now) - r.start, self.store)
        self.core.poll_settlements()

    def check_money(self) -> None:
        assert self.chain.escrow_ok(), "GPURental must hold exactly the escrow of unsettled rentals"
        assert self.chain.total_supply_seen() == self.supply, "tokens are neither made nor lost"
        recorded = [r.rental_id for j in self.core.list_jobs(self.renter.address, set(), 500) for r in j.rentals]
        assert len(recorded) == len(set(recorded)) == len(self.chain.rentals), "one chain rental per recorded rental"


@pytest.fixture
async def net() -> Net:
    n = Net()
    await n.start()
    return n


async def test_a_job_runs_ends_early_and_the_renter_pays_only_for_the_time_it_ran(net: Net) -> None:
    job_id = await net.submit()
    assert net.job(job_id).state == JobState.QUEUED
    await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.state == JobState.SCHEDULED and len(job.rentals) == 1
    a = net.queens.last(job_id)
    assert a.provider == job.provider and a.sealed_key and a.rental_id.hex() == job.rentals[0].rental_id
    net.event(job_id, "running", 1)
    net.event(job_id, "log", 2, message="hello")
    net.event(job_id, "progress", 3, progress=0.5)
    net.clock.advance(600)
    net.event(job_id, "succeeded", 4)
    assert net.job(job_id).state == JobState.ENDED
    await net.settle_ended()
    job = net.job(job_id)
    assert job.state == JobState.SETTLED and job.finished()
    r = job.rentals[0]
    assert r.verified_seconds == 600 and r.provider_payment + r.fee == tokens("2") * 600 // 3600
    assert net.chain.balances[net.renter.address] == FUNDS - (r.provider_payment + r.fee)
    kinds = [e.kind for e in net.core.events(job.job_id, 0)]
    assert kinds == ["queued", "scheduled", "rental_created", "running", "log", "progress", "ended", "verified",
                     "settled", "settled"]
    assert net.store.get("job_payloads", job_id) is None  # the payload is dropped once the job is over
    net.check_money()


async def test_a_create_that_times_out_but_landed_is_adopted_not_created_twice(net: Net) -> None:
    net.chain.fail_next("create", Fault.LANDED)
    job_id = await net.submit()
    await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.state == JobState.SCHEDULED and not job.rentals and "not answering" in job.reason
    assert len(net.chain.rentals) == 1  # it landed
    net.clock.advance(net.cfg.retry_s * 5)
    await net.core.placer.run_pass()
    job = net.job(job_id)
    assert len(job.rentals) == 1 and job.rentals[0].created_tx == ""  # adopted
    assert job.intents[0].used and not job.intents[1].used
    assert len(net.chain.rentals) == 1 and net.chain.calls["create"] == 2
    net.check_money()


async def test_a_create_that_never_reached_the_chain_is_retried_with_the_same_attempt(net: Net) -> None:
    net.chain.fail_next("create", Fault.DOWN, times=2)
    job_id = await net.submit()
    await net.core.placer.run_pass()
    first = net.job(job_id).current
    assert first is not None
    for _ in range(2):
        net.clock.advance(net.cfg.retry_s * 5)
        await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.current is not None and (job.current.attempt, job.current.provider) == (first.attempt, first.provider)
    assert len(job.rentals) == 1 and len(net.chain.rentals) == 1
    net.check_money()


async def test_a_provider_side_revert_moves_the_job_and_a_renter_side_one_fails_it(net: Net) -> None:
    net.chain.understaked.add(P1)
    net.chain.understaked.add(P2)
    job_id = await net.submit(providers=(P1, P2, P3))
    for _ in range(3):
        await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.provider == P3 and len(job.rentals) == 1 and set(job.excluded) >= {P1}
    net.check_money()
    other = await net.submit(request_id="req-0000000000000002", providers=(P3,))
    net.chain.fail_next("create", Fault.REVERT, "ERC20InsufficientBalance")
    net.snapshot(QUEEN_B, 2)
    await net.core.placer.run_pass()
    job = net.job(other)
    assert job.state == JobState.FAILED and "insufficient GPUTOKEN balance" in job.reason
    net.check_money()


async def test_a_queen_that_vanishes_past_the_grace_moves_its_job_and_each_rental_is_paid_once(net: Net) -> None:
    job_id = await net.submit(providers=(P1, P3))
    await net.core.placer.run_pass()
    job = net.job(job_id)
    first_queen, first_rental = job.queen, job.rentals[0].rental_id
    net.event(job_id, "running", 1)
    net.clock.advance(300)
    net.queens.disconnect(first_queen)
    net.core.on_queen_disconnected(first_queen)
    net.clock.advance(net.cfg.queen_grace_s - 1)
    await net.core.placer.run_pass()
    assert net.job(job_id).queen == first_queen  # within the grace period: nothing moves
    net.clock.advance(2)
    await net.core.placer.run_pass()  # lost: cancelled, rescheduled
    await net.core.placer.run_pass()  # placed elsewhere
    await net.core.drain()  # the first rental's cancel runs in the background
    job = net.job(job_id)
    assert job.state == JobState.SCHEDULED and job.queen != first_queen and len(job.rentals) == 2
    assert net.chain.rentals[int(first_rental, 16)].status == RentalStatus.CANCELLED
    net.event(job_id, "running", 1)
    net.clock.advance(200)
    net.event(job_id, "succeeded", 2)
    await net.settle_ended()
    job = net.job(job_id)
    assert job.state == JobState.SETTLED and [r.verified_seconds for r in job.rentals] == [331, 200]
    net.check_money()


async def test_a_cancel_racing_the_rental_creation_cancels_the_rental_that_lands(net: Net) -> None:
    gate = net.chain.gate_create()
    job_id = await net.submit()
    placing = asyncio.create_task(net.core.placer.run_pass())
    await asyncio.to_thread(net.chain.create_entered.wait, 10)
    cancelled = await net.core.cancel(net.renter.address, job_id)
    assert cancelled.state == JobState.CANCELLED
    gate.set()
    await placing
    await net.core.drain()
    job = net.job(job_id)
    assert job.state == JobState.CANCELLED and len(job.rentals) == 1
    assert net.chain.rentals[int(job.rentals[0].rental_id, 16)].status == RentalStatus.CANCELLED
    await net.settle_ended()
    job = net.job(job_id)
    assert job.state == JobState.SETTLED and job.rentals[0].refund == job.rentals[0].escrow
    assert net.chain.balances[net.renter.address] == FUNDS
    net.check_money()


async def test_a_failed_cancel_is_stored_and_retried_until_the_chain_has_it() -> None:
    net = Net(JobsConfig(retry_s=0.001))
    await net.start()
    job_id = await net.submit()
    await net.core.placer.run_pass()
    net.event(job_id, "running", 1)
    net.chain.fail_next("cancel", Fault.DOWN, times=6)  # every try of the first round fails
    net.clock.advance(100)
    net.event(job_id, "succeeded", 2)
    await net.core.drain()
    key = net.job(job_id).rentals[0].rental_id
    assert net.store.get("rental_cancels", key) is not None
    net.clock.advance(31)
    await net.core.placer.run_pass()  # the periodic retry of stored cancels
    await net.core.drain()
    assert net.store.get("rental_cancels", key) is None
    assert net.chain.rentals[int(key, 16)].status == RentalStatus.CANCELLED
    await net.settle_ended()
    assert net.job(job_id).state == JobState.SETTLED
    net.check_money()


Step = Callable[[Net, str], Awaitable[None]]


async def _place(n: Net, job_id: str) -> None:
    await n.core.placer.run_pass()


async def _running(n: Net, job_id: str) -> None:
    n.event(job_id, "running", 1)


async def _ran(n: Net, job_id: str) -> None:
    n.clock.advance(900)
    n.event(job_id, "succeeded", 2)


async def _settle(n: Net, job_id: str) -> None:
    await n.settle_ended()


STEPS: list[Step] = [_place, _running, _ran, _settle]


@pytest.mark.parametrize("crash_after", range(len(STEPS) + 1))
async def test_a_king_restart_between_any_two_steps_completes_the_job_once(crash_after: int) -> None:
    net = Net()
    await net.start()
    job_id = await net.submit()
    for i, step in enumerate(STEPS):
        if i == crash_after:
            await net.restart()
        await step(net, job_id)
    if crash_after == len(STEPS):
        await net.restart()
    await net.core.placer.run_pass()
    await net.settle_ended()
    job = net.job(job_id)
    assert job.state == JobState.SETTLED and len(job.rentals) == 1
    assert job.rentals[0].verified_seconds == 900
    net.check_money()


async def test_a_restart_while_the_create_was_unclear_adopts_what_landed() -> None:
    net = Net()
    await net.start()
    net.chain.fail_next("create", Fault.LANDED)
    job_id = await net.submit()
    await net.core.placer.run_pass()
    await net.restart()
    await net.core.placer.run_pass()  # load() marks the attempt for a retry at once
    job = net.job(job_id)
    assert len(job.rentals) == 1 and len(net.chain.rentals) == 1 and job.state == JobState.SCHEDULED
    assert net.queens.last(job_id).rental_id.hex() == job.rentals[0].rental_id
    net.check_money()


async def test_submissions_are_idempotent_and_hostile_ones_change_nothing(net: Net) -> None:
    sub = net.submission()
    first = await net.core.submit(net.renter.address, sub)
    again = await net.core.submit(net.renter.address, sub)
    assert again.job_id == first.job_id and net.core.scheduler.queued() == 1
    with pytest.raises(AlreadyExistsError):
        await net.core.submit(net.renter.address, net.submission())  # same request id, other job
    replay = net.submission("req-0000000000000002")
    replay = Submission(replay.request_id, "", sub.spec, sub.spec_hash, sub.intents, None, sub.ciphertext, sub.keys)
    with pytest.raises(FailedPreconditionError, match="replayed"):
        await net.core.submit(net.renter.address, replay)
    with pytest.raises(InvalidArgumentError, match="request_id"):
        await net.core.submit(net.renter.address, net.submission("req-000000000000003\n"))
    many = net.submission("req-0000000000000004", providers=tuple(Account.create().address for _ in range(17)))
    with pytest.raises(InvalidArgumentError, match="at most 16"):
        await net.core.submit(net.renter.address, many)
    big = net.submission("req-0000000000000005")
    big = Submission(big.request_id, "", big.spec, big.spec_hash, big.intents, None, big.ciphertext,
                     {P1: os.urandom(7000)})
    with pytest.raises(InvalidArgumentError, match="wrapped key"):
        await net.core.submit(net.renter.address, big)
    forged = net.submission("req-0000000000000006")
    other: LocalAccount = Account.create()
    net.renter, real = other, net.renter
    with pytest.raises(InvalidArgumentError, match="not signed by the renter"):
        await net.core.submit(real.address, net.submission("req-0000000000000007"))
    net.renter = real
    with pytest.raises(NotFoundError):
        net.core.get(net.renter.address, "j-0000\x00")
    with pytest.raises(NotFoundError):
        net.core.get(other.address, first.job_id)  # another renter's job looks like no job
    assert forged.request_id and net.core.scheduler.queued() == 1 and not net.chain.rentals


async def test_intents_bound_to_another_scheduler_or_other_candidates_are_refused(net: Net) -> None:
    """The king accepts only intents bound to itself and to the providers the payload key is wrapped for (the
    ones GPURental would let it place), and places each rental with the chosen candidate's proof."""
    other_king = Account.create().address
    with pytest.raises(InvalidArgumentError, match="scheduler address"):
        await net.submit(scheduler=other_king)
    with pytest.raises(InvalidArgumentError, match="payload key is wrapped for"):
        await net.submit(providers=(P1, P2, P3), bound_to=(P1, P2))
    assert net.core.scheduler.queued() == 0
    job_id = await net.submit(providers=(P1, P2, P3))
    await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.state == JobState.SCHEDULED and len(net.chain.rentals) == 1  # the fake checks the proof
    intent = job.intent(0)
    assert intent.scheduler == SCHEDULER and intent.candidates_root == candidates_root([P3, P1, P2])
    assert job.candidate_proof(Account.create().address) == []  # not a candidate: no proof (GPURental refuses)


async def test_the_open_jobs_limit_per_renter_is_resource_exhausted_and_frees_up() -> None:
    net = Net(JobsConfig(max_open_jobs_per_renter=2))
    await net.start()
    a = await net.submit(request_id="req-000000000000000a")
    await net.submit(request_id="req-000000000000000b")
    with pytest.raises(ResourceExhaustedError, match="max_open_jobs_per_renter"):
        await net.submit(request_id="req-000000000000000c")
    await net.core.cancel(net.renter.address, a)
    await net.submit(request_id="req-000000000000000c")


async def test_the_default_open_jobs_limit_holds_at_its_default() -> None:
    net = Net()
    await net.start()
    limit = JobsConfig().max_open_jobs_per_renter
    net.pools = {QUEEN_A: [], QUEEN_B: []}  # nothing runs: every job stays queued
    for queen in net.pools:
        net.snapshot(queen, 2)
    for i in range(limit):
        await net.submit(request_id=f"req-{i:016d}", intents=1, max_price=tokens("3"))
    with pytest.raises(ResourceExhaustedError):
        await net.submit(request_id="req-over-the-limit-0", intents=1)
    assert net.core.scheduler.queued() == limit


class FlakyStore(MemoryStore):
    """A store whose next ``fail`` commits fail, as a full disk would."""

    fail = 0

    def _apply(self, ops: tuple[Op, ...]) -> None:
        if self.fail:
            self.fail -= 1
            raise StoreError("disk full (injected)")
        super()._apply(ops)


async def test_a_failed_commit_loses_nothing_and_numbers_events_without_gaps() -> None:
    net = Net()
    net.store = FlakyStore()
    net.core = net._core()
    await net.start()
    job_id = await net.submit()
    net.store.fail = 1  # the placement's commit fails
    await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.state == JobState.QUEUED and not net.chain.rentals  # the store's truth: still queued
    await net.core.placer.run_pass()  # placed again, this time stored
    job = net.job(job_id)
    assert job.state == JobState.SCHEDULED and len(job.rentals) == 1
    seqs = [e.seq for e in net.core.events(job.job_id, 0)]
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] == job.last_seq
    net.check_money()


async def test_a_bogus_or_foreign_permit_is_refused_at_submission(net: Net) -> None:
    from blendr.chain.contracts import sign_permit
    from king.job import PermitDoc
    from tests.fakes.rental_chain import TOKEN_ADDRESS

    net.chain.allowances[net.renter.address] = 0
    base = net.submission("req-permit-0000001")
    deadline = int(net.clock.time()) + 86400
    bogus = PermitDoc(10**78 - 1, 2**63, 300, b"\1" * 32, b"\2" * 32)
    other: LocalAccount = Account.create()
    v, r, s = sign_permit(other, net.chain.token_name, CHAIN_ID, TOKEN_ADDRESS, RENTAL_ADDRESS, tokens("50"), 0,
                          deadline)
    foreign = PermitDoc(tokens("50"), deadline, v, r, s)
    v, r, s = sign_permit(net.renter, net.chain.token_name, CHAIN_ID, TOKEN_ADDRESS, RENTAL_ADDRESS, tokens("50"), 7,
                          deadline)
    stale = PermitDoc(tokens("50"), deadline, v, r, s)  # signed for another permit nonce
    for permit in (bogus, foreign, stale):
        sub = Submission(base.request_id, "", base.spec, base.spec_hash, base.intents, permit, base.ciphertext,
                         base.keys)
        with pytest.raises(InvalidArgumentError, match="permit"):
            await net.core.submit(net.renter.address, sub)
    v, r, s = sign_permit(net.renter, net.chain.token_name, CHAIN_ID, TOKEN_ADDRESS, RENTAL_ADDRESS, tokens("50"), 0,
                          deadline)
    good = Submission(base.request_id, "", base.spec, base.spec_hash, base.intents, PermitDoc(tokens("50"), deadline,
                                                                                                v, r, s),
                      base.ciphertext, base.keys)
    job = await net.core.submit(net.renter.address, good)
    await net.core.placer.run_pass()
    assert len(net.job(job.job_id).rentals) == 1 and net.job(job.job_id).permit_used
    net.check_money()


async def test_a_provider_lost_while_its_rental_creation_is_unclear_never_leaves_a_rental_behind(net: Net) -> None:
    net.chain.fail_next("create", Fault.LANDED)
    job_id = await net.submit(providers=(P1, P3))
    await net.core.placer.run_pass()
    first = net.job(job_id)
    assert first.current is not None and not first.rentals
    queen, provider = first.queen, first.provider
    net.queens.disconnect(queen)
    net.core.on_queen_disconnected(queen)
    net.clock.advance(net.cfg.queen_grace_s + 1)
    await net.core.placer.run_pass()  # the queen is lost: the landed rental is adopted (not forgotten)
    for _ in range(3):
        net.clock.advance(net.cfg.queen_grace_s + 1)
        await net.core.placer.run_pass()
        await net.core.drain()
    job = net.job(job_id)
    assert job.state in (JobState.SCHEDULED, JobState.RUNNING) and job.queen != queen and len(job.rentals) == 2
    assert job.intents[0].used and job.intents[1].used
    first_rental = net.chain.rentals[int(job.rentals[0].rental_id, 16)]
    assert first_rental.status == RentalStatus.CANCELLED and first_rental.provider == provider
    net.check_money()


async def test_progress_floods_and_unnumbered_events_are_bounded() -> None:
    net = Net(JobsConfig(max_log_events=5))
    await net.start()
    job_id = await net.submit()
    await net.core.placer.run_pass()
    net.event(job_id, "running", 1)
    for seq in range(2, 40):
        net.event(job_id, "progress", seq, progress=seq / 100)
    for _ in range(20):
        net.event(job_id, "log", 0, message="unnumbered")
    kinds = [e.kind for e in net.core.events(job_id, 0)]
    assert kinds.count("progress") == 5 and "log" not in kinds
    assert net.job(job_id).progress == pytest.approx(0.39)


async def test_concurrent_submissions_cannot_pass_the_open_jobs_limit() -> None:
    net = Net(JobsConfig(max_open_jobs_per_renter=3))
    await net.start()
    subs = [net.submission(f"req-race-{i:010d}") for i in range(12)]
    results = await asyncio.gather(*(net.core.submit(net.renter.address, s) for s in subs), return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    assert len(accepted) == 3 and all(isinstance(r, ResourceExhaustedError) for r in results if r not in accepted)


async def test_a_king_that_starts_over_the_store_places_before_the_queens_redial() -> None:
    """The queens' last pools are kept in the store: a king that restarts (or takes over as leader, king.ha)
    places a queued job at once, and the assignment reaches the queen when it connects; a pool older than the
    queens' grace period is not loaded."""
    net = Net()
    await net.start()
    await net.restart_without_queens()
    assert {o.gpu_model for o in net.core.offers()} == {MODEL}  # offered before any queen connected
    job_id = await net.submit()
    await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.state == JobState.SCHEDULED and job.rentals and not [a for _, a in net.queens.assigned
                                                                     if a.job_id == job_id]
    net.connect(job.queen)  # the queen redials: it gets the assignment
    assert net.queens.last(job_id).rental_id.hex() == job.rentals[0].rental_id
    net.clock.advance(net.cfg.queen_grace_s + 11)  # no snapshot since: the kept pools are older than the grace
    await net.restart_without_queens()
    assert net.core.offers() == []
