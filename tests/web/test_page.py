"""The King serves the dApp on king.web_listen: the page loads in Chromium with nothing failing, and its JavaScript
stays within the issue's size goal (300 KB gzipped)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.web.browser import JS_GZ_BUDGET, KING_STATIC, Figures, PageLog, js_gzip_bytes
from tests.web.conftest import Dapp

pytestmark = [pytest.mark.timeout(300)]


async def test_the_king_serves_the_page(dapp_king: Dapp, page: Page, page_log: PageLog,
                                        shot: Callable[[Page, str], Awaitable[Path]]) -> None:
    assert dapp_king.url.startswith("https://127.0.0.1:")
    resp = await page.goto(dapp_king.url)
    assert resp is not None and resp.status == 200
    assert await page.title() == "BlendrChain"
    path = await shot(page, "first-page")
    assert path.is_file() and path.stat().st_size > 0
    page_log.assert_clean()


def test_the_page_javascript_is_within_the_size_goal(figures: Figures) -> None:
    if not (KING_STATIC / "index.html").is_file():
        pytest.fail(f"the dApp is not built ({KING_STATIC}/index.html is missing): run `npm run -s web:build` "
                    "(make web)")
    sizes = js_gzip_bytes()
    assert len(sizes) > 1, f"no JavaScript in {KING_STATIC / 'assets'}"
    figures.record("js_gzip_bytes", sizes["total"], "bytes", files={k: v for k, v in sizes.items() if k != "total"},
                   budget=JS_GZ_BUDGET)
    assert sizes["total"] <= JS_GZ_BUDGET, f"the page's JS is {sizes['total']} bytes gzipped (goal ≤ {JS_GZ_BUDGET})"
