"""Quotes per GPU model from supply and demand, inside the governance bounds (pure domain code).

A quote is the network's price for one GPU-hour of a model right now: the model's base price, raised
with the model's utilization (``base × (1 + surge × utilization²)``), clamped to the governance bounds,
and never below the cheapest ask of a provider of that model (asks are floors: no provider sells below
its own). What a renter pays for a placement is ``max(provider ask, quote)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from blendr.prices import DEFAULT_BASE_PER_GPU_HOUR
from blendr.units import TOKEN, tokens

Wei = int
"""An amount of the token in wei (1 token = 10**18 wei)."""

__all__ = ["DEFAULT_BASE_PER_GPU_HOUR", "TOKEN", "Pricer", "PricingParams", "Wei", "format_tokens", "tokens"]
_PPM = 1_000_000  # surge factors are applied in parts per million, so quotes are exact integers




@dataclass(frozen=True)
class PricingParams:
    """The pricing parameters (governance owns them).

    Attributes:
        base_per_gpu_hour: Base price per GPU-hour of each model at zero utilization, in wei. A model
            without an entry is priced from its cheapest ask (or ``min_per_gpu_hour`` when there is none).
        min_per_gpu_hour: Lower governance bound of a quote, in wei.
        max_per_gpu_hour: Upper governance bound of a quote, in wei (a provider ask above it still
            sets that provider's own price: the bound caps surge, not asks).
        surge: How much the price rises with utilization: at full utilization the quote is
            ``base × (1 + surge)``.
    """

    base_per_gpu_hour: Mapping[str, Wei] = field(default_factory=lambda: dict(DEFAULT_BASE_PER_GPU_HOUR))
    min_per_gpu_hour: Wei = TOKEN // 100
    max_per_gpu_hour: Wei = 50 * TOKEN
    surge: float = 1.0

    def __post_init__(self) -> None:
        if self.min_per_gpu_hour < 0 or self.max_per_gpu_hour < self.min_per_gpu_hour:
            raise ValueError("pricing bounds need 0 <= min_per_gpu_hour <= max_per_gpu_hour")
        if not math.isfinite(self.surge) or self.surge < 0:
            raise ValueError("surge must be a finite number >= 0")
        bad = sorted(model for model, price in self.base_per_gpu_hour.items() if price < 0)
        if bad:
            raise ValueError(f"base prices must be >= 0 (negative for {', '.join(bad)})")


class Pricer:
    """Quotes per GPU model; deterministic, no state beyond its parameters."""

    def __init__(self, params: PricingParams | None = None) -> None:
        self.params = params if params is not None else PricingParams()

    def quote(self, gpu_model: str, utilization: float, min_ask: Wei | None = None) -> Wei:
        """Returns the price of one GPU-hour of ``gpu_model`` in wei.

        Args:
            gpu_model: Fingerprint key of the model.
            utilization: Reserved / offered GPUs of that model, 0..1 (values outside are clamped).
            min_ask: The cheapest ask of a provider of that model, if any; the quote is never below it.

        Returns:
            ``base × (1 + surge × utilization²)`` clamped to the governance bounds, then raised to
            ``min_ask``. Non-decreasing in ``utilization`` and in ``min_ask``.

        Raises:
            ValueError: ``utilization`` is NaN, or ``min_ask`` is negative.
        """
        if math.isnan(utilization):
            raise ValueError("utilization must be a number")
        if min_ask is not None and min_ask < 0:
            raise ValueError("min_ask must be >= 0")
        p = self.params
        u = min(1.0, max(0.0, utilization))
        base = p.base_per_gpu_hour.get(gpu_model)
        if base is None:
            base = min_ask if min_ask is not None else p.min_per_gpu_hour
        factor_ppm = round(p.surge * u * u * _PPM)
        price = base + base * factor_ppm // _PPM
        price = min(p.max_per_gpu_hour, max(p.min_per_gpu_hour, price))
        if min_ask is not None:
            price = max(price, min_ask)
        return price


def format_tokens(wei: Wei) -> str:
    """Formats an amount in tokens with up to 2 decimals and at least one: ``"3.0"``, ``"2.5"``, ``"0.15"``.

    A positive amount under 0.005 tokens shows as ``"<0.01"`` rather than as zero.
    """
    if 0 < wei < TOKEN // 200:
        return "<0.01"
    text = f"{wei / TOKEN:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
