"""The King's global scheduler: matching, pricing, reservations, fairness, rescheduling, reasons.

Pricing in most tests is flat (surge 0): a model's quote is its base price, so prices are exact.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blendr.jobspec import Spec
from king.pricing import Pricer, PricingParams, tokens
from king.scheduler import (
    ModelOffer,
    Placement,
    PoolSnapshot,
    ProviderOffer,
    Scheduler,
    model_name,
)

GIB = 2**30
QA, QB = "0xQueenA", "0xQueenB"
H100, A100, RTX = "h100-sxm", "a100-80gb", "rtx-4090"
BASES = {H100: tokens("2"), A100: tokens("1"), RTX: tokens("0.5")}
HIGH = tokens("1000")
"""A price ceiling far above any price in these tests (a renter's spec always has one)."""


def job_spec(
    gpus: int, gpu_model: str = "", *, min_vram_bytes: int = 0, min_tflops: float = 0.0, max_price: int = HIGH
) -> Spec:
    """A renter's spec as the scheduler sees it (the duration does not matter to placement)."""
    return Spec(gpus, 3600, max_price, gpu_model, min_vram_bytes, min_tflops)


def flat(**kw: object) -> Pricer:
    params: dict[str, object] = {"base_per_gpu_hour": BASES, "min_per_gpu_hour": 0, "surge": 0.0}
    params.update(kw)
    return Pricer(PricingParams(**params))  # type: ignore[arg-type]


def offer(
    provider: str,
    queen: str = QA,
    *,
    model: str = H100,
    gpus: int = 8,
    vram: int = 80 * GIB,
    tflops: float = 60.0,
    ask: int = tokens("1"),
    rep: int = 9000,
    uptime: float = 1.0,
    alive: bool = True,
) -> ProviderOffer:
    return ProviderOffer(provider, queen, model, gpus, vram, tflops, ask, rep, uptime, alive)


def snap(queen: str, *offers: ProviderOffer, seq: int = 0) -> PoolSnapshot:
    return PoolSnapshot(queen, tuple(offers), seq)


def sched(*snaps: PoolSnapshot, min_reputation: int = 0, pricer: Pricer | None = None) -> Scheduler:
    s = Scheduler(pricer or flat(), min_reputation=min_reputation)
    for sn in snaps:
        s.update_pool(sn)
    return s


def placed_on(s: Scheduler, job_id: str) -> str | None:
    pl = s.placement(job_id)
    return pl.provider if pl else None


# ---------------------------------------------------------------------------------------------- placing


def test_places_a_matching_job_and_reserves_its_gpus() -> None:
    s = sched(snap(QA, offer("P1", gpus=8)))
    s.submit("j1", "alice", job_spec(gpus=2, gpu_model=H100))
    assert s.queued() == 1
    assert s.schedule() == [Placement("j1", "alice", QA, "P1", 2, tokens("2"))]
    assert s.queued() == 0
    assert s.placement("j1") == Placement("j1", "alice", QA, "P1", 2, tokens("2"))
    assert s.utilization(H100) == 0.25
    assert s.schedule() == []


def test_price_is_the_higher_of_ask_and_quote() -> None:
    s = sched(snap(QA, offer("cheap", ask=tokens("1"), gpus=1), offer("dear", ask=tokens("3"), gpus=1)))
    s.submit("j1", "r", job_spec(1, H100))
    s.submit("j2", "r", job_spec(1, H100))
    prices = {p.provider: p.price_per_gpu_hour for p in s.schedule()}
    assert prices == {"cheap": tokens("2"), "dear": tokens("3")}


def test_quote_surges_with_utilization_between_placements() -> None:
    pricer = flat(surge=1.0)
    s = sched(snap(QA, offer("P1", gpus=2, ask=0)), pricer=pricer)
    s.submit("j1", "r", job_spec(1, H100))
    s.submit("j2", "r", job_spec(1, H100))
    first, second = s.schedule()
    assert first.price_per_gpu_hour == tokens("2")  # utilization 0
    assert second.price_per_gpu_hour == tokens("2.5")  # utilization 0.5: 2 × (1 + 0.25)
    assert s.quote(H100) == tokens("4")


def test_every_spec_has_a_ceiling_that_binds_at_any_price() -> None:
    """There is no "no ceiling" (a renter's spec always has one): a dear provider is taken up to it exactly."""
    s = sched(snap(QA, offer("P1", gpus=1, ask=tokens("40"))))
    s.submit("below", "r", job_spec(1, H100, max_price=tokens("40") - 1))
    s.submit("at", "r", job_spec(1, H100, max_price=tokens("40")))
    assert [(p.job_id, p.price_per_gpu_hour) for p in s.schedule()] == [("at", tokens("40"))]
    assert s.placement("below") is None


def test_renters_max_price_is_never_exceeded() -> None:
    s = sched(snap(QA, offer("P1", gpus=4, ask=tokens("1"))))
    s.submit("under_quote", "r", job_spec(1, H100, max_price=tokens("1.5")))  # quote is 2.0
    s.submit("at_quote", "r", job_spec(1, H100, max_price=tokens("2")))
    assert [p.job_id for p in s.schedule()] == ["at_quote"]
    assert s.placement("under_quote") is None


def test_any_model_job_takes_the_cheaper_of_equal_providers() -> None:
    s = sched(snap(QA, offer("P-h100", model=H100, gpus=2), offer("P-a100", model=A100, gpus=2)))
    s.submit("j1", "r", job_spec(2))
    (pl,) = s.schedule()
    assert (pl.provider, pl.price_per_gpu_hour) == ("P-a100", tokens("1"))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (job_spec(1, A100), "P-a100"),
        (job_spec(1, min_vram_bytes=48 * GIB), "P-big"),
        (job_spec(1, min_tflops=50.0), "P-fast"),
        (job_spec(8), "P-many"),
    ],
)
def test_spec_constraints_pick_the_only_matching_provider(spec: Spec, expected: str) -> None:
    s = sched(
        snap(
            QA,
            offer("P-a100", model=A100, gpus=1, vram=24 * GIB, tflops=10.0),
            offer("P-big", model=RTX, gpus=1, vram=64 * GIB, tflops=10.0),
            offer("P-fast", model=RTX, gpus=1, vram=24 * GIB, tflops=80.0),
            offer("P-many", model=RTX, gpus=8, vram=24 * GIB, tflops=10.0),
        )
    )
    s.submit("j", "r", spec)
    assert [p.provider for p in s.schedule()] == [expected]


