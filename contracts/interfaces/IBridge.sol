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

/// @notice The identity of a bridge message, shared by the outbox (which emits it) and every inbox.
///
/// messageHash = keccak256(abi.encode(MESSAGE_TYPEHASH, srcChainId, srcOutbox, nonce, dstChainId, sender,
///                                    target, keccak256(data)))
/// i.e. the EIP-712 `hashStruct` of the typed struct below. It does not depend on the chain it is computed
/// on, so relayers, attesters and both chains name a message by the same 32 bytes. What attesters sign is
/// the EIP-712 digest of this struct hash under the destination inbox's domain
/// (name "BlendrBridgeInbox", version "1", chainId, verifyingContract = the inbox).
library BridgeMessageHashing {
    bytes32 internal constant MESSAGE_TYPEHASH = keccak256(
        "Message(uint256 srcChainId,address srcOutbox,uint256 nonce,uint256 dstChainId,address sender,address target,bytes data)"
    );

    function hash(
        uint256 srcChainId,
        address srcOutbox,
        uint256 nonce,
        uint256 dstChainId,
        address sender,
        address target,
        bytes calldata data
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(MESSAGE_TYPEHASH, srcChainId, srcOutbox, nonce, dstChainId, sender, target, keccak256(data))
        );
    }
}

/// @notice Outbox: numbers and emits messages for the other chain. Only holders of SENDER_ROLE may send.
/// Messages are not stored: the MessageSent event is the record relayers and attesters read.
interface IBridgeOutbox {
    error BridgeOutboxUnauthorizedSender(address sender);
    error BridgeOutboxNotASender(address account);
    error BridgeOutboxInvalidDestination(uint256 dstChainId);
    error BridgeOutboxInvalidTarget(address target);

    /// @dev srcChainId is the chain the event was emitted on and srcOutbox the emitting contract.
    event MessageSent(
        uint256 indexed nonce, uint256 indexed dstChainId, address indexed sender, address target, bytes data, bytes32 messageHash
    );

    event PrimarySenderChanged(address sender);

    function sendMessage(uint256 dstChainId, address target, bytes calldata data) external returns (uint256 nonce);
    function nextNonce() external view returns (uint256);
}

/// @notice Inbox: executes a message from a trusted outbox once, with k-of-n attester signatures.
interface IBridgeInbox {
    error BridgeInboxWrongChain(uint256 dstChainId);
    error BridgeInboxUnknownSource(uint256 srcChainId, address srcOutbox);
    error BridgeInboxAlreadyExecuted(uint256 srcChainId, address srcOutbox, uint256 nonce);
    error BridgeInboxNotEnoughSignatures(uint256 valid, uint256 threshold);
    error BridgeInboxSignerNotAttester(address signer);
    error BridgeInboxSignersNotSorted(address signer);
    error BridgeInboxInvalidSignature(uint256 index);
    error BridgeInboxRateLimited(uint256 windowStart, uint256 count);
    error BridgeInboxInvalidAttesterSet(uint256 attesters, uint256 threshold);
    error BridgeInboxInvalidAttester(address attester);
    error BridgeInboxInvalidRateLimit(uint64 window, uint64 maxMessages);
    error BridgeInboxInvalidSource(uint256 srcChainId, address srcOutbox);
    error BridgeInboxTargetNotContract(address target);
    error BridgeInboxTargetFailed(bytes reason);
    error BridgeInboxPauseCooldown(uint256 pausableAt);

    event MessageExecuted(
        bytes32 indexed messageHash, uint256 indexed srcChainId, uint256 indexed nonce, address srcOutbox, address target
    );
    event AttestersChanged(address[] attesters, uint256 threshold);
    event RateLimitChanged(uint64 window, uint64 maxMessages);
    event SourceChanged(uint256 indexed srcChainId, address srcOutbox, bool trusted);

    function deliver(BridgeMessage calldata message, bytes[] calldata signatures) external;
    function setAttesters(address[] calldata newAttesters, uint256 newThreshold) external;
    function setRateLimit(uint64 window, uint64 maxMessages) external;
    function setSource(uint256 srcChainId, address srcOutbox, bool trusted) external;
    function pause() external;
    function unpause() external;

    function messageHash(BridgeMessage calldata message) external pure returns (bytes32);
    function messageDigest(BridgeMessage calldata message) external view returns (bytes32);
    function executed(uint256 srcChainId, address srcOutbox, uint256 nonce) external view returns (bool);
    function isTrustedSource(uint256 srcChainId, address srcOutbox) external view returns (bool);
    function attesters() external view returns (address[] memory);
    function isAttester(address account) external view returns (bool);
    function threshold() external view returns (uint256);
    function rateLimit()
        external
        view
        returns (uint64 window, uint64 maxMessages, uint64 currentWindowStart, uint64 deliveredInWindow);
}

/// @notice Implemented by contracts that receive bridge messages; they must check msg.sender is their
/// inbox and that (srcChainId, sender) is the peer contract they expect.
interface IBridgeReceiver {
    function onBridgeMessage(uint256 srcChainId, address sender, bytes calldata data) external;
}

/// @notice Executes governance calls that the ETH governance timelock sends over the bridge, so that it owns
/// the ETC contracts' parameters. Payload: abi.encode(address target, uint256 value, bytes callData).
interface IBridgeGovernanceExecutor is IBridgeReceiver {
    error BridgeGovernanceExecutorUnauthorizedCaller(address caller);
    error BridgeGovernanceExecutorUnauthorizedSource(uint256 srcChainId, address sender);
    error BridgeGovernanceExecutorInvalidConfig();
    error BridgeGovernanceExecutorTargetNotContract(address target);
    error BridgeGovernanceExecutorCallFailed(address target, bytes reason);

    event GovernanceCallExecuted(address indexed target, uint256 value, bytes callData);

    function inbox() external view returns (address);
    function govChainId() external view returns (uint256);
    function govSender() external view returns (address);
}
