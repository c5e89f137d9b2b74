// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IComputeVoucher} from "../interfaces/IComputeVoucher.sol";

/// @notice Test-only: an ERC-1155 receiver that, on receiving vouchers, tries to re-enter ComputeVoucher
/// (mode 1: redeem what it just got; mode 2: buy more) and records how that ended.
contract VoucherReentrantReceiver is IERC1155Receiver {
    IComputeVoucher public immutable vouchers;
    uint8 public mode;
    uint256 public hookCalls;
    bool public reentered;
    bytes public lastError;

    constructor(IComputeVoucher vouchers_, IERC20 token) {
        vouchers = vouchers_;
        token.approve(address(vouchers_), type(uint256).max);
    }

    function setMode(uint8 mode_) external {
        mode = mode_;
    }

    function buy(uint256 id, uint256 amount) external {
        vouchers.buy(id, amount, address(this));
    }

    function onERC1155Received(address, address, uint256 id, uint256 value, bytes calldata)
        external
        returns (bytes4)
    {
        hookCalls += 1;
        if (mode == 1) {
            try vouchers.redeem(address(this), id, value, address(this)) {
                reentered = true;
            } catch (bytes memory err) {
                lastError = err;
            }
        } else if (mode == 2) {
            try vouchers.buy(id, 1, address(this)) {
                reentered = true;
            } catch (bytes memory err) {
                lastError = err;
            }
        }
        return IERC1155Receiver.onERC1155Received.selector;
    }

    function onERC1155BatchReceived(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return IERC1155Receiver.onERC1155BatchReceived.selector;
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC1155Receiver).interfaceId || interfaceId == type(IERC165).interfaceId;
    }
}
