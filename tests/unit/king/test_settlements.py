"""The king's SettlementBook on a fake GPURental event log: each event applied once, through outages,
failed commits, restarts and reorgs.

The invariant every test ends with: the book's rentals equal a fold of the chain's canonical events (what
a fresh king reading the chain from scratch would see), and each settled rental's payment + fee + refund
equals its escrow (no wei created or lost in the king's view).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.chain.follower import ChainEvent
from blendr.errors import NotFoundError, StoreError, UnavailableError
from blendr.store import MemoryStore, SQLiteStore, Store
from blendr.store.base import Op
from king.settlements import FOLLOWER, NS_RENTALS, SettlementBook, rid_key
from tests.fakes.event_chain import FakeEventChain

RENTER, PROVIDER, QUEEN = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
ESCROW = 3_600 * 10**15


def book_over(store: Store, chain: FakeEventChain, confirmations: int = 0) -> SettlementBook:
    return SettlementBook(None, store, follower=chain.follower(store, FOLLOWER, confirmations=confirmations))


def created(chain: FakeEventChain, rid: int, **kw: Any) -> ChainEvent:
    return chain.emit("GPURental", "RentalCreated", {
        "rentalId": rid, "renter": RENTER, "provider": PROVIDER, "queen": QUEEN, "gpus": 1, "escrow": ESCROW,
        "pricePerGpuHour": ESCROW, "start": 1_000, "duration": 3_600, **kw})


def settled(chain: FakeEventChain, rid: int, verified: int = 3_600, failed: bool = False) -> ChainEvent:
    pay = ESCROW * verified // 3_600
    fee = pay * 250 // 10_000
    return chain.emit("GPURental", "RentalSettled", {
        "rentalId": rid, "verifiedSeconds": verified, "failed": failed, "providerPayment": pay - fee, "fee": fee,
        "refund": ESCROW - pay})


def cancelled(chain: FakeEventChain, rid: int) -> ChainEvent:
    return chain.emit("GPURental", "RentalCancelled", {"rentalId": rid, "cancelledAt": 1_500})


def reclaimed(chain: FakeEventChain, rid: int) -> ChainEvent:
    return chain.emit("GPURental", "EscrowReclaimed", {"rentalId": rid, "amount": ESCROW})


def expected(chain: FakeEventChain) -> dict[str, tuple[str, str, str, str]]:
    """(state, provider payment, fee, refund) per rental, folded from the canonical events alone."""
    out: dict[str, tuple[str, str, str, str]] = {}
    for ev in sorted(chain.events, key=lambda e: (e.block_number, e.log_index)):
        if "rentalId" not in ev.args:
            continue
        key, a = rid_key(int(ev.args["rentalId"])), ev.args
        state, pay, fee, refund = out.get(key, ("unknown", "", "", ""))
        if ev.event == "RentalCreated":
            state = "active"
        elif ev.event == "RentalCancelled":
            state = "cancelled"
        elif ev.event == "RentalSettled":
            state, pay, fee, refund = "settled", str(a["providerPayment"]), str(a["fee"]), str(a["refund"])
        elif ev.event == "EscrowReclaimed":
            state, refund = "expired", str(a["amount"])
        out[key] = (state, pay, fee, refund)
    return out


def check(book: SettlementBook, chain: FakeEventChain) -> None:
    """The book matches the chain, and no settled rental's money adds up to more or less than its escrow."""
    got = {k: (d["state"], d.get("provider_payment", ""), d.get("fee", ""), d.get("refund", ""))
           for k, d in book.store.scan(NS_RENTALS, "")}
    assert got == expected(chain)
    for _, d in book.store.scan(NS_RENTALS, ""):
        if d["state"] == "settled":
            assert int(d["provider_payment"]) + int(d["fee"]) + int(d["refund"]) == int(d["escrow"])


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "king.sqlite3")
    yield s
    s.close()


def test_a_rental_from_creation_to_settlement(store: Store) -> None:
    chain = FakeEventChain()
    book = book_over(store, chain)
    with pytest.raises(NotFoundError):
        book.get(7)
    created(chain, 7)
    assert book.poll() == 1
    assert book.get(7)["state"] == "active" and book.get(7)["escrow"] == str(ESCROW)
    ev = settled(chain, 7, verified=1_800)
    chain.emit("GPURental", "FeedbackSubmitted", {"rentalId": 7, "rating": 5})
    assert book.poll() == 2
    d = book.get(7)
    assert (d["state"], d["verified_seconds"], d["settled_tx"], d["rating"]) == ("settled", 1_800, ev.tx_hash, 5)
    assert book.poll() == 0  # nothing new: nothing applied again
    check(book, chain)


def test_cancel_then_settle_and_reclaim(store: Store) -> None:
    chain = FakeEventChain()
    book = book_over(store, chain)
    created(chain, 1)
    created(chain, 2)
    cancelled(chain, 1)
    settled(chain, 1, verified=500)
    reclaimed(chain, 2)
    chain.emit("GPURental", "ProviderSlashed", {"rentalId": 1, "slashed": 10})
    chain.emit("GPURental", "Paused", {"account": QUEEN})  # not a rental's event: ignored
    assert book.poll() == 7
    assert book.get(1)["cancelled_at"] == 1_500 and book.get(1)["slashed"] == "10"
    assert book.get(2)["state"] == "expired"
    check(book, chain)


