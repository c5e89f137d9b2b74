"""WorkVerification on a real ETC anvil (chain id 63, shanghai): bridge-opened tasks, queen batches proven by
Merkle roots, finalization into RESULT messages and reputation, expiry, governance setters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import decode, encode
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from tests.contracts.chainkit import deploy, increase_time, now, reverts, send

ETH_CHAIN_ID = 31337
OPEN, CLOSE, RESULT, FEEDBACK = 1, 2, 3, 4
GOVERNOR_ROLE = keccak(text="GOVERNOR_ROLE")
RECORDER_ROLE = keccak(text="RECORDER_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32
MAX_FAIL_BPS = 2_000
FINALIZE_GRACE = 86_400
MAX_BATCH = 200
HOUR = 3_600

Result = tuple[int, int, int, int, int]  # (rentalId, issued, passed, failedCount, missed)

# ------------------------------------------------------------------ Merkle tree, as WorkVerification builds it


def result_leaf(batch_id: bytes, result: Result) -> bytes:
    """keccak256(abi.encode(batchId, result))."""
    return bytes(
        keccak(encode(["bytes32", "uint256", "uint32", "uint32", "uint32", "uint32"], [batch_id, *result]))
    )


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(a + b) if a < b else keccak(b + a))


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level, leaves first: neighbours paired with sorted-pair hashing, an odd last node moved up as is."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [_hash_pair(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    proof = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


# ------------------------------------------------------------------ messages


def open_msg(rental_id: int, provider: str, queen: str, gpus: int, start: int, duration: int) -> bytes:
    body = encode(
        ["uint256", "address", "address", "uint32", "uint64", "uint64"],
        [rental_id, provider, queen, gpus, start, duration],
    )
    return encode(["uint8", "bytes"], [OPEN, body])


def close_msg(rental_id: int, end_time: int) -> bytes:
    return encode(["uint8", "bytes"], [CLOSE, encode(["uint256", "uint64"], [rental_id, end_time])])


def decode_result(data: bytes) -> tuple[int, int, bool, int, int, int, int]:
    """(rentalId, verifiedSeconds, failed, issued, passed, failedCount, missed) of a RESULT payload."""
    kind, body = decode(["uint8", "bytes"], data)
    assert kind == RESULT
    return tuple(decode(["uint256", "uint64", "bool", "uint32", "uint32", "uint32", "uint32"], body))


def expected_verdict(
    duration: int, issued: int, passed: int, failed_count: int, max_fail_bps: int
) -> tuple[int, bool]:
    if issued == 0:
        return 0, False
    return duration * passed // issued, failed_count * 10_000 > issued * max_fail_bps


# ------------------------------------------------------------------ fixture


@dataclass
class Env:
    w3: Web3
    wv: Contract
    rep: Contract
    outbox: Contract
    admin: str
    inbox: str
    queen: str
    queen2: str
    provider: str
    stranger: str
    gpu_rental: str

    def deliver(self, data: bytes, *, sender: str | None = None, src_chain: int = ETH_CHAIN_ID) -> Any:
        """Delivers a bridge message to WorkVerification as the inbox (GPURental as the source by default)."""
        return send(self.wv.functions.onBridgeMessage(src_chain, sender or self.gpu_rental, data), self.inbox)

    def open(
        self,
        rental_id: int,
        *,
        duration: int = HOUR,
        start: int | None = None,
        queen: str | None = None,
        gpus: int = 2,
    ) -> int:
        start = now(self.w3) if start is None else start
        self.deliver(open_msg(rental_id, self.provider, queen or self.queen, gpus, start, duration))
        return start

    def submit(
        self,
        batch_id: bytes,
        results: Sequence[Result],
        *,
        queen: str | None = None,
        records_root: bytes = b"\x11" * 32,
    ) -> Any:
        return send(self.wv.functions.submitBatch(batch_id, records_root, list(results)), queen or self.queen)

    def finalize(
        self, batch_id: bytes, results: Sequence[Result], index: int, *, queen: str | None = None
    ) -> Any:
        leaves = [result_leaf(batch_id, r) for r in results]
        r = results[index]
        fn = self.wv.functions.finalize(r[0], batch_id, r, merkle_proof(leaves, index))
        return send(fn, queen or self.queen)

    def last_result(self) -> tuple[int, int, bool, int, int, int, int]:
        count = self.outbox.functions.sentCount().call()
        dst, sender, target, data = self.outbox.functions.sent(count).call()
        assert (dst, sender, target) == (ETH_CHAIN_ID, self.wv.address, self.gpu_rental)
        return decode_result(data)


def make_env(w3: Web3) -> Env:
    a: list[str] = list(w3.eth.accounts)
    admin, inbox, queen, queen2, provider, stranger = a[:6]
    gpu_rental = a[9]
    outbox = deploy(w3, "etc", "MockBridgeOutbox")
    rep = deploy(w3, "etc", "ReputationSystem", admin)
    wv = deploy(
        w3,
        "etc",
        "WorkVerification",
        admin,
        inbox,
        outbox.address,
        ETH_CHAIN_ID,
        gpu_rental,
        rep.address,
        MAX_FAIL_BPS,
        FINALIZE_GRACE,
        MAX_BATCH,
    )
    send(outbox.functions.setAuthorized(wv.address, True), admin)
    send(rep.functions.grantRole(RECORDER_ROLE, wv.address), admin)
    return Env(w3, wv, rep, outbox, admin, inbox, queen, queen2, provider, stranger, gpu_rental)


@pytest.fixture(scope="module")
def deployed(etc_session: Web3) -> Env:
    """Contracts deployed once per module, before any test's snapshot, so every test starts from them."""
    return make_env(etc_session)


