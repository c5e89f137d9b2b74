"""Protobuf ↔ the king's domain types, for both of its services (RenterGateway, KingControl.QueenSession).

Every conversion of a king message lives here; the servicers call these and the domain never sees a
protobuf message. ``*_from_proto`` raise InvalidArgumentError (bounded text) for a malformed message.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from eth_utils import to_checksum_address

from blendr.chain.governing import Proposal, ProposalState
from blendr.errors import BlendrError, InvalidArgumentError
from blendr.jobspec import Spec
from blendr.telemetry import get_logger
from blendr.units import parse_wei
from king.context import Assignment
from king.core import Wallet
from king.job import EventKind, Job, JobEvent, JobState, PermitDoc, SignedIntent, Submission
from king.lifecycle import QueenEvent
from king.market import Quote
from king.netview import (
    MAX_BATCH_RENTALS,
    MAX_VERDICTS_PER_MESSAGE,
    NetworkInfo,
    PoolView,
    PricePoint,
    ProviderView,
    RawVerdict,
    VerdictRecord,
)
from king.scheduler import ModelOffer, ProviderOffer
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import network_pb2 as npb
from protos.blendr.v1 import renter_pb2 as rpb

log = get_logger("blendr.king.convert")

STATE_TO_PB = {JobState.QUEUED: rpb.JOB_STATE_QUEUED, JobState.SCHEDULED: rpb.JOB_STATE_SCHEDULED,
               JobState.RUNNING: rpb.JOB_STATE_RUNNING, JobState.ENDED: rpb.JOB_STATE_ENDED,
               JobState.SETTLED: rpb.JOB_STATE_SETTLED, JobState.FAILED: rpb.JOB_STATE_FAILED,
               JobState.CANCELLED: rpb.JOB_STATE_CANCELLED}
PB_TO_STATE = {v: k for k, v in STATE_TO_PB.items()}
KIND_TO_PB = {k: getattr(rpb, f"JOB_EVENT_KIND_{k.value.upper()}") for k in EventKind}


# ---------------------------------------------------------------------------------------------- renters
def spec_from_proto(s: rpb.JobSpec) -> Spec:
    return Spec(gpus=int(s.gpus), duration_s=int(s.duration_s),
                max_price_per_gpu_hour=parse_wei(s.max_price_per_gpu_hour or "0", "max_price_per_gpu_hour"),
                gpu_model=s.gpu_model[:64], min_vram_bytes=int(s.min_vram_bytes), min_tflops=float(s.min_tflops))


def spec_to_proto(s: Spec) -> rpb.JobSpec:
    return rpb.JobSpec(gpus=s.gpus, gpu_model=s.gpu_model, min_vram_bytes=s.min_vram_bytes, min_tflops=s.min_tflops,
                       duration_s=s.duration_s, max_price_per_gpu_hour=str(s.max_price_per_gpu_hour))


def submission_from_proto(request: rpb.SubmitJobRequest, max_keys: int) -> Submission:
    """The renter's submission; raises InvalidArgumentError for malformed intents, permit or wrapped keys."""
    intents = []
    for i, it in enumerate(request.intents, 1):
        if len(it.nonce) != 32 or len(it.signature) != 65:
            raise InvalidArgumentError(f"intent {i}: nonce must be 32 bytes and signature 65 bytes")
        intents.append(SignedIntent(int.from_bytes(it.nonce, "big"), int(it.deadline), bytes(it.signature)))
    permit = None
    if request.HasField("permit") and request.permit.value:
        p = request.permit
        if len(p.r) != 32 or len(p.s) != 32:
            raise InvalidArgumentError("permit r and s must be 32 bytes each")
        permit = PermitDoc(parse_wei(p.value, "permit value"), int(p.deadline), int(p.v), bytes(p.r), bytes(p.s))
    if len(request.payload.keys) > max_keys:
        raise InvalidArgumentError(f"the payload key is wrapped for {len(request.payload.keys)} providers; a job runs "
                                   f"on at most {max_keys} candidates")
    keys = {k.provider[:64]: bytes(k.sealed_key) for k in request.payload.keys}
    return Submission(request_id=request.request_id[:80], name=request.name[:200], spec=spec_from_proto(request.spec),
                      spec_hash=bytes(request.spec_hash), intents=tuple(intents), permit=permit,
                      ciphertext=bytes(request.payload.ciphertext), keys=keys, max_wait_s=float(request.max_wait_s),
                      voucher_id=int(request.voucher_id))


