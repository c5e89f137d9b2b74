"""The queen's RentalVerifier on a fake WorkVerification and a fake ETC event log: counts land once per
batch id and each task finalizes once, through reverts, lost receipts, outages, restarts and reorgs.

Every test ends with the invariant: each batch id landed at most once on ETC, each task finalized once, and
the counts finalized are the counts of the challenges the queen decided inside the task's window.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from blendr.clock import ManualClock
from blendr.config import QueenConfig, RelayConfig
from blendr.errors import ContractRevertError, DeadlineExceededError, StoreError, UnavailableError
from blendr.identity import NodeIdentity, to_address
from blendr.store import MemoryStore, SQLiteStore, Store
from blendr.types import Verdict
from queen.admission import OpenOracle
from queen.challenges import Outcome
from queen.core import QueenCore
from queen.verification import (
    FINALIZED,
    FOLLOWER,
    NS_BATCHES,
    NS_RECORDS,
    OPEN,
    RentalVerifier,
    batch_id_for,
    record_leaf,
    rid_key,
)
from tests.fakes.event_chain import FakeEventChain
from tests.fakes.work_verification import FakeWorkVerification

QUEEN = NodeIdentity.from_key(b"\x51" * 32)
OTHER_QUEEN = NodeIdentity.from_key(b"\x52" * 32)
PROVIDER = to_address("0x" + "ab" * 20)
RELAY = RelayConfig(batch_interval_s=60.0, batch_max_results=100, retry_initial_s=1.0, retry_max_s=8.0)
T0 = 1_700_000_000


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "queen.sqlite3")
    yield s
    s.close()


class Rig:
    """A queen's core and verifier over one store, the fake chain, and the fake contract."""

    def __init__(self, store: Store, chain: FakeEventChain | None = None, wv: FakeWorkVerification | None = None,
                 clock: ManualClock | None = None) -> None:
        self.store = store
        self.clock = clock or ManualClock(T0)
        self.chain = chain or FakeEventChain()
        self.wv = wv or FakeWorkVerification(chain_time=T0)
        self.decided: dict[int, list[Verdict]] = {}
        self.restart()

    def restart(self) -> None:
        """A new queen process over the same store (the old objects are dropped)."""
        self.core = QueenCore(QUEEN.address, QueenConfig(), self.store, self.clock, OpenOracle())
        self.v = RentalVerifier(self.core, RELAY, self.wv, self.store, self.clock,  # type: ignore[arg-type]
                                chain_time=lambda: self.wv.chain_time,
                                follower=self.chain.follower(self.store, FOLLOWER))
        self.v.load()

    def open_task(self, rid: int, start: int = T0, end: int = T0 + 600, queen: str = QUEEN.address) -> None:
        self.chain.emit("WorkVerification", "TaskOpened", {"rentalId": rid, "queen": queen, "provider": PROVIDER,
                                                           "gpus": 1, "start": start, "end": end})
        self.wv.task_end[rid] = end

    def decide(self, verdict: Verdict, at: float | None = None) -> None:
        issued = self.clock.time() if at is None else at
        n = sum(len(v) for v in self.decided.values())
        rec = {"challenge_id": f"c{n}", "verdict": verdict.value, "issued": issued, "address": PROVIDER}
        self.v.on_outcome(PROVIDER, Outcome(verdict, "", 1.0, 1.0, rec))
        for t in self.v.tasks.values():
            if t.start <= issued < t.end:
                self.decided.setdefault(t.rental_id, []).append(verdict)

    def end_all(self) -> None:
        self.clock.advance(3_600)
        self.wv.chain_time = int(self.clock.time())

    def settle(self, rounds: int = 6) -> None:
        """Steps until nothing is left to do (failures injected beforehand surface as exceptions)."""
        for _ in range(rounds):
            self.v.step()

    def check(self) -> None:
        assert all(n == 1 for n in self.wv.batch_submissions.values())
        assert all(n == 1 for n in self.wv.finalized.values())
        for rid, verdicts in self.decided.items():
            r = self.wv.finalized_result.get(rid)
            if r is None:
                continue
            assert (r.issued, r.passed, r.failed, r.missed) == (
                len(verdicts), verdicts.count(Verdict.PASSED), verdicts.count(Verdict.FAILED),
                verdicts.count(Verdict.MISSED))


