"""Keccak-256 and EIP-55 addresses on the hot paths (the king checks every renter's intents with them).

``eth_utils.keccak`` goes through eth-hash's pycryptodome backend, about 20× slower per call here than the
C implementation in ``safe-pysha3``; both compute the same function (a test checks it against eth_utils).
"""

from __future__ import annotations

import functools

from sha3 import keccak_256

_HEX = frozenset("0123456789abcdef")


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's hash, not NIST SHA3-256) of ``data``."""
    return bytes(keccak_256(data).digest())


@functools.lru_cache(maxsize=65536)
def checksum_address(address: str) -> str:
    """``address`` (0x and 40 hex digits, any case) in EIP-55 checksum form.

    Raises:
        ValueError: not an address (the same contract as ``eth_utils.to_checksum_address`` for text).
    """
    if not isinstance(address, str) or len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise ValueError(f"not an address: {str(address)[:80]!r}")
    low = address[2:].lower()
    if not _HEX.issuperset(low):
        raise ValueError(f"not an address: {address[:80]!r}")
    digest = str(keccak_256(low.encode()).hexdigest())
    return "0x" + "".join(c.upper() if d >= "8" else c for c, d in zip(low, digest[:40], strict=True))
