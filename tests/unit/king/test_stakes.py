"""king.stakes.StakeBook: what GPURental accepts, from cached stakes (no chain read on the placement path), kept
bounded against a queen listing junk; and the market's understaked list, pruned with its pool."""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

from blendr.errors import InvalidArgumentError, UnavailableError
from king.market import Market
from king.pricing import Pricer, PricingParams, tokens
from king.scheduler import ProviderOffer, Scheduler
from king.stakes import MAX_KEPT, READS_PER_ROUND, StakeBook
from tests.fakes.queens import FakeClock

P, Q = "0x" + "11" * 20, "0x" + "22" * 20
MIN_P, MIN_Q = 100, 50


class Reader:
    def __init__(self) -> None:
        self.stakes = {P: 250, Q: 50}
        self.min_p, self.down = MIN_P, False
        self.reserved: dict[str, int] = {}
        self.bps = 5000
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

    def reserved_stake(self, provider: str) -> int:
        return self.reserved.get(provider, 0)

    def slash_bps(self) -> int:
        return self.bps


def test_coverage_is_the_gpus_the_stake_pays_for_and_unknown_counts_as_none() -> None:
    r, clock = Reader(), FakeClock()
    book = StakeBook(r, clock, ttl_s=60)
    assert book.covered_gpus(P, Q) == 0 and r.reads == 0  # never read: none, and no chain call here
    assert book.due([(P, Q)]) == [("q", Q), ("p", P)]  # listed, never read: read by the next refresh
    assert book.refresh(book.due([(P, Q)])) is True
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


