"""The verifier's Freivalds projection: it accepts exactly the true rows, at O(n) per row."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import ProofError
from blendr.proof import verifier
from blendr.proof.generate import compute_rows, gen_matrix, matrix_key
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import open_rows, prove_device
from blendr.proof.verifier import (
    FREIVALDS_PRIME,
    epoch_projection,
    max_abs_product,
    projected_wrong_rows,
    verify_openings,
)

EPOCH = bytes(range(1, 33))


def params(n: int = 48, count: int = 3, **kw: object) -> ChallengeParams:
    base: dict[str, object] = {"challenge_id": "f", "seed": os.urandom(32), "n": n, "count": count, "b_seed": EPOCH}
    base.update(kw)
    return ChallengeParams(**base)  # type: ignore[arg-type]


def test_projection_is_b_times_r_mod_p() -> None:
    verifier.clear_projection_cache()
    n = 40
    r, br = epoch_projection(EPOCH, n)
    b = gen_matrix(np, matrix_key(EPOCH, 0, "B", 0), n).astype(np.int64)
    assert r.shape == br.shape == (n, verifier.FREIVALDS_VECTORS)
    assert int(r.min()) >= 0 and int(r.max()) < FREIVALDS_PRIME
    np.testing.assert_array_equal(br, np.mod(b @ r, FREIVALDS_PRIME))
    assert epoch_projection(EPOCH, n)[0] is r  # cached per epoch and size
    verifier.clear_projection_cache()
    fresh, _ = epoch_projection(EPOCH, n)
    assert not np.array_equal(fresh, r)  # secret vectors come from fresh randomness, not from the epoch


def test_true_rows_pass_and_every_changed_row_fails() -> None:
    p = params()
    rows = list(range(0, p.rows, 7))
    truth = compute_rows(p, 2, rows)
    assert projected_wrong_rows(p, 2, rows, truth).size == 0
    bad = truth.copy()
    bad[1, 5] += 1
    bad[4, 0] -= FREIVALDS_PRIME  # a multiple of P away: outside the bound, so never equal mod P by luck
    bad[6, 3] += max_abs_product(p.n)  # within int32 but beyond what a true product can hold
    assert projected_wrong_rows(p, 2, rows, bad).tolist() == [1, 4, 6]


def test_another_devices_rows_fail() -> None:
    p = params()
    rows = [0, 1, p.rows - 1]
    assert projected_wrong_rows(p, 0, rows, compute_rows(p, 1, rows)).tolist() == [0, 1, 2]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=64),
    st.data(),
)
def test_any_error_within_the_bound_is_caught(n: int, data: st.DataObject) -> None:
    p = params(n=n, count=2)
    row = data.draw(st.integers(min_value=0, max_value=p.rows - 1))
    truth = compute_rows(p, 0, [row])
    bound = max_abs_product(n)
    if data.draw(st.booleans()):  # small changes (often none) to the true row
        delta = data.draw(st.lists(st.sampled_from([0, 0, 0, -2, -1, 1, 2]), min_size=n, max_size=n))
        claimed = np.clip(truth + np.asarray([delta]), -bound, bound).astype(np.int32)
    else:  # any row within the bound
        target = data.draw(st.lists(st.integers(min_value=-bound, max_value=bound), min_size=n, max_size=n))
        claimed = np.asarray([target], dtype=np.int32)
    wrong = projected_wrong_rows(p, 0, [row], claimed).size == 1
    assert wrong == (not np.array_equal(claimed, truth))


def test_honest_proof_passes_and_a_committed_wrong_row_fails_through_verify_openings() -> None:
    p = params(n=32, count=4)
    proof = prove_device(p, 0, xp=np)
    assert proof.tree is not None
    rows = [3, 40, 127]
    openings = open_rows(p, 0, proof.tree, rows)
    assert verify_openings(p, 0, proof.root, openings, rows).ok
    # Commit to a tampered row: the Merkle proof holds, the projection does not.
    digests = bytearray(proof.leaf_digests)
    from blendr.proof.merkle import MerkleTree
    from blendr.proof.rowhash import row_digests

    tampered = compute_rows(p, 0, [40])
    tampered[0, 0] += 3
    digests[40 * 16 : 41 * 16] = row_digests(np, tampered)[0].tobytes()
    tree = MerkleTree.from_row_digests(bytes(digests))
    openings = open_rows(p, 0, tree, rows)
    openings[1].values = tampered[0].astype("<i4").tobytes()
    verdict = verify_openings(p, 0, tree.root, openings, rows)
    assert (verdict.ok, verdict.reason) == (False, "row 40 of device 0 is wrong")


def test_projection_needs_an_epoch_and_rows_in_range() -> None:
    with pytest.raises(ProofError, match="epoch"):
        projected_wrong_rows(params(b_seed=b""), 0, [0], np.zeros((1, 48), dtype=np.int32))
    p = params()
    with pytest.raises(ProofError, match="rows must be in"):
        projected_wrong_rows(p, 0, [p.rows], np.zeros((1, p.n), dtype=np.int32))
