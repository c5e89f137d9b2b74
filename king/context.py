"""What the king's job modules (intake, placement, lifecycle) share: ports, settings and loop-local state.

The ports are protocols, so the modules run against fakes (tests/fakes) as well as against Ethereum and the
queens' real sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from blendr.clock import Clock
from blendr.config import KingConfig
from king.jobbook import JobBook
from king.market import Market
from king.rentals import RentalChain, RentalParams
from king.scheduler import Scheduler


@dataclass(frozen=True)
class Assignment:
    """A job handed to a provider's queen: what the provider needs to run it (nothing it can read but the
    payload sealed to its own key)."""

    job_id: str
    attempt: int
    provider: str
    gpus: int
    rental_id: bytes
    deadline_unix: float
    ciphertext: bytes
    sealed_key: bytes
    aad: str
    # The most sealed output bytes the king takes for the job (the provider bounds what it packs by it).
    max_output_bytes: int = 0


class BridgeView(Protocol):
    """What the job modules read of the king's bridge (king.bridge.AttestationBook)."""

    def rental_wait(self, rental_id: int) -> str: ...


class QueenPort(Protocol):
    """The queens' sessions as the job modules use them (king.queens.QueenHub)."""

    def connected(self, queen: str) -> bool: ...
    def assign(self, queen: str, assignment: Assignment) -> bool: ...
    def stop(self, queen: str, job_id: str, attempt: int, reason: str) -> bool: ...


@dataclass(frozen=True)
class JobsConfig:
    max_intents: int = 4
    max_payload_bytes: int = 8 * 2**20
    max_intent_deadline_s: int = 7 * 86400
    max_log_events: int = 20_000
    candidates: int = 16
    max_sealed_key_bytes: int = 1024
    max_open_jobs_per_renter: int = 100
    max_watchers_per_renter: int = 64
    max_queued_jobs: int = 50_000
    queen_grace_s: float = 30.0
    # the longest a renter-cancelled job keeps its provider's GPUs promised while the provider has not said it
    # stopped the job (a provider still running it would refuse a new job on them)
    stop_hold_s: float = 120.0
    retry_s: float = 2.0
    default_max_wait_s: float = 3600.0  # a job's wait for a provider when the renter sets none
    max_wait_s: float = 86400.0  # the longest wait a renter may set
    max_output_bytes: int = 1 * 2**30

    @classmethod
    def of(cls, kc: KingConfig) -> JobsConfig:
        """The job settings an operator sets in the ``[king]`` section (the rest keep their defaults)."""
        return cls(max_intents=kc.max_intents, max_payload_bytes=kc.max_payload_bytes,
                   max_open_jobs_per_renter=kc.max_open_jobs_per_renter, max_queued_jobs=kc.max_queued_jobs,
                   queen_grace_s=kc.queen_grace_s,
                   default_max_wait_s=kc.default_max_wait_s, max_wait_s=kc.max_wait_s, max_output_bytes=kc.max_output_bytes)


@dataclass
class KingContext:
    book: JobBook
    clock: Clock
    scheduler: Scheduler
    market: Market
    chain: RentalChain
    queens: QueenPort
    cfg: JobsConfig
    params: RentalParams | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    queen_gone: dict[str, float] = field(default_factory=dict)  # queen -> monotonic time it went away
    retry_create: dict[str, float] = field(default_factory=dict)  # job -> when to try its rental creation again
    busy: set[str] = field(default_factory=set)  # jobs with a rental creation in flight
    pending_rentals: dict[str, str] = field(default_factory=dict)  # rental key -> job id, awaiting settlement
    waits: list[tuple[float, str]] = field(default_factory=list)  # heap of (wall time a queued job gives up, job)
    bridge: BridgeView | None = None  # the attestations of rentals' bridge messages (settlement waits)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stopped: bool = False  # this king stopped leading (king.ha): its loops end, whatever else a pass was doing

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Runs ``coro`` in the background, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Waits for the background work in flight (tests, and a graceful stop)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
