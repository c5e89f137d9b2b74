"""StakingManager: stake, unbond, withdraw, slash, rewards, vote checkpoints and governor parameters."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tests.contracts.chainkit import deploy, increase_time, mine, now, reverts, send

E18 = 10**18
PROVIDER, QUEEN, KING = 0, 1, 2
MIN_STAKES = [100 * E18, 1_000 * E18, 10_000 * E18]
DELAY = 7 * 86400
ZERO = "0x" + "00" * 20
GOVERNOR_ROLE = Web3.keccak(text="GOVERNOR_ROLE")
SLASHER_ROLE = Web3.keccak(text="SLASHER_ROLE")
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
REASON = Web3.keccak(text="missed-heartbeat")


def _setup(w3: Web3) -> tuple[Contract, Contract]:
    """Token + staking; accounts 1..4 hold 1M tokens each and approved staking; account 8 is the slasher."""
    admin = w3.eth.accounts[0]
    treasury = w3.eth.accounts[9]
    token = deploy(w3, "eth", "GPUToken", admin, 10**9 * E18)
    staking = deploy(w3, "eth", "StakingManager", admin, token.address, treasury, MIN_STAKES, DELAY)
    send(token.functions.grantRole(MINTER_ROLE, admin), admin)
    send(staking.functions.grantRole(SLASHER_ROLE, w3.eth.accounts[8]), admin)
    for acct in [admin, *w3.eth.accounts[1:5]]:
        send(token.functions.mint(acct, 1_000_000 * E18), admin)
        send(token.functions.approve(staking.address, 2**256 - 1), acct)
    return token, staking


@pytest.fixture
def contracts(eth: Web3) -> tuple[Contract, Contract]:
    return _setup(eth)


def _ts(w3: Web3, receipt: Any) -> int:
    return int(w3.eth.get_block(receipt["blockNumber"])["timestamp"])


# ------------------------------------------------------------------ constructor and views


def test_constructor_sets_parameters(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Constructor arguments and defaults are readable; admin holds DEFAULT_ADMIN and GOVERNOR roles."""
    token, staking = contracts
    admin = eth.eth.accounts[0]
    assert staking.functions.token().call() == token.address
    assert staking.functions.treasury().call() == eth.eth.accounts[9]
    assert [staking.functions.minStake(t).call() for t in (PROVIDER, QUEEN, KING)] == MIN_STAKES
    assert staking.functions.unbondingDelay().call() == DELAY
    assert staking.functions.slashBurnBps().call() == 5000
    assert staking.functions.rewardRate().call() == 0
    assert staking.functions.clock().call() == now(eth)
    assert staking.functions.CLOCK_MODE().call() == "mode=timestamp"
    assert staking.functions.hasRole(b"\x00" * 32, admin).call()
    assert staking.functions.hasRole(GOVERNOR_ROLE, admin).call()


@pytest.mark.parametrize("which", ["admin", "token", "treasury"])
def test_constructor_rejects_zero_address(eth: Web3, contracts: tuple[Contract, Contract], which: str) -> None:
    """Admin, token and treasury must be non-zero."""
    token, _ = contracts
    args = {"admin": eth.eth.accounts[0], "token": token.address, "treasury": eth.eth.accounts[9]}
    args[which] = ZERO
    with reverts("StakingManagerZeroAddress"):
        deploy(eth, "eth", "StakingManager", args["admin"], args["token"], args["treasury"], MIN_STAKES, DELAY)


