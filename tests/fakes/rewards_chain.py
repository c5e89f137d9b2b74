"""An in-memory TokenDistributor reward section + GPURental settlements behind king.rewards' ``RewardsPort``."""

from __future__ import annotations

from typing import Any

from blendr.chain.rewards import ZERO_ROOT, Published
from blendr.errors import ContractRevertError
from blendr.rewards import EpochRewards, RewardKind, Settlement
from blendr.units import Wei, tokens

P, R = RewardKind.PROVIDER_STAKING, RewardKind.RENTER_LOYALTY


class FakeRewardsChain:
    """TokenDistributor's rules: in order, once, within the cap; epochs end when ``last`` says."""

    def __init__(self, last: int, inputs: dict[int, list[Settlement]], first: int = 10) -> None:
        self.last = last
        self.inputs = inputs
        self.first = first
        self.roots: dict[tuple[int, RewardKind], tuple[bytes, int]] = {}
        self.caps = {P: tokens(100), R: tokens(50)}
        self.role = True
        self.reads: list[int] = []
        self.sent: list[tuple[int, RewardKind, int]] = []
        self.land_then_fail = False  # the transaction lands, but the client reports a revert (a resend)

    def is_publisher(self) -> bool:
        return self.role

    def last_ended_epoch(self) -> int:
        return self.last

    def next_epoch(self, kind: RewardKind) -> int:
        """As TokenDistributor.nextRewardEpoch: the current epoch is ``last + 1``; REWARD_PUBLISH_WINDOW is 4."""
        done = [e for (e, k) in self.roots if k == kind]
        return max([self.first, self.last + 1 - 4, *(e + 1 for e in done)])

    def published(self, epoch: int, kind: RewardKind) -> Published:
        root, total = self.roots.get((epoch, kind), (ZERO_ROOT, 0))
        return Published(epoch, kind, root, Wei(total), Wei(0))

    def settlements(self, epoch: int) -> list[Settlement]:
        self.reads.append(epoch)
        return self.inputs.get(epoch, [])

    def cap(self, kind: RewardKind) -> Wei:
        return Wei(self.caps[kind])

    def publish(self, rewards: EpochRewards) -> Any:
        e, k = rewards.epoch, rewards.kind
        if (e, k) in self.roots or e < self.next_epoch(k) or e > self.last or rewards.total > self.caps[k]:
            raise ContractRevertError("setEpochRoot reverted")
        self.roots[(e, k)] = (rewards.root, rewards.total)
        self.sent.append((e, k, rewards.total))
        if self.land_then_fail:
            raise ContractRevertError("TokenDistributorEpochRootAlreadySet")
        return {"transactionHash": bytes([len(self.sent)]) * 32}
