// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

/// @notice A vesting wallet whose owner (the beneficiary) steers the votes of the tokens still vesting in it.
interface IVotesVestingWallet {
    error VotesVestingWalletZeroAddress();

    /// @notice The wallet's votes in `votesToken` now count for `delegatee` (the owner's choice, or the new
    /// owner after a transfer of ownership).
    event VotesDelegated(address indexed votesToken, address indexed delegatee);

    function delegate(address delegatee) external;
    function votesToken() external view returns (IVotes);
}
