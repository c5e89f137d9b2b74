"""A renter's cancel frees the provider's GPUs only when the provider says the job stopped, fast: KingCore over
the fake GPURental and fake queens (tests/fakes).

Until then a job placed there would meet a provider still running the cancelled job, which refuses it
("devices not free", a provider fault: the job moves or fails). The hold ends at the provider's final event
for that attempt (even after the cancelled job settled), when its queen is gone past the grace period, or
after ``stop_hold_s``.
"""

from __future__ import annotations

import asyncio

import pytest

from king.context import JobsConfig
from king.job import JobState
from king.lifecycle import QueenEvent
from tests.unit.king.test_king_core import P1, QUEEN_A, QUEEN_B, Net
from tests.unit.king.test_king_core import net as net  # the fixture

WHOLE = 8  # every GPU of P1: a second job fits only once the first one's are free


async def _cancelled_and_next(net: Net) -> tuple[str, int, str]:
    """A job running on all of P1's GPUs is cancelled by its renter, and a second job for P1 alone is submitted
    and given a placement pass. Returns (cancelled job, its attempt, the second job)."""
    first = await net.submit(providers=(P1,), gpus=WHOLE)
    await net.core.placer.run_pass()
    net.event(first, "running", 1)
    net.clock.advance(60)
    attempt = net.job(first).attempt
    await net.core.cancel(net.renter.address, first)
    assert net.queens.stops[-1][:3] == (QUEEN_A, first, attempt)
    second = await net.submit(request_id="req-0000000000000002", providers=(P1,), gpus=WHOLE)
    await net.core.placer.run_pass()
    return first, attempt, second


def _waiting(net: Net, job_id: str) -> bool:
    return net.job(job_id).state == JobState.QUEUED and all(a.job_id != job_id for _, a in net.queens.assigned)


def _placed_on_p1(net: Net, job_id: str) -> bool:
    job = net.job(job_id)
    return job.state == JobState.SCHEDULED and job.provider == P1 and net.queens.last(job_id).provider == P1


async def test_a_cancelled_job_keeps_its_providers_gpus_until_the_provider_says_it_stopped(net: Net) -> None:
    first, attempt, second = await _cancelled_and_next(net)
    assert _waiting(net, second)
    assert net.core.offers()[0].gpus_free == 2 * WHOLE  # P2 and P3; P1's GPUs are still promised
    # the cancelled job's rental settles before the provider's word: its GPUs stay promised
    await net.settle_ended()
    assert net.job(first).state == JobState.SETTLED
    await net.core.placer.run_pass()
    assert _waiting(net, second)
    # a final event of another attempt, or through another queen, is not the provider's word on this one
    net.core.on_queen_event(QUEEN_A, QueenEvent(first, attempt + 1, 9, "stopped"))
    net.core.on_queen_event(QUEEN_B, QueenEvent(first, attempt, 9, "stopped"))
    net.core.on_queen_event(QUEEN_A, QueenEvent(first, attempt, 2, "log", "still running"))
    await net.core.placer.run_pass()
    assert _waiting(net, second)
    net.core.on_queen_event(QUEEN_A, QueenEvent(first, attempt, 3, "stopped", "cancelled by the renter"))
    await net.core.placer.run_pass()
    assert _placed_on_p1(net, second)
    assert net.job(first).state == JobState.SETTLED and net.job(first).rentals[0].verified_seconds == 60
    net.check_money()


@pytest.mark.parametrize("kind", ["succeeded", "failed", "lost"])
async def test_any_final_event_of_the_cancelled_attempt_frees_its_gpus(net: Net, kind: str) -> None:
    first, attempt, second = await _cancelled_and_next(net)
    assert _waiting(net, second)
    net.core.on_queen_event(QUEEN_A, QueenEvent(first, attempt, 2, kind, "over"))
    await net.core.placer.run_pass()
    assert _placed_on_p1(net, second)
    assert net.job(first).state == JobState.CANCELLED  # a final event does not undo the renter's cancel


async def test_the_queen_gone_past_its_grace_frees_its_providers_gpus(net: Net) -> None:
    first, _attempt, second = await _cancelled_and_next(net)
    net.queens.disconnect(QUEEN_A)
    net.core.on_queen_disconnected(QUEEN_A)
    net.clock.advance(net.cfg.queen_grace_s - 1)
    await net.core.placer.run_pass()
    assert _waiting(net, second)
    net.clock.advance(2)
    await net.core.placer.run_pass()
    assert _waiting(net, second)  # P1's queen is out of the market now: freed GPUs, but no offer
    assert net.core.scheduler.placement(first) is None  # the hold is gone with the queen
    net.connect(QUEEN_A)
    await net.core.placer.run_pass()
    assert _placed_on_p1(net, second)


async def test_a_provider_that_never_confirms_frees_its_gpus_after_the_stop_hold() -> None:
    net = Net(JobsConfig(stop_hold_s=90.0))
    await net.start()
    first, _attempt, second = await _cancelled_and_next(net)
    net.clock.advance(89)
    await net.core.placer.run_pass()
    assert _waiting(net, second) and net.core.scheduler.placement(first) is not None
    net.clock.advance(1)
    await net.core.placer.run_pass()
    assert _placed_on_p1(net, second) and net.core.scheduler.placement(first) is None
    assert not net.core.lifecycle.holds


async def test_a_cancel_before_the_rental_exists_frees_the_gpus_at_once(net: Net) -> None:
    gate = net.chain.gate_create()
    first = await net.submit(providers=(P1,), gpus=WHOLE)
    placing = asyncio.create_task(net.core.placer.run_pass())
    await asyncio.to_thread(net.chain.create_entered.wait, 10)
    await net.core.cancel(net.renter.address, first)
    gate.set()
    await placing
    await net.core.drain()
    assert not net.core.lifecycle.holds and net.core.scheduler.placement(first) is None  # no provider ever had it
    assert all(a.job_id != first for _, a in net.queens.assigned)
    second = await net.submit(request_id="req-0000000000000002", providers=(P1,), gpus=WHOLE)
    await net.core.placer.run_pass()
    assert _placed_on_p1(net, second)
    net.check_money()


async def test_a_king_restart_keeps_the_hold_until_the_queen_answers_the_stop_again(net: Net) -> None:
    first, attempt, second = await _cancelled_and_next(net)
    stops = len(net.queens.stops)
    await net.restart()
    assert net.queens.stops[stops:] == [(QUEEN_A, first, attempt, "cancelled by the renter")]  # sent again
    await net.core.placer.run_pass()
    assert _waiting(net, second)
    # the queen answers the stop of an attempt that is over with its final event, whatever its seq
    net.core.on_queen_event(QUEEN_A, QueenEvent(first, attempt, 1, "stopped", "cancelled by the renter"))
    await net.core.placer.run_pass()
    assert _placed_on_p1(net, second)


async def test_after_a_restart_a_queen_that_never_comes_back_frees_the_hold_after_its_grace(net: Net) -> None:
    first, _attempt, second = await _cancelled_and_next(net)
    net.pools.pop(QUEEN_A)  # QUEEN_A is not there when the king starts again
    net.queens.disconnect(QUEEN_A)
    await net.restart()
    assert net.core.scheduler.placement(first) is not None
    net.clock.advance(net.cfg.queen_grace_s + 1)
    await net.core.placer.run_pass()
    assert net.core.scheduler.placement(first) is None and not net.core.lifecycle.holds
    assert _waiting(net, second)  # P1 is not offered (its queen is away)
