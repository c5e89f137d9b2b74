"""The network as the king sees it (pure domain code, no I/O): queens' challenge verdicts and the price history.

Queens report verdicts and landed ETC batches over their sessions (king.proto ``ChallengeVerdicts``,
``BatchLanded``); those reports are hostile input, and this module is where they are bounded.

Guarantees:

* :class:`VerdictBook` keeps at most ``max_total`` verdicts, each queen at most ``max_per_queen``; when the total
  is full the oldest verdict of the queen that holds the most is evicted, so a queen that floods the king evicts
  its own history first and can never push another queen below its fair share (``max_total // queens``).
* A verdict is kept only for a provider that the reporting queen's current pool lists, once per
  (queen, challenge id), with a known verdict, bounded text and plausible times (see :func:`check_verdict`).
  A queen can only ever change its own verdicts (batch attachment is keyed by queen too). Duplicates are
  recognised while the first copy is kept (a copy re-sent after its first was evicted counts again: queens send
  each verdict once, so only a hostile queen can inflate its own providers' counts that way).
* Per-provider pass counts since the provider was first heard of, and hourly buckets for the last
  :data:`BUCKETS` hours; the providers followed are bounded by ``max_providers`` (the stalest go first).
* :class:`PriceHistory` keeps the samples of the last ``retention_s`` seconds (at most
  ``retention_s / interval_s + 1`` samples of at most :data:`MAX_MODELS` models each), oldest first.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import NewType, Protocol

from blendr.clock import Clock
from blendr.errors import InvalidArgumentError
from blendr.hashing import checksum_address
from king.scheduler import ModelOffer, ProviderOffer

QueenAddress = NewType("QueenAddress", str)
ProviderAddress = NewType("ProviderAddress", str)
ChallengeId = NewType("ChallengeId", str)
UnixTime = float
Wei = int

MAX_VERDICTS_PER_MESSAGE = 500  # a ChallengeVerdicts message with more is refused whole
MAX_BATCH_RENTALS = 500  # rentals one BatchLanded message may name
MAX_BATCH_CHALLENGES = 5_000  # challenge ids one BatchLanded message may name, over all its rentals
MAX_CHALLENGE_ID = 128  # characters
MAX_REASON = 200  # characters kept of a reason (a longer one is cut)
MAX_REASON_SENT = 4_096  # characters a reason may have at all (longer: the verdict is refused)
MAX_CHALLENGE_S = 86_400.0  # the longest a challenge may take from issue to verdict
MAX_AGE_S = 2 * 86_400.0  # a verdict decided longer ago than this is refused
MAX_SKEW_S = 300.0  # a verdict decided this far in the king's future is refused (clock skew allowance)
BUCKET_S = 3600.0
BUCKETS = 24  # hourly pass-rate buckets kept per provider
MAX_MODELS = 64  # GPU models per price sample

_ID_RE = re.compile(r"^[A-Za-z0-9_.:/\-]+$")
_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")


class Outcome(StrEnum):
    """A challenge's verdict as the network view shows it (``missed`` challenges have no id and are not reported)."""

    PASSED = "passed"
    FAILED = "failed"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class VerdictRecord:
    """One decided challenge as a queen reported it, with the ETC batch that records it once it landed."""

    challenge_id: ChallengeId
    provider: ProviderAddress
    queen: QueenAddress
    verdict: Outcome
    reason: str
    issued_unix: UnixTime
    decided_unix: UnixTime
    rental_id: bytes = b""  # 32 bytes, or empty outside any rental
    etc_batch_id: str = ""  # 0x-hex, empty until the batch landed
    etc_tx: str = ""


@dataclass(frozen=True)
class PassRate:
    """Challenges of one provider decided in one hour starting at ``start_unix``."""

    start_unix: UnixTime
    passed: int
    failed: int  # failed and abandoned


@dataclass
class ProviderRecord:
    """A provider's verdict counts since the king first heard of it, and its hourly buckets."""

    passed: int = 0
    failed: int = 0
    buckets: dict[int, list[int]] = field(default_factory=dict)  # hour index -> [passed, failed]
    last_unix: UnixTime = 0.0


