// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IBridgeOutbox, BridgeMessageHashing} from "../interfaces/IBridge.sol";

/// @title BridgeOutbox
/// @notice Numbers messages for the other chain and emits them; attesters sign what they read from the
/// MessageSent events once the source chain has the configured confirmation depth. Nothing is stored per
/// message (this runs inside every rental creation), so a send costs one storage write; the primary sender
/// (a SENDER_ROLE holder: GPURental on ETH, WorkVerification on ETC) shares that slot with the nonce, so its
/// sends read no role slot either.
contract BridgeOutbox is IBridgeOutbox, AccessControl {
    /// @notice Contracts allowed to send (GPURental on ETH, WorkVerification on ETC, the ETH governance timelock).
    bytes32 public constant SENDER_ROLE = keccak256("SENDER_ROLE");

    uint96 private _nextNonce;
    address private _primarySender;

    /// @param admin Receives DEFAULT_ADMIN_ROLE, which grants and revokes SENDER_ROLE.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _nextNonce = 1; // nonces start at 1; a non-zero slot also keeps every send's write cheap
    }

    /// @notice Numbers a message for `dstChainId` and emits it.
    /// @dev The message is (srcChainId = block.chainid, srcOutbox = this, nonce, dstChainId, sender =
    /// msg.sender, target, data); its id is BridgeMessageHashing.hash of those fields.
    /// Requirements:
    /// - the caller holds SENDER_ROLE (the primary sender always does);
    /// - `dstChainId` is neither 0 nor this chain;
    /// - `target` is not the zero address.
    /// @return nonce The message's sequence number on this outbox (from 1).
    function sendMessage(uint256 dstChainId, address target, bytes calldata data) external returns (uint256 nonce) {
        uint96 next = _nextNonce;
        if (msg.sender != _primarySender && !hasRole(SENDER_ROLE, msg.sender)) {
            revert BridgeOutboxUnauthorizedSender(msg.sender);
        }
        if (dstChainId == 0 || dstChainId == block.chainid) revert BridgeOutboxInvalidDestination(dstChainId);
        if (target == address(0)) revert BridgeOutboxInvalidTarget(target);
        nonce = next;
        unchecked {
            _nextNonce = next + 1; // cannot overflow: one per transaction, 2**96 of them
        }
        bytes32 messageHash =
            BridgeMessageHashing.hash(block.chainid, address(this), nonce, dstChainId, msg.sender, target, data);
        emit MessageSent(nonce, dstChainId, msg.sender, target, data, messageHash);
    }

    /// @notice Makes `sender` the primary sender, whose sends skip the role lookup (zero: none). Revoking its
    /// SENDER_ROLE clears it.
    /// Requirements:
    /// - the caller has DEFAULT_ADMIN_ROLE;
    /// - `sender` is zero or holds SENDER_ROLE.
    function setPrimarySender(address sender) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (sender != address(0) && !hasRole(SENDER_ROLE, sender)) revert BridgeOutboxNotASender(sender);
        _primarySender = sender;
        emit PrimarySenderChanged(sender);
    }

    /// @notice The SENDER_ROLE holder whose sends read only the nonce's slot (zero: none).
    function primarySender() external view returns (address) {
        return _primarySender;
    }

    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked && role == SENDER_ROLE && account == _primarySender) {
            _primarySender = address(0);
            emit PrimarySenderChanged(address(0));
        }
    }

    /// @notice The nonce the next message will get.
    /// Requirements: none.
    function nextNonce() external view returns (uint256) {
        return _nextNonce;
    }
}
