"""Clocks: the real one and a manual one for tests (time-based behaviour always takes a clock)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for records shown to people)."""

    def monotonic(self) -> float:
        """Monotonic seconds (for intervals, deadlines and liveness)."""


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to; both readings advance together."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 1000.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._wall += seconds
        self._mono += seconds


class ShiftedClock:
    """The real clock with wall time moved forward by :meth:`shift` (monotonic time is untouched).

    For tests that move chain time with ``evm_increaseTime``: shifting the queen's wall clock by the same
    amount keeps rental windows (chain timestamps) and challenge times (the queen's clock) comparable,
    while deadlines, measured on the monotonic clock, stay real.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def shift(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.offset += seconds
