// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IBridgeOutbox} from "../interfaces/IBridge.sol";
import {IComputeVoucher} from "../interfaces/IComputeVoucher.sol";
import {IGPURental} from "../interfaces/IGPURental.sol";
import {IGPUToken} from "../interfaces/IGPUToken.sol";
import {IStakingManager, Tier} from "../interfaces/IStakingManager.sol";
import {RentalMessages} from "../interfaces/RentalMessages.sol";

/// @title GPURental
/// @notice Rental agreements between renters and GPU providers, with escrow in GPUTOKEN.
///
/// A king (SCHEDULER_ROLE) creates a rental from the renter's signed EIP-712 intent, at a price no higher than the
/// renter's maximum; the intent binds that king (`scheduler`: only it may create the rental and cancel it for the
/// renter) and, when it leaves the provider open, the candidate providers (`candidatesRoot`); the escrow `price * gpus * duration / 3600` is pulled from the renter and a bridge message
/// opens the verification task on ETC. WorkVerification's RESULT settles: the provider is paid for verified
/// uptime (`price * gpus * verifiedSeconds / 3600`, at most the escrow), the protocol fee is added up for the treasury (collectFees),
/// the renter gets the rest back; a failed verification pays nothing and slashes the provider's stake.
/// If no result arrives within `resultTimeout` after the rental's end, the renter gets the whole escrow back.
///
/// Stake: the provider must stake minStake(Provider) per GPU of a rental, and each open rental reserves what a
/// failed verification would slash, minStake(Provider) * slashBps / 10000 per GPU (reservedGpusOf, checked by
/// StakingManager before any unstake), from creation until it settles or its escrow is reclaimed; a rental is
/// created only if the provider's unreserved stake covers its possible slash too, so every slash the open
/// rentals can owe is payable. A slash is capped at the rental's share of the stake (active * gpus / reserved
/// GPUs), so it stays payable even if governance raised minStake or slashBps since.
///
/// Rounding: every division rounds down, so the escrow and the payment are each at most 1 wei below the exact
/// pro-rata value (in the renter's favour) and the fee rounds down (in the provider's favour). Nothing is lost:
/// refund = escrow - payment exactly.
///
/// Vouchers: createRentalWithVouchers takes the escrow as ComputeVoucher GPU-hours instead of tokens. The renter
/// signs the intent together with the voucher class (EIP-712 VoucherRentalIntent), the rental's price is the
/// class price, and gpus * duration must be whole GPU-hours: that many vouchers are burned and their backing
/// becomes the escrow, held here like any escrow. What the rental does not use (at settlement or on reclaim) goes
/// back to ComputeVoucher.refundFromRental: whole GPU-hours of it come back as vouchers of the same class, only the
/// rest below one voucher's price as GPUTOKEN less the redemption fee, so cancelling a voucher rental is never a
/// cheaper way to redeem. A plain rental's refund pays one extra storage read (is it a voucher rental?).
///
/// Fees and the usage burn: settlement does not transfer the protocol fee; it adds it to two pending sums held
/// here, the treasury's share and the burn share (feeBurnBps of the fee), both in one storage slot. collectFees(),
/// callable by anyone, sends the treasury its share and burns the rest with GPUToken's ERC20Burnable.burn (a
/// transfer and a votes checkpoint per settlement would cost more than the whole settlement may). pendingFees()
/// and feeBurnTotals() read the sums.
///
/// Storage: a rental takes two slots (everything settlement needs, packed; the scheduler as the small id it got
/// with SCHEDULER_ROLE); the rentalId is keccak256(abi.encode(chainid, this, renter, nonce)), so the rental record
/// itself is the renter's nonce replay guard. A cancellation time lives in a third mapping, written only on cancel.
contract GPURental is IGPURental, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Holders may change every parameter (the governance timelock after deployment).
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    /// @notice Holders (kings) create rentals whose intent names them: they quote the price and pick the
    /// provider's queen. Each grant gives the holder a new scheduler id (at most 65535 grants).
    bytes32 public constant SCHEDULER_ROLE = keccak256("SCHEDULER_ROLE");

    bytes32 private constant _INTENT_TYPEHASH = keccak256(
        "RentalIntent(address renter,address provider,uint32 gpus,bytes32 specHash,uint256 maxPricePerGpuHour,"
        "uint64 duration,uint256 nonce,uint64 deadline,bytes32 candidatesRoot,address scheduler)"
    );
    bytes32 private constant _VOUCHER_INTENT_TYPEHASH = keccak256(
        "VoucherRentalIntent(RentalIntent intent,uint256 voucherId)"
        "RentalIntent(address renter,address provider,uint32 gpus,bytes32 specHash,uint256 maxPricePerGpuHour,"
        "uint64 duration,uint256 nonce,uint64 deadline,bytes32 candidatesRoot,address scheduler)"
    );

    uint256 private constant _BPS = 10_000;
    uint16 private constant _MAX_FEE_BPS = 2_000;
    // A result needs the queen's finalization window plus ETC's deep confirmations (thousands of blocks,
    // hours) before it can arrive: a shorter timeout would let a renter reclaim escrow the provider earned.
    uint32 private constant _MIN_RESULT_TIMEOUT = 1 days;
    uint32 private constant _MAX_RESULT_TIMEOUT = 30 days;
    uint32 private constant _MIN_DURATION_FLOOR = 1 minutes;
    uint32 private constant _MAX_DURATION_CEILING = 365 days;

    /// @dev Two slots. Slot 0: renter | start | duration | gpus | status | rated. Slot 1: provider | price |
    /// schedulerId. Bounds: gpus <= maxGpus <= type(uint16).max, duration <= maxDuration <= 365 days,
    /// price < 2**80 wei (1.2e6 tokens of 18 decimals per GPU-hour), start in uint32 (until the year 2106).
    struct Rental {
        address renter;
        uint32 start;
        uint32 duration;
        uint16 gpus;
        RentalStatus status;
        bool rated;
        address provider;
        uint80 pricePerGpuHour;
        uint16 schedulerId;
    }

    /// @dev How a voucher rental was paid, one slot: class ids are counted from 1, far below 2**96.
    struct VoucherPayment {
        IComputeVoucher vouchers;
        uint96 id;
    }

    IERC20 private immutable _token;
    IStakingManager private immutable _staking;

    // Parameters, packed by the operation that reads them.
    // settlement: inbox check, fee and burn rates
    address private _inbox;
    uint16 private _feeBps;
    uint16 private _feeBurnBps;
    // settlement: fees not yet collected, the treasury's share and the burn share (uint112: 5e15 tokens, above
    // GPUTOKEN's cap); reclaim's timeout shares their slot because it is never zero, so collecting never
    // empties the slot (a write to an empty slot costs 20,000 gas)
    uint112 private _feesPending;
    uint112 private _burnPending;
    uint32 private _resultTimeout;
    // creation and settlement: the ETC peer
    address private _workVerification;
    uint64 private _etcChainId;
    // creation: outbox and request bounds
    IBridgeOutbox private _outbox;
    uint16 private _maxGpus;
    uint32 private _minDuration;
    uint32 private _maxDuration;
    uint16 private _slashBps; // read by every creation (the stake its rental reserves), so in this slot
    address private _treasury;
    address private _reputationSystem;
    IComputeVoucher private _computeVoucher;
    uint256 private _burned;
    // voucher rentals: the ComputeVoucher that paid (a later setComputeVoucher does not move them) and the class
    mapping(uint256 rentalId => VoucherPayment) private _voucherPayments;

    // Governance bounds of the price per GPU-hour a scheduler quotes (read by kings; not checked per rental, so
    // createRental pays no extra storage read: the renter's signed max price is what binds a rental).
    uint128 private _minQuote;
    uint128 private _maxQuote;

    mapping(uint256 rentalId => Rental) private _rentals;
    mapping(uint256 rentalId => uint64) private _cancelledAt;
    // GPUs under the provider's open rentals (created, not settled nor reclaimed): minStake(Provider) each is held.
    mapping(address provider => uint256) private _reservedGpus;
    // Scheduler ids: nonzero while the account holds SCHEDULER_ROLE; a rental stores its scheduler's id.
    mapping(address scheduler => uint16) private _schedulerIds;
    mapping(uint16 id => address) private _schedulers;
    uint16 private _lastSchedulerId;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE.
    /// @param token_ GPUTOKEN (ERC-20 with ERC-2612 permit).
    /// @param staking_ StakingManager; this contract needs its SLASHER_ROLE.
    /// @param outbox_ ETH bridge outbox; this contract must be an authorized sender.
    /// @param inbox_ ETH bridge inbox, the only caller of onBridgeMessage.
    /// @param treasury_ Receives protocol fees.
    /// Initial parameters: fee 2.5 %, slash 10 % of the required stake, result timeout 3 days, durations from
    /// 10 minutes to 30 days, at most 64 GPUs. The ETC peers are set with setEtcPeers once deployed.
    constructor(
        address admin,
        IERC20 token_,
        IStakingManager staking_,
        IBridgeOutbox outbox_,
        address inbox_,
        address treasury_
    ) EIP712("BlendrGPURental", "1") {
        if (
            admin == address(0) || address(token_) == address(0) || address(staking_) == address(0)
                || address(outbox_) == address(0) || inbox_ == address(0) || treasury_ == address(0)
        ) revert GPURentalZeroAddress();
        _token = token_;
        _staking = staking_;
        _outbox = outbox_;
        _inbox = inbox_;
        _treasury = treasury_;
        _feeBps = 250;
        _slashBps = 1_000;
        _resultTimeout = 7 days; // > WorkVerification's finalizeGrace (3 days) + ETC confirmations
        _minDuration = 10 minutes;
        _maxDuration = 30 days;
        _maxGpus = 64;
        _minQuote = 1e16; // 0.01 GPUTOKEN per GPU-hour
        _maxQuote = 50e18;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
    }

    // ------------------------------------------------------------------ rentals

    /// @notice Creates a rental from the renter's signed intent and locks its escrow.
    /// @dev Pulls `pricePerGpuHour * gpus * duration / 3600` tokens from the renter (needs an allowance), emits
    /// RentalCreated and sends RentalMessages.Open to WorkVerification. Returns keccak256(abi.encode(renter, nonce)).
    /// An intent may name its provider, or leave it zero: the renter then lets the scheduler choose one of the
    /// candidates under `intent.candidatesRoot` that is staked for the GPUs (the price ceiling, GPUs, duration and
    /// spec hash stay the renter's). Reserves minStake(Provider) * gpus of the provider's stake until settlement.
    /// Requirements:
    /// - caller has SCHEDULER_ROLE and is `intent.scheduler` (whether or not the intent names its provider);
    /// - `provider` is not zero, and `intent.provider` is `provider`, or zero and `candidateProof` proves
    ///   `provider` is a leaf of `intent.candidatesRoot` (empty when the intent names its provider);
    /// - `intent.deadline` has not passed;
    /// - 0 < `pricePerGpuHour` <= `intent.maxPricePerGpuHour` and < 2**80;
    /// - 0 < `intent.gpus` <= maxGpus and minDuration <= `intent.duration` <= maxDuration;
    /// - the renter has not used `intent.nonce` before;
    /// - `signature` is the renter's EIP-712 signature of `intent`;
    /// - the provider's Provider stake >= minStake(Provider) * gpus (GPURentalInsufficientStake), and, less what
    ///   its open rentals may still slash (minStake(Provider) * reservedGpusOf(provider) * slashBps / 10000), it
    ///   covers this rental's possible slash, minStake(Provider) * gpus * slashBps / 10000 (GPURentalStakeReserved);
    /// - `queen`'s Queen stake >= minStake(Queen);
    /// - the escrow is not zero, the ETC peers are set, and the renter's allowance and balance cover the escrow.
    function createRental(
        RentalIntent calldata intent,
        bytes calldata signature,
        uint256 pricePerGpuHour,
        address queen,
        address provider,
        bytes32[] calldata candidateProof
    ) external nonReentrant returns (uint256 rentalId) {
        uint256 escrow;
        (rentalId, escrow) = _createRental(intent, intentDigest(intent), signature, pricePerGpuHour, queen, provider,
            candidateProof);
        _token.safeTransferFrom(intent.renter, address(this), escrow);
        _sendOpen(rentalId, intent, queen, provider);
    }

    /// @notice createRental, after trying the renter's ERC-2612 permit for this contract.
    /// @dev A failing permit is ignored (it may have been front-run and already used); the escrow transfer then
    /// fails on its own if the allowance is short.
    /// Requirements: those of createRental.
    function createRentalWithPermit(
        RentalIntent calldata intent,
        bytes calldata signature,
        uint256 pricePerGpuHour,
        address queen,
        address provider,
        bytes32[] calldata candidateProof,
        Permit calldata permit
    ) external nonReentrant returns (uint256 rentalId) {
        try IERC20Permit(address(_token)).permit(
            intent.renter, address(this), permit.value, permit.deadline, permit.v, permit.r, permit.s
        ) {} catch {}
        uint256 escrow;
        (rentalId, escrow) = _createRental(intent, intentDigest(intent), signature, pricePerGpuHour, queen, provider,
            candidateProof);
        _token.safeTransferFrom(intent.renter, address(this), escrow);
        _sendOpen(rentalId, intent, queen, provider);
    }

    /// @notice createRental paid with ComputeVoucher GPU-hours of class `voucherId` instead of an allowance.
    /// @dev The price per GPU-hour is the class price; gpus * duration / 3600 vouchers are burned and their
    /// GPUTOKEN backing (exactly the escrow) moves here. Settlement pays the provider as for any rental; what is
    /// unused (at settlement or by reclaimEscrow) comes back as vouchers of this class for every whole GPU-hour,
    /// the rest as GPUTOKEN less the redemption fee (ComputeVoucher.refundFromRental).
    /// Requirements:
    /// - those of createRental, with `signature` the renter's EIP-712 signature of VoucherRentalIntent(intent,
    ///   voucherId) (voucherIntentDigest) and the class price as the price (at most `intent.maxPricePerGpuHour`);
    /// - ComputeVoucher is set (GPURentalVouchersNotSet) and class `voucherId` exists (GPURentalUnknownVoucherClass);
    /// - `intent.gpus * intent.duration` is a whole number of hours (GPURentalVoucherPartialHour);
    /// - the renter holds that many vouchers of the class (ComputeVoucher reverts ERC1155InsufficientBalance).
    function createRentalWithVouchers(
        RentalIntent calldata intent,
        uint256 voucherId,
        bytes calldata signature,
        address queen,
        address provider,
        bytes32[] calldata candidateProof
    ) external nonReentrant returns (uint256 rentalId) {
        IComputeVoucher vouchers = _computeVoucher;
        if (address(vouchers) == address(0)) revert GPURentalVouchersNotSet();
        uint256 gpuSeconds = uint256(intent.gpus) * intent.duration;
        if (gpuSeconds % 1 hours != 0) revert GPURentalVoucherPartialHour(intent.gpus, intent.duration);
        uint256 price = vouchers.priceOf(voucherId);
        if (price == 0) revert GPURentalUnknownVoucherClass(voucherId);
        (rentalId,) = _createRental(intent, voucherIntentDigest(intent, voucherId), signature, price, queen, provider,
            candidateProof);
        _voucherPayments[rentalId] = VoucherPayment({vouchers: vouchers, id: SafeCast.toUint96(voucherId)});
        vouchers.spendForRental(intent.renter, voucherId, gpuSeconds / 1 hours, rentalId);
        _sendOpen(rentalId, intent, queen, provider);
    }

    /// @notice Cancels an active rental before its end; it ends now and is settled for verified time so far.
    /// @dev Records the cancellation time and sends RentalMessages.Close to WorkVerification; the RESULT that
    /// follows pays at most up to the cancellation. The rental's scheduler cancels on the renter's behalf (a job
    /// cancelled through the king) and when it moves a job off a provider that died; no other scheduler can.
    /// Requirements:
    /// - caller is the rental's renter, or the scheduler its intent named while it still has SCHEDULER_ROLE;
    /// - the rental is Active and its end has not been reached.
    function cancelRental(uint256 rentalId) external {
        Rental storage r = _rentals[rentalId];
        if (r.renter != msg.sender) {
            uint16 sid = _schedulerIds[msg.sender];
            if (sid == 0 || sid != r.schedulerId) revert GPURentalNotRenterOrScheduler(rentalId, msg.sender);
        }
        if (r.status != RentalStatus.Active) revert GPURentalNotActive(rentalId, r.status);
        uint64 end = uint64(r.start) + r.duration;
        if (block.timestamp >= end) revert GPURentalAlreadyEnded(rentalId, end);
        r.status = RentalStatus.Cancelled;
        uint64 nowTs = uint64(block.timestamp);
        _cancelledAt[rentalId] = nowTs;
        emit RentalCancelled(rentalId, nowTs);
        _outbox.sendMessage(
            _etcChainId,
            _workVerification,
            RentalMessages.encodeClose(RentalMessages.Close({rentalId: rentalId, endTime: nowTs}))
        );
    }

    /// @notice Refunds the whole escrow to the renter (a voucher rental's as its vouchers) when no result arrived in time, and frees the provider's
    /// reserved stake; a later RESULT is refused. Anyone may call it (the provider, to free its stake): the
    /// escrow always goes to the renter.
    /// Requirements:
    /// - the rental is Active or Cancelled (awaiting a result);
    /// - at least resultTimeout has passed since the rental's end (its cancellation time when cancelled).
    function reclaimEscrow(uint256 rentalId) external nonReentrant {
        Rental storage r = _rentals[rentalId];
        Rental memory m = r;
        if (m.status != RentalStatus.Active && m.status != RentalStatus.Cancelled) {
            revert GPURentalNotAwaitingResult(rentalId, m.status);
        }
        uint256 availableAt = uint256(_endOf(rentalId, m)) + _resultTimeout;
        if (block.timestamp < availableAt) revert GPURentalReclaimTooEarly(rentalId, availableAt);
        r.status = RentalStatus.Expired;
        _reservedGpus[m.provider] -= m.gpus;
        uint256 escrow = _escrowOf(m);
        emit EscrowReclaimed(rentalId, m.renter, escrow);
        _refund(rentalId, m.renter, escrow);
    }

    /// @notice Rates the provider of a settled rental (once); the rating goes to ReputationSystem on ETC.
    /// Requirements:
    /// - caller is the rental's renter;
    /// - 1 <= `rating` <= 5;
    /// - the rental is Settled and has not been rated.
    function submitFeedback(uint256 rentalId, uint8 rating) external {
        Rental storage r = _rentals[rentalId];
        if (r.renter != msg.sender) revert GPURentalNotRenter(rentalId, msg.sender);
        if (rating == 0 || rating > 5) revert GPURentalInvalidRating(rating);
        if (r.status != RentalStatus.Settled) revert GPURentalNotSettled(rentalId, r.status);
        if (r.rated) revert GPURentalAlreadyRated(rentalId);
        r.rated = true;
        address provider = r.provider;
        emit FeedbackSubmitted(rentalId, provider, rating);
        _outbox.sendMessage(
            _etcChainId,
            _reputationSystem, // set with workVerification, which a Settled rental needed
            RentalMessages.encodeFeedback(
                RentalMessages.Feedback({rentalId: rentalId, provider: provider, renter: msg.sender, rating: rating})
            )
        );
    }

    /// @notice Receives WorkVerification's RESULT and settles the rental.
    /// @dev Pays the provider `min(escrow, price * gpus * verifiedSeconds / 3600)` minus the fee (verified time is
    /// capped at the cancellation when cancelled), adds the fee to the pending fees (collectFees pays the treasury
    /// and burns feeBurnBps of it), and refunds the rest of the escrow to the renter;
    /// when `failed`, pays nothing and slashes minStake(Provider) * gpus * slashBps / 10000 of the provider's
    /// stake, at most its share active * gpus / reservedGpusOf(provider) (reason: the rentalId). Either way the
    /// rental's reserved stake is freed.
    /// Requirements:
    /// - caller is the inbox and (`srcChainId`, `sender`) is (etcChainId, workVerification);
    /// - `data` is a RentalMessages RESULT;
    /// - the rental is Active or Cancelled (a result is paid out at most once).
    function onBridgeMessage(uint256 srcChainId, address sender, bytes calldata data) external nonReentrant {
        if (msg.sender != _inbox) revert GPURentalNotInbox(msg.sender);
        address peer = _workVerification;
        if (srcChainId != _etcChainId || sender != peer || peer == address(0)) {
            revert GPURentalUnknownPeer(srcChainId, sender);
        }
        (uint256 rentalId, uint64 verifiedSeconds, bool failed) = _decodeResult(data);
        _settle(rentalId, verifiedSeconds, failed);
    }

    /// @notice Pays out the protocol fees settlements added up: the treasury's share to the treasury, the burn
    /// share burned. Anyone may call it.
    /// @dev Emits FeesCollected (also when nothing is pending: zeros).
    function collectFees() external nonReentrant returns (uint256 toTreasury, uint256 burned) {
        toTreasury = _feesPending;
        burned = _burnPending;
        _feesPending = 0;
        _burnPending = 0;
        uint256 total = _burned + burned;
        _burned = total;
        address treasury_ = _treasury;
        emit FeesCollected(treasury_, toTreasury, burned, total);
        if (burned != 0) IGPUToken(address(_token)).burn(burned);
        if (toTreasury != 0) _token.safeTransfer(treasury_, toTreasury);
    }

    // ------------------------------------------------------------------ views

    /// @notice A rental's stored data with its escrow and end time (all zero for an unknown id).
    function rental(uint256 rentalId) external view returns (RentalInfo memory info) {
        Rental memory m = _rentals[rentalId];
        info = RentalInfo({
            renter: m.renter,
            provider: m.provider,
            scheduler: _schedulerIdOwner(m.schedulerId),
            status: m.status,
            rated: m.rated,
            gpus: m.gpus,
            start: m.start,
            duration: m.duration,
            end: m.status == RentalStatus.None ? 0 : _endOf(rentalId, m),
            cancelledAt: _cancelledAt[rentalId],
            pricePerGpuHour: m.pricePerGpuHour,
            escrow: _escrowOf(m)
        });
    }

    /// @notice A rental's status (None for an unknown id).
    function rentalStatus(uint256 rentalId) external view returns (RentalStatus) {
        return _rentals[rentalId].status;
    }

    /// @notice The id of the rental created from `renter`'s intent with `nonce`.
    /// @dev Bound to this chain and this contract, so a successor GPURental (or another chain) can never
    /// produce an id that WorkVerification already knows.
    function rentalIdOf(address renter, uint256 nonce) public view returns (uint256) {
        return uint256(keccak256(abi.encode(block.chainid, address(this), renter, nonce)));
    }

    /// @notice The EIP-712 digest the renter signs for `intent` (domain BlendrGPURental/1, this chain).
    function intentDigest(RentalIntent calldata intent) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(_INTENT_TYPEHASH, intent)));
    }

    /// @notice The EIP-712 digest the renter signs to pay `intent` with vouchers of class `voucherId`:
    /// VoucherRentalIntent(RentalIntent intent,uint256 voucherId), same domain (never equal to intentDigest).
    function voucherIntentDigest(RentalIntent calldata intent, uint256 voucherId) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(_VOUCHER_INTENT_TYPEHASH, keccak256(abi.encode(_INTENT_TYPEHASH, intent)), voucherId))
        );
    }

    /// @notice ComputeVoucher, whose vouchers createRentalWithVouchers takes as escrow (zero: not set).
    function computeVoucher() external view returns (address) {
        return address(_computeVoucher);
    }

    /// @notice Share of every protocol fee that is burned, in basis points.
    function feeBurnBps() external view returns (uint16) {
        return _feeBurnBps;
    }

    /// @notice Protocol fees burned so far (`burned`), and the burn share settlements added up that the next
    /// collectFees burns (`pending`, held here until then).
    function feeBurnTotals() external view returns (uint256 burned, uint256 pending) {
        return (_burned, _burnPending);
    }

    /// @notice Protocol fees settled but not yet collected: the treasury's share and the burn share (held here).
    function pendingFees() external view returns (uint256 toTreasury, uint256 toBurn) {
        return (_feesPending, _burnPending);
    }

    /// @notice GPUs of `provider`'s open rentals (created, not settled nor reclaimed); StakingManager holds what
    /// they may still slash, minStake(Provider) * slashBps / 10000 of its stake per such GPU.
    function reservedGpusOf(address provider) external view returns (uint256) {
        return _reservedGpus[provider];
    }

    /// @notice GPUTOKEN, the escrow token.
    function token() external view returns (address) {
        return address(_token);
    }

    /// @notice The StakingManager checked at creation and slashed on failure.
    function staking() external view returns (address) {
        return address(_staking);
    }

    /// @notice The bridge inbox allowed to call onBridgeMessage.
    function inbox() external view returns (address) {
        return _inbox;
    }

    /// @notice The bridge outbox messages to ETC go through.
    function outbox() external view returns (address) {
        return address(_outbox);
    }

    /// @notice Receiver of protocol fees.
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @notice Chain id of Ethereum Classic, where the peers live.
    function etcChainId() external view returns (uint64) {
        return _etcChainId;
    }

    /// @notice WorkVerification on ETC: receives OPEN/CLOSE, sends RESULT.
    function workVerification() external view returns (address) {
        return _workVerification;
    }

    /// @notice ReputationSystem on ETC: receives FEEDBACK.
    function reputationSystem() external view returns (address) {
        return _reputationSystem;
    }

    /// @notice Protocol fee on provider payments, in basis points.
    function feeBps() external view returns (uint16) {
        return _feeBps;
    }

    /// @notice Share of the provider's required stake slashed on failed verification, in basis points.
    function slashBps() external view returns (uint16) {
        return _slashBps;
    }

    /// @notice Seconds after a rental's end before the renter may reclaim an unsettled escrow.
    function resultTimeout() external view returns (uint32) {
        return _resultTimeout;
    }

    /// @notice Shortest rental, in seconds.
    function minDuration() external view returns (uint32) {
        return _minDuration;
    }

    /// @notice Longest rental, in seconds.
    function maxDuration() external view returns (uint32) {
        return _maxDuration;
    }

    /// @notice Most GPUs in one rental.
    function maxGpus() external view returns (uint16) {
        return _maxGpus;
    }

    /// @notice Governance bounds of the price per GPU-hour (token wei) that schedulers quote.
    function quoteBounds() external view returns (uint256 minPricePerGpuHour, uint256 maxPricePerGpuHour) {
        return (_minQuote, _maxQuote);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Sets the protocol fee.
    /// Requirements: caller has GOVERNOR_ROLE; `newFeeBps` <= 2000.
    function setFeeBps(uint16 newFeeBps) external onlyRole(GOVERNOR_ROLE) {
        if (newFeeBps > _MAX_FEE_BPS) revert GPURentalInvalidFeeBps(newFeeBps);
        _feeBps = newFeeBps;
        emit FeeBpsChanged(newFeeBps);
    }

    /// @notice Sets the share of every protocol fee that is burned (the rest goes to the treasury); it applies to
    /// rentals settled from now on and to ComputeVoucher's redemption fee.
    /// Requirements: caller has GOVERNOR_ROLE; `newFeeBurnBps` <= 10000.
    function setFeeBurnBps(uint16 newFeeBurnBps) external onlyRole(GOVERNOR_ROLE) {
        if (newFeeBurnBps > _BPS) revert GPURentalInvalidFeeBurnBps(newFeeBurnBps);
        _feeBurnBps = newFeeBurnBps;
        emit FeeBurnBpsChanged(newFeeBurnBps);
    }

    /// @notice Sets the ComputeVoucher whose vouchers pay rentals (it must name this contract as its rental).
    /// Requirements: caller has GOVERNOR_ROLE; `newComputeVoucher` is not zero.
    function setComputeVoucher(address newComputeVoucher) external onlyRole(GOVERNOR_ROLE) {
        if (newComputeVoucher == address(0)) revert GPURentalZeroAddress();
        _computeVoucher = IComputeVoucher(newComputeVoucher);
        emit ComputeVoucherChanged(newComputeVoucher);
    }

    /// @notice Sets the slash on failed verification.
    /// Requirements: caller has GOVERNOR_ROLE; `newSlashBps` <= 10000.
    function setSlashBps(uint16 newSlashBps) external onlyRole(GOVERNOR_ROLE) {
        if (newSlashBps > _BPS) revert GPURentalInvalidSlashBps(newSlashBps);
        _slashBps = newSlashBps;
        emit SlashBpsChanged(newSlashBps);
    }

    /// @notice Sets how long after a rental's end the renter must wait to reclaim an unsettled escrow.
    /// Requirements: caller has GOVERNOR_ROLE; 1 hour <= `newResultTimeout` <= 90 days.
    function setResultTimeout(uint32 newResultTimeout) external onlyRole(GOVERNOR_ROLE) {
        if (newResultTimeout < _MIN_RESULT_TIMEOUT || newResultTimeout > _MAX_RESULT_TIMEOUT) {
            revert GPURentalInvalidResultTimeout(newResultTimeout);
        }
        _resultTimeout = newResultTimeout;
        emit ResultTimeoutChanged(newResultTimeout);
    }

    /// @notice Sets the allowed rental durations.
    /// Requirements: caller has GOVERNOR_ROLE; 1 minute <= `newMinDuration` <= `newMaxDuration` <= 365 days.
    function setDurationBounds(uint32 newMinDuration, uint32 newMaxDuration) external onlyRole(GOVERNOR_ROLE) {
        if (newMinDuration < _MIN_DURATION_FLOOR || newMinDuration > newMaxDuration || newMaxDuration > _MAX_DURATION_CEILING)
        {
            revert GPURentalInvalidDurationBounds(newMinDuration, newMaxDuration);
        }
        _minDuration = newMinDuration;
        _maxDuration = newMaxDuration;
        emit DurationBoundsChanged(newMinDuration, newMaxDuration);
    }

    /// @notice Sets the bounds of the price per GPU-hour that schedulers quote.
    /// Requirements: caller has GOVERNOR_ROLE; 0 < `newMin` <= `newMax`.
    function setQuoteBounds(uint128 newMin, uint128 newMax) external onlyRole(GOVERNOR_ROLE) {
        if (newMin == 0 || newMin > newMax) revert GPURentalInvalidQuoteBounds(newMin, newMax);
        _minQuote = newMin;
        _maxQuote = newMax;
        emit QuoteBoundsChanged(newMin, newMax);
    }

    /// @notice Sets the most GPUs one rental may take.
    /// Requirements: caller has GOVERNOR_ROLE; `newMaxGpus` > 0.
    function setMaxGpus(uint16 newMaxGpus) external onlyRole(GOVERNOR_ROLE) {
        if (newMaxGpus == 0) revert GPURentalInvalidMaxGpus(newMaxGpus);
        _maxGpus = newMaxGpus;
        emit MaxGpusChanged(newMaxGpus);
    }

    /// @notice Sets the fee receiver.
    /// Requirements: caller has GOVERNOR_ROLE; `newTreasury` is not zero.
    function setTreasury(address newTreasury) external onlyRole(GOVERNOR_ROLE) {
        if (newTreasury == address(0)) revert GPURentalZeroAddress();
        _treasury = newTreasury;
        emit TreasuryChanged(newTreasury);
    }

    /// @notice Sets the ETC chain id and the WorkVerification and ReputationSystem contracts there.
    /// Requirements: caller has GOVERNOR_ROLE; `newEtcChainId` is not zero nor this chain's id; both
    /// addresses are not zero.
    function setEtcPeers(uint64 newEtcChainId, address newWorkVerification, address newReputationSystem)
        external
        onlyRole(GOVERNOR_ROLE)
    {
        if (newEtcChainId == 0 || newEtcChainId == block.chainid) revert GPURentalInvalidEtcChainId(newEtcChainId);
        if (newWorkVerification == address(0) || newReputationSystem == address(0)) revert GPURentalZeroAddress();
        _etcChainId = newEtcChainId;
        _workVerification = newWorkVerification;
        _reputationSystem = newReputationSystem;
        emit EtcPeersChanged(newEtcChainId, newWorkVerification, newReputationSystem);
    }

    /// @notice Sets the bridge inbox allowed to deliver results.
    /// Requirements: caller has GOVERNOR_ROLE; `newInbox` is not zero.
    function setInbox(address newInbox) external onlyRole(GOVERNOR_ROLE) {
        if (newInbox == address(0)) revert GPURentalZeroAddress();
        _inbox = newInbox;
        emit InboxChanged(newInbox);
    }

    /// @notice Sets the bridge outbox used for messages to ETC.
    /// Requirements: caller has GOVERNOR_ROLE; `newOutbox` is not zero.
    function setOutbox(address newOutbox) external onlyRole(GOVERNOR_ROLE) {
        if (newOutbox == address(0)) revert GPURentalZeroAddress();
        _outbox = IBridgeOutbox(newOutbox);
        emit OutboxChanged(newOutbox);
    }

    // ------------------------------------------------------------------ internals

    /// @dev Checks and records a rental signed over `digest` at `price`, reserves the stakes and emits
    /// RentalCreated; the caller then brings in the escrow and sends the OPEN message.
    function _createRental(
        RentalIntent calldata intent,
        bytes32 digest,
        bytes calldata signature,
        uint256 price,
        address queen,
        address provider,
        bytes32[] calldata candidateProof
    ) private returns (uint256 rentalId, uint256 escrow) {
        uint16 schedulerId = _checkScheduler(intent.scheduler);
        _checkProvider(intent, provider, candidateProof);
        rentalId = _checkIntent(intent, digest, signature, price);
        // The queen's verdict decides the payment: a provider never supervises itself.
        if (queen == provider) revert GPURentalQueenIsProvider(queen);
        _reserveStakes(intent.gpus, provider, queen);
        escrow = price * intent.gpus * intent.duration / 1 hours;
        if (escrow == 0) revert GPURentalZeroEscrow();
        if (_workVerification == address(0)) revert GPURentalPeersNotSet();

        // Casts are safe: gpus <= maxGpus (uint16), duration <= maxDuration (uint32), price < 2**80 (checked);
        // the start is a uint32 until the year 2106. One assignment: one write per slot.
        _rentals[rentalId] = Rental({
            renter: intent.renter,
            start: uint32(block.timestamp),
            duration: uint32(intent.duration),
            gpus: uint16(intent.gpus),
            status: RentalStatus.Active,
            rated: false,
            provider: provider,
            pricePerGpuHour: uint80(price),
            schedulerId: schedulerId
        });
        _emitCreated(rentalId, intent, price, escrow, queen, provider);
    }

    /// @dev Sends RentalMessages.Open for a rental created now (its own frame keeps createRental's stack shallow).
    function _sendOpen(uint256 rentalId, RentalIntent calldata intent, address queen, address provider) private {
        _outbox.sendMessage(
            _etcChainId,
            _workVerification,
            RentalMessages.encodeOpen(
                RentalMessages.Open({
                    rentalId: rentalId,
                    provider: provider,
                    queen: queen,
                    gpus: intent.gpus,
                    start: uint64(block.timestamp),
                    duration: intent.duration
                })
            )
        );
    }

    function _emitCreated(
        uint256 rentalId,
        RentalIntent calldata intent,
        uint256 price,
        uint256 escrow,
        address queen,
        address provider
    ) private {
        emit RentalCreated(
            rentalId,
            intent.renter,
            provider,
            queen,
            intent.gpus,
            price,
            escrow,
            uint64(block.timestamp),
            intent.duration
        );
    }

    /// @dev Checks the intent's terms, that its nonce is unused and that the renter signed `digest`; returns the id.
    function _checkIntent(RentalIntent calldata intent, bytes32 digest, bytes calldata signature, uint256 price)
        private
        view
        returns (uint256 rentalId)
    {
        if (block.timestamp > intent.deadline) revert GPURentalIntentExpired(intent.deadline);
        if (price == 0 || price > intent.maxPricePerGpuHour || price > type(uint80).max) {
            revert GPURentalInvalidPrice(price, intent.maxPricePerGpuHour);
        }
        uint16 maxGpus_ = _maxGpus;
        if (intent.gpus == 0 || intent.gpus > maxGpus_) revert GPURentalInvalidGpus(intent.gpus, maxGpus_);
        uint32 minD = _minDuration;
        uint32 maxD = _maxDuration;
        if (intent.duration < minD || intent.duration > maxD) {
            revert GPURentalInvalidDuration(intent.duration, minD, maxD);
        }
        rentalId = rentalIdOf(intent.renter, intent.nonce);
        if (_rentals[rentalId].renter != address(0)) revert GPURentalNonceUsed(intent.renter, intent.nonce);
        if (signature.length != 65) revert GPURentalInvalidSignature();
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            // read from calldata (no copy to memory)
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
        if (err != ECDSA.RecoverError.NoError || signer != intent.renter) revert GPURentalInvalidSignature();
    }

    /// @dev The caller must hold SCHEDULER_ROLE (a nonzero scheduler id) and be the intent's scheduler; returns
    /// its id.
    function _checkScheduler(address scheduler) private view returns (uint16 schedulerId) {
        schedulerId = _schedulerIds[msg.sender];
        if (schedulerId == 0) revert AccessControlUnauthorizedAccount(msg.sender, SCHEDULER_ROLE);
        if (msg.sender != scheduler) revert GPURentalNotScheduler(scheduler, msg.sender);
    }

    /// @dev `provider` is the intent's, or, for an open intent, one of its candidates.
    function _checkProvider(RentalIntent calldata intent, address provider, bytes32[] calldata candidateProof)
        private
        pure
    {
        address intended = intent.provider;
        if (provider == address(0) || (intended != address(0) && intended != provider)) {
            revert GPURentalProviderMismatch(intended, provider);
        }
        if (intended == address(0)) {
            bytes32 leaf;
            assembly ("memory-safe") {
                // keccak256(abi.encodePacked(provider)) in scratch space
                mstore(0, shl(96, provider))
                leaf := keccak256(0, 20)
            }
            if (!MerkleProof.verifyCalldata(candidateProof, intent.candidatesRoot, leaf)) {
                revert GPURentalProviderNotCandidate(provider, intent.candidatesRoot);
            }
        }
    }

    /// @dev The provider's stake must cover minStake(Provider) per GPU and, beyond what its open rentals may still
    /// slash, this rental's possible slash; the queen's stake minStake(Queen). Then this rental's GPUs join the
    /// provider's reservation.
    function _reserveStakes(uint256 gpus, address provider, address queen) private {
        (uint256 stake, uint256 perGpu, uint256 queenStake, uint256 queenMin) = _staking.rentalStakes(provider, queen);
        uint256 reserved = _reservedGpus[provider];
        uint256 bps = _slashBps;
        uint256 required;
        uint256 slashable;
        uint256 free;
        // Cannot overflow: perGpu < 2**96 (a uint96 in StakingManager), gpus <= maxGpus < 2**16 (checked before),
        // reserved is a sum of such GPU counts, bps <= 10000.
        unchecked {
            uint256 held = perGpu * reserved * bps / _BPS; // what the open rentals may still slash
            free = stake > held ? stake - held : 0;
            required = perGpu * gpus;
            slashable = required * bps / _BPS;
            reserved += gpus;
        }
        if (stake < required) revert GPURentalInsufficientStake(provider, stake, required);
        if (free < slashable) revert GPURentalStakeReserved(provider, free, slashable);
        if (queenStake < queenMin) revert GPURentalInsufficientQueenStake(queen, queenStake, queenMin);
        _reservedGpus[provider] = reserved;
    }

    function _schedulerIdOwner(uint16 id) private view returns (address) {
        if (id == 0) return address(0);
        address s = _schedulers[id];
        return _schedulerIds[s] == id ? s : address(0);
    }

    /// @dev A new SCHEDULER_ROLE holder gets a new id (a re-grant too: rentals made before a revocation stay out
    /// of its reach).
    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        granted = super._grantRole(role, account);
        if (granted && role == SCHEDULER_ROLE) {
            uint16 id = _lastSchedulerId;
            if (id == type(uint16).max) revert GPURentalTooManySchedulers();
            unchecked {
                ++id;
            }
            _lastSchedulerId = id;
            _schedulerIds[account] = id;
            _schedulers[id] = account;
        }
    }

    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked && role == SCHEDULER_ROLE) delete _schedulerIds[account];
    }

    function _settle(uint256 rentalId, uint64 verifiedSeconds, bool failed) private {
        Rental storage r = _rentals[rentalId];
        Rental memory m = r;
        if (m.status != RentalStatus.Active && m.status != RentalStatus.Cancelled) {
            revert GPURentalNotAwaitingResult(rentalId, m.status);
        }
        r.status = RentalStatus.Settled;

        uint256 rate = uint256(m.pricePerGpuHour) * m.gpus;
        uint256 escrow = rate * m.duration / 1 hours;
        uint256 payment;
        uint256 fee;
        if (!failed) {
            // Pay only for time within the rental (up to the cancellation); this also caps payment at escrow.
            uint256 paidSeconds = verifiedSeconds;
            uint256 cap = m.status == RentalStatus.Cancelled ? _cancelledAt[rentalId] - m.start : m.duration;
            if (paidSeconds > cap) paidSeconds = cap;
            payment = rate * paidSeconds / 1 hours;
            fee = payment * _feeBps / _BPS;
        }
        uint256 refund = escrow - payment;
        emit RentalSettled(rentalId, verifiedSeconds, failed, payment - fee, fee, refund);

        if (payment != fee) _token.safeTransfer(m.provider, payment - fee);
        if (fee != 0) {
            // Added up here, paid out by collectFees. Checked: uint112 sums hold more than GPUTOKEN's cap (and
            // collectFees, open to all, empties them).
            uint256 burn = fee * _feeBurnBps / _BPS;
            _feesPending += SafeCast.toUint112(fee - burn);
            _burnPending += SafeCast.toUint112(burn);
        }
        if (refund != 0) _refund(rentalId, m.renter, refund);

        uint256 reserved = _reservedGpus[m.provider];
        _reservedGpus[m.provider] = reserved - m.gpus;
        if (failed) _slashProvider(rentalId, m.provider, m.gpus, reserved);
    }

    /// @dev Pays `renter` the unused escrow `amount` of `rentalId`: GPUTOKEN for a plain rental; for a voucher
    /// rental it goes back to the ComputeVoucher that paid, which mints the whole GPU-hours back as vouchers.
    function _refund(uint256 rentalId, address renter, uint256 amount) private {
        VoucherPayment memory vp = _voucherPayments[rentalId];
        if (address(vp.vouchers) == address(0)) {
            _token.safeTransfer(renter, amount);
            return;
        }
        _token.safeTransfer(address(vp.vouchers), amount);
        vp.vouchers.refundFromRental(renter, vp.id, amount, rentalId);
    }

    /// @dev Slashes minStake(Provider) * gpus * slashBps / 10000, at most the rental's share of the active stake
    /// (`reserved`: the provider's reserved GPUs, this rental's included); the rentalId is the slash reason.
    function _slashProvider(uint256 rentalId, address provider, uint256 gpus, uint256 reserved) private {
        uint256 bps = _slashBps;
        if (bps == 0) return;
        (uint256 active, uint256 perGpu) = _staking.stakeAndMinimum(provider, Tier.Provider);
        uint256 amount = perGpu * gpus * bps / _BPS;
        uint256 share = active * gpus / reserved;
        if (amount > share) amount = share;
        if (amount != 0) {
            uint256 slashed = _staking.slash(provider, Tier.Provider, amount, bytes32(rentalId));
            emit ProviderSlashed(rentalId, provider, amount, slashed);
        }
    }

    /// @dev A RentalMessages RESULT, read in place from calldata: abi.encode(uint8(RESULT), abi.encode(Result)),
    /// exactly as WorkVerification encodes it (body at offset 0x40, seven words); anything else is refused.
    function _decodeResult(bytes calldata data)
        private
        pure
        returns (uint256 rentalId, uint64 verifiedSeconds, bool failed)
    {
        if (data.length < 0x20) revert GPURentalMalformedMessage();
        uint256 kind = uint256(bytes32(data[0:0x20]));
        if (kind != RentalMessages.RESULT) {
            if (kind > type(uint8).max) revert GPURentalMalformedMessage();
            revert GPURentalUnsupportedMessage(uint8(kind));
        }
        if (
            data.length != 0x140 || uint256(bytes32(data[0x20:0x40])) != 0x40
                || uint256(bytes32(data[0x40:0x60])) != 0xe0
        ) revert GPURentalMalformedMessage();
        rentalId = uint256(bytes32(data[0x60:0x80]));
        uint256 seconds_ = uint256(bytes32(data[0x80:0xa0]));
        uint256 failed_ = uint256(bytes32(data[0xa0:0xc0]));
        if (seconds_ > type(uint64).max || failed_ > 1) revert GPURentalMalformedMessage();
        verifiedSeconds = uint64(seconds_);
        failed = failed_ == 1;
    }

    function _escrowOf(Rental memory m) private pure returns (uint256) {
        return uint256(m.pricePerGpuHour) * m.gpus * m.duration / 1 hours;
    }

    function _endOf(uint256 rentalId, Rental memory m) private view returns (uint64) {
        uint64 cancelledAt = _cancelledAt[rentalId];
        return cancelledAt != 0 ? cancelledAt : uint64(m.start) + m.duration;
    }
}
