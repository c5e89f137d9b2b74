// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Test-only: emits events on demand, for the Python event follower's tests.
contract ChainEventEmitter {
    error ChainEventEmitterRefused(uint256 n);

    event Pinged(uint256 indexed n, address indexed who, bytes note);

    uint256 private _count;

    function ping(uint256 n, bytes calldata note) external {
        if (n == 0) revert ChainEventEmitterRefused(n);
        _count += 1;
        emit Pinged(n, msg.sender, note);
    }

    function pingTwice(uint256 n) external {
        emit Pinged(n, msg.sender, "");
        emit Pinged(n, msg.sender, "");
    }

    function count() external view returns (uint256) {
        return _count;
    }
}
