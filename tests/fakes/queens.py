"""Fakes of the queens as the king's core sees them (``king.context.QueenPort``), and a settable clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from blendr.hashing import checksum_address
from king.context import Assignment


class FakeClock:
    """Wall clock and monotonic clock that move only when a test says so."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class FakeQueens:
    """Connected queens that record every assignment and stop; a queen not in ``up`` refuses both."""

    up: set[str] = field(default_factory=set)
    assigned: list[tuple[str, Assignment]] = field(default_factory=list)
    stops: list[tuple[str, str, int, str]] = field(default_factory=list)

    def connect(self, queen: str) -> None:
        self.up.add(checksum_address(queen))

    def disconnect(self, queen: str) -> None:
        self.up.discard(checksum_address(queen))

    def connected(self, queen: str) -> bool:
        return checksum_address(queen) in self.up

    def assign(self, queen: str, assignment: Assignment) -> bool:
        if not self.connected(queen):
            return False
        self.assigned.append((checksum_address(queen), assignment))
        return True

    def stop(self, queen: str, job_id: str, attempt: int, reason: str) -> bool:
        if not self.connected(queen):
            return False
        self.stops.append((checksum_address(queen), job_id, attempt, reason))
        return True

    def last(self, job_id: str) -> Assignment:
        return [a for _, a in self.assigned if a.job_id == job_id][-1]
