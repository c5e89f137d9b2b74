"""Types that say units for chain values."""

from __future__ import annotations

from typing import NewType

Wei = NewType("Wei", int)
ChainId = NewType("ChainId", int)
TxHash = NewType("TxHash", str)
BlockNumber = NewType("BlockNumber", int)

TOKEN = 10**18  # one GPUTOKEN in its smallest unit


def tokens(amount: float | int | str) -> Wei:
    """``amount`` whole GPUTOKEN in wei (exact for decimal strings and ints)."""
    from decimal import Decimal

    return Wei(int(Decimal(str(amount)) * TOKEN))
