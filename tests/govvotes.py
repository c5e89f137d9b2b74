"""Voting power for governance tests, in ONE place (switch it to the genesis distribution once that lands).

Today a deployment's GPUTOKEN sits in TokenDistributor, where it cannot vote (issue 13 §1 fixes the genesis
distribution). Until then a test gives a voter its power here: the timelock (which holds GPUTOKEN's
MINTER_ROLE after the hand-over) mints ``amount`` to the voter, impersonated through anvil, and the voter
delegates to itself. Works on any anvil deployment made by ``deploy_system`` + ``hand_over`` (the devnet too).
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from blendr.chain import artifacts
from blendr.chain.manifest import Manifest
from blendr.units import tokens

DEFAULT_VOTES = tokens(20_000_000)  # above 4 % of any test deployment's supply, and above the proposal threshold


def grant_votes(w3: Web3, m: Manifest, voter: Any, amount: int = DEFAULT_VOTES) -> None:
    """``voter`` (a LocalAccount) holds ``amount`` more GPUTOKEN, delegated to itself, from the next block."""
    timelock = Web3.to_checksum_address(m.eth.address("BlendrTimelock"))
    token = w3.eth.contract(address=Web3.to_checksum_address(m.eth.address("GPUToken")),
                            abi=artifacts.load("eth", "GPUToken").abi)
    rpc = w3.provider.make_request  # type: ignore[union-attr]
    rpc("anvil_setBalance", [timelock, hex(10**20)])  # type: ignore[arg-type]
    rpc("anvil_setBalance", [voter.address, hex(10**20)])  # type: ignore[arg-type]  # gas for its votes
    rpc("anvil_impersonateAccount", [timelock])  # type: ignore[arg-type]
    try:
        h = token.functions.mint(voter.address, amount).transact({"from": timelock})
        assert w3.eth.wait_for_transaction_receipt(h)["status"] == 1
    finally:
        rpc("anvil_stopImpersonatingAccount", [timelock])  # type: ignore[arg-type]
    tx = token.functions.delegate(voter.address).build_transaction({
        "from": voter.address, "nonce": w3.eth.get_transaction_count(voter.address), "chainId": w3.eth.chain_id})
    signed = voter.sign_transaction(tx)
    assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))["status"] == 1
    rpc("evm_mine", [])  # type: ignore[arg-type]
