"""ChainClient is the boundary: whatever web3, requests or the socket raise, its callers see a BlendrError.

A scripted stand-in for web3's ``w3.eth`` plays the node, so these run without a chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from eth_account import Account
from web3.exceptions import ContractCustomError, TimeExhausted, TransactionNotFound, Web3RPCError

from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.devkeys import DEV_KEYS
from blendr.errors import ChainError, ContractRevertError, DeadlineExceededError, UnavailableError


class ScriptedEth:
    """``w3.eth`` whose methods answer from a script: each call pops the next outcome (a value or an error)."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.calls: dict[str, int] = {}

    def on(self, name: str, *outcomes: Any) -> None:
        self.script[name] = list(outcomes)

    def _next(self, name: str) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        outcomes = self.script[name]
        out = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        if isinstance(out, BaseException):
            raise out
        return out

    @property
    def block_number(self) -> int:
        return int(self._next("block_number"))

    @property
    def max_priority_fee(self) -> int:
        return int(self._next("max_priority_fee"))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kw: self._next(name)


class ScriptedW3:
    def __init__(self) -> None:
        self.eth = ScriptedEth()


def make(retries: int = 3, **kw: Any) -> tuple[ChainClient, ScriptedEth]:
    w3 = ScriptedW3()
    settings = ChainSettings("eth", "http://127.0.0.1:1", 31337, retries=retries, retry_max_wait_s=0.01,
                             poll_s=0.001, **kw)
    return ChainClient(settings, Account.from_key(DEV_KEYS[3]), w3=w3), w3.eth  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [requests.ConnectionError("refused"), requests.Timeout("slow"),
                                   ConnectionResetError("reset"), Web3RPCError("header not found")])
def test_an_endpoint_that_keeps_failing_is_unavailable_after_the_bounded_attempts(error: Exception) -> None:
    c, eth = make(retries=3)
    eth.on("block_number", error)
    with pytest.raises(UnavailableError, match="eth_blockNumber failed after 3 attempts") as info:
        c.block_number()
    assert eth.calls["block_number"] == 3
    assert info.value.__cause__ is error


def test_a_transient_failure_is_retried_and_then_succeeds() -> None:
    c, eth = make(retries=3)
    eth.on("block_number", requests.ConnectionError("refused"), 42)
    assert c.block_number() == 42
    assert eth.calls["block_number"] == 2


@pytest.mark.parametrize("error", [ValueError("bad params"), Web3RPCError("method not found"),
                                   TimeExhausted("gave up"), KeyError("hash")])
def test_any_other_library_error_is_a_chain_error_at_once(error: Exception) -> None:
    c, eth = make(retries=3)
    eth.on("block_number", error)
    with pytest.raises(ChainError, match=f"eth_blockNumber failed: {type(error).__name__}") as info:
        c.block_number()
    assert not isinstance(info.value, ContractRevertError)
    assert eth.calls["block_number"] == 1
    assert info.value.__cause__ is error


def test_a_revert_in_gas_estimation_is_a_contract_revert_error_naming_the_transaction() -> None:
    c, eth = make()
    eth.on("estimate_gas", ContractCustomError("0xdeadbeef", data="0xdeadbeef"))
    with pytest.raises(ContractRevertError, match=r"^eth tx transfer reverted: 0xdeadbeef") as info:
        c.transact(to="0x" + "11" * 20, data=b"")
    assert info.value.error == "0xdeadbeef"
    assert eth.calls["estimate_gas"] == 1


def _ready_to_send(eth: ScriptedEth) -> None:
    eth.on("estimate_gas", 21_000)
    eth.on("get_block", {"baseFeePerGas": 1, "hash": b"h"})
    eth.on("max_priority_fee", 1)
    eth.on("get_transaction_count", 7)


def test_a_send_the_node_already_has_counts_as_sent() -> None:
    c, eth = make()
    _ready_to_send(eth)
    eth.on("send_raw_transaction", Web3RPCError("already known"))
    tx_hash = c.transact(to="0x" + "11" * 20, wait=False)
    assert isinstance(tx_hash, str) and tx_hash.startswith("0x")
    assert c._next_nonce == 8


def test_a_send_the_node_refuses_is_a_chain_error_and_the_nonce_is_read_again() -> None:
    c, eth = make()
    _ready_to_send(eth)
    eth.on("send_raw_transaction", Web3RPCError("insufficient funds for gas * price + value"))
    with pytest.raises(ChainError, match=r"node refused the transaction: .*insufficient funds"):
        c.transact(to="0x" + "11" * 20, wait=False)
    assert eth.calls["send_raw_transaction"] == 1
    assert c._next_nonce is None


