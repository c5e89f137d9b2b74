"""Helpers for contract tests against real anvil chains: deploy, transact, expect custom errors, time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from blendr.chain import artifacts
from blendr.chain.client import decode_revert
from blendr.chain.devkeys import (
    DEV_KEYS as DEV_KEYS,  # anvil's dev accounts (index -> private key), re-exported
)


def deploy(w3: Web3, chain: str, name: str, *args: Any, sender: str | None = None) -> Contract:
    """Deploys artifact ``name`` compiled for ``chain`` from ``sender`` (default: account 0)."""
    art = artifacts.load(chain, name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    tx = factory.constructor(*args).transact({"from": sender or w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1, f"deploying {name} failed"
    return w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)


def at(w3: Web3, chain: str, name: str, address: str) -> Contract:
    """A contract object for an already deployed ``name``."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifacts.load(chain, name).abi)


def send(fn: Any, sender: str, **tx: Any) -> Any:
    """Sends a contract call as a transaction from an unlocked anvil account; returns the receipt."""
    w3 = fn.w3
    if "gas" not in tx:
        # Estimate against the pending block, with a margin: a call that writes a checkpoint (votes, total supply,
        # stake; keyed by timestamp since the governance clock became ERC-6372 seconds) costs ~22k more per
        # checkpoint when it lands in a new second than when the estimate saw one already written in that second
        # (anvil's pending block may share the latest one's second). A slash writes up to three: 25 % + 100k covers
        # them (unused gas is not charged; the status is still checked).
        tx["gas"] = int(fn.estimate_gas({"from": sender, **tx}, block_identifier="pending") * 1.25) + 100_000
    h = fn.transact({"from": sender, **tx})
    receipt = w3.eth.wait_for_transaction_receipt(h)
    assert receipt["status"] == 1
    return receipt


def error_name(exc: BaseException) -> str:
    """The custom error name (or revert reason) carried by a web3 exception."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        name, _ = decode_revert(data)
        return name if not name.startswith("0x") else f"unknown error {data[:10]}"
    return str(exc)


class Revert:
    """The arguments of the custom error a :func:`reverts` block raised."""

    def __init__(self) -> None:
        self.args: list[Any] = []


@contextlib.contextmanager
def reverts(name: str) -> Iterator[Revert]:
    """Asserts the block raises custom error ``name`` (e.g. "GPURentalInsufficientStake"); the yielded
    :class:`Revert` then holds the error's decoded arguments (addresses checksummed)."""
    caught = Revert()
    try:
        yield caught
    except (ContractCustomError, ContractLogicError) as exc:
        got = error_name(exc)
        assert got == name or got.endswith(name), f"expected revert {name}, got {got}"
        data = getattr(exc, "data", None)
        if isinstance(data, str) and data.startswith("0x"):
            caught.args = [Web3.to_checksum_address(v) if isinstance(v, str) and len(v) == 42 else v
                           for v in decode_revert(data)[1]]
    else:
        raise AssertionError(f"expected revert {name}, but the call succeeded")


def increase_time(w3: Web3, seconds: int) -> None:
    """Moves the chain's clock forward and mines a block."""
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def mine(w3: Web3, blocks: int = 1) -> None:
    w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


@contextlib.contextmanager
def snapshot(w3: Web3) -> Iterator[None]:
    """Reverts every change made inside the block."""
    snap = w3.provider.make_request("evm_snapshot", [])  # type: ignore[arg-type]
    try:
        yield
    finally:
        w3.provider.make_request("evm_revert", [snap["result"]])  # type: ignore[arg-type]
