"""A renter's job coming in: quotes, and the checks a submission passes before it is queued.

Guarantees:

* A submission is idempotent by request id: the same request returns the same job; a different one under
  the same request id is refused (ALREADY_EXISTS).
* Nothing is stored until every check passed: the spec against GPURental's governance parameters, the
  payload (size, spec hash), every intent (signed by the renter for this GPURental, as the contract would
  recover it; fresh nonces, never used on chain or by another job), the wrapped keys (bounded), the price
  against the quote, the renter's balance and allowance on Ethereum, and the operator's limits on open jobs.
* Every value echoed back in an error is bounded.
* A job's wait for a provider is bounded: the renter's ``max_wait_s`` (at most the king's ``max_wait_s``) or the
  king's default.
"""

from __future__ import annotations

import asyncio

from blendr import jobspec
from blendr.chain.contracts import candidates_root
from blendr.errors import (
    AlreadyExistsError,
    BlendrError,
    FailedPreconditionError,
    InvalidArgumentError,
    ResourceExhaustedError,
    UnavailableError,
)
from blendr.hashing import checksum_address
from blendr.jobspec import Spec
from blendr.telemetry import get_logger
from blendr.units import fmt_bytes, fmt_duration, fmt_tokens
from king.context import JobsConfig, KingContext
from king.job import EventKind, IntentRecord, Job, JobState, Submission, job_id_of, rental_intent
from king.jobbook import Payload
from king.market import NoMatch, Quote
from king.rentals import intent_signer, permit_signer, voucher_intent_signer

log = get_logger("blendr.king.intake")


def _address(text: str, what: str) -> str:
    try:
        return checksum_address(text)
    except ValueError:
        raise InvalidArgumentError(f"{what}: {text[:80]!r} is not an address") from None


