"""Outcomes a renter meets, fast: KingCore over the fake GPURental and fake queens (tests/fakes), with stakes.

* Offers and placement use only providers GPURental accepts (stake per GPU, queen stake), from a cached
  stake book, never a chain read per job.
* No job waits without bound: it ends ``failed`` with the reason when its wait is over, or at once when every
  provider it can go to has failed it; its escrow is never touched.
* A failure on the provider's side moves the job and its rental pays nothing (the queen voids its
  verification: 0 s verified); exact balances.
* A job's reason says where it stands now (never a stale "waiting for a provider"), and an over job says what
  its settlement waits for.
"""

from __future__ import annotations

import pytest

from blendr.chain.contracts import RentalStatus
from blendr.errors import InvalidArgumentError
from blendr.jobspec import Spec
from blendr.units import fmt_tokens
from king.context import JobsConfig
from king.core import KingCore
from king.job import EventKind, JobState
from king.pricing import Pricer, PricingParams, tokens
from king.scheduler import Scheduler
from king.stakes import StakeBook
from tests.fakes.rental_chain import FEE_BPS, TREASURY
from tests.unit.king.test_king_core import FUNDS, MODEL, P1, P2, P3, QUEEN_A, QUEEN_B, Net
from tests.unit.king.test_king_core import net as net  # the fixture

MIN_PROVIDER = tokens("100")  # per GPU
MIN_QUEEN = tokens("50")


class FakeStakes:
    """StakingManager's stakes as the stake book reads them, counting reads."""

    def __init__(self) -> None:
        self.providers: dict[str, int] = {}
        self.queens: dict[str, int] = {QUEEN_A: MIN_QUEEN, QUEEN_B: MIN_QUEEN}
        self.reads = 0

    def provider_stake(self, provider: str) -> int:
        self.reads += 1
        return self.providers.get(provider, 0)

    def queen_stake(self, queen: str) -> int:
        self.reads += 1
        return self.queens.get(queen, 0)

    def min_provider_stake(self) -> int:
        return MIN_PROVIDER

    def min_queen_stake(self) -> int:
        return MIN_QUEEN

    def reserved_stake(self, provider: str) -> int:
        return 0  # the fake chain (tests.fakes) reserves no stake for open rentals

    def slash_bps(self) -> int:
        return 0


class FakeBridge:
    def __init__(self) -> None:
        self.waits: dict[int, str] = {}

    def rental_wait(self, rental_id: int) -> str:
        return self.waits.get(rental_id, "")


class StakedNet(Net):
    """Net whose king offers providers only as far as their stakes (FakeStakes, mirrored on the fake chain)."""

    def __init__(self, cfg: JobsConfig | None = None) -> None:
        self.stake_reader = FakeStakes()
        self.bridge = FakeBridge()
        super().__init__(cfg)

    def _core(self) -> KingCore:
        sched = Scheduler(Pricer(PricingParams(base_per_gpu_hour={MODEL: tokens("2")}, surge=0.0)))
        self.stakes = StakeBook(self.stake_reader, self.clock, ttl_s=60.0)
        return KingCore(self.store, self.clock, sched, self.chain, self.queens, self.cfg, stakes=self.stakes,
                        bridge=self.bridge)

    def stake(self, provider: str, gpus: int) -> None:
        """Gives ``provider`` the stake of ``gpus`` GPUs, on the stake book's chain and on GPURental's."""
        self.stake_reader.providers[provider] = MIN_PROVIDER * gpus
        if gpus:
            self.chain.understaked.discard(provider)
        else:
            self.chain.understaked.add(provider)

    def follow_stakes(self) -> None:
        """One round of king.stakes.follow."""
        due = self.stakes.due(self.core.market.staked_pairs())
        if due and self.stakes.refresh(due):
            self.core.market.restake()


@pytest.fixture
async def staked() -> StakedNet:
    n = StakedNet()
    n.stake(P1, 0)  # not staked: GPURental would refuse any rental of it
    n.stake(P2, 2)  # covers 2 of its 8 GPUs
    n.stake(P3, 8)
    await n.start()
    return n


def offered(n: Net) -> dict[str, int]:
    return {e.offer.provider: e.offer.gpus for e in n.core.market.pool.values() if e.offer.gpus > 0}


