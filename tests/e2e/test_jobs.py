"""A renter's job end to end through the SDK: king gateway → scheduler → rental on ETH → queen → provider's
Ray job → logs and progress back → verification on ETC → bridge → settlement, with exact balances."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account

from blendr.chain.anvil import AnvilProcess
from blendr.client import JobRequest, RenterError
from blendr.units import tokens
from tests.e2e.net import ACCOUNTS, FEE_BPS, Net, events_until_done, follow, network
from tests.integration.helpers import wait_for
from tests.rayhead import RayHead

pytestmark = [pytest.mark.usefixtures("ray_cluster", "snapshot"), pytest.mark.timeout(600)]

MINUTE = 60 / 3600  # hours: the devnet's shortest rental


def job(workdir: Path, **kw: Any) -> JobRequest:
    base: dict[str, Any] = {"entrypoint": "python job.py 6", "gpus": 1, "gpu_model": "cpu", "hours": MINUTE,
                            "max_price": "3", "workdir": workdir, "env": {"GREETING": "hi", "STEP_S": "1"}}
    base.update(kw)
    return JobRequest(**base)


def check_settlement(net: Net, final: Any, before: dict[str, int], renter: str) -> None:
    """Balances moved exactly as GPURental's formula says, once per rental."""
    paid_total = 0
    for r in final.rentals:
        assert r.state == "settled" and r.settled_tx.startswith("0x")
        paid = int(r.provider_payment) + int(r.fee)
        # a provider that failed verification (e.g. killed before a challenge of its rental) is paid nothing
        owed = 0 if r.failed_verification else int(r.price_per_gpu_hour) * final.spec.gpus * r.verified_seconds // 3600
        assert paid == owed
        assert int(r.fee) == paid * FEE_BPS // 10_000
        assert int(r.refund) == int(r.escrow) - paid
        paid_total += paid
        assert net.balance(r.provider) - before[r.provider] == int(r.provider_payment)
    assert before[renter] - net.balance(renter) == paid_total
    fees = sum(int(r.fee) for r in final.rentals)
    ids = [bytes(r.rental_id) for r in final.rentals]
    # a failed verification slashes the provider: StakingManager burns half of it and sends the rest to the treasury
    slashes = net.rental().contract.events.ProviderSlashed().get_logs(from_block=net.manifest.eth.deploy_block)
    slashed = sum(int(e["args"]["slashed"]) for e in slashes if int(e["args"]["rentalId"]).to_bytes(32, "big") in ids)
    assert slashed == 0 or any(r.failed_verification for r in final.rentals)
    net.rental().collect_fees()  # settlement adds the fee up in GPURental; collecting pays the treasury
    assert net.balance(net.manifest.accounts["treasury"]) - before["treasury"] == fees + slashed - slashed // 2
    # each rental settled once on chain
    settled = net.rental().contract.events.RentalSettled().get_logs(from_block=net.manifest.eth.deploy_block)
    assert sorted(int(e["args"]["rentalId"]).to_bytes(32, "big") for e in settled
                  if int(e["args"]["rentalId"]).to_bytes(32, "big") in ids) == sorted(ids)


def balances(net: Net, *who: str) -> dict[str, int]:
    out = {w: net.balance(w) for w in who}
    out["treasury"] = net.balance(net.manifest.accounts["treasury"])
    return out


