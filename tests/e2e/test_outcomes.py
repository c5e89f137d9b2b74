"""Outcomes a renter meets off the happy path, end to end on real anvil chains, one network for all of them:

* a provider whose stake GPURental would refuse is admitted by its queen but never offered nor chosen;
* a job that fails to start because of its provider (its Ray job agent refuses it) is moved to the provider
  beside it, and the rental on the faulty provider settles for 0 s verified, paying nothing and slashing
  nothing;
* a job that cannot be placed within its renter-set wait ends ``failed`` with the reason, its escrow untouched,
  and the renter's follow ends;
* with the bridge short of attesters a job that ended says what its settlement waits for, and when the
  attesters are back its rental settles for the time verified (a late bridge changes nothing that is owed);
with exact balances for every account.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from blendr.chain.anvil import AnvilProcess
from blendr.chain.contracts import StakingManager, Tier
from blendr.client import JobRequest
from blendr.errors import ComputeError
from blendr.units import tokens
from provider.jobs import JobRunner
from tests.e2e.net import ACCOUNTS, FEE_BPS, Net, client, events_until_done, follow
from tests.integration.helpers import wait_for
from tests.rayhead import RayHead

pytestmark = [pytest.mark.usefixtures("ray_cluster", "snapshot"), pytest.mark.timeout(600)]

MINUTE = 60 / 3600  # hours: the devnet's shortest rental


class RefusingRunner(JobRunner):
    """A provider whose Ray job agent refuses renters' jobs (its readiness probe, a trivial job, still passes)."""

    async def start(self, job_id: str, *args: Any, **kwargs: Any) -> None:
        raise ComputeError(f"the Ray cluster refused job {job_id}: No available agent to submit job")


