"""A fake ``WorkVerification`` (ETC): batches land once per id, a task finalizes once, failures on demand.

It keeps what the contract keeps that a queen relies on: a batch id is accepted once
(``WorkVerificationBatchAlreadySubmitted`` after), a finalize needs a result from a landed batch with its
Merkle proof, the task's end reached on ETC's clock (``WorkVerificationTaskNotEnded``) and not finalized
yet (``WorkVerificationTaskAlreadyFinalized``). ``fail_next`` raises before a write happens (an RPC outage,
a revert); ``land_then_fail`` lets the write land and then raises (a receipt that never came back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from blendr.chain.contracts import ChallengeResult, results_tree
from blendr.errors import ContractRevertError


@dataclass
class FakeWorkVerification:
    chain_time: int = 0
    interval: int = 30
    max_batch: int = 100
    task_end: dict[int, int] = field(default_factory=dict)  # rental id -> end (ETC time)
    batches: dict[bytes, list[ChallengeResult]] = field(default_factory=dict)
    batch_submissions: dict[bytes, int] = field(default_factory=dict)  # batch id -> landed times (must be 1)
    finalized: dict[int, int] = field(default_factory=dict)  # rental id -> finalizations (must be 1)
    finalized_result: dict[int, ChallengeResult] = field(default_factory=dict)
    finalize_txs: dict[bytes, int] = field(default_factory=dict)  # tx hash -> rental id
    fail_next: list[Exception] = field(default_factory=list)
    land_then_fail: list[Exception] = field(default_factory=list)
    txs: int = 0

    def challenge_interval(self) -> int:
        return self.interval

    def max_batch_size(self) -> int:
        return self.max_batch

    def _landed(self) -> dict[str, Any]:
        self.txs += 1
        if self.land_then_fail:
            raise self.land_then_fail.pop(0)
        return {"transactionHash": self.txs.to_bytes(32, "big")}

    def submit_batch(self, batch_id: bytes, records_root: bytes, results: Sequence[ChallengeResult]) -> dict[str, Any]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        if batch_id in self.batches:
            raise ContractRevertError("submitBatch reverted", error="WorkVerificationBatchAlreadySubmitted")
        self.batches[batch_id] = list(results)
        self.batch_submissions[batch_id] = self.batch_submissions.get(batch_id, 0) + 1
        return self._landed()

    def finalize(self, batch_id: bytes, result: ChallengeResult, proof: Sequence[bytes]) -> dict[str, Any]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        results = self.batches.get(batch_id)
        if results is None or result not in results:
            raise ContractRevertError("finalize reverted", error="WorkVerificationUnknownResult")
        _, proofs = results_tree(batch_id, results)
        if list(proof) != proofs[results.index(result)]:
            raise ContractRevertError("finalize reverted", error="WorkVerificationInvalidProof")
        if self.chain_time < self.task_end.get(result.rental_id, 0):
            raise ContractRevertError("finalize reverted", error="WorkVerificationTaskNotEnded")
        if self.finalized.get(result.rental_id):
            raise ContractRevertError("finalize reverted", error="WorkVerificationTaskAlreadyFinalized")
        self.finalized[result.rental_id] = 1
        self.finalized_result[result.rental_id] = result
        self.finalize_txs[(self.txs + 1).to_bytes(32, "big")] = result.rental_id
        return self._landed()

    def events(self, receipt: dict[str, Any], event: str) -> list[dict[str, Any]]:
        rid = self.finalize_txs.get(bytes(receipt["transactionHash"]))
        if event != "TaskFinalized" or rid is None:
            return []
        r = self.finalized_result[rid]
        return [{"rentalId": rid, "verifiedSeconds": r.passed * self.interval, "failed": r.failed > r.passed}]
