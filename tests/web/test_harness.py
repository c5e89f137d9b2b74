"""The browser harness itself, in a real Chromium without the King: the injected devnet wallet answers as an EIP-1193
wallet would (signatures recover to its key's address), the page log catches what went wrong, and the figures'
stamps come from the page."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from playwright.async_api import BrowserContext, Page

from tests.e2e.net import ACCOUNTS
from tests.integration.helpers import wait_for
from tests.web.browser import (
    Figures,
    PageLog,
    TextWatch,
    event_delay_s,
    js_gzip_bytes,
    ready_ms,
    screenshot,
)
from tests.web.wallet import DevWallet, recover_personal, recover_typed

pytestmark = [pytest.mark.timeout(120)]

ORIGIN = "http://dapp.test/"  # the test pages' address (served by page.route, never by a network)

# a call from the page's JS: {ok, value} or {ok: false, code, message, isError} (a rejected ProviderRpcError)
CALL = """async ([method, params]) => {
  try { return { ok: true, value: await window.ethereum.request({ method, params }) }; }
  catch (e) { return { ok: false, code: e.code, message: e.message, isError: e instanceof Error }; }
}"""


async def open_page(page: Page, body: str = "", title: str = "test") -> None:
    """Navigates to a test page (a real navigation, so the context's init scripts run in it)."""
    html = f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    await page.route(ORIGIN, lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    await page.goto(ORIGIN)


async def call(page: Page, method: str, params: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = await page.evaluate(CALL, [method, params])
    return out


def typed(chain_id: int) -> dict[str, Any]:
    """EIP-712 data the way viem sends it: a JSON string, uint256 values as decimal strings."""
    return {"types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                       {"name": "chainId", "type": "uint256"},
                                       {"name": "verifyingContract", "type": "address"}],
                      "Intent": [{"name": "renter", "type": "address"}, {"name": "maxPrice", "type": "uint256"},
                                 {"name": "jobId", "type": "bytes32"}]},
            "primaryType": "Intent",
            "domain": {"name": "GPURental", "version": "1", "chainId": chain_id,
                       "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
            "message": {"renter": ACCOUNTS["renter"].address, "maxPrice": "1000000000000000000000000",
                        "jobId": "0x" + "ab" * 32}}


async def test_the_wallet_connects_and_reports_its_chain(wallet: DevWallet, page: Page, page_log: PageLog) -> None:
    await open_page(page)
    await page.evaluate("""() => { window.seen = [];
        window.ethereum.on('accountsChanged', (a) => window.seen.push(['accountsChanged', a])); }""")
    assert await page.evaluate("() => window.ethereum.isMetaMask") is False
    assert await call(page, "eth_accounts") == {"ok": True, "value": []}
    assert await call(page, "eth_chainId") == {"ok": True, "value": "0x7a69"}
    assert await call(page, "eth_requestAccounts") == {"ok": True, "value": [wallet.address]}
    assert await call(page, "eth_accounts") == {"ok": True, "value": [wallet.address]}
    assert await page.evaluate("() => window.seen") == [["accountsChanged", [wallet.address]]]
    assert wallet.methods() == ["eth_accounts", "eth_chainId", "eth_requestAccounts", "eth_accounts"]
    page_log.assert_clean()


async def test_personal_sign_is_eip191_by_the_wallet_key(wallet: DevWallet, page: Page) -> None:
    await open_page(page)
    await call(page, "eth_requestAccounts")
    text = "Sign in to BlendrChain\nNonce: 42"
    hexed = "0x" + text.encode().hex()
    out = await call(page, "personal_sign", [hexed, wallet.address.lower()])
    assert out["ok"], out
    assert recover_personal(text, out["value"]) == ACCOUNTS["renter"].address
    assert [(s.text, s.signature) for s in wallet.personal] == [(text, out["value"])]
    # a message given as text (not 0x-hex) is signed as its UTF-8 bytes
    out = await call(page, "personal_sign", ["plain words", wallet.address])
    assert recover_personal("plain words", out["value"]) == wallet.address


async def test_typed_data_v4_is_signed_in_full_and_recorded(wallet: DevWallet, page: Page) -> None:
    await open_page(page)
    await call(page, "eth_requestAccounts")
    data = typed(31337)
    out = await call(page, "eth_signTypedData_v4", [wallet.address, json.dumps(data)])
    assert out["ok"], out
    assert recover_typed(data, out["value"]) == ACCOUNTS["renter"].address
    # what the user was shown: the whole typed data, as the page sent it
    [shown] = wallet.typed_data
    assert shown.data == data and shown.signature == out["value"]
    # a domain on another chain than the wallet's is refused, as MetaMask refuses it
    out = await call(page, "eth_signTypedData_v4", [wallet.address, json.dumps(typed(1))])
    assert out["ok"] is False and out["code"] == -32603 and "must match the active chainId" in out["message"]
    assert len(wallet.typed_data) == 1


async def test_switching_chains_emits_chain_changed(wallet: DevWallet, page: Page) -> None:
    await open_page(page)
    await page.evaluate("""() => { window.chains = [];
        window.ethereum.on('chainChanged', (c) => window.chains.push(c)); }""")
    assert (await call(page, "wallet_switchEthereumChain", [{"chainId": "0x3f"}]))["ok"]
    assert await call(page, "eth_chainId") == {"ok": True, "value": "0x3f"}
    assert wallet.chain_id == 63
    # the user switches from the wallet itself (a test putting the wallet on the wrong chain)
    await wallet.set_chain(1)
    assert await page.evaluate("() => window.chains") == ["0x3f", "0x1"]
    # a wallet that knows only some chains answers 4902 for another
    wallet.chains = {31337, 1}
    out = await call(page, "wallet_switchEthereumChain", [{"chainId": "0x3f"}])
    assert (out["ok"], out["code"]) == (False, 4902)


async def test_refusals_carry_eip1193_codes(wallet: DevWallet, page: Page) -> None:
    await open_page(page)
    # unsupported methods: 4200, as a ProviderRpcError (an Error)
    out = await call(page, "eth_sendTransaction", [{"to": wallet.address}])
    assert (out["ok"], out["code"], out["isError"]) == (False, 4200, True)
    # signing before the site is connected: 4100
    out = await call(page, "personal_sign", ["0x00", wallet.address])
    assert (out["ok"], out["code"]) == (False, 4100)
    # the user declines: 4001
    wallet.reject.add("eth_requestAccounts")
    out = await call(page, "eth_requestAccounts")
    assert (out["ok"], out["code"]) == (False, 4001)
    assert not wallet.connected
    wallet.reject.clear()
    await call(page, "eth_requestAccounts")
    # another account than the wallet's: 4100
    other = Account.create()
    out = await call(page, "personal_sign", ["0x00", other.address])
    assert (out["ok"], out["code"]) == (False, 4100)
    assert [r.error.code for r in wallet.requests if r.error] == [4200, 4100, 4001, 4100]


async def test_account_switch_and_listener_removal(wallet: DevWallet, page: Page) -> None:
    await open_page(page)
    await call(page, "eth_requestAccounts")
    await page.evaluate("""() => { window.accs = [];
        window.f = (a) => window.accs.push(a); window.ethereum.on('accountsChanged', window.f); }""")
    other = Account.create()
    await wallet.set_account(other)
    assert await call(page, "eth_accounts") == {"ok": True, "value": [other.address]}
    await page.evaluate("() => window.ethereum.removeListener('accountsChanged', window.f)")
    await wallet.disconnect()
    assert await page.evaluate("() => window.accs") == [[other.address]]
    assert await call(page, "eth_accounts") == {"ok": True, "value": []}


async def test_the_wallet_announces_itself_by_eip6963(wallet: DevWallet, page: Page) -> None:
    await open_page(page)
    info = await page.evaluate("""() => new Promise((resolve) => {
        window.addEventListener('eip6963:announceProvider',
            (e) => resolve({ ...e.detail.info, same: e.detail.provider === window.ethereum }));
        window.dispatchEvent(new Event('eip6963:requestProvider'));
    })""")
    assert info["rdns"] == "org.blendrchain.devwallet" and info["same"] is True


async def test_a_page_without_the_wallet_has_no_ethereum(context: BrowserContext, page: Page) -> None:
    await open_page(page)
    assert await page.evaluate("() => typeof window.ethereum") == "undefined"


async def test_the_page_log_catches_errors_and_failed_requests(page: Page, page_log: PageLog) -> None:
    await page.route(ORIGIN + "missing.js", lambda route: route.fulfill(status=404, body="no"))
    await page.route(ORIGIN + "gone", lambda route: route.abort("connectionrefused"))
    await open_page(page, "<script>console.error('boom'); setTimeout(() => { throw new Error('late'); });</script>"
                          "<script src='/missing.js'></script>")
    await page.evaluate("() => fetch('/gone').catch(() => {})")
    await wait_for(lambda: len(page_log.problems()) >= 4, 10, "the page's four problems to reach the log")
    problems = page_log.problems()
    assert any("console.error: boom" in p for p in problems), problems
    assert any(p.startswith("uncaught: ") and "late" in p for p in problems), problems
    assert any("missing.js -> HTTP 404" in p for p in problems), problems
    assert any("GET http://dapp.test/gone: " in p for p in problems), problems
    with pytest.raises(AssertionError, match="boom"):
        page_log.assert_clean("missing.js", "gone", "late", "404")
    page_log.assert_clean("boom", "missing.js", "gone", "late", "404")


async def test_ready_and_text_stamps_come_from_the_page(page: Page, tmp_path: Path) -> None:
    await open_page(page, "<div id=log></div><script>"
                          "setTimeout(() => { document.body.dataset.ready = '1'; }, 50);"
                          "window.addLine = (t) => { const p = document.createElement('p'); p.textContent = t;"
                          " document.getElementById('log').append(p); };</script>")
    ms = await ready_ms(page)
    assert 0 < ms < 30_000
    watch = await TextWatch(page, "step 3/6").start()
    before = await page.evaluate("() => Date.now()") / 1000
    await page.evaluate("() => window.addLine('step 3/6')")
    seen = await watch.seen_at()
    after = await page.evaluate("() => Date.now()") / 1000
    assert before <= seen <= after
    path = await screenshot(page, tmp_path / "screens", "ready page")
    assert path.name == "01-ready-page.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_event_delay_is_from_the_kings_stamp_to_the_page() -> None:
    ev = SimpleNamespace(message="step 3/6", ts=1000.25)
    assert event_delay_s(1000.75, [SimpleNamespace(message="step 2/6", ts=999.0), ev], "step 3/6") == 0.5
    with pytest.raises(AssertionError, match="no job event"):
        event_delay_s(1000.0, [ev], "step 9/6")


def test_js_gzip_bytes_sums_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    a, b = b"const a = 1;\n" * 500, b"export {};\n"
    (tmp_path / "assets" / "a.js").write_bytes(a)
    (tmp_path / "assets" / "b.js").write_bytes(b)
    (tmp_path / "assets" / "c.css").write_bytes(b"body{}" * 100)
    sizes = js_gzip_bytes(tmp_path)
    assert sizes["a.js"] == len(gzip.compress(a, 9, mtime=0)) and sizes["total"] == sizes["a.js"] + sizes["b.js"]
    assert "c.css" not in sizes


def test_figures_are_written_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = Figures(tmp_path / "out" / "figures.json")
    assert f.write() is None
    f.record("ready_ms", 123.4, "ms", view="offers")
    path = f.write()
    assert path is not None and json.loads(path.read_text()) == {"ready_ms": {"value": 123.4, "unit": "ms",
                                                                              "view": "offers"}}
    assert "figure ready_ms: 123.4 ms" in capsys.readouterr().out
