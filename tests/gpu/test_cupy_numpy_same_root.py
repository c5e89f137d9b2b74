"""On a CUDA GPU, CuPy and NumPy provers commit to the same bits."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from blendr.proof.generate import gen_matrix
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import get_array_module, prove_device
from blendr.proof.rowhash import row_digests

pytestmark = pytest.mark.gpu

SEED = bytes(range(32))


@pytest.fixture(scope="module")
def cupy() -> ModuleType:
    xp, backend = get_array_module()
    if backend != "cupy":
        pytest.skip("CuPy or a CUDA GPU is not available")
    return xp


def test_generation_and_row_hash_are_bit_identical(cupy: ModuleType) -> None:
    xp = cupy
    for n in (1, 7, 64, 513):
        on_gpu = gen_matrix(xp, 0xDEADBEEF, n)
        np.testing.assert_array_equal(on_gpu.get(), gen_matrix(np, 0xDEADBEEF, n))
        values = np.random.default_rng(n).integers(-(2**31), 2**31 - 1, size=(9, n), dtype=np.int32)
        digests = row_digests(xp, xp.asarray(values)).get()
        np.testing.assert_array_equal(digests, row_digests(np, values))


@pytest.mark.parametrize(("n", "count", "b_seed"), [(64, 3, b""), (257, 2, b""), (1024, 4, SEED[::-1]),
                                                     (4096, 2, SEED[::-1])])
def test_same_root_as_numpy(cupy: ModuleType, n: int, count: int, b_seed: bytes) -> None:
    params = ChallengeParams("gpu", SEED, n, count, b_seed=b_seed)
    gpu = prove_device(params, 1, xp=cupy)
    cpu = prove_device(params, 1, xp=np)
    assert gpu.backend == "cupy"
    assert gpu.root == cpu.root
    assert gpu.leaf_digests == cpu.leaf_digests
    assert gpu.peak_memory_bytes > 0
    print(
        f"n={n} count={count}: cupy {params.flops / gpu.work_seconds / 1e12:.2f} TFLOP/s, "
        f"numpy {params.flops / cpu.work_seconds / 1e12:.3f} TFLOP/s, "
        f"peak pool {gpu.peak_memory_bytes / 2**20:.0f} MiB"
    )


def test_throughput_at_production_size_meets_the_fingerprint_floor(cupy: ModuleType) -> None:
    """The queen's GPU challenge size, on this GPU, clears the speed floor of its own fingerprint."""
    from blendr.config import QueenConfig
    from blendr.proof import fingerprints

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    model = fingerprints.match_model(name, int(props["totalGlobalMem"]))
    if model is None:
        pytest.skip(f"no fingerprint for {name}")
    fp = fingerprints.get(model)
    q = QueenConfig()
    params = ChallengeParams("gpu", SEED, q.challenge_n_gpu, 8, b_seed=SEED[::-1])
    prove_device(params, 0, xp=cupy)  # warm up cuBLAS and the pool
    proof = prove_device(params, 0, xp=cupy)
    tflops = params.flops / proof.work_seconds / 1e12
    print(f"{name} [{model}] n={params.n} count={params.count}: {tflops:.2f} TFLOP/s FP32 incl. generation and "
          f"hashing; fingerprint {fp.fp32_tflops} ({fp.source})")
    assert tflops >= q.speed_min_fraction * fp.fp32_tflops