@pytest.fixture
def env(deployed: Env, etc: Web3) -> Env:
    """The deployed contracts inside this test's snapshot."""
    return deployed


def bid(n: int) -> bytes:
    return n.to_bytes(32, "big")


# ------------------------------------------------------------------ construction


def test_constructor_sets_parameters_and_roles(env: Env) -> None:
    """The constructor stores every peer and parameter and gives admin both roles."""
    wv = env.wv.functions
    assert wv.inbox().call() == env.inbox
    assert wv.outbox().call() == env.outbox.address
    assert wv.ethChainId().call() == ETH_CHAIN_ID
    assert wv.gpuRental().call() == env.gpu_rental
    assert wv.reputation().call() == env.rep.address
    assert wv.maxFailBps().call() == MAX_FAIL_BPS
    assert wv.finalizeGrace().call() == FINALIZE_GRACE
    assert wv.maxBatchSize().call() == MAX_BATCH
    assert wv.challengeInterval().call() == 300
    assert wv.quarantine().call() == [10, 5, HOUR]  # the queens' former config defaults
    assert wv.hasRole(DEFAULT_ADMIN_ROLE, env.admin).call()
    assert wv.hasRole(GOVERNOR_ROLE, env.admin).call()
    assert wv.GOVERNOR_ROLE().call() == GOVERNOR_ROLE


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"admin": "0x" + "00" * 20}, "WorkVerificationZeroAddress"),
        ({"inbox": "0x" + "00" * 20}, "WorkVerificationZeroAddress"),
        ({"outbox": "0x" + "00" * 20}, "WorkVerificationZeroAddress"),
        ({"chain": 0}, "WorkVerificationInvalidChainId"),
        ({"chain": 63}, "WorkVerificationInvalidChainId"),
        ({"rental": "0x" + "00" * 20}, "WorkVerificationZeroAddress"),
        ({"reputation": "0x" + "00" * 20}, "WorkVerificationZeroAddress"),
        ({"bps": 10_001}, "WorkVerificationMaxFailBpsOutOfRange"),
        ({"grace": HOUR - 1}, "WorkVerificationFinalizeGraceOutOfRange"),
        ({"grace": 90 * 86_400 + 1}, "WorkVerificationFinalizeGraceOutOfRange"),
        ({"batch": 0}, "WorkVerificationMaxBatchSizeOutOfRange"),
        ({"batch": 1_001}, "WorkVerificationMaxBatchSizeOutOfRange"),
    ],
)
def test_constructor_rejects_bad_parameters(env: Env, change: dict[str, Any], error: str) -> None:
    """Every constructor argument is bounds-checked with the setter's error."""
    args = {
        "admin": env.admin,
        "inbox": env.inbox,
        "outbox": env.outbox.address,
        "chain": ETH_CHAIN_ID,
        "rental": env.gpu_rental,
        "reputation": env.rep.address,
        "bps": MAX_FAIL_BPS,
        "grace": FINALIZE_GRACE,
        "batch": MAX_BATCH,
    } | change
    with reverts(error):
        deploy(env.w3, "etc", "WorkVerification", *args.values())


# ------------------------------------------------------------------ OPEN / CLOSE


def test_open_creates_task(env: Env) -> None:
    """OPEN from GPURental through the inbox creates the task with end = start + duration."""
    start = now(env.w3) - 10
    receipt = env.deliver(open_msg(7, env.provider, env.queen, 4, start, 5_000))
    assert env.wv.functions.taskOf(7).call() == (
        env.provider,
        4,
        start,
        env.queen,
        start + 5_000,
        False,
        False,
    )
    (ev,) = env.wv.events.TaskOpened().process_receipt(receipt, errors=DISCARD)
    assert ev.args.rentalId == 7 and ev.args.queen == env.queen and ev.args.end == start + 5_000


def test_bridge_message_only_from_inbox(env: Env) -> None:
    """Only the configured inbox may deliver."""
    data = open_msg(1, env.provider, env.queen, 1, now(env.w3), HOUR)
    with reverts("WorkVerificationUnauthorizedInbox"):
        send(env.wv.functions.onBridgeMessage(ETH_CHAIN_ID, env.gpu_rental, data), env.stranger)


@pytest.mark.parametrize("wrong", ["chain", "sender"])
def test_bridge_message_only_from_gpu_rental(env: Env, wrong: str) -> None:
    """A message from another chain or another sender contract is refused."""
    data = open_msg(1, env.provider, env.queen, 1, now(env.w3), HOUR)
    with reverts("WorkVerificationUnknownPeer"):
        if wrong == "chain":
            env.deliver(data, src_chain=1)
        else:
            env.deliver(data, sender=env.stranger)


@pytest.mark.parametrize("kind", [RESULT, FEEDBACK, 0, 9])
def test_bridge_message_kind_must_be_open_or_close(env: Env, kind: int) -> None:
    """Kinds other than OPEN and CLOSE are refused."""
    with reverts("WorkVerificationUnsupportedMessage"):
        env.deliver(encode(["uint8", "bytes"], [kind, b"\x00" * 64]))


