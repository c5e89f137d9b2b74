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
    return token, dist


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
    r = send(dist.functions.setEpochRoot(7, RENTER_LOYALTY, tree.root, 60 * E18), admin)
    ev = dist.events.EpochRootSet().process_receipt(r)[0]["args"]
    assert (ev["epoch"], ev["kind"], ev["root"], ev["total"]) == (7, RENTER_LOYALTY, tree.root, 60 * E18)
    assert dist.functions.categoryUsed(COMMUNITY).call() == 60 * E18
    assert dist.functions.rewardsOutstanding().call() == 60 * E18
    r = send(dist.functions.claim(7, RENTER_LOYALTY, b, 20 * E18, tree.proof(1)), relayer)
    assert token.functions.balanceOf(b).call() == 20 * E18
    assert token.functions.balanceOf(relayer).call() == 0
    ev = dist.events.RewardClaimed().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["epoch"], ev["kind"], ev["account"], ev["amount"]) == (7, RENTER_LOYALTY, b, 20 * E18)
    assert dist.functions.isClaimed(7, RENTER_LOYALTY, b).call()
    assert not dist.functions.isClaimed(7, PROVIDER_STAKING, b).call()
    assert dist.functions.epochReward(7, RENTER_LOYALTY).call() == [tree.root, 60 * E18, 20 * E18]
    assert dist.functions.rewardsOutstanding().call() == 40 * E18
    send(dist.functions.claim(7, RENTER_LOYALTY, a, 10 * E18, tree.proof(0)), a)
    send(dist.functions.claim(7, RENTER_LOYALTY, c, 30 * E18, tree.proof(2)), a)
    assert dist.functions.epochReward(7, RENTER_LOYALTY).call()[2] == 60 * E18


def test_unclaimed_rewards_return_to_the_community_cap_after_the_claim_period(
    eth: Web3, contracts: tuple[Contract, Contract]
) -> None:
    """Claims end after CLAIM_PERIOD; closeEpoch (anyone) releases the rest once; nothing stays reserved forever."""
    _, dist = contracts
    admin, a, b, anyone = eth.eth.accounts[:4]
    tree = MerkleTree([(a, 10 * E18), (b, 20 * E18)])
    send(dist.functions.setEpochRoot(4, PROVIDER_STAKING, tree.root, 30 * E18), admin)
    deadline = dist.functions.claimDeadline(4, PROVIDER_STAKING).call()
    assert deadline == now(eth) + dist.functions.CLAIM_PERIOD().call()
    send(dist.functions.claim(4, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), a)
    with reverts("TokenDistributorClaimPeriodNotOver"):
        send(dist.functions.closeEpoch(4, PROVIDER_STAKING), anyone)
    with reverts("TokenDistributorEpochNotSet"):
        send(dist.functions.closeEpoch(5, PROVIDER_STAKING), anyone)
    increase_time(eth, deadline - now(eth))
    with reverts("TokenDistributorClaimPeriodOver"):
        send(dist.functions.claim(4, PROVIDER_STAKING, b, 20 * E18, tree.proof(1)), b)
    used = dist.functions.categoryUsed(COMMUNITY).call()
    r = send(dist.functions.closeEpoch(4, PROVIDER_STAKING), anyone)
    ev = dist.events.EpochClosed().process_receipt(r, errors=DISCARD)[0]["args"]
    assert (ev["epoch"], ev["kind"], ev["unclaimed"]) == (4, PROVIDER_STAKING, 20 * E18)
    assert dist.functions.categoryUsed(COMMUNITY).call() == used - 20 * E18
    assert dist.functions.rewardsOutstanding().call() == 0
    assert dist.functions.epochReward(4, PROVIDER_STAKING).call() == [tree.root, 10 * E18, 10 * E18]
    with reverts("TokenDistributorEpochClosed"):
        send(dist.functions.closeEpoch(4, PROVIDER_STAKING), anyone)


def test_set_epoch_root_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Zero root, zero total, a second root for the same epoch+kind, over the Community cap, wrong role."""
    _, dist = contracts
    admin = eth.eth.accounts[0]
    root = b"\x01" * 32
    with reverts("TokenDistributorZeroRoot"):
        send(dist.functions.setEpochRoot(1, PROVIDER_STAKING, b"\x00" * 32, 1), admin)
    with reverts("TokenDistributorZeroAmount"):
        send(dist.functions.setEpochRoot(1, PROVIDER_STAKING, root, 0), admin)
    send(dist.functions.setEpochRoot(1, PROVIDER_STAKING, root, 1), admin)
    send(dist.functions.setEpochRoot(1, RENTER_LOYALTY, root, 1), admin)  # other kind, same epoch: fine
    with reverts("TokenDistributorEpochRootAlreadySet"):
        send(dist.functions.setEpochRoot(1, PROVIDER_STAKING, b"\x02" * 32, 1), admin)
    cap = dist.functions.categoryCap(COMMUNITY).call()
    with reverts("TokenDistributorCategoryCapExceeded"):
        send(dist.functions.setEpochRoot(2, PROVIDER_STAKING, root, cap - 1), admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(dist.functions.setEpochRoot(3, PROVIDER_STAKING, root, 1), eth.eth.accounts[1])


def test_claim_errors(eth: Web3, contracts: tuple[Contract, Contract]) -> None:
    """Unknown epoch, bad proof, wrong amount, second claim and a tree that over-commits its total."""
    _, dist = contracts
    admin, a, b = eth.eth.accounts[:3]
    tree = MerkleTree([(a, 10 * E18), (b, 20 * E18)])
    with reverts("TokenDistributorEpochNotSet"):
        send(dist.functions.claim(1, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), a)
    send(dist.functions.setEpochRoot(1, PROVIDER_STAKING, tree.root, 25 * E18), admin)  # total < sum of leaves
    with reverts("TokenDistributorInvalidProof"):
        send(dist.functions.claim(1, PROVIDER_STAKING, a, 11 * E18, tree.proof(0)), a)
    with reverts("TokenDistributorInvalidProof"):
        send(dist.functions.claim(1, PROVIDER_STAKING, a, 10 * E18, tree.proof(1)), a)
    with reverts("TokenDistributorEpochNotSet"):
        send(dist.functions.claim(1, RENTER_LOYALTY, a, 10 * E18, tree.proof(0)), a)
    send(dist.functions.claim(1, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), a)
    with reverts("TokenDistributorAlreadyClaimed"):
        send(dist.functions.claim(1, PROVIDER_STAKING, a, 10 * E18, tree.proof(0)), b)
    with reverts("TokenDistributorEpochTotalExceeded"):
        send(dist.functions.claim(1, PROVIDER_STAKING, b, 20 * E18, tree.proof(1)), b)


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
        for epoch, kind, factor in [(1, PROVIDER_STAKING, 1), (2, RENTER_LOYALTY, 2)]:
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
