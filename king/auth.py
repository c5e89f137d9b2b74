"""Renter sign-in: a one-use challenge signed with the renter's wallet, then a short-lived session token.

The challenge text is a Sign-In with Ethereum message (EIP-4361, :mod:`blendr.siwe`) that names the king's page
(domain and URI), the chain, the king's address (resource ``blendr:king:<address>``), the challenge id (Request ID,
its nonce the Nonce) and the expiry, so a signature made for one king (or a phishing page) signs nothing another
king accepts, and a wallet shows the renter what they sign.

Guarantees:

- Issuing a challenge stores nothing, so no number of challenge requests can evict or delay anyone's
  sign-in. The challenge id is ``<expires>.<nonce>.<mac>``: an HMAC, under a key this king process draws
  at start, over the king, the chain, the renter's address, the expiry and a random nonce. Sign-in checks the
  MAC (the king issued this challenge to this address), the expiry, and the signature.
- A challenge is used once: its id is remembered from a successful sign-in until it expires, so the
  memory held grows only with signed sign-ins and is freed as they expire. The challenge key does not
  survive a restart, so a sign-in made before a restart cannot be replayed after it (the challenge is
  simply unknown, as before).
- A session token is ``v1.<address>.<expiry>.<hmac>``, HMAC-SHA256 under the king's secret (kept in its
  store, so sessions survive a king restart); it is parsed with bounded field lengths, checked in constant
  time and refused once expired. Any malformed text is an :class:`~blendr.errors.AuthenticationError`.
- Error texts echo at most :data:`ECHO_CHARS` characters of the caller's input.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import secrets
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, to_checksum_address

from blendr.clock import Clock
from blendr.errors import AuthenticationError, InvalidArgumentError
from blendr.siwe import KING_RESOURCE, STATEMENT, SiweMessage, format_message, iso_time
from blendr.store import Store

NS_SECRETS = "king_secrets"
NS_USED = "used_challenges"  # <expires>.<nonce>: challenges signed in with, when kings share a store
ECHO_CHARS = 80
MAX_TOKEN_CHARS = 256

# Every field with a bounded length (no 5,000-digit expiry reaches int()); fullmatch, so no trailing newline.
_CHALLENGE_ID = re.compile(r"([0-9]{1,12})\.([0-9a-f]{32})\.([0-9a-f]{32})")
_TOKEN = re.compile(r"v1\.(0x[0-9a-fA-F]{40})\.([0-9]{1,12})\.[0-9a-f]{64}")
_ADDRESS = re.compile(r"(?:0[xX])?[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    address: str
    message: str
    expires: float


@dataclass(frozen=True)
class SignInOrigin:
    """Where renters sign in: the EIP-4361 domain (the page's host[:port]) and URI (the page's origin URL)."""

    domain: str = "localhost"
    uri: str = "https://localhost/"


def challenge_text(origin: SignInOrigin, king: str, chain_id: int, address: str, challenge_id: str, expires: int,
                   issued: int) -> str:
    """The exact text a renter signs to sign in (EIP-191 personal_sign of an EIP-4361 message); ``challenge_id``
    must be one :class:`Sessions` made (its nonce field is the message's Nonce)."""
    return format_message(SiweMessage(
        domain=origin.domain, address=address, statement=STATEMENT, uri=origin.uri, chain_id=chain_id,
        nonce=challenge_id.split(".")[1], issued_at=iso_time(issued), expiration_time=iso_time(expires),
        request_id=challenge_id, resources=(f"{KING_RESOURCE}{king}",)))


def _echo(text: str) -> str:
    """A caller's value as error texts show it: quoted and cut to :data:`ECHO_CHARS` characters."""
    return repr(text[:ECHO_CHARS]) + ("…" if len(text) > ECHO_CHARS else "")


def _address(text: str) -> str | None:
    """The checksummed address, or None when ``text`` is not one."""
    if not _ADDRESS.fullmatch(text) or not is_address(text):
        return None
    return str(to_checksum_address(text))


class Sessions:
    """Stateless sign-in challenges (used ones remembered until they expire) and HMAC session tokens."""

    def __init__(self, store: Store, clock: Clock, *, king: str, chain_id: int, ttl_s: float = 3600.0,
                 challenge_ttl_s: float = 300.0, shared: bool = False,
                 origin: SignInOrigin | None = None) -> None:
        """``shared``: several kings share ``store`` (king.ha): the challenge key is kept in the store, so a
        challenge one king issued signs in at another, and a used challenge is recorded there, so it signs in once
        across all of them. ``origin``: the page renters sign in at (the sign-in message's domain and URI)."""
        self.clock = clock
        self.origin = origin or SignInOrigin()
        self.king = king
        self.chain_id = chain_id
        self.ttl_s = ttl_s
        self.challenge_ttl_s = challenge_ttl_s
        doc = store.get(NS_SECRETS, "session")
        if doc is None:
            store.put_if_absent(NS_SECRETS, "session", {"key": secrets.token_hex(32)})
            doc = store.get(NS_SECRETS, "session")
        assert doc is not None
        self._key = bytes.fromhex(doc["key"])
        self._store = store if shared else None
        self._challenge_key = self._shared_key(store, "challenge") if shared else secrets.token_bytes(32)
        # Used challenge ids until their expiry: a set to look up, a heap (expires, id) to forget in order.
        self._used: set[str] = set()
        self._used_by_expiry: list[tuple[int, str]] = []

    def challenge(self, address: str) -> Challenge:
        """A fresh challenge for ``address`` (nothing is stored). Raises InvalidArgumentError for a malformed
        address."""
        addr = _address(address)
        if addr is None:
            raise InvalidArgumentError(f"{_echo(address)} is not an Ethereum address")
        expires = int(self.clock.time() + self.challenge_ttl_s)
        nonce = secrets.token_hex(16)
        cid = f"{expires}.{nonce}.{self._challenge_mac(addr, expires, nonce)}"
        return Challenge(cid, addr, self._text(addr, cid, expires), float(expires))

    def sign_in(self, challenge_id: str, address: str, signature: bytes) -> tuple[str, str, float]:
        """Checks the signed challenge (once) and returns ``(token, address, expires)``.

        Raises:
            AuthenticationError: a challenge this king did not issue to ``address``, or one used or expired;
                a malformed signature or one by another key.
        """
        now = self.clock.time()
        m = _CHALLENGE_ID.fullmatch(challenge_id) if len(challenge_id) <= 128 else None
        addr = _address(address)
        if m is None:
            raise AuthenticationError("unknown sign-in challenge; ask for a new one")
        expires, nonce, mac = int(m[1]), m[2], m[3]
        if addr is None or not hmac.compare_digest(self._challenge_mac(addr, expires, nonce), mac):
            raise AuthenticationError("unknown sign-in challenge, or one issued to another address; "
                                      "ask for a new one")
        if expires < now:
            raise AuthenticationError("expired sign-in challenge; ask for a new one")
        self._forget_used(now)
        if challenge_id in self._used:
            raise AuthenticationError("used sign-in challenge (each signs in once); ask for a new one")
        if self._store is not None:
            self._store_forget_used(now)
            if self._store.get(NS_USED, f"{expires:012d}.{nonce}") is not None:
                raise AuthenticationError("used sign-in challenge (each signs in once); ask for a new one")
        message = self._text(addr, challenge_id, expires)
        try:
            signer = Account.recover_message(encode_defunct(text=message), signature=signature)
        except Exception:  # eth_account raises several types for malformed signatures
            raise AuthenticationError("malformed sign-in signature") from None
        if to_checksum_address(signer) != addr:
            raise AuthenticationError("the sign-in signature is not by the renter's key")
        if self._store is not None and not self._store.put_if_absent(NS_USED, f"{expires:012d}.{nonce}", {}):
            raise AuthenticationError("used sign-in challenge (each signs in once); ask for a new one")
        self._used.add(challenge_id)
        heapq.heappush(self._used_by_expiry, (expires, challenge_id))
        session_expires = int(now + self.ttl_s)
        return self._token(addr, session_expires), addr, float(session_expires)

    def verify(self, token: str) -> str:
        """The renter address a token was issued to. Raises AuthenticationError (what to do is in the message)."""
        m = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_CHARS else None
        if m is None:
            raise AuthenticationError("invalid session token; sign in again")
        # No checksumming here (a keccak per call): tokens are made with checksummed addresses, so a token
        # with the address in any other spelling fails the MAC.
        address, expires = m[1], int(m[2])
        if not hmac.compare_digest(self._token(address, expires), token):
            raise AuthenticationError("invalid session token; sign in again")
        if expires < self.clock.time():
            raise AuthenticationError("session expired; sign in again")
        return address

    @property
    def used_challenges(self) -> int:
        """How many used challenge ids are remembered (each until its expiry)."""
        return len(self._used)

    def _text(self, address: str, challenge_id: str, expires: int) -> str:
        # Issued At is derived from the expiry (the challenge lifetime is fixed), so the text is rebuilt exactly.
        issued = expires - int(self.challenge_ttl_s)
        return challenge_text(self.origin, self.king, self.chain_id, address, challenge_id, expires, issued)

    def _challenge_mac(self, address: str, expires: int, nonce: str) -> str:
        text = f"sign-in|{self.king}|{self.chain_id}|{address}|{expires}|{nonce}"
        return hmac.new(self._challenge_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _token(self, address: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{address}|{expires}|{self.king}".encode(), hashlib.sha256).hexdigest()
        return f"v1.{address}.{expires}.{mac}"

    @staticmethod
    def _shared_key(store: Store, name: str) -> bytes:
        store.put_if_absent(NS_SECRETS, name, {"key": secrets.token_hex(32)})
        doc = store.get(NS_SECRETS, name)
        assert doc is not None
        return bytes.fromhex(doc["key"])

    def _store_forget_used(self, now: float) -> None:
        """Drops a few expired used-challenge records from the shared store (keys sort by expiry)."""
        assert self._store is not None
        for key, _ in self._store.scan(NS_USED, "", limit=20):
            if int(key.split(".", 1)[0]) >= now:
                break
            self._store.delete(NS_USED, key)

    def _forget_used(self, now: float) -> None:
        while self._used_by_expiry and self._used_by_expiry[0][0] < now:
            _, cid = heapq.heappop(self._used_by_expiry)
            self._used.discard(cid)
