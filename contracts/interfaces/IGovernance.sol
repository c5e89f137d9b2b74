// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IStakingManager} from "./IStakingManager.sol";

/// @notice What BlendrChain's Governor adds to OpenZeppelin's IGovernor.
interface IGovernance {
    /// @notice A constructor address argument was the zero address.
    error GovernanceZeroAddress();

    /// @notice The StakingManager whose checkpointed stake counts as voting power.
    function staking() external view returns (IStakingManager);
}
