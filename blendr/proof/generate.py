"""Counter-based matrix generation, bit-identical on NumPy and CuPy.

Element ``(i, j)`` of an ``n x n`` matrix with 32-bit key ``k`` is a pure function of
``(k, i * n + j)``: the counter is spread with a golden-ratio multiply, offset by the key and
scrambled with ``lowbias32``; its top four bits give a small integer in ``[-8, 7]``. Only uint32
multiply (wrapping mod 2**32), add, xor and shifts are used, all with ``xp.uint32`` operands, so
NumPy and CuPy produce the same bits and any row can be generated on its own (the verifier
regenerates just the rows it checks).

Because every input is an integer with ``|x| <= 8`` and ``n <= 16384``, every partial sum of a
product is an integer below ``64 * 16384 = 2**20 < 2**24`` and is exact in fp32 (and in TF32 or
fp16 inputs with fp32 accumulation): honest devices of any make get identical products.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from blendr.errors import ProofError
from blendr.proof.params import ChallengeParams

DOMAIN = b"blendr-pog-v1"
"""Domain separator hashed in front of every matrix key."""

_GOLDEN32 = 0x9E3779B1
_LOWBIAS_M1 = 0x7FEB352D
_LOWBIAS_M2 = 0x846CA68B

_NUMPY_CHUNK_ELEMENTS = 1 << 16
"""NumPy generates in chunks of this many elements so temporaries stay in cache."""

_VERIFY_BLOCK_ELEMENTS = 1 << 20
"""Rows of ``B`` are regenerated in blocks of this many elements (4 MiB): bounded memory, warm caches."""


def matrix_key(seed: bytes, device_index: int, which: str, index: int) -> int:
    """Returns the 32-bit key of one generated matrix.

    The key is the first 4 bytes (big-endian) of
    ``sha256(DOMAIN + seed + device_index (4 bytes BE) + which + index (4 bytes BE))``.

    Args:
        seed: The challenge seed.
        device_index: Index of the device within the provider's claimed devices.
        which: ``"A"`` (one per product) or ``"B"`` (one per device).
        index: Product index for ``"A"``, 0 for ``"B"``.

    Raises:
        ProofError: ``which`` is not ``"A"``/``"B"`` or an index does not fit in 4 bytes.
    """
    if which not in ("A", "B"):
        raise ProofError(f"matrix must be 'A' or 'B', got {which!r}")
    if not 0 <= device_index < 2**32 or not 0 <= index < 2**32:
        raise ProofError(f"device index {device_index} and matrix index {index} must fit in 32 bits")
    message = DOMAIN + seed + device_index.to_bytes(4, "big") + which.encode() + index.to_bytes(4, "big")
    return int.from_bytes(hashlib.sha256(message).digest()[:4], "big")


def _is_numpy(xp: ModuleType) -> bool:
    return xp is np


def gen_rows(xp: ModuleType, key: int, n: int, rows: Any) -> Any:
    """Generates selected rows of the matrix with ``key``.

    Args:
        xp: ``numpy`` or ``cupy``; the result lives on that module's device.
        key: 32-bit matrix key from :func:`matrix_key`.
        n: Matrix size.
        rows: Row indices in ``[0, n)`` (a sequence or an integer array of ``xp``).

    Returns:
        ``xp.ndarray`` of float32, shape ``(len(rows), n)``, values integers in ``[-8, 7]``.

    Raises:
        ProofError: ``n`` or ``key`` is out of range, or a row index is outside ``[0, n)``.
    """
    if not 1 <= n <= 2**16 or not 0 <= key < 2**32:
        raise ProofError(f"n must be 1 to 65536 and key 32-bit, got n={n}, key={key}")
    wide = xp.asarray(rows, dtype=xp.int64).reshape(-1)
    m = int(wide.shape[0])
    if m and (int(wide.min()) < 0 or int(wide.max()) >= n):
        raise ProofError(f"row indices must be in [0, {n})")
    row_ids = wide.astype(xp.uint32)
    cols = xp.arange(n, dtype=xp.uint32)
    out = xp.empty((m, n), dtype=xp.float32)
    step = max(1, _NUMPY_CHUNK_ELEMENTS // n) if _is_numpy(xp) else max(1, m)
    u32 = xp.uint32
    for start in range(0, m, step):
        stop = min(m, start + step)
        x = row_ids[start:stop, None] * u32(n) + cols[None, :]
        tmp = xp.empty_like(x)
        xp.multiply(x, u32(_GOLDEN32), out=x)
        xp.add(x, u32(key), out=x)
        # lowbias32 (Chris Wellons): a strong 32-bit integer finaliser.
        xp.right_shift(x, u32(16), out=tmp)
        xp.bitwise_xor(x, tmp, out=x)
        xp.multiply(x, u32(_LOWBIAS_M1), out=x)
        xp.right_shift(x, u32(15), out=tmp)
        xp.bitwise_xor(x, tmp, out=x)
        xp.multiply(x, u32(_LOWBIAS_M2), out=x)
        xp.right_shift(x, u32(16), out=tmp)
        xp.bitwise_xor(x, tmp, out=x)
        xp.right_shift(x, u32(28), out=x)
        block = out[start:stop]
        block[...] = x
        block -= xp.float32(8)
    return out


def gen_matrix(xp: ModuleType, key: int, n: int) -> Any:
    """Generates the whole ``n x n`` float32 matrix with ``key`` (see :func:`gen_rows`)."""
    return gen_rows(xp, key, n, xp.arange(n, dtype=xp.int64))


_EPOCH_B_CACHE: OrderedDict[tuple[bytes, int], npt.NDArray[np.float32]] = OrderedDict()
_EPOCH_B_LOCK = threading.Lock()
EPOCH_B_CACHE_SIZE = 4
"""Epoch matrices kept by a verifier (``n * n * 4`` bytes each: 16 MiB at n = 2048)."""


def _epoch_b(b_seed: bytes, n: int) -> npt.NDArray[np.float32]:
    """The epoch's shared ``B`` for size ``n``, generated once and kept in a small LRU cache."""
    key = (b_seed, n)
    with _EPOCH_B_LOCK:
        b = _EPOCH_B_CACHE.get(key)
        if b is None:
            b = np.asarray(gen_matrix(np, matrix_key(b_seed, 0, "B", 0), n), dtype=np.float32)
            b.setflags(write=False)
            _EPOCH_B_CACHE[key] = b
            while len(_EPOCH_B_CACHE) > EPOCH_B_CACHE_SIZE:
                _EPOCH_B_CACHE.popitem(last=False)
        else:
            _EPOCH_B_CACHE.move_to_end(key)
        return b


