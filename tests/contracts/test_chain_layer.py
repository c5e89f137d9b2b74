"""The Python chain layer against real anvil: signed transactions, nonces, retries, reverts, follower."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from eth_account import Account
from web3 import Web3

from blendr.chain.client import ChainClient, ChainSettings, decode_revert, is_transient
from blendr.chain.depths import Depths
from blendr.chain.follower import Changes, EventFollower
from blendr.errors import ContractRevertError, DeadlineExceededError, ReorgError, UnavailableError
from blendr.store import MemoryStore
from blendr.store.base import Batch
from tests.contracts.chainkit import DEV_KEYS, mine
from tests.flaky_proxy import FlakyProxy


def client(w3: Web3, chain: str = "eth", key: int = 3, **kw: Any) -> ChainClient:
    url = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    settings = ChainSettings(chain, url, int(w3.eth.chain_id), eip1559=(chain == "eth"), poll_s=0.02, **kw)
    return ChainClient(settings, Account.from_key(DEV_KEYS[key]))


class Recorder:
    """A follower handler that applies events to a ledger and undoes withdrawn ones."""

    def __init__(self) -> None:
        self.applied: dict[str, int] = {}
        self.calls = 0

    def __call__(self, changes: Changes, batch: Batch) -> None:
        self.calls += 1
        for ev in changes.withdrawn:
            self.applied[ev.id] -= 1
        for ev in changes.new:
            self.applied[ev.id] = self.applied.get(ev.id, 0) + 1


def test_transactions_are_signed_locally_and_nonces_pipeline(eth: Web3) -> None:
    """Several transactions in flight get consecutive nonces; all land."""
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    start = eth.eth.get_transaction_count(c.address)
    hashes = [c.transact(emitter.functions.ping(i + 1, b"x"), wait=False) for i in range(5)]
    receipts = [c.wait(str(h)) for h in hashes]
    assert [r["status"] for r in receipts] == [1] * 5
    assert eth.eth.get_transaction_count(c.address) == start + 5
    assert c.call(emitter.functions.count()) == 5
    assert receipts[0]["type"] == 2  # EIP-1559 on eth


def test_legacy_transactions_on_etc(etc: Web3) -> None:
    """Ethereum Classic has no EIP-1559: the etc client sends legacy gasPrice transactions."""
    c = client(etc, "etc")
    emitter = c.deploy("ChainEventEmitter")
    r = c.transact(emitter.functions.ping(1, b""))
    assert not isinstance(r, str) and r["type"] == 0


def test_revert_names_the_custom_error_in_estimation_and_calls(eth: Web3) -> None:
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    with pytest.raises(ContractRevertError) as exc:
        c.transact(emitter.functions.ping(0, b""))
    assert exc.value.error == "ChainEventEmitterRefused"
    assert "ChainEventEmitterRefused" in str(exc.value)


def test_revert_on_chain_is_explained(eth: Web3) -> None:
    """A transaction sent with a fixed gas limit that reverts on chain reports the custom error."""
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    with pytest.raises(ContractRevertError) as exc:
        c.transact(emitter.functions.ping(0, b""), gas=100_000)
    assert exc.value.error == "ChainEventEmitterRefused"
    assert exc.value.tx_hash


def test_nonce_resyncs_after_an_outside_transaction(eth: Web3) -> None:
    """Another sender using the same key (nonce taken) does not wedge the client."""
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    c.transact(emitter.functions.ping(1, b""))
    # the same key sends behind the client's back
    other = client(eth)
    other.transact(emitter.functions.ping(2, b""))
    r = c.transact(emitter.functions.ping(3, b""))
    assert not isinstance(r, str) and r["status"] == 1


def test_receipt_waits_for_confirmation_depth(eth: Web3) -> None:
    c = client(eth, confirmations=3, receipt_timeout_s=0.5)
    emitter = client(eth).deploy("ChainEventEmitter")
    h = c.transact(emitter.functions.ping(1, b""), wait=False)
    with pytest.raises(DeadlineExceededError):
        c.wait(str(h))
    mine(eth, 2)
    assert c.wait(str(h))["status"] == 1


def test_down_endpoint_is_retried_then_reported() -> None:
    c = ChainClient(ChainSettings("eth", "http://127.0.0.1:9", 31337, retries=2, retry_max_wait_s=0.01),
                    Account.from_key(DEV_KEYS[0]))
    with pytest.raises(UnavailableError, match="after 2 attempts"):
        c.block_number()


def test_transient_classification() -> None:
    assert is_transient(requests.ConnectionError())
    assert not is_transient(ContractRevertError("x"))
    assert not is_transient(ValueError("x"))
    assert decode_revert("0x") == ("", ())


def test_follower_delivers_each_event_once_across_restarts(eth: Web3) -> None:
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    store = MemoryStore()
    rec = Recorder()
    f = EventFollower(c, store, "t", {"Emitter": emitter}, confirmations=1)
    for i in range(3):
        c.transact(emitter.functions.ping(i + 1, b""))
    f.poll_until_idle(rec)
    assert len(rec.applied) == 3 and set(rec.applied.values()) == {1}
    # a new follower over the same store (a restart) resumes from the cursor
    c.transact(emitter.functions.pingTwice(9))
    f2 = EventFollower(c, store, "t", {"Emitter": emitter}, confirmations=1)
    f2.poll_until_idle(rec)
    assert len(rec.applied) == 5 and set(rec.applied.values()) == {1}
    ev = [e for e in store.scan("chain_events:t")]
    assert [d["event"] for _, d in ev] == ["Pinged"] * 5


def test_follower_waits_for_confirmations(eth: Web3) -> None:
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    store = MemoryStore()
    rec = Recorder()
    f = EventFollower(c, store, "t", {"Emitter": emitter}, confirmations=4)
    c.transact(emitter.functions.ping(1, b""))
    f.poll_until_idle(rec)
    assert rec.applied == {}
    mine(eth, 3)
    f.poll_until_idle(rec)
    assert len(rec.applied) == 1


def test_follower_takes_a_depth_governance_changes_mid_run_without_loss_or_repeat(eth: Web3) -> None:
    """A follower on its chain's depth uses each depth governance sets from its next poll (through Depths and the
    client): lowered, it delivers what the new depth confirms and nothing twice; raised, it holds back what is not
    that deep yet (its cursor stays, nothing is withdrawn) and delivers it once it is; no event is ever skipped."""
    sender = client(eth)  # sends at depth 1
    emitter = sender.deploy("ChainEventEmitter")
    reader = client(eth, key=4)
    depths = Depths({"eth": 4, "etc": 1})
    depths.attach(reader)
    f = EventFollower(reader, MemoryStore(), "t", {"Emitter": emitter})  # no depth of its own: the chain's
    delivered: list[int] = []

    def handle(changes: Changes, batch: Batch) -> None:
        assert not changes.withdrawn
        delivered.extend(int(ev.args["n"]) for ev in changes.new)

    def ping(n: int) -> int:
        r = sender.transact(emitter.functions.ping(n, b""))
        assert not isinstance(r, str)
        return int(r["blockNumber"])

    first = ping(1)
    mine(eth, 3)  # block `first` is 4 deep
    second = ping(2)  # 1 deep
    f.poll_until_idle(handle)
    assert delivered == [1] and f.confirmations == 4
    cursor = f.cursor()
    assert cursor is not None and cursor[0] == second - 3
    depths.apply({"chain.eth_confirmations": 1})  # lowered: the pending event is confirmed now
    assert reader.settings.confirmations == 1 and f.confirmations == 1
    f.poll_until_idle(handle)
    assert delivered == [1, 2]
    cursor = f.cursor()
    assert cursor is not None and cursor[0] == second
    depths.apply({"chain.eth_confirmations": 6})  # raised: the cursor stays ahead of the new target
    third = ping(3)
    mine(eth, 2)
    f.poll_until_idle(handle)
    assert delivered == [1, 2] and f.cursor() == cursor  # block `third` is 3 deep, not 6: held back
    mine(eth, 3)  # now 6 deep
    f.poll_until_idle(handle)
    assert delivered == [1, 2, 3]
    cursor = f.cursor()
    assert cursor is not None and cursor[0] == third
    assert first < second < third


def test_handler_failure_commits_nothing(eth: Web3) -> None:
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    store = MemoryStore()
    f = EventFollower(c, store, "t", {"Emitter": emitter}, confirmations=1)
    c.transact(emitter.functions.ping(1, b""))

    def boom(changes: Changes, batch: Batch) -> None:
        batch.put("mine", "x", {"v": 1})
        raise RuntimeError("handler crashed")

    with pytest.raises(RuntimeError):
        f.poll(boom)
    assert f.cursor() is None and store.get("mine", "x") is None
    rec = Recorder()
    f.poll_until_idle(rec)
    assert len(rec.applied) == 1


def _reorg(w3: Web3, depth: int, txs: list[tuple[dict[str, Any], int]]) -> None:
    res = w3.provider.make_request("anvil_reorg", [depth, [[tx, off] for tx, off in txs]])  # type: ignore[arg-type]
    assert "error" not in res, res


def test_follower_across_an_anvil_reorg_acts_on_each_surviving_event_once(eth: Web3) -> None:
    """Events in reorged-out blocks are withdrawn; an event re-included in another block is not re-applied."""
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    store = MemoryStore()
    rec = Recorder()
    f = EventFollower(c, store, "t", {"Emitter": emitter}, confirmations=1)
    keep = c.transact(emitter.functions.ping(1, b"keep"))
    mine(eth, 2)
    c.transact(emitter.functions.ping(2, b"gone"))
    c.transact(emitter.functions.ping(3, b"gone too"))
    f.poll_until_idle(rec)
    assert len(rec.applied) == 3
    # replace the last 2 blocks (the two "gone" pings) with blocks holding one different ping
    data = emitter.functions.ping(4, b"new")._encode_transaction_data()
    sender = eth.eth.accounts[5]
    _reorg(eth, 2, [({"from": sender, "to": emitter.address, "data": data}, 0)])
    mine(eth, 1)
    f.poll_until_idle(rec)
    live = {k for k, v in rec.applied.items() if v == 1}
    assert all(v in (0, 1) for v in rec.applied.values())
    assert len(live) == 2  # ping 1 (kept) and ping 4 (new)
    assert any(k.startswith("0x" + bytes(keep["transactionHash"]).hex().removeprefix("0x")) for k in live)
    notes = sorted(d["args"]["note"] for _, d in store.scan("chain_events:t"))
    assert notes == ["0x" + b"keep".hex(), "0x" + b"new".hex()]


def test_follower_keeps_an_event_that_moved_blocks_in_a_reorg(eth: Web3) -> None:
    """A reorg that re-includes the same signed transaction in another block does not re-deliver it."""
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    store = MemoryStore()
    rec = Recorder()
    f = EventFollower(c, store, "t", {"Emitter": emitter}, confirmations=1)
    fork = eth.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    r = c.transact(emitter.functions.ping(7, b"moves"))
    assert not isinstance(r, str)
    raw = eth.eth.get_raw_transaction(r["transactionHash"])
    f.poll_until_idle(rec)
    old_block = r["blockHash"]
    # the other branch: an empty block first, then the very same signed transaction
    eth.provider.make_request("evm_revert", [fork])  # type: ignore[arg-type]
    mine(eth, 1)
    eth.eth.send_raw_transaction(raw)
    mine(eth, 1)
    moved = eth.eth.get_transaction_receipt(r["transactionHash"])
    assert moved["blockHash"] != old_block
    f.poll_until_idle(rec)
    assert list(rec.applied.values()) == [1]
    assert rec.calls == 1
    [(_, doc)] = store.scan("chain_events:t")
    assert doc["block_hash"] == "0x" + bytes(moved["blockHash"]).hex()


def test_follower_refuses_a_reorg_deeper_than_its_history(eth: Web3) -> None:
    c = client(eth)
    emitter = c.deploy("ChainEventEmitter")
    start = eth.eth.block_number
    store = MemoryStore()
    f = EventFollower(c, store, "t", {"Emitter": emitter}, confirmations=1, history=3, start_block=start)
    rec = Recorder()
    for i in range(6):
        c.transact(emitter.functions.ping(i + 1, b""))
        f.poll_until_idle(rec)
    _reorg(eth, 6, [])
    with pytest.raises(ReorgError):
        f.poll(rec)


def test_an_endpoint_that_drops_requests_for_a_while_loses_and_doubles_nothing(eth: Web3) -> None:
    """503s are retried with backoff; every transaction lands exactly once."""
    emitter = client(eth).deploy("ChainEventEmitter")
    proxy = FlakyProxy(eth.provider.endpoint_uri, fail=0)  # type: ignore[attr-defined]
    try:
        c = ChainClient(ChainSettings("eth", proxy.url, 31337, poll_s=0.02, retries=8, retry_max_wait_s=0.2),
                        Account.from_key(DEV_KEYS[4]))
        before = c.call(emitter.functions.count())
        for i in range(4):
            proxy.fail = 2  # the next two requests fail, whatever they are (estimate, nonce, send, receipt)
            c.transact(emitter.functions.ping(i + 1, b""))
        assert c.call(emitter.functions.count()) == before + 4
        assert eth.eth.get_transaction_count(c.address) == 4
        # replies lost after anvil acted: a resent transaction is the same signed bytes, so it lands once
        for i in range(6):  # the i-th request of the transaction loses its reply: build, estimate, fees, send...
            proxy.skip, proxy.lose = i, 1
            c.transact(emitter.functions.ping(10 + i, b""))
            assert proxy.lose == 0
        assert c.call(emitter.functions.count()) == before + 10
        assert eth.eth.get_transaction_count(c.address) == 10
    finally:
        proxy.close()
