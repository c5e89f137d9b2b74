"""Sizing a challenge for a device model, and its deadline."""

from __future__ import annotations

import math

from blendr.errors import ProofError
from blendr.proof.fingerprints import Fingerprint
from blendr.proof.params import FP32_BYTES, MAX_COUNT, MAX_N, MAX_ROWS, ChallengeParams


def _working_set(n: int, count: int) -> int:
    return (2 * count + 1) * n * n * FP32_BYTES


def elements(n: int, count: int) -> int:
    """Matrix elements a device generates or hashes: ``count`` ``A_c``, one ``B``, ``count`` products."""
    return (2 * count + 1) * n * n


def device_seconds(fp: Fingerprint, n: int, count: int) -> float:
    """Seconds a device of model ``fp`` needs at its fingerprint: the FLOPs at its FP32 rate plus
    ``element_ns`` per generated or hashed element (:func:`elements`)."""
    return 2 * count * n**3 / (fp.fp32_tflops * 1e12) + elements(n, count) * fp.element_ns * 1e-9


def size_challenge(
    fp: Fingerprint, n: int, target_seconds: float, max_count: int, memory_fraction: float
) -> tuple[int, int]:
    """Picks ``(n, count)`` so that the model needs about ``target_seconds`` of work (:func:`device_seconds`).

    ``count = ceil(target_seconds / seconds per product)``, clamped to ``[1, max_count]`` (and
    to ``MAX_COUNT`` and ``MAX_ROWS / n``). When the model's memory is known, ``count`` is lowered
    until :attr:`ChallengeParams.working_set_bytes` fits in ``memory_fraction`` of it; if even
    ``count = 1`` does not fit, ``n`` is halved until it does.

    Raises:
        ProofError: An argument is out of range, or not even ``n = 1`` fits.
    """
    if not 1 <= n <= MAX_N or max_count < 1 or not target_seconds > 0 or not 0 < memory_fraction <= 1:
        raise ProofError(
            f"cannot size a challenge with n={n}, max_count={max_count}, "
            f"target_seconds={target_seconds}, memory_fraction={memory_fraction}"
        )
    if not fp.fp32_tflops > 0:
        raise ProofError(f"model {fp.key!r} has no FP32 throughput to size a challenge by")
    budget = None if fp.memory_bytes is None else memory_fraction * fp.memory_bytes
    if budget is not None:
        while _working_set(n, 1) > budget:
            if n == 1:
                raise ProofError(f"model {fp.key!r}: no challenge fits in {budget:.0f} bytes")
            n //= 2
    per_product = device_seconds(fp, n, 1) - n * n * fp.element_ns * 1e-9  # B is generated once
    wanted = math.ceil(target_seconds / per_product)
    count = max(1, min(wanted, max_count, MAX_COUNT, MAX_ROWS // n))
    if budget is not None:
        fitting = int((budget / (n * n * FP32_BYTES) - 1) // 2)
        count = max(1, min(count, fitting))
    return n, count


def deadline_seconds(
    params: ChallengeParams, fp: Fingerprint, min_fraction: float, grace_seconds: float
) -> float:
    """Returns the seconds a device of model ``fp`` may take: ``device_seconds / min + grace``.

    ``min`` is the model's own ``min_fraction`` when it has one, else ``min_fraction``: a device
    slower than the lower edge of the speed band would fail the speed check anyway.

    Raises:
        ProofError: The band edge or the model's FP32 throughput is not positive, or the grace is
            negative.
    """
    low, _ = fp.band(min_fraction, math.inf)
    if not low > 0 or not fp.fp32_tflops > 0 or grace_seconds < 0:
        raise ProofError(
            f"cannot set a deadline with min_fraction={low}, fp32={fp.fp32_tflops}, grace={grace_seconds}"
        )
    return device_seconds(fp, params.n, params.count) / low + grace_seconds


def held_bytes(n: int, count: int) -> int:
    """Bytes a device holds for the memory probe: every int32 product, plus ``B`` and one ``A_c``."""
    return (count + 2) * n * n * FP32_BYTES


def size_memory_challenge(fp: Fingerprint, n: int, count: int, memory_fraction: float, max_count: int) -> int:
    """Raises ``count`` so that the held products fill ``memory_fraction`` of the model's memory.

    Returns ``max(count, c)`` for the largest ``c`` with :func:`held_bytes` ``(n, c)`` within the
    budget, capped at ``max_count``, ``MAX_COUNT`` and ``MAX_ROWS / n``; ``count`` unchanged when the
    model has no memory figure.

    Raises:
        ProofError: ``memory_fraction`` is outside ``(0, 1]``.
    """
    if not 0 < memory_fraction <= 1:
        raise ProofError(f"memory_fraction must be in (0, 1], got {memory_fraction}")
    if fp.memory_bytes is None:
        return count
    fill = int(memory_fraction * fp.memory_bytes // (n * n * FP32_BYTES)) - 2
    return max(count, min(fill, max_count, MAX_COUNT, MAX_ROWS // n))
