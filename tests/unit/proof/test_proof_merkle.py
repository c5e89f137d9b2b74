from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import ProofError
from blendr.proof.merkle import MerkleTree, leaf_hash, verify_proof


def leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(b"leaf%d" % i).digest() for i in range(count)]


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def path_length(index: int, num_leaves: int) -> int:
    """Siblings on the path of ``index`` (-1 when the index is outside the tree)."""
    if not 0 <= index < num_leaves:
        return -1
    length = 0
    while num_leaves > 1:
        length += index ^ 1 < num_leaves
        index //= 2
        num_leaves = (num_leaves + 1) // 2
    return length


def test_leaf_hash_layout() -> None:
    digest = bytes(range(16))
    assert leaf_hash(5, digest) == hashlib.sha256(b"\x00" + (5).to_bytes(8, "big") + digest).digest()
    with pytest.raises(ProofError):
        leaf_hash(0, b"short")


def test_small_trees_by_hand() -> None:
    a, b, c = leaves(3)
    assert MerkleTree([a]).root == a
    assert MerkleTree([a, b]).root == node(a, b)
    tree = MerkleTree([a, b, c])
    assert tree.root == node(node(a, b), c)  # c is promoted unchanged
    assert tree.proof(2) == [node(a, b)]
    assert tree.proof(0) == [b, c]


def test_array_input_and_from_row_digests() -> None:
    ls = leaves(5)
    arr = np.frombuffer(b"".join(ls), dtype=np.uint8).reshape(5, 32)
    assert MerkleTree(arr).root == MerkleTree(ls).root
    digests = bytes(range(16)) * 3
    tree = MerkleTree.from_row_digests(digests)
    assert tree.root == MerkleTree([leaf_hash(i, bytes(range(16))) for i in range(3)]).root
    as_array = np.frombuffer(digests, dtype=np.uint8).reshape(3, 16)
    assert MerkleTree.from_row_digests(as_array).root == tree.root
    assert tree.leaf(1) == leaf_hash(1, bytes(range(16)))


@settings(max_examples=70, deadline=None)
@given(st.integers(1, 70))
def test_every_proof_verifies(size: int) -> None:
    ls = leaves(size)
    tree = MerkleTree(ls)
    assert tree.num_leaves == size
    for i in range(size):
        assert verify_proof(tree.root, ls[i], i, size, tree.proof(i))


@settings(max_examples=70, deadline=None)
@given(st.integers(2, 70), st.data())
def test_tampering_is_rejected(size: int, data: st.DataObject) -> None:
    ls = leaves(size)
    tree = MerkleTree(ls)
    i = data.draw(st.integers(0, size - 1))
    proof = tree.proof(i)
    other = data.draw(st.integers(0, size - 1).filter(lambda j: j != i))
    bad_leaf = hashlib.sha256(b"forged").digest()
    assert not verify_proof(tree.root, bad_leaf, i, size, proof)
    assert not verify_proof(tree.root, ls[i], other, size, proof)
    for wrong_size in (size - 1, size + 1, 2 * size):
        if path_length(i, wrong_size) != len(proof):
            assert not verify_proof(tree.root, ls[i], i, wrong_size, proof)
    assert not verify_proof(tree.root, ls[i], i, size, [*proof, proof[0]])
    assert not verify_proof(tree.root, ls[i], i, size, proof[:-1])
    k = data.draw(st.integers(0, len(proof) - 1))
    flipped = bytearray(proof[k])
    flipped[0] ^= 1
    assert not verify_proof(tree.root, ls[i], i, size, [*proof[:k], bytes(flipped), *proof[k + 1 :]])


def test_num_leaves_is_bound_where_it_changes_the_path() -> None:
    # With 4 leaves leaf 3's proof has 2 siblings; in a 3-leaf tree index 3 does not exist, and
    # leaf 0 of a 5-leaf tree has 3 siblings. (Where the path shape is the same, e.g. leaf 0 of
    # 3 or 4 leaves, num_leaves is not bound: verifiers take it from the challenge, not the prover.)
    ls = leaves(4)
    tree = MerkleTree(ls)
    assert not verify_proof(tree.root, ls[3], 3, 3, tree.proof(3))
    assert not verify_proof(tree.root, ls[0], 0, 5, tree.proof(0))


def test_malformed_input_returns_false_without_raising() -> None:
    ls = leaves(4)
    tree = MerkleTree(ls)
    proof = tree.proof(1)
    assert not verify_proof(tree.root, ls[1], 4, 4, proof)
    assert not verify_proof(tree.root, ls[1], -1, 4, proof)
    assert not verify_proof(tree.root, ls[1], 1, 0, proof)
    assert not verify_proof(tree.root[:31], ls[1], 1, 4, proof)
    assert not verify_proof(tree.root, ls[1][:5], 1, 4, proof)
    assert not verify_proof(tree.root, ls[1], 1, 4, [proof[0][:31], proof[1]])
    assert not verify_proof(tree.root, ls[1], 1, 4, [None, proof[1]])  # type: ignore[list-item]
    assert not verify_proof(tree.root, ls[1], True, 4, proof)
    assert not verify_proof("root", ls[1], 1, 4, proof)  # type: ignore[arg-type]
    assert not verify_proof(tree.root, ls[1], 1, 4, 5)  # type: ignore[arg-type]


def test_bad_construction_raises() -> None:
    with pytest.raises(ProofError):
        MerkleTree([])
    with pytest.raises(ProofError):
        MerkleTree([b"short"])
    with pytest.raises(ProofError):
        MerkleTree.from_row_digests(b"")
    with pytest.raises(ProofError):
        MerkleTree.from_row_digests(b"x" * 17)
    with pytest.raises(ProofError):
        MerkleTree(leaves(3)).proof(3)
