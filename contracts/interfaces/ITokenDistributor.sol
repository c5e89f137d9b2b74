// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Initial-allocation buckets of GPUTOKEN.
enum Category {
    Team,
    Investors,
    Advisors,
    Community,
    Treasury
}

/// @notice Reward programs paid by epoch from Merkle roots.
enum RewardKind {
    ProviderStaking,
    RenterLoyalty
}

/// @notice Initial GPUTOKEN allocation with vesting, and epoch rewards claimed by Merkle proof.
interface ITokenDistributor {
    error TokenDistributorZeroAddress();
    error TokenDistributorZeroAmount();
    error TokenDistributorCategoryCapExceeded(Category category, uint256 requested, uint256 remaining);
    error TokenDistributorInvalidSchedule(uint64 start, uint64 cliff, uint64 duration);
    error TokenDistributorNotTreasury(address beneficiary);
    error TokenDistributorZeroRoot();
    error TokenDistributorEpochRootAlreadySet(uint256 epoch, RewardKind kind);
    error TokenDistributorEpochNotSet(uint256 epoch, RewardKind kind);
    error TokenDistributorAlreadyClaimed(uint256 epoch, RewardKind kind, address account);
    error TokenDistributorInvalidProof();
    error TokenDistributorEpochTotalExceeded(uint256 epoch, RewardKind kind, uint256 claimed, uint256 total);
    error TokenDistributorClaimPeriodOver(uint256 epoch, RewardKind kind, uint256 deadline);
    error TokenDistributorClaimPeriodNotOver(uint256 epoch, RewardKind kind, uint256 deadline);
    error TokenDistributorEpochClosed(uint256 epoch, RewardKind kind);
    error TokenDistributorEpochOutOfOrder(uint256 epoch, RewardKind kind, uint256 nextEpoch);
    error TokenDistributorEpochNotOver(uint256 epoch, uint256 end);
    error TokenDistributorEpochRewardCapExceeded(uint256 epoch, RewardKind kind, uint256 total, uint256 cap);
    error TokenDistributorInvalidEpochRewardCap(RewardKind kind, uint256 cap, uint256 maxCap);

    event Allocated(
        Category indexed category,
        address indexed beneficiary,
        address indexed wallet,
        uint256 amount,
        uint64 start,
        uint64 cliff,
        uint64 duration
    );
    event EpochRootSet(uint256 indexed epoch, RewardKind indexed kind, bytes32 root, uint256 total);
    event RewardClaimed(uint256 indexed epoch, RewardKind indexed kind, address indexed account, uint256 amount);
    event TreasuryChanged(address treasury);
    event EpochClosed(uint256 indexed epoch, RewardKind indexed kind, uint256 unclaimed);
    event EpochRewardCapChanged(RewardKind indexed kind, uint256 cap);

    function allocate(
        Category category,
        address beneficiary,
        uint256 amount,
        uint64 start,
        uint64 cliff,
        uint64 duration
    ) external returns (address wallet);
    function setEpochRoot(uint256 epoch, RewardKind kind, bytes32 root, uint256 total) external;
    function claim(uint256 epoch, RewardKind kind, address account, uint256 amount, bytes32[] calldata proof)
        external;
    function setTreasury(address treasury) external;

    function categoryBps(Category category) external pure returns (uint256);
    function categoryCap(Category category) external view returns (uint256);
    function categoryUsed(Category category) external view returns (uint256);
    function totalReceived() external view returns (uint256);
    function rewardsOutstanding() external view returns (uint256);
    function epochReward(uint256 epoch, RewardKind kind)
        external
        view
        returns (bytes32 root, uint256 total, uint256 claimed);
    function isClaimed(uint256 epoch, RewardKind kind, address account) external view returns (bool);
    function treasury() external view returns (address);
    function token() external view returns (address);

    // --- epoch reward caps (GOVERNOR_ROLE) and epoch order ---
    function setEpochRewardCap(RewardKind kind, uint256 cap) external;
    function epochRewardCap(RewardKind kind) external view returns (uint256);
    function nextRewardEpoch(RewardKind kind) external view returns (uint256);
    function currentRewardEpoch() external view returns (uint256);
}