@dataclass(frozen=True)
class Accepted:
    """What became of one queen message: how many verdicts (or batch records) were kept and refused."""

    kept: int
    refused: int
    why: str = ""  # the first refusal's reason (for the log)


def check_verdict(queen: QueenAddress, challenge_id: str, provider: str, verdict: str, reason: str,
                  issued: float, decided: float, rental_id: bytes, *, now: UnixTime,
                  pool: Callable[[QueenAddress], frozenset[str]]) -> VerdictRecord:
    """A queen's verdict as a record, after every check a hostile queen needs.

    Raises:
        InvalidArgumentError: a malformed or overlong challenge id or reason, an unknown verdict, a provider that
            is not an address or not in ``queen``'s pool now, times that are not finite, out of order, longer than
            :data:`MAX_CHALLENGE_S`, older than :data:`MAX_AGE_S` or in the future beyond :data:`MAX_SKEW_S`, or a
            rental id that is neither empty nor 32 bytes.
    """
    if not (0 < len(challenge_id) <= MAX_CHALLENGE_ID and _ID_RE.match(challenge_id)):
        raise InvalidArgumentError(f"challenge id {challenge_id[:40]!r} is malformed (1-{MAX_CHALLENGE_ID} of "
                                   "A-Z a-z 0-9 _ . : / -)")
    try:
        outcome = Outcome(verdict)
    except ValueError:
        raise InvalidArgumentError(f"unknown verdict {verdict[:20]!r} (passed, failed or abandoned)") from None
    addr = _address(provider)
    if addr not in pool(queen):
        raise InvalidArgumentError(f"provider {addr} is not in the pool of queen {queen}")
    if len(reason) > MAX_REASON_SENT:
        raise InvalidArgumentError(f"a reason of {len(reason)} characters (at most {MAX_REASON_SENT})")
    if not (math.isfinite(issued) and math.isfinite(decided)):
        raise InvalidArgumentError("issue and decision times must be finite")
    if not (0 <= decided - issued <= MAX_CHALLENGE_S):
        raise InvalidArgumentError(f"decided {decided - issued:.0f} s after issue (0 to {MAX_CHALLENGE_S:.0f})")
    if decided > now + MAX_SKEW_S or decided < now - MAX_AGE_S:
        raise InvalidArgumentError(f"decided {now - decided:.0f} s ago (at most {MAX_AGE_S:.0f} s ago, "
                                   f"{MAX_SKEW_S:.0f} s ahead)")
    if len(rental_id) not in (0, 32):
        raise InvalidArgumentError(f"a rental id of {len(rental_id)} bytes (32, or none)")
    return VerdictRecord(ChallengeId(challenge_id), addr, queen, outcome, reason[:MAX_REASON], float(issued),
                         float(decided), bytes(rental_id))


def check_hash(value: str, what: str, *, empty_ok: bool = False) -> str:
    """``value`` lower-cased when it is 0x and 64 hex digits (or empty, with ``empty_ok``).

    Raises:
        InvalidArgumentError: anything else.
    """
    if empty_ok and value == "":
        return ""
    if not _HASH_RE.match(value):
        raise InvalidArgumentError(f"{what} {value[:80]!r} is not 0x and 64 hex digits")
    return value.lower()


def _address(value: str) -> ProviderAddress:
    try:
        return ProviderAddress(checksum_address(value))
    except ValueError:
        raise InvalidArgumentError(f"{value[:80]!r} is not an address") from None


def check_address(value: str, what: str) -> str:
    """``value`` as a checksum address.

    Raises:
        InvalidArgumentError: ``value`` is not an address (the message names ``what``).
    """
    try:
        return str(_address(value))
    except InvalidArgumentError:
        raise InvalidArgumentError(f"{what} {value[:80]!r} is not an address") from None


