"""Admission: signed single-use nonces and the stake oracle (allowlist or open pool)."""

from __future__ import annotations

import pytest

from blendr.clock import ManualClock
from blendr.errors import PermissionDeniedError, SignatureError
from blendr.identity import NodeIdentity
from blendr.store import MemoryStore
from queen.admission import NS_ALLOWLIST, Admission, AllowlistOracle, OpenOracle, StakeDecision

QUEEN = NodeIdentity.generate()
PROVIDER = NodeIdentity.generate()


@pytest.fixture
def oracle() -> AllowlistOracle:
    return AllowlistOracle(MemoryStore(), ManualClock())


def signed(nonce: bytes, who: NodeIdentity = PROVIDER, queen: NodeIdentity = QUEEN) -> bytes:
    return who.sign_admission(queen.address, nonce)


def test_nonces_are_fresh_32_bytes() -> None:
    nonces = {Admission.new_nonce() for _ in range(16)}
    assert len(nonces) == 16
    assert all(len(n) == 32 for n in nonces)


def test_open_pool_admits_any_valid_signature() -> None:
    adm = Admission(QUEEN.address, OpenOracle())
    nonce = Admission.new_nonce()
    assert adm.verify(PROVIDER.address, nonce, signed(nonce)) == PROVIDER.address
    assert OpenOracle().check(PROVIDER.address) == StakeDecision(True, "open pool")


def test_verify_normalises_the_address() -> None:
    adm = Admission(QUEEN.address, OpenOracle())
    nonce = Admission.new_nonce()
    assert adm.verify(PROVIDER.address.lower(), nonce, signed(nonce)) == PROVIDER.address  # type: ignore[arg-type]


@pytest.mark.parametrize("case", ["replayed", "foreign", "other-queen", "short", "garbage"])
def test_bad_signatures_raise_signature_error(case: str) -> None:
    adm = Admission(QUEEN.address, OpenOracle())
    nonce = Admission.new_nonce()
    sig = {
        "replayed": signed(Admission.new_nonce()),
        "foreign": signed(nonce, who=NodeIdentity.generate()),
        "other-queen": signed(nonce, queen=NodeIdentity.generate()),
        "short": signed(nonce)[:64],
        "garbage": b"\x01" * 65,
    }[case]
    with pytest.raises(SignatureError):
        adm.verify(PROVIDER.address, nonce, sig)


def test_signature_is_checked_before_the_oracle(oracle: AllowlistOracle) -> None:
    adm = Admission(QUEEN.address, oracle)
    nonce = Admission.new_nonce()
    with pytest.raises(SignatureError):
        adm.verify(PROVIDER.address, nonce, signed(Admission.new_nonce()))


def test_allowlist_refuses_unknown_address_with_an_actionable_reason(oracle: AllowlistOracle) -> None:
    adm = Admission(QUEEN.address, oracle)
    nonce = Admission.new_nonce()
    with pytest.raises(PermissionDeniedError) as exc:
        adm.verify(PROVIDER.address, nonce, signed(nonce))
    assert str(exc.value) == (
        f"{PROVIDER.address} is not on this queen's allowlist "
        f"(operator: `blendr queen allow {PROVIDER.address}`)"
    )


def test_allow_then_admit_then_deny(oracle: AllowlistOracle) -> None:
    adm = Admission(QUEEN.address, oracle)
    assert oracle.allow(PROVIDER.address.lower(), note="lab") == PROVIDER.address
    nonce = Admission.new_nonce()
    assert adm.verify(PROVIDER.address, nonce, signed(nonce)) == PROVIDER.address
    assert oracle.check(PROVIDER.address) == StakeDecision(True, "allowlisted")
    assert oracle.deny(PROVIDER.address) is True
    assert oracle.deny(PROVIDER.address) is False
    nonce = Admission.new_nonce()
    with pytest.raises(PermissionDeniedError):
        adm.verify(PROVIDER.address, nonce, signed(nonce))


def test_allowlist_entries_are_stored_with_time_and_note() -> None:
    store, clock = MemoryStore(), ManualClock()
    oracle = AllowlistOracle(store, clock)
    addr = oracle.allow(PROVIDER.address, note="rack 3")
    assert store.get(NS_ALLOWLIST, addr) == {"added": clock.time(), "note": "rack 3"}


def test_allowlist_list_is_sorted_and_checksummed(oracle: AllowlistOracle) -> None:
    a, b = "0x" + "bb" * 20, "0x" + "aa" * 20
    oracle.allow(a)
    oracle.allow(b)
    oracle.allow(a)  # idempotent
    listed = oracle.list()
    assert [x.lower() for x in listed] == [b, a]
    assert all(x != x.lower() for x in listed)  # EIP-55 mixed case


@pytest.mark.parametrize("bad", ["", "0x1234", "nope"])
def test_allow_and_deny_reject_malformed_addresses(oracle: AllowlistOracle, bad: str) -> None:
    with pytest.raises(SignatureError, match="not an Ethereum address"):
        oracle.allow(bad)
    with pytest.raises(SignatureError, match="not an Ethereum address"):
        oracle.deny(bad)


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _variants(sig: bytes) -> dict[str, bytes]:
    parity = sig[64] - 27
    s = int.from_bytes(sig[32:64], "big")
    return {"v-0/1": sig[:64] + bytes([parity]), "v-27/28": sig, "v-37/38": sig[:64] + bytes([37 + parity]),
            "high-s": sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([28 - parity])}


@pytest.mark.parametrize("variant", ["v-0/1", "v-27/28", "v-37/38", "high-s"])
def test_a_replayed_admission_under_any_encoding_is_refused(variant: str) -> None:
    """The replay key is the nonce (fresh per connection): no re-encoding of an old signature gets in."""
    adm = Admission(QUEEN.address, OpenOracle())
    old = Admission.new_nonce()
    replay = _variants(signed(old))[variant]
    with pytest.raises(SignatureError):
        adm.verify(PROVIDER.address, Admission.new_nonce(), replay)


def test_a_malleated_high_s_signature_is_refused_even_for_its_own_nonce() -> None:
    adm = Admission(QUEEN.address, OpenOracle())
    nonce = Admission.new_nonce()
    with pytest.raises(SignatureError, match="malleable"):
        adm.verify(PROVIDER.address, nonce, _variants(signed(nonce))["high-s"])