def test_constructor_rejects_bad_parameters(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """A zero minimum stake or an unbonding delay above 90 days is refused."""
    token, _ = contracts
    a, t = eth.eth.accounts[0], eth.eth.accounts[9]
    with reverts("StakingManagerInvalidMinStake"):
        deploy(eth, "eth", "StakingManager", a, token.address, t, [1, 0, 1], DELAY)
    with reverts("StakingManagerInvalidUnbondingDelay"):
        deploy(eth, "eth", "StakingManager", a, token.address, t, MIN_STAKES, 90 * 86400 + 1)


# ------------------------------------------------------------------ stake / unstake / withdraw


def test_stake_credits_caller(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """stake pulls tokens and credits the caller's active stake in that tier only."""
    token, staking = contracts
    alice = eth.eth.accounts[1]
    r = send(staking.functions.stake(QUEEN, 1_500 * E18), alice)
    assert staking.functions.stakeOf(alice, QUEEN).call() == 1_500 * E18
    assert staking.functions.stakeOf(alice, PROVIDER).call() == 0
    assert staking.functions.totalStakeOf(alice).call() == 1_500 * E18
    assert staking.functions.activeStakeOf(alice).call() == 1_500 * E18
    assert staking.functions.totalActiveStake().call() == 1_500 * E18
    assert staking.functions.totalStake().call() == 1_500 * E18
    assert token.functions.balanceOf(staking.address).call() == 1_500 * E18
    assert staking.functions.stakeAndMinimum(alice, QUEEN).call() == [
        1_500 * E18, staking.functions.minStake(QUEEN).call()]
    assert staking.functions.stakeAndMinimum(alice, PROVIDER).call()[0] == 0
    ev = staking.events.Staked().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["node"], ev["tier"], ev["payer"], ev["amount"]) == (alice, QUEEN, alice, 1_500 * E18)


def test_stake_zero(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Staking nothing is refused."""
    _, staking = contracts
    with reverts("StakingManagerZeroAmount"):
        send(staking.functions.stake(PROVIDER, 0), eth.eth.accounts[1])


def test_stake_for_credits_node(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """stakeFor is paid by the caller and credited to the node."""
    token, staking = contracts
    funder, node = eth.eth.accounts[1], eth.eth.accounts[6]
    before = token.functions.balanceOf(funder).call()
    r = send(staking.functions.stakeFor(node, PROVIDER, 300 * E18), funder)
    assert staking.functions.stakeOf(node, PROVIDER).call() == 300 * E18
    assert staking.functions.stakeOf(funder, PROVIDER).call() == 0
    assert token.functions.balanceOf(funder).call() == before - 300 * E18
    assert staking.events.Staked().process_receipt(r, errors=DISCARD)[0]["args"]["payer"] == funder


def test_stake_for_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """stakeFor refuses the zero node and a zero amount."""
    _, staking = contracts
    with reverts("StakingManagerZeroAddress"):
        send(staking.functions.stakeFor(ZERO, PROVIDER, 1), eth.eth.accounts[1])
    with reverts("StakingManagerZeroAmount"):
        send(staking.functions.stakeFor(eth.eth.accounts[6], PROVIDER, 0), eth.eth.accounts[1])


def test_request_unstake_and_withdraw(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Unstaking moves stake to unbonding at once; it is withdrawable only after the delay."""
    token, staking = contracts
    alice = eth.eth.accounts[1]
    send(staking.functions.stake(PROVIDER, 500 * E18), alice)
    r = send(staking.functions.requestUnstake(PROVIDER, 200 * E18), alice)
    unlock = _ts(eth, r) + DELAY
    assert staking.functions.stakeOf(alice, PROVIDER).call() == 300 * E18
    assert staking.functions.unbondingOf(alice, PROVIDER).call() == [200 * E18, unlock]
    assert staking.functions.totalStakeOf(alice).call() == 500 * E18  # unbonding still counts for votes
    assert staking.functions.totalActiveStake().call() == 300 * E18
    ev = staking.events.UnstakeRequested().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["amount"], ev["unbonding"], ev["unlockAt"]) == (200 * E18, 200 * E18, unlock)
    with reverts("StakingManagerStillUnbonding"):
        send(staking.functions.withdraw(PROVIDER), alice)
    increase_time(eth, DELAY)
    before = token.functions.balanceOf(alice).call()
    r = send(staking.functions.withdraw(PROVIDER), alice)
    assert token.functions.balanceOf(alice).call() == before + 200 * E18
    assert staking.functions.unbondingOf(alice, PROVIDER).call() == [0, 0]
    assert staking.functions.totalStakeOf(alice).call() == 300 * E18
    assert staking.events.Withdrawn().process_receipt(r, errors=DISCARD)[0]["args"]["amount"] == 200 * E18


def test_second_unstake_rearms_timer(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """A later request adds to the unbonding amount and pushes the unlock time of all of it."""
    _, staking = contracts
    alice = eth.eth.accounts[1]
    send(staking.functions.stake(KING, 20_000 * E18), alice)
    send(staking.functions.requestUnstake(KING, 1_000 * E18), alice)
    increase_time(eth, DELAY - 100)
    r = send(staking.functions.requestUnstake(KING, 500 * E18), alice)
    assert staking.functions.unbondingOf(alice, KING).call() == [1_500 * E18, _ts(eth, r) + DELAY]
    increase_time(eth, 200)
    with reverts("StakingManagerStillUnbonding"):
        send(staking.functions.withdraw(KING), alice)


def test_request_unstake_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Unstaking zero or more than the active stake of the tier is refused."""
    _, staking = contracts
    alice = eth.eth.accounts[1]
    send(staking.functions.stake(PROVIDER, 100 * E18), alice)
    with reverts("StakingManagerZeroAmount"):
        send(staking.functions.requestUnstake(PROVIDER, 0), alice)
    with reverts("StakingManagerInsufficientStake"):
        send(staking.functions.requestUnstake(PROVIDER, 100 * E18 + 1), alice)
    with reverts("StakingManagerInsufficientStake"):
        send(staking.functions.requestUnstake(QUEEN, 1), alice)


def test_withdraw_nothing(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Withdrawing with nothing unbonding is refused."""
    _, staking = contracts
    with reverts("StakingManagerNothingToWithdraw"):
        send(staking.functions.withdraw(PROVIDER), eth.eth.accounts[1])


# ------------------------------------------------------------------ slashing


def test_slash_takes_active_then_unbonding(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Slashing drains active stake first, then unbonding; half is burned and half goes to the treasury."""
    token, staking = contracts
    alice, slasher, treasury = eth.eth.accounts[1], eth.eth.accounts[8], eth.eth.accounts[9]
    send(staking.functions.stake(PROVIDER, 500 * E18), alice)
    send(staking.functions.requestUnstake(PROVIDER, 200 * E18), alice)
    supply = token.functions.totalSupply().call()
    assert staking.functions.slash(alice, PROVIDER, 350 * E18, REASON).call({"from": slasher}) == 350 * E18
    r = send(staking.functions.slash(alice, PROVIDER, 350 * E18, REASON), slasher)
    assert staking.functions.stakeOf(alice, PROVIDER).call() == 0
    assert staking.functions.unbondingOf(alice, PROVIDER).call()[0] == 150 * E18
    assert staking.functions.totalStakeOf(alice).call() == 150 * E18
    assert token.functions.totalSupply().call() == supply - 175 * E18
    assert token.functions.balanceOf(treasury).call() == 175 * E18
    assert token.functions.balanceOf(staking.address).call() == 150 * E18
    ev = staking.events.Slashed().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["node"], ev["amount"], ev["burned"], ev["reason"]) == (alice, 350 * E18, 175 * E18, REASON)


def test_slash_caps_at_available_and_never_reverts(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Slashing more than there is takes everything (clearing the unlock time); slashing nothing returns 0."""
    token, staking = contracts
    alice, slasher = eth.eth.accounts[1], eth.eth.accounts[8]
    send(staking.functions.setSlashBurnBps(0), eth.eth.accounts[0])
    send(staking.functions.stake(QUEEN, 1_000 * E18), alice)
    send(staking.functions.requestUnstake(QUEEN, 400 * E18), alice)
    assert staking.functions.slash(alice, QUEEN, 10**30, REASON).call({"from": slasher}) == 1_000 * E18
    send(staking.functions.slash(alice, QUEEN, 10**30, REASON), slasher)
    assert staking.functions.unbondingOf(alice, QUEEN).call() == [0, 0]
    assert token.functions.balanceOf(eth.eth.accounts[9]).call() == 1_000 * E18
    assert staking.functions.slash(alice, QUEEN, 1, REASON).call({"from": slasher}) == 0
    r = send(staking.functions.slash(alice, QUEEN, 1, REASON), slasher)
    assert staking.events.Slashed().process_receipt(r, errors=DISCARD) == ()


def test_slash_requires_slasher_role(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Only SLASHER_ROLE may slash."""
    _, staking = contracts
    with reverts("AccessControlUnauthorizedAccount"):
        send(staking.functions.slash(eth.eth.accounts[1], PROVIDER, 1, REASON), eth.eth.accounts[0])


# ------------------------------------------------------------------ rewards


def test_rewards_pro_rata_to_active_stake(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Two stakers at 1:3 earn 1:3 of the emission; claim pays and resets what is owed."""
    token, staking = contracts
    admin, alice, bob = eth.eth.accounts[:3]
    send(staking.functions.fundRewards(1_000_000 * E18), admin)
    send(staking.functions.stake(PROVIDER, 100 * E18), alice)
    send(staking.functions.stake(QUEEN, 300 * E18), bob)
    r0 = send(staking.functions.setRewardRate(4 * E18), admin)
    increase_time(eth, 1000)
    r1 = send(staking.functions.claimRewards(), alice)
    elapsed = _ts(eth, r1) - _ts(eth, r0)
    got = staking.events.RewardsClaimed().process_receipt(r1, errors=DISCARD)[0]["args"]["amount"]
    assert got == elapsed * E18
    assert staking.functions.earned(alice).call() == 0
    mine(eth)
    bob_due = staking.functions.earned(bob).call()
    t_now = int(eth.eth.get_block("latest")["timestamp"])
    assert bob_due == (t_now - _ts(eth, r0)) * 3 * E18
    before = token.functions.balanceOf(bob).call()
    r2 = send(staking.functions.claimRewards(), bob)
    assert token.functions.balanceOf(bob).call() - before == (_ts(eth, r2) - _ts(eth, r0)) * 3 * E18


def test_unbonding_stake_earns_nothing(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """After requestUnstake of everything, no further rewards accrue to the node."""
    _, staking = contracts
    admin, alice = eth.eth.accounts[:2]
    send(staking.functions.fundRewards(1_000 * E18), admin)
    send(staking.functions.stake(PROVIDER, 100 * E18), alice)
    send(staking.functions.setRewardRate(E18), admin)
    r = send(staking.functions.requestUnstake(PROVIDER, 100 * E18), alice)
    owed = staking.functions.earned(alice).call()
    increase_time(eth, 500)
    assert staking.functions.earned(alice).call() == owed
    assert staking.functions.rewardsAvailable().call() == 1_000 * E18 - owed
    assert r["status"] == 1


def test_rewards_never_exceed_funding(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Accrual stops when the funded pool is exhausted, and restarts only with new funding (not retroactively)."""
    _, staking = contracts
    admin, alice = eth.eth.accounts[:2]
    send(staking.functions.stake(PROVIDER, 100 * E18), alice)
    send(staking.functions.setRewardRate(10 * E18), admin)
    r = send(staking.functions.fundRewards(50 * E18), admin)
    assert staking.events.RewardsFunded().process_receipt(r, errors=DISCARD)[0]["args"]["amount"] == 50 * E18
    increase_time(eth, 1000)
    assert staking.functions.earned(alice).call() == 50 * E18
    assert staking.functions.rewardsAvailable().call() == 0
    r = send(staking.functions.fundRewards(20 * E18), admin)
    assert staking.functions.earned(alice).call() == 50 * E18  # the dry spell is not paid from new funds
    t0 = _ts(eth, r)
    mine(eth)
    t1 = int(eth.eth.get_block("latest")["timestamp"])
    assert staking.functions.earned(alice).call() == 50 * E18 + min(20 * E18, (t1 - t0) * 10 * E18)


def test_rewards_not_accrued_without_stakers(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """With no active stake the pool stays intact; a later staker earns only from its own stake time."""
    _, staking = contracts
    admin, alice = eth.eth.accounts[:2]
    send(staking.functions.fundRewards(1_000 * E18), admin)
    send(staking.functions.setRewardRate(E18), admin)
    increase_time(eth, 300)
    assert staking.functions.rewardsAvailable().call() == 1_000 * E18
    r = send(staking.functions.stake(PROVIDER, 10 * E18), alice)
    increase_time(eth, 10)
    t = int(eth.eth.get_block("latest")["timestamp"])
    assert staking.functions.earned(alice).call() == (t - _ts(eth, r)) * E18
    assert staking.functions.rewardPerToken().call() == (t - _ts(eth, r)) * E18 * E18 // (10 * E18)


def test_reward_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Funding zero, claiming with nothing earned and a rate above the maximum are refused."""
    _, staking = contracts
    admin = eth.eth.accounts[0]
    with reverts("StakingManagerZeroAmount"):
        send(staking.functions.fundRewards(0), admin)
    with reverts("StakingManagerNothingToClaim"):
        send(staking.functions.claimRewards(), eth.eth.accounts[1])
    with reverts("StakingManagerInvalidRewardRate"):
        send(staking.functions.setRewardRate(10**24 + 1), admin)


# ------------------------------------------------------------------ vote checkpoints


def test_past_stake_checkpoints(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """getPastStake/getPastTotalStake read active + unbonding stake as of a past time (timestamp clock)."""
    _, staking = contracts
    alice, bob, slasher = eth.eth.accounts[1], eth.eth.accounts[2], eth.eth.accounts[8]

    def at(receipt: Any) -> int:
        t = int(eth.eth.get_block(receipt["blockNumber"])["timestamp"])
        increase_time(eth, 1)  # the next checkpoint a second later (anvil may repeat a timestamp)
        return t

    increase_time(eth, 1)
    b0 = now(eth)
    increase_time(eth, 1)
    b1 = at(send(staking.functions.stake(PROVIDER, 100 * E18), alice))
    b2 = at(send(staking.functions.stake(KING, 50 * E18), alice))
    b3 = at(send(staking.functions.requestUnstake(KING, 50 * E18), alice))
    b4 = at(send(staking.functions.stake(QUEEN, 7 * E18), bob))
    b5 = at(send(staking.functions.slash(alice, PROVIDER, 30 * E18, REASON), slasher))
    past = staking.functions.getPastStake
    assert [past(alice, b).call() for b in (b0, b1, b2, b3, b4, b5)] == [0, 100 * E18, 150 * E18, 150 * E18, 150 * E18, 120 * E18]
    assert staking.functions.getPastTotalStake(b4).call() == 157 * E18
    assert staking.functions.getPastTotalStake(b5).call() == 127 * E18


def test_past_stake_future_lookup(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """The current time (not final yet) and later times cannot be looked up."""
    _, staking = contracts
    current = now(eth)  # the clock a call executes at (anvil's pending block keeps the latest timestamp or later)
    with reverts("StakingManagerFutureLookup"):
        staking.functions.getPastStake(eth.eth.accounts[1], current).call()
    with reverts("StakingManagerFutureLookup"):
        staking.functions.getPastTotalStake(current + 5).call()


# ------------------------------------------------------------------ governor setters


def test_governor_setters(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Every parameter setter changes its parameter and emits its event."""
    _, staking = contracts
    admin, newt = eth.eth.accounts[0], eth.eth.accounts[7]
    r = send(staking.functions.setMinStake(PROVIDER, 42 * E18), admin)
    assert staking.functions.minStake(PROVIDER).call() == 42 * E18
    assert staking.events.MinStakeChanged().process_receipt(r, errors=DISCARD)[0]["args"]["amount"] == 42 * E18
    r = send(staking.functions.setUnbondingDelay(90 * 86400), admin)
    assert staking.functions.unbondingDelay().call() == 90 * 86400
    assert staking.events.UnbondingDelayChanged().process_receipt(r, errors=DISCARD)[0]["args"]["delay"] == 90 * 86400
    r = send(staking.functions.setSlashBurnBps(10_000), admin)
    assert staking.functions.slashBurnBps().call() == 10_000
    assert staking.events.SlashBurnBpsChanged().process_receipt(r, errors=DISCARD)[0]["args"]["bps"] == 10_000
    r = send(staking.functions.setTreasury(newt), admin)
    assert staking.functions.treasury().call() == newt
    assert staking.events.TreasuryChanged().process_receipt(r, errors=DISCARD)[0]["args"]["treasury"] == newt
    r = send(staking.functions.setRewardRate(10**24), admin)
    assert staking.functions.rewardRate().call() == 10**24
    assert staking.events.RewardRateChanged().process_receipt(r, errors=DISCARD)[0]["args"]["rate"] == 10**24


def test_governor_setter_bounds(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Setters refuse out-of-bounds values."""
    _, staking = contracts
    admin = eth.eth.accounts[0]
    with reverts("StakingManagerInvalidMinStake"):
        send(staking.functions.setMinStake(KING, 0), admin)
    with reverts("StakingManagerInvalidUnbondingDelay"):
        send(staking.functions.setUnbondingDelay(90 * 86400 + 1), admin)
    with reverts("StakingManagerInvalidSlashBurnBps"):
        send(staking.functions.setSlashBurnBps(10_001), admin)
    with reverts("StakingManagerZeroAddress"):
        send(staking.functions.setTreasury(ZERO), admin)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.functions.setMinStake(PROVIDER, 1),
        lambda s: s.functions.setUnbondingDelay(1),
        lambda s: s.functions.setSlashBurnBps(1),
        lambda s: s.functions.setTreasury("0x" + "11" * 20),
        lambda s: s.functions.setRewardRate(1),
        lambda s: s.functions.setLocker("0x" + "11" * 20),
    ],
)
def test_governor_setters_require_role(eth: Web3, contracts: tuple[Contract, Contract], call: Any) -> None:
    """Setters are GOVERNOR_ROLE only."""
    _, staking = contracts
    with reverts("AccessControlUnauthorizedAccount"):
        send(call(staking), eth.eth.accounts[1])


# ------------------------------------------------------------------ rental locks




def test_rental_stakes_reads_both_stakes_and_minimums(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """What GPURental checks on every rental, in one view: provider stake, minimum per GPU, queen stake, minimum."""
    _, staking = contracts
    admin, provider, queen = eth.eth.accounts[0], eth.eth.accounts[1], eth.eth.accounts[2]
    send(staking.functions.stake(PROVIDER, 300 * E18), provider)
    send(staking.functions.stake(QUEEN, 1_000 * E18), queen)
    assert staking.functions.rentalStakes(provider, queen).call() == [300 * E18, 100 * E18, 1_000 * E18, 1_000 * E18]
    send(staking.functions.setMinStake(QUEEN, 2_000 * E18), admin)
    assert staking.functions.rentalStakes(provider, queen).call()[3] == 2_000 * E18
    assert [staking.functions.minStake(t).call() for t in (PROVIDER, QUEEN, 2)] == [100 * E18, 2_000 * E18,
                                                                                    10_000 * E18]


def test_reserved_provider_stake_cannot_unbond(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """minStake(Provider) per GPU of the locker's open rentals stays active: a provider cannot escape a pending
    slash by unstaking, while the unreserved rest, other tiers and freed reservations unbond freely."""
    _, staking = contracts
    admin, provider = eth.eth.accounts[0], eth.eth.accounts[1]
    reserver = deploy(eth, "eth", "MockStakeReserver")
    r = send(staking.functions.setLocker(reserver.address), admin)
    assert staking.events.LockerChanged().process_receipt(r, errors=DISCARD)[0]["args"]["locker"] == reserver.address
    assert staking.functions.locker().call() == reserver.address
    send(staking.functions.stake(PROVIDER, 300 * E18), provider)
    send(staking.functions.stake(QUEEN, 1_000 * E18), provider)
    send(reserver.functions.setReserved(provider, 2), admin)
    assert staking.functions.reservedStakeOf(provider).call() == 200 * E18
    with reverts("StakingManagerStakeReserved") as err:
        staking.functions.requestUnstake(PROVIDER, 100 * E18 + 1).transact({"from": provider})
    assert err.args == [200 * E18, 300 * E18, 100 * E18 + 1]
    send(staking.functions.requestUnstake(PROVIDER, 100 * E18), provider)  # the unreserved part
    send(staking.functions.requestUnstake(QUEEN, 1), provider)  # only the provider tier is reserved
    # slashing reaches reserved stake
    send(staking.functions.grantRole(SLASHER_ROLE, admin), admin)
    send(staking.functions.slash(provider, PROVIDER, 50 * E18, REASON), admin)
    assert staking.functions.stakeOf(provider, PROVIDER).call() == 150 * E18
    with reverts("StakingManagerStakeReserved"):  # below the reservation now: nothing may leave
        staking.functions.requestUnstake(PROVIDER, 1).transact({"from": provider})
    send(reserver.functions.setReserved(provider, 0), admin)  # the rentals settled
    send(staking.functions.requestUnstake(PROVIDER, 150 * E18), provider)
    send(staking.functions.setLocker(ZERO), admin)
    assert staking.functions.reservedStakeOf(provider).call() == 0


# ------------------------------------------------------------------ invariants


class StakingMachine(RuleBasedStateMachine):
    """Random stake/unstake/withdraw/slash/fund/claim/time sequences against a live StakingManager.

    Invariants: payouts (withdrawals + reward claims + slashes) never exceed funded rewards + staked tokens,
    the token balance equals what came in minus what went out, and it always covers active + unbonding stake
    plus every unpaid reward (earned and not yet allocated).
    """

    w3: Web3

    def __init__(self) -> None:
        super().__init__()
        self._snap = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.token, self.staking = _setup(self.w3)
        self.admin = self.w3.eth.accounts[0]
        self.nodes = list(self.w3.eth.accounts[1:4])
        self.slasher = self.w3.eth.accounts[8]
        self.funded = 0
        self.staked = 0
        self.paid = 0

    def teardown(self) -> None:
        self.w3.provider.make_request("evm_revert", [self._snap])  # type: ignore[arg-type]

    @initialize()
    def start_emission(self) -> None:
        send(self.staking.functions.setRewardRate(3 * E18), self.admin)

    @rule(n=st.integers(0, 2), tier=st.integers(0, 2), amount=st.integers(1, 1_000 * E18))
    def stake(self, n: int, tier: int, amount: int) -> None:
        send(self.staking.functions.stake(tier, amount), self.nodes[n])
        self.staked += amount

    @rule(n=st.integers(0, 2), tier=st.integers(0, 2), frac=st.integers(1, 100))
    def request_unstake(self, n: int, tier: int, frac: int) -> None:
        active = self.staking.functions.stakeOf(self.nodes[n], tier).call()
        if active:
            send(self.staking.functions.requestUnstake(tier, max(1, active * frac // 100)), self.nodes[n])

    @rule(n=st.integers(0, 2), tier=st.integers(0, 2))
    def withdraw(self, n: int, tier: int) -> None:
        amount, unlock = self.staking.functions.unbondingOf(self.nodes[n], tier).call()
        if amount and int(self.w3.eth.get_block("latest")["timestamp"]) + 1 >= unlock:
            r = send(self.staking.functions.withdraw(tier), self.nodes[n])
            self.paid += self.staking.events.Withdrawn().process_receipt(r, errors=DISCARD)[0]["args"]["amount"]

    @rule(n=st.integers(0, 2), tier=st.integers(0, 2), amount=st.integers(0, 2_000 * E18))
    def slash(self, n: int, tier: int, amount: int) -> None:
        r = send(self.staking.functions.slash(self.nodes[n], tier, amount, REASON), self.slasher)
        for ev in self.staking.events.Slashed().process_receipt(r, errors=DISCARD):
            self.paid += ev["args"]["amount"]

    @rule(amount=st.integers(1, 5_000 * E18))
    def fund(self, amount: int) -> None:
        send(self.staking.functions.fundRewards(amount), self.admin)
        self.funded += amount

    @rule(rate=st.integers(0, 50 * E18))
    def set_rate(self, rate: int) -> None:
        send(self.staking.functions.setRewardRate(rate), self.admin)

    @rule(n=st.integers(0, 2))
    def claim(self, n: int) -> None:
        # earned() only grows until claimed, so non-zero now means non-zero in the claim's block.
        if self.staking.functions.earned(self.nodes[n]).call():
            receipt = send(self.staking.functions.claimRewards(), self.nodes[n])
            for ev in self.staking.events.RewardsClaimed().process_receipt(receipt, errors=DISCARD):
                self.paid += ev["args"]["amount"]

    @rule(seconds=st.sampled_from([1, 60, 3_600, DELAY]))
    def advance(self, seconds: int) -> None:
        increase_time(self.w3, seconds)

    @invariant()
    def payouts_bounded_and_balance_covers(self) -> None:
        balance = self.token.functions.balanceOf(self.staking.address).call()
        assert self.paid <= self.funded + self.staked
        assert balance == self.funded + self.staked - self.paid
        stake = self.staking.functions.totalStake().call()
        unbonding = sum(self.staking.functions.unbondingOf(a, t).call()[0] for a in self.nodes for t in range(3))
        assert stake == self.staking.functions.totalActiveStake().call() + unbonding
        owed = sum(self.staking.functions.earned(a).call() for a in self.nodes)
        assert balance >= stake + self.staking.functions.rewardsAvailable().call() + owed


def test_staking_invariants(eth: Web3) -> None:
    """Hypothesis stateful run of StakingMachine (each example reverts its chain changes)."""
    StakingMachine.w3 = eth
    # Seeded (derandomize) so CI replays the same sequences; BLENDR_HYPOTHESIS_EXAMPLES=200
    # BLENDR_HYPOTHESIS_RANDOM=1 explores beyond them (80 random examples passed after the gas-estimate fix in
    # chainkit.send, which was behind an unreplayable failure that once timed out a CI run).
    StakingMachine.TestCase.settings = settings(
        max_examples=int(os.environ.get("BLENDR_HYPOTHESIS_EXAMPLES", "4")), stateful_step_count=15, deadline=None,
        derandomize=not os.environ.get("BLENDR_HYPOTHESIS_RANDOM"), database=None)
    StakingMachine.TestCase().runTest()
