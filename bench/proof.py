"""Benchmark of the proof-of-GPU math on this machine (NumPy, CPU).

For each matrix size n it measures the prover's work (``prove_device``: generation, products, row
hashing, Merkle tree) and the queen's verification of k = 16 opened rows (``choose_rows`` +
``verify_openings``; building the openings is the provider's work and is not counted). The
headline is ``verify_cost_ratio`` = verifier CPU seconds (median of several checks) / prover CPU
seconds: the queen must be able to check a challenge for a small fraction (target 1%) of what it
costs to answer it. CPU time includes OpenBLAS worker threads, which spin briefly after each call;
on small VMs the verifier's figure is noisy (page faults on fresh memory), hence the median.

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

from blendr.proof.params import ChallengeParams
from blendr.proof.prover import open_rows, prove_device
from blendr.proof.verifier import choose_rows, verify_openings

K = 16
TARGET = 0.01
QUICK = ((256, 4), (512, 4), (1024, 4))
FULL = ((512, 8), (1024, 8), (2048, 8), (4096, 8))
VERIFY_REPEATS = 7
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "proof.json"


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
    params = ChallengeParams(f"bench-{n}", hashlib.sha256(b"bench/proof.py %d" % n).digest(), n, count)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    proof = prove_device(params, 0, xp=np)
    prover_cpu = time.process_time() - cpu0
    prover_wall = time.perf_counter() - wall0
    assert proof.tree is not None

    verify_cpu: list[float] = []
    for _ in range(VERIFY_REPEATS):
        start = time.process_time()
        rows = choose_rows(rng, params.rows, K)
        chose = time.process_time() - start
        openings = open_rows(params, 0, proof.tree, rows)  # the provider's work: not counted
        start = time.process_time()
        verdict = verify_openings(params, 0, proof.root, openings, rows)
        verify_cpu.append(chose + time.process_time() - start)
        if not verdict.ok:
            raise SystemExit(f"honest proof failed verification: {verdict.reason}")
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
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Formats the results as a fixed-width table."""
    head = ("n", "count", "prover work s", "prover cpu s", "TFLOP/s", "verify cpu ms", "verify/prover", "")
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
                "production" if r["production"] else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output (default %(default)s)")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    rng = random.Random(2026)
    prove_device(ChallengeParams("warm-up", bytes(16), 128, 2), 0, xp=np)  # load BLAS, start its threads
    results = [measure(n, count, rng) for n, count in sizes]
    production_n = max(n for n, _ in sizes)
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
        "target_met": production["verify_cost_ratio"] <= TARGET,
        "results": results,
    }
    print(table(results))
    print(
        f"\nproduction size n={production_n}: verify/prover CPU = {production['verify_cost_ratio']:.4f} "
        f"(target {TARGET}: {'met' if report['target_met'] else 'NOT met'}); "
        f"prover {production['prover_tflops']:.4f} TFLOP/s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
