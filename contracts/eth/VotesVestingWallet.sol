// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {VestingWallet} from "@openzeppelin/contracts/finance/VestingWallet.sol";
import {VestingWalletCliff} from "@openzeppelin/contracts/finance/VestingWalletCliff.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IVotesVestingWallet} from "../interfaces/IVotesVestingWallet.sol";

/// @title VotesVestingWallet
/// @notice OpenZeppelin's VestingWalletCliff (linear vesting from `start` over `duration` seconds, nothing
/// releasable before `start + cliffSeconds`, `release(token)` pays the owner) whose owner also steers the
/// governance votes of the ERC20Votes token still vesting in it. OpenZeppelin's VestingWallet cannot: a
/// contract's ERC20Votes balance counts for nobody until the contract itself delegates, so tokens vesting
/// there could never vote.
/// @dev Guarantees:
/// - from construction on, the wallet's votes count for its beneficiary (the wallet delegates to it), so a
///   genesis allocation is voting power at once, before any transaction of the beneficiary's;
/// - only the owner can move them elsewhere ({delegate});
/// - a transfer of ownership moves them to the new owner (the seller of a vesting position keeps no votes
///   over it); renouncing ownership delegates to address(0), where they count for nobody.
/// Votes follow ERC20Votes checkpoints, so a delegation counts only for proposals whose snapshot is later.
contract VotesVestingWallet is IVotesVestingWallet, VestingWalletCliff {
    IVotes private immutable _votesToken;

    /// @param beneficiary Owner of the wallet: receives what vests and, from now on, its votes.
    /// @param start Vesting start (unix seconds).
    /// @param duration Vesting duration in seconds.
    /// @param cliffSeconds Seconds after `start` before anything is releasable; at most `duration`.
    /// @param votesToken_ The ERC20Votes token whose votes the owner steers (GPUTOKEN).
    constructor(address beneficiary, uint64 start, uint64 duration, uint64 cliffSeconds, IVotes votesToken_)
        VestingWallet(beneficiary, start, duration)
        VestingWalletCliff(cliffSeconds)
    {
        if (address(votesToken_) == address(0)) revert VotesVestingWalletZeroAddress();
        _votesToken = votesToken_;
        _delegate(beneficiary);
    }

    /// @notice Delegates the votes of every `votesToken` in this wallet (vested or not) to `delegatee`.
    /// @dev Requirements:
    /// - the caller is the owner (the beneficiary).
    /// Emits {VotesDelegated} (and the token's DelegateChanged).
    function delegate(address delegatee) external onlyOwner {
        _delegate(delegatee);
    }

    /// @notice The ERC20Votes token whose votes this wallet delegates.
    function votesToken() external view returns (IVotes) {
        return _votesToken;
    }

    /// @dev A new owner also takes the votes (skipped during construction, where the constructor delegates
    /// once the token is known).
    function _transferOwnership(address newOwner) internal override {
        super._transferOwnership(newOwner);
        if (address(_votesToken) != address(0)) _delegate(newOwner);
    }

    function _delegate(address delegatee) private {
        _votesToken.delegate(delegatee);
        emit VotesDelegated(address(_votesToken), delegatee);
    }
}
