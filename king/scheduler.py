"""The King's global scheduler: places renters' jobs on providers through their queens' pools.

Pure domain code (no I/O), single-threaded: the caller serializes calls. A job is described by the renter's
``blendr.jobspec.Spec`` (its duration plays no part in placement; its price ceiling is always a real one)
and by its *candidates*, the providers its payload key is wrapped for (none: any provider). Two levels:

1. **Pool.** Of the queen pools with a provider that has enough free GPUs of the asked model, the least
   loaded one (reserved / offered GPUs of that model) is tried first, then the next.
2. **Provider.** Within the pool, the provider that matches the spec (model, VRAM, measured TFLOP/s,
   price), is a candidate of the job and not excluded for it, with the best score: reputation, uptime
   and free share of its GPUs (less loaded first); among equal scores the cheaper ask wins.

The scheduler tracks what it has promised itself: a provider's free GPUs are its offered GPUs minus the
GPUs of the placements on it, whatever a later snapshot says, so a GPU is never promised twice. Renters
are served round robin (least recently served first, newcomers first of all), jobs of one renter in FIFO
order; a job that does not fit waits without blocking others.

Indexes keep a placement cheap with thousands of providers and queued jobs:

* per pool and model (and per pool for "any model"), providers sit in buckets by free GPU count, each
  bucket sorted by score;
* jobs with the same needs apart from the price ceiling share a *shape*. Per shape the scheduler keeps a
  lower bound of the cheapest ask among the providers that could take it (per model); with the current
  quote that gives the lowest price at which the shape can be placed now, so a job whose ceiling is
  below it is skipped without a search. A failed search makes the bound exact; a release or a new offer
  lowers it; placements only make it conservative;
* per renter and shape, queued jobs sit in a max-tree over their price ceilings, so the renter's
  earliest job that can be placed is found in O(log n);
* a renter with nothing placeable waits per shape, ordered by its highest ceiling, and is woken only
  when that shape's lowest price falls to it.

``Scheduler`` is a facade over three parts: ``_ProviderIndex`` (pools, providers, reservations, per-model
figures and quotes, the searches), ``_Queue`` (renters' round robin, lanes and shapes, serving a renter)
and ``_Explainer`` (why a job waits, the closest offers).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from blendr.jobspec import Spec
from king.pricing import Pricer, Wei, format_tokens

GIB = 2**30
MAX_REPUTATION = 10_000
"""Reputation is in basis points, 0..10000."""

# Provider score = W_REPUTATION × reputation share + W_UPTIME × uptime + W_FREE × free share of its GPUs.
W_REPUTATION = 0.5
W_UPTIME = 0.3
W_FREE = 0.2
SCORE_STEPS = 1000
"""Scores are compared in steps of 1/1000: providers within one step are equal, and the cheaper wins."""


@dataclass(frozen=True)
class ProviderOffer:
    """One provider as its queen reports it in a pool snapshot.

    Attributes:
        provider: Checksum address of the provider.
        queen: Checksum address of its queen.
        gpu_model: Fingerprint key, e.g. ``"h100-sxm"``, ``"rtx-4090"``, ``"cpu"``.
        gpus: Devices it offers.
        vram_bytes: Memory per device.
        tflops: FP32 TFLOP/s per device measured by the proofs; 0.0 while not measured.
        ask_per_gpu_hour: The provider's floor price, wei per GPU-hour.
        reputation: On-chain score in basis points, 0..10000.
        uptime: Passed / decided challenges, 0..1.
        alive: Whether its queen considers it alive.
        sandboxed: Whether it runs renters' jobs in a sandbox (False: its operator chose none).
        sandbox: Which one, as its queen reported it.
    """

    provider: str
    queen: str
    gpu_model: str
    gpus: int
    vram_bytes: int
    tflops: float
    ask_per_gpu_hour: Wei
    reputation: int
    uptime: float
    alive: bool = True
    sandboxed: bool = True
    # the sandbox its queen reported: "bubblewrap", "gvisor" or "none" (empty: not reported; shown by the network view)
    sandbox: str = ""


@dataclass(frozen=True)
class PoolSnapshot:
    """Every provider of one queen's pool; ``seq`` increases per snapshot from that queen."""

    queen: str
    providers: tuple[ProviderOffer, ...]
    seq: int = 0


@dataclass(frozen=True)
class Placement:
    """A job placed on a provider; ``price_per_gpu_hour`` = max(provider ask, model quote) <= the renter's max."""

    job_id: str
    renter: str
    queen: str
    provider: str
    gpus: int
    price_per_gpu_hour: Wei


@dataclass(frozen=True)
class ModelOffer:
    """What the network offers of one GPU model (providers that may take jobs now)."""

    gpu_model: str
    providers: int
    gpus_free: int
    gpus_total: int
    min_ask_per_gpu_hour: Wei
    quote_per_gpu_hour: Wei
    best_reputation: int
    unsandboxed: int = 0  # of ``providers``, those that run jobs without a sandbox


# ---------------------------------------------------------------------------------------------- internals

# (model, gpus, min vram, min tflops, excluded, allowed (empty: any))
_ShapeKey = tuple[str, int, int, float, frozenset[str], frozenset[str]]

MAX_PRICE = 2**256 - 1
"""The highest price ceiling the scheduler takes (a uint256, as GPURental holds prices)."""
_NEVER = 1 << 257  # the lowest price of a shape that nothing can take at any price: above every ceiling

_IDLE, _ACTIVE, _BLOCKED = 0, 1, 2  # renter states: no queued job / in the service heap / waiting
_QUEUED, _PLACED = 0, 1  # job states


class _Provider:
    """A provider the scheduler knows: its latest offer (if any), its queen and what is promised on it."""

    __slots__ = ("address", "entry", "free", "offer", "queen", "reserved")

    def __init__(self, address: str) -> None:
        self.address = address
        self.offer: ProviderOffer | None = None
        self.queen: str | None = None  # the queen whose latest snapshot lists it; None when unlisted
        self.reserved = 0  # GPUs of the placements on it, whatever the snapshots say
        self.entry: _Entry | None = None  # its index entry while it may take jobs
        self.free = 0  # free GPUs when it was indexed