def test_stake_its_open_rentals_reserve_is_not_offered_again() -> None:
    """Coverage follows GPURental's _reserveStakes exactly: minStake × gpus of stake, and beyond what the open
    rentals reserve (reservedStakeOf) the new rental's slash share; a rental the king creates counts at once."""
    r, clock = Reader(), FakeClock()
    r.stakes[P] = 400  # 4 GPUs by stake; each rented GPU reserves 100 * 50 % = 50
    book = StakeBook(r, clock, ttl_s=60)
    book.refresh(book.due([(P, Q)]))
    assert book.covered_gpus(P, Q) == 4
    r.reserved[P] = 50 * 7  # 7 GPUs under open rentals: 400 - 350 = 50 free, one more GPU's slash share
    clock.advance(61)
    assert book.refresh(book.due([(P, Q)])) is True
    assert book.covered_gpus(P, Q) == 1
    r.reserved[P] = 50 * 8
    book.reserve(P, 1)  # the king created a rental of 1 GPU: counted now, and P is due for a new read
    assert book.covered_gpus(P, Q) == 0
    assert ("p", P) in book.due([(P, Q)])
    book.refresh(book.due([(P, Q)]))
    assert book.covered_gpus(P, Q) == 0  # the chain agrees: nothing left
    r.bps = 0  # no slashing: only minStake × gpus counts
    r.reserved[P] = 0
    clock.advance(61)
    book.refresh(book.due([(P, Q)]))
    assert book.covered_gpus(P, Q) == 4
    for stake, held, bps in [(399, 0, 3333), (1000, 333, 7777), (12345, 6000, 10000), (10**6, 10**5, 1)]:
        r.stakes[P], r.reserved[P], r.bps = stake, held, bps
        clock.advance(61)
        book.refresh(book.due([(P, Q)]))
        n = book.covered_gpus(P, Q)
        ok = [g for g in range(0, stake // MIN_P + 1) if MIN_P * g * bps // 10_000 <= stake - held]
        assert n == max(ok), (stake, held, bps, n)


def test_an_outage_keeps_the_last_known_stakes_and_forget_reads_again() -> None:
    r, clock = Reader(), FakeClock()
    book = StakeBook(r, clock, ttl_s=60)
    book.covered_gpus(P, Q)
    book.refresh(book.due([(P, Q)]))
    r.down = True
    clock.advance(61)
    assert book.refresh(book.due([(P, Q)])) is False
    assert book.covered_gpus(P, Q) == 2  # an Ethereum outage does not empty the market
    book.forget(P, Q)  # GPURental refused a rental for stake: stale
    assert book.covered_gpus(P, Q) == 0
    r.down = False
    r.stakes[P] = 100
    assert book.due([(P, Q)]) == [("q", Q), ("p", P)]  # forgotten: read again first thing
    assert book.refresh(book.due([(P, Q)])) is True and book.covered_gpus(P, Q) == 1


def test_a_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StakeBook(Reader(), FakeClock(), ttl_s=0)


def _addr(i: int) -> str:
    return "0x" + f"{i:040x}"


def test_nodes_no_pool_lists_any_more_are_forgotten() -> None:
    r, clock = Reader(), FakeClock()
    book = StakeBook(r, clock, ttl_s=60)
    p2, q2 = _addr(7), _addr(8)
    r.stakes[p2], r.stakes[q2] = 100, 50
    book.refresh(book.due([(P, Q), (p2, q2)]))
    assert book.covered_gpus(P, Q) == 2 and book.covered_gpus(p2, q2) == 1
    book.covered_gpus(_addr(9), Q)  # asked for by a snapshot the market refused: never listed, never read
    assert book.due([(P, Q)]) == []  # p2 and q2 are listed by no pool now: dropped, not read again
    assert book.covered_gpus(p2, q2) == 0 and book.covered_gpus(P, Q) == 2
    reads = r.reads
    book.refresh(book.due([(P, Q)]))
    assert r.reads == reads  # nothing read for the node asked about but never listed
    assert book.due([]) == [] and book.covered_gpus(P, Q) == 0  # the last pool gone: the book is empty


def test_a_flood_of_junk_providers_does_not_starve_a_real_one() -> None:
    r, clock = Reader(), FakeClock()
    book = StakeBook(r, clock, ttl_s=60)
    hostile, honest = _addr(1), Q
    r.stakes[hostile] = 50
    book.refresh(book.due([(P, honest)]))  # the honest queen and its provider, read
    real = _addr(2)
    r.stakes[real] = 300
    for snapshot in range(5):  # every snapshot: 10,000 fresh junk providers, the real provider listed late
        junk = [(_addr(10_000_000 + snapshot * 10_000 + i), hostile) for i in range(10_000)]
        pairs = [*junk, (P, honest)] + ([(real, honest)] if snapshot >= 3 else [])
        due = book.due(pairs)
        assert len(due) <= READS_PER_ROUND  # bounded reads per round, whatever is listed
        book.refresh(due)
        if snapshot >= 3:  # listed for the first time in snapshot 3: read in that very round
            assert book.covered_gpus(real, honest) == 3
        assert len(book._providers) <= 2 + READS_PER_ROUND  # the junk of the previous snapshots is gone
    assert book.covered_gpus(P, honest) == 2


def test_newest_listed_providers_are_read_first_and_the_book_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import king.stakes

    r, clock = Reader(), FakeClock()
    book = StakeBook(r, clock, ttl_s=60)
    old = [(_addr(100 + i), Q) for i in range(READS_PER_ROUND)]
    book.due(old)  # listed, not read yet
    new = (_addr(5), Q)
    due = book.due([*old, new])
    assert due[:2] == [("q", Q), ("p", new[0])]  # newest listed first among the never read
    monkeypatch.setattr(king.stakes, "MAX_KEPT", 3)
    book.refresh(book.due([*old, new]))
    assert len(book._providers) == 3  # full: the others stay unread (covering nothing) until room frees up
    assert [e for e in book.due([*old, new]) if e[0] == "p"] == []
    assert MAX_KEPT >= 10_000


def test_the_market_keeps_understaked_only_for_providers_it_offers_now() -> None:
    model = "h100-sxm"
    book = StakeBook(Reader(), FakeClock(), ttl_s=60)
    market = Market(Scheduler(Pricer(PricingParams(base_per_gpu_hour={model: tokens("2")}, surge=0.0))),
                    stakes=book)
    queen = to_checksum(Q)

    def offer(p: str, gpus: int = 8) -> tuple[ProviderOffer, bytes, int]:
        return ProviderOffer(to_checksum(p), queen, model, gpus, 80 * 2**30, 60.0, tokens("1"), 5000, 1.0), b"k", 0

    market.on_snapshot(queen, 1, [offer(P)])
    assert market.understaked == {to_checksum(P): (8, 0)}  # never read: covers nothing
    with pytest.raises(InvalidArgumentError):  # refused by the scheduler: changes nothing, understaked included
        market.on_snapshot(queen, 2, [offer(_addr(3)), offer(_addr(4), gpus=-1)])
    assert market.understaked == {to_checksum(P): (8, 0)}
    market.on_snapshot(queen, 3, [offer(_addr(5))])
    assert market.understaked == {to_checksum(_addr(5)): (8, 0)}  # P left the pool: pruned
    market.remove_queen(queen)
    assert market.understaked == {}


def to_checksum(a: str) -> str:
    return str(to_checksum_address(a))
