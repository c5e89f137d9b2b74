"""Verification results to Ethereum Classic and back, with real chains, a real king, queens and providers.

A rental is created on chain (as the gateway will), its OPEN message is attested 2-of-3 by the queens and
delivered by the king, the queen challenges the rented provider at the rental rate, lands batches on ETC,
finalizes, and the RESULT message comes back over the bridge and settles the rental on ETH.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account

from blendr.chain.anvil import AnvilProcess
from blendr.chain.bridge import BridgeMessage, attest
from blendr.chain.contracts import BridgeInbox, BridgeOutbox, RentalStatus, StakingManager, Tier
from blendr.chain.relay import message_to_proto
from blendr.config import load_config
from blendr.errors import ComputeError
from blendr.rpc.server import open_channel
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from provider.compute import RayRuntime
from provider.gpus import cpu_device
from queen.verification import NS_BATCHES, record_leaf
from tests.flaky_proxy import FlakyProxy
from tests.integration.helpers import PINS, wait_for
from tests.integration.relay_net import ACCOUNTS, DURATION, PRICE, Net, local_manifest, rpc

pytestmark = pytest.mark.usefixtures("ray_cluster")

FEE_BPS = 250
SLASH_BPS = 1_000
MIN_STAKE_PER_GPU = 1_000 * 10**18


@pytest.fixture
def net(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, tmp_path: Path) -> Iterator[Net]:
    eth, etc = chains
    snaps = [rpc(eth.url, "evm_snapshot", []), rpc(etc.url, "evm_snapshot", [])]
    yield Net(eth.url, etc.url, deployed, tmp_path)
    rpc(eth.url, "evm_revert", [snaps[0]])
    rpc(etc.url, "evm_revert", [snaps[1]])


def expected(issued: int, passed: int, failed: int, *, duration: int = DURATION, gpus: int = 1) -> dict[str, Any]:
    """The settlement formula (WorkVerification verdict + GPURental settle) for cumulative counts."""
    verified = duration * passed // issued if issued else 0
    failed_verdict = failed * 10_000 > issued * 1_000
    escrow = PRICE * gpus * duration // 3600
    paid = 0 if failed_verdict else min(escrow, PRICE * gpus * verified // 3600)
    fee = paid * FEE_BPS // 10_000
    slash = MIN_STAKE_PER_GPU * gpus * SLASH_BPS // 10_000 if failed_verdict else 0
    return {"verified": verified, "failed": failed_verdict, "paid": paid, "fee": fee, "refund": escrow - paid,
            "escrow": escrow, "slash": slash}


async def _run_rental_to_the_end(net: Net, nodes: Any, rid: int, *, challenges: int = 3) -> Any:
    """Waits for the task on ETC and some rental challenges, then moves time past the rental's end."""
    await nodes.task_opened(rid)
    q1 = nodes.queens["queen1"]
    await wait_for(lambda: rid in q1.verifier.tasks and q1.verifier.tasks[rid].issued >= challenges, 60,
                   f"{challenges} rental challenges counted")
    net.warp(DURATION + 1)
    return q1