# (-score step, ask, address, vram, tflops, model, provider): sorted best score first, then by ask.
_Entry = tuple[int, int, str, int, float, str, _Provider]


class _Group:
    """The market providers of one pool and one model (or of every model, key ``""``)."""

    __slots__ = ("buckets", "free_gpus", "frees", "total_gpus")

    def __init__(self) -> None:
        self.buckets: dict[int, list[_Entry]] = {}  # free GPUs -> entries, sorted
        self.frees: list[int] = []  # the keys of non-empty buckets, ascending
        self.free_gpus = 0
        self.total_gpus = 0


@dataclass
class _ModelStats:
    providers: int
    min_ask: int
    best_reputation: int


class _Queen:
    __slots__ = ("groups", "members", "seq", "stats")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.members: set[str] = set()
        self.groups: dict[str, _Group] = {}
        self.stats: dict[str, _ModelStats] = {}  # market providers per model


class _Totals:
    """Market GPUs of one model: offered and free."""

    __slots__ = ("free", "total")

    def __init__(self) -> None:
        self.total = 0
        self.free = 0


class _Shape:
    """Jobs alike apart from their price ceiling, and what is known of where they could go."""

    __slots__ = ("allowed", "excl", "gpus", "jobs", "key", "min_asks", "model", "tflops", "vram", "waiting")

    def __init__(self, key: _ShapeKey) -> None:
        self.key = key
        self.model, self.gpus, self.vram, self.tflops, self.excl, self.allowed = key
        # Per model, a lower bound of the cheapest ask among market providers that match this shape and
        # have its GPUs free; a model missing has none. None: unknown (anything may fit).
        self.min_asks: dict[str, int] | None = None
        self.waiting: list[tuple[int, int, str]] = []  # heap of (-highest ceiling, block id, renter)
        self.jobs = 0  # queued jobs of this shape


class _Job:
    __slots__ = ("allowed", "ceiling", "excl", "job_id", "lane", "placement", "pos", "renter", "seq", "spec",
                 "state")

    def __init__(
        self, job_id: str, renter: str, spec: Spec | None, allowed: frozenset[str], seq: int
    ) -> None:
        self.job_id = job_id
        self.renter = renter
        self.spec = spec  # None for a placement restored without its spec
        self.allowed = allowed  # its candidates; empty: any provider
        self.excl: frozenset[str] = frozenset()
        self.seq = seq  # order within the renter's queue (smaller first)
        self.ceiling = spec.max_price_per_gpu_hour if spec is not None else 0  # only read while queued
        self.state = _QUEUED
        self.placement: Placement | None = None
        self.lane: _Lane | None = None  # while queued
        self.pos = -1  # its leaf in the lane's tree; -1 in the lane's front list

    def shape_key(self) -> _ShapeKey:
        spec = self.spec
        assert spec is not None
        return (spec.gpu_model, spec.gpus, spec.min_vram_bytes, spec.min_tflops, self.excl, self.allowed)


class _Lane:
    """One renter's queued jobs of one shape, in order, with the highest ceiling of any range at hand.

    Jobs appended at the back sit in the leaves of a max-tree over their ceilings; the few jobs put
    back in front (requeued) or moved from another shape (excluded) sit in ``front``, sorted by seq.
    """

    __slots__ = ("cap", "front", "jobs", "live", "n", "shape", "tree")

    def __init__(self, shape: _Shape) -> None:
        self.shape = shape
        self.cap = 8
        self.tree = [-1] * (2 * self.cap)  # tree[1] is the root; leaves at cap + i; -1 = no job
        self.jobs: list[_Job | None] = [None] * self.cap
        self.n = 0  # leaves used
        self.live = 0  # queued jobs, front included
        self.front: list[_Job] = []

    def append(self, job: _Job) -> None:
        if self.n == self.cap:
            self._rebuild()
        job.pos = self.n
        self.jobs[self.n] = job
        self.n += 1
        self.live += 1
        self._set(job.pos, job.ceiling)

    def put_front(self, job: _Job) -> None:
        job.pos = -1
        insort(self.front, job, key=lambda j: j.seq)
        self.live += 1

    def remove(self, job: _Job) -> None:
        if job.pos < 0:
            self.front.remove(job)
        else:
            self.jobs[job.pos] = None
            self._set(job.pos, -1)
        self.live -= 1

    def highest(self) -> int:
        """The highest ceiling of its jobs (-1 when empty)."""
        top = self.tree[1]
        for job in self.front:
            top = max(top, job.ceiling)
        return top

    def first_at_least(self, price: int) -> _Job | None:
        """The earliest job whose ceiling is at least ``price``."""
        found = next((j for j in self.front if j.ceiling >= price), None)
        tree = self.tree
        if tree[1] < price:
            return found
        node, cap = 1, self.cap
        while node < cap:
            node <<= 1
            if tree[node] < price:
                node += 1
        job = self.jobs[node - cap]
        assert job is not None
        return job if found is None or job.seq < found.seq else found

    def _set(self, i: int, value: int) -> None:
        tree = self.tree
        node = i + self.cap
        tree[node] = value
        node >>= 1
        while node:
            top = max(tree[2 * node], tree[2 * node + 1])
            if tree[node] == top:
                break
            tree[node] = top
            node >>= 1

    def _rebuild(self) -> None:
        """Compacts the leaves, doubling the tree when more than half of them are still queued."""
        live = [j for j in self.jobs[: self.n] if j is not None]
        if 2 * len(live) > self.cap:
            self.cap *= 2
        cap = self.cap
        self.jobs = [None] * cap
        tree = [-1] * (2 * cap)
        for i, job in enumerate(live):
            job.pos = i
            self.jobs[i] = job
            tree[cap + i] = job.ceiling
        for node in range(cap - 1, 0, -1):
            tree[node] = max(tree[2 * node], tree[2 * node + 1])
        self.tree = tree
        self.n = len(live)