def test_unmeasured_tflops_fail_any_minimum_but_pass_none() -> None:
    s = sched(snap(QA, offer("P1", gpus=2, tflops=0.0)))
    s.submit("needs", "r", job_spec(1, H100, min_tflops=0.5))
    s.submit("any", "r", job_spec(1, H100))
    assert [p.job_id for p in s.schedule()] == ["any"]


def test_providers_below_min_reputation_take_no_jobs() -> None:
    s = sched(snap(QA, offer("low", rep=4999), offer("ok", rep=5000, gpus=1)), min_reputation=5000)
    for j in ("j1", "j2"):
        s.submit(j, "r", job_spec(1, H100))
    assert [p.provider for p in s.schedule()] == ["ok"]
    assert s.placement("j2") is None


def test_provider_score_prefers_reputation_uptime_and_less_load() -> None:
    s = sched(snap(QA, offer("rep9", rep=9000), offer("rep7", rep=7000)))
    s.submit("j1", "r", job_spec(1, H100))
    assert placed_on_after(s, "j1") == "rep9"
    s = sched(snap(QA, offer("up1", uptime=1.0), offer("up8", uptime=0.8)))
    s.submit("j1", "r", job_spec(1, H100))
    assert placed_on_after(s, "j1") == "up1"
    # Equal providers: the second job goes to the idle one (less loaded), not back to the first.
    s = sched(snap(QA, offer("P1"), offer("P2")))
    s.submit("j1", "r", job_spec(1, H100))
    s.submit("j2", "r", job_spec(1, H100))
    assert sorted(p.provider for p in s.schedule()) == ["P1", "P2"]


def placed_on_after(s: Scheduler, job_id: str) -> str | None:
    s.schedule()
    return placed_on(s, job_id)


def test_cheaper_ask_wins_among_equal_scores() -> None:
    s = sched(snap(QA, offer("dear", ask=tokens("5")), offer("cheap", ask=tokens("3"))))
    s.submit("j1", "r", job_spec(1, H100))
    assert placed_on_after(s, "j1") == "cheap"


def test_first_level_picks_the_least_loaded_pool() -> None:
    s = sched(snap(QA, offer("A1", QA, gpus=4), seq=1), snap(QB, offer("B1", QB, gpus=4, rep=5000), seq=1))
    s.submit("j1", "r", job_spec(2, H100))
    s.submit("j2", "r", job_spec(1, H100))
    s.submit("j3", "r", job_spec(1, H100))
    placements = s.schedule()
    # j1 -> pool A (equal load, higher free, then the lower address); j2 -> pool B (A is half loaded now);
    # j3 -> pool B again? A: 2/4 used = 0.5, B: 1/4 = 0.25, so B.
    assert [(p.job_id, p.queen) for p in placements] == [("j1", QA), ("j2", QB), ("j3", QB)]


def test_pool_level_skips_a_pool_whose_providers_do_not_match() -> None:
    # Pool A is idle but only has small-VRAM cards; pool B is busier and has the big one.
    s = sched(
        snap(QA, offer("A1", QA, model=RTX, gpus=8, vram=24 * GIB)),
        snap(
            QB,
            offer("B1", QB, model=RTX, gpus=2, vram=48 * GIB),
            offer("B2", QB, model=RTX, gpus=2, vram=24 * GIB),
        ),
    )
    s.submit("busy", "r", job_spec(2, RTX, min_vram_bytes=24 * GIB))
    s.submit("big", "r", job_spec(1, RTX, min_vram_bytes=40 * GIB))
    s.schedule()
    assert placed_on(s, "big") == "B1"


def test_schedule_honours_max_placements() -> None:
    s = sched(snap(QA, offer("P1", gpus=8)))
    for i in range(5):
        s.submit(f"j{i}", "r", job_spec(1, H100))
    assert [p.job_id for p in s.schedule(max_placements=2)] == ["j0", "j1"]
    assert s.schedule(max_placements=0) == []
    assert [p.job_id for p in s.schedule()] == ["j2", "j3", "j4"]
    with pytest.raises(ValueError, match="max_placements"):
        s.schedule(max_placements=-1)


# ---------------------------------------------------------------------------------------------- reservations


def test_a_gpu_is_never_promised_twice_even_when_a_snapshot_still_shows_it_free() -> None:
    s = sched(snap(QA, offer("P1", gpus=2), seq=1))
    for i in range(3):
        s.submit(f"j{i}", "r", job_spec(1, H100))
    assert len(s.schedule()) == 2
    s.update_pool(snap(QA, offer("P1", gpus=2, rep=9100), seq=2))  # the queen has not seen the jobs yet
    assert s.schedule() == []
    assert s.placement("j2") is None
    s.release("j0")
    assert [p.job_id for p in s.schedule()] == ["j2"]


def test_release_frees_gpus_and_is_idempotent() -> None:
    s = sched(snap(QA, offer("P1", gpus=2)))
    s.submit("j1", "r", job_spec(2, H100))
    s.schedule()
    assert s.utilization(H100) == 1.0
    s.release("j1")
    assert s.utilization(H100) == 0.0
    assert s.placement("j1") is None
    s.release("j1")
    s.release("never-seen")
    assert s.utilization(H100) == 0.0


