"""The verifier: the queen's side of a challenge.

The queen picks rows at random after it holds a device's root, checks that the opened rows are
the committed ones (Merkle proof over the row digest) and that they are right, then checks the
claimed speed and memory against the model's fingerprint.

Rightness of a row. With an epoch ``B`` (``params.b_seed`` set, as the queen sends every
challenge) the row is checked with a Freivalds projection: the verifier holds, per epoch and size,
``R = 3`` secret random vectors ``r`` with entries uniform in ``[0, P)`` (``P = 4194301``, the largest
prime below ``2**22``) and ``Br = B @ r mod P``; an opened row ``c`` of product ``A_c @ B`` is right
when every entry is within the bound ``64 * n`` that true products respect and
``c . r == a . Br (mod P)`` for each ``r``, ``a`` being the row of ``A_c`` regenerated from the seed.
Cost per row is ``O(n)`` (against ``O(n**2)`` to recompute it); ``Br`` costs ``O(n**2)`` once per
epoch. Soundness: a wrong row within the bound differs from the true one by a non-zero integer
vector ``e`` with ``|e_j| <= 2 * 64 * n <= 2**21 < P``, so ``e mod P != 0`` and
``Pr_r[e . r == 0 mod P] = 1/P`` for each independent ``r`` (fix a non-zero coordinate of ``e``:
exactly one value of its ``r_j`` makes the sum vanish); with three vectors a wrong row passes with
probability at most ``P**-3 < 2**-65``. The vectors are drawn from the OS's randomness and never
leave the verifier; a verdict tells a prover only whether its rows passed. All sums are exact in
int64 (``|c_j| r_j n <= 2**20 * 2**22 * 2**14 = 2**56``). Without an epoch ``B`` rows are
recomputed in full.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from blendr.errors import ProofError
from blendr.proof import memory
from blendr.proof.generate import a_rows_of, compute_rows, gen_rows, matrix_key
from blendr.proof.merkle import leaf_hash, verify_proof
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import Opening
from blendr.proof.rowhash import row_digests

TIMING_EPSILON_SECONDS = 0.01
"""Slack allowed when work time exceeds wall time (clock granularity on two machines)."""

_GIB = float(2**30)

FREIVALDS_PRIME = 4194301
"""The prime modulus of the projection check: the largest prime below ``2**22`` (above ``2 * 64 * MAX_N``)."""

FREIVALDS_VECTORS = 3
"""Independent projection vectors per epoch: a wrong row passes with probability ``P**-3``."""

PROJECTION_CACHE_SIZE = 4
"""Epoch projections kept by a verifier (``2 * R * n * 8`` bytes each: 384 KiB at n = 8192)."""

_GEN_BLOCK_ELEMENTS = 1 << 20
"""Rows of ``B`` are generated in blocks of this many elements when projecting it."""

_PROJECTIONS: OrderedDict[tuple[bytes, int], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = OrderedDict()
_PROJECTIONS_LOCK = threading.Lock()


def max_abs_product(n: int) -> int:
    """The largest absolute value an entry of a true product can have: ``64 * n`` (inputs in [-8, 7])."""
    return 64 * n


def epoch_projection(b_seed: bytes, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Returns ``(r, Br)`` for an epoch and size: ``r`` is ``(n, R)`` secret, ``Br = B @ r mod P``.

    Generated once per ``(b_seed, n)`` with the OS's randomness and kept in a small LRU cache; ``B``
    is generated block by block and never held whole. ``B @ r`` is exact in float64 (entries of ``B``
    are at most 8 in size, of ``r`` below ``2**22``: every partial sum is below ``2**39 < 2**53``).
    """
    key = (b_seed, n)
    with _PROJECTIONS_LOCK:
        cached = _PROJECTIONS.get(key)
        if cached is not None:
            _PROJECTIONS.move_to_end(key)
            return cached
    rng = np.random.default_rng(secrets.randbits(128))
    r = rng.integers(0, FREIVALDS_PRIME, size=(n, FREIVALDS_VECTORS), dtype=np.int64)
    r_float = r.astype(np.float64)
    b_key = matrix_key(b_seed, 0, "B", 0)
    br = np.empty((n, FREIVALDS_VECTORS), dtype=np.int64)
    block = max(1, _GEN_BLOCK_ELEMENTS // n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = gen_rows(np, b_key, n, np.arange(start, stop, dtype=np.int64))
        br[start:stop] = np.mod((rows.astype(np.float64) @ r_float).astype(np.int64), FREIVALDS_PRIME)
    r.setflags(write=False)
    br.setflags(write=False)
    with _PROJECTIONS_LOCK:
        _PROJECTIONS[key] = (r, br)
        while len(_PROJECTIONS) > PROJECTION_CACHE_SIZE:
            _PROJECTIONS.popitem(last=False)
    return r, br


_SPLIT_BITS = 11


def _split(r: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``r`` as float64 halves ``(r >> 11, r & 2047)`` (``r`` below ``2**22``), for exact BLAS products."""
    return (r >> _SPLIT_BITS).astype(np.float64), (r & ((1 << _SPLIT_BITS) - 1)).astype(np.float64)


def clear_projection_cache() -> None:
    """Forget cached epoch projections (benchmarks measure the cold case with it)."""
    with _PROJECTIONS_LOCK:
        _PROJECTIONS.clear()


def projected_wrong_rows(
    params: ChallengeParams, device_index: int, rows: Sequence[int], claimed: npt.NDArray[np.int32]
) -> npt.NDArray[np.intp]:
    """Positions (into ``rows``) of the claimed rows that fail the Freivalds check (epoch ``B`` only).

    Raises:
        ProofError: ``params`` has no epoch ``B`` or a row is out of range.
    """
    if not params.b_seed:
        raise ProofError("the projection check needs an epoch B (b_seed)")
    n = params.n
    wanted = np.asarray(list(rows), dtype=np.int64).reshape(-1)
    if wanted.size and (int(wanted.min()) < 0 or int(wanted.max()) >= params.rows):
        raise ProofError(f"rows must be in [0, {params.rows}) for challenge {params.challenge_id!r}")
    r, br = epoch_projection(params.b_seed, n)
    values = claimed.astype(np.int64)
    bound = max_abs_product(n)
    out_of_bound = (np.abs(values) > bound).any(axis=1)
    values[out_of_bound] = 0  # failed already; zeroed so the exact int64 sums below cannot overflow
    a_rows = a_rows_of(params, device_index, wanted)
    # Float64 BLAS, exact: |a_j| <= 8 and Br < 2**22 give sums below 2**39; c . r is split as
    # c . r_hi * 2**11 + c . r_lo with both halves below 2**11, so each sum stays below 2**45 < 2**53.
    r_hi, r_lo = _split(r)
    expected = np.mod((a_rows.astype(np.float64) @ br.astype(np.float64)).astype(np.int64), FREIVALDS_PRIME)
    as_float = values.astype(np.float64)
    hi = np.mod((as_float @ r_hi).astype(np.int64), FREIVALDS_PRIME)
    lo = (as_float @ r_lo).astype(np.int64)
    got = np.mod(hi * (1 << _SPLIT_BITS) + lo, FREIVALDS_PRIME)
    return np.flatnonzero(out_of_bound | (expected != got).any(axis=1))


@dataclass(frozen=True)
class Verdict:
    """Result of a check: ``ok`` and, when not ok, a one-line reason naming what failed."""

    ok: bool
    reason: str


@dataclass(frozen=True)
class SpeedCheck(Verdict):
    """A speed :class:`Verdict` with the throughputs it was based on (TFLOP/s)."""

    reported_tflops: float
    wall_tflops: float


OK = Verdict(True, "ok")


def choose_rows(rng: random.Random, num_rows: int, k: int) -> list[int]:
    """Picks ``min(k, num_rows)`` distinct rows uniformly at random, sorted.

    Args:
        rng: Source of randomness; pass ``secrets.SystemRandom()`` in production so a provider
            cannot predict the rows.
        num_rows: Rows to choose from (``params.rows``).
        k: Rows wanted.

    Raises:
        ProofError: ``num_rows`` or ``k`` is negative.
    """
    if num_rows < 0 or k < 0:
        raise ProofError(f"cannot choose {k} rows out of {num_rows}")
    return sorted(rng.sample(range(num_rows), min(k, num_rows)))


def verify_openings(
    params: ChallengeParams,
    device_index: int,
    root: bytes,
    openings: Sequence[Opening],
    expected_rows: Sequence[int],
    *,
    probe_key: bytes = b"",
    probe_hashes: bytes = b"",
) -> Verdict:
    """Checks a device's openings against its root and against the true products.

    Checks, in order: every requested row is opened once and nothing else is; each row has
    ``4 * n`` bytes; each row's digest and Merkle proof lead to ``root``; each row equals the row
    right: with an epoch ``B`` by the projection check (module docstring), else recomputed with NumPy
    (``B`` regenerated once, all rows as one product); with ``probe_key``, each row's probe block
    matches ``probe_hashes`` (the device's answer to the memory probe) and holds the row's keyed
    digest (:func:`blendr.proof.memory.check_probe_row`).

    Returns:
        ``Verdict(True, "ok")`` or the first failure, e.g. ``"row 7 of device 0 is wrong"``.

    Raises:
        ProofError: The parameters are invalid or ``expected_rows`` repeats a row or is out of
            range (a bug on the verifier's side, not the prover's).
    """
    params.validate()
    d = device_index
    expected = [int(r) for r in expected_rows]
    if len(set(expected)) != len(expected) or any(not 0 <= r < params.rows for r in expected):
        raise ProofError(f"expected rows must be distinct and in [0, {params.rows})")
    opened: dict[int, Opening] = {}
    for opening in openings:
        if opening.device_index != d:
            return Verdict(False, f"row {opening.row} was opened for device {opening.device_index}, not {d}")
        if opening.row in opened:
            return Verdict(False, f"row {opening.row} of device {d} was opened twice")
        opened[opening.row] = opening
    for r in expected:
        if r not in opened:
            return Verdict(False, f"row {r} of device {d} was not opened")
    extra = sorted(set(opened) - set(expected))
    if extra:
        return Verdict(False, f"row {extra[0]} of device {d} was opened but not requested")
    width = params.n * 4
    for r in expected:
        values = opened[r].values
        if not isinstance(values, bytes):
            return Verdict(False, f"row {r} of device {d} has malformed values")
        if len(values) != width:
            return Verdict(
                False, f"row {r} of device {d} has {len(values)} bytes of values, expected {width}"
            )
    if not expected:
        return OK
    claimed = np.frombuffer(b"".join(opened[r].values for r in expected), dtype="<i4")
    claimed = claimed.reshape(len(expected), params.n).astype(np.int32)
    digests = row_digests(np, claimed)
    for i, r in enumerate(expected):
        leaf = leaf_hash(r, digests[i].tobytes())
        if not verify_proof(root, leaf, r, params.rows, opened[r].proof):
            return Verdict(False, f"row {r} of device {d} does not match the commitment")
    if params.b_seed:
        wrong = projected_wrong_rows(params, d, expected, claimed)
    else:
        truth = compute_rows(params, d, expected)
        wrong = np.flatnonzero((truth != claimed).any(axis=1))
    if wrong.size:
        return Verdict(False, f"row {expected[int(wrong[0])]} of device {d} is wrong")
    if probe_key:
        for i, r in enumerate(expected):
            problem = memory.check_probe_row(probe_key, params.rows, r, claimed[i], opened[r].probe_block,
                                             probe_hashes)
            if problem:
                return Verdict(False, f"device {d}: {problem}")
    return OK


def check_speed(
    flops: int,
    work_seconds: float,
    wall_seconds: float,
    fingerprint_tflops: float,
    min_fraction: float,
    max_fraction: float,
    *,
    model: str = "the claimed model",
    floor: bool = True,
) -> SpeedCheck:
    """Compares the throughput a device reports with its model's fingerprint.

    Fails when the timing is implausible (``work_seconds <= 0``, not finite, or more than
    ``wall_seconds`` as the queen measured it, plus :data:`TIMING_EPSILON_SECONDS`), when
    ``flops / work_seconds`` is below ``min_fraction`` of the fingerprint ("too slow for
    <model>"; skipped with ``floor=False``: a queen judges slowness on its own clock, since a
    report proves nothing and an honest one grows with its host's load) or above ``max_fraction``
    of it ("faster than <model> can be").

    Raises:
        ProofError: ``flops``, the fingerprint or the band is not positive, or
            ``min_fraction > max_fraction`` (configuration errors, not the prover's).
    """
    if flops <= 0 or not fingerprint_tflops > 0 or not 0 < min_fraction <= max_fraction:
        raise ProofError(
            f"bad speed check: flops={flops}, fingerprint={fingerprint_tflops}, "
            f"band=[{min_fraction}, {max_fraction}]"
        )
    wall_tflops = flops / wall_seconds / 1e12 if wall_seconds > 0 and math.isfinite(wall_seconds) else 0.0
    if (
        not math.isfinite(work_seconds)
        or not math.isfinite(wall_seconds)
        or work_seconds <= 0
        or work_seconds > wall_seconds + TIMING_EPSILON_SECONDS
    ):
        return SpeedCheck(
            False,
            f"implausible timing: work {work_seconds:.6g} s, wall {wall_seconds:.6g} s",
            0.0,
            wall_tflops,
        )
    reported = flops / work_seconds / 1e12
    if floor and reported < min_fraction * fingerprint_tflops:
        return SpeedCheck(
            False,
            f"too slow for {model}: {reported:.4g} TFLOP/s measured, fingerprint {fingerprint_tflops:.4g}",
            reported,
            wall_tflops,
        )
    if reported > max_fraction * fingerprint_tflops:
        return SpeedCheck(
            False,
            f"faster than {model} can be: {reported:.4g} TFLOP/s measured, fingerprint {fingerprint_tflops:.4g}",
            reported,
            wall_tflops,
        )
    return SpeedCheck(True, "ok", reported, wall_tflops)


def check_memory(
    claimed_total_bytes: int,
    fingerprint_memory_bytes: int | None,
    tolerance: float,
    *,
    model: str = "the claimed model",
) -> Verdict:
    """Compares a device's claimed total memory with its model's fingerprint.

    Passes when the fingerprint has no memory figure (e.g. the CPU) or the claim is within
    ``tolerance`` (a fraction, e.g. 0.08: NVML totals run a few percent under datasheet sizes) of
    it; fails when the claim is not positive, larger, or smaller.

    Raises:
        ProofError: ``tolerance`` is negative.
    """
    if tolerance < 0:
        raise ProofError(f"memory tolerance must not be negative, got {tolerance}")
    if fingerprint_memory_bytes is None:
        return Verdict(True, "ok (no memory fingerprint)")
    claimed_gib = claimed_total_bytes / _GIB
    expected_gib = fingerprint_memory_bytes / _GIB
    if claimed_total_bytes <= 0:
        return Verdict(False, f"implausible memory claim: {claimed_total_bytes} bytes")
    if claimed_total_bytes > fingerprint_memory_bytes * (1 + tolerance):
        return Verdict(False, f"claims {claimed_gib:.1f} GiB, more than {model} has ({expected_gib:.1f} GiB)")
    if claimed_total_bytes < fingerprint_memory_bytes * (1 - tolerance):
        return Verdict(False, f"claims {claimed_gib:.1f} GiB, less than {model} has ({expected_gib:.1f} GiB)")
    return OK
