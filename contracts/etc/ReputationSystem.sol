// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IReputationSystem} from "../interfaces/IReputationSystem.sol";
import {RentalMessages} from "../interfaces/RentalMessages.sol";

/// @title ReputationSystem
/// @notice Per-provider reputation on Ethereum Classic. Only WorkVerification (RECORDER_ROLE, verification
/// outcomes) and the bridge inbox (FEEDBACK messages from GPURental on ETH) change it; anyone reads it.
///
/// Score, in basis points 0..10000, is a weighted blend of three Bayesian averages, each pulled towards a
/// neutral 5000 by a prior worth a governed number of pseudo-observations, so a new provider scores 5000 and
/// its score moves as evidence accumulates:
///
///   challengeScore = (passed * 10000 + challengePrior * 5000) / (issued + challengePrior)
///   taskScore      = ((tasks - tasksFailed) * 10000 + taskPrior * 5000) / (tasks + taskPrior)
///   ratingScore    = ((ratingSum - ratings) * 2500 + ratingPrior * 5000) / (ratings + ratingPrior)
///                    (a rating r in 1..5 counts as (r - 1) * 2500: 1 -> 0, 3 -> 5000, 5 -> 10000)
///   score = (challengeWeightBps * challengeScore + taskWeightBps * taskScore + ratingWeightBps * ratingScore)
///           / 10000
///
/// Missed and failed challenges both lower challengeScore; a failed verdict (fraud) also lowers taskScore.
/// Feedback for a rental counts once: a repeated FEEDBACK for the same rental id is ignored (event
/// FeedbackIgnored) rather than reverted, so a duplicate delivery cannot wedge the bridge.
contract ReputationSystem is IReputationSystem, AccessControl {
    /// @notice Holder of every parameter setter (the bridge governance executor after deployment).
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    /// @notice May record verification outcomes (WorkVerification).
    bytes32 public constant RECORDER_ROLE = keccak256("RECORDER_ROLE");

    uint256 private constant _BPS = 10_000;
    uint256 private constant _NEUTRAL = 5_000;
    uint256 private constant _MAX_PRIOR = 1_000_000;

    mapping(address provider => Stats) private _stats;
    mapping(uint256 rentalId => bool) private _feedbackCounted;
    ScoreParams private _params;
    address private _inbox;
    uint256 private _ethChainId;
    address private _gpuRental;

    /// @param admin receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE. The inbox and peer are set afterwards with
    /// setInbox and setPeer; the score starts with priors 100 challenges / 5 tasks / 5 ratings and weights
    /// 50% / 30% / 20%.
    constructor(address admin) {
        if (admin == address(0)) revert ReputationSystemZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
        _setScoreParams(
            ScoreParams({
                challengePrior: 100,
                taskPrior: 5,
                ratingPrior: 5,
                challengeWeightBps: 5_000,
                taskWeightBps: 3_000,
                ratingWeightBps: 2_000
            })
        );
    }

    // ---------------------------------------------------------------- writers

    /// @inheritdoc IReputationSystem
    function recordOutcome(
        address provider,
        uint32 issued,
        uint32 passed,
        uint32 failedCount,
        uint32 missed,
        bool failed
    ) external onlyRole(RECORDER_ROLE) {
        if (provider == address(0)) revert ReputationSystemZeroAddress();
        if (uint256(passed) + failedCount + missed > issued) revert ReputationSystemInvalidOutcome(provider);
        Stats storage s = _stats[provider];
        s.issued += issued;
        s.passed += passed;
        s.failedCount += failedCount;
        s.missed += missed;
        s.tasks += 1;
        if (failed) s.tasksFailed += 1;
        emit OutcomeRecorded(provider, issued, passed, failedCount, missed, failed, _score(s));
    }

    /// @notice Receives FEEDBACK messages (a renter's rating of a settled rental) from GPURental.
    /// Requirements:
    /// - the caller is the inbox and (`srcChainId`, `sender`) is the configured GPURental peer;
    /// - the message is a FEEDBACK with a non-zero provider and a rating in 1..5.
    /// A FEEDBACK for a rental already counted changes nothing and emits FeedbackIgnored.
    function onBridgeMessage(uint256 srcChainId, address sender, bytes calldata data) external {
        if (msg.sender != _inbox) revert ReputationSystemUnauthorizedInbox(msg.sender);
        if (srcChainId != _ethChainId || sender != _gpuRental) revert ReputationSystemUnknownPeer(srcChainId, sender);
        (uint8 kind, bytes memory body) = RentalMessages.kindOf(data);
        if (kind != RentalMessages.FEEDBACK) revert ReputationSystemUnsupportedMessage(kind);
        RentalMessages.Feedback memory f = abi.decode(body, (RentalMessages.Feedback));
        if (f.provider == address(0)) revert ReputationSystemZeroAddress();
        if (f.rating < 1 || f.rating > 5) revert ReputationSystemInvalidRating(f.rentalId, f.rating);
        if (_feedbackCounted[f.rentalId]) {
            emit FeedbackIgnored(f.rentalId);
            return;
        }
        _feedbackCounted[f.rentalId] = true;
        Stats storage s = _stats[f.provider];
        s.ratings += 1;
        s.ratingSum += f.rating;
        emit FeedbackRecorded(f.rentalId, f.provider, f.renter, f.rating, _score(s));
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IReputationSystem
    function setInbox(address inbox_) external onlyRole(GOVERNOR_ROLE) {
        if (inbox_ == address(0)) revert ReputationSystemZeroAddress();
        _inbox = inbox_;
        emit InboxChanged(inbox_);
    }

    /// @inheritdoc IReputationSystem
    function setPeer(uint256 ethChainId_, address gpuRental_) external onlyRole(GOVERNOR_ROLE) {
        if (ethChainId_ == 0 || ethChainId_ == block.chainid) revert ReputationSystemInvalidChainId(ethChainId_);
        if (gpuRental_ == address(0)) revert ReputationSystemZeroAddress();
        _ethChainId = ethChainId_;
        _gpuRental = gpuRental_;
        emit PeerChanged(ethChainId_, gpuRental_);
    }

    /// @inheritdoc IReputationSystem
    function setScoreParams(ScoreParams calldata params) external onlyRole(GOVERNOR_ROLE) {
        _setScoreParams(params);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReputationSystem
    function score(address provider) external view returns (uint256) {
        return _score(_stats[provider]);
    }

    /// @inheritdoc IReputationSystem
    function statsOf(address provider) external view returns (Stats memory) {
        return _stats[provider];
    }

    /// @inheritdoc IReputationSystem
    function feedbackCounted(uint256 rentalId) external view returns (bool) {
        return _feedbackCounted[rentalId];
    }

    /// @inheritdoc IReputationSystem
    function scoreParams() external view returns (ScoreParams memory) {
        return _params;
    }

    /// @inheritdoc IReputationSystem
    function inbox() external view returns (address) {
        return _inbox;
    }

    /// @inheritdoc IReputationSystem
    function ethChainId() external view returns (uint256) {
        return _ethChainId;
    }

    /// @inheritdoc IReputationSystem
    function gpuRental() external view returns (address) {
        return _gpuRental;
    }

    // ---------------------------------------------------------------- internals

    function _setScoreParams(ScoreParams memory p) private {
        if (
            p.challengePrior == 0 || p.challengePrior > _MAX_PRIOR || p.taskPrior == 0 || p.taskPrior > _MAX_PRIOR
                || p.ratingPrior == 0 || p.ratingPrior > _MAX_PRIOR
                || uint256(p.challengeWeightBps) + p.taskWeightBps + p.ratingWeightBps != _BPS
        ) revert ReputationSystemInvalidScoreParams();
        _params = p;
        emit ScoreParamsChanged(p);
    }

    function _score(Stats storage s) private view returns (uint256) {
        ScoreParams memory p = _params;
        uint256 challengeScore =
            (uint256(s.passed) * _BPS + uint256(p.challengePrior) * _NEUTRAL) / (uint256(s.issued) + p.challengePrior);
        uint256 taskScore = (uint256(s.tasks - s.tasksFailed) * _BPS + uint256(p.taskPrior) * _NEUTRAL)
            / (uint256(s.tasks) + p.taskPrior);
        uint256 ratingScore = ((uint256(s.ratingSum) - s.ratings) * 2_500 + uint256(p.ratingPrior) * _NEUTRAL)
            / (uint256(s.ratings) + p.ratingPrior);
        return (
            p.challengeWeightBps * challengeScore + p.taskWeightBps * taskScore + p.ratingWeightBps * ratingScore
        ) / _BPS;
    }
}