def test_release_of_a_queued_job_leaves_it_queued() -> None:
    s = sched()
    s.submit("j1", "r", job_spec(1))
    s.release("j1")
    assert s.queued() == 1


def test_stale_snapshot_is_ignored() -> None:
    s = sched(snap(QA, offer("new"), seq=5))
    s.update_pool(snap(QA, offer("old"), seq=4))
    s.submit("j1", "r", job_spec(1, H100))
    assert placed_on_after(s, "j1") == "new"
    s.update_pool(snap(QA, offer("same-seq"), seq=5))  # not older: applied
    s.submit("j2", "r", job_spec(1, H100))
    assert placed_on_after(s, "j2") == "same-seq"


def test_vanished_provider_takes_no_new_jobs_and_keeps_its_reservations() -> None:
    s = sched(snap(QA, offer("P1", gpus=4), offer("P2", gpus=4), seq=1))
    s.submit("j1", "r", job_spec(3, H100))
    s.schedule()
    first = placed_on(s, "j1")
    other = "P2" if first == "P1" else "P1"
    s.update_pool(snap(QA, offer(other, gpus=4), seq=2))
    assert s.placement("j1") is not None
    s.submit("j2", "r", job_spec(1, H100))
    assert placed_on_after(s, "j2") == other
    assert s.utilization(H100) == 0.25  # only live providers count
    # It comes back: its 3 promised GPUs are still taken, one is free.
    s.update_pool(snap(QA, offer("P1", gpus=4), offer("P2", gpus=4), seq=3))
    s.submit("j3", "r", job_spec(3, H100))
    s.submit("j4", "r", job_spec(1, H100))
    s.schedule()
    assert placed_on(s, "j3") == other
    assert placed_on(s, "j4") == first
    s.submit("j5", "r", job_spec(1, H100))
    assert s.schedule() == []


def test_dead_provider_takes_no_new_jobs() -> None:
    s = sched(snap(QA, offer("P1", alive=False), offer("P2", gpus=1)))
    s.submit("j1", "r", job_spec(1, H100))
    s.submit("j2", "r", job_spec(1, H100))
    assert [p.provider for p in s.schedule()] == ["P2"]


def test_remove_pool_takes_its_providers_out_and_keeps_placements() -> None:
    s = sched(snap(QA, offer("A1", QA, gpus=1), seq=7), snap(QB, offer("B1", QB, gpus=1)))
    s.submit("j1", "r", job_spec(1, H100))
    s.submit("j2", "r", job_spec(1, H100))
    s.schedule()
    s.remove_pool(QA)
    s.remove_pool(QA)
    assert s.placement("j1") is not None and s.placement("j2") is not None
    s.release("j1")
    s.release("j2")
    s.submit("j3", "r", job_spec(1, H100))
    assert placed_on_after(s, "j3") == "B1"
    s.update_pool(snap(QA, offer("A1", QA, gpus=1), seq=0))  # its seq was forgotten with the pool
    assert [o.gpus_total for o in s.offers()] == [2]


def test_a_provider_moving_to_another_queen_is_placed_through_the_new_one() -> None:
    s = sched(snap(QA, offer("P1", QA, gpus=2), seq=1))
    s.update_pool(snap(QB, offer("P1", QB, gpus=2), seq=1))
    s.submit("j1", "r", job_spec(1, H100))
    (pl,) = s.schedule()
    assert pl.queen == QB
    assert [(o.providers, o.gpus_total) for o in s.offers()] == [(1, 2)]
    s.update_pool(snap(QA, seq=2))  # the old queen no longer lists it: it stays with the new one
    s.submit("j2", "r", job_spec(1, H100))
    assert [p.queen for p in s.schedule()] == [QB]


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (offer("P1", gpus=-1), "gpus"),
        (offer("P1", tflops=float("nan")), "tflops"),
        (offer("P1", rep=10_001), "reputation"),
        (offer("P1", uptime=1.5), "uptime"),
        (offer("P1", queen=QB), "names queen"),
        (offer(""), "provider address"),
    ],
)
def test_malformed_snapshot_is_rejected_whole(bad: ProviderOffer, match: str) -> None:
    s = sched(snap(QA, offer("P0", gpus=1), seq=1))
    with pytest.raises(ValueError, match=match):
        s.update_pool(snap(QA, offer("P2"), bad, seq=2))
    with pytest.raises(ValueError, match="listed twice"):
        s.update_pool(snap(QA, offer("P2"), offer("P2"), seq=2))
    s.submit("j1", "r", job_spec(1, H100))
    assert placed_on_after(s, "j1") == "P0"


