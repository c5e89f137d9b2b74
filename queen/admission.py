"""Admission of providers: a fresh nonce per connection, a signature over it, and a stake oracle.

The stake oracle answers whether an address may join. Here: an allowlist kept in the queen's store
(``blendr queen allow ADDRESS``) or an open pool; the on-chain adapter reading ``StakingManager`` arrives
with the contracts.
"""

from __future__ import annotations

import abc
import secrets
from dataclasses import dataclass

from blendr.clock import Clock
from blendr.errors import PermissionDeniedError, SignatureError
from blendr.identity import Address, recover_admission, to_address
from blendr.store import Store

NS_ALLOWLIST = "allowlist"


@dataclass(frozen=True)
class StakeDecision:
    allowed: bool
    reason: str


class StakeOracle(abc.ABC):
    """Decides whether an authenticated address may join the pool."""

    @abc.abstractmethod
    def check(self, address: Address) -> StakeDecision:
        """Whether ``address`` may join, with a reason a provider operator can act on."""


class OpenOracle(StakeOracle):
    """Any address with a valid signature may join (devnets, tests)."""

    def check(self, address: Address) -> StakeDecision:
        return StakeDecision(True, "open pool")


class AllowlistOracle(StakeOracle):
    """Addresses in the queen's store allowlist may join."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def allow(self, address: str, note: str = "") -> Address:
        addr = to_address(address)
        self._store.put(NS_ALLOWLIST, addr, {"added": self._clock.time(), "note": note})
        return addr

    def deny(self, address: str) -> bool:
        return self._store.delete(NS_ALLOWLIST, to_address(address))

    def list(self) -> list[Address]:
        return [Address(k) for k, _ in self._store.scan(NS_ALLOWLIST)]

    def check(self, address: Address) -> StakeDecision:
        if self._store.get(NS_ALLOWLIST, address) is None:
            return StakeDecision(
                False, f"{address} is not on this queen's allowlist (operator: `blendr queen allow {address}`)"
            )
        return StakeDecision(True, "allowlisted")


class Admission:
    """Issues single-use nonces and admits providers whose signature and stake check out."""

    def __init__(self, queen: Address, oracle: StakeOracle) -> None:
        self.queen = queen
        self._oracle = oracle

    @property
    def oracle(self) -> StakeOracle:
        """Who decides whether an address may join."""
        return self._oracle

    @staticmethod
    def new_nonce() -> bytes:
        return secrets.token_bytes(32)

    def verify(self, provider: Address, nonce: bytes, signature: bytes) -> Address:
        """Check the provider's signature over ``nonce`` and its right to join.

        Raises:
            SignatureError: bad, foreign (another key) or replayed (another nonce) signature.
            PermissionDeniedError: the stake oracle refuses the address.
        """
        addr = recover_admission(self.queen, provider, nonce, signature)
        decision = self._oracle.check(addr)
        if not decision.allowed:
            raise PermissionDeniedError(decision.reason)
        return addr


__all__ = ["Admission", "AllowlistOracle", "OpenOracle", "SignatureError", "StakeDecision", "StakeOracle"]
