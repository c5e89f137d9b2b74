"""Renters' jobs on the king: submission, placement, the rental on Ethereum, events, cancellation, settlement.

A job's life (``state``): ``queued`` (waiting for a provider; ``reason`` says why) → ``scheduled`` (a provider
is chosen; the rental is created on chain with the renter's next unused intent, then the job is assigned to
the provider's queen) → ``running`` → ``ended`` (the job stopped: finished, or its rental ended) → ``settled``
(every rental of the job is settled on chain). A job that cannot run ends ``failed``; one the renter cancels
ends ``cancelled``; either becomes ``settled`` once the rentals it used are settled.

Guarantees:

* A GPU is never promised twice (the scheduler's reservations), and a job is placed only on a provider the
  renter wrapped its payload key for.
* Money moves on chain only, once per rental: a rental is created from a renter-signed intent whose nonce
  the chain refuses twice (a retried or restarted create adopts the rental already there); it is cancelled
  when the job ends early or is cancelled, and settles for verified time; a provider that dies mid-job has
  its rental cancelled (paid for verified time) and the job moves to another provider with the next intent.
* Every change is written to the store before it is acted on or announced, with an event numbered without
  gaps per job (``job_events``), so a restarted king resumes every job and a watcher resumes from a seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from eth_utils import to_checksum_address

from blendr import jobspec
from blendr.chain.contracts import RentalIntent, RentalStatus
from blendr.clock import Clock
from blendr.errors import (
    AlreadyExistsError,
    BlendrError,
    ContractRevertError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)
from blendr.jobspec import Spec, fmt_tokens
from blendr.store import Store
from blendr.telemetry import get_logger
from king.rentals import PermitDoc, RentalChain, RentalParams, intent_signer
from king.scheduler import JobSpec, Placement, PoolSnapshot, ProviderOffer, Scheduler
from king.settlements import NS_RENTALS, rid_key

log = get_logger("blendr.king.jobs")

NS_JOBS = "jobs"
NS_EVENTS = "job_events"
NS_PAYLOADS = "job_payloads"
NS_NONCES = "intent_nonces"
NS_CANCELS = "rental_cancels"  # rentals the king must cancel on chain (written before it tries)

QUEUED, SCHEDULED, RUNNING, ENDED, SETTLED, FAILED, CANCELLED = (
    "queued", "scheduled", "running", "ended", "settled", "failed", "cancelled")
LIVE = (SCHEDULED, RUNNING)
EVENT_KINDS = ("queued", "scheduled", "rental_created", "running", "log", "progress", "ended", "verified",
               "settled", "failed", "cancelled", "rescheduled")
# Reverts that are the chosen provider's or queen's fault: try another provider. Anything else is the renter's.
PROVIDER_SIDE = {"GPURentalInsufficientStake", "GPURentalInsufficientQueenStake", "GPURentalQueenIsProvider"}
RENTER_HINTS = {
    "ERC20InsufficientAllowance": "the escrow allowance is too low: sign a larger permit (or approve GPURental)",
    "ERC20InsufficientBalance": "insufficient GPUTOKEN balance for the escrow",
    "GPURentalIntentExpired": "the signed intent expired before a provider was found; submit the job again",
    "GPURentalNonceUsed": "the intent's nonce was already used by another rental",
    "GPURentalInvalidSignature": "the intent's signature is not the renter's",
    "GPURentalInvalidPrice": "the price is above the intent's max price",
}


@dataclass(frozen=True)
class JobsConfig:
    max_intents: int = 4
    max_payload_bytes: int = 8 * 2**20
    max_intent_deadline_s: int = 7 * 86400
    max_log_events: int = 20_000
    candidates: int = 16
    queen_grace_s: float = 30.0
    retry_s: float = 2.0


class QueenPort(Protocol):
    """The queens' sessions as the job manager uses them (king.queens.QueenHub)."""

    def connected(self, queen: str) -> bool: ...
    def assign(self, queen: str, assignment: dict[str, Any]) -> bool: ...
    def stop(self, queen: str, job_id: str, attempt: int, reason: str) -> bool: ...


@dataclass(frozen=True)
class PoolEntry:
    offer: ProviderOffer
    public_key: bytes
    busy_gpus: int


@dataclass(frozen=True)
class Quote:
    price: int
    max_escrow: int
    candidates: list[PoolEntry]
    reason: str
    closest: list[ProviderOffer]


def job_id_of(renter: str, request_id: str) -> str:
    return "j-" + hashlib.sha256(f"{to_checksum_address(renter)}|{request_id}".encode()).hexdigest()[:20]


def _spec_of(d: dict[str, Any]) -> Spec:
    return Spec(**d)


