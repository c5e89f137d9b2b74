"""The king publishes each ended reward epoch's Merkle roots to TokenDistributor.

For every reward kind, from TokenDistributor's ``nextRewardEpoch`` up to the newest epoch that ended at the
confirmed head, the king reads the epoch's settlements (:mod:`blendr.chain.rewards`), shares the pool
(``rewards.provider_pool`` / ``rewards.renter_pool``, at most the governance cap) and sends ``setEpochRoot``.

Guarantees:

- Idempotent and restart-safe: the chain is the record. An epoch already holding a root is skipped; a publish
  refused because another transaction of ours already landed is re-read and counted as done. A cursor in the
  store only saves re-reading empty epochs after a restart.
- Never more than the cap: the pool is cut to ``epochRewardCap`` (TokenDistributor refuses more anyway).
- Empty epochs (nobody earned, or a cap of 0) publish nothing and are not looked at again.
- After an outage longer than TokenDistributor's ``REWARD_PUBLISH_WINDOW`` (4 epochs) the epochs past it are lost:
  ``nextRewardEpoch`` moves past them, and so does the publisher (a leaked key cannot pay out a backlog either).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from blendr.chain.rewards import Published, RewardsChain
from blendr.config import RewardsConfig
from blendr.errors import ContractRevertError
from blendr.rewards import EpochRewards, RewardKind, Settlement, compute
from blendr.store import Store
from blendr.telemetry import get_logger
from blendr.units import Wei, fmt_tokens, parse_tokens

if TYPE_CHECKING:
    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import Manifest

log = get_logger("blendr.king.rewards")

NS_REWARDS = "rewards"
MAX_EPOCHS_PER_STEP = 8  # bounds one step's work after a long outage; the next step goes on


@dataclass(frozen=True)
class PublishedEpoch:
    epoch: int
    kind: RewardKind
    total: Wei
    accounts: int
    tx: str


class RewardsPort(Protocol):
    """What the publisher needs of the chain (:class:`~blendr.chain.rewards.RewardsChain`, or a fake)."""

    def is_publisher(self) -> bool: ...
    def last_ended_epoch(self) -> int: ...
    def next_epoch(self, kind: RewardKind) -> int: ...
    def published(self, epoch: int, kind: RewardKind) -> Published: ...
    def settlements(self, epoch: int) -> list[Settlement]: ...
    def cap(self, kind: RewardKind) -> Wei: ...
    def publish(self, rewards: EpochRewards) -> Any: ...


@dataclass
class RewardPublisher:
    """Publishes ended epochs' roots; :meth:`step` is one blocking pass (run it in a thread)."""

    chain: RewardsPort
    store: Store
    cfg: RewardsConfig
    _warned_role: bool = field(default=False, repr=False)

    def pool(self, kind: RewardKind) -> Wei:
        """This king's pool for ``kind``: its config, at most the governance cap (empty config: the cap)."""
        cap = self.chain.cap(kind)
        raw = self.cfg.provider_pool if kind is RewardKind.PROVIDER_STAKING else self.cfg.renter_pool
        if not raw.strip():
            return cap
        return Wei(min(parse_tokens(raw, f"rewards.{kind.label}_pool"), cap))

    def _cursor(self, kind: RewardKind) -> int:
        doc = self.store.get(NS_REWARDS, f"cursor-{kind.value}")
        return int(doc["next"]) if doc else 0

    def _advance(self, kind: RewardKind, nxt: int) -> None:
        self.store.put(NS_REWARDS, f"cursor-{kind.value}", {"next": nxt})

    def can_publish(self) -> bool:
        """Whether this king's key holds REWARDS_ROLE (logged once when not)."""
        ok = self.chain.is_publisher()
        if not ok and not self._warned_role:
            log.warning("this king's key lacks TokenDistributor's REWARDS_ROLE: it does not publish reward epochs")
            self._warned_role = True
        return ok

    def step(self) -> list[PublishedEpoch]:
        """Publishes what is due now; returns what it published.

        Raises:
            ChainError / UnavailableError: the RPC failed (nothing half-done: the next step starts over).
        """
        if not self.cfg.publish or not self.can_publish():
            return []
        last = self.chain.last_ended_epoch()
        done: list[PublishedEpoch] = []
        inputs: dict[int, list[Settlement]] = {}  # one read of an epoch's settlements serves both kinds
        for kind in RewardKind:
            start = max(self.chain.next_epoch(kind), self._cursor(kind))
            for epoch in range(start, min(last + 1, start + MAX_EPOCHS_PER_STEP)):
                if self.chain.published(epoch, kind).is_set:
                    self._advance(kind, epoch + 1)
                    continue
                if epoch not in inputs:
                    inputs[epoch] = self.chain.settlements(epoch)
                rewards = compute(epoch, kind, inputs[epoch], self.pool(kind))
                if rewards.tree is None:
                    log.info("reward epoch empty: nothing to publish", epoch=epoch, kind=kind.label,
                             settlements=len(inputs[epoch]))
                    self._advance(kind, epoch + 1)
                    continue
                try:
                    receipt = self.chain.publish(rewards)
                except ContractRevertError:
                    if not self.chain.published(epoch, kind).is_set:  # not an earlier send of ours that landed
                        raise
                    log.info("reward epoch was already published", epoch=epoch, kind=kind.label)
                    self._advance(kind, epoch + 1)
                    continue
                tx = "0x" + bytes(receipt["transactionHash"]).hex()
                done.append(PublishedEpoch(epoch, kind, rewards.total, len(rewards.amounts), tx))
                log.info("reward epoch published", epoch=epoch, kind=kind.label, total=fmt_tokens(rewards.total),
                         accounts=len(rewards.amounts), root="0x" + rewards.root.hex(), tx=tx)
                self._advance(kind, epoch + 1)
        return done


async def follow(publisher: RewardPublisher, poll_s: float) -> None:
    """Runs :meth:`RewardPublisher.step` every ``poll_s`` seconds, forever; a failing step is logged and tried
    again next round (a chain outage delays publishing, it never skips an epoch)."""
    import asyncio

    from blendr.errors import BlendrError

    while True:
        try:
            await asyncio.to_thread(publisher.step)
        except BlendrError as exc:
            log.warning("reward publishing failed; trying again next round", error=str(exc)[:300])
        await asyncio.sleep(poll_s)


def publisher_for(eth: ChainClient, m: Manifest, store: Store, cfg: RewardsConfig) -> RewardPublisher:
    """The king's publisher on the deployment ``m`` (``eth`` signs with the king's key)."""
    chain = RewardsChain(eth, m.eth.address("GPURental"), m.eth.address("TokenDistributor"),
                         start_block=m.eth.deploy_block)
    return RewardPublisher(chain, store, cfg)
