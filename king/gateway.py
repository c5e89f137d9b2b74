"""``RenterGateway``: the renter's API on the king. Each method authenticates, converts, calls one
:class:`king.core.KingCore` method and converts the answer.

Every call but sign-in, ``ListOffers``, ``ListProposals`` and ``GetProposal`` needs ``authorization: Bearer <session token>`` in its metadata.
Errors are ``BlendrError``s raised by the core; the server's interceptor (blendr.rpc.server) maps them to
precise status codes with bounded messages, so no method catches anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from blendr.aio import within
from blendr.clock import Clock
from blendr.errors import AuthenticationError, FailedPreconditionError, NotFoundError, ResourceExhaustedError
from blendr.hashing import checksum_address
from blendr.store import Store
from king import convert
from king.auth import Sessions
from king.core import KingCore
from king.governance import ProposalBook
from king.job import Job, JobEvent, check_job_id, shown
from king.jobbook import NS_EVENTS, NS_JOBS, NS_TERMS
from protos.blendr.v1 import renter_pb2 as rpb
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc

WATCH_PAGE = 500  # events read from the store at a time for one watcher
WATCH_IDLE_S = 15.0  # a watcher re-reads the job at least this often


class RenterGatewayServicer(rpb_grpc.RenterGatewayServicer):
    def __init__(self, core: KingCore, sessions: Sessions, proposals: ProposalBook | None = None) -> None:
        self.core = core
        self.sessions = sessions
        self.proposals = proposals

    def _book(self) -> ProposalBook:
        if self.proposals is None:
            raise FailedPreconditionError("this king does not follow governance")
        return self.proposals

    def _renter(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                v = value if isinstance(value, str) else value.decode(errors="replace")
                if v.startswith("Bearer "):
                    return self.sessions.verify(v[len("Bearer "):])
        raise AuthenticationError("sign in first: no session token in the call (authorization: Bearer ...)")

    def _job(self, job: Job, *, live_reason: bool = False) -> rpb.Job:
        """The job as a renter sees it; ``live_reason``: a queued job's reason as the scheduler gives it now
        (reads), else the stored one (watched jobs' reasons are refreshed in the store every few seconds)."""
        reason = self.core.reason(job) if live_reason else job.reason
        return convert.job_to_proto(job, reason=reason, cost_so_far=self.core.cost_so_far(job))

    async def GetSignInChallenge(self, request: rpb.SignInChallengeRequest,
                                 context: grpc.aio.ServicerContext[Any, Any]) -> rpb.SignInChallenge:
        c = self.sessions.challenge(request.address)
        return rpb.SignInChallenge(challenge_id=c.challenge_id, message=c.message, expires_unix=c.expires)

    async def SignIn(self, request: rpb.SignInRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Session:
        token, address, expires = self.sessions.sign_in(request.challenge_id, request.address, bytes(request.signature))
        return rpb.Session(token=token, address=address, expires_unix=expires)

    async def GetQuote(self, request: rpb.QuoteRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Quote:
        self._renter(context)
        core = self.core
        q = core.quote(convert.spec_from_proto(request.spec))
        ch = core.chain
        return convert.quote_to_proto(
            q, [int(core.scheduler.quote(o.gpu_model)) for o in q.closest], intents=core.cfg.max_intents,
            chain_id=ch.chain_id, rental_contract=ch.rental_address, token_contract=ch.token_address,
            max_intent_deadline=int(core.clock.time()) + core.cfg.max_intent_deadline_s, scheduler=ch.scheduler)

    async def SubmitJob(self, request: rpb.SubmitJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Job:
        renter = self._renter(context)
        job = await self.core.submit(renter, convert.submission_from_proto(request, self.core.cfg.candidates))
        return self._job(job)

    async def GetJob(self, request: rpb.GetJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Job:
        return self._job(self.core.get(self._renter(context), request.job_id), live_reason=True)

    async def WatchJob(self, request: rpb.WatchJobRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[rpb.JobEvent]:
        core = self.core
        renter = self._renter(context)
        job = core.get(renter, request.job_id)
        q = core.book.subscribe(job.job_id, job.renter, core.cfg.max_watchers_per_renter)
        try:
            seq = int(request.after_seq)
            while True:
                job = core.book.get(job.job_id) or job
                page = core.events(job.job_id, seq, limit=WATCH_PAGE)
                pb = self._job(job)
                for ev in page:
                    seq = ev.seq
                    yield convert.event_to_proto(ev, pb)
                if len(page) >= WATCH_PAGE:
                    continue  # more stored already: no need to wait
                if job.finished() and seq >= job.last_seq:
                    return
                with contextlib.suppress(TimeoutError):
                    await within(q.get(), WATCH_IDLE_S)
        finally:
            core.book.unsubscribe(job.job_id, job.renter, q)

    async def CancelJob(self, request: rpb.CancelJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Job:
        return self._job(await self.core.cancel(self._renter(context), request.job_id, request.reason))

    async def ListJobs(self, request: rpb.ListJobsRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> rpb.ListJobsResponse:
        renter = self._renter(context)
        states = {convert.PB_TO_STATE[s] for s in request.states if s in convert.PB_TO_STATE}
        jobs = self.core.list_jobs(renter, states, min(int(request.limit) or 50, 500))
        return rpb.ListJobsResponse(jobs=[self._job(j, live_reason=True) for j in jobs])

    async def ListOffers(self, request: rpb.ListOffersRequest,
                         context: grpc.aio.ServicerContext[Any, Any]) -> rpb.ListOffersResponse:
        return rpb.ListOffersResponse(offers=[convert.model_offer_to_proto(o) for o in self.core.offers()])

    async def GetJobOutput(self, request: rpb.GetJobOutputRequest,
                           context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[rpb.JobOutputChunk]:
        job = self.core.get(self._renter(context), request.job_id)
        if self.core.outputs is None:
            raise FailedPreconditionError("this king keeps no job outputs")
        attempt, size, chunks = self.core.outputs.fetch(job)
        first = True
        # the next chunk is read from disk in a worker thread while this one is sent
        reading = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
        try:
            while (data := await reading) is not None:
                reading = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
                yield rpb.JobOutputChunk(attempt=attempt if first else 0, total_bytes=size if first else 0,
                                         data=data)
                first = False
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(reading)  # the reader thread is done with the file before it is closed
        if first:  # an empty file cannot be (a sealed output has a header), but say so rather than send nothing
            yield rpb.JobOutputChunk(attempt=attempt, total_bytes=size)

    async def GetWallet(self, request: rpb.GetWalletRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Wallet:
        w = await self.core.wallet(self._renter(context))
        ch = self.core.chain
        return convert.wallet_to_proto(w, chain_id=ch.chain_id, token_name=ch.token_name,
                                       token_contract=ch.token_address, rental_contract=ch.rental_address,
                                       voucher_contract=self.core.vouchers.address if self.core.vouchers else "")

    async def ListProposals(self, request: rpb.ListProposalsRequest,
                            context: grpc.aio.ServicerContext[Any, Any]) -> rpb.ListProposalsResponse:
        book = self._book()
        found = book.list(convert.proposal_states_from_proto(request.states), int(request.limit))
        return rpb.ListProposalsResponse(proposals=[convert.proposal_to_proto(p) for p in found],
                                         as_of_block=book.as_of_block)

    async def GetProposal(self, request: rpb.GetProposalRequest,
                          context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Proposal:
        return convert.proposal_to_proto(self._book().get(request.proposal_id))


FOLLOWER_POLL_S = 0.5  # how often a follower's watcher reads the shared store for new events


class StoreGateway(RenterGatewayServicer):
    """What a king that does not lead answers itself (king.ha): sign-ins, proposals, and renters' jobs and their
    event streams, read from the store the kings share. Every other call is passed to the leader.

    A follower's watch stream reads the store every :data:`FOLLOWER_POLL_S` seconds; events are numbered, so a
    renter whose stream moves from one king to another resumes after the last event it saw and misses none.
    """

    def __init__(self, store: Store, clock: Clock, sessions: Sessions, proposals: ProposalBook | None = None, *,
                 max_watchers_per_renter: int = 64) -> None:
        super().__init__(None, sessions, proposals)  # type: ignore[arg-type]  # no core: its calls are overridden
        self.store = store
        self.clock = clock
        self.max_watchers = max_watchers_per_renter
        self._watching: dict[str, int] = {}

    def _read(self, renter: str, job_id: str) -> Job:
        d = t = None
        if check_job_id(job_id):
            d, t = self.store.get(NS_JOBS, job_id), self.store.get(NS_TERMS, job_id)
        job = Job.from_doc({**t, **d}) if d is not None and t is not None else None
        if job is None or job.renter != checksum_address(renter):
            raise NotFoundError(f"no job {shown(job_id)} of yours")
        return job

    def _job(self, job: Job, *, live_reason: bool = False) -> rpb.Job:
        return convert.job_to_proto(job, reason=job.reason, cost_so_far=job.cost_so_far(self.clock.time()))

    async def GetJob(self, request: rpb.GetJobRequest, context: grpc.aio.ServicerContext[Any, Any]) -> rpb.Job:
        return self._job(await asyncio.to_thread(self._read, self._renter(context), request.job_id))

    async def WatchJob(self, request: rpb.WatchJobRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[rpb.JobEvent]:
        renter = self._renter(context)
        job = await asyncio.to_thread(self._read, renter, request.job_id)
        if self._watching.get(job.renter, 0) >= self.max_watchers:
            raise ResourceExhaustedError(f"you are watching {self.max_watchers} job streams already (the most this "
                                         "king allows one renter): close some")
        self._watching[job.renter] = self._watching.get(job.renter, 0) + 1
        try:
            seq = int(request.after_seq)
            while True:
                job = await asyncio.to_thread(self._read, renter, job.job_id)
                page = [JobEvent.from_doc(e) for _, e in await asyncio.to_thread(
                    self.store.scan, NS_EVENTS, f"{job.job_id}/", start_after=f"{job.job_id}/{seq:012d}",
                    limit=WATCH_PAGE)]
                pb = self._job(job)
                for ev in page:
                    seq = ev.seq
                    yield convert.event_to_proto(ev, pb)
                if len(page) >= WATCH_PAGE:
                    continue
                if job.finished() and seq >= job.last_seq:
                    return
                await asyncio.sleep(FOLLOWER_POLL_S)
        finally:
            left = self._watching.get(job.renter, 0) - 1
            if left > 0:
                self._watching[job.renter] = left
            else:
                self._watching.pop(job.renter, None)
