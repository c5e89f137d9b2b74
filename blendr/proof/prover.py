"""The prover: what each device of a provider computes for a challenge, and how it opens rows.

A device generates the shared ``B`` once, then for every product ``c`` generates ``A_c``, computes
``C_c = A_c @ B`` in fp32 (exact, see :mod:`blendr.proof.generate`), converts it to int32 and hashes
its rows on the device (:mod:`blendr.proof.rowhash`). Only the 16-byte row digests leave the
device; the host builds the SHA-256 Merkle tree over them. The arrays live on whatever device the
array module uses: under Ray, that is the GPU Ray assigned to the task (``CUDA_VISIBLE_DEVICES``),
not ``device_index``, which only names the device inside the challenge.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from blendr.errors import ChallengeExpiredError, ProofError
from blendr.proof import memory
from blendr.proof.generate import compute_rows, gen_matrix, matrix_key
from blendr.proof.merkle import MerkleTree
from blendr.proof.params import FP32_BYTES, ChallengeParams
from blendr.proof.rowhash import DIGEST_BYTES, row_digests


def get_array_module(prefer_gpu: bool = True) -> tuple[ModuleType, str]:
    """Returns ``(cupy, "cupy")`` when a usable CUDA GPU is present, else ``(numpy, "numpy")``.

    CuPy is imported lazily. It is used only if it imports, reports at least one device and a tiny
    kernel gives the right answer. Never raises.
    """
    if prefer_gpu:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                probe = cupy.arange(4, dtype=cupy.uint32) * cupy.uint32(3)
                if int(probe.sum()) == 18:
                    return cupy, "cupy"
        # Any failure here (no package, no driver, CUDA runtime errors of various types) means
        # "no usable GPU"; the caller falls back to NumPy by design.
        except Exception:
            pass
    return np, "numpy"


def _backend_name(xp: ModuleType) -> str:
    return "numpy" if xp is np else xp.__name__.split(".")[0]


@dataclass
class DeviceProof:
    """One device's answer to a challenge.

    Attributes:
        device_index: Index of the device within the challenge.
        root: Merkle root over all ``count * n`` rows.
        leaf_digests: The 16-byte row digests concatenated, ``rows * 16`` bytes.
        work_seconds: Device time from the first generation to the last digest (synchronised on
            a GPU); excludes building the Merkle tree on the host.
        peak_memory_bytes: On CuPy, the most bytes seen in CuPy's default memory pool; on NumPy,
            an upper bound of what one step holds: ``4 * n * n * 4`` (``B``, ``A_c``, the fp32 and
            the int32 product) plus the digests, ``rows * 16``.
        backend: ``"cupy"`` or ``"numpy"``.
        tree: The Merkle tree, kept so that :func:`open_rows` need not rebuild it; not part of
            equality. Drop it before sending the proof across processes if its size matters.
        held: With ``hold``, the products kept on the device for the memory probe (``None`` for
            a product the prover could not keep); emptied by :func:`answer_probe`.
        probe_digests: After :func:`answer_probe`, the keyed row digests (``rows * 16`` bytes),
            kept so that openings can carry their probe blocks.
    """

    device_index: int
    root: bytes
    leaf_digests: bytes
    work_seconds: float
    peak_memory_bytes: int
    backend: str
    tree: MerkleTree | None = field(default=None, repr=False, compare=False)
    held: list[Any] = field(default_factory=list, repr=False, compare=False)
    probe_digests: bytes = field(default=b"", repr=False, compare=False)


@dataclass
class Opening:
    """One opened row: its values and the Merkle proof of its leaf.

    Attributes:
        device_index: Index of the device within the challenge.
        row: Global row index ``c * n + i``.
        values: The row as ``n`` little-endian int32 values (``4 * n`` bytes).
        proof: Sibling hashes from :meth:`MerkleTree.proof`.
        probe_block: After a memory probe, the row's probe block (:func:`memory.block_of`); else empty.
    """

    device_index: int
    row: int
    values: bytes
    proof: list[bytes]
    probe_block: bytes = b""


def _check_deadline(deadline: float | None, params: ChallengeParams, device_index: int) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ChallengeExpiredError(
            f"challenge {params.challenge_id!r}: device {device_index} passed its deadline"
        )


def prove_device(
    params: ChallengeParams,
    device_index: int,
    xp: ModuleType | None = None,
    deadline: float | None = None,
    *,
    hold: bool = False,
    hold_limit_bytes: int | None = None,
) -> DeviceProof:
    """Computes and commits to every product of one device.

    Args:
        params: The challenge.
        device_index: Index of the device within the challenge (selects the matrices).
        xp: ``numpy`` or ``cupy``; ``None`` picks one with :func:`get_array_module`.
        deadline: A ``time.monotonic()`` value; checked before each product and before the tree.
        hold: Keep every int32 product on the device for :func:`answer_probe`.
        hold_limit_bytes: Keep products only while they fit in this many bytes (a device with
            less memory; tests use it to play one); the others are recomputed when probed.

    Returns:
        The device's proof, with its Merkle tree attached.

    Raises:
        ProofError: The parameters or ``device_index`` are invalid.
        ChallengeExpiredError: The deadline passed before the work was done.
    """
    params.validate()
    if not 0 <= device_index < 2**32:
        raise ProofError(f"device index must fit in 32 bits, got {device_index}")
    if xp is None:
        xp, backend = get_array_module()
    else:
        backend = _backend_name(xp)
    on_gpu = backend == "cupy"
    n = params.n
    pool: Any = xp.get_default_memory_pool() if on_gpu else None
    peak = 0

    def synchronize() -> None:
        if on_gpu:
            xp.cuda.get_current_stream().synchronize()

    _check_deadline(deadline, params, device_index)
    synchronize()
    started = time.perf_counter()
    b = gen_matrix(xp, matrix_key(*params.b_key_args(device_index), "B", 0), n)
    digests = np.empty((params.rows, DIGEST_BYTES), dtype=np.uint8)
    held: list[Any] = []
    held_bytes = 0
    for c in range(params.count):
        _check_deadline(deadline, params, device_index)
        a = gen_matrix(xp, matrix_key(params.seed, device_index, "A", c), n)
        product = xp.matmul(a, b)
        del a
        exact = product.astype(xp.int32)
        del product
        block = row_digests(xp, exact)
        if hold:
            fits = hold_limit_bytes is None or held_bytes + exact.nbytes <= hold_limit_bytes
            held.append(exact if fits else None)
            held_bytes += exact.nbytes if fits else 0
        if on_gpu:
            peak = max(peak, int(pool.total_bytes()))
            # Copying the digests back synchronises, so the deadline check above sees real progress.
            digests[c * n : (c + 1) * n] = xp.asnumpy(block)
        else:
            digests[c * n : (c + 1) * n] = block
        del exact, block
    synchronize()
    work_seconds = time.perf_counter() - started
    if not on_gpu:
        peak = 4 * n * n * FP32_BYTES + params.rows * DIGEST_BYTES + held_bytes
    _check_deadline(deadline, params, device_index)
    leaf_digests = digests.tobytes()
    tree = MerkleTree.from_row_digests(leaf_digests)
    return DeviceProof(
        device_index=device_index,
        root=tree.root,
        leaf_digests=leaf_digests,
        work_seconds=work_seconds,
        peak_memory_bytes=peak,
        backend=backend,
        tree=tree,
        held=held,
    )


def answer_probe(
    params: ChallengeParams, proof: DeviceProof, key: bytes, xp: ModuleType | None = None
) -> bytes:
    """Answers the memory probe ``key`` from the products ``proof`` holds; returns the block hashes.

    A product that was not held is computed again (what a device short of memory must do, far
    slower than reading it). The held products are released; the keyed digests stay in
    ``proof.probe_digests`` for the openings.

    Raises:
        ProofError: The key is malformed, or the proof holds no products (it was made without
            ``hold``).
    """
    params.validate()
    if len(proof.held) != params.count:
        raise ProofError(
            f"challenge {params.challenge_id!r}: device {proof.device_index} holds {len(proof.held)} of "
            f"{params.count} products (proved without hold?)"
        )
    if xp is None:
        xp, _ = get_array_module()
    n = params.n
    keys = xp.asarray(memory.key_vector(key, n))
    digests = np.empty((params.rows, DIGEST_BYTES), dtype=np.uint8)
    b: Any = None
    for c, product in enumerate(proof.held):
        if product is None:
            if b is None:
                b = gen_matrix(xp, matrix_key(*params.b_key_args(proof.device_index), "B", 0), n)
            a = gen_matrix(xp, matrix_key(params.seed, proof.device_index, "A", c), n)
            product = xp.matmul(a, b).astype(xp.int32)
        block = memory.probe_digests(xp, product, keys)
        digests[c * n : (c + 1) * n] = block if xp is np else xp.asnumpy(block)
        proof.held[c] = None
    proof.held = []
    proof.probe_digests = digests.tobytes()
    return memory.block_hashes(proof.probe_digests)


def open_rows(
    params: ChallengeParams, device_index: int, tree: MerkleTree, rows: Sequence[int],
    probe_digests: bytes = b"",
) -> list[Opening]:
    """Opens the requested rows of one device, recomputing them on the host with NumPy.

    Args:
        params: The challenge.
        device_index: Index of the device within the challenge.
        tree: The device's Merkle tree (``DeviceProof.tree`` or
            ``MerkleTree.from_row_digests(proof.leaf_digests)``).
        rows: Global row indices to open.
        probe_digests: ``DeviceProof.probe_digests`` after a memory probe: each opening then
            carries its probe block.

    Returns:
        One :class:`Opening` per requested row, in the order requested.

    Raises:
        ProofError: The parameters are invalid, the tree does not have ``params.rows`` leaves, or
            a row is out of range.
    """
    params.validate()
    if tree.num_leaves != params.rows:
        raise ProofError(f"tree has {tree.num_leaves} leaves, challenge has {params.rows} rows")
    wanted = [int(r) for r in rows]
    values = compute_rows(params, device_index, wanted)
    little = values.astype("<i4")
    return [
        Opening(device_index=device_index, row=r, values=little[i].tobytes(), proof=tree.proof(r),
                probe_block=memory.block_of(probe_digests, r) if probe_digests else b"")
        for i, r in enumerate(wanted)
    ]
