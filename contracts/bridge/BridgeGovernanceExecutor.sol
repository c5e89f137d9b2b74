// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IBridgeGovernanceExecutor} from "../interfaces/IBridge.sol";

/// @title BridgeGovernanceExecutor
/// @notice Lets the ETH governance timelock own the ETC contracts: it holds their GOVERNOR_ROLE and
/// DEFAULT_ADMIN_ROLE (including the ETC inbox's) and performs the calls the timelock sends over the
/// bridge. Only its inbox may call it, and only for messages sent by (govChainId, govSender).
/// A failing call reverts the delivery, so the message stays deliverable (e.g. after a fix).
contract BridgeGovernanceExecutor is IBridgeGovernanceExecutor {
    address private immutable _inbox;
    uint256 private immutable _govChainId;
    address private immutable _govSender;

    /// @param inbox_ The BridgeInbox on this chain.
    /// @param govChainId_ Chain of the governance timelock (ETH).
    /// @param govSender_ The governance timelock (the contract that calls the ETH outbox).
    constructor(address inbox_, uint256 govChainId_, address govSender_) {
        if (inbox_ == address(0) || govChainId_ == 0 || govChainId_ == block.chainid || govSender_ == address(0)) {
            revert BridgeGovernanceExecutorInvalidConfig();
        }
        _inbox = inbox_;
        _govChainId = govChainId_;
        _govSender = govSender_;
    }

    /// @notice Accepts native currency so governance can make calls that carry value.
    receive() external payable {}

    /// @notice Performs target.call{value}(callData) for data = abi.encode(target, value, callData).
    /// Requirements:
    /// - the caller is the inbox;
    /// - (srcChainId, sender) is (govChainId, govSender);
    /// - if callData is not empty, target is a contract;
    /// - the call succeeds (else BridgeGovernanceExecutorCallFailed with its revert data).
    function onBridgeMessage(uint256 srcChainId, address sender, bytes calldata data) external {
        if (msg.sender != _inbox) revert BridgeGovernanceExecutorUnauthorizedCaller(msg.sender);
        if (srcChainId != _govChainId || sender != _govSender) {
            revert BridgeGovernanceExecutorUnauthorizedSource(srcChainId, sender);
        }
        (address target, uint256 value, bytes memory callData) = abi.decode(data, (address, uint256, bytes));
        if (callData.length != 0 && target.code.length == 0) revert BridgeGovernanceExecutorTargetNotContract(target);
        (bool ok, bytes memory reason) = target.call{value: value}(callData);
        if (!ok) revert BridgeGovernanceExecutorCallFailed(target, reason);
        emit GovernanceCallExecuted(target, value, callData);
    }

    /// @notice The inbox allowed to call onBridgeMessage.
    /// Requirements: none.
    function inbox() external view returns (address) {
        return _inbox;
    }

    /// @notice Chain id of the governance sender.
    /// Requirements: none.
    function govChainId() external view returns (uint256) {
        return _govChainId;
    }

    /// @notice The governance sender (ETH timelock) on govChainId.
    /// Requirements: none.
    function govSender() external view returns (address) {
        return _govSender;
    }
}