class _Renter:
    __slots__ = ("block_id", "lanes", "n_queued", "name", "order", "state", "tick")

    def __init__(self, name: str, order: int) -> None:
        self.name = name
        self.order = order  # arrival order: ties between renters never served
        self.tick = 0  # when it was last served; 0 = never
        self.state = _IDLE
        self.block_id = 0  # counts the times it blocked; tells its current waiting entries from stale ones
        self.n_queued = 0
        self.lanes: dict[_ShapeKey, _Lane] = {}


def _in_market(offer: ProviderOffer | None, min_reputation: int) -> bool:
    return offer is not None and offer.alive and offer.gpus > 0 and offer.reputation >= min_reputation


def _takes(p: _Provider, shape: _Shape) -> bool:
    """Whether market provider ``p`` matches ``shape`` apart from the price, with its GPUs free now."""
    o = p.offer
    assert o is not None
    return (
        p.free >= shape.gpus
        and o.vram_bytes >= shape.vram
        and o.tflops >= shape.tflops
        and (not shape.model or o.gpu_model == shape.model)
        and p.address not in shape.excl
        and (not shape.allowed or p.address in shape.allowed)
    )


def model_name(gpu_model: str) -> str:
    """A fingerprint key as people write it: ``"h100-sxm"`` -> ``"H100 SXM"``."""
    return gpu_model.upper().replace("-", " ")


def _gib(n: int) -> str:
    return f"{round(n / GIB, 1):g}"


def _check_spec(spec: Spec) -> None:
    """Raises ValueError unless the scheduler can place ``spec`` (its duration is not looked at)."""
    if spec.gpus < 1:
        raise ValueError("a job needs gpus >= 1")
    if spec.min_vram_bytes < 0:
        raise ValueError("min_vram_bytes must be >= 0")
    if not 0 < spec.max_price_per_gpu_hour <= MAX_PRICE:
        raise ValueError("max_price_per_gpu_hour must be in 1..2**256-1 (a job always has a price ceiling)")
    if not math.isfinite(spec.min_tflops) or spec.min_tflops < 0:
        raise ValueError("min_tflops must be a finite number >= 0")


def _check_offer(offer: ProviderOffer, queen: str) -> None:
    who = offer.provider or "<empty address>"
    if not offer.provider:
        raise ValueError("an offer needs a provider address")
    if offer.queen != queen:
        raise ValueError(f"offer of {who} names queen {offer.queen}, not the snapshot's {queen}")
    if offer.gpus < 0 or offer.vram_bytes < 0 or offer.ask_per_gpu_hour < 0:
        raise ValueError(f"offer of {who}: gpus, vram_bytes and ask_per_gpu_hour must be >= 0")
    if not math.isfinite(offer.tflops) or offer.tflops < 0:
        raise ValueError(f"offer of {who}: tflops must be a finite number >= 0")
    if not 0 <= offer.reputation <= MAX_REPUTATION:
        raise ValueError(f"offer of {who}: reputation must be in 0..{MAX_REPUTATION}")
    if not 0.0 <= offer.uptime <= 1.0:
        raise ValueError(f"offer of {who}: uptime must be in 0..1")


