"""What a renter's job asks for, shared by the SDK (which signs it) and the king (which checks it).

``spec_hash`` is the ``specHash`` of the renter's GPURental intents: keccak256 of the canonical JSON of the
spec and of the SHA-256 of the encrypted payload, so a signed intent binds the GPUs, the duration, the price
ceiling and the exact payload; the king recomputes it and refuses a job whose intents sign something else.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass

from blendr.errors import InvalidArgumentError
from blendr.hashing import keccak256
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.units import fmt_duration, fmt_tokens

REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class Spec:
    """A job's hardware, duration and price ceiling (wei per GPU-hour)."""

    gpus: int
    duration_s: int
    max_price_per_gpu_hour: int
    gpu_model: str = ""
    min_vram_bytes: int = 0
    min_tflops: float = 0.0

    def max_escrow(self) -> int:
        """The most one rental of this job can lock: max price × GPUs × duration (GPURental's formula)."""
        return self.max_price_per_gpu_hour * self.gpus * self.duration_s // 3600

    def describe(self) -> str:
        model = FINGERPRINTS[self.gpu_model].name if self.gpu_model in FINGERPRINTS else (self.gpu_model or "GPU")
        return f"{self.gpus}×{model} for {fmt_duration(self.duration_s)} at ≤ {fmt_tokens(self.max_price_per_gpu_hour)}/h"


def validate(spec: Spec, *, max_gpus: int = 64, min_duration_s: int = 1, max_duration_s: int = 30 * 86400) -> Spec:
    """Returns ``spec`` or raises InvalidArgumentError saying what to fix."""
    if spec.gpus < 1:
        raise InvalidArgumentError("gpus must be at least 1")
    if spec.gpus > max_gpus:
        raise InvalidArgumentError(f"gpus must be at most {max_gpus}")
    if spec.duration_s <= 0:
        raise InvalidArgumentError("the duration (hours) must be positive")
    if spec.duration_s < min_duration_s or spec.duration_s > max_duration_s:
        raise InvalidArgumentError(f"the duration must be between {fmt_duration(min_duration_s)} and "
                                   f"{fmt_duration(max_duration_s)} (got {fmt_duration(spec.duration_s)})")
    if spec.gpu_model and spec.gpu_model not in FINGERPRINTS:
        raise InvalidArgumentError(f"unknown GPU model {spec.gpu_model!r} (known: {', '.join(sorted(FINGERPRINTS))})")
    if spec.max_price_per_gpu_hour <= 0:
        raise InvalidArgumentError("the max price per GPU-hour must be positive")
    if spec.min_vram_bytes < 0 or not math.isfinite(spec.min_tflops) or spec.min_tflops < 0:
        raise InvalidArgumentError("minimum VRAM and TFLOP/s must be finite and not negative")
    if spec.max_price_per_gpu_hour >= 2**88:
        raise InvalidArgumentError("the max price per GPU-hour is out of range")
    return spec


def spec_hash(spec: Spec, ciphertext: bytes) -> bytes:
    """The intents' specHash for ``spec`` and the encrypted payload."""
    doc = {**asdict(spec), "payload_sha256": hashlib.sha256(ciphertext).hexdigest(), "v": 1}
    return keccak256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def check_request_id(request_id: str) -> str:
    if not REQUEST_ID.fullmatch(request_id):
        raise InvalidArgumentError("request_id must be 16-64 characters of A-Z a-z 0-9 _ -")
    return request_id