def test_a_task_from_opening_to_finalization(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.open_task(2, queen=OTHER_QUEEN.address)  # another queen's task: not ours
    assert rig.v.step().events == 2
    assert set(rig.v.tasks) == {1}
    rig.clock.advance(10)
    for verdict in (Verdict.PASSED, Verdict.PASSED, Verdict.FAILED, Verdict.MISSED):
        rig.decide(verdict)
    rig.decide(Verdict.PASSED, at=T0 - 5)  # issued before the task began: not counted
    assert rig.v.tasks[1].issued == 4
    rig.end_all()
    rep = rig.v.step()
    assert len(rep.landed) == 1 and rep.finalized == [1]
    assert rig.v.tasks[1].state == FINALIZED and rig.v.tasks[1].verified_seconds == 2 * rig.wv.interval
    rig.settle()
    assert len(rig.wv.batches) == 1 and rig.wv.finalized == {1: 1}
    rig.check()


def test_records_are_provable_against_the_landed_batch(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.decide(Verdict.FAILED)
    rig.end_all()
    rig.v.step()
    batch_id, leaf, proof = rig.v.record_proof(1, "c1")
    assert batch_id == batch_id_for(QUEEN.address, 0)
    assert leaf == record_leaf(rig.v.records(1)[1])
    doc = store.get(NS_BATCHES, f"{0:012d}")
    assert doc is not None and doc["state"] == "landed" and len(doc["record_keys"]) == 2
    assert proof  # two leaves: one sibling
    rig.check()


def test_reverted_batch_is_resent_with_the_same_id(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.end_all()
    rig.wv.fail_next.append(ContractRevertError("submitBatch reverted", error="WorkVerificationPaused"))
    with pytest.raises(ContractRevertError):
        rig.v.step()
    assert rig.v.prepared_batch() is not None and rig.wv.batches == {}
    rig.decide(Verdict.PASSED, at=T0 + 1)  # decided meanwhile: goes in the next batch, not this one
    rig.settle()
    assert list(rig.wv.batches) == [batch_id_for(QUEEN.address, 0), batch_id_for(QUEEN.address, 1)]
    assert rig.wv.finalized == {1: 1}
    rig.check()


def test_batch_that_timed_out_but_landed_is_recognised(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.end_all()
    rig.wv.land_then_fail.append(DeadlineExceededError("etc tx submitBatch: not confirmed"))
    with pytest.raises(DeadlineExceededError):
        rig.v.step()
    rig.settle()
    assert rig.wv.batch_submissions == {batch_id_for(QUEEN.address, 0): 1}
    assert store.get(NS_BATCHES, f"{0:012d}")["state"] == "landed"  # type: ignore[index]
    rig.check()


def test_finalize_that_timed_out_but_landed_finalizes_once(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.end_all()
    doc = rig.v.prepare_batch()
    assert doc is not None
    rig.v.send_batch(doc)
    rig.wv.land_then_fail.append(DeadlineExceededError("etc tx finalize: no receipt"))
    with pytest.raises(DeadlineExceededError):
        rig.v.step()
    assert rig.wv.finalized == {1: 1} and rig.v.tasks[1].state == OPEN
    rig.settle()  # the next try meets TaskAlreadyFinalized: adopted, not sent again
    assert rig.v.tasks[1].state == FINALIZED and rig.wv.finalized == {1: 1}
    rig.check()


def test_finalize_waits_for_etc_time(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.clock.advance(3_600)  # the queen's clock is past the end, ETC's is not
    rig.v.step()
    assert rig.v.tasks[1].state == OPEN and rig.wv.finalized == {}
    rig.wv.chain_time = int(rig.clock.time())
    rig.v.step()
    assert rig.wv.finalized == {1: 1}
    rig.check()


def test_rpc_outage_then_recovery(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.chain.outages = 3
    for _ in range(3):
        with pytest.raises(UnavailableError):
            rig.v.step()
    assert rig.v.tasks == {}
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.end_all()
    rig.wv.fail_next += [UnavailableError("etc RPC down")] * 2
    for _ in range(2):
        with pytest.raises(UnavailableError):
            rig.v.step()
    rig.settle()
    assert rig.wv.finalized == {1: 1}
    rig.check()


@pytest.mark.parametrize("restart_at", ["after-open", "after-outcomes", "after-prepare", "after-landed-lost",
                                        "after-batch", "after-finalize"])
def test_restart_between_any_two_steps(store: Store, restart_at: str) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    if restart_at == "after-open":
        rig.restart()
    rig.decide(Verdict.PASSED)
    rig.decide(Verdict.FAILED)
    if restart_at == "after-outcomes":
        rig.restart()
    rig.end_all()
    if restart_at == "after-prepare":
        assert rig.v.prepare_batch() is not None
        rig.restart()
    elif restart_at == "after-landed-lost":
        rig.wv.land_then_fail.append(DeadlineExceededError("no receipt"))
        with pytest.raises(DeadlineExceededError):
            rig.v.step()
        rig.restart()
    elif restart_at == "after-batch":
        doc = rig.v.prepare_batch()
        assert doc is not None
        rig.v.send_batch(doc)
        rig.restart()
    elif restart_at == "after-finalize":
        rig.v.step()
        rig.restart()
    rig.settle()
    assert rig.wv.finalized == {1: 1}
    assert len(rig.wv.batches) == 1  # one batch id, landed once
    assert rig.v.tasks[1].state == FINALIZED
    rig.check()


def test_a_restart_counts_nothing_twice(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.restart()
    assert rig.v.tasks[1].issued == 1 and store.count(NS_RECORDS, rid_key(1)) == 1
    rig.decide(Verdict.PASSED)
    rig.end_all()
    rig.settle()
    assert rig.wv.finalized_result[1].issued == 2
    rig.check()


def test_a_failed_store_write_of_an_outcome_is_not_half_counted() -> None:
    class FailingStore(MemoryStore):
        fail = 0

        def _apply(self, ops):  # type: ignore[no-untyped-def]
            if self.fail:
                self.fail -= 1
                raise StoreError("disk full")
            super()._apply(ops)

    store = FailingStore()
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    store.fail = 1
    with pytest.raises(StoreError):
        rig.v.on_outcome(PROVIDER, Outcome(Verdict.PASSED, "", 1.0, 1.0,
                                           {"challenge_id": "x", "verdict": "passed", "issued": rig.clock.time()}))
    rig.restart()  # the durable view: nothing of the failed write
    assert rig.v.tasks[1].issued == 0 and store.count(NS_RECORDS) == 0


def test_chain_finalization_by_another_relayer_is_adopted(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.chain.emit("WorkVerification", "TaskFinalized", {"rentalId": 1, "verifiedSeconds": 120, "failed": False})
    rig.v.step()
    t = rig.v.tasks[1]
    assert t.state == FINALIZED and t.verified_seconds == 120 and t.finalize_tx
    rig.end_all()
    rig.settle()
    assert rig.wv.finalized == {}  # nothing sent for a task the chain finalized
    rig.check()


def test_a_closed_task_ends_early_and_a_replayed_opening_is_ignored(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1, end=T0 + 600)
    rig.v.step()
    # the same task opened again (a replayed bridge message): ignored
    rig.chain.emit("WorkVerification", "TaskOpened", {"rentalId": 1, "queen": QUEEN.address, "provider": PROVIDER,
                                                      "gpus": 1, "start": T0, "end": T0 + 9_999})
    rig.chain.emit("WorkVerification", "TaskClosed", {"rentalId": 1, "end": T0 + 100})
    rig.wv.task_end[1] = T0 + 100
    rig.v.step()
    t = rig.v.tasks[1]
    assert (t.end, t.closed) == (T0 + 100, True)
    rig.decide(Verdict.PASSED, at=T0 + 50)
    rig.decide(Verdict.PASSED, at=T0 + 200)  # after the close: not counted
    assert rig.v.tasks[1].issued == 1
    rig.end_all()
    rig.settle()
    assert rig.wv.finalized_result[1].issued == 1
    rig.check()


def test_a_reorged_out_opening_keeps_the_task(store: Store) -> None:
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.chain.reorg(list(rig.chain.events))
    rig.v.step()
    assert rig.v.tasks[1].state == OPEN  # kept: its batches are refused on chain if it does not come back



def test_a_task_opened_late_counts_the_challenges_issued_in_its_window_once(store: Store) -> None:
    """The bridge delivered the OPEN after the rental ran (and after a queen restart): what the provider
    proved during the rental still counts, exactly once, and what it proves afterwards is counted live."""
    rig = Rig(store)
    rig.decide(Verdict.PASSED, at=T0 - 5)  # before the rental: never counted
    rig.clock.advance(10)
    for verdict in (Verdict.PASSED, Verdict.PASSED, Verdict.MISSED):
        rig.decide(verdict)
        rig.clock.advance(100)
    rig.restart()  # the kept challenges are durable
    rig.open_task(1)
    rig.v.step()
    t = rig.v.tasks[1]
    assert (t.issued, t.passed, t.missed) == (3, 2, 1)
    rig.v.step()  # a second poll opens nothing new and counts nothing twice
    rig.decide(Verdict.PASSED)  # live, inside the window
    assert rig.v.tasks[1].issued == 4
    rig.end_all()
    rig.settle()
    r = rig.wv.finalized_result[1]
    assert (r.issued, r.passed, r.failed, r.missed) == (4, 3, 0, 1)
    assert len(rig.v.records(1)) == 4


def test_a_crash_between_saving_a_late_task_and_counting_its_earlier_challenges_counts_them_at_load(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The follower's write of a newly opened task and the backfill of its earlier challenges are separate
    writes: a queen that dies between them counts those challenges when it starts again, once."""
    rig = Rig(store)
    rig.clock.advance(10)
    for verdict in (Verdict.PASSED, Verdict.PASSED):
        rig.decide(verdict)
        rig.clock.advance(100)
    rig.open_task(1)

    def crash(self: object, t: object) -> None:
        raise RuntimeError("the queen died here")

    with monkeypatch.context() as m:
        m.setattr(type(rig.v), "_backfill", crash)
        with pytest.raises(RuntimeError):
            rig.v.step()
    rig.restart()
    assert (rig.v.tasks[1].issued, rig.v.tasks[1].passed) == (2, 2)
    rig.restart()  # a second start counts nothing again
    rig.v.step()
    assert (rig.v.tasks[1].issued, rig.v.tasks[1].passed) == (2, 2)


def test_a_rental_whose_job_failed_on_the_provider_side_pays_nothing_and_is_not_failed(store: Store) -> None:
    """A provider fault reported before the task opened (late bridge) and one reported on an open task both
    finalize with every challenge missed: 0 verified seconds, no failed verdict (no slash)."""
    rig = Rig(store)
    rig.clock.advance(10)
    rig.decide(Verdict.PASSED)
    rig.v.provider_fault(1, PROVIDER)  # before the OPEN crossed the bridge
    rig.open_task(1)
    rig.open_task(2)
    rig.v.step()
    rig.decide(Verdict.PASSED)
    rig.v.step()  # the counts land before the fault on rental 2 is known
    rig.v.provider_fault(2, PROVIDER)
    rig.end_all()
    rig.settle()
    for rid, issued in ((1, 2), (2, 2)):  # both windows hold both challenges
        r = rig.wv.finalized_result[rid]
        assert (r.issued, r.passed, r.failed, r.missed) == (issued, 0, 0, issued)
        t = rig.v.tasks[rid]
        assert t.verified_seconds == 0 and t.failed_verdict is False


def test_a_provider_fault_does_not_shield_failed_challenges(store: Store) -> None:
    """A provider that fails its rental's challenges and then reports a fault still gets the failures counted
    (passes do not): the verdict can still be failed, with its slash."""
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.clock.advance(10)
    for verdict in (Verdict.FAILED, Verdict.PASSED, Verdict.FAILED):
        rig.decide(verdict)
        rig.clock.advance(100)
    rig.v.provider_fault(1, PROVIDER)
    rig.end_all()
    rig.settle()
    r = rig.wv.finalized_result[1]
    assert (r.issued, r.passed, r.failed, r.missed) == (3, 0, 2, 1)


def test_a_provider_with_an_assigned_rental_is_challenged_at_the_rental_rate_before_its_task_opens(
        store: Store) -> None:
    from queen.jobs import JobRecord

    rig = Rig(store)
    idle = rig.core.challenger.interval(PROVIDER)
    rec = JobRecord("j-1", 1, PROVIDER, 1, rid_key(7), T0 + 600.0, T0)
    rig.core.jobs._active[rec.key] = rec  # assigned by the king; the bridge has not opened the task yet
    rig.v.apply_rates()
    rental_rate = min(RELAY.rental_challenge_mean_interval_s, rig.wv.interval)
    assert rental_rate < idle and rig.core.challenger.interval(PROVIDER) == rental_rate
    rig.clock.advance(700)  # the rental is over: back to the idle rate
    rig.v.apply_rates()
    assert rig.core.challenger.interval(PROVIDER) == idle


def test_an_abandoned_challenge_counts_as_failed_on_etc(store: Store) -> None:
    """A provider that leaves mid-challenge (or is quarantined for it) is recorded as failing on ETC."""
    rig = Rig(store)
    rig.open_task(1)
    rig.v.step()
    rig.clock.advance(10)
    for verdict in (Verdict.PASSED, Verdict.ABANDONED, Verdict.FAILED, Verdict.MISSED):
        rig.decide(verdict)
    t = rig.v.tasks[1]
    assert (t.issued, t.passed, t.failed, t.missed) == (4, 1, 2, 1)
    rig.end_all()
    rig.settle()
    r = rig.wv.finalized_result[1]
    assert (r.issued, r.passed, r.failed, r.missed) == (4, 1, 2, 1)
