"""Renter sign-in: one-use challenges, HMAC session tokens, expiry, forgery."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from blendr.errors import AuthenticationError, InvalidArgumentError
from blendr.store import MemoryStore
from king.auth import Sessions


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


KING = Account.create().address


def sessions(store: MemoryStore | None = None, clock: Clock | None = None) -> tuple[Sessions, Clock]:
    c = clock or Clock()
    return Sessions(store or MemoryStore(), c, king=KING, chain_id=31337, ttl_s=600, challenge_ttl_s=60), c


def signed(acct: object, message: str) -> bytes:
    return bytes(acct.sign_message(encode_defunct(text=message)).signature)  # type: ignore[attr-defined]


def test_sign_in_gives_a_token_that_verifies_to_the_renter() -> None:
    s, _ = sessions()
    renter = Account.create()
    c = s.challenge(renter.address.lower())
    assert KING in c.message and "chain: 31337" in c.message and renter.address in c.message
    token, addr, expires = s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    assert addr == renter.address and expires == 1_000_600
    assert s.verify(token) == renter.address


def test_a_challenge_is_used_once() -> None:
    s, _ = sessions()
    renter = Account.create()
    c = s.challenge(renter.address)
    sig = signed(renter, c.message)
    s.sign_in(c.challenge_id, renter.address, sig)
    with pytest.raises(AuthenticationError, match="unknown, used or expired"):
        s.sign_in(c.challenge_id, renter.address, sig)


def test_a_signature_by_another_key_or_for_another_address_is_refused() -> None:
    s, _ = sessions()
    renter, mallory = Account.create(), Account.create()
    c = s.challenge(renter.address)
    with pytest.raises(AuthenticationError, match="not by the renter's key"):
        s.sign_in(c.challenge_id, renter.address, signed(mallory, c.message))
    c = s.challenge(renter.address)
    with pytest.raises(AuthenticationError, match="another address"):
        s.sign_in(c.challenge_id, mallory.address, signed(mallory, c.message))
    c = s.challenge(renter.address)
    with pytest.raises(AuthenticationError, match="malformed"):
        s.sign_in(c.challenge_id, renter.address, b"\x01" * 10)


def test_expired_challenges_and_sessions_are_refused() -> None:
    s, clock = sessions()
    renter = Account.create()
    c = s.challenge(renter.address)
    clock.t += 61
    with pytest.raises(AuthenticationError, match="expired"):
        s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    c = s.challenge(renter.address)
    token, _, _ = s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    clock.t += 601
    with pytest.raises(AuthenticationError, match="session expired; sign in again"):
        s.verify(token)


def test_forged_tokens_are_refused_and_tokens_survive_a_restart() -> None:
    store = MemoryStore()
    s, clock = sessions(store)
    renter, mallory = Account.create(), Account.create()
    c = s.challenge(renter.address)
    token, _, _ = s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    forged = token.replace(renter.address, mallory.address)
    for bad in (forged, token[:-1] + ("0" if token[-1] != "0" else "1"), "v1.nope", "", "Bearer x"):
        with pytest.raises(AuthenticationError, match="invalid session token"):
            s.verify(bad)
    # a restarted king (same store: same secret) still accepts the session; another king's store does not
    again, _ = sessions(store, clock)
    assert again.verify(token) == renter.address
    other, _ = sessions(MemoryStore(), clock)
    with pytest.raises(AuthenticationError):
        other.verify(token)


def test_a_bad_address_is_an_invalid_argument_and_pending_challenges_are_bounded() -> None:
    s, _ = sessions()
    with pytest.raises(InvalidArgumentError):
        s.challenge("0x123")
    s.max_pending = 5
    for _ in range(20):
        s.challenge(Account.create().address)
    assert len(s._pending) == 5
