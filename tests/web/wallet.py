"""A renter's wallet for the dApp's browser tests: an EIP-1193 provider in the page, answered by a devnet key.

``DevWallet.install(context)`` puts ``window.ethereum`` into every page of a Playwright browser context (before the
page's own scripts run) and announces it by EIP-6963 too. Each ``request({method, params})`` goes through a
Playwright binding to Python, where an ``eth_account`` LocalAccount answers as a wallet would:

- ``eth_requestAccounts`` connects (emits ``accountsChanged``), ``eth_accounts`` (``[]`` until connected);
- ``eth_chainId`` (``chain_id``, settable so a test can put the wallet on the wrong chain);
- ``personal_sign`` (EIP-191), ``eth_signTypedData_v4`` (EIP-712, refused when the domain's chainId is not the
  wallet's chain, as MetaMask does), each recorded in full as the user would have been shown it;
- ``wallet_switchEthereumChain`` (emits ``chainChanged``; 4902 for a chain outside ``chains`` when given);
- with ``rpc_url`` (the chain ``chain_id``'s node): ``eth_sendTransaction`` as a wallet sends one (nonce, gas
  estimate and EIP-1559 fees filled from the chain, signed with the key, sent raw; each kept in ``transactions``),
  and the read methods a wallet proxies to its node (``READ_METHODS``: ``eth_call``, receipts, block number, gas
  estimates and fees, balances). The node's JSON-RPC errors reach the page with their code and data (a revert
  stays decodable); on another chain than the node's these answer 4901 (disconnected from that chain);
- anything else: 4200 "unsupported method" (EIP-1193).

Errors reach the page as ``ProviderRpcError`` (an ``Error`` with ``code`` and ``data``). ``reject`` names methods the
"user" declines (4001). Guarantees: the page never sees the key; every request is kept in ``requests`` in order.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from playwright.async_api import BrowserContext

BINDING = "__blendrWalletRequest"

# EIP-1193 / EIP-1474 codes a wallet answers with
USER_REJECTED = 4001
UNAUTHORIZED = 4100
UNSUPPORTED_METHOD = 4200
CHAIN_DISCONNECTED = 4901  # the wallet is on a chain it has no node for
UNRECOGNIZED_CHAIN = 4902  # wallet_switchEthereumChain to a chain the wallet does not know (MetaMask's code)
INVALID_PARAMS = -32602
INTERNAL = -32603

INIT_SCRIPT = """
(() => {
  if (window.ethereum && window.ethereum.isBlendrDevWallet) return;
  const listeners = new Map();
  const emit = (event, arg) => {
    for (const fn of [...(listeners.get(event) || [])]) {
      try { fn(arg); } catch (e) { console.error("wallet listener for " + event + " threw", e); }
    }
  };
  class ProviderRpcError extends Error {
    constructor(code, message, data) { super(message); this.name = "ProviderRpcError"; this.code = code; this.data = data; }
  }
  const provider = {
    isMetaMask: false,
    isBlendrDevWallet: true,
    isConnected() { return true; },
    async request(args) {
      if (!args || typeof args.method !== "string") {
        throw new ProviderRpcError(-32600, "invalid request: expected {method, params}");
      }
      const reply = await window.__BINDING__(args.method, args.params === undefined ? null : args.params);
      for (const [event, arg] of reply.emit || []) emit(event, arg);
      if (reply.error) throw new ProviderRpcError(reply.error.code, reply.error.message, reply.error.data);
      return reply.result;
    },
    on(event, fn) {
      if (!listeners.has(event)) listeners.set(event, []);
      listeners.get(event).push(fn);
      return provider;
    },
    removeListener(event, fn) {
      const fns = listeners.get(event) || [];
      const i = fns.indexOf(fn);
      if (i >= 0) fns.splice(i, 1);
      return provider;
    },
    listenerCount(event) { return (listeners.get(event) || []).length; },
    __emit: emit,
  };
  provider.off = provider.removeListener;
  Object.defineProperty(window, "ethereum", { value: provider, configurable: true, writable: false });
  const info = Object.freeze({
    uuid: "6f1b7c7e-3d6a-4a49-9a57-b1e2d7c0de16", name: "BlendrChain devnet wallet", rdns: "org.blendrchain.devwallet",
    icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='8' height='8'/%3E",
  });
  const announce = () => window.dispatchEvent(
    new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
""".replace("__BINDING__", BINDING)


class WalletError(Exception):
    """An EIP-1193 error the wallet answers a request with (``code`` as the page sees it)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


@dataclass
class WalletRequest:
    """One request the page made: its method and params, and the answer (``result`` or ``error``)."""

    method: str
    params: Any
    result: Any = None
    error: WalletError | None = None


@dataclass
class TypedDataSignature:
    """An ``eth_signTypedData_v4`` the user signed: the typed data in full, as the wallet showed it."""

    address: str
    data: dict[str, Any]
    signature: str


@dataclass
class PersonalSignature:
    """A ``personal_sign`` the user signed: the message as shown (UTF-8 text when it is text) and its bytes."""

    address: str
    text: str
    raw: bytes
    signature: str


@dataclass
class SentTransaction:
    """An ``eth_sendTransaction`` the user approved: what the page asked for, what was signed, and its hash."""

    request: dict[str, Any]  # as the page sent it (hex quantities)
    signed: dict[str, Any]  # what the key signed (ints): chainId, nonce, gas, fees, to, value, data
    hash: str

    @property
    def to(self) -> str:
        """The recipient ("" for a contract creation)."""
        to = self.signed.get("to")
        return to if isinstance(to, str) else ""

    @property
    def data(self) -> bytes:
        return bytes.fromhex(str(self.signed.get("data", "0x"))[2:])


# The read methods a wallet answers from its node (MetaMask forwards these to its RPC).
READ_METHODS = frozenset({
    "eth_blockNumber", "eth_call", "eth_estimateGas", "eth_feeHistory", "eth_gasPrice", "eth_getBalance",
    "eth_getBlockByNumber", "eth_getCode", "eth_getTransactionByHash", "eth_getTransactionCount",
    "eth_getTransactionReceipt", "eth_maxPriorityFeePerGas",
})


@dataclass
class DevWallet:
    """An injected EIP-1193 wallet holding ``account`` (a LocalAccount), on chain ``chain_id``.

    ``chains``: the chains ``wallet_switchEthereumChain`` accepts (empty: any). ``reject``: methods the user
    declines (answered 4001). ``rpc_url``: the node of chain ``chain_id`` (None: no transactions, no reads).
    Records: ``requests`` (all), ``typed_data`` and ``personal`` (what was signed), ``transactions`` (what was sent).
    """

    account: Any
    chain_id: int = 31337
    rpc_url: str | None = None
    chains: set[int] = field(default_factory=set)
    reject: set[str] = field(default_factory=set)
    connected: bool = False
    requests: list[WalletRequest] = field(default_factory=list)
    typed_data: list[TypedDataSignature] = field(default_factory=list)
    personal: list[PersonalSignature] = field(default_factory=list)
    transactions: list[SentTransaction] = field(default_factory=list)
    _send_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _node_chain_id: int | None = field(default=None, repr=False)
    _contexts: list[BrowserContext] = field(default_factory=list, repr=False)

    @property
    def address(self) -> str:
        return str(self.account.address)

    async def install(self, context: BrowserContext) -> None:
        """Injects the wallet into every page ``context`` opens from now on (pages already open: after their next
        navigation)."""
        await context.expose_binding(BINDING, self._binding)
        await context.add_init_script(INIT_SCRIPT)
        self._contexts.append(context)

    def methods(self) -> list[str]:
        """The methods the page requested, in order."""
        return [r.method for r in self.requests]

    # ------------------------------------------------------------------ what a test does to the wallet
    async def set_chain(self, chain_id: int) -> None:
        """The user switches the wallet to ``chain_id`` (emits ``chainChanged`` in every page)."""
        self.chain_id = chain_id
        await self._emit("chainChanged", hex(chain_id))

    async def set_account(self, account: Any) -> None:
        """The user switches to another account (emits ``accountsChanged`` when connected)."""
        self.account = account
        if self.connected:
            await self._emit("accountsChanged", [self.address])

    async def disconnect(self) -> None:
        """The user disconnects the site (emits ``accountsChanged`` with no account)."""
        self.connected = False
        await self._emit("accountsChanged", [])

    async def _emit(self, event: str, arg: Any) -> None:
        for ctx in self._contexts:
            for page in ctx.pages:
                if not page.is_closed():
                    await page.evaluate("([e, a]) => window.ethereum && window.ethereum.__emit(e, a)", [event, arg])

    # ------------------------------------------------------------------ answering the page
    async def _binding(self, source: Any, method: str, params: Any) -> dict[str, Any]:
        req = WalletRequest(method, params)
        self.requests.append(req)
        emits: list[tuple[str, Any]] = []
        try:
            if method == "eth_sendTransaction" or method in READ_METHODS:
                # the node's answers are blocking HTTP: off the event loop, where the King of the test runs too
                req.result = await asyncio.to_thread(self.answer, method, params, emits)
            else:
                req.result = self.answer(method, params, emits)
        except WalletError as exc:
            req.error = exc
            return {"error": {"code": exc.code, "message": exc.message, "data": exc.data}, "emit": emits}
        return {"result": req.result, "emit": emits}

    def answer(self, method: str, params: Any, emits: list[tuple[str, Any]]) -> Any:
        """The wallet's answer to one request (events to emit in the page are appended to ``emits``).

        Raises:
            WalletError: the request is refused (codes as EIP-1193 and MetaMask give them).
        """
        handler = _HANDLERS.get(method)
        if handler is None and method in READ_METHODS and self.rpc_url is not None:
            return self.node(method, _as_list(params))
        if handler is None:
            raise WalletError(UNSUPPORTED_METHOD, f"the method {method} is not supported by this wallet")
        if method in self.reject:
            raise WalletError(USER_REJECTED, "User rejected the request.")
        return handler(self, _as_list(params), emits)

    def node(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call to the wallet's node, as the wallet makes it for the page.

        Raises:
            WalletError: 4200 without ``rpc_url``; 4901 when the wallet is on another chain than its node's;
                the node's own error (code, message, data) when it refused; -32603 when it did not answer.
        """
        if self.rpc_url is None:
            raise WalletError(UNSUPPORTED_METHOD, f"the method {method} needs the wallet's node (no rpc_url)")
        if method != "eth_chainId" and self.chain_id != self._node_chain():
            raise WalletError(CHAIN_DISCONNECTED, f"the wallet has no node for chain {self.chain_id}")
        return _json_rpc(self.rpc_url, method, params)

    def _node_chain(self) -> int:
        if self._node_chain_id is None:
            self._node_chain_id = int(self.node("eth_chainId", []), 16)
        return self._node_chain_id

    def _send_transaction(self, params: list[Any], emits: list[tuple[str, Any]]) -> str:
        if self.rpc_url is None:
            raise WalletError(UNSUPPORTED_METHOD, "eth_sendTransaction needs the wallet's node (no rpc_url)")
        if not params or not isinstance(params[0], dict):
            raise WalletError(INVALID_PARAMS, "expected [{from, to, data, value, ...}]")
        req: dict[str, Any] = params[0]
        self._signer(req.get("from"))
        q = _quantity
        with self._send_lock:  # one nonce per transaction, as a wallet serialises its sends
            call = {k: v for k, v in req.items() if k in {"from", "to", "data", "input", "value"}}
            tx: dict[str, Any] = {
                "chainId": self.chain_id,
                "nonce": q(req["nonce"]) if "nonce" in req else
                int(self.node("eth_getTransactionCount", [self.address, "pending"]), 16),
                "to": req.get("to") or b"",
                "value": q(req.get("value", "0x0")),
                "data": req.get("data") or req.get("input") or "0x",
                "gas": q(req["gas"]) if "gas" in req else int(self.node("eth_estimateGas", [call]), 16),
            }
            if "gasPrice" in req:
                tx["gasPrice"] = q(req["gasPrice"])
            else:
                latest = self.node("eth_getBlockByNumber", ["latest", False])
                base = int(latest.get("baseFeePerGas") or "0x0", 16)
                tip = q(req["maxPriorityFeePerGas"]) if "maxPriorityFeePerGas" in req else \
                    int(self.node("eth_maxPriorityFeePerGas", []), 16)
                tx["maxPriorityFeePerGas"] = tip
                tx["maxFeePerGas"] = q(req["maxFeePerGas"]) if "maxFeePerGas" in req else 2 * base + tip
                tx["type"] = 2
            signed = self.account.sign_transaction(tx)
            tx_hash = str(self.node("eth_sendRawTransaction", [_hex(signed.raw_transaction)]))
        self.transactions.append(SentTransaction(dict(req), tx, tx_hash))
        return tx_hash

    def _request_accounts(self, params: list[Any], emits: list[tuple[str, Any]]) -> list[str]:
        if not self.connected:
            self.connected = True
            emits.append(("accountsChanged", [self.address]))
        return [self.address]

    def _accounts(self, params: list[Any], emits: list[tuple[str, Any]]) -> list[str]:
        return [self.address] if self.connected else []

    def _chain(self, params: list[Any], emits: list[tuple[str, Any]]) -> str:
        return hex(self.chain_id)

    def _switch_chain(self, params: list[Any], emits: list[tuple[str, Any]]) -> None:
        try:
            chain_id = int(params[0]["chainId"], 16)
        except (IndexError, KeyError, TypeError, ValueError):
            raise WalletError(INVALID_PARAMS, "expected [{chainId: '0x…'}]") from None
        if self.chains and chain_id not in self.chains:
            raise WalletError(UNRECOGNIZED_CHAIN, f"Unrecognized chain ID {hex(chain_id)}.")
        if chain_id != self.chain_id:
            self.chain_id = chain_id
            emits.append(("chainChanged", hex(chain_id)))
        return None

    def _signer(self, address: Any) -> None:
        if not self.connected or not isinstance(address, str) or address.lower() != self.address.lower():
            raise WalletError(UNAUTHORIZED, f"the account {address} has not been authorized by the user")

    def _personal_sign(self, params: list[Any], emits: list[tuple[str, Any]]) -> str:
        if len(params) < 2 or not isinstance(params[0], str):
            raise WalletError(INVALID_PARAMS, "expected [message, address]")
        message, address = params[0], params[1]
        self._signer(address)
        raw = bytes.fromhex(message[2:]) if message.startswith("0x") else message.encode()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = message
        signature = _hex(self.account.sign_message(encode_defunct(primitive=raw)).signature)
        self.personal.append(PersonalSignature(self.address, text, raw, signature))
        return signature

    def _sign_typed_data(self, params: list[Any], emits: list[tuple[str, Any]]) -> str:
        if len(params) < 2:
            raise WalletError(INVALID_PARAMS, "expected [address, typedData]")
        address, data = params[0], params[1]
        self._signer(address)
        try:
            full = json.loads(data) if isinstance(data, str) else data
            domain_chain = full.get("domain", {}).get("chainId")
            if domain_chain is not None and int(str(domain_chain), 0) != self.chain_id:
                raise WalletError(INTERNAL, f'Provided chainId "{int(str(domain_chain), 0)}" must match the active '
                                            f'chainId "{self.chain_id}"')
            signable = encode_typed_data(full_message=full)
        except WalletError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise WalletError(INVALID_PARAMS, f"invalid typed data: {exc}") from None
        signature = _hex(self.account.sign_message(signable).signature)
        self.typed_data.append(TypedDataSignature(self.address, full, signature))
        return signature


_HANDLERS = {
    "eth_requestAccounts": DevWallet._request_accounts,
    "eth_accounts": DevWallet._accounts,
    "eth_chainId": DevWallet._chain,
    "wallet_switchEthereumChain": DevWallet._switch_chain,
    "personal_sign": DevWallet._personal_sign,
    "eth_signTypedData_v4": DevWallet._sign_typed_data,
    "eth_sendTransaction": DevWallet._send_transaction,
}


def _quantity(v: Any) -> int:
    return int(v, 16) if isinstance(v, str) else int(v)


def _json_rpc(url: str, method: str, params: list[Any], timeout: float = 30.0) -> Any:
    """One JSON-RPC call to ``url``; the node's error is raised as a WalletError with its code and data."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        raise WalletError(INTERNAL, f"{method}: the wallet's node at {url} did not answer: {exc}") from None
    if "error" in answer:
        err = answer["error"]
        raise WalletError(int(err.get("code", INTERNAL)), str(err.get("message", "")), err.get("data"))
    return answer.get("result")


def _as_list(params: Any) -> list[Any]:
    if params is None:
        return []
    return list(params) if isinstance(params, list | tuple) else [params]


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def recover_personal(message: bytes | str, signature: str) -> str:
    """The address that signed ``message`` with personal_sign (EIP-191)."""
    raw = message.encode() if isinstance(message, str) else message
    return str(Account.recover_message(encode_defunct(primitive=raw), signature=signature))


def recover_typed(data: dict[str, Any], signature: str) -> str:
    """The address that signed the EIP-712 ``data`` (the full message: types, primaryType, domain, message)."""
    return str(Account.recover_message(encode_typed_data(full_message=data), signature=signature))

