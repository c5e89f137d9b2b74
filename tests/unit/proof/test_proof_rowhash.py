from __future__ import annotations

import numpy as np
import pytest
from _proof_oracle import row_digest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import ProofError
from blendr.proof.rowhash import row_digests

INT32 = st.integers(-(2**31), 2**31 - 1)
SMALL = st.integers(-(2**20), 2**20)


def digest(values: list[int]) -> bytes:
    return bytes(row_digests(np, np.array([values], dtype=np.int32))[0])


def test_known_answers() -> None:
    assert digest(list(range(-3, 5))) == bytes.fromhex("eeba6cb375d6da20a7e66274901acb78")
    assert digest([1, 2, 3]) == bytes.fromhex("93fcd8f30882f9692e1ed069c8bd7f93")


@settings(max_examples=60, deadline=None)
@given(st.lists(INT32, min_size=1, max_size=40))
def test_matches_pure_python_reference(values: list[int]) -> None:
    assert digest(values) == row_digest(values)


def test_shape_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    import blendr.proof.rowhash as rowhash

    rng = np.random.default_rng(0)
    m = rng.integers(-1000, 1000, size=(37, 33), dtype=np.int32)
    whole = row_digests(np, m)
    assert whole.shape == (37, 16)
    assert whole.dtype == np.uint8
    monkeypatch.setattr(rowhash, "_NUMPY_CHUNK_WORDS", 40)  # a couple of rows per chunk
    np.testing.assert_array_equal(row_digests(np, m), whole)
    for i in (0, 17, 36):
        assert bytes(whole[i]) == digest(m[i].tolist())


@settings(max_examples=60, deadline=None)
@given(st.lists(SMALL, min_size=1, max_size=64), st.data())
def test_identical_rows_agree_and_any_change_differs(values: list[int], data: st.DataObject) -> None:
    assert digest(values) == digest(list(values))
    pos = data.draw(st.integers(0, len(values) - 1))
    new = data.draw(SMALL.filter(lambda v: v != values[pos]))
    changed = list(values)
    changed[pos] = new
    assert digest(changed) != digest(values)


@settings(max_examples=60, deadline=None)
@given(st.lists(SMALL, min_size=2, max_size=64), st.data())
def test_position_dependent(values: list[int], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(values) - 1))
    j = data.draw(st.integers(0, len(values) - 1).filter(lambda j: values[j] != values[i]))
    swapped = list(values)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert digest(swapped) != digest(values)


def test_not_additive() -> None:
    # A linear hash would satisfy h(x) ^ h(y) == h(x ^ y) ^ h(0) or h(x + y) == h(x) + h(y).
    x = [3, -7, 11, 0, 5]
    y = [1, 2, -4, 9, 8]
    z = [a + b for a, b in zip(x, y, strict=True)]
    hx, hy, hz = (int.from_bytes(digest(v), "big") for v in (x, y, z))
    h0 = int.from_bytes(digest([0] * 5), "big")
    assert hz != (hx + hy) % 2**128
    assert hz != hx ^ hy ^ h0


def test_rejects_bad_input() -> None:
    with pytest.raises(ProofError):
        row_digests(np, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ProofError):
        row_digests(np, np.zeros(3, dtype=np.int32))
    with pytest.raises(ProofError):
        row_digests(np, np.zeros((2, 0), dtype=np.int32))