class Intake:
    """Quotes and submissions (use from the king's event loop)."""

    def __init__(self, ctx: KingContext) -> None:
        self.ctx = ctx

    @property
    def cfg(self) -> JobsConfig:
        return self.ctx.cfg

    def validate(self, spec: Spec) -> Spec:
        """``spec`` checked against GPURental's governance parameters (read by ``KingCore.prepare``)."""
        p = self.ctx.params
        if p is None:
            raise UnavailableError("the king has not read GPURental's parameters yet; try again")
        return jobspec.validate(spec, max_gpus=p.max_gpus, min_duration_s=p.min_duration,
                                max_duration_s=p.max_duration)

    def quote(self, spec: Spec) -> Quote:
        return self.ctx.market.quote(self.validate(spec))

    async def submit(self, renter: str, sub: Submission) -> tuple[Job, bool]:
        """Checks and stores a job; returns it and whether it is new (the existing one for a repeated request).

        Raises:
            InvalidArgumentError, ResourceExhaustedError, FailedPreconditionError, AlreadyExistsError,
            UnavailableError (Ethereum cannot be read; nothing was stored).
        """
        book = self.ctx.book
        renter = _address(renter, "renter")
        request_id = jobspec.check_request_id(sub.request_id)
        job_id = job_id_of(renter, request_id)
        fingerprint = sub.fingerprint()
        existing = book.get(job_id)
        if existing is not None:
            return self._same(existing, fingerprint, request_id), False
        self._check_limits(renter)
        spec = self.validate(sub.spec)
        self._check_payload(sub)
        expect = jobspec.spec_hash(spec, sub.ciphertext)
        if sub.spec_hash != expect:
            raise InvalidArgumentError("spec_hash does not match the spec and payload (see blendr.jobspec.spec_hash)")
        max_wait_s = self._check_wait(sub)
        keys = self._check_keys(sub)
        intents = self._check_intents(renter, spec, expect, sub, candidates_root(list(keys)))
        self._check_permit_fields(sub)
        quote = self.ctx.market.quote(spec)
        if quote.candidates and quote.price > spec.max_price_per_gpu_hour:
            raise FailedPreconditionError(f"your max price {fmt_tokens(spec.max_price_per_gpu_hour)}/h is below the "
                                          f"quote {fmt_tokens(quote.price)}/h for {spec.gpu_model or 'this spec'}")
        if quote.why == NoMatch.PRICE:
            raise FailedPreconditionError(f"max price below the quote: {quote.reason}")
        balance, allowance, permit_nonce, used = await self._read_chain(renter, intents)
        if sub.voucher_id:
            await self._check_vouchers(renter, spec, sub.voucher_id)
        if used:
            raise FailedPreconditionError(f"intent {used[0]} was already used (replayed) by a rental on chain")
        # the chain was read in a worker thread: the same request (or these nonces) may have won meanwhile, and
        # the renter's other submissions may have reached the limits
        again = book.get(job_id)
        if again is not None:
            return self._same(again, fingerprint, request_id), False
        self._check_limits(renter)
        self._check_nonces_unused(renter, intents)
        if sub.permit is not None:
            chain = self.ctx.chain
            signer = permit_signer(sub.permit, renter, chain.rental_address, permit_nonce, token_name=chain.token_name,
                                   chain_id=chain.chain_id, token=chain.token_address)
            if signer != renter:
                raise InvalidArgumentError(f"the escrow permit is not your signature for GPURental at your permit "
                                           f"nonce {permit_nonce}: sign a new one (the SDK does)")
        need = 0 if sub.voucher_id else spec.max_escrow()  # vouchers pay: checked above
        if balance < need:
            raise FailedPreconditionError(f"insufficient balance: you hold {fmt_tokens(balance)} GPUTOKEN and this "
                                          f"job can lock up to {fmt_tokens(need)} in escrow")
        if max(allowance, sub.permit.value if sub.permit else 0) < need:
            raise FailedPreconditionError(f"the escrow allowance {fmt_tokens(allowance)} is below the "
                                          f"{fmt_tokens(need)} this job can lock: sign a permit (the SDK does) or "
                                          "approve GPURental")
        job = Job(job_id=job_id, request_id=request_id, renter=renter, name=sub.name[:200], spec=spec,
                  spec_hash=expect, fingerprint=fingerprint, intents=intents, permit=sub.permit,
                  candidates=sorted(keys), submitted=self.ctx.clock.time(), state=JobState.QUEUED,
                  reason=quote.reason or "waiting for a provider", max_wait_s=max_wait_s,
                  scheduler=self.ctx.chain.scheduler, voucher_id=sub.voucher_id)
        job.queued_since = job.submitted
        book.create(job, Payload(sub.ciphertext, request_id, keys), EventKind.QUEUED, job.reason)
        log.info("job submitted", job=job_id, renter=renter, spec=spec.describe(), candidates=len(keys))
        return job, True

    @staticmethod
    def _same(existing: Job, fingerprint: str, request_id: str) -> Job:
        if existing.fingerprint != fingerprint:
            raise AlreadyExistsError(f"request id {request_id} was used for another job ({existing.job_id})")
        return existing

    def _check_limits(self, renter: str) -> None:
        open_jobs = self.ctx.book.open_jobs(renter)
        if open_jobs >= self.cfg.max_open_jobs_per_renter:
            raise ResourceExhaustedError(f"you have {open_jobs} open jobs, the most this king allows one renter "
                                         "(king.max_open_jobs_per_renter); wait for some to end or cancel some")
        if self.ctx.scheduler.queued() >= self.cfg.max_queued_jobs:
            raise ResourceExhaustedError("the king's queue is full (king.max_queued_jobs); try again later")

    def _check_wait(self, sub: Submission) -> float:
        """The job's wait for a provider: the renter's (at most ``king.max_wait_s``), else the king's default."""
        w = sub.max_wait_s
        if w < 0 or w > self.cfg.max_wait_s:
            raise InvalidArgumentError(f"max wait {fmt_duration(w) if w > 0 else w} is outside 0..{fmt_duration(self.cfg.max_wait_s)} "
                                       "(this king's king.max_wait_s; 0: its default)")
        return w or self.cfg.default_max_wait_s

    def _check_permit_fields(self, sub: Submission) -> None:
        """A permit GPUTOKEN would refuse is refused here (its signature is checked once the nonce is read)."""
        p = sub.permit
        if p is None:
            return
        if p.v not in (27, 28) or not 0 < p.value < 2**256:
            raise InvalidArgumentError("the escrow permit needs v 27 or 28 and a value of 1 to 2^256-1 wei")
        if p.deadline <= int(self.ctx.clock.time()) + 60:
            raise InvalidArgumentError(f"the escrow permit expires too soon (deadline {p.deadline})")

    def _check_payload(self, sub: Submission) -> None:
        if len(sub.ciphertext) > self.cfg.max_payload_bytes:
            raise ResourceExhaustedError(f"the encrypted payload is {fmt_bytes(len(sub.ciphertext))}, over the "
                                         f"{fmt_bytes(self.cfg.max_payload_bytes)} limit: trim the workdir "
                                         "(or list what to leave out in .blendrignore)")
        if not sub.ciphertext:
            raise InvalidArgumentError("the payload is empty")

    def _check_intents(self, renter: str, spec: Spec, spec_hash: bytes, sub: Submission,
                       root: bytes) -> list[IntentRecord]:
        """The signed intents, each checked as GPURental will: the renter's signature over these terms, the
        candidates' root (the providers the payload key is wrapped for) and this king as the scheduler."""
        n = len(sub.intents)
        if not 1 <= n <= self.cfg.max_intents:
            raise InvalidArgumentError(f"send 1 to {self.cfg.max_intents} signed intents (got {n})")
        now = int(self.ctx.clock.time())
        chain = self.ctx.chain
        seen: set[int] = set()
        out = []
        for i, it in enumerate(sub.intents, 1):
            if it.nonce in seen:
                raise InvalidArgumentError(f"intent {i} repeats a nonce")
            seen.add(it.nonce)
            if it.deadline <= now + 60:
                raise InvalidArgumentError(f"intent {i} expires too soon (deadline {it.deadline})")
            if it.deadline > now + self.cfg.max_intent_deadline_s:
                raise InvalidArgumentError(f"intent {i}'s deadline is more than "
                                           f"{self.cfg.max_intent_deadline_s // 86400} days away")
            record = IntentRecord(it.nonce, it.deadline, it.signature)
            intent = rental_intent(renter, spec, spec_hash, it.nonce, it.deadline, root, chain.scheduler)
            if sub.voucher_id:
                signer = voucher_intent_signer(intent, sub.voucher_id, it.signature, chain.chain_id,
                                               chain.rental_address)
            else:
                signer = intent_signer(intent, it.signature, chain.chain_id, chain.rental_address)
            if signer != renter:
                raise InvalidArgumentError(f"intent {i} is not signed by the renter {renter} for this GPURental, "
                                           f"bound to this king's scheduler address {chain.scheduler} and to the "
                                           "providers the payload key is wrapped for")
            out.append(record)
        return out

    async def _check_vouchers(self, renter: str, spec: Spec, voucher_id: int) -> None:
        """A job paid with vouchers: a known class of the spec's GPU model (a voucher is a GPU-hour of its model)
        priced at the spec's max price (so no placement pays a provider less than its price), whole GPU-hours, and
        enough of the renter's vouchers for one rental."""
        chain = self.ctx.chain
        if not 0 < voucher_id < 2**64:
            raise InvalidArgumentError(f"voucher class {voucher_id} is out of range")
        try:
            price, model, held = await asyncio.gather(asyncio.to_thread(chain.voucher_price, voucher_id),
                                                      asyncio.to_thread(chain.voucher_model, voucher_id),
                                                      asyncio.to_thread(chain.voucher_balance, renter, voucher_id))
        except BlendrError as exc:
            log.warning("reading the renter's vouchers failed", error=str(exc)[:200])
            raise UnavailableError("the king cannot read Ethereum right now; try again in a moment") from None
        if price == 0:
            raise InvalidArgumentError(f"voucher class {voucher_id} does not exist (see `blendr vouchers ls`)")
        if spec.gpu_model != model:
            raise InvalidArgumentError(f"vouchers of class {voucher_id} are GPU-hours of {model}: they pay only a job "
                                       f"for that GPU model (--gpu-model {model}), not "
                                       f"{spec.gpu_model or 'any model'}")
        if spec.max_price_per_gpu_hour != price:
            raise InvalidArgumentError(f"a job paid with vouchers of class {voucher_id} has their price as its max "
                                       f"price: {fmt_tokens(price, 18)}/h, not {fmt_tokens(spec.max_price_per_gpu_hour, 18)}/h")
        gpu_seconds = spec.gpus * spec.duration_s
        if gpu_seconds % 3600:
            raise InvalidArgumentError(f"vouchers are whole GPU-hours: {spec.gpus} GPU(s) for "
                                       f"{fmt_duration(spec.duration_s)} is not")
        if held < gpu_seconds // 3600:
            raise FailedPreconditionError(f"you hold {held} GPU-hours of voucher class {voucher_id}, fewer than the "
                                          f"{gpu_seconds // 3600} this job needs")

    def _check_nonces_unused(self, renter: str, intents: list[IntentRecord]) -> None:
        for i, it in enumerate(intents, 1):
            prior = self.ctx.book.nonce_owner(renter, it.nonce)
            if prior is not None:
                raise FailedPreconditionError(f"intent {i} was already used (replayed) by job {prior}")

    def _check_keys(self, sub: Submission) -> dict[str, bytes]:
        if not sub.keys:
            raise InvalidArgumentError("the payload key is wrapped for no provider: get a quote and wrap it for "
                                       "its candidates")
        if len(sub.keys) > self.cfg.candidates:
            raise InvalidArgumentError(f"the payload key is wrapped for {len(sub.keys)} providers; a job runs on at "
                                       f"most {self.cfg.candidates} candidates")
        keys: dict[str, bytes] = {}
        for provider, key in sub.keys.items():
            if not key or len(key) > self.cfg.max_sealed_key_bytes:
                raise InvalidArgumentError(f"the wrapped key for {provider[:42]} is {len(key)} bytes (1 to "
                                           f"{self.cfg.max_sealed_key_bytes})")
            keys[_address(provider, "wrapped key")] = key
        return keys

    async def _read_chain(self, renter: str, intents: list[IntentRecord]) -> tuple[int, int, int, list[int]]:
        """The renter's balance, allowance to GPURental, permit nonce, and which intents (1-based) are used."""
        chain = self.ctx.chain

        def read() -> tuple[int, int, int, list[int]]:
            return (chain.balance(renter), chain.allowance(renter), chain.permit_nonce(renter),
                    [i for i, it in enumerate(intents, 1) if chain.nonce_used(renter, it.nonce)])

        try:
            return await asyncio.to_thread(read)
        except BlendrError as exc:
            log.warning("reading the renter's balance failed", error=str(exc)[:200])
            raise UnavailableError("the king cannot read Ethereum right now; try again in a moment") from None