# ---------------------------------------------------------------------------------------------- queue


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (job_spec(0), "gpus"),
        (job_spec(1, min_vram_bytes=-1), "min_vram"),
        (job_spec(1, max_price=-1), "max_price"),
        (job_spec(1, max_price=0), "max_price"),
        (job_spec(1, max_price=2**256), "max_price"),
        (job_spec(1, min_tflops=-0.1), "min_tflops"),
        (job_spec(1, min_tflops=float("inf")), "min_tflops"),
    ],
)
def test_submit_rejects_invalid_specs(spec: Spec, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sched().submit("j", "r", spec)


def test_submit_rejects_duplicates_empty_ids_and_unknown_models() -> None:
    s = Scheduler(flat(), known_models=[H100])
    s.submit("j1", "r", job_spec(1, H100))
    with pytest.raises(ValueError, match="duplicate"):
        s.submit("j1", "other", job_spec(1))
    with pytest.raises(ValueError, match="unknown GPU model 'h300'"):
        s.submit("j2", "r", job_spec(1, "h300"))
    with pytest.raises(ValueError, match="job id and a renter"):
        s.submit("", "r", job_spec(1))
    with pytest.raises(ValueError, match="job id and a renter"):
        s.submit("j3", "", job_spec(1))
    s.submit("j4", "r", job_spec(1))  # any model is fine
    assert s.queued() == 2


def test_duplicate_of_a_placed_job_is_rejected() -> None:
    s = sched(snap(QA, offer("P1")))
    s.submit("j1", "r", job_spec(1, H100))
    s.schedule()
    with pytest.raises(ValueError, match="duplicate"):
        s.submit("j1", "r", job_spec(1, H100))


def test_cancel_removes_a_queued_job_only() -> None:
    s = sched(snap(QA, offer("P1", gpus=1)))
    s.submit("placed", "r", job_spec(1, H100))
    s.schedule()
    s.submit("waiting", "r", job_spec(1, H100))
    assert s.cancel("waiting") is True
    assert s.cancel("waiting") is False
    assert s.cancel("placed") is False
    assert s.cancel("unknown") is False
    assert s.queued() == 0
    s.release("placed")
    assert s.schedule() == []
    s.submit("waiting", "r", job_spec(1, H100))  # the id is free again
    assert [p.job_id for p in s.schedule()] == ["waiting"]


def test_jobs_of_one_renter_are_placed_in_fifo_order() -> None:
    s = sched(snap(QA, offer("P1", gpus=3)))
    for j in ("j1", "j2", "j3"):
        s.submit(j, "r", job_spec(1, H100))
    assert [p.job_id for p in s.schedule()] == ["j1", "j2", "j3"]


def test_a_job_that_does_not_fit_does_not_block_the_renters_next_jobs() -> None:
    s = sched(snap(QA, offer("P1", gpus=2)))
    s.submit("too-big", "r", job_spec(4, H100))
    s.submit("pricey", "r", job_spec(1, H100, max_price=tokens("1")))
    s.submit("fits", "r", job_spec(1, H100))
    s.submit("fits-too", "r", job_spec(1))
    assert [p.job_id for p in s.schedule()] == ["fits", "fits-too"]
    assert s.queued() == 2


def test_a_renter_that_cannot_be_served_does_not_block_others() -> None:
    s = sched(snap(QA, offer("P1", model=RTX, gpus=1)))
    s.submit("a1", "alice", job_spec(1, H100))
    s.submit("b1", "bob", job_spec(1, RTX))
    assert [p.job_id for p in s.schedule()] == ["b1"]


def test_renters_are_served_round_robin() -> None:
    s = sched(snap(QA, offer("P1", gpus=8)))
    for i in range(4):
        s.submit(f"a{i}", "alice", job_spec(1, H100))
    s.submit("b0", "bob", job_spec(1, H100))
    s.submit("b1", "bob", job_spec(1, H100))
    s.submit("c0", "carol", job_spec(1, H100))
    assert [p.job_id for p in s.schedule()] == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


def test_a_burst_does_not_starve_a_single_job_once_capacity_exists() -> None:
    s = sched()
    for i in range(10_000):
        s.submit(f"a{i}", "alice", job_spec(1, H100))
    assert s.schedule() == []
    s.submit("b", "bob", job_spec(1, H100))
    s.update_pool(snap(QA, offer("P1", gpus=2)))
    assert [p.renter for p in s.schedule()] == ["alice", "bob"]


def test_a_renter_served_less_recently_goes_first() -> None:
    s = sched(snap(QA, offer("P1", gpus=1)))
    s.submit("a0", "alice", job_spec(1, H100))
    s.schedule()
    s.submit("a1", "alice", job_spec(1, H100))
    s.submit("b0", "bob", job_spec(1, H100))  # bob was never served: ahead of alice
    s.release("a0")
    assert [p.job_id for p in s.schedule()] == ["b0"]


# ---------------------------------------------------------------------------------------------- waking up


def test_a_waiting_job_is_placed_once_a_release_frees_enough_gpus() -> None:
    s = sched(snap(QA, offer("P1", gpus=4)))
    s.submit("j1", "r", job_spec(3, H100))
    s.submit("j2", "r2", job_spec(3, H100))
    s.schedule()
    assert s.schedule() == []
    s.release("j1")
    assert [p.job_id for p in s.schedule()] == ["j2"]


def test_a_job_priced_out_by_surge_is_placed_when_utilization_falls() -> None:
    s = sched(snap(QA, offer("P1", gpus=4, ask=0)), pricer=flat(surge=1.0))
    s.submit("big", "a", job_spec(3, H100))
    s.schedule()  # utilization 0.75: quote 2 × (1 + 0.5625) = 3.125
    s.submit("ceiling-3", "b", job_spec(1, H100, max_price=tokens("3")))
    assert s.schedule() == []
    s.release("big")
    assert [p.price_per_gpu_hour for p in s.schedule()] == [tokens("2")]


def test_a_job_waiting_for_a_model_is_placed_when_a_pool_brings_it() -> None:
    s = sched(snap(QA, offer("P1", model=RTX, gpus=1), seq=1))
    s.submit("j1", "r", job_spec(1, H100))
    assert s.schedule() == []
    s.update_pool(snap(QB, offer("B1", QB, gpus=1)))
    assert [p.provider for p in s.schedule()] == ["B1"]


def test_a_cheaper_ask_in_a_new_snapshot_wakes_a_priced_out_job() -> None:
    s = sched(snap(QA, offer("P1", gpus=1, ask=tokens("5")), seq=1))
    s.submit("j1", "r", job_spec(1, H100, max_price=tokens("3")))
    assert s.schedule() == []
    s.update_pool(snap(QA, offer("P1", gpus=1, ask=tokens("2.5")), seq=2))
    assert [p.price_per_gpu_hour for p in s.schedule()] == [tokens("2.5")]


def test_a_new_job_of_a_blocked_renter_that_fits_is_placed() -> None:
    s = sched(snap(QA, offer("P1", gpus=1)))
    s.submit("big", "r", job_spec(4, H100))
    assert s.schedule() == []
    s.submit("small", "r", job_spec(1, H100))
    assert [p.job_id for p in s.schedule()] == ["small"]


def test_a_stale_bound_after_placements_is_corrected_by_the_next_search() -> None:
    s = sched(snap(QA, offer("P1", gpus=4)))
    s.submit("x", "xavier", job_spec(3, H100))
    s.submit("never", "alice", job_spec(16, H100))  # alice is in line before bob from now on
    s.schedule()
    s.submit("b", "bob", job_spec(3, H100))
    assert s.schedule() == []  # bob waits: nothing has 3 GPUs free
    s.release("x")  # bob's shape has 4 free GPUs again: bob is woken
    s.submit("a", "alice", job_spec(2, H100))
    # alice goes first and takes 2 of the 4: bob's bound is stale, his search fails, and he waits again.
    assert [p.job_id for p in s.schedule()] == ["a"]
    assert s.waiting_reason("b") == (
        "no provider with 3×H100 SXM under 1000.0/h: not enough free GPUs "
        "(at most 2 free on one matching provider)"
    )
    s.release("a")
    assert [p.job_id for p in s.schedule()] == ["b"]


def test_many_jobs_with_distinct_ceilings_keep_fifo_order_among_those_that_fit() -> None:
    s = sched(snap(QA, offer("P1", gpus=1000, ask=0)))  # the quote is 2.0
    expected = []
    for i in range(300):
        ceiling = tokens("1") + i if i % 2 else tokens("2") + i  # odd jobs are priced out
        s.submit(f"j{i}", "r", job_spec(1, H100, max_price=ceiling))
        if i % 3 == 0:
            assert s.cancel(f"j{i}")
        elif i % 2 == 0:
            expected.append(f"j{i}")
    s.submit("last", "r", job_spec(1, H100))
    assert [p.job_id for p in s.schedule()] == [*expected, "last"]
    assert s.queued() == len([i for i in range(300) if i % 2 and i % 3])


# ---------------------------------------------------------------------------------------------- rescheduling


def test_requeue_puts_a_placed_job_at_the_front_of_its_renters_queue() -> None:
    s = sched(snap(QA, offer("P1", gpus=1), offer("P2", gpus=1, rep=8000)))
    s.submit("j1", "r", job_spec(1, H100))
    s.schedule()
    assert placed_on(s, "j1") == "P1"
    s.submit("j2", "r", job_spec(1, H100))
    s.submit("j3", "r", job_spec(1, H100))
    assert s.requeue("j1") is True
    assert s.placement("j1") is None
    assert s.queued() == 3
    assert s.requeue("j1") is False  # queued already
    assert [p.job_id for p in s.schedule()] == ["j1", "j2"]


def test_requeue_and_exclude_of_unknown_jobs_raise_key_error() -> None:
    s = sched()
    with pytest.raises(KeyError):
        s.requeue("nope")
    with pytest.raises(KeyError):
        s.exclude("nope", "P1")
    with pytest.raises(KeyError):
        s.waiting_reason("nope")


def test_an_excluded_provider_never_gets_the_job_back() -> None:
    s = sched(snap(QA, offer("P1", gpus=1), offer("P2", gpus=1, rep=5000)))
    s.submit("j1", "r", job_spec(1, H100))
    s.schedule()
    assert placed_on(s, "j1") == "P1"
    s.exclude("j1", "P1")
    s.exclude("j1", "P1")
    s.requeue("j1")
    assert [p.provider for p in s.schedule()] == ["P2"]
    s.exclude("j1", "P2")
    s.requeue("j1")
    assert s.schedule() == []
    assert (
        s.waiting_reason("j1")
        == "no provider with 1×H100 SXM under 1000.0/h: the only matching providers already failed this job"
    )
    s.submit("j2", "other", job_spec(1, H100))  # others may still use them
    assert [p.provider for p in s.schedule()] == ["P1"]


def test_excluding_a_queued_job_keeps_its_place_in_the_queue() -> None:
    s = sched(snap(QA, offer("P1", gpus=1), seq=1))
    s.submit("j1", "r", job_spec(1, H100))
    s.submit("j2", "r", job_spec(1, H100))
    s.exclude("j2", "P1")
    assert [p.job_id for p in s.schedule()] == ["j1"]
    s.release("j1")
    assert s.schedule() == []
    s.update_pool(snap(QA, offer("P1", gpus=1), offer("P9", gpus=1), seq=2))
    assert [(p.job_id, p.provider) for p in s.schedule()] == [("j2", "P9")]


def test_restore_reserves_before_snapshots_arrive() -> None:
    s = sched()
    restored = Placement("j1", "r", QA, "P1", 3, tokens("2"))
    s.restore(restored)
    s.restore(restored)  # idempotent
    with pytest.raises(ValueError, match="already known"):
        s.restore(replace(restored, gpus=1))
    s.update_pool(snap(QA, offer("P1", gpus=4)))
    assert s.utilization(H100) == 0.75
    s.submit("j2", "r", job_spec(2, H100))
    s.submit("j3", "r", job_spec(1, H100))
    assert [p.job_id for p in s.schedule()] == ["j3"]
    assert s.placement("j1") == restored
    with pytest.raises(ValueError, match="without its spec"):
        s.requeue("j1")
    s.release("j1")
    assert [p.job_id for p in s.schedule()] == ["j2"]


def test_restore_with_spec_can_be_requeued() -> None:
    s = sched(snap(QA, offer("P1", gpus=2), offer("P2", gpus=2)))
    s.restore(Placement("j1", "r", QA, "P1", 2, tokens("2")), job_spec(2, H100))
    s.exclude("j1", "P1")
    assert s.requeue("j1") is True
    assert [p.provider for p in s.schedule()] == ["P2"]


def test_a_restored_job_keeps_its_candidates_when_requeued() -> None:
    s = sched(snap(QA, offer("P1", gpus=2), offer("P2", gpus=2, rep=1000), offer("P3", gpus=2)))
    s.restore(Placement("j1", "r", QA, "P1", 2, tokens("2")), job_spec(2, H100), frozenset({"P1", "P2"}))
    s.exclude("j1", "P1")
    assert s.requeue("j1") is True
    assert [p.provider for p in s.schedule()] == ["P2"]  # P3 scores better but is not a candidate


def test_restore_rejects_malformed_placements() -> None:
    s = sched()
    with pytest.raises(ValueError, match="gpus >= 1"):
        s.restore(Placement("j1", "r", QA, "P1", 0, 0))
    with pytest.raises(ValueError, match="job id"):
        s.restore(Placement("", "r", QA, "P1", 1, 0))


# ---------------------------------------------------------------------------------------------- reasons


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (job_spec(2, "h200"), "no provider with 2×H200 under 1000.0/h: no provider offers H200 at all"),
        (
            job_spec(16, H100),
            "no provider with 16×H100 SXM under 1000.0/h: no H100 SXM provider has 16 GPUs "
            "(the largest has 8)",
        ),
        (
            job_spec(1, H100, min_vram_bytes=96 * GIB),
            "no provider with 1×H100 SXM with ≥ 96 GiB per GPU under 1000.0/h: not enough VRAM "
            "(the most any H100 SXM provider has is 80 GiB per GPU)",
        ),
        (
            job_spec(1, A100, min_tflops=10.0),
            "no provider with 1×A100 80GB with ≥ 10 TFLOP/s per GPU under 1000.0/h: not fast enough "
            "(none measured yet)",
        ),
        (
            job_spec(1, H100, min_tflops=70.0),
            "no provider with 1×H100 SXM with ≥ 70 TFLOP/s per GPU under 1000.0/h: not fast enough "
            "(the best measured is 60 TFLOP/s per GPU)",
        ),
        (
            job_spec(1, RTX),
            "no provider with 1×RTX 4090 under 1000.0/h: reputation below the minimum of 5000 "
            "(the best is 4000)",
        ),
        (
            job_spec(2, H100, max_price=tokens("1.5")),
            "no provider with 2×H100 SXM under 1.5/h: all are above your max price (cheapest is 2.0/h)",
        ),
        (
            job_spec(2, H100, max_price=tokens("3")),
            "no provider with 2×H100 SXM under 3.0/h: not enough free GPUs (the only matching provider is busy)",
        ),
        (
            job_spec(2, min_vram_bytes=40 * GIB),
            "no provider with 2 GPUs with ≥ 40 GiB per GPU under 1000.0/h: not enough free GPUs "
            "(all 2 matching providers are busy)",
        ),
        (job_spec(9), "no provider with 9 GPUs under 1000.0/h: no provider has 9 GPUs (the largest has 8)"),
    ],
)
def test_waiting_reason_names_the_failing_constraint(spec: Spec, reason: str) -> None:
    s = sched(
        snap(
            QA,
            offer("P-h100", gpus=8, ask=tokens("1")),
            offer("P-a100", model=A100, gpus=4, vram=80 * GIB, tflops=0.0),
            offer("P-rtx", model=RTX, gpus=2, vram=24 * GIB, rep=4000),
        ),
        min_reputation=5000,
    )
    s.submit("fill-h100", "other", job_spec(8, H100))
    s.submit("fill-a100", "other", job_spec(4, A100))
    s.schedule()
    s.submit("j", "r", spec)
    assert s.schedule() == []
    assert s.waiting_reason("j") == reason


