"""TokenDistributor: capped category allocations with vesting wallets, and epoch rewards claimed by Merkle proof."""

from __future__ import annotations

import pytest
from eth_abi import encode
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD

from tests.contracts.chainkit import at, deploy, increase_time, now, reverts, send

E18 = 10**18
SUPPLY = 1_000_000 * E18
TEAM, INVESTORS, ADVISORS, COMMUNITY, TREASURY = range(5)
PROVIDER_STAKING, RENTER_LOYALTY = 0, 1
ZERO = "0x" + "00" * 20
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
GOVERNOR_ROLE = Web3.keccak(text="GOVERNOR_ROLE")
ALLOCATOR_ROLE = Web3.keccak(text="ALLOCATOR_ROLE")
REWARDS_ROLE = Web3.keccak(text="REWARDS_ROLE")
EPOCH = 7 * 24 * 3600  # REWARD_EPOCH_DURATION
MAX_CAP = 1_000_000 * E18  # MAX_EPOCH_REWARD_CAP
REWARD_PUBLISH_WINDOW = 4  # epochs after its end that an epoch can still be published


class MerkleTree:
    """OpenZeppelin StandardMerkleTree-compatible tree over (address, uint256) leaves (sorted-pair hashing)."""

    def __init__(self, entries: list[tuple[str, int]]) -> None:
        self.leaves = [self.leaf(a, v) for a, v in entries]
        self.levels = [list(self.leaves)]
        while len(self.levels[-1]) > 1:
            prev, nxt = self.levels[-1], []
            for i in range(0, len(prev), 2):
                nxt.append(self._pair(prev[i], prev[i + 1]) if i + 1 < len(prev) else prev[i])
            self.levels.append(nxt)

    @staticmethod
    def leaf(account: str, amount: int) -> bytes:
        return Web3.keccak(Web3.keccak(encode(["address", "uint256"], [account, amount])))

    @staticmethod
    def _pair(a: bytes, b: bytes) -> bytes:
        return Web3.keccak(min(a, b) + max(a, b))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        out = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                out.append(level[sibling])
            index //= 2
        return out


def _setup(w3: Web3) -> tuple[Contract, Contract]:
    """Token + distributor holding SUPPLY; account 0 is admin, allocator and rewards publisher."""
    admin = w3.eth.accounts[0]
    token = deploy(w3, "eth", "GPUToken", admin, 10**9 * E18)
    dist = deploy(w3, "eth", "TokenDistributor", admin, token.address, w3.eth.accounts[9])
    send(token.functions.grantRole(MINTER_ROLE, admin), admin)
    send(token.functions.mint(dist.address, SUPPLY), admin)
    send(dist.functions.grantRole(ALLOCATOR_ROLE, admin), admin)
    send(dist.functions.grantRole(REWARDS_ROLE, admin), admin)
    for kind in (PROVIDER_STAKING, RENTER_LOYALTY):
        send(dist.functions.setEpochRewardCap(kind, MAX_CAP), admin)
    return token, dist


def ended_epochs(w3: Web3, dist: Contract, n: int) -> int:
    """Moves the clock so that the first ``n`` publishable epochs have ended; returns the first of them."""
    first = int(dist.functions.nextRewardEpoch(PROVIDER_STAKING).call())
    end = (first + n) * EPOCH
    if now(w3) < end:
        increase_time(w3, end - now(w3))
    return first


@pytest.fixture
def contracts(eth: Web3) -> tuple[Contract, Contract]:
    return _setup(eth)


# ------------------------------------------------------------------ constructor and caps


