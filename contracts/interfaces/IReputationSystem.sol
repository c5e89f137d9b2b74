// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IBridgeReceiver} from "./IBridge.sol";

/// @notice Per-provider reputation on ETC, from verification outcomes (WorkVerification) and renter feedback
/// (FEEDBACK messages from GPURental over the bridge). Anyone may read it.
interface IReputationSystem is IBridgeReceiver {
    /// @notice Raw counters of one provider.
    struct Stats {
        uint64 issued; // challenges issued over all finalized tasks
        uint64 passed;
        uint64 failedCount;
        uint64 missed;
        uint32 tasks; // finalized tasks recorded
        uint32 tasksFailed; // of which the verdict was failed
        uint32 ratings; // feedback messages counted
        uint64 ratingSum; // sum of ratings (1..5 each)
    }

    /// @notice The score formula's parameters: pseudo-counts of the neutral (5000 bps) prior for each component,
    /// and the components' weights in basis points (summing to 10000).
    struct ScoreParams {
        uint32 challengePrior;
        uint32 taskPrior;
        uint32 ratingPrior;
        uint16 challengeWeightBps;
        uint16 taskWeightBps;
        uint16 ratingWeightBps;
    }

    error ReputationSystemZeroAddress();
    error ReputationSystemInvalidChainId(uint256 chainId);
    error ReputationSystemInvalidScoreParams();
    error ReputationSystemInvalidOutcome(address provider);
    error ReputationSystemUnauthorizedInbox(address caller);
    error ReputationSystemUnknownPeer(uint256 srcChainId, address sender);
    error ReputationSystemUnsupportedMessage(uint8 kind);
    error ReputationSystemInvalidRating(uint256 rentalId, uint8 rating);

    event OutcomeRecorded(
        address indexed provider,
        uint32 issued,
        uint32 passed,
        uint32 failedCount,
        uint32 missed,
        bool failed,
        uint256 score
    );
    event FeedbackRecorded(
        uint256 indexed rentalId, address indexed provider, address indexed renter, uint8 rating, uint256 score
    );
    event FeedbackIgnored(uint256 indexed rentalId);
    event InboxChanged(address inbox);
    event PeerChanged(uint256 ethChainId, address gpuRental);
    event ScoreParamsChanged(ScoreParams params);

    /// @notice Records a finalized verification task's outcome for `provider`. Role: RECORDER_ROLE
    /// (WorkVerification).
    /// Requirements:
    /// - `provider` is not the zero address;
    /// - passed + failedCount + missed <= issued.
    function recordOutcome(
        address provider,
        uint32 issued,
        uint32 passed,
        uint32 failedCount,
        uint32 missed,
        bool failed
    ) external;

    /// @notice Sets the bridge inbox allowed to deliver FEEDBACK messages. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - `inbox_` is not the zero address.
    function setInbox(address inbox_) external;

    /// @notice Sets the peer FEEDBACK must come from: GPURental's chain id and address. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - `ethChainId_` is neither 0 nor this chain's id; `gpuRental_` is not the zero address.
    function setPeer(uint256 ethChainId_, address gpuRental_) external;

    /// @notice Sets the score formula's parameters. Role: GOVERNOR_ROLE.
    /// Requirements:
    /// - every prior is in 1..1,000,000; the three weights sum to 10000.
    function setScoreParams(ScoreParams calldata params) external;

    /// @notice `provider`'s score in basis points, 0..10000; 5000 (neutral) for a provider with no history.
    function score(address provider) external view returns (uint256);

    /// @notice `provider`'s raw counters.
    function statsOf(address provider) external view returns (Stats memory);

    /// @notice Whether feedback for `rentalId` has been counted.
    function feedbackCounted(uint256 rentalId) external view returns (bool);

    function scoreParams() external view returns (ScoreParams memory);
    function inbox() external view returns (address);
    function ethChainId() external view returns (uint256);
    function gpuRental() external view returns (address);
}