def test_waiting_reason_when_nothing_is_online_and_when_placed() -> None:
    s = sched()
    s.submit("j", "r", job_spec(1))
    assert s.waiting_reason("j") == "no provider with 1 GPU under 1000.0/h: no provider is online"
    s.update_pool(snap(QA, offer("P1", gpus=1, ask=tokens("2.25"))))
    s.schedule()
    assert s.waiting_reason("j") == "placed on provider P1 in the pool of queen 0xQueenA at 2.25/h"


def test_waiting_reason_when_a_match_is_free_but_not_yet_scheduled() -> None:
    s = sched(snap(QA, offer("P1", gpus=1)))
    s.submit("j", "r", job_spec(1, H100))
    assert s.waiting_reason("j") == (
        "no provider with 1×H100 SXM under 1000.0/h right now: a matching provider is free, "
        "the next scheduling pass places the job"
    )


def test_model_names_read_like_people_write_them() -> None:
    assert [model_name(m) for m in (H100, A100, RTX, "cpu")] == ["H100 SXM", "A100 80GB", "RTX 4090", "CPU"]


# ---------------------------------------------------------------------------------------------- offers


def test_closest_offers_rank_same_model_over_price_then_other_models() -> None:
    s = sched(
        snap(
            QA,
            offer("h100-dear", gpus=2, ask=tokens("4")),
            offer("h100-busy", gpus=2, ask=tokens("1")),
            offer("a100", model=A100, gpus=2),
            offer("rtx", model=RTX, gpus=2, ask=tokens("0.5")),
            offer("rtx-1", model=RTX, gpus=1),
        )
    )
    s.submit("busy", "other", job_spec(2, H100))
    s.schedule()
    assert placed_on(s, "busy") == "h100-busy"
    spec = job_spec(2, H100, max_price=tokens("3"))
    assert [o.provider for o in s.closest_offers(spec)] == ["h100-dear", "rtx", "a100"]
    assert [o.provider for o in s.closest_offers(spec, n=5)] == ["h100-dear", "rtx", "a100", "rtx-1"]
    assert [o.provider for o in s.closest_offers(job_spec(2, RTX))] == ["rtx", "rtx-1", "a100"]


