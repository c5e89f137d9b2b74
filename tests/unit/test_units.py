"""GPUTOKEN amounts, durations and sizes: the one place they are parsed and formatted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blendr.errors import InvalidArgumentError
from blendr.units import TOKEN, fmt_bytes, fmt_duration, fmt_tokens, parse_tokens, parse_wei, tokens


def test_one_token_is_ten_to_the_eighteen_wei() -> None:
    assert TOKEN == 10**18 == tokens(1) == parse_tokens("1")


@pytest.mark.parametrize(("amount", "wei"), [
    ("2.5", 25 * 10**17), (3, 3 * 10**18), (0.1, 10**17), ("0", 0), ("0.000000000000000001", 1),
    ("0.0000000000000000019", 1),  # below one wei: dropped, never rounded up
])
def test_parse_tokens_is_exact_for_decimal_text(amount: str | float | int, wei: int) -> None:
    assert parse_tokens(amount) == wei


@pytest.mark.parametrize("amount", ["-1", "abc", "", "nan", "inf", "1e"])
def test_parse_tokens_refuses_what_is_not_a_non_negative_number(amount: str) -> None:
    with pytest.raises(InvalidArgumentError, match="max price"):
        parse_tokens(amount, "max price")


@pytest.mark.parametrize("text", ["", "-1", "1.5", "0x10", "1e18", " 1", "١", "9" * 79])
def test_parse_wei_refuses_anything_but_plain_ascii_digits(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="permit value must be a whole number of wei"):
        parse_wei(text, "permit value")


def test_parse_wei_takes_a_uint256() -> None:
    assert parse_wei("9" * 78, "x") == int("9" * 78)
    assert parse_wei("0", "x") == 0


@pytest.mark.parametrize(("wei", "places", "text"), [
    (25 * 10**17, 6, "2.5"), (0, 6, "0"), (10**18, 6, "1"), (10, 6, "0"), (-10**17, 6, "-0.1"), (-10, 6, "0"),
    (1_234_567 * 10**12, 2, "1.23"), (30 * 10**18, 0, "30"), (5 * 10**17, 0, "0"),
])
def test_fmt_tokens(wei: int, places: int, text: str) -> None:
    assert fmt_tokens(wei, places) == text


@given(st.integers(min_value=0, max_value=10**30))
def test_fmt_tokens_then_parse_tokens_round_trips_to_the_microtoken(wei: int) -> None:
    assert abs(parse_tokens(fmt_tokens(wei)) - wei) <= TOKEN // 10**6 // 2


@pytest.mark.parametrize(("seconds", "text"), [
    (7200, "2 h"), (5400, "1.50 h"), (300, "5 min"), (90, "90 s"), (0, "0 s"), (59.9, "59 s"),
])
def test_fmt_duration(seconds: float, text: str) -> None:
    assert fmt_duration(seconds) == text


@pytest.mark.parametrize(("n", "text"), [(12, "12 bytes"), (2048, "2.0 KiB"), (3 * 2**20, "3.0 MiB"),
                                         (3 * 2**29, "1.5 GiB")])
def test_fmt_bytes(n: int, text: str) -> None:
    assert fmt_bytes(n) == text
