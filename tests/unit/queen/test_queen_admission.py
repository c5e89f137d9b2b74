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
