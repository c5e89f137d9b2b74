"""``RenterGateway``: the renter's API on the king. Converts, authenticates, delegates to the job manager.

Every call but sign-in and ``ListOffers`` needs ``authorization: Bearer <session token>`` in its metadata.
Domain errors map to precise status codes (blendr.rpc.status); nothing else reaches a client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from eth_utils import to_checksum_address

from blendr.errors import AuthenticationError, BlendrError, InvalidArgumentError
from blendr.jobspec import Spec, parse_wei
from blendr.rpc.status import status_for
from blendr.telemetry import get_logger
from king.auth import Sessions
from king.jobs import EVENT_KINDS, JobManager, Quote
from king.rentals import PermitDoc
from protos.blendr.v1 import renter_pb2 as rpb
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc

log = get_logger("blendr.king.gateway")

STATE_TO_PB = {"queued": rpb.JOB_STATE_QUEUED, "scheduled": rpb.JOB_STATE_SCHEDULED,
               "running": rpb.JOB_STATE_RUNNING, "ended": rpb.JOB_STATE_ENDED, "settled": rpb.JOB_STATE_SETTLED,
               "failed": rpb.JOB_STATE_FAILED, "cancelled": rpb.JOB_STATE_CANCELLED}
PB_TO_STATE = {v: k for k, v in STATE_TO_PB.items()}
WATCH_PAGE = 500  # events read from the store at a time for one watcher
KIND_TO_PB = {k: getattr(rpb, f"JOB_EVENT_KIND_{k.upper()}") for k in EVENT_KINDS}


def spec_from_proto(s: rpb.JobSpec) -> Spec:
    return Spec(gpus=int(s.gpus), duration_s=int(s.duration_s),
                max_price_per_gpu_hour=parse_wei(s.max_price_per_gpu_hour or "0", "max_price_per_gpu_hour"),
                gpu_model=s.gpu_model, min_vram_bytes=int(s.min_vram_bytes), min_tflops=float(s.min_tflops))


def spec_to_proto(d: dict[str, Any]) -> rpb.JobSpec:
    return rpb.JobSpec(gpus=d["gpus"], gpu_model=d["gpu_model"], min_vram_bytes=d["min_vram_bytes"],
                       min_tflops=d["min_tflops"], duration_s=d["duration_s"],
                       max_price_per_gpu_hour=str(d["max_price_per_gpu_hour"]))


def job_to_proto(jobs: JobManager, d: dict[str, Any]) -> rpb.Job:
    rentals = [rpb.RentalSummary(
        rental_id=bytes.fromhex(r["rental_id"]), provider=r["provider"], queen=r["queen"],
        price_per_gpu_hour=r["price"], escrow=r["escrow"], state=r.get("state", ""),
        verified_seconds=r.get("verified_seconds", 0), failed_verification=r.get("failed", False),
        provider_payment=r.get("provider_payment", ""), fee=r.get("fee", ""), refund=r.get("refund", ""),
        created_tx=r.get("created_tx", ""), settled_tx=r.get("settled_tx", ""), start=r.get("start", 0))
        for r in d["rentals"]]
    return rpb.Job(job_id=d["job_id"], request_id=d["request_id"], renter=d["renter"], name=d["name"],
                   spec=spec_to_proto(d["spec"]), state=STATE_TO_PB[d["state"]], reason=d["reason"],
                   submitted_unix=d["submitted"], started_unix=d["started"], ended_unix=d["ended"],
                   progress=d["progress"], provider=d.get("provider", ""), queen=d.get("queen", ""), rentals=rentals,
                   cost_so_far=str(jobs.cost_so_far(d)), last_seq=d["last_seq"], exit_code=d["exit_code"])


class RenterGatewayServicer(rpb_grpc.RenterGatewayServicer):
    def __init__(self, jobs: JobManager, sessions: Sessions, token_name: str = "BlendrChain GPU Token") -> None:
        self.jobs = jobs
        self.sessions = sessions
        self.token_name = token_name

    def _renter(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                v = value if isinstance(value, str) else value.decode()
                if v.startswith("Bearer "):
                    return self.sessions.verify(v[len("Bearer "):])
        raise AuthenticationError("sign in first: no session token in the call (authorization: Bearer ...)")

    async def _abort(self, context: grpc.aio.ServicerContext[Any, Any], exc: BlendrError) -> None:
        await context.abort(status_for(exc), str(exc))

    async def GetSignInChallenge(self, request: rpb.SignInChallengeRequest,
                                 context: grpc.aio.ServicerContext[Any, Any]) -> rpb.SignInChallenge:
        try:
            c = self.sessions.challenge(request.address)
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return rpb.SignInChallenge(challenge_id=c.challenge_id, message=c.message, expires_unix=c.expires)

    async def SignIn(self, request: rpb.SignInRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Session:
        try:
            token, address, expires = self.sessions.sign_in(request.challenge_id, request.address,
                                                            bytes(request.signature))
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return rpb.Session(token=token, address=address, expires_unix=expires)

    def _quote_to_proto(self, q: Quote) -> rpb.Quote:
        from king.scheduler import ProviderOffer

        def offer(o: ProviderOffer) -> rpb.Offer:
            return rpb.Offer(gpu_model=o.gpu_model, providers=1, gpus_free=o.gpus, gpus_total=o.gpus,
                             min_ask_per_gpu_hour=str(o.ask_per_gpu_hour),
                             quote_per_gpu_hour=str(self.jobs.scheduler.quote(o.gpu_model)),
                             best_reputation_bps=o.reputation, vram_bytes=o.vram_bytes, tflops=o.tflops)

        ch = self.jobs.chain
        return rpb.Quote(
            price_per_gpu_hour=str(q.price), max_escrow=str(q.max_escrow), reason=q.reason,
            candidates=[rpb.Candidate(provider=e.offer.provider, queen=e.offer.queen, public_key=e.public_key,
                                      gpu_model=e.offer.gpu_model, ask_per_gpu_hour=str(e.offer.ask_per_gpu_hour),
                                      reputation_bps=e.offer.reputation) for e in q.candidates],
            closest=[offer(o) for o in q.closest], intents=self.jobs.cfg.max_intents, chain_id=ch.chain_id,
            rental_contract=ch.rental_address, token_contract=ch.token_address,
            max_intent_deadline=int(self.jobs.clock.time()) + self.jobs.cfg.max_intent_deadline_s)

    async def GetQuote(self, request: rpb.QuoteRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Quote:
        try:
            self._renter(context)
            q = self.jobs.quote(spec_from_proto(request.spec))
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return self._quote_to_proto(q)

    async def SubmitJob(self, request: rpb.SubmitJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Job:
        try:
            renter = self._renter(context)
            intents = []
            for i, it in enumerate(request.intents, 1):
                if len(it.nonce) != 32 or len(it.signature) != 65:
                    raise InvalidArgumentError(f"intent {i}: nonce must be 32 bytes and signature 65 bytes")
                intents.append((int.from_bytes(it.nonce, "big"), int(it.deadline), bytes(it.signature)))
            permit = None
            if request.HasField("permit") and request.permit.value:
                p = request.permit
                if len(p.r) != 32 or len(p.s) != 32:
                    raise InvalidArgumentError("permit r and s must be 32 bytes each")
                permit = PermitDoc(parse_wei(p.value, "permit value"), int(p.deadline), int(p.v), bytes(p.r),
                                   bytes(p.s))
            keys = {}
            for k in request.payload.keys:
                try:
                    keys[to_checksum_address(k.provider)] = bytes(k.sealed_key)
                except ValueError:
                    raise InvalidArgumentError(f"wrapped key for {k.provider!r}: not an address") from None
            req = {"request_id": request.request_id, "name": request.name[:200], "spec": spec_from_proto(request.spec),
                   "spec_hash": bytes(request.spec_hash), "intents": intents, "permit": permit,
                   "ciphertext": bytes(request.payload.ciphertext), "keys": keys}
            d = await self.jobs.submit(renter, req)
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return job_to_proto(self.jobs, d)

    async def GetJob(self, request: rpb.GetJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Job:
        try:
            d = self.jobs.get(self._renter(context), request.job_id)
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return job_to_proto(self.jobs, d)

    async def WatchJob(self, request: rpb.WatchJobRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[rpb.JobEvent]:
        try:
            d = self.jobs.get(self._renter(context), request.job_id)
        except BlendrError as exc:
            await self._abort(context, exc)
            return
        q = self.jobs.subscribe(d["job_id"])
        try:
            seq = request.after_seq
            while True:
                d = self.jobs.store.get("jobs", d["job_id"]) or d
                page = self.jobs.events(d["job_id"], seq, limit=WATCH_PAGE)
                job = job_to_proto(self.jobs, d)
                for ev in page:
                    seq = ev["seq"]
                    yield rpb.JobEvent(job_id=ev["job_id"], seq=ev["seq"], kind=KIND_TO_PB[ev["kind"]],
                                       ts_unix=ev["ts"], message=ev["message"], progress=ev["progress"], job=job)
                if len(page) >= WATCH_PAGE:
                    continue  # more stored already: no need to wait
                if self.jobs.finished(d) and seq >= d["last_seq"]:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(q.get(), 15.0)
        finally:
            self.jobs.unsubscribe(d["job_id"], q)

    async def CancelJob(self, request: rpb.CancelJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Job:
        try:
            d = await self.jobs.cancel(self._renter(context), request.job_id, request.reason[:200])
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return job_to_proto(self.jobs, d)

    async def ListJobs(self, request: rpb.ListJobsRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> rpb.ListJobsResponse:
        try:
            renter = self._renter(context)
            states = {PB_TO_STATE[s] for s in request.states if s in PB_TO_STATE}
            docs = self.jobs.list_jobs(renter, states, min(int(request.limit) or 50, 500))
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        return rpb.ListJobsResponse(jobs=[job_to_proto(self.jobs, d) for d in docs])

    async def ListOffers(self, request: rpb.ListOffersRequest,
                         context: grpc.aio.ServicerContext[Any, Any]) -> rpb.ListOffersResponse:
        offers = self.jobs.scheduler.offers()
        return rpb.ListOffersResponse(offers=[rpb.Offer(
            gpu_model=o.gpu_model, providers=o.providers, gpus_free=o.gpus_free, gpus_total=o.gpus_total,
            min_ask_per_gpu_hour=str(o.min_ask_per_gpu_hour), quote_per_gpu_hour=str(o.quote_per_gpu_hour),
            best_reputation_bps=o.best_reputation) for o in offers])

    async def GetWallet(self, request: rpb.GetWalletRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Wallet:
        try:
            renter = self._renter(context)
        except BlendrError as exc:
            await self._abort(context, exc)
            raise AssertionError("unreachable") from None
        ch = self.jobs.chain
        try:
            balance, allowance, nonce = await asyncio.gather(
                asyncio.to_thread(ch.balance, renter), asyncio.to_thread(ch.allowance, renter),
                asyncio.to_thread(ch.permit_nonce, renter))
        except Exception as exc:  # the RPC's error text may carry its URL (and an API key): log it, do not send it
            log.warning("reading a wallet failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the king cannot read Ethereum right now; try again")
            raise AssertionError("unreachable") from None
        return rpb.Wallet(address=renter, balance=str(balance), allowance=str(allowance),
                          in_escrow=str(self.jobs.in_escrow(renter)), permit_nonce=nonce, chain_id=ch.chain_id,
                          token_name=self.token_name, token_contract=ch.token_address,
                          rental_contract=ch.rental_address)