async def test_only_providers_the_contract_accepts_are_offered_and_chosen(staked: StakedNet) -> None:
    n = staked
    assert offered(n) == {}  # no stake read yet: nothing the contract would refuse is offered
    n.follow_stakes()
    assert offered(n) == {P2: 2, P3: 8}
    assert sum(o.gpus_total for o in n.core.offers()) == 10  # `blendr offers`
    spec4 = Spec(gpus=4, duration_s=3600, max_price_per_gpu_hour=tokens("3"), gpu_model=MODEL)
    assert [e.offer.provider for e in n.core.quote(spec4).candidates] == [P3]
    reads = n.stake_reader.reads
    ids = [await n.submit(request_id=f"req-00000000000000{i:02d}", gpus=8) for i in range(2)]
    for _ in range(2):
        await n.core.placer.run_pass()
    assert n.job(ids[0]).provider == P3 and n.job(ids[1]).state == JobState.QUEUED  # P3 full; P1, P2 never
    assert "not enough free GPUs" in n.core.reason(n.job(ids[1]))
    assert n.stake_reader.reads == reads  # no chain read per job or per pass
    assert n.chain.calls.get("create") == 1  # no rental tried on a provider the contract would refuse
    # P1 stakes: after the cache's TTL the king reads it again and offers it
    n.stake(P1, 8)
    n.follow_stakes()
    assert P1 not in offered(n)  # still within the TTL
    n.clock.advance(61)
    n.follow_stakes()
    assert offered(n)[P1] == 8
    await n.core.placer.run_pass()
    assert n.job(ids[1]).provider == P1
    n.check_money()


async def test_an_unstaked_queen_takes_its_providers_out_of_the_market(staked: StakedNet) -> None:
    n = staked
    n.stake_reader.queens[QUEEN_B] = MIN_QUEEN - 1
    n.follow_stakes()
    assert offered(n) == {P2: 2}


async def test_a_job_not_placed_within_its_wait_fails_with_the_reason_and_escrow_untouched() -> None:
    n = Net(JobsConfig(default_max_wait_s=600.0, max_wait_s=3600.0))
    await n.start()
    busy = await n.submit(request_id="req-busy000000000001", gpus=8, providers=(P3,))
    await n.core.placer.run_pass()
    locked = n.job(busy).rentals[0].escrow
    waiting = await n.submit(request_id="req-wait000000000001", gpus=8, providers=(P3,))
    short = n.submission("req-wait000000000002", gpus=8, providers=(P3,))
    short = type(short)(**{**short.__dict__, "max_wait_s": 120.0})
    short_id = (await n.core.submit(n.renter.address, short)).job_id
    n.clock.advance(119)
    await n.core.placer.run_pass()
    assert n.job(short_id).state == JobState.QUEUED
    n.clock.advance(2)
    await n.core.placer.run_pass()
    job = n.job(short_id)
    assert job.state == JobState.FAILED and job.finished() and not job.rentals
    assert job.reason.startswith("not placed within 2 min (--max-wait): no provider with 8×H100 SXM")
    assert "busy" in job.reason
    assert n.job(waiting).state == JobState.QUEUED
    n.clock.advance(600 - 121)
    await n.core.placer.run_pass()
    assert n.job(waiting).state == JobState.FAILED and "not placed within 10 min" in n.job(waiting).reason
    assert n.chain.balances[n.renter.address] == FUNDS - locked  # only the running job's escrow is held
    too_long = n.submission("req-wait000000000003")
    with pytest.raises(InvalidArgumentError, match="max_wait_s"):
        await n.core.submit(n.renter.address, type(too_long)(**{**too_long.__dict__, "max_wait_s": 3601.0}))
    n.check_money()


async def test_a_job_every_candidate_of_which_failed_it_fails_at_once(net: Net) -> None:
    net.chain.understaked |= {P1, P2}
    job_id = await net.submit(providers=(P1, P2), intents=4)
    for _ in range(3):
        await net.core.placer.run_pass()
    job = net.job(job_id)
    assert job.state == JobState.FAILED and not job.rentals
    assert "every provider the job's payload is encrypted for has already failed it" in job.reason
    assert net.chain.balances[net.renter.address] == FUNDS
    net.check_money()


async def test_a_provider_side_failure_moves_the_job_and_its_rental_pays_nothing(net: Net) -> None:
    job_id = await net.submit(providers=(P1, P2))
    await net.core.placer.run_pass()
    job = net.job(job_id)
    first, first_rental = job.provider, int(job.rentals[0].rental_id, 16)
    other = P2 if first == P1 else P1
    net.event(job_id, "accepted", 1)
    net.clock.advance(32)
    net.event(job_id, "failed", 2, message="cannot start the job: the Ray cluster refused it", exit_code=-1,
              provider_fault=True)
    job = net.job(job_id)
    assert job.state == JobState.QUEUED and first in job.excluded and "could not run the job" in job.reason
    await net.core.placer.run_pass()
    await net.core.drain()
    job = net.job(job_id)
    assert job.state == JobState.SCHEDULED and job.provider == other and len(job.rentals) == 2
    assert net.chain.rentals[first_rental].status == RentalStatus.CANCELLED
    net.event(job_id, "running", 1)
    net.clock.advance(600)
    net.event(job_id, "succeeded", 2)
    # The queen voided the faulty rental's verification: its RESULT says 0 s (not failed: nothing slashed).
    net.chain.settle(first_rental, 0, net.store)
    await net.settle_ended()
    job = net.job(job_id)
    assert job.state == JobState.SETTLED
    gross = tokens("2") * 600 // 3600
    fee = gross * FEE_BPS // 10_000
    assert [r.provider_payment + r.fee for r in job.rentals] == [0, gross]
    assert net.chain.balances[net.renter.address] == FUNDS - gross
    assert net.chain.balances.get(first, 0) == 0
    assert net.chain.balances[other] == gross - fee and net.chain.balances[TREASURY] == fee
    # every event says the state it left the job in (a watcher replaying them shows that, not today's state)
    states = [(str(e.kind), e.state) for e in net.core.book.events(job_id, 0) if e.kind != EventKind.SETTLED]
    assert states == [("queued", "queued"), ("scheduled", "scheduled"), ("rental_created", "scheduled"),
                      ("rescheduled", "queued"), ("scheduled", "scheduled"), ("rental_created", "scheduled"),
                      ("running", "running"), ("ended", "ended"), ("verified", "ended"), ("verified", "ended")]
    refunded = sum(r.escrow for r in job.rentals) - gross
    assert job.reason == f"settled: you paid {fmt_tokens(gross)} GPUTOKEN, {fmt_tokens(refunded)} refunded"
    net.check_money()


