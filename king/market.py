"""What the network offers now, as the queens report it: providers, their keys and load, and quotes.

Guarantees: a provider is offered only while its queen's latest snapshot lists it (alive, with its own
admission to that queen), and only for as many GPUs as GPURental would accept (its stake and its queen's,
``king.stakes``; re-applied when a stake changes); a quote lists at most ``candidates`` providers, cheapest
first, and names why nothing matches when nothing does (``Quote.why``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from eth_utils import to_checksum_address

from blendr.errors import InvalidArgumentError
from blendr.jobspec import Spec
from blendr.units import fmt_tokens
from king.scheduler import PoolSnapshot, ProviderOffer, Scheduler
from king.stakes import StakeBook


@dataclass(frozen=True)
class PoolEntry:
    offer: ProviderOffer
    public_key: bytes
    busy_gpus: int


class NoMatch(StrEnum):
    """Why a quote has no candidate."""

    NONE = ""
    NO_PROVIDER = "no_provider"  # nothing in the network has the GPUs asked for
    PRICE = "price"  # providers match, but none at or under the renter's max price


@dataclass(frozen=True)
class Quote:
    price: int
    max_escrow: int
    candidates: list[PoolEntry]
    reason: str
    closest: list[ProviderOffer]
    why: NoMatch = NoMatch.NONE


def fits(o: ProviderOffer, s: Spec) -> bool:
    """Whether ``o`` has the hardware ``s`` asks for (alive, GPUs, model, VRAM, TFLOP/s), whatever its price."""
    return (o.alive and o.gpus >= s.gpus and (not s.gpu_model or o.gpu_model == s.gpu_model)
            and o.vram_bytes >= s.min_vram_bytes and (s.min_tflops <= 0 or o.tflops >= s.min_tflops))


class Market:
    """The providers the queens report, kept per queen; quotes from the scheduler's prices."""

    def __init__(self, scheduler: Scheduler, reputation: Callable[[str], int] | None = None,
                 candidates: int = 16, stakes: StakeBook | None = None) -> None:
        """``stakes``: what GPURental accepts of each provider (None: every offer as reported, for tests of
        other parts)."""
        self.scheduler = scheduler
        self.reputation = reputation or (lambda _p: 5000)
        self.candidates = candidates
        self.stakes = stakes
        self._snapshots: dict[str, tuple[int, list[tuple[ProviderOffer, bytes, int]]]] = {}  # queen -> as sent
        # provider -> (GPUs offered, GPUs its stake covers), of providers offered now (pruned with the pool)
        self.understaked: dict[str, tuple[int, int]] = {}
        self.pool: dict[str, PoolEntry] = {}  # provider -> latest report
        self._pools: dict[str, set[str]] = {}  # queen -> providers
        self._by_model: dict[str, dict[str, PoolEntry]] = {}  # GPU model -> provider -> latest report

    def on_snapshot(self, queen: str, seq: int, providers: list[tuple[ProviderOffer, bytes, int]]) -> None:
        """A queen's pool: offers (reputation filled in here), public keys and busy GPUs; all or nothing.

        Raises:
            InvalidArgumentError: the scheduler refused the snapshot (nothing changed).
        """
        queen = to_checksum_address(queen)
        entries: dict[str, PoolEntry] = {}  # a provider listed twice counts once (the last listing)
        short: dict[str, tuple[int, int] | None] = {}  # provider -> understaked (None: covered), once accepted
        for offer, pub, busy in providers:
            o = replace(offer, queen=queen, reputation=self.reputation(offer.provider))
            if self.stakes is not None:
                covered = self.stakes.covered_gpus(o.provider, queen)
                short[o.provider] = (o.gpus, covered) if covered < o.gpus else None
                if covered < o.gpus:
                    o = replace(o, gpus=covered)
            entries[o.provider] = PoolEntry(o, pub, busy)
        try:  # the scheduler first: a snapshot it refuses changes nothing here either
            self.scheduler.update_pool(PoolSnapshot(queen, tuple(e.offer for e in entries.values()), seq))
        except ValueError as exc:
            raise InvalidArgumentError(f"pool snapshot of queen {queen} refused: {str(exc)[:200]}") from None
        for e in entries.values():
            self._put(e)
        for provider, under in short.items():
            if under is None:
                self.understaked.pop(provider, None)
            else:
                self.understaked[provider] = under
        for gone in self._pools.get(queen, set()) - entries.keys():
            left = self.pool.get(gone)
            if left is not None and left.offer.queen == queen:  # not one that moved to another queen meanwhile
                self._drop(gone)
        self._pools[queen] = set(entries)
        self._snapshots[queen] = (seq, list(providers))

    def restake(self) -> None:
        """Applies every queen's latest snapshot again (a stake changed: what GPURental accepts changed)."""
        for queen, (seq, providers) in list(self._snapshots.items()):
            self.on_snapshot(queen, seq, providers)

    def staked_pairs(self) -> list[tuple[str, str]]:
        """(provider, queen) of every provider the queens list now (whose stakes the stake book follows)."""
        return [(o.provider, queen) for queen, (_, providers) in self._snapshots.items() for o, _, _ in providers]

    def members(self, queen: str) -> frozenset[str]:
        """The providers ``queen``'s latest accepted snapshot lists (checksum addresses; empty: none)."""
        return frozenset(self._pools.get(to_checksum_address(queen), ()))

    def listed(self) -> dict[str, list[tuple[ProviderOffer, int]]]:
        """Every queen's latest accepted snapshot as it sent it: (offer, busy GPUs) per provider, GPUs not reduced
        to what the stakes cover (the network view shows what the pools have)."""
        return {q: [(o, busy) for o, _, busy in providers] for q, (_, providers) in self._snapshots.items()}

    def reputation_of(self, provider: str) -> int:
        """The provider's reputation score as the scheduler uses it (basis points)."""
        return self.reputation(provider)

    def remove_queen(self, queen: str) -> None:
        self.scheduler.remove_pool(queen)
        self._snapshots.pop(queen, None)
        for p in self._pools.pop(queen, set()):
            e = self.pool.get(p)
            if e is not None and e.offer.queen == queen:
                self._drop(p)

    def _put(self, e: PoolEntry) -> None:
        old = self.pool.get(e.offer.provider)
        if old is not None and old.offer.gpu_model != e.offer.gpu_model:
            self._by_model.get(old.offer.gpu_model, {}).pop(e.offer.provider, None)
        if old is not None and old.offer.queen != e.offer.queen:  # it moved to another queen
            self._pools.get(old.offer.queen, set()).discard(e.offer.provider)
        self.pool[e.offer.provider] = e
        self._by_model.setdefault(e.offer.gpu_model, {})[e.offer.provider] = e

    def _drop(self, provider: str) -> None:
        self.understaked.pop(provider, None)
        old = self.pool.pop(provider, None)
        if old is not None:
            self._by_model.get(old.offer.gpu_model, {}).pop(provider, None)

    def _price(self, o: ProviderOffer) -> int:
        return max(o.ask_per_gpu_hour, int(self.scheduler.quote(o.gpu_model)))

    def quote(self, spec: Spec) -> Quote:
        """The price now and the providers that could run ``spec`` (validated by the caller)."""
        among = self._by_model.get(spec.gpu_model, {}) if spec.gpu_model else self.pool
        matching = [e for e in among.values() if fits(e.offer, spec)]
        if spec.gpu_model:
            price = int(self.scheduler.quote(spec.gpu_model))
        else:
            price = min((int(self.scheduler.quote(m)) for m in {e.offer.gpu_model for e in matching}), default=0)
        priced = [e for e in matching if self._price(e.offer) <= spec.max_price_per_gpu_hour]
        priced.sort(key=lambda e: (self._price(e.offer), -e.offer.reputation, e.busy_gpus))
        if priced:
            return Quote(price, spec.max_escrow(), priced[: self.candidates], "", [])
        what = f"{spec.gpus}×{spec.gpu_model or 'GPU'}"
        closest = self.scheduler.closest_offers(spec, 3)
        if not matching:
            short = [p for p, (offered, _) in self.understaked.items() if offered >= spec.gpus and p in self.pool
                     and (not spec.gpu_model or self.pool[p].offer.gpu_model == spec.gpu_model)]
            why = (f" ({len(short)} provider{'s' if len(short) > 1 else ''} with these GPUs {'are' if len(short) > 1 else 'is'}"
                   " not staked enough for GPURental to accept a rental of them)") if short else ""
            return Quote(price, spec.max_escrow(), [], f"no provider with {what} in the network now{why}", closest,
                         NoMatch.NO_PROVIDER)
        cheapest = min(self._price(e.offer) for e in matching)
        return Quote(price, spec.max_escrow(), [], f"no provider with {what} under "
                     f"{fmt_tokens(spec.max_price_per_gpu_hour)}/h (the cheapest is {fmt_tokens(cheapest)}/h)",
                     closest, NoMatch.PRICE)
