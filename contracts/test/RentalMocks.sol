// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

// Test-only stand-ins for GPURental's collaborators. Never deployed outside tests.

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

import {IBridgeOutbox} from "../interfaces/IBridge.sol";
import {IStakingManager, Tier} from "../interfaces/IStakingManager.sol";

/// @notice GPURental's reservations as StakingManager reads them, set directly.
contract MockStakeReserver {
    mapping(address provider => uint256) public reservedGpusOf;
    uint16 public slashBps = 10_000;

    function setSlashBps(uint16 bps) external {
        slashBps = bps;
    }

    function setReserved(address provider, uint256 gpus) external {
        reservedGpusOf[provider] = gpus;
    }
}

/// @notice StakingManager stand-in: stakes and minimums are set directly; slashes are recorded.
contract MockRentalStaking is IStakingManager {
    struct SlashRecord {
        address node;
        Tier tier;
        uint256 amount; // requested
        uint256 slashed; // actually taken
        bytes32 reason;
    }

    event Slashed(address indexed node, Tier tier, uint256 amount, uint256 slashed, bytes32 reason);

    mapping(address node => mapping(Tier => uint256)) private _stakes;
    mapping(Tier => uint256) private _minStakes;
    SlashRecord[] private _slashes;

    function setStake(address node, Tier tier, uint256 amount) external {
        _stakes[node][tier] = amount;
    }

    function setMinStake(Tier tier, uint256 amount) external {
        _minStakes[tier] = amount;
    }

    function stakeOf(address node, Tier tier) external view returns (uint256) {
        return _stakes[node][tier];
    }

    function rentalStakes(address provider, address queen) external view returns (uint256, uint256, uint256, uint256) {
        return (_stakes[provider][Tier.Provider], _minStakes[Tier.Provider], _stakes[queen][Tier.Queen],
            _minStakes[Tier.Queen]);
    }

    function stakeAndMinimum(address node, Tier tier) external view returns (uint256, uint256) {
        return (_stakes[node][tier], _minStakes[tier]);
    }

    function minStake(Tier tier) external view returns (uint256) {
        return _minStakes[tier];
    }

    /// @notice Takes up to `amount` of the stake and records the call (no role check: tests only).
    function slash(address node, Tier tier, uint256 amount, bytes32 reason) external returns (uint256 slashed) {
        uint256 stake = _stakes[node][tier];
        slashed = amount < stake ? amount : stake;
        _stakes[node][tier] = stake - slashed;
        _slashes.push(SlashRecord({node: node, tier: tier, amount: amount, slashed: slashed, reason: reason}));
        emit Slashed(node, tier, amount, slashed, reason);
    }

    function getPastStake(address account, uint256) external view returns (uint256) {
        return _stakes[account][Tier.Provider] + _stakes[account][Tier.Queen] + _stakes[account][Tier.King];
    }

    function slashCount() external view returns (uint256) {
        return _slashes.length;
    }

    function slashAt(uint256 index) external view returns (SlashRecord memory) {
        return _slashes[index];
    }
}

/// @notice Outbox stand-in: numbers messages from 1 and records each as a MessageSent event (like the real
/// outbox), keeping only the nonce counter in storage so gas measurements stay representative.
contract MockRentalOutbox is IBridgeOutbox {
    uint256 private _nextNonce = 1;

    function sendMessage(uint256 dstChainId, address target, bytes calldata data) external returns (uint256 nonce) {
        nonce = _nextNonce++;
        bytes32 messageHash = keccak256(abi.encode(block.chainid, address(this), nonce, dstChainId, msg.sender, target, data));
        emit MessageSent(nonce, dstChainId, msg.sender, target, data, messageHash);
    }

    function nextNonce() external view returns (uint256) {
        return _nextNonce;
    }
}

/// @notice GPUTOKEN stand-in: ERC-20 with permit and votes (like the real token), and a public mint.
contract RentalTestToken is ERC20, ERC20Permit, ERC20Votes {
    constructor() ERC20("Rental Test Token", "RTT") ERC20Permit("Rental Test Token") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