def test_a_send_that_keeps_failing_is_unavailable_and_the_nonce_is_read_again() -> None:
    c, eth = make(retries=2)
    _ready_to_send(eth)
    eth.on("send_raw_transaction", requests.ConnectionError("refused"))
    with pytest.raises(UnavailableError, match="send failed after 2 attempts"):
        c.transact(to="0x" + "11" * 20, wait=False)
    assert c._next_nonce is None


def test_a_nonce_conflict_with_our_own_lost_transaction_is_not_resent() -> None:
    c, eth = make()
    _ready_to_send(eth)
    eth.on("send_raw_transaction", Web3RPCError("nonce too low"))
    eth.on("get_transaction", {"hash": "ours"})
    c.transact(to="0x" + "11" * 20, wait=False)
    assert eth.calls["send_raw_transaction"] == 1
    assert c._next_nonce == 8


def test_a_nonce_conflict_with_another_transaction_resyncs_then_gives_up() -> None:
    c, eth = make()
    _ready_to_send(eth)
    eth.on("send_raw_transaction", Web3RPCError("nonce too low"))
    eth.on("get_transaction", TransactionNotFound("unknown"))
    with pytest.raises(ChainError, match="nonce kept conflicting after resync"):
        c.transact(to="0x" + "11" * 20, wait=False)
    assert eth.calls["send_raw_transaction"] == 3


def test_a_receipt_that_never_comes_is_deadline_exceeded() -> None:
    c, eth = make(receipt_timeout_s=0.05)
    eth.on("get_transaction_receipt", TransactionNotFound("not yet"))
    with pytest.raises(DeadlineExceededError, match="not confirmed 1 deep"):
        c.wait("0x" + "ab" * 32)
    assert eth.calls["get_transaction_receipt"] >= 2


def test_a_reverted_receipt_whose_replay_fails_is_still_a_contract_revert_error() -> None:
    c, eth = make()
    eth.on("get_transaction_receipt", {"blockNumber": 5, "blockHash": b"h", "status": 0, "gasUsed": 30_000})
    eth.on("block_number", 5)
    eth.on("get_block", {"hash": b"h"})
    eth.on("get_transaction", {"from": c.address, "to": "0x" + "11" * 20, "input": "0x", "value": 0, "gas": 50_000})
    eth.on("call", Web3RPCError("missing trie node"))
    with pytest.raises(ContractRevertError, match=r"reverted \(gas used 30000 of 50000\)") as info:
        c.wait("0x" + "ab" * 32)
    assert info.value.tx_hash == "0x" + "ab" * 32


def test_a_transaction_the_account_cannot_sign_is_a_chain_error_and_nothing_is_sent() -> None:
    c, eth = make()
    _ready_to_send(eth)
    eth.on("send_raw_transaction", "0x")
    with pytest.raises(ChainError, match="eth tx transfer: cannot sign the transaction"):
        c.transact(to="not an address", wait=False)
    assert "send_raw_transaction" not in eth.calls
    assert c._next_nonce is None


def test_a_reverted_receipt_whose_transaction_cannot_be_read_is_still_a_contract_revert_error() -> None:
    c, eth = make()
    eth.on("get_transaction_receipt", {"blockNumber": 5, "blockHash": b"h", "status": 0, "gasUsed": 30_000})
    eth.on("block_number", 5)
    eth.on("get_block", {"hash": b"h"})
    eth.on("get_transaction", {"from": c.address})  # a node answering without the fields a replay needs
    with pytest.raises(ContractRevertError, match=r"reverted \(gas used 30000 of \?\)"):
        c.wait("0x" + "ab" * 32)


def offline() -> ChainClient:
    return ChainClient(ChainSettings("eth", "http://127.0.0.1:1", 31337, retries=1))


@pytest.mark.parametrize("address", ["0x1234", "not an address", "0x" + "zz" * 20])
def test_a_contract_at_a_malformed_address_is_a_chain_error(address: str) -> None:
    with pytest.raises(ChainError, match=r"StakingManager address .* is not a 20-byte hex address"):
        offline().contract("StakingManager", address)


@pytest.mark.parametrize("args", [("nope", 0), ("0x" + "11" * 20,), ("0x" + "11" * 20, "provider")])
def test_arguments_that_do_not_fit_the_abi_are_a_chain_error_before_any_rpc(args: tuple[Any, ...]) -> None:
    from blendr.chain.contracts import StakingManager

    staking = StakingManager(offline(), "0x" + "11" * 20)
    with pytest.raises(ChainError, match=r"^eth StakingManager.stakeOf: the arguments do not fit the ABI"):
        staking.fn.stakeOf(*args)


def test_constructor_arguments_that_do_not_fit_are_a_chain_error() -> None:
    with pytest.raises(ChainError, match="cannot encode StakingManager's constructor"):
        offline().deploy("StakingManager", "not", "the", "arguments", 1, 2, 3, 4, 5)

