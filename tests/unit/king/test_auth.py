"""Renter sign-in: stateless one-use challenges, HMAC session tokens, expiry, forgery, hostile input."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import AuthenticationError, InvalidArgumentError
from blendr.siwe import STATEMENT, iso_time, parse_message
from blendr.store import MemoryStore
from king.auth import ECHO_CHARS, Sessions


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
    assert KING in c.message and "Chain ID: 31337" in c.message and renter.address in c.message
    token, addr, expires = s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    assert addr == renter.address and expires == 1_000_600
    assert s.verify(token) == renter.address


def test_a_challenge_is_used_once() -> None:
    s, _ = sessions()
    renter = Account.create()
    c = s.challenge(renter.address)
    sig = signed(renter, c.message)
    s.sign_in(c.challenge_id, renter.address, sig)
    with pytest.raises(AuthenticationError, match="used sign-in challenge"):
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
    with pytest.raises(AuthenticationError, match="expired sign-in challenge"):
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


def test_a_bad_address_is_an_invalid_argument_echoed_short() -> None:
    s, _ = sessions()
    for bad in ("0x123", "", "0x" + "g" * 40, Account.create().address + "\n", "x" * (1 << 20)):
        with pytest.raises(InvalidArgumentError) as info:
            s.challenge(bad)
        assert len(str(info.value)) < ECHO_CHARS + 40


def test_a_flood_of_challenges_stores_nothing_and_blocks_no_one() -> None:
    s, _ = sessions()
    renter = Account.create()
    c = s.challenge(renter.address)
    def state() -> dict[str, object]:  # copies of every container the sessions hold (not the same objects)
        return {k: copy.copy(v) for k, v in vars(s).items() if isinstance(v, set | list | dict)}

    before = state()
    assert before  # the used-challenge record is there to compare
    for _ in range(10_001):  # one more than the old pending list held
        s.challenge(renter.address)
    assert state() == before and s.used_challenges == 0
    token, addr, _ = s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    assert addr == renter.address and s.verify(token) == renter.address


def test_used_challenges_are_forgotten_when_they_expire() -> None:
    s, clock = sessions()
    renters = [Account.create() for _ in range(3)]
    for r in renters:
        c = s.challenge(r.address)
        s.sign_in(c.challenge_id, r.address, signed(r, c.message))
    assert s.used_challenges == 3
    clock.t += 61
    late = renters[0]
    c = s.challenge(late.address)
    s.sign_in(c.challenge_id, late.address, signed(late, c.message))
    assert s.used_challenges == 1


def test_a_challenge_id_cannot_be_forged_or_moved_to_another_expiry() -> None:
    s, clock = sessions()
    renter = Account.create()
    c = s.challenge(renter.address)
    expires, nonce, mac = c.challenge_id.split(".")
    assert int(expires) == c.expires == 1_000_060
    later = f"{int(expires) + 3600}.{nonce}.{mac}"
    other_nonce = f"{expires}.{'0' * 32}.{mac}"
    flipped = f"{expires}.{nonce}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}"
    for forged in (later, other_nonce, flipped):
        message = c.message.replace(c.challenge_id, forged)
        with pytest.raises(AuthenticationError, match="unknown sign-in challenge"):
            s.sign_in(forged, renter.address, signed(renter, message))
    # the same id from another king process (another challenge key) is unknown there
    other, _ = sessions(clock=clock)
    with pytest.raises(AuthenticationError, match="unknown sign-in challenge"):
        other.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    # and still good here
    s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))


def test_the_text_is_what_the_sdk_checks_and_lowercase_addresses_are_accepted() -> None:
    s, _ = sessions()
    renter = Account.create()
    c = s.challenge(renter.address.lower())
    m = parse_message(c.message)
    assert (m.address, m.chain_id, m.request_id, m.nonce) == (renter.address, 31337, c.challenge_id,
                                                              c.challenge_id.split(".")[1])
    assert m.resources == (f"blendr:king:{KING}",) and m.statement == STATEMENT
    assert m.expiration_time == iso_time(c.expires) and m.domain == "localhost"
    token, addr, _ = s.sign_in(c.challenge_id, renter.address.lower(), signed(renter, c.message))
    assert addr == renter.address and s.verify(token) == renter.address


@pytest.mark.parametrize("challenge_id", [
    "", "x", "1.2.3", "9" * 5000 + "." + "a" * 32 + "." + "a" * 32, "1000060." + "a" * 32 + "." + "a" * 32 + "\n",
    "١٠٠٠٠٦٠." + "a" * 32 + "." + "a" * 32, "a" * 100_000,
])
def test_malformed_challenge_ids_are_unknown(challenge_id: str) -> None:
    s, _ = sessions()
    renter = Account.create()
    with pytest.raises(AuthenticationError, match="unknown sign-in challenge"):
        s.sign_in(challenge_id, renter.address, b"\x00" * 65)


def test_a_huge_expiry_or_odd_digits_in_a_token_are_invalid_tokens() -> None:
    s, _ = sessions()
    renter = Account.create()
    c = s.challenge(renter.address)
    token, _, _ = s.sign_in(c.challenge_id, renter.address, signed(renter, c.message))
    _, addr, expires, mac = token.split(".")
    for bad in (f"v1.{addr}.{'9' * 5000}.{mac}", f"v1.{addr}.²{expires}.{mac}", f"v1.{addr}.١٢.{mac}",
                token + "\n", token + ".", f"v1.{addr.lower()}.{expires}.{mac}", f"v1.{addr}.{expires}.{mac.upper()}",
                "v1." + "." * 10_000, "\x00" * 300):
        with pytest.raises(AuthenticationError, match="invalid session token"):
            s.verify(bad)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=400),
    st.builds(lambda a, e, m: f"v1.{a}.{e}.{m}", st.text(max_size=50), st.text(max_size=30), st.text(max_size=80)),
    st.builds(lambda e, m: f"v1.{KING}.{e}.{m}", st.text(alphabet="0123456789²١", max_size=30),
              st.text(alphabet="0123456789abcdef", min_size=60, max_size=68)),
    st.just(""),  # replaced by the valid token below
    st.builds(lambda i, c: (i, c), st.integers(0, 200), st.characters()),  # one character of it changed
))
def test_any_string_is_an_authentication_error_or_a_session(token: str | tuple[int, str]) -> None:
    s, _ = FUZZ
    if token == "":
        token = VALID
    elif isinstance(token, tuple):
        i, c = token
        token = VALID[:i % len(VALID)] + c + VALID[i % len(VALID) + 1:]
    try:
        address = s.verify(token)
    except AuthenticationError:
        return
    assert token == VALID and address == FUZZ_RENTER.address  # only the token this king made verifies


FUZZ = sessions()
FUZZ_RENTER = Account.create()
_c = FUZZ[0].challenge(FUZZ_RENTER.address)
VALID = FUZZ[0].sign_in(_c.challenge_id, FUZZ_RENTER.address, signed(FUZZ_RENTER, _c.message))[0]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=60), st.binary(max_size=80))
def test_any_sign_in_input_is_an_authentication_error(challenge_id: str, address: str, signature: bytes) -> None:
    s, _ = FUZZ
    with pytest.raises(AuthenticationError):
        s.sign_in(challenge_id, address, signature)


# --- through a real grpc.aio server: the renter gateway's sign-in, as hostile clients meet it ----------------


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Sessions, int]]:
    from blendr.config import load_config
    from blendr.rpc.server import start_server
    from king.gateway import RenterGatewayServicer
    from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc

    s, _ = sessions(clock=Clock())
    s.clock.t = time.time()  # type: ignore[attr-defined]  # the SDK compares expiries with its own clock
    cfg = load_config(tmp_path, overrides={"rpc.tls": False, "metrics.port": -1}, env={})
    # Sign-in and authentication never reach the core: a core that is not there proves it.
    servicer = RenterGatewayServicer(None, s)  # type: ignore[arg-type]
    handle = await start_server(cfg, "127.0.0.1:0", [lambda srv: rpb_grpc.add_RenterGatewayServicer_to_server(
        servicer, srv)], service_names=["blendr.v1.RenterGateway"])
    yield s, handle.port
    await handle.stop(None)


async def test_sign_in_through_the_gateway_with_exact_codes(gateway: tuple[Sessions, int]) -> None:
    from blendr.client import KingClient
    from protos.blendr.v1 import renter_pb2 as rpb
    from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc

    s, port = gateway
    renter = Account.create()
    async with KingClient(f"127.0.0.1:{port}", renter, insecure=True, timeout_s=10) as king:
        token = await king.sign_in()  # the SDK's own checks of the challenge text pass
    assert s.verify(token) == renter.address
    _, addr, expires, mac = token.split(".")

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = rpb_grpc.RenterGatewayStub(channel)

        async def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            return info.value.code(), info.value.details() or ""

        code, details = await code_of(stub.GetSignInChallenge(
            rpb.SignInChallengeRequest(address="0x" + "z" * (1 << 20)), timeout=10))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and len(details) < ECHO_CHARS + 40

        raw = channel.unary_unary("/blendr.v1.RenterGateway/GetSignInChallenge")
        code, details = await code_of(raw(b"\x0a\xff\xff\xff\xff\x0f", timeout=10))
        assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT,
                                   "the request could not be decoded as blendr.v1.SignInChallengeRequest")

        c = await stub.GetSignInChallenge(rpb.SignInChallengeRequest(address=renter.address), timeout=10)
        sig = signed(renter, c.message)
        request = rpb.SignInRequest(challenge_id=c.challenge_id, address=renter.address, signature=sig)
        assert (await stub.SignIn(request, timeout=10)).address == renter.address
        code, details = await code_of(stub.SignIn(request, timeout=10))  # replayed
        assert code == grpc.StatusCode.UNAUTHENTICATED and "used sign-in challenge" in details
        code, _ = await code_of(stub.SignIn(rpb.SignInRequest(challenge_id="9" * 5000, address=renter.address,
                                                              signature=sig), timeout=10))
        assert code == grpc.StatusCode.UNAUTHENTICATED

        for bad in (f"v1.{addr}.{'9' * 5000}.{mac}", f"v1.{addr}.0{expires}.{mac}", "v1.x", token + "0"):
            code, details = await code_of(stub.GetQuote(rpb.QuoteRequest(), metadata=(("authorization",
                                                                                      f"Bearer {bad}"),),
                                                        timeout=10))
            assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "invalid session token; sign in again")


def test_kings_sharing_a_store_share_challenges_and_use_each_once_across_them() -> None:
    """Several kings on one store (king.ha): a challenge one issued signs in at another, once across all of them,
    and a token one issued verifies at every one; a king alone keeps its challenge key to itself."""
    store, clock = MemoryStore(), Clock()
    a = Sessions(store, clock, king=KING, chain_id=31337, challenge_ttl_s=60, shared=True)
    b = Sessions(store, clock, king=KING, chain_id=31337, challenge_ttl_s=60, shared=True)
    renter = Account.create()
    c = a.challenge(renter.address)
    sig = signed(renter, c.message)
    token, _, _ = b.sign_in(c.challenge_id, renter.address, sig)
    assert a.verify(token) == renter.address
    for s in (a, b):
        with pytest.raises(AuthenticationError, match="used sign-in challenge"):
            s.sign_in(c.challenge_id, renter.address, sig)
    clock.t += 61  # expired records are dropped from the store as sign-ins go on
    c2 = a.challenge(renter.address)
    b.sign_in(c2.challenge_id, renter.address, signed(renter, c2.message))
    assert store.count("used_challenges") == 1
    alone = Sessions(store, clock, king=KING, chain_id=31337, challenge_ttl_s=60)
    c3 = alone.challenge(renter.address)
    with pytest.raises(AuthenticationError, match="unknown sign-in challenge"):
        a.sign_in(c3.challenge_id, renter.address, signed(renter, c3.message))
