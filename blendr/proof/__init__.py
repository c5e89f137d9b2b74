"""Proof of GPU: the math shared by prover (provider) and verifier (queen).

A challenge (:class:`ChallengeParams`) makes every device compute ``count`` exact fp32 matrix
products from counter-generated small-integer inputs (:mod:`.generate`), hash every product row on
the device (:mod:`.rowhash`) and commit to the rows with a SHA-256 Merkle root (:mod:`.merkle`).
The queen opens k random rows and recomputes them with NumPy (:mod:`.verifier`), then compares the
speed and memory with the claimed model's fingerprint (:mod:`.fingerprints`). CuPy is imported
lazily; without a GPU everything runs on NumPy.
"""

from __future__ import annotations

from blendr.proof.fingerprints import FINGERPRINTS, Fingerprint, get, load_measured, match_model
from blendr.proof.generate import compute_rows, gen_matrix, gen_rows, matrix_key
from blendr.proof.merkle import MerkleTree, leaf_hash, verify_proof
from blendr.proof.params import MAX_COUNT, MAX_N, MAX_ROWS, ChallengeParams
from blendr.proof.prover import DeviceProof, Opening, get_array_module, open_rows, prove_device
from blendr.proof.rowhash import row_digests
from blendr.proof.sizing import deadline_seconds, size_challenge
from blendr.proof.verifier import (
    SpeedCheck,
    Verdict,
    check_memory,
    check_speed,
    choose_rows,
    verify_openings,
)

__all__ = [
    "FINGERPRINTS",
    "MAX_COUNT",
    "MAX_N",
    "MAX_ROWS",
    "ChallengeParams",
    "DeviceProof",
    "Fingerprint",
    "MerkleTree",
    "Opening",
    "SpeedCheck",
    "Verdict",
    "check_memory",
    "check_speed",
    "choose_rows",
    "compute_rows",
    "deadline_seconds",
    "gen_matrix",
    "gen_rows",
    "get",
    "get_array_module",
    "leaf_hash",
    "load_measured",
    "match_model",
    "matrix_key",
    "open_rows",
    "prove_device",
    "row_digests",
    "size_challenge",
    "verify_openings",
    "verify_proof",
]
