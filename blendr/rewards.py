"""Epoch rewards: who earned what in one reward epoch, and the Merkle tree TokenDistributor pays it from.

Pure domain code (no I/O): the King uses it to publish an epoch's roots, and ``blendr rewards verify|claim``
to recompute them from the same chain data, so nobody has to trust the King's arithmetic.

Guarantees:

- Deterministic: the result depends only on the set of settlements and the pool, never on their order.
- Exact integer shares (largest remainder): each account gets ``floor(pool * w / W)``, and the wei left over
  (fewer than the number of accounts) go one each to the largest remainders, ties to the lower address; the
  amounts sum to exactly the pool, or to nothing when no account has weight. Accounts paid 0 get no leaf.
- The tree is OpenZeppelin's ``StandardMerkleTree`` of ``["address", "uint256"]`` leaves (double-hashed, leaves
  sorted by hash, complete-binary-tree array), so its root equals what ``@openzeppelin/merkle-tree`` computes and
  its proofs verify with ``MerkleProof`` in ``TokenDistributor.claim``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from eth_abi.abi import encode
from eth_utils import keccak, to_checksum_address

from blendr.errors import InvalidArgumentError
from blendr.units import Wei

EPOCH_DURATION_S = 7 * 24 * 3600
"""TokenDistributor.REWARD_EPOCH_DURATION: epoch ``e`` holds the blocks with timestamp in ``[e*D, (e+1)*D)``."""


class RewardKind(enum.IntEnum):
    """TokenDistributor's RewardKind."""

    PROVIDER_STAKING = 0  # providers, by verified GPU-seconds
    RENTER_LOYALTY = 1  # renters, by GPUTOKEN spent

    @property
    def label(self) -> str:
        return "provider" if self is RewardKind.PROVIDER_STAKING else "renter"


DEFAULT_EPOCH_REWARD_CAPS: dict[RewardKind, int] = {
    RewardKind.PROVIDER_STAKING: 100_000 * 10**18,
    RewardKind.RENTER_LOYALTY: 50_000 * 10**18,
}
"""Caps per epoch set at deployment (GPUTOKEN wei): 150,000 a week, ~7.8 M a year of the 45 M Community share of
the default 100 M distributor supply. Governance changes them (TokenDistributor.setEpochRewardCap)."""


def epoch_of(timestamp: int, duration_s: int = EPOCH_DURATION_S) -> int:
    """The epoch a block with ``timestamp`` belongs to."""
    return timestamp // duration_s


def epoch_bounds(epoch: int, duration_s: int = EPOCH_DURATION_S) -> tuple[int, int]:
    """``[start, end)`` timestamps of ``epoch``."""
    return epoch * duration_s, (epoch + 1) * duration_s


@dataclass(frozen=True)
class Settlement:
    """One settled rental, as GPURental's events tell it (RentalCreated, RentalCancelled, RentalSettled).

    ``paid_seconds`` is the verified uptime GPURental paid for: ``min(verifiedSeconds, end - start)`` (end the
    cancellation, else start + duration), 0 when verification failed. ``spent`` is what the renter paid:
    escrow - refund.
    """

    rental_id: int
    renter: str
    provider: str
    gpus: int
    paid_seconds: int
    spent: Wei

    @property
    def gpu_seconds(self) -> int:
        return self.gpus * self.paid_seconds


def weights(settlements: Iterable[Settlement], kind: RewardKind) -> dict[str, int]:
    """Weight per account (checksummed): verified GPU-seconds per provider, or wei spent per renter.

    Only what was really paid and verified counts: a rental the renter paid nothing for (failed, or a payment that
    rounds to 0 wei) weighs nothing for either side, and neither does a rental whose renter is its own provider
    (renting from oneself costs only the protocol fee). Two addresses of one owner are not told apart here: see
    docs/chains.md, "Rewards", on wash trading.
    """
    out: dict[str, int] = {}
    for s in settlements:
        if s.spent <= 0 or to_checksum_address(s.renter) == to_checksum_address(s.provider):
            continue
        account, w = ((s.provider, s.gpu_seconds) if kind is RewardKind.PROVIDER_STAKING else (s.renter, s.spent))
        if w > 0:
            key = to_checksum_address(account)
            out[key] = out.get(key, 0) + int(w)
    return out


