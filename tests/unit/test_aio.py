"""blendr.aio: waits with a timeout that never lose their caller's cancellation (asyncio.wait_for does on 3.11)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from blendr.aio import wait_event, within


async def _turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_within_returns_the_result_or_times_out_and_cancels_what_it_waited_for() -> None:
    assert await within(asyncio.sleep(0, result="done"), 5) == "done"
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError, match=r"within 0\.01 s"):
        await within(never, 0.01)
    await _turns()
    assert never.cancelled()


async def test_within_passes_the_awaited_error_through() -> None:
    async def boom() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await within(boom(), 5)


async def test_a_cancelled_caller_cancels_what_it_waited_for() -> None:
    inner = asyncio.get_running_loop().create_future()
    t = asyncio.create_task(within(inner, 60))
    await _turns()
    t.cancel()
    await _turns()
    assert t.cancelled() and inner.cancelled()


async def _loop_until_cancelled(wait: Callable[[], Awaitable[Any]], rounds: list[int]) -> None:
    while True:  # the shape of a node's duty loop: wait for work or the timeout, do a round, again
        await wait()
        rounds.append(1)


@pytest.mark.parametrize("kind", ["event", "queue"])
async def test_a_cancel_in_the_turn_the_wait_completes_still_stops_the_loop(kind: str) -> None:
    """The race that left a queen's king link running after stop() (and its stop() waiting forever)."""
    ev, q = asyncio.Event(), asyncio.Queue[int]()
    rounds: list[int] = []

    async def wait() -> None:
        if kind == "event":
            await wait_event(ev, 60)
            ev.clear()
        else:
            await within(q.get(), 60)

    t = asyncio.create_task(_loop_until_cancelled(wait, rounds))
    await _turns()
    if kind == "event":
        ev.set()
    else:
        q.put_nowait(1)
    t.cancel()  # in the same loop turn as the wake-up
    await _turns()
    assert t.done() and t.cancelled()


async def test_wait_event_says_whether_the_event_was_set() -> None:
    ev = asyncio.Event()
    assert await wait_event(ev, 0.01) is False
    ev.set()
    assert await wait_event(ev, 0.01) is True


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for keeps the cancellation from 3.12 on")
async def test_asyncio_wait_for_loses_that_cancel_on_this_python() -> None:
    """Why blendr.aio exists: the same race with asyncio.wait_for leaves the loop running."""
    ev = asyncio.Event()
    rounds: list[int] = []

    async def wait() -> None:
        await asyncio.wait_for(ev.wait(), 60)
        ev.clear()

    t = asyncio.create_task(_loop_until_cancelled(wait, rounds))
    await _turns()
    ev.set()
    t.cancel()
    await _turns()
    assert not t.done() and rounds == [1]
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
