"""The on-chain stake oracle fails closed with a reason: it never raises into admission."""

from __future__ import annotations

from blendr.chain.client import ChainClient, ChainSettings
from queen.stake_oracle import ChainStakeOracle


def oracle(rpc: str = "http://127.0.0.1:1") -> ChainStakeOracle:
    return ChainStakeOracle(ChainClient(ChainSettings("eth", rpc, 31337, retries=1, rpc_timeout_s=0.5)),
                            "0x" + "11" * 20)


def test_an_address_the_abi_refuses_is_refused_with_a_reason() -> None:
    decision = oracle().check("nope")  # type: ignore[arg-type]
    assert not decision.allowed and "cannot read the provider's stake on chain" in decision.reason


def test_a_chain_that_cannot_be_reached_is_refused_with_a_reason() -> None:
    decision = oracle().check("0x" + "22" * 20)  # type: ignore[arg-type]
    assert not decision.allowed and "try again later" in decision.reason
