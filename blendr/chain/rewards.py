"""Epoch rewards on the chain: reading an epoch's settlements from GPURental's events, and TokenDistributor's
published roots, caps, claims.

The King (publishing) and ``blendr rewards`` (listing, claiming, verifying) read the same inputs with the same
code, so anybody with an ETH RPC endpoint recomputes what the King published.

Guarantees:

- An epoch's inputs are exactly the ``RentalSettled`` events in blocks whose timestamp lies in the epoch
  (``[e*D, (e+1)*D)``, D = ``TokenDistributor.REWARD_EPOCH_DURATION``), joined with each rental's
  ``RentalCreated`` (renter, provider, GPUs, escrow, start, duration) and ``RentalCancelled`` events.
- Only an epoch that ended at or before the confirmed head (``head - confirmations``) is read; a younger one
  raises :class:`~blendr.errors.FailedPreconditionError`, so a result never changes once computed (short of a
  reorg deeper than the confirmation depth).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from blendr.chain.contracts import GPURental, TokenDistributor
from blendr.errors import FailedPreconditionError
from blendr.rewards import EpochRewards, RewardKind, Settlement, compute, epoch_bounds
from blendr.units import Wei

if TYPE_CHECKING:
    from web3.types import TxReceipt

    from blendr.chain.client import ChainClient

ZERO_ROOT = b"\x00" * 32


@dataclass(frozen=True)
class Published:
    """What TokenDistributor holds for one (epoch, kind); ``root`` is zero bytes when nothing was published."""

    epoch: int
    kind: RewardKind
    root: bytes
    total: Wei
    claimed: Wei

    @property
    def is_set(self) -> bool:
        return self.root != ZERO_ROOT


class RewardsChain:
    """GPURental's settlements by reward epoch, and TokenDistributor's reward section, on one ETH client."""

    def __init__(self, eth: ChainClient, rental: str, distributor: str, *, start_block: int = 0,
                 confirmations: int | None = None, max_log_range: int = 10_000, max_topics: int = 100) -> None:
        """Args:
            rental, distributor: contract addresses (from the deployment manifest).
            start_block: the deployment's first block (no event is older).
            confirmations: depth at which a block is final; None: the client's current one (governance's).
            max_log_range: the most blocks one eth_getLogs asks for (providers cap it).
            max_topics: the most rental ids one eth_getLogs filters on; an epoch with more settlements reads
                every RentalCreated and RentalCancelled once, unfiltered.
        """
        self.eth = eth
        self.rental = GPURental(eth, rental)
        self.distributor = TokenDistributor(eth, distributor)
        self.start_block = start_block
        self._confirmations = confirmations
        self.max_log_range = max_log_range
        self.max_topics = max_topics
        self._duration: int | None = None

    @property
    def confirmations(self) -> int:
        """The depth at which a block is final now: this reader's own, else its client's current one."""
        return self.eth.settings.confirmations if self._confirmations is None else self._confirmations

    # -- epochs and blocks -------------------------------------------------------------------------------
    @property
    def epoch_duration(self) -> int:
        """TokenDistributor.REWARD_EPOCH_DURATION (seconds), read once."""
        if self._duration is None:
            self._duration = int(self.eth.call(self.distributor.fn.REWARD_EPOCH_DURATION()))
        return self._duration

    def _timestamp(self, block: int) -> int:
        return int(self.eth.retry("get_block", lambda: self.eth.w3.eth.get_block(block)["timestamp"]))

    def confirmed_head(self) -> tuple[int, int]:
        """(number, timestamp) of the newest block at the confirmation depth."""
        n = max(self.eth.block_number() - self.confirmations, 0)
        return n, self._timestamp(n)

    def last_ended_epoch(self) -> int:
        """The newest epoch whose end the confirmed head has reached (-1: none)."""
        _, ts = self.confirmed_head()
        return ts // self.epoch_duration - 1

    def _first_block_at(self, timestamp: int, head: int) -> int:
        """The lowest block in [start_block, head] with a timestamp >= ``timestamp`` (head + 1: none)."""
        lo, hi = self.start_block, head + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._timestamp(mid) >= timestamp:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def epoch_blocks(self, epoch: int) -> tuple[int, int]:
        """``[first, last]`` blocks of ``epoch`` (last < first when it has none).

        Raises:
            FailedPreconditionError: the epoch has not ended at the confirmed head.
        """
        start, end = epoch_bounds(epoch, self.epoch_duration)
        head, ts = self.confirmed_head()
        if ts < end:
            raise FailedPreconditionError(
                f"reward epoch {epoch} ends at unix time {end}; the confirmed chain is at {ts}: not over yet")
        first = self._first_block_at(start, head)
        return first, self._first_block_at(end, head) - 1

    # -- inputs ------------------------------------------------------------------------------------------
    def _logs(self, event: str, first: int, last: int, filters: dict[str, Any] | None = None) -> Iterator[Any]:
        ev = getattr(self.rental.contract.events, event)
        for lo in range(first, last + 1, self.max_log_range):
            hi = min(lo + self.max_log_range - 1, last)

            def fetch(lo: int = lo, hi: int = hi) -> Any:
                return ev().get_logs(from_block=lo, to_block=hi, argument_filters=filters or {})

            yield from self.eth.retry(f"get_logs {event}", fetch)

    def settlements(self, epoch: int) -> list[Settlement]:
        """The rentals settled in ``epoch`` (see the module's guarantees), by rental id.

        Raises:
            FailedPreconditionError: the epoch is not over at the confirmed head.
            ChainError / UnavailableError: the RPC failed.
        """
        first, last = self.epoch_blocks(epoch)
        if last < first:
            return []
        settled = {int(lg["args"]["rentalId"]): lg["args"] for lg in self._logs("RentalSettled", first, last)}
        if not settled:
            return []
        created: dict[int, Any] = {}
        cancelled: dict[int, int] = {}
        ids = sorted(settled)
        # A few ids: filtered on them. More: one unfiltered pass per event over the blocks (a pass per chunk of ids
        # made a big epoch on a long chain cost (settlements / max_topics) x (blocks / max_log_range) calls).
        filters = {"rentalId": ids} if len(ids) <= self.max_topics else None
        for lg in self._logs("RentalCreated", self.start_block, last, filters):
            if int(lg["args"]["rentalId"]) in settled:
                created[int(lg["args"]["rentalId"])] = lg["args"]
        for lg in self._logs("RentalCancelled", self.start_block, last, filters):
            if int(lg["args"]["rentalId"]) in settled:
                cancelled[int(lg["args"]["rentalId"])] = int(lg["args"]["cancelledAt"])
        out = []
        for rid in ids:
            s, c = settled[rid], created.get(rid)
            if c is None:  # cannot happen on GPURental: a rental settles only after it was created
                raise FailedPreconditionError(f"rental {rid:#x} settled in epoch {epoch} has no RentalCreated event")
            start, duration = int(c["start"]), int(c["duration"])
            end = cancelled.get(rid, start + duration)
            paid = 0 if s["failed"] else min(int(s["verifiedSeconds"]), end - start)
            out.append(Settlement(rid, to_checksum_address(c["renter"]), to_checksum_address(c["provider"]),
                                  int(c["gpus"]), paid, Wei(int(c["escrow"]) - int(s["refund"]))))
        return out

    def compute(self, epoch: int, kind: RewardKind, pool: int,
                settlements: Sequence[Settlement] | None = None) -> EpochRewards:
        """``kind`` rewards of ``epoch`` sharing ``pool`` wei (settlements read from the chain unless given)."""
        return compute(epoch, kind, self.settlements(epoch) if settlements is None else settlements, pool)

    # -- TokenDistributor ----------------------------------------------------------------------------------
    def published(self, epoch: int, kind: RewardKind) -> Published:
        root, total, claimed = self.eth.call(self.distributor.fn.epochReward(epoch, int(kind)))
        return Published(epoch, kind, bytes(root), Wei(int(total)), Wei(int(claimed)))

    def published_epochs(self) -> list[Published]:
        """Every (epoch, kind) TokenDistributor has a root for, oldest first (from its EpochRootSet events)."""
        ev = self.distributor.contract.events.EpochRootSet
        head = self.eth.block_number()
        keys = []
        for lo in range(self.start_block, head + 1, self.max_log_range):
            hi = min(lo + self.max_log_range - 1, head)

            def fetch(lo: int = lo, hi: int = hi) -> Any:
                return ev().get_logs(from_block=lo, to_block=hi)

            for lg in self.eth.retry("get_logs EpochRootSet", fetch):
                keys.append((int(lg["args"]["epoch"]), RewardKind(int(lg["args"]["kind"]))))
        return [self.published(e, k) for e, k in keys]

    def is_publisher(self) -> bool:
        """Whether this client's key holds TokenDistributor's REWARDS_ROLE."""
        d = self.distributor
        return bool(self.eth.call(d.fn.hasRole(self.eth.call(d.fn.REWARDS_ROLE()), self.eth.address)))

    def claim_deadline(self, epoch: int, kind: RewardKind) -> int:
        """Unix time from which ``kind`` rewards of ``epoch`` can no longer be claimed (0: not published)."""
        return int(self.eth.call(self.distributor.fn.claimDeadline(epoch, int(kind))))

    def now(self) -> int:
        """The latest block's timestamp."""
        return self._timestamp(self.eth.block_number())

    def cap(self, kind: RewardKind) -> Wei:
        return Wei(int(self.eth.call(self.distributor.fn.epochRewardCap(int(kind)))))

    def next_epoch(self, kind: RewardKind) -> int:
        """The lowest epoch whose ``kind`` rewards TokenDistributor still accepts."""
        return int(self.eth.call(self.distributor.fn.nextRewardEpoch(int(kind))))

    def is_claimed(self, epoch: int, kind: RewardKind, account: str) -> bool:
        return bool(self.eth.call(self.distributor.fn.isClaimed(epoch, int(kind), to_checksum_address(account))))

    def publish(self, rewards: EpochRewards) -> TxReceipt:
        """Sends setEpochRoot for a non-empty ``rewards`` (the client's key needs REWARDS_ROLE)."""
        assert rewards.tree is not None, "an empty epoch has nothing to publish"
        receipt = self.eth.transact(self.distributor.fn.setEpochRoot(
            rewards.epoch, int(rewards.kind), rewards.root, rewards.total))
        assert not isinstance(receipt, str)
        return receipt

    def claim(self, rewards: EpochRewards, account: str) -> TxReceipt:
        """Claims ``account``'s leaf of ``rewards`` (anyone may send it; the tokens go to ``account``)."""
        assert rewards.tree is not None, "an empty epoch has nothing to claim"
        account = to_checksum_address(account)
        return self.distributor.claim(rewards.epoch, int(rewards.kind), account, rewards.amounts[account],
                                      rewards.tree.proof(account))


@dataclass(frozen=True)
class Verification:
    """A published (epoch, kind) against its recomputation from the chain with the published total as the pool."""

    published: Published
    recomputed: EpochRewards

    @property
    def ok(self) -> bool:
        """Root and total match (an unpublished epoch matches when nobody earned anything in it)."""
        p, r = self.published, self.recomputed
        return p.root == r.root and (not p.is_set or p.total == r.total)


def verify(chain: RewardsChain, epoch: int, kind: RewardKind,
           settlements: Sequence[Settlement] | None = None) -> Verification:
    """Recomputes ``kind`` rewards of ``epoch`` from the chain and compares them with TokenDistributor's root.

    An unpublished epoch is recomputed with a pool of 0 (its weights still show who would have earned).

    Raises:
        FailedPreconditionError: the epoch has not ended at the confirmed head.
    """
    pub = chain.published(epoch, kind)
    return Verification(pub, chain.compute(epoch, kind, pub.total if pub.is_set else 0, settlements))


def setup_rewards(eth: ChainClient, distributor: Any, publisher: str,
                  caps: dict[RewardKind, int] | None = None) -> None:
    """At deployment (the deployer still holds GOVERNOR_ROLE): lets ``publisher`` (the king) publish reward epochs
    and sets each kind's cap per epoch (default :data:`~blendr.rewards.DEFAULT_EPOCH_REWARD_CAPS`)."""
    from eth_utils import keccak

    from blendr.rewards import DEFAULT_EPOCH_REWARD_CAPS

    calls = [distributor.functions.grantRole(bytes(keccak(text="REWARDS_ROLE")), publisher)]
    calls += [distributor.functions.setEpochRewardCap(int(k), int(v))
              for k, v in (caps or DEFAULT_EPOCH_REWARD_CAPS).items()]
    hashes = [eth.transact(fn, wait=False) for fn in calls]
    for h in hashes:
        eth.wait(str(h))