@pytest.mark.parametrize(
    "field",
    ["provider", "queen", "gpus", "duration", "overflow"],
)
def test_open_rejects_invalid_task(env: Env, field: str) -> None:
    """An OPEN with a zero provider/queen/gpus/duration or an end past 2^64 is refused."""
    zero = "0x" + "00" * 20
    args: dict[str, Any] = {
        "provider": env.provider,
        "queen": env.queen,
        "gpus": 1,
        "start": now(env.w3),
        "duration": HOUR,
    }
    match field:
        case "provider" | "queen":
            args[field] = zero
        case "gpus" | "duration":
            args[field] = 0
        case "overflow":
            args["start"], args["duration"] = 2**64 - 10, 10
    with reverts("WorkVerificationInvalidOpen"):
        env.deliver(
            open_msg(1, args["provider"], args["queen"], args["gpus"], args["start"], args["duration"])
        )


def test_open_twice_is_refused(env: Env) -> None:
    """A rental gets one task."""
    env.open(1)
    with reverts("WorkVerificationTaskExists"):
        env.open(1)


def test_close_moves_end_earlier(env: Env) -> None:
    """CLOSE sets the end to the cancellation time and marks the task closed."""
    start = env.open(1, duration=HOUR)
    receipt = env.deliver(close_msg(1, start + 600))
    task = env.wv.functions.taskOf(1).call()
    assert task[4] == start + 600 and task[5] is True
    (ev,) = env.wv.events.TaskClosed().process_receipt(receipt, errors=DISCARD)
    assert ev.args.end == start + 600


def test_close_is_clamped_to_the_task_window(env: Env) -> None:
    """A cancellation after the scheduled end keeps the end; one before the start ends the task at its start."""
    start = env.open(1, duration=HOUR)
    env.deliver(close_msg(1, start + 10 * HOUR))
    assert env.wv.functions.taskOf(1).call()[4] == start + HOUR
    start2 = env.open(2, start=now(env.w3) + 100, duration=HOUR)
    env.deliver(close_msg(2, start2 - 50))
    assert env.wv.functions.taskOf(2).call()[4] == start2


def test_close_unknown_task_is_refused(env: Env) -> None:
    """A CLOSE that arrives before its OPEN reverts (the relayer retries it)."""
    with reverts("WorkVerificationUnknownTask"):
        env.deliver(close_msg(42, now(env.w3)))


def test_close_after_finalization_is_ignored(env: Env) -> None:
    """A CLOSE for a finalized task changes nothing and emits CloseIgnored."""
    env.open(1, duration=HOUR)
    increase_time(env.w3, HOUR + FINALIZE_GRACE)
    send(env.wv.functions.expire(1), env.stranger)
    before = env.wv.functions.taskOf(1).call()
    receipt = env.deliver(close_msg(1, before[2] + 1))
    assert env.wv.functions.taskOf(1).call() == before
    assert len(env.wv.events.CloseIgnored().process_receipt(receipt, errors=DISCARD)) == 1


# ------------------------------------------------------------------ batches


