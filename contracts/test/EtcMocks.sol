// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IBridgeOutbox} from "../interfaces/IBridge.sol";

/// @notice Test-only outbox: numbers messages from 1 like the real outbox and records them for inspection.
/// Only senders the deployer authorized may send, as on the real outbox.
contract MockBridgeOutbox is IBridgeOutbox {
    struct Sent {
        uint256 dstChainId;
        address sender;
        address target;
        bytes data;
    }

    address private immutable _owner;
    mapping(address sender => bool) private _authorized;
    Sent[] private _sent;

    constructor() {
        _owner = msg.sender;
    }

    /// @notice Lets `sender` send (or not). Only the deployer.
    function setAuthorized(address sender, bool allowed) external {
        require(msg.sender == _owner, "MockBridgeOutbox: not owner");
        _authorized[sender] = allowed;
    }

    /// @notice Records and emits a message; returns its nonce (1-based).
    function sendMessage(uint256 dstChainId, address target, bytes calldata data) external returns (uint256 nonce) {
        if (!_authorized[msg.sender]) revert BridgeOutboxUnauthorizedSender(msg.sender);
        if (dstChainId == 0 || dstChainId == block.chainid) revert BridgeOutboxInvalidDestination(dstChainId);
        _sent.push(Sent({dstChainId: dstChainId, sender: msg.sender, target: target, data: data}));
        nonce = _sent.length;
        bytes32 messageHash = keccak256(abi.encode(nonce, dstChainId, msg.sender, target, data));
        emit MessageSent(nonce, dstChainId, msg.sender, target, data, messageHash);
    }

    /// @notice The nonce the next message will get.
    function nextNonce() external view returns (uint256) {
        return _sent.length + 1;
    }

    /// @notice How many messages were sent.
    function sentCount() external view returns (uint256) {
        return _sent.length;
    }

    /// @notice The message with nonce `nonce` (1-based).
    function sent(uint256 nonce) external view returns (Sent memory) {
        return _sent[nonce - 1];
    }
}
