// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice A cross-chain message, as numbered by the source chain's outbox and attested by queens.
struct BridgeMessage {
    uint256 srcChainId; // chain the message was sent on
    address srcOutbox; // outbox that numbered it
    uint256 nonce; // outbox sequence number, from 1
    uint256 dstChainId; // chain it must execute on
    address sender; // contract that called the outbox
    address target; // contract the inbox calls (IBridgeReceiver)
    bytes data; // payload, opaque to the bridge
}

/// @notice Outbox: numbers and emits messages for the other chain. Only authorized senders may send.
interface IBridgeOutbox {
    error BridgeOutboxUnauthorizedSender(address sender);
    error BridgeOutboxInvalidDestination(uint256 dstChainId);

    event MessageSent(
        uint256 indexed nonce, uint256 indexed dstChainId, address indexed sender, address target, bytes data, bytes32 messageHash
    );

    function sendMessage(uint256 dstChainId, address target, bytes calldata data) external returns (uint256 nonce);
    function nextNonce() external view returns (uint256);
}

/// @notice Inbox: executes a message from a trusted outbox once, with k-of-n attester signatures.
interface IBridgeInbox {
    error BridgeInboxWrongChain(uint256 dstChainId);
    error BridgeInboxUnknownSource(uint256 srcChainId, address srcOutbox);
    error BridgeInboxAlreadyExecuted(bytes32 messageHash);
    error BridgeInboxNotEnoughSignatures(uint256 valid, uint256 threshold);
    error BridgeInboxSignerNotAttester(address signer);
    error BridgeInboxSignersNotSorted(address signer);
    error BridgeInboxInvalidSignature(uint256 index);
    error BridgeInboxRateLimited(uint256 windowStart, uint256 count);
    error BridgeInboxInvalidAttesterSet(uint256 attesters, uint256 threshold);
    error BridgeInboxTargetFailed(bytes reason);

    event MessageExecuted(bytes32 indexed messageHash, uint256 indexed srcChainId, uint256 indexed nonce, address target);
    event AttestersChanged(address[] attesters, uint256 threshold);
    event RateLimitChanged(uint64 window, uint64 maxMessages);
    event SourceChanged(uint256 indexed srcChainId, address srcOutbox, bool trusted);

    function deliver(BridgeMessage calldata message, bytes[] calldata signatures) external;
    function messageDigest(BridgeMessage calldata message) external view returns (bytes32);
    function executed(bytes32 messageHash) external view returns (bool);
}

/// @notice Implemented by contracts that receive bridge messages; they must check msg.sender is their
/// inbox and that (srcChainId, sender) is the peer contract they expect.
interface IBridgeReceiver {
    function onBridgeMessage(uint256 srcChainId, address sender, bytes calldata data) external;
}
