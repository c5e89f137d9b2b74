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
    /// @notice stakeOf(node, tier) and minStake(tier) in one call (GPURental checks both on every rental).
    function stakeAndMinimum(address node, Tier tier) external view returns (uint256 active, uint256 minimum);
    /// @notice What a new rental needs in one call: the provider's active provider-tier stake, minStake(Provider)
    /// (per GPU), the queen's active queen-tier stake and minStake(Queen).
    function rentalStakes(address provider, address queen)
        external
        view
        returns (uint256 providerStake, uint256 providerMinPerGpu, uint256 queenStake, uint256 queenMin);
    /// @notice Slashes up to `amount` of `node`'s stake in `tier` (active first, then unbonding); only
    /// contracts holding SLASHER_ROLE. Returns the amount actually slashed.
    function slash(address node, Tier tier, uint256 amount, bytes32 reason) external returns (uint256 slashed);
    /// @notice Total stake (active + unbonding, all tiers) of `account` at `timepoint` (a past timestamp, seconds).
    function getPastStake(address account, uint256 timepoint) external view returns (uint256);
}

/// @notice The contract whose open rentals hold provider stake (GPURental): StakingManager keeps what they may
/// still slash, `minStake(Provider) * reservedGpusOf(provider) * slashBps() / 10000`, from unbonding.
interface IProviderStakeReserver {
    /// @notice GPUs of `provider`'s rentals whose result may still slash it (created, not yet settled or reclaimed).
    function reservedGpusOf(address provider) external view returns (uint256);
    /// @notice Share of minStake(Provider) per GPU a failed verification slashes, in basis points.
    function slashBps() external view returns (uint16);
}

/// @notice Everything else StakingManager exposes: staking, unbonding, rewards, parameters and their errors.
interface IStakingManagerFull is IStakingManager {
    error StakingManagerZeroAmount();
    error StakingManagerZeroAddress();
    error StakingManagerInsufficientStake(uint256 active, uint256 requested);
    error StakingManagerNothingToWithdraw();
    error StakingManagerStillUnbonding(uint64 unlockAt);
    error StakingManagerNothingToClaim();
    error StakingManagerInvalidMinStake(uint256 amount);
    error StakingManagerInvalidUnbondingDelay(uint64 delay);
    error StakingManagerInvalidSlashBurnBps(uint256 bps);
    error StakingManagerInvalidRewardRate(uint256 rate);
    error StakingManagerFutureLookup(uint256 timepoint, uint48 clock);
    error StakingManagerStakeReserved(uint256 reserved, uint256 active, uint256 requested);

    event Staked(address indexed node, Tier indexed tier, address indexed payer, uint256 amount);
    event UnstakeRequested(address indexed node, Tier indexed tier, uint256 amount, uint256 unbonding, uint64 unlockAt);
    event Withdrawn(address indexed node, Tier indexed tier, uint256 amount);
    event Slashed(address indexed node, Tier indexed tier, uint256 amount, uint256 burned, bytes32 indexed reason);
    event RewardsFunded(address indexed funder, uint256 amount);
    event RewardsClaimed(address indexed node, uint256 amount);
    event MinStakeChanged(Tier indexed tier, uint256 amount);
    event UnbondingDelayChanged(uint64 delay);
    event SlashBurnBpsChanged(uint256 bps);
    event TreasuryChanged(address treasury);
    event RewardRateChanged(uint256 rate);
    event LockerChanged(address locker);

    function stake(Tier tier, uint256 amount) external;
    function stakeFor(address node, Tier tier, uint256 amount) external;
    function requestUnstake(Tier tier, uint256 amount) external;
    function withdraw(Tier tier) external returns (uint256 amount);
    function fundRewards(uint256 amount) external;
    function claimRewards() external returns (uint256 amount);

    function setMinStake(Tier tier, uint256 amount) external;
    function setUnbondingDelay(uint64 delay) external;
    function setSlashBurnBps(uint256 bps) external;
    function setTreasury(address treasury) external;
    function setRewardRate(uint256 rate) external;
    function setLocker(address newLocker) external;

    function reservedStakeOf(address provider) external view returns (uint256);
    function locker() external view returns (address);
    function unbondingOf(address node, Tier tier) external view returns (uint256 amount, uint64 unlockAt);
    function totalStakeOf(address account) external view returns (uint256);
    function activeStakeOf(address account) external view returns (uint256);
    function totalActiveStake() external view returns (uint256);
    function totalStake() external view returns (uint256);
    function getPastTotalStake(uint256 timepoint) external view returns (uint256);
    function earned(address node) external view returns (uint256);
    function rewardPerToken() external view returns (uint256);
    function rewardsAvailable() external view returns (uint256);
    function rewardRate() external view returns (uint256);
    function unbondingDelay() external view returns (uint64);
    function slashBurnBps() external view returns (uint256);
    function treasury() external view returns (address);
    function token() external view returns (address);
    function clock() external view returns (uint48);
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() external view returns (string memory);
}
