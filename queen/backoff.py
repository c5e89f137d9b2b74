"""Waits between tries of the queen's loops that never give up (chain duties, the king's session).

The loops themselves must go on forever (a queen keeps serving its pool while a chain or its king is away),
so what is bounded is each wait: tenacity's exponential wait with jitter, capped.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryCallState, wait_exponential_jitter

Wait = Callable[[RetryCallState], float]


def exponential(initial_s: float, max_s: float) -> Wait:
    """``initial_s`` doubling per failure, plus up to ``initial_s`` of jitter, at most ``max_s``."""
    return wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s)  # type: ignore[no-any-return]


def delay(wait: Wait, failures: int) -> float:
    """Seconds ``wait`` asks for after ``failures`` (>= 1) failures in a row."""
    state = RetryCallState(None, None, (), {})  # wait strategies read attempt_number only
    state.attempt_number = max(1, failures)
    return float(wait(state))
