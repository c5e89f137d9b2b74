"""Governance vote weight comes from the snapshot: a stateful model of GPUTOKEN balances, delegations and
StakingManager stake predicts ``getVotes`` at every past time and the weight of every vote, however the
tokens and stake move after the snapshot (even borrowed, voted and returned inside one block).

The governor's clock is block timestamps (ERC-6372 mode=timestamp); anvil may give consecutive blocks the
same timestamp, so the machine runs with a block timestamp interval of one second (each block one second
after the previous one): the model is keyed by the timestamps of the blocks that changed it."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tests.contracts.chainkit import deploy, mine, now, reverts, send

E18 = 10**18
GWEI = 10**9
ZERO = "0x" + "00" * 20
VOTING_DELAY, VOTING_PERIOD, TIMELOCK_DELAY, UNBONDING = 2, 20, 60, 86400  # seconds
TIERS = 3
GAS = 500_000  # explicit, so txs queued for one block are not gas-estimated against the unmined state
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
PROPOSER_ROLE = Web3.keccak(text="PROPOSER_ROLE")
CANCELLER_ROLE = Web3.keccak(text="CANCELLER_ROLE")
# voters A..D (accounts 1-4): (balance minted, delegatee index or None, (tier, stake) or None)
INITIAL: list[tuple[int, int | None, tuple[int, int] | None]] = [
    (100_000 * E18, 0, (1, 10_000 * E18)),
    (60_000 * E18, 0, None),
    (40_000 * E18, None, (0, 5_000 * E18)),
    (20_000 * E18, 3, None),
]
LENDER_POOL = 300_000 * E18


@dataclass
class Env:
    w3: Web3
    token: Contract
    staking: Contract
    gov: Contract
    lender: Contract
    borrower: Contract
    voters: list[str]
    attacker: str
    admin: str


@pytest.fixture
def env(eth: Web3) -> Env:
    """GPUToken, StakingManager, BlendrTimelock and Governance (threshold 0, so anyone proposes), the voters
    funded, delegated and staked per INITIAL, and a funded EconFlashLender with its EconFlashBorrower."""
    accts = eth.eth.accounts
    admin, voters = accts[0], list(accts[1:5])
    token = deploy(eth, "eth", "GPUToken", admin, 10**9 * E18)
    staking = deploy(eth, "eth", "StakingManager", admin, token.address, accts[9], [E18, E18, E18], UNBONDING)
    timelock = deploy(eth, "eth", "BlendrTimelock", TIMELOCK_DELAY, [], [ZERO], admin)
    gov = deploy(
        eth,
        "eth",
        "Governance",
        token.address,
        staking.address,
        timelock.address,
        VOTING_DELAY,
        VOTING_PERIOD,
        0,
        4,
        12,
        4_000,
    )
    send(timelock.functions.grantRole(PROPOSER_ROLE, gov.address), admin)
    send(timelock.functions.grantRole(CANCELLER_ROLE, gov.address), admin)
    send(token.functions.grantRole(MINTER_ROLE, admin), admin)
    lender = deploy(eth, "eth", "EconFlashLender", token.address)
    borrower = deploy(eth, "eth", "EconFlashBorrower", lender.address, gov.address)
    send(token.functions.mint(lender.address, LENDER_POOL), admin)
    for who, (amount, dlg, stk) in zip(voters, INITIAL, strict=True):
        send(token.functions.mint(who, amount), admin)
        send(token.functions.approve(staking.address, 2**256 - 1), who)
        if dlg is not None:
            send(token.functions.delegate(voters[dlg]), who)
        if stk is not None:
            send(staking.functions.stake(*stk), who)
    mine(eth)
    return Env(eth, token, staking, gov, lender, borrower, voters, accts[6], admin)


@dataclass
class State:
    """What the chain holds at the end of a block, as far as voting power goes."""

    bal: dict[str, int]
    dlg: dict[str, str]  # holder -> delegatee (ZERO: not delegated)
    stake: dict[str, int]  # active + unbonding, all tiers

    def token_votes(self, acct: str) -> int:
        return sum(b for h, b in self.bal.items() if self.dlg.get(h, ZERO) == acct)

    def votes(self, acct: str) -> int:
        return self.token_votes(acct) + self.stake.get(acct, 0)

    def copy(self) -> State:
        return State(dict(self.bal), dict(self.dlg), dict(self.stake))


@dataclass
class Proposal:
    pid: int
    snapshot: int
    deadline: int
    tally: list[int] = field(default_factory=lambda: [0, 0, 0])  # against, for, abstain
    voters: set[str] = field(default_factory=set)


Vote = tuple[Proposal, str, int, int]  # proposal, voter, support, expected weight

ACCT = st.integers(0, 3)
FRAC = st.integers(0, 100)
ACTION = st.one_of(
    st.tuples(st.just("transfer"), ACCT, ACCT, FRAC),
    st.tuples(st.just("delegate"), ACCT, st.integers(0, 5)),  # 4: the borrower contract, 5: nobody
    st.tuples(st.just("stake"), ACCT, st.integers(0, TIERS - 1), FRAC),
    st.tuples(st.just("unstake"), ACCT, st.integers(0, TIERS - 1), FRAC),
)


class GovernanceMachine(RuleBasedStateMachine):
    """Random transfers, delegations, stakes, unstake requests, withdrawals, blocks, proposals and votes
    (single, several in one block, borrow-vote-return in one block, flash loan in one transaction)."""

    env: Env

    def __init__(self) -> None:
        super().__init__()
        e = self.env
        self._snap = e.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.holders = [*e.voters, e.staking.address, e.lender.address, e.borrower.address]
        self.targets = [*e.voters, e.borrower.address, ZERO]
        bal = {h: 0 for h in self.holders}
        bal[e.lender.address] = LENDER_POOL
        cur = State(bal, {}, {})
        self.active: dict[tuple[str, int], int] = {}
        self.unbonding: dict[tuple[str, int], int] = {}
        for who, (amount, dlg, stk) in zip(e.voters, INITIAL, strict=True):
            cur.bal[who] = amount
            if dlg is not None:
                cur.dlg[who] = e.voters[dlg]
            if stk is not None:
                tier, staked = stk
                cur.bal[who] -= staked
                cur.bal[e.staking.address] += staked
                cur.stake[who] = staked
                self.active[(who, tier)] = staked
        self.cur = cur
        e.w3.provider.make_request("anvil_setBlockTimestampInterval", [1])  # type: ignore[arg-type]
        mine(e.w3)
        self.start = now(e.w3)
        self.blocks: list[int] = [self.start]  # timestamps of the blocks that changed the model
        self.states: list[State] = [cur.copy()]
        self.props: list[Proposal] = []
        self._propose()  # one open from the start, so that votes happen in most examples

    def teardown(self) -> None:
        self.env.w3.provider.make_request("anvil_removeBlockTimestampInterval", [])  # type: ignore[arg-type]
        self.env.w3.provider.make_request("evm_revert", [self._snap])  # type: ignore[arg-type]

    def _time(self, receipt: Any) -> int:
        """The timestamp of ``receipt``'s block (the governor's timepoint for what it changed)."""
        return int(self.env.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

    # ------------------------------------------------------------ model

    def _at(self, block: int) -> State:
        """The modelled state at the end of the block stamped ``block`` (a timestamp since the machine started)."""
        assert block >= self.start
        return self.states[bisect.bisect_right(self.blocks, block) - 1]

    def _commit(self, block: int) -> None:
        if self.blocks[-1] == block:
            self.states[-1] = self.cur.copy()
        else:
            assert block > self.blocks[-1]
            self.blocks.append(block)
            self.states.append(self.cur.copy())

    def _prepare(self, action: tuple[Any, ...]) -> tuple[Any, str] | None:
        """Applies ``action`` to the model; returns the call and its sender (None: it would revert, skip)."""
        e, s = self.env, self.cur
        kind, who = action[0], self.env.voters[action[1]]
        if kind == "transfer":
            dst = e.voters[action[2]]
            amount = s.bal[who] * action[3] // 100
            s.bal[who] -= amount
            s.bal[dst] += amount
            return e.token.functions.transfer(dst, amount), who
        if kind == "delegate":
            s.dlg[who] = self.targets[action[2]]
            return e.token.functions.delegate(self.targets[action[2]]), who
        tier = action[2]
        if kind == "stake":
            amount = s.bal[who] * action[3] // 100
            if amount == 0:
                return None
            s.bal[who] -= amount
            s.bal[e.staking.address] += amount
            s.stake[who] = s.stake.get(who, 0) + amount
            self.active[(who, tier)] = self.active.get((who, tier), 0) + amount
            return e.staking.functions.stake(tier, amount), who
        assert kind == "unstake"
        amount = self.active.get((who, tier), 0) * action[3] // 100
        if amount == 0:
            return None
        self.active[(who, tier)] -= amount  # unbonding stake still counts: s.stake is unchanged
        self.unbonding[(who, tier)] = self.unbonding.get((who, tier), 0) + amount
        return e.staking.functions.requestUnstake(tier, amount), who

    def _vote(self, prop: Proposal, voter: str, support: int) -> tuple[Any, str, Vote]:
        weight = self._at(prop.snapshot).votes(voter)
        prop.tally[support] += weight
        prop.voters.add(voter)
        return self.env.gov.functions.castVote(prop.pid, support), voter, (prop, voter, support, weight)

    def _check_vote(self, receipt: Any, vote: Vote) -> None:
        prop, voter, support, weight = vote
        gov = self.env.gov
        logs = [
            ev
            for ev in gov.events.VoteCast().process_receipt(receipt, errors=DISCARD)
            if ev.address == gov.address
        ]
        assert len(logs) == 1
        args = logs[0].args
        assert (args.voter, args.proposalId, args.support) == (voter, prop.pid, support)
        assert args.weight == weight, f"vote weighed {args.weight}, the snapshot held {weight}"

    # ------------------------------------------------------------ chain helpers

    def _activate(self, prop: Proposal) -> bool:
        """Mines until both the latest block (where calls and gas estimates run) and the next one may vote on
        ``prop``; False when its voting period is over."""
        latest = now(self.env.w3)  # each block mined one second after the previous one
        if latest >= prop.deadline:
            if latest == prop.deadline:  # a call would still see it open, the mined tx would not
                mine(self.env.w3)
            return False
        if latest <= prop.snapshot:
            mine(self.env.w3, prop.snapshot + 1 - latest)
        return True

    def _one_block(self, txs: list[tuple[Any, str, Vote | None]]) -> None:
        """Sends ``txs`` into a single block, in order (decreasing tips), and checks each succeeded."""
        w3 = self.env.w3
        hashes = []
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            for i, (fn, sender, _) in enumerate(txs):
                tip = (len(txs) - i) * GWEI
                hashes.append(
                    fn.transact(
                        {"from": sender, "gas": GAS, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": tip}
                    )
                )
        finally:
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
        assert all(r["status"] == 1 for r in receipts)
        block = receipts[0]["blockNumber"]
        assert all(r["blockNumber"] == block for r in receipts)
        stamp = self._time(receipts[0])
        assert [r["transactionIndex"] for r in receipts] == list(range(len(receipts)))
        for r, (_, _, vote) in zip(receipts, txs, strict=True):
            if vote is not None:
                self._check_vote(r, vote)
        self._commit(stamp)

    # ------------------------------------------------------------ rules

    @rule(action=ACTION)
    def act(self, action: tuple[Any, ...]) -> None:
        prepared = self._prepare(action)
        if prepared is not None:
            self._commit(self._time(send(*prepared)))

    @rule(n=st.integers(1, 12))
    def mine_blocks(self, n: int) -> None:
        mine(self.env.w3, n)

    @rule(who=ACCT, tier=st.integers(0, TIERS - 1))
    def withdraw(self, who: int, tier: int) -> None:
        e, voter = self.env, self.env.voters[who]
        amount = self.unbonding.pop((voter, tier), 0)
        if amount == 0:
            return
        # evm_increaseTime does not apply under a timestamp interval: set the next block's time instead
        e.w3.provider.make_request("evm_setNextBlockTimestamp", [now(e.w3) + UNBONDING + 1])  # type: ignore[arg-type]
        mine(e.w3)
        receipt = send(e.staking.functions.withdraw(tier), voter)
        self.cur.bal[voter] += amount
        self.cur.bal[e.staking.address] -= amount
        self.cur.stake[voter] -= amount
        self._commit(self._time(receipt))

    @precondition(lambda self: len(self.props) < 3)
    @rule()
    def propose(self) -> None:
        self._propose()

    def _propose(self) -> None:
        e = self.env
        data = Web3.to_bytes(hexstr=e.staking.encode_abi("setMinStake", [0, (len(self.props) + 2) * E18]))
        args = ([e.staking.address], [0], [data], f"invariant proposal {len(self.props)}")
        proposer = e.voters[len(self.props) % 4]
        pid = int(e.gov.functions.propose(*args).call({"from": proposer}))
        t = self._time(send(e.gov.functions.propose(*args), proposer))
        prop = Proposal(pid, t + VOTING_DELAY, t + VOTING_DELAY + VOTING_PERIOD)
        assert e.gov.functions.proposalSnapshot(pid).call() == prop.snapshot
        assert e.gov.functions.proposalDeadline(pid).call() == prop.deadline
        self.props.append(prop)

    @rule(pick=st.integers(0, 2), who=ACCT, support=st.integers(0, 2))
    def vote(self, pick: int, who: int, support: int) -> None:
        prop, voter = self.props[pick % len(self.props)], self.env.voters[who]
        fn = self.env.gov.functions.castVote(prop.pid, support)
        if not self._activate(prop):
            with reverts("GovernorUnexpectedProposalState"):
                send(fn, voter)
        elif voter in prop.voters:
            with reverts("GovernorAlreadyCastVote"):
                send(fn, voter)
        else:
            fn, sender, vote = self._vote(prop, voter, support)
            self._check_vote(send(fn, sender), vote)

    @rule(
        pick=st.integers(0, 2),
        who=ACCT,
        support=st.integers(0, 2),
        moves=st.lists(ACTION, min_size=1, max_size=4),
        pos=st.integers(0, 4),
    )
    def moves_and_vote_in_one_block(
        self, pick: int, who: int, support: int, moves: list[tuple[Any, ...]], pos: int
    ) -> None:
        """Transfers, delegations and stake changes around a vote, all in the vote's block (the first one
        by the voter): none of them changes its weight."""
        prop, voter = self.props[pick % len(self.props)], self.env.voters[who]
        if not self._activate(prop) or voter in prop.voters:
            return
        moves = [(moves[0][0], who, *moves[0][2:]), *moves[1:]]
        pos %= len(moves) + 1
        txs: list[tuple[Any, str, Vote | None]] = []
        for i, move in enumerate(moves):
            if i == pos:
                txs.append(self._vote(prop, voter, support))
            prepared = self._prepare(move)
            if prepared is not None:
                txs.append((*prepared, None))
        if pos == len(moves):
            txs.append(self._vote(prop, voter, support))
        self._one_block(txs)

    @rule(
        pick=st.integers(0, 2),
        lender=ACCT,
        shift=st.integers(1, 3),
        frac=st.integers(1, 100),
        support=st.integers(0, 2),
    )
    def borrow_vote_return_in_one_block(
        self, pick: int, lender: int, shift: int, frac: int, support: int
    ) -> None:
        """Another voter lends tokens; the borrower self-delegates, votes and pays back in the same block."""
        prop = self.props[pick % len(self.props)]
        borrower = (lender + shift) % 4
        voter = self.env.voters[borrower]
        if not self._activate(prop) or voter in prop.voters:
            return
        amount = self.cur.bal[self.env.voters[lender]] * frac // 100
        txs: list[tuple[Any, str, Vote | None]] = []
        txs.append((*self._transfer(lender, borrower, amount), None))
        txs.append((*self._prepare(("delegate", borrower, borrower)), None))  # type: ignore[misc]
        txs.append(self._vote(prop, voter, support))
        txs.append((*self._transfer(borrower, lender, amount), None))
        self._one_block(txs)

    def _transfer(self, src: int, dst: int, amount: int) -> tuple[Any, str]:
        a, b = self.env.voters[src], self.env.voters[dst]
        self.cur.bal[a] -= amount
        self.cur.bal[b] += amount
        return self.env.token.functions.transfer(b, amount), a

    @rule(pick=st.integers(0, 2), thousands=st.integers(1, LENDER_POOL // (1000 * E18)))
    def flash_loan_vote(self, pick: int, thousands: int) -> None:
        """EconFlashBorrower borrows, self-delegates, votes For and repays in one transaction."""
        e, prop = self.env, self.props[pick % len(self.props)]
        amount = thousands * 1000 * E18
        who = e.borrower.address
        if not self._activate(prop):
            return
        if who in prop.voters:
            with reverts("GovernorAlreadyCastVote"):
                send(e.borrower.functions.attack(amount, prop.pid), e.attacker)
            return
        self.cur.dlg[who] = who
        _, _, vote = self._vote(prop, who, 1)
        receipt = send(e.borrower.functions.attack(amount, prop.pid), e.attacker)
        self._check_vote(receipt, vote)
        assert e.borrower.functions.lastWeight().call() == vote[3]
        # the borrowed tokens were live votes inside the loan, yet weighed nothing
        assert e.borrower.functions.votesDuringLoan().call() == self.cur.token_votes(who) + amount
        self._commit(self._time(receipt))

    @rule(back=st.integers(1, 60))
    def check_past_block(self, back: int) -> None:
        """At a random past time: getPastVotes + getPastStake == getVotes == the model; balances now."""
        e = self.env
        latest = now(e.w3)
        block = max(self.start, latest - back)
        state = self._at(block)
        for acct in self.holders:
            tv = e.token.functions.getPastVotes(acct, block).call()
            sv = e.staking.functions.getPastStake(acct, block).call()
            assert (tv, sv) == (state.token_votes(acct), state.stake.get(acct, 0)), f"{acct} at {block}"
            assert e.gov.functions.getVotes(acct, block).call() == tv + sv
            assert e.token.functions.balanceOf(acct).call() == self.cur.bal[acct]

    # ------------------------------------------------------------ invariants

    @invariant()
    def votes_at_previous_block_match_model(self) -> None:
        e = self.env
        block = now(e.w3) - 1
        state = self._at(block)
        for acct in [*e.voters, e.borrower.address]:
            assert e.gov.functions.getVotes(acct, block).call() == state.votes(acct), f"{acct} at {block}"

    @invariant()
    def tallies_match_model(self) -> None:
        for prop in self.props:
            assert self.env.gov.functions.proposalVotes(prop.pid).call() == prop.tally


def test_vote_weight_comes_from_the_snapshot(env: Env) -> None:
    """getVotes(account, t) == delegated tokens + stake at time t, and every vote (plain, next to
    same-block moves, borrowed-and-returned, flash-loaned) weighs what the proposal's snapshot held."""
    GovernanceMachine.env = env
    run_state_machine_as_test(
        GovernanceMachine,
        settings=settings(
            max_examples=8,
            stateful_step_count=12,
            deadline=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
