"""king.rewards.RewardPublisher against a fake chain that enforces TokenDistributor's publishing rules."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import to_checksum_address

from blendr.config import RewardsConfig
from blendr.errors import ContractRevertError, StoreError, UnavailableError
from blendr.rewards import EpochRewards, RewardKind, Settlement
from blendr.store import MemoryStore
from blendr.units import Wei, tokens
from king.rewards import MAX_HOLDINGS, NS_REWARD_HOLDINGS, RewardHolding, RewardPublisher, reward_holdings
from tests.fakes.rewards_chain import FakeRewardsChain as FakeChain

P, R = RewardKind.PROVIDER_STAKING, RewardKind.RENTER_LOYALTY


def addr(i: int) -> str:
    return to_checksum_address(f"0x{i:040x}")


def s(rid: int, renter: int, provider: int, gpus: int = 1, secs: int = 3600, spent: int = 100) -> Settlement:
    return Settlement(rid, addr(renter), addr(provider), gpus, secs, Wei(spent))


def test_publishes_each_ended_epoch_once_with_the_cap_as_pool() -> None:
    chain = FakeChain(last=12, inputs={10: [s(1, 0xA, 0x1)], 12: [s(2, 0xB, 0x2), s(3, 0xA, 0x1, gpus=3)]})
    store = MemoryStore()
    pub = RewardPublisher(chain, store, RewardsConfig())
    done = pub.step()
    assert [(d.epoch, d.kind, d.total, d.accounts) for d in done] == [
        (10, P, tokens(100), 1), (12, P, tokens(100), 2), (10, R, tokens(50), 1), (12, R, tokens(50), 2)]
    assert sorted(set(chain.reads)) == [10, 11, 12] and len(chain.reads) == 3  # one read serves both kinds
    assert pub.step() == []  # nothing twice
    chain.last = 13
    chain.reads.clear()
    assert pub.step() == [] and chain.reads == [13]  # the empty epoch 11 is not read again
    assert RewardPublisher(chain, MemoryStore(), RewardsConfig()).step() == []  # a restart with no store: chain rules


def test_configured_pool_is_cut_to_the_cap() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    RewardPublisher(chain, MemoryStore(), RewardsConfig(provider_pool="1000", renter_pool="7.5")).step()
    assert chain.sent == [(10, P, tokens(100)), (10, R, tokens("7.5"))]


def test_a_cap_of_zero_publishes_nothing() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    chain.caps[R] = 0
    RewardPublisher(chain, MemoryStore(), RewardsConfig()).step()
    assert chain.sent == [(10, P, tokens(100))]


def test_a_resend_that_already_landed_counts_as_published() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    chain.land_then_fail = True
    pub = RewardPublisher(chain, MemoryStore(), RewardsConfig())
    assert pub.step() == []  # reported as reverted, but the root is there: nothing raised, nothing re-sent
    assert len(chain.sent) == 2 and pub.step() == []


def test_a_revert_that_published_nothing_is_raised() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    chain.caps[P] = tokens(100)
    pub = RewardPublisher(chain, MemoryStore(), RewardsConfig())
    chain.cap = lambda kind: Wei(tokens(1000))  # type: ignore[method-assign]  # governance lowered it meanwhile
    with pytest.raises(ContractRevertError):
        pub.step()
    assert chain.sent == []


def test_without_the_role_or_when_disabled_nothing_is_read() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    chain.role = False
    assert RewardPublisher(chain, MemoryStore(), RewardsConfig()).step() == []
    chain.role = True
    assert RewardPublisher(chain, MemoryStore(), RewardsConfig(publish=False)).step() == []
    assert chain.reads == [] and chain.sent == []


def test_an_outage_mid_step_loses_nothing() -> None:
    chain = FakeChain(last=11, inputs={10: [s(1, 0xA, 0x1)], 11: [s(2, 0xB, 0x2)]})
    pub = RewardPublisher(chain, MemoryStore(), RewardsConfig())
    real = chain.settlements

    def flaky(epoch: int) -> list[Settlement]:
        if epoch == 11:
            raise UnavailableError("eth RPC down")
        return real(epoch)

    chain.settlements = flaky  # type: ignore[method-assign]
    with pytest.raises(UnavailableError):
        pub.step()
    chain.settlements = real  # type: ignore[method-assign]
    pub.step()
    assert sorted((e, k) for e, k, _ in chain.sent) == [(10, P), (10, R), (11, P), (11, R)]


def test_after_a_long_outage_only_the_epochs_still_in_the_window_are_published() -> None:
    """Epochs past TokenDistributor's publish window are skipped (the chain refuses them), and an epoch whose window
    closes between its computation and its transaction does not stall the publisher: the next step moves on."""
    inputs = {e: [s(e, 0xA, 0x1)] for e in range(10, 30)}
    chain = FakeChain(last=12, inputs=inputs)
    pub = RewardPublisher(chain, MemoryStore(), RewardsConfig(renter_pool="0"))
    assert [d.epoch for d in pub.step() if d.kind is P] == [10, 11, 12]
    chain.last = 25  # down for 13 epochs: 13 to 21 can no longer be published
    assert [d.epoch for d in pub.step() if d.kind is P] == [22, 23, 24, 25]
    chain.last = 27
    real = chain.publish

    def window_closes(rewards: EpochRewards) -> Any:
        chain.last = 40  # the epoch's window closed while its transaction was on the way
        return real(rewards)

    chain.publish = window_closes  # type: ignore[method-assign]
    with pytest.raises(ContractRevertError):
        pub.step()
    chain.publish = real  # type: ignore[method-assign]
    chain.inputs = {e: [s(e, 0xA, 0x1)] for e in range(36, 41)}
    assert [d.epoch for d in pub.step() if d.kind is P] == [37, 38, 39, 40]  # 27 and 36 are past it


TX1, TX2 = "0x" + "01" * 32, "0x" + "02" * 32


def test_each_published_amount_is_kept_per_address_newest_first() -> None:
    chain = FakeChain(last=11, inputs={10: [s(1, 0xA, 0x1)], 11: [s(2, 0xA, 0x2, spent=300), s(3, 0xB, 0x2)]})
    store = MemoryStore()
    done = RewardPublisher(chain, store, RewardsConfig()).step()
    txs = {(d.epoch, d.kind): d.tx for d in done}
    assert reward_holdings(store, addr(0xA)) == [
        RewardHolding(11, R, Wei(tokens("37.5")), txs[(11, R)]), RewardHolding(10, R, Wei(tokens(50)), txs[(10, R)])]
    assert reward_holdings(store, addr(0x2)) == [RewardHolding(11, P, Wei(tokens(100)), txs[(11, P)])]
    assert reward_holdings(store, addr(0xB)) == [RewardHolding(11, R, Wei(tokens("12.5")), txs[(11, R)])]
    assert reward_holdings(store, addr(0xC)) == []
    assert store.count(NS_REWARD_HOLDINGS) == 4  # 0x1, 0x2, 0xA, 0xB


def test_keeping_again_changes_nothing() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    store = MemoryStore()
    pub = RewardPublisher(chain, store, RewardsConfig())
    pub.step()
    kept = reward_holdings(store, addr(0xA))
    assert len(kept) == 1 and kept[0].publish_tx.startswith("0x")
    again = compute_for(chain, 10, R, 0xA)
    pub._record(again, "")  # recomputed after the fact: the known transaction stays
    pub._record(again, kept[0].publish_tx)
    assert pub.step() == [] and reward_holdings(store, addr(0xA)) == kept


def test_a_store_failure_after_publishing_is_saved_by_the_next_step() -> None:
    """The amounts go with the cursor: a failed write leaves the cursor behind, and the next step recomputes the
    epoch the chain holds (its transaction is then unknown) instead of losing it."""
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    store = MemoryStore()
    pub = RewardPublisher(chain, store, RewardsConfig(renter_pool="0"))
    real = store._apply

    def failing(ops: Any) -> None:
        raise StoreError("database down")

    store._apply = failing  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        pub.step()
    assert chain.sent == [(10, P, tokens(100))] and reward_holdings(store, addr(0x1)) == []
    store._apply = real  # type: ignore[method-assign]
    chain.last = 11
    assert pub.step() == [] and chain.sent == [(10, P, tokens(100))]  # nothing sent twice
    assert reward_holdings(store, addr(0x1)) == [RewardHolding(10, P, Wei(tokens(100)), "")]


def test_a_resend_that_already_landed_keeps_the_amounts() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    chain.land_then_fail = True
    store = MemoryStore()
    RewardPublisher(chain, store, RewardsConfig()).step()
    assert reward_holdings(store, addr(0x1)) == [RewardHolding(10, P, Wei(tokens(100)), "")]
    assert reward_holdings(store, addr(0xA)) == [RewardHolding(10, R, Wei(tokens(50)), "")]


def test_a_root_published_from_other_inputs_keeps_nothing() -> None:
    chain = FakeChain(last=10, inputs={10: [s(1, 0xA, 0x1)]})
    chain.roots[(10, P)] = (b"\x07" * 32, tokens(100))  # someone else's root, seen by a store left behind
    store = MemoryStore()
    store.put("rewards", f"cursor-{P.value}", {"next": 10})
    RewardPublisher(chain, store, RewardsConfig(renter_pool="0")).step()
    assert reward_holdings(store, addr(0x1)) == [] and store.get("rewards", f"cursor-{P.value}") == {"next": 11}


def test_an_address_keeps_its_newest_entries_only() -> None:
    last = 10 + MAX_HOLDINGS // 2 + 4
    chain = FakeChain(last=10, inputs={e: [s(e, 0xA, 0xA + 1)] for e in range(10, last + 1)})
    store = MemoryStore()
    pub = RewardPublisher(chain, store, RewardsConfig())
    for chain.last in range(10, last + 1):
        pub.step()
    renter, provider = reward_holdings(store, addr(0xA)), reward_holdings(store, addr(0xB))
    assert len(renter) == len(provider) == last - 10 + 1 < MAX_HOLDINGS  # one kind each
    both = RewardPublisher(chain, store, RewardsConfig())
    for e in range(10, last + 1):  # the same address earning both kinds: 2 entries an epoch
        both._record(compute_for(chain, e, P, 0xA), "")
    kept = reward_holdings(store, addr(0xA))
    assert len(kept) == MAX_HOLDINGS
    assert [(h.epoch, h.kind) for h in kept[:3]] == [(last, R), (last, P), (last - 1, R)]
    assert kept[-1].epoch == last - MAX_HOLDINGS // 2 + 1  # the oldest dropped
    both._record(compute_for(chain, 10, P, 0xA), "")  # an entry older than every kept one: not brought back
    assert reward_holdings(store, addr(0xA)) == kept


def compute_for(chain: FakeChain, epoch: int, kind: RewardKind, account: int) -> EpochRewards:
    """``kind`` rewards of ``epoch`` paid to ``account`` (as if it had earned the whole pool)."""
    from blendr.rewards import compute
    return compute(epoch, kind, [s(epoch, account + 1, account)] if kind is P else [s(epoch, account, account + 1)],
                   chain.caps[kind])
