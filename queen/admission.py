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
from blendr.identity import Address, _admission_message, recover_admission, to_address
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


def recover_admission_key(queen: str, provider: str, nonce: bytes, signature: bytes) -> bytes:
    """The 64-byte uncompressed secp256k1 public key (x || y) that made an admission signature.

    Call it on a signature :meth:`Admission.verify` accepted: the key's address is then the provider's.
    The king seals renters' payload keys to it, so nobody but the provider can read a job.

    Raises:
        SignatureError: the signature does not recover to ``provider``.
    """
    from eth_keys.datatypes import Signature
    from eth_utils import keccak

    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes (got {len(signature)})")
    m = _admission_message(queen, provider, nonce)
    digest = keccak(b"\x19" + m.version + m.header + m.body)
    v = signature[64]
    try:
        sig = Signature(vrs=(v - 27 if v >= 27 else v, int.from_bytes(signature[:32], "big"),
                                  int.from_bytes(signature[32:64], "big")))
        pub = sig.recover_public_key_from_msg_hash(digest)
    except Exception as exc:  # eth-keys raises BadSignature, ValidationError, ...
        raise SignatureError(f"bad signature: {type(exc).__name__}") from None
    if to_address(pub.to_checksum_address()) != to_address(provider):
        raise SignatureError("signature was not made by the provider's key")
    return bytes(pub.to_bytes())


__all__ = ["Admission", "AllowlistOracle", "OpenOracle", "SignatureError", "StakeDecision", "StakeOracle",
           "recover_admission_key"]
