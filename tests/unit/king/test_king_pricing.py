"""Quotes per GPU model: base price raised by utilization, governance bounds, asks as floors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blendr.proof.fingerprints import FINGERPRINTS
from king.pricing import DEFAULT_BASE_PER_GPU_HOUR, TOKEN, Pricer, PricingParams, format_tokens, tokens

BASES = {"h100-sxm": tokens("2.5"), "cpu": tokens("0.05")}


def pricer(**kw: object) -> Pricer:
    params: dict[str, object] = {
        "base_per_gpu_hour": BASES,
        "min_per_gpu_hour": tokens("0.1"),
        "max_per_gpu_hour": tokens("4"),
        "surge": 1.0,
    }
    params.update(kw)
    return Pricer(PricingParams(**params))  # type: ignore[arg-type]


def test_tokens_are_exact_wei() -> None:
    assert tokens("2.5") == 25 * 10**17
    assert tokens(1) == TOKEN == 10**18
    assert tokens("0.000000000000000001") == 1


def test_every_known_model_has_a_default_base_price() -> None:
    assert set(FINGERPRINTS) <= set(DEFAULT_BASE_PER_GPU_HOUR)
    assert DEFAULT_BASE_PER_GPU_HOUR["h100-sxm"] == tokens("2.5")
    assert DEFAULT_BASE_PER_GPU_HOUR["a100-80gb"] == tokens("1.5")
    assert DEFAULT_BASE_PER_GPU_HOUR["rtx-4090"] == tokens("0.5")
    assert DEFAULT_BASE_PER_GPU_HOUR["cpu"] == tokens("0.05")


def test_default_params_quote_the_base_price_when_idle() -> None:
    p = Pricer()
    assert p.quote("h100-sxm", 0.0) == tokens("2.5")
    assert p.quote("h100-sxm", 1.0) == tokens("5.0")  # surge 1.0 doubles the price at full utilization


def test_quote_rises_with_the_square_of_utilization() -> None:
    p = pricer(max_per_gpu_hour=tokens("100"))
    assert p.quote("h100-sxm", 0.0) == tokens("2.5")
    assert p.quote("h100-sxm", 0.5) == tokens("3.125")  # 2.5 × (1 + 0.25)
    assert p.quote("h100-sxm", 1.0) == tokens("5")


def test_quote_is_clamped_to_the_governance_bounds() -> None:
    p = pricer()
    assert p.quote("h100-sxm", 1.0) == tokens("4")  # 5.0 capped at max
    assert p.quote("cpu", 0.0) == tokens("0.1")  # 0.05 raised to min


def test_quote_never_below_the_cheapest_ask_even_above_the_max_bound() -> None:
    p = pricer()
    assert p.quote("h100-sxm", 0.0, min_ask=tokens("3")) == tokens("3")
    assert p.quote("h100-sxm", 0.0, min_ask=tokens("1")) == tokens("2.5")
    assert p.quote("h100-sxm", 0.0, min_ask=tokens("9")) == tokens("9")


def test_model_without_a_base_price_is_priced_from_its_cheapest_ask_or_the_minimum() -> None:
    p = pricer()
    assert p.quote("l40s", 0.0, min_ask=tokens("1")) == tokens("1")
    assert p.quote("l40s", 1.0, min_ask=tokens("1")) == tokens("2")
    assert p.quote("l40s", 0.0) == tokens("0.1")


def test_utilization_outside_0_1_is_clamped_and_nan_rejected() -> None:
    p = pricer(max_per_gpu_hour=tokens("100"))
    assert p.quote("h100-sxm", -3.0) == p.quote("h100-sxm", 0.0)
    assert p.quote("h100-sxm", 7.0) == p.quote("h100-sxm", 1.0)
    with pytest.raises(ValueError, match="utilization"):
        p.quote("h100-sxm", math.nan)
    with pytest.raises(ValueError, match="min_ask"):
        p.quote("h100-sxm", 0.5, min_ask=-1)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"min_per_gpu_hour": -1}, "bounds"),
        ({"min_per_gpu_hour": 10, "max_per_gpu_hour": 9}, "bounds"),
        ({"surge": -0.1}, "surge"),
        ({"surge": math.inf}, "surge"),
        ({"base_per_gpu_hour": {"t4": -1}}, "t4"),
    ],
)
def test_invalid_params_are_rejected(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pricer(**kw)


@pytest.mark.parametrize(
    ("wei", "text"),
    [
        (tokens("3"), "3.0"),
        (tokens("2.5"), "2.5"),
        (tokens("0.15"), "0.15"),
        (tokens("1.239"), "1.24"),
        (0, "0.0"),
        (tokens("0.001"), "<0.01"),
        (tokens("1234"), "1234.0"),
    ],
)
def test_format_tokens(wei: int, text: str) -> None:
    assert format_tokens(wei) == text


models = st.sampled_from(["h100-sxm", "cpu", "l40s"])
utils = st.floats(min_value=0.0, max_value=1.0)
asks = st.none() | st.integers(min_value=0, max_value=tokens("10"))
surges = st.floats(min_value=0.0, max_value=5.0)


@given(models, utils, utils, asks, surges)
def test_quote_is_monotone_in_utilization(
    model: str, u1: float, u2: float, ask: int | None, surge: float
) -> None:
    p = pricer(surge=surge)
    lo, hi = sorted((u1, u2))
    assert p.quote(model, lo, ask) <= p.quote(model, hi, ask)


@given(models, utils, st.integers(0, tokens("10")), st.integers(0, tokens("10")), surges)
def test_quote_is_monotone_in_min_ask(model: str, u: float, a1: int, a2: int, surge: float) -> None:
    p = pricer(surge=surge)
    lo, hi = sorted((a1, a2))
    assert p.quote(model, u, lo) <= p.quote(model, u, hi)


@given(models, utils, asks, surges)
def test_quote_is_within_bounds_or_at_the_cheapest_ask(
    model: str, u: float, ask: int | None, surge: float
) -> None:
    p = pricer(surge=surge)
    q = p.quote(model, u, ask)
    assert q == p.quote(model, u, ask)  # deterministic
    assert q >= p.params.min_per_gpu_hour
    if ask is not None:
        assert q >= ask
        assert q <= max(p.params.max_per_gpu_hour, ask)
    else:
        assert q <= p.params.max_per_gpu_hour
