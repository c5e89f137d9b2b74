"""Challenge parameters: what a queen asks every device of a provider to compute.

A challenge names a seed, a matrix size ``n`` and a number of products ``count``. Every device
``d`` of the provider computes ``C_c = A_c @ B`` for ``c in range(count)`` with matrices generated
from the seed (see :mod:`blendr.proof.generate`) and commits to the rows of all products stacked,
``count * n`` rows of ``n`` int32 values.
"""

from __future__ import annotations

from dataclasses import dataclass

from blendr.errors import ProofError

MIN_SEED_BYTES = 16
MAX_SEED_BYTES = 64
MAX_N = 16384
MAX_COUNT = 4096
MAX_ROWS = 2**24
"""Bound on ``count * n``: the number of Merkle leaves a provider builds per device."""

FP32_BYTES = 4


@dataclass(frozen=True)
class ChallengeParams:
    """One proof-of-GPU challenge, identical for every device of a provider.

    Attributes:
        challenge_id: The queen's id for the challenge (opaque here).
        seed: Fresh randomness, 16 to 64 bytes.
        n: Matrix size, ``1 <= n <= MAX_N``.
        count: Products per device, ``1 <= count <= MAX_COUNT``.
        b_seed: Empty, or 16 to 64 bytes of the queen's current *B epoch*. When set, the shared
            matrix ``B`` comes from it alone (the same for every device and every challenge of the
            epoch), so a verifier regenerates ``B`` once per epoch instead of once per challenge;
            every ``A_c`` is still fresh per challenge and device, so knowing ``B`` in advance
            saves the prover nothing. When empty, ``B`` comes from ``seed`` and the device index.
        hold: Every device keeps its products until the queen's memory probe
            (:mod:`blendr.proof.memory`).
    """

    challenge_id: str
    seed: bytes
    n: int
    count: int
    b_seed: bytes = b""
    hold: bool = False

    def validate(self) -> None:
        """Checks every bound.

        Raises:
            ProofError: The seed is not bytes or has the wrong length, ``n`` or ``count`` is out of
                range, or ``count * n`` exceeds ``MAX_ROWS``.
        """
        if not isinstance(self.seed, bytes):
            raise ProofError(f"challenge {self.challenge_id!r}: seed must be bytes")
        if not MIN_SEED_BYTES <= len(self.seed) <= MAX_SEED_BYTES:
            raise ProofError(
                f"challenge {self.challenge_id!r}: seed must be {MIN_SEED_BYTES} to {MAX_SEED_BYTES} "
                f"bytes, got {len(self.seed)}"
            )
        if not isinstance(self.b_seed, bytes) or (
            self.b_seed and not MIN_SEED_BYTES <= len(self.b_seed) <= MAX_SEED_BYTES
        ):
            raise ProofError(
                f"challenge {self.challenge_id!r}: b_seed must be empty or {MIN_SEED_BYTES} to "
                f"{MAX_SEED_BYTES} bytes"
            )
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 1 <= self.n <= MAX_N:
            raise ProofError(f"challenge {self.challenge_id!r}: n must be 1 to {MAX_N}, got {self.n!r}")
        if (
            isinstance(self.count, bool)
            or not isinstance(self.count, int)
            or not 1 <= self.count <= MAX_COUNT
        ):
            raise ProofError(
                f"challenge {self.challenge_id!r}: count must be 1 to {MAX_COUNT}, got {self.count!r}"
            )
        if self.rows > MAX_ROWS:
            raise ProofError(
                f"challenge {self.challenge_id!r}: count * n = {self.rows} rows exceeds {MAX_ROWS}"
            )

    def b_key_args(self, device_index: int) -> tuple[bytes, int]:
        """``(seed, device_index)`` to pass to ``matrix_key(..., "B", 0)`` for this challenge's ``B``."""
        return (self.b_seed, 0) if self.b_seed else (self.seed, device_index)

    @property
    def rows(self) -> int:
        """Rows of all products of one device stacked: ``count * n``."""
        return self.count * self.n

    @property
    def flops(self) -> int:
        """Floating-point operations per device: ``2 * count * n**3``."""
        return 2 * self.count * self.n**3

    @property
    def working_set_bytes(self) -> int:
        """Bytes a device holds if it keeps every input and product: ``(2 * count + 1) * n * n * 4``.

        That is ``count`` matrices ``A_c`` plus the shared ``B``, and ``count`` fp32 products. An
        upper bound used for sizing; the reference prover streams products and holds far less.
        """
        return ((self.count + 1) + self.count) * self.n * self.n * FP32_BYTES