def split(pool: int, weight: Mapping[str, int]) -> dict[str, int]:
    """``pool`` wei shared pro rata to ``weight`` (largest remainder, see the module's guarantees).

    Raises:
        InvalidArgumentError: a negative pool or weight.
    """
    if pool < 0 or any(w < 0 for w in weight.values()):
        raise InvalidArgumentError("reward pool and weights must not be negative")
    total = sum(weight.values())
    if total == 0 or pool == 0:
        return {}
    amounts = {a: pool * w // total for a, w in weight.items()}
    left = pool - sum(amounts.values())
    # remainder of a = pool*w mod total; the largest first, ties to the lower address (as bytes)
    order = sorted(weight, key=lambda a: (-(pool * weight[a] % total), bytes.fromhex(a[2:])))
    for a in order[:left]:
        amounts[a] += 1
    return {a: v for a, v in amounts.items() if v > 0}


def leaf_hash(account: str, amount: int) -> bytes:
    """StandardMerkleTree leaf of ``(address, uint256)``: keccak256(keccak256(abi.encode(account, amount)))."""
    return bytes(keccak(keccak(encode(["address", "uint256"], [to_checksum_address(account), amount]))))


def _pair(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(a + b if a < b else b + a))


@dataclass(frozen=True)
class MerkleTree:
    """OpenZeppelin StandardMerkleTree over ``(address, uint256)`` leaves (at least one)."""

    values: tuple[tuple[str, int], ...]
    _tree: tuple[bytes, ...] = field(repr=False)
    _index: Mapping[str, int] = field(repr=False)  # account -> index in _tree

    @classmethod
    def of(cls, values: Sequence[tuple[str, int]]) -> MerkleTree:
        """Raises InvalidArgumentError for no values or an account listed twice."""
        if not values:
            raise InvalidArgumentError("a Merkle tree needs at least one leaf")
        vals = tuple((to_checksum_address(a), int(v)) for a, v in values)
        if len({a for a, _ in vals}) != len(vals):
            raise InvalidArgumentError("an account appears twice in the reward leaves")
        hashed = sorted((leaf_hash(a, v), a) for a, v in vals)
        n = len(hashed)
        tree: list[bytes] = [b""] * (2 * n - 1)
        index: dict[str, int] = {}
        for i, (h, a) in enumerate(hashed):
            tree[len(tree) - 1 - i] = h
            index[a] = len(tree) - 1 - i
        for i in range(len(tree) - 1 - n, -1, -1):
            tree[i] = _pair(tree[2 * i + 1], tree[2 * i + 2])
        return cls(vals, tuple(tree), index)

    @property
    def root(self) -> bytes:
        return self._tree[0]

    def proof(self, account: str) -> list[bytes]:
        """Sibling hashes from ``account``'s leaf to the root. Raises InvalidArgumentError if it has no leaf."""
        i = self._index.get(to_checksum_address(account))
        if i is None:
            raise InvalidArgumentError(f"{account} has no leaf in this tree")
        out = []
        while i > 0:
            out.append(self._tree[i + 1 if i % 2 == 1 else i - 1])
            i = (i - 1) // 2
        return out


def verify_proof(root: bytes, account: str, amount: int, proof: Sequence[bytes]) -> bool:
    """What ``MerkleProof.verify`` says of the leaf ``(account, amount)``."""
    h = leaf_hash(account, amount)
    for p in proof:
        h = _pair(h, p)
    return h == root


@dataclass(frozen=True)
class EpochRewards:
    """One epoch's rewards of one kind: the amounts, their tree (None when nobody earned any) and total."""

    epoch: int
    kind: RewardKind
    pool: Wei
    weights: Mapping[str, int]
    amounts: Mapping[str, int]
    tree: MerkleTree | None

    @property
    def total(self) -> Wei:
        return Wei(sum(self.amounts.values()))

    @property
    def root(self) -> bytes:
        """The tree's root; 32 zero bytes for an empty epoch (what TokenDistributor shows for "no root")."""
        return self.tree.root if self.tree else b"\x00" * 32


def compute(epoch: int, kind: RewardKind, settlements: Iterable[Settlement], pool: int) -> EpochRewards:
    """Rewards of ``kind`` for ``epoch``: ``pool`` wei split over the settlements' weights.

    Raises:
        InvalidArgumentError: a negative pool.
    """
    w = weights(settlements, kind)
    amounts = split(pool, w)
    tree = MerkleTree.of(sorted(amounts.items())) if amounts else None
    return EpochRewards(epoch, kind, Wei(pool), w, amounts, tree)
