"""Sign-In with Ethereum (EIP-4361): the king's challenge text, read line by line as the EIP lays it out, and the
renter SDK's refusal to sign a challenge for another address, king or chain."""

from __future__ import annotations

import datetime as dt
import re

import grpc
import pytest
from eth_account import Account

from blendr.client import KingClient, Pins, RenterError
from blendr.errors import InvalidArgumentError
from blendr.siwe import STATEMENT, SiweMessage, format_message, parse_message
from blendr.store import MemoryStore
from king.auth import Sessions, SignInOrigin

KING = Account.create().address
RENTER = Account.create()


class Clock:
    def time(self) -> float:
        return 1_800_000_000.0

    def monotonic(self) -> float:
        return 0.0


def challenge(address: str = RENTER.address, chain_id: int = 31337, king: str = KING) -> str:
    s = Sessions(MemoryStore(), Clock(), king=king, chain_id=chain_id, challenge_ttl_s=300,
                 origin=SignInOrigin("king.example.org:8443", "https://king.example.org:8443/"))
    return s.challenge(address).message


def test_the_challenge_is_laid_out_as_eip_4361_says() -> None:
    lines = challenge().split("\n")
    assert lines[0] == "king.example.org:8443 wants you to sign in with your Ethereum account:"
    assert lines[1] == RENTER.address  # EIP-55
    assert lines[2] == "" and lines[3] == STATEMENT and lines[4] == ""
    tags = [line.split(": ", 1) for line in lines[5:12]]
    assert [t[0] for t in tags] == ["URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time",
                                    "Request ID"]
    fields = dict(tags)  # type: ignore[arg-type]
    assert fields["URI"] == "https://king.example.org:8443/" and fields["Version"] == "1"
    assert fields["Chain ID"] == "31337"
    assert re.fullmatch(r"[0-9a-f]{32}", fields["Nonce"])  # >= 8 alphanumerics
    assert fields["Issued At"] == "2027-01-15T08:00:00Z" and fields["Expiration Time"] == "2027-01-15T08:05:00Z"
    assert dt.datetime.fromisoformat(fields["Issued At"]).tzinfo is not None
    assert fields["Request ID"].split(".")[1] == fields["Nonce"]
    assert lines[12:] == ["Resources:", f"- blendr:king:{KING}"]


def test_parse_reads_back_what_format_writes() -> None:
    m = SiweMessage(domain="a.example", address=RENTER.address, statement="", uri="https://a.example/", chain_id=1,
                    nonce="abcdefgh", issued_at="2026-01-01T00:00:00Z", not_before="2026-01-01T00:00:00Z")
    assert parse_message(format_message(m)) == m
    assert format_message(m).split("\n")[2:5] == ["", "", "URI: https://a.example/"]  # no statement: two blanks


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace(" wants you to sign in", " wants to sign in"),
    lambda t: t.replace(RENTER.address, RENTER.address.lower()),  # not checksummed
    lambda t: t.replace("Version: 1", "Version: 2"),
    lambda t: re.sub(r"Nonce: \w+", "Nonce: abc", t),
    lambda t: t.replace("Issued At: 2027-01-15T08:00:00Z", "Issued At: yesterday"),
    lambda t: t.replace("\nURI: ", "\nURL: "),
    lambda t: t + "\nextra",
    lambda t: t.replace("Resources:", "Resources"),
    lambda t: "\n".join(t.split("\n")[:6]),
])
def test_anything_else_is_not_a_sign_in_message(mangle: object) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_message(mangle(challenge()))  # type: ignore[operator]


@pytest.mark.parametrize(("text", "pins"), [
    (challenge(address=Account.create().address), Pins()),  # another renter's sign-in
    (challenge(chain_id=1), Pins(chain_id=31337)),  # another chain
    (challenge(king=Account.create().address), Pins(king=KING)),  # another king
    (challenge().replace(STATEMENT, "Transfer all your tokens."), Pins()),  # another statement
    ("BlendrChain sign-in\nking: x\nchain: 31337\nrenter: " + RENTER.address, Pins()),  # the old format
])
async def test_the_sdk_refuses_to_sign_another_sign_in(text: str, pins: Pins) -> None:
    client = KingClient("127.0.0.1:1", RENTER, insecure=True, pins=pins)
    with pytest.raises(RenterError, match="refusing to sign it") as err:
        client._check_challenge(text)
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


async def test_the_sdk_signs_its_own_sign_in_for_the_pinned_king_and_chain() -> None:
    KingClient("127.0.0.1:1", RENTER, insecure=True, pins=Pins(king=KING.lower(), chain_id=31337))._check_challenge(
        challenge())