async def test_a_job_runs_and_settles_with_exact_balances(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any,
                                                         jobs_ray: RayHead, tmp_path: Path, workdir: Path) -> None:
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path) as net:
        renter = ACCOUNTS["renter"].address
        providers = [ACCOUNTS[p].address for p in ("provider1", "provider2")]
        before = balances(net, renter, *providers)
        rep_before = {p: net.reputation().score(p) for p in providers}
        async with net.renter() as king:
            offers = await king.offers()
            assert [o.gpu_model for o in offers] == ["cpu"] and offers[0].gpus_total == 2
            submitted = await king.submit(job(workdir, name="e2e"))
            assert submitted.state == 1  # queued
            evs = await events_until_done(king, submitted.job_id)
            listed = await king.list()
            # what the job wrote under $BLENDR_OUTPUT_DIR comes back to the renter, byte for byte
            assert await king.get_output(submitted.job_id, tmp_path / "outputs") == 2
        assert (tmp_path / "outputs" / "result.bin").read_bytes() == bytes(range(256)) * 4099
        assert (tmp_path / "outputs" / "logs" / "steps.txt").read_text() == "6 steps\n"
        kinds = [e.kind for e in evs]
        for k in ("queued", "scheduled", "rental_created", "running", "log", "progress", "ended", "verified",
                  "settled"):
            assert k in kinds, (k, kinds)
        assert kinds.index("scheduled") < kinds.index("rental_created") < kinds.index("running") < kinds.index("ended")
        # outputs come after the end; settlement waits on the bridge, not on them (either may be last)
        assert kinds.index("ended") < kinds.index("verified") and "settled" in kinds[-2:]
        assert kinds.index("ended") < kinds.index("output_ready") and "output_failed" not in kinds
        assert [e.seq for e in evs] == list(range(1, len(evs) + 1))  # numbered without gaps
        logs = [e.message for e in evs if e.kind == "log"]
        assert "data: forty-two greeting: hi" in logs and "step 6/6" in logs
        assert [e.progress for e in evs if e.kind == "progress"][-1] == 1.0
        final = evs[-1].job
        assert final.state == 5 and final.exit_code == 0 and len(final.rentals) == 1  # settled
        assert final.output_state == "ready" and final.output_bytes > 256 * 4099
        r = final.rentals[0]
        assert r.provider in providers and 0 < r.verified_seconds <= 60
        check_settlement(net, final, before, renter)
        assert [j.job_id for j in listed] == [submitted.job_id]
        # reputation moved on ETC with the finalized task
        await wait_for(lambda: net.reputation().score(r.provider) != rep_before[r.provider], 30, "reputation")


async def test_two_renters_at_once_are_both_served(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any,
                                                   jobs_ray: RayHead, tmp_path: Path, workdir: Path) -> None:
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path) as net:
        other = Account.create()
        net.fund(other, tokens(100))
        a, b = ACCOUNTS["renter"].address, other.address
        providers = [ACCOUNTS[p].address for p in ("provider1", "provider2")]
        before = balances(net, a, b, *providers)
        async with net.renter() as ka, net.renter(other) as kb:
            ja, jb = await asyncio.gather(ka.submit(job(workdir)), kb.submit(job(workdir)))
            ea, eb = await asyncio.gather(events_until_done(ka, ja.job_id), events_until_done(kb, jb.job_id))
            with pytest.raises(RenterError) as err:  # one renter cannot see another's job
                await kb.get(ja.job_id)
            assert err.value.code == grpc.StatusCode.NOT_FOUND
        fa, fb = ea[-1].job, eb[-1].job
        assert fa.state == fb.state == 5
        # each on its own provider: no GPU promised twice
        assert {fa.rentals[0].provider, fb.rentals[0].provider} == set(providers)
        paid = {x.rentals[0].provider: int(x.rentals[0].provider_payment) for x in (fa, fb)}
        for p in providers:
            assert net.balance(p) - before[p] == paid[p]
        for who, f in ((a, fa), (b, fb)):
            assert before[who] - net.balance(who) == sum(int(r.provider_payment) + int(r.fee) for r in f.rentals)


async def test_cancel_mid_run_stops_the_job_and_refunds_the_rest(chains: tuple[AnvilProcess, AnvilProcess],
                                                                 deployed: Any, jobs_ray: RayHead, tmp_path: Path,
                                                                 workdir: Path) -> None:
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path,
                       providers=(("provider1", "queen1"),)) as net:
        renter = ACCOUNTS["renter"].address
        p1 = ACCOUNTS["provider1"].address
        before = balances(net, renter, p1)
        async with net.renter() as king:
            j = await king.submit(job(workdir, entrypoint="python job.py 100"))
            seen, follower = follow(king, j.job_id)
            await wait_for(lambda: any(e.kind == "log" and e.message == "step 2/100" for e in seen), 120, "step 2")
            cancelled = await king.cancel(j.job_id, "changed my mind")
            assert cancelled.state == 7  # cancelled
            again = await king.cancel(j.job_id)  # idempotent
            assert again.state == 7
            await asyncio.wait_for(follower, 240)
        kinds = [e.kind for e in seen]
        assert "cancelled" in kinds and kinds[-1] == "settled"
        logs = [e.message for e in seen if e.kind == "log"]
        assert "step 100/100" not in logs  # stopped
        final = seen[-1].job
        r = final.rentals[0]
        assert int(r.refund) > 0 and r.verified_seconds < 60
        check_settlement(net, final, before, renter)


