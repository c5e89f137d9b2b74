"""A chain client: calls and transactions against one chain, signed locally, retried within bounds.

One :class:`ChainClient` per (chain, signing key). It manages the account's nonce itself (so several
transactions can be in flight), estimates gas with a margin, prices fees as the chain expects (EIP-1559 on
Ethereum; legacy ``gasPrice`` on Ethereum Classic, which has no base fee), retries transient RPC failures
with bounded exponential backoff, and waits for receipts to the chain's confirmation depth, re-checking
that the including block is still canonical.

Guarantees: every method raises only :class:`~blendr.errors.BlendrError` subclasses, never a web3,
``requests`` or socket error: a revert becomes :class:`ContractRevertError` naming the contract's custom
error, an endpoint that keeps failing :class:`UnavailableError`, a receipt that does not come in time
:class:`DeadlineExceededError`, anything else the node refuses :class:`ChainError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from blendr.chain import artifacts
from blendr.errors import (
    BlendrError,
    ChainError,
    ContractRevertError,
    DeadlineExceededError,
    UnavailableError,
)
from blendr.retry import exponential
from blendr.telemetry import get_logger

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.contract import Contract
    from web3.contract.contract import ContractFunction
    from web3.types import TxReceipt

log = get_logger("blendr.chain")
T = TypeVar("T")


@dataclass(frozen=True)
class ChainSettings:
    """How to talk to one chain."""

    name: str  # "eth" or "etc": also selects the artifacts compiled for that chain's EVM
    rpc_url: str
    chain_id: int
    confirmations: int = 1  # blocks on top of the including block before a receipt counts (1 = included)
    eip1559: bool = True  # Ethereum Classic has no EIP-1559: legacy gasPrice transactions
    rpc_timeout_s: float = 15.0
    retries: int = 6  # attempts per RPC operation on transient errors
    retry_max_wait_s: float = 8.0
    gas_margin: float = 1.25  # estimated gas x margin, so a state change between estimate and mining fits
    receipt_timeout_s: float = 120.0
    poll_s: float = 0.2


def is_transient(exc: BaseException) -> bool:
    """Whether an RPC failure is worth retrying (connection trouble, timeouts, 429/5xx, node hiccups)."""
    import requests

    if isinstance(exc, ContractRevertError | ChainError):
        return False
    if isinstance(exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status == 429 or status >= 500
    from web3.exceptions import Web3RPCError

    if isinstance(exc, Web3RPCError):
        text = str(exc).lower()
        return any(s in text for s in ("header not found", "timeout", "rate limit", "try again", "busy", "-32005"))
    return False


@cache
def error_selectors() -> dict[bytes, tuple[str, list[str]]]:
    """4-byte selector -> (custom error name, argument types), from every compiled contract."""
    from eth_utils import keccak

    out: dict[bytes, tuple[str, list[str]]] = {}
    for chain, name in artifacts.contract_names():
        for item in artifacts.load(chain, name).abi:
            if item.get("type") == "error":
                types = [_abi_type(i) for i in item["inputs"]]
                out[keccak(text=f"{item['name']}({','.join(types)})")[:4]] = (item["name"], types)
    out[bytes.fromhex("08c379a0")] = ("Error", ["string"])
    out[bytes.fromhex("4e487b71")] = ("Panic", ["uint256"])
    return out


def _abi_type(item: dict[str, Any]) -> str:
    t: str = item["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + t[len("tuple") :]
    return t


def decode_revert(data: str | bytes | None) -> tuple[str, tuple[Any, ...]]:
    """(error name, decoded arguments) of revert data; ("", ()) when there is none or it is unknown."""
    if data is None:
        return "", ()
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else data
    if len(raw) < 4:
        return "", ()
    known = error_selectors().get(raw[:4])
    if known is None:
        return f"0x{raw[:4].hex()}", ()
    name, types = known
    from eth_abi.abi import decode
    from eth_abi.exceptions import DecodingError

    try:
        return name, tuple(decode(types, raw[4:]))
    except DecodingError:  # revert data that does not match the error's declared arguments
        return name, ()


def revert_error(exc: BaseException, what: str, tx_hash: str = "") -> ContractRevertError | None:
    """A ContractRevertError for a web3 revert exception, or None if ``exc`` is not a revert."""
    from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

    if not isinstance(exc, ContractCustomError | ContractLogicError | ContractPanicError):
        return None
    data = getattr(exc, "data", None)
    name, args = decode_revert(data if isinstance(data, str | bytes) else None)
    if name == "Error" and args:
        name = f"Error({args[0]})"
    detail = f"{name}{args if args and not name.startswith('Error(') else ''}" if name else str(exc)
    return ContractRevertError(f"{what} reverted: {detail}", error=name, data=str(data or ""), tx_hash=tx_hash)


class ChainClient:
    """Calls and signed transactions on one chain for one account (thread-safe)."""

    def __init__(self, settings: ChainSettings, account: LocalAccount | None = None, w3: Web3 | None = None) -> None:
        from web3 import Web3

        self.settings = settings
        self.account = account
        # web3's own retry is off: every attempt is :meth:`retry`'s, so ``settings.retries`` bounds them all (web3
        # would repeat a timed-out request up to 5 times inside each one, past any close and any budget).
        self.w3 = w3 or Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": settings.rpc_timeout_s},
                                               exception_retry_configuration=None))
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._closed = threading.Event()
        # Checked before every transaction is sent; raises to refuse it (a king that no longer leads: king.ha).
        self.guard: Callable[[], None] | None = None

    def close(self) -> None:
        """Ends this client's work: no new attempt, retry or receipt poll starts after this (an RPC request
        already on the wire still runs to its ``rpc_timeout_s``); those calls raise :class:`UnavailableError`.
        For a node that stops: its chain calls in worker threads end now, not after their retries."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _check_open(self, what: str) -> None:
        if self._closed.is_set():
            raise UnavailableError(f"{self.settings.name} RPC: {what} not done: this node is stopping "
                                   "(its chain client is closed)")

    # -- plumbing -----------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        if self.account is None:
            raise ChainError(f"{self.settings.name}: this client has no signing key")
        return str(self.account.address)

    def retry(self, what: str, fn: Callable[[], T], *, revert_label: str = "") -> T:
        """Runs ``fn`` (web3 calls), retrying transient RPC failures with bounded backoff; the one place where
        the libraries' errors become ours.

        Raises:
            ContractRevertError: ``fn`` hit a revert.
            UnavailableError: still failing transiently after ``settings.retries`` attempts.
            ChainError: any other failure of ``fn`` (a BlendrError raised by ``fn`` passes unchanged).

        ``revert_label`` names the operation in a revert's message (default: the chain and ``what``).
        """
        s = self.settings

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("rpc retry", chain=s.name, op=what, attempt=state.attempt_number, error=repr(exc)[:200])

        def attempt_fn() -> T:
            self._check_open(what)
            return fn()

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(s.retries),
                wait=exponential(0.2, s.retry_max_wait_s),
                retry=retry_if_exception(is_transient),
                before_sleep=before_sleep,
                sleep=self._closed.wait,  # a close ends the wait between attempts at once
                reraise=True,
            ):
                with attempt:
                    return attempt_fn()
        except BlendrError:
            raise
        except Exception as exc:  # the boundary: web3, requests, eth-abi and socket errors end here
            raise self._translate(exc, what, revert_label) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, exc: Exception, what: str, revert_label: str) -> BlendrError:
        s = self.settings
        revert = revert_error(exc, revert_label or f"{s.name} {what}")
        if revert is not None:
            return revert
        if is_transient(exc):
            return UnavailableError(f"{s.name} RPC {s.rpc_url}: {what} failed after {s.retries} attempts: {exc}")
        return ChainError(f"{s.name} RPC {s.rpc_url}: {what} failed: {type(exc).__name__}: {exc}")

    def contract(self, name: str, address: str) -> Contract:
        """A web3 contract object for ``name`` (artifact compiled for this chain) at ``address``.

        Raises:
            ConfigError: no artifact of ``name`` for this chain.
            ChainError: ``address`` is not a 20-byte hex address.
        """
        from eth_utils import is_hex_address
        from web3 import Web3

        abi = artifacts.load(self.settings.name, name).abi
        if not isinstance(address, str) or not is_hex_address(address):
            raise ChainError(f"{self.settings.name}: {name} address {str(address)[:80]!r} is not a 20-byte hex address")
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def set_confirmations(self, depth: int) -> None:
        """Makes ``depth`` this chain's confirmation depth from now on (governance changed it, see
        :mod:`blendr.chain.depths`): for the receipts waited for after this call, and for every follower and reader
        built on this client without a depth of its own. A wait already in progress keeps the depth it began with.

        Raises:
            ChainError: ``depth`` is below 1.
        """
        if depth < 1:
            raise ChainError(f"{self.settings.name}: confirmation depth {depth} is below 1")
        self.settings = replace(self.settings, confirmations=depth)  # one reference swap: readers see old or new

    def check_chain_id(self) -> None:
        """Raises ChainError when the endpoint serves another chain than configured."""
        got = self.retry("eth_chainId", lambda: int(self.w3.eth.chain_id))
        if got != self.settings.chain_id:
            raise ChainError(f"{self.settings.name}: RPC {self.settings.rpc_url} serves chain {got}, expected {self.settings.chain_id}")

    def block_number(self) -> int:
        return self.retry("eth_blockNumber", lambda: int(self.w3.eth.block_number))

    # -- calls --------------------------------------------------------------------------------------
    def call(self, fn: ContractFunction, *, block: int | str = "latest") -> Any:
        """Calls a view function; a revert raises ContractRevertError."""
        return self.retry(f"call {fn.fn_name}", lambda: fn.call(block_identifier=block))  # type: ignore[arg-type]

    # -- transactions -------------------------------------------------------------------------------
    def _fees(self) -> dict[str, int]:
        w3 = self.w3
        if self.settings.eip1559:
            base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
            tip = int(w3.eth.max_priority_fee)
            return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
        return {"gasPrice": int(w3.eth.gas_price)}

    def _nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = int(self.w3.eth.get_transaction_count(self.address, "pending"))  # type: ignore[arg-type]
        return self._next_nonce

    def transact(
        self, fn: ContractFunction | None = None, *, to: str | None = None, value: int = 0, data: bytes = b"",
        gas: int | None = None, wait: bool = True,
    ) -> TxReceipt | str:
        """Signs and sends a transaction: a contract function call, or a plain transfer/deploy.

        Args:
            fn: the contract function (with its arguments bound); None sends ``data`` to ``to``
                (``to`` None deploys ``data`` as creation code).
            gas: a fixed gas limit; None estimates it (a revert during estimation raises at once).
            wait: wait for the receipt at the chain's confirmation depth; False returns the tx hash.

        Raises:
            ContractRevertError: the transaction reverts (in estimation or on chain).
            UnavailableError: the RPC endpoint kept failing.
            DeadlineExceededError: no receipt at the required depth within ``receipt_timeout_s``.
        """
        what = f"{self.settings.name} tx {fn.fn_name if fn is not None else ('deploy' if to is None else 'transfer')}"
        with self._lock:
            tx: dict[str, Any] = {"from": self.address, "value": value, "chainId": self.settings.chain_id}
            if fn is not None:
                # Placeholder fee fields keep web3 from filling its own (it would read a base fee that
                # Ethereum Classic blocks do not have); the real fees are set below.
                fee_stub = {"maxFeePerGas": 1, "maxPriorityFeePerGas": 1} if self.settings.eip1559 else {"gasPrice": 1}
                tx = self.retry("build", lambda: dict(fn.build_transaction({**tx, "gas": 1, **fee_stub})))  # type: ignore[arg-type]
                tx.pop("gas", None)
                for k in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice"):
                    tx.pop(k, None)
            else:
                tx["data"] = data
                if to is not None:
                    tx["to"] = to
            if gas is None:
                est = self.retry("estimate_gas", lambda: int(self.w3.eth.estimate_gas(tx, "pending")),  # type: ignore[arg-type]
                                 revert_label=what)
                # + 60k: checkpoints (votes, supply, stake) are keyed by the block's second; an estimate that saw one
                # already written in its second costs ~22k less per checkpoint than a block in a new second (on a
                # devnet whose pending block shares the latest one's second). Unused gas is not charged.
                gas = int(est * self.settings.gas_margin) + 60_000
            tx["gas"] = gas
            tx.update(self.retry("fees", self._fees))
            tx_hash = self._sign_and_send(tx, what)
        if not wait:
            return tx_hash
        return self.wait(tx_hash, what=what)

    def _sign_and_send(self, tx: dict[str, Any], what: str) -> str:
        from eth_utils import keccak

        assert self.account is not None
        for _ in range(3):
            if self.guard is not None:
                self.guard()
            tx["nonce"] = self.retry("nonce", self._nonce)
            raw = self._sign(tx, what)
            tx_hash: str = "0x" + bytes(keccak(raw)).hex()
            try:
                # Resending the same signed bytes after a lost reply is harmless: same hash, "already known".
                outcome = self.retry("send", lambda: self._send_raw(raw, what))  # noqa: B023 - called at once
            except BlendrError:
                self._next_nonce = None  # unknown whether it went out: re-read the nonce next time
                raise
            if outcome == "nonce conflict":
                if self._known(tx_hash):
                    # our own transaction: an earlier attempt got through but its reply was lost
                    self._next_nonce = int(tx["nonce"]) + 1
                    return tx_hash
                log.warning("nonce resync", chain=self.settings.name, nonce=tx["nonce"])
                self._next_nonce = None
                continue
            self._next_nonce = int(tx["nonce"]) + 1
            log.debug("tx sent", chain=self.settings.name, op=what, tx=tx_hash, nonce=tx["nonce"])
            return tx_hash
        raise ChainError(f"{what}: nonce kept conflicting after resync")

    def _sign(self, tx: dict[str, Any], what: str) -> bytes:
        """The signed bytes of ``tx``.

        Raises:
            ChainError: the account cannot sign it (a malformed field); the nonce is read again next time.
        """
        assert self.account is not None
        try:
            return bytes(self.account.sign_transaction(tx).raw_transaction)
        except Exception as exc:  # eth-account raises TypeError, ValueError, ValidationError, ... for bad fields
            self._next_nonce = None
            raise ChainError(f"{what}: cannot sign the transaction: {type(exc).__name__}: {exc}") from exc

    def _send_raw(self, raw: bytes, what: str) -> str:
        """Sends signed bytes: "sent" (also when the node already has them) or "nonce conflict".

        Raises:
            ChainError: the node refused the transaction for another reason (a transient refusal is re-raised
                as is, for :meth:`retry` to try again).
        """
        from web3.exceptions import Web3RPCError

        try:
            self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            # The node's words are the only signal JSON-RPC gives for these outcomes.
            text = str(exc).lower()
            if "already known" in text or "already imported" in text:
                return "sent"
            if "nonce too low" in text or "nonce is too low" in text or "replacement transaction underpriced" in text:
                return "nonce conflict"
            if is_transient(exc):
                raise
            raise ChainError(f"{what}: node refused the transaction: {exc}") from exc
        return "sent"

    def _known(self, tx_hash: str) -> bool:
        """Whether the node has ``tx_hash`` (pending or mined)."""
        return self.retry("get_transaction", lambda: self._transaction_or_none(tx_hash)) is not None

    def _transaction_or_none(self, tx_hash: str) -> Any:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def _receipt_or_none(self, tx_hash: str) -> TxReceipt | None:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def wait(self, tx_hash: str, *, what: str = "tx", confirmations: int | None = None) -> TxReceipt:
        """Waits until ``tx_hash`` is included and ``confirmations`` deep on the canonical chain.

        Raises:
            ContractRevertError: the transaction reverted (status 0).
            DeadlineExceededError: not confirmed within ``receipt_timeout_s``.
        """
        depth = self.settings.confirmations if confirmations is None else confirmations
        deadline = time.monotonic() + self.settings.receipt_timeout_s
        while True:
            receipt = self.retry("receipt", lambda: self._receipt_or_none(tx_hash))
            if receipt is not None:
                head = self.block_number()
                number = int(receipt["blockNumber"])
                if head - number + 1 >= depth:
                    block = self.retry("block", lambda: self.w3.eth.get_block(number))  # noqa: B023
                    if block["hash"] == receipt["blockHash"]:  # still canonical (not reorged out)
                        if receipt["status"] != 1:
                            raise self._explain_failure(tx_hash, receipt, what)
                        return receipt
            if time.monotonic() > deadline:
                raise DeadlineExceededError(
                    f"{what} {tx_hash}: not confirmed {depth} deep within {self.settings.receipt_timeout_s:.0f} s")
            if self._closed.wait(self.settings.poll_s):
                self._check_open(f"waiting for {what} {tx_hash}")

    def _explain_failure(self, tx_hash: str, receipt: TxReceipt, what: str) -> ContractRevertError:
        """Replays a failed transaction as a call at its block to recover the revert reason."""
        gas: Any = "?"

        def replay() -> None:
            nonlocal gas
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            gas = tx["gas"]
            call = {"from": tx["from"], "to": tx.get("to"), "data": tx["input"], "value": tx["value"], "gas": gas}
            self.w3.eth.call(call, int(receipt["blockNumber"]) - 1)  # type: ignore[arg-type]

        try:
            self.retry("replay", replay, revert_label=what)
        except ContractRevertError as exc:
            return ContractRevertError(str(exc), error=exc.error, data=exc.data, tx_hash=tx_hash)
        except BlendrError as exc:  # e.g. a node without the historical state: the receipt still says it reverted
            log.warning("revert reason unknown", chain=self.settings.name, tx=tx_hash, error=str(exc)[:200])
        return ContractRevertError(f"{what} {tx_hash} reverted (gas used {receipt.get('gasUsed', '?')} of {gas})",
                                   tx_hash=tx_hash)

    def deploy(self, name: str, *args: Any) -> Contract:
        """Deploys contract ``name`` (compiled for this chain) and returns it once confirmed.

        Raises:
            ChainError: ``args`` do not fit the constructor (and what :meth:`transact` raises).
        """
        art = artifacts.load(self.settings.name, name)
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        try:
            data = bytes.fromhex(factory.constructor(*args).data_in_transaction[2:])
        except Exception as exc:  # web3 / eth-abi: arguments that do not fit the constructor
            raise ChainError(f"{self.settings.name}: cannot encode {name}'s constructor: {type(exc).__name__}: "
                             f"{str(exc)[:300]}") from exc
        receipt = self.transact(to=None, data=data)
        assert not isinstance(receipt, str)
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError(f"{self.settings.name}: deploying {name} produced no contract address")
        log.info("deployed", chain=self.settings.name, contract=name, address=address, gas=receipt["gasUsed"])
        return self.contract(name, address)
