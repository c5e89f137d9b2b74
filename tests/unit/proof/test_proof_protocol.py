"""Prover and verifier together: honest proofs pass, every kind of cheating that is opened fails."""

from __future__ import annotations

import math
import random
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import ChallengeExpiredError, ProofError
from blendr.proof.generate import compute_rows
from blendr.proof.merkle import MerkleTree
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import Opening, get_array_module, open_rows, prove_device
from blendr.proof.rowhash import row_digests
from blendr.proof.verifier import choose_rows, verify_openings

SEED = bytes(range(16))


def all_rows(params: ChallengeParams, device: int) -> np.ndarray:
    return compute_rows(params, device, range(params.rows))


def test_numpy_backend_without_cupy() -> None:
    xp, name = get_array_module()
    assert (xp, name) == (np, "numpy")
    assert get_array_module(prefer_gpu=False) == (np, "numpy")


def test_prove_device_commits_to_the_true_products() -> None:
    params = ChallengeParams("c", SEED, 16, 3)
    proof = prove_device(params, 1)
    truth = all_rows(params, 1)
    assert proof.leaf_digests == row_digests(np, truth).tobytes()
    assert proof.root == MerkleTree.from_row_digests(proof.leaf_digests).root
    assert proof.backend == "numpy"
    assert proof.work_seconds > 0
    assert proof.peak_memory_bytes == 4 * 16 * 16 * 4 + params.rows * 16
    assert proof.device_index == 1


def test_root_known_answer() -> None:
    params = ChallengeParams("kat", SEED, 8, 2)
    assert prove_device(params, 0, np).root.hex() == (
        "6f16cc6e78a47e35835a056147e6034c0736e807e509bbe029755bd2d28de91d"
    )


def test_devices_and_seeds_give_different_roots() -> None:
    params = ChallengeParams("c", SEED, 8, 2)
    roots = {
        prove_device(params, 0).root,
        prove_device(params, 1).root,
        prove_device(replace(params, seed=bytes(16)), 0).root,
    }
    assert len(roots) == 3


def test_deadline_passed_raises() -> None:
    params = ChallengeParams("c", SEED, 8, 2)
    with pytest.raises(ChallengeExpiredError):
        prove_device(params, 0, deadline=time.monotonic() - 1)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ProofError):
        prove_device(ChallengeParams("c", b"", 8, 2), 0)
    with pytest.raises(ProofError):
        prove_device(ChallengeParams("c", SEED, 8, 2), -1)
    params = ChallengeParams("c", SEED, 8, 2)
    tree = MerkleTree.from_row_digests(bytes(16 * 15))
    with pytest.raises(ProofError):
        open_rows(params, 0, tree, [0])
    with pytest.raises(ProofError):
        open_rows(params, 0, prove_device(params, 0).tree or tree, [16])


def test_choose_rows() -> None:
    rng = random.Random(7)
    rows = choose_rows(rng, 100, 10)
    assert len(set(rows)) == 10
    assert all(0 <= r < 100 for r in rows)
    assert choose_rows(rng, 5, 10) == [0, 1, 2, 3, 4]
    assert choose_rows(rng, 0, 3) == []
    with pytest.raises(ProofError):
        choose_rows(rng, 10, -1)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.binary(min_size=16, max_size=64),
    n=st.integers(1, 24),
    count=st.integers(1, 4),
    device=st.integers(0, 3),
    k=st.integers(0, 12),
    rng_seed=st.integers(0, 2**32),
)
def test_honest_prover_always_passes(
    seed: bytes, n: int, count: int, device: int, k: int, rng_seed: int
) -> None:
    params = ChallengeParams("h", seed, n, count)
    proof = prove_device(params, device)
    assert proof.tree is not None
    rows = choose_rows(random.Random(rng_seed), params.rows, k)
    openings = open_rows(params, device, proof.tree, rows)
    verdict = verify_openings(params, device, proof.root, openings, rows)
    assert verdict.ok, verdict.reason
    assert verdict.reason == "ok"


# --- cheating -------------------------------------------------------------------------------


def cheating_commitment(
    params: ChallengeParams, device: int, bad_rows: list[int]
) -> tuple[np.ndarray, MerkleTree]:
    """Returns products with ``bad_rows`` corrupted, and a tree committing to the corrupted rows."""
    values = all_rows(params, device)
    for r in bad_rows:
        values[r, r % params.n] += 1
    return values, MerkleTree.from_row_digests(row_digests(np, values))


def openings_of(values: np.ndarray, tree: MerkleTree, device: int, rows: list[int]) -> list[Opening]:
    return [Opening(device, r, values[r].astype("<i4").tobytes(), tree.proof(r)) for r in rows]


