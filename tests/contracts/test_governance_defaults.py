"""A fresh deployment can govern: the production defaults of `blendr chain deploy`, then real proposals.

Deployed with ``deploy_system`` + ``hand_over`` and the parameters the CLI builds (only the required ones
given) onto the session's anvil chains: 100 M GPUTOKEN minted to TokenDistributor and handed out by the
genesis, quorum 4 %, proposal threshold 0.01 %, voting delay 1 day, voting period 7 days, timelock 2 days:
every default, nothing shrunk. The governor's clock is timestamps (ERC-6372 mode=timestamp), so the tests
move the chain's clock (``evm_increaseTime``) through each full wait. Bridge messages are relayed by hand
with real attester signatures, as the queens' relay does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from web3 import Web3

from blendr.chain.bridge import BridgeMessage, attest, ordered
from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import (
    BridgeInbox,
    BridgeOutbox,
    Governance,
    GPURental,
    GPUToken,
    WorkVerification,
    bridge_call,
)
from blendr.chain.deploy import DeployParams, Grant, check_governable, deploy_system, hand_over
from blendr.chain.manifest import Manifest
from blendr.errors import ContractRevertError
from blendr.units import tokens
from tests.contracts.chainkit import DEV_KEYS, at, deploy, increase_time, now, send

ACCT = [Account.from_key(k) for k in DEV_KEYS]
DEPLOYER, KING, QUEENS = ACCT[0], ACCT[1], ACCT[2:5]
TEAM, INVESTOR, ADVISOR = ACCT[5], ACCT[6], ACCT[7]
HOLDER, LATE = ACCT[8], ACCT[9]  # a community grantee, and one who receives tokens after a snapshot
# what `blendr chain deploy` builds: the required parameters, every other one its default
DEFAULTS = DeployParams(treasury=DEPLOYER.address, scheduler=KING.address,
                        attesters=sorted((q.address for q in QUEENS), key=str.lower), threshold=2,
                        guardian=DEPLOYER.address, team=[Grant(TEAM.address)], investors=[Grant(INVESTOR.address)],
                        advisors=[Grant(ADVISOR.address)])
SUPPLY = DEFAULTS.distributor_supply
FOR, AGAINST = 1, 0
COMMUNITY = 3  # TokenDistributor's Category.Community


@dataclass
class Net:
    eth: Web3
    etc: Web3
    m: Manifest

    def client(self, chain: str, account: Any) -> ChainClient:
        w3 = self.eth if chain == "eth" else self.etc
        s = ChainSettings(chain, w3.provider.endpoint_uri, int(w3.eth.chain_id), eip1559=chain == "eth",  # type: ignore[attr-defined]
                          poll_s=0.01)
        return ChainClient(s, account)

    def gov(self, account: Any) -> Governance:
        return Governance(self.client("eth", account), self.m.eth.address("Governance"))

    def token(self, account: Any = DEPLOYER) -> GPUToken:
        return GPUToken(self.client("eth", account), self.m.eth.address("GPUToken"))

    def relay(self, msg: BridgeMessage) -> Any:
        """Attests ``msg`` with two of the three queens and delivers it on its destination chain."""
        chain = "etc" if msg.dst_chain_id == 63 else "eth"
        inbox = BridgeInbox(self.client(chain, KING), self.m.chain(chain).address("BridgeInbox"))
        return inbox.deliver(msg, ordered({q.address: attest(q, msg, inbox.address) for q in QUEENS[:2]}))


@pytest.fixture(scope="module")
def deployed(eth_session: Web3, etc_session: Web3) -> Iterator[Manifest]:
    """`deploy_system` + `hand_over` with the parameters `blendr chain deploy` builds (the required ones only)."""
    snaps = [w3.provider.make_request("evm_snapshot", [])["result"] for w3 in (eth_session, etc_session)]  # type: ignore[arg-type]
    n = Net(eth_session, etc_session, None)  # type: ignore[arg-type]
    eth, etc = n.client("eth", DEPLOYER), n.client("etc", DEPLOYER)
    m = deploy_system(eth, etc, DEFAULTS, network="fresh", echo=lambda s: None)
    hand_over(eth, etc, m, echo=lambda s: None)
    yield m
    for w3, snap in zip((eth_session, etc_session), snaps, strict=True):
        w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


@pytest.fixture
def net(deployed: Manifest, eth: Web3, etc: Web3) -> Iterator[Net]:
    yield Net(eth, etc, deployed)


def _run(n: Net, proposer: Any, targets: list[str], calldatas: list[bytes], description: str,
         during_vote: Any) -> Any:
    """propose -> (voting delay) -> ``during_vote(pid)`` -> (voting period) -> queue -> (timelock) -> execute,
    every wait the full production length; returns the execute receipt."""
    gov = n.gov(proposer)
    pid = gov.propose(targets, [0] * len(targets), calldatas, description)
    assert gov.state(pid) == 0  # Pending
    snapshot = gov._call(gov.fn.proposalSnapshot(pid))
    assert snapshot == now(n.eth) + DEFAULTS.voting_delay_s
    increase_time(n.eth, DEFAULTS.voting_delay_s - 1)
    assert gov.state(pid) == 0  # still Pending a second before the snapshot
    increase_time(n.eth, 2)
    assert gov.state(pid) == 1  # Active
    during_vote(pid)
    assert gov._call(gov.fn.proposalDeadline(pid)) == snapshot + DEFAULTS.voting_period_s
    increase_time(n.eth, snapshot + DEFAULTS.voting_period_s - now(n.eth))
    assert gov.state(pid) == 1  # open up to and including the deadline
    increase_time(n.eth, 1)
    assert gov.state(pid) == 4, "the proposal did not succeed"  # Succeeded
    gov.queue(targets, [0] * len(targets), calldatas, description)
    with pytest.raises(ContractRevertError):  # not before the timelock's delay
        gov.execute(targets, [0] * len(targets), calldatas, description)
    increase_time(n.eth, DEFAULTS.timelock_delay_s + 1)
    receipt = gov.execute(targets, [0] * len(targets), calldatas, description)
    assert gov.state(pid) == 7  # Executed
    return receipt


def _data(fn: Any) -> bytes:
    return bytes.fromhex(fn._encode_transaction_data()[2:])


def test_the_deployment_uses_the_production_defaults(net: Net) -> None:
    gov = net.gov(TEAM)
    assert gov._call(gov.fn.votingDelay()) == DEFAULTS.voting_delay_s == 24 * 3600
    assert gov._call(gov.fn.votingPeriod()) == DEFAULTS.voting_period_s == 7 * 24 * 3600
    assert gov._call(gov.fn.clock()) == now(net.eth)
    assert gov._call(gov.fn.CLOCK_MODE()) == "mode=timestamp"
    assert gov._call(gov.fn.proposalThreshold()) == DEFAULTS.proposal_threshold == tokens(10_000)
    assert gov._call(gov.fn.quorumNumerator()) == DEFAULTS.quorum_percent == 4
    tl = net.client("eth", TEAM).contract("BlendrTimelock", net.m.eth.address("BlendrTimelock"))
    assert tl.functions.getMinDelay().call() == DEFAULTS.timelock_delay_s == 2 * 24 * 3600
    assert net.token()._call(net.token().fn.totalSupply()) == SUPPLY == tokens(100_000_000)


def test_genesis_puts_votes_with_the_vesting_beneficiaries_and_the_rest_under_governance(net: Net) -> None:
    """35 % votes from the first block (team 15 %, investors 15 %, advisors 5 %, vesting); Treasury 20 % sits
    in the Timelock, Community 45 % in the distributor; neither votes."""
    token = net.token()
    genesis = net.m.accounts["genesis"]
    block = now(net.eth)  # a timepoint: the governor's clock is timestamps
    increase_time(net.eth, 1)
    for cat, who, share in (("team", TEAM, 15), ("investors", INVESTOR, 15), ("advisors", ADVISOR, 5)):
        [g] = genesis[cat]
        assert g["beneficiary"] == who.address and g["amount"] == SUPPLY * share // 100
        assert (g["cliff"], g["duration"]) == (DEFAULTS.vesting[cat].cliff_s, DEFAULTS.vesting[cat].duration_s)
        assert token.balance_of(g["wallet"]) == g["amount"] and token.balance_of(who.address) == 0
        assert net.gov(who).votes(who.address, block) == g["amount"]  # no transaction of theirs needed
        wallet = at(net.eth, "eth", "VotesVestingWallet", g["wallet"])
        assert wallet.functions.owner().call() == who.address
        assert wallet.functions.releasable(token.address).call() == 0  # the cliff still holds
    timelock, distributor = net.m.eth.address("BlendrTimelock"), net.m.eth.address("TokenDistributor")
    assert token.balance_of(timelock) == SUPPLY * 20 // 100
    assert token.balance_of(distributor) == SUPPLY * 45 // 100
    assert net.gov(TEAM).votes(timelock, block) == net.gov(TEAM).votes(distributor, block) == 0
    gov = net.gov(TEAM)
    assert gov._call(gov.fn.quorum(block)) == SUPPLY * 4 // 100  # reachable by the team's share alone
    dist = net.client("eth", TEAM).contract("TokenDistributor", distributor)
    allocator, rewards = keccak(text="ALLOCATOR_ROLE"), keccak(text="REWARDS_ROLE")
    assert dist.functions.hasRole(allocator, timelock).call() and dist.functions.hasRole(rewards, timelock).call()
    assert not dist.functions.hasRole(allocator, DEPLOYER.address).call()
    assert dist.functions.treasury().call() == timelock


def test_a_beneficiary_redelegates_its_vesting_votes_and_only_the_owner_can(net: Net) -> None:
    g = net.m.accounts["genesis"]["advisors"][0]
    wallet = at(net.eth, "eth", "VotesVestingWallet", g["wallet"])
    with pytest.raises(Exception, match=r"OwnableUnauthorizedAccount|0x118cdaa7"):
        send(wallet.functions.delegate(LATE.address), LATE.address)
    send(wallet.functions.delegate(HOLDER.address), ADVISOR.address)
    block = now(net.eth)
    increase_time(net.eth, 1)
    assert net.gov(HOLDER).votes(HOLDER.address, block) == g["amount"]
    assert net.gov(HOLDER).votes(ADVISOR.address, block) == 0
    send(wallet.functions.transferOwnership(LATE.address), ADVISOR.address)  # a sold position takes its votes
    sold = now(net.eth)
    increase_time(net.eth, 1)
    assert net.gov(LATE).votes(LATE.address, sold) == g["amount"]
    assert net.gov(LATE).votes(HOLDER.address, sold) == 0


def test_governance_changes_an_eth_parameter_and_an_etc_parameter_over_the_bridge(net: Net) -> None:
    """Proposal 1 (ETH): raise GPURental's fee, fund a flash lender from the Timelock's treasury share and
    grant community tokens; proposal 2 (ETC, over the bridge): raise WorkVerification's failure threshold,
    while a flash loan of twice the quorum and tokens received after the snapshot try to weigh in."""
    n = net
    e = n.m.eth
    rental = GPURental(n.client("eth", TEAM), e.address("GPURental"))
    token = n.token()
    dist = n.client("eth", TEAM).contract("TokenDistributor", e.address("TokenDistributor"))
    assert rental._call(rental.fn.feeBps()) == 250
    # a flash lender (test-only contract) that governance will fund with 8 M from the treasury share
    lender = deploy(n.eth, "eth", "EconFlashLender", token.address, sender=LATE.address)
    borrower = deploy(n.eth, "eth", "EconFlashBorrower", lender.address, e.address("Governance"), sender=LATE.address)
    loan = 2 * SUPPLY * DEFAULTS.quorum_percent // 100
    targets1 = [e.address("GPURental"), e.address("GPUToken"), e.address("TokenDistributor")]
    calls1 = [_data(rental.fn.setFeeBps(300)), _data(token.fn.transfer(lender.address, loan)),
              _data(dist.functions.allocate(COMMUNITY, HOLDER.address, tokens(5_000_000), 0, 0, 0))]
    _run(n, TEAM, targets1, calls1, "Fee 3 %; fund the lender; a community grant",
         lambda pid: n.gov(TEAM).cast_vote(pid, FOR))
    assert rental._call(rental.fn.feeBps()) == 300
    assert token.balance_of(lender.address) == loan
    assert token.balance_of(e.address("BlendrTimelock")) == SUPPLY * 20 // 100 - loan
    assert token.balance_of(HOLDER.address) == tokens(5_000_000)
    n.token(HOLDER).delegate(HOLDER.address)
    n.token(LATE).delegate(LATE.address)  # delegated, but holding nothing yet
    increase_time(n.eth, 1)

    # proposal 2: an ETC parameter, sent by the Timelock through the bridge to the governance executor
    wv_addr = n.m.etc.address("WorkVerification")
    wv = WorkVerification(n.client("etc", KING), wv_addr)
    assert wv._call(wv.fn.maxFailBps()) == DEFAULTS.max_fail_bps == 1_000
    outbox = BridgeOutbox(n.client("eth", TEAM), e.address("BridgeOutbox"))
    inner = _data(wv.fn.setMaxFailBps(2_000))
    calls2 = [_data(outbox.fn.sendMessage(63, n.m.etc.address("BridgeGovernanceExecutor"), bridge_call(wv_addr, inner)))]
    gov = n.gov(TEAM)

    def vote(pid: int) -> None:
        snap = gov._call(gov.fn.proposalSnapshot(pid))
        before = gov._call(gov.fn.proposalVotes(pid))
        # a flash loan of twice the quorum: live votes inside the loan, none at the snapshot
        send(borrower.functions.attack(loan, pid), LATE.address)
        assert borrower.functions.votesDuringLoan().call() == loan
        assert borrower.functions.lastWeight().call() == 0
        assert gov._call(gov.fn.proposalVotes(pid)) == before
        # tokens received after the snapshot weigh nothing; the sender still votes what it held then
        n.token(HOLDER).transfer(LATE.address, tokens(5_000_000))
        r = n.gov(LATE).cast_vote(pid, FOR)
        assert n.gov(LATE).events(r, "VoteCast")[0]["weight"] == 0
        assert gov._call(gov.fn.proposalVotes(pid)) == before
        r = n.gov(HOLDER).cast_vote(pid, FOR)
        assert n.gov(HOLDER).events(r, "VoteCast")[0]["weight"] == tokens(5_000_000)
        assert n.gov(HOLDER).votes(HOLDER.address, snap) == tokens(5_000_000)
        # the investors vote against; the team and the grantee carry it
        n.gov(INVESTOR).cast_vote(pid, AGAINST)
        n.gov(TEAM).cast_vote(pid, FOR)
        against, for_, _ = gov._call(gov.fn.proposalVotes(pid))
        assert (for_, against) == (SUPPLY * 15 // 100 + tokens(5_000_000), SUPPLY * 15 // 100)

    executed = _run(n, TEAM, [outbox.address], calls2, "ETC: raise the failure threshold to 20 %", vote)
    [msg] = BridgeOutbox(n.client("eth", TEAM), outbox.address).messages(executed)
    assert msg.sender == e.address("BlendrTimelock") and msg.dst_chain_id == 63
    assert wv._call(wv.fn.maxFailBps()) == 1_000  # not before the queens relay it
    n.relay(msg)
    assert wv._call(wv.fn.maxFailBps()) == 2_000


def test_too_few_votes_cannot_propose_and_a_late_majority_cannot_vote(net: Net) -> None:
    """Below the threshold nobody proposes; a proposal nobody with genesis votes supports is defeated."""
    n = net
    rental = GPURental(n.client("eth", TEAM), n.m.eth.address("GPURental"))
    target, data = [n.m.eth.address("GPURental")], [_data(rental.fn.setFeeBps(0))]
    with pytest.raises(ContractRevertError) as exc:
        n.gov(LATE).propose(target, [0], data, "Fees to zero")
    assert exc.value.error == "GovernorInsufficientProposerVotes"
    gov = n.gov(ADVISOR)
    pid = gov.propose(target, [0], data, "Fees to zero")
    increase_time(n.eth, DEFAULTS.voting_delay_s + 1)
    gov.cast_vote(pid, FOR)  # the advisors' 5 %: above quorum...
    n.gov(TEAM).cast_vote(pid, AGAINST)  # ...but the team's 15 % says no
    increase_time(n.eth, DEFAULTS.voting_period_s)
    assert gov.state(pid) == 3  # Defeated
    assert rental._call(rental.fn.feeBps()) == 250


def test_deploy_refuses_a_genesis_that_could_not_govern() -> None:
    """check_governable: the votes at genesis must reach quorum and someone the threshold."""
    from blendr.errors import ConfigError

    ok = DEFAULTS
    check_governable(ok)
    with pytest.raises(ConfigError, match="no team beneficiary"):
        check_governable(replace(ok, team=[]))
    tiny = [Grant(TEAM.address, tokens(1))]
    with pytest.raises(ConfigError, match="below the quorum"):
        check_governable(replace(ok, team=tiny, investors=tiny, advisors=tiny))
    with pytest.raises(ConfigError, match="above the team share"):
        check_governable(replace(ok, team=[Grant(TEAM.address, SUPPLY)]))
    with pytest.raises(ConfigError, match="must be the only one"):
        check_governable(replace(ok, team=[Grant(TEAM.address), Grant(LATE.address, tokens(1))]))
    with pytest.raises(ConfigError, match="below the proposal threshold"):
        check_governable(replace(ok, proposal_threshold_bps=2_000))


def test_the_shipped_distributor_vests_through_votes_vesting_wallets(net: Net) -> None:
    """Every genesis wallet is a VotesVestingWallet bound to GPUTOKEN (its votesToken), with the event log."""
    for cat in ("team", "investors", "advisors"):
        [g] = net.m.accounts["genesis"][cat]
        wallet = at(net.eth, "eth", "VotesVestingWallet", g["wallet"])
        assert wallet.functions.votesToken().call() == net.m.eth.address("GPUToken")
        logs = wallet.events.VotesDelegated().get_logs(from_block=0)
        assert [(x["args"]["votesToken"], x["args"]["delegatee"]) for x in logs] == [
            (net.m.eth.address("GPUToken"), g["beneficiary"])]