def test_offers_summarize_each_model() -> None:
    s = sched(
        snap(QA, offer("A1", QA, gpus=4, ask=tokens("1.5"), rep=7000), offer("A2", QA, model=RTX, gpus=1)),
        snap(QB, offer("B1", QB, gpus=2, ask=tokens("3"), rep=9500), offer("B2", QB, gpus=2, rep=100)),
        min_reputation=1000,
    )
    s.submit("j", "r", job_spec(3, H100))
    s.schedule()
    assert s.offers() == [
        ModelOffer(H100, 2, 3, 6, tokens("1.5"), tokens("2"), 9500),
        ModelOffer(RTX, 1, 1, 1, tokens("1"), tokens("1"), 9000),  # quote raised to the cheapest ask
    ]


# ---------------------------------------------------------------------------------------------- properties

MODELS = (H100, A100)
PROVIDERS = tuple(f"P{i}" for i in range(6))
GPUS = {p: 1 + i % 4 for i, p in enumerate(PROVIDERS)}  # fixed per provider: 1, 2, 3, 4, 1, 2
MODEL_OF = {p: MODELS[i % 2] for i, p in enumerate(PROVIDERS)}

provider_states = st.fixed_dictionaries(
    {
        "listed": st.sampled_from((True, True, True, False)),
        "alive": st.sampled_from((True, True, True, False)),
        "queen": st.sampled_from((QA, QB)),
        "ask": st.sampled_from((0, tokens("1"), tokens("1.5"), tokens("3"))),
        "rep": st.sampled_from((1000, 6000, 9000, 9000)),
        "tflops": st.sampled_from((0.0, 20.0, 60.0)),
        "vram_gib": st.sampled_from((40, 80)),
        "uptime": st.sampled_from((0.5, 1.0)),
    }
)
specs = st.builds(
    job_spec,
    gpus=st.sampled_from((1, 1, 2, 3, 4)),
    gpu_model=st.sampled_from(("", *MODELS)),
    min_vram_bytes=st.sampled_from((0, 0, 60 * GIB)),
    min_tflops=st.sampled_from((0.0, 0.0, 10.0, 50.0)),
    max_price=st.sampled_from((HIGH, HIGH, tokens("1"), tokens("2.5"), tokens("4"))),
)
candidate_sets = st.sampled_from((frozenset(), frozenset(), frozenset({"P0", "P1", "P2"}), frozenset({"P3"})))
submits = st.tuples(st.just("submit"), st.sampled_from(("alice", "bob", "carol")), specs, candidate_sets)
job_ids = st.integers(0, 20)
ops = st.one_of(
    submits,  # half of the operations submit a job
    st.one_of(
        st.tuples(st.just("schedule"), st.none() | st.integers(0, 3)),
        st.tuples(st.just("release"), job_ids),
        st.tuples(st.just("requeue"), job_ids),
        st.tuples(st.just("exclude"), job_ids, st.sampled_from(PROVIDERS)),
        st.tuples(st.just("cancel"), job_ids),
        st.tuples(
            st.just("snapshot"), st.lists(provider_states, min_size=len(PROVIDERS), max_size=len(PROVIDERS))
        ),
    ),
)


