"""The memory probe's primitives: keyed row digests, probe blocks, and the prover holding its products."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from blendr.errors import ProofError
from blendr.proof import memory
from blendr.proof.generate import compute_rows
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import answer_probe, open_rows, prove_device
from blendr.proof.rowhash import row_digests
from blendr.proof.verifier import verify_openings

KEY = bytes(range(32))


def params(n: int = 32, count: int = 20) -> ChallengeParams:
    return ChallengeParams("m", os.urandom(32), n, count, b_seed=bytes(range(5, 37)), hold=True)


def test_key_vector_is_deterministic_and_keyed() -> None:
    v = memory.key_vector(KEY, 33)
    assert v.dtype == np.int32 and v.shape == (33,)
    np.testing.assert_array_equal(v, memory.key_vector(KEY, 33))
    assert not np.array_equal(v, memory.key_vector(bytes(32), 33))
    with pytest.raises(ProofError):
        memory.key_vector(b"short", 4)


def test_probe_digests_depend_on_the_key_and_on_every_value() -> None:
    rows = np.arange(64, dtype=np.int32).reshape(2, 32)
    keys = memory.key_vector(KEY, 32)
    d = memory.probe_digests(np, rows, keys)
    np.testing.assert_array_equal(d, row_digests(np, rows ^ keys[None, :]))
    other = rows.copy()
    other[1, 31] += 1
    assert d[0].tobytes() == memory.probe_digests(np, other, keys)[0].tobytes()
    assert d[1].tobytes() != memory.probe_digests(np, other, keys)[1].tobytes()
    assert d.tobytes() != memory.probe_digests(np, rows, memory.key_vector(bytes(32), 32)).tobytes()


def test_block_hashes_and_blocks() -> None:
    rows = 2 * memory.BLOCK_ROWS + 3
    digests = os.urandom(rows * 16)
    hashes = memory.block_hashes(digests)
    assert len(hashes) == memory.num_blocks(rows) * 32 == 3 * 32
    last = memory.block_of(digests, rows - 1)
    assert len(last) == 3 * 16 and hashlib.sha256(last).digest() == hashes[64:]
    with pytest.raises(ProofError):
        memory.block_hashes(b"x" * 17)


def test_honest_prover_holds_answers_and_opens_with_probe_blocks() -> None:
    p = params()
    proof = prove_device(p, 1, xp=np, hold=True)
    assert len(proof.held) == p.count and all(h is not None for h in proof.held)
    hashes = answer_probe(p, proof, KEY, xp=np)
    assert proof.held == [] and len(proof.probe_digests) == p.rows * 16
    rows = [0, 300, p.rows - 1]
    assert proof.tree is not None
    openings = open_rows(p, 1, proof.tree, rows, proof.probe_digests)
    assert verify_openings(p, 1, proof.root, openings, rows, probe_key=KEY, probe_hashes=hashes).ok
    wrong_key = verify_openings(p, 1, proof.root, openings, rows, probe_key=bytes(32), probe_hashes=hashes)
    assert not wrong_key.ok and "probe digest of row 0 is wrong" in wrong_key.reason


def test_a_prover_short_of_memory_computes_the_dropped_products_again_to_the_same_answer() -> None:
    p = params()
    product_bytes = p.n * p.n * 4
    short = prove_device(p, 0, xp=np, hold=True, hold_limit_bytes=5 * product_bytes)
    assert sum(h is not None for h in short.held) == 5
    full = prove_device(p, 0, xp=np, hold=True)
    assert answer_probe(p, short, KEY, xp=np) == answer_probe(p, full, KEY, xp=np)


def test_probe_row_check_reasons() -> None:
    p = params(count=10)
    proof = prove_device(p, 0, xp=np, hold=True)
    hashes = answer_probe(p, proof, KEY, xp=np)
    row = 260
    values = compute_rows(p, 0, [row])[0]
    block = memory.block_of(proof.probe_digests, row)
    assert memory.check_probe_row(KEY, p.rows, row, values, block, hashes) == ""
    assert "does not match the probe answer" in memory.check_probe_row(
        KEY, p.rows, row, values, bytes(len(block)), hashes)
    assert "has 16 bytes" in memory.check_probe_row(KEY, p.rows, row, values, block[:16], hashes)
    assert "probe answer has" in memory.check_probe_row(KEY, p.rows, row, values, block, hashes[:-1])


def test_a_proof_made_without_hold_cannot_answer() -> None:
    p = params(count=2)
    with pytest.raises(ProofError, match="holds 0 of 2"):
        answer_probe(p, prove_device(p, 0, xp=np), KEY, xp=np)