class _ProviderIndex:
    """The pools and their providers, indexed for placement, with what is promised on each provider.

    A provider's free GPUs are its offered GPUs minus its reservations, whatever a later snapshot says. The
    index keeps per pool the market providers by model and free GPUs, per model the totals, the cheapest
    ask and the current quote, and answers the searches of the queue (``find``, ``scan_min_asks``).
    """

    def __init__(self, pricer: Pricer, min_reputation: int) -> None:
        self.pricer = pricer
        self.min_rep = min_reputation
        self.providers: dict[str, _Provider] = {}
        self.queens: dict[str, _Queen] = {}
        self.totals: dict[str, _Totals] = {}
        self._min_ask: dict[str, int] = {}
        self._quotes: dict[str, int] = {}  # cache; dropped for a model whenever its figures change

    # ------------------------------------------------------------------------------------------ pools

    def apply(self, snapshot: PoolSnapshot) -> tuple[set[str], list[_Provider]]:
        """Applies ``snapshot`` (see ``Scheduler.update_pool``).

        Returns:
            The models whose providers changed, and the providers indexed anew that may take jobs; both
            empty when the snapshot is stale or changes nothing.

        Raises:
            ValueError: An offer is malformed, names another queen or is listed twice (nothing is applied).
        """
        name = snapshot.queen
        seen: dict[str, ProviderOffer] = {}
        for offer in snapshot.providers:
            _check_offer(offer, name)
            if offer.provider in seen:
                raise ValueError(f"provider {offer.provider} is listed twice in the snapshot of {name}")
            seen[offer.provider] = offer
        queen = self.queens.get(name)
        if queen is not None and snapshot.seq < queen.seq:
            return set(), []
        if queen is None:
            queen = self.queens[name] = _Queen(snapshot.seq)
        queen.seq = snapshot.seq
        touched_queens = {name}
        touched_models: set[str] = set()
        added: list[_Provider] = []
        for address in queen.members.difference(seen):
            gone = self.providers[address]
            self.unindex(gone)
            gone.queen = None
            assert gone.offer is not None
            touched_models.add(gone.offer.gpu_model)
            self.forget_if_unused(gone)
        queen.members.intersection_update(seen)
        for address, offer in seen.items():
            p = self.providers.get(address)
            if p is None:
                p = self.providers[address] = _Provider(address)
            elif p.queen == name and p.offer == offer:
                continue
            self.unindex(p)
            if p.offer is not None:
                touched_models.add(p.offer.gpu_model)
            if p.queen is not None and p.queen != name:
                self.queens[p.queen].members.discard(address)
                touched_queens.add(p.queen)
            p.offer, p.queen = offer, name
            queen.members.add(address)
            touched_models.add(offer.gpu_model)
            self.index(p)
            if p.entry is not None:
                added.append(p)
        if touched_models:
            for q in touched_queens:
                self._recompute_stats(q)
            self._recompute_min_asks()
        return touched_models, added

    def remove_pool(self, queen: str) -> set[str] | None:
        """Takes ``queen``'s providers out of the market; returns their models (None: no such pool)."""
        q = self.queens.get(queen)
        if q is None:
            return None
        touched_models: set[str] = set()
        for address in q.members:
            p = self.providers[address]
            self.unindex(p)
            p.queen = None
            assert p.offer is not None
            touched_models.add(p.offer.gpu_model)
            self.forget_if_unused(p)
        del self.queens[queen]
        self._recompute_min_asks()
        return touched_models

    # ------------------------------------------------------------------------------------------ reservations

    def provider(self, address: str) -> _Provider:
        """The provider at ``address``, known from now on even before a snapshot lists it."""
        p = self.providers.get(address)
        if p is None:
            p = self.providers[address] = _Provider(address)
        return p

    def reserve(self, p: _Provider, gpus: int) -> None:
        """Promises ``gpus`` more GPUs of ``p`` (fewer when negative) and re-indexes it."""
        self.unindex(p)
        p.reserved += gpus
        self.index(p)

    def forget_if_unused(self, p: _Provider) -> None:
        if p.queen is None and p.reserved <= 0:
            self.providers.pop(p.address, None)

    # ------------------------------------------------------------------------------------------ figures

    def utilization(self, gpu_model: str) -> float:
        t = self.totals.get(gpu_model)
        return (t.total - t.free) / t.total if t is not None and t.total else 0.0

    def quote(self, gpu_model: str) -> Wei:
        q = self._quotes.get(gpu_model)
        if q is None:
            q = self.pricer.quote(gpu_model, self.utilization(gpu_model), self._min_ask.get(gpu_model))
            self._quotes[gpu_model] = q
        return q

    def reprice(self) -> None:
        self._quotes.clear()

    def offers(self) -> list[ModelOffer]:
        """Per GPU model (sorted by key), what the market providers offer now."""
        merged: dict[str, _ModelStats] = {}
        for queen in self.queens.values():
            for model, s in queen.stats.items():
                m = merged.get(model)
                if m is None:
                    merged[model] = _ModelStats(s.providers, s.min_ask, s.best_reputation)
                else:
                    m.providers += s.providers
                    m.min_ask = min(m.min_ask, s.min_ask)
                    m.best_reputation = max(m.best_reputation, s.best_reputation)
        unsandboxed: dict[str, int] = {}
        for p in self.providers.values():
            if p.entry is not None and p.offer is not None and not p.offer.sandboxed:
                unsandboxed[p.offer.gpu_model] = unsandboxed.get(p.offer.gpu_model, 0) + 1
        out = []
        for model in sorted(merged):
            m, t = merged[model], self.totals[model]
            out.append(
                ModelOffer(
                    gpu_model=model,
                    providers=m.providers,
                    gpus_free=t.free,
                    gpus_total=t.total,
                    min_ask_per_gpu_hour=m.min_ask,
                    quote_per_gpu_hour=self.quote(model),
                    best_reputation=m.best_reputation,
                    unsandboxed=unsandboxed.get(model, 0),
                )
            )
        return out

    # ------------------------------------------------------------------------------------------ searches

    def _pools_for(self, shape: _Shape) -> list[_Group]:
        """The groups of the pools with a provider that has the shape's GPUs free, least loaded first."""
        pools: list[tuple[float, int, str, _Group]] = []
        for name, queen in self.queens.items():
            grp = queen.groups.get(shape.model)
            if grp is not None and grp.frees and grp.frees[-1] >= shape.gpus:
                pools.append((1.0 - grp.free_gpus / grp.total_gpus, -grp.free_gpus, name, grp))
        pools.sort(key=lambda c: c[:3])
        return [c[3] for c in pools]

    def find(self, shape: _Shape, maxp: int) -> _Entry | None:
        """The best provider for a job of ``shape`` with ceiling ``maxp``, or None.

        Pools are tried least loaded first; within the first pool that has one, the provider with the
        best score step wins, then the lowest price (max(ask, quote)), then the lowest address.
        """
        quote, quotes = 0, None
        if shape.model:
            quote = self.quote(shape.model)
            if quote > maxp:
                return None
        else:
            quotes = {m: self.quote(m) for m, t in self.totals.items() if t.total}
        gpus, min_vram, min_tflops, excl, allowed = shape.gpus, shape.vram, shape.tflops, shape.excl, shape.allowed
        for grp in self._pools_for(shape):
            frees, buckets = grp.frees, grp.buckets
            best: _Entry | None = None
            best_key = (0, 0, "")
            for i in range(bisect_left(frees, gpus), len(frees)):
                for e in buckets[frees[i]]:
                    if best is not None and e[0] > best_key[0]:
                        break
                    if (e[3] < min_vram or e[4] < min_tflops or (excl and e[2] in excl)
                            or (allowed and e[2] not in allowed)):
                        continue
                    price = max(e[1], quote if quotes is None else quotes[e[5]])
                    if price > maxp:
                        continue
                    key = (e[0], price, e[2])
                    if best is None or key < best_key:
                        best, best_key = e, key
                    if quotes is None:
                        break  # one model: the rest of this bucket scores lower or asks more
            if best is not None:
                return best
        return None

    def scan_min_asks(self, shape: _Shape) -> dict[str, int]:
        """The cheapest ask per model among market providers that match ``shape`` with its GPUs free."""
        asks: dict[str, int] = {}
        gpus, min_vram, min_tflops, excl, allowed = shape.gpus, shape.vram, shape.tflops, shape.excl, shape.allowed
        for grp in self._pools_for(shape):
            frees, buckets = grp.frees, grp.buckets
            for i in range(bisect_left(frees, gpus), len(frees)):
                for e in buckets[frees[i]]:
                    if (e[3] >= min_vram and e[4] >= min_tflops and (not excl or e[2] not in excl)
                            and (not allowed or e[2] in allowed)):
                        known = asks.get(e[5])
                        if known is None or e[1] < known:
                            asks[e[5]] = e[1]
        return asks

    # ------------------------------------------------------------------------------------------ index

    def index(self, p: _Provider) -> None:
        """Puts ``p`` in its pool's groups if it may take jobs (its entry reflects its free GPUs)."""
        o = p.offer
        if p.queen is None or o is None or not _in_market(o, self.min_rep):
            return
        free = max(0, o.gpus - p.reserved)
        model = o.gpu_model
        score = W_REPUTATION * o.reputation / MAX_REPUTATION + W_UPTIME * o.uptime + W_FREE * free / o.gpus
        entry: _Entry = (
            -round(score * SCORE_STEPS),
            o.ask_per_gpu_hour,
            p.address,
            o.vram_bytes,
            o.tflops,
            model,
            p,
        )
        p.entry, p.free = entry, free
        totals = self.totals.get(model)
        if totals is None:
            totals = self.totals[model] = _Totals()
        totals.total += o.gpus
        totals.free += free
        self._quotes.pop(model, None)
        groups = self.queens[p.queen].groups
        for key in (model, ""):
            grp = groups.get(key)
            if grp is None:
                grp = groups[key] = _Group()
            grp.total_gpus += o.gpus
            grp.free_gpus += free
            if free:
                bucket = grp.buckets.get(free)
                if bucket is None:
                    bucket = grp.buckets[free] = []
                    insort(grp.frees, free)
                insort(bucket, entry)

    def unindex(self, p: _Provider) -> None:
        """Takes ``p`` out of its pool's groups (no-op when it is not in them)."""
        entry = p.entry
        if entry is None:
            return
        o, queen = p.offer, p.queen
        assert o is not None and queen is not None
        p.entry = None
        free, model = p.free, o.gpu_model
        totals = self.totals[model]
        totals.total -= o.gpus
        totals.free -= free
        self._quotes.pop(model, None)
        groups = self.queens[queen].groups
        for key in (model, ""):
            grp = groups[key]
            grp.total_gpus -= o.gpus
            grp.free_gpus -= free
            if free:
                bucket = grp.buckets[free]
                del bucket[bisect_left(bucket, entry)]
                if not bucket:
                    del grp.buckets[free]
                    del grp.frees[bisect_left(grp.frees, free)]

    def _recompute_stats(self, name: str) -> None:
        queen = self.queens[name]
        stats: dict[str, _ModelStats] = {}
        for address in queen.members:
            p = self.providers[address]
            o = p.offer
            if p.entry is None or o is None:
                continue
            s = stats.get(o.gpu_model)
            if s is None:
                stats[o.gpu_model] = _ModelStats(1, o.ask_per_gpu_hour, o.reputation)
            else:
                s.providers += 1
                s.min_ask = min(s.min_ask, o.ask_per_gpu_hour)
                s.best_reputation = max(s.best_reputation, o.reputation)
        queen.stats = stats

    def _recompute_min_asks(self) -> None:
        self._min_ask = {}
        for queen in self.queens.values():
            for model, s in queen.stats.items():
                self._min_ask[model] = min(self._min_ask.get(model, s.min_ask), s.min_ask)
        self._quotes.clear()