class Oracle:
    """What the test knows independently of the scheduler: offers, placements, specs, candidates, exclusions."""

    def __init__(self, pricer: Pricer, min_rep: int) -> None:
        self.pricer, self.min_rep = pricer, min_rep
        self.offers: dict[str, ProviderOffer] = {}  # listed in their queen's latest snapshot
        self.placed: dict[str, Placement] = {}
        self.spec: dict[str, Spec] = {}
        self.candidates: dict[str, frozenset[str]] = {}  # empty: any provider
        self.excl: dict[str, set[str]] = {}
        self.queued: set[str] = set()

    def market(self) -> list[ProviderOffer]:
        return [o for o in self.offers.values() if o.alive and o.gpus > 0 and o.reputation >= self.min_rep]

    def reserved(self, provider: str) -> int:
        return sum(p.gpus for p in self.placed.values() if p.provider == provider)

    def quote(self, model: str) -> int:
        offers = [o for o in self.market() if o.gpu_model == model]
        total = sum(o.gpus for o in offers)
        used = sum(min(o.gpus, self.reserved(o.provider)) for o in offers)
        min_ask = min((o.ask_per_gpu_hour for o in offers), default=None)
        return self.pricer.quote(model, used / total if total else 0.0, min_ask)

    def fits(self, job_id: str, o: ProviderOffer) -> bool:
        spec = self.spec[job_id]
        price = max(o.ask_per_gpu_hour, self.quote(o.gpu_model))
        return (
            (not spec.gpu_model or o.gpu_model == spec.gpu_model)
            and o.gpus - self.reserved(o.provider) >= spec.gpus
            and o.vram_bytes >= spec.min_vram_bytes
            and o.tflops >= spec.min_tflops
            and price <= spec.max_price_per_gpu_hour
            and (not self.candidates[job_id] or o.provider in self.candidates[job_id])
            and o.provider not in self.excl[job_id]
        )


