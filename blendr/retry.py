"""Waits between tries, defined once: tenacity's exponential wait with jitter, always bounded.

Two kinds of callers use it. Bounded retries (the chain client's RPC calls) hand :func:`exponential` to a
tenacity ``Retrying`` with ``stop_after_attempt``. Loops that must go on forever (a queen's chain duties and
its king session, a king's bridge deliveries) cannot stop, so what is bounded is each wait: they ask
:func:`delay` for the wait after ``n`` failures in a row, or keep the count in a :class:`Backoff`, or run
their rounds through :func:`rounds`.

Guarantees: the wait after ``n`` failures is ``initial_s · 2^(n-1)`` plus up to ``initial_s`` of jitter,
never more than ``max_s``; the first failure waits at least ``initial_s`` (capped at ``max_s``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from tenacity import RetryCallState, wait_exponential_jitter

from blendr.errors import BlendrError

Wait = Callable[[RetryCallState], float]
"""A tenacity wait strategy: seconds to wait, read from the retry state's ``attempt_number``."""


def exponential(initial_s: float, max_s: float) -> Wait:
    """``initial_s`` doubling per failure, plus up to ``initial_s`` of jitter, at most ``max_s``."""
    return wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s)  # type: ignore[no-any-return]


def delay(wait: Wait, failures: int) -> float:
    """Seconds ``wait`` asks for after ``failures`` failures in a row (a count below 1 counts as 1)."""
    state = RetryCallState(None, None, (), {})  # wait strategies read attempt_number only
    state.attempt_number = max(1, failures)
    return float(wait(state))


class Backoff:
    """Failures in a row of one never-ending loop, and the bounded wait each one asks for."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.wait = exponential(initial_s, max_s)
        self.failures = 0

    def failed(self) -> float:
        """Counts a failure; returns the seconds to wait before the next try."""
        self.failures += 1
        return delay(self.wait, self.failures)

    def succeeded(self) -> None:
        """The next failure waits the shortest time again."""
        self.failures = 0


async def rounds(step: Callable[[], Awaitable[object]], *, every_s: float, backoff: Backoff, log: Any,
                 what: str) -> NoReturn:
    """Runs ``step`` every ``every_s`` seconds, forever; a failed round waits ``backoff``'s delay instead.

    A BlendrError (a chain, a peer or the store away) is logged as a warning. Any other exception is a bug in
    one round: it is logged with its traceback and counted like a failure, so a duty that renters' money
    depends on outlives it. Only cancellation ends the loop.
    """
    while True:
        wait_s = every_s
        try:
            await step()
            backoff.succeeded()
        except asyncio.CancelledError:
            raise
        except BlendrError as exc:
            wait_s = backoff.failed()
            log.warning(f"{what} round failed; retrying", error=str(exc)[:300], attempt=backoff.failures,
                        retry_in_s=round(wait_s, 2))
        except Exception:
            # Loop boundary (see the docstring): the traceback is logged, the round retried like a failure.
            wait_s = backoff.failed()
            log.exception(f"{what} round failed (bug); retrying", attempt=backoff.failures)
        await asyncio.sleep(wait_s)


__all__ = ["Backoff", "Wait", "delay", "exponential", "rounds"]