def test_constructor_and_caps(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Views reflect the constructor; category caps are fixed basis points of everything received."""
    token, dist = contracts
    admin = eth.eth.accounts[0]
    assert dist.functions.token().call() == token.address
    assert dist.functions.treasury().call() == eth.eth.accounts[9]
    assert dist.functions.hasRole(b"\x00" * 32, admin).call()
    assert dist.functions.hasRole(GOVERNOR_ROLE, admin).call()
    bps = [dist.functions.categoryBps(c).call() for c in range(5)]
    assert bps == [1500, 1500, 500, 4500, 2000] and sum(bps) == 10_000
    assert dist.functions.totalReceived().call() == SUPPLY
    assert [dist.functions.categoryCap(c).call() for c in range(5)] == [SUPPLY * b // 10_000 for b in bps]
    assert dist.functions.rewardsOutstanding().call() == 0


@pytest.mark.parametrize("which", [0, 1, 2])
def test_constructor_rejects_zero_address(eth: Web3, contracts: tuple[Contract, Contract], which: int) -> None:
    """Admin, token and treasury must be non-zero."""
    token, _ = contracts
    args = [eth.eth.accounts[0], token.address, eth.eth.accounts[9]]
    args[which] = ZERO
    with reverts("TokenDistributorZeroAddress"):
        deploy(eth, "eth", "TokenDistributor", *args)


# ------------------------------------------------------------------ allocations


def test_allocate_team_into_vesting_wallet(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """A Team allocation creates a cliff vesting wallet owned by the beneficiary; nothing vests before the cliff."""
    token, dist = contracts
    admin, alice = eth.eth.accounts[0], eth.eth.accounts[1]
    start = now(eth) + 10
    r = send(dist.functions.allocate(TEAM, alice, 1_000 * E18, start, 1_000, 4_000), admin)
    ev = dist.events.Allocated().process_receipt(r, errors=DISCARD)[0]["args"]
    wallet = at(eth, "eth", "VotesVestingWallet", ev["wallet"])
    assert (ev["category"], ev["beneficiary"], ev["amount"]) == (TEAM, alice, 1_000 * E18)
    assert wallet.address != alice
    assert token.functions.balanceOf(wallet.address).call() == 1_000 * E18
    assert wallet.functions.owner().call() == alice
    assert (wallet.functions.start().call(), wallet.functions.duration().call()) == (start, 4_000)
    assert wallet.functions.cliff().call() == start + 1_000
    assert dist.functions.categoryUsed(TEAM).call() == 1_000 * E18
    assert dist.functions.totalReceived().call() == SUPPLY  # paid-out tokens still count
    increase_time(eth, 500)
    assert wallet.functions.releasable(token.address).call() == 0
    increase_time(eth, 2_000)
    send(wallet.functions.release(token.address), eth.eth.accounts[5])
    got = token.functions.balanceOf(alice).call()
    assert 0 < got < 1_000 * E18


def test_allocate_community_direct_and_vested(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Community with duration 0 is transferred directly; with a duration it goes to a vesting wallet."""
    token, dist = contracts
    admin, bob = eth.eth.accounts[0], eth.eth.accounts[2]
    r = send(dist.functions.allocate(COMMUNITY, bob, 5 * E18, 0, 0, 0), admin)
    assert dist.events.Allocated().process_receipt(r, errors=DISCARD)[0]["args"]["wallet"] == bob
    assert token.functions.balanceOf(bob).call() == 5 * E18
    r = send(dist.functions.allocate(COMMUNITY, bob, 7 * E18, now(eth), 0, 100), admin)
    wallet = dist.events.Allocated().process_receipt(r, errors=DISCARD)[0]["args"]["wallet"]
    assert wallet != bob and token.functions.balanceOf(wallet).call() == 7 * E18
    assert dist.functions.categoryUsed(COMMUNITY).call() == 12 * E18


def test_allocate_treasury_only_to_treasury(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Treasury-category tokens go to the treasury address and nowhere else."""
    token, dist = contracts
    admin, treasury = eth.eth.accounts[0], eth.eth.accounts[9]
    send(dist.functions.allocate(TREASURY, treasury, 200_000 * E18, 0, 0, 0), admin)
    assert token.functions.balanceOf(treasury).call() == 200_000 * E18
    with reverts("TokenDistributorNotTreasury"):
        send(dist.functions.allocate(TREASURY, eth.eth.accounts[1], 1, 0, 0, 0), admin)


def test_allocate_cap(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """A category can use exactly its cap, across allocations, and not one wei more."""
    _, dist = contracts
    admin, alice = eth.eth.accounts[0], eth.eth.accounts[1]
    cap = dist.functions.categoryCap(ADVISORS).call()
    send(dist.functions.allocate(ADVISORS, alice, cap - 1, 0, 0, 10), admin)
    send(dist.functions.allocate(ADVISORS, alice, 1, 0, 0, 10), admin)
    with reverts("TokenDistributorCategoryCapExceeded"):
        send(dist.functions.allocate(ADVISORS, alice, 1, 0, 0, 10), admin)


@pytest.mark.parametrize(
    ("category", "start", "cliff", "duration"),
    [
        (INVESTORS, 0, 0, 0),  # vested categories need a duration
        (TEAM, 0, 11, 10),  # cliff longer than the vesting
        (COMMUNITY, 1, 0, 0),  # direct transfer with a start
        (COMMUNITY, 0, 1, 0),  # direct transfer with a cliff
    ],
)
def test_allocate_invalid_schedule(
    eth: Web3, contracts: tuple[Contract, Contract], category: int, start: int, cliff: int, duration: int
) -> None:
    """Schedules that make no sense for the category are refused."""
    _, dist = contracts
    with reverts("TokenDistributorInvalidSchedule"):
        send(dist.functions.allocate(category, eth.eth.accounts[1], 1, start, cliff, duration), eth.eth.accounts[0])


def test_allocate_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Zero beneficiary, zero amount and a caller without ALLOCATOR_ROLE are refused."""
    _, dist = contracts
    admin = eth.eth.accounts[0]
    with reverts("TokenDistributorZeroAddress"):
        send(dist.functions.allocate(TEAM, ZERO, 1, 0, 0, 10), admin)
    with reverts("TokenDistributorZeroAmount"):
        send(dist.functions.allocate(TEAM, eth.eth.accounts[1], 0, 0, 0, 10), admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(dist.functions.allocate(TEAM, eth.eth.accounts[1], 1, 0, 0, 10), eth.eth.accounts[1])


# ------------------------------------------------------------------ epoch rewards


def test_epoch_root_and_claims(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """A published root reserves its total from Community; anyone submits a proof and the account is paid."""
    token, dist = contracts
    admin, a, b, c, relayer = eth.eth.accounts[:5]
    entries = [(a, 10 * E18), (b, 20 * E18), (c, 30 * E18)]
    tree = MerkleTree(entries)
    ep = ended_epochs(eth, dist, 1)
    r = send(dist.functions.setEpochRoot(ep, RENTER_LOYALTY, tree.root, 60 * E18), admin)
    ev = dist.events.EpochRootSet().process_receipt(r)[0]["args"]
    assert (ev["epoch"], ev["kind"], ev["root"], ev["total"]) == (ep, RENTER_LOYALTY, tree.root, 60 * E18)
    assert dist.functions.categoryUsed(COMMUNITY).call() == 60 * E18
    assert dist.functions.rewardsOutstanding().call() == 60 * E18
    r = send(dist.functions.claim(ep, RENTER_LOYALTY, b, 20 * E18, tree.proof(1)), relayer)
    assert token.functions.balanceOf(b).call() == 20 * E18
    assert token.functions.balanceOf(relayer).call() == 0
    ev = dist.events.RewardClaimed().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["epoch"], ev["kind"], ev["account"], ev["amount"]) == (ep, RENTER_LOYALTY, b, 20 * E18)
    assert dist.functions.isClaimed(ep, RENTER_LOYALTY, b).call()
    assert not dist.functions.isClaimed(ep, PROVIDER_STAKING, b).call()
    assert dist.functions.epochReward(ep, RENTER_LOYALTY).call() == [tree.root, 60 * E18, 20 * E18]
    assert dist.functions.rewardsOutstanding().call() == 40 * E18
    send(dist.functions.claim(ep, RENTER_LOYALTY, a, 10 * E18, tree.proof(0)), a)
    send(dist.functions.claim(ep, RENTER_LOYALTY, c, 30 * E18, tree.proof(2)), a)
    assert dist.functions.epochReward(ep, RENTER_LOYALTY).call()[2] == 60 * E18


def test_unclaimed_rewards_return_to_the_community_cap_after_the_claim_period(
    eth: Web3, contracts: tuple[Contract, Contract]
) -> None:
    """Claims end after CLAIM_PERIOD; closeEpoch (anyone) releases the rest once; nothing stays reserved forever."""
    _, dist = contracts
    admin, a, b, anyone = eth.eth.accounts[:4]
    tree = MerkleTree([(a, 10 * E18), (b, 20 * E18)])
    ep = ended_epochs(eth, dist, 1)
    send(dist.functions.setEpochRoot(ep, PROVIDER_STAKING, tree.root, 30 * E18), admin)
    deadline = dist.functions.claimDeadline(ep, PROVIDER_STAKING).call()
    assert deadline == now(eth) + dist.functions.CLAIM_PERIOD().call()
    send(dist.functions.claim(ep, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), a)
    with reverts("TokenDistributorClaimPeriodNotOver"):
        send(dist.functions.closeEpoch(ep, PROVIDER_STAKING), anyone)
    with reverts("TokenDistributorEpochNotSet"):
        send(dist.functions.closeEpoch(ep + 1, PROVIDER_STAKING), anyone)
    increase_time(eth, deadline - now(eth))
    with reverts("TokenDistributorClaimPeriodOver"):
        send(dist.functions.claim(ep, PROVIDER_STAKING, b, 20 * E18, tree.proof(1)), b)
    used = dist.functions.categoryUsed(COMMUNITY).call()
    r = send(dist.functions.closeEpoch(ep, PROVIDER_STAKING), anyone)
    ev = dist.events.EpochClosed().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["epoch"], ev["kind"], ev["unclaimed"]) == (ep, PROVIDER_STAKING, 20 * E18)
    assert dist.functions.categoryUsed(COMMUNITY).call() == used - 20 * E18
    assert dist.functions.rewardsOutstanding().call() == 0
    assert dist.functions.epochReward(ep, PROVIDER_STAKING).call() == [tree.root, 10 * E18, 10 * E18]
    with reverts("TokenDistributorEpochClosed"):
        send(dist.functions.closeEpoch(ep, PROVIDER_STAKING), anyone)


def test_set_epoch_root_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Zero root, zero total, a second root for the same epoch+kind, over the Community cap, wrong role."""
    _, dist = contracts
    admin = eth.eth.accounts[0]
    root = b"\x01" * 32
    ep = ended_epochs(eth, dist, 3)
    with reverts("TokenDistributorZeroRoot"):
        send(dist.functions.setEpochRoot(ep, PROVIDER_STAKING, b"\x00" * 32, 1), admin)
    with reverts("TokenDistributorZeroAmount"):
        send(dist.functions.setEpochRoot(ep, PROVIDER_STAKING, root, 0), admin)
    send(dist.functions.setEpochRoot(ep, PROVIDER_STAKING, root, 1), admin)
    send(dist.functions.setEpochRoot(ep, RENTER_LOYALTY, root, 1), admin)  # other kind, same epoch: fine
    with reverts("TokenDistributorEpochRootAlreadySet"):
        send(dist.functions.setEpochRoot(ep, PROVIDER_STAKING, b"\x02" * 32, 1), admin)
    cap = dist.functions.categoryCap(COMMUNITY).call()
    with reverts("TokenDistributorCategoryCapExceeded"):
        send(dist.functions.setEpochRoot(ep + 1, PROVIDER_STAKING, root, cap - 1), admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(dist.functions.setEpochRoot(ep + 2, PROVIDER_STAKING, root, 1), eth.eth.accounts[1])


def test_epoch_reward_cap_is_set_by_governance_within_bounds(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """GOVERNOR_ROLE sets each kind's cap up to MAX_EPOCH_REWARD_CAP (event); others cannot; a new deploy has 0."""
    token, dist = contracts
    admin = eth.eth.accounts[0]
    assert dist.functions.MAX_EPOCH_REWARD_CAP().call() == MAX_CAP
    assert dist.functions.REWARD_EPOCH_DURATION().call() == EPOCH
    fresh = deploy(eth, "eth", "TokenDistributor", admin, token.address, eth.eth.accounts[9])
    assert [fresh.functions.epochRewardCap(k).call() for k in (0, 1)] == [0, 0]
    r = send(dist.functions.setEpochRewardCap(RENTER_LOYALTY, 5 * E18), admin)
    ev = dist.events.EpochRewardCapChanged().process_receipt(r)[0]["args"]
    assert (ev["kind"], ev["cap"]) == (RENTER_LOYALTY, 5 * E18)
    assert dist.functions.epochRewardCap(RENTER_LOYALTY).call() == 5 * E18
    assert dist.functions.epochRewardCap(PROVIDER_STAKING).call() == MAX_CAP  # per kind
    send(dist.functions.setEpochRewardCap(RENTER_LOYALTY, 0), admin)  # 0 stops the kind
    with reverts("TokenDistributorInvalidEpochRewardCap") as err:
        send(dist.functions.setEpochRewardCap(RENTER_LOYALTY, MAX_CAP + 1), admin)
    assert err.args == [RENTER_LOYALTY, MAX_CAP + 1, MAX_CAP]
    with reverts("AccessControlUnauthorizedAccount"):
        send(dist.functions.setEpochRewardCap(RENTER_LOYALTY, 1), eth.eth.accounts[1])  # REWARDS_ROLE is not enough
    send(dist.functions.grantRole(REWARDS_ROLE, eth.eth.accounts[2]), admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(dist.functions.setEpochRewardCap(PROVIDER_STAKING, MAX_CAP), eth.eth.accounts[2])


def test_a_publisher_pays_at_most_the_cap_per_ended_epoch(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Over the cap, an epoch not over yet, an epoch before the deployment's, a republish or an earlier epoch after
    a later one are refused: a leaked REWARDS_ROLE key moves at most the cap per kind per elapsed epoch."""
    _, dist = contracts
    admin = eth.eth.accounts[0]
    root = b"\x01" * 32
    first = dist.functions.nextRewardEpoch(PROVIDER_STAKING).call()
    assert first == dist.functions.currentRewardEpoch().call()  # the deployment's epoch
    send(dist.functions.setEpochRewardCap(PROVIDER_STAKING, 100 * E18), admin)
    with reverts("TokenDistributorEpochNotOver") as err:
        send(dist.functions.setEpochRoot(first, PROVIDER_STAKING, root, E18), admin)
    assert err.args == [first, (first + 1) * EPOCH]
    with reverts("TokenDistributorEpochOutOfOrder") as err:
        send(dist.functions.setEpochRoot(first - 1, PROVIDER_STAKING, root, E18), admin)
    assert err.args == [first - 1, PROVIDER_STAKING, first]
    ended_epochs(eth, dist, 3)
    with reverts("TokenDistributorEpochRewardCapExceeded") as err:
        send(dist.functions.setEpochRoot(first + 1, PROVIDER_STAKING, root, 100 * E18 + 1), admin)
    assert err.args == [first + 1, PROVIDER_STAKING, 100 * E18 + 1, 100 * E18]
    send(dist.functions.setEpochRoot(first + 1, PROVIDER_STAKING, root, 100 * E18), admin)  # exactly the cap; skips one
    assert dist.functions.nextRewardEpoch(PROVIDER_STAKING).call() == first + 2
    assert dist.functions.nextRewardEpoch(RENTER_LOYALTY).call() == first  # per kind
    with reverts("TokenDistributorEpochRootAlreadySet"):
        send(dist.functions.setEpochRoot(first + 1, PROVIDER_STAKING, b"\x02" * 32, E18), admin)
    with reverts("TokenDistributorEpochOutOfOrder"):
        send(dist.functions.setEpochRoot(first, PROVIDER_STAKING, root, E18), admin)  # skipped stays skipped
    with reverts("TokenDistributorEpochNotOver"):
        send(dist.functions.setEpochRoot(first + 3, PROVIDER_STAKING, root, E18), admin)
    send(dist.functions.setEpochRewardCap(PROVIDER_STAKING, 0), admin)
    with reverts("TokenDistributorEpochRewardCapExceeded"):
        send(dist.functions.setEpochRoot(first + 2, PROVIDER_STAKING, root, 1), admin)
    send(dist.functions.setEpochRoot(first, RENTER_LOYALTY, root, E18), admin)  # renter cap is MAX_CAP here


def test_a_leaked_key_cannot_publish_a_backlog_of_epochs(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Epochs nobody published (quiet weeks, a cap of 0, a king down) do not pile up for a leaked REWARDS_ROLE key:
    an epoch can be published only within REWARD_PUBLISH_WINDOW epochs of its end, so at most that many caps per
    kind are payable at once, and one cap per kind per epoch after that."""
    _, dist = contracts
    admin = eth.eth.accounts[0]
    root = b"\x01" * 32
    window = dist.functions.REWARD_PUBLISH_WINDOW().call()
    assert window == 4
    first = ended_epochs(eth, dist, 10)
    current = dist.functions.currentRewardEpoch().call()
    assert current == first + 10
    assert dist.functions.nextRewardEpoch(PROVIDER_STAKING).call() == current - window
    with reverts("TokenDistributorEpochOutOfOrder") as err:
        send(dist.functions.setEpochRoot(first, PROVIDER_STAKING, root, E18), admin)
    assert err.args == [first, PROVIDER_STAKING, current - window]
    for epoch in range(current - window, current):
        send(dist.functions.setEpochRoot(epoch, PROVIDER_STAKING, root, 100 * E18), admin)
    assert dist.functions.rewardsOutstanding().call() == window * 100 * E18
    with reverts("TokenDistributorEpochNotOver"):
        send(dist.functions.setEpochRoot(current, PROVIDER_STAKING, root, E18), admin)
    # an epoch still in its window is publishable until the window closes, then skipped for good
    increase_time(eth, (current + 1) * EPOCH - now(eth))
    assert dist.functions.nextRewardEpoch(RENTER_LOYALTY).call() == current + 1 - window
    # its last second, exactly: the block is mined at that timestamp (moving the clock there first and then sending
    # let a busy machine's next second close the window); no estimate, whose pending block keeps the wall clock
    last_second = (current + 1 + window) * EPOCH - 1
    eth.provider.make_request("evm_setNextBlockTimestamp", [last_second])  # type: ignore[arg-type]
    receipt = send(dist.functions.setEpochRoot(current, RENTER_LOYALTY, root, E18), admin, gas=1_000_000)
    assert eth.eth.get_block(receipt["blockNumber"])["timestamp"] == last_second


def test_claim_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Unknown epoch, bad proof, wrong amount, second claim and a tree that over-commits its total."""
    _, dist = contracts
    admin, a, b = eth.eth.accounts[:3]
    tree = MerkleTree([(a, 10 * E18), (b, 20 * E18)])
    ep = ended_epochs(eth, dist, 1)
    with reverts("TokenDistributorEpochNotSet"):
        send(dist.functions.claim(ep, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), a)
    send(dist.functions.setEpochRoot(ep, PROVIDER_STAKING, tree.root, 25 * E18), admin)  # total < sum of leaves
    with reverts("TokenDistributorInvalidProof"):
        send(dist.functions.claim(ep, PROVIDER_STAKING, a, 11 * E18, tree.proof(0)), a)
    with reverts("TokenDistributorInvalidProof"):
        send(dist.functions.claim(ep, PROVIDER_STAKING, a, 10 * E18, tree.proof(1)), a)
    with reverts("TokenDistributorEpochNotSet"):
        send(dist.functions.claim(ep, RENTER_LOYALTY, a, 10 * E18, tree.proof(0)), a)
    send(dist.functions.claim(ep, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), a)
    with reverts("TokenDistributorAlreadyClaimed"):
        send(dist.functions.claim(ep, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), b)
    with reverts("TokenDistributorEpochTotalExceeded"):
        send(dist.functions.claim(ep, PROVIDER_STAKING, b, 20 * E18, tree.proof(1)), b)


def test_set_treasury(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """GOVERNOR_ROLE changes the treasury (non-zero); others cannot."""
    _, dist = contracts
    admin, newt = eth.eth.accounts[0], eth.eth.accounts[7]
    r = send(dist.functions.setTreasury(newt), admin)
    assert dist.functions.treasury().call() == newt
    assert dist.events.TreasuryChanged().process_receipt(r)[0]["args"]["treasury"] == newt
    with reverts("TokenDistributorZeroAddress"):
        send(dist.functions.setTreasury(ZERO), admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(dist.functions.setTreasury(newt), eth.eth.accounts[1])


# ------------------------------------------------------------------ invariants


class DistributorMachine(RuleBasedStateMachine):
    """Random claims (valid, repeated, forged) against two epochs, one of them over-committed by its tree.

    Invariants: each (epoch, kind, account) is paid at most once, and an epoch never pays more than its total.
    """

    w3: Web3

    def __init__(self) -> None:
        super().__init__()
        self._snap = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.token, self.dist = _setup(self.w3)
        accts = self.w3.eth.accounts
        self.accounts = list(accts[1:6])
        self.epochs: dict[tuple[int, int], tuple[MerkleTree, list[tuple[str, int]], int]] = {}
        first = ended_epochs(self.w3, self.dist, 2)
        for epoch, kind, factor in [(first, PROVIDER_STAKING, 1), (first + 1, RENTER_LOYALTY, 2)]:
            entries = [(a, (i + 1) * E18) for i, a in enumerate(self.accounts)]
            total = sum(v for _, v in entries) // factor  # epoch 2's tree promises twice its total
            tree = MerkleTree(entries)
            send(self.dist.functions.setEpochRoot(epoch, kind, tree.root, total), accts[0])
            self.epochs[(epoch, kind)] = (tree, entries, total)
        self.paid: dict[tuple[int, int, str], int] = {}

    def teardown(self) -> None:
        self.w3.provider.make_request("evm_revert", [self._snap])  # type: ignore[arg-type]

    def _try_claim(self, key: tuple[int, int], account: str, amount: int, proof: list[bytes]) -> None:
        fn = self.dist.functions.claim(key[0], key[1], account, amount, proof)
        try:
            fn.estimate_gas({"from": self.accounts[0]})
        except (ContractCustomError, ContractLogicError):  # a refused claim (already claimed, bad proof, over total) must move nothing
            return
        r = send(fn, self.accounts[0])
        for ev in self.dist.events.RewardClaimed().process_receipt(r, errors=DISCARD):
            k = (ev["args"]["epoch"], ev["args"]["kind"], ev["args"]["account"])
            assert k not in self.paid, f"paid twice: {k}"
            self.paid[k] = ev["args"]["amount"]

    @rule(which=st.integers(0, 1), i=st.integers(0, 4))
    def claim_valid(self, which: int, i: int) -> None:
        key = list(self.epochs)[which]
        tree, entries, _ = self.epochs[key]
        self._try_claim(key, entries[i][0], entries[i][1], tree.proof(i))

    @rule(which=st.integers(0, 1), i=st.integers(0, 4), j=st.integers(0, 4), extra=st.integers(1, 10 * E18))
    def claim_forged(self, which: int, i: int, j: int, extra: int) -> None:
        key = list(self.epochs)[which]
        tree, entries, _ = self.epochs[key]
        self._try_claim(key, entries[i][0], entries[i][1] + extra, tree.proof(j))

    @invariant()
    def at_most_once_and_within_total(self) -> None:
        for (epoch, kind), (_, entries, total) in self.epochs.items():
            paid = sum(v for (e, k, _), v in self.paid.items() if (e, k) == (epoch, kind))
            assert paid <= total
            assert self.dist.functions.epochReward(epoch, kind).call()[2] == paid
            for account, amount in entries:
                got = self.paid.get((epoch, kind, account))
                assert got in (None, amount)
                assert self.token.functions.balanceOf(account).call() == sum(
                    v for (_, _, a), v in self.paid.items() if a == account
                )


def test_distributor_invariants(eth: Web3) -> None:
    """Hypothesis stateful run of DistributorMachine (each example reverts its chain changes)."""
    DistributorMachine.w3 = eth
    DistributorMachine.TestCase.settings = settings(max_examples=5, stateful_step_count=15, deadline=None)
    DistributorMachine.TestCase().runTest()


PUBLISHED_IN_RUN: list[int] = []


class PublishMachine(RuleBasedStateMachine):
    """A publisher (think: a leaked REWARDS_ROLE key) trying any epoch and total, governance changing caps, time
    passing. Invariant: per kind, what was published is at most the highest cap ever set times the epochs that have
    ended since the deployment's, each epoch at most once and only once it ended."""

    w3: Web3

    def __init__(self) -> None:
        super().__init__()
        self._snap = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.token, self.dist = _setup(self.w3)
        self.admin = self.w3.eth.accounts[0]
        self.first = int(self.dist.functions.nextRewardEpoch(PROVIDER_STAKING).call())
        self.max_cap = {PROVIDER_STAKING: MAX_CAP, RENTER_LOYALTY: MAX_CAP}
        self.published: dict[tuple[int, int], int] = {}

    def teardown(self) -> None:
        self.w3.provider.make_request("evm_revert", [self._snap])  # type: ignore[arg-type]

    @rule(epochs=st.integers(0, 2), extra=st.integers(0, EPOCH - 1))
    def time_passes(self, epochs: int, extra: int) -> None:
        increase_time(self.w3, epochs * EPOCH + extra)

    @rule(kind=st.sampled_from([PROVIDER_STAKING, RENTER_LOYALTY]), cap=st.integers(0, 2 * MAX_CAP))
    def governance_sets_cap(self, kind: int, cap: int) -> None:
        fn = self.dist.functions.setEpochRewardCap(kind, cap)
        try:
            fn.estimate_gas({"from": self.admin})
        except (ContractCustomError, ContractLogicError):
            assert cap > MAX_CAP
            return
        send(fn, self.admin)
        self.max_cap[kind] = max(self.max_cap[kind], cap)

    @rule(kind=st.sampled_from([PROVIDER_STAKING, RENTER_LOYALTY]), offset=st.integers(-2, 8),
          total=st.one_of(st.integers(1, 50_000 * E18), st.integers(1, 2 * MAX_CAP)))
    def publisher_tries(self, kind: int, offset: int, total: int) -> None:
        epoch = max(self.first + offset, 0)
        fn = self.dist.functions.setEpochRoot(epoch, kind, b"\x07" * 32, total)
        try:
            fn.estimate_gas({"from": self.admin})
        except (ContractCustomError, ContractLogicError):
            return
        send(fn, self.admin)
        assert (epoch, kind) not in self.published
        assert epoch >= now(self.w3) // EPOCH - REWARD_PUBLISH_WINDOW  # no backlog beyond the window
        self.published[(epoch, kind)] = total
        PUBLISHED_IN_RUN.append(total)

    @invariant()
    def within_caps_and_ended_epochs(self) -> None:
        ended = now(self.w3) // EPOCH - self.first  # epochs since the deployment's that have ended
        for kind in (PROVIDER_STAKING, RENTER_LOYALTY):
            mine = {e: t for (e, k), t in self.published.items() if k == kind}
            assert len(mine) <= max(ended, 0)
            assert all(self.first <= e < self.first + ended for e in mine)
            assert sum(mine.values()) <= self.max_cap[kind] * max(ended, 0)


def test_publishing_never_exceeds_the_caps(eth: Web3) -> None:
    """Hypothesis stateful run of PublishMachine (each example reverts its chain changes)."""
    PublishMachine.w3 = eth
    PublishMachine.TestCase.settings = settings(max_examples=6, stateful_step_count=15, deadline=None,
                                                derandomize=True)
    PUBLISHED_IN_RUN.clear()
    PublishMachine.TestCase().runTest()
    assert PUBLISHED_IN_RUN, "no example published anything: the invariant was never exercised"
