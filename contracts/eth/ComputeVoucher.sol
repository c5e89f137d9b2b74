// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ERC1155Supply} from "@openzeppelin/contracts/token/ERC1155/extensions/ERC1155Supply.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IComputeVoucher} from "../interfaces/IComputeVoucher.sol";
import {IGPURental} from "../interfaces/IGPURental.sol";
import {IGPUToken} from "../interfaces/IGPUToken.sol";

/// @title ComputeVoucher
/// @notice GPU-hours as tokens (ERC-1155). A token id is a GPU class: a GPU model at a price per GPU-hour that
/// governance lists (within GPURental's quote bounds); one token is one GPU-hour of that class. Buying locks
/// `price` GPUTOKEN per voucher here; the vouchers are then transferable and tradeable like any ERC-1155.
/// A voucher leaves circulation in one of two ways, each releasing exactly its locked `price`:
/// - spent as a rental's escrow (GPURental.createRentalWithVouchers, signed by the renter for this class): the
///   vouchers are burned and their GPUTOKEN moves to GPURental, which holds it as an ordinary escrow at the
///   class price; what the rental does not use comes back through refundFromRental: as vouchers of the same
///   class for every whole GPU-hour of it, and only the rest (less than one voucher's price) as GPUTOKEN, less
///   the redemption fee (see refundFromRental for why cancelling a voucher rental is never a cheaper redeem);
/// - redeemed: burned for its GPUTOKEN less the redemption fee (redeemFeeBps), a protocol fee of which
///   GPURental's feeBurnBps share is burned and the rest goes to GPURental's treasury.
///
/// Backing: every voucher outstanding is backed by exactly its class price, so totalBacking() ==
/// sum over ids of totalSupply(id) * priceOf(id), and this contract's GPUTOKEN balance is at least that (equal
/// unless someone sent GPUTOKEN here outside buy). A class's price never changes: to reprice a model governance
/// lists a new class (a new id) for it, which becomes the model's current class; older classes of the model stop
/// being sold but stay spendable and redeemable at their own price.
contract ComputeVoucher is IComputeVoucher, ERC1155Supply, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Holders may list and close classes, set the redemption fee and the GPURental (the timelock).
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");

    uint256 private constant _BPS = 10_000;
    uint16 private constant _MAX_REDEEM_FEE_BPS = 1_000;

    struct Class {
        uint80 price; // < 2**80, what GPURental stores per GPU-hour
        bool onSale;
    }

    IERC20 private immutable _token;
    IGPURental private _rental;
    uint16 private _redeemFeeBps;
    uint256 private _lastId;
    uint256 private _totalBacking;
    uint256 private _totalBurned;
    mapping(uint256 id => Class) private _classes;
    mapping(uint256 id => string) private _models;
    mapping(bytes32 modelHash => uint256 id) private _current;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE.
    /// @param token_ GPUTOKEN (burnable).
    /// @param rental_ GPURental: the only spender of vouchers as escrow; its quote bounds bound class prices, its
    /// treasury and feeBurnBps split the redemption fee.
    /// Initial redemption fee: 1 %.
    constructor(address admin, IERC20 token_, IGPURental rental_) ERC1155("") {
        if (admin == address(0) || address(token_) == address(0) || address(rental_) == address(0)) {
            revert ComputeVoucherZeroAddress();
        }
        _token = token_;
        _rental = rental_;
        _redeemFeeBps = 100;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
    }

    // ------------------------------------------------------------------ holders

    /// @notice Buys `amount` GPU-hours of class `id` for `to`, locking priceOf(id) * amount GPUTOKEN of the caller.
    /// @dev Emits VouchersBought and ERC-1155 TransferSingle (a contract `to` must accept ERC-1155).
    /// Requirements:
    /// - class `id` is on sale and `amount` > 0;
    /// - the caller's GPUTOKEN allowance to this contract and balance cover the price.
    function buy(uint256 id, uint256 amount, address to) external nonReentrant returns (uint256 paid) {
        Class memory c = _classes[id];
        if (!c.onSale) {
            if (c.price == 0) revert ComputeVoucherUnknownClass(id);
            revert ComputeVoucherNotOnSale(id);
        }
        if (amount == 0) revert ComputeVoucherZeroAmount();
        paid = uint256(c.price) * amount;
        _totalBacking += paid;
        emit VouchersBought(msg.sender, to, id, amount, paid);
        _token.safeTransferFrom(msg.sender, address(this), paid);
        _mint(to, id, amount, "");
    }

    /// @notice Redeems `amount` of `from`'s vouchers of class `id` for their GPUTOKEN, less the redemption fee,
    /// paid to `to`. Of the fee, GPURental's feeBurnBps share is burned, the rest goes to GPURental's treasury.
    /// @dev Emits VouchersRedeemed and ERC-1155 TransferSingle to the zero address.
    /// Requirements:
    /// - the caller is `from` or approved for all of `from`'s vouchers;
    /// - `amount` > 0 and `from` holds at least `amount` of class `id`; `to` is not zero.
    function redeem(address from, uint256 id, uint256 amount, address to)
        external
        nonReentrant
        returns (uint256 paid)
    {
        if (from != msg.sender && !isApprovedForAll(from, msg.sender)) {
            revert ComputeVoucherNotOwnerNorApproved(from, msg.sender);
        }
        if (amount == 0) revert ComputeVoucherZeroAmount();
        if (to == address(0)) revert ComputeVoucherZeroAddress();
        uint256 price = _classes[id].price;
        if (price == 0) revert ComputeVoucherUnknownClass(id);
        _burn(from, id, amount); // reverts ERC1155InsufficientBalance
        uint256 value = price * amount;
        _totalBacking -= value;
        uint256 fee = value * _redeemFeeBps / _BPS;
        uint256 burned = fee * _rental.feeBurnBps() / _BPS;
        paid = value - fee;
        if (burned != 0) _totalBurned += burned;
        emit VouchersRedeemed(from, to, id, amount, paid, fee, burned);
        if (burned != 0) IGPUToken(address(_token)).burn(burned);
        if (fee != burned) _token.safeTransfer(_rental.treasury(), fee - burned);
        if (paid != 0) _token.safeTransfer(to, paid);
    }

    // ------------------------------------------------------------------ GPURental

    /// @notice Burns `amount` of `renter`'s vouchers of class `id` and sends their GPUTOKEN to GPURental as the
    /// escrow of rental `rentalId`.
    /// @dev GPURental calls it only after checking the renter's signature over the intent and this class, so no
    /// ERC-1155 approval is needed. Emits VouchersSpent and ERC-1155 TransferSingle to the zero address.
    /// Requirements: the caller is the GPURental; `renter` holds `amount` vouchers of class `id`.
    function spendForRental(address renter, uint256 id, uint256 amount, uint256 rentalId) external nonReentrant {
        address rental_ = address(_rental);
        if (msg.sender != rental_) revert ComputeVoucherNotRental(msg.sender);
        uint256 price = _classes[id].price;
        if (price == 0) revert ComputeVoucherUnknownClass(id);
        _burn(renter, id, amount);
        uint256 value = price * amount;
        _totalBacking -= value;
        emit VouchersSpent(renter, id, rentalId, amount);
        _token.safeTransfer(rental_, value);
    }

    /// @notice Takes back `value` GPUTOKEN, the unused escrow of voucher rental `rentalId` (class `id`), which
    /// GPURental has sent here just before: `amount = value / priceOf(id)` vouchers of class `id` are minted to
    /// `renter` (their backing stays here), and only the rest (below one voucher's price) goes to `renter` as
    /// GPUTOKEN less the redemption fee, split as in redeem.
    /// @dev Why cancel-to-redeem is never cheaper than redeem: a renter that spends N vouchers and gets its
    /// unused escrow back holds `amount` vouchers again and receives `rest - fee(rest)` GPUTOKEN, where `rest <=
    /// (N - amount) * price` (the provider's payment is the difference) and fee() is redeem's fee, rounded down
    /// the same way; since `x - fee(x)` never decreases with x, that is at most what redeeming the N - amount
    /// vouchers would pay. Whatever the provider was paid is a rental's payment for verified time (it pays
    /// GPURental's protocol fee), not a refund. Minting skips the ERC-1155 receiver hook (like an ERC-20 transfer)
    /// so a renter contract cannot make settlement revert. Emits VouchersRefunded and ERC-1155 TransferSingle
    /// from the zero address (when `amount` > 0).
    /// Requirements: the caller is the GPURental (which moved `value` here first); class `id` exists.
    function refundFromRental(address renter, uint256 id, uint256 value, uint256 rentalId)
        external
        nonReentrant
        returns (uint256 amount, uint256 paid)
    {
        if (msg.sender != address(_rental)) revert ComputeVoucherNotRental(msg.sender);
        uint256 price = _classes[id].price;
        if (price == 0) revert ComputeVoucherUnknownClass(id);
        amount = value / price;
        uint256 kept = amount * price;
        uint256 rest = value - kept;
        uint256 fee = rest * _redeemFeeBps / _BPS;
        uint256 burned = fee == 0 ? 0 : fee * _rental.feeBurnBps() / _BPS;
        paid = rest - fee;
        _totalBacking += kept;
        if (burned != 0) _totalBurned += burned;
        emit VouchersRefunded(renter, id, rentalId, amount, paid, fee, burned);
        if (amount != 0) {
            uint256[] memory ids = new uint256[](1);
            uint256[] memory values = new uint256[](1);
            ids[0] = id;
            values[0] = amount;
            _update(address(0), renter, ids, values);
        }
        if (burned != 0) IGPUToken(address(_token)).burn(burned);
        if (fee != burned) _token.safeTransfer(_rental.treasury(), fee - burned);
        if (paid != 0) _token.safeTransfer(renter, paid);
    }

    // ------------------------------------------------------------------ views

    /// @notice Class `id` (model, price per GPU-hour, on sale); reverts for an unknown id.
    function classOf(uint256 id) external view returns (VoucherClass memory) {
        Class memory c = _classes[id];
        if (c.price == 0) revert ComputeVoucherUnknownClass(id);
        return VoucherClass({model: _models[id], pricePerHour: c.price, onSale: c.onSale});
    }

    /// @notice GPUTOKEN wei backing each voucher of class `id` (0 for an unknown id).
    function priceOf(uint256 id) external view returns (uint256) {
        return _classes[id].price;
    }

    /// @notice The class of `model` on sale now (0 if none).
    function currentClassOf(string calldata model) external view returns (uint256 id) {
        id = _current[keccak256(bytes(model))];
        if (id != 0 && !_classes[id].onSale) id = 0;
    }

    /// @notice Number of classes ever listed; ids run from 1 to classCount().
    function classCount() external view returns (uint256) {
        return _lastId;
    }

    /// @notice GPUTOKEN locked for the vouchers of class `id` outstanding: totalSupply(id) * priceOf(id).
    function backingOf(uint256 id) external view returns (uint256) {
        return totalSupply(id) * _classes[id].price;
    }

    /// @notice GPUTOKEN locked for all vouchers outstanding (this contract holds at least that).
    function totalBacking() external view returns (uint256) {
        return _totalBacking;
    }

    /// @notice Redemption fee, in basis points of the redeemed vouchers' backing.
    function redeemFeeBps() external view returns (uint16) {
        return _redeemFeeBps;
    }

    /// @notice GPUTOKEN burned so far from redemption fees.
    function totalBurned() external view returns (uint256) {
        return _totalBurned;
    }

    /// @notice GPUTOKEN, the backing token.
    function token() external view returns (address) {
        return address(_token);
    }

    /// @notice The GPURental that spends vouchers as escrow.
    function rental() external view returns (address) {
        return address(_rental);
    }

    /// @inheritdoc ERC1155
    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Lists a new class: `model` at `pricePerHour` GPUTOKEN wei per GPU-hour; it becomes the model's
    /// current class and goes on sale (the model's previous class, if any, is closed for sale).
    /// Requirements:
    /// - caller has GOVERNOR_ROLE;
    /// - `model` is not empty;
    /// - GPURental's quote bounds hold `pricePerHour`, and it is below 2**80.
    function listClass(string calldata model, uint256 pricePerHour)
        external
        onlyRole(GOVERNOR_ROLE)
        returns (uint256 id)
    {
        if (bytes(model).length == 0) revert ComputeVoucherEmptyModel();
        (uint256 lo, uint256 hi) = _rental.quoteBounds();
        if (pricePerHour < lo || pricePerHour > hi || pricePerHour >= 2 ** 80) {
            revert ComputeVoucherInvalidPrice(pricePerHour, lo, hi);
        }
        bytes32 key = keccak256(bytes(model));
        uint256 previous = _current[key];
        if (previous != 0 && _classes[previous].onSale) {
            _classes[previous].onSale = false;
            emit ClassClosed(previous);
        }
        id = ++_lastId;
        _classes[id] = Class({price: uint80(pricePerHour), onSale: true});
        _models[id] = model;
        _current[key] = id;
        emit ClassListed(id, model, pricePerHour);
    }

    /// @notice Stops the sale of class `id`; its vouchers stay spendable and redeemable.
    /// Requirements: caller has GOVERNOR_ROLE; class `id` is on sale.
    function closeClass(uint256 id) external onlyRole(GOVERNOR_ROLE) {
        Class storage c = _classes[id];
        if (c.price == 0) revert ComputeVoucherUnknownClass(id);
        if (!c.onSale) revert ComputeVoucherNotOnSale(id);
        c.onSale = false;
        emit ClassClosed(id);
    }

    /// @notice Sets the redemption fee.
    /// Requirements: caller has GOVERNOR_ROLE; `newRedeemFeeBps` <= 1000 (10 %).
    function setRedeemFeeBps(uint16 newRedeemFeeBps) external onlyRole(GOVERNOR_ROLE) {
        if (newRedeemFeeBps > _MAX_REDEEM_FEE_BPS) revert ComputeVoucherInvalidRedeemFee(newRedeemFeeBps);
        _redeemFeeBps = newRedeemFeeBps;
        emit RedeemFeeChanged(newRedeemFeeBps);
    }

    /// @notice Sets the GPURental that spends vouchers (a successor GPURental must also point back here). The old
    /// GPURental's open voucher rentals can then no longer refund here (their settlement reverts until it is set
    /// back): move only once they have settled.
    /// Requirements: caller has GOVERNOR_ROLE; `newRental` is not zero.
    function setRental(address newRental) external onlyRole(GOVERNOR_ROLE) {
        if (newRental == address(0)) revert ComputeVoucherZeroAddress();
        _rental = IGPURental(newRental);
        emit RentalChanged(newRental);
    }
}
