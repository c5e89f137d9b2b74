// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IBridgeOutbox, BridgeMessageHashing} from "../interfaces/IBridge.sol";

/// @title BridgeOutbox
/// @notice Numbers messages for the other chain and emits them; attesters sign what they read from the
/// MessageSent events once the source chain has the configured confirmation depth. Nothing is stored per
/// message (this runs inside every rental creation), so a send costs one storage write.
contract BridgeOutbox is IBridgeOutbox, AccessControl {
    /// @notice Contracts allowed to send (GPURental on ETH, WorkVerification on ETC, the ETH governance timelock).
    bytes32 public constant SENDER_ROLE = keccak256("SENDER_ROLE");

    uint256 private _nextNonce;

    /// @param admin Receives DEFAULT_ADMIN_ROLE, which grants and revokes SENDER_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _nextNonce = 1; // nonces start at 1; a non-zero slot also keeps every send's write cheap
    }

    /// @notice Numbers a message for `dstChainId` and emits it.
    /// @dev The message is (srcChainId = block.chainid, srcOutbox = this, nonce, dstChainId, sender =
    /// msg.sender, target, data); its id is BridgeMessageHashing.hash of those fields.
    /// Requirements:
    /// - the caller holds SENDER_ROLE;
    /// - `dstChainId` is neither 0 nor this chain;
    /// - `target` is not the zero address.
    /// @return nonce The message's sequence number on this outbox (from 1).
    function sendMessage(uint256 dstChainId, address target, bytes calldata data) external returns (uint256 nonce) {
        if (!hasRole(SENDER_ROLE, msg.sender)) revert BridgeOutboxUnauthorizedSender(msg.sender);
        if (dstChainId == 0 || dstChainId == block.chainid) revert BridgeOutboxInvalidDestination(dstChainId);
        if (target == address(0)) revert BridgeOutboxInvalidTarget(target);
        nonce = _nextNonce;
        unchecked {
            _nextNonce = nonce + 1; // cannot overflow: one per transaction
        }
        bytes32 messageHash =
            BridgeMessageHashing.hash(block.chainid, address(this), nonce, dstChainId, msg.sender, target, data);
        emit MessageSent(nonce, dstChainId, msg.sender, target, data, messageHash);
    }

    /// @notice The nonce the next message will get.
    /// Requirements: none.
    function nextNonce() external view returns (uint256) {
        return _nextNonce;
    }
}
