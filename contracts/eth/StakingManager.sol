// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IProviderStakeReserver, IStakingManager, IStakingManagerFull, Tier} from "../interfaces/IStakingManager.sol";
import {IGPUToken} from "../interfaces/IGPUToken.sol";

/// @title StakingManager
/// @notice GPUTOKEN stakes per node address and tier, with an unbonding delay, slashing by authorized
/// contracts, pro-rata staking rewards and timestamp checkpoints of each account's stake for voting
/// (ERC-6372 `mode=timestamp`, the clock of GPUToken and Governance).
/// @dev Rewards follow the Synthetix accumulator: `_rewardPerTokenStored` grows by `accrued / totalActive`,
/// where `accrued = rewardRate * elapsed`, capped by the funded rewards not yet allocated, so the contract
/// never promises more than it holds. Staked tokens held here are never delegated, so they count for voting
/// only through {getPastStake}, never twice.
/// Provider stake that backs open rentals is reserved: the locker (GPURental) counts each provider's GPUs under
/// rentals whose result may still slash it, and what they may slash (`minStake(Provider) * slashBps` per such
/// GPU) cannot start unbonding.
contract StakingManager is IStakingManagerFull, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;
    using Checkpoints for Checkpoints.Trace208;

    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    uint64 public constant MAX_UNBONDING_DELAY = 90 days;
    uint256 public constant MAX_BPS = 10_000;
    /// @notice Upper bound of {rewardRate}: one million tokens (18 decimals) per second.
    uint256 public constant MAX_REWARD_RATE = 1e24;
    uint256 private constant _PRECISION = 1e18;

    struct NodeStake {
        uint112 active;
        uint112 unbonding;
        uint64 unlockAt;
    }

    struct RewardAccount {
        uint256 active; // active stake of the account, all tiers
        uint256 rewardPerTokenPaid;
        uint256 rewards; // accrued, not yet claimed
    }

    IERC20 private immutable _token;
    address private _treasury;
    uint64 private _unbondingDelay;
    uint256 private _slashBurnBps = 5_000;
    // Minimum stakes: the provider's and the queen's share a slot, as every rental reads both.
    uint96 private _providerMin;
    uint96 private _queenMin;
    uint96 private _kingMin;
    address private _locker;

    mapping(address node => mapping(Tier tier => NodeStake)) private _stakes;
    mapping(address account => RewardAccount) private _accounts;
    mapping(address account => Checkpoints.Trace208) private _stakeCheckpoints;
    Checkpoints.Trace208 private _totalCheckpoints;
    uint256 private _totalActive;

    uint256 private _rewardRate;
    uint256 private _rewardPerTokenStored;
    uint256 private _rewardsUnallocated;
    uint64 private _lastUpdateTime;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE.
    /// @param token_ GPUTOKEN (must implement ERC20Burnable's `burn`).
    /// @param treasury_ Receives the non-burned part of slashed stake.
    /// @param minStakes Minimum active stake per tier, indexed by `Tier` (Provider: per GPU).
    /// @param unbondingDelay_ Seconds between {requestUnstake} and {withdraw}, at most 90 days.
    constructor(address admin, IERC20 token_, address treasury_, uint256[3] memory minStakes, uint64 unbondingDelay_) {
        if (admin == address(0) || address(token_) == address(0) || treasury_ == address(0)) {
            revert StakingManagerZeroAddress();
        }
        if (unbondingDelay_ > MAX_UNBONDING_DELAY) revert StakingManagerInvalidUnbondingDelay(unbondingDelay_);
        for (uint256 i = 0; i < 3; ++i) {
            if (minStakes[i] == 0 || minStakes[i] > type(uint96).max) revert StakingManagerInvalidMinStake(minStakes[i]);
            _setMin(Tier(i), uint96(minStakes[i]));
        }
        _token = token_;
        _treasury = treasury_;
        _unbondingDelay = unbondingDelay_;
        _lastUpdateTime = uint64(block.timestamp);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
    }

    // ---------------------------------------------------------------- staking

    /// @notice Stakes `amount` of the caller's tokens for the caller in `tier`.
    /// @dev Requirements:
    /// - `amount` > 0;
    /// - the caller approved this contract for `amount`.
    function stake(Tier tier, uint256 amount) external nonReentrant {
        _stake(msg.sender, tier, amount);
    }

    /// @notice Stakes `amount` of the caller's tokens for `node` in `tier` (the stake belongs to `node`).
    /// @dev Requirements:
    /// - `node` is not the zero address;
    /// - `amount` > 0;
    /// - the caller approved this contract for `amount`.
    function stakeFor(address node, Tier tier, uint256 amount) external nonReentrant {
        if (node == address(0)) revert StakingManagerZeroAddress();
        _stake(node, tier, amount);
    }

    /// @notice Moves `amount` of the caller's active stake in `tier` to unbonding; the whole unbonding
    /// amount of that tier becomes withdrawable `unbondingDelay` seconds from now (a new request re-arms it).
    /// @dev Requirements:
    /// - `amount` > 0 and at most the caller's active stake in `tier`;
    /// - provider tier: what stays active still covers the stake its open rentals reserve (reservedStakeOf).
    function requestUnstake(Tier tier, uint256 amount) external {
        if (amount == 0) revert StakingManagerZeroAmount();
        NodeStake storage s = _stakes[msg.sender][tier];
        uint256 active = s.active;
        if (amount > active) revert StakingManagerInsufficientStake(active, amount);
        if (tier == Tier.Provider) {
            uint256 reserved = _reservedStake(msg.sender);
            if (active - amount < reserved) revert StakingManagerStakeReserved(reserved, active, amount);
        }
        _updateReward(msg.sender);
        uint64 unlockAt = uint64(block.timestamp) + _unbondingDelay;
        uint112 unbonding = s.unbonding + uint112(amount);
        s.active = uint112(active - amount);
        s.unbonding = unbonding;
        s.unlockAt = unlockAt;
        _accounts[msg.sender].active -= amount;
        _totalActive -= amount;
        emit UnstakeRequested(msg.sender, tier, amount, unbonding, unlockAt);
    }

    /// @notice Sends the caller its whole unbonding stake in `tier` once the unbonding delay has passed.
    /// @dev Requirements:
    /// - the caller has unbonding stake in `tier`;
    /// - its unlock time has been reached.
    function withdraw(Tier tier) external nonReentrant returns (uint256 amount) {
        NodeStake storage s = _stakes[msg.sender][tier];
        amount = s.unbonding;
        if (amount == 0) revert StakingManagerNothingToWithdraw();
        if (block.timestamp < s.unlockAt) revert StakingManagerStillUnbonding(s.unlockAt);
        s.unbonding = 0;
        s.unlockAt = 0;
        _writeCheckpoints(msg.sender, amount, false);
        emit Withdrawn(msg.sender, tier, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IStakingManager
    /// @dev Takes from active stake first, then from unbonding stake; never reverts for lack of stake (it
    /// slashes what there is, possibly nothing). `slashBurnBps` of the slashed amount is burned, the rest
    /// goes to the treasury.
    /// Requirements:
    /// - the caller has SLASHER_ROLE.
    function slash(address node, Tier tier, uint256 amount, bytes32 reason)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashed)
    {
        NodeStake storage s = _stakes[node][tier];
        uint256 active = s.active;
        uint256 unbonding = s.unbonding;
        uint256 fromActive = Math.min(amount, active);
        uint256 fromUnbonding = Math.min(amount - fromActive, unbonding);
        slashed = fromActive + fromUnbonding;
        if (slashed == 0) return 0;
        if (fromActive != 0) {
            _updateReward(node);
            s.active = uint112(active - fromActive);
            _accounts[node].active -= fromActive;
            _totalActive -= fromActive;
        }
        if (fromUnbonding != 0) {
            s.unbonding = uint112(unbonding - fromUnbonding);
            if (unbonding == fromUnbonding) s.unlockAt = 0;
        }
        _writeCheckpoints(node, slashed, false);
        uint256 burned = (slashed * _slashBurnBps) / MAX_BPS;
        emit Slashed(node, tier, slashed, burned, reason);
        if (burned != 0) IGPUToken(address(_token)).burn(burned);
        if (slashed != burned) _token.safeTransfer(_treasury, slashed - burned);
    }

    /// @inheritdoc IStakingManager
    function rentalStakes(address provider, address queen)
        external
        view
        returns (uint256 providerStake, uint256 providerMinPerGpu, uint256 queenStake, uint256 queenMin)
    {
        return (_stakes[provider][Tier.Provider].active, _providerMin, _stakes[queen][Tier.Queen].active, _queenMin);
    }

    // ---------------------------------------------------------------- rewards

    /// @notice Adds `amount` of the caller's tokens to the staking rewards pool.
    /// @dev Requirements:
    /// - `amount` > 0;
    /// - the caller approved this contract for `amount`.
    function fundRewards(uint256 amount) external nonReentrant {
        if (amount == 0) revert StakingManagerZeroAmount();
        _updateGlobal();
        _rewardsUnallocated += amount;
        emit RewardsFunded(msg.sender, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Sends the caller every staking reward it has earned so far.
    /// @dev Requirements:
    /// - the caller has earned a non-zero reward.
    function claimRewards() external nonReentrant returns (uint256 amount) {
        _updateReward(msg.sender);
        RewardAccount storage a = _accounts[msg.sender];
        amount = a.rewards;
        if (amount == 0) revert StakingManagerNothingToClaim();
        a.rewards = 0;
        emit RewardsClaimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- parameters (GOVERNOR_ROLE)

    /// @notice Sets the minimum active stake of `tier` (for providers: per GPU).
    /// @dev Requirements:
    /// - the caller has GOVERNOR_ROLE;
    /// - `amount` > 0.
    function setMinStake(Tier tier, uint256 amount) external onlyRole(GOVERNOR_ROLE) {
        if (amount == 0 || amount > type(uint96).max) revert StakingManagerInvalidMinStake(amount);
        _setMin(tier, uint96(amount));
        emit MinStakeChanged(tier, amount);
    }

    /// @notice Sets the contract whose open rentals reserve provider stake (GPURental; zero: none).
    /// @dev Change it only when the old locker has no open rentals: their reservations stop binding.
    /// Requirements:
    /// - the caller has GOVERNOR_ROLE.
    function setLocker(address newLocker) external onlyRole(GOVERNOR_ROLE) {
        _locker = newLocker;
        emit LockerChanged(newLocker);
    }

    /// @notice Sets the unbonding delay for requests made from now on.
    /// @dev Requirements:
    /// - the caller has GOVERNOR_ROLE;
    /// - `delay` <= 90 days.
    function setUnbondingDelay(uint64 delay) external onlyRole(GOVERNOR_ROLE) {
        if (delay > MAX_UNBONDING_DELAY) revert StakingManagerInvalidUnbondingDelay(delay);
        _unbondingDelay = delay;
        emit UnbondingDelayChanged(delay);
    }

    /// @notice Sets the share of slashed stake that is burned, in basis points (the rest goes to the treasury).
    /// @dev Requirements:
    /// - the caller has GOVERNOR_ROLE;
    /// - `bps` <= 10000.
    function setSlashBurnBps(uint256 bps) external onlyRole(GOVERNOR_ROLE) {
        if (bps > MAX_BPS) revert StakingManagerInvalidSlashBurnBps(bps);
        _slashBurnBps = bps;
        emit SlashBurnBpsChanged(bps);
    }

    /// @notice Sets the address that receives the non-burned part of slashed stake.
    /// @dev Requirements:
    /// - the caller has GOVERNOR_ROLE;
    /// - `treasury_` is not the zero address.
    function setTreasury(address treasury_) external onlyRole(GOVERNOR_ROLE) {
        if (treasury_ == address(0)) revert StakingManagerZeroAddress();
        _treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    /// @notice Sets the reward emission, in token units per second shared by all active stake; rewards
    /// accrued so far are settled at the old rate first.
    /// @dev Requirements:
    /// - the caller has GOVERNOR_ROLE;
    /// - `rate` <= MAX_REWARD_RATE.
    function setRewardRate(uint256 rate) external onlyRole(GOVERNOR_ROLE) {
        if (rate > MAX_REWARD_RATE) revert StakingManagerInvalidRewardRate(rate);
        _updateGlobal();
        _rewardRate = rate;
        emit RewardRateChanged(rate);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IStakingManager
    function stakeOf(address node, Tier tier) external view returns (uint256) {
        return _stakes[node][tier].active;
    }

    /// @notice Unbonding stake of `node` in `tier` and when it becomes withdrawable.
    function unbondingOf(address node, Tier tier) external view returns (uint256 amount, uint64 unlockAt) {
        NodeStake storage s = _stakes[node][tier];
        return (s.unbonding, s.unlockAt);
    }

    /// @notice Stake of `account`, active and unbonding, all tiers.
    function totalStakeOf(address account) external view returns (uint256) {
        return _stakeCheckpoints[account].latest();
    }

    /// @notice Active stake of `account`, all tiers (its share of rewards).
    function activeStakeOf(address account) external view returns (uint256) {
        return _accounts[account].active;
    }

    /// @notice Sum of all active stake.
    function totalActiveStake() external view returns (uint256) {
        return _totalActive;
    }

    /// @notice Sum of all stake, active and unbonding.
    function totalStake() external view returns (uint256) {
        return _totalCheckpoints.latest();
    }

    /// @inheritdoc IStakingManager
    /// @dev Requirements:
    /// - `timepoint` is a past timestamp (seconds, before {clock}).
    function getPastStake(address account, uint256 timepoint) external view returns (uint256) {
        return _stakeCheckpoints[account].upperLookupRecent(_pastKey(timepoint));
    }

    /// @notice Sum of all stake, active and unbonding, at `timepoint` (a past timestamp).
    /// @dev Requirements:
    /// - `timepoint` is a past timestamp (seconds, before {clock}).
    function getPastTotalStake(uint256 timepoint) external view returns (uint256) {
        return _totalCheckpoints.upperLookupRecent(_pastKey(timepoint));
    }

    /// @inheritdoc IStakingManager
    function minStake(Tier tier) public view returns (uint256) {
        if (tier == Tier.Provider) return _providerMin;
        return tier == Tier.Queen ? _queenMin : _kingMin;
    }

    /// @notice Provider-tier stake of `provider` that its open rentals may still slash (cannot start unbonding).
    function reservedStakeOf(address provider) external view returns (uint256) {
        return _reservedStake(provider);
    }

    /// @notice The contract whose open rentals reserve provider stake.
    function locker() external view returns (address) {
        return _locker;
    }

    /// @notice Active stake of `node` in `tier` and the tier's minimum, in one call.
    function stakeAndMinimum(address node, Tier tier) external view returns (uint256 active, uint256 minimum) {
        return (_stakes[node][tier].active, minStake(tier));
    }

    /// @notice Rewards `node` can claim now.
    function earned(address node) external view returns (uint256) {
        (uint256 rpt,) = _pendingGlobal();
        return _earned(_accounts[node], rpt);
    }

    /// @notice Accumulated reward per unit of active stake, scaled by 1e18.
    function rewardPerToken() external view returns (uint256 rpt) {
        (rpt,) = _pendingGlobal();
    }

    /// @notice Funded rewards not yet allocated to stakers.
    function rewardsAvailable() external view returns (uint256 unallocated) {
        (, unallocated) = _pendingGlobal();
    }

    /// @notice Reward emission in token units per second.
    function rewardRate() external view returns (uint256) {
        return _rewardRate;
    }

    /// @notice Seconds between an unstake request and the withdrawal it allows.
    function unbondingDelay() external view returns (uint64) {
        return _unbondingDelay;
    }

    /// @notice Share of slashed stake that is burned, in basis points.
    function slashBurnBps() external view returns (uint256) {
        return _slashBurnBps;
    }

    /// @notice Receiver of the non-burned part of slashed stake.
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @notice The staked token.
    function token() external view returns (address) {
        return address(_token);
    }

    /// @notice Clock of the stake checkpoints (ERC-6372): the block timestamp, as GPUToken's.
    function clock() public view returns (uint48) {
        return SafeCast.toUint48(block.timestamp);
    }

    /// @notice ERC-6372 clock description.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() external pure returns (string memory) {
        return "mode=timestamp";
    }

    // ---------------------------------------------------------------- internals

    function _setMin(Tier tier, uint96 amount) private {
        if (tier == Tier.Provider) _providerMin = amount;
        else if (tier == Tier.Queen) _queenMin = amount;
        else _kingMin = amount;
    }

    function _reservedStake(address provider) private view returns (uint256) {
        address reserver = _locker;
        if (reserver == address(0)) return 0;
        IProviderStakeReserver r = IProviderStakeReserver(reserver);
        return uint256(_providerMin) * r.reservedGpusOf(provider) * r.slashBps() / MAX_BPS;
    }

    function _stake(address node, Tier tier, uint256 amount) private {
        if (amount == 0) revert StakingManagerZeroAmount();
        _updateReward(node);
        NodeStake storage s = _stakes[node][tier];
        s.active = SafeCast.toUint112(s.active + amount);
        _accounts[node].active += amount;
        _totalActive += amount;
        _writeCheckpoints(node, amount, true);
        emit Staked(node, tier, msg.sender, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function _writeCheckpoints(address account, uint256 delta, bool add) private {
        uint48 key = clock();
        Checkpoints.Trace208 storage own = _stakeCheckpoints[account];
        uint256 ownLatest = own.latest();
        uint256 totalLatest = _totalCheckpoints.latest();
        own.push(key, SafeCast.toUint208(add ? ownLatest + delta : ownLatest - delta));
        _totalCheckpoints.push(key, SafeCast.toUint208(add ? totalLatest + delta : totalLatest - delta));
    }

    function _pastKey(uint256 timepoint) private view returns (uint48) {
        uint48 current = clock();
        if (timepoint >= current) revert StakingManagerFutureLookup(timepoint, current);
        return uint48(timepoint);
    }

    /// @dev Reward-per-token and unallocated pool as they would be after settling up to now.
    function _pendingGlobal() private view returns (uint256 rpt, uint256 unallocated) {
        rpt = _rewardPerTokenStored;
        unallocated = _rewardsUnallocated;
        uint256 total = _totalActive;
        if (total == 0 || unallocated == 0) return (rpt, unallocated);
        uint256 accrued = Math.min(_rewardRate * (block.timestamp - _lastUpdateTime), unallocated);
        // The whole accrual leaves the pool; per-account rounding down can leave dust here, never a deficit.
        unallocated -= accrued;
        rpt += Math.mulDiv(accrued, _PRECISION, total);
    }

    function _updateGlobal() private returns (uint256 rpt) {
        uint256 unallocated;
        (rpt, unallocated) = _pendingGlobal();
        _rewardPerTokenStored = rpt;
        _rewardsUnallocated = unallocated;
        _lastUpdateTime = uint64(block.timestamp);
    }

    function _updateReward(address account) private {
        uint256 rpt = _updateGlobal();
        RewardAccount storage a = _accounts[account];
        a.rewards = _earned(a, rpt);
        a.rewardPerTokenPaid = rpt;
    }

    function _earned(RewardAccount storage a, uint256 rpt) private view returns (uint256) {
        return a.rewards + Math.mulDiv(a.active, rpt - a.rewardPerTokenPaid, _PRECISION);
    }
}
