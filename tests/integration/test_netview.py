"""The King's network view with real parts: devnet chains, a king, queens and a provider on local Ray (the relay
network of tests/integration/relay_net.py). The provider passes challenges and the page's NetworkView shows them,
a rental's challenges get the ETC batch that recorded them, and a hostile queen's reports change nothing of
another queen's."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from blendr.chain.anvil import AnvilProcess
from blendr.identity import NodeIdentity
from blendr.payload import public_key_of
from blendr.rpc.registration import sign_queen_registration
from blendr.rpc.server import open_channel
from blendrctl.cli import main
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from protos.blendr.v1 import network_pb2 as npb
from protos.blendr.v1 import network_pb2_grpc as npb_grpc
from queen.verification import NS_BATCHES
from tests.integration.helpers import wait_for
from tests.integration.relay_net import ACCOUNTS, Net, rpc

pytestmark = pytest.mark.usefixtures("ray_cluster")

P1 = ACCOUNTS["provider1"].address


@pytest.fixture
def net(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, tmp_path: Path) -> Iterator[Net]:
    eth, etc = chains
    snaps = [rpc(eth.url, "evm_snapshot", []), rpc(etc.url, "evm_snapshot", [])]
    yield Net(eth.url, etc.url, deployed, tmp_path)
    rpc(eth.url, "evm_revert", [snaps[0]])
    rpc(etc.url, "evm_revert", [snaps[1]])


async def _call(net: Net, port: int, method: str, request: Any) -> Any:
    async with open_channel(net.king_config(), f"127.0.0.1:{port}") as ch:
        return await getattr(npb_grpc.NetworkViewStub(ch), method)(request, timeout=10)


async def _poll(net: Net, port: int, method: str, request: Any, ok: Any, what: str, timeout: float = 60) -> Any:
    """Calls until ``ok(answer)``; returns that answer."""
    end = time.monotonic() + timeout
    while True:
        answer = await _call(net, port, method, request)
        if ok(answer):
            return answer
        assert time.monotonic() < end, f"timed out waiting for {what}: last answer {answer}"
        await asyncio.sleep(0.3)


async def test_a_provider_passing_challenges_shows_on_the_network_view_with_its_etc_batch(net: Net) -> None:
    async with net.nodes(("queen1", "queen2")) as nodes:
        port, q1 = nodes.king.port, ACCOUNTS["queen1"].address
        # idle challenges: verdicts without a rental
        got = await _poll(net, port, "ListChallenges", npb.ListChallengesRequest(provider=P1),
                          lambda a: any(c.verdict == "passed" for c in a.challenges), "a passed idle challenge")
        c = got.challenges[0]
        assert (c.provider, c.queen) == (P1, q1) and c.decided_unix >= c.issued_unix > 0 and c.challenge_id
        provs = await _poll(net, port, "ListNetworkProviders", npb.ListNetworkProvidersRequest(),
                            lambda a: any(p.address == P1 and p.challenges_passed > 0 for p in a.providers),
                            "the provider with passed challenges")
        [p] = [p for p in provs.providers if p.address == P1]
        # (where this machine cannot sandbox renters' jobs, its queen reports it not alive: offered to nobody)
        assert p.queen == q1 and p.state == ("available" if p.alive else "offline") and p.gpus == 1
        assert len(p.pass_rate) == 24
        assert p.pass_rate[-1].passed + p.pass_rate[-2].passed >= 1 and p.challenges_failed == 0
        pools = await _call(net, port, "ListPools", npb.ListPoolsRequest())
        assert {x.queen: x.providers for x in pools.pools} == {q1: 1, ACCOUNTS["queen2"].address: 0}
        info = await _call(net, port, "GetNetworkInfo", npb.NetworkInfoRequest())
        assert info.leader and info.king_address == ACCOUNTS["king"].address and info.eth_chain_id == 31337
        assert info.etc_chain_id == 63 and info.rental_contract == net.manifest.eth.address("GPURental")
        assert info.token_name == "BlendrChain GPU Token" and info.token_symbol == "GPUTOKEN"
        # the sampler took one sample at the start (before any pool: nothing); one more now shows what ListOffers does
        assert nodes.king.role is not None
        await asyncio.sleep(0.01)
        nodes.king.role.network.sample()
        hist = await _call(net, port, "GetPriceHistory", npb.PriceHistoryRequest())
        offers = nodes.king.jobs.offers()
        assert hist.interval_s == 60.0
        assert [(x.gpu_model, int(x.quote_per_gpu_hour), x.gpus_total) for x in hist.points] == [
            (o.gpu_model, o.quote_per_gpu_hour, o.gpus_total) for o in offers]

        # a rental: its challenges carry its id, then the ETC batch that recorded them
        rid = net.create_rental()
        await nodes.task_opened(rid)
        verifier = nodes.queens["queen1"].verifier
        await wait_for(lambda: rid in verifier.tasks and verifier.tasks[rid].landed is not None, 60,
                       "a batch of the rental landed")
        rid_b = rid.to_bytes(32, "big")
        got = await _poll(net, port, "ListChallenges", npb.ListChallengesRequest(provider=P1, limit=500),
                          lambda a: any(c.rental_id == rid_b and c.etc_batch_id for c in a.challenges),
                          "a rental challenge with its ETC batch")
        batched = [c for c in got.challenges if c.etc_batch_id]
        landed = {d["batch_id"]: d["tx"] for _, d in verifier.store.scan(NS_BATCHES, "")
                  if d["state"] == "landed"}
        assert batched and all(c.etc_batch_id in landed and c.etc_tx == landed[c.etc_batch_id] for c in batched)
        assert all(c.etc_tx.startswith("0x") and c.rental_id == rid_b for c in batched)
        records = {r["challenge_id"] for r in verifier.records(rid)}
        assert {c.challenge_id for c in batched} <= records


async def _hostile_session(net: Net, port: int, inbox: asyncio.Queue[kpb.QueenToKing | None]) -> AsyncIterator[Any]:
    async def messages() -> AsyncIterator[kpb.QueenToKing]:
        while (m := await inbox.get()) is not None:
            yield m

    async with open_channel(net.king_config(), f"127.0.0.1:{port}") as ch:
        async for msg in kpb_grpc.KingControlStub(ch).QueenSession(messages()):
            yield msg


async def test_a_hostile_queens_reports_are_refused_and_leave_other_queens_alone(
        net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    async with net.nodes(("queen1",)) as nodes:
        port, king = nodes.king.port, ACCOUNTS["king"].address
        await _poll(net, port, "ListNetworkProviders", npb.ListNetworkProvidersRequest(),
                    lambda a: any(p.address == P1 and p.challenges_passed > 0 for p in a.providers), "provider1")
        evil = ACCOUNTS["queen3"]  # a staked queen that turns hostile
        mine = NodeIdentity.from_key(os.urandom(32))  # a provider admitted to it
        nonce = os.urandom(32)
        ts = int(time.time())
        inbox: asyncio.Queue[kpb.QueenToKing | None] = asyncio.Queue()
        inbox.put_nowait(kpb.QueenToKing(registration=kpb.QueenRegistration(
            queen_address=evil.address, king_address=king, timestamp=ts, endpoint="evil:1",
            signature=sign_queen_registration(evil, king, ts, "evil:1"))))
        inbox.put_nowait(kpb.QueenToKing(snapshot=kpb.PoolSnapshotMsg(seq=1, providers=[kpb.PoolProvider(
            address=mine.address, gpu_model="cpu", gpus=1, ask_per_gpu_hour="1", uptime=1.0, alive=True,
            admission_nonce=nonce, admission_signature=mine.sign_admission(evil.address, nonce),
            public_key=public_key_of(bytes(mine.account().key)))])))
        session = _hostile_session(net, port, inbox)
        first = await anext(session)
        assert first.WhichOneof("body") == "registered"
        before = await _call(net, port, "ListChallenges", npb.ListChallengesRequest(provider=P1, limit=500))
        now = time.time()

        def v(cid: str, provider: str, **kw: Any) -> kpb.ChallengeVerdictMsg:
            fields: dict[str, Any] = {"verdict": "failed", "reason": "forged", "issued_unix": now - 1,
                                      "decided_unix": now}
            fields.update(kw)
            return kpb.ChallengeVerdictMsg(challenge_id=cid, provider=provider, **fields)

        bad = [v("e-1", P1), v("e-2", mine.address, decided_unix=float("inf")),
               v("e-3", mine.address, decided_unix=now + 86400), v("e-4", mine.address, verdict="maybe"),
               v("e-5", mine.address, rental_id=b"\x01" * 7), v("e" * 300, mine.address)]
        inbox.put_nowait(kpb.QueenToKing(verdicts=kpb.ChallengeVerdicts(verdicts=bad)))
        inbox.put_nowait(kpb.QueenToKing(verdicts=kpb.ChallengeVerdicts(
            verdicts=[v(f"flood-{i}", mine.address) for i in range(501)])))
        inbox.put_nowait(kpb.QueenToKing(batch_landed=kpb.BatchLanded(
            batch_id="0x" + "66" * 32, tx="0x" + "77" * 32,
            rentals=[kpb.BatchedRental(rental_id=b"\x01" * 32, challenge_ids=[c.challenge_id
                                                                            for c in before.challenges])])))
        inbox.put_nowait(kpb.QueenToKing(verdicts=kpb.ChallengeVerdicts(
            verdicts=[v("sentinel", mine.address, verdict="passed", reason="")])))
        got = await _poll(net, port, "ListChallenges", npb.ListChallengesRequest(provider=mine.address),
                          lambda a: len(a.challenges) > 0, "the hostile queen's one good verdict")
        assert [c.challenge_id for c in got.challenges] == ["sentinel"]
        assert got.challenges[0].queen == evil.address
        after = await _call(net, port, "ListChallenges", npb.ListChallengesRequest(provider=P1, limit=500))
        assert all(c.queen == ACCOUNTS["queen1"].address and not c.etc_batch_id for c in after.challenges)
        assert {c.challenge_id for c in before.challenges} <= {c.challenge_id for c in after.challenges}
        provs = await _call(net, port, "ListNetworkProviders", npb.ListNetworkProvidersRequest())
        [p1] = [p for p in provs.providers if p.address == P1]
        assert p1.challenges_failed == 0 and p1.queen == ACCOUNTS["queen1"].address
        # the CLI reads the same view (while the hostile queen is connected: its pool is shown)
        capsys.readouterr()
        cli = ["--home", str(net.tmp / "cli"), "--king", f"127.0.0.1:{port}", "--ca-file",
               str(net.tmp / "king" / "tls" / "ca.crt")]
        assert await asyncio.to_thread(main, ["network", "providers", *cli, "--json"]) == 0
        shown = {p["address"]: p for p in json.loads(capsys.readouterr().out)}
        assert shown[P1]["challenges_passed"] > 0 and shown[mine.address]["challenges_passed"] == 1
        assert await asyncio.to_thread(main, ["network", "challenges", *cli, "--provider", mine.address]) == 0
        out = capsys.readouterr().out
        assert "VERDICT" in out and "passed" in out and len(out.strip().splitlines()) == 2
        assert await asyncio.to_thread(main, ["network", "challenges", *cli, "--limit", "501"]) == 1
        assert "INVALID_ARGUMENT" in capsys.readouterr().err
        inbox.put_nowait(None)
        await session.aclose()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _call(net, port, "ListChallenges", npb.ListChallengesRequest(limit=501))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
