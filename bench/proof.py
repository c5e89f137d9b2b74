"""Benchmark of the proof-of-GPU math on this machine (NumPy, CPU).

For each matrix size n it measures the prover's work (``prove_device``: generation, products, row
hashing, Merkle tree) and the queen's verification of k = 16 opened rows (``choose_rows`` +
``verify_openings``; building the openings is the provider's work and is not counted). The
headline is ``verify_cost_ratio`` = verifier CPU seconds (median of several checks) / prover CPU
seconds: the queen must be able to check a challenge for a small fraction (target 1%) of what it
costs to answer it. Challenges carry the queen's B epoch (``b_seed``) as the queen sends them, so the
verifier checks each opened row with its epoch's Freivalds projection ``(r, B r mod P)`` (see
``blendr/proof/verifier.py``): the headline is that steady state (projection cached), and
``verify_cost_ratio_cold`` is the first check of an epoch (B generated and projected).
CPU time includes OpenBLAS worker threads, which spin briefly after each call; on small VMs the
verifier's figure is noisy (page faults on fresh memory), hence the median.

The goal figure, ``verify_over_gpu_target_work``, is the queen's verification CPU time for one
device at the default GPU size (n = ``queen.challenge_n_gpu``) divided by the GPU time that device's
challenge is sized for. Model of GPU time: the queen sizes a challenge to ``queen.challenge_target_s``
seconds of FP32 work at the claimed model's fingerprint (``count = ceil(target * fp32 / (2 n**3))``),
so each device's GPU time is ``target_s`` (1 s by default) at its datasheet FP32 rate; verification
is per device too (k rows per device). The per-epoch cold cost is reported beside it, with its
share amortised over the challenges of an epoch at the queen's default rates.

Usage: ``python bench/proof.py [--quick] [--out bench/results/proof.json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from _common import result_path

from blendr.config import QueenConfig
from blendr.proof.generate import clear_epoch_cache, compute_rows
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import open_rows, prove_device
from blendr.proof.verifier import choose_rows, clear_projection_cache, projected_wrong_rows, verify_openings

K = 16
TARGET = 0.01
QUICK = ((256, 4), (512, 4), (1024, 4))
FULL = ((1024, 8), (2048, 8), (4096, 4), (8192, 2))
VERIFY_REPEATS = 7


def machine() -> dict[str, Any]:
    """Describes where the numbers were taken."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def measure(n: int, count: int, rng: random.Random) -> dict[str, Any]:
    """Runs one prover and the verifier's check of k rows for ``(n, count)``."""
    params = ChallengeParams(f"bench-{n}", hashlib.sha256(b"bench/proof.py %d" % n).digest(), n, count,
                             b_seed=hashlib.sha256(b"bench/proof.py epoch %d" % n).digest())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    proof = prove_device(params, 0, xp=np)
    prover_cpu = time.process_time() - cpu0
    prover_wall = time.perf_counter() - wall0
    assert proof.tree is not None

    # The provider's openings are built first: building them runs BLAS on the whole of B, whose worker threads
    # would otherwise still spin (and be counted) while the queen's check is timed.
    trials = []
    for _ in range(VERIFY_REPEATS + 1):
        rows = choose_rows(rng, params.rows, K)
        trials.append((rows, open_rows(params, 0, proof.tree, rows)))
    time.sleep(0.2)
    clear_epoch_cache()
    clear_projection_cache()
    verify_cpu: list[float] = []
    projection_cpu: list[float] = []
    recompute_cpu: list[float] = []
    cold = -1.0
    for rows, openings in trials:
        start = time.process_time()
        verdict = verify_openings(params, 0, proof.root, openings, rows)
        spent = time.process_time() - start
        if not verdict.ok:
            raise SystemExit(f"honest proof failed verification: {verdict.reason}")
        if cold < 0:
            cold = spent  # first check of the epoch: generates and projects B
            continue
        verify_cpu.append(spent)
        # Side by side, the rightness check alone: the projection (now) against recomputing the rows (before).
        claimed = np.frombuffer(b"".join(o.values for o in openings), dtype="<i4").reshape(len(rows), n)
        start = time.process_time()
        projected_wrong_rows(params, 0, rows, claimed)
        projection_cpu.append(time.process_time() - start)
        compute_rows(params, 0, rows)  # warms the epoch's B once (the old check kept it per epoch)
        start = time.process_time()
        compute_rows(params, 0, rows)
        recompute_cpu.append(time.process_time() - start)
    verifier = statistics.median(verify_cpu)
    return {
        "n": n,
        "count": count,
        "rows": params.rows,
        "k": K,
        "flops": params.flops,
        "prover_work_s": round(proof.work_seconds, 6),
        "prover_wall_s": round(prover_wall, 6),
        "prover_cpu_s": round(prover_cpu, 6),
        "prover_tflops": round(params.flops / proof.work_seconds / 1e12, 6),
        "prover_peak_memory_bytes": proof.peak_memory_bytes,
        "verify_cpu_s": round(verifier, 6),
        "verify_cpu_min_s": round(min(verify_cpu), 6),
        "verify_cost_ratio": round(verifier / prover_cpu, 6),
        "verify_cost_ratio_vs_work_wall": round(verifier / proof.work_seconds, 6),
        "verify_cold_cpu_s": round(cold, 6),
        "check_projection_cpu_s": round(statistics.median(projection_cpu), 6),
        "check_recompute_cpu_s": round(statistics.median(recompute_cpu), 6),
        "check_speedup_vs_recompute": round(statistics.median(recompute_cpu) / statistics.median(projection_cpu), 2),
        "verify_cost_ratio_cold": round(cold / prover_cpu, 6),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Formats the results as a fixed-width table."""
    head = ("n", "count", "prover work s", "prover cpu s", "TFLOP/s", "verify cpu ms", "verify/prover",
            "cold ms", "cold/prover", "")
    lines = [head]
    for r in rows:
        lines.append(
            (
                str(r["n"]),
                str(r["count"]),
                f"{r['prover_work_s']:.3f}",
                f"{r['prover_cpu_s']:.3f}",
                f"{r['prover_tflops']:.4f}",
                f"{r['verify_cpu_s'] * 1e3:.2f}",
                f"{r['verify_cost_ratio']:.4f}",
                f"{r['verify_cold_cpu_s'] * 1e3:.2f}",
                f"{r['verify_cost_ratio_cold']:.4f}",
                "production" if r["production"] else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: bench/results/proof.json, with --quick bench/results/quick/proof.json)")
    args = parser.parse_args(argv)
    args.out = result_path("proof", args.quick, args.out)

    sizes = QUICK if args.quick else FULL
    rng = random.Random(2026)
    prove_device(ChallengeParams("warm-up", bytes(16), 128, 2), 0, xp=np)  # load BLAS, start its threads
    results = [measure(n, count, rng) for n, count in sizes]
    queen = QueenConfig()
    # The queen's GPU challenge size is production; the quick run stops short of it.
    production_n = queen.challenge_n_gpu if not args.quick else max(n for n, _ in sizes)
    for r in results:
        r["production"] = r["n"] == production_n
    production = next(r for r in results if r["production"])
    report = {
        "benchmark": "proof",
        "mode": "quick" if args.quick else "full",
        "machine": machine(),
        "k": K,
        "target": TARGET,
        "production_n": production_n,
        # Met when the queen's check costs at most TARGET of the prover's CPU work here and, at the default
        # GPU size, of the GPU time the challenge is sized for.
        "target_met": production["verify_cost_ratio"] <= TARGET
        and production["verify_cpu_s"] / queen.challenge_target_s <= TARGET,
        "production_is_queen_default": production_n == queen.challenge_n_gpu,
        # A GPU prover is sized to challenge_target_s of work at its fingerprint (configured, not measured
        # here: no GPU). The queen's verification CPU time against that work:
        "challenge_target_s": queen.challenge_target_s,
        "gpu_time_model": (
            "each device's challenge is sized to challenge_target_s of FP32 work at its claimed model's "
            "fingerprint (count = ceil(target_s * fp32_tflops * 1e12 / (2 n^3))), so its GPU time is "
            "challenge_target_s; verification is per device (k rows each)"),
        "verify_over_gpu_target_work": round(production["verify_cpu_s"] / queen.challenge_target_s, 6),
        "verify_cold_over_gpu_target_work": round(production["verify_cold_cpu_s"] / queen.challenge_target_s, 6),
        # The cold cost is paid once per epoch and size; spread over the challenges of one provider in an
        # epoch at the default idle rate (challenge_b_epoch_s / challenge_mean_interval_s of them).
        "challenges_per_epoch_per_provider": round(queen.challenge_b_epoch_s / queen.challenge_mean_interval_s, 3),
        "results": results,
    }
    print(table(results))
    print(
        f"\nproduction size n={production_n}: verify/prover CPU = {production['verify_cost_ratio']:.4f} "
        f"(target {TARGET}: {'met' if report['target_met'] else 'NOT met'}); "
        f"prover {production['prover_tflops']:.4f} TFLOP/s"
        + ("" if report["production_is_queen_default"] else " (quick: not the queen's production size)")
    )
    print(
        f"against a GPU prover doing challenge_target_s={queen.challenge_target_s:g}s of work (configured), "
        f"the queen's {production['verify_cpu_s'] * 1e3:.1f} ms of verification is "
        f"{report['verify_over_gpu_target_work']:.4f} of it (goal {TARGET}); the first check of an epoch "
        f"(B generated and projected) takes {production['verify_cold_cpu_s'] * 1e3:.0f} ms, once per epoch "
        f"for the whole pool"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
