"""Node identity: one secp256k1 key per node, kept in ``<home>/node.key``.

A node's identity is its Ethereum address. Keys are written once with mode 0600 and are never logged.
Admission to a queen is proven with an EIP-712 signature over (queen, provider, nonce), so a signature
made for one queen or one nonce is useless anywhere else.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NewType

from blendr.errors import IdentityError, SignatureError

Address = NewType("Address", str)

KEY_FILE = "node.key"
EIP712_DOMAIN = {"name": "BlendrChain", "version": "1"}
ADMISSION_TYPES = {
    "Admission": [
        {"name": "queen", "type": "address"},
        {"name": "provider", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
    ]
}


def to_address(value: str) -> Address:
    """Normalise a 0x address to its EIP-55 checksum form.

    Raises:
        SignatureError: the value is not a 20-byte hex address.
    """
    from eth_utils import is_hex_address, to_checksum_address

    if not isinstance(value, str) or not is_hex_address(value):
        raise SignatureError(f"not an Ethereum address: {value!r}")
    return Address(to_checksum_address(value))


def _admission_message(queen: str, provider: str, nonce: bytes) -> Any:
    from eth_account.messages import encode_typed_data

    if len(nonce) != 32:
        raise SignatureError(f"admission nonce must be 32 bytes (got {len(nonce)})")
    return encode_typed_data(
        domain_data=EIP712_DOMAIN,
        message_types=ADMISSION_TYPES,
        message_data={"queen": to_address(queen), "provider": to_address(provider), "nonce": nonce},
    )


@dataclass(frozen=True)
class NodeIdentity:
    """A node's key pair. ``repr`` never shows the key."""

    address: Address
    _key: bytes

    def __repr__(self) -> str:
        return f"NodeIdentity(address={self.address})"

    @classmethod
    def generate(cls) -> NodeIdentity:
        """A fresh random identity (not saved)."""
        return cls.from_key(secrets.token_bytes(32))

    @classmethod
    def from_key(cls, key: bytes) -> NodeIdentity:
        """The identity for a 32-byte private key.

        Raises:
            IdentityError: the key is not a valid secp256k1 private key.
        """
        from eth_account import Account

        try:
            acct = Account.from_key(key)
        except Exception as exc:  # eth-keys raises several types for invalid keys
            raise IdentityError(f"invalid private key: {type(exc).__name__}") from None
        return cls(Address(acct.address), bytes(key))

    @classmethod
    def load(cls, home: Path) -> NodeIdentity:
        """Load ``<home>/node.key``.

        Raises:
            IdentityError: the file is missing, readable by others, or malformed.
        """
        return cls.load_file(home / KEY_FILE, what="node key",
                             hint=f"create one with `blendr identity init --home {home}`")

    @classmethod
    def load_file(cls, path: Path, *, what: str = "key file", hint: str = "") -> NodeIdentity:
        """Load a hex private key file (``0x`` optional) that only its owner can read.

        Raises:
            IdentityError: the file is missing, readable by others, or malformed.
        """
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise IdentityError(f"no {what} at {path}" + (f"; {hint}" if hint else "")) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise IdentityError(f"cannot read node key {path}: {exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise IdentityError(f"node key {path} is readable by others; run `chmod 600 {path}`")
        hexkey = text[2:] if text.startswith("0x") else text
        try:
            key = bytes.fromhex(hexkey)
        except ValueError:
            raise IdentityError(f"node key {path} is not hex") from None
        if len(key) != 32:
            raise IdentityError(f"node key {path} must hold 32 bytes of hex (got {len(key)})")
        return cls.from_key(key)

    def account(self) -> Any:
        """This identity as an eth-account LocalAccount, for signing chain transactions."""
        from eth_account import Account

        return Account.from_key(self._key)

    @classmethod
    def load_or_create(cls, home: Path) -> tuple[NodeIdentity, bool]:
        """Load the node key, creating it (mode 0600, atomically) when absent. Returns (identity, created)."""
        path = home / KEY_FILE
        if path.exists():
            return cls.load(home), False
        ident = cls.generate()
        ident.save(home)
        return ident, True

    def save(self, home: Path) -> Path:
        """Write the key to ``<home>/node.key`` with mode 0600; refuses to overwrite another key."""
        home.mkdir(parents=True, exist_ok=True)
        path = home / KEY_FILE
        if path.exists():
            raise IdentityError(f"refusing to overwrite existing node key {path}")
        tmp = home / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write("0x" + self._key.hex() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            # link() fails if another process created the key meanwhile: never replace a key.
            os.link(tmp, path)
        except FileExistsError:
            raise IdentityError(f"refusing to overwrite existing node key {path}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def sign_admission(self, queen: str, nonce: bytes) -> bytes:
        """EIP-712 signature (65 bytes) proving this node asks to join ``queen`` for ``nonce``."""
        from eth_account import Account

        signed = Account.sign_message(_admission_message(queen, self.address, nonce), self._key)
        return bytes(signed.signature)


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order of secp256k1's group: r and s of a signature lie in [1, n)."""
SECP256K1_HALF_N = SECP256K1_N // 2
"""The largest low s: a signature with s above it is the malleated twin of one below."""


def canonical_signature(signature: bytes) -> bytes:
    """The one form of a 65-byte ECDSA signature that contracts accept: ``r || s || v``, s low, v 27 or 28.

    ``v`` may come as a recovery id (0/1), as 27/28, or EIP-155 style (35 + 2·chain id + parity, e.g. 37/38);
    each maps to 27 + parity, so every encoding of one signature has one canonical form (key replay checks
    on it). OpenZeppelin's ``ECDSA.tryRecover`` (the bridge inbox) takes only this form.

    Raises:
        SignatureError: not 65 bytes, r or s out of range, s in the upper half (a malleated signature),
            or a ``v`` no encoding gives.
    """
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes (r || s || v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise SignatureError("signature r or s out of range")
    if s > SECP256K1_HALF_N:
        raise SignatureError("malleable signature (high s): sign again with s in the lower half")
    if v in (0, 1):
        parity = v
    elif v in (27, 28):
        parity = v - 27
    elif v >= 35:
        parity = (v - 35) % 2
    else:
        raise SignatureError(f"signature v byte {v} is not a recovery id (0/1, 27/28 or EIP-155)")
    return signature[:64] + bytes([27 + parity])


def recover_admission(queen: str, provider: str, nonce: bytes, signature: bytes) -> Address:
    """Check an admission signature and return the signer, which must equal ``provider``.

    Raises:
        SignatureError: malformed or malleable (high-s) signature, or signed by another key.
    """
    from eth_account import Account

    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes (got {len(signature)})")
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > SECP256K1_HALF_N:
        raise SignatureError("malleable or invalid signature (s out of range)")
    expected = to_address(provider)
    message = _admission_message(queen, expected, nonce)
    try:
        signer = Account.recover_message(message, signature=signature)
    except Exception as exc:  # eth-keys raises BadSignature, ValueError, ...
        raise SignatureError(f"bad signature: {type(exc).__name__}") from None
    if to_address(signer) != expected:
        raise SignatureError("signature was not made by the provider's key")
    return expected


def recover_admission_key(queen: str, provider: str, nonce: bytes, signature: bytes) -> bytes:
    """The 64-byte uncompressed secp256k1 public key (x || y) that made a valid admission signature.

    The queen keeps it for its provider and the king checks it from the queen's pool snapshot: renters' payload
    keys are sealed to it, so nobody but the provider can read a job.

    Raises:
        SignatureError: what :func:`recover_admission` raises.
    """
    from eth_keys.datatypes import Signature
    from eth_utils import keccak

    recover_admission(queen, provider, nonce, signature)  # length, malleability, signer == provider
    m = _admission_message(queen, to_address(provider), nonce)
    digest = keccak(b"\x19" + m.version + m.header + m.body)
    v = signature[64]
    sig = Signature(vrs=(v - 27 if v >= 27 else v, int.from_bytes(signature[:32], "big"),
                         int.from_bytes(signature[32:64], "big")))
    return bytes(sig.recover_public_key_from_msg_hash(digest).to_bytes())
