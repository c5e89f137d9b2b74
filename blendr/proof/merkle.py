"""SHA-256 Merkle tree over row digests.

``leaf = sha256(0x00 || row_index (8 bytes BE) || digest16)`` and
``node = sha256(0x01 || left || right)``; a node without a right sibling at the end of a level is
promoted unchanged to the next level. A proof lists the sibling hashes bottom-up, skipping the
levels where the node was promoted, so its length is fixed by ``(index, num_leaves)``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import numpy as np

from blendr.errors import ProofError
from blendr.proof.rowhash import DIGEST_BYTES

HASH_BYTES = 32
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(row_index: int, digest: bytes) -> bytes:
    """Returns the leaf hash of one row.

    Raises:
        ProofError: ``digest`` is not 16 bytes or ``row_index`` does not fit in 8 bytes.
    """
    if len(digest) != DIGEST_BYTES or not 0 <= row_index < 2**64:
        raise ProofError(f"a leaf needs a 16-byte digest and a 64-bit row index, got row {row_index}")
    return hashlib.sha256(_LEAF_PREFIX + row_index.to_bytes(8, "big") + digest).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class MerkleTree:
    """A Merkle tree kept level by level (each level one ``bytes`` of concatenated hashes).

    Building costs one SHA-256 per leaf and per node, ``O(num_leaves)``; a million leaves take a
    couple of seconds and ~64 MB.
    """

    def __init__(self, leaves: Sequence[bytes] | Any) -> None:
        """Builds the tree from leaf hashes.

        Args:
            leaves: 32-byte leaf hashes, as a sequence of ``bytes`` or a uint8 array of shape
                ``(num_leaves, 32)``.

        Raises:
            ProofError: There are no leaves or a leaf is not 32 bytes.
        """
        if isinstance(leaves, np.ndarray):
            if leaves.ndim != 2 or leaves.shape[1] != HASH_BYTES or leaves.dtype != np.uint8:
                raise ProofError(
                    f"leaf array must be uint8 of shape (n, 32), got {leaves.dtype} {leaves.shape}"
                )
            layer = np.ascontiguousarray(leaves).tobytes()
        else:
            if any(len(leaf) != HASH_BYTES for leaf in leaves):
                raise ProofError("every leaf hash must be 32 bytes")
            layer = b"".join(leaves)
        if not layer:
            raise ProofError("a Merkle tree needs at least one leaf")
        self._levels: list[bytes] = [layer]
        while len(layer) > HASH_BYTES:
            view = memoryview(layer)
            count = len(layer) // HASH_BYTES
            nxt = [
                hashlib.sha256(_NODE_PREFIX + view[i * HASH_BYTES : (i + 2) * HASH_BYTES]).digest()
                for i in range(0, count - 1, 2)
            ]
            if count % 2:
                nxt.append(bytes(view[(count - 1) * HASH_BYTES :]))
            layer = b"".join(nxt)
            self._levels.append(layer)

    @classmethod
    def from_row_digests(cls, digests: bytes | Any) -> MerkleTree:
        """Builds the tree whose leaf ``r`` is ``leaf_hash(r, digest of row r)``.

        Args:
            digests: Concatenated 16-byte row digests (``bytes``) or a uint8 array ``(rows, 16)``.

        Raises:
            ProofError: The input is empty or not a whole number of digests.
        """
        raw = np.ascontiguousarray(digests).tobytes() if isinstance(digests, np.ndarray) else bytes(digests)
        if not raw or len(raw) % DIGEST_BYTES:
            raise ProofError(f"row digests must be a non-empty multiple of {DIGEST_BYTES} bytes")
        rows = len(raw) // DIGEST_BYTES
        # One contiguous buffer of every leaf preimage, built vectorised; then one hash call per leaf.
        pre = np.empty((rows, 1 + 8 + DIGEST_BYTES), dtype=np.uint8)
        pre[:, 0] = 0
        pre[:, 1:9] = np.arange(rows, dtype=">u8").view(np.uint8).reshape(rows, 8)
        pre[:, 9:] = np.frombuffer(raw, dtype=np.uint8).reshape(rows, DIGEST_BYTES)
        view = memoryview(pre.tobytes())
        width = pre.shape[1]
        sha = hashlib.sha256
        return cls([sha(view[i * width : (i + 1) * width]).digest() for i in range(rows)])

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self._levels[-1]

    @property
    def num_leaves(self) -> int:
        """Number of leaves."""
        return len(self._levels[0]) // HASH_BYTES

    def leaf(self, index: int) -> bytes:
        """Returns leaf hash ``index``.

        Raises:
            ProofError: ``index`` is outside ``[0, num_leaves)``.
        """
        self._check_index(index)
        return self._levels[0][index * HASH_BYTES : (index + 1) * HASH_BYTES]

    def proof(self, index: int) -> list[bytes]:
        """Returns the sibling hashes of leaf ``index``, bottom-up, skipping promoted levels.

        Raises:
            ProofError: ``index`` is outside ``[0, num_leaves)``.
        """
        self._check_index(index)
        siblings: list[bytes] = []
        for layer in self._levels[:-1]:
            count = len(layer) // HASH_BYTES
            sibling = index ^ 1
            if sibling < count:
                siblings.append(layer[sibling * HASH_BYTES : (sibling + 1) * HASH_BYTES])
            index //= 2
        return siblings

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.num_leaves:
            raise ProofError(f"leaf {index} is outside a tree of {self.num_leaves} leaves")


def verify_proof(root: bytes, leaf_hash: bytes, index: int, num_leaves: int, proof: Sequence[bytes]) -> bool:
    """Checks that ``leaf_hash`` is leaf ``index`` of a ``num_leaves``-leaf tree with ``root``.

    ``num_leaves`` must come from the verifier's own knowledge (the challenge), not from the
    prover: it fixes the path's shape but is not itself hashed into the root.

    Never raises: malformed input (wrong types or lengths, ``index`` out of range, a proof with too
    few or too many hashes) returns ``False``.
    """
    if not (isinstance(root, bytes) and isinstance(leaf_hash, bytes)):
        return False
    if len(root) != HASH_BYTES or len(leaf_hash) != HASH_BYTES:
        return False
    if isinstance(index, bool) or not isinstance(index, int) or not isinstance(num_leaves, int):
        return False
    if not 0 <= index < num_leaves:
        return False
    try:
        siblings = list(proof)
    except TypeError:
        return False
    current = leaf_hash
    used = 0
    width = num_leaves
    while width > 1:
        if index ^ 1 < width:
            if used >= len(siblings):
                return False
            sibling = siblings[used]
            used += 1
            if not isinstance(sibling, bytes) or len(sibling) != HASH_BYTES:
                return False
            current = _node(current, sibling) if index % 2 == 0 else _node(sibling, current)
        index //= 2
        width = (width + 1) // 2
    return used == len(siblings) and hmac.compare_digest(current, root)
