"""The memory probe: a device proves that it holds every product of a challenge on the device.

After a device has committed to its products (the Merkle root of :mod:`blendr.proof.prover`), the
queen sends a fresh 32-byte probe key. The device must then hash every row of every product it
holds with that key (:func:`probe_digests`) and send, per block of :data:`BLOCK_ROWS` rows, the
SHA-256 of the block's digests (:func:`block_hashes`), within a deadline far shorter than the
products took to compute. Only after that answer does the queen pick the rows to open; each opened
row carries its probe block, and the queen checks the block against the answered hash and the
row's keyed digest against the row's (verified) values (:func:`check_probe_row`).

Why it proves memory: the key is unknown until the products are committed, and the keyed digest of
a row is a non-linear function of every value in it (the row hash of :mod:`blendr.proof.rowhash`
over the row XOR a key vector), so it cannot be computed from a projection of the row (such as
``A_c @ (B @ x)``) or from the inputs. A device that did not keep a product must compute it again
inside the probe deadline (the work of the challenge, not of a memory read), or answer blocks it
cannot have and fail as soon as one of them is opened. Sizing a challenge so that its products fill
most of the claimed memory (:func:`blendr.proof.sizing.size_memory_challenge`) therefore fails a
device with less memory, and one device answering for several must hold all their products at once.
What it does not rule out: a device storing the products compressed (their entries carry about
13 bits of entropy in 32) and decompressing them during the probe; see ``docs/proof.md``.
"""

from __future__ import annotations

import hashlib
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from blendr.errors import ProofError
from blendr.proof.rowhash import DIGEST_BYTES, row_digests

KEY_BYTES = 32
BLOCK_ROWS = 256
"""Rows per probe block: an opened row carries its block's digests (``256 * 16`` bytes = 4 KiB)."""

HASH_BYTES = 32
_DOMAIN = b"blendr-memory-probe-v1"


def key_vector(key: bytes, n: int) -> npt.NDArray[np.int32]:
    """The ``n`` int32 values XORed into every row before it is hashed (from the probe key alone).

    Raises:
        ProofError: The key is not 32 bytes or ``n`` is not positive.
    """
    if not isinstance(key, bytes) or len(key) != KEY_BYTES or n < 1:
        raise ProofError(f"a probe key is {KEY_BYTES} bytes and n positive, got {len(key)} bytes, n={n}")
    stream = b"".join(
        hashlib.sha256(_DOMAIN + key + i.to_bytes(4, "big")).digest() for i in range((4 * n + 31) // 32)
    )
    return np.frombuffer(stream[: 4 * n], dtype="<i4").astype(np.int32)


def probe_digests(xp: ModuleType, product: Any, keys: Any) -> Any:
    """Keyed 16-byte digests of every row of ``product`` (int32 ``(rows, n)``) under ``keys`` (int32 ``(n,)``).

    Returns:
        ``xp`` uint8 array ``(rows, 16)``, identical bits on NumPy and CuPy.
    """
    return row_digests(xp, xp.bitwise_xor(product, keys[None, :]))


def block_hashes(digests: bytes) -> bytes:
    """SHA-256 of every block of :data:`BLOCK_ROWS` row digests (the last block may be shorter), concatenated.

    Raises:
        ProofError: ``digests`` is not a whole number of 16-byte digests.
    """
    if len(digests) % DIGEST_BYTES:
        raise ProofError(f"probe digests must be whole {DIGEST_BYTES}-byte digests, got {len(digests)} bytes")
    step = BLOCK_ROWS * DIGEST_BYTES
    view = memoryview(digests)
    return b"".join(hashlib.sha256(view[i : i + step]).digest() for i in range(0, len(digests), step))


def num_blocks(rows: int) -> int:
    """Probe blocks of a device with ``rows`` committed rows."""
    return (rows + BLOCK_ROWS - 1) // BLOCK_ROWS


def block_of(digests: bytes, row: int) -> bytes:
    """The probe block (concatenated digests) that holds ``row``."""
    start = (row // BLOCK_ROWS) * BLOCK_ROWS * DIGEST_BYTES
    return digests[start : start + BLOCK_ROWS * DIGEST_BYTES]


def check_probe_row(
    key: bytes, rows: int, row: int, values: npt.NDArray[np.int32], block: bytes, hashes: bytes
) -> str:
    """Checks one opened row against a device's probe answer; returns ``""`` or the reason it fails.

    ``values`` must already be verified as the true row (Merkle proof and rightness). The row's block
    must hash to the answered block hash, and its digest in the block must be the keyed digest of
    ``values``.
    """
    index = row // BLOCK_ROWS
    first = index * BLOCK_ROWS
    expected_len = min(BLOCK_ROWS, rows - first) * DIGEST_BYTES
    if len(hashes) != num_blocks(rows) * HASH_BYTES:
        return f"probe answer has {len(hashes)} bytes, expected {num_blocks(rows) * HASH_BYTES}"
    if len(block) != expected_len:
        return f"probe block of row {row} has {len(block)} bytes, expected {expected_len}"
    if hashlib.sha256(block).digest() != hashes[index * HASH_BYTES : (index + 1) * HASH_BYTES]:
        return f"probe block of row {row} does not match the probe answer"
    keys = key_vector(key, values.shape[-1])
    digest = probe_digests(np, values.reshape(1, -1).astype(np.int32), keys)[0].tobytes()
    at = (row - first) * DIGEST_BYTES
    if block[at : at + DIGEST_BYTES] != digest:
        return f"probe digest of row {row} is wrong (the product was not held)"
    return ""