async def test_a_job_failing_by_itself_ends_and_is_not_moved(net: Net) -> None:
    job_id = await net.submit(providers=(P1, P2))
    await net.core.placer.run_pass()
    net.event(job_id, "running", 1)
    net.event(job_id, "failed", 2, message="entrypoint exited with code 3", exit_code=3)
    job = net.job(job_id)
    assert job.state == JobState.ENDED and job.exit_code == 3 and not job.excluded
    assert job.reason == "the job failed: entrypoint exited with code 3"


async def test_a_fault_claimed_after_the_job_ran_ends_the_job_and_does_not_move_it(net: Net) -> None:
    """Once running, the renter's code had the devices (it may crash Ray on purpose): a provider_fault then is
    the job's own failure, so the renter cannot run for free on one candidate after another."""
    job_id = await net.submit(providers=(P1, P2))
    await net.core.placer.run_pass()
    net.event(job_id, "running", 1)
    net.event(job_id, "failed", 2, message="the job supervisor died", exit_code=-1, provider_fault=True)
    job = net.job(job_id)
    assert job.state == JobState.ENDED and not job.excluded and len(job.rentals) == 1


async def test_reasons_follow_the_job_and_an_over_job_says_what_its_settlement_waits_for(
        staked: StakedNet) -> None:
    n = staked
    n.follow_stakes()
    job_id = await n.submit(providers=(P3,))
    assert n.job(job_id).reason  # queued: why it waits
    await n.core.placer.run_pass()
    assert n.core.reason(n.job(job_id)).startswith(f"placed on provider {P3}")
    n.event(job_id, "running", 1)
    assert n.core.reason(n.job(job_id)) == f"running on provider {P3}"
    n.clock.advance(60)
    n.event(job_id, "succeeded", 2)
    job = n.job(job_id)
    rid = job.rentals[0].rental_id
    assert n.core.reason(job).startswith("the job finished; rental ") and "verification result" in n.core.reason(job)
    await n.core.drain()
    n.core.book.subscribe(job_id, n.renter.address, 8)
    n.bridge.waits[int(rid, 16)] = "its verification result is waiting for the bridge (1 of 2 attestations)"
    n.core.placer.refresh_watched_reasons()
    n.core.placer.refresh_watched_reasons()  # unchanged: told once
    settling = [e for e in n.core.book.events(job_id, 0) if e.kind == EventKind.SETTLING]
    assert [e.message for e in settling] == [
        f"rental {rid[:12]}…: its verification result is waiting for the bridge (1 of 2 attestations)"]
    await n.settle_ended()
    job = n.job(job_id)
    assert job.state == JobState.SETTLED and n.core.reason(job).startswith("settled: you paid 0.0333")


async def test_a_stake_withdrawn_since_it_was_read_is_read_again_at_the_contracts_refusal(staked: StakedNet) -> None:
    n = staked
    n.follow_stakes()
    n.stake(P3, 0)  # P3 unbonds; the king's cache still says 8 GPUs
    job_id = await n.submit(providers=(P2, P3), gpus=4)
    await n.core.placer.run_pass()  # tried on P3 (the only one with 4 GPUs): GPURentalInsufficientStake
    job = n.job(job_id)
    assert job.state == JobState.QUEUED and P3 in job.excluded and not job.rentals
    assert P3 not in offered(n)  # taken out at once, until its stake is read again
    n.follow_stakes()
    assert P3 not in offered(n) and n.core.market.understaked[P3] == (8, 0)
    reason = n.core.reason(n.job(job_id))  # P2 covers 2 of the 4 GPUs asked
    assert reason.endswith("are listed but not staked enough for GPURental to accept a rental)"), reason
    assert f"{P2[:10]}…" in reason and f"{P3[:10]}…" in reason
    n.check_money()
