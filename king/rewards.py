"""The king publishes each ended reward epoch's Merkle roots to TokenDistributor.

For every reward kind, from TokenDistributor's ``nextRewardEpoch`` up to the newest epoch that ended at the
confirmed head, the king reads the epoch's settlements (:mod:`blendr.chain.rewards`), shares the pool
(``rewards.provider_pool`` / ``rewards.renter_pool``, at most the governance cap) and sends ``setEpochRoot``.

Guarantees:

- Idempotent and restart-safe: the chain is the record. An epoch already holding a root is skipped; a publish
  refused because another transaction of ours already landed is re-read and counted as done. A cursor in the
  store saves re-reading empty epochs after a restart, and marks how far the amounts below are kept.
- Never more than the cap: the pool is cut to ``epochRewardCap`` (TokenDistributor refuses more anyway).
- Empty epochs (nobody earned, or a cap of 0) publish nothing and are not looked at again.
- Every published epoch's amounts are kept per address (:data:`NS_REWARD_HOLDINGS`, the newest
  :data:`MAX_HOLDINGS` entries of each), for renters' wallets: they are written in the same batch that moves the
  cursor past the epoch, so a store failure leaves the cursor behind and a later step writes them (an epoch found
  published, by an earlier send of ours, is recomputed with its published total and kept only when the roots
  agree; its transaction is then not known). Writing them again changes nothing.
- After an outage longer than TokenDistributor's ``REWARD_PUBLISH_WINDOW`` (4 epochs) the epochs past it are lost:
  ``nextRewardEpoch`` moves past them, and so does the publisher (a leaked key cannot pay out a backlog either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from blendr.chain.rewards import Published, RewardsChain
from blendr.config import RewardsConfig
from blendr.errors import ContractRevertError
from blendr.rewards import EpochRewards, RewardKind, Settlement, compute
from blendr.store import Batch, Store
from blendr.telemetry import get_logger
from blendr.units import Wei, fmt_tokens, parse_tokens

if TYPE_CHECKING:
    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import Manifest

log = get_logger("blendr.king.rewards")

NS_REWARDS = "rewards"
NS_REWARD_HOLDINGS = "reward_holdings"  # checksummed address -> {"entries": [RewardHolding docs, newest first]}
MAX_HOLDINGS = 104  # entries kept per address: two years of weekly epochs of one kind, one year of both
MAX_EPOCHS_PER_STEP = 8  # bounds one step's work after a long outage; the next step goes on
_KINDS = {k.label: k for k in RewardKind}


@dataclass(frozen=True)
class PublishedEpoch:
    epoch: int
    kind: RewardKind
    total: Wei
    accounts: int
    tx: str


@dataclass(frozen=True)
class RewardHolding:
    """What one address earned in one published (epoch, kind); ``publish_tx`` is "" when not known."""

    epoch: int
    kind: RewardKind
    amount: Wei
    publish_tx: str

    def to_doc(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "kind": self.kind.label, "amount": str(self.amount), "publish_tx": self.publish_tx}

    @classmethod
    def from_doc(cls, d: Mapping[str, Any]) -> RewardHolding:
        return cls(int(d["epoch"]), _KINDS[str(d["kind"])], Wei(int(d["amount"])), str(d["publish_tx"]))

    @property
    def order(self) -> tuple[int, int]:
        return self.epoch, int(self.kind)


def reward_holdings(store: Store, address: str) -> list[RewardHolding]:
    """The rewards kept for ``address`` (checksummed), newest first (by epoch, then renter before provider).

    Raises:
        StoreError: the store cannot be read.
    """
    doc = store.get(NS_REWARD_HOLDINGS, address)
    return [RewardHolding.from_doc(e) for e in doc["entries"]] if doc else []


def _with_holding(doc: Mapping[str, Any] | None, new: RewardHolding) -> list[dict[str, Any]] | None:
    """The entries of ``doc`` with ``new`` in place of any entry of the same (epoch, kind), newest first, at most
    :data:`MAX_HOLDINGS`; None when that changes nothing (a known transaction is not replaced by an unknown one)."""
    old = [RewardHolding.from_doc(e) for e in doc["entries"]] if doc else []
    same = next((h for h in old if h.order == new.order), None)
    if same is not None and not new.publish_tx:
        new = RewardHolding(new.epoch, new.kind, new.amount, same.publish_tx)
    entries = sorted([h for h in old if h.order != new.order] + [new], key=lambda h: h.order, reverse=True)
    entries = entries[:MAX_HOLDINGS]
    return None if entries == old else [h.to_doc() for h in entries]


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

    def _cursor(self, kind: RewardKind) -> int | None:
        doc = self.store.get(NS_REWARDS, f"cursor-{kind.value}")
        return int(doc["next"]) if doc else None

    def _advance(self, kind: RewardKind, nxt: int, batch: Batch | None = None) -> None:
        (batch or self.store).put(NS_REWARDS, f"cursor-{kind.value}", {"next": nxt})

    def _record(self, rewards: EpochRewards, tx: str) -> None:
        """Keeps each account's amount of ``rewards`` and moves the cursor past its epoch, in one batch.

        Raises:
            StoreError: nothing was written.
        """
        docs: dict[str, list[dict[str, Any]]] = {}
        for account, amount in rewards.amounts.items():
            entries = _with_holding(self.store.get(NS_REWARD_HOLDINGS, account),
                                    RewardHolding(rewards.epoch, rewards.kind, Wei(amount), tx))
            if entries is not None:
                docs[account] = entries
        with self.store.batch() as b:
            for account, entries in docs.items():
                b.put(NS_REWARD_HOLDINGS, account, {"entries": entries})
            self._advance(rewards.kind, rewards.epoch + 1, b)

    def _record_published(self, published: Published, inputs: dict[int, list[Settlement]],
                          ours: EpochRewards | None = None) -> None:
        """Keeps the amounts of an epoch found published (``ours``: what this king computed for it), recomputed
        with its published total; when the roots differ (published with other inputs) nothing is kept."""
        epoch, kind = published.epoch, published.kind
        rewards = ours
        if rewards is None or rewards.root != published.root:
            if epoch not in inputs:
                inputs[epoch] = self.chain.settlements(epoch)
            rewards = compute(epoch, kind, inputs[epoch], published.total)
        if rewards.root != published.root:
            log.warning("a published reward epoch's root differs from its recomputation: its amounts are not kept",
                        epoch=epoch, kind=kind.label)
            self._advance(kind, epoch + 1)
            return
        self._record(rewards, "")

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
            StoreError: the store failed (an epoch published but not kept is kept by the next step).
        """
        if not self.cfg.publish or not self.can_publish():
            return []
        last = self.chain.last_ended_epoch()
        done: list[PublishedEpoch] = []
        inputs: dict[int, list[Settlement]] = {}  # one read of an epoch's settlements serves both kinds
        for kind in RewardKind:
            nxt, cursor = self.chain.next_epoch(kind), self._cursor(kind)
            if cursor is None:  # a new store: the epochs published before it are not looked at
                self._advance(kind, nxt)
                cursor = nxt
            # a cursor behind the chain: epochs published (a step that failed to save their amounts) or lost (past
            # the publish window) since; the recent ones are looked at again
            for epoch in range(max(cursor, nxt - MAX_EPOCHS_PER_STEP), nxt):
                published = self.chain.published(epoch, kind)
                if published.is_set:
                    self._record_published(published, inputs)
                else:
                    self._advance(kind, epoch + 1)
            start = max(nxt, cursor)
            for epoch in range(start, min(last + 1, start + MAX_EPOCHS_PER_STEP)):
                published = self.chain.published(epoch, kind)
                if published.is_set:
                    self._record_published(published, inputs)
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
                    published = self.chain.published(epoch, kind)
                    if not published.is_set:  # not an earlier send of ours that landed
                        raise
                    log.info("reward epoch was already published", epoch=epoch, kind=kind.label)
                    self._record_published(published, inputs, rewards)
                    continue
                tx = "0x" + bytes(receipt["transactionHash"]).hex()
                done.append(PublishedEpoch(epoch, kind, rewards.total, len(rewards.amounts), tx))
                log.info("reward epoch published", epoch=epoch, kind=kind.label, total=fmt_tokens(rewards.total),
                         accounts=len(rewards.amounts), root="0x" + rewards.root.hex(), tx=tx)
                self._record(rewards, tx)
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
