// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IBridgeReceiver} from "./IBridge.sol";
import {IProviderStakeReserver} from "./IStakingManager.sol";

/// @notice GPU rental agreements on Ethereum: a renter's EIP-712 intent, escrow in GPUTOKEN, settlement from
/// the verified uptime that WorkVerification (ETC) sends back over the bridge. Each open rental reserves its
/// provider's stake (IProviderStakeReserver), so every slash a result can owe is payable.
interface IGPURental is IBridgeReceiver, IProviderStakeReserver {
    /// @notice What the renter signs (EIP-712 domain "BlendrGPURental", version "1").
    struct RentalIntent {
        address renter; // signer, pays the escrow
        address provider; // node that serves the rental; zero: any provider the scheduler chooses
        uint32 gpus; // GPUs rented
        bytes32 specHash; // hash of the job / hardware spec agreed off-chain
        uint256 maxPricePerGpuHour; // highest price (token wei per GPU-hour) the renter accepts
        uint64 duration; // seconds
        uint256 nonce; // any value not used before by this renter
        uint64 deadline; // unix time after which the intent cannot be used
        // Merkle root of the providers the renter's payload key was wrapped for (leaves keccak256(abi.encodePacked(
        // provider)), pairs hashed sorted as OpenZeppelin's MerkleProof): with provider zero, the scheduler may
        // choose only one of them. Ignored when the intent names its provider.
        bytes32 candidatesRoot;
        address scheduler; // the only account that may create this rental, and cancel it for the renter
    }

    /// @notice A renter's ERC-2612 permit of GPUTOKEN for this contract (createRentalWithPermit).
    struct Permit {
        uint256 value;
        uint256 deadline;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice Lifecycle of a rental. Active and Cancelled await a RESULT; Settled and Expired are final.
    enum RentalStatus {
        None,
        Active,
        Cancelled,
        Settled,
        Expired
    }

    /// @notice Everything stored about a rental, plus derived amounts and times.
    struct RentalInfo {
        address renter;
        address provider;
        address scheduler; // the intent's scheduler (zero once it lost SCHEDULER_ROLE): it may cancel
        RentalStatus status;
        bool rated; // the renter has submitted feedback
        uint32 gpus;
        uint64 start; // block timestamp at creation
        uint64 duration; // seconds, as agreed
        uint64 end; // start + duration, or the cancellation time when cancelled
        uint64 cancelledAt; // 0 unless cancelled
        uint256 pricePerGpuHour; // token wei per GPU-hour
        uint256 escrow; // token wei locked at creation
    }

    // --- errors: createRental ---
    error GPURentalIntentExpired(uint64 deadline);
    error GPURentalInvalidPrice(uint256 pricePerGpuHour, uint256 maxPricePerGpuHour);
    error GPURentalInvalidGpus(uint32 gpus, uint16 maxGpus);
    error GPURentalInvalidDuration(uint64 duration, uint32 minDuration, uint32 maxDuration);
    error GPURentalNonceUsed(address renter, uint256 nonce);
    error GPURentalInvalidSignature();
    /// The provider's active stake is below minStake(Provider) * gpus.
    error GPURentalInsufficientStake(address provider, uint256 stake, uint256 required);
    /// The provider's stake less what its open rentals may still slash cannot cover this rental's possible slash.
    error GPURentalStakeReserved(address provider, uint256 unreservedStake, uint256 slashable);
    error GPURentalInsufficientQueenStake(address queen, uint256 stake, uint256 required);
    error GPURentalQueenIsProvider(address queen);
    error GPURentalZeroEscrow();
    error GPURentalProviderMismatch(address intended, address provider);
    error GPURentalPeersNotSet();
    error GPURentalNotScheduler(address scheduler, address caller);
    error GPURentalProviderNotCandidate(address provider, bytes32 candidatesRoot);
    error GPURentalTooManySchedulers();
    // --- errors: createRentalWithVouchers ---
    error GPURentalVouchersNotSet();
    error GPURentalUnknownVoucherClass(uint256 voucherId);
    /// Vouchers are whole GPU-hours: gpus * duration must be a multiple of 3600 seconds.
    error GPURentalVoucherPartialHour(uint32 gpus, uint64 duration);
    // --- errors: bridge ---
    error GPURentalNotInbox(address caller);
    error GPURentalUnknownPeer(uint256 srcChainId, address sender);
    error GPURentalUnsupportedMessage(uint8 kind);
    /// The message is not the standard ABI encoding of a RentalMessages RESULT.
    error GPURentalMalformedMessage();
    error GPURentalNotAwaitingResult(uint256 rentalId, RentalStatus status);
    // --- errors: renter actions ---
    error GPURentalNotRenter(uint256 rentalId, address caller);
    error GPURentalNotRenterOrScheduler(uint256 rentalId, address caller);
    error GPURentalNotActive(uint256 rentalId, RentalStatus status);
    error GPURentalAlreadyEnded(uint256 rentalId, uint64 end);
    error GPURentalReclaimTooEarly(uint256 rentalId, uint256 availableAt);
    error GPURentalNotSettled(uint256 rentalId, RentalStatus status);
    error GPURentalAlreadyRated(uint256 rentalId);
    error GPURentalInvalidRating(uint8 rating);
    // --- errors: parameters ---
    error GPURentalInvalidFeeBps(uint256 feeBps);
    error GPURentalInvalidFeeBurnBps(uint256 feeBurnBps);
    error GPURentalInvalidSlashBps(uint256 slashBps);
    error GPURentalInvalidResultTimeout(uint256 resultTimeout);
    error GPURentalInvalidDurationBounds(uint256 minDuration, uint256 maxDuration);
    error GPURentalInvalidQuoteBounds(uint256 minPricePerGpuHour, uint256 maxPricePerGpuHour);
    error GPURentalInvalidMaxGpus(uint256 maxGpus);
    error GPURentalInvalidEtcChainId(uint256 etcChainId);
    error GPURentalZeroAddress();

