"""Epoch-shared B: the verifier regenerates B once per epoch, and nothing about the proof weakens."""

from __future__ import annotations

import os

import numpy as np
import pytest

from blendr.errors import ProofError
from blendr.proof import generate
from blendr.proof.generate import compute_rows, gen_matrix, matrix_key
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import open_rows, prove_device
from blendr.proof.verifier import verify_openings

EPOCH = bytes(range(32))


def params(**kw: object) -> ChallengeParams:
    base: dict[str, object] = {"challenge_id": "c", "seed": os.urandom(32), "n": 32, "count": 3, "b_seed": EPOCH}
    base.update(kw)
    return ChallengeParams(**base)  # type: ignore[arg-type]


def test_honest_prover_passes_with_an_epoch_b() -> None:
    p = params()
    for device in (0, 3):
        proof = prove_device(p, device, xp=np)
        rows = [0, 17, 40, p.rows - 1]
        assert verify_openings(p, device, proof.root, open_rows(p, device, proof.tree, rows), rows).ok  # type: ignore[arg-type]


def test_epoch_b_is_shared_but_products_are_not() -> None:
    p = params()
    b = gen_matrix(np, matrix_key(EPOCH, 0, "B", 0), p.n)
    for device in (0, 1):
        a0 = gen_matrix(np, matrix_key(p.seed, device, "A", 0), p.n)
        np.testing.assert_array_equal(compute_rows(p, device, range(p.n)), (a0 @ b).astype(np.int32))
    assert prove_device(p, 0, xp=np).root != prove_device(p, 1, xp=np).root
    # Same epoch, fresh seed: every product changes.
    assert prove_device(p, 0, xp=np).root != prove_device(params(seed=os.urandom(32)), 0, xp=np).root


def test_a_prover_using_the_wrong_b_fails() -> None:
    p = params()
    per_challenge_b = ChallengeParams(p.challenge_id, p.seed, p.n, p.count)  # ignores the epoch
    proof = prove_device(per_challenge_b, 0, xp=np)
    rows = [1, 2, 3]
    verdict = verify_openings(p, 0, proof.root, open_rows(per_challenge_b, 0, proof.tree, rows), rows)  # type: ignore[arg-type]
    assert not verdict.ok and verdict.reason.endswith("is wrong")


def test_epoch_b_is_generated_once_per_epoch_and_size() -> None:
    generate.clear_epoch_cache()
    p = params(b_seed=os.urandom(32))
    compute_rows(p, 0, [0])
    first = generate._epoch_b(p.b_seed, p.n)
    compute_rows(p, 5, [1, 2])
    assert generate._epoch_b(p.b_seed, p.n) is first
    assert generate._epoch_b(p.b_seed, p.n + 1) is not first
    for _ in range(generate.EPOCH_B_CACHE_SIZE + 1):
        generate._epoch_b(os.urandom(32), 8)
    assert len(generate._EPOCH_B_CACHE) == generate.EPOCH_B_CACHE_SIZE


@pytest.mark.parametrize("b_seed", [b"short", bytes(65)])
def test_b_seed_length_is_checked(b_seed: bytes) -> None:
    with pytest.raises(ProofError, match="b_seed"):
        params(b_seed=b_seed).validate()
