"""A queen's verification duty on Ethereum Classic: challenge rented providers, land batches, finalize.

GPURental (ETH) opens a task on WorkVerification (ETC) for every rental over the bridge (DESIGN.md §3–§5).
This queen follows WorkVerification's events; for each task it is the queen of:

* while the task runs, the task's provider is challenged at the rental rate (the shorter of
  ``relay.rental_challenge_mean_interval_s`` and the chain's ``challengeInterval``), on top of idle challenges;
* every challenge *issued* inside the task's window counts in the task's cumulative counts (issued, passed,
  failed, missed), and its record (challenge id, seeds, size, commitment roots, opened rows, timings, verdict)
  is kept in the queen's store with the rental id;
* batches carry each changed task's cumulative counts plus the Merkle root of the records added since the
  last batch; a batch is written to the store before it is sent and re-sent with the same id after a restart,
  so it lands exactly once (WorkVerification refuses a batch id twice; that refusal means "already landed");
* after the task's end (ETC time), with no challenge issued before the end still in flight and its final
  counts landed, the queen finalizes the task, which sends the result to ETH over the bridge.
* a late bridge changes nothing that is owed: a provider with a rental this queen was assigned (by the king)
  but whose task has not opened on ETC yet is challenged at the rental rate already, every decided challenge
  is kept for ``HISTORY_S``, and a task that opens late counts the challenges issued in its window before it
  was known, exactly once;
* a rental whose job failed on the provider's side before it ran (``provider_fault``, reported through this
  queen) pays nothing: no challenge counts as passed (issued = failed + missed), so WorkVerification's
  verdict is 0 verified seconds. The provider did not serve the rental; that its GPUs answered challenges
  does not make it time the renter's job had them. Failed challenges still count, so a provider cannot
  report a fault to shield a faked GPU from the failure verdict and its slash.

Records are auditable: :func:`record_leaf` of a stored record, with the proof from
:meth:`RentalVerifier.record_proof`, verifies against the batch's records root on chain
(``WorkVerification.verifyRecord``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from eth_utils import keccak, to_checksum_address

from blendr.chain.contracts import ChallengeResult, WorkVerification, results_tree, sorted_pair_tree
from blendr.chain.follower import Changes, EventFollower, Handler
from blendr.clock import Clock
from blendr.config import RelayConfig
from blendr.errors import ContractRevertError, UnavailableError
from blendr.identity import Address
from blendr.retry import Backoff, rounds
from blendr.store import Store
from blendr.store.base import Batch
from blendr.telemetry import get_logger
from blendr.types import Verdict
from queen.challenges import Outcome
from queen.core import QueenCore

log = get_logger("blendr.queen.verification")

NS_TASKS = "rental_tasks"
NS_RECORDS = "rental_records"
NS_BATCHES = "relay_batches"
NS_META = "relay_meta"
NS_HISTORY = "challenge_history"  # provider/issued/challenge id -> a decided challenge (for tasks opened late)
NS_VOID = "rental_void"  # rental id -> the provider failed its job: the rental's task pays nothing
HISTORY_S = 3 * 86400.0
"""How long decided challenges are kept for a task that opens late (a bridge delayed longer loses the
challenges issued before then)."""
FOLLOWER = "queen-etc-work-verification"
INTERVAL_CACHE_S = 60.0

OPEN, FINALIZED = "open", "finalized"
# An abandoned challenge (the provider left mid-challenge) counts as failed on ETC: leaving must not pay.
VERDICT_FIELD = {Verdict.PASSED: "passed", Verdict.FAILED: "failed", Verdict.MISSED: "missed",
                 Verdict.ABANDONED: "failed"}


class EventSource(Protocol):
    """A follower of contract events (:class:`~blendr.chain.follower.EventFollower`, or a fake in tests)."""

    def poll(self, handler: Handler) -> Changes: ...


def rid_key(rental_id: int) -> str:
    return f"{rental_id:064x}"


def _issued_key(ts: float) -> str:
    """A wall-clock time as a key part that sorts in time order."""
    return f"{max(0.0, ts):017.6f}"


def record_leaf(record: dict[str, Any]) -> bytes:
    """The records-tree leaf of one stored challenge record: keccak256(keccak256(canonical JSON)).

    Canonical JSON: keys sorted, no whitespace, UTF-8. Hashing twice keeps a leaf from ever being read as an
    inner node of the tree.
    """
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return bytes(keccak(keccak(text.encode("utf-8"))))


def batch_id_for(queen: str, seq: int) -> bytes:
    """The queen's ``seq``-th batch id: unique per queen, the same after a restart."""
    return bytes(keccak(b"blendr-batch" + bytes.fromhex(to_checksum_address(queen)[2:]) + seq.to_bytes(8, "big")))