async def offered(king: Any, gpus: int, timeout: float = 60) -> list[Any]:
    """The king's offers once they list at least ``gpus`` GPUs in all (or, after ``timeout``, as they are)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        offers = await king.offers()
        if sum(o.gpus_total for o in offers) >= gpus or asyncio.get_running_loop().time() > deadline:
            return list(offers)
        await asyncio.sleep(0.2)


def job(workdir: Path, **kw: Any) -> JobRequest:
    base: dict[str, Any] = {"entrypoint": "python job.py 4", "gpus": 1, "gpu_model": "cpu", "hours": MINUTE,
                            "max_price": "3", "workdir": workdir, "env": {"GREETING": "hi", "STEP_S": "1"}}
    base.update(kw)
    return JobRequest(**base)


async def test_staking_provider_faults_and_waits_end_as_a_renter_expects(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, jobs_ray: RayHead, tmp_path: Path,
        workdir: Path) -> None:
    eth, etc = chains
    renter = ACCOUNTS["renter"].address
    good, faulty, unstaked = (ACCOUNTS[p].address for p in ("provider1", "provider2", "provider3"))
    # provider3 unbonds its whole stake: GPURental would refuse any rental of it (GPURentalInsufficientStake)
    staking = StakingManager(client(eth.url, "eth", ACCOUNTS["provider3"]), deployed.eth.address("StakingManager"))
    staking.request_unstake(Tier.PROVIDER, int(staking.stake_of(unstaked, Tier.PROVIDER)))
    net = Net(eth.url, etc.url, deployed, jobs_ray, tmp_path)
    try:
        await net.start_king()
        for q in ("queen1", "queen2"):
            await net.start_queen(q)
        await net.start_provider("provider1", "queen1", 0)
        await net.start_provider("provider2", "queen2", 1, runner_cls=RefusingRunner)
        await net.start_provider("provider3", "queen1", 2)  # admitted by its queen (open admission)
        await net.offers_seen(2, timeout=120)  # each provider's readiness job starts a sandbox: slow under load
        k = net.king
        assert k is not None
        market = k.jobs.market
        await wait_for(lambda: market.understaked.get(unstaked) == (1, 0), 60, "the king to read provider3's stake")
        treasury = net.manifest.accounts["treasury"]
        other = Account.create()  # a second renter: two permits of one renter at once would race for its nonce
        # Chain calls block: off the event loop, where the king, the queens and the providers all run (a loop held
        # for a transaction's receipt starves the providers' heartbeats, and their queens find them silent).
        await asyncio.to_thread(net.fund, other, tokens("100"))
        wallets = (renter, other.address, good, faulty, unstaked, treasury)
        await asyncio.to_thread(lambda: net.rental().collect_fees())  # earlier tests' fees: paid before `before`
        before = dict(zip(wallets, await asyncio.gather(*(asyncio.to_thread(net.balance, w) for w in wallets)),
                          strict=True))
        slashable = int(await asyncio.to_thread(
            StakingManager(client(eth.url, "eth", ACCOUNTS["deployer"]), deployed.eth.address("StakingManager"))
            .stake_of, faulty, Tier.PROVIDER))
        async with net.renter() as king, net.renter(other) as king2:
            # provider1 and provider2 are offered, provider3 never (the wait: a provider the load made late for a
            # heartbeat is out of the offers until its next one)
            offers = await offered(king, 2)
            assert [(o.gpu_model, o.gpus_total) for o in offers] == [("cpu", 2)]  # provider3 is not offered
            # Two jobs at once: one of them meets the refusing provider (whichever the scheduler tries first
            # there) and moves to provider1; both end and settle.
            # 8 s: long enough for the queen's challenge of the rented provider to come back on a loaded machine (a
            # 4 s job ended before it, now and then, and was verified for 0 s)
            a = await king.submit(job(workdir, name="a", entrypoint="python job.py 8"))
            b = await king2.submit(job(workdir, name="b", entrypoint="python job.py 8"))
            done = await asyncio.gather(events_until_done(king, a.job_id, 360), events_until_done(king2, b.job_id, 360))
            finals = [evs[-1].job for evs in done]
            # The wait: provider2 leaves, provider1 is busy with a long job; a job allowed to wait 4 s fails.
            await net.kill_provider("provider2")
            await wait_for(lambda: faulty not in {e.offer.provider for e in market.pool.values()
                                                  if e.offer.alive and e.offer.gpus}, 60, "provider2 out of the market")
            long = await king.submit(job(workdir, name="long", entrypoint="python job.py 40"))
            await wait_for(lambda: (j := k.jobs.book.get(long.job_id)) is not None and j.state.value == "running",
                           120, "the long job running")
            impatient = await king.submit(job(workdir, name="impatient", max_wait_s=4))
            waited = await events_until_done(king, impatient.job_id, 60)  # the follow ends with the job
            await king.cancel(long.job_id)
            long_done = await events_until_done(king, long.job_id, 360)
            # The bridge short of attesters: queen2, one of the two relay queens, stops. A job runs on provider1,
            # ends and waits for the bridge, and the follow says so; when queen2 is back, the rental settles for
            # the time its queen verified, as if the bridge had never been late.
            await net.stop_queen("queen2")
            late = await king.submit(job(workdir, name="late", entrypoint="python job.py 10"))
            seen, follower = follow(king, late.job_id)
            await wait_for(lambda: any(e.kind == "settling" and "waiting for the bridge (1 of 2 attestations)"
                                       in e.message for e in seen), 180, "the follow to say what the bridge lacks")
            assert seen[-1].state == "ended" and not follower.done(), [(e.kind, e.state, e.message) for e in seen]
            await net.start_queen("queen2")
            await asyncio.wait_for(follower, 300)
    finally:
        await net.close()

    for evs in done:
        assert "settled" in [e.kind for e in evs][-2:] and evs[-1].job.state == 5  # settled (outputs may be last)
        assert all(e.state for e in evs)
    moved = [f for f in finals if len(f.rentals) > 1]
    assert moved, "neither job met the refusing provider"
    for f in finals:
        for r in f.rentals[:-1]:  # rentals on the refusing provider: voided, 0 s verified, nothing paid, no slash
            assert r.provider == faulty and r.verified_seconds == 0 and not r.failed_verification
            assert int(r.provider_payment) == int(r.fee) == 0 and int(r.refund) == int(r.escrow)
        last = f.rentals[-1]
        assert last.provider == good and last.verified_seconds > 0 and f.exit_code == 0
        assert unstaked not in {r.provider for r in f.rentals}
    assert any("could not run the job" in e.message for evs in done for e in evs if e.kind == "rescheduled")
    final = waited[-1].job
    assert final.state == 6 and not final.rentals  # failed, never rented
    assert final.reason.startswith("not placed within 4 s (--max-wait): no provider with 1×CPU")
    long_final = long_done[-1].job
    late_final = seen[-1].job
    assert "settled" in [e.kind for e in seen][-2:] and late_final.state == 5 and len(late_final.rentals) == 1
    assert late_final.rentals[0].verified_seconds > 0  # the late bridge changed nothing that is owed
    rentals = [r for f in (*finals, long_final, late_final) for r in f.rentals]

    def paid(*jobs: Any) -> int:
        return sum(int(r.provider_payment) + int(r.fee) for f in jobs for r in f.rentals)

    for r in rentals:
        owed = int(r.price_per_gpu_hour) * r.verified_seconds // 3600
        assert int(r.provider_payment) + int(r.fee) == owed
        assert int(r.fee) == owed * FEE_BPS // 10_000
    net.rental().collect_fees()  # fees wait in GPURental until collected (the earlier ones were, before `before`)
    after = {w: net.balance(w) for w in before}
    assert before[renter] - after[renter] == paid(finals[0], long_final, late_final)  # the impatient job: nothing
    assert before[other.address] - after[other.address] == paid(finals[1])
    assert after[good] - before[good] == sum(int(r.provider_payment) for r in rentals if r.provider == good)
    assert after[faulty] == before[faulty] and after[unstaked] == before[unstaked]
    assert after[treasury] - before[treasury] == sum(int(r.fee) for r in rentals)
    assert int(StakingManager(client(eth.url, "eth", ACCOUNTS["deployer"]), deployed.eth.address("StakingManager"))
               .stake_of(faulty, Tier.PROVIDER)) == slashable  # a refusal is not fraud: nothing slashed
