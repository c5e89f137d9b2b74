"""Types that say units for chain values (token amounts: :mod:`blendr.units`)."""

from __future__ import annotations

from typing import NewType

# Re-exported for king/pricing.py, bench/ (gas.py, relay.py) and tests (relay_net.py, contracts/test_system.py)
# until they import these from blendr.units.
from blendr.units import TOKEN as TOKEN
from blendr.units import Wei as Wei
from blendr.units import tokens as tokens

ChainId = NewType("ChainId", int)
TxHash = NewType("TxHash", str)
BlockNumber = NewType("BlockNumber", int)