async def test_a_rental_is_verified_on_etc_attested_2_of_3_and_settled_exactly(net: Net) -> None:
    net.rental("renter").collect_fees()  # fees of earlier tests' rentals: paid out before `before`
    before = net.balances()
    rep_before = net.reputation().score(ACCOUNTS["provider1"].address)
    async with net.nodes() as nodes:
        rid = net.create_rental()
        q1 = await _run_rental_to_the_end(net, nodes, rid)
        rental = await nodes.settled(rid)
        task = q1.verifier.tasks[rid]
        await wait_for(lambda: q1.verifier.tasks[rid].state == "finalized", 30, "the queen to see its finalization")
        # every challenge inside the rental window is counted; the provider passed them all
        assert task.issued >= 3 and task.passed == task.issued and task.failed == task.missed == 0
        exp = expected(task.issued, task.passed, task.failed)
        net.rental("renter").collect_fees()  # the fee waits in GPURental until someone collects it
        after = net.balances()
        assert after["provider1"] - before["provider1"] == exp["paid"] - exp["fee"]
        assert after["deployer"] - before["deployer"] == exp["fee"]  # the devnet treasury
        assert before["renter"] - after["renter"] == exp["paid"]
        assert rental.status == RentalStatus.SETTLED
        # the king followed the settlement and serves it
        await wait_for(lambda: _settled_doc(nodes.king, rid), 30, "the king to follow the settlement")
        async with open_channel(net.king_config(), f"127.0.0.1:{nodes.king.port}") as ch:
            s = await kpb_grpc.KingControlStub(ch).GetSettlement(kpb.GetSettlementRequest(rental_id=rid.to_bytes(32, "big")))
        assert s.state == kpb.RENTAL_STATE_SETTLED and s.verified_seconds == exp["verified"]
        assert int(s.provider_payment) == exp["paid"] - exp["fee"] and int(s.fee) == exp["fee"]
        assert int(s.refund) == exp["refund"] and s.settled_tx.startswith("0x")
        # both messages went through the king with at least 2 of 3 attestations, each delivered once
        # (the king records its delivery's receipt a moment after the inbox executed it)
        await wait_for(lambda: _delivered(nodes.king) == 2, 30, "the king to record both deliveries")
        # every challenge record behind the result is auditable against its batch's records root on ETC
        records = q1.verifier.records(rid)
        assert len(records) == task.issued
        batch_id, leaf, proof = q1.verifier.record_proof(rid, records[0]["challenge_id"])
        assert leaf == record_leaf(records[0])
        assert net.wv().verify_record(q1.core.address, batch_id, leaf, proof)
        assert not net.wv().verify_record(q1.core.address, batch_id, b"\x01" * 32, proof)
        assert {"challenge_id", "seed", "n", "count", "roots", "opened_rows", "commit_seconds", "verdict",
                "rental_id"} <= set(records[0])
        # reputation moved on ETC with the finalized task
        rep = net.reputation()
        provider = ACCOUNTS["provider1"].address
        rep_verified = rep.score(provider)
        assert rep_verified != rep_before
        # the renter's feedback crosses the bridge through the same relay (attested, delivered once) and moves it
        net.rental("renter").feedback(rid, 1)
        await wait_for(lambda: rep._call(rep.fn.feedbackCounted(rid)), 60, "the feedback to reach ETC")
        assert rep.score(provider) < rep_verified
        await wait_for(lambda: _delivered(nodes.king) == 3, 30, "the king to see the feedback delivered")


def _delivered(king: Any) -> int:
    return sum(1 for _, d in king.store.scan("bridge_messages", "") if d["state"] == "delivered")


def _settled_doc(king: Any, rid: int) -> bool:
    d = king.store.get("rentals", f"{rid:064x}")
    return bool(d and d["state"] == "settled")


async def test_one_queen_down_still_settles_2_of_3(net: Net) -> None:
    async with net.nodes(("queen1", "queen3")) as nodes:
        before = net.balances()
        rid = net.create_rental()
        q1 = await _run_rental_to_the_end(net, nodes, rid)
        await nodes.settled(rid)
        task = q1.verifier.tasks[rid]
        exp = expected(task.issued, task.passed, task.failed)
        assert net.balances()["provider1"] - before["provider1"] == exp["paid"] - exp["fee"]


async def test_two_queens_down_nothing_settles_then_the_renter_reclaims(net: Net) -> None:
    async with net.nodes(("queen1",)) as nodes:
        before = net.balances()
        rid = net.create_rental()
        q1 = nodes.queens["queen1"]
        # queen1 attests the OPEN message, but one attestation of the two needed delivers nothing
        await wait_for(lambda: any(d["sent"] for d in q1.attester.attestations()), 30, "queen1's attestation at the king")
        [doc] = [d for _, d in nodes.king.store.scan("bridge_messages", "")]
        assert doc["state"] == "gathering"
        await asyncio.sleep(2)
        assert net.wv().task(rid)[0] == "0x" + "00" * 20  # no task on ETC
        rental = net.rental()
        net.warp(DURATION + 7 * 24 * 3600 + 1)  # past the end and GPURental's result timeout
        assert rental.rental(rid).status == RentalStatus.ACTIVE
        rental.reclaim(rid)
    after = net.balances()
    assert after["renter"] == before["renter"] and after["provider1"] == before["provider1"]
    assert net.rental().rental(rid).status == RentalStatus.EXPIRED


