"""Sign-In with Ethereum (EIP-4361) messages: the one formatter (the king's sign-in challenge) and the one parser
(the renter SDK's check before it signs).

Guarantees: :func:`format_message` writes the layout EIP-4361 specifies, line by line; :func:`parse_message` reads
exactly that layout back (``parse_message(format_message(m)) == m``) and refuses anything else — a missing or
misplaced line, an address that is not EIP-55 checksummed, a version other than 1, a nonce of fewer than 8
alphanumerics, a time that is not ISO-8601 — with :class:`~blendr.errors.InvalidArgumentError`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from blendr.errors import InvalidArgumentError

#: What a renter signs to sign in at a king (no signature of this text can move money: it is EIP-191 text).
STATEMENT = "Sign in to BlendrChain as a renter. This signs nothing that moves money."
PREAMBLE = " wants you to sign in with your Ethereum account:"
#: The resource that names the king a sign-in is for (its Ethereum address).
KING_RESOURCE = "blendr:king:"

_OPTIONAL = ("Expiration Time", "Not Before", "Request ID")
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_DOMAIN = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?[A-Za-z0-9.\-\[\]:%_~!$&'()*+,;=@]+")
_URI = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message; times are ISO-8601 texts, empty optional fields are left out."""

    domain: str
    address: str
    statement: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    expiration_time: str = ""
    not_before: str = ""
    request_id: str = ""
    resources: tuple[str, ...] = ()
    version: str = "1"


def iso_time(unix: float) -> str:
    """``unix`` seconds as an EIP-4361 time (RFC 3339, UTC, whole seconds): ``2026-12-06T21:00:00Z``."""
    return dt.datetime.fromtimestamp(int(unix), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_message(m: SiweMessage) -> str:
    """The message text EIP-4361 specifies for ``m`` (lines joined by LF, no trailing LF)."""
    lines = [f"{m.domain}{PREAMBLE}", m.address, ""]
    lines += [m.statement, ""] if m.statement else [""]
    lines += [f"URI: {m.uri}", f"Version: {m.version}", f"Chain ID: {m.chain_id}", f"Nonce: {m.nonce}",
              f"Issued At: {m.issued_at}"]
    for tag, value in zip(_OPTIONAL, (m.expiration_time, m.not_before, m.request_id), strict=True):
        if value:
            lines.append(f"{tag}: {value}")
    if m.resources:
        lines += ["Resources:", *(f"- {r}" for r in m.resources)]
    return "\n".join(lines)


def _bad(what: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"not an EIP-4361 sign-in message: {what}")


def _tagged(lines: list[str], i: int, tag: str) -> str:
    if i >= len(lines) or not lines[i].startswith(f"{tag}: "):
        raise _bad(f"line {i + 1} must be {tag!r}")
    return lines[i][len(tag) + 2:]


def _time(text: str, tag: str) -> str:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise _bad(f"{tag} is not an ISO-8601 time") from None
    return text


def _checksummed(address: str) -> bool:
    from eth_utils import to_checksum_address

    return bool(_ADDRESS.fullmatch(address)) and to_checksum_address(address) == address


def parse_message(text: str) -> SiweMessage:
    """The fields of an EIP-4361 message, read line by line.

    Raises:
        InvalidArgumentError: ``text`` is not laid out as EIP-4361 specifies, or a field is malformed.
    """
    lines = text.split("\n")
    if len(lines) < 10 or not lines[0].endswith(PREAMBLE) or not _DOMAIN.fullmatch(lines[0][:-len(PREAMBLE)]):
        raise _bad("the first line must be '<domain> wants you to sign in with your Ethereum account:'")
    if not _checksummed(lines[1]):
        raise _bad("the second line must be an EIP-55 checksummed address")
    if lines[2] != "":
        raise _bad("the third line must be empty")
    statement, i = ("", 4) if lines[3] == "" else (lines[3], 5)
    if statement and lines[4] != "":
        raise _bad("the statement must be one line followed by an empty line")
    uri = _tagged(lines, i, "URI")
    version = _tagged(lines, i + 1, "Version")
    chain = _tagged(lines, i + 2, "Chain ID")
    nonce = _tagged(lines, i + 3, "Nonce")
    issued = _time(_tagged(lines, i + 4, "Issued At"), "Issued At")
    if not _URI.fullmatch(uri) or version != "1" or not (chain.isascii() and chain.isdigit() and len(chain) <= 20):
        raise _bad("URI, Version (1) or Chain ID malformed")
    if not _NONCE.fullmatch(nonce):
        raise _bad("the nonce must be at least 8 letters or digits")
    i += 5
    optional: dict[str, str] = {}
    for tag in _OPTIONAL:
        if i < len(lines) and lines[i].startswith(f"{tag}: "):
            optional[tag] = _tagged(lines, i, tag)
            i += 1
    resources: list[str] = []
    if i < len(lines):
        if lines[i] != "Resources:":
            raise _bad(f"unexpected line {i + 1}")
        for line in lines[i + 1:]:
            if not line.startswith("- ") or not _URI.fullmatch(line[2:]):
                raise _bad("each resource must be a line '- <URI>'")
            resources.append(line[2:])
    return SiweMessage(
        domain=lines[0][:-len(PREAMBLE)], address=lines[1], statement=statement, uri=uri, chain_id=int(chain),
        nonce=nonce, issued_at=issued,
        expiration_time=_time(optional["Expiration Time"], "Expiration Time") if "Expiration Time" in optional else "",
        not_before=_time(optional["Not Before"], "Not Before") if "Not Before" in optional else "",
        request_id=optional.get("Request ID", ""), resources=tuple(resources), version=version)
