"""asyncio waits that never lose a cancellation.

On Python 3.11, ``asyncio.wait_for`` returns the inner result and drops the cancellation when the task is
cancelled in the same loop turn as the awaited thing completes (fixed in 3.12). In a ``while True`` loop that
waits on an event or a stream, the lost cancel leaves the task running after ``task.cancel()``, and whoever
awaits it (a node's ``stop()``) waits forever. These helpers use ``asyncio.wait``, which never swallows a
cancellation of its caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: no "exception was never retrieved" for an abandoned wait


async def within(aw: Awaitable[T], timeout_s: float) -> T:
    """``await aw`` for at most ``timeout_s`` seconds: its result, or TimeoutError (``aw`` is cancelled then).

    A cancellation of the caller always propagates (``aw`` is cancelled with it), even in the loop turn where
    ``aw`` completes.
    """
    inner = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait({inner}, timeout=max(0.0, timeout_s))
    except asyncio.CancelledError:
        inner.cancel()
        inner.add_done_callback(_retrieve)
        raise
    if not done:
        inner.cancel()
        inner.add_done_callback(_retrieve)
        raise TimeoutError(f"not done within {timeout_s:g} s")
    return inner.result()


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` passes; whether it is set. Cancellation always propagates."""
    if event.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await within(event.wait(), timeout_s)
    return event.is_set()


__all__ = ["wait_event", "within"]