class _Queue:
    """Queued jobs: per renter and shape a lane, renters served round robin, waiting renters per shape.

    Serving a renter places its earliest job that fits anywhere, searching the provider index; a renter
    with nothing placeable waits on its shapes until ``wake_shapes`` finds a lower price or new capacity.
    """

    def __init__(self, index: _ProviderIndex) -> None:
        self._index = index
        self._quote = index.quote  # bound once: the hot paths call it per lane and per shape
        self.n_queued = 0
        self._renters: dict[str, _Renter] = {}
        self._heap: list[tuple[int, int, str]] = []  # (tick, order, renter) of each active renter
        self._tick = 0
        self._seq = 0
        self._front = 0  # decreasing: the seq of a requeued job, ahead of all others
        self._shapes: dict[_ShapeKey, _Shape] = {}  # shapes with queued jobs
        self._shapes_by_model: dict[str, dict[_ShapeKey, _Shape]] = {}  # by model key ("" = any)

    def next_seq(self) -> int:
        """A place at the back of every renter's queue."""
        self._seq += 1
        return self._seq

    def front_seq(self) -> int:
        """A place at the front of every renter's queue, ahead of all earlier ones."""
        self._front -= 1
        return self._front

    def renter(self, name: str) -> _Renter:
        r = self._renters.get(name)
        if r is None:
            r = self._renters[name] = _Renter(name, len(self._renters))
        return r

    def enqueue(self, job: _Job, *, front: bool) -> None:
        """Queues ``job`` in its renter's lane for its shape and puts the renter in line if it may fit."""
        key = job.shape_key()
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = _Shape(key)
            self._shapes_by_model.setdefault(shape.model, {})[key] = shape
        shape.jobs += 1
        r = self.renter(job.renter)
        lane = r.lanes.get(key)
        if lane is None:
            lane = r.lanes[key] = _Lane(shape)
        if front:
            lane.put_front(job)
        else:
            lane.append(job)
        job.state, job.lane = _QUEUED, lane
        r.n_queued += 1
        self.n_queued += 1
        if r.state == _ACTIVE:
            return
        if r.state == _BLOCKED and job.ceiling < self._lowest_price(shape):
            heapq.heappush(shape.waiting, (-job.ceiling, r.block_id, r.name))
            return
        r.state = _ACTIVE
        heapq.heappush(self._heap, (r.tick, r.order, r.name))

    def dequeue(self, job: _Job) -> None:
        """Takes a queued job out of its lane (it was placed, cancelled or moves to another shape)."""
        lane = job.lane
        assert lane is not None
        lane.remove(job)
        job.lane = None
        r = self._renters[job.renter]
        r.n_queued -= 1
        self.n_queued -= 1
        shape = lane.shape
        if not lane.live:
            del r.lanes[shape.key]
        shape.jobs -= 1
        if not shape.jobs:
            del self._shapes[shape.key]
            by_model = self._shapes_by_model[shape.model]
            del by_model[shape.key]
            if not by_model:
                del self._shapes_by_model[shape.model]

    def schedule(self, max_placements: int | None) -> list[Placement]:
        """Serves renters in turn until nothing more fits or ``max_placements`` are made."""
        out: list[Placement] = []
        heap = self._heap
        while heap and (max_placements is None or len(out) < max_placements):
            r = self._renters[heap[0][2]]
            placement = self._serve(r)
            if placement is None:
                heapq.heappop(heap)
                continue
            out.append(placement)
            self._tick += 1
            r.tick = self._tick
            if r.n_queued:
                heapq.heapreplace(heap, (r.tick, r.order, r.name))
            else:
                r.state = _IDLE
                heapq.heappop(heap)
        return out

    def _lowest_price(self, shape: _Shape) -> int:
        """A lower bound of the lowest price per GPU-hour at which ``shape`` can be placed now.

        0 when unknown; ``_NEVER`` when nothing can take it at any price.
        """
        asks = shape.min_asks
        if asks is None:
            return 0
        quote = self._quote
        if shape.model:
            ask = asks.get(shape.model)
            return _NEVER if ask is None else max(ask, quote(shape.model))
        return min((max(ask, quote(m)) for m, ask in asks.items()), default=_NEVER)

    def _serve(self, r: _Renter) -> Placement | None:
        """Places ``r``'s earliest job that fits; otherwise marks ``r`` idle or blocked and returns None."""
        while r.lanes:
            best: _Job | None = None
            for lane in r.lanes.values():
                job = lane.first_at_least(self._lowest_price(lane.shape))
                if job is not None and (best is None or job.seq < best.seq):
                    best = job
            if best is None:
                r.state = _BLOCKED
                r.block_id += 1
                for lane in r.lanes.values():
                    heapq.heappush(lane.shape.waiting, (-lane.highest(), r.block_id, r.name))
                    self._compact(lane.shape)
                return None
            assert best.lane is not None
            shape = best.lane.shape
            entry = self._index.find(shape, best.ceiling)
            if entry is not None:
                self.dequeue(best)
                return self._place(best, entry[6])
            # The bound was stale (capacity placed since): make it exact, and look again.
            shape.min_asks = self._index.scan_min_asks(shape)
        r.state = _IDLE
        return None

    def _place(self, job: _Job, p: _Provider) -> Placement:
        assert job.spec is not None and p.offer is not None and p.queen is not None
        price = max(p.offer.ask_per_gpu_hour, self._quote(p.offer.gpu_model))
        placement = Placement(job.job_id, job.renter, p.queen, p.address, job.spec.gpus, price)
        self._index.reserve(p, job.spec.gpus)
        job.state, job.placement = _PLACED, placement
        return placement

    def _compact(self, shape: _Shape) -> None:
        """Drops stale waiting entries once they outnumber the renters."""
        if len(shape.waiting) > 2 * len(self._renters) + 16:
            shape.waiting = [
                w
                for w in shape.waiting
                if self._renters[w[2]].state == _BLOCKED and self._renters[w[2]].block_id == w[1]
            ]
            heapq.heapify(shape.waiting)

    def wake_shapes(self, models: Iterable[str]) -> None:
        """Wakes the renters waiting on a shape of ``models`` (or of any model) that may now fit them."""
        shapes: list[_Shape] = []
        for key in {*models, ""}:
            shapes.extend(self._shapes_by_model.get(key, {}).values())
        for shape in shapes:
            waiting = shape.waiting
            if not waiting:
                continue
            lowest = self._lowest_price(shape)
            while waiting and -waiting[0][0] >= lowest:
                _, block_id, name = heapq.heappop(waiting)
                r = self._renters[name]
                if r.state == _BLOCKED and r.block_id == block_id:
                    r.state = _ACTIVE
                    heapq.heappush(self._heap, (r.tick, r.order, r.name))

    def capacity_added(self, p: _Provider) -> None:
        """Market provider ``p`` has GPUs free now (released, new or changed offer): lower the bounds."""
        o = p.offer
        assert o is not None
        model, ask = o.gpu_model, o.ask_per_gpu_hour
        for key in (model, ""):
            for shape in self._shapes_by_model.get(key, {}).values():
                asks = shape.min_asks
                if asks is not None and _takes(p, shape):
                    known = asks.get(model)
                    if known is None or ask < known:
                        asks[model] = ask


