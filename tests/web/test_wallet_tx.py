"""The test wallet sends transactions and proxies reads as a real wallet does, against a devnet anvil: it fills the
nonce, the gas (estimated) and EIP-1559 fees from the chain, signs with its key, sends the raw transaction and keeps
it; read methods go to its node, and the node's refusals reach the page with their JSON-RPC code."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from playwright.async_api import Page

from blendr.chain.anvil import AnvilProcess
from tests.web.test_harness import call, open_page
from tests.web.wallet import DevWallet

pytestmark = [pytest.mark.timeout(120)]


async def test_the_wallet_sends_transactions_and_proxies_reads(
        chains: tuple[AnvilProcess, AnvilProcess], wallet: DevWallet, page: Page) -> None:
    eth, _ = chains
    wallet.rpc_url = eth.url
    to = Account.create().address
    await open_page(page)
    # nothing before the site is connected (4100), and nothing sent
    out = await call(page, "eth_sendTransaction", [{"from": wallet.address, "to": to, "value": "0x1"}])
    assert (out["ok"], out["code"]) == (False, 4100) and wallet.transactions == []
    await call(page, "eth_requestAccounts")
    start = await call(page, "eth_blockNumber")
    nonce = int((await call(page, "eth_getTransactionCount", [wallet.address, "pending"]))["value"], 16)

    hashes = []
    for wei in (10**15, 2 * 10**15):  # the page gives neither gas, nor nonce, nor fees: the wallet fills them
        out = await call(page, "eth_sendTransaction", [{"from": wallet.address, "to": to, "value": hex(wei)}])
        assert out["ok"], out
        hashes.append(out["value"])
    assert [t.hash for t in wallet.transactions] == hashes
    first, second = (t.signed for t in wallet.transactions)
    assert (first["nonce"], second["nonce"]) == (nonce, nonce + 1)
    assert first["chainId"] == 31337 and first["type"] == 2 and first["gas"] == 21_000
    assert first["maxFeePerGas"] >= first["maxPriorityFeePerGas"] > 0
    assert wallet.transactions[0].request == {"from": wallet.address, "to": to, "value": hex(10**15)}

    receipt: dict[str, Any] = (await call(page, "eth_getTransactionReceipt", [hashes[1]]))["value"]
    assert receipt["status"] == "0x1" and receipt["from"].lower() == wallet.address.lower()
    assert int(receipt["blockNumber"], 16) > int(start["value"], 16)
    assert int((await call(page, "eth_getBalance", [to, "latest"]))["value"], 16) == 3 * 10**15
    assert (await call(page, "eth_call", [{"to": to, "data": "0x"}, "latest"]))["value"] == "0x"
    assert int((await call(page, "eth_estimateGas", [{"from": wallet.address, "to": to}]))["value"], 16) == 21_000
    assert int((await call(page, "eth_gasPrice"))["value"], 16) > 0

    # the node's refusal keeps its JSON-RPC code (a page decodes reverts from it); nothing recorded as sent
    out = await call(page, "eth_sendTransaction", [{"from": wallet.address, "to": to, "value": hex(10**30)}])
    assert out["ok"] is False and out["code"] not in (4001, 4100, 4200) and "fund" in out["message"].lower()
    assert len(wallet.transactions) == 2
    # the user declines: 4001, nothing sent
    wallet.reject.add("eth_sendTransaction")
    out = await call(page, "eth_sendTransaction", [{"from": wallet.address, "to": to, "value": "0x1"}])
    assert (out["ok"], out["code"]) == (False, 4001) and len(wallet.transactions) == 2
    wallet.reject.clear()
    # on a chain the wallet has no node for: 4901 (disconnected), for reads and sends alike
    await wallet.set_chain(1)
    for method, params in (("eth_blockNumber", []),
                           ("eth_sendTransaction", [{"from": wallet.address, "to": to, "value": "0x1"}])):
        out = await call(page, method, params)
        assert (out["ok"], out["code"]) == (False, 4901), (method, out)
    assert len(wallet.transactions) == 2
    # without a node the wallet neither sends nor reads (4200)
    wallet.rpc_url = None
    await wallet.set_chain(31337)
    assert (await call(page, "eth_blockNumber"))["code"] == 4200
