from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import ProofError
from blendr.proof.fingerprints import GIB, Fingerprint, get
from blendr.proof.params import MAX_COUNT, MAX_N, MAX_ROWS, ChallengeParams
from blendr.proof.sizing import deadline_seconds, size_challenge

SEED = bytes(range(16))


def test_derived_quantities() -> None:
    p = ChallengeParams("c", SEED, 1024, 8)
    p.validate()
    assert p.rows == 8192
    assert p.flops == 2 * 8 * 1024**3
    assert p.working_set_bytes == (9 + 8) * 1024 * 1024 * 4


@pytest.mark.parametrize(
    ("seed", "n", "count", "message"),
    [
        (b"", 8, 1, "seed must be 16 to 64 bytes, got 0"),
        (b"x" * 15, 8, 1, "seed must be 16 to 64 bytes, got 15"),
        (b"x" * 65, 8, 1, "seed must be 16 to 64 bytes, got 65"),
        (SEED, 0, 1, "n must be 1 to 16384, got 0"),
        (SEED, MAX_N + 1, 1, "n must be 1 to 16384, got 16385"),
        (SEED, 8, 0, "count must be 1 to 4096, got 0"),
        (SEED, 8, MAX_COUNT + 1, "count must be 1 to 4096, got 4097"),
        (SEED, MAX_N, MAX_ROWS // MAX_N + 1, "exceeds 16777216"),
    ],
)
def test_validate_rejects(seed: bytes, n: int, count: int, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        ChallengeParams("c", seed, n, count).validate()


def test_validate_rejects_non_bytes_seed() -> None:
    with pytest.raises(ProofError):
        ChallengeParams("c", "x" * 16, 8, 1).validate()  # type: ignore[arg-type]


def test_size_for_target_time() -> None:
    h100 = get("h100-sxm")
    # 67 TFLOP/s * 1 s / (2 * 4096**3) = 487.6 -> 488 products; memory allows far more.
    n, count = size_challenge(h100, 4096, 1.0, 4096, 0.9)
    assert (n, count) == (4096, 488)


def test_count_clamps() -> None:
    h100 = get("h100-sxm")
    assert size_challenge(h100, 4096, 1e-9, 4096, 0.9) == (4096, 1)
    assert size_challenge(h100, 4096, 1000.0, 100, 0.9) == (4096, 100)
    # MAX_ROWS / n bounds the number of Merkle leaves.
    cpu = get("cpu")
    assert size_challenge(replace(cpu, fp32_tflops=1e6, element_ns=0.0), 16384, 100.0, 4096, 0.5) == (16384, 1024)


def test_memory_limit_respected() -> None:
    h100 = get("h100-sxm")
    n, count = size_challenge(h100, 16384, 60.0, 4096, 0.8)
    assert n == 16384
    assert ChallengeParams("c", SEED, n, count).working_set_bytes <= 0.8 * h100.memory_bytes  # type: ignore[operator]
    assert ChallengeParams("c", SEED, n, count + 1).working_set_bytes > 0.8 * h100.memory_bytes  # type: ignore[operator]


def test_n_shrinks_when_one_product_does_not_fit() -> None:
    tiny = Fingerprint("tiny", "tiny", 1.0, 0.0, 0.0, 64 * 2**20, "test")
    n, count = size_challenge(tiny, 16384, 1.0, 4096, 1.0)
    assert n == 2048  # 3 * 2048**2 * 4 = 48 MiB fits in 64 MiB; 4096 would need 192 MiB
    assert (2 * count + 1) * n * n * 4 <= 64 * 2**20


@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(["h100-sxm", "t4", "a10", "rtx-4090", "cpu"]),
    n=st.sampled_from([256, 1024, 4096, 8192, 16384]),
    target=st.floats(0.01, 120.0),
    max_count=st.integers(1, 4096),
    fraction=st.floats(0.05, 1.0),
)
def test_sizing_invariants(key: str, n: int, target: float, max_count: int, fraction: float) -> None:
    fp = get(key)
    new_n, count = size_challenge(fp, n, target, max_count, fraction)
    params = ChallengeParams("c", SEED, new_n, count)
    params.validate()
    assert new_n <= n
    assert 1 <= count <= max_count
    if fp.memory_bytes is not None:
        assert params.working_set_bytes <= fraction * fp.memory_bytes


def test_sizing_rejects_bad_arguments() -> None:
    with pytest.raises(ProofError):
        size_challenge(get("t4"), 0, 1.0, 10, 0.5)
    with pytest.raises(ProofError):
        size_challenge(get("t4"), 1024, 0.0, 10, 0.5)
    with pytest.raises(ProofError):
        size_challenge(get("t4"), 1024, 1.0, 10, 0.0)
    with pytest.raises(ProofError):
        size_challenge(Fingerprint("z", "z", 1.0, 0, 0, 4, "test"), 1024, 1.0, 10, 0.5)


def test_deadline() -> None:
    params = ChallengeParams("c", SEED, 4096, 10)
    t4 = get("t4")
    assert deadline_seconds(params, t4, 0.5, 2.0) == pytest.approx(params.flops / (0.5 * 8.1e12) + 2.0)
    cpu = get("cpu")
    assert cpu.min_fraction is not None
    # The CPU's own wide band wins over the global one; its time counts every generated and hashed element.
    elements = (2 * params.count + 1) * params.n**2
    assert deadline_seconds(params, cpu, 0.5, 0.0) == pytest.approx(
        (params.flops / (cpu.fp32_tflops * 1e12) + elements * cpu.element_ns * 1e-9) / cpu.min_fraction
    )
    with pytest.raises(ProofError):
        deadline_seconds(params, t4, 0.0, 1.0)
    assert GIB == 2**30


def test_small_cpu_challenges_are_sized_by_their_elements_not_their_flops() -> None:
    cpu = get("cpu")
    n, count = size_challenge(cpu, 128, 1.0, 4096, 0.5)
    per_product = 2 * 128**3 / (cpu.fp32_tflops * 1e12) + 2 * 128**2 * cpu.element_ns * 1e-9
    assert n == 128 and count == math.ceil(1.0 / per_product)
    # The FLOPs alone would ask for about 30 times as many products.
    assert count * 20 < math.ceil(1.0 * cpu.fp32_tflops * 1e12 / (2 * 128**3))
