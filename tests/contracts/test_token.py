"""GPUToken: metadata, capped minting by role, burn, EIP-2612 permit and block-number vote checkpoints."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from tests.contracts.chainkit import DEV_KEYS, deploy, increase_time, now, reverts, send

E18 = 10**18
CAP = 1_000_000_000 * E18
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
GOVERNOR_ROLE = Web3.keccak(text="GOVERNOR_ROLE")


@pytest.fixture
def token(eth: Web3) -> Contract:
    admin = eth.eth.accounts[0]
    t = deploy(eth, "eth", "GPUToken", admin, CAP)
    send(t.functions.grantRole(MINTER_ROLE, admin), admin)
    return t


def _permit_signature(eth: Web3, token: Contract, key_index: int, spender: str, value: int, deadline: int) -> Any:
    owner = eth.eth.accounts[key_index]
    domain = {
        "name": "BlendrChain GPU Token",
        "version": "1",
        "chainId": eth.eth.chain_id,
        "verifyingContract": token.address,
    }
    types = {
        "Permit": [
            {"name": "owner", "type": "address"},
            {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"},
            {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
        ]
    }
    msg = {
        "owner": owner,
        "spender": spender,
        "value": value,
        "nonce": token.functions.nonces(owner).call(),
        "deadline": deadline,
    }
    return Account.sign_typed_data(DEV_KEYS[key_index], domain, types, msg)


def test_metadata_and_roles(eth: Web3, token: Contract) -> None:
    """Name, symbol, decimals, cap, the timestamp clock and the admin's roles are as specified."""
    admin = eth.eth.accounts[0]
    assert token.functions.name().call() == "BlendrChain GPU Token"
    assert token.functions.symbol().call() == "GPUTOKEN"
    assert token.functions.decimals().call() == 18
    assert token.functions.cap().call() == CAP
    assert token.functions.totalSupply().call() == 0
    assert token.functions.CLOCK_MODE().call() == "mode=timestamp"
    assert token.functions.clock().call() == now(eth)
    assert token.functions.hasRole(b"\x00" * 32, admin).call()
    assert token.functions.hasRole(GOVERNOR_ROLE, admin).call()


def test_constructor_rejects_cap_above_votes_limit(eth: Web3) -> None:
    """A cap above type(uint208).max (what ERC20Votes can checkpoint) is refused."""
    with reverts("GPUTokenInvalidCap"):
        deploy(eth, "eth", "GPUToken", eth.eth.accounts[0], 2**208)


def test_constructor_rejects_zero_cap(eth: Web3) -> None:
    """A zero cap is refused by ERC20Capped."""
    with reverts("ERC20InvalidCap"):
        deploy(eth, "eth", "GPUToken", eth.eth.accounts[0], 0)


def test_mint_by_minter_up_to_cap(eth: Web3, token: Contract) -> None:
    """MINTER_ROLE mints up to the cap exactly; one more wei exceeds it."""
    admin, alice = eth.eth.accounts[0], eth.eth.accounts[1]
    send(token.functions.mint(alice, CAP), admin)
    assert token.functions.balanceOf(alice).call() == CAP
    with reverts("ERC20ExceededCap"):
        send(token.functions.mint(alice, 1), admin)


def test_mint_requires_minter_role(eth: Web3, token: Contract) -> None:
    """An account without MINTER_ROLE cannot mint."""
    with reverts("AccessControlUnauthorizedAccount"):
        send(token.functions.mint(eth.eth.accounts[1], 1), eth.eth.accounts[1])


def test_burn_and_burn_from(eth: Web3, token: Contract) -> None:
    """burn destroys the caller's tokens; burnFrom spends an allowance; supply drops accordingly."""
    admin, alice, bob = eth.eth.accounts[:3]
    send(token.functions.mint(alice, 100 * E18), admin)
    send(token.functions.burn(30 * E18), alice)
    assert token.functions.balanceOf(alice).call() == 70 * E18
    with reverts("ERC20InsufficientAllowance"):
        send(token.functions.burnFrom(alice, 1), bob)
    send(token.functions.approve(bob, 20 * E18), alice)
    send(token.functions.burnFrom(alice, 20 * E18), bob)
    assert token.functions.balanceOf(alice).call() == 50 * E18
    assert token.functions.totalSupply().call() == 50 * E18


def test_permit_sets_allowance(eth: Web3, token: Contract) -> None:
    """A valid EIP-712 permit from the owner sets the allowance and bumps the nonce."""
    alice, bob = eth.eth.accounts[1], eth.eth.accounts[2]
    deadline = now(eth) + 3600
    sig = _permit_signature(eth, token, 1, bob, 5 * E18, deadline)
    send(token.functions.permit(alice, bob, 5 * E18, deadline, sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")), bob)
    assert token.functions.allowance(alice, bob).call() == 5 * E18
    assert token.functions.nonces(alice).call() == 1


def test_permit_expired(eth: Web3, token: Contract) -> None:
    """A permit past its deadline is refused."""
    alice, bob = eth.eth.accounts[1], eth.eth.accounts[2]
    deadline = now(eth) - 1
    sig = _permit_signature(eth, token, 1, bob, 1, deadline)
    with reverts("ERC2612ExpiredSignature"):
        send(token.functions.permit(alice, bob, 1, deadline, sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")), bob)


def test_permit_wrong_signer(eth: Web3, token: Contract) -> None:
    """A permit signed by someone other than the owner is refused."""
    alice, bob = eth.eth.accounts[1], eth.eth.accounts[2]
    deadline = now(eth) + 3600
    sig = _permit_signature(eth, token, 2, bob, 1, deadline)  # bob signs for alice
    with reverts("ERC2612InvalidSigner"):
        send(token.functions.permit(alice, bob, 1, deadline, sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big")), bob)


def test_votes_follow_delegation_with_snapshots(eth: Web3, token: Contract) -> None:
    """Balances count as votes only once delegated; past votes and supply are read from timestamp checkpoints."""
    admin, alice, bob = eth.eth.accounts[:3]
    send(token.functions.mint(alice, 100 * E18), admin)
    assert token.functions.getVotes(alice).call() == 0
    increase_time(eth, 1)
    send(token.functions.delegate(alice), alice)
    b1 = now(eth)  # timepoints are block timestamps (ERC-6372 mode=timestamp)
    increase_time(eth, 1)
    send(token.functions.transfer(bob, 40 * E18), alice)
    b2 = now(eth)
    increase_time(eth, 1)
    assert token.functions.getPastVotes(alice, b1).call() == 100 * E18
    assert token.functions.getPastVotes(alice, b2).call() == 60 * E18
    assert token.functions.getPastVotes(bob, b2).call() == 0
    assert token.functions.getPastTotalSupply(b1 - 1).call() == 100 * E18
    assert token.functions.delegates(alice).call() == alice


def test_past_votes_future_lookup(eth: Web3, token: Contract) -> None:
    """Asking for votes at the current or a future time reverts."""
    with reverts("ERC5805FutureLookup"):
        token.functions.getPastVotes(eth.eth.accounts[1], now(eth)).call()
