// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Payloads GPURental (ETH), WorkVerification and ReputationSystem (ETC) exchange over the bridge.
/// Every payload is abi.encode(uint8 kind, bytes body); the body layout is fixed per kind below.
library RentalMessages {
    /// GPURental -> WorkVerification: a rental was created; open its verification task.
    uint8 internal constant OPEN = 1;
    /// GPURental -> WorkVerification: the renter cancelled; the task ends at `endTime`.
    uint8 internal constant CLOSE = 2;
    /// WorkVerification -> GPURental: the task was finalized; settle the rental.
    uint8 internal constant RESULT = 3;
    /// GPURental -> ReputationSystem: the renter rated a settled rental.
    uint8 internal constant FEEDBACK = 4;

    struct Open {
        uint256 rentalId;
        address provider;
        address queen; // the queen that supervises the provider and submits its results
        uint32 gpus;
        uint64 start; // ETH block timestamp at creation
        uint64 duration; // seconds
    }

    struct Close {
        uint256 rentalId;
        uint64 endTime; // ETH block timestamp of the cancellation
    }

    struct Result {
        uint256 rentalId;
        uint64 verifiedSeconds; // uptime the queen's challenges verified, <= the task's effective duration
        bool failed; // verification failed (fraud): no payment, stake slashed
        uint32 issued;
        uint32 passed;
        uint32 failedCount;
        uint32 missed;
    }

    struct Feedback {
        uint256 rentalId;
        address provider;
        address renter;
        uint8 rating; // 1..5
    }

    function encodeOpen(Open memory m) internal pure returns (bytes memory) {
        return abi.encode(OPEN, abi.encode(m));
    }

    function encodeClose(Close memory m) internal pure returns (bytes memory) {
        return abi.encode(CLOSE, abi.encode(m));
    }

    function encodeResult(Result memory m) internal pure returns (bytes memory) {
        return abi.encode(RESULT, abi.encode(m));
    }

    function encodeFeedback(Feedback memory m) internal pure returns (bytes memory) {
        return abi.encode(FEEDBACK, abi.encode(m));
    }

    function kindOf(bytes calldata data) internal pure returns (uint8 kind, bytes memory body) {
        (kind, body) = abi.decode(data, (uint8, bytes));
    }
}
