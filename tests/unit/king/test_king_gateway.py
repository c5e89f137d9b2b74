"""The renter gateway on a real grpc.aio server (port 0) over KingCore with a fake Ethereum: the renter SDK end
to end, and hostile calls answered with their exact status codes (nothing stored, nothing on chain)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account

from blendr.client import JobRequest, KingClient, RenterError
from blendr.config import Config, RewardsConfig
from blendr.identity import NodeIdentity
from blendr.payload import public_key_of
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.rewards import Settlement
from blendr.rpc.server import ServerHandle, start_server
from blendr.store import MemoryStore
from blendr.units import Wei
from king.auth import Sessions
from king.context import JobsConfig
from king.core import KingCore
from king.gateway import RenterGatewayServicer
from king.job import JobState
from king.lifecycle import QueenEvent
from king.pricing import Pricer, PricingParams, tokens
from king.rewards import RewardPublisher
from king.scheduler import ProviderOffer, Scheduler
from protos.blendr.v1 import renter_pb2 as rpb
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc
from tests.fakes.queens import FakeClock, FakeQueens
from tests.fakes.rental_chain import FakeRentalChain
from tests.fakes.rewards_chain import FakeRewardsChain

QUEEN = Account.create().address
KING = Account.create().address


class Gateway:
    def __init__(self, core: KingCore, server: ServerHandle, chain: FakeRentalChain, queens: FakeQueens) -> None:
        self.core, self.server, self.chain, self.queens = core, server, chain, queens

    def client(self, account: Any) -> KingClient:
        return KingClient(f"127.0.0.1:{self.server.port}", account, insecure=True, timeout_s=10)


@pytest.fixture
async def gateway(make_config: Callable[..., Config]) -> AsyncIterator[Gateway]:
    clock = FakeClock(time.time())  # the SDK signs deadlines on the wall clock
    store = MemoryStore()
    chain = FakeRentalChain(now=clock.time)
    queens = FakeQueens()
    queens.connect(QUEEN)
    core = KingCore(store, clock, Scheduler(Pricer(PricingParams(surge=0.0)), known_models=FINGERPRINTS), chain,
                    queens, JobsConfig(max_open_jobs_per_renter=3))
    await core.prepare()
    providers = [NodeIdentity.from_key(os.urandom(32)) for _ in range(2)]
    core.on_snapshot(QUEEN, 1, [(ProviderOffer(p.address, QUEEN, "cpu", 2, 2**30, 1.0, tokens("0.4"), 5000, 1.0),
                                 public_key_of(bytes(p.account().key)), 0) for p in providers])
    sessions = Sessions(store, clock, king=KING, chain_id=chain.chain_id)
    cfg = make_config(**{"rpc__tls": False})
    server = await start_server(cfg, "127.0.0.1:0", [
        lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(RenterGatewayServicer(core, sessions), s)],
        service_names=("blendr.v1.RenterGateway",))
    try:
        yield Gateway(core, server, chain, queens)
    finally:
        await server.stop(0)


def request(tmp_path: Path, n: int = 0) -> JobRequest:
    work = tmp_path / "proj"
    work.mkdir(exist_ok=True)
    (work / "job.py").write_text("print('hi')\n")
    return JobRequest(entrypoint="python job.py", gpus=1, hours=1, max_price="2", gpu_model="cpu", workdir=work,
                      name=f"t{n}", request_id=f"gateway-test-{n:08d}")


async def test_a_renter_submits_watches_and_cancels_through_the_sdk(gateway: Gateway, tmp_path: Path) -> None:
    renter = Account.create()
    gateway.chain.fund(renter.address, tokens("100"))
    async with gateway.client(renter) as king:
        offers = await king.offers()
        assert [(o.gpu_model, o.gpus_total) for o in offers] == [("cpu", 4)]
        sub = await king.prepare(request(tmp_path))
        job = await king.send(sub)
        assert job.state == rpb.JOB_STATE_QUEUED and job.renter == renter.address
        again = await king.send(sub)  # a retry of the same request: the same job
        assert again.job_id == job.job_id
        with pytest.raises(RenterError) as reused:  # the same request id for another job
            await king.submit(request(tmp_path))
        assert reused.value.code == grpc.StatusCode.ALREADY_EXISTS
        await gateway.core.placer.run_pass()
        pb = await king.get(job.job_id)
        assert pb.state == rpb.JOB_STATE_SCHEDULED and len(pb.rentals) == 1 and pb.provider, pb.reason
        a = gateway.queens.last(job.job_id)
        gateway.core.on_queen_event(QUEEN, QueenEvent(job.job_id, a.attempt, 1, "running"))
        gateway.core.on_queen_event(QUEEN, QueenEvent(job.job_id, a.attempt, 2, "log", "hello from the job"))
        kinds = []
        async for ev in king.watch(job.job_id):
            kinds.append(ev.kind)
            if ev.kind == "log":
                break
        assert kinds == ["queued", "scheduled", "rental_created", "running", "log"]
        cancelled = await king.cancel(job.job_id)
        assert cancelled.state == rpb.JOB_STATE_CANCELLED
        await gateway.core.drain()
        assert gateway.queens.stops and gateway.chain.escrow_ok()
        listed = await king.list()
        assert [j.job_id for j in listed] == [job.job_id]
        wallet = await king.wallet()
        assert int(wallet.in_escrow) == int(pb.rentals[0].escrow)  # cancelled, not settled yet


async def test_the_wallet_lists_the_epoch_rewards_published_for_the_renter(gateway: Gateway) -> None:
    renter, provider, other = Account.create(), Account.create(), Account.create()
    gateway.chain.fund(renter.address, tokens("100"))

    def paid(rid: int, who: str, spent: int) -> Settlement:
        return Settlement(rid, who, provider.address, 1, 3600, Wei(spent))

    rewards = FakeRewardsChain(last=11, inputs={10: [paid(1, renter.address, 100)],
                                                11: [paid(2, renter.address, 300), paid(3, other.address, 100)]})
    done = RewardPublisher(rewards, gateway.core.store, RewardsConfig(provider_pool="0")).step()
    tx = {d.epoch: d.tx for d in done}
    async with gateway.client(renter) as king:
        await king.sign_in()
        wallet = await king.wallet()
        assert [(r.epoch, r.kind, r.amount, r.publish_tx) for r in wallet.rewards] == [
            (11, "renter", str(tokens("37.5")), tx[11]), (10, "renter", str(tokens(50)), tx[10])]
    async with gateway.client(provider) as king:  # nothing for it: the provider pool was 0
        await king.sign_in()
        assert list((await king.wallet()).rewards) == []


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_hostile_calls_get_exact_codes_and_change_nothing(gateway: Gateway, tmp_path: Path) -> None:
    renter = Account.create()
    gateway.chain.fund(renter.address, tokens("100"))
    async with gateway.client(renter) as king:
        await king.sign_in()
        stub = rpb_grpc.RenterGatewayStub(king._channels[0])
        auth = (("authorization", f"Bearer {king._token}"),)
        assert await _code(stub.GetJob(rpb.GetJobRequest(job_id="j-0\x00"), metadata=auth)) == \
            grpc.StatusCode.NOT_FOUND
        assert await _code(stub.CancelJob(rpb.CancelJobRequest(job_id="x" * 100_000), metadata=auth)) == \
            grpc.StatusCode.NOT_FOUND
        assert await _code(stub.GetJob(rpb.GetJobRequest(job_id="j-1"))) == grpc.StatusCode.UNAUTHENTICATED
        sub = await king.prepare(request(tmp_path, 1))
        flood = rpb.SubmitJobRequest()
        flood.CopyFrom(sub)
        for _ in range(20):
            flood.payload.keys.add(provider=Account.create().address, sealed_key=os.urandom(7000))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitJob(flood, metadata=auth)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 16" in (err.value.details() or "")
        big = rpb.SubmitJobRequest()
        big.CopyFrom(sub)
        big.request_id = "r" * 1_000_000
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SubmitJob(big, metadata=auth)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and len(err.value.details() or "") < 1100
        for n in range(1, 4):
            await king.submit(request(tmp_path, n))
        with pytest.raises(RenterError) as limit:
            await king.submit(request(tmp_path, 9))
        assert limit.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert gateway.core.scheduler.queued() == 3 and not gateway.chain.rentals
    assert gateway.core.list_jobs(renter.address, {JobState.QUEUED}, 50)
