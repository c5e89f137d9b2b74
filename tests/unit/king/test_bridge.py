"""The king's AttestationBook on a fake inbox: k-of-n gathering, delivery once, failures, restarts, replays.

No anvil: the inbox is :class:`tests.fakes.bridge_inbox.FakeInbox` (it checks signatures as the contract does
and counts executions); the store is the real in-memory or SQLite store, so a "restart" is a new book over
the same store. Every test that delivers ends by checking that no message executed twice and that the
king reported each delivery once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from blendr.chain.bridge import BridgeMessage, attest
from blendr.clock import ManualClock
from blendr.config import KingConfig
from blendr.errors import (
    ContractRevertError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    UnavailableError,
)
from blendr.identity import SECP256K1_N
from blendr.store import MemoryStore, SQLiteStore, Store
from blendr.telemetry import _FIELDS_ATTR
from king.bridge import (
    DELIVERED,
    DELIVERING,
    GATHERING,
    NS_MESSAGES,
    AttestationBook,
    Lane,
)
from tests.fakes.bridge_inbox import FakeInbox

ETH, ETC = 31337, 63
ETH_OUTBOX = "0x" + "e1" * 20
ETC_INBOX = "0x" + "ec" * 20
ATTESTERS: list[LocalAccount] = [Account.from_key(bytes([i]) * 32) for i in (1, 2, 3)]
STRANGER: LocalAccount = Account.from_key(b"\x09" * 32)


def message(nonce: int = 1) -> BridgeMessage:
    return BridgeMessage(ETH, ETH_OUTBOX, nonce, ETC, "0x" + "5e" * 20, "0x" + "7a" * 20, b"open rental")


def sig(account: LocalAccount, msg: BridgeMessage) -> bytes:
    return attest(account, msg, ETC_INBOX)


def with_v(signature: bytes, v: int) -> bytes:
    return signature[:64] + bytes([v])


def malleated(signature: bytes) -> bytes:
    """The same signature with s -> n - s (and the parity flipped): ecrecover gives the same signer."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "king.sqlite3")
    yield s
    s.close()


@pytest.fixture
def inbox() -> FakeInbox:
    return FakeInbox(ETC_INBOX, [a.address for a in ATTESTERS], k=2)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


CFG = KingConfig(retry_initial_s=1.0, retry_max_s=8.0, attester_cache_s=60.0)


