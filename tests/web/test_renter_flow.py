"""A renter's whole way through the dApp on the e2e network (two queens, a provider each, jobs on Ray), in a real
Chromium with an injected wallet: the offers, the network's providers and challenges, the errors that need a
quote (max price under it, a folder over the size limit, a balance too low: nothing signed), sign-in (EIP-4361),
the quote before any signature, the typed data the wallet shows, the job's logs and progress arriving, its
settlement with the receipt matching the chain to the wei, the jobs list and the wallet; then a job cancelled from
the page that refunds the rest.

One network serves every step (starting one is the dearest part of these tests); the steps are functions so each
reads on its own. Figures: the first view's ready time, a log line's delay from the King to the page, the JS size.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from playwright.async_api import Browser, Page, expect

from blendr.siwe import KING_RESOURCE, STATEMENT, parse_message
from tests.e2e.net import ACCOUNTS, Net, follow
from tests.e2e.test_jobs import balances, check_settlement
from tests.web.browser import (
    JS_GZ_BUDGET,
    VIEWPORT,
    Figures,
    PageLog,
    TextWatch,
    event_delay_s,
    js_gzip_bytes,
    ready_ms,
)
from tests.web.conftest import Dapp
from tests.web.steps import LONG_MS, connect, error_shown, fill_job, open_view, quote, tid, tokens_text
from tests.web.wallet import DevWallet

pytestmark = [pytest.mark.timeout(600)]

Shot = Callable[[Page, str], Awaitable[Path]]


async def test_a_renter_rents_watches_settles_and_cancels_in_the_page(
        dapp: Dapp, browser: Browser, wallet: DevWallet, page: Page, page_log: PageLog, shot: Shot,
        figures: Figures, workdir: Path, tmp_path: Path) -> None:
    net = dapp.net
    # the page's JavaScript: a size goal, not a timer
    sizes = js_gzip_bytes()
    figures.record("js_gzip_bytes", sizes["total"], "bytes", budget=JS_GZ_BUDGET)
    assert sizes["total"] <= JS_GZ_BUDGET

    await network_view_without_wallet(dapp, browser, shot)

    # the first view: the offers (the landing page)
    await page.goto(dapp.url)
    figures.record("first_view_ready_ms", round(await ready_ms(page), 1), "ms", view="offers")
    row = page.locator('[data-testid=offer-row][data-model="cpu"]')
    await expect(row).to_be_visible()
    await expect(row.get_by_test_id("offer-providers")).to_have_text("2 providers")
    await expect(row.get_by_test_id("offer-quote")).to_contain_text("GPUTOKEN")
    await shot(page, "offers")
    await connect(page)
    await expect(tid(page, "wallet-address")).to_have_attribute("title", wallet.address)

    await errors_before_signing(dapp, wallet, page, workdir, tmp_path, shot)

    renter = ACCOUNTS["renter"].address
    providers = [ACCOUNTS[p].address for p in ("provider1", "provider2")]
    before = balances(net, renter, *providers)
    job_id = await submit_and_check_signatures(dapp, wallet, page, workdir, shot, "python job.py 6")
    final = await watch_until_settled(dapp, page, job_id, figures, shot)
    check_settlement(net, final, before, renter)
    await receipt_matches(page, final)
    # the README's picture (docs/images/dapp-job.png is a copy of it): the settled job with its receipt in view,
    # at the window's size
    await tid(page, "receipt").scroll_into_view_if_needed()
    await page.screenshot(path=str(tmp_path / "dapp-job.png"))

    # the jobs list and the wallet
    await open_view(page, dapp.url, "jobs")
    jrow = page.locator(f'[data-testid=job-row][data-job-id="{job_id}"]')
    await expect(jrow).to_have_attribute("data-state", "settled")
    await expect(jrow.get_by_test_id("job-row-cost")).to_have_text(tokens_text(final.cost_so_far or 0))
    await shot(page, "jobs-list")
    await open_view(page, dapp.url, "wallet")
    await expect(tid(page, "wallet-view-address")).to_contain_text(renter)
    await expect(tid(page, "wallet-balance")).to_have_text(tokens_text(net.balance(renter)))
    await expect(tid(page, "wallet-rental-contract")).to_contain_text(net.manifest.eth.address("GPURental"))
    await shot(page, "wallet")

    await cancel_from_the_page(dapp, wallet, page, workdir, shot)
    page_log.assert_clean()


# ------------------------------------------------------------------------------------------------ the steps
async def network_view_without_wallet(dapp: Dapp, browser: Browser, shot: Shot) -> None:
    """The network view needs no wallet: both providers with their challenge results, both pools, the recent
    challenges with their verdicts."""
    ctx = await browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)
    try:
        page = await ctx.new_page()
        await open_view(page, dapp.url, "network")
        addrs = {ACCOUNTS[p].address for p in ("provider1", "provider2")}
        # each provider passed a challenge before the network started; the King learns it from its queen's next
        # snapshot: the view is drawn once per load, so load it until both show a pass
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            rows = page.get_by_test_id("provider-row")
            texts = await page.get_by_test_id("provider-challenges").all_inner_texts()
            passes = [int(m.group(1)) for t in texts if (m := re.search(r"(\d+) of \d+ passed", t))]
            if await rows.count() == 2 and len(passes) == 2 and min(passes) > 0:
                break
            assert asyncio.get_running_loop().time() < deadline, f"no pass shown for both providers: {texts}"
            await page.reload()
            await expect(page.locator("[data-testid=view]")).to_have_attribute("data-ready", "1")
        assert {await r.get_attribute("data-provider") for r in await rows.all()} == addrs
        for r in await rows.all():
            await expect(r).to_have_attribute("data-state", "available")
            await expect(r.get_by_test_id("provider-model")).to_contain_text("cpu")
        await expect(page.get_by_test_id("pool-row")).to_have_count(2)
        verdicts = page.locator('[data-testid=challenge-row][data-verdict="passed"]')
        await expect(verdicts.first).to_be_visible()
        shown = {await c.get_by_test_id("challenge-provider").locator("code").get_attribute("title")
                 for c in await verdicts.all()}
        assert shown <= addrs and shown, shown
        await shot(page, "network")
    finally:
        await ctx.close()


async def errors_before_signing(dapp: Dapp, wallet: DevWallet, page: Page, workdir: Path, tmp_path: Path,
                                shot: Shot) -> None:
    """Max price under the quote (closest offers listed), a folder over the King's payload limit and a balance too
    low: each shown with its kind, and the wallet was asked for no typed data."""
    await open_view(page, dapp.url, "submit?model=cpu")
    await fill_job(page, "python job.py 6", "0.0001")
    await tid(page, "get-quote").click()
    await error_shown(page, "max-price", "Your max price of 0.0001 GPUTOKEN per GPU-hour is under the quote of")
    await expect(tid(page, "closest-offer").first).to_contain_text("cpu")
    await expect(tid(page, "sign-submit")).to_be_disabled()
    await shot(page, "max-price")

    # a folder whose packed size is over NetworkInfo.max_payload_bytes (8 MiB; random bytes do not compress)
    big = tmp_path / "big"
    big.mkdir()
    (big / "job.py").write_text("print('hi')\n")
    (big / "weights.bin").write_bytes(os.urandom(9 * 2**20))
    await fill_job(page, "python job.py", "3", folder=big)
    await quote(page)
    await expect(tid(page, "sign-submit")).to_be_enabled()
    await tid(page, "sign-submit").click()
    await error_shown(page, "payload-too-large", "The working directory is too large")
    await expect(tid(page, "error-message")).to_contain_text("nothing was signed")
    await shot(page, "payload-too-large")
    assert wallet.typed_data == []
    # the renter signed in for it (the first signed call): EIP-4361 text naming this renter, chain and King
    [signin] = wallet.personal
    msg = parse_message(signin.text)
    assert (msg.address, msg.chain_id, msg.statement) == (wallet.address, 31337, STATEMENT)
    assert msg.domain == dapp.url.removeprefix("https://").rstrip("/") and msg.uri.startswith(dapp.url.rstrip("/"))
    assert KING_RESOURCE + ACCOUNTS["king"].address in msg.resources

    # an account with no GPUTOKEN (gas only): told before anything is signed
    poor = Account.create()
    await wallet.set_account(poor)
    await expect(tid(page, "wallet-address")).to_have_attribute("title", poor.address)
    # the form kept what was typed (a wallet change does not wipe it); the renter picks the small project instead
    await fill_job(page, "python job.py 6", "3", folder=workdir)
    await quote(page)
    await tid(page, "sign-submit").click()
    await error_shown(page, "insufficient-balance", "Your balance is too low: you hold 0 GPUTOKEN, and this job locks up to")
    await shot(page, "insufficient-balance")
    assert wallet.typed_data == []
    assert [p.address for p in wallet.personal] == [ACCOUNTS["renter"].address, poor.address]
    await wallet.set_account(ACCOUNTS["renter"])
    await expect(tid(page, "wallet-address")).to_have_attribute("title", wallet.address)


async def submit_and_check_signatures(dapp: Dapp, wallet: DevWallet, page: Page, workdir: Path, shot: Shot,
                                      entrypoint: str) -> str:
    """Fills the form with the workdir folder, checks the quote comes before any signature, signs and submits;
    the wallet was shown every intent and the permit in full. Returns the job id (the page is on the job)."""
    await open_view(page, dapp.url, "submit?model=cpu")
    await fill_job(page, entrypoint, "3", folder=workdir)
    signed = len(wallet.typed_data)
    await quote(page)  # connects the wallet when the page has none yet: the form keeps what was typed
    await expect(tid(page, "wallet-address")).to_have_attribute("title", wallet.address)
    await expect(tid(page, "submit-entrypoint")).to_have_value(entrypoint)
    await expect(tid(page, "quote-candidates")).to_contain_text("provider")
    await expect(tid(page, "quote-price")).to_contain_text("GPUTOKEN / GPU-hour")
    await expect(tid(page, "quote-max-escrow")).to_have_text("0.05 GPUTOKEN (1 GPU × 1 min at your max price)")
    await expect(tid(page, "error")).to_be_hidden()
    assert len(wallet.typed_data) == signed, "typed data was requested before Sign and submit"
    await shot(page, "submit-with-quote")
    await tid(page, "sign-submit").click()
    await page.wait_for_url(re.compile(r"#/jobs/[^/]+$"), timeout=60_000)
    job_id = await tid(page, "job-id").inner_text()
    assert page.url.endswith("#/jobs/" + job_id)

    rental = dapp.net.manifest.eth.address("GPURental")
    token = dapp.net.manifest.eth.address("GPUToken")
    shown = [s.data for s in wallet.typed_data[signed:]]
    intents = [d for d in shown if d["primaryType"] == "RentalIntent"]
    permits = [d for d in shown if d["primaryType"] == "Permit"]
    assert intents and len(permits) == 1 and len(intents) + 1 == len(shown), [d["primaryType"] for d in shown]
    for d in intents:
        assert int(d["domain"]["chainId"]) == 31337 and d["domain"]["verifyingContract"].lower() == rental.lower()
        assert d["message"]["renter"].lower() == wallet.address.lower() and int(d["message"]["gpus"]) == 1
        assert [f["name"] for f in d["types"]["RentalIntent"]][:2] == ["renter", "provider"]
    [permit] = permits
    assert int(permit["domain"]["chainId"]) == 31337 and permit["domain"]["verifyingContract"].lower() == token.lower()
    assert permit["message"]["owner"].lower() == wallet.address.lower()
    assert permit["message"]["spender"].lower() == rental.lower()
    return job_id


async def watch_until_settled(dapp: Dapp, page: Page, job_id: str, figures: Figures, shot: Shot) -> Any:
    """The job's logs and progress arrive in the page as the King streams them; it settles and shows its receipt.
    Returns the job as the SDK sees it at the end."""
    watch = await TextWatch(page, "step 3/6").start()
    # every value the progress bar takes, as the page sets it (its value attribute reflects the property)
    await page.evaluate("""() => { const b = document.querySelector('[data-testid=job-progress]');
        window.__progress = []; new MutationObserver(() => window.__progress.push(b.value))
            .observe(b, { attributes: true, attributeFilter: ['value'] }); }""")
    async with dapp.client() as king:
        seen, task = follow(king, job_id)
        try:
            logs = tid(page, "job-logs")
            await expect(logs).to_contain_text("data: forty-two greeting: hi", timeout=LONG_MS)
            await expect(logs).to_contain_text("step 1/6", timeout=60_000)
            await expect(tid(page, "job-state")).to_have_attribute("data-state", "running")
            await shot(page, "job-running")
            seen_at = await watch.seen_at(timeout_s=60)
            await expect(logs).to_contain_text("step 6/6", timeout=60_000)
            await expect(tid(page, "job-progress-text")).to_have_text("100 % done", timeout=60_000)
            await expect(tid(page, "job-state")).to_have_attribute("data-state", "settled", timeout=LONG_MS)
            await expect(tid(page, "receipt-state")).to_contain_text("settled")
            await asyncio.wait_for(task, 120)
        finally:
            task.cancel()
    # the bar moved step by step (a value per progress event the page drew) up to the end
    values = [round(v, 2) for v in await page.evaluate("() => window.__progress")]
    assert values == sorted(values) and len(set(values)) >= 3 and values[-1] == 1.0, values
    reported = [round(e.progress, 2) for e in seen if e.kind == "progress"]
    assert set(values) <= set(reported), (values, reported)
    figures.record("event_delay_s", round(event_delay_s(seen_at, seen, "step 3/6"), 3), "s", text="step 3/6")
    await expect(tid(page, "receipt-challenges")).to_contain_text("passed", timeout=60_000)
    await page.evaluate("() => window.scrollTo(0, 0)")
    await shot(page, "job-settled-receipt")
    return seen[-1].job


async def receipt_matches(page: Page, final: Any) -> None:
    """The receipt in the page says what the chain did (check_settlement checked the chain against ``final``)."""
    [r] = final.rentals
    box = page.locator(f'[data-testid=receipt-rental][data-rental-id="0x{bytes(r.rental_id).hex()}"]')
    await expect(box.get_by_test_id("receipt-state")).to_have_text("settled")
    await expect(box.get_by_test_id("receipt-provider").locator("code")).to_have_attribute("title", r.provider)
    await expect(box.get_by_test_id("receipt-escrow")).to_have_text(tokens_text(r.escrow))
    await expect(box.get_by_test_id("receipt-payment")).to_have_text(tokens_text(r.provider_payment))
    await expect(box.get_by_test_id("receipt-fee")).to_have_text(tokens_text(r.fee))
    await expect(box.get_by_test_id("receipt-refund")).to_have_text(tokens_text(r.refund))
    await expect(box.get_by_test_id("receipt-verified")).to_contain_text(f"({r.verified_seconds} s)")
    await expect(box.get_by_test_id("receipt-settled-tx")).to_contain_text(r.settled_tx[:6])


async def cancel_from_the_page(dapp: Dapp, wallet: DevWallet, page: Page, workdir: Path, shot: Shot) -> None:
    """A long job cancelled with the page's Cancel (the confirm accepted): it ends cancelled, its rental settles
    for the verified time and refunds the rest (as tests/e2e's cancel test checks)."""
    net: Net = dapp.net
    renter = ACCOUNTS["renter"].address
    before = balances(net, renter, *(ACCOUNTS[p].address for p in ("provider1", "provider2")))
    job_id = await submit_and_check_signatures(dapp, wallet, page, workdir, shot, "python job.py 100")
    await expect(tid(page, "job-logs")).to_contain_text("step 2/100", timeout=LONG_MS)
    dialogs: list[str] = []

    async def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await tid(page, "cancel-job").click()
    cancelled = page.locator('[data-testid=timeline-step][data-step="cancelled"]')
    await expect(cancelled).to_have_attribute("data-status", "done")
    assert dialogs and dialogs[0].startswith("Cancel this job?")
    await expect(tid(page, "receipt-state")).to_contain_text("settled", timeout=LONG_MS)
    await shot(page, "job-cancelled-receipt")
    async with dapp.client() as king:
        final = await king.get(job_id)
    assert final.reason.startswith("cancelled by the renter in the web page"), final.reason
    await expect(tid(page, "job-reason")).to_contain_text("cancelled by the renter in the web page")
    assert "step 100/100" not in await tid(page, "job-logs").inner_text()
    [r] = final.rentals
    assert int(r.refund) > 0 and r.verified_seconds < 60
    check_settlement(net, final, before, renter)
    await expect(tid(page, "receipt-refund")).to_have_text(tokens_text(r.refund))