class _Explainer:
    """Words for a renter whose job waits: the constraint no provider meets, and the nearest offers."""

    def __init__(self, index: _ProviderIndex) -> None:
        self._index = index

    def closest_offers(self, spec: Spec, n: int) -> list[ProviderOffer]:
        """See ``Scheduler.closest_offers``."""
        maxp, quote = spec.max_price_per_gpu_hour, self._index.quote
        ranked: list[tuple[int, bool, int, int, str, ProviderOffer]] = []
        for p in self._index.providers.values():
            o = p.offer
            if p.entry is None or o is None or p.free <= 0:
                continue
            price = max(o.ask_per_gpu_hour, quote(o.gpu_model))
            other_model = bool(spec.gpu_model) and o.gpu_model != spec.gpu_model
            misses = (
                other_model
                + (p.free < spec.gpus)
                + (o.vram_bytes < spec.min_vram_bytes)
                + (o.tflops < spec.min_tflops)
                + (price > maxp)
            )
            ranked.append((misses, other_model, price, -o.reputation, o.provider, o))
        return [r[-1] for r in heapq.nsmallest(n, ranked, key=lambda r: r[:5])]

    def explain(self, spec: Spec, allowed: frozenset[str], excl: frozenset[str]) -> str:
        """The first constraint that no provider meets, as a sentence.

        ``allowed`` are the job's candidates (empty: any), ``excl`` the providers it may no longer use.
        """
        model, min_rep = spec.gpu_model, self._index.min_rep
        name = model_name(model) if model else ""
        what = f"{spec.gpus}×{name}" if model else f"{spec.gpus} GPU{'s' if spec.gpus > 1 else ''}"
        extras = []
        if spec.min_vram_bytes:
            extras.append(f"{_gib(spec.min_vram_bytes)} GiB")
        if spec.min_tflops:
            extras.append(f"{spec.min_tflops:g} TFLOP/s")
        if extras:
            what += " with ≥ " + " and ≥ ".join(extras) + " per GPU"
        maxp = spec.max_price_per_gpu_hour
        head = f"no provider with {what} under {format_tokens(maxp)}/h"
        kind = f"{name} provider" if model else "provider"

        cands = [
            p
            for p in self._index.providers.values()
            if p.queen is not None
            and p.offer is not None
            and p.offer.alive
            and p.offer.gpus > 0
            and (not model or p.offer.gpu_model == model)
        ]
        if not cands:
            return f"{head}: no provider offers {name} at all" if model else f"{head}: no provider is online"

        def offer(p: _Provider) -> ProviderOffer:
            assert p.offer is not None
            return p.offer

        step = [p for p in cands if offer(p).gpus >= spec.gpus]
        if not step:
            most = max(offer(p).gpus for p in cands)
            return f"{head}: no {kind} has {spec.gpus} GPUs (the largest has {most})"
        cands = step
        step = [p for p in cands if offer(p).vram_bytes >= spec.min_vram_bytes]
        if not step:
            most_vram = max(offer(p).vram_bytes for p in cands)
            return f"{head}: not enough VRAM (the most any {kind} has is {_gib(most_vram)} GiB per GPU)"
        cands = step
        step = [p for p in cands if offer(p).tflops >= spec.min_tflops]
        if not step:
            measured = [offer(p).tflops for p in cands if offer(p).tflops > 0]
            best = (
                f"the best measured is {max(measured):g} TFLOP/s per GPU" if measured else "none measured yet"
            )
            return f"{head}: not fast enough ({best})"
        cands = step
        step = [p for p in cands if offer(p).reputation >= min_rep]
        if not step:
            best_rep = max(offer(p).reputation for p in cands)
            return f"{head}: reputation below the minimum of {min_rep} (the best is {best_rep})"
        cands = step
        step = [p for p in cands if p.address not in excl]
        if not step:
            return f"{head}: the only matching providers already failed this job"
        if allowed:
            step = [p for p in step if p.address in allowed]
            if not step:
                return f"{head}: none of the providers the job's payload is encrypted for is available"
        cands = step
        prices = [max(offer(p).ask_per_gpu_hour, self._index.quote(offer(p).gpu_model)) for p in cands]
        cheapest = min(prices)
        if cheapest > maxp:
            return f"{head}: all are above your max price (cheapest is {format_tokens(cheapest)}/h)"
        cands = [p for p, price in zip(cands, prices, strict=True) if price <= maxp]
        most_free = max(p.free for p in cands)
        if most_free < spec.gpus:
            if most_free == 0 and len(cands) == 1:
                return f"{head}: not enough free GPUs (the only matching provider is busy)"
            if most_free == 0:
                return f"{head}: not enough free GPUs (all {len(cands)} matching providers are busy)"
            return f"{head}: not enough free GPUs (at most {most_free} free on one matching provider)"
        return f"{head} right now: a matching provider is free, the next scheduling pass places the job"


