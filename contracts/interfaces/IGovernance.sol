// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IStakingManager} from "./IStakingManager.sol";

/// @notice What BlendrChain's Governor adds to OpenZeppelin's IGovernor.
interface IGovernance {
    /// @notice A constructor address argument was the zero address.
    error GovernanceZeroAddress();
    /// @notice A confirmation depth outside 1..MAX_ETH_CONFIRMATIONS (ETH) or 1..MAX_ETC_CONFIRMATIONS (ETC).
    error GovernanceInvalidConfirmations(uint256 ethDepth, uint256 etcDepth);

    /// @notice The confirmation depths the nodes obey changed (also emitted by the constructor).
    event ConfirmationsChanged(uint256 ethDepth, uint256 etcDepth);

    /// @notice The StakingManager whose checkpointed stake counts as voting power.
    function staking() external view returns (IStakingManager);

    /// @notice Blocks a block needs on top (itself included) before the nodes act on its events and receipts:
    /// on ETH and on ETC. Read by the nodes, never by another contract.
    function confirmations() external view returns (uint32 ethDepth, uint32 etcDepth);

    /// @notice Sets both confirmation depths.
    function setConfirmations(uint32 ethDepth, uint32 etcDepth) external;
}