def job_to_proto(job: Job, *, reason: str, cost_so_far: int) -> rpb.Job:
    rentals = [rpb.RentalSummary(
        rental_id=bytes.fromhex(r.rental_id), provider=r.provider, queen=r.queen, price_per_gpu_hour=str(r.price),
        escrow=str(r.escrow), state=r.state, verified_seconds=r.verified_seconds, failed_verification=r.failed,
        provider_payment=str(r.provider_payment) if r.closed else "",
        fee=str(r.fee) if r.closed else "", refund=str(r.refund) if r.closed else "",
        created_tx=r.created_tx, settled_tx=r.settled_tx, start=r.start) for r in job.rentals]
    return rpb.Job(job_id=job.job_id, request_id=job.request_id, renter=job.renter, name=job.name,
                   spec=spec_to_proto(job.spec), state=STATE_TO_PB[job.state], reason=reason,
                   submitted_unix=job.submitted, started_unix=job.started, ended_unix=job.ended, progress=job.progress,
                   provider=job.provider, queen=job.queen, rentals=rentals, cost_so_far=str(cost_so_far),
                   last_seq=job.last_seq, exit_code=job.exit_code, output_state=job.output,
                   output_reason=job.output_reason, output_bytes=job.output_bytes,
                   output_expires_unix=job.output_expires)


def event_to_proto(ev: JobEvent, job: rpb.Job) -> rpb.JobEvent:
    return rpb.JobEvent(job_id=ev.job_id, seq=ev.seq, kind=KIND_TO_PB[ev.kind], ts_unix=ev.ts, message=ev.message,
                        progress=ev.progress, job=job,
                        state=STATE_TO_PB[JobState(ev.state)] if ev.state else job.state)


def offer_to_proto(o: ProviderOffer, quote: int) -> rpb.Offer:
    return rpb.Offer(gpu_model=o.gpu_model, providers=1, gpus_free=o.gpus, gpus_total=o.gpus,
                     min_ask_per_gpu_hour=str(o.ask_per_gpu_hour), quote_per_gpu_hour=str(quote),
                     best_reputation_bps=o.reputation, vram_bytes=o.vram_bytes, tflops=o.tflops,
                     unsandboxed_providers=0 if o.sandboxed else 1)


def model_offer_to_proto(o: ModelOffer) -> rpb.Offer:
    return rpb.Offer(gpu_model=o.gpu_model, providers=o.providers, gpus_free=o.gpus_free, gpus_total=o.gpus_total,
                     min_ask_per_gpu_hour=str(o.min_ask_per_gpu_hour), quote_per_gpu_hour=str(o.quote_per_gpu_hour),
                     best_reputation_bps=o.best_reputation, unsandboxed_providers=o.unsandboxed)


def quote_to_proto(q: Quote, closest_quotes: list[int], *, intents: int, chain_id: int, rental_contract: str,
                   token_contract: str, max_intent_deadline: int, scheduler: str) -> rpb.Quote:
    return rpb.Quote(
        price_per_gpu_hour=str(q.price), max_escrow=str(q.max_escrow), reason=q.reason,
        candidates=[rpb.Candidate(provider=e.offer.provider, queen=e.offer.queen, public_key=e.public_key,
                                  gpu_model=e.offer.gpu_model, ask_per_gpu_hour=str(e.offer.ask_per_gpu_hour),
                                  reputation_bps=e.offer.reputation) for e in q.candidates],
        closest=[offer_to_proto(o, p) for o, p in zip(q.closest, closest_quotes, strict=True)], intents=intents,
        chain_id=chain_id, rental_contract=rental_contract, token_contract=token_contract,
        max_intent_deadline=max_intent_deadline, scheduler=scheduler)


def wallet_to_proto(w: Wallet, *, chain_id: int, token_name: str, token_contract: str,
                    rental_contract: str, voucher_contract: str = "") -> rpb.Wallet:
    b = w.burns
    return rpb.Wallet(address=w.address, balance=str(w.balance), allowance=str(w.allowance),
                      in_escrow=str(w.in_escrow), permit_nonce=w.permit_nonce, chain_id=chain_id, token_name=token_name,
                      token_contract=token_contract, rental_contract=rental_contract,
                      vouchers=[rpb.VoucherHolding(id=v.id, gpu_model=v.model, price_per_gpu_hour=str(v.price_per_hour),
                                                   hours=v.hours) for v in w.vouchers],
                      fees_burned=str(b.burned) if b else "", fees_burn_pending=str(b.pending) if b else "",
                      fee_burn_bps=b.burn_bps if b else 0, voucher_contract=voucher_contract,
                      rewards=[rpb.RewardHolding(epoch=r.epoch, kind=r.kind.label, amount=str(r.amount),
                                                 publish_tx=r.publish_tx) for r in w.rewards])


