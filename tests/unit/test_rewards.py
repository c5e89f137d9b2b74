"""blendr.rewards: pro-rata shares with exact integer rounding, OpenZeppelin StandardMerkleTree, epoch results."""

from __future__ import annotations

import random

import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from blendr.errors import InvalidArgumentError
from blendr.rewards import (
    EPOCH_DURATION_S,
    MerkleTree,
    RewardKind,
    Settlement,
    compute,
    epoch_bounds,
    epoch_of,
    leaf_hash,
    split,
    verify_proof,
)
from blendr.units import Wei


def addr(i: int) -> str:
    return to_checksum_address(f"0x{i:040x}")


def pair(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(min(a, b) + max(a, b)))


# ------------------------------------------------------------------ split


def test_split_is_pro_rata_and_sums_to_the_pool() -> None:
    """Floors first, then the leftover wei to the largest remainders."""
    # 100 over weights 1:1:1 -> 33.33 each; one wei left goes to the lowest address (all remainders tie)
    assert split(100, {addr(3): 1, addr(1): 1, addr(2): 1}) == {addr(1): 34, addr(2): 33, addr(3): 33}
    # 10 over 1:2:3 -> 1.67, 3.33, 5: remainders 2/3, 1/3, 0 -> the wei left goes to the first
    assert split(10, {addr(1): 1, addr(2): 2, addr(3): 3}) == {addr(1): 2, addr(2): 3, addr(3): 5}
    assert split(7, {addr(1): 5}) == {addr(1): 7}


def test_split_of_nothing_and_dust() -> None:
    """No weight or no pool pays nobody; accounts whose share rounds to 0 get no entry."""
    assert split(100, {}) == {}
    assert split(100, {addr(1): 0}) == {}
    assert split(0, {addr(1): 5}) == {}
    assert split(1, {addr(1): 1, addr(2): 1000}) == {addr(2): 1}
    with pytest.raises(InvalidArgumentError):
        split(-1, {addr(1): 1})
    with pytest.raises(InvalidArgumentError):
        split(1, {addr(1): -1})


@given(pool=st.integers(0, 10**30), ws=st.lists(st.integers(0, 10**24), min_size=1, max_size=30))
def test_split_properties(pool: int, ws: list[int]) -> None:
    """Sum is exactly the pool (or 0 without weight); each share is floor or floor + 1; order does not matter."""
    weight = {addr(i + 1): w for i, w in enumerate(ws)}
    got = split(pool, weight)
    total = sum(ws)
    assert sum(got.values()) == (pool if total else 0)
    for a, w in weight.items():
        exact_floor = pool * w // total if total else 0
        assert got.get(a, 0) in (exact_floor, exact_floor + 1)
    shuffled = list(weight.items())
    random.Random(pool).shuffle(shuffled)
    assert split(pool, dict(shuffled)) == got


# ------------------------------------------------------------------ Merkle tree


def test_tree_layout_is_openzeppelins_standard_tree() -> None:
    """Five leaves sorted by hash in OZ's complete-binary-tree array: root = H(H(H(h1,h0),h4), H(h3,h2)) — not the
    level-by-level tree that carries the odd leaf up (which would give H(H(H(h0,h1),H(h2,h3)),h4))."""
    values = [(addr(i), i * 10) for i in range(1, 6)]
    h = sorted(leaf_hash(a, v) for a, v in values)
    expected = pair(pair(pair(h[1], h[0]), h[4]), pair(h[3], h[2]))
    carried = pair(pair(pair(h[0], h[1]), pair(h[2], h[3])), h[4])
    tree = MerkleTree.of(values)
    assert tree.root == expected != carried


def test_leaf_is_double_hashed_abi_encoding() -> None:
    a = addr(0xABC)
    enc = bytes(12) + bytes.fromhex(a[2:]) + (77).to_bytes(32, "big")
    assert leaf_hash(a, 77) == keccak(keccak(enc))


@given(n=st.integers(1, 40), seed=st.integers(0, 1000))
def test_every_proof_verifies_and_order_does_not_matter(n: int, seed: int) -> None:
    values = [(addr(i + 1), (i * 7919 + seed) % 1000 + 1) for i in range(n)]
    tree = MerkleTree.of(values)
    shuffled = list(values)
    random.Random(seed).shuffle(shuffled)
    assert MerkleTree.of(shuffled).root == tree.root
    for a, v in values:
        proof = tree.proof(a)
        assert verify_proof(tree.root, a, v, proof)
        assert not verify_proof(tree.root, a, v + 1, proof)
    if n == 1:
        assert tree.root == leaf_hash(*values[0]) and tree.proof(values[0][0]) == []


