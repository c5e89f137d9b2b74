"""Types that say units for chain values (token amounts: :mod:`blendr.units`)."""

from __future__ import annotations

from typing import NewType

ChainId = NewType("ChainId", int)
TxHash = NewType("TxHash", str)
BlockNumber = NewType("BlockNumber", int)