class Delivered:
    """Records ``on_delivered`` calls across restarts."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, str]] = []

    def __call__(self, msg: BridgeMessage, tx: str) -> None:
        self.calls.append((msg.message_hash, tx))


def book_over(store: Store, inbox: FakeInbox, clock: ManualClock, seen: Delivered | None = None) -> AttestationBook:
    book = AttestationBook([Lane(inbox, ETH, ETH_OUTBOX, dst_chain_id=ETC)], store, clock, CFG)  # type: ignore[arg-type]
    book.load()
    if seen is not None:
        book.on_delivered.append(seen)
    return book


def assert_once(inbox: FakeInbox, seen: Delivered, msgs: list[BridgeMessage]) -> None:
    """The money invariant: each message executed exactly once, and reported delivered once."""
    for m in msgs:
        assert inbox.executions.get(m.message_hash) == 1, f"nonce {m.nonce} executed {inbox.executions.get(m.message_hash)}"
    assert sorted(h for h, _ in seen.calls) == sorted(m.message_hash for m in msgs)


# ---------------------------------------------------------------------------------------------- gathering
def test_k_attestations_deliver_once(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    r1 = book.submit(msg, sig(ATTESTERS[0], msg))
    assert (r1.attestations, r1.threshold, r1.state) == (1, 2, GATHERING)
    assert book.deliver_due() == []  # nothing to deliver under k
    r2 = book.submit(msg, sig(ATTESTERS[1], msg))
    assert (r2.attestations, r2.state) == (2, DELIVERING)
    assert book.deliver_due() == [msg.message_hash.hex()]
    r3 = book.submit(msg, sig(ATTESTERS[2], msg))  # a late third attestation changes nothing
    assert (r3.attestations, r3.state) == (3, DELIVERED)
    assert book.deliver_due() == []
    doc, sigs, threshold = book.get(msg.message_hash)
    assert doc["state"] == DELIVERED and doc["by_us"] is True and doc["tx_hash"].startswith("0x")
    assert len(sigs) == 3 and threshold == 2
    assert_once(inbox, seen, [msg])


@pytest.mark.parametrize("variant", ["same", "v-1", "v-0/1", "v-37/38"])
def test_replayed_attestation_under_any_v_encoding_counts_once(
        store: Store, inbox: FakeInbox, clock: ManualClock, variant: str) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    s = sig(ATTESTERS[0], msg)
    parity = s[64] - 27
    replay = {"same": s, "v-1": s, "v-0/1": with_v(s, parity), "v-37/38": with_v(s, 37 + parity)}[variant]
    book.submit(msg, replay)  # the replay arrives first: it must be stored in canonical form
    r = book.submit(msg, s)
    assert (r.attestations, r.state) == (1, GATHERING)
    _, sigs, _ = book.get(msg.message_hash)
    assert sigs == {ATTESTERS[0].address: s}
    book.submit(msg, sig(ATTESTERS[1], msg))
    assert book.deliver_due() == [msg.message_hash.hex()]  # the inbox takes the stored (canonical) form
    assert_once(inbox, seen, [msg])


def test_malleated_high_s_attestation_is_refused(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    book = book_over(store, inbox, clock)
    msg = message()
    with pytest.raises(InvalidArgumentError, match="malleable"):
        book.submit(msg, malleated(sig(ATTESTERS[0], msg)))
    with pytest.raises(NotFoundError):
        book.get(msg.message_hash)


def test_non_attester_and_foreign_messages_are_refused(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    book = book_over(store, inbox, clock)
    msg = message()
    with pytest.raises(PermissionDeniedError):
        book.submit(msg, sig(STRANGER, msg))
    other_chain = BridgeMessage(ETH, ETH_OUTBOX, 1, 1, msg.sender, msg.target, msg.data)
    with pytest.raises(InvalidArgumentError, match="does not bridge"):
        book.submit(other_chain, sig(ATTESTERS[0], other_chain))
    other_outbox = BridgeMessage(ETH, "0x" + "00" * 19 + "01", 1, ETC, msg.sender, msg.target, msg.data)
    with pytest.raises(InvalidArgumentError, match="outbox"):
        book.submit(other_outbox, sig(ATTESTERS[0], other_outbox))
    with pytest.raises(InvalidArgumentError, match="65 bytes"):
        book.submit(msg, b"\x01" * 64)
    with pytest.raises(NotFoundError):
        book.get(msg.message_hash)


def test_a_new_attester_is_seen_after_a_refresh(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    book = book_over(store, inbox, clock)
    msg = message()
    book.submit(msg, sig(ATTESTERS[0], msg))  # caches the set
    inbox.attester_set.append(STRANGER.address)  # governance adds an attester
    assert book.submit(msg, sig(STRANGER, msg)).attestations == 2


def test_attester_set_outage_surfaces_as_unavailable(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    book = book_over(store, inbox, clock)
    msg = message()
    inbox.read_failures.append(UnavailableError("etc RPC down"))
    with pytest.raises(UnavailableError):
        book.submit(msg, sig(ATTESTERS[0], msg))
    assert book.submit(msg, sig(ATTESTERS[0], msg)).attestations == 1  # after recovery it is taken


# ---------------------------------------------------------------------------------------------- delivery failures
def gathered(book: AttestationBook, msg: BridgeMessage) -> None:
    for a in ATTESTERS[:2]:
        book.submit(msg, sig(a, msg))


def test_reverted_delivery_is_retried_with_growing_bounded_waits(
        store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    gathered(book, msg)
    inbox.fail_next += [ContractRevertError("paused", error="BridgeInboxPaused") for _ in range(6)]
    waits = []
    for attempt in range(1, 7):
        assert book.deliver_due() == []
        doc = store.get(NS_MESSAGES, msg.message_hash.hex())
        assert doc is not None and doc["state"] == DELIVERING and doc["attempts"] == attempt
        assert "paused" in doc["last_error"]
        waits.append(doc["next_try"] - clock.time())
        assert book.deliver_due() == []  # not due yet: no call to the inbox
        assert inbox.calls.count("deliver") == attempt
        clock.advance(waits[-1] + 1e-6)
    # exponential (initial 1, doubling), with at most `initial` of jitter, never above retry_max_s
    for attempt, w in enumerate(waits, start=1):
        base = min(CFG.retry_max_s, CFG.retry_initial_s * 2 ** (attempt - 1))
        assert base <= w <= min(CFG.retry_max_s, base + CFG.retry_initial_s) or w == CFG.retry_max_s
    assert max(waits) <= CFG.retry_max_s
    assert book.deliver_due() == [msg.message_hash.hex()]
    assert_once(inbox, seen, [msg])


def test_delivery_that_timed_out_but_landed_is_not_sent_again(
        store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    gathered(book, msg)
    inbox.land_then_fail.append(DeadlineExceededError("etc tx deliver: not confirmed within 120 s"))
    assert book.deliver_due() == []
    assert inbox.executions[msg.message_hash] == 1
    clock.advance(CFG.retry_max_s)
    assert book.deliver_due() == [msg.message_hash.hex()]
    doc, _, _ = book.get(msg.message_hash)
    assert doc["state"] == DELIVERED and doc["by_us"] is False  # seen as executed, no second transaction
    assert inbox.calls.count("deliver") == 1
    assert_once(inbox, seen, [msg])


def test_rpc_outage_then_recovery(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msgs = [message(n) for n in (1, 2, 3)]
    for m in msgs:
        gathered(book, m)
    inbox.read_failures += [UnavailableError("etc RPC down")] * 3  # the `executed` read of each message fails
    assert book.deliver_due() == []
    assert all(store.get(NS_MESSAGES, m.message_hash.hex())["attempts"] == 1 for m in msgs)  # type: ignore[index]
    clock.advance(CFG.retry_max_s)
    assert sorted(book.deliver_due()) == sorted(m.message_hash.hex() for m in msgs)
    assert_once(inbox, seen, msgs)


def test_someone_else_delivered_first(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    gathered(book, msg)
    inbox.executions[msg.message_hash] = 1  # a queen delivered it herself
    assert book.deliver_due() == [msg.message_hash.hex()]
    assert inbox.calls.count("deliver") == 0
    doc, _, _ = book.get(msg.message_hash)
    assert doc["by_us"] is False
    assert_once(inbox, seen, [msg])


def test_race_lost_at_the_inbox_is_already_delivered(store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    gathered(book, msg)
    # Executed between our `executed` read and our transaction: the inbox reverts AlreadyExecuted.
    inbox.fail_next.append(ContractRevertError("deliver reverted", error="BridgeInboxAlreadyExecuted"))
    inbox.executions[msg.message_hash] = 0
    orig = inbox.executed

    def executed_then_race(m: BridgeMessage) -> bool:
        out = orig(m)
        inbox.executions[m.message_hash] = 1
        return out

    inbox.executed = executed_then_race  # type: ignore[method-assign]
    assert book.deliver_due() == [msg.message_hash.hex()]
    assert_once(inbox, seen, [msg])


def test_attester_removed_before_delivery_goes_back_to_gathering(
        store: Store, inbox: FakeInbox, clock: ManualClock) -> None:
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    gathered(book, msg)
    inbox.attester_set.remove(ATTESTERS[1].address)  # governance removed one of the two signers
    assert book.deliver_due() == []
    doc, _, _ = book.get(msg.message_hash)
    assert doc["state"] == GATHERING and "only 1 of 2" in doc["last_error"]
    clock.advance(CFG.attester_cache_s + 1)
    book.submit(msg, sig(ATTESTERS[2], msg))
    assert book.deliver_due() == [msg.message_hash.hex()]
    assert_once(inbox, seen, [msg])


# ---------------------------------------------------------------------------------------------- restarts
@pytest.mark.parametrize("crash_at", ["after-first-attestation", "after-k", "after-failed-try", "after-landed-tx",
                                      "after-delivered"])
def test_restart_between_any_two_steps_loses_nothing_and_delivers_once(
        store: Store, inbox: FakeInbox, clock: ManualClock, crash_at: str) -> None:
    seen = Delivered()
    msg = message()
    book = book_over(store, inbox, clock, seen)
    book.submit(msg, sig(ATTESTERS[0], msg))
    if crash_at != "after-first-attestation":
        book.submit(msg, sig(ATTESTERS[1], msg))
    if crash_at == "after-failed-try":
        inbox.fail_next.append(UnavailableError("etc RPC down"))
        book.deliver_due()
    elif crash_at == "after-landed-tx":
        inbox.land_then_fail.append(DeadlineExceededError("no receipt"))
        book.deliver_due()
    elif crash_at == "after-delivered":
        book.deliver_due()

    restarted = book_over(store, inbox, clock, seen)  # the old book is gone; same store
    clock.advance(CFG.retry_max_s)
    if crash_at == "after-first-attestation":
        assert restarted.deliver_due() == []
        restarted.submit(msg, sig(ATTESTERS[1], msg))
    restarted.deliver_due()
    assert restarted.deliver_due() == []
    doc, sigs, _ = restarted.get(msg.message_hash)
    assert doc["state"] == DELIVERED
    assert set(sigs) == {a.address for a in ATTESTERS[:2]}
    # one transaction sent, plus the one that failed before it reached the chain
    assert inbox.calls.count("deliver") == (2 if crash_at == "after-failed-try" else 1)
    assert_once(inbox, seen, [msg])


def test_store_failure_mid_pass_leaves_the_message_delivering(inbox: FakeInbox, clock: ManualClock) -> None:
    """A store write that fails after a landed transaction: the next pass sees it executed (no second tx)."""

    class FlakyStore(MemoryStore):
        fail_puts = 0

        def put(self, ns: str, key: str, value: object) -> None:  # type: ignore[override]
            if self.fail_puts and ns == NS_MESSAGES:
                self.fail_puts -= 1
                raise StoreError("disk full")
            super().put(ns, key, value)  # type: ignore[arg-type]

    store = FlakyStore()
    seen = Delivered()
    book = book_over(store, inbox, clock, seen)
    msg = message()
    gathered(book, msg)
    store.fail_puts = 1
    with pytest.raises(StoreError):
        book.deliver_due()
    assert inbox.executions[msg.message_hash] == 1 and seen.calls == []
    assert book.deliver_due() == [msg.message_hash.hex()]
    assert inbox.calls.count("deliver") == 1
    assert_once(inbox, seen, [msg])


# ---------------------------------------------------------------------------------------------- attesters short
def test_a_bridge_short_of_attesters_is_said_periodically_until_k_are_in(
        store: Store, inbox: FakeInbox, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    book = AttestationBook([Lane(inbox, ETH, ETH_OUTBOX, dst_chain_id=ETC)], store, clock, CFG,  # type: ignore[arg-type]
                           short_after_s=60.0, warn_every_s=30.0)
    msg = message()
    book.submit(msg, sig(ATTESTERS[0], msg))
    clock.advance(59.0)
    assert book.short_of_attesters() == [] and book.warn_if_short() is False  # not yet: attesters may lag
    clock.advance(1.0)
    assert book.short_of_attesters() == [(msg.message_hash.hex(), 60.0, 1, 2, ETC)]
    with caplog.at_level(logging.WARNING, logger="blendr.king.bridge"):
        assert book.warn_if_short() is True
        assert book.warn_if_short() is False  # at most every warn_every_s
        clock.advance(30.0)
        assert book.warn_if_short() is True
    warned = [r for r in caplog.records if "short of attesters" in r.getMessage()]
    assert len(warned) == 2 and "queen run --relay" in warned[0].getMessage()
    fields = getattr(warned[0], _FIELDS_ATTR)
    assert (fields["attestations"], fields["needed"], fields["waiting_messages"]) == (1, 2, 1)
    assert fields["attesters"] == sorted(a.address.lower() for a in ATTESTERS)
    restarted = book_over(store, inbox, clock)  # a restarted king still knows the message waits
    clock.advance(60.0)
    assert [k for k, *_ in restarted.short_of_attesters()] == [msg.message_hash.hex()]
    book.submit(msg, sig(ATTESTERS[1], msg))
    clock.advance(60.0)
    assert book.short_of_attesters() == [] and book.warn_if_short() is False
