// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IGovernor} from "@openzeppelin/contracts/governance/IGovernor.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

/// @notice Test-only: a receiver of {EconFlashLender} loans.
interface IEconFlashBorrower {
    function onFlashLoan(uint256 amount, bytes calldata data) external;
}

/// @notice Test-only flash lender: lends its whole token balance for one call, which must repay it.
contract EconFlashLender {
    error EconFlashLenderNotRepaid(uint256 balance, uint256 expected);

    IERC20 public immutable token;

    constructor(IERC20 token_) {
        token = token_;
    }

    function flashLoan(IEconFlashBorrower borrower, uint256 amount, bytes calldata data) external {
        uint256 before = token.balanceOf(address(this));
        require(token.transfer(address(borrower), amount));
        borrower.onFlashLoan(amount, data);
        uint256 afterLoan = token.balanceOf(address(this));
        if (afterLoan < before) revert EconFlashLenderNotRepaid(afterLoan, before);
    }
}

/// @notice Test-only borrower: inside the loan it delegates the borrowed tokens to itself, votes For on
/// `proposalId` (from `data`), records the weight counted, and repays.
contract EconFlashBorrower is IEconFlashBorrower {
    EconFlashLender public immutable lender;
    IGovernor public immutable governor;
    uint256 public lastWeight;
    uint256 public votesDuringLoan;
    bool public repays = true;

    constructor(EconFlashLender lender_, IGovernor governor_) {
        lender = lender_;
        governor = governor_;
    }

    function setRepays(bool repays_) external {
        repays = repays_;
    }

    function attack(uint256 amount, uint256 proposalId) external {
        lender.flashLoan(this, amount, abi.encode(proposalId));
    }

    function onFlashLoan(uint256 amount, bytes calldata data) external {
        require(msg.sender == address(lender));
        uint256 proposalId = abi.decode(data, (uint256));
        IERC20 token = lender.token();
        IVotes(address(token)).delegate(address(this));
        votesDuringLoan = IVotes(address(token)).getVotes(address(this));
        lastWeight = governor.castVote(proposalId, 1);
        if (repays) require(token.transfer(address(lender), amount));
    }
}