    // --- events ---
    event RentalCreated(
        uint256 indexed rentalId,
        address indexed renter,
        address indexed provider,
        address queen,
        uint32 gpus,
        uint256 pricePerGpuHour,
        uint256 escrow,
        uint64 start,
        uint64 duration
    );
    event RentalCancelled(uint256 indexed rentalId, uint64 cancelledAt);
    event RentalSettled(
        uint256 indexed rentalId, uint64 verifiedSeconds, bool failed, uint256 providerPayment, uint256 fee, uint256 refund
    );
    event ProviderSlashed(uint256 indexed rentalId, address indexed provider, uint256 requested, uint256 slashed);
    event EscrowReclaimed(uint256 indexed rentalId, address indexed renter, uint256 amount);
    event FeedbackSubmitted(uint256 indexed rentalId, address indexed provider, uint8 rating);
    event FeeBpsChanged(uint16 feeBps);
    event SlashBpsChanged(uint16 slashBps);
    event ResultTimeoutChanged(uint32 resultTimeout);
    event DurationBoundsChanged(uint32 minDuration, uint32 maxDuration);
    event QuoteBoundsChanged(uint128 minPricePerGpuHour, uint128 maxPricePerGpuHour);
    event MaxGpusChanged(uint16 maxGpus);
    event TreasuryChanged(address treasury);
    event EtcPeersChanged(uint64 etcChainId, address workVerification, address reputationSystem);
    event InboxChanged(address inbox);
    event OutboxChanged(address outbox);
    event FeeBurnBpsChanged(uint16 feeBurnBps);
    /// collectFees paid `toTreasury` to `treasury` and burned `burned` of the fees settlements added up;
    /// `totalBurned` since deployment.
    event FeesCollected(address indexed treasury, uint256 toTreasury, uint256 burned, uint256 totalBurned);
    event ComputeVoucherChanged(address computeVoucher);

    // --- rentals ---
    function createRental(
        RentalIntent calldata intent,
        bytes calldata signature,
        uint256 pricePerGpuHour,
        address queen,
        address provider,
        bytes32[] calldata candidateProof
    ) external returns (uint256 rentalId);

    function createRentalWithPermit(
        RentalIntent calldata intent,
        bytes calldata signature,
        uint256 pricePerGpuHour,
        address queen,
        address provider,
        bytes32[] calldata candidateProof,
        Permit calldata permit
    ) external returns (uint256 rentalId);

    function createRentalWithVouchers(
        RentalIntent calldata intent,
        uint256 voucherId,
        bytes calldata signature,
        address queen,
        address provider,
        bytes32[] calldata candidateProof
    ) external returns (uint256 rentalId);

    function cancelRental(uint256 rentalId) external;
    function collectFees() external returns (uint256 toTreasury, uint256 burned);
    function reclaimEscrow(uint256 rentalId) external;
    function submitFeedback(uint256 rentalId, uint8 rating) external;

    // --- views ---
    function rental(uint256 rentalId) external view returns (RentalInfo memory);
    function rentalStatus(uint256 rentalId) external view returns (RentalStatus);
    function rentalIdOf(address renter, uint256 nonce) external view returns (uint256);
    function intentDigest(RentalIntent calldata intent) external view returns (bytes32);
    function token() external view returns (address);
    function staking() external view returns (address);
    function inbox() external view returns (address);
    function outbox() external view returns (address);
    function treasury() external view returns (address);
    function etcChainId() external view returns (uint64);
    function workVerification() external view returns (address);
    function reputationSystem() external view returns (address);
    function feeBps() external view returns (uint16);
    function slashBps() external view returns (uint16);
    function resultTimeout() external view returns (uint32);
    function minDuration() external view returns (uint32);
    function maxDuration() external view returns (uint32);
    function maxGpus() external view returns (uint16);
    function voucherIntentDigest(RentalIntent calldata intent, uint256 voucherId) external view returns (bytes32);
    function computeVoucher() external view returns (address);
    function feeBurnBps() external view returns (uint16);
    function feeBurnTotals() external view returns (uint256 burned, uint256 pending);
    function pendingFees() external view returns (uint256 toTreasury, uint256 toBurn);

    // --- governance (GOVERNOR_ROLE) ---
    function setFeeBps(uint16 newFeeBps) external;
    function setSlashBps(uint16 newSlashBps) external;
    function setResultTimeout(uint32 newResultTimeout) external;
    function setDurationBounds(uint32 newMinDuration, uint32 newMaxDuration) external;

    function setQuoteBounds(uint128 newMin, uint128 newMax) external;

    function quoteBounds() external view returns (uint256 minPricePerGpuHour, uint256 maxPricePerGpuHour);
    function setMaxGpus(uint16 newMaxGpus) external;
    function setTreasury(address newTreasury) external;
    function setEtcPeers(uint64 newEtcChainId, address newWorkVerification, address newReputationSystem) external;
    function setInbox(address newInbox) external;
    function setOutbox(address newOutbox) external;
    function setFeeBurnBps(uint16 newFeeBurnBps) external;
    function setComputeVoucher(address newComputeVoucher) external;
}
