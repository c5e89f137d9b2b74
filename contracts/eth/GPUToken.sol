// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IGPUToken} from "../interfaces/IGPUToken.sol";

/// @title GPUToken
/// @notice GPUTOKEN, the BlendrChain ERC-20: minted by MINTER_ROLE up to a fixed cap, burnable, EIP-2612
/// permit, and ERC20Votes checkpoints on a timestamp clock (ERC-6372 `mode=timestamp`: governance's voting delay and period
/// are seconds, independent of block times; holders must delegate, even to themselves, for their balance to
/// count as votes).
contract GPUToken is ERC20, ERC20Capped, ERC20Burnable, ERC20Permit, ERC20Votes, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE (the deployer grants MINTER_ROLE).
    /// @param cap_ Maximum total supply; non-zero and at most type(uint208).max.
    constructor(address admin, uint256 cap_)
        ERC20("BlendrChain GPU Token", "GPUTOKEN")
        ERC20Capped(cap_)
        ERC20Permit("BlendrChain GPU Token")
    {
        if (cap_ > type(uint208).max) revert IGPUToken.GPUTokenInvalidCap(cap_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
    }

    /// @notice Mints `amount` to `to`.
    /// @dev Requirements:
    /// - the caller has MINTER_ROLE;
    /// - `to` is not the zero address;
    /// - the total supply stays at most {cap}.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped, ERC20Votes) {
        super._update(from, to, value);
    }

    /// @notice Clock of the vote checkpoints (ERC-6372): the block timestamp, in seconds.
    function clock() public view override returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @notice ERC-6372 clock description: timestamps.
    // solhint-disable-next-line func-name-mixedcase
    function CLOCK_MODE() public pure override returns (string memory) {
        return "mode=timestamp";
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
