"""Renter sign-in: a one-use challenge signed with the renter's wallet, then a short-lived session token.

The challenge text names the king, the chain and the expiry, so a signature made for one king (or a phishing
page) signs nothing another king accepts. A challenge is used once: a replayed sign-in is refused. A session
token is ``v1.<address>.<expiry>.<hmac>``, HMAC-SHA256 under the king's secret (kept in its store, so sessions
survive a king restart); it is checked in constant time and refused once expired.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, to_checksum_address

from blendr.clock import Clock
from blendr.errors import AuthenticationError, InvalidArgumentError
from blendr.store import Store

NS_SECRETS = "king_secrets"


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    address: str
    message: str
    expires: float


def challenge_text(king: str, chain_id: int, address: str, challenge_id: str, expires: int) -> str:
    """The exact text a renter signs to sign in (EIP-191 personal_sign)."""
    return (f"BlendrChain sign-in\nking: {king}\nchain: {chain_id}\nrenter: {address}\n"
            f"challenge: {challenge_id}\nexpires: {expires}")


class Sessions:
    """Sign-in challenges (in memory, one use, bounded) and HMAC session tokens."""

    def __init__(self, store: Store, clock: Clock, *, king: str, chain_id: int, ttl_s: float = 3600.0,
                 challenge_ttl_s: float = 300.0, max_pending: int = 10_000) -> None:
        self.clock = clock
        self.king = king
        self.chain_id = chain_id
        self.ttl_s = ttl_s
        self.challenge_ttl_s = challenge_ttl_s
        self.max_pending = max_pending
        doc = store.get(NS_SECRETS, "session")
        if doc is None:
            store.put_if_absent(NS_SECRETS, "session", {"key": secrets.token_hex(32)})
            doc = store.get(NS_SECRETS, "session")
        assert doc is not None
        self._key = bytes.fromhex(doc["key"])
        self._pending: dict[str, Challenge] = {}

    def challenge(self, address: str) -> Challenge:
        """A fresh challenge for ``address``. Raises InvalidArgumentError for a malformed address."""
        if not is_address(address):
            raise InvalidArgumentError(f"{address!r} is not an Ethereum address")
        now = self.clock.time()
        self._expire(now)
        if len(self._pending) >= self.max_pending:
            # Oldest first: a flood of challenges cannot grow memory without bound.
            oldest = min(self._pending.values(), key=lambda c: c.expires)
            del self._pending[oldest.challenge_id]
        cid = secrets.token_hex(16)
        addr = to_checksum_address(address)
        expires = int(now + self.challenge_ttl_s)
        c = Challenge(cid, addr, challenge_text(self.king, self.chain_id, addr, cid, expires), float(expires))
        self._pending[cid] = c
        return c

    def sign_in(self, challenge_id: str, address: str, signature: bytes) -> tuple[str, str, float]:
        """Checks the signed challenge (once) and returns ``(token, address, expires)``.

        Raises:
            AuthenticationError: unknown, used or expired challenge, or a signature by another key.
        """
        now = self.clock.time()
        c = self._pending.pop(challenge_id, None)
        if c is None or c.expires < now:
            raise AuthenticationError("unknown, used or expired sign-in challenge; ask for a new one")
        if not is_address(address) or to_checksum_address(address) != c.address:
            raise AuthenticationError("the challenge was issued to another address")
        try:
            signer = Account.recover_message(encode_defunct(text=c.message), signature=signature)
        except Exception:  # eth_account raises several types for malformed signatures
            raise AuthenticationError("malformed sign-in signature") from None
        if to_checksum_address(signer) != c.address:
            raise AuthenticationError("the sign-in signature is not by the renter's key")
        expires = float(int(now + self.ttl_s))
        return self._token(c.address, int(expires)), c.address, expires

    def verify(self, token: str) -> str:
        """The renter address a token was issued to. Raises AuthenticationError (what to do is in the message)."""
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not is_address(parts[1]) or not parts[2].isdigit():
            raise AuthenticationError("invalid session token; sign in again")
        address, expires = to_checksum_address(parts[1]), int(parts[2])
        if not hmac.compare_digest(self._token(address, expires), token):
            raise AuthenticationError("invalid session token; sign in again")
        if expires < self.clock.time():
            raise AuthenticationError("session expired; sign in again")
        return str(address)

    def _token(self, address: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{address}|{expires}|{self.king}".encode(), hashlib.sha256).hexdigest()
        return f"v1.{address}.{expires}.{mac}"

    def _expire(self, now: float) -> None:
        for cid in [cid for cid, c in self._pending.items() if c.expires < now]:
            del self._pending[cid]