def test_events_wait_for_the_confirmation_depth(store: Store) -> None:
    chain = FakeEventChain()
    book = book_over(store, chain, confirmations=3)
    created(chain, 1)
    assert book.poll() == 0
    chain.mine(1)
    assert book.poll() == 0
    chain.mine(1)
    assert book.poll() == 1
    check(book, chain)


def test_rpc_outage_then_recovery_applies_each_event_once(store: Store) -> None:
    chain = FakeEventChain()
    book = book_over(store, chain)
    created(chain, 1)
    settled(chain, 1)
    chain.outages = 2
    for _ in range(2):
        with pytest.raises(UnavailableError):
            book.poll()
        assert store.count(NS_RENTALS) == 0
    assert book.poll() == 2
    assert book.poll() == 0
    check(book, chain)


class FailingCommits(MemoryStore):
    """A store whose next batch commits fail (a full disk), then recover."""

    failures = 0

    def _apply(self, ops: tuple[Op, ...]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("disk full")
        super()._apply(ops)


def test_a_failed_commit_applies_nothing_and_the_next_poll_applies_once() -> None:
    store = FailingCommits()
    chain = FakeEventChain()
    book = book_over(store, chain)
    created(chain, 1)
    settled(chain, 1)
    store.failures = 1
    with pytest.raises(StoreError):
        book.poll()
    assert store.count(NS_RENTALS) == 0
    assert book.poll() == 2
    check(book, chain)


@pytest.mark.parametrize("restart_after", [0, 1, 2, 3])
def test_restart_between_any_two_polls(store: Store, restart_after: int) -> None:
    chain = FakeEventChain()
    steps = [lambda: created(chain, 1), lambda: cancelled(chain, 1), lambda: settled(chain, 1, verified=900)]
    book = book_over(store, chain)
    applied = 0
    for i, step in enumerate(steps):
        if i == restart_after:
            book = book_over(store, chain)  # a new king over the same store
        step()
        applied += book.poll()
    if restart_after == len(steps):
        book = book_over(store, chain)
    assert book.poll() == 0
    assert applied == 3  # each event applied exactly once across the restart
    check(book, chain)


def test_reorg_that_withdraws_a_settlement_undoes_it(store: Store) -> None:
    chain = FakeEventChain()
    book = book_over(store, chain)
    created(chain, 1)
    cancelled(chain, 1)
    ev = settled(chain, 1)
    book.poll()
    chain.reorg([ev])
    book.poll()
    d = book.get(1)
    assert d["state"] == "cancelled" and d["reorged"] is True and "provider_payment" not in d
    check(book, chain)
    again = settled(chain, 1, verified=1_200)  # the settlement lands again, in another block
    assert book.poll() == 1
    assert book.get(1)["settled_tx"] == again.tx_hash and book.get(1)["verified_seconds"] == 1_200
    check(book, chain)


def test_reorg_replacing_a_settlement_in_the_same_poll_keeps_the_new_one(store: Store) -> None:
    chain = FakeEventChain()
    book = book_over(store, chain)
    created(chain, 1)
    old = settled(chain, 1, verified=3_600)
    book.poll()
    chain.reorg([old])
    new = settled(chain, 1, verified=100, failed=True)
    book.poll()
    d = book.get(1)
    assert (d["state"], d["settled_tx"], d["failed"]) == ("settled", new.tx_hash, True)
    check(book, chain)


def test_reorg_of_a_creation_and_a_cancel(store: Store) -> None:
    chain = FakeEventChain()
    book = book_over(store, chain)
    c = created(chain, 1)
    x = cancelled(chain, 1)
    book.poll()
    chain.reorg([x])
    book.poll()
    assert book.get(1)["state"] == "active" and "cancelled_at" not in book.get(1)
    chain.reorg([c])
    book.poll()
    assert book.get(1)["state"] == "unknown"
    check_chain = expected(chain)
    assert check_chain == {}  # the chain no longer has the rental; the book keeps it, flagged
    assert book.get(1)["reorged"] is True


OPS = st.lists(st.tuples(st.sampled_from(["create", "cancel", "settle", "reclaim", "reorg", "restart", "outage",
                                          "poll"]), st.integers(1, 3)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_any_sequence_matches_a_fresh_read_of_the_chain(ops: list[tuple[str, int]]) -> None:
    store = MemoryStore()
    chain = FakeEventChain()
    book = book_over(store, chain)
    state: dict[int, str] = {}
    for op, rid in ops:
        if op == "create" and rid not in state:
            created(chain, rid)
            state[rid] = "active"
        elif op == "cancel" and state.get(rid) == "active":
            cancelled(chain, rid)
            state[rid] = "cancelled"
        elif op == "settle" and state.get(rid) in ("active", "cancelled"):
            settled(chain, rid, verified=rid * 600)
            state[rid] = "settled"
        elif op == "reclaim" and state.get(rid) in ("active", "cancelled"):
            reclaimed(chain, rid)
            state[rid] = "expired"
        elif op == "reorg" and chain.events and chain.events[-1].event != "RentalCreated":
            gone = chain.events[-1]
            chain.reorg([gone])
            state[int(gone.args["rentalId"])] = "cancelled" if any(
                e.event == "RentalCancelled" and e.args["rentalId"] == gone.args["rentalId"]
                for e in chain.events) else "active"
        elif op == "restart":
            book = book_over(store, chain)
        elif op == "outage":
            chain.outages = 1
            with pytest.raises(UnavailableError):
                book.poll()
        elif op == "poll":
            book.poll()
    book.poll()
    check(book, chain)
