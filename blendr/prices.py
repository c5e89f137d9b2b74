"""The reference price per GPU-hour of each known GPU model (GPUTOKEN wei), shared by the king's quotes
(:mod:`king.pricing`) and the voucher classes a deployment lists (:mod:`blendr.chain.deploy`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from blendr.units import tokens

DEFAULT_BASE_PER_GPU_HOUR: Mapping[str, int] = MappingProxyType(
    {
        # Reference prices per GPU-hour, keyed like blendr.proof.fingerprints (one entry per known model).
        "h200": tokens("3.0"),
        "h100-sxm": tokens("2.5"),
        "h100-pcie": tokens("2.2"),
        "a100-80gb": tokens("1.5"),
        "a100-40gb": tokens("1.2"),
        "l40s": tokens("1.0"),
        "rtx-4090": tokens("0.5"),
        "v100": tokens("0.5"),
        "v100-pcie": tokens("0.45"),
        "a10": tokens("0.4"),
        "v100-16gb": tokens("0.4"),
        "v100-pcie-16gb": tokens("0.35"),
        "rtx-3090": tokens("0.3"),
        "t4": tokens("0.15"),
        "cpu": tokens("0.05"),
    }
)

__all__ = ["DEFAULT_BASE_PER_GPU_HOUR"]
