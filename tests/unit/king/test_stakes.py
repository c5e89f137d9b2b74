"""king.stakes.StakeBook: what GPURental accepts, from cached stakes (no chain read on the placement path)."""

from __future__ import annotations

import pytest

from blendr.errors import UnavailableError
from king.stakes import StakeBook
from tests.fakes.queens import FakeClock

P, Q = "0x" + "11" * 20, "0x" + "22" * 20
MIN_P, MIN_Q = 100, 50


class Reader:
    def __init__(self) -> None:
        self.stakes = {P: 250, Q: 50}
        self.min_p, self.down = MIN_P, False
        self.reads = 0

    def _read(self, who: str) -> int:
        self.reads += 1
        if self.down:
            raise UnavailableError("eth RPC down")
        return self.stakes.get(who, 0)

    def provider_stake(self, provider: str) -> int:
        return self._read(provider)

    def queen_stake(self, queen: str) -> int:
        return self._read(queen)

    def min_provider_stake(self) -> int:
        if self.down:
            raise UnavailableError("eth RPC down")
        return self.min_p

    def min_queen_stake(self) -> int:
        return MIN_Q


def test_coverage_is_the_gpus_the_stake_pays_for_and_unknown_counts_as_none() -> None:
    r, clock = Reader(), FakeClock()
    book = StakeBook(r, clock, ttl_s=60)
    assert book.covered_gpus(P, Q) == 0 and r.reads == 0  # never read: none, and no chain call here
    assert book.due([]) == [("p", P), ("q", Q)]  # asked for: read by the next refresh
    assert book.refresh(book.due([])) is True
    assert book.covered_gpus(P, Q) == 2  # 250 // 100
    assert book.due([(P, Q)]) == []  # fresh
    r.stakes[Q] = MIN_Q - 1
    clock.advance(61)
    assert book.refresh(book.due([(P, Q)])) is True
    assert book.covered_gpus(P, Q) == 0  # the queen's stake is short: GPURentalInsufficientQueenStake
    r.min_p = 0
    r.stakes[Q] = MIN_Q
    clock.advance(61)
    book.refresh(book.due([(P, Q)]))
    assert book.covered_gpus(P, Q) >= 2**20  # no minimum: any number of GPUs


def test_an_outage_keeps_the_last_known_stakes_and_forget_reads_again() -> None:
    r, clock = Reader(), FakeClock()
    book = StakeBook(r, clock, ttl_s=60)
    book.covered_gpus(P, Q)
    book.refresh(book.due([]))
    r.down = True
    clock.advance(61)
    assert book.refresh(book.due([(P, Q)])) is False
    assert book.covered_gpus(P, Q) == 2  # an Ethereum outage does not empty the market
    book.forget(P, Q)  # GPURental refused a rental for stake: stale
    assert book.covered_gpus(P, Q) == 0
    r.down = False
    r.stakes[P] = 100
    assert book.refresh(book.due([])) is True and book.covered_gpus(P, Q) == 1


def test_a_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StakeBook(Reader(), FakeClock(), ttl_s=0)