@dataclass
class Task:
    """One verification task of this queen, as it stands in the store."""

    rental_id: int
    provider: Address
    gpus: int
    start: int  # ETH timestamp of the rental's creation
    end: int  # start + duration, or the cancellation time
    closed: bool = False
    state: str = OPEN
    issued: int = 0
    passed: int = 0
    failed: int = 0
    missed: int = 0
    records: int = 0  # records kept so far (the next record's sequence number)
    landed: dict[str, Any] | None = None  # {"seq", "batch_id", "result": [...], "proof": [...]}
    finalize_tx: str = ""
    verified_seconds: int | None = None
    failed_verdict: bool | None = None
    void: bool = False  # the provider failed the rental's job: every challenge counts as missed
    backfilled: bool = False  # the challenges kept from before the task was known are counted (once)

    def result(self) -> ChallengeResult:
        if self.void:
            # No pass counts; a failed challenge still does (a void rental must not shield a faked GPU from
            # the failure verdict and its slash).
            return ChallengeResult(self.rental_id, self.issued, 0, self.failed, self.issued - self.failed)
        return ChallengeResult(self.rental_id, self.issued, self.passed, self.failed, self.missed)

    @property
    def dirty(self) -> bool:
        """Counts not landed yet (a task with nothing landed is dirty even at zero: finalize needs a proof)."""
        return self.state == OPEN and (self.landed is None or tuple(self.landed["result"]) != self.result().as_tuple())

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["rental_id"] = rid_key(self.rental_id)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Task:
        d = dict(d)
        d.setdefault("void", False)
        d.setdefault("backfilled", True)  # stored by a queen that backfilled at once (never count twice)
        d["rental_id"] = int(d["rental_id"], 16)
        d["provider"] = Address(d["provider"])
        return cls(**d)


@dataclass
class StepReport:
    """What one :meth:`RentalVerifier.step` did (for logs and tests)."""

    events: int = 0
    landed: list[str] = field(default_factory=list)
    finalized: list[int] = field(default_factory=list)