class Scheduler:
    """The two-level global scheduler (see the module docstring). Not thread-safe: serialize calls."""

    def __init__(
        self, pricer: Pricer, *, min_reputation: int = 0, known_models: Iterable[str] | None = None
    ) -> None:
        """Creates an empty scheduler.

        Args:
            pricer: Quotes per model; a placement costs max(provider ask, quote).
            min_reputation: Providers below this reputation (basis points) take no jobs.
            known_models: If given, ``submit`` rejects a spec naming another model.

        Raises:
            ValueError: ``min_reputation`` is outside 0..10000.
        """
        if not 0 <= min_reputation <= MAX_REPUTATION:
            raise ValueError(f"min_reputation must be in 0..{MAX_REPUTATION}")
        self._known = frozenset(known_models) if known_models is not None else None
        self._index = _ProviderIndex(pricer, min_reputation)
        self._queue = _Queue(self._index)
        self._explainer = _Explainer(self._index)
        self._jobs: dict[str, _Job] = {}  # queued and placed

    # ------------------------------------------------------------------------------------------ pools

    def update_pool(self, snapshot: PoolSnapshot) -> None:
        """Replaces a queen's providers with ``snapshot`` unless it is older than the last one applied.

        A provider missing from the snapshot, or not alive, takes no new jobs; placements on it stay
        until released. A provider listed by another queen before moves to this one.

        Raises:
            ValueError: An offer is malformed, names another queen or is listed twice (nothing is applied).
        """
        touched_models, added = self._index.apply(snapshot)
        if touched_models:
            for p in added:
                self._queue.capacity_added(p)
            self._queue.wake_shapes(touched_models)

    def remove_pool(self, queen: str) -> None:
        """Takes every provider of ``queen``'s pool out of the market (placements stay); idempotent.

        The queen's snapshot sequence is forgotten: its next snapshot is accepted whatever its seq.
        """
        touched_models = self._index.remove_pool(queen)
        if touched_models is not None:
            self._queue.wake_shapes(touched_models)  # a pool full of reservations gone: a lower quote

    # ------------------------------------------------------------------------------------------ jobs

    def submit(
        self, job_id: str, renter: str, spec: Spec, candidates: AbstractSet[str] = frozenset()
    ) -> None:
        """Queues a job at the back of its renter's queue.

        Args:
            job_id: The job's id, unique among the jobs the scheduler knows.
            renter: Who pays for it; renters take turns.
            spec: What it needs and its price ceiling (``spec.duration_s`` is not looked at).
            candidates: The only providers that may take it (those its payload key is wrapped for);
                empty: any provider.

        Raises:
            ValueError: The job id is already known (queued or placed), the renter or id is empty, the spec
                is invalid (gpus < 1, a negative minimum, a price ceiling outside 1..2**256-1), or it names a
                model outside ``known_models``.
        """
        if not job_id or not renter:
            raise ValueError("a job needs a job id and a renter")
        _check_spec(spec)
        if self._known is not None and spec.gpu_model and spec.gpu_model not in self._known:
            raise ValueError(f"unknown GPU model {spec.gpu_model!r}")
        if job_id in self._jobs:
            raise ValueError(f"duplicate job id {job_id!r}")
        job = _Job(job_id, renter, spec, frozenset(candidates), self._queue.next_seq())
        self._jobs[job_id] = job
        self._queue.enqueue(job, front=False)

    def cancel(self, job_id: str) -> bool:
        """Removes a queued job; idempotent. Returns whether it was queued (a placed job is left alone)."""
        job = self._jobs.get(job_id)
        if job is None or job.state != _QUEUED:
            return False
        del self._jobs[job_id]
        self._queue.dequeue(job)
        return True

    def release(self, job_id: str) -> None:
        """Frees a placed job's GPUs and forgets the job (it ended, was cancelled, or its provider died).

        Idempotent: an unknown or queued job is left alone.
        """
        job = self._jobs.get(job_id)
        if job is None or job.state != _PLACED:
            return
        assert job.placement is not None
        del self._jobs[job_id]
        self._free(job.placement)

    def restore(
        self, placement: Placement, spec: Spec | None = None, candidates: AbstractSet[str] = frozenset()
    ) -> None:
        """Re-reserves a placement after a restart (from the job store), before or after snapshots arrive.

        Args:
            placement: The placement as it was made.
            spec: The job's spec; without it the job cannot be requeued later.
            candidates: The job's candidates, as given to ``submit`` (used if it is requeued).

        Raises:
            ValueError: The placement or spec is malformed, or its job id is known with anything else
                (restoring the same placement twice is a no-op).
        """
        if not placement.job_id or not placement.renter or not placement.provider:
            raise ValueError("a placement needs a job id, a renter and a provider")
        if placement.gpus < 1 or placement.price_per_gpu_hour < 0:
            raise ValueError("a placement needs gpus >= 1 and a price >= 0")
        if spec is not None:
            _check_spec(spec)
        existing = self._jobs.get(placement.job_id)
        if existing is not None:
            if existing.state == _PLACED and existing.placement == placement:
                return
            raise ValueError(f"job {placement.job_id!r} is already known to the scheduler")
        job = _Job(placement.job_id, placement.renter, spec, frozenset(candidates), 0)
        job.state, job.placement = _PLACED, placement
        self._jobs[placement.job_id] = job
        self._queue.renter(placement.renter)
        self._index.reserve(self._index.provider(placement.provider), placement.gpus)

    def exclude(self, job_id: str, provider: str) -> None:
        """Never places ``job_id`` on ``provider`` again (e.g. it died running the job); idempotent.

        Raises:
            KeyError: No such queued or placed job.
        """
        job = self._jobs[job_id]
        if provider in job.excl:
            return
        if job.state != _QUEUED or job.spec is None:
            job.excl = job.excl | {provider}
            return
        self._queue.dequeue(job)
        job.excl = job.excl | {provider}
        self._queue.enqueue(job, front=True)

    def requeue(self, job_id: str) -> bool:
        """Releases a placed job's GPUs and queues it again at the front of its renter's queue.

        Returns:
            True when it was placed and is queued now; False when it was queued already.

        Raises:
            KeyError: No such queued or placed job.
            ValueError: The job was restored without its spec.
        """
        job = self._jobs[job_id]
        if job.state == _QUEUED:
            return False
        if job.spec is None:
            raise ValueError(f"job {job_id!r} was restored without its spec and cannot be requeued")
        assert job.placement is not None
        placement, job.placement = job.placement, None
        self._free(placement)
        job.seq = self._queue.front_seq()
        self._queue.enqueue(job, front=True)
        return True

    def schedule(self, max_placements: int | None = None) -> list[Placement]:
        """Places as many queued jobs as fit (at most ``max_placements``) and reserves their GPUs.

        Renters take turns (least recently served first); each turn places the renter's earliest job
        that fits anywhere. Jobs that fit nowhere stay queued in their order.

        Raises:
            ValueError: ``max_placements`` is negative.
        """
        if max_placements is not None and max_placements < 0:
            raise ValueError("max_placements must be >= 0")
        return self._queue.schedule(max_placements)

    def _free(self, placement: Placement) -> None:
        """Returns a placement's GPUs and wakes the renters whose jobs they (or the lower quote) may serve."""
        p = self._index.providers[placement.provider]
        self._index.reserve(p, -placement.gpus)
        if p.entry is not None:
            assert p.offer is not None
            self._queue.capacity_added(p)
            self._queue.wake_shapes((p.offer.gpu_model,))
        self._index.forget_if_unused(p)

    # ------------------------------------------------------------------------------------------ queries

    def queued(self) -> int:
        """Returns the number of queued jobs."""
        return self._queue.n_queued

    def placement(self, job_id: str) -> Placement | None:
        """Returns the placement of a placed job; None for a queued or unknown one."""
        job = self._jobs.get(job_id)
        return job.placement if job is not None else None

    def utilization(self, gpu_model: str) -> float:
        """Reserved / offered GPUs of ``gpu_model`` over the providers that may take jobs (0.0 if none)."""
        return self._index.utilization(gpu_model)

    def quote(self, gpu_model: str) -> Wei:
        """The current quote of ``gpu_model`` per GPU-hour (from its utilization and cheapest ask)."""
        return self._index.quote(gpu_model)

    def offers(self) -> list[ModelOffer]:
        """Per GPU model (sorted by key), what the providers that may take jobs offer now."""
        return self._index.offers()

    def closest_offers(self, spec: Spec, n: int = 3) -> list[ProviderOffer]:
        """Up to ``n`` offers nearest to ``spec``, for a renter whose job matches nothing.

        Only providers that may take jobs and have a free GPU count. Ranked by the number of unmet
        constraints (model, free GPUs, VRAM, TFLOP/s, price), then the same model first, then the
        cheapest price, then the best reputation. A provider that matches fully ranks first.

        Raises:
            ValueError: The spec is invalid.
        """
        _check_spec(spec)
        return self._explainer.closest_offers(spec, n)

    def waiting_reason(self, job_id: str) -> str:
        """Says why a queued job waits, naming the constraint that fails, in words a renter can act on.

        For a placed job it says where it runs.

        Raises:
            KeyError: No such queued or placed job.
        """
        job = self._jobs[job_id]
        if job.placement is not None:
            pl = job.placement
            return (
                f"placed on provider {pl.provider} in the pool of queen {pl.queen} "
                f"at {format_tokens(pl.price_per_gpu_hour)}/h"
            )
        assert job.spec is not None
        return self._explainer.explain(job.spec, job.allowed, job.excl)

    @property
    def pricer(self) -> Pricer:
        return self._index.pricer

    def reprice(self) -> None:
        """Drops cached quotes: call after the pricer's parameters changed (e.g. new governance bounds)."""
        self._index.reprice()
