"""The verifier: the queen's side of a challenge.

The queen picks rows at random after it holds a device's root, checks that the opened rows are
the committed ones (Merkle proof over the row digest) and that they are right (recomputed with
NumPy at ``O(n**2 + k * n**2)`` against the prover's ``count * n**3``), then checks the claimed
speed and memory against the model's fingerprint.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from blendr.errors import ProofError
from blendr.proof.generate import compute_rows
from blendr.proof.merkle import leaf_hash, verify_proof
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import Opening
from blendr.proof.rowhash import row_digests

TIMING_EPSILON_SECONDS = 0.01
"""Slack allowed when work time exceeds wall time (clock granularity on two machines)."""

_GIB = float(2**30)


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
) -> Verdict:
    """Checks a device's openings against its root and against the true products.

    Checks, in order: every requested row is opened once and nothing else is; each row has
    ``4 * n`` bytes; each row's digest and Merkle proof lead to ``root``; each row equals the row
    recomputed with NumPy. ``B`` is regenerated once and all rows are recomputed as one product.

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
    truth = compute_rows(params, d, expected)
    wrong = np.flatnonzero((truth != claimed).any(axis=1))
    if wrong.size:
        return Verdict(False, f"row {expected[int(wrong[0])]} of device {d} is wrong")
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
) -> SpeedCheck:
    """Compares the throughput a device reports with its model's fingerprint.

    Fails when the timing is implausible (``work_seconds <= 0``, not finite, or more than
    ``wall_seconds`` as the queen measured it, plus :data:`TIMING_EPSILON_SECONDS`), when
    ``flops / work_seconds`` is below ``min_fraction`` of the fingerprint ("too slow for
    <model>") or above ``max_fraction`` of it ("faster than <model> can be").

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
    if reported < min_fraction * fingerprint_tflops:
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
