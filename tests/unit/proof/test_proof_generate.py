from __future__ import annotations

import numpy as np
import pytest
from _proof_oracle import element, key
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import ProofError
from blendr.proof.generate import compute_rows, gen_matrix, gen_rows, matrix_key
from blendr.proof.params import ChallengeParams

SEED = bytes(range(16))


def test_matrix_key_known_answers() -> None:
    assert matrix_key(SEED, 0, "A", 0) == 3790452256
    assert matrix_key(SEED, 3, "B", 0) == 3979188813
    assert matrix_key(SEED, 0, "A", 0) == key(SEED, 0, "A", 0)


def test_matrix_known_answers() -> None:
    m = gen_matrix(np, matrix_key(SEED, 0, "A", 0), 8)
    assert m.dtype == np.float32
    assert m.shape == (8, 8)
    assert m[0].tolist() == [-5, -6, 6, 5, 4, -2, -1, 6]
    assert m[7].tolist() == [-7, 3, -6, -2, -1, -1, 1, -8]


@settings(max_examples=40, deadline=None)
@given(k=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_matches_pure_python_reference(k: int, n: int) -> None:
    m = gen_matrix(np, k, n)
    for i, j in {(0, 0), (n - 1, n - 1), (n // 2, n // 3), (n - 1, 0), (0, n - 1)}:
        assert m[i, j] == element(k, n, i, j)


def test_values_in_range_and_all_used() -> None:
    m = gen_matrix(np, 12345, 256)
    assert m.min() == -8
    assert m.max() == 7
    assert set(np.unique(m).tolist()) == set(range(-8, 8))
    # Roughly uniform: each of 16 values near 1/16 of 65536.
    counts = np.unique(m, return_counts=True)[1]
    assert counts.min() > 3500
    assert counts.max() < 4700


@settings(max_examples=30, deadline=None)
@given(k=st.integers(0, 2**32 - 1), n=st.integers(1, 200), data=st.data())
def test_gen_rows_equals_slices_of_gen_matrix(k: int, n: int, data: st.DataObject) -> None:
    rows = data.draw(st.lists(st.integers(0, n - 1), max_size=12))
    full = gen_matrix(np, k, n)
    np.testing.assert_array_equal(gen_rows(np, k, n, rows), full[rows].reshape(len(rows), n))


def test_large_matrix_chunks_agree_with_rows() -> None:
    # n large enough that generation runs in several chunks.
    n = 700
    full = gen_matrix(np, 99, n)
    np.testing.assert_array_equal(gen_rows(np, 99, n, [0, 350, 699]), full[[0, 350, 699]])


def test_different_seeds_devices_indices_and_matrices_differ() -> None:
    keys = {
        matrix_key(SEED, 0, "A", 0),
        matrix_key(SEED, 1, "A", 0),
        matrix_key(SEED, 0, "A", 1),
        matrix_key(SEED, 0, "B", 0),
        matrix_key(bytes(16), 0, "A", 0),
    }
    assert len(keys) == 5
    mats = [gen_matrix(np, k, 32) for k in keys]
    for a in range(len(mats)):
        for b in range(a + 1, len(mats)):
            assert not np.array_equal(mats[a], mats[b])


def test_bad_arguments_raise() -> None:
    with pytest.raises(ProofError):
        matrix_key(SEED, 0, "C", 0)
    with pytest.raises(ProofError):
        matrix_key(SEED, -1, "A", 0)
    with pytest.raises(ProofError):
        gen_rows(np, 1, 8, [8])
    with pytest.raises(ProofError):
        gen_rows(np, 1, 8, [-1])
    with pytest.raises(ProofError):
        gen_rows(np, 2**32, 8, [0])


@settings(max_examples=25, deadline=None)
@given(k1=st.integers(0, 2**32 - 1), k2=st.integers(0, 2**32 - 1), n=st.integers(1, 96))
def test_fp32_products_are_exact(k1: int, k2: int, n: int) -> None:
    a = gen_matrix(np, k1, n)
    b = gen_matrix(np, k2, n)
    exact = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal((a @ b).astype(np.int32), exact)


def test_worst_case_magnitude_is_exact_in_fp32() -> None:
    # |C| <= 64 * n: all -8 inputs at the largest n give 2**20, far below 2**24.
    n = 16384
    a = np.full((1, n), -8, dtype=np.float32)
    b = np.full((n, 2), -8, dtype=np.float32)
    assert (a @ b).astype(np.int64).tolist() == [[64 * n, 64 * n]]


def test_compute_rows_matches_full_products() -> None:
    params = ChallengeParams("c", SEED, 24, 3)
    b = gen_matrix(np, matrix_key(SEED, 2, "B", 0), 24)
    full = np.concatenate(
        [(gen_matrix(np, matrix_key(SEED, 2, "A", c), 24) @ b).astype(np.int32) for c in range(3)]
    )
    rows = [71, 0, 24, 25, 50]
    np.testing.assert_array_equal(compute_rows(params, 2, rows), full[rows])
    assert compute_rows(params, 2, []).shape == (0, 24)
    with pytest.raises(ProofError):
        compute_rows(params, 2, [72])


def test_compute_rows_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import blendr.proof.generate as generate

    params = ChallengeParams("c", SEED, 40, 2)
    expected = compute_rows(params, 0, [3, 41, 79])
    monkeypatch.setattr(generate, "_VERIFY_BLOCK_ELEMENTS", 40 * 7)
    np.testing.assert_array_equal(compute_rows(params, 0, [3, 41, 79]), expected)
