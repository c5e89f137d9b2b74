// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Node tiers that stake GPUTOKEN.
enum Tier {
    Provider,
    Queen,
    King
}

/// @notice The part of StakingManager other contracts use: stake lookups and slashing.
interface IStakingManager {
    /// @notice Active (bonded, not unbonding) stake of `node` in `tier`.
    function stakeOf(address node, Tier tier) external view returns (uint256);
    /// @notice Minimum active stake for `tier` (for providers: per GPU offered).
    function minStake(Tier tier) external view returns (uint256);
    /// @notice Slashes up to `amount` of `node`'s stake in `tier` (active first, then unbonding); only
    /// contracts holding SLASHER_ROLE. Returns the amount actually slashed.
    function slash(address node, Tier tier, uint256 amount, bytes32 reason) external returns (uint256 slashed);
    /// @notice Total stake (active + unbonding, all tiers) of `account` at `timepoint` (a past block number).
    function getPastStake(address account, uint256 timepoint) external view returns (uint256);
}
