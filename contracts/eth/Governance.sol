// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IGovernor, Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from
    "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IGovernance} from "../interfaces/IGovernance.sol";
import {IStakingManager} from "../interfaces/IStakingManager.sol";

/// @title Governance
/// @notice BlendrChain's Governor. Voting power at a proposal's snapshot = GPUTOKEN votes delegated to
/// the account (ERC20Votes) + the account's stake in StakingManager (active + unbonding), both read from
/// timestamp checkpoints (ERC-6372 `mode=timestamp`, GPUToken's clock) strictly before the vote, so tokens
/// borrowed for one transaction weigh nothing.
/// Proposals run through a TimelockController that holds every GOVERNOR_ROLE of the system.
/// It also holds the parameters only the nodes obey, off chain: the confirmation depths of ETH and ETC
/// (setConfirmations; deployed from the network's config, 12 and 4,000 by default). They live here, off the
/// rental and settlement paths, and belong to this governor like its own voting settings.
/// @dev Staked tokens sit in StakingManager, which never delegates, so they are not counted twice. Quorum is
/// a fraction of GPUTOKEN's total supply at the snapshot, which includes staked tokens.
/// Deployment defaults (blendr/chain/deploy.py DeployParams; reasoning in docs/chains.md "Governance at
/// genesis"): voting delay 1 day, voting period 7 days (in seconds: the
/// governor follows the token's timestamp clock), proposal threshold 0.01% of the initial supply S (10,000 GPUTOKEN of 100 M), quorum 4% (4 M at genesis), timelock 2 days. At genesis only the
/// vested Team/Investors/Advisors shares vote (35% of S, through VotesVestingWallets delegated to their
/// beneficiaries); Treasury (20%, in the Timelock) and Community (45%, in TokenDistributor) never vote while
/// governance holds them. 35% > 4% quorum, so the deployment can govern from its first block.
contract Governance is
    IGovernance,
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl
{
    /// @notice Deepest ETH confirmation depth governance may set: about 3.3 hours of 12 s blocks, some 15 times
    /// ETH's finality (two epochs, 64 blocks). Deeper would only hold every rental's bridge messages back.
    uint32 public constant MAX_ETH_CONFIRMATIONS = 1_000;
    /// @notice Deepest ETC confirmation depth governance may set: about 3 days of 13 s blocks, 5 times the
    /// production default (4,000) and about 3 times ETC's deepest known reorg (some 7,000 blocks, 2020), yet
    /// inside a rental's default result timeout (7 days), so a rental still settles before it may be reclaimed.
    uint32 public constant MAX_ETC_CONFIRMATIONS = 20_000;

    /// @dev Both depths in one slot. Only the nodes read them (through confirmations()): no rental, settlement
    /// or bridge delivery does.
    struct Depths {
        uint32 eth;
        uint32 etc;
    }

    IStakingManager private immutable _staking;
    Depths private _depths;

    /// @param token_ GPUTOKEN (ERC20Votes, timestamp clock).
    /// @param staking_ StakingManager (stake checkpoints on the same timestamp clock).
    /// @param timelock_ The TimelockController that executes proposals; this contract must be its proposer
    /// and canceller.
    /// @param votingDelay_ Seconds between a proposal and the start of voting (its snapshot).
    /// @param votingPeriod_ Seconds voting stays open.
    /// @param proposalThreshold_ Voting power needed to propose.
    /// @param quorumNumerator_ Quorum in percent of total supply (denominator 100).
    /// @param ethConfirmations_ The nodes' confirmation depth on ETH (see setConfirmations).
    /// @param etcConfirmations_ The nodes' confirmation depth on ETC.
    constructor(
        IVotes token_,
        IStakingManager staking_,
        TimelockController timelock_,
        uint48 votingDelay_,
        uint32 votingPeriod_,
        uint256 proposalThreshold_,
        uint256 quorumNumerator_,
        uint32 ethConfirmations_,
        uint32 etcConfirmations_
    )
        Governor("BlendrChain Governance")
        GovernorSettings(votingDelay_, votingPeriod_, proposalThreshold_)
        GovernorVotes(token_)
        GovernorVotesQuorumFraction(quorumNumerator_)
        GovernorTimelockControl(timelock_)
    {
        if (address(token_) == address(0) || address(staking_) == address(0) || address(timelock_) == address(0)) {
            revert GovernanceZeroAddress();
        }
        _staking = staking_;
        _setConfirmations(ethConfirmations_, etcConfirmations_);
    }

    /// @inheritdoc IGovernance
    function staking() external view returns (IStakingManager) {
        return _staking;
    }

    /// @inheritdoc IGovernance
    /// @dev Requirements: none.
    function confirmations() external view returns (uint32 ethDepth, uint32 etcDepth) {
        Depths memory d = _depths;
        return (d.eth, d.etc);
    }

    /// @notice Sets how deep a block must be (itself included) before the nodes act on it: the queens' bridge
    /// attestations and verification, the king's settlements, deliveries and reward epochs, every node's
    /// receipts. A node applies a change within `chain.gov_refresh_s` (30 s) without a restart; an operator
    /// may keep a deeper depth of its own, never a shallower one. Emits {ConfirmationsChanged}.
    /// Requirements:
    /// - the call comes from an executed proposal of this governor (onlyGovernance: through the timelock);
    /// - 1 <= ethDepth <= MAX_ETH_CONFIRMATIONS and 1 <= etcDepth <= MAX_ETC_CONFIRMATIONS.
    function setConfirmations(uint32 ethDepth, uint32 etcDepth) external onlyGovernance {
        _setConfirmations(ethDepth, etcDepth);
    }

    function _setConfirmations(uint32 ethDepth, uint32 etcDepth) private {
        if (ethDepth == 0 || ethDepth > MAX_ETH_CONFIRMATIONS || etcDepth == 0 || etcDepth > MAX_ETC_CONFIRMATIONS) {
            revert GovernanceInvalidConfirmations(ethDepth, etcDepth);
        }
        _depths = Depths(ethDepth, etcDepth);
        emit ConfirmationsChanged(ethDepth, etcDepth);
    }

    // The overrides below only resolve OpenZeppelin's multiple inheritance.

    function votingDelay() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingDelay();
    }

    function votingPeriod() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.votingPeriod();
    }

    function quorum(uint256 timepoint) public view override(Governor, GovernorVotesQuorumFraction) returns (uint256) {
        return super.quorum(timepoint);
    }

    function state(uint256 proposalId) public view override(Governor, GovernorTimelockControl) returns (ProposalState) {
        return super.state(proposalId);
    }

    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    /// @dev Delegated token votes plus checkpointed stake, both at `timepoint`.
    function _getVotes(address account, uint256 timepoint, bytes memory params)
        internal
        view
        override(Governor, GovernorVotes)
        returns (uint256)
    {
        return super._getVotes(account, timepoint, params) + _staking.getPastStake(account, timepoint);
    }

    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}

/// @title BlendrTimelock
/// @notice OpenZeppelin's TimelockController, under a name of our own so the build emits an artifact.
/// Grant PROPOSER_ROLE and CANCELLER_ROLE to {Governance}; EXECUTOR_ROLE to address(0) (anyone executes).
contract BlendrTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
