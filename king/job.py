"""A renter's job on the king: the typed record, its state machine, its events, and how it is stored.

States (``JobState``): ``queued`` (waiting for a provider; ``reason`` says why) → ``scheduled`` (a provider is
chosen; the rental is created on chain with the renter's next unused intent, then the job is assigned to the
provider's queen) → ``running`` → ``ended`` (finished, or its rental ended) → ``settled`` (every rental of the
job is settled on chain). A job that cannot run ends ``failed``; one the renter cancels ends ``cancelled``;
either becomes ``settled`` once the rentals it used are settled. A live job that loses its provider goes back
to ``queued`` (``rescheduled``).

Guarantees:

* Every change of state goes through :func:`Job.move_to`, checked against :data:`TRANSITIONS` (one table);
  an illegal transition raises :class:`IllegalTransitionError` and changes nothing.
* A job round-trips through its stored document (:meth:`Job.to_doc` / :meth:`Job.from_doc`) unchanged; the
  document is plain JSON (amounts as decimal strings, bytes as hex).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NewType

from blendr.chain.contracts import RentalIntent, candidates_tree
from blendr.errors import BlendrError
from blendr.hashing import checksum_address
from blendr.jobspec import ZERO_ADDRESS, Spec

JobId = NewType("JobId", str)
Address = NewType("Address", str)


class IllegalTransitionError(BlendrError):
    """Raised when code asks a job to move between two states the state machine does not connect (a bug)."""


class JobState(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    ENDED = "ended"
    SETTLED = "settled"
    FAILED = "failed"
    CANCELLED = "cancelled"


Q, SCH, RUN, END, SET, FAIL, CAN = (JobState.QUEUED, JobState.SCHEDULED, JobState.RUNNING, JobState.ENDED,
                                    JobState.SETTLED, JobState.FAILED, JobState.CANCELLED)

#: Every allowed change of state, in one table. Staying in a state is not a transition.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    Q: frozenset({SCH, CAN, FAIL}),  # placed; cancelled by the renter; no intent left
    SCH: frozenset({RUN, Q, END, CAN, FAIL}),  # started; moved; stopped before running; cancelled; renter-side revert
    RUN: frozenset({Q, END, CAN, FAIL}),  # moved; stopped; cancelled; moved with no intent left
    END: frozenset({SET}),
    FAIL: frozenset({SET}),
    CAN: frozenset({SET}),
    SET: frozenset(),
}
LIVE = frozenset({SCH, RUN})
OVER = frozenset({END, SET, FAIL, CAN})


class EventKind(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RENTAL_CREATED = "rental_created"
    RUNNING = "running"
    LOG = "log"
    PROGRESS = "progress"
    ENDED = "ended"
    VERIFIED = "verified"
    SETTLED = "settled"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    SETTLING = "settling"
    OUTPUT_READY = "output_ready"
    OUTPUT_FAILED = "output_failed"


@dataclass(frozen=True)
class JobEvent:
    job_id: JobId
    seq: int
    kind: EventKind
    ts: float
    message: str = ""
    progress: float = -1.0
    state: str = ""  # the job's state right after the event ('' in events stored by an older king)

    def to_doc(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "seq": self.seq, "kind": str(self.kind), "ts": self.ts,
                "message": self.message, "progress": self.progress, "state": self.state}

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> JobEvent:
        return cls(JobId(d["job_id"]), int(d["seq"]), EventKind(d["kind"]), float(d["ts"]), d.get("message", ""),
                   float(d.get("progress", -1.0)), d.get("state", ""))


@dataclass(frozen=True)
class PermitDoc:
    """An ERC-2612 permit for the escrow (the renter's GPUTOKEN allowance to GPURental)."""

    value: int
    deadline: int
    v: int
    r: bytes
    s: bytes


@dataclass(frozen=True)
class SignedIntent:
    """One renter-signed rental intent as submitted: its nonce, deadline and EIP-712 signature."""

    nonce: int
    deadline: int
    signature: bytes


@dataclass(frozen=True)
class Submission:
    """A renter's job as it reaches the king (validated by ``king.intake``)."""

    request_id: str
    name: str
    spec: Spec
    spec_hash: bytes
    intents: tuple[SignedIntent, ...]
    permit: PermitDoc | None
    ciphertext: bytes
    keys: dict[str, bytes]  # provider address -> payload key sealed to it
    max_wait_s: float = 0.0  # how long it may wait for a provider; 0: the king's default
    voucher_id: int = 0  # nonzero: the escrow is paid with ComputeVoucher GPU-hours of this class

    def fingerprint(self) -> str:
        """What makes two submissions with one request id the same job (Stripe-style idempotency)."""
        parts = [repr(sorted(self.spec.__dict__.items())), self.spec_hash.hex(),
                 repr([(i.nonce, i.deadline, i.signature.hex()) for i in self.intents])]
        if self.voucher_id:
            parts.append(f"vouchers:{self.voucher_id}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


@dataclass
class IntentRecord:
    nonce: int
    deadline: int
    signature: bytes
    used: bool = False


@dataclass
class Attempt:
    """The job's current placement: a provider, its queen, the price, the intent it rents with."""

    attempt: int
    provider: str
    queen: str
    price: int
    intent: int  # index into Job.intents
    rental_id: str = ""  # hex key, once the rental exists on chain
    deadline: float = 0.0  # the rental's end, wall-clock seconds
    queen_seq: int = 0  # the last event seq taken from the queen for this attempt


@dataclass
class RentalRecord:
    """One rental of the job on GPURental, as created and as the settlement follower saw it settle."""

    rental_id: str
    provider: str
    queen: str
    price: int
    escrow: int
    created_tx: str
    start: int
    wall_start: float
    duration: int
    state: str = "active"  # active | settled | expired
    verified_seconds: int = 0
    failed: bool = False
    provider_payment: int = 0
    fee: int = 0
    refund: int = 0
    settled_tx: str = ""
    slashed: int = 0

    @property
    def closed(self) -> bool:
        return self.state in ("settled", "expired")


@dataclass
class Job:
    job_id: JobId
    request_id: str
    renter: str
    name: str
    spec: Spec
    spec_hash: bytes
    fingerprint: str
    intents: list[IntentRecord]
    permit: PermitDoc | None
    candidates: list[str]
    submitted: float
    state: JobState = JobState.QUEUED
    reason: str = ""
    started: float = 0.0
    ended: float = 0.0
    progress: float = -1.0
    exit_code: int = 0
    attempt: int = 0
    excluded: list[str] = field(default_factory=list)
    permit_used: bool = False
    max_wait_s: float = 0.0  # how long it may wait for a provider each time it is queued (a term: stored once)
    voucher_id: int = 0  # nonzero: its rentals are paid with ComputeVoucher GPU-hours of this class (a term)
    scheduler: str = ""  # the king address its intents are bound to (a term); "" on documents from before it
    queued_since: float = 0.0  # when it last entered the queue (wall clock)
    settling: str = ""  # what its settlement waits for, as last told (a ``settling`` event)
    rentals: list[RentalRecord] = field(default_factory=list)
    current: Attempt | None = None
    last_seq: int = 0
    logs: int = 0
    outcome: str = ""
    # The job's outputs (king.outputs): "" none expected yet, "pending" (an attempt ended; they are on their way,
    # due by output_due), "ready", "failed" (output_reason), "expired" (removed after the retention period).
    output: str = ""
    output_attempt: int = 0
    output_due: float = 0.0
    output_bytes: int = 0
    output_expires: float = 0.0
    output_reason: str = ""

    # ------------------------------------------------------------------ state
    def move_to(self, to: JobState) -> None:
        """Changes state along :data:`TRANSITIONS`; raises IllegalTransitionError otherwise."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransitionError(f"job {self.job_id}: {self.state} → {to} is not a transition")
        self.state = to

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @property
    def provider(self) -> str:
        return self.current.provider if self.current else ""

    @property
    def queen(self) -> str:
        return self.current.queen if self.current else ""

    def gives_up_at(self) -> float:
        """When the job, queued now, ends failed unless placed (wall clock)."""
        return self.queued_since + self.max_wait_s

    def open_rentals(self) -> list[RentalRecord]:
        return [r for r in self.rentals if not r.closed]

    def finished(self) -> bool:
        """No more events will come: settled, or failed/cancelled with no rental left to settle, and no
        outputs on their way."""
        if self.output == "pending":
            return False
        if self.state == SET:
            return True
        return self.state in (FAIL, CAN) and not self.open_rentals()

    def next_intent(self) -> int | None:
        return next((i for i, it in enumerate(self.intents) if not it.used), None)

    def intent(self, idx: int) -> RentalIntent:
        """The on-chain intent the renter signed at ``idx`` (provider left to the scheduler, one of the job's
        candidates; bound to the king's scheduler address)."""
        it = self.intents[idx]
        return rental_intent(self.renter, self.spec, self.spec_hash, it.nonce, it.deadline,
                             candidates_tree(self.candidates)[0], self.scheduler or ZERO_ADDRESS)

    def candidate_proof(self, provider: str) -> list[bytes]:
        """The Merkle proof that ``provider`` is under the intents' candidatesRoot; empty when it is not one of
        the job's candidates (GPURental then refuses it: GPURentalProviderNotCandidate)."""
        return candidates_tree(self.candidates)[1].get(checksum_address(provider), [])

    def rental(self, key: str) -> RentalRecord | None:
        return next((r for r in self.rentals if r.rental_id == key), None)

    def cost_so_far(self, now: float) -> int:
        total = 0
        for r in self.rentals:
            if r.state == "settled":
                total += r.provider_payment + r.fee
            elif r.state == "active":
                elapsed = max(0.0, min(now, r.wall_start + r.duration) - r.wall_start)
                total += int(r.price * self.spec.gpus * elapsed) // 3600
        return total

    # ------------------------------------------------------------------ storage
    def terms_doc(self) -> dict[str, Any]:
        """What the renter submitted and never changes (stored once)."""
        p = self.permit
        return {
            "job_id": self.job_id, "request_id": self.request_id, "renter": self.renter, "name": self.name,
            "spec": {**self.spec.__dict__, "max_price_per_gpu_hour": str(self.spec.max_price_per_gpu_hour)},
            "spec_hash": self.spec_hash.hex(), "fingerprint": self.fingerprint, "submitted": self.submitted,
            "intents": [{"nonce": f"{i.nonce:064x}", "deadline": i.deadline, "signature": i.signature.hex()}
                        for i in self.intents],
            "permit": None if p is None else {"value": str(p.value), "deadline": p.deadline, "v": p.v,
                                              "r": p.r.hex(), "s": p.s.hex()},
            "candidates": list(self.candidates), "max_wait_s": self.max_wait_s, "scheduler": self.scheduler,
            "voucher_id": self.voucher_id,
        }

    def state_doc(self) -> dict[str, Any]:
        """What changes as the job lives (stored at every change: small)."""
        c = self.current
        return {
            "job_id": self.job_id, "renter": self.renter, "state": str(self.state), "reason": self.reason,
            "started": self.started, "ended": self.ended, "progress": self.progress, "exit_code": self.exit_code,
            "attempt": self.attempt, "excluded": list(self.excluded),
            "intents_used": [i.used for i in self.intents], "permit_used": self.permit_used,
            "queued_since": self.queued_since, "settling": self.settling,
            "rentals": [{**r.__dict__, "price": str(r.price), "escrow": str(r.escrow),
                         "provider_payment": str(r.provider_payment), "fee": str(r.fee), "refund": str(r.refund),
                         "slashed": str(r.slashed)} for r in self.rentals],
            "current": None if c is None else {**c.__dict__, "price": str(c.price)},
            "last_seq": self.last_seq, "logs": self.logs, "outcome": self.outcome,
            "output": self.output, "output_attempt": self.output_attempt, "output_due": self.output_due,
            "output_bytes": self.output_bytes, "output_expires": self.output_expires,
            "output_reason": self.output_reason,
        }

    def to_doc(self) -> dict[str, Any]:
        """The whole job as one document (terms and state)."""
        return {**self.terms_doc(), **self.state_doc()}

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Job:
        s = d["spec"]
        spec = Spec(gpus=int(s["gpus"]), duration_s=int(s["duration_s"]),
                    max_price_per_gpu_hour=int(s["max_price_per_gpu_hour"]), gpu_model=s.get("gpu_model", ""),
                    min_vram_bytes=int(s.get("min_vram_bytes", 0)), min_tflops=float(s.get("min_tflops", 0.0)))
        pm = d.get("permit")
        c = d.get("current")
        rentals = []
        for r in d.get("rentals", []):
            rentals.append(RentalRecord(
                rental_id=r["rental_id"], provider=r["provider"], queen=r["queen"], price=int(r["price"]),
                escrow=int(r["escrow"]), created_tx=r.get("created_tx", ""), start=int(r["start"]),
                wall_start=float(r.get("wall_start", r["start"])), duration=int(r["duration"]),
                state=r.get("state", "active"), verified_seconds=int(r.get("verified_seconds", 0)),
                failed=bool(r.get("failed", False)), provider_payment=int(r.get("provider_payment") or 0),
                fee=int(r.get("fee") or 0), refund=int(r.get("refund") or 0), settled_tx=r.get("settled_tx", ""),
                slashed=int(r.get("slashed") or 0)))
        return cls(
            job_id=JobId(d["job_id"]), request_id=d["request_id"], renter=d["renter"], name=d.get("name", ""),
            spec=spec, spec_hash=bytes.fromhex(d["spec_hash"]), fingerprint=d["fingerprint"],
            intents=[IntentRecord(int(i["nonce"], 16), int(i["deadline"]), bytes.fromhex(i["signature"]), bool(used))
                     for i, used in zip(d["intents"], d["intents_used"], strict=True)],
            permit=None if pm is None else PermitDoc(int(pm["value"]), int(pm["deadline"]), int(pm["v"]),
                                                      bytes.fromhex(pm["r"]), bytes.fromhex(pm["s"])),
            candidates=list(d["candidates"]), submitted=float(d["submitted"]), state=JobState(d["state"]),
            reason=d.get("reason", ""), started=float(d.get("started", 0.0)), ended=float(d.get("ended", 0.0)),
            progress=float(d.get("progress", -1.0)), exit_code=int(d.get("exit_code", 0)),
            attempt=int(d.get("attempt", 0)), excluded=list(d.get("excluded", [])),
            permit_used=bool(d.get("permit_used", False)), rentals=rentals,
            max_wait_s=float(d.get("max_wait_s", 0.0)), voucher_id=int(d.get("voucher_id", 0)), scheduler=d.get("scheduler", ""), queued_since=float(d.get("queued_since", 0.0)),
            settling=d.get("settling", ""),
            current=None if c is None else Attempt(
                attempt=int(c["attempt"]), provider=c["provider"], queen=c["queen"], price=int(c["price"]),
                intent=int(c["intent"]), rental_id=c.get("rental_id", ""), deadline=float(c.get("deadline", 0.0)),
                queen_seq=int(c.get("queen_seq", 0))),
            last_seq=int(d.get("last_seq", 0)), logs=int(d.get("logs", 0)), outcome=d.get("outcome", ""),
            output=d.get("output", ""), output_attempt=int(d.get("output_attempt", 0)),
            output_due=float(d.get("output_due", 0.0)), output_bytes=int(d.get("output_bytes", 0)),
            output_expires=float(d.get("output_expires", 0.0)), output_reason=d.get("output_reason", ""),
        )


def rental_intent(renter: str, spec: Spec, spec_hash: bytes, nonce: int, deadline: int, candidates_root: bytes,
                  scheduler: str) -> RentalIntent:
    """The intent a renter signs for a job: the provider left to the king's scheduler (the zero address), who
    may choose only among the candidates under ``candidates_root`` and is the only one that may place it."""
    return RentalIntent(renter, ZERO_ADDRESS, spec.gpus, spec_hash, spec.max_price_per_gpu_hour, spec.duration_s,
                        nonce, deadline, candidates_root, scheduler)


def job_id_of(renter: str, request_id: str) -> JobId:
    """The job id a renter's request id maps to (the same request always names the same job)."""
    return JobId("j-" + hashlib.sha256(f"{checksum_address(renter)}|{request_id}".encode()).hexdigest()[:20])


def check_job_id(job_id: str) -> JobId:
    """``job_id`` if it has the king's form (``j-`` and 20 hex digits); else a NotFoundError-worthy ''."""
    if len(job_id) == 22 and job_id.startswith("j-") and all(ch in "0123456789abcdef" for ch in job_id[2:]):
        return JobId(job_id)
    return JobId("")


def shown(text: str, limit: int = 40) -> str:
    """``text`` as an error message may echo it: cut to ``limit`` characters, quoted when not plain ASCII."""
    cut = text[:limit]
    return cut if cut.isascii() and cut.isprintable() else repr(cut)
