"""Errors the page shows without any provider (the King alone, ``dapp_king``): each with its ``data-error-kind``
and a message that says what to do — the wallet on another chain (and the "Switch network" button that fixes it),
no wallet in the browser, and the King gone away (then back: Retry works). The errors that need a quote (max price,
balance, folder size) are in test_renter_flow.py, on the network with providers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.integration.helpers import wait_for
from tests.web.browser import VIEWPORT, PageLog
from tests.web.conftest import Dapp
from tests.web.steps import error_shown, open_view, tid
from tests.web.wallet import DevWallet

pytestmark = [pytest.mark.timeout(300)]

Shot = Callable[[Page, str], Awaitable[Path]]


async def test_a_wallet_on_another_chain_is_told_and_switched_back(dapp_king: Dapp, wallet: DevWallet, page: Page,
                                                                   page_log: PageLog, shot: Shot) -> None:
    await open_view(page, dapp_king.url, "wallet")  # the wallet view connects the wallet and signs in
    await expect(tid(page, "wallet-view-address")).to_contain_text(wallet.address)
    await wallet.set_chain(1)
    alert = await error_shown(page, "wrong-chain", "Your wallet is on chain 1, but this network runs on chain 31337.")
    await expect(tid(page, "wallet-chain")).to_have_text(" chain 1")
    await shot(page, "wrong-chain")
    await tid(page, "switch-network").click()
    await expect(alert).to_be_hidden()
    await expect(tid(page, "wallet-chain")).to_have_text(" chain 31337")
    assert wallet.chain_id == 31337
    assert ["wallet_switchEthereumChain", [{"chainId": "0x7a69"}]] in [[r.method, r.params] for r in wallet.requests]
    # the wallet view draws again for the wallet on the right chain
    await expect(tid(page, "wallet-view-address")).to_contain_text(wallet.address)
    page_log.assert_clean()


async def test_without_a_wallet_the_page_says_to_install_one(dapp_king: Dapp, browser: Browser,
                                                             shot: Shot) -> None:
    ctx = await browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)  # no wallet injected
    try:
        page = await ctx.new_page()
        await open_view(page, dapp_king.url, "offers")
        assert await page.evaluate("() => typeof window.ethereum") == "undefined"
        await tid(page, "connect-wallet").click()
        await error_shown(page, "no-wallet", "No Ethereum wallet was found in this browser. Install a wallet extension")
        await expect(tid(page, "error-message")).to_contain_text("or use a devnet key")  # the devnet offers one
        await shot(page, "no-wallet")
        # the pages that need a wallet say the same
        await page.goto(dapp_king.url + "#/wallet")
        await error_shown(page, "no-wallet", "No Ethereum wallet was found")
        await expect(tid(page, "wallet-unavailable")).to_be_visible()
    finally:
        await ctx.close()


async def test_the_king_unreachable_then_back(dapp_king: Dapp, wallet: DevWallet, page: Page, page_log: PageLog,
                                              shot: Shot) -> None:
    net = dapp_king.net
    await open_view(page, dapp_king.url, "network")
    await expect(tid(page, "network-name")).to_have_text("devnet")
    assert net.king is not None
    port = net.king.port
    await net.king.stop()
    net.king = None
    await tid(page, "nav-offers").click()
    await error_shown(page, "king-unreachable", f"The King at {dapp_king.url.rstrip('/')} is not answering.")
    await shot(page, "king-unreachable")
    # the King comes back on the same addresses (its home and store kept): Retry loads the view
    await net.start_king(port)
    await wait_for(lambda: net.king is not None and net.king.web is not None, 30, "the King's web listener")
    await tid(page, "error-retry").click()
    await expect(tid(page, "error")).to_be_hidden()
    await expect(page.locator('[data-testid=view][data-view="offers"]')).to_have_attribute("data-ready", "1")
    await expect(tid(page, "offers-empty")).to_be_visible()  # no provider in this network
    page_log.assert_clean(r"ERR_CONNECTION_REFUSED", r"Failed to load resource")
