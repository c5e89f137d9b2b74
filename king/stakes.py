"""What GPURental will accept: the providers' and queens' stakes on StakingManager, read and cached.

GPURental refuses a rental unless the provider's active stake is at least ``minStake(Provider) × gpus``, what
its open rentals do not already reserve (``reservedStakeOf``) covers the new rental's possible slash
(``minStake(Provider) × gpus × slashBps / 10000``), and its queen's stake is at least ``minStake(Queen)``
(``GPURentalInsufficientStake`` / ``GPURentalStakeReserved`` / ``GPURentalInsufficientQueenStake``). The market
offers a provider only for as many GPUs as those stakes cover (:meth:`StakeBook.covered_gpus`), so ``blendr
offers`` never lists, and the scheduler never chooses, a provider the contract would refuse as it stood when
last read; a rental the king creates counts against its provider at once (:meth:`StakeBook.reserve`) and makes
its entry due for a new read.

Guarantees:

* No chain call per job or per snapshot: stakes come from a cache that a background loop refreshes
  (:meth:`StakeBook.refresh`, blocking: run it in a worker thread), each entry trusted ``ttl_s``.
* A node whose stake was never read covers nothing (the contract would refuse it as readily as it accepts it);
  a failed read keeps the last known value (an Ethereum outage does not empty the market).
* Bounded: the book keeps only nodes some queen's current pool lists (at most :data:`MAX_KEPT` providers), and
  a refresh round reads at most :data:`READS_PER_ROUND` stakes, shared fairly among the queens, never-read
  nodes first (newest listed first): a queen listing thousands of junk providers delays only its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from blendr.clock import Clock
from blendr.errors import BlendrError
from blendr.telemetry import get_logger

log = get_logger("blendr.king.stakes")

READS_PER_ROUND = 32
"""Stakes one refresh round reads at most (the minimums aside); the rest wait for the next rounds."""
MAX_KEPT = 100_000
"""Provider stakes the book keeps at most; a node listed beyond that is not read (covers nothing) until room
frees up."""


class StakeReader(Protocol):
    """StakingManager as the stake book reads it (blocking; errors are BlendrError)."""

    def provider_stake(self, provider: str) -> int: ...
    def reserved_stake(self, provider: str) -> int: ...
    def queen_stake(self, queen: str) -> int: ...
    def min_provider_stake(self) -> int: ...
    def min_queen_stake(self) -> int: ...
    def slash_bps(self) -> int: ...


class StakingReader:
    """The adapter over :class:`blendr.chain.contracts.StakingManager` and ``GPURental`` (for its slash share;
    their errors are BlendrError already)."""

    def __init__(self, staking: object, rental: object) -> None:
        from blendr.chain.contracts import GPURental, StakingManager

        assert isinstance(staking, StakingManager) and isinstance(rental, GPURental)
        self._s = staking
        self._r = rental

    def reserved_stake(self, provider: str) -> int:
        return int(self._s.reserved_stake_of(provider))

    def slash_bps(self) -> int:
        return self._r.slash_bps()

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
        self._reserved: dict[str, int] = {}  # provider -> stake its open rentals reserve, as last read (+ ours)
        self._queens: dict[str, tuple[int, float]] = {}
        self._mins: tuple[int, int, int, float] | None = None  # (provider per GPU, queen, slash bps, read at)
        self._listed: dict[str, int] = {}  # provider -> the round it was first seen listed (newest read first)
        self._round = 0

    # ------------------------------------------------------------------ reads (event loop; no chain)
    def covered_gpus(self, provider: str, queen: str) -> int:
        """How many GPUs a rental on ``provider`` through ``queen`` may have now (0: none; the contract would
        refuse any). Never reads the chain: an unknown stake counts as none and is read by a coming refresh
        (once a queen's pool lists the pair)."""
        with self._lock:
            mins = self._mins
            p = self._providers.get(provider)
            q = self._queens.get(queen)
            held = self._reserved.get(provider, 0)
        if mins is None or p is None or q is None:
            return 0
        min_p, min_q, bps, _ = mins
        if q[0] < min_q:
            return 0
        if min_p == 0:
            return _UNLIMITED
        by_stake = p[0] // min_p
        free = max(p[0] - held, 0)
        if bps == 0:
            return by_stake
        n = min(by_stake, free * BPS // (min_p * bps))  # then exactly as GPURental rounds: floor(min_p*n*bps/BPS)
        while n < by_stake and min_p * (n + 1) * bps // BPS <= free:
            n += 1
        return n

    def reserve(self, provider: str, gpus: int) -> None:
        """A rental of ``gpus`` on ``provider`` was created: its possible slash counts against the provider's free
        stake now, and the provider's entry is due for a new read (the chain's reservation is the truth)."""
        with self._lock:
            mins, entry = self._mins, self._providers.get(provider)
            if mins is None or entry is None:
                return
            self._reserved[provider] = self._reserved.get(provider, 0) + mins[0] * gpus * mins[2] // BPS
            self._providers[provider] = (entry[0], float("-inf"))

    def forget(self, provider: str, queen: str) -> None:
        """GPURental refused a rental of ``provider`` through ``queen`` for their stake: what the book knew is
        stale; both count as unstaked until read again (by a coming refresh, first among the never-read)."""
        with self._lock:
            self._providers.pop(provider, None)
            self._reserved.pop(provider, None)
            self._queens.pop(queen, None)

    # ------------------------------------------------------------------ refresh (worker thread; chain)
    def due(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (kind, address) entries to read in this round, of the (provider, queen) pairs the queens' pools
        list now: never read, or older than the TTL. Forgets every node no pair lists any more. At most
        :data:`READS_PER_ROUND`: queens first, then providers taken in turn from each queen's list (queens
        rotating across rounds), each queen's never-read providers first (newest listed first), then its stale
        ones (oldest read first)."""
        now = self.clock.monotonic()
        by_queen: dict[str, list[str]] = {}
        seen: set[str] = set()
        for provider, queen in pairs:
            if provider not in seen:  # a provider listed by two queens is read once, in the first one's turn
                seen.add(provider)
                by_queen.setdefault(queen, []).append(provider)
            else:
                by_queen.setdefault(queen, [])
        with self._lock:
            self._round += 1
            for table, keep in ((self._providers, seen), (self._reserved, seen), (self._queens, by_queen.keys())):
                for gone in [a for a in table if a not in keep]:
                    del table[gone]
            self._listed = {p: self._listed.get(p, self._round) for p in seen}
            room = MAX_KEPT - len(self._providers)
            out = [("q", q) for q in sorted(by_queen) if self._stale(self._queens.get(q), now)]
            out = out[:READS_PER_ROUND]
            turns: list[list[str]] = []
            for queen in by_queen:
                fresh = [p for p in by_queen[queen] if p not in self._providers]
                fresh.sort(key=lambda p: -self._listed[p])
                stale = [p for p in by_queen[queen] if p in self._providers and self._stale(self._providers[p], now)]
                stale.sort(key=lambda p: self._providers[p][1])
                if fresh or stale:
                    turns.append([*fresh[:max(room, 0)], *stale][::-1])  # popped from the end
            if turns:
                k = self._round % len(turns)
                turns = turns[k:] + turns[:k]
        while turns and len(out) < READS_PER_ROUND:
            for turn in list(turns):
                if len(out) >= READS_PER_ROUND:
                    break
                if turn:
                    out.append(("p", turn.pop()))
                if not turn:
                    turns.remove(turn)
        return out

    def _stale(self, entry: tuple[int, float] | None, now: float) -> bool:
        return entry is None or now - entry[1] >= self.ttl_s

    def refresh(self, entries: Iterable[tuple[str, str]]) -> bool:
        """Reads the minimums (when stale) and the given stakes from the chain (blocking). Returns whether any
        provider's coverage may have changed. A failed read keeps the last known value and is logged."""
        now = self.clock.monotonic()
        changed = False
        try:
            if self._mins is None or now - self._mins[3] >= self.ttl_s:
                mins = (self.reader.min_provider_stake(), self.reader.min_queen_stake(), self.reader.slash_bps(), now)
                changed = self._mins is None or self._mins[:3] != mins[:3]
                self._mins = mins
        except BlendrError as exc:
            log.warning("reading StakingManager's minimum stakes failed", error=str(exc)[:200])
        for kind, address in entries:
            try:
                stake = self.reader.provider_stake(address) if kind == "p" else self.reader.queen_stake(address)
                held = self.reader.reserved_stake(address) if kind == "p" else 0
            except BlendrError as exc:
                log.warning("reading a stake failed; the last known value stays", node=address, error=str(exc)[:200])
                continue
            table = self._providers if kind == "p" else self._queens
            with self._lock:
                old = table.get(address)
                if old is None and kind == "p" and len(table) >= MAX_KEPT:
                    continue  # full: stays unread (covers nothing) until due() frees room
                table[address] = (stake, now)
                if kind == "p":
                    old_held = self._reserved.get(address)
                    self._reserved[address] = held
                    changed = changed or old_held != held
            if old is None or old[0] != stake:
                changed = True
                if old is not None:
                    log.info("stake changed", node=address, tier="provider" if kind == "p" else "queen", stake=stake)
        return changed


BPS = 10_000
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