async def test_a_queen_restarted_mid_batch_lands_the_batch_once(net: Net) -> None:
    async with net.nodes() as nodes:
        rid = net.create_rental()
        await nodes.task_opened(rid)
        q1 = nodes.queens["queen1"]
        await wait_for(lambda: rid in q1.verifier.tasks and q1.verifier.tasks[rid].issued >= 2, 60, "rental challenges")
        # the next batch reaches the chain, and the queen dies before it records that
        crashed, release = threading.Event(), threading.Event()

        def send_then_die(doc: dict[str, Any]) -> str:
            from blendr.chain.contracts import ChallengeResult

            q1.verifier.wv.submit_batch(bytes.fromhex(doc["batch_id"][2:]), bytes.fromhex(doc["records_root"][2:]),
                                        [ChallengeResult(*r) for r in doc["results"]])
            crashed.set()
            release.wait(30)  # the process is gone before it can record anything
            raise RuntimeError("killed mid-batch")

        q1.verifier.send_batch = send_then_die  # type: ignore[method-assign]
        await wait_for(crashed.is_set, 30, "a batch sent by the dying queen")
        [prepared] = [d for _, d in q1.store.scan(NS_BATCHES, "") if d["state"] == "prepared"]
        await q1.stop()
        assert q1.chain_clients and all(c.closed for c in q1.chain_clients)  # its chain calls in threads end now
        release.set()
        del nodes.queens["queen1"]
        # the same queen (same home and store) comes back: it re-sends the prepared batch, which had landed
        q1b = await net.start_queen("queen1", nodes.king)
        nodes.queens["queen1"] = q1b
        await wait_for(lambda: (q1b.store.get(NS_BATCHES, f"{prepared['seq']:012d}") or {}).get("state") == "landed",
                       30, "the prepared batch recorded as landed after the restart")
        landed = q1b.store.get(NS_BATCHES, f"{prepared['seq']:012d}")
        assert landed["tx"] == ""  # it had already landed: not sent twice
        wv = net.wv()
        events = wv.contract.events.BatchSubmitted().get_logs(from_block=0)
        ids = [e["args"]["batchId"] for e in events if e["args"]["batchId"] == bytes.fromhex(prepared["batch_id"][2:])]
        assert len(ids) == 1
        # the provider reconnects to the restarted queen; the rental completes and settles
        net.warp(DURATION + 1)
        await nodes.settled(rid)


@pytest.fixture
def proxies(net: Net) -> Iterator[tuple[FlakyProxy, FlakyProxy]]:
    """Both chains behind a FlakyProxy. Closed after the test's event loop is: the nodes' chain calls still running
    in worker threads when they stop end through the proxies, quickly (closed, each would retry for ~40 s)."""
    eth_proxy, etc_proxy = FlakyProxy(net.eth_url, fail=0), FlakyProxy(net.etc_url, fail=0)
    yield eth_proxy, etc_proxy
    eth_proxy.close()
    etc_proxy.close()


