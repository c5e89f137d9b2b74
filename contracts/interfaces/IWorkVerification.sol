// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IBridgeOutbox, IBridgeReceiver} from "./IBridge.sol";
import {IReputationSystem} from "./IReputationSystem.sol";

/// @notice Verification tasks for GPU rentals on ETC: opened and closed by bridge messages from GPURental (ETH),
/// fed by queens with batches of cumulative challenge results, finalized into a RESULT message back to ETH.
interface IWorkVerification is IBridgeReceiver {
    /// @notice A rental's challenge counts since its task opened (cumulative), as reported by its queen.
    struct Result {
        uint256 rentalId;
        uint32 issued;
        uint32 passed;
        uint32 failedCount;
        uint32 missed;
    }

    /// @notice A verification task. `end` starts as start + duration and moves earlier on CLOSE. Two storage
    /// slots; WorkVerification reads `queen` from the low 160 bits of the second in assembly: keep the field order.
    struct Task {
        address provider;
        uint32 gpus;
        uint64 start; // ETH block timestamp of the rental's creation
        address queen; // the only account that may report results for, and finalize, this task
        uint64 end;
        bool closed; // the renter cancelled (a CLOSE message arrived)
        bool finalized;
    }

    /// @notice A landed batch, keyed by (queen, batchId).
    struct Batch {
        bytes32 resultsRoot; // Merkle root over keccak256(abi.encode(batchId, result)) of its results
        bytes32 recordsRoot; // Merkle root of the queen's challenge records (kept off chain)
        uint64 submittedAt; // ETC block timestamp; 0 = no such batch
    }

    error WorkVerificationZeroAddress();
    error WorkVerificationInvalidChainId(uint256 chainId);
    error WorkVerificationMaxFailBpsOutOfRange(uint256 maxFailBps);
    error WorkVerificationFinalizeGraceOutOfRange(uint256 finalizeGrace);
    error WorkVerificationMaxBatchSizeOutOfRange(uint256 maxBatchSize);
    error WorkVerificationChallengeIntervalOutOfRange(uint256 challengeInterval);
    error WorkVerificationQuarantineWindowOutOfRange(uint256 window);
    error WorkVerificationQuarantineFailuresOutOfRange(uint256 failures, uint256 window);
    error WorkVerificationQuarantineDurationOutOfRange(uint256 duration);
    error WorkVerificationUnauthorizedInbox(address caller);
    error WorkVerificationUnknownPeer(uint256 srcChainId, address sender);
    error WorkVerificationUnsupportedMessage(uint8 kind);
    error WorkVerificationInvalidOpen(uint256 rentalId);
    error WorkVerificationTaskExists(uint256 rentalId);
    error WorkVerificationUnknownTask(uint256 rentalId);
    error WorkVerificationNotTaskQueen(uint256 rentalId, address caller);
    error WorkVerificationInvalidBatchSize(uint256 size, uint256 maxBatchSize);
    error WorkVerificationBatchAlreadySubmitted(address queen, bytes32 batchId);
    error WorkVerificationInvalidResult(uint256 rentalId);
    error WorkVerificationUnknownBatch(address queen, bytes32 batchId);
    error WorkVerificationResultMismatch(uint256 rentalId, uint256 resultRentalId);
    error WorkVerificationInvalidProof(uint256 rentalId, bytes32 batchId);
    error WorkVerificationTaskNotEnded(uint256 rentalId, uint64 end);
    error WorkVerificationTaskAlreadyFinalized(uint256 rentalId);
    error WorkVerificationGraceNotOver(uint256 rentalId, uint256 expiresAt);

    event TaskOpened(
        uint256 indexed rentalId, address indexed provider, address indexed queen, uint32 gpus, uint64 start, uint64 end
    );
    event TaskClosed(uint256 indexed rentalId, uint64 end);
    event CloseIgnored(uint256 indexed rentalId);
    event BatchSubmitted(
        address indexed queen, bytes32 indexed batchId, bytes32 recordsRoot, bytes32 resultsRoot, uint256 results
    );
    event TaskFinalized(
        uint256 indexed rentalId,
        address indexed queen,
        bytes32 indexed batchId,
        uint64 verifiedSeconds,
        bool failed,
        uint32 issued,
        uint32 passed,
        uint32 failedCount,
        uint32 missed,
        uint256 messageNonce
    );
    event TaskExpired(uint256 indexed rentalId, address indexed caller, uint256 messageNonce);
    event InboxChanged(address inbox);
    event OutboxChanged(address outbox);
    event PeerChanged(uint256 ethChainId, address gpuRental);
    event ReputationChanged(address reputation);
    event MaxFailBpsChanged(uint256 maxFailBps);
    event FinalizeGraceChanged(uint256 finalizeGrace);
    event MaxBatchSizeChanged(uint256 maxBatchSize);
    event ChallengeIntervalChanged(uint256 challengeInterval);
    event QuarantineChanged(uint256 window, uint256 failures, uint256 duration);

    /// @notice Lands a batch of cumulative results from the calling queen, storing only the Merkle root of the
    /// results (computed here) and the root of the queen's challenge records.
    /// Requirements:
    /// - `results` is non-empty and at most `maxBatchSize()` long;
    /// - the caller has not landed `batchId` before (else `WorkVerificationBatchAlreadySubmitted`: already landed);
    /// - every result's task exists and has the caller as its queen;
    /// - every result has passed + failedCount + missed <= issued.
    function submitBatch(bytes32 batchId, bytes32 recordsRoot, Result[] calldata results) external;