def test_submit_batch_stores_roots(env: Env) -> None:
    """A batch stores the on-chain results root (matching the Python tree), the records root and its time."""
    for i in range(1, 6):
        env.open(i)
    results = [(i, 10 * i, 9 * i, i // 2, i - i // 2) for i in range(1, 6)]
    records_root = keccak(b"records")
    receipt = env.submit(bid(1), results, records_root=records_root)
    root = merkle_root([result_leaf(bid(1), r) for r in results])
    ts = env.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert env.wv.functions.batchOf(env.queen, bid(1)).call() == (root, records_root, ts)
    (ev,) = env.wv.events.BatchSubmitted().process_receipt(receipt, errors=DISCARD)
    assert (ev.args.queen, ev.args.batchId, ev.args.recordsRoot, ev.args.resultsRoot, ev.args.results) == (
        env.queen,
        bid(1),
        records_root,
        root,
        5,
    )


def test_batch_of_100_then_finalize_with_proof(env: Env) -> None:
    """A batch of 100 results lands in one transaction and any of its results finalizes with its proof."""
    start = now(env.w3)
    for i in range(1, 101):
        env.open(i, start=start, duration=HOUR)
    results = [(i, 100, 100 - i % 7, min(i % 3, i % 7), i % 7 - min(i % 3, i % 7)) for i in range(1, 101)]
    receipt = env.submit(bid(100), results)
    assert receipt["status"] == 1
    increase_time(env.w3, HOUR)
    for index in (0, 37, 99):
        env.finalize(bid(100), results, index)
        r = results[index]
        seconds, failed = expected_verdict(HOUR, r[1], r[2], r[3], MAX_FAIL_BPS)
        assert env.last_result() == (r[0], seconds, failed, r[1], r[2], r[3], r[4])
        assert env.wv.functions.taskOf(r[0]).call()[6] is True


def test_batch_of_one_has_leaf_as_root(env: Env) -> None:
    """A single-result batch's root is its leaf and it finalizes with an empty proof."""
    env.open(1, duration=HOUR)
    env.submit(bid(1), [(1, 4, 4, 0, 0)])
    assert env.wv.functions.batchOf(env.queen, bid(1)).call()[0] == result_leaf(bid(1), (1, 4, 4, 0, 0))
    increase_time(env.w3, HOUR)
    send(env.wv.functions.finalize(1, bid(1), (1, 4, 4, 0, 0), []), env.queen)
    assert env.last_result()[1] == HOUR


def test_batch_id_lands_once(env: Env) -> None:
    """A resent batch id reverts with BatchAlreadySubmitted and leaves the first batch untouched."""
    env.open(1)
    env.submit(bid(5), [(1, 3, 3, 0, 0)])
    first = env.wv.functions.batchOf(env.queen, bid(5)).call()
    with reverts("WorkVerificationBatchAlreadySubmitted"):
        env.submit(bid(5), [(1, 4, 4, 0, 0)])
    assert env.wv.functions.batchOf(env.queen, bid(5)).call() == first


def test_batch_ids_are_per_queen(env: Env) -> None:
    """Another queen using the same batch id does not collide with (or squat) this queen's batch."""
    env.open(1, queen=env.queen)
    env.open(2, queen=env.queen2)
    env.submit(bid(5), [(2, 1, 1, 0, 0)], queen=env.queen2)
    env.submit(bid(5), [(1, 3, 3, 0, 0)], queen=env.queen)
    assert env.wv.functions.batchOf(env.queen2, bid(5)).call()[0] == result_leaf(bid(5), (2, 1, 1, 0, 0))
    assert env.wv.functions.batchOf(env.queen, bid(5)).call()[0] == result_leaf(bid(5), (1, 3, 3, 0, 0))


def test_non_queen_cannot_report(env: Env) -> None:
    """Only the task's queen may put its rental in a batch."""
    env.open(1, queen=env.queen)
    env.open(2, queen=env.queen2)
    with reverts("WorkVerificationNotTaskQueen"):
        env.submit(bid(1), [(2, 1, 1, 0, 0)], queen=env.queen)
    with reverts("WorkVerificationNotTaskQueen"):
        env.submit(bid(1), [(1, 1, 1, 0, 0), (2, 1, 1, 0, 0)], queen=env.queen)
    with reverts("WorkVerificationNotTaskQueen"):
        env.submit(bid(1), [(1, 1, 1, 0, 0)], queen=env.stranger)


def test_batch_for_unknown_task_is_refused(env: Env) -> None:
    """A result for a rental whose OPEN has not arrived reverts with UnknownTask."""
    with reverts("WorkVerificationUnknownTask"):
        env.submit(bid(1), [(9, 1, 1, 0, 0)])


def test_batch_with_inconsistent_result_is_refused(env: Env) -> None:
    """passed + failed + missed may not exceed issued."""
    env.open(1)
    with reverts("WorkVerificationInvalidResult"):
        env.submit(bid(1), [(1, 5, 3, 2, 1)])


@pytest.mark.parametrize("field", [1, 2, 3, 4])
def test_batch_with_count_beyond_uint32_is_refused(env: Env, field: int) -> None:
    """A count that does not fit in uint32 (hand-encoded calldata) is refused, not truncated."""
    env.open(1)
    selector = keccak(text="submitBatch(bytes32,bytes32,(uint256,uint32,uint32,uint32,uint32)[])")[:4]

    def call(result: list[int]) -> Any:
        args = encode(
            ["bytes32", "bytes32", "(uint256,uint256,uint256,uint256,uint256)[]"], [bid(1), bid(2), [result]]
        )
        return env.w3.eth.call({"from": env.queen, "to": env.wv.address, "data": selector + args})

    good = [1, 2**32 - 1, 0, 0, 0]
    call(good)  # well-formed calldata passes
    bad = list(good)
    bad[field] += 2**32
    with pytest.raises(ContractLogicError):
        call(bad)


def test_batch_size_is_bounded(env: Env) -> None:
    """An empty batch, or one above maxBatchSize, is refused."""
    env.open(1)
    with reverts("WorkVerificationInvalidBatchSize"):
        env.submit(bid(1), [])
    send(env.wv.functions.setMaxBatchSize(2), env.admin)
    with reverts("WorkVerificationInvalidBatchSize"):
        env.submit(bid(1), [(1, 1, 1, 0, 0)] * 3)
    env.submit(bid(1), [(1, 1, 1, 0, 0)] * 2)


def test_verify_record_against_records_root(env: Env) -> None:
    """Anyone can check a challenge record against the records root stored for its batch."""
    records = [keccak(text=f"record {i}") for i in range(7)]
    env.open(1)
    env.submit(bid(3), [(1, 7, 7, 0, 0)], records_root=merkle_root(records))
    wv = env.wv.functions
    for i in range(7):
        assert wv.verifyRecord(env.queen, bid(3), records[i], merkle_proof(records, i)).call()
    assert not wv.verifyRecord(env.queen, bid(3), keccak(b"forged"), merkle_proof(records, 0)).call()
    assert not wv.verifyRecord(env.queen2, bid(3), records[0], merkle_proof(records, 0)).call()


def test_result_leaf_matches_python(env: Env) -> None:
    """resultLeaf is keccak256(abi.encode(batchId, result))."""
    r = (123, 2**32 - 1, 7, 8, 9)
    assert env.wv.functions.resultLeaf(bid(77), r).call() == result_leaf(bid(77), r)


# ------------------------------------------------------------------ finalize


def test_finalize_exact_result_message_and_reputation(env: Env) -> None:
    """verifiedSeconds = duration * passed / issued; the RESULT message and reputation carry the counts."""
    start = env.open(1, duration=10_000)
    env.submit(bid(1), [(1, 5, 4, 0, 1)])
    env.submit(bid(2), [(1, 30, 17, 2, 11)])  # cumulative: the later batch supersedes
    increase_time(env.w3, 10_000)
    receipt = env.finalize(bid(2), [(1, 30, 17, 2, 11)], 0)
    assert env.last_result() == (1, 10_000 * 17 // 30, False, 30, 17, 2, 11)
    assert env.last_result()[1] == 5_666
    (ev,) = env.wv.events.TaskFinalized().process_receipt(receipt, errors=DISCARD)
    assert (ev.args.verifiedSeconds, ev.args.failed, ev.args.messageNonce) == (5_666, False, 1)
    assert env.rep.functions.statsOf(env.provider).call() == (30, 17, 2, 11, 1, 0, 0, 0)
    assert env.wv.functions.taskOf(1).call() == (
        env.provider,
        2,
        start,
        env.queen,
        start + 10_000,
        False,
        True,
    )


def test_finalize_failed_verdict_above_threshold(env: Env) -> None:
    """A failed share above maxFailBps fails the verdict; exactly at the threshold does not."""
    env.open(1)
    env.open(2)
    results = [(1, 10, 8, 2, 0), (2, 10, 7, 3, 0)]  # 20% == threshold, 30% > threshold
    env.submit(bid(1), results)
    increase_time(env.w3, HOUR)
    env.finalize(bid(1), results, 0)
    assert env.last_result()[1:3] == (HOUR * 8 // 10, False)
    env.finalize(bid(1), results, 1)
    assert env.last_result()[1:3] == (HOUR * 7 // 10, True)
    assert env.rep.functions.statsOf(env.provider).call()[4:6] == (2, 1)


def test_finalize_with_no_challenges_verifies_nothing(env: Env) -> None:
    """issued == 0 gives zero verified seconds and no failure."""
    env.open(1)
    env.submit(bid(1), [(1, 0, 0, 0, 0)])
    increase_time(env.w3, HOUR)
    env.finalize(bid(1), [(1, 0, 0, 0, 0)], 0)
    assert env.last_result() == (1, 0, False, 0, 0, 0, 0)


def test_finalize_before_end_is_refused(env: Env) -> None:
    """The queen must wait for the task's end."""
    env.open(1, duration=HOUR)
    env.submit(bid(1), [(1, 2, 2, 0, 0)])
    with reverts("WorkVerificationTaskNotEnded"):
        env.finalize(bid(1), [(1, 2, 2, 0, 0)], 0)


def test_finalize_twice_is_refused(env: Env) -> None:
    """A task finalizes once: one RESULT message."""
    env.open(1)
    env.submit(bid(1), [(1, 2, 2, 0, 0)])
    increase_time(env.w3, HOUR)
    env.finalize(bid(1), [(1, 2, 2, 0, 0)], 0)
    with reverts("WorkVerificationTaskAlreadyFinalized"):
        env.finalize(bid(1), [(1, 2, 2, 0, 0)], 0)
    assert env.outbox.functions.sentCount().call() == 1


def test_close_then_finalize_uses_cancellation_time(env: Env) -> None:
    """After CLOSE the queen may finalize at once, over the shortened duration."""
    start = env.open(1, start=now(env.w3) - 2_000, duration=10 * HOUR)  # cancelled 1,000 s ago
    env.submit(bid(1), [(1, 4, 3, 0, 1)])
    env.deliver(close_msg(1, start + 1_000))
    env.finalize(bid(1), [(1, 4, 3, 0, 1)], 0)
    assert env.last_result() == (1, 750, False, 4, 3, 0, 1)


def test_finalize_only_by_task_queen(env: Env) -> None:
    """Neither another queen nor a stranger may finalize."""
    env.open(1)
    env.submit(bid(1), [(1, 2, 2, 0, 0)])
    increase_time(env.w3, HOUR)
    for who in (env.queen2, env.stranger):
        with reverts("WorkVerificationNotTaskQueen"):
            env.finalize(bid(1), [(1, 2, 2, 0, 0)], 0, queen=who)


def test_finalize_unknown_task_is_refused(env: Env) -> None:
    with reverts("WorkVerificationUnknownTask"):
        send(env.wv.functions.finalize(5, bid(1), (5, 1, 1, 0, 0), []), env.queen)


def test_finalize_result_for_other_rental_is_refused(env: Env) -> None:
    """result.rentalId must be the rental being finalized."""
    env.open(1)
    env.open(2)
    env.submit(bid(1), [(2, 1, 1, 0, 0)])
    increase_time(env.w3, HOUR)
    with reverts("WorkVerificationResultMismatch"):
        send(env.wv.functions.finalize(1, bid(1), (2, 1, 1, 0, 0), []), env.queen)


def test_finalize_against_another_queens_batch_is_refused(env: Env) -> None:
    """The proof must be against a batch the task's own queen landed."""
    env.open(1, queen=env.queen)
    env.open(2, queen=env.queen2)
    env.submit(bid(1), [(2, 1, 1, 0, 0)], queen=env.queen2)
    increase_time(env.w3, HOUR)
    with reverts("WorkVerificationUnknownBatch"):
        send(env.wv.functions.finalize(1, bid(1), (1, 1, 1, 0, 0), []), env.queen)


def test_finalize_with_unproven_result_is_refused(env: Env) -> None:
    """A result (or proof) not in the batch is refused."""
    env.open(1)
    env.open(2)
    results = [(1, 10, 5, 5, 0), (2, 10, 10, 0, 0)]
    env.submit(bid(1), results)
    increase_time(env.w3, HOUR)
    leaves = [result_leaf(bid(1), r) for r in results]
    with reverts("WorkVerificationInvalidProof"):
        send(env.wv.functions.finalize(1, bid(1), (1, 10, 10, 0, 0), merkle_proof(leaves, 0)), env.queen)
    with reverts("WorkVerificationInvalidProof"):
        send(env.wv.functions.finalize(1, bid(1), results[0], [keccak(b"x")]), env.queen)


# ------------------------------------------------------------------ expiry


def test_expire_after_grace(env: Env) -> None:
    """Anyone may expire an unfinalized task after end + grace: zero seconds, not failed, no reputation."""
    env.open(1, duration=HOUR)
    env.submit(bid(1), [(1, 5, 0, 5, 0)])
    increase_time(env.w3, HOUR + FINALIZE_GRACE)
    receipt = send(env.wv.functions.expire(1), env.stranger)
    assert env.last_result() == (1, 0, False, 0, 0, 0, 0)
    (ev,) = env.wv.events.TaskExpired().process_receipt(receipt, errors=DISCARD)
    assert (ev.args.caller, ev.args.messageNonce) == (env.stranger, 1)
    assert env.rep.functions.statsOf(env.provider).call()[4] == 0
    with reverts("WorkVerificationTaskAlreadyFinalized"):
        env.finalize(bid(1), [(1, 5, 0, 5, 0)], 0)
    with reverts("WorkVerificationTaskAlreadyFinalized"):
        send(env.wv.functions.expire(1), env.stranger)


def test_expire_before_grace_is_refused(env: Env) -> None:
    """Within the grace period only the queen can finalize."""
    env.open(1, duration=HOUR)
    increase_time(env.w3, HOUR + FINALIZE_GRACE - 100)
    with reverts("WorkVerificationGraceNotOver"):
        send(env.wv.functions.expire(1), env.stranger)


def test_expire_unknown_task_is_refused(env: Env) -> None:
    with reverts("WorkVerificationUnknownTask"):
        send(env.wv.functions.expire(3), env.stranger)


def test_expire_after_finalize_is_refused(env: Env) -> None:
    env.open(1)
    env.submit(bid(1), [(1, 1, 1, 0, 0)])
    increase_time(env.w3, HOUR + FINALIZE_GRACE)
    env.finalize(bid(1), [(1, 1, 1, 0, 0)], 0)
    with reverts("WorkVerificationTaskAlreadyFinalized"):
        send(env.wv.functions.expire(1), env.stranger)


# ------------------------------------------------------------------ governance


def test_setters_update_and_emit(env: Env) -> None:
    """Every GOVERNOR_ROLE setter stores its value and emits its event."""
    wv = env.wv
    new = list(env.w3.eth.accounts)[8]
    cases = [
        (wv.functions.setInbox(new), wv.functions.inbox(), new, wv.events.InboxChanged),
        (wv.functions.setOutbox(new), wv.functions.outbox(), new, wv.events.OutboxChanged),
        (wv.functions.setReputation(new), wv.functions.reputation(), new, wv.events.ReputationChanged),
        (wv.functions.setMaxFailBps(10_000), wv.functions.maxFailBps(), 10_000, wv.events.MaxFailBpsChanged),
        (
            wv.functions.setFinalizeGrace(HOUR),
            wv.functions.finalizeGrace(),
            HOUR,
            wv.events.FinalizeGraceChanged,
        ),
        (
            wv.functions.setMaxBatchSize(1_000),
            wv.functions.maxBatchSize(),
            1_000,
            wv.events.MaxBatchSizeChanged,
        ),
        (
            wv.functions.setChallengeInterval(60),
            wv.functions.challengeInterval(),
            60,
            wv.events.ChallengeIntervalChanged,
        ),
    ]
    for setter, getter, value, event in cases:
        receipt = send(setter, env.admin)
        assert getter.call() == value
        assert list(event().process_receipt(receipt, errors=DISCARD)[0].args.values()) == [value]
    receipt = send(wv.functions.setPeer(1, new), env.admin)
    assert (wv.functions.ethChainId().call(), wv.functions.gpuRental().call()) == (1, new)
    ev = wv.events.PeerChanged().process_receipt(receipt, errors=DISCARD)[0]
    assert (ev.args.ethChainId, ev.args.gpuRental) == (1, new)


def test_setters_require_governor_role(env: Env) -> None:
    """A caller without GOVERNOR_ROLE cannot change any parameter."""
    wv = env.wv.functions
    new = list(env.w3.eth.accounts)[8]
    for fn in (
        wv.setInbox(new),
        wv.setOutbox(new),
        wv.setPeer(1, new),
        wv.setReputation(new),
        wv.setMaxFailBps(1),
        wv.setFinalizeGrace(HOUR),
        wv.setMaxBatchSize(1),
        wv.setChallengeInterval(60),
        wv.setQuarantine(20, 4, 600),
    ):
        with reverts("AccessControlUnauthorizedAccount"):
            send(fn, env.stranger)


def test_setters_check_bounds(env: Env) -> None:
    """Setters refuse zero addresses, bad chain ids and out-of-range values."""
    wv = env.wv.functions
    zero = "0x" + "00" * 20
    cases = [
        (wv.setInbox(zero), "WorkVerificationZeroAddress"),
        (wv.setOutbox(zero), "WorkVerificationZeroAddress"),
        (wv.setReputation(zero), "WorkVerificationZeroAddress"),
        (wv.setPeer(ETH_CHAIN_ID, zero), "WorkVerificationZeroAddress"),
        (wv.setPeer(0, env.gpu_rental), "WorkVerificationInvalidChainId"),
        (wv.setPeer(63, env.gpu_rental), "WorkVerificationInvalidChainId"),
        (wv.setMaxFailBps(10_001), "WorkVerificationMaxFailBpsOutOfRange"),
        (wv.setFinalizeGrace(HOUR - 1), "WorkVerificationFinalizeGraceOutOfRange"),
        (wv.setFinalizeGrace(90 * 86_400 + 1), "WorkVerificationFinalizeGraceOutOfRange"),
        (wv.setMaxBatchSize(0), "WorkVerificationMaxBatchSizeOutOfRange"),
        (wv.setMaxBatchSize(1_001), "WorkVerificationMaxBatchSizeOutOfRange"),
        (wv.setChallengeInterval(9), "WorkVerificationChallengeIntervalOutOfRange"),
        (wv.setChallengeInterval(86_401), "WorkVerificationChallengeIntervalOutOfRange"),
    ]
    for fn, error in cases:
        with reverts(error):
            send(fn, env.admin)


def test_quarantine_is_set_in_one_call_within_its_bounds(env: Env) -> None:
    """setQuarantine(window, failures, duration) stores all three (one slot) and emits QuarantineChanged; window
    1..1000, failures 0 (off)..window, duration 1 minute..30 days, each refused with its own error."""
    wv = env.wv
    for window, failures, duration in ((1, 0, 60), (1_000, 1_000, 30 * 86_400), (20, 3, 600)):
        receipt = send(wv.functions.setQuarantine(window, failures, duration), env.admin)
        assert wv.functions.quarantine().call() == [window, failures, duration]
        (ev,) = wv.events.QuarantineChanged().process_receipt(receipt, errors=DISCARD)
        assert (ev.args.window, ev.args.failures, ev.args.duration) == (window, failures, duration)
    for args, error in (
        ((0, 0, 600), "WorkVerificationQuarantineWindowOutOfRange"),
        ((1_001, 5, 600), "WorkVerificationQuarantineWindowOutOfRange"),
        ((10, 11, 600), "WorkVerificationQuarantineFailuresOutOfRange"),
        ((10, 5, 59), "WorkVerificationQuarantineDurationOutOfRange"),
        ((10, 5, 30 * 86_400 + 1), "WorkVerificationQuarantineDurationOutOfRange"),
        ((10, 5, 2**32 + 600), "WorkVerificationQuarantineDurationOutOfRange"),  # never truncated into bounds
    ):
        with reverts(error):
            send(wv.functions.setQuarantine(*args), env.admin)
    assert wv.functions.quarantine().call() == [20, 3, 600]


def test_new_max_fail_bps_applies_to_verdicts(env: Env) -> None:
    """maxFailBps is read at finalization."""
    env.open(1)
    env.submit(bid(1), [(1, 10, 9, 1, 0)])
    send(env.wv.functions.setMaxFailBps(500), env.admin)
    increase_time(env.w3, HOUR)
    env.finalize(bid(1), [(1, 10, 9, 1, 0)], 0)
    assert env.last_result()[2] is True


# ------------------------------------------------------------------ properties


def test_verdict_matches_formula_for_random_counts(env: Env) -> None:
    """verdict(): verifiedSeconds <= effectiveDuration and failed iff failed * 10000 > issued * maxFailBps."""

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[Result, int, int]:
        issued = draw(st.integers(0, 2**32 - 1))
        passed = draw(st.integers(0, issued))
        failed = draw(st.integers(0, issued - passed))
        missed = draw(st.integers(0, issued - passed - failed))
        return (
            (1, issued, passed, failed, missed),
            draw(st.integers(0, 2**64 - 1)),
            draw(st.integers(0, 10_000)),
        )

    from hypothesis import given

    @settings(max_examples=40, deadline=None)
    @given(cases())
    def check(case: tuple[Result, int, int]) -> None:
        result, duration, bps = case
        if env.wv.functions.maxFailBps().call() != bps:
            send(env.wv.functions.setMaxFailBps(bps), env.admin)
        seconds, failed = env.wv.functions.verdict(result, duration).call()
        assert seconds <= duration
        assert (seconds, failed) == expected_verdict(duration, result[1], result[2], result[3], bps)

    check()


class VerificationMachine(RuleBasedStateMachine):
    """Random opens, closes, cumulative batches, finalizations and expiries against a Python model."""

    env: Env

    def __init__(self) -> None:
        super().__init__()
        self.w3 = self.env.w3
        self.snap = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.tasks: dict[int, dict[str, Any]] = {}
        self.batches = 0
        self.results_sent = 0

    def teardown(self) -> None:
        self.w3.provider.make_request("evm_revert", [self.snap])  # type: ignore[arg-type]

    def _reached(self, deadline: int, wait: bool) -> bool:
        """Whether the next block will be at or past ``deadline``, moving the clock there first if ``wait`` or if
        it is only a few seconds away (so the outcome never depends on the wall clock)."""
        gap = deadline - now(self.w3)
        if gap > 0 and (wait or gap <= 5):
            increase_time(self.w3, gap)
            gap = 0
        return gap <= 0

    def _live(self) -> list[int]:
        return [r for r, t in self.tasks.items() if not t["finalized"]]

    def _open(self, duration: int, queen2: bool) -> None:
        rid = len(self.tasks) + 1
        queen = self.env.queen2 if queen2 else self.env.queen
        start = self.env.open(rid, duration=duration, queen=queen)
        self.tasks[rid] = {
            "start": start,
            "end": start + duration,
            "queen": queen,
            "counts": (0, 0, 0, 0),
            "proof": None,
            "finalized": False,
        }

    @initialize(tasks=st.lists(st.tuples(st.integers(1, 2 * HOUR), st.booleans()), min_size=2, max_size=5))
    def open_tasks(self, tasks: list[tuple[int, bool]]) -> None:
        for duration, queen2 in tasks:
            self._open(duration, queen2)

    @rule(duration=st.integers(1, 2 * HOUR), queen2=st.booleans())
    def open(self, duration: int, queen2: bool) -> None:
        self._open(duration, queen2)

    @precondition(lambda self: self._live())
    @rule(data=st.data(), elapsed=st.integers(0, HOUR))
    def report(self, data: st.DataObject, elapsed: int) -> None:
        """After ``elapsed`` seconds the queen of a random live task lands a batch with new cumulative counts for
        some of its tasks."""
        if elapsed:
            increase_time(self.w3, elapsed)
        first = self.tasks[data.draw(st.sampled_from(self._live()))]
        queen = first["queen"]
        mine = [r for r in self._live() if self.tasks[r]["queen"] == queen]
        chosen = data.draw(st.lists(st.sampled_from(mine), min_size=1, max_size=8, unique=True))
        results = []
        for rid in chosen:
            issued, passed, failed, missed = self.tasks[rid]["counts"]
            step = data.draw(st.tuples(*[st.integers(0, 20)] * 3))
            counts = (issued + sum(step), passed + step[0], failed + step[1], missed + step[2])
            self.tasks[rid]["counts"] = counts
            results.append((rid, *counts))
        self.batches += 1
        batch = bid(self.batches)
        self.env.submit(batch, results, queen=queen)
        for i, r in enumerate(results):
            self.tasks[r[0]]["proof"] = (batch, results, i)

    @precondition(lambda self: self._live())
    @rule(data=st.data(), offset=st.integers(-HOUR, 6 * HOUR))
    def cancel(self, data: st.DataObject, offset: int) -> None:
        rid = data.draw(st.sampled_from(self._live()))
        t = self.tasks[rid]
        self.env.deliver(close_msg(rid, max(0, t["start"] + offset)))
        t["end"] = min(t["end"], max(t["start"], t["start"] + offset))

    @precondition(lambda self: any(self.tasks[r]["proof"] for r in self._live()))
    @rule(data=st.data(), bps=st.integers(0, 10_000), wait=st.booleans())
    def finalize(self, data: st.DataObject, bps: int, wait: bool) -> None:
        """The queen finalizes with its latest result (waiting for the end first, or expecting TaskNotEnded)."""
        rid = data.draw(st.sampled_from([r for r in self._live() if self.tasks[r]["proof"]]))
        t = self.tasks[rid]
        send(self.env.wv.functions.setMaxFailBps(bps), self.env.admin)
        batch, results, index = t["proof"]
        if not self._reached(t["end"], wait):
            with reverts("WorkVerificationTaskNotEnded"):
                self.env.finalize(batch, results, index, queen=t["queen"])
            return
        self.env.finalize(batch, results, index, queen=t["queen"])
        t["finalized"] = True
        self.results_sent += 1
        r = results[index]
        duration = t["end"] - t["start"]
        rid_, seconds, failed, *counts = self.env.last_result()
        assert rid_ == rid and tuple(counts) == r[1:] == t["counts"]
        assert seconds <= duration
        assert (seconds, failed) == expected_verdict(duration, r[1], r[2], r[3], bps)

    @precondition(lambda self: self._live())
    @rule(data=st.data(), wait=st.booleans())
    def expire(self, data: st.DataObject, wait: bool) -> None:
        """Anyone expires a task after its grace (waiting for it first, or expecting GraceNotOver)."""
        rid = data.draw(st.sampled_from(self._live()))
        t = self.tasks[rid]
        if not self._reached(t["end"] + FINALIZE_GRACE, wait):
            with reverts("WorkVerificationGraceNotOver"):
                send(self.env.wv.functions.expire(rid), self.env.stranger)
            return
        send(self.env.wv.functions.expire(rid), self.env.stranger)
        t["finalized"] = True
        self.results_sent += 1
        assert self.env.last_result() == (rid, 0, False, 0, 0, 0, 0)

    @invariant()
    def one_result_per_finalized_task(self) -> None:
        assert self.env.outbox.functions.sentCount().call() == self.results_sent
        for rid, t in self.tasks.items():
            assert self.env.wv.functions.taskOf(rid).call()[6] is t["finalized"]


def test_verification_state_machine(env: Env) -> None:
    """Invariants: every RESULT has verifiedSeconds <= effective duration and the threshold verdict; one per task."""
    VerificationMachine.env = env
    run_state_machine_as_test(
        VerificationMachine, settings=settings(max_examples=10, stateful_step_count=12, deadline=None)
    )