async def test_a_provider_killed_mid_job_is_replaced_and_the_renter_pays_once_per_rental(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, jobs_ray: RayHead, tmp_path: Path,
        workdir: Path) -> None:
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path) as net:
        renter = ACCOUNTS["renter"].address
        names = {ACCOUNTS[p].address: p for p in ("provider1", "provider2")}
        before = balances(net, renter, *names)
        async with net.renter() as king:
            j = await king.submit(job(workdir, entrypoint="python job.py 12"))
            seen, follower = follow(king, j.job_id)
            await wait_for(lambda: any(e.kind == "log" and e.message == "step 1/12" for e in seen), 120, "step 1")
            first = seen[-1].job.provider
            await net.kill_provider(names[first])
            await asyncio.wait_for(follower, 360)
        kinds = [e.kind for e in seen]
        assert "rescheduled" in kinds, kinds
        final = seen[-1].job
        assert final.state == 5 and len(final.rentals) == 2
        assert final.rentals[0].provider == first and final.rentals[1].provider != first
        assert "step 12/12" in [e.message for e in seen if e.kind == "log"]
        check_settlement(net, final, before, renter)


async def test_the_king_restarted_mid_job_recovers_and_the_job_completes(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, jobs_ray: RayHead, tmp_path: Path,
        workdir: Path) -> None:
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path,
                       providers=(("provider1", "queen1"),)) as net:
        renter = ACCOUNTS["renter"].address
        p1 = ACCOUNTS["provider1"].address
        before = balances(net, renter, p1)
        assert net.king is not None
        port = net.king.port
        async with net.renter() as king:
            j = await king.submit(job(workdir, entrypoint="python job.py 10"))
            await wait_for(lambda: net.king is not None and net.king.jobs.store.get("jobs", j.job_id)["state"]
                           == "running", 120, "the job running")
            await net.king.stop()
            net.king = None
            await asyncio.sleep(1.0)
            await net.start_king(port)  # same home and store, same port: queens and renters reconnect
            evs = await events_until_done(king, j.job_id, timeout=360)
        final = evs[-1].job
        assert final.state == 5 and len(final.rentals) == 1  # recovered, not rescheduled
        assert "step 10/10" in [e.message for e in evs if e.kind == "log"]
        check_settlement(net, final, before, renter)


async def test_a_queen_killed_mid_job_moves_the_job_to_another_pool(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, jobs_ray: RayHead, tmp_path: Path,
        workdir: Path) -> None:
    """A provider's queen stops mid-job (with the provider): after the king's grace period the job moves to the
    other pool with the renter's next intent and completes there (queen 3 attests in the dead queen's place:
    2 of 3). The first rental is cancelled on chain; its ETC task is the dead queen's, so it settles once that
    queen is back and finalizes it, for its verified time. The renter pays each rental once."""
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path, queens=("queen1", "queen2", "queen3")) as net:
        renter = ACCOUNTS["renter"].address
        names = {ACCOUNTS[p].address: p for p in ("provider1", "provider2")}
        queen_of = {ACCOUNTS["provider1"].address: "queen1", ACCOUNTS["provider2"].address: "queen2"}
        before = balances(net, renter, *names)
        async with net.renter() as king:
            j = await king.submit(job(workdir, entrypoint="python job.py 12"))
            seen, follower = follow(king, j.job_id)
            await wait_for(lambda: any(e.kind == "log" and e.message == "step 1/12" for e in seen), 120, "step 1")
            first = seen[-1].job.provider
            await net.kill_provider(names[first])  # its queen's machine goes down with it
            await net.stop_queen(queen_of[first])

            def second_settled() -> bool:
                rs = seen[-1].job.rentals if seen else []
                return len(rs) == 2 and rs[1].state == "settled"

            await wait_for(second_settled, 300, "the job to finish and settle on the other pool")
            # the first rental's task on ETC is the dead queen's: it settles once that queen is back (its store
            # remembers the task) and finalizes it; until then the renter could reclaim it after the timeout
            assert seen[-1].job.rentals[0].state != "settled"
            await net.start_queen(queen_of[first])
            await asyncio.wait_for(follower, 300)
        kinds = [e.kind for e in seen]
        assert "rescheduled" in kinds, kinds
        final = seen[-1].job
        assert final.state == 5 and len(final.rentals) == 2
        assert final.rentals[1].provider != first
        assert "step 12/12" in [e.message for e in seen if e.kind == "log"], [(e.kind, e.message) for e in seen]
        check_settlement(net, final, before, renter)
