// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice GPU-hours as tokens: an ERC-1155 whose token id is a GPU class at a price, one token one GPU-hour of
/// that class, each fully backed by the GPUTOKEN its buyer locked. Spent as the escrow of a rental
/// (GPURental.createRentalWithVouchers) or redeemed for the locked GPUTOKEN less a fee.
interface IComputeVoucher {
    /// @notice A class: a GPU model at a fixed price per GPU-hour (the GPUTOKEN backing each of its vouchers).
    struct VoucherClass {
        string model; // e.g. "h100-sxm", the name kings and providers use for the GPU model
        uint256 pricePerHour; // GPUTOKEN wei locked per voucher, and paid per GPU-hour of a rental
        bool onSale; // new vouchers can be bought (the model's current class, until governance closes it)
    }

    // --- errors ---
    error ComputeVoucherZeroAddress();
    error ComputeVoucherUnknownClass(uint256 id);
    error ComputeVoucherNotOnSale(uint256 id);
    error ComputeVoucherZeroAmount();
    /// The price is outside GPURental's quote bounds (or not below 2**80, what a rental stores).
    error ComputeVoucherInvalidPrice(uint256 pricePerHour, uint256 minPrice, uint256 maxPrice);
    error ComputeVoucherEmptyModel();
    error ComputeVoucherInvalidRedeemFee(uint256 redeemFeeBps);
    /// Only the GPURental may spend vouchers as a rental's escrow.
    error ComputeVoucherNotRental(address caller);
    error ComputeVoucherNotOwnerNorApproved(address from, address caller);

    // --- events ---
    event ClassListed(uint256 indexed id, string model, uint256 pricePerHour);
    event ClassClosed(uint256 indexed id);
    event VouchersBought(address indexed buyer, address indexed to, uint256 indexed id, uint256 amount, uint256 paid);
    event VouchersRedeemed(
        address indexed from, address indexed to, uint256 indexed id, uint256 amount, uint256 paid, uint256 fee,
        uint256 burned
    );
    event VouchersSpent(address indexed renter, uint256 indexed id, uint256 indexed rentalId, uint256 amount);
    event VouchersRefunded(
        address indexed renter, uint256 indexed id, uint256 indexed rentalId, uint256 amount, uint256 paid,
        uint256 fee, uint256 burned
    );
    event RedeemFeeChanged(uint16 redeemFeeBps);
    event RentalChanged(address rental);

    // --- holders ---
    function buy(uint256 id, uint256 amount, address to) external returns (uint256 paid);
    function redeem(address from, uint256 id, uint256 amount, address to) external returns (uint256 paid);

    // --- GPURental ---
    function spendForRental(address renter, uint256 id, uint256 amount, uint256 rentalId) external;
    function refundFromRental(address renter, uint256 id, uint256 value, uint256 rentalId)
        external
        returns (uint256 amount, uint256 paid);

    // --- views ---
    function classOf(uint256 id) external view returns (VoucherClass memory);
    function priceOf(uint256 id) external view returns (uint256);
    function currentClassOf(string calldata model) external view returns (uint256 id);
    function classCount() external view returns (uint256);
    function backingOf(uint256 id) external view returns (uint256);
    function totalBacking() external view returns (uint256);
    function redeemFeeBps() external view returns (uint16);
    function totalBurned() external view returns (uint256);
    function token() external view returns (address);
    function rental() external view returns (address);

    // --- governance (GOVERNOR_ROLE) ---
    function listClass(string calldata model, uint256 pricePerHour) external returns (uint256 id);
    function closeClass(uint256 id) external;
    function setRedeemFeeBps(uint16 newRedeemFeeBps) external;
    function setRental(address newRental) external;
}