# ---------------------------------------------------------------------------------------------- queens
def assignment_to_proto(a: Assignment) -> kpb.KingToQueen:
    return kpb.KingToQueen(assign=kpb.JobAssignment(
        job_id=a.job_id, attempt=a.attempt, provider=a.provider, gpus=a.gpus, rental_id=a.rental_id,
        deadline_unix=a.deadline_unix, ciphertext=a.ciphertext, sealed_key=a.sealed_key, aad=a.aad,
        max_output_bytes=a.max_output_bytes))


def stop_to_proto(job_id: str, attempt: int, reason: str) -> kpb.KingToQueen:
    return kpb.KingToQueen(stop=kpb.JobStop(job_id=job_id, attempt=attempt, reason=reason))


def queen_event_from_proto(e: kpb.QueenJobEvent) -> QueenEvent:
    """A job event relayed by a queen; raises InvalidArgumentError for one the king cannot take."""
    progress = float(e.progress)
    if not math.isfinite(progress):
        raise InvalidArgumentError(f"job event {e.job_id[:40]!r}: progress must be a finite number")
    return QueenEvent(job_id=e.job_id[:64], attempt=int(e.attempt), seq=int(e.seq), kind=e.kind[:32],
                      message=e.message[:4096], progress=min(1.0, max(-1.0, progress)), ts=float(e.ts_unix),
                      exit_code=int(e.exit_code), provider_fault=bool(e.provider_fault) and e.kind == "failed")


@functools.lru_cache(maxsize=65_536)
def _admitted_key(queen: str, provider: str, nonce: bytes, signature: bytes) -> bytes:
    """The key that signed the provider's admission to ``queen`` (b"" if it did not); cached, as every snapshot
    repeats the same admissions."""
    from blendr.identity import recover_admission_key

    try:
        pub = recover_admission_key(queen, provider, nonce, signature)
    except BlendrError:
        return b""
    return pub if len(pub) == 64 else b""


def offer_from_proto(p: kpb.PoolProvider, queen: str) -> tuple[ProviderOffer, bytes, int] | None:
    """A provider from a queen's pool snapshot, with the key that signed its admission to that queen; None for
    one that never admitted itself to that queen (a queen cannot list, move or re-key another queen's provider).

    Raises:
        InvalidArgumentError: a malformed address, ask or figure.
    """
    try:
        ask = parse_wei(p.ask_per_gpu_hour or "0", "ask_per_gpu_hour")
        addr = to_checksum_address(p.address)
    except (BlendrError, ValueError):
        raise InvalidArgumentError(f"malformed provider {p.address[:80]!r} in a pool snapshot") from None
    tflops, uptime = float(p.tflops), float(p.uptime)
    if not (math.isfinite(tflops) and tflops >= 0 and 0.0 <= uptime <= 1.0 and 0 <= p.gpus <= 4096
            and 0 <= p.busy_gpus <= p.gpus and p.vram_bytes >= 0):
        raise InvalidArgumentError(f"provider {addr} in a pool snapshot: GPUs, busy GPUs, VRAM, TFLOP/s or uptime "
                                   "out of range")
    pub = _admitted_key(queen, addr, bytes(p.admission_nonce), bytes(p.admission_signature))
    if not pub or (p.public_key and bytes(p.public_key) != pub):
        log.warning("a pool snapshot lists a provider without its admission to this queen", provider=addr,
                    queen=queen)
        return None
    offer = ProviderOffer(addr, to_checksum_address(queen), p.gpu_model[:64], int(p.gpus), int(p.vram_bytes),
                          tflops, ask, 5000, uptime, bool(p.alive), sandboxed=p.sandbox in ("bubblewrap", "gvisor"),
                          sandbox=p.sandbox if p.sandbox in ("bubblewrap", "gvisor") else "none")
    return offer, pub, int(p.busy_gpus)


def proposal_to_proto(p: Proposal) -> rpb.Proposal:
    """A governance proposal as the gateway answers it (votes in wei, decimal strings)."""
    return rpb.Proposal(
        proposal_id=str(p.proposal_id), proposer=p.proposer, description=p.description,
        state=rpb.ProposalState.Value(f"PROPOSAL_STATE_{p.state.name}"),  # type: ignore[arg-type]
        votes_for=str(p.votes_for),
        votes_against=str(p.votes_against), votes_abstain=str(p.votes_abstain), quorum=str(p.quorum),
        snapshot_unix=p.snapshot, deadline_unix=p.deadline, eta_unix=p.eta,
        calls=[rpb.ProposalCall(target=c.target, value=str(c.value), calldata=c.calldata, text=c.text) for c in p.calls],
        created_block=p.created_block)