def clear_epoch_cache() -> None:
    """Forget cached epoch matrices (benchmarks measure the cold case with it)."""
    with _EPOCH_B_LOCK:
        _EPOCH_B_CACHE.clear()


def compute_rows(params: ChallengeParams, device_index: int, rows: Sequence[int]) -> npt.NDArray[np.int32]:
    """Recomputes global product rows of one device on the host with NumPy.

    Global row ``r`` is row ``r % n`` of ``C_{r // n} = A_{r // n} @ B``. ``B`` is regenerated once
    and all rows come from one ``(k x n) @ (n x n)`` product, accumulated over row blocks of ``B``
    so that ``B`` is never held whole (for ``n <= 1024`` it is a single block). Cost is
    ``O(n**2 + k * n**2)`` against the prover's ``count * n**3``.

    Returns:
        int32 array of shape ``(len(rows), n)``, in the order of ``rows``.

    Raises:
        ProofError: A row is outside ``[0, params.rows)``.
    """
    n = params.n
    wanted = np.asarray(list(rows), dtype=np.int64).reshape(-1)
    if wanted.size and (int(wanted.min()) < 0 or int(wanted.max()) >= params.rows):
        raise ProofError(f"rows must be in [0, {params.rows}) for challenge {params.challenge_id!r}")
    a_rows = a_rows_of(params, device_index, wanted)
    if params.b_seed:
        b = _epoch_b(params.b_seed, n)
        return (a_rows @ b).astype(np.int32)
    b_key = matrix_key(params.seed, device_index, "B", 0)
    result = np.zeros((wanted.size, n), dtype=np.float32)
    block = max(1, _VERIFY_BLOCK_ELEMENTS // n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        b_block = gen_rows(np, b_key, n, np.arange(start, stop, dtype=np.int64))
        # Partial sums are integers below 2**24, so accumulating blocks in fp32 stays exact.
        result += a_rows[:, start:stop] @ b_block
    return result.astype(np.int32)


def a_rows_of(params: ChallengeParams, device_index: int, wanted: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """The rows of the challenge's A matrices behind the flat output rows ``wanted`` (float32, one per row)."""
    n = params.n
    products, local = np.divmod(wanted, n)
    a_rows = np.empty((wanted.size, n), dtype=np.float32)
    for c in np.unique(products).tolist():
        mask = products == c
        key = matrix_key(params.seed, device_index, "A", int(c))
        a_rows[mask] = gen_rows(np, key, n, local[mask])
    return a_rows
