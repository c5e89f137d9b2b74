"""A fast 128-bit hash of int32 rows, computed on the device that holds the products.

Construction (two independent 64-bit lanes, each keyed by its own constants):

1. The row's int32 values are read as uint32 and paired, ``w_j = v[2j] | v[2j+1] << 32``; an odd
   width is padded with :data:`PAD32`.
2. Leaves: ``h_j = mix64(w_j ^ (j * P_lane + S_lane))`` -- position-dependent, so moving a value
   to another column changes the hash.
3. A pairwise tree over the columns, ``ceil(log2(n / 2))`` vectorised steps: at level ``t``,
   ``h = mix64((left * M_lane) ^ right + T_{t,lane})``, an odd level being padded with a fixed
   per-lane constant.
4. The digest is lane 0 then lane 1, each big-endian: 16 bytes per row.

``mix64`` is the SplitMix64 finaliser (xorshift-multiply rounds), so every step is non-linear in
the row values over both GF(2) and the integers: the hash cannot be computed from a linear
projection of the row (e.g. a random combination of a product's rows, which a cheater could get
without doing the product). Only uint64 multiply (wrapping), xor, add and shifts with ``xp.uint64``
operands are used, so NumPy and CuPy give identical bits.

Why a non-cryptographic hash suffices: the Merkle tree over ``(row index, digest)`` is SHA-256,
so the prover is bound to one 16-byte digest per row. When a row is opened the verifier
recomputes the true row itself and checks that (a) the opened values hash to the committed digest
and (b) they equal the true row. To pass with a wrong committed row, a prover must therefore have
committed a digest that equals the hash of the *true* row, which needs the true row (the work)
in the first place -- a second preimage that is no easier than computing it. Collision
resistance against an adversary choosing both inputs is not needed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from blendr.errors import ProofError

DIGEST_BYTES = 16
PAD32 = 0x5BD1E995
"""Value appended to rows of odd width before pairing."""

_MASK64 = (1 << 64) - 1
_MIX_M1 = 0xBF58476D1CE4E5B9
_MIX_M2 = 0x94D049BB133111EB
_LANE_POS_MUL = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)
_LANE_SALT = (0x243F6A8885A308D3, 0x13198A2E03707344)
_LANE_COMBINE_MUL = (0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD)
_LANE_PAD = (0x6A09E667F3BCC908, 0xBB67AE8584CAA73B)
_LEVEL_MUL = 0xA0761D6478BD642F

_NUMPY_CHUNK_WORDS = 1 << 17
"""NumPy hashes this many 64-bit words at a time so temporaries stay in cache."""


def _mix64(xp: ModuleType, x: Any, tmp: Any) -> None:
    """SplitMix64 finaliser, in place on ``x`` (``tmp`` is scratch of the same shape)."""
    u64 = xp.uint64
    xp.right_shift(x, u64(30), out=tmp)
    xp.bitwise_xor(x, tmp, out=x)
    xp.multiply(x, u64(_MIX_M1), out=x)
    xp.right_shift(x, u64(27), out=tmp)
    xp.bitwise_xor(x, tmp, out=x)
    xp.multiply(x, u64(_MIX_M2), out=x)
    xp.right_shift(x, u64(31), out=tmp)
    xp.bitwise_xor(x, tmp, out=x)


def _lane(xp: ModuleType, words: Any, lane: int) -> Any:
    """Hashes each row of ``words`` (uint64, shape ``(r, m)``) to one uint64 with ``lane``'s constants."""
    u64 = xp.uint64
    r, m = words.shape
    positions = xp.arange(m, dtype=xp.uint64)
    xp.multiply(positions, u64(_LANE_POS_MUL[lane]), out=positions)
    xp.add(positions, u64(_LANE_SALT[lane]), out=positions)
    h = xp.bitwise_xor(words, positions[None, :])
    _mix64(xp, h, xp.empty_like(h))
    level = 0
    while h.shape[1] > 1:
        if h.shape[1] % 2:
            pad = xp.full((r, 1), u64(_LANE_PAD[lane]), dtype=xp.uint64)
            h = xp.concatenate([h, pad], axis=1)
        nxt = xp.multiply(h[:, 0::2], u64(_LANE_COMBINE_MUL[lane]))
        xp.bitwise_xor(nxt, h[:, 1::2], out=nxt)
        xp.add(nxt, u64(((level + 1) * _LEVEL_MUL + lane) & _MASK64), out=nxt)
        _mix64(xp, nxt, xp.empty_like(nxt))
        h = nxt
        level += 1
    return h[:, 0]


def _digest_chunk(xp: ModuleType, values: Any, out: Any) -> None:
    """Writes the digests of the int32 rows ``values`` into ``out`` (uint8, shape ``(r, 16)``)."""
    u32 = values.view(xp.uint32)
    if u32.shape[1] % 2:
        u32 = xp.concatenate([u32, xp.full((u32.shape[0], 1), xp.uint32(PAD32), dtype=xp.uint32)], axis=1)
    words = u32[:, 0::2].astype(xp.uint64)
    high = u32[:, 1::2].astype(xp.uint64)
    xp.left_shift(high, xp.uint64(32), out=high)
    xp.bitwise_or(words, high, out=words)
    del high
    for lane in (0, 1):
        h = _lane(xp, words, lane)
        for b in range(8):
            byte = xp.right_shift(h, xp.uint64(56 - 8 * b))
            xp.bitwise_and(byte, xp.uint64(0xFF), out=byte)
            out[:, lane * 8 + b] = byte.astype(xp.uint8)


def row_digests(xp: ModuleType, products: Any) -> Any:
    """Returns the 16-byte digest of every row of an int32 matrix.

    Args:
        xp: ``numpy`` or ``cupy``; ``products`` must be an array of that module.
        products: int32 array of shape ``(rows, n)`` with ``n >= 1``.

    Returns:
        ``xp.ndarray`` of uint8, shape ``(rows, 16)``; row ``i`` is the digest of ``products[i]``.
        Identical bits on NumPy and CuPy.

    Raises:
        ProofError: ``products`` is not a 2-D int32 array with at least one column.
    """
    if products.ndim != 2 or products.dtype != np.int32 or products.shape[1] < 1:
        raise ProofError(
            f"row digests need a 2-D int32 array with columns, got {products.dtype} {products.shape}"
        )
    values = xp.ascontiguousarray(products)
    rows, n = values.shape
    out = xp.empty((rows, DIGEST_BYTES), dtype=xp.uint8)
    step = max(1, _NUMPY_CHUNK_WORDS // ((n + 1) // 2)) if xp is np else max(1, rows)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        _digest_chunk(xp, values[start:stop], out[start:stop])
    return out