class JobManager:
    """Every job of this king; call from one event loop (chain calls run in worker threads)."""

    def __init__(self, store: Store, clock: Clock, scheduler: Scheduler, chain: RentalChain, queens: QueenPort,
                 cfg: JobsConfig | None = None, *, reputation: Callable[[str], int] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.scheduler = scheduler
        self.chain = chain
        self.queens = queens
        self.cfg = cfg or JobsConfig()
        self.reputation = reputation or (lambda _p: 5000)
        self.pool: dict[str, PoolEntry] = {}  # provider -> latest report
        self._pools: dict[str, set[str]] = {}  # queen -> providers
        self._watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._wake = asyncio.Event()
        self._pending_rentals: dict[str, str] = {}  # rental key -> job id, awaiting settlement
        self._queen_gone: dict[str, float] = {}  # queen -> monotonic time it disconnected
        self._busy: set[str] = set()  # jobs with a chain operation in flight
        self._params: RentalParams | None = None
        self._retry_create: dict[str, float] = {}  # job -> when to try its attempt's rental creation again
        self._queued: set[str] = set()  # jobs waiting for a provider (their reasons are refreshed)
        self._cancelling: set[str] = set()  # rental keys with a cancel in flight
        self._last_reasons = 0.0
        self._last_cancels = 0.0
        self._bg: set[asyncio.Task[None]] = set()
        self._by_renter: dict[str, list[str]] = {}  # renter -> job ids, oldest first

    # ------------------------------------------------------------------ restore
    def load(self) -> int:
        """Rebuilds the scheduler and pending work from the store after a (re)start; returns live jobs."""
        live = 0
        docs = sorted((d for _, d in self.store.scan(NS_JOBS, "")), key=lambda d: d["submitted"])
        for d in docs:
            self._by_renter.setdefault(d["renter"], []).append(d["job_id"])
            for r in d["rentals"]:
                if r.get("state") not in ("settled", "expired"):
                    self._pending_rentals[r["rental_id"]] = d["job_id"]
            if d["state"] == QUEUED:
                self._enqueue(d)
                live += 1
            elif d["state"] in LIVE and d.get("current"):
                c = d["current"]
                self.scheduler.restore(Placement(d["job_id"], d["renter"], c["queen"], c["provider"],
                                                 d["spec"]["gpus"], int(c["price"])), self._sched_spec(d))
                if not c.get("rental_id"):
                    # the king stopped while creating the rental: create it again (a rental that landed is
                    # adopted by its nonce, never created twice)
                    self._retry_create[d["job_id"]] = 0.0
                # a queen that never comes back: its jobs move after the grace period
                self._queen_gone.setdefault(c["queen"], self.clock.monotonic())
                live += 1
            elif d["state"] == CANCELLED and d.get("current") and not d["current"].get("rental_id"):
                self._retry_create[d["job_id"]] = 0.0  # did its rental land before the cancel? find out
            if d["state"] == QUEUED:
                self._queued.add(d["job_id"])
        self._wake.set()
        return live

    # ------------------------------------------------------------------ pools
    def on_snapshot(self, queen: str, seq: int, providers: list[tuple[ProviderOffer, bytes, int]]) -> None:
        """A queen's pool: offers (reputation filled in here), public keys and busy GPUs."""
        queen = to_checksum_address(queen)
        offers = []
        for offer, pub, busy in providers:
            o = replace(offer, queen=queen, reputation=self.reputation(offer.provider))
            offers.append(o)
            self.pool[o.provider] = PoolEntry(o, pub, busy)
        for gone in self._pools.get(queen, set()) - {o.provider for o in offers}:
            self.pool.pop(gone, None)
        self._pools[queen] = {o.provider for o in offers}
        self.scheduler.update_pool(PoolSnapshot(queen, tuple(offers), seq))
        self._queen_gone.pop(queen, None)
        self._wake.set()

    def on_queen_connected(self, queen: str) -> None:
        """Re-sends the assignments of the queen's live jobs (the queen answers repeats idempotently)."""
        queen = to_checksum_address(queen)
        self._queen_gone.pop(queen, None)
        for _, d in self.store.scan(NS_JOBS, ""):
            c = d.get("current")
            if d["state"] in LIVE and c and c.get("queen") == queen and c.get("rental_id"):
                self.queens.assign(queen, self._assignment(d))
            elif d["state"] == CANCELLED and c and c.get("queen") == queen and c.get("rental_id") \
                    and not self.finished(d):
                self.queens.stop(queen, d["job_id"], c["attempt"], d["reason"])

    def on_queen_disconnected(self, queen: str) -> None:
        self._queen_gone[to_checksum_address(queen)] = self.clock.monotonic()

    def check_queens(self) -> None:
        """Jobs on a queen gone longer than the grace period are treated as lost (moved elsewhere)."""
        now = self.clock.monotonic()
        for queen, since in list(self._queen_gone.items()):
            if now - since < self.cfg.queen_grace_s:
                continue
            del self._queen_gone[queen]
            self.scheduler.remove_pool(queen)
            for p in self._pools.pop(queen, set()):
                self.pool.pop(p, None)
            for _, d in self.store.scan(NS_JOBS, ""):
                c = d.get("current")
                if d["state"] in LIVE and c and c.get("queen") == queen:
                    self._lost(d, f"queen {queen[:10]}… went away")

    # ------------------------------------------------------------------ quotes
    def quote(self, spec: Spec) -> Quote:
        self._validate(spec)
        s = self._sched_spec_of(spec)
        matching = [e for e in self.pool.values() if self._fits(e.offer, s)]
        if spec.gpu_model:
            price = int(self.scheduler.quote(spec.gpu_model))
        else:
            price = min((int(self.scheduler.quote(m)) for m in {e.offer.gpu_model for e in matching}), default=0)
        priced = [e for e in matching if max(e.offer.ask_per_gpu_hour, int(self.scheduler.quote(e.offer.gpu_model)))
                  <= spec.max_price_per_gpu_hour]
        priced.sort(key=lambda e: (max(e.offer.ask_per_gpu_hour, int(self.scheduler.quote(e.offer.gpu_model))),
                                   -e.offer.reputation, e.busy_gpus))
        reason = ""
        closest: list[ProviderOffer] = []
        if not priced:
            reason = self._no_match_reason(spec, matching)
            closest = self.scheduler.closest_offers(s, 3)
        return Quote(price, spec.max_escrow(), priced[: self.cfg.candidates], reason, closest)

    def _fits(self, o: ProviderOffer, s: JobSpec) -> bool:
        return (o.alive and o.gpus >= s.gpus and (not s.gpu_model or o.gpu_model == s.gpu_model)
                and o.vram_bytes >= s.min_vram_bytes and (s.min_tflops <= 0 or o.tflops >= s.min_tflops))

    def _no_match_reason(self, spec: Spec, matching: list[PoolEntry]) -> str:
        what = f"{spec.gpus}×{spec.gpu_model or 'GPU'}"
        if not matching:
            return f"no provider with {what} in the network now"
        cheapest = min(max(e.offer.ask_per_gpu_hour, int(self.scheduler.quote(e.offer.gpu_model))) for e in matching)
        return (f"no provider with {what} under {fmt_tokens(spec.max_price_per_gpu_hour)}/h "
                f"(the cheapest is {fmt_tokens(cheapest)}/h)")

    # ------------------------------------------------------------------ submit
    async def submit(self, renter: str, req: dict[str, Any]) -> dict[str, Any]:
        """Validates and queues a job (idempotent by request id); returns the job document.

        ``req``: request_id, name, spec (Spec), spec_hash (bytes), intents [(nonce int, deadline, signature)],
        permit (PermitDoc | None), ciphertext (bytes), keys {provider: sealed key bytes}.

        Raises:
            InvalidArgumentError, ResourceExhaustedError, FailedPreconditionError, AlreadyExistsError,
            UnavailableError (the chain cannot be read; nothing was stored).
        """
        renter = to_checksum_address(renter)
        request_id = jobspec.check_request_id(req["request_id"])
        job_id = job_id_of(renter, request_id)
        fingerprint = self._fingerprint(req)
        existing = self.store.get(NS_JOBS, job_id)
        if existing is not None:
            if existing["fingerprint"] != fingerprint:
                raise AlreadyExistsError(f"request id {request_id} was used for another job ({job_id})")
            return existing
        spec: Spec = req["spec"]
        self._validate(spec)
        ciphertext: bytes = req["ciphertext"]
        if len(ciphertext) > self.cfg.max_payload_bytes:
            raise ResourceExhaustedError(f"the encrypted payload is {jobspec.fmt_bytes(len(ciphertext))}, over the "
                                         f"{jobspec.fmt_bytes(self.cfg.max_payload_bytes)} limit: trim the workdir "
                                         "(or list what to leave out in .blendrignore)")
        if not ciphertext:
            raise InvalidArgumentError("the payload is empty")
        expect = jobspec.spec_hash(spec, ciphertext)
        if req["spec_hash"] != expect:
            raise InvalidArgumentError("spec_hash does not match the spec and payload (see blendr.jobspec.spec_hash)")
        intents = req["intents"]
        if not 1 <= len(intents) <= self.cfg.max_intents:
            raise InvalidArgumentError(f"send 1 to {self.cfg.max_intents} signed intents (got {len(intents)})")
        now = int(self.clock.time())
        nonces = set()
        for i, (nonce, deadline, sig) in enumerate(intents, 1):
            if nonce in nonces:
                raise InvalidArgumentError(f"intent {i} repeats a nonce")
            nonces.add(nonce)
            if deadline <= now + 60:
                raise InvalidArgumentError(f"intent {i} expires too soon (deadline {deadline})")
            if deadline > now + self.cfg.max_intent_deadline_s:
                raise InvalidArgumentError(f"intent {i}'s deadline is more than "
                                           f"{self.cfg.max_intent_deadline_s // 86400} days away")
            intent = self._intent(renter, spec, expect, nonce, deadline)
            if intent_signer(intent, sig, self.chain.chain_id, self.chain.rental_address) != renter:
                raise InvalidArgumentError(f"intent {i} is not signed by the renter {renter} for this GPURental")
            prior = self.store.get(NS_NONCES, f"{renter}/{nonce:064x}")
            if prior is not None:
                raise FailedPreconditionError(f"intent {i} was already used (replayed) by job {prior['job_id']}")
        keys = {to_checksum_address(p): k for p, k in req["keys"].items()}
        if not keys:
            raise InvalidArgumentError("the payload key is wrapped for no provider: get a quote and wrap it for "
                                       "its candidates")
        quote = self.quote(spec)
        offered = [e for e in quote.candidates]
        if offered and quote.price > spec.max_price_per_gpu_hour:
            raise FailedPreconditionError(f"your max price {fmt_tokens(spec.max_price_per_gpu_hour)}/h is below the "
                                          f"quote {fmt_tokens(quote.price)}/h for {spec.gpu_model or 'this spec'}")
        if not quote.candidates and quote.reason and "under" in quote.reason:
            raise FailedPreconditionError(f"max price below the quote: {quote.reason}")
        # the chain: balance, allowance, nonces (reads only; nothing is stored if they fail)
        def read() -> tuple[int, int, list[int]]:
            return (self.chain.balance(renter), self.chain.allowance(renter),
                    [i for i, (nonce, _, _) in enumerate(intents, 1) if self.chain.nonce_used(renter, nonce)])

        try:
            balance, allowance, used = await asyncio.to_thread(read)
        except Exception as exc:
            log.warning("reading the renter's balance failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            raise UnavailableError("the king cannot read Ethereum right now; try again in a moment") from None
        if used:
            raise FailedPreconditionError(f"intent {used[0]} was already used (replayed) by a rental on chain")
        again = self.store.get(NS_JOBS, job_id)
        if again is not None:  # the same request, submitted concurrently, won the race
            if again["fingerprint"] != fingerprint:
                raise AlreadyExistsError(f"request id {request_id} was used for another job ({job_id})")
            return again
        for n, _, _ in intents:
            prior = self.store.get(NS_NONCES, f"{renter}/{n:064x}")
            if prior is not None:
                raise FailedPreconditionError(f"an intent was already used (replayed) by job {prior['job_id']}")
        need = spec.max_escrow()
        if balance < need:
            raise FailedPreconditionError(f"insufficient balance: you hold {fmt_tokens(balance)} GPUTOKEN and this "
                                          f"job can lock up to {fmt_tokens(need)} in escrow")
        permit: PermitDoc | None = req.get("permit")
        if max(allowance, permit.value if permit else 0) < need:
            raise FailedPreconditionError(f"the escrow allowance {fmt_tokens(allowance)} is below the "
                                          f"{fmt_tokens(need)} this job can lock: sign a permit (the SDK does) or "
                                          "approve GPURental")
        doc: dict[str, Any] = {
            "job_id": job_id, "request_id": request_id, "renter": renter, "name": req.get("name", ""),
            "spec": spec.__dict__.copy(), "spec_hash": expect.hex(), "fingerprint": fingerprint, "state": QUEUED,
            "reason": quote.reason or "waiting for a provider", "submitted": self.clock.time(), "started": 0.0,
            "ended": 0.0, "progress": -1.0, "exit_code": 0, "attempt": 0, "excluded": [],
            "intents": [{"nonce": f"{n:064x}", "deadline": dl, "signature": sig.hex(), "used": False}
                        for n, dl, sig in intents],
            "permit": None if permit is None else {"value": str(permit.value), "deadline": permit.deadline,
                                                   "v": permit.v, "r": permit.r.hex(), "s": permit.s.hex()},
            "permit_used": False, "candidates": sorted(keys), "rentals": [], "current": None, "last_seq": 0,
            "logs": 0, "outcome": "",
        }
        with self.store.batch() as b:
            b.put(NS_PAYLOADS, job_id, {"ciphertext": ciphertext.hex(), "aad": request_id,
                                         "keys": {p: k.hex() for p, k in keys.items()}})
            for n, _, _ in intents:
                b.put(NS_NONCES, f"{renter}/{n:064x}", {"job_id": job_id})
            self._event(b, doc, "queued", doc["reason"])
            b.put(NS_JOBS, job_id, doc)
        self._enqueue(doc)
        self._queued.add(job_id)
        self._by_renter.setdefault(renter, []).append(job_id)
        self._publish(doc)
        self._wake.set()
        log.info("job submitted", job=job_id, renter=renter, spec=spec.describe(), candidates=len(keys))
        return doc

    def _fingerprint(self, req: dict[str, Any]) -> str:
        s: Spec = req["spec"]
        parts = [repr(sorted(s.__dict__.items())), req["spec_hash"].hex(),
                 repr([(n, d, sig.hex()) for n, d, sig in req["intents"]])]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    async def prepare(self) -> None:
        """Reads GPURental's governance parameters (GPUs, durations, quote bounds); call before serving, and
        again to pick up a change."""
        p = await asyncio.to_thread(self.chain.params)
        if self._params != p:
            self._params = p
            self.on_params(p)

    def on_params(self, p: RentalParams) -> None:
        """New governance parameters: quotes follow the price bounds at once."""
        pricer = self.scheduler.pricer
        if p.max_quote and (pricer.params.min_per_gpu_hour, pricer.params.max_per_gpu_hour) != (p.min_quote,
                                                                                                 p.max_quote):
            pricer.params = replace(pricer.params, min_per_gpu_hour=p.min_quote, max_per_gpu_hour=p.max_quote)
            self.scheduler.reprice()
            log.info("quote bounds from governance", min=fmt_tokens(p.min_quote), max=fmt_tokens(p.max_quote))

    def _validate(self, spec: Spec) -> None:
        p = self._params
        if p is None:
            raise UnavailableError("the king has not read GPURental's parameters yet; try again")
        jobspec.validate(spec, max_gpus=p.max_gpus, min_duration_s=p.min_duration, max_duration_s=p.max_duration)

    def _intent(self, renter: str, spec: Spec, spec_hash: bytes, nonce: int, deadline: int) -> RentalIntent:
        return RentalIntent(renter, jobspec.ZERO_ADDRESS, spec.gpus, spec_hash, spec.max_price_per_gpu_hour,
                            spec.duration_s, nonce, deadline)

    def _sched_spec_of(self, spec: Spec, providers: frozenset[str] = frozenset()) -> JobSpec:
        return JobSpec(spec.gpus, spec.gpu_model, spec.min_vram_bytes, spec.min_tflops, spec.max_price_per_gpu_hour,
                       providers)

    def _sched_spec(self, d: dict[str, Any]) -> JobSpec:
        # only the providers the renter wrapped the payload key for
        return self._sched_spec_of(_spec_of(d["spec"]), frozenset(d["candidates"]))

    def _enqueue(self, d: dict[str, Any]) -> None:
        """Queues the job in the scheduler, never again on a provider it was moved off."""
        self.scheduler.submit(d["job_id"], d["renter"], self._sched_spec(d))
        for p in d["excluded"]:
            self.scheduler.exclude(d["job_id"], p)

    # ------------------------------------------------------------------ placement
    async def run(self) -> None:
        """Places queued jobs as capacity appears, forever (cancel to stop). A failure in one pass is logged
        and the loop goes on: nothing a chain or a peer does can stop placements."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.cfg.retry_s)
            self._wake.clear()
            try:
                await self._pass()
            except Exception as exc:  # a bug or an unexpected error: keep the king serving, say what happened
                log.error("placement pass failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")

    async def _pass(self) -> None:
        self.check_queens()
        await self._retry_creates()
        for p in self.scheduler.schedule(max_placements=64):
            try:
                await self._place(p)
            except Exception as exc:
                log.error("placing a job failed; it is retried", job=p.job_id,
                          error=f"{type(exc).__name__}: {str(exc)[:300]}")
                self._retry_create.setdefault(p.job_id, self.clock.monotonic() + self.cfg.retry_s * 5)
        now = self.clock.monotonic()
        if now - self._last_reasons >= 2.0:
            self._last_reasons = now
            self._refresh_reasons()
        if now - self._last_cancels >= 30.0:
            self._last_cancels = now
            self._retry_cancels()

    def _refresh_reasons(self) -> None:
        for job_id in list(self._queued):
            d = self.store.get(NS_JOBS, job_id)
            if d is None or d["state"] != QUEUED:
                self._queued.discard(job_id)
                continue
            try:
                reason = self.scheduler.waiting_reason(job_id)
            except KeyError:
                continue
            if reason and reason != d["reason"]:
                d["reason"] = reason
                self._save(d, "queued", reason)

    async def _retry_creates(self) -> None:
        now = self.clock.monotonic()
        for job_id, due in list(self._retry_create.items()):
            if due > now or job_id in self._busy:
                continue
            d = self.store.get(NS_JOBS, job_id)
            c = d.get("current") if d else None
            if d is None or not c or c.get("rental_id") or d["state"] not in (*LIVE, CANCELLED):
                self._retry_create.pop(job_id, None)
                continue
            if d["state"] == CANCELLED:
                it = d["intents"][c["intent"]]
                intent = self._intent(d["renter"], _spec_of(d["spec"]), bytes.fromhex(d["spec_hash"]),
                                      int(it["nonce"], 16), it["deadline"])
                try:
                    status = await asyncio.to_thread(self.chain.status,
                                                     intent.rental_id(self.chain.chain_id, self.chain.rental_address))
                except Exception:
                    self._retry_create[job_id] = now + self.cfg.retry_s * 5
                    continue
                if status == RentalStatus.NONE:  # it never landed: nothing to cancel
                    self._retry_create.pop(job_id, None)
                    self.scheduler.release(job_id)
                    continue
            self._retry_create[job_id] = now + self.cfg.retry_s * 5
            await self._create_rental(d)

    def _retry_cancels(self) -> None:
        """Cancels that failed or that a restart interrupted are tried again (each is idempotent on chain)."""
        for key, doc in self.store.scan(NS_CANCELS, ""):
            if key not in self._cancelling:
                self._spawn(self._cancel_rental({"job_id": doc["job_id"]}, key))

    def _spawn(self, coro: Any) -> None:
        """Runs ``coro`` in the background, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _place(self, p: Placement) -> None:
        d = self.store.get(NS_JOBS, p.job_id)
        if d is None or d["state"] != QUEUED:
            self.scheduler.release(p.job_id)
            return
        if p.provider not in d["candidates"]:
            # Defensive: the scheduler places only on the job's candidates (the payload key is wrapped for them).
            self.scheduler.exclude(p.job_id, p.provider)
            self.scheduler.requeue(p.job_id)
            self._wake.set()
            return
        idx = next((i for i, it in enumerate(d["intents"]) if not it["used"]), None)
        if idx is None:
            self.scheduler.release(p.job_id)
            self._fail(d, "no signed intent left to rent another provider; submit the job again")
            return
        d["attempt"] += 1
        d["state"] = SCHEDULED
        d["provider"], d["queen"] = p.provider, p.queen
        d["current"] = {"attempt": d["attempt"], "provider": p.provider, "queen": p.queen,
                        "price": str(p.price_per_gpu_hour), "intent": idx, "rental_id": "", "deadline": 0.0,
                        "queen_seq": 0}
        self._save(d, "scheduled", f"placed on provider {p.provider} (queen {p.queen}) at "
                                   f"{fmt_tokens(p.price_per_gpu_hour)}/GPU-hour")
        await self._create_rental(d)

    async def _create_rental(self, d: dict[str, Any]) -> None:
        """Creates the current attempt's rental on chain, records it, and hands the job to the queen.

        An unclear failure (RPC down, no receipt) keeps the attempt as it is — same intent, provider, queen and
        price — and tries again later: a rental that did land is adopted by its nonce, never created twice, and
        a possibly-landed intent never goes to another provider.
        """
        c = d["current"]
        attempt = c["attempt"]
        it = d["intents"][c["intent"]]
        spec = _spec_of(d["spec"])
        intent = self._intent(d["renter"], spec, bytes.fromhex(d["spec_hash"]), int(it["nonce"], 16), it["deadline"])
        permit = None
        if d["permit"] and not d["permit_used"]:
            pm = d["permit"]
            permit = PermitDoc(int(pm["value"]), pm["deadline"], pm["v"], bytes.fromhex(pm["r"]), bytes.fromhex(pm["s"]))
        self._busy.add(d["job_id"])
        try:
            created = await asyncio.to_thread(self.chain.create, intent, bytes.fromhex(it["signature"]),
                                              int(c["price"]), c["queen"], c["provider"], permit)
        except ContractRevertError as exc:
            d = self._reload(d)
            if d["state"] == CANCELLED or not self._same_attempt(d, attempt):
                self.scheduler.release(d["job_id"])
                return
            if exc.error in PROVIDER_SIDE:
                self._move(d, f"provider {c['provider'][:10]}… cannot take the rental ({exc.error}); trying another")
                return
            d["intents"][c["intent"]]["used"] = exc.error in ("GPURentalNonceUsed", "GPURentalIntentExpired")
            self.scheduler.release(d["job_id"])
            self._fail(d, RENTER_HINTS.get(exc.error, "the rental could not be created: " + (exc.error or "reverted")))
            return
        except Exception as exc:  # RPC down, no receipt, an RPC provider's HTTP error: unclear whether it landed
            log.warning("rental creation failed; retrying the same attempt", job=d["job_id"],
                        error=f"{type(exc).__name__}: {str(exc)[:200]}")
            d = self._reload(d)
            if self._same_attempt(d, attempt) and d["state"] in (*LIVE, CANCELLED):
                self._retry_create[d["job_id"]] = self.clock.monotonic() + self.cfg.retry_s * 5
                if d["state"] != CANCELLED and "not answering" not in d["reason"]:
                    d["reason"] = "Ethereum is not answering; the rental will be created when it is"
                    self._save(d, "scheduled", d["reason"])
            return
        finally:
            self._busy.discard(d["job_id"])
        self._retry_create.pop(d["job_id"], None)
        # Block time may run behind or ahead of this clock: the provider stops the job on its wall clock, so
        # the rental's end is carried over in wall-clock time.
        try:
            skew = self.clock.time() - await asyncio.to_thread(self.chain.now)
        except Exception:
            skew = 0.0
        d = self._reload(d)
        key = rid_key(created.rental_id)
        rental = {"rental_id": key, "provider": c["provider"], "queen": c["queen"], "price": c["price"],
                  "escrow": str(created.escrow), "created_tx": created.tx, "start": created.start,
                  "wall_start": created.start + skew, "duration": created.duration, "state": "active"}
        d["intents"][c["intent"]]["used"] = True
        d["permit_used"] = d["permit_used"] or permit is not None
        if not any(r["rental_id"] == key for r in d["rentals"]):
            d["rentals"].append(rental)
        self._pending_rentals[key] = d["job_id"]
        if d["state"] == CANCELLED or not self._same_attempt(d, attempt) or d["state"] not in LIVE:
            # cancelled, moved or ended while the rental was being created: record it and cancel it
            self._cancel_later(key, d["job_id"])
            self._save(d, "rental_created", f"rental {key[:12]}… created; cancelling it")
            self._spawn(self._cancel_rental(d, key))
            return
        c = d["current"]
        c.update(rental_id=key, deadline=float(created.start + created.duration + skew))
        self._save(d, "rental_created", f"rental {key[:12]}… locks {fmt_tokens(created.escrow)} GPUTOKEN in escrow "
                                        f"(tx {created.tx or 'adopted'})")
        if not self.queens.assign(c["queen"], self._assignment(d)):
            # the queen may be restarting: it gets the assignment when it is back, or after the grace period
            # the job moves to another provider
            self._queen_gone.setdefault(c["queen"], self.clock.monotonic())

    def _same_attempt(self, d: dict[str, Any], attempt: int) -> bool:
        c = d.get("current")
        return c is not None and c["attempt"] == attempt

    def _cancel_later(self, key: str, job_id: str) -> None:
        """Records that the rental must be cancelled, before anything else happens (survives a crash)."""
        self.store.put(NS_CANCELS, key, {"job_id": job_id})

    def _assignment(self, d: dict[str, Any]) -> dict[str, Any]:
        c = d["current"]
        pl = self.store.get(NS_PAYLOADS, d["job_id"]) or {}
        return {"job_id": d["job_id"], "attempt": c["attempt"], "provider": c["provider"], "gpus": d["spec"]["gpus"],
                "rental_id": bytes.fromhex(c["rental_id"]), "deadline_unix": c["deadline"],
                "ciphertext": bytes.fromhex(pl.get("ciphertext", "")),
                "sealed_key": bytes.fromhex(pl.get("keys", {}).get(c["provider"], "")), "aad": pl.get("aad", "")}

    def _reload(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.store.get(NS_JOBS, d["job_id"]) or d

    # ------------------------------------------------------------------ queen events
    def on_queen_event(self, queen: str, ev: dict[str, Any]) -> None:
        """A job event relayed by a queen (stale attempts and repeated seqs are ignored)."""
        d = self.store.get(NS_JOBS, ev["job_id"])
        if d is None:
            return
        c = d.get("current")
        if not c or c["attempt"] != ev["attempt"] or to_checksum_address(queen) != c["queen"]:
            return
        if not c.get("rental_id") or d["state"] not in (*LIVE, CANCELLED):
            return  # not assigned yet (the queen cannot know this attempt), or already over
        if ev["seq"] and ev["seq"] <= c.get("queen_seq", 0):
            return
        c["queen_seq"] = ev["seq"] or c.get("queen_seq", 0)
        kind = ev["kind"]
        if kind == "accepted":
            self._save(d)
        elif kind == "running" and d["state"] == SCHEDULED:
            d["state"], d["started"] = RUNNING, d["started"] or self.clock.time()
            self._save(d, "running", f"running on {c['provider']}")
        elif kind == "log":
            if d["logs"] < self.cfg.max_log_events:
                d["logs"] += 1
                self._save(d, "log", ev.get("message", ""))
            elif d["logs"] == self.cfg.max_log_events:
                d["logs"] += 1
                self._save(d, "log", f"[blendr] more than {self.cfg.max_log_events} log lines: the rest are dropped")
        elif kind == "progress":
            d["progress"] = float(ev.get("progress", -1.0))
            self._save(d, "progress", ev.get("message", ""), progress=d["progress"])
        elif kind in ("succeeded", "failed", "stopped"):
            self._job_stopped(d, kind, ev)
        elif kind == "lost" and d["state"] in LIVE:
            self._lost(d, ev.get("message") or "the provider went away")
        else:
            self._save(d)

    def _job_stopped(self, d: dict[str, Any], kind: str, ev: dict[str, Any]) -> None:
        self.scheduler.release(d["job_id"])
        c = d["current"]
        d["exit_code"] = int(ev.get("exit_code", 0))
        d["ended"] = self.clock.time()
        if d["state"] != CANCELLED:
            d["state"] = ENDED
            d["outcome"] = kind
        msg = {"succeeded": "the job finished", "failed": f"the job failed: {ev.get('message', '')}".strip(),
               "stopped": f"the job was stopped: {ev.get('message', '')}".strip()}[kind]
        early = bool(c and c.get("rental_id") and self.clock.time() < c["deadline"])
        if early:
            self._cancel_later(c["rental_id"], d["job_id"])
        self._save(d, "ended", msg)
        if early:
            self._spawn(self._cancel_rental(d, c["rental_id"]))
        self._wake.set()

    def _lost(self, d: dict[str, Any], why: str) -> None:
        """The provider (or its queen) is gone: cancel its rental, move the job to another provider."""
        c = d["current"]
        if c and c.get("rental_id") and self.clock.time() >= c["deadline"]:
            # the rental is over anyway: the job ends; moving it would rent (and charge) a second time
            self._job_stopped(d, "stopped", {"message": f"rental ended ({why})"})
            return
        if c and c.get("rental_id"):
            self._cancel_later(c["rental_id"], d["job_id"])
            self._spawn(self._cancel_rental(dict(d), c["rental_id"]))
        if d["state"] == CANCELLED:
            self.scheduler.release(d["job_id"])
            self._save(d)
            return
        self._move(d, f"{why}; moving the job to another provider")

    def _move(self, d: dict[str, Any], why: str) -> None:
        c = d["current"]
        if c:
            d["excluded"] = sorted({*d["excluded"], c["provider"]})
        self.scheduler.release(d["job_id"])
        d["current"], d["state"], d["provider"], d["queen"] = None, QUEUED, "", ""
        if not any(not it["used"] for it in d["intents"]):
            self._fail(d, f"{why}, but no signed intent is left to rent another provider")
            return
        d["reason"] = why
        self._save(d, "rescheduled", why)
        self._enqueue(d)
        self._queued.add(d["job_id"])
        self._wake.set()

    def _fail(self, d: dict[str, Any], why: str) -> None:
        d["state"], d["reason"], d["outcome"] = FAILED, why, "failed"
        d["ended"] = d["ended"] or self.clock.time()
        self._save(d, "failed", why)
        self._maybe_settled(d)

    async def _cancel_rental(self, d: dict[str, Any], key: str) -> None:
        """Cancels a rental on chain; the intent is stored first, so a failure or a restart retries it."""
        if key in self._cancelling:
            return
        self._cancelling.add(key)
        self.store.put(NS_CANCELS, key, {"job_id": d["job_id"]})
        try:
            for attempt in range(6):
                try:
                    tx = await asyncio.to_thread(self.chain.cancel, int(key, 16))
                except BlendrError as exc:
                    log.warning("cancelling the rental failed; retrying", rental=key[:12], error=str(exc)[:200])
                    await asyncio.sleep(min(30.0, self.cfg.retry_s * 2 ** attempt))
                    continue
                if tx:
                    log.info("rental cancelled on chain", job=d["job_id"], rental=key[:12], tx=tx)
                self.store.delete(NS_CANCELS, key)
                return
            log.error("could not cancel the rental yet; retrying later", rental=key[:12])
        finally:
            self._cancelling.discard(key)

    # ------------------------------------------------------------------ cancel
    async def cancel(self, renter: str, job_id: str, reason: str = "") -> dict[str, Any]:
        d = self.get(renter, job_id)
        why = reason or "cancelled by the renter"
        if d["state"] == QUEUED:
            self.scheduler.cancel(job_id)
            d["state"], d["reason"], d["outcome"], d["ended"] = CANCELLED, why, "cancelled", self.clock.time()
            self._save(d, "cancelled", why)
            self._maybe_settled(d)
            return d
        if d["state"] == CANCELLED:
            return d
        if d["state"] not in LIVE:
            raise FailedPreconditionError(f"job {job_id} has already {d['state']}")
        c = d["current"]
        d["state"], d["reason"], d["outcome"], d["ended"] = CANCELLED, why, "cancelled", self.clock.time()
        if c.get("rental_id"):
            self._cancel_later(c["rental_id"], job_id)
        self._save(d, "cancelled", why)
        self.queens.stop(c["queen"], job_id, c["attempt"], why)  # re-sent when the queen reconnects
        self.scheduler.release(job_id)
        if c.get("rental_id"):
            self._spawn(self._cancel_rental(d, c["rental_id"]))  # on chain in the background; stored, so retried
        return d

    # ------------------------------------------------------------------ settlement
    def poll_settlements(self) -> None:
        """Applies the rentals the settlement follower has seen settle (or expire) to their jobs."""
        for key, job_id in list(self._pending_rentals.items()):
            r = self.store.get(NS_RENTALS, key)
            if r is None or r.get("state") not in ("settled", "expired"):
                continue
            del self._pending_rentals[key]
            d = self.store.get(NS_JOBS, job_id)
            if d is None:
                continue
            for rs in d["rentals"]:
                if rs["rental_id"] == key:
                    rs.update(state=r["state"], verified_seconds=r.get("verified_seconds", 0),
                              failed=r.get("failed", False), provider_payment=r.get("provider_payment", "0"),
                              fee=r.get("fee", "0"), refund=r.get("refund", "0"), settled_tx=r.get("settled_tx", ""),
                              slashed=r.get("slashed", "0"))
                    if r["state"] == "settled":
                        self._save(d, "verified", f"rental {key[:12]}…: {rs['verified_seconds']} s verified"
                                                  f"{' — verification FAILED, provider slashed' if rs['failed'] else ''}")
                    paid = int(rs["provider_payment"]) + int(rs["fee"])
                    self._save(d, "settled", f"rental {key[:12]}… settled: paid {fmt_tokens(paid)}, refunded "
                                             f"{fmt_tokens(int(rs['refund']))} GPUTOKEN (tx {rs['settled_tx']})")
            self._maybe_settled(d)

    def _maybe_settled(self, d: dict[str, Any]) -> None:
        if d["state"] in LIVE or d["state"] == QUEUED or d["state"] == SETTLED:
            return
        if all(r.get("state") in ("settled", "expired") for r in d["rentals"]):
            if d["rentals"]:
                d["state"] = SETTLED
                self._save(d, "settled", "every rental of the job is settled")
            else:
                self._save(d)
            self.store.delete(NS_PAYLOADS, d["job_id"])  # the job is over: its encrypted payload is not needed

    # ------------------------------------------------------------------ reads
    def get(self, renter: str, job_id: str) -> dict[str, Any]:
        d = self.store.get(NS_JOBS, job_id)
        if d is None or d["renter"] != to_checksum_address(renter):
            raise NotFoundError(f"no job {job_id} of yours")
        return d

    def list_jobs(self, renter: str, states: set[str], limit: int) -> list[dict[str, Any]]:
        """The renter's jobs, newest first (only ``states`` when given), at most ``limit``."""
        out: list[dict[str, Any]] = []
        for job_id in reversed(self._by_renter.get(to_checksum_address(renter), [])):
            d = self.store.get(NS_JOBS, job_id)
            if d is not None and (not states or d["state"] in states):
                out.append(d)
                if len(out) >= (limit or 50):
                    break
        return out

    def events(self, job_id: str, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        """The job's events after seq ``after`` (at most ``limit``, oldest first), read from there on."""
        return [e for _, e in self.store.scan(NS_EVENTS, f"{job_id}/", start_after=f"{job_id}/{after:012d}",
                                              limit=limit)]

    def finished(self, d: dict[str, Any]) -> bool:
        """No more events will come: settled, or failed/cancelled with no rental left to settle."""
        if d["state"] == SETTLED:
            return True
        return d["state"] in (FAILED, CANCELLED) and all(r.get("state") in ("settled", "expired")
                                                         for r in d["rentals"])

    def subscribe(self, job_id: str) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self._watchers.setdefault(job_id, set()).add(q)
        return q

    def unsubscribe(self, job_id: str, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._watchers.get(job_id, set()).discard(q)

    def cost_so_far(self, d: dict[str, Any]) -> int:
        total = 0
        now = self.clock.time()
        for r in d["rentals"]:
            if r.get("state") == "settled":
                total += int(r.get("provider_payment", "0")) + int(r.get("fee", "0"))
            elif r.get("state") == "active":
                start = r.get("wall_start", r["start"])
                elapsed = max(0.0, min(now, start + r["duration"]) - start)
                total += int(int(r["price"]) * d["spec"]["gpus"] * elapsed) // 3600
        return total

    def in_escrow(self, renter: str) -> int:
        """Escrow locked in the renter's rentals that are not settled yet (as the king followed them)."""
        renter = to_checksum_address(renter)
        pending = {job_id for job_id in self._pending_rentals.values()}
        total = 0
        for job_id in self._by_renter.get(renter, []):
            if job_id not in pending:
                continue
            d = self.store.get(NS_JOBS, job_id)
            if d is not None:
                total += sum(int(r["escrow"]) for r in d["rentals"] if r.get("state") not in ("settled", "expired"))
        return total

    # ------------------------------------------------------------------ events
    def _event(self, b: Any, d: dict[str, Any], kind: str, message: str = "", progress: float = -1.0) -> dict[str, Any]:
        d["last_seq"] += 1
        ev = {"job_id": d["job_id"], "seq": d["last_seq"], "kind": kind, "ts": self.clock.time(), "message": message,
              "progress": progress}
        b.put(NS_EVENTS, f"{d['job_id']}/{d['last_seq']:012d}", ev)
        return ev

    def _save(self, d: dict[str, Any], kind: str = "", message: str = "", progress: float = -1.0) -> None:
        """Writes the job (and an event, when ``kind`` is given) in one commit, then tells watchers."""
        with self.store.batch() as b:
            if kind:
                self._event(b, d, kind, message, progress)
            b.put(NS_JOBS, d["job_id"], d)
        self._publish(d)

    def _publish(self, d: dict[str, Any]) -> None:
        for q in list(self._watchers.get(d["job_id"], ())):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(d)