def test_tree_refuses_nothing_duplicates_and_strangers() -> None:
    with pytest.raises(InvalidArgumentError):
        MerkleTree.of([])
    with pytest.raises(InvalidArgumentError):
        MerkleTree.of([(addr(1), 1), (addr(1).lower(), 2)])
    with pytest.raises(InvalidArgumentError):
        MerkleTree.of([(addr(1), 1)]).proof(addr(2))


# ------------------------------------------------------------------ epochs


def test_epochs_are_unix_aligned_weeks() -> None:
    assert EPOCH_DURATION_S == 604_800
    assert epoch_of(0) == 0 and epoch_of(604_799) == 0 and epoch_of(604_800) == 1
    assert epoch_bounds(3) == (3 * 604_800, 4 * 604_800)


RENTER_A, RENTER_B, PROV_X, PROV_Y = addr(0xA), addr(0xB), addr(0x1), addr(0x2)


def settlements() -> list[Settlement]:
    return [
        Settlement(1, RENTER_A, PROV_X, gpus=2, paid_seconds=3600, spent=Wei(300)),  # 7200 GPU-s
        Settlement(2, RENTER_B, PROV_Y, gpus=1, paid_seconds=1800, spent=Wei(100)),  # 1800 GPU-s
        Settlement(3, RENTER_A, PROV_Y, gpus=4, paid_seconds=0, spent=Wei(0)),  # failed: weighs nothing
        Settlement(4, RENTER_B, PROV_X, gpus=1, paid_seconds=0, spent=Wei(0)),
    ]


def test_provider_rewards_follow_verified_gpu_seconds() -> None:
    r = compute(9, RewardKind.PROVIDER_STAKING, settlements(), pool=1000)
    assert dict(r.weights) == {PROV_X: 7200, PROV_Y: 1800}
    assert dict(r.amounts) == {PROV_X: 800, PROV_Y: 200} and r.total == 1000
    assert r.tree is not None and r.root == r.tree.root


def test_renter_rewards_follow_tokens_spent() -> None:
    r = compute(9, RewardKind.RENTER_LOYALTY, settlements(), pool=1000)
    assert dict(r.weights) == {RENTER_A: 300, RENTER_B: 100}
    assert dict(r.amounts) == {RENTER_A: 750, RENTER_B: 250}


def test_result_is_deterministic() -> None:
    a = compute(9, RewardKind.RENTER_LOYALTY, settlements(), pool=10**21 + 7)
    b = compute(9, RewardKind.RENTER_LOYALTY, list(reversed(settlements())), pool=10**21 + 7)
    assert a.root == b.root and a.amounts == b.amounts and a.total == 10**21 + 7


def test_empty_epoch_has_no_tree() -> None:
    for ss in ([], settlements()[2:]):
        r = compute(9, RewardKind.PROVIDER_STAKING, ss, pool=1000)
        assert r.tree is None and r.total == 0 and r.root == b"\x00" * 32 and not r.amounts


def test_self_dealing_and_unpaid_rentals_weigh_nothing() -> None:
    """Only what was really paid and verified counts: a rental whose renter is its own provider earns neither kind
    (it would cost its owner only the protocol fee), and verified seconds the renter paid nothing for (price so low
    that the payment rounds to 0 wei) earn the provider nothing."""
    honest = Settlement(1, RENTER_A, PROV_X, gpus=1, paid_seconds=3600, spent=Wei(100))
    wash = Settlement(2, PROV_Y, PROV_Y.lower(), gpus=8, paid_seconds=3600, spent=Wei(10**6))
    unpaid = Settlement(3, RENTER_B, PROV_Y, gpus=8, paid_seconds=3600, spent=Wei(0))
    for kind, who in ((RewardKind.PROVIDER_STAKING, PROV_X), (RewardKind.RENTER_LOYALTY, RENTER_A)):
        r = compute(9, kind, [honest, wash, unpaid], pool=1000)
        assert set(r.weights) == {who} and dict(r.amounts) == {who: 1000}
    assert compute(9, RewardKind.PROVIDER_STAKING, [wash, unpaid], pool=1000).tree is None
