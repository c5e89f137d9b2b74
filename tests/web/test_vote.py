"""Voting on a governance proposal from the network view, through the browser's wallet, on the devnet.

The King alone serves the page, re-reading proposals every second (chain.gov_refresh_s). The devnet's deployer
(votes from the team's vesting wallet) proposes; voting opens a second later (the devnet's voting delay), made so
with anvil's clock. The renter votes from the page: the page checks its votes at the snapshot through the wallet's
eth_call, the wallet (tests/web/wallet.py, with the devnet chain as its node) fills, signs and sends castVote, and
the tally the page shows afterwards is the King's, read again from the chain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode
from eth_account import Account
from eth_utils import keccak
from playwright.async_api import Page, expect

from blendr.chain.anvil import AnvilProcess
from blendr.chain.governing import Governor
from blendr.units import fmt_tokens
from tests.e2e.net import ACCOUNTS, client
from tests.integration.relay_net import rpc
from tests.web.browser import PageLog
from tests.web.conftest import Dapp, _dapp
from tests.web.wallet import DevWallet

pytestmark = [pytest.mark.timeout(300)]

CAST_VOTE = keccak(text="castVote(uint256,uint8)")[:4]


@pytest.fixture
async def dapp_gov(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, snapshot: None,
                   tmp_path: Path) -> AsyncIterator[Dapp]:
    """The King alone, reading the proposals every second (the default 30 s would only make the test wait)."""
    async with _dapp(*chains, deployed, None, tmp_path / "net", king={"chain.gov_refresh_s": 1.0},
                     queens=(), providers=()) as d:
        yield d


def governor(d: Dapp, who: str) -> Governor:
    account = ACCOUNTS[who]
    return Governor(client(d.net.eth_url, "eth", account), client(d.net.etc_url, "etc", account), d.net.manifest)


def active_proposal(d: Dapp, description: str) -> int:
    """A proposal by the deployer, open for votes (anvil's clock moved past its one-second voting delay)."""
    g = governor(d, "deployer")
    pid, new = g.propose(g.calls_for({"rental.min_quote": "10"}), description)
    assert new
    rpc(d.net.eth_url, "evm_increaseTime", [2])
    rpc(d.net.eth_url, "evm_mine", [])
    assert g.proposal(pid).state.name == "ACTIVE"
    return pid


async def open_network_view(d: Dapp, page: Page, pid: int) -> Any:
    """The network view with the wallet connected, once the King lists the proposal as active; its row."""
    async with d.client() as king:
        for _ in range(30):
            if [p for p in await king.proposals(["active"]) if int(p.proposal_id) == pid]:
                break
            await page.wait_for_timeout(500)
        else:
            raise AssertionError(f"the King does not list proposal {pid} as active")
    await page.goto(d.url + "#/network")
    await page.get_by_test_id("connect-wallet").click()
    await expect(page.get_by_test_id("wallet-address")).to_be_visible()
    row = page.locator(f'[data-testid=proposal-row][data-proposal-id="{pid}"]')
    await expect(row).to_have_attribute("data-state", "active")
    return row


async def test_a_renter_votes_from_the_page_and_sees_the_tally(
        dapp_gov: Dapp, wallet: DevWallet, page: Page, page_log: PageLog,
        shot: Callable[[Page, str], Awaitable[Path]]) -> None:
    d = dapp_gov
    wallet.rpc_url = d.net.eth_url  # the wallet's node: the devnet chain
    renter = governor(d, "renter")
    votes = renter.gov.functions.getVotes
    vested = int(renter.eth.call(votes(d.renter.address, renter.clock() - 1)))  # the devnet's investors' grant
    renter.delegate(d.renter.address)  # its own GPUTOKEN counts as votes too from here on (before the snapshot)
    pid = active_proposal(d, "Dearer GPUs, voted on from the page")
    p = renter.proposal(pid)
    weight = int(renter.eth.call(votes(d.renter.address, p.snapshot)))
    assert weight == vested + d.net.balance(d.renter.address) and d.net.balance(d.renter.address) > 0

    row = await open_network_view(d, page, pid)
    for_before = p.votes_for
    await expect(row.get_by_test_id("proposal-for")).to_have_text(f"{fmt_tokens(for_before)} GPUTOKEN")
    # declined in the wallet: said so, nothing sent, and the buttons are there to try again
    wallet.reject.add("eth_sendTransaction")
    await row.get_by_test_id("vote-for").click()
    await expect(page.get_by_test_id("error")).to_have_attribute("data-error-kind", "rejected")
    await expect(row.get_by_test_id("vote-for")).to_be_enabled()
    assert wallet.transactions == []
    wallet.reject.clear()

    await row.get_by_test_id("vote-for").click()

    await expect(row.get_by_test_id("vote-tx")).to_be_visible()
    recorded = row.get_by_test_id("vote-recorded")
    await expect(recorded).to_have_attribute("data-support", "for")
    await expect(recorded).to_have_attribute("data-weight", str(weight))
    # the tally the King read again from the chain (every second here), not one the page made up
    await expect(row.get_by_test_id("vote-status")).to_have_attribute("data-stage", "counted", timeout=30_000)
    await expect(row.get_by_test_id("proposal-for")).to_have_text(f"{fmt_tokens(for_before + weight)} GPUTOKEN")
    for support in ("for", "against", "abstain"):
        await expect(row.get_by_test_id(f"vote-{support}")).to_be_disabled()
    await shot(page, "proposals-voted")

    # what the wallet sent: one castVote(pid, For) to the Governance contract, the one NetworkInfo names
    [tx] = wallet.transactions
    assert tx.to.lower() == d.net.manifest.eth.address("Governance").lower()
    assert tx.data[:4] == CAST_VOTE and decode(["uint256", "uint8"], tx.data[4:]) == (pid, 1)
    assert tx.hash == await row.get_by_test_id("vote-tx").get_attribute("title")
    # the checks before sending were reads through the wallet, and the receipt came the same way
    methods = wallet.methods()
    assert methods.index("eth_call") < methods.index("eth_sendTransaction") < methods.index("eth_getTransactionReceipt")
    after = renter.proposal(pid)
    assert (after.votes_for, after.votes_against, after.votes_abstain) == (for_before + weight, p.votes_against,
                                                                           p.votes_abstain)
    async with d.client() as king:
        assert int((await king.proposal(pid)).votes_for) == for_before + weight
    page_log.assert_clean()


async def test_voting_without_votes_explains_delegation_and_sends_nothing(
        dapp_gov: Dapp, wallet: DevWallet, page: Page, page_log: PageLog,
        shot: Callable[[Page, str], Awaitable[Path]]) -> None:
    d = dapp_gov
    wallet.rpc_url = d.net.eth_url
    # a renter that holds no votes (the devnet's renter has the investors' vested votes)
    voter = Account.create()
    wallet.account = voter
    pid = active_proposal(d, "Dearer GPUs, a renter without votes")
    row = await open_network_view(d, page, pid)
    await row.get_by_test_id("vote-for").click()

    alert = page.get_by_test_id("error")
    await expect(alert).to_have_attribute("data-error-kind", "no-voting-power")
    message = page.get_by_test_id("error-message")
    await expect(message).to_contain_text(f"blendr gov delegate {voter.address}")
    await expect(message).to_contain_text("nothing was sent")
    await expect(row.get_by_test_id("vote-for")).to_be_enabled()  # after delegating, a later proposal can be voted on
    await shot(page, "vote-no-votes")
    assert wallet.transactions == [] and "eth_sendTransaction" not in wallet.methods()
    assert governor(d, "deployer").proposal(pid).votes_for == 0

    # the wallet on another chain: the page's wrong-chain error, with the button that moves it back
    await wallet.set_chain(1)
    await expect(page.get_by_test_id("error")).to_have_attribute("data-error-kind", "wrong-chain")  # told at once
    await page.get_by_test_id("error-dismiss").click()
    await expect(page.get_by_test_id("error")).to_be_hidden()
    await row.get_by_test_id("vote-for").click()  # and again when voting
    await expect(page.get_by_test_id("error")).to_have_attribute("data-error-kind", "wrong-chain")
    await page.get_by_test_id("switch-network").click()
    await expect(page.get_by_test_id("wallet-chain")).to_contain_text("31337")
    assert wallet.chain_id == 31337 and "eth_sendTransaction" not in wallet.methods()

    # with the in-page devnet key (no wallet to send through), voting is not offered: the CLI is named instead
    await page.get_by_test_id("disconnect-wallet").click()
    await page.get_by_test_id("use-devnet-key").click()
    await page.get_by_test_id("devnet-key-input").fill("0x" + bytes(voter.key).hex())
    await page.get_by_test_id("devnet-key-submit").click()
    await expect(page.get_by_test_id("wallet-devnet")).to_be_visible()
    await expect(row.get_by_test_id("vote-unavailable")).to_contain_text(f"use blendr gov vote {pid} for")
    await expect(row.get_by_test_id("vote-for")).to_have_count(0)
    page_log.assert_clean()