class RentalVerifier:
    """Tasks of one queen on WorkVerification: counting, batching, finalizing."""

    def __init__(
        self,
        core: QueenCore,
        cfg: RelayConfig,
        wv: WorkVerification,
        store: Store,
        clock: Clock,
        *,
        start_block: int = 0,
        confirmations: int | None = None,
        chain_time: Callable[[], int] | None = None,
        follower: EventSource | None = None,
    ) -> None:
        """Args:
            wv: WorkVerification on ETC (a fake in unit tests).
            follower: the source of WorkVerification's events; default: an EventFollower of ``wv``.
            chain_time: ETC's time as the queen estimates it (default: the queen's clock).
        """
        self.core = core
        self.cfg = cfg
        self.wv = wv
        self.store = store
        self.clock = clock
        self.queen = Address(to_checksum_address(core.address))
        self.follower: EventSource = follower or EventFollower(
            wv.client, store, FOLLOWER, {"WorkVerification": wv.contract}, confirmations=confirmations,
            start_block=start_block)
        # ETC's time as the queen estimates it: its own clock (a finalize that comes too early is retried)
        self._chain_time = chain_time or (lambda: int(self.clock.time()))
        self.tasks: dict[int, Task] = {}
        self._staged: dict[int, Task] = {}  # tasks changed by the follower poll in progress
        self._interval: tuple[float, float] | None = None  # (chain interval, fetched at monotonic)
        # governance parameters as the queen follows them (blendr.chain.govwatch.GovWatch); None: read here
        self.gov: Any = None
        self._last_batch = clock.monotonic()
        self._backoff = Backoff(cfg.retry_initial_s, cfg.retry_max_s)
        # on_outcome runs on the event loop, poll_chain in a worker thread: a task opening and a challenge
        # being decided are serialized, so a late task counts each challenge once (history or live).
        self._lock = threading.Lock()
        self._rated: set[Address] = set()  # providers at the rental rate after the last apply_rates
        self._pruned: dict[Address, float] = {}  # provider -> when its history was last pruned (monotonic)
        core.outcome_listeners.append(self.on_outcome)
        core.jobs.fault_listeners.append(self.provider_fault)
        # told of every batch that lands (batch id hex, tx hex or '', [(rental id, challenge ids)]), from the thread
        # that sent it (the king link: the network view's ETC batch per verdict)
        self.batch_listeners: list[Callable[[str, str, list[tuple[int, list[str]]]], None]] = []

    # ------------------------------------------------------------------ state
    def load(self) -> int:
        """Loads the tasks from the store; returns how many are still open."""
        self.tasks = {int(k, 16): Task.from_json(v) for k, v in self.store.scan(NS_TASKS, "")}
        with self._lock:
            for t in self.tasks.values():
                self._backfill(t)  # a task saved just before a crash, its earlier challenges not counted yet
        self.apply_rates()
        return sum(1 for t in self.tasks.values() if t.state == OPEN)

    # ------------------------------------------------------------------ chain events
    def _on_events(self, changes: Changes, b: Batch) -> None:
        staged: dict[int, Task] = {}

        def task(rid: int) -> Task | None:
            if rid in staged:
                return staged[rid]
            t = self.tasks.get(rid)
            return None if t is None else Task.from_json(t.to_json())

        for ev in changes.new:
            a = ev.args
            if ev.event == "TaskOpened" and to_checksum_address(a["queen"]) == self.queen:
                rid = int(a["rentalId"])
                if task(rid) is None:
                    staged[rid] = Task(rid, Address(to_checksum_address(a["provider"])), int(a["gpus"]),
                                       int(a["start"]), int(a["end"]))
                    log.info("rental task opened", rental=rid_key(rid)[:12], provider=a["provider"],
                             start=int(a["start"]), end=int(a["end"]))
            elif ev.event == "TaskClosed":
                t = task(int(a["rentalId"]))
                if t is not None:
                    t.end, t.closed = int(a["end"]), True
                    staged[t.rental_id] = t
                    log.info("rental task closed early", rental=rid_key(t.rental_id)[:12], end=t.end)
            elif ev.event in ("TaskFinalized", "TaskExpired"):
                t = task(int(a["rentalId"]))
                if t is not None:
                    t.state = FINALIZED
                    if ev.event == "TaskFinalized":
                        t.verified_seconds, t.failed_verdict = int(a["verifiedSeconds"]), bool(a["failed"])
                    t.finalize_tx = t.finalize_tx or ev.tx_hash
                    staged[t.rental_id] = t
        for ev in changes.withdrawn:
            if ev.event == "TaskOpened" and to_checksum_address(ev.args["queen"]) == self.queen:
                log.error("a task this queen follows was withdrawn by a reorg deeper than the confirmation "
                          "depth; it is kept, and its batches will be refused if it does not come back",
                          rental=rid_key(int(ev.args["rentalId"]))[:12], block=ev.block_number)
        for rid, t in staged.items():
            b.put(NS_TASKS, rid_key(rid), t.to_json())
        self._staged = staged

    def poll_chain(self) -> int:
        """One follower poll; returns how many events it applied."""
        self._staged = {}
        changes = self.follower.poll(self._on_events)
        with self._lock:
            self.tasks.update(self._staged)
            for t in self._staged.values():
                self._backfill(t)
        if self._staged:
            self.apply_rates()
        return len(changes.new)

    def _backfill(self, t: Task) -> None:
        """A task just known (its OPEN crossed the bridge late): counts the kept challenges of its provider
        issued in its window, and applies a provider fault reported before it opened. Call under the lock."""
        if t.state != OPEN or t.backfilled:
            return
        void = self.store.get(NS_VOID, rid_key(t.rental_id)) is not None
        lo, hi = f"{t.provider}/{_issued_key(t.start)}", f"{t.provider}/{_issued_key(t.end)}"
        found = [(k, d) for k, d in self.store.scan(NS_HISTORY, f"{t.provider}/") if lo <= k < hi]
        # the counts and the flag in one write: a crash before it backfills at load, never twice after it
        with self.store.batch() as b:
            for _, doc in found:
                self._count(b, t, doc["verdict"], doc["record"])
            t.void = t.void or void
            t.backfilled = True
            b.put(NS_TASKS, rid_key(t.rental_id), t.to_json())
        if not found and not void:
            return
        log.info("rental task opened late: earlier challenges counted", rental=rid_key(t.rental_id)[:12],
                 challenges=len(found), void=t.void)

    def provider_fault(self, rental_id: int, provider: Address) -> None:
        """The rental's job failed on the provider's side: the rental pays nothing (kept if its task is not
        known yet, applied when it opens)."""
        with self._lock:
            self.store.put(NS_VOID, rid_key(rental_id), {"provider": provider, "at": self.clock.time()})
            t = self.tasks.get(rental_id)
            if t is not None and t.state == OPEN and not t.void:
                t.void = True
                self.store.put(NS_TASKS, rid_key(rental_id), t.to_json())
        log.info("rental voided: its job failed on the provider's side", rental=rid_key(rental_id)[:12],
                 provider=provider)

    # ------------------------------------------------------------------ challenges
    def chain_interval(self) -> float:
        """WorkVerification's challengeInterval: as the queen's governance watch last read it, else read here
        (cached INTERVAL_CACHE_S)."""
        followed = self.gov.get("verification.challenge_interval") if self.gov is not None else None
        if isinstance(followed, int):
            return float(followed)
        now = self.clock.monotonic()
        if self._interval is None or now - self._interval[1] > INTERVAL_CACHE_S:
            self._interval = (float(self.wv.challenge_interval()), now)
        return self._interval[0]

    def rental_rate(self) -> float:
        try:
            chain = self.chain_interval()
        except UnavailableError:
            chain = self._interval[0] if self._interval else self.cfg.rental_challenge_mean_interval_s
        return min(self.cfg.rental_challenge_mean_interval_s, chain)

    def apply_rates(self) -> None:
        """Rented providers (a task running now, or a rental assigned through this queen whose task has not
        opened yet) at the rental rate; everyone else back to the idle rate."""
        now = self.clock.time()
        rented = {t.provider for t in self.tasks.values() if t.state == OPEN and t.start <= now < t.end}
        jobs = [r for r in self.core.jobs.open_jobs() if r.rental_id]
        rented |= {r.provider for r in jobs if now < r.deadline_unix and int(r.rental_id, 16) not in self.tasks}
        rate = self.rental_rate() if rented else 0.0
        for p in {*(t.provider for t in self.tasks.values()), *(r.provider for r in jobs), *self._rated}:
            self.core.challenger.set_interval(p, rate if p in rented else None)
        self._rated = rented

    def rental_of(self, addr: Address, issued: float) -> int | None:
        """The rental whose open task counts a challenge of ``addr`` issued at ``issued`` (None: none known now)."""
        with self._lock:
            for t in self.tasks.values():
                if t.state == OPEN and t.provider == addr and t.start <= issued < t.end:
                    return t.rental_id
        return None

    def on_outcome(self, addr: Address, outcome: Outcome) -> None:
        """A decided challenge: counted in every open task of the provider whose window holds its issue time."""
        issued = float(outcome.record.get("issued", 0.0))
        which = VERDICT_FIELD.get(outcome.verdict)
        if which is None:
            return
        key = f"{addr}/{_issued_key(issued)}/{outcome.record.get('challenge_id', '')}"
        with self._lock, self.store.batch() as b:
            b.put(NS_HISTORY, key, {"verdict": which, "record": outcome.record})
            for t in self.tasks.values():
                if t.state == OPEN and t.provider == addr and t.start <= issued < t.end:
                    self._count(b, t, which, outcome.record)
                    b.put(NS_TASKS, rid_key(t.rental_id), t.to_json())
        self._prune(addr)

    def _count(self, b: Batch, t: Task, which: str, record: dict[str, Any]) -> None:
        t.issued += 1
        setattr(t, which, getattr(t, which) + 1)
        rec = {**record, "rental_id": rid_key(t.rental_id)}
        b.put(NS_RECORDS, f"{rid_key(t.rental_id)}/{t.records:08d}", {"record": rec, "batch": None})
        t.records += 1

    def _prune(self, addr: Address) -> None:
        """Drops the provider's kept challenges older than HISTORY_S (at most once an hour per provider)."""
        mono = self.clock.monotonic()
        if mono - self._pruned.get(addr, -1e18) < 3600.0:
            return
        self._pruned[addr] = mono
        cut = f"{addr}/{_issued_key(self.clock.time() - HISTORY_S)}"
        old = [k for k, _ in self.store.scan(NS_HISTORY, f"{addr}/") if k < cut]
        if old:
            with self.store.batch() as b:
                for k in old:
                    b.delete(NS_HISTORY, k)

    def _in_flight_before_end(self, t: Task) -> bool:
        p = self.core.challenger.pending(t.provider)
        return p is not None and p.issued_wall < t.end

    # ------------------------------------------------------------------ batches
    def _next_seq(self) -> int:
        doc = self.store.get(NS_META, "batch_seq")
        return int(doc["next"]) if doc else 0

    def prepared_batch(self) -> dict[str, Any] | None:
        """The batch written but not yet known to have landed (at most one)."""
        for _, doc in self.store.scan(NS_BATCHES, "", reverse=True, limit=1):
            if doc["state"] == "prepared":
                return doc
        return None

    def prepare_batch(self) -> dict[str, Any] | None:
        """Writes the next batch (changed tasks' counts, the new records) to the store; None if nothing changed."""
        limit = self.cfg.batch_max_results
        with contextlib.suppress(UnavailableError):
            limit = min(limit, self.wv.max_batch_size())
        dirty = sorted((t for t in self.tasks.values() if t.dirty), key=lambda t: t.end)[:limit]
        if not dirty:
            return None
        seq = self._next_seq()
        batch_id = batch_id_for(self.queen, seq)
        results = [t.result() for t in dirty]
        record_keys: list[str] = []
        leaves: list[bytes] = []
        for t in dirty:
            for key, doc in self.store.scan(NS_RECORDS, f"{rid_key(t.rental_id)}/"):
                if doc["batch"] is None:
                    record_keys.append(key)
                    leaves.append(record_leaf(doc["record"]))
        records_root, _ = sorted_pair_tree(leaves)
        doc = {"seq": seq, "batch_id": "0x" + batch_id.hex(), "records_root": "0x" + records_root.hex(),
               "results": [list(r.as_tuple()) for r in results], "record_keys": record_keys, "state": "prepared",
               "prepared": self.clock.time(), "tx": ""}
        with self.store.batch() as b:
            b.put(NS_BATCHES, f"{seq:012d}", doc)
            b.put(NS_META, "batch_seq", {"next": seq + 1})
            for key in record_keys:
                rec = self.store.get(NS_RECORDS, key)
                assert rec is not None
                b.put(NS_RECORDS, key, {"record": rec["record"], "batch": seq})
        log.info("batch prepared", seq=seq, results=len(results), records=len(record_keys))
        return doc

    def send_batch(self, doc: dict[str, Any]) -> str:
        """Sends a prepared batch (again, after a restart); marks it and its tasks landed. Returns the tx hash
        ('' when it had already landed)."""
        batch_id = bytes.fromhex(doc["batch_id"][2:])
        results = [ChallengeResult(*r) for r in doc["results"]]
        tx = ""
        try:
            receipt = self.wv.submit_batch(batch_id, bytes.fromhex(doc["records_root"][2:]), results)
            tx = "0x" + bytes(receipt["transactionHash"]).hex()
        except ContractRevertError as exc:
            if exc.error != "WorkVerificationBatchAlreadySubmitted":
                raise
            log.info("batch had already landed", seq=doc["seq"])
        _, proofs = results_tree(batch_id, results)
        with self.store.batch() as b:
            b.put(NS_BATCHES, f"{doc['seq']:012d}", {**doc, "state": "landed", "tx": tx})
            for r, proof in zip(results, proofs, strict=True):
                t = self.tasks.get(r.rental_id)
                if t is None:
                    continue
                t.landed = {"seq": doc["seq"], "batch_id": doc["batch_id"], "result": list(r.as_tuple()),
                            "proof": ["0x" + p.hex() for p in proof]}
                b.put(NS_TASKS, rid_key(t.rental_id), t.to_json())
        log.info("batch landed", seq=doc["seq"], results=len(results), tx=tx)
        self._tell_landed(doc, tx)
        return tx

    def _tell_landed(self, doc: dict[str, Any], tx: str) -> None:
        """Every batch listener hears which challenge records of which rentals the landed batch covers."""
        if not self.batch_listeners:
            return
        covered: dict[int, list[str]] = {}
        for key in doc["record_keys"]:
            rec = self.store.get(NS_RECORDS, key)
            if rec is not None and rec["record"].get("challenge_id"):
                covered.setdefault(int(key.split("/", 1)[0], 16), []).append(str(rec["record"]["challenge_id"]))
        for listener in self.batch_listeners:
            try:
                listener(doc["batch_id"], tx, list(covered.items()))
            except Exception:  # listener boundary: the batch has landed whatever a listener does
                log.exception("a batch listener failed", seq=doc["seq"])

    def batch_due(self) -> bool:
        dirty = [t for t in self.tasks.values() if t.dirty]
        if not dirty:
            return False
        if len(dirty) >= self.cfg.batch_max_results:
            return True
        if self.clock.monotonic() - self._last_batch >= self.cfg.batch_interval_s:
            return True
        # A task past its end waits for nothing but its final counts: send them now.
        now = self.clock.time()
        return any(t.end <= now and not self._in_flight_before_end(t) for t in dirty)

    # ------------------------------------------------------------------ finalization
    def ready_to_finalize(self, chain_now: int) -> list[Task]:
        return [t for t in self.tasks.values()
                if t.state == OPEN and t.end <= chain_now and t.landed is not None and not t.dirty
                and not self._in_flight_before_end(t)]

    def finalize(self, t: Task) -> str:
        """Finalizes ``t`` with its landed final counts; '' while ETC's clock has not reached the task's end."""
        assert t.landed is not None
        result = ChallengeResult(*t.landed["result"])
        proof = [bytes.fromhex(p[2:]) for p in t.landed["proof"]]
        try:
            receipt = self.wv.finalize(bytes.fromhex(t.landed["batch_id"][2:]), result, proof)
        except ContractRevertError as exc:
            if exc.error == "WorkVerificationTaskNotEnded":
                log.debug("task not ended on ETC yet", rental=rid_key(t.rental_id)[:12])  # its clock is behind ours
                return ""
            if exc.error != "WorkVerificationTaskAlreadyFinalized":
                raise
        else:
            t.finalize_tx = "0x" + bytes(receipt["transactionHash"]).hex()
            ev = self.wv.events(receipt, "TaskFinalized")
            if ev:
                t.verified_seconds, t.failed_verdict = int(ev[0]["verifiedSeconds"]), bool(ev[0]["failed"])
        t.state = FINALIZED
        self.store.put(NS_TASKS, rid_key(t.rental_id), t.to_json())
        log.info("rental task finalized", rental=rid_key(t.rental_id)[:12], issued=t.issued, passed=t.passed,
                 failed=t.failed, missed=t.missed, verified_seconds=t.verified_seconds, tx=t.finalize_tx)
        return t.finalize_tx

    # ------------------------------------------------------------------ the loop
    def step(self) -> StepReport:
        """One round (blocking chain I/O: run it in a thread): follow, batch, finalize.

        Raises:
            UnavailableError, ChainError: the round stopped there; the next round resumes (nothing is lost).
        """
        rep = StepReport()
        rep.events = self.poll_chain()
        self.apply_rates()
        doc = self.prepared_batch()
        if doc is None and self.batch_due():
            doc = self.prepare_batch()
        if doc is not None:
            self.send_batch(doc)
            self._last_batch = self.clock.monotonic()
            rep.landed.append(doc["batch_id"])
        for t in self.ready_to_finalize(self._chain_time()):
            if self.finalize(t):
                rep.finalized.append(t.rental_id)
        if rep.finalized:
            self.apply_rates()
        return rep

    async def run(self) -> None:
        """Steps every ``relay.poll_s``; failures wait (tenacity, bounded per try) and never stop the loop."""
        await rounds(lambda: asyncio.to_thread(self.step), every_s=self.cfg.poll_s, backoff=self._backoff, log=log,
                     what="verification")

    # ------------------------------------------------------------------ audit
    def records(self, rental_id: int) -> list[dict[str, Any]]:
        return [doc["record"] for _, doc in self.store.scan(NS_RECORDS, f"{rid_key(rental_id)}/")]

    def record_proof(self, rental_id: int, challenge_id: str) -> tuple[bytes, bytes, list[bytes]]:
        """(batch id, leaf, proof) of one record against its batch's records root on chain.

        Raises:
            KeyError: no such record, or its batch has not been prepared yet.
        """
        for _, doc in self.store.scan(NS_RECORDS, f"{rid_key(rental_id)}/"):
            if doc["record"].get("challenge_id") == challenge_id and doc["batch"] is not None:
                batch = self.store.get(NS_BATCHES, f"{doc['batch']:012d}")
                assert batch is not None
                leaves = []
                for key in batch["record_keys"]:
                    rec = self.store.get(NS_RECORDS, key)
                    assert rec is not None
                    leaves.append(record_leaf(rec["record"]))
                _, proofs = sorted_pair_tree(leaves)
                mine = record_leaf(doc["record"])
                i = leaves.index(mine)
                return bytes.fromhex(batch["batch_id"][2:]), mine, proofs[i]
        raise KeyError(f"no batched record {challenge_id} for rental {rid_key(rental_id)}")
