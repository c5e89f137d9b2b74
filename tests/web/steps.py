"""What a renter does in the dApp, as steps the browser tests share: open a view, fill the submit form, wait for
a text or a state in the page. Every wait is for a condition in the page (Playwright's waits), never for time."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Locator, Page, expect

from blendr.units import fmt_tokens

LONG_MS = 240_000  # a job scheduled, run, verified on ETC and settled on ETH (tests/e2e waits as long)
MINUTE_H = "0.016667"  # hours: the devnet's shortest rental (60 s, as tests/e2e's jobs ask)


def tid(page: Page, testid: str) -> Locator:
    return page.get_by_test_id(testid)


def tokens_text(wei: int | str) -> str:
    """An amount as the page shows it (``1.5 GPUTOKEN``: the CLI's fmt_tokens, the same text)."""
    return f"{fmt_tokens(int(wei))} GPUTOKEN"


async def open_view(page: Page, url: str, route: str) -> None:
    """Goes to ``#/route`` (a hash change, or the first load) and waits until that view marked itself ready."""
    target = url + "#/" + route
    if page.url == target:
        await page.reload()  # the same address again is no navigation (no hashchange): load it afresh
    else:
        await page.goto(target)
    view = route.split("?")[0].split("/")[0]
    await expect(page.locator(f'[data-testid=view][data-view="{"job" if "/" in route else view}"]')).to_have_attribute(
        "data-ready", "1")


async def connect(page: Page) -> None:
    """The renter clicks "Connect wallet"; the header shows the wallet's address."""
    await tid(page, "connect-wallet").click()
    await expect(tid(page, "wallet-address")).to_be_visible()


async def fill_job(page: Page, entrypoint: str, max_price: str, folder: Path | None = None,
                   env: str = "GREETING=hi\nSTEP_S=1") -> None:
    """Fills the submit form for one GPU of the devnet's model ("cpu") for a minute."""
    await tid(page, "submit-entrypoint").fill(entrypoint)
    await tid(page, "submit-env").fill(env)
    await tid(page, "submit-gpus").fill("1")
    await tid(page, "submit-gpu-model").select_option("cpu")
    await tid(page, "submit-hours").fill(MINUTE_H)
    await tid(page, "submit-max-price").fill(max_price)
    if folder is not None:
        await tid(page, "submit-folder").set_input_files(folder)
        n = sum(1 for p in folder.rglob("*") if p.is_file())
        await expect(tid(page, "submit-files")).to_contain_text(f"{n} file")


async def quote(page: Page) -> None:
    """Clicks "Get quote" and waits for the quote (or the error that says why none fits)."""
    await tid(page, "get-quote").click()
    await expect(tid(page, "quote")).to_be_visible()


async def error_shown(page: Page, kind: str, message: str | re.Pattern[str]) -> Locator:
    """The alert with ``data-error-kind=kind`` and its message (a part of it, or a pattern)."""
    alert = tid(page, "error")
    await expect(alert).to_be_visible()
    await expect(alert).to_have_attribute("data-error-kind", kind)
    await expect(tid(page, "error-message")).to_contain_text(message)
    return alert
