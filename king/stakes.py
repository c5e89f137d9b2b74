"""What GPURental will accept: the providers' and queens' stakes on StakingManager, read and cached.

GPURental refuses a rental unless the provider's active stake is at least ``minStake(Provider) × gpus`` and its
queen's at least ``minStake(Queen)`` (``GPURentalInsufficientStake`` / ``GPURentalInsufficientQueenStake``). The
market offers a provider only for as many GPUs as those stakes cover (:meth:`StakeBook.covered_gpus`), so
``blendr offers`` never lists, and the scheduler never chooses, a provider the contract would refuse.

Guarantees:

* No chain call per job or per snapshot: stakes come from a cache that a background loop refreshes
  (:meth:`StakeBook.refresh`, blocking: run it in a worker thread), each entry trusted ``ttl_s``.
* A node whose stake was never read covers nothing (the contract would refuse it as readily as it accepts it);
  a failed read keeps the last known value (an Ethereum outage does not empty the market).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from blendr.clock import Clock
from blendr.errors import BlendrError
from blendr.telemetry import get_logger

log = get_logger("blendr.king.stakes")


class StakeReader(Protocol):
    """StakingManager as the stake book reads it (blocking; errors are BlendrError)."""

    def provider_stake(self, provider: str) -> int: ...
    def queen_stake(self, queen: str) -> int: ...
    def min_provider_stake(self) -> int: ...
    def min_queen_stake(self) -> int: ...


class StakingReader:
    """The adapter over :class:`blendr.chain.contracts.StakingManager` (its errors are BlendrError already)."""

    def __init__(self, staking: object) -> None:
        from blendr.chain.contracts import StakingManager

        assert isinstance(staking, StakingManager)
        self._s = staking

    def provider_stake(self, provider: str) -> int:
        from blendr.chain.contracts import Tier

        return int(self._s.stake_of(provider, Tier.PROVIDER))

    def queen_stake(self, queen: str) -> int:
        from blendr.chain.contracts import Tier

        return int(self._s.stake_of(queen, Tier.QUEEN))

    def min_provider_stake(self) -> int:
        from blendr.chain.contracts import Tier

        return int(self._s.min_stake(Tier.PROVIDER))

    def min_queen_stake(self) -> int:
        from blendr.chain.contracts import Tier

        return int(self._s.min_stake(Tier.QUEEN))


class StakeBook:
    """Cached stakes of providers and queens, and the GPUs each provider's stake covers."""

    def __init__(self, reader: StakeReader, clock: Clock, ttl_s: float = 60.0) -> None:
        if not ttl_s > 0:
            raise ValueError("the stake cache TTL must be > 0")
        self.reader = reader
        self.clock = clock
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._providers: dict[str, tuple[int, float]] = {}  # address -> (stake, read at, monotonic)
        self._queens: dict[str, tuple[int, float]] = {}
        self._mins: tuple[int, int, float] | None = None  # (provider per GPU, queen, read at)
        self._wanted: set[tuple[str, str]] = set()  # (kind, address) asked for but never read

    # ------------------------------------------------------------------ reads (event loop; no chain)
    def covered_gpus(self, provider: str, queen: str) -> int:
        """How many GPUs a rental on ``provider`` through ``queen`` may have now (0: none; the contract would
        refuse any). Never reads the chain: an unknown stake counts as none and is read by the next refresh."""
        with self._lock:
            mins = self._mins
            p = self._providers.get(provider)
            q = self._queens.get(queen)
            if p is None:
                self._wanted.add(("p", provider))
            if q is None:
                self._wanted.add(("q", queen))
        if mins is None or p is None or q is None:
            return 0
        min_p, min_q, _ = mins
        if q[0] < min_q:
            return 0
        return _UNLIMITED if min_p == 0 else p[0] // min_p

    def forget(self, provider: str, queen: str) -> None:
        """GPURental refused a rental of ``provider`` through ``queen`` for their stake: what the book knew is
        stale; both count as unstaked until read again (by the next refresh)."""
        with self._lock:
            self._providers.pop(provider, None)
            self._queens.pop(queen, None)
            self._wanted |= {("p", provider), ("q", queen)}

    # ------------------------------------------------------------------ refresh (worker thread; chain)
    def due(self, providers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (kind, address) entries to read now: never read and asked for, or older than the TTL, of the
        given (provider, queen) pairs."""
        now = self.clock.monotonic()
        out: set[tuple[str, str]] = set()
        with self._lock:
            out |= self._wanted
            for provider, queen in providers:
                p, q = self._providers.get(provider), self._queens.get(queen)
                if p is None or now - p[1] >= self.ttl_s:
                    out.add(("p", provider))
                if q is None or now - q[1] >= self.ttl_s:
                    out.add(("q", queen))
        return sorted(out)

    def refresh(self, entries: Iterable[tuple[str, str]]) -> bool:
        """Reads the minimums (when stale) and the given stakes from the chain (blocking). Returns whether any
        provider's coverage may have changed. A failed read keeps the last known value and is logged."""
        now = self.clock.monotonic()
        changed = False
        try:
            if self._mins is None or now - self._mins[2] >= self.ttl_s:
                mins = (self.reader.min_provider_stake(), self.reader.min_queen_stake(), now)
                changed = self._mins is None or self._mins[:2] != mins[:2]
                self._mins = mins
        except BlendrError as exc:
            log.warning("reading StakingManager's minimum stakes failed", error=str(exc)[:200])
        for kind, address in entries:
            try:
                stake = self.reader.provider_stake(address) if kind == "p" else self.reader.queen_stake(address)
            except BlendrError as exc:
                log.warning("reading a stake failed; the last known value stays", node=address, error=str(exc)[:200])
                continue
            table = self._providers if kind == "p" else self._queens
            with self._lock:
                old = table.get(address)
                table[address] = (stake, now)
                self._wanted.discard((kind, address))
            if old is None or old[0] != stake:
                changed = True
                if old is not None:
                    log.info("stake changed", node=address, tier="provider" if kind == "p" else "queen", stake=stake)
        return changed


_UNLIMITED = 1 << 30
"""The coverage of a provider when GPURental requires no stake (minStake 0)."""


class _Market(Protocol):
    def staked_pairs(self) -> list[tuple[str, str]]: ...
    def restake(self) -> None: ...


async def follow(book: StakeBook, market: _Market, every_s: float = 1.0) -> None:
    """Keeps the stakes of the providers the queens list fresh, forever (cancel to stop): reads only entries
    that are new or older than the TTL, in a worker thread, and re-applies the pools when a stake changed."""
    import asyncio

    while True:
        try:
            due = book.due(market.staked_pairs())
            if due:
                changed: bool = await asyncio.to_thread(book.refresh, due)
                if changed:
                    market.restake()
        except Exception as exc:  # loop boundary: a bug in one round must not freeze every stake for good
            log.exception("stake refresh failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
        await asyncio.sleep(every_s)