def run_ops(operations: list[tuple[object, ...]], min_rep: int = 5000) -> None:
    pricer = flat(surge=1.5)
    s = Scheduler(pricer, min_reputation=min_rep)
    model = Oracle(pricer, min_rep)
    seqs = Counter[str]()
    n = 0
    for op in operations:
        kind = op[0]
        if kind == "submit":
            renter, spec, candidates = op[1], op[2], op[3]
            assert isinstance(renter, str) and isinstance(spec, Spec) and isinstance(candidates, frozenset)
            job_id = f"j{n}"
            n += 1
            s.submit(job_id, renter, spec, candidates)
            model.spec[job_id], model.candidates[job_id], model.excl[job_id] = spec, candidates, set()
            model.queued.add(job_id)
        elif kind == "schedule":
            limit = op[1]
            assert limit is None or isinstance(limit, int)
            for pl in s.schedule(limit):
                # (2) every placement satisfies its spec and the price bounds, given what came before it
                o = model.offers[pl.provider]
                assert pl.job_id in model.queued and o.queen == pl.queen
                assert o in model.market() and model.fits(pl.job_id, o)
                assert pl.price_per_gpu_hour == max(o.ask_per_gpu_hour, model.quote(o.gpu_model))
                assert pl.gpus == model.spec[pl.job_id].gpus
                model.queued.discard(pl.job_id)
                model.placed[pl.job_id] = pl
            if limit is None:
                # work-conserving: nothing still queued fits anywhere
                for job_id in model.queued:
                    assert not any(model.fits(job_id, o) for o in model.market()), job_id
        elif kind in ("release", "requeue", "cancel", "exclude"):
            assert isinstance(op[1], int)
            job_id = f"j{op[1]}"
            if kind == "release":
                s.release(job_id)
                model.placed.pop(job_id, None)
            elif kind == "cancel":
                assert s.cancel(job_id) == (job_id in model.queued)
                if job_id in model.queued:
                    model.queued.discard(job_id)
                    del model.spec[job_id]
            elif job_id not in model.spec:
                with pytest.raises(KeyError):
                    s.requeue(job_id) if kind == "requeue" else s.exclude(job_id, "P0")
            elif kind == "requeue":
                assert s.requeue(job_id) == (job_id in model.placed)
                if model.placed.pop(job_id, None) is not None:
                    model.queued.add(job_id)
            else:
                provider = op[2]
                assert isinstance(provider, str)
                s.exclude(job_id, provider)
                model.excl[job_id].add(provider)
            for done in [j for j in model.spec if j not in model.queued and j not in model.placed]:
                del model.spec[done]
        else:
            states = op[1]
            assert isinstance(states, list)
            by_queen: dict[str, list[ProviderOffer]] = {QA: [], QB: []}
            for p, st_ in zip(PROVIDERS, states, strict=True):
                if st_["listed"]:
                    by_queen[st_["queen"]].append(
                        offer(
                            p,
                            st_["queen"],
                            model=MODEL_OF[p],
                            gpus=GPUS[p],
                            vram=st_["vram_gib"] * GIB,
                            tflops=st_["tflops"],
                            ask=st_["ask"],
                            rep=st_["rep"],
                            uptime=st_["uptime"],
                            alive=st_["alive"],
                        )
                    )
            model.offers = {}
            for queen, offers in by_queen.items():
                seqs[queen] += 1
                s.update_pool(snap(queen, *offers, seq=seqs[queen]))
                model.offers.update({o.provider: o for o in offers})
        # (1) a provider is never promised more GPUs than it has
        for p in PROVIDERS:
            assert model.reserved(p) <= GPUS[p]
        assert s.queued() == len(model.queued)
        for job_id, pl in model.placed.items():
            assert s.placement(job_id) == pl


snapshots = st.lists(provider_states, min_size=len(PROVIDERS), max_size=len(PROVIDERS))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots, st.lists(ops, min_size=20, max_size=60))
def test_property_random_histories_keep_every_invariant(
    first: list[dict[str, object]], operations: list[tuple[object, ...]]
) -> None:
    run_ops([("snapshot", first), *operations, ("schedule", None)])


@settings(max_examples=60, deadline=None)
@given(
    a_jobs=st.integers(2, 40),
    a_served_before=st.integers(0, 3),
    b_first=st.booleans(),
    a_spec=specs,
    b_spec=st.builds(
        job_spec,
        gpus=st.integers(1, 4),
        gpu_model=st.sampled_from(("", H100)),
        max_price=st.just(HIGH),
    ),
)
def test_property_a_single_job_is_placed_within_the_first_two_placements(
    a_jobs: int, a_served_before: int, b_first: bool, a_spec: Spec, b_spec: Spec
) -> None:
    s = sched()
    # Renter A has been served before (or not), then bursts; B submits one job; then capacity arrives.
    s.update_pool(snap(QA, offer("warm", gpus=4), seq=1))
    for i in range(a_served_before):
        s.submit(f"warm{i}", "A", job_spec(1))
    s.schedule()
    for i in range(a_served_before):
        s.release(f"warm{i}")
    s.remove_pool(QA)
    if b_first:
        s.submit("b", "B", b_spec)
    for i in range(a_jobs):
        s.submit(f"a{i}", "A", a_spec)
    if not b_first:
        s.submit("b", "B", b_spec)
    assert s.schedule() == []
    s.update_pool(snap(QB, *(offer(f"P{i}", QB, gpus=8, ask=0) for i in range(8))))
    placements = s.schedule()
    assert "b" in [p.job_id for p in placements[:2]]


def test_a_job_goes_only_to_the_providers_its_payload_is_encrypted_for() -> None:
    """The best provider is not a candidate: the job takes the best candidate, or waits for one."""
    s = sched(snap(QA, offer("P1", gpus=1), offer("P2", gpus=1, rep=5000)))
    s.submit("j1", "r", job_spec(1, H100), frozenset({"P2"}))
    assert [p.provider for p in s.schedule()] == ["P2"]
    s.submit("j2", "r", job_spec(1, H100), frozenset({"P2"}))
    assert s.schedule() == []  # P2 is taken; P1 is free but not a candidate
    # only P2 counts for j2: "busy", although P1 is free
    assert s.waiting_reason("j2") == (
        "no provider with 1×H100 SXM under 1000.0/h: not enough free GPUs (the only matching provider is busy)"
    )
    s.submit("j3", "other", job_spec(1, H100))  # a job open to anyone takes P1
    assert [p.provider for p in s.schedule()] == ["P1"]
    s.release("j1")
    assert [(p.job_id, p.provider) for p in s.schedule()] == [("j2", "P2")]