class VerdictBook:
    """The recent verdicts every queen reported, bounded (see the module's guarantees). Use from one thread."""

    def __init__(self, *, max_total: int = 5_000, max_per_queen: int = 2_000, max_providers: int = 50_000) -> None:
        if not 0 < max_per_queen <= max_total:
            raise ValueError("need 0 < max_per_queen <= max_total")
        self.max_total = max_total
        self.max_per_queen = max_per_queen
        self.max_providers = max_providers
        self._by_queen: dict[QueenAddress, deque[tuple[int, ChallengeId]]] = {}  # oldest first, (arrival, id)
        self._records: dict[tuple[QueenAddress, ChallengeId], VerdictRecord] = {}
        self._arrival: dict[tuple[QueenAddress, ChallengeId], int] = {}
        self._next = 0
        self.providers: dict[ProviderAddress, ProviderRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def held_by(self, queen: str) -> int:
        """How many verdicts of ``queen`` are kept."""
        return len(self._by_queen.get(QueenAddress(queen), ()))

    def add(self, records: Iterable[VerdictRecord]) -> int:
        """Keeps ``records`` (checked already: :func:`check_verdict`); a (queen, challenge id) already held is
        ignored. Returns how many were new."""
        new = 0
        for r in records:
            key = (r.queen, r.challenge_id)
            if key in self._records:
                continue
            if self.held_by(r.queen) >= self.max_per_queen:
                self._evict(r.queen)
            elif len(self._records) >= self.max_total:
                # the queen holding the most gives way (its oldest verdict): a flood evicts the flooder first
                self._evict(max(self._by_queen, key=lambda k: (len(self._by_queen[k]), -self._by_queen[k][0][0])))
            q = self._by_queen.setdefault(r.queen, deque())
            self._next += 1
            q.append((self._next, r.challenge_id))
            self._records[key] = r
            self._arrival[key] = self._next
            self._count(r)
            new += 1
        return new

    def _evict(self, queen: QueenAddress) -> None:
        q = self._by_queen[queen]
        _, cid = q.popleft()
        self._records.pop((queen, cid), None)
        self._arrival.pop((queen, cid), None)
        if not q:
            del self._by_queen[queen]

    def _count(self, r: VerdictRecord) -> None:
        rec = self.providers.get(r.provider)
        if rec is None:
            if len(self.providers) >= self.max_providers:
                stalest = min(self.providers, key=lambda p: self.providers[p].last_unix)
                del self.providers[stalest]
            rec = self.providers[r.provider] = ProviderRecord()
        ok = r.verdict is Outcome.PASSED
        rec.passed += ok
        rec.failed += not ok
        hour = int(r.decided_unix // BUCKET_S)
        b = rec.buckets.setdefault(hour, [0, 0])
        b[0 if ok else 1] += 1
        rec.last_unix = max(rec.last_unix, r.decided_unix)
        newest = max(rec.buckets)
        for h in [h for h in rec.buckets if h <= newest - BUCKETS]:
            del rec.buckets[h]

    def attach_batch(self, queen: QueenAddress, batch_id: str, tx: str,
                     rentals: Sequence[tuple[bytes, Sequence[str]]]) -> int:
        """Marks ``queen``'s verdicts named in a landed batch with its id and transaction (and their rental id,
        where the verdict was sent before the queen knew its rental). Returns how many verdicts it marked;
        challenge ids this book no longer (or never) held are skipped.

        Raises:
            InvalidArgumentError: a malformed batch id or transaction, a rental id that is not 32 bytes, more
                than :data:`MAX_BATCH_RENTALS` rentals or :data:`MAX_BATCH_CHALLENGES` challenge ids (nothing
                is marked).
        """
        batch_id = check_hash(batch_id, "batch id")
        tx = check_hash(tx, "transaction", empty_ok=True)
        if len(rentals) > MAX_BATCH_RENTALS:
            raise InvalidArgumentError(f"a batch report names {len(rentals)} rentals (at most {MAX_BATCH_RENTALS})")
        if sum(len(ids) for _, ids in rentals) > MAX_BATCH_CHALLENGES:
            raise InvalidArgumentError(f"a batch report names more than {MAX_BATCH_CHALLENGES} challenges")
        if any(len(rid) != 32 for rid, _ in rentals):
            raise InvalidArgumentError("a batch report names a rental id that is not 32 bytes")
        marked = 0
        for rid, ids in rentals:
            for cid in ids:
                key = (queen, ChallengeId(cid))
                r = self._records.get(key)
                if r is None:
                    continue
                self._records[key] = replace(r, rental_id=r.rental_id or bytes(rid), etc_batch_id=batch_id,
                                             etc_tx=tx)
                marked += 1
        return marked

    def recent(self, *, provider: str = "", limit: int = 50) -> list[VerdictRecord]:
        """Up to ``limit`` verdicts, newest decision first (ties: the latest to arrive first); of ``provider``
        only when given (a checksum address)."""
        found = [r for r in self._records.values() if not provider or r.provider == provider]
        found.sort(key=lambda r: (r.decided_unix, self._arrival[(r.queen, r.challenge_id)]), reverse=True)
        return found[:limit]

    def pass_rate(self, provider: str, now: UnixTime) -> list[PassRate]:
        """The provider's last :data:`BUCKETS` hours, oldest first, one point per hour (zeros included), the
        current hour last."""
        rec = self.providers.get(ProviderAddress(provider))
        end = int(now // BUCKET_S)
        out = []
        for h in range(end - BUCKETS + 1, end + 1):
            b = rec.buckets.get(h, [0, 0]) if rec is not None else [0, 0]
            out.append(PassRate(h * BUCKET_S, b[0], b[1]))
        return out

    def totals(self, provider: str) -> tuple[int, int]:
        """(passed, failed and abandoned) of ``provider`` since the king first heard of it."""
        rec = self.providers.get(ProviderAddress(provider))
        return (rec.passed, rec.failed) if rec is not None else (0, 0)


@dataclass(frozen=True)
class PricePoint:
    """One GPU model's quote, cheapest ask and GPUs at one sample time."""

    ts_unix: UnixTime
    gpu_model: str
    quote_per_gpu_hour: Wei
    min_ask_per_gpu_hour: Wei
    gpus_free: int
    gpus_total: int


class PriceHistory:
    """The samples of the last ``retention_s`` seconds, oldest first (see the module's guarantees)."""

    def __init__(self, interval_s: float, retention_s: float) -> None:
        if not (interval_s > 0 and retention_s >= interval_s):
            raise ValueError("need interval_s > 0 and retention_s >= interval_s")
        self.interval_s = interval_s
        self.retention_s = retention_s
        self._samples: deque[tuple[UnixTime, tuple[PricePoint, ...]]] = deque(
            maxlen=int(retention_s // interval_s) + 1)

    def record(self, ts: UnixTime, points: Sequence[PricePoint]) -> None:
        """Keeps one sample (its first :data:`MAX_MODELS` points); a sample not after the last one replaces
        nothing and is dropped (the history stays ordered)."""
        if self._samples and ts <= self._samples[-1][0]:
            return
        self._samples.append((ts, tuple(replace(p, ts_unix=ts) for p in points[:MAX_MODELS])))
        while self._samples and self._samples[0][0] < ts - self.retention_s:
            self._samples.popleft()

    def window(self, now: UnixTime, window_s: float = 0.0, gpu_model: str = "") -> list[PricePoint]:
        """The points of the last ``window_s`` seconds (0: the whole retention), oldest first, of ``gpu_model``
        only when given.

        Raises:
            InvalidArgumentError: ``window_s`` is negative or longer than the retention.
        """
        if not (0 <= window_s <= self.retention_s):
            raise InvalidArgumentError(f"window_s {window_s:.0f} is out of range: this king keeps "
                                       f"{self.retention_s:.0f} s of prices (0: all of them)")
        since = now - (window_s or self.retention_s)
        return [p for ts, pts in self._samples if ts >= since for p in pts
                if not gpu_model or p.gpu_model == gpu_model]


def check_limit(limit: int, *, default: int = 50, most: int = 500) -> int:
    """A page size: 0 is ``default``.

    Raises:
        InvalidArgumentError: above ``most``.
    """
    if limit > most:
        raise InvalidArgumentError(f"limit {limit} is above {most}")
    return limit or default


# ---------------------------------------------------------------------------------------------- the desk

@dataclass(frozen=True)
class NetworkInfo:
    """The deployment as a page needs it (GetNetworkInfo)."""

    network: str
    king_address: str
    eth_chain_id: int
    etc_chain_id: int
    token_contract: str
    rental_contract: str
    governance_contract: str
    voucher_contract: str  # empty: no ComputeVoucher deployed
    work_verification_contract: str
    token_name: str
    token_symbol: str
    max_payload_bytes: int
    eth_explorer_tx_url: str
    etc_explorer_tx_url: str
    leader: bool


class PoolSource(Protocol):
    """What the desk reads of the queens' pools (king.market.Market)."""

    def members(self, queen: str) -> frozenset[str]: ...
    def listed(self) -> dict[str, list[tuple[ProviderOffer, int]]]: ...
    def reputation_of(self, provider: str) -> int: ...


class SessionSource(Protocol):
    """What the desk reads of the queens' sessions (king.queens.QueenHub)."""

    def session_info(self) -> list[SessionInfo]: ...


@dataclass(frozen=True)
class SessionInfo:
    """A connected queen's session."""

    queen: str
    endpoint: str
    connected_unix: UnixTime
    last_snapshot_unix: UnixTime


@dataclass(frozen=True)
class PoolView:
    """One connected queen's pool."""

    queen: str
    endpoint: str
    providers: int
    providers_alive: int
    gpus_total: int
    gpus_free: int
    connected_since_unix: UnixTime
    last_snapshot_unix: UnixTime


class ProviderState(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"  # every GPU rented
    OFFLINE = "offline"  # its queen does not consider it alive


@dataclass(frozen=True)
class ProviderView:
    """One provider of a connected pool, with its challenge record."""

    offer: ProviderOffer  # as its queen reported it (GPUs not reduced by stake)
    busy_gpus: int
    reputation_bps: int
    passed: int
    failed: int
    pass_rate: list[PassRate]
    state: ProviderState


def provider_state(offer: ProviderOffer, busy_gpus: int) -> ProviderState:
    """offline when not alive, busy when every GPU is rented, else available."""
    if not offer.alive:
        return ProviderState.OFFLINE
    return ProviderState.BUSY if offer.gpus > 0 and busy_gpus >= offer.gpus else ProviderState.AVAILABLE


class NetworkDesk:
    """The leading king's network view: the queens' pools and sessions as they stand, the verdicts they report
    (:class:`VerdictBook`) and the prices it samples (:class:`PriceHistory`). Use from the king's event loop."""

    def __init__(self, clock: Clock, pools: PoolSource, sessions: SessionSource, offers: Callable[[], list[ModelOffer]],
                 *, price_interval_s: float = 60.0, price_retention_s: float = 86_400.0,
                 verdicts: VerdictBook | None = None) -> None:
        self.clock = clock
        self.pools = pools
        self.sessions = sessions
        self.offers = offers
        self.verdicts = verdicts or VerdictBook()
        self.prices = PriceHistory(price_interval_s, price_retention_s)

    # ------------------------------------------------------------------ queens' reports
    def on_verdicts(self, queen: str, verdicts: Sequence[RawVerdict]) -> Accepted:
        """A queen's verdicts: each checked (:func:`check_verdict`), the good ones kept once.

        Raises:
            InvalidArgumentError: more than :data:`MAX_VERDICTS_PER_MESSAGE` verdicts (none is kept).
        """
        if len(verdicts) > MAX_VERDICTS_PER_MESSAGE:
            raise InvalidArgumentError(f"{len(verdicts)} verdicts in one message (at most {MAX_VERDICTS_PER_MESSAGE})")
        q = QueenAddress(checksum_address(queen))
        now = self.clock.time()
        good: list[VerdictRecord] = []
        why = ""
        for v in verdicts:
            try:
                good.append(check_verdict(q, v.challenge_id, v.provider, v.verdict, v.reason, v.issued_unix,
                                          v.decided_unix, v.rental_id, now=now, pool=self.pools.members))
            except InvalidArgumentError as exc:
                why = why or str(exc)
        kept = self.verdicts.add(good)
        return Accepted(kept, len(verdicts) - len(good), why)

    def on_batch_landed(self, queen: str, batch_id: str, tx: str,
                        rentals: Sequence[tuple[bytes, Sequence[str]]]) -> int:
        """A queen's batch landed on ETC: its verdicts named there get the batch id and transaction.

        Raises:
            InvalidArgumentError: see :meth:`VerdictBook.attach_batch`.
        """
        return self.verdicts.attach_batch(QueenAddress(checksum_address(queen)), batch_id, tx, rentals)

    # ------------------------------------------------------------------ views
    def pool_views(self) -> list[PoolView]:
        """Every connected queen's pool, by queen address."""
        listed = self.pools.listed()
        out = []
        for s in sorted(self.sessions.session_info(), key=lambda s: s.queen):
            entries = listed.get(s.queen, [])
            alive = [(o, busy) for o, busy in entries if o.alive]
            out.append(PoolView(s.queen, s.endpoint, len(entries), len(alive), sum(o.gpus for o, _ in entries),
                                sum(max(0, o.gpus - busy) for o, busy in alive), s.connected_unix,
                                s.last_snapshot_unix))
        return out

    def provider_views(self, *, queen: str = "", gpu_model: str = "") -> list[ProviderView]:
        """Every provider of every connected pool (of ``queen``, of ``gpu_model`` when given), by queen then
        address.

        Raises:
            InvalidArgumentError: a ``queen`` that is not an address, a ``gpu_model`` over 64 characters.
        """
        queen = check_address(queen, "queen") if queen else ""
        if len(gpu_model) > 64:
            raise InvalidArgumentError(f"gpu_model of {len(gpu_model)} characters (at most 64)")
        connected = {s.queen for s in self.sessions.session_info()}
        now = self.clock.time()
        out = []
        for q, entries in sorted(self.pools.listed().items()):
            if q not in connected or (queen and q != queen):
                continue
            for o, busy in sorted(entries, key=lambda e: e[0].provider):
                if gpu_model and o.gpu_model != gpu_model:
                    continue
                passed, failed = self.verdicts.totals(o.provider)
                out.append(ProviderView(o, busy, self.pools.reputation_of(o.provider), passed, failed,
                                        self.verdicts.pass_rate(o.provider, now), provider_state(o, busy)))
        return out

    def challenges(self, *, provider: str = "", limit: int = 0) -> list[VerdictRecord]:
        """The latest verdicts, newest first.

        Raises:
            InvalidArgumentError: ``limit`` above 500, or a ``provider`` that is not an address.
        """
        n = check_limit(limit)
        who = check_address(provider, "provider") if provider else ""
        return self.verdicts.recent(provider=who, limit=n)

    def price_history(self, *, gpu_model: str = "", window_s: float = 0.0) -> list[PricePoint]:
        """See :meth:`PriceHistory.window`."""
        return self.prices.window(self.clock.time(), window_s, gpu_model)

    # ------------------------------------------------------------------ the sampler
    def sample(self) -> None:
        """Records each GPU model's quote and cheapest ask now (what ListOffers shows)."""
        now = self.clock.time()
        self.prices.record(now, [PricePoint(now, o.gpu_model, o.quote_per_gpu_hour, o.min_ask_per_gpu_hour,
                                            o.gpus_free, o.gpus_total) for o in self.offers()])

    async def run_sampler(self) -> None:
        """Samples every ``interval_s`` until cancelled (the first sample at once)."""
        while True:
            self.sample()
            await asyncio.sleep(self.prices.interval_s)


@dataclass(frozen=True)
class RawVerdict:
    """A verdict as a queen sent it, not checked yet."""

    challenge_id: str
    provider: str
    verdict: str
    reason: str
    issued_unix: float
    decided_unix: float
    rental_id: bytes
