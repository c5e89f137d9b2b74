// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {BridgeMessage, IBridgeInbox, IBridgeReceiver} from "../interfaces/IBridge.sol";

/// @notice Test-only: does nothing (measures the bridge's own cost).
contract BridgeMinimalReceiver is IBridgeReceiver {
    function onBridgeMessage(uint256, address, bytes calldata) external {}
}

/// @notice Test-only: records every message it receives.
contract BridgeRecordingReceiver is IBridgeReceiver {
    event Received(address indexed inbox, uint256 srcChainId, address sender, bytes data);

    uint256 public calls;
    uint256 public lastSrcChainId;
    address public lastSender;
    address public lastCaller;
    bytes public lastData;
    mapping(bytes32 => uint256) public timesReceived; // keccak256(abi.encode(srcChainId, sender, data))

    function onBridgeMessage(uint256 srcChainId, address sender, bytes calldata data) external {
        calls += 1;
        lastSrcChainId = srcChainId;
        lastSender = sender;
        lastCaller = msg.sender;
        lastData = data;
        timesReceived[keccak256(abi.encode(srcChainId, sender, data))] += 1;
        emit Received(msg.sender, srcChainId, sender, data);
    }
}

/// @notice Test-only: reverts while `reverting` is set, otherwise counts.
contract BridgeRevertingReceiver is IBridgeReceiver {
    error BridgeRevertingReceiverRefused(uint256 srcChainId);

    bool public reverting = true;
    uint256 public calls;

    function setReverting(bool on) external {
        reverting = on;
    }

    function onBridgeMessage(uint256 srcChainId, address, bytes calldata) external {
        if (reverting) revert BridgeRevertingReceiverRefused(srcChainId);
        calls += 1;
    }
}

/// @notice Test-only: during onBridgeMessage, tries to deliver a stored message again through its inbox
/// (swallowing the failure) and records what the reentrant call reverted with.
contract BridgeReentrantReceiver is IBridgeReceiver {
    uint256 public calls;
    bool public reentrySucceeded;
    bytes public reentryError;
    bytes private _message;
    bytes[] private _signatures;

    function arm(BridgeMessage calldata message, bytes[] calldata signatures) external {
        _message = abi.encode(message);
        delete _signatures;
        for (uint256 i; i < signatures.length; ++i) {
            _signatures.push(signatures[i]);
        }
    }

    function onBridgeMessage(uint256, address, bytes calldata) external {
        calls += 1;
        BridgeMessage memory message = abi.decode(_message, (BridgeMessage));
        try IBridgeInbox(msg.sender).deliver(message, _signatures) {
            reentrySucceeded = true;
        } catch (bytes memory err) {
            reentryError = err;
        }
    }
}
