"""NetworkView on a real grpc.aio server (port 0) over a KingCore (fake Ethereum) and a real QueenHub: a queen's
session reports verdicts and a landed batch, the page reads them, and hostile reports and bad requests are
answered with their exact outcomes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from blendr.config import Config
from blendr.identity import NodeIdentity
from blendr.payload import public_key_of
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.rpc.registration import sign_queen_registration
from blendr.rpc.server import open_channel, start_server
from blendr.store import MemoryStore
from king.context import JobsConfig
from king.core import KingCore
from king.netview import NetworkDesk, NetworkInfo
from king.network import NetworkViewServicer
from king.pricing import Pricer, PricingParams
from king.queens import QueenHub
from king.scheduler import Scheduler
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import network_pb2 as npb
from protos.blendr.v1 import network_pb2_grpc as npb_grpc
from tests.fakes.queens import FakeClock, FakeQueens
from tests.fakes.rental_chain import FakeRentalChain

KING = Account.create().address
INFO = NetworkInfo("devnet", KING, 31337, 63, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, "",
                   "0x" + "44" * 20, "BlendrChain GPU Token", "GPUTOKEN", 8 * 2**20, "", "https://etc/tx/{tx}", False)


@dataclass
class Queen:
    account: LocalAccount
    inbox: asyncio.Queue[kpb.QueenToKing | None]
    providers: list[NodeIdentity]

    def send(self, **body: Any) -> None:
        self.inbox.put_nowait(kpb.QueenToKing(**body))

    def entry(self, ident: NodeIdentity) -> kpb.PoolProvider:
        nonce = os.urandom(32)
        return kpb.PoolProvider(address=ident.address, gpu_model="cpu", gpus=1, ask_per_gpu_hour="5", uptime=1.0,
                                alive=True, admission_nonce=nonce,
                                admission_signature=ident.sign_admission(self.account.address, nonce),
                                public_key=public_key_of(bytes(ident.account().key)), sandbox="bubblewrap")


@dataclass
class View:
    clock: FakeClock
    hub: QueenHub
    core: KingCore
    desk: NetworkDesk
    stub: Any
    tasks: list[asyncio.Task[None]]

    async def queen(self, n_providers: int = 2) -> Queen:
        acct = Account.create()
        q = Queen(acct, asyncio.Queue(), [NodeIdentity.from_key(os.urandom(32)) for _ in range(n_providers)])
        ts = int(self.clock.time())
        q.send(registration=kpb.QueenRegistration(
            queen_address=acct.address, king_address=KING, timestamp=ts, endpoint="q:7470",
            signature=sign_queen_registration(acct, KING, ts, "q:7470")))

        async def messages() -> AsyncIterator[kpb.QueenToKing]:
            while (m := await q.inbox.get()) is not None:
                yield m

        async def serve() -> None:
            async for _ in self.hub.session(messages(), self.core):
                pass

        self.tasks.append(asyncio.create_task(serve()))
        q.send(snapshot=kpb.PoolSnapshotMsg(seq=1, providers=[q.entry(p) for p in q.providers]))
        await until(lambda: len(self.core.market.members(acct.address)) == n_providers)
        return q


async def until(cond: Callable[[], object], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def view(make_config: Callable[..., Config]) -> AsyncIterator[View]:
    clock = FakeClock(time.time())
    core = KingCore(MemoryStore(), clock, Scheduler(Pricer(PricingParams(surge=0.0)), known_models=FINGERPRINTS),
                    FakeRentalChain(now=clock.time), FakeQueens(), JobsConfig())
    await core.prepare()
    hub = QueenHub(KING, clock, stake_check=lambda q: (True, "staked"))
    desk = NetworkDesk(clock, core.market, hub, core.offers, price_interval_s=60.0, price_retention_s=3600.0)
    hub.network = desk
    cfg = make_config(**{"rpc__tls": False})
    server = await start_server(cfg, "127.0.0.1:0", [
        lambda s: npb_grpc.add_NetworkViewServicer_to_server(NetworkViewServicer(INFO, lambda: True, desk), s)],
        service_names=("blendr.v1.NetworkView",))
    tasks: list[asyncio.Task[None]] = []
    try:
        async with open_channel(cfg, f"127.0.0.1:{server.port}") as ch:
            yield View(clock, hub, core, desk, npb_grpc.NetworkViewStub(ch), tasks)
    finally:
        for s in list(hub.sessions.values()):
            s.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop(0)


def vmsg(cid: str, provider: str, now: float, verdict: str = "passed", **kw: Any) -> kpb.ChallengeVerdictMsg:
    return kpb.ChallengeVerdictMsg(challenge_id=cid, provider=provider, verdict=verdict, issued_unix=now - 2,
                                   decided_unix=now, **kw)


async def test_verdicts_and_a_landed_batch_from_a_queen_reach_the_page(view: View) -> None:
    q = await view.queen()
    p1, p2 = (p.address for p in q.providers)
    now = view.clock.time()
    rid = b"\x05" * 32
    q.send(verdicts=kpb.ChallengeVerdicts(verdicts=[
        vmsg("c-1", p1, now, rental_id=rid), vmsg("c-2", p1, now + 1, "failed", reason="late"),
        vmsg("c-3", p2, now + 2)]))
    await until(lambda: len(view.desk.verdicts) == 3)
    q.send(batch_landed=kpb.BatchLanded(batch_id="0x" + "ab" * 32, tx="0x" + "cd" * 32,
                                        rentals=[kpb.BatchedRental(rental_id=rid, challenge_ids=["c-1"])]))
    await until(lambda: any(r.etc_batch_id for r in view.desk.verdicts.recent()))

    got = (await view.stub.ListChallenges(npb.ListChallengesRequest(), timeout=5)).challenges
    assert [c.challenge_id for c in got] == ["c-3", "c-2", "c-1"]
    c1 = got[2]
    assert (c1.queen, c1.provider, c1.verdict, c1.rental_id) == (q.account.address, p1, "passed", rid)
    assert (c1.etc_batch_id, c1.etc_tx) == ("0x" + "ab" * 32, "0x" + "cd" * 32)
    assert got[1].reason == "late" and got[1].etc_batch_id == ""
    only = (await view.stub.ListChallenges(npb.ListChallengesRequest(provider=p2.lower(), limit=1), timeout=5))
    assert [c.challenge_id for c in only.challenges] == ["c-3"]

    provs = {v.address: v for v in (await view.stub.ListNetworkProviders(
        npb.ListNetworkProvidersRequest(), timeout=5)).providers}
    assert (provs[p1].challenges_passed, provs[p1].challenges_failed) == (1, 1)
    assert provs[p1].state == "available" and provs[p1].sandbox == "bubblewrap" and len(provs[p1].pass_rate) == 24
    assert provs[p1].pass_rate[-1].passed == 1 and provs[p1].queen == q.account.address

    pools = (await view.stub.ListPools(npb.ListPoolsRequest(), timeout=5)).pools
    assert [(p.queen, p.endpoint, p.providers, p.providers_alive, p.gpus_total) for p in pools] == [
        (q.account.address, "q:7470", 2, 2, 2)]
    assert pools[0].last_snapshot_unix >= pools[0].connected_since_unix > 0

    info = await view.stub.GetNetworkInfo(npb.NetworkInfoRequest(), timeout=5)
    assert info.leader and info.king_address == KING and info.token_symbol == "GPUTOKEN"
    assert info.etc_explorer_tx_url == "https://etc/tx/{tx}"


async def test_hostile_reports_are_refused_without_touching_another_queen(view: View) -> None:
    honest, hostile = await view.queen(1), await view.queen(1)
    mine, theirs = honest.providers[0].address, hostile.providers[0].address
    now = view.clock.time()
    honest.send(verdicts=kpb.ChallengeVerdicts(verdicts=[vmsg("h-1", mine, now)]))
    await until(lambda: len(view.desk.verdicts) == 1)
    # the hostile queen: another queen's provider, absurd numbers, too many, a batch naming the honest queen's
    # challenge, then one good verdict of its own (the session stays up)
    hostile.send(verdicts=kpb.ChallengeVerdicts(verdicts=[
        vmsg("x-1", mine, now), vmsg("x-2", theirs, float("nan")), vmsg("x-3", theirs, now + 10 * 86400),
        vmsg("x-4", theirs, now, "great"), vmsg("x-5", theirs, now, reason="r" * 10_000),
        kpb.ChallengeVerdictMsg(challenge_id="x-6", provider=theirs, verdict="passed", issued_unix=now - 5 * 86400,
                                decided_unix=now)]))
    hostile.send(verdicts=kpb.ChallengeVerdicts(verdicts=[vmsg(f"f-{i}", theirs, now) for i in range(501)]))
    hostile.send(batch_landed=kpb.BatchLanded(batch_id="0x" + "ee" * 32, tx="",
                                              rentals=[kpb.BatchedRental(rental_id=b"\x01" * 32,
                                                                         challenge_ids=["h-1"])]))
    hostile.send(batch_landed=kpb.BatchLanded(batch_id="nope"))
    hostile.send(verdicts=kpb.ChallengeVerdicts(verdicts=[vmsg("h-1", theirs, now), vmsg("h-1", theirs, now)]))
    await until(lambda: len(view.desk.verdicts) == 2)
    await asyncio.sleep(0.05)  # anything else queued would have been applied by now
    recent = view.desk.verdicts.recent()
    assert {(r.queen, r.challenge_id, r.provider) for r in recent} == {
        (honest.account.address, "h-1", mine), (hostile.account.address, "h-1", theirs)}
    assert all(r.etc_batch_id == "" for r in recent)
    assert view.desk.verdicts.totals(mine) == (1, 0) and view.desk.verdicts.totals(theirs) == (1, 0)
    assert hostile.account.address in view.hub.sessions  # refused reports do not end the session


@pytest.mark.parametrize(("call", "req", "match"), [
    ("ListChallenges", npb.ListChallengesRequest(limit=501), "limit 501 is above 500"),
    ("ListChallenges", npb.ListChallengesRequest(provider="bob"), "provider 'bob' is not an address"),
    ("ListNetworkProviders", npb.ListNetworkProvidersRequest(queen="0x12"), "queen '0x12' is not an address"),
    ("ListNetworkProviders", npb.ListNetworkProvidersRequest(gpu_model="m" * 65), "gpu_model"),
    ("GetPriceHistory", npb.PriceHistoryRequest(window_s=3601), "keeps 3600 s of prices"),
])
async def test_bad_requests_are_invalid_arguments(view: View, call: str, req: Any, match: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(view.stub, call)(req, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and match in (err.value.details() or "")


async def test_price_history_and_the_empty_views(view: View) -> None:
    assert (await view.stub.ListChallenges(npb.ListChallengesRequest(limit=500), timeout=5)).challenges == []
    await view.queen(1)
    view.desk.sample()
    view.clock.advance(60)
    view.desk.sample()
    hist = await view.stub.GetPriceHistory(npb.PriceHistoryRequest(gpu_model="cpu"), timeout=5)
    assert hist.interval_s == 60.0 and [p.gpu_model for p in hist.points] == ["cpu", "cpu"]
    assert hist.points[0].ts_unix < hist.points[1].ts_unix and int(hist.points[0].quote_per_gpu_hour) > 0
    assert int(hist.points[0].min_ask_per_gpu_hour) == 5
    assert (await view.stub.GetPriceHistory(npb.PriceHistoryRequest(gpu_model="h100"), timeout=5)).points == []


async def test_a_king_that_does_not_lead_answers_only_the_network_info(make_config: Callable[..., Config]) -> None:
    cfg = make_config(**{"rpc__tls": False})
    server = await start_server(cfg, "127.0.0.1:0", [
        lambda s: npb_grpc.add_NetworkViewServicer_to_server(NetworkViewServicer(INFO, lambda: False), s)],
        service_names=("blendr.v1.NetworkView",))
    try:
        async with open_channel(cfg, f"127.0.0.1:{server.port}") as ch:
            stub = npb_grpc.NetworkViewStub(ch)
            info = await stub.GetNetworkInfo(npb.NetworkInfoRequest(), timeout=5)
            assert not info.leader and info.network == "devnet"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListPools(npb.ListPoolsRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await server.stop(0)
