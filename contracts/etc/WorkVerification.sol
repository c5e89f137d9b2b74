// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IBridgeOutbox} from "../interfaces/IBridge.sol";
import {IReputationSystem} from "../interfaces/IReputationSystem.sol";
import {IWorkVerification} from "../interfaces/IWorkVerification.sol";
import {RentalMessages} from "../interfaces/RentalMessages.sol";

/// @title WorkVerification
/// @notice Verification tasks for GPU rentals, on Ethereum Classic.
///
/// Lifecycle: GPURental (ETH) opens a task per rental over the bridge (OPEN) and may end it early when the renter
/// cancels (CLOSE). The task's queen challenges the provider and lands batches of results: each result is the
/// rental's CUMULATIVE challenge counts since the task opened. Per batch only the Merkle root of its results
/// (computed here, leaf = keccak256(abi.encode(batchId, result)), sorted-pair hashing as in OpenZeppelin's
/// MerkleProof, an odd node promoted unchanged to the next level) and the root of the queen's challenge records
/// are stored, which keeps a result near 4,400 gas in a batch of 100. After the task ends the queen finalizes it
/// with its final cumulative result and the proof of that result in one of its batches; the verdict goes back to
/// GPURental as a RESULT message and into the ReputationSystem. If the queen never finalizes, anyone may expire
/// the task after `finalizeGrace` with zero verified seconds and failed = false (renter refunded, nobody
/// slashed).
///
/// Trust model: the task's queen (named by GPURental in OPEN) is trusted for its verdicts: it picks which of its
/// landed results is final. What the chain guarantees: only that queen reports for and finalizes its tasks, a
/// batch lands once and is immutable, every result is internally consistent (passed + failed + missed <=
/// issued), and every verdict is auditable: the finalized result is proven against a landed results root, and
/// every challenge record behind it can be checked against the batch's records root (verifyRecord).
///
/// Batch ids are namespaced by queen, so nobody can squat another queen's batch id. A queen that resends a
/// landed batch gets WorkVerificationBatchAlreadySubmitted, which its relayer treats as "already landed".
/// Results may only name open tasks of the caller: a queen must hold back results for a rental whose OPEN has
/// not reached ETC yet (cumulative counts make that free: the next batch carries them).
///
/// Times: a task's start and cancellation time are ETH block timestamps; they are compared with ETC block
/// timestamps, which is sound as both chains track wall-clock time closely relative to rental durations.
contract WorkVerification is IWorkVerification, AccessControl {
    /// @notice Holder of every parameter setter (the bridge governance executor after deployment).
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");

    uint256 private constant _BPS = 10_000;
    uint256 private constant _MIN_FINALIZE_GRACE = 1 hours;
    uint256 private constant _MAX_FINALIZE_GRACE = 90 days;
    uint256 private constant _MAX_BATCH_SIZE_LIMIT = 1_000;
    uint256 private constant _MIN_CHALLENGE_INTERVAL = 10 seconds;
    uint256 private constant _MAX_CHALLENGE_INTERVAL = 1 days;
    uint256 private constant _MAX_QUARANTINE_WINDOW = 1_000;
    uint256 private constant _MIN_QUARANTINE_DURATION = 1 minutes;
    uint256 private constant _MAX_QUARANTINE_DURATION = 30 days;

    /// @dev The queens' quarantine bounds, in one slot. No task, batch or verdict reads them: only the queens do
    /// (through quarantine()), to cut off providers whose recent challenges fail.
    struct Quarantine {
        uint16 window; // recent decided challenges judged, 1..1000
        uint16 failures; // failed or abandoned among them that quarantine the provider, 0 (off)..window
        uint32 duration; // seconds a quarantine lasts, 1 minute..30 days
    }

    mapping(uint256 rentalId => Task) private _tasks;
    mapping(address queen => mapping(bytes32 batchId => Batch)) private _batches;

    address private _inbox;
    IBridgeOutbox private _outbox;
    uint256 private _ethChainId;
    address private _gpuRental;
    IReputationSystem private _reputation;
    uint256 private _maxFailBps;
    uint256 private _finalizeGrace;
    uint256 private _maxBatchSize;
    uint256 private _challengeInterval;
    Quarantine private _quarantine;

    /// @param admin receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE.
    /// @param inbox_ the bridge inbox that delivers OPEN/CLOSE.
    /// @param outbox_ the bridge outbox RESULT messages go through (must authorize this contract as a sender).
    /// @param ethChainId_ GPURental's chain id.
    /// @param gpuRental_ GPURental's address on that chain.
    /// @param reputation_ the ReputationSystem (must grant this contract RECORDER_ROLE).
    /// @param maxFailBps_ failed-challenge share (bps of issued) above which the verdict is failed, <= 10000.
    /// @param finalizeGrace_ seconds after a task's end before anyone may expire it, 1 hour..90 days.
    /// @param maxBatchSize_ most results per batch, 1..1000.
    /// The challenge interval starts at 5 minutes (setChallengeInterval); the quarantine at 5 failures of the last 10
    /// challenges for 1 hour (setQuarantine).
    constructor(
        address admin,
        address inbox_,
        IBridgeOutbox outbox_,
        uint256 ethChainId_,
        address gpuRental_,
        IReputationSystem reputation_,
        uint256 maxFailBps_,
        uint256 finalizeGrace_,
        uint256 maxBatchSize_
    ) {
        if (admin == address(0)) revert WorkVerificationZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
        _setInbox(inbox_);
        _setOutbox(outbox_);
        _setPeer(ethChainId_, gpuRental_);
        _setReputation(reputation_);
        _setMaxFailBps(maxFailBps_);
        _setFinalizeGrace(finalizeGrace_);
        _setMaxBatchSize(maxBatchSize_);
        _setChallengeInterval(5 minutes);
        _setQuarantine(10, 5, 1 hours);
    }

    // ---------------------------------------------------------------- bridge

    /// @notice Receives OPEN (creates a task) and CLOSE (the renter cancelled: the task ends at the
    /// cancellation time, if that is earlier) from GPURental.
    /// Requirements:
    /// - the caller is the inbox and (`srcChainId`, `sender`) is the GPURental peer;
    /// - the message is an OPEN or a CLOSE;
    /// - OPEN: no task exists for the rental; provider and queen are non-zero, gpus and duration positive, and
    ///   start + duration fits in 64 bits;
    /// - CLOSE: the task exists (a CLOSE for a finalized task changes nothing and emits CloseIgnored).
    function onBridgeMessage(uint256 srcChainId, address sender, bytes calldata data) external {
        if (msg.sender != _inbox) revert WorkVerificationUnauthorizedInbox(msg.sender);
        if (srcChainId != _ethChainId || sender != _gpuRental) revert WorkVerificationUnknownPeer(srcChainId, sender);
        (uint8 kind, bytes memory body) = RentalMessages.kindOf(data);
        if (kind == RentalMessages.OPEN) {
            _open(abi.decode(body, (RentalMessages.Open)));
        } else if (kind == RentalMessages.CLOSE) {
            _close(abi.decode(body, (RentalMessages.Close)));
        } else {
            revert WorkVerificationUnsupportedMessage(kind);
        }
    }

    // ---------------------------------------------------------------- queens

    /// @inheritdoc IWorkVerification
    function submitBatch(bytes32 batchId, bytes32 recordsRoot, Result[] calldata results) external {
        uint256 n = results.length;
        if (n == 0 || n > _maxBatchSize) revert WorkVerificationInvalidBatchSize(n, _maxBatchSize);
        Batch storage batch = _batches[msg.sender][batchId];
        if (batch.submittedAt != 0) revert WorkVerificationBatchAlreadySubmitted(msg.sender, batchId);

        bytes32[] memory nodes = new bytes32[](n);
        uint256 bad = _hashResults(batchId, results, nodes);
        if (bad != 0) _revertBadResult(results[bad - 1]);
        bytes32 resultsRoot = _merkleRoot(nodes);

        batch.resultsRoot = resultsRoot;
        batch.recordsRoot = recordsRoot;
        batch.submittedAt = uint64(block.timestamp);
        emit BatchSubmitted(msg.sender, batchId, recordsRoot, resultsRoot, n);
    }

    /// @inheritdoc IWorkVerification
    function finalize(uint256 rentalId, bytes32 batchId, Result calldata result, bytes32[] calldata proof) external {
        Task storage task = _tasks[rentalId];
        address queen = task.queen;
        if (queen == address(0)) revert WorkVerificationUnknownTask(rentalId);
        if (task.finalized) revert WorkVerificationTaskAlreadyFinalized(rentalId);
        if (msg.sender != queen) revert WorkVerificationNotTaskQueen(rentalId, msg.sender);
        if (block.timestamp < task.end) revert WorkVerificationTaskNotEnded(rentalId, task.end);
        if (result.rentalId != rentalId) revert WorkVerificationResultMismatch(rentalId, result.rentalId);
        _proveResult(queen, batchId, result, proof);
        task.finalized = true;

        RentalMessages.Result memory m = RentalMessages.Result({
            rentalId: rentalId,
            verifiedSeconds: 0,
            failed: false,
            issued: result.issued,
            passed: result.passed,
            failedCount: result.failedCount,
            missed: result.missed
        });
        (m.verifiedSeconds, m.failed) = _verdict(m.issued, m.passed, m.failedCount, task.end - task.start);
        uint256 nonce = _sendResult(m);
        _reputation.recordOutcome(task.provider, m.issued, m.passed, m.failedCount, m.missed, m.failed);
        emit TaskFinalized(
            rentalId, queen, batchId, m.verifiedSeconds, m.failed, m.issued, m.passed, m.failedCount, m.missed, nonce
        );
    }

    /// @inheritdoc IWorkVerification
    function expire(uint256 rentalId) external {
        Task storage task = _tasks[rentalId];
        if (task.queen == address(0)) revert WorkVerificationUnknownTask(rentalId);
        if (task.finalized) revert WorkVerificationTaskAlreadyFinalized(rentalId);
        uint256 expiresAt = uint256(task.end) + _finalizeGrace;
        if (block.timestamp < expiresAt) revert WorkVerificationGraceNotOver(rentalId, expiresAt);
        task.finalized = true;

        uint256 nonce = _sendResult(
            RentalMessages.Result({
                rentalId: rentalId,
                verifiedSeconds: 0,
                failed: false,
                issued: 0,
                passed: 0,
                failedCount: 0,
                missed: 0
            })
        );
        emit TaskExpired(rentalId, msg.sender, nonce);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IWorkVerification
    function setInbox(address inbox_) external onlyRole(GOVERNOR_ROLE) {
        _setInbox(inbox_);
    }

    /// @inheritdoc IWorkVerification
    function setOutbox(IBridgeOutbox outbox_) external onlyRole(GOVERNOR_ROLE) {
        _setOutbox(outbox_);
    }

    /// @inheritdoc IWorkVerification
    function setPeer(uint256 ethChainId_, address gpuRental_) external onlyRole(GOVERNOR_ROLE) {
        _setPeer(ethChainId_, gpuRental_);
    }

    /// @inheritdoc IWorkVerification
    function setReputation(IReputationSystem reputation_) external onlyRole(GOVERNOR_ROLE) {
        _setReputation(reputation_);
    }

    /// @inheritdoc IWorkVerification
    function setMaxFailBps(uint256 maxFailBps_) external onlyRole(GOVERNOR_ROLE) {
        _setMaxFailBps(maxFailBps_);
    }

    /// @inheritdoc IWorkVerification
    function setFinalizeGrace(uint256 finalizeGrace_) external onlyRole(GOVERNOR_ROLE) {
        _setFinalizeGrace(finalizeGrace_);
    }

    /// @inheritdoc IWorkVerification
    function setMaxBatchSize(uint256 maxBatchSize_) external onlyRole(GOVERNOR_ROLE) {
        _setMaxBatchSize(maxBatchSize_);
    }

    /// @inheritdoc IWorkVerification
    function setChallengeInterval(uint256 challengeInterval_) external onlyRole(GOVERNOR_ROLE) {
        _setChallengeInterval(challengeInterval_);
    }

    /// @inheritdoc IWorkVerification
    function setQuarantine(uint256 window, uint256 failures, uint256 duration) external onlyRole(GOVERNOR_ROLE) {
        _setQuarantine(window, failures, duration);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IWorkVerification
    function taskOf(uint256 rentalId) external view returns (Task memory) {
        return _tasks[rentalId];
    }

    /// @inheritdoc IWorkVerification
    function batchOf(address queen, bytes32 batchId) external view returns (Batch memory) {
        return _batches[queen][batchId];
    }

    /// @inheritdoc IWorkVerification
    function verifyRecord(address queen, bytes32 batchId, bytes32 recordLeaf, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        Batch storage batch = _batches[queen][batchId];
        return batch.submittedAt != 0 && MerkleProof.verifyCalldata(proof, batch.recordsRoot, recordLeaf);
    }

    /// @inheritdoc IWorkVerification
    function resultLeaf(bytes32 batchId, Result calldata result) external pure returns (bytes32) {
        return keccak256(abi.encode(batchId, result));
    }

    /// @inheritdoc IWorkVerification
    function verdict(Result calldata result, uint64 effectiveDuration)
        external
        view
        returns (uint64 verifiedSeconds, bool failed)
    {
        return _verdict(result.issued, result.passed, result.failedCount, effectiveDuration);
    }

    /// @inheritdoc IWorkVerification
    function inbox() external view returns (address) {
        return _inbox;
    }

    /// @inheritdoc IWorkVerification
    function outbox() external view returns (IBridgeOutbox) {
        return _outbox;
    }

    /// @inheritdoc IWorkVerification
    function ethChainId() external view returns (uint256) {
        return _ethChainId;
    }

    /// @inheritdoc IWorkVerification
    function gpuRental() external view returns (address) {
        return _gpuRental;
    }

    /// @inheritdoc IWorkVerification
    function reputation() external view returns (IReputationSystem) {
        return _reputation;
    }

    /// @inheritdoc IWorkVerification
    function maxFailBps() external view returns (uint256) {
        return _maxFailBps;
    }

    /// @inheritdoc IWorkVerification
    function finalizeGrace() external view returns (uint256) {
        return _finalizeGrace;
    }

    /// @inheritdoc IWorkVerification
    function maxBatchSize() external view returns (uint256) {
        return _maxBatchSize;
    }

    /// @inheritdoc IWorkVerification
    function challengeInterval() external view returns (uint256) {
        return _challengeInterval;
    }

    /// @inheritdoc IWorkVerification
    function quarantine() external view returns (uint256 window, uint256 failures, uint256 duration) {
        Quarantine memory q = _quarantine;
        return (q.window, q.failures, q.duration);
    }

    // ---------------------------------------------------------------- internals

    function _open(RentalMessages.Open memory m) private {
        if (
            m.provider == address(0) || m.queen == address(0) || m.gpus == 0 || m.duration == 0
                || uint256(m.start) + m.duration > type(uint64).max
        ) revert WorkVerificationInvalidOpen(m.rentalId);
        Task storage task = _tasks[m.rentalId];
        if (task.queen != address(0)) revert WorkVerificationTaskExists(m.rentalId);
        uint64 end = m.start + m.duration;
        task.provider = m.provider;
        task.gpus = m.gpus;
        task.start = m.start;
        task.queen = m.queen;
        task.end = end;
        emit TaskOpened(m.rentalId, m.provider, m.queen, m.gpus, m.start, end);
    }

    function _close(RentalMessages.Close memory m) private {
        Task storage task = _tasks[m.rentalId];
        if (task.queen == address(0)) revert WorkVerificationUnknownTask(m.rentalId);
        if (task.finalized) {
            // The verdict already went back to ETH; a late CLOSE must not wedge the bridge.
            emit CloseIgnored(m.rentalId);
            return;
        }
        uint64 start = task.start;
        uint64 end = m.endTime < start ? start : m.endTime;
        if (end > task.end) end = task.end; // cancelled after the rental had already run its course
        task.end = end;
        task.closed = true;
        emit TaskClosed(m.rentalId, end);
    }

    /// @dev Reverts unless `queen` landed `batchId` and `proof` proves `result` against its results root.
    function _proveResult(address queen, bytes32 batchId, Result calldata result, bytes32[] calldata proof)
        private
        view
    {
        Batch storage batch = _batches[queen][batchId];
        if (batch.submittedAt == 0) revert WorkVerificationUnknownBatch(queen, batchId);
        // abi.encode validates the calldata fields; for valid values it hashes what _hashResults hashed.
        if (!MerkleProof.verifyCalldata(proof, batch.resultsRoot, keccak256(abi.encode(batchId, result)))) {
            revert WorkVerificationInvalidProof(result.rentalId, batchId);
        }
    }

    function _sendResult(RentalMessages.Result memory m) private returns (uint256 nonce) {
        return _outbox.sendMessage(_ethChainId, _gpuRental, RentalMessages.encodeResult(m));
    }

    function _verdict(uint32 issued, uint32 passed, uint32 failedCount, uint64 effectiveDuration)
        private
        view
        returns (uint64 verifiedSeconds, bool failed)
    {
        if (issued == 0) return (0, false);
        // passed <= issued for every landed result, so verifiedSeconds <= effectiveDuration; min() guards views.
        uint256 p = passed > issued ? issued : passed;
        verifiedSeconds = uint64((uint256(effectiveDuration) * p) / issued);
        failed = uint256(failedCount) * _BPS > uint256(issued) * _maxFailBps;
    }

    /// @dev The gas-critical loop of submitBatch, one pass over the calldata array (Result is five static words,
    /// so element i sits at results.offset + i * 0xa0; the ABI decoder has already checked the array fits in
    /// calldata). For each result it checks that the task's queen (low 160 bits of the Task's second slot) is the
    /// caller, that every count fits in uint32 and that passed + failedCount + missed <= issued, and writes
    /// keccak256(abi.encode(batchId, result)) to nodes[i]. Returns 0 if all results are good, else 1 + the index
    /// of the first bad one, for _revertBadResult to explain. One cold SLOAD and no storage write per result.
    function _hashResults(bytes32 batchId, Result[] calldata results, bytes32[] memory nodes)
        private
        view
        returns (uint256 bad)
    {
        assembly ("memory-safe") {
            let tasksSlot := _tasks.slot
            let scratch := mload(0x40) // 0xc0 bytes past the free memory pointer, never allocated
            let out := add(nodes, 0x20)
            let n := results.length
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let r := add(results.offset, mul(i, 0xa0))
                let issued := calldataload(add(r, 0x20))
                let passed := calldataload(add(r, 0x40))
                let failedCount := calldataload(add(r, 0x60))
                let missed := calldataload(add(r, 0x80))
                mstore(0x00, calldataload(r))
                mstore(0x20, tasksSlot)
                let queen := and(sload(add(keccak256(0x00, 0x40), 1)), 0xffffffffffffffffffffffffffffffffffffffff)
                if or(
                    or(iszero(eq(queen, caller())), gt(or(or(issued, passed), or(failedCount, missed)), 0xffffffff)),
                    gt(add(add(passed, failedCount), missed), issued)
                ) {
                    bad := add(i, 1)
                    break
                }
                mstore(scratch, batchId)
                calldatacopy(add(scratch, 0x20), r, 0xa0)
                mstore(add(out, shl(5, i)), keccak256(scratch, 0xc0))
            }
        }
    }

    /// @dev Reverts with the reason `r` was refused by _hashResults (the ABI decoder itself refuses a count that
    /// does not fit in uint32).
    function _revertBadResult(Result calldata r) private view {
        address queen = _tasks[r.rentalId].queen;
        if (queen == address(0)) revert WorkVerificationUnknownTask(r.rentalId);
        if (queen != msg.sender) revert WorkVerificationNotTaskQueen(r.rentalId, msg.sender);
        revert WorkVerificationInvalidResult(r.rentalId);
    }

    /// @dev Root over `nodes` (overwritten): each level pairs neighbours with sorted-pair hashing; an odd last
    /// node moves up unchanged. Proofs verify with OpenZeppelin's MerkleProof.
    function _merkleRoot(bytes32[] memory nodes) private pure returns (bytes32 root) {
        assembly ("memory-safe") {
            let data := add(nodes, 0x20)
            for { let n := mload(nodes) } gt(n, 1) {} {
                let half := shr(1, n)
                for { let i := 0 } lt(i, half) { i := add(i, 1) } {
                    let a := mload(add(data, shl(6, i))) // nodes[2i]
                    let b := mload(add(data, add(shl(6, i), 0x20))) // nodes[2i + 1]
                    // sorted-pair hashing, as OpenZeppelin's Hashes.commutativeKeccak256
                    switch lt(a, b)
                    case 1 {
                        mstore(0x00, a)
                        mstore(0x20, b)
                    }
                    default {
                        mstore(0x00, b)
                        mstore(0x20, a)
                    }
                    mstore(add(data, shl(5, i)), keccak256(0x00, 0x40))
                }
                if and(n, 1) {
                    mstore(add(data, shl(5, half)), mload(add(data, shl(5, sub(n, 1)))))
                    half := add(half, 1)
                }
                n := half
            }
            root := mload(data)
        }
    }

    function _setInbox(address inbox_) private {
        if (inbox_ == address(0)) revert WorkVerificationZeroAddress();
        _inbox = inbox_;
        emit InboxChanged(inbox_);
    }

    function _setOutbox(IBridgeOutbox outbox_) private {
        if (address(outbox_) == address(0)) revert WorkVerificationZeroAddress();
        _outbox = outbox_;
        emit OutboxChanged(address(outbox_));
    }

    function _setPeer(uint256 ethChainId_, address gpuRental_) private {
        if (ethChainId_ == 0 || ethChainId_ == block.chainid) revert WorkVerificationInvalidChainId(ethChainId_);
        if (gpuRental_ == address(0)) revert WorkVerificationZeroAddress();
        _ethChainId = ethChainId_;
        _gpuRental = gpuRental_;
        emit PeerChanged(ethChainId_, gpuRental_);
    }

    function _setReputation(IReputationSystem reputation_) private {
        if (address(reputation_) == address(0)) revert WorkVerificationZeroAddress();
        _reputation = reputation_;
        emit ReputationChanged(address(reputation_));
    }

    function _setMaxFailBps(uint256 maxFailBps_) private {
        if (maxFailBps_ > _BPS) revert WorkVerificationMaxFailBpsOutOfRange(maxFailBps_);
        _maxFailBps = maxFailBps_;
        emit MaxFailBpsChanged(maxFailBps_);
    }

    function _setFinalizeGrace(uint256 finalizeGrace_) private {
        if (finalizeGrace_ < _MIN_FINALIZE_GRACE || finalizeGrace_ > _MAX_FINALIZE_GRACE) {
            revert WorkVerificationFinalizeGraceOutOfRange(finalizeGrace_);
        }
        _finalizeGrace = finalizeGrace_;
        emit FinalizeGraceChanged(finalizeGrace_);
    }

    function _setMaxBatchSize(uint256 maxBatchSize_) private {
        if (maxBatchSize_ == 0 || maxBatchSize_ > _MAX_BATCH_SIZE_LIMIT) {
            revert WorkVerificationMaxBatchSizeOutOfRange(maxBatchSize_);
        }
        _maxBatchSize = maxBatchSize_;
        emit MaxBatchSizeChanged(maxBatchSize_);
    }

    function _setChallengeInterval(uint256 challengeInterval_) private {
        if (challengeInterval_ < _MIN_CHALLENGE_INTERVAL || challengeInterval_ > _MAX_CHALLENGE_INTERVAL) {
            revert WorkVerificationChallengeIntervalOutOfRange(challengeInterval_);
        }
        _challengeInterval = challengeInterval_;
        emit ChallengeIntervalChanged(challengeInterval_);
    }

    function _setQuarantine(uint256 window, uint256 failures, uint256 duration) private {
        if (window == 0 || window > _MAX_QUARANTINE_WINDOW) {
            revert WorkVerificationQuarantineWindowOutOfRange(window);
        }
        if (failures > window) revert WorkVerificationQuarantineFailuresOutOfRange(failures, window);
        if (duration < _MIN_QUARANTINE_DURATION || duration > _MAX_QUARANTINE_DURATION) {
            revert WorkVerificationQuarantineDurationOutOfRange(duration);
        }
        // the checks above keep every value inside its field (window <= 1000, duration <= 30 days < 2^32)
        _quarantine = Quarantine(uint16(window), uint16(failures), uint32(duration));
        emit QuarantineChanged(window, failures, duration);
    }
}