def proposal_states_from_proto(states: Sequence[int]) -> set[ProposalState]:
    """The request's states (unknown values and UNSPECIFIED ignored)."""
    names = {v: rpb.ProposalState.Name(v)[len("PROPOSAL_STATE_"):] for v in rpb.ProposalState.values()}
    return {ProposalState[names[s]] for s in states if s in names and names[s] in ProposalState.__members__}


# ---------------------------------------------------------------------------------------------- network view

def verdicts_from_proto(msg: kpb.ChallengeVerdicts) -> list[RawVerdict]:
    """A queen's verdicts as sent (checked by king.netview).

    Raises:
        InvalidArgumentError: more than MAX_VERDICTS_PER_MESSAGE of them (none is taken).
    """
    if len(msg.verdicts) > MAX_VERDICTS_PER_MESSAGE:
        raise InvalidArgumentError(f"{len(msg.verdicts)} verdicts in one message (at most {MAX_VERDICTS_PER_MESSAGE})")
    return [RawVerdict(v.challenge_id, v.provider, v.verdict, v.reason, float(v.issued_unix), float(v.decided_unix),
                       bytes(v.rental_id)) for v in msg.verdicts]


def batched_from_proto(msg: kpb.BatchLanded) -> list[tuple[bytes, list[str]]]:
    """(rental id, challenge ids) of a landed batch as sent (checked by king.netview).

    Raises:
        InvalidArgumentError: more than MAX_BATCH_RENTALS rentals.
    """
    if len(msg.rentals) > MAX_BATCH_RENTALS:
        raise InvalidArgumentError(f"a batch report names {len(msg.rentals)} rentals (at most {MAX_BATCH_RENTALS})")
    return [(bytes(r.rental_id), list(r.challenge_ids)) for r in msg.rentals]


def network_info_to_proto(i: NetworkInfo) -> npb.NetworkInfo:
    return npb.NetworkInfo(
        network=i.network, king_address=i.king_address, eth_chain_id=i.eth_chain_id, etc_chain_id=i.etc_chain_id,
        token_contract=i.token_contract, rental_contract=i.rental_contract,
        governance_contract=i.governance_contract, voucher_contract=i.voucher_contract,
        work_verification_contract=i.work_verification_contract, token_name=i.token_name,
        token_symbol=i.token_symbol, max_payload_bytes=i.max_payload_bytes,
        eth_explorer_tx_url=i.eth_explorer_tx_url, etc_explorer_tx_url=i.etc_explorer_tx_url, leader=i.leader)


def pool_to_proto(p: PoolView) -> npb.Pool:
    return npb.Pool(queen=p.queen, endpoint=p.endpoint, providers=p.providers, providers_alive=p.providers_alive,
                    gpus_total=p.gpus_total, gpus_free=p.gpus_free, connected_since_unix=p.connected_since_unix,
                    last_snapshot_unix=p.last_snapshot_unix)


def provider_view_to_proto(v: ProviderView) -> npb.ProviderView:
    o = v.offer
    return npb.ProviderView(
        address=o.provider, queen=o.queen, gpu_model=o.gpu_model, gpus=o.gpus, busy_gpus=v.busy_gpus,
        vram_bytes=o.vram_bytes, tflops=o.tflops, ask_per_gpu_hour=str(o.ask_per_gpu_hour), uptime=o.uptime,
        alive=o.alive, sandbox=o.sandbox or ("" if o.sandboxed else "none"), reputation_bps=v.reputation_bps,
        challenges_passed=v.passed, challenges_failed=v.failed, state=v.state.value,
        pass_rate=[npb.PassRatePoint(start_unix=p.start_unix, passed=p.passed, failed=p.failed) for p in v.pass_rate])


def verdict_to_proto(r: VerdictRecord) -> npb.ChallengeVerdict:
    return npb.ChallengeVerdict(
        challenge_id=r.challenge_id, provider=r.provider, queen=r.queen, verdict=r.verdict.value, reason=r.reason,
        issued_unix=r.issued_unix, decided_unix=r.decided_unix, rental_id=r.rental_id, etc_batch_id=r.etc_batch_id,
        etc_tx=r.etc_tx)


def price_point_to_proto(p: PricePoint) -> npb.PricePoint:
    return npb.PricePoint(ts_unix=p.ts_unix, gpu_model=p.gpu_model, quote_per_gpu_hour=str(p.quote_per_gpu_hour),
                          min_ask_per_gpu_hour=str(p.min_ask_per_gpu_hour), gpus_free=p.gpus_free,
                          gpus_total=p.gpus_total)
