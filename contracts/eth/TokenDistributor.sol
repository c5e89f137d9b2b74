// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Category, ITokenDistributor, RewardKind} from "../interfaces/ITokenDistributor.sol";
import {VotesVestingWallet} from "./VotesVestingWallet.sol";

/// @title TokenDistributor
/// @notice Holds GPUTOKEN's initial supply and hands it out: allocations per category (Team, Investors and
/// Advisors always through a new {VotesVestingWallet}; Community and Treasury directly, or vested when a
/// duration is given) and epoch rewards (provider staking, renter loyalty) claimed against a Merkle root.
/// Tokens held here never vote (this contract does not delegate); a vesting wallet's tokens vote for its
/// beneficiary from the allocation on (the wallet delegates to it; the beneficiary may re-delegate).
///
/// Genesis (what `blendr chain deploy` does, `blendr/chain/deploy.py`, reasoning in docs/chains.md
/// "Governance at genesis"): the whole initial supply S (default 100,000,000 GPUTOKEN) is minted here, then
/// - Team 15%, Investors 15%, Advisors 5% are allocated at once to the configured beneficiaries, vesting
///   (default cliff/duration: Team 1 y/4 y, Investors 1 y/2 y, Advisors 6 months/2 y): 35% of S votes from
///   the first block, for those beneficiaries;
/// - Treasury 20% goes to the Timelock (this contract's treasury is the Timelock): governance spends it by
///   proposal (a plain token transfer), and it does not vote while the Timelock holds it;
/// - Community 45% stays here under the Timelock's ALLOCATOR_ROLE and REWARDS_ROLE: governance allocates it
///   and publishes epoch rewards from it; it votes once it reaches holders (who delegate, or stake).
/// Quorum is 4% of total supply and the proposal threshold 0.01% of S, so the 35% that votes at genesis can
/// reach both — and does not need the 65% that cannot vote until governance hands it out.
/// @dev Category caps are fixed basis points of {totalReceived} (every token this contract has ever held:
/// balance + paid out): Team 15%, Investors 15%, Advisors 5%, Community 45%, Treasury 20%, summing to 100%.
/// Epoch reward totals are reserved from the Community cap. Because the caps sum to 100%, an allocation or
/// reservation within its cap is always covered by the balance not yet reserved.
/// Merkle leaves are OpenZeppelin StandardMerkleTree leaves of (address account, uint256 amount).
contract TokenDistributor is ITokenDistributor, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    bytes32 public constant ALLOCATOR_ROLE = keccak256("ALLOCATOR_ROLE");
    bytes32 public constant REWARDS_ROLE = keccak256("REWARDS_ROLE");
    uint256 private constant _MAX_BPS = 10_000;

    /// @notice How long an epoch's rewards can be claimed; afterwards closeEpoch returns the rest.
    uint256 public constant CLAIM_PERIOD = 365 days;
    /// @notice Length of a reward epoch: epoch `e` spans block timestamps [e * D, (e + 1) * D), D = this.
    uint256 public constant REWARD_EPOCH_DURATION = 7 days;
    /// @notice Upper bound governance may set for one epoch's rewards of one kind.
    uint256 public constant MAX_EPOCH_REWARD_CAP = 1_000_000 ether;
    /// @notice How many epochs after its end an epoch can still be published. Epochs nobody published (quiet
    /// weeks, a cap of 0, a king that was down) do not pile up for a leaked REWARDS_ROLE key: at most this many
    /// caps per kind are payable at once, and one per kind per epoch after that.
    uint256 public constant REWARD_PUBLISH_WINDOW = 4;

    struct EpochReward {
        bytes32 root;
        uint96 total;
        uint96 claimed;
        uint64 claimDeadline;
    }

    IERC20 private immutable _token;
    address private _treasury;
    uint256 private _paidOut; // allocations + reward claims sent out
    uint256 private _rewardsOutstanding; // reserved for epochs, not yet claimed
    mapping(Category category => uint256) private _used;
    mapping(uint256 epoch => mapping(RewardKind kind => EpochReward)) private _epochs;
    mapping(uint256 epoch => mapping(RewardKind kind => mapping(address account => bool))) private _claimed;
    /// @dev The epoch this contract was deployed in: no earlier epoch can be published (so a publisher cannot
    /// reach back and pay out every past epoch's cap).
    uint256 private immutable _firstRewardEpoch = block.timestamp / REWARD_EPOCH_DURATION;
    mapping(RewardKind kind => uint256) private _epochRewardCap;
    mapping(RewardKind kind => uint256) private _nextRewardEpoch; // 0: none published yet (_firstRewardEpoch)

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the deployer grants ALLOCATOR_ROLE and
    /// REWARDS_ROLE).
    /// @param token_ GPUTOKEN; the deployer mints the initial supply to this contract.
    /// @param treasury_ The only beneficiary of Treasury-category allocations (deployments set the Timelock).
    constructor(address admin, IERC20 token_, address treasury_) {
        if (admin == address(0) || address(token_) == address(0) || treasury_ == address(0)) {
            revert TokenDistributorZeroAddress();
        }
        _token = token_;
        _treasury = treasury_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
    }

    /// @notice Allocates `amount` of `category` to `beneficiary`. Team, Investors and Advisors (and any
    /// category with `duration` > 0) go to a new {VotesVestingWallet} owned by `beneficiary` that releases
    /// linearly from `start` over `duration` seconds, nothing before `start + cliff`, and whose votes count
    /// for `beneficiary` at once; otherwise the tokens are sent to `beneficiary` directly. Returns the wallet
    /// (or `beneficiary` for direct transfers).
    /// @dev Requirements:
    /// - the caller has ALLOCATOR_ROLE;
    /// - `beneficiary` is not the zero address, and is the treasury for the Treasury category;
    /// - `amount` > 0 and within what is left of the category's cap;
    /// - Team/Investors/Advisors: `duration` > 0; any vesting: `cliff` <= `duration`;
    /// - direct transfers: `start` and `cliff` are 0.
    function allocate(
        Category category,
        address beneficiary,
        uint256 amount,
        uint64 start,
        uint64 cliff,
        uint64 duration
    ) external onlyRole(ALLOCATOR_ROLE) nonReentrant returns (address wallet) {
        if (beneficiary == address(0)) revert TokenDistributorZeroAddress();
        if (category == Category.Treasury && beneficiary != _treasury) revert TokenDistributorNotTreasury(beneficiary);
        if (amount == 0) revert TokenDistributorZeroAmount();
        bool vested = category <= Category.Advisors || duration != 0;
        if (vested ? (duration == 0 || cliff > duration) : (start != 0 || cliff != 0)) {
            revert TokenDistributorInvalidSchedule(start, cliff, duration);
        }
        _use(category, amount);
        _paidOut += amount;
        wallet = vested
            ? address(new VotesVestingWallet(beneficiary, start, duration, cliff, IVotes(address(_token))))
            : beneficiary;
        emit Allocated(category, beneficiary, wallet, amount, start, cliff, duration);
        _token.safeTransfer(wallet, amount);
    }

    /// @notice Publishes the Merkle root of `kind` rewards for `epoch` and reserves `total` for its claims
    /// out of the Community cap. Epochs of a kind are published in increasing order (empty ones skipped), each
    /// once, only after they ended, and within the cap governance set: whoever holds REWARDS_ROLE (the King's
    /// key) can pay out at most {epochRewardCap} per kind per elapsed epoch, and at most REWARD_PUBLISH_WINDOW
    /// caps per kind at once.
    /// @dev Requirements:
    /// - the caller has REWARDS_ROLE;
    /// - `root` is non-zero and `total` > 0;
    /// - no root was set for (`epoch`, `kind`) before;
    /// - `epoch` >= {nextRewardEpoch}(`kind`) (not before the deployment's epoch, after the last published, and
    ///   ended at most REWARD_PUBLISH_WINDOW epochs ago);
    /// - `epoch` has ended: block.timestamp >= (`epoch` + 1) * REWARD_EPOCH_DURATION;
    /// - `total` <= {epochRewardCap}(`kind`);
    /// - `total` fits in what is left of the Community cap.
    function setEpochRoot(uint256 epoch, RewardKind kind, bytes32 root, uint256 total)
        external
        onlyRole(REWARDS_ROLE)
    {
        if (root == bytes32(0)) revert TokenDistributorZeroRoot();
        if (total == 0) revert TokenDistributorZeroAmount();
        EpochReward storage e = _epochs[epoch][kind];
        if (e.root != bytes32(0)) revert TokenDistributorEpochRootAlreadySet(epoch, kind);
        uint256 next = nextRewardEpoch(kind);
        if (epoch < next) revert TokenDistributorEpochOutOfOrder(epoch, kind, next);
        uint256 end = (epoch + 1) * REWARD_EPOCH_DURATION;
        if (block.timestamp < end) revert TokenDistributorEpochNotOver(epoch, end);
        uint256 cap = _epochRewardCap[kind];
        if (total > cap) revert TokenDistributorEpochRewardCapExceeded(epoch, kind, total, cap);
        _nextRewardEpoch[kind] = epoch + 1;
        _use(Category.Community, total);
        _rewardsOutstanding += total;
        e.root = root;
        e.total = SafeCast.toUint96(total);
        e.claimDeadline = uint64(block.timestamp + CLAIM_PERIOD);
        emit EpochRootSet(epoch, kind, root, total);
    }

    /// @notice Pays `account` its `kind` reward of `amount` for `epoch`; anyone may submit the proof.
    /// @dev Requirements:
    /// - a root is set for (`epoch`, `kind`);
    /// - `account` has not claimed it yet;
    /// - `proof` proves the leaf (`account`, `amount`) against the root;
    /// - the epoch's claims stay within its total.
    function claim(uint256 epoch, RewardKind kind, address account, uint256 amount, bytes32[] calldata proof)
        external
        nonReentrant
    {
        EpochReward storage e = _epochs[epoch][kind];
        bytes32 root = e.root;
        if (root == bytes32(0)) revert TokenDistributorEpochNotSet(epoch, kind);
        if (_claimed[epoch][kind][account]) revert TokenDistributorAlreadyClaimed(epoch, kind, account);
        if (block.timestamp >= e.claimDeadline) revert TokenDistributorClaimPeriodOver(epoch, kind, e.claimDeadline);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert TokenDistributorInvalidProof();
        uint256 claimed = e.claimed + amount;
        if (claimed > e.total) revert TokenDistributorEpochTotalExceeded(epoch, kind, claimed, e.total);
        _claimed[epoch][kind][account] = true;
        e.claimed = uint96(claimed); // <= total
        _rewardsOutstanding -= amount;
        _paidOut += amount;
        emit RewardClaimed(epoch, kind, account, amount);
        _token.safeTransfer(account, amount);
    }

    /// @notice After an epoch's claim period, returns what nobody claimed to the Community cap (so it can be
    /// allocated or published again) instead of leaving it reserved forever; anyone may call it.
    /// @dev Requirements:
    /// - a root is set for (`epoch`, `kind`);
    /// - its claim period is over;
    /// - it was not closed before.
    function closeEpoch(uint256 epoch, RewardKind kind) external {
        EpochReward storage e = _epochs[epoch][kind];
        if (e.root == bytes32(0)) revert TokenDistributorEpochNotSet(epoch, kind);
        if (block.timestamp < e.claimDeadline) revert TokenDistributorClaimPeriodNotOver(epoch, kind, e.claimDeadline);
        uint256 unclaimed = e.total - e.claimed;
        if (unclaimed == 0) revert TokenDistributorEpochClosed(epoch, kind);
        e.total = e.claimed;
        _rewardsOutstanding -= unclaimed;
        _used[Category.Community] -= unclaimed;
        emit EpochClosed(epoch, kind, unclaimed);
    }

    /// @notice Sets the protocol treasury (beneficiary of Treasury-category allocations).
    /// @dev Requirements:
    /// - the caller has GOVERNOR_ROLE;
    /// - `treasury_` is not the zero address.
    function setTreasury(address treasury_) external onlyRole(GOVERNOR_ROLE) {
        if (treasury_ == address(0)) revert TokenDistributorZeroAddress();
        _treasury = treasury_;
        emit TreasuryChanged(treasury_);
    }

    /// @notice Sets the most that one epoch's `kind` rewards may total (0 stops publishing that kind).
    /// @dev Requirements:
    /// - the caller has GOVERNOR_ROLE;
    /// - `cap` <= MAX_EPOCH_REWARD_CAP.
    function setEpochRewardCap(RewardKind kind, uint256 cap) external onlyRole(GOVERNOR_ROLE) {
        if (cap > MAX_EPOCH_REWARD_CAP) revert TokenDistributorInvalidEpochRewardCap(kind, cap, MAX_EPOCH_REWARD_CAP);
        _epochRewardCap[kind] = cap;
        emit EpochRewardCapChanged(kind, cap);
    }

    /// @notice The most that one epoch's `kind` rewards may total.
    function epochRewardCap(RewardKind kind) external view returns (uint256) {
        return _epochRewardCap[kind];
    }

    /// @notice The lowest epoch whose `kind` rewards may still be published: after the last one published, not
    /// before the deployment's, and not more than REWARD_PUBLISH_WINDOW epochs before the current one.
    function nextRewardEpoch(RewardKind kind) public view returns (uint256) {
        uint256 next = _nextRewardEpoch[kind];
        if (next < _firstRewardEpoch) next = _firstRewardEpoch;
        uint256 current = block.timestamp / REWARD_EPOCH_DURATION;
        if (current > REWARD_PUBLISH_WINDOW && next < current - REWARD_PUBLISH_WINDOW) {
            next = current - REWARD_PUBLISH_WINDOW;
        }
        return next;
    }

    /// @notice The reward epoch the current block is in (block.timestamp / REWARD_EPOCH_DURATION).
    function currentRewardEpoch() external view returns (uint256) {
        return block.timestamp / REWARD_EPOCH_DURATION;
    }

    /// @notice Share of {totalReceived} that `category` may use, in basis points.
    function categoryBps(Category category) public pure returns (uint256) {
        if (category == Category.Team) return 1_500;
        if (category == Category.Investors) return 1_500;
        if (category == Category.Advisors) return 500;
        if (category == Category.Community) return 4_500;
        return 2_000;
    }

    /// @notice Current cap of `category`: its basis points of {totalReceived}.
    function categoryCap(Category category) public view returns (uint256) {
        return (totalReceived() * categoryBps(category)) / _MAX_BPS;
    }

    /// @notice Amount of `category` allocated (and, for Community, reserved for epoch rewards).
    function categoryUsed(Category category) external view returns (uint256) {
        return _used[category];
    }

    /// @notice Every token this contract has held: current balance plus everything paid out.
    function totalReceived() public view returns (uint256) {
        return _token.balanceOf(address(this)) + _paidOut;
    }

    /// @notice Epoch rewards reserved and not yet claimed.
    function rewardsOutstanding() external view returns (uint256) {
        return _rewardsOutstanding;
    }

    /// @notice Root, total and amount claimed so far of `kind` rewards for `epoch`.
    function epochReward(uint256 epoch, RewardKind kind)
        external
        view
        returns (bytes32 root, uint256 total, uint256 claimed)
    {
        EpochReward storage e = _epochs[epoch][kind];
        return (e.root, e.total, e.claimed);
    }

    /// @notice Until when `kind` rewards of `epoch` can be claimed (0: no root).
    function claimDeadline(uint256 epoch, RewardKind kind) external view returns (uint256) {
        return _epochs[epoch][kind].claimDeadline;
    }

    /// @notice Whether `account` has claimed its `kind` reward for `epoch`.
    function isClaimed(uint256 epoch, RewardKind kind, address account) external view returns (bool) {
        return _claimed[epoch][kind][account];
    }

    /// @notice The protocol treasury.
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @notice The distributed token.
    function token() external view returns (address) {
        return address(_token);
    }

    function _use(Category category, uint256 amount) private {
        uint256 cap = categoryCap(category);
        uint256 used = _used[category];
        uint256 remaining = cap > used ? cap - used : 0;
        if (amount > remaining) revert TokenDistributorCategoryCapExceeded(category, amount, remaining);
        _used[category] = used + amount;
    }
}
