"""Governance: voting power = delegated GPUTOKEN + stake at the snapshot; timelocked parameter changes;
flash-borrowed tokens carry no weight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractPanicError

from tests.contracts.chainkit import deploy, increase_time, now, reverts, send

E18 = 10**18
ZERO = "0x" + "00" * 20
PROVIDER, QUEEN, KING = 0, 1, 2
VOTING_DELAY, VOTING_PERIOD, TIMELOCK_DELAY = 2, 10, 60
THRESHOLD = 1_000 * E18
QUORUM_PCT = 4
ETH_DEPTH, ETC_DEPTH = 12, 4_000  # the production defaults (blendr/chain/networks.py)
AGAINST, FOR, ABSTAIN = 0, 1, 2
PENDING, ACTIVE, CANCELED, DEFEATED, SUCCEEDED, QUEUED, EXPIRED, EXECUTED = range(8)
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
GOVERNOR_ROLE = Web3.keccak(text="GOVERNOR_ROLE")
PROPOSER_ROLE = Web3.keccak(text="PROPOSER_ROLE")
CANCELLER_ROLE = Web3.keccak(text="CANCELLER_ROLE")


@dataclass
class System:
    token: Contract
    staking: Contract
    timelock: Contract
    gov: Contract


@pytest.fixture
def system(eth: Web3) -> System:
    """Token, staking, timelock and governor wired as the deploy script does; the deployer then renounces.

    alice holds 100k (delegated to herself) and stakes 20k; bob only stakes 50k; the flash lender's pool
    (account 5) holds 500k, undelegated.
    """
    admin, alice, bob = eth.eth.accounts[:3]
    token = deploy(eth, "eth", "GPUToken", admin, 10**9 * E18)
    staking = deploy(eth, "eth", "StakingManager", admin, token.address, eth.eth.accounts[9], [E18, E18, E18], 86400)
    timelock = deploy(eth, "eth", "BlendrTimelock", TIMELOCK_DELAY, [], [ZERO], admin)
    gov = deploy(
        eth, "eth", "Governance", token.address, staking.address, timelock.address, VOTING_DELAY, VOTING_PERIOD,
        THRESHOLD, QUORUM_PCT, ETH_DEPTH, ETC_DEPTH,
    )
    send(timelock.functions.grantRole(PROPOSER_ROLE, gov.address), admin)
    send(timelock.functions.grantRole(CANCELLER_ROLE, gov.address), admin)
    send(staking.functions.grantRole(GOVERNOR_ROLE, timelock.address), admin)
    send(staking.functions.grantRole(b"\x00" * 32, timelock.address), admin)
    send(staking.functions.renounceRole(GOVERNOR_ROLE, admin), admin)
    send(staking.functions.renounceRole(b"\x00" * 32, admin), admin)
    send(timelock.functions.renounceRole(b"\x00" * 32, admin), admin)
    send(token.functions.grantRole(MINTER_ROLE, admin), admin)
    for acct, amount in [(alice, 120_000 * E18), (bob, 50_000 * E18), (eth.eth.accounts[5], 500_000 * E18)]:
        send(token.functions.mint(acct, amount), admin)
    send(token.functions.delegate(alice), alice)
    for acct, amount in [(alice, 20_000 * E18), (bob, 50_000 * E18)]:
        send(token.functions.approve(staking.address, amount), acct)
        send(staking.functions.stake(QUEEN, amount), acct)
    increase_time(eth, 1)
    return System(token, staking, timelock, gov)


def _proposal(s: System, amount: int) -> tuple[list[str], list[int], list[bytes], str]:
    data = s.staking.encode_abi("setMinStake", [PROVIDER, amount])
    return [s.staking.address], [0], [Web3.to_bytes(hexstr=data)], f"Set provider min stake to {amount}"


def _propose(eth: Web3, s: System, amount: int, proposer: str) -> int:
    targets, values, calldatas, desc = _proposal(s, amount)
    pid = s.gov.functions.propose(targets, values, calldatas, desc).call({"from": proposer})
    send(s.gov.functions.propose(targets, values, calldatas, desc), proposer)
    return int(pid)


def test_constructor_and_views(eth: Web3, system: System) -> None:
    """The governor reports its parameters, staking, timelock and timestamp clock."""
    gov = system.gov
    assert gov.functions.name().call() == "BlendrChain Governance"
    assert gov.functions.staking().call() == system.staking.address
    assert gov.functions.timelock().call() == system.timelock.address
    assert gov.functions.token().call() == system.token.address
    assert gov.functions.votingDelay().call() == VOTING_DELAY
    assert gov.functions.votingPeriod().call() == VOTING_PERIOD
    assert gov.functions.proposalThreshold().call() == THRESHOLD
    assert gov.functions.quorumNumerator().call() == QUORUM_PCT
    assert gov.functions.clock().call() == now(eth)
    assert gov.functions.CLOCK_MODE().call() == "mode=timestamp"
    past = now(eth) - 1
    assert gov.functions.quorum(past).call() == 670_000 * E18 * QUORUM_PCT // 100


@pytest.mark.parametrize("which", ["staking", "timelock"])
def test_constructor_rejects_zero_address(eth: Web3, system: System, which: str) -> None:
    """Staking and timelock must be non-zero."""
    staking = ZERO if which == "staking" else system.staking.address
    timelock = ZERO if which == "timelock" else system.timelock.address
    with reverts("GovernanceZeroAddress"):
        deploy(eth, "eth", "Governance", system.token.address, staking, timelock, 1, 5, 0, 4, 12, 4_000)


def test_voting_power_is_delegated_plus_staked(eth: Web3, system: System) -> None:
    """getVotes = delegated token votes + stake (active and unbonding) at the timepoint."""
    alice, bob, carol = eth.eth.accounts[1:4]
    gov, staking = system.gov, system.staking
    t = now(eth) - 1
    assert gov.functions.getVotes(alice, t).call() == 100_000 * E18 + 20_000 * E18
    assert gov.functions.getVotes(bob, t).call() == 50_000 * E18  # staked only, never delegated
    assert gov.functions.getVotes(carol, t).call() == 0
    send(staking.functions.requestUnstake(QUEEN, 10_000 * E18), bob)
    increase_time(eth, 1)
    assert gov.functions.getVotes(bob, now(eth) - 1).call() == 50_000 * E18


def test_proposal_threshold_counts_stake(eth: Web3, system: System) -> None:
    """A staker without delegated tokens may propose; an account with no power may not."""
    bob, carol = eth.eth.accounts[2], eth.eth.accounts[3]
    _propose(eth, system, 5 * E18, bob)
    targets, values, calldatas, desc = _proposal(system, 6 * E18)
    with reverts("GovernorInsufficientProposerVotes"):
        send(system.gov.functions.propose(targets, values, calldatas, desc), carol)


def test_propose_vote_queue_execute_parameter_change(eth: Web3, system: System) -> None:
    """A proposal passes with held + staked votes, is queued in the timelock and changes StakingManager."""
    alice, bob = eth.eth.accounts[1:3]
    gov, staking = system.gov, system.staking
    pid = _propose(eth, system, 123 * E18, alice)
    assert gov.functions.state(pid).call() == PENDING
    increase_time(eth, VOTING_DELAY + 1)
    assert gov.functions.state(pid).call() == ACTIVE
    assert gov.functions.castVote(pid, FOR).call({"from": alice}) == 120_000 * E18
    send(gov.functions.castVote(pid, FOR), alice)
    send(gov.functions.castVote(pid, AGAINST), bob)
    assert gov.functions.proposalVotes(pid).call() == [50_000 * E18, 120_000 * E18, 0]
    assert gov.functions.hasVoted(pid, bob).call()
    increase_time(eth, VOTING_PERIOD)
    assert gov.functions.state(pid).call() == SUCCEEDED
    targets, values, calldatas, desc = _proposal(system, 123 * E18)
    desc_hash = Web3.keccak(text=desc)
    send(gov.functions.queue(targets, values, calldatas, desc_hash), alice)
    assert gov.functions.state(pid).call() == QUEUED
    with reverts("TimelockUnexpectedOperationState"):
        send(gov.functions.execute(targets, values, calldatas, desc_hash), alice)
    increase_time(eth, TIMELOCK_DELAY)
    send(gov.functions.execute(targets, values, calldatas, desc_hash), eth.eth.accounts[7])
    assert gov.functions.state(pid).call() == EXECUTED
    assert staking.functions.minStake(PROVIDER).call() == 123 * E18
    with reverts("AccessControlUnauthorizedAccount"):  # nobody but the timelock holds GOVERNOR_ROLE now
        send(staking.functions.setMinStake(PROVIDER, 1), eth.eth.accounts[0])


def test_proposal_without_quorum_is_defeated(eth: Web3, system: System) -> None:
    """Votes below quorum (4% of supply) defeat a proposal."""
    alice = eth.eth.accounts[1]
    pid = _propose(eth, system, 7 * E18, alice)
    increase_time(eth, VOTING_DELAY + VOTING_PERIOD + 1)
    assert system.gov.functions.state(pid).call() == DEFEATED


def test_flash_loan_votes_weigh_nothing(eth: Web3, system: System) -> None:
    """Tokens borrowed and delegated inside one transaction cast a zero-weight vote; the tally is unchanged,
    while alice, delegated before the snapshot, votes with held + staked weight."""
    alice, pool = eth.eth.accounts[1], eth.eth.accounts[5]
    gov, token = system.gov, system.token
    lender = deploy(eth, "eth", "EconFlashLender", token.address)
    borrower = deploy(eth, "eth", "EconFlashBorrower", lender.address, gov.address)
    send(token.functions.transfer(lender.address, 500_000 * E18), pool)
    pid = _propose(eth, system, 9 * E18, alice)
    increase_time(eth, VOTING_DELAY + 1)
    before = gov.functions.proposalVotes(pid).call()
    send(borrower.functions.attack(500_000 * E18, pid), eth.eth.accounts[6])
    assert borrower.functions.votesDuringLoan().call() == 500_000 * E18  # live votes existed inside the loan...
    assert borrower.functions.lastWeight().call() == 0  # ...but the snapshot saw none
    assert gov.functions.hasVoted(pid, borrower.address).call()
    assert gov.functions.proposalVotes(pid).call() == before
    assert token.functions.balanceOf(lender.address).call() == 500_000 * E18
    send(gov.functions.castVote(pid, FOR), alice)
    assert gov.functions.proposalVotes(pid).call()[1] == before[1] + 120_000 * E18


def test_flash_lender_requires_repayment(eth: Web3, system: System) -> None:
    """The test lender really enforces same-transaction repayment (so the scenario above is a real loan)."""
    lender = deploy(eth, "eth", "EconFlashLender", system.token.address)
    borrower = deploy(eth, "eth", "EconFlashBorrower", lender.address, system.gov.address)
    send(system.token.functions.transfer(lender.address, 10 * E18), eth.eth.accounts[5])
    pid = _propose(eth, system, 9 * E18, eth.eth.accounts[1])
    increase_time(eth, VOTING_DELAY + 1)
    send(borrower.functions.setRepays(False), eth.eth.accounts[6])
    with reverts("EconFlashLenderNotRepaid"):
        send(borrower.functions.attack(10 * E18, pid), eth.eth.accounts[6])
    assert system.token.functions.balanceOf(lender.address).call() == 10 * E18


# -- the nodes' confirmation depths (Governance.confirmations): governance's, inside their bounds ------------------

def _execute(eth: Web3, s: System, calls: list[tuple[str, bytes]], desc: str) -> Any:
    """Runs ``calls`` through a proposal alice passes (propose, vote, queue, execute); returns execute()."""
    alice = eth.eth.accounts[1]
    targets, values, datas = [t for t, _ in calls], [0] * len(calls), [d for _, d in calls]
    pid = s.gov.functions.propose(targets, values, datas, desc).call({"from": alice})
    send(s.gov.functions.propose(targets, values, datas, desc), alice)
    increase_time(eth, VOTING_DELAY + 1)
    send(s.gov.functions.castVote(pid, FOR), alice)
    increase_time(eth, VOTING_PERIOD)
    desc_hash = Web3.keccak(text=desc)
    send(s.gov.functions.queue(targets, values, datas, desc_hash), alice)
    increase_time(eth, TIMELOCK_DELAY)
    return s.gov.functions.execute(targets, values, datas, desc_hash)


def _set_depths(s: System, eth_depth: int, etc_depth: int) -> tuple[str, bytes]:
    return s.gov.address, Web3.to_bytes(hexstr=s.gov.encode_abi("setConfirmations", [eth_depth, etc_depth]))


def test_confirmations_start_as_deployed_with_the_registry_bounds(eth: Web3, system: System) -> None:
    """The constructor's depths are read back and announced; the bounds are the registry's."""
    from blendr.chain import govparams as gp

    gov = system.gov
    assert gov.functions.confirmations().call() == [ETH_DEPTH, ETC_DEPTH]
    assert gov.functions.MAX_ETH_CONFIRMATIONS().call() == gp.param("chain.eth_confirmations").hi == 1_000
    assert gov.functions.MAX_ETC_CONFIRMATIONS().call() == gp.param("chain.etc_confirmations").hi == 20_000
    assert gp.param("chain.eth_confirmations").lo == gp.param("chain.etc_confirmations").lo == 1
    created = gov.events.ConfirmationsChanged().get_logs(from_block=0)
    assert [(e["args"]["ethDepth"], e["args"]["etcDepth"]) for e in created] == [(ETH_DEPTH, ETC_DEPTH)]


@pytest.mark.parametrize("depths", [(0, 4_000), (1_001, 4_000), (12, 0), (12, 20_001)])
def test_constructor_refuses_depths_out_of_bounds(eth: Web3, system: System, depths: tuple[int, int]) -> None:
    with reverts("GovernanceInvalidConfirmations") as r:
        deploy(eth, "eth", "Governance", system.token.address, system.staking.address, system.timelock.address,
               1, 5, 0, 4, *depths)
    assert r.args == list(depths)


def test_only_an_executed_proposal_sets_the_confirmations(eth: Web3, system: System) -> None:
    """Nobody sets the depths directly, not the deployer nor the timelock itself; a proposal does, at the edges of
    the bounds, and the change is announced."""
    gov, timelock = system.gov, system.timelock
    admin, alice = eth.eth.accounts[:2]
    for who in (admin, alice):
        with reverts("GovernorOnlyExecutor"):
            send(gov.functions.setConfirmations(20, 5_000), who)
    # the timelock calling on its own (an operation another proposer scheduled) is refused too
    eth.provider.make_request("anvil_impersonateAccount", [timelock.address])  # type: ignore[arg-type]
    eth.provider.make_request("anvil_setBalance", [timelock.address, hex(10**18)])  # type: ignore[arg-type]
    try:
        with pytest.raises(ContractPanicError, match="Panic error 0x31"):  # no governance call is queued
            gov.functions.setConfirmations(20, 5_000).call({"from": timelock.address})
    finally:
        eth.provider.make_request("anvil_stopImpersonatingAccount", [timelock.address])  # type: ignore[arg-type]
    receipt = send(_execute(eth, system, [_set_depths(system, 1_000, 1)], "Depths: ETH 1000, ETC 1"), alice)
    assert gov.functions.confirmations().call() == [1_000, 1]
    logs = gov.events.ConfirmationsChanged().process_receipt(receipt)
    assert [(e["args"]["ethDepth"], e["args"]["etcDepth"]) for e in logs] == [(1_000, 1)]
    send(_execute(eth, system, [_set_depths(system, 1, 20_000)], "Depths: ETH 1, ETC 20000"), alice)
    assert gov.functions.confirmations().call() == [1, 20_000]


def test_a_proposal_out_of_bounds_fails_at_execution_and_changes_nothing(eth: Web3, system: System) -> None:
    execute = _execute(eth, system, [_set_depths(system, 12, 20_001)], "Depths: ETC too deep")
    with reverts("GovernanceInvalidConfirmations") as r:
        send(execute, eth.eth.accounts[1])
    assert r.args == [12, 20_001]
    assert system.gov.functions.confirmations().call() == [ETH_DEPTH, ETC_DEPTH]
