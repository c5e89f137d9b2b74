"""Helpers for contract tests against real anvil chains: deploy, transact, expect custom errors, time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from typing import Any

from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from blendr.chain import artifacts

# anvil's dev accounts (mnemonic "test test ... junk"): index -> private key
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]


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
    h = fn.transact({"from": sender, **tx})
    receipt = w3.eth.wait_for_transaction_receipt(h)
    assert receipt["status"] == 1
    return receipt


@cache
def _error_selectors() -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for chain in ("eth", "etc"):
        for name in artifacts.index()["units"].get(chain, {}).get("contracts", []):
            for item in artifacts.load(chain, name).abi:
                if item.get("type") == "error":
                    sig = f"{item['name']}({','.join(_abi_type(i) for i in item['inputs'])})"
                    out[keccak(text=sig)[:4]] = item["name"]
    return out


def _abi_type(item: dict[str, Any]) -> str:
    t: str = item["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + t[len("tuple"):]
    return t


def error_name(exc: BaseException) -> str:
    """The custom error name (or revert reason) carried by a web3 exception."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return _error_selectors().get(bytes.fromhex(data[2:10]), f"unknown error {data[:10]}")
    return str(exc)


@contextlib.contextmanager
def reverts(name: str) -> Iterator[None]:
    """Asserts the block raises custom error ``name`` (e.g. "GPURentalInsufficientStake")."""
    try:
        yield
    except (ContractCustomError, ContractLogicError) as exc:
        got = error_name(exc)
        assert got == name or got.endswith(name), f"expected revert {name}, got {got}"
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
