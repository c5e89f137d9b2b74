"""Units of GPUTOKEN amounts, durations and sizes, and their parsers and formatters: defined here only.

Guarantees: every amount of the token is an ``int`` of wei (``Wei``); parsers refuse malformed, negative or
out-of-range input with :class:`~blendr.errors.InvalidArgumentError` naming the value; decimal strings
convert exactly (no float rounding).
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import NewType

from blendr.errors import InvalidArgumentError

Wei = NewType("Wei", int)
"""An amount of GPUTOKEN in its smallest unit."""

TOKEN = Wei(10**18)
"""One whole GPUTOKEN in wei."""

MAX_WEI_DIGITS = 78  # a uint256 has at most 78 decimal digits


def parse_wei(text: str, what: str) -> Wei:
    """A decimal wei string from the wire (at most 78 ASCII digits: a uint256).

    Raises:
        InvalidArgumentError: ``text`` is empty, signed, not ASCII digits or too long (names ``what``).
    """
    if not text or len(text) > MAX_WEI_DIGITS or not text.isascii() or not text.isdigit():
        raise InvalidArgumentError(f"{what} must be a whole number of wei (got {text[:80]!r})")
    return Wei(int(text))


def parse_tokens(amount: str | float | int, what: str = "amount") -> Wei:
    """``2.5`` (whole GPUTOKEN, a decimal string, int or float) in wei, exactly; sub-wei digits are dropped.

    Raises:
        InvalidArgumentError: the amount is negative, not finite or not a number (names ``what``).
    """
    try:
        d = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidArgumentError(f"{what} must be a number of GPUTOKEN (got {str(amount)[:80]!r})") from None
    if not d.is_finite() or d < 0:
        raise InvalidArgumentError(f"{what} must be a non-negative number of GPUTOKEN (got {str(amount)[:80]!r})")
    return Wei(int(d * TOKEN))


def tokens(amount: str | float | int) -> Wei:
    """``amount`` whole GPUTOKEN in wei (for amounts written in code and config): :func:`parse_tokens`."""
    return parse_tokens(amount)


def fmt_tokens(wei: int, places: int = 6) -> str:
    """Wei as GPUTOKEN with at most ``places`` decimals, rounded, trailing zeros dropped (``2.5``, ``-0.1``)."""
    q = Decimal(wei) / TOKEN
    text = f"{q:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def fmt_duration(seconds: float) -> str:
    """Seconds as ``2 h``, ``1.50 h``, ``5 min`` or ``42 s`` (whole seconds)."""
    s = int(seconds)
    if s % 3600 == 0 and s >= 3600:
        return f"{s // 3600} h"
    if s >= 3600:
        return f"{s / 3600:.2f} h"
    if s % 60 == 0 and s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


_DURATION_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str = "duration") -> float:
    """``90``, ``90s``, ``30m``/``30min``, ``2h``, ``1.5h`` or ``1d`` as seconds (> 0).

    Raises:
        InvalidArgumentError: anything else.
    """
    t = text.strip().lower()
    unit = next((u for u in sorted(_DURATION_UNITS, key=len, reverse=True) if t.endswith(u)), "")
    try:
        value = float(t[: len(t) - len(unit)].strip()) * _DURATION_UNITS.get(unit, 1)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{what} {text[:40]!r}: give a positive duration such as 90s, 30m, 2h or 1d")
    return value


def fmt_bytes(n: int) -> str:
    """A size as ``1.5 GiB``, ``3.0 MiB``, ``2.0 KiB`` or ``12 bytes``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