async def test_an_rpc_endpoint_that_drops_requests_loses_and_doubles_nothing(
        net: Net, proxies: tuple[FlakyProxy, FlakyProxy]) -> None:
    eth_proxy, etc_proxy = proxies
    flaky = local_manifest(net.manifest, eth={"rpc_url": eth_proxy.url}, etc={"rpc_url": etc_proxy.url})
    net.manifest = flaky  # every node of this test reaches both chains through the proxies
    async with net.nodes() as nodes:
        before = net.balances()
        for p in (eth_proxy, etc_proxy):
            p.down = True
        rid = net.create_rental()  # the rental itself is created directly, not through the proxy
        await asyncio.sleep(3)  # every node's chain calls fail for a while
        for p in (eth_proxy, etc_proxy):
            p.down = False
        assert eth_proxy.failed > 0 and etc_proxy.failed > 0
        q1 = await _run_rental_to_the_end(net, nodes, rid)
        etc_proxy.down = True
        await asyncio.sleep(2)
        etc_proxy.down = False
        await nodes.settled(rid)
        task = q1.verifier.tasks[rid]
        exp = expected(task.issued, task.passed, task.failed)
        after = net.balances()
        assert after["provider1"] - before["provider1"] == exp["paid"] - exp["fee"]
        assert before["renter"] - after["renter"] == exp["paid"]
        # each bridge message executed exactly once
        for chain in ("eth", "etc"):
            inbox = BridgeInbox(net.c(chain, "deployer"), net.manifest.chain(chain).address("BridgeInbox"))
            assert len(inbox.contract.events.MessageExecuted().get_logs(from_block=0)) == 1


class FailingRuntime(RayRuntime):
    """A provider whose GPU stops answering challenges once ``broken`` is set."""

    broken = False

    async def prove(self, params: Any, devices: Any, timeout_s: float) -> Any:
        if self.broken and params.challenge_id != "warm-up":
            raise ComputeError("device lost (simulated)")
        return await super().prove(params, devices, timeout_s)


async def test_a_provider_failing_challenges_is_slashed_and_loses_reputation(net: Net) -> None:
    runtime = FailingRuntime(address="", pin_resource=PINS[0], devices=[cpu_device()], use_gpu=False)
    staking = StakingManager(net.c("eth", "deployer"), net.manifest.eth.address("StakingManager"))
    stake_before = staking.stake_of(ACCOUNTS["provider1"].address, Tier.PROVIDER)
    rep_before = net.reputation().score(ACCOUNTS["provider1"].address)
    async with net.nodes(provider_runtime=runtime) as nodes:
        before = net.balances()
        rid = net.create_rental()
        await nodes.task_opened(rid)
        q1 = nodes.queens["queen1"]
        await wait_for(lambda: rid in q1.verifier.tasks and q1.verifier.tasks[rid].passed >= 1, 60, "a passed challenge")
        runtime.broken = True
        await wait_for(lambda: q1.verifier.tasks[rid].failed >= 3, 60, "failed rental challenges")
        net.warp(DURATION + 1)
        rental = await nodes.settled(rid)
        task = q1.verifier.tasks[rid]
        exp = expected(task.issued, task.passed, task.failed)
        assert exp["failed"] and rental.status == RentalStatus.SETTLED
        after = net.balances()
        assert after["provider1"] == before["provider1"]  # paid nothing
        assert after["renter"] == before["renter"]  # the whole escrow back
        assert staking.stake_of(ACCOUNTS["provider1"].address, Tier.PROVIDER) == stake_before - exp["slash"]
    assert net.reputation().score(ACCOUNTS["provider1"].address) < rep_before


async def test_the_king_refuses_forged_and_malformed_attestations(net: Net) -> None:
    king = await net.start_king()
    clients = list(king.clients.values())
    try:
        async with open_channel(net.king_config(), f"127.0.0.1:{king.port}") as ch:
            stub = kpb_grpc.KingControlStub(ch)
            m = net.manifest
            msg = BridgeMessage(m.eth.chain_id, m.eth.address("BridgeOutbox"), 1, m.etc.chain_id,
                                m.eth.address("GPURental"), m.etc.address("WorkVerification"), b"\x01\x02")
            inbox = m.etc.address("BridgeInbox")
            stranger = Account.create()

            async def submit(message: BridgeMessage, sig: bytes) -> Any:
                return await stub.SubmitAttestation(kpb.SubmitAttestationRequest(
                    message=message_to_proto(message), signature=sig))

            with pytest.raises(grpc.aio.AioRpcError) as err:
                await submit(msg, attest(stranger, msg, inbox))  # a forged attestation by a non-attester
            assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED and stranger.address in err.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await submit(msg, b"\x00" * 10)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            wrong = BridgeMessage(msg.src_chain_id, m.eth.address("GPURental"), 1, msg.dst_chain_id, msg.sender,
                                  msg.target, msg.data)  # not the bridged outbox
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await submit(wrong, attest(ACCOUNTS["queen1"], wrong, inbox))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "outbox" in err.value.details()
            # an attester's signature over the message for the other chain's inbox recovers to someone else
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await submit(msg, attest(ACCOUNTS["queen1"], msg, m.eth.address("BridgeInbox")))
            assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
            ok = await submit(msg, attest(ACCOUNTS["queen1"], msg, inbox))
            again = await submit(msg, attest(ACCOUNTS["queen1"], msg, inbox))
            assert ok.attestations == again.attestations == 1 and ok.threshold == 2
            assert ok.state == kpb.DELIVERY_STATE_GATHERING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetSettlement(kpb.GetSettlementRequest(rental_id=b"\x00" * 32))
            assert err.value.code() is grpc.StatusCode.NOT_FOUND
    finally:
        await king.stop()
    assert clients and all(c.closed for c in clients)  # the leader's chain calls in threads end with it


