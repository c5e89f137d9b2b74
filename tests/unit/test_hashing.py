"""blendr.hashing computes exactly what eth_utils computes (only faster)."""

from __future__ import annotations

import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from blendr.hashing import checksum_address, keccak256


@given(st.binary(max_size=300))
def test_keccak256_is_ethereums_keccak(data: bytes) -> None:
    assert keccak256(data) == bytes(keccak(data))


@given(st.binary(min_size=20, max_size=20), st.sampled_from(["0x", "0X"]), st.booleans())
def test_checksum_address_is_eip55(raw: bytes, prefix: str, upper: bool) -> None:
    text = prefix + (raw.hex().upper() if upper else raw.hex())
    assert checksum_address(text) == to_checksum_address("0x" + raw.hex())


@pytest.mark.parametrize("bad", ["", "0x", "0x" + "g" * 40, "0x" + "a" * 39, "0x" + "a" * 41, "a" * 42,
                                 "0x" + "\u0661" * 40])
def test_a_non_address_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        checksum_address(bad)
