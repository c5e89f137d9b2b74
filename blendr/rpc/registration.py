"""The text a queen signs to register with a king (``KingControl.QueenSession``), and its check.

Both sides build the text with :func:`queen_registration_text`; the queen signs it with ``personal_sign``
(EIP-191 version ``E``, ``eth_account.messages.encode_defunct``) and the king recovers the signer with
:func:`recover_queen_registration`. The text names the king it is meant for, so a registration captured by
one king cannot be replayed to another; a queen that is not told its king's address (``relay.king_address``
empty) signs ``king: any``, which a king may refuse. Freshness is the king's job: it compares ``timestamp``
with its own clock.
"""

from __future__ import annotations

from typing import Any

from blendr.errors import InvalidArgumentError, SignatureError
from blendr.identity import SECP256K1_HALF_N, Address, to_address

ANY_KING = "any"
_HEADER = "BlendrChain queen registration"


def queen_registration_text(queen: str, king: str, timestamp: int, endpoint: str) -> str:
    """The exact text a queen signs to register.

    Args:
        queen: The queen's address (any case; it is checksummed).
        king: The king's address, or "" for any king.
        timestamp: Unix seconds when the queen signed.
        endpoint: The queen's provider endpoint (``HOST:PORT``, for operators; may be empty).

    Raises:
        SignatureError: ``queen`` or a non-empty ``king`` is not an address.
        InvalidArgumentError: a negative timestamp, or an endpoint with a line break or over 255 characters
            (which could forge the text's other lines).
    """
    if timestamp < 0:
        raise InvalidArgumentError(f"registration timestamp must be >= 0 (got {timestamp})")
    if len(endpoint) > 255 or any(c in endpoint for c in "\r\n"):
        raise InvalidArgumentError("registration endpoint must be one line of at most 255 characters")
    king_text = to_address(king) if king else ANY_KING
    return (f"{_HEADER}\n"
            f"queen: {to_address(queen)}\n"
            f"king: {king_text}\n"
            f"timestamp: {int(timestamp)}\n"
            f"endpoint: {endpoint}")


def sign_queen_registration(account: Any, king: str, timestamp: int, endpoint: str) -> bytes:
    """``personal_sign`` (65 bytes r || s || v) of the registration text by ``account`` (an eth-account LocalAccount)."""
    from eth_account.messages import encode_defunct

    text = queen_registration_text(account.address, king, timestamp, endpoint)
    return bytes(account.sign_message(encode_defunct(text=text)).signature)


def recover_queen_registration(queen: str, king: str, timestamp: int, endpoint: str, signature: bytes) -> Address:
    """Check a registration signature; returns the queen's address, which signed it.

    Raises:
        SignatureError: malformed or malleable (high-s) signature, or signed by another key than ``queen``.
        InvalidArgumentError: the fields cannot form a registration text (see :func:`queen_registration_text`).
    """
    from eth_account import Account
    from eth_account.messages import encode_defunct

    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes (got {len(signature)})")
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > SECP256K1_HALF_N:
        raise SignatureError("malleable or invalid signature (s out of range)")
    text = queen_registration_text(queen, king, timestamp, endpoint)
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception as exc:  # eth-keys raises BadSignature, ValueError, ...
        raise SignatureError(f"bad signature: {type(exc).__name__}") from None
    expected = to_address(queen)
    if to_address(signer) != expected:
        raise SignatureError("registration was not signed by the queen's key")
    return expected


__all__ = ["ANY_KING", "queen_registration_text", "recover_queen_registration", "sign_queen_registration"]
