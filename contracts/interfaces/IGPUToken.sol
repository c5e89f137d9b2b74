// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice GPUTOKEN: capped, burnable, permit and votes ERC-20 of BlendrChain.
interface IGPUToken is IERC20 {
    /// @notice The cap is zero or above what ERC20Votes can checkpoint (type(uint208).max).
    error GPUTokenInvalidCap(uint256 cap);

    /// @notice Mints `amount` to `to`; only MINTER_ROLE, never above {cap}.
    function mint(address to, uint256 amount) external;
    /// @notice Burns `amount` of the caller's tokens.
    function burn(uint256 amount) external;
    /// @notice Burns `amount` of `account`'s tokens, spending the caller's allowance.
    function burnFrom(address account, uint256 amount) external;
    /// @notice Maximum total supply.
    function cap() external view returns (uint256);
}
