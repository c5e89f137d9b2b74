"""The king's network view as pure domain code: verdict checks, the bounded verdict book and its hourly buckets,
batch attachment, and the price history."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from eth_account import Account

from blendr.errors import InvalidArgumentError
from king.netview import (
    BUCKET_S,
    BUCKETS,
    MAX_VERDICTS_PER_MESSAGE,
    NetworkDesk,
    Outcome,
    PoolView,
    PriceHistory,
    PricePoint,
    ProviderState,
    QueenAddress,
    RawVerdict,
    SessionInfo,
    VerdictBook,
    VerdictRecord,
    check_limit,
    check_verdict,
    provider_state,
)
from king.scheduler import ModelOffer, ProviderOffer
from tests.fakes.queens import FakeClock

NOW = 1_800_000_000.0
Q1, Q2, Q3 = (QueenAddress(Account.create().address) for _ in range(3))
P1, P2, P3 = (Account.create().address for _ in range(3))
POOLS = {Q1: frozenset({P1, P2}), Q2: frozenset({P3})}


def pool(q: QueenAddress) -> frozenset[str]:
    return POOLS.get(q, frozenset())


def verdict(cid: str, *, queen: QueenAddress = Q1, provider: str = P1, outcome: str = "passed",
            decided: float = NOW, took: float = 5.0, rental: bytes = b"") -> VerdictRecord:
    return check_verdict(queen, cid, provider, outcome, "" if outcome == "passed" else "late", decided - took, decided,
                         rental, now=NOW, pool=pool)


# ------------------------------------------------------------------ checks

def test_a_good_verdict_is_kept_with_its_fields() -> None:
    r = verdict("c-1", outcome="failed", rental=b"\x07" * 32)
    assert (r.challenge_id, r.provider, r.queen, r.verdict, r.reason) == ("c-1", P1, Q1, Outcome.FAILED, "late")
    assert r.issued_unix == NOW - 5 and r.decided_unix == NOW and r.rental_id == b"\x07" * 32


@pytest.mark.parametrize(("kw", "match"), [
    ({"cid": ""}, "malformed"), ({"cid": "x" * 129}, "malformed"), ({"cid": "a b"}, "malformed"),
    ({"outcome": "missed"}, "unknown verdict"), ({"outcome": "PASSED"}, "unknown verdict"),
    ({"provider": "0xnope"}, "not an address"),
    ({"provider": P3}, "not in the pool"),  # queen 2's provider, reported by queen 1
    ({"decided": math.nan}, "finite"), ({"decided": math.inf}, "finite"),
    ({"took": -1.0}, "after issue"), ({"took": 2 * 86400.0}, "after issue"),
    ({"decided": NOW + 3600}, "ago"), ({"decided": NOW - 3 * 86400}, "ago"),
    ({"rental": b"\x01" * 31}, "rental id"),
])
def test_a_hostile_verdict_is_refused(kw: dict[str, object], match: str) -> None:
    cid = str(kw.pop("cid", "c-1"))
    with pytest.raises(InvalidArgumentError, match=match):
        verdict(cid, **kw)  # type: ignore[arg-type]


def test_an_overlong_reason_is_refused_and_a_long_one_is_cut() -> None:
    with pytest.raises(InvalidArgumentError, match="reason"):
        check_verdict(Q1, "c", P1, "failed", "x" * 5000, NOW - 1, NOW, b"", now=NOW, pool=pool)
    r = check_verdict(Q1, "c", P1, "failed", "x" * 1000, NOW - 1, NOW, b"", now=NOW, pool=pool)
    assert len(r.reason) == 200


@pytest.mark.parametrize(("limit", "expect"), [(0, 50), (1, 1), (500, 500)])
def test_limits(limit: int, expect: int) -> None:
    assert check_limit(limit) == expect


def test_a_limit_above_500_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="above 500"):
        check_limit(501)


# ------------------------------------------------------------------ the book

def test_duplicates_are_ignored_and_counted_once() -> None:
    book = VerdictBook()
    assert book.add([verdict("c-1"), verdict("c-1"), verdict("c-2", outcome="abandoned")]) == 2
    assert book.add([verdict("c-1")]) == 0
    assert book.totals(P1) == (1, 1)
    assert [r.challenge_id for r in book.recent()] == ["c-2", "c-1"]  # same decision time: the later arrival first


def test_the_same_challenge_id_from_two_queens_is_two_verdicts() -> None:
    book = VerdictBook()
    assert book.add([verdict("c-1"), verdict("c-1", queen=Q2, provider=P3)]) == 2
    assert len(book) == 2


def test_recent_is_newest_first_filtered_and_limited() -> None:
    book = VerdictBook()
    book.add([verdict(f"c-{i}", decided=NOW - 100 + i, provider=P1 if i % 2 else P2) for i in range(10)])
    assert [r.challenge_id for r in book.recent(limit=3)] == ["c-9", "c-8", "c-7"]
    assert {r.provider for r in book.recent(provider=P2)} == {P2} and len(book.recent(provider=P2)) == 5


def test_a_queen_over_its_cap_evicts_only_its_own_oldest() -> None:
    book = VerdictBook(max_total=100, max_per_queen=10)
    book.add([verdict("q2-0", queen=Q2, provider=P3)])
    book.add([verdict(f"c-{i}") for i in range(25)])
    assert book.held_by(Q1) == 10 and book.held_by(Q2) == 1
    assert [r.challenge_id for r in book.recent(provider=P1)][-1] == "c-15"
    assert book.totals(P1) == (25, 0)  # the counts keep what the ring let go


def test_a_flooding_queen_cannot_push_another_below_its_share_of_the_total() -> None:
    book = VerdictBook(max_total=30, max_per_queen=20)
    book.add([verdict(f"q2-{i}", queen=Q2, provider=P3) for i in range(10)])
    book.add([verdict(f"q1-{i}") for i in range(1000)])  # a flood from queen 1
    assert len(book) <= 30
    assert book.held_by(Q2) == 10  # untouched: queen 1 always held more
    assert book.held_by(Q1) == 20


def test_the_total_is_shared_when_every_queen_is_busy() -> None:
    book = VerdictBook(max_total=30, max_per_queen=30)
    for i in range(100):
        book.add([verdict(f"a-{i}"), verdict(f"b-{i}", queen=Q2, provider=P3)])
    assert len(book) == 30 and abs(book.held_by(Q1) - book.held_by(Q2)) <= 1


def test_hourly_buckets_cover_the_last_24_hours_oldest_first() -> None:
    book = VerdictBook()
    clock_now = NOW
    book.add([verdict("old", decided=NOW - 1)])  # NOW - 1 is still "now" for the checks
    rec = book.providers[P1]
    # a verdict 30 hours earlier falls out of the buckets (but not the totals)
    book._count(VerdictRecord(*("x", P1, Q1, Outcome.FAILED, "", NOW - 30 * 3600 - 5, NOW - 30 * 3600)))  # type: ignore[arg-type]
    book.add([verdict("f", outcome="failed", decided=NOW - 2 * 3600)])
    points = book.pass_rate(P1, clock_now)
    assert len(points) == BUCKETS and points[-1].start_unix == (NOW // BUCKET_S) * BUCKET_S
    assert [p.start_unix for p in points] == sorted(p.start_unix for p in points)
    assert sum(p.passed for p in points) == 1 and sum(p.failed for p in points) == 1
    assert all(h > NOW // BUCKET_S - BUCKETS for h in rec.buckets)
    assert book.totals(P1) == (1, 2)
    assert book.pass_rate(P3, NOW)[0].passed == 0  # a provider never heard of: zeros


def test_providers_followed_are_bounded_stalest_first() -> None:
    book = VerdictBook(max_providers=2)
    book.add([verdict("a", provider=P1, decided=NOW - 10), verdict("b", provider=P2, decided=NOW - 5)])
    book.add([verdict("c", queen=Q2, provider=P3)])
    assert set(book.providers) == {P2, P3}


# ------------------------------------------------------------------ batches

BATCH = "0x" + "ab" * 32
TX = "0x" + "cd" * 32


def test_a_batch_marks_the_reporting_queens_verdicts_only() -> None:
    book = VerdictBook()
    book.add([verdict("c-1"), verdict("c-2", rental=b"\x01" * 32), verdict("c-1", queen=Q2, provider=P3)])
    assert book.attach_batch(Q1, BATCH.upper().replace("0X", "0x"), TX, [(b"\x02" * 32, ["c-1", "c-2", "gone"])]) == 2
    mine = {r.challenge_id: r for r in book.recent() if r.queen == Q1}
    assert mine["c-1"].etc_batch_id == BATCH and mine["c-1"].etc_tx == TX and mine["c-1"].rental_id == b"\x02" * 32
    assert mine["c-2"].rental_id == b"\x01" * 32  # the rental the verdict came with stays
    other = next(r for r in book.recent() if r.queen == Q2)
    assert other.etc_batch_id == ""  # queen 1 cannot touch queen 2's verdict of the same id


@pytest.mark.parametrize(("batch", "tx", "rentals", "match"), [
    ("0x12", TX, [], "batch id"), (BATCH, "nope", [], "transaction"),
    (BATCH, TX, [(b"\x01", ["c"])], "32 bytes"),
    (BATCH, TX, [(b"\x01" * 32, [])] * 501, "rentals"),
    (BATCH, TX, [(b"\x01" * 32, ["c"] * 5001)], "challenges"),
])
def test_a_malformed_batch_report_is_refused_whole(batch: str, tx: str, rentals: Sequence[tuple[bytes, Sequence[str]]],
                                                   match: str) -> None:
    book = VerdictBook()
    book.add([verdict("c")])
    with pytest.raises(InvalidArgumentError, match=match):
        book.attach_batch(Q1, batch, tx, rentals)
    assert book.recent()[0].etc_batch_id == ""


def test_a_batch_found_landed_already_has_no_tx() -> None:
    book = VerdictBook()
    book.add([verdict("c")])
    assert book.attach_batch(Q1, BATCH, "", [(b"\x01" * 32, ["c"])]) == 1
    assert book.recent()[0].etc_tx == ""


# ------------------------------------------------------------------ prices

def pp(model: str, quote: int) -> PricePoint:
    return PricePoint(0.0, model, quote, quote // 2, 1, 2)


def test_price_history_keeps_its_retention_oldest_first() -> None:
    h = PriceHistory(60.0, 600.0)
    for i in range(30):
        h.record(NOW + 60 * i, [pp("cpu", 100 + i), pp("h100", 1000 + i)])
    now = NOW + 60 * 29
    pts = h.window(now)
    assert [p.ts_unix for p in pts] == sorted(p.ts_unix for p in pts) and pts[0].ts_unix >= now - 600
    assert len(pts) == 2 * 11
    assert [p.quote_per_gpu_hour for p in h.window(now, 120, "cpu")] == [127, 128, 129]


def test_price_history_drops_a_sample_not_after_the_last() -> None:
    h = PriceHistory(60.0, 600.0)
    h.record(NOW, [pp("cpu", 1)])
    h.record(NOW, [pp("cpu", 2)])
    h.record(NOW - 5, [pp("cpu", 3)])
    assert [p.quote_per_gpu_hour for p in h.window(NOW)] == [1]


@pytest.mark.parametrize("window", [601.0, -1.0])
def test_a_window_beyond_the_retention_is_refused(window: float) -> None:
    with pytest.raises(InvalidArgumentError, match="window_s"):
        PriceHistory(60.0, 600.0).window(NOW, window)


# ------------------------------------------------------------------ the desk

class Pools:
    def __init__(self, listed: dict[str, list[tuple[ProviderOffer, int]]]) -> None:
        self._listed = listed

    def members(self, queen: str) -> frozenset[str]:
        return frozenset(o.provider for o, _ in self._listed.get(queen, []))

    def listed(self) -> dict[str, list[tuple[ProviderOffer, int]]]:
        return self._listed

    def reputation_of(self, provider: str) -> int:
        return 7000


class Sessions:
    def __init__(self, queens: Sequence[str]) -> None:
        self.queens = queens

    def session_info(self) -> list[SessionInfo]:
        return [SessionInfo(q, f"{q[:6]}:7470", NOW - 100, NOW - 1) for q in self.queens]


def offer(p: str, q: str, *, gpus: int = 2, alive: bool = True, model: str = "cpu") -> ProviderOffer:
    return ProviderOffer(p, q, model, gpus, 2**30, 1.0, 10, 5000, 1.0, alive)


def desk(clock: FakeClock) -> NetworkDesk:
    listed = {Q1: [(offer(P1, Q1), 2), (offer(P2, Q1, alive=False), 0)], Q2: [(offer(P3, Q2, model="h100"), 1)],
              Q3: [(offer(Account.create().address, Q3), 0)]}  # queen 3 is not connected
    offers = [ModelOffer("cpu", 1, 0, 2, 10, 100, 5000)]
    return NetworkDesk(clock, Pools(listed), Sessions([Q1, Q2]), lambda: offers, price_interval_s=60.0,
                       price_retention_s=3600.0)


def raw(cid: str, provider: str = P1, **kw: object) -> RawVerdict:
    fields: dict[str, object] = {"verdict": "passed", "reason": "", "issued_unix": NOW - 3, "decided_unix": NOW,
                                 "rental_id": b""}
    fields.update(kw)
    return RawVerdict(cid, provider, **fields)  # type: ignore[arg-type]


def test_the_desk_keeps_good_verdicts_and_refuses_the_rest() -> None:
    d = desk(FakeClock(NOW))
    got = d.on_verdicts(Q1, [raw("a"), raw("b", P3), raw("c", decided_unix=math.nan), raw("d", verdict="failed")])
    assert (got.kept, got.refused) == (2, 2) and "not in the pool" in got.why
    with pytest.raises(InvalidArgumentError, match="at most 500"):
        d.on_verdicts(Q1, [raw(f"x{i}") for i in range(MAX_VERDICTS_PER_MESSAGE + 1)])
    assert len(d.verdicts) == 2  # nothing of the refused message was kept
    assert [r.challenge_id for r in d.challenges(provider=P1.lower())] == ["d", "a"]
    with pytest.raises(InvalidArgumentError, match="provider"):
        d.challenges(provider="nope")


def test_the_desk_shows_connected_pools_and_their_providers_with_state() -> None:
    d = desk(FakeClock(NOW))
    d.on_verdicts(Q1, [raw("a"), raw("b", verdict="abandoned")])
    assert d.pool_views() == sorted([
        PoolView(Q1, f"{Q1[:6]}:7470", 2, 1, 4, 0, NOW - 100, NOW - 1),
        PoolView(Q2, f"{Q2[:6]}:7470", 1, 1, 2, 1, NOW - 100, NOW - 1)], key=lambda p: p.queen)
    views = {v.offer.provider: v for v in d.provider_views()}
    assert set(views) == {P1, P2, P3}
    assert views[P1].state is ProviderState.BUSY and views[P2].state is ProviderState.OFFLINE
    assert views[P3].state is ProviderState.AVAILABLE and views[P1].reputation_bps == 7000
    assert (views[P1].passed, views[P1].failed) == (1, 1) and sum(p.passed for p in views[P1].pass_rate) == 1
    assert [v.offer.provider for v in d.provider_views(gpu_model="h100")] == [P3]
    assert {v.offer.provider for v in d.provider_views(queen=Q1.lower())} == {P1, P2}
    with pytest.raises(InvalidArgumentError, match="queen"):
        d.provider_views(queen="0x12")


def test_the_desk_samples_quotes_over_time() -> None:
    clock = FakeClock(NOW)
    d = desk(clock)
    for _ in range(3):
        d.sample()
        clock.advance(60)
    pts = d.price_history()
    assert [(p.ts_unix, p.gpu_model, p.quote_per_gpu_hour, p.min_ask_per_gpu_hour) for p in pts] == [
        (NOW + 60 * i, "cpu", 100, 10) for i in range(3)]


def test_provider_state() -> None:
    assert provider_state(offer(P1, Q1, gpus=0), 0) is ProviderState.AVAILABLE
    assert provider_state(offer(P1, Q1), 1) is ProviderState.AVAILABLE
