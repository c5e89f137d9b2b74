"""The dApp's browser tests: the King serving the page (king.web_listen) on the devnet, and a real Chromium.

Fixtures (all per test; the chains are the module's, reverted after each test as in tests/e2e):

- ``dapp_king``: a ``Dapp`` whose network is the King alone (no queens, no providers): enough for pages that
  show the network, the renter's wallet and its sign-in.
- ``dapp``: a ``Dapp`` with the e2e network (two queens, a provider on each, renters' jobs on the session's Ray
  head), for pages that submit and follow jobs.
  ``Dapp``: ``url`` (the page, ``https://127.0.0.1:PORT/``), ``king_target`` and ``king_ca`` (the King's gRPC,
  TLS), ``renter`` (the devnet renter, funded with GPUTOKEN; ``renter_key`` its private key as a person would
  paste it), ``net`` (tests/e2e/net.py's ``Net``: balances, more providers, ...), ``client()`` (the SDK).
- ``browser``: headless Debian Chromium (Playwright's async API: the King runs in the test's event loop).
- ``context`` / ``page``: a fresh browser context and a page in it, its problems recorded in ``page_log``
  (``page_log.assert_clean(*allowed_regexes)``); the page marks ``window.__blendrReadyAt`` for ``ready_ms``.
- ``wallet``: a ``DevWallet`` holding the devnet renter's key, injected as ``window.ethereum`` into ``context``
  (request it before the test's first ``page.goto``).
- ``shot``: ``await shot(page, "offers")`` saves ``<test output>/screens/NN-offers.png``.
- ``figures``: ``figures.record(name, value, unit)``; written to ``<test output>/figures.json`` and printed.
  The measurements (tests/web/browser.py): ``js_gzip_bytes()``; ``await ready_ms(page)`` after ``page.goto``;
  ``watch = await TextWatch(page, "step 3/6").start()`` before the job gets there, then
  ``event_delay_s(await watch.seen_at(), events, "step 3/6")`` with the job's events from the SDK
  (``async with dapp.client() as king: seen, task = follow(king, job_id)``, tests/e2e/net.py).

- ``workdir``: tests/e2e's renter project (a job script that logs "step i/n" and reports progress).

The King serves the page over HTTPS with its devnet certificate (rpc.tls is on, as everywhere in the tests);
the browser contexts accept that certificate (``ignore_https_errors``: the devnet CA is in no browser's store).
The test output folder is the test's ``tmp_path`` (kept under pytest's basetemp).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from blendr.chain.anvil import AnvilProcess
from blendr.client import KingClient
from blendr.ports import free_ports
from tests.e2e.conftest import jobs_ray, snapshot, workdir  # noqa: F401 (fixtures these tests use)
from tests.e2e.net import ACCOUNTS, Net, network
from tests.rayhead import RayHead
from tests.web.browser import (
    KING_STATIC,
    READY_INIT_SCRIPT,
    VIEWPORT,
    Figures,
    PageLog,
    chromium_path,
    screenshot,
)
from tests.web.wallet import DevWallet

# Playwright's expect() waits 5 s by default: too short for a page waiting on the King on a busy 2-core machine.
# The tests still wait for conditions (never for time); this only bounds how long before one is a failure.
expect.set_options(timeout=30_000)


@dataclass
class Dapp:
    """The network with the King serving the dApp."""

    net: Net
    url: str
    king_target: str
    king_ca: Path
    renter: Any  # the devnet renter (eth_account LocalAccount), funded with GPUTOKEN

    @property
    def renter_key(self) -> str:
        """The renter's private key, 0x-hex, as the page's "Use a devnet key" takes it."""
        return "0x" + bytes(self.renter.key).hex()

    def client(self, account: Any | None = None) -> KingClient:
        """The renter SDK against this King (``account``: another renter; default the devnet renter)."""
        return self.net.renter(account)


@contextlib.asynccontextmanager
async def _dapp(eth: AnvilProcess, etc: AnvilProcess, deployed: Any, head: RayHead | None, tmp: Path,
                king: dict[str, Any] | None = None, **kw: Any) -> AsyncIterator[Dapp]:
    """The network serving the dApp (``king``: more King settings, e.g. a short ``chain.gov_refresh_s``)."""
    if not (KING_STATIC / "index.html").is_file():
        pytest.fail(f"the dApp is not built ({KING_STATIC}/index.html is missing): run `npm run -s web:build` "
                    "(make web)")
    # a port chosen here rather than 0: the sign-in messages name the page's origin from king.web_listen
    [port] = free_ports(1)
    async with network(eth.url, etc.url, deployed, head, tmp,
                       king={**(king or {}), "king.web_listen": f"127.0.0.1:{port}"}, **kw) as net:
        assert net.king is not None and net.king.web is not None, "the King started without its web listener"
        yield Dapp(net, net.king.web.url(), f"127.0.0.1:{net.king.port}", tmp / "king" / "tls" / "ca.crt",
                   ACCOUNTS["renter"])

@pytest.fixture
async def dapp_king(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, snapshot: None,  # noqa: F811
                    tmp_path: Path) -> AsyncIterator[Dapp]:
    """The King alone (no queens, no providers) serving the dApp."""
    async with _dapp(*chains, deployed, None, tmp_path / "net", queens=(), providers=()) as d:
        yield d


@pytest.fixture
async def dapp(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, snapshot: None,  # noqa: F811
               ray_cluster: str, jobs_ray: RayHead, tmp_path: Path) -> AsyncIterator[Dapp]:  # noqa: F811
    """The e2e network (two queens, a provider on each) with the King serving the dApp."""
    async with _dapp(*chains, deployed, jobs_ray, tmp_path / "net") as d:
        yield d


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.fail("no Chromium: run scripts/browser-tools.sh (Debian: apt-get install chromium), or set "
                    "BLENDR_CHROMIUM to a Chromium binary")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=path, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC", ignore_https_errors=True)
    ctx.set_default_timeout(30_000)
    await ctx.add_init_script(READY_INIT_SCRIPT)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
async def page(context: BrowserContext, page_log: PageLog) -> Page:
    p = await context.new_page()
    page_log.attach(p)
    return p


@pytest.fixture
async def wallet(context: BrowserContext) -> DevWallet:
    """The devnet renter's wallet in every page of ``context`` (chain 31337, the devnet's ETH)."""
    w = DevWallet(ACCOUNTS["renter"], chain_id=31337)
    await w.install(context)
    return w


@pytest.fixture
def shot(tmp_path: Path) -> Callable[[Page, str], Awaitable[Path]]:
    """``await shot(page, name)``: a full-page screenshot under ``tmp_path/screens``."""

    async def take(page: Page, name: str) -> Path:
        return await screenshot(page, tmp_path / "screens", name)

    return take


@pytest.fixture
def figures(tmp_path: Path) -> Iterator[Figures]:
    f = Figures(tmp_path / "figures.json")
    yield f
    f.write()