async def test_a_message_in_a_block_reorged_shallower_than_the_depth_is_attested_once(net: Net) -> None:
    """ETC at depth 4: the queen waits while the message is shallow, a 3-block reorg moves it, it attests once."""
    from blendr.clock import SystemClock
    from blendr.store import MemoryStore
    from queen.attester import Attester, Route

    m = net.manifest
    queen = ACCOUNTS["queen1"]
    etc_c, eth_c = net.c("etc", "queen1"), net.c("eth", "queen1")
    outbox = BridgeOutbox(etc_c, m.etc.address("BridgeOutbox"))
    routes = [Route(etc_c, outbox, eth_c, BridgeInbox(eth_c, m.eth.address("BridgeInbox")), m.etc.deploy_block)]
    store = MemoryStore()
    cfg = load_config(net.tmp, env={})
    att = Attester(queen, routes, store, SystemClock(), cfg.relay, confirmations={"etc": 4})
    # WorkVerification is the outbox's sender on ETC: impersonate it to send a message
    wv_addr = m.etc.address("WorkVerification")
    rpc(net.etc_url, "anvil_impersonateAccount", [wv_addr])
    rpc(net.etc_url, "anvil_setBalance", [wv_addr, hex(10**18)])
    data = outbox.fn.sendMessage(m.eth.chain_id, m.eth.address("GPURental"), b"\x03hello")._encode_transaction_data()
    tx = {"from": wv_addr, "to": outbox.address, "data": data, "gas": hex(200_000), "gasPrice": hex(10**10)}
    # anvil answers eth_sendTransaction before the block is indexed on a loaded machine: wait for the receipt
    first = etc_c.w3.eth.wait_for_transaction_receipt(rpc(net.etc_url, "eth_sendTransaction", [tx]), timeout=30,
                                                      poll_latency=0.05)
    rpc(net.etc_url, "evm_mine", [])
    rpc(net.etc_url, "evm_mine", [])
    att.poll()
    assert att.attestations() == []  # the block is 3 deep: not yet
    # a reorg of the last 3 blocks (the message's included), shallower than the depth: the message lands again,
    # one block later in the new chain
    rpc(net.etc_url, "anvil_reorg", [3, [[tx, 1]]])
    att.poll()
    assert att.attestations() == []
    for _ in range(4):
        rpc(net.etc_url, "evm_mine", [])
        att.poll()
    docs = att.attestations()
    assert len(docs) == 1
    # attested from the block that holds it in the surviving chain, not from the block the reorg removed
    now = etc_c.w3.eth.get_transaction_receipt(docs[0]["tx"])
    assert docs[0]["block"] == now["blockNumber"] and now["blockHash"] != first["blockHash"]
    msg = BridgeMessage.from_json(docs[0]["message"])
    assert msg.nonce == 1 and msg.data == b"\x03hello"
    for _ in range(3):
        rpc(net.etc_url, "evm_mine", [])
        att.poll()
    assert len(att.attestations()) == 1