def test_committed_wrong_row_is_wrong() -> None:
    params = ChallengeParams("c", SEED, 12, 2)
    values, tree = cheating_commitment(params, 0, [5])
    rows = [1, 5, 20]
    verdict = verify_openings(params, 0, tree.root, openings_of(values, tree, 0, rows), rows)
    assert not verdict.ok
    assert verdict.reason == "row 5 of device 0 is wrong"
    # Not opening the bad row lets it through: detection is probabilistic (see the rate test).
    assert verify_openings(params, 0, tree.root, openings_of(values, tree, 0, [1, 20]), [1, 20]).ok


def test_sending_a_row_other_than_committed_does_not_match() -> None:
    params = ChallengeParams("c", SEED, 12, 2)
    proof = prove_device(params, 2)
    assert proof.tree is not None
    rows = [3, 14]
    openings = open_rows(params, 2, proof.tree, rows)
    values = np.frombuffer(openings[1].values, dtype="<i4").copy()
    values[0] -= 1
    openings[1] = replace(openings[1], values=values.astype("<i4").tobytes())
    verdict = verify_openings(params, 2, proof.root, openings, rows)
    assert not verdict.ok
    assert verdict.reason == "row 14 of device 2 does not match the commitment"


def test_proof_of_another_row_does_not_match() -> None:
    params = ChallengeParams("c", SEED, 12, 2)
    proof = prove_device(params, 0)
    assert proof.tree is not None
    openings = open_rows(params, 0, proof.tree, [3, 4])
    openings[0] = replace(openings[0], proof=openings[1].proof)
    verdict = verify_openings(params, 0, proof.root, openings, [3, 4])
    assert verdict.reason == "row 3 of device 0 does not match the commitment"


def test_opening_set_and_shape_failures() -> None:
    params = ChallengeParams("c", SEED, 12, 2)
    proof = prove_device(params, 0)
    assert proof.tree is not None
    openings = open_rows(params, 0, proof.tree, [3, 4, 9])
    root = proof.root
    assert (
        verify_openings(params, 0, root, openings[:2], [3, 4, 9]).reason == "row 9 of device 0 was not opened"
    )
    assert verify_openings(params, 0, root, openings, [3, 4]).reason == (
        "row 9 of device 0 was opened but not requested"
    )
    assert verify_openings(params, 0, root, [*openings, openings[0]], [3, 4, 9]).reason == (
        "row 3 of device 0 was opened twice"
    )
    short = [replace(openings[0], values=openings[0].values[:-4]), *openings[1:]]
    assert verify_openings(params, 0, root, short, [3, 4, 9]).reason == (
        "row 3 of device 0 has 44 bytes of values, expected 48"
    )
    other_device = [replace(o, device_index=1) for o in openings]
    assert verify_openings(params, 0, root, other_device, [3, 4, 9]).reason == (
        "row 3 was opened for device 1, not 0"
    )
    assert verify_openings(params, 0, root, [], []).ok
    with pytest.raises(ProofError):
        verify_openings(params, 0, root, openings, [3, 3])
    with pytest.raises(ProofError):
        verify_openings(params, 0, root, openings, [24])


def test_opening_the_wrong_device_is_wrong() -> None:
    # Device 1's honest rows, committed and opened as device 0's, are not device 0's products.
    params = ChallengeParams("c", SEED, 12, 2)
    proof = prove_device(params, 1)
    assert proof.tree is not None
    openings = [replace(o, device_index=0) for o in open_rows(params, 1, proof.tree, [7])]
    assert verify_openings(params, 0, proof.root, openings, [7]).reason == "row 7 of device 0 is wrong"


# --- detection rate ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "count", "bad", "k"), [(16, 4, 6, 8), (16, 8, 3, 16)])
def test_detection_rate_matches_hypergeometric(n: int, count: int, bad: int, k: int) -> None:
    """A prover that commits to ``bad`` wrong rows out of N is caught with P = 1 - C(N-bad, k) / C(N, k).

    ``choose_rows`` samples k *distinct* rows, so the chance that no bad row is opened is
    hypergeometric, not ``(1 - f)**k`` (which assumes sampling with replacement and slightly
    underestimates detection). Each trial runs the real ``verify_openings``.
    """
    params = ChallengeParams("rate", SEED, n, count)
    num = params.rows
    rng = random.Random(2026)
    bad_rows = rng.sample(range(num), bad)
    values, tree = cheating_commitment(params, 0, bad_rows)
    every = openings_of(values, tree, 0, list(range(num)))
    trials = 2000
    caught = 0
    for _ in range(trials):
        rows = choose_rows(rng, num, k)
        verdict = verify_openings(params, 0, tree.root, [every[r] for r in rows], rows)
        if not verdict.ok:
            assert verdict.reason.endswith("is wrong")
            caught += 1
    expected = 1 - math.comb(num - bad, k) / math.comb(num, k)
    sigma = math.sqrt(expected * (1 - expected) / trials)
    assert abs(caught / trials - expected) <= 4 * sigma, (caught / trials, expected)