    /// @notice Finalizes a task with the final cumulative `result`, proven against the queen's batch `batchId`;
    /// sends the RESULT message to GPURental and records the outcome in the ReputationSystem.
    /// Requirements:
    /// - the task exists, is not finalized, and the caller is its queen;
    /// - the task has ended (its end, or its cancellation time, has passed);
    /// - `result.rentalId == rentalId`, the queen landed `batchId` and `proof` proves `result` in it.
    function finalize(uint256 rentalId, bytes32 batchId, Result calldata result, bytes32[] calldata proof) external;

    /// @notice Finalizes a task its queen never finalized, with zero verified seconds and failed = false, so the
    /// renter is refunded and nobody is slashed. Anyone may call it.
    /// Requirements:
    /// - the task exists and is not finalized;
    /// - `finalizeGrace()` seconds have passed since the task's end.
    function expire(uint256 rentalId) external;

    /// @notice Sets the bridge inbox allowed to deliver messages. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - `inbox_` is not the zero address.
    function setInbox(address inbox_) external;

    /// @notice Sets the outbox RESULT messages are sent through. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - `outbox_` is not the zero address.
    function setOutbox(IBridgeOutbox outbox_) external;

    /// @notice Sets the peer: GPURental's chain id and address. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - `ethChainId_` is neither 0 nor this chain's id; `gpuRental_` is not the zero address.
    function setPeer(uint256 ethChainId_, address gpuRental_) external;

    /// @notice Sets the ReputationSystem outcomes are recorded in. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - `reputation_` is not the zero address.
    function setReputation(IReputationSystem reputation_) external;

    /// @notice Sets the failed-challenge share (basis points of issued) above which a verdict is failed.
    /// Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - `maxFailBps_ <= 10000`.
    function setMaxFailBps(uint256 maxFailBps_) external;

    /// @notice Sets how long after a task's end anyone may expire it. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - 1 hour <= `finalizeGrace_` <= 90 days.
    function setFinalizeGrace(uint256 finalizeGrace_) external;

    /// @notice Sets the largest number of results one batch may carry. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - 1 <= `maxBatchSize_` <= 1000.
    function setMaxBatchSize(uint256 maxBatchSize_) external;

    /// @notice Sets the longest mean interval between a rented provider's challenges that queens must honour.
    /// Requirements:
    /// - caller has GOVERNOR_ROLE;
    /// - 10 seconds <= `challengeInterval_` <= 1 day.
    function setChallengeInterval(uint256 challengeInterval_) external;

    /// @notice Sets when queens quarantine a provider: `failures` failed or abandoned challenges among its last
    /// `window` decided ones cut it off, refuse its admission and keep it from renters for `duration` seconds.
    /// Queens follow a change without a restart. Emits {QuarantineChanged}.
    /// Requirements:
    /// - caller has GOVERNOR_ROLE;
    /// - 1 <= `window` <= 1000;
    /// - `failures` <= `window` (0 turns quarantine off);
    /// - 1 minute <= `duration` <= 30 days.
    function setQuarantine(uint256 window, uint256 failures, uint256 duration) external;

    /// @notice The task of `rentalId` (all zero if none).
    function taskOf(uint256 rentalId) external view returns (Task memory);

    /// @notice The batch `batchId` landed by `queen` (submittedAt == 0 if none).
    function batchOf(address queen, bytes32 batchId) external view returns (Batch memory);

    /// @notice Whether `recordLeaf` (the hash of one challenge record, as the queen's record format defines it)
    /// is proven by `proof` (sorted-pair hashing) against the records root of `queen`'s batch `batchId`.
    function verifyRecord(address queen, bytes32 batchId, bytes32 recordLeaf, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The leaf of `result` in batch `batchId`: keccak256(abi.encode(batchId, result)).
    function resultLeaf(bytes32 batchId, Result calldata result) external pure returns (bytes32);

    /// @notice The verdict for `result` over a task lasting `effectiveDuration` seconds under the current
    /// `maxFailBps()`: verifiedSeconds = effectiveDuration * passed / issued (0 if issued == 0), failed when
    /// failedCount * 10000 > issued * maxFailBps.
    function verdict(Result calldata result, uint64 effectiveDuration)
        external
        view
        returns (uint64 verifiedSeconds, bool failed);

    function inbox() external view returns (address);
    function outbox() external view returns (IBridgeOutbox);
    function ethChainId() external view returns (uint256);
    function gpuRental() external view returns (address);
    function reputation() external view returns (IReputationSystem);
    function maxFailBps() external view returns (uint256);
    function finalizeGrace() external view returns (uint256);
    function maxBatchSize() external view returns (uint256);

    /// @notice Longest mean seconds between challenges of a provider during its rental (queens may challenge more
    /// often; their configured rate applies when it is shorter).
    function challengeInterval() external view returns (uint256);

    /// @notice The queens' quarantine bounds (setQuarantine): `failures` failed or abandoned challenges among a
    /// provider's last `window` decided ones quarantine it for `duration` seconds; `failures` == 0: never.
    function quarantine() external view returns (uint256 window, uint256 failures, uint256 duration);
}
