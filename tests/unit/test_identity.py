"""Node identity: key files (0600, never overwritten) and EIP-712 admission signatures."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from blendr.errors import IdentityError, SignatureError
from blendr.identity import (
    KEY_FILE,
    SECP256K1_HALF_N,
    SECP256K1_N,
    NodeIdentity,
    canonical_signature,
    recover_admission,
    to_address,
)

# Well-known test vector: private key 1 is the generator point's address.
KEY_ONE = (1).to_bytes(32, "big")
KEY_ONE_ADDRESS = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"

NONCE = bytes(range(32))
OTHER_NONCE = bytes(range(1, 33))


@pytest.fixture(scope="module")
def provider() -> NodeIdentity:
    return NodeIdentity.generate()


@pytest.fixture(scope="module")
def queen() -> NodeIdentity:
    return NodeIdentity.generate()


@pytest.fixture(scope="module")
def signature(provider: NodeIdentity, queen: NodeIdentity) -> bytes:
    return provider.sign_admission(queen.address, NONCE)


# --- addresses and keys ---------------------------------------------------------------------------


def test_to_address_checksums() -> None:
    assert to_address(KEY_ONE_ADDRESS.lower()) == KEY_ONE_ADDRESS


@pytest.mark.parametrize(
    "value", ["", "0x1234", "0x" + "g" * 40, "7E5F4552091A69125d5DfCb7b8C2659029395Bdf00", 42]
)
def test_to_address_rejects_non_addresses(value: object) -> None:
    with pytest.raises(SignatureError, match="not an Ethereum address"):
        to_address(value)  # type: ignore[arg-type]


def test_from_key_known_answer() -> None:
    assert NodeIdentity.from_key(KEY_ONE).address == KEY_ONE_ADDRESS


@pytest.mark.parametrize("key", [bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\x01" * 31])
def test_from_key_rejects_invalid_keys(key: bytes) -> None:
    with pytest.raises(IdentityError, match="invalid private key"):
        NodeIdentity.from_key(key)


def test_generate_gives_distinct_identities() -> None:
    assert NodeIdentity.generate().address != NodeIdentity.generate().address


def test_repr_never_shows_the_key() -> None:
    ident = NodeIdentity.from_key(KEY_ONE)
    text = repr(ident) + str(ident)
    assert KEY_ONE_ADDRESS in text
    assert KEY_ONE.hex() not in text


# --- key files ------------------------------------------------------------------------------------


def test_save_writes_0600_and_load_round_trips(tmp_path: Path) -> None:
    ident = NodeIdentity.generate()
    path = ident.save(tmp_path / "home")
    assert path == tmp_path / "home" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="ascii").startswith("0x")
    assert NodeIdentity.load(tmp_path / "home") == ident
    assert os.listdir(tmp_path / "home") == [KEY_FILE]  # no temporary file left behind


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    first = NodeIdentity.generate()
    first.save(tmp_path)
    with pytest.raises(IdentityError, match="refusing to overwrite existing node key"):
        NodeIdentity.generate().save(tmp_path)
    assert NodeIdentity.load(tmp_path) == first


def test_save_does_not_overwrite_a_key_written_concurrently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = NodeIdentity.generate()
    real_link = os.link

    def link_after_another_process_saved(src: str, dst: str) -> None:
        # Another process writes its key right after our exists() check, before we publish ours.
        (tmp_path / "node.key").write_text("0x" + winner._key.hex() + "\n", encoding="ascii")
        (tmp_path / "node.key").chmod(0o600)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_another_process_saved)
    with pytest.raises(IdentityError, match="refusing to overwrite"):
        NodeIdentity.generate().save(tmp_path)
    assert NodeIdentity.load(tmp_path) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["node.key"]


def test_load_missing_key_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"no node key at .*blendr identity init --home"):
        NodeIdentity.load(tmp_path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666, 0o700 | 0o007])
def test_load_refuses_keys_others_can_access(tmp_path: Path, mode: int) -> None:
    path = NodeIdentity.generate().save(tmp_path)
    path.chmod(mode)
    with pytest.raises(IdentityError, match=r"readable by others; run `chmod 600"):
        NodeIdentity.load(tmp_path)


def test_load_accepts_owner_only_read(tmp_path: Path) -> None:
    ident = NodeIdentity.generate()
    ident.save(tmp_path).chmod(0o400)
    assert NodeIdentity.load(tmp_path) == ident


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0xzz\n", "is not hex"),
        ("0x" + "11" * 31 + "\n", r"must hold 32 bytes of hex \(got 31\)"),
        ("11" * 33, r"must hold 32 bytes of hex \(got 33\)"),
        ("0x" + "00" * 32, "invalid private key"),
    ],
)
def test_load_rejects_malformed_keys(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / KEY_FILE
    path.write_text(text, encoding="ascii")
    path.chmod(0o600)
    with pytest.raises(IdentityError, match=message):
        NodeIdentity.load(tmp_path)


def test_load_accepts_hex_without_prefix(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_text(KEY_ONE.hex() + "\n", encoding="ascii")
    path.chmod(0o600)
    assert NodeIdentity.load(tmp_path).address == KEY_ONE_ADDRESS


def test_load_non_ascii_key_file(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(b"\xff\xfe")
    path.chmod(0o600)
    with pytest.raises(IdentityError, match="cannot read node key"):
        NodeIdentity.load(tmp_path)


def test_load_or_create_creates_once_then_loads(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    ident, created = NodeIdentity.load_or_create(home)
    assert created is True
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600
    again, created_again = NodeIdentity.load_or_create(home)
    assert (again, created_again) == (ident, False)


def test_load_or_create_does_not_replace_an_unsafe_key(tmp_path: Path) -> None:
    NodeIdentity.generate().save(tmp_path).chmod(0o644)
    with pytest.raises(IdentityError, match="readable by others"):
        NodeIdentity.load_or_create(tmp_path)


# --- admission signatures -------------------------------------------------------------------------


def test_signature_recovers_to_the_provider(
    provider: NodeIdentity, queen: NodeIdentity, signature: bytes
) -> None:
    assert len(signature) == 65
    assert recover_admission(queen.address, provider.address, NONCE, signature) == provider.address
    # Addresses are normalised, so lowercase input verifies too.
    assert (
        recover_admission(queen.address.lower(), provider.address.lower(), NONCE, signature)
        == provider.address
    )


def test_signing_is_deterministic(provider: NodeIdentity, queen: NodeIdentity, signature: bytes) -> None:
    assert provider.sign_admission(queen.address, NONCE) == signature


def test_replayed_signature_for_another_nonce_is_rejected(
    provider: NodeIdentity, queen: NodeIdentity, signature: bytes
) -> None:
    with pytest.raises(SignatureError, match="not made by the provider's key"):
        recover_admission(queen.address, provider.address, OTHER_NONCE, signature)


def test_signature_for_another_queen_is_rejected(provider: NodeIdentity, signature: bytes) -> None:
    other_queen = NodeIdentity.generate()
    with pytest.raises(SignatureError, match="not made by the provider's key"):
        recover_admission(other_queen.address, provider.address, NONCE, signature)


def test_foreign_signature_is_rejected(provider: NodeIdentity, queen: NodeIdentity) -> None:
    thief = NodeIdentity.generate()
    forged = thief.sign_admission(queen.address, NONCE)
    with pytest.raises(SignatureError, match="not made by the provider's key"):
        recover_admission(queen.address, provider.address, NONCE, forged)


@pytest.mark.parametrize("length", [0, 64, 66])
def test_wrong_length_signature(
    provider: NodeIdentity, queen: NodeIdentity, signature: bytes, length: int
) -> None:
    sig = (signature * 2)[:length]
    with pytest.raises(SignatureError, match=f"signature must be 65 bytes \\(got {length}\\)"):
        recover_admission(queen.address, provider.address, NONCE, sig)


def test_high_s_malleable_signature_is_rejected(
    provider: NodeIdentity, queen: NodeIdentity, signature: bytes
) -> None:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    assert s <= SECP256K1_HALF_N  # the signer produces low-s signatures
    twin = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with pytest.raises(SignatureError, match=r"malleable or invalid signature \(s out of range\)"):
        recover_admission(queen.address, provider.address, NONCE, twin)


def test_zero_s_is_rejected(provider: NodeIdentity, queen: NodeIdentity, signature: bytes) -> None:
    with pytest.raises(SignatureError, match="s out of range"):
        recover_admission(queen.address, provider.address, NONCE, signature[:32] + bytes(32) + signature[64:])


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x01" * 64 + b"\x1b",  # arbitrary r, s: recovers to some unrelated key
        bytes(32) + (1).to_bytes(32, "big") + b"\x1b",  # r = 0
        b"\x01" * 64 + b"\x05",  # v out of range
        b"\xff" * 32 + (1).to_bytes(32, "big") + b"\x1c",  # r >= n
    ],
)
def test_garbage_signatures_are_rejected(provider: NodeIdentity, queen: NodeIdentity, garbage: bytes) -> None:
    with pytest.raises(SignatureError):
        recover_admission(queen.address, provider.address, NONCE, garbage)


def test_corrupted_signature_is_rejected(
    provider: NodeIdentity, queen: NodeIdentity, signature: bytes
) -> None:
    bad = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(SignatureError):
        recover_admission(queen.address, provider.address, NONCE, bad)


@pytest.mark.parametrize("nonce", [b"", bytes(31), bytes(33)])
def test_nonce_must_be_32_bytes(
    provider: NodeIdentity, queen: NodeIdentity, signature: bytes, nonce: bytes
) -> None:
    with pytest.raises(SignatureError, match=f"admission nonce must be 32 bytes \\(got {len(nonce)}\\)"):
        provider.sign_admission(queen.address, nonce)
    with pytest.raises(SignatureError):
        recover_admission(queen.address, provider.address, nonce, signature)


def test_malformed_queen_address_in_verification(provider: NodeIdentity, signature: bytes) -> None:
    with pytest.raises(SignatureError):
        recover_admission("queen", provider.address, NONCE, signature)


def test_malformed_provider_address_in_verification(queen: NodeIdentity, signature: bytes) -> None:
    with pytest.raises(SignatureError, match="not an Ethereum address: '0xnope'"):
        recover_admission(queen.address, "0xnope", NONCE, signature)


@pytest.mark.parametrize(
    ("queen_address", "nonce", "message"),
    [
        (None, bytes(31), r"admission nonce must be 32 bytes \(got 31\)"),
        ("queen", NONCE, "not an Ethereum address: 'queen'"),
    ],
    ids=["short-nonce", "bad-queen"],
)
def test_verification_errors_keep_their_reason(
    provider: NodeIdentity,
    queen: NodeIdentity,
    signature: bytes,
    queen_address: str | None,
    nonce: bytes,
    message: str,
) -> None:
    with pytest.raises(SignatureError, match=message):
        recover_admission(queen_address or queen.address, provider.address, nonce, signature)


# ---------------------------------------------------------------------------------------------- canonical form
def test_the_curve_constants_are_secp256k1s() -> None:
    assert SECP256K1_N == 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    assert SECP256K1_HALF_N == 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@pytest.mark.parametrize("v", [0, 1, 27, 28, 37, 38, 35 + 2 * 63, 36 + 2 * 63])
def test_canonical_signature_maps_every_v_encoding_to_27_or_28(signature: bytes, v: int) -> None:
    parity = signature[64] - 27
    variant = signature[:64] + bytes([v])
    want_parity = v if v < 2 else (v - 27 if v < 35 else (v - 35) % 2)
    assert canonical_signature(variant) == signature[:64] + bytes([27 + want_parity])
    if want_parity == parity:
        assert canonical_signature(variant) == signature


@pytest.mark.parametrize(("bad", "error"), [
    ("high-s", "malleable signature"), ("short", "must be 65 bytes"), ("zero-r", "r or s out of range"),
    ("s=n", "r or s out of range"), ("v=5", "v byte 5"),
])
def test_canonical_signature_refuses_malleable_and_malformed(signature: bytes, bad: str, error: str) -> None:
    s = int.from_bytes(signature[32:64], "big")
    b = {"high-s": signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]]),
         "short": signature[:64], "zero-r": bytes(32) + signature[32:],
         "s=n": signature[:32] + SECP256K1_N.to_bytes(32, "big") + signature[64:],
         "v=5": signature[:64] + bytes([5])}[bad]
    with pytest.raises(SignatureError, match=error):
        canonical_signature(b)
