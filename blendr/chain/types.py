"""Types that say units for chain values (token amounts: :mod:`blendr.units`)."""

from __future__ import annotations

from typing import NewType

# Re-exported for king/pricing.py and bench/ (gas.py, relay.py, scheduler.py) until they import blendr.units.
from blendr.units import TOKEN as TOKEN
from blendr.units import Wei as Wei
from blendr.units import tokens as tokens

ChainId = NewType("ChainId", int)
TxHash = NewType("TxHash", str)
BlockNumber = NewType("BlockNumber", int)
