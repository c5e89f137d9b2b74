"""Benchmark of the King's global scheduler (``king.scheduler``), pure Python, in one process.

Setup: ``--providers`` providers (default 10,000) in ``--pools`` queen pools (20), of mixed models
(H100 … CPU, weighted like a marketplace), 1–8 GPUs each, asks around each model's base price, random
reputation and uptime, 10% not yet measured (tflops 0.0). ``--jobs`` jobs (50,000) from ``--renters``
renters (200, Zipf-like: a few renters submit most jobs) with mixed specs: any model, a named model,
minimum VRAM, minimum TFLOP/s, tight and loose price ceilings, 1 to 8 GPUs.

Phases:

* ``fill``: one ``schedule()`` call places as many of the 50,000 queued jobs as fit (batch rate).
* ``churn``: jobs run for a random number of placement ticks (a simulated clock that advances by one
  per placement) and are released when they end, so capacity churns; the loop releases the jobs that
  are due, then calls ``schedule(max_placements=1)`` and times that call. When nothing fits, the clock
  jumps to the next job end. Every ``--refresh-every`` placements one pool sends a new snapshot (a few
  providers' reputation and uptime changed), as queens do. The run ends when every job is placed.

Two scenarios run on the same pools: ``mixed_specs`` (the job mix as listed: few distinct specs) and
``distinct_prices`` (each job its own price ceiling, as when renters price from a live quote: no two
jobs alike, so nothing can be remembered per identical spec).

Figures: ``placements_per_s`` = churn placements / churn wall seconds (releases and snapshot refreshes
included); ``p50_ms``/``p99_ms`` = latency of the single ``schedule(max_placements=1)`` calls that placed
a job. Targets: >= 5,000 placements/s and p99 <= 10 ms. The full run repeats each scenario with
``--repeat`` seeds and reports its median run; ``--quick`` runs each once. The top-level figures are
those of ``mixed_specs``; ``scheduler.target_met`` needs both scenarios to meet the targets.

The report is ``{"scheduler": {...}, "placements_per_s": ..., "p99_ms": ..., ...}``: further parts
(e.g. a gateway benchmark) add their own top-level section beside ``scheduler``.

Usage: ``python bench/scheduler.py [--quick] [--out bench/results/scheduler.json]``.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import format_table, machine_info, percentile, write_json

from blendr.proof.fingerprints import FINGERPRINTS
from king.pricing import DEFAULT_BASE_PER_GPU_HOUR, Pricer, tokens
from king.scheduler import JobSpec, PoolSnapshot, ProviderOffer, Scheduler

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "scheduler.json"
TARGET_PLACEMENTS_PER_S = 5000.0
TARGET_P99_MS = 10.0
MIN_REPUTATION = 2500
GIB = 2**30

# Share of providers per model (a marketplace has more consumer cards than H200s).
MODEL_WEIGHTS = {
    "h200": 2,
    "h100-sxm": 8,
    "h100-pcie": 5,
    "a100-80gb": 9,
    "a100-40gb": 5,
    "l40s": 6,
    "rtx-4090": 20,
    "rtx-3090": 10,
    "a10": 6,
    "t4": 8,
    "v100": 4,
    "cpu": 12,
}
GPU_COUNTS = (1, 2, 3, 4, 6, 8)
GPU_WEIGHTS = (25, 25, 5, 20, 5, 20)


def _base(model: str) -> int:
    return DEFAULT_BASE_PER_GPU_HOUR[model]


# (spec, weight): the job mix. Ceilings are in tokens per GPU-hour; 0 = no ceiling.
JOB_MIX: tuple[tuple[JobSpec, int], ...] = (
    (JobSpec(gpus=1), 18),
    (JobSpec(gpus=2), 6),
    (JobSpec(gpus=1, gpu_model="rtx-4090", max_price_per_gpu_hour=tokens("1.0")), 14),
    (JobSpec(gpus=1, gpu_model="rtx-3090"), 8),
    (JobSpec(gpus=2, gpu_model="a100-80gb"), 8),
    (JobSpec(gpus=4, gpu_model="h100-sxm", max_price_per_gpu_hour=tokens("5.0")), 5),
    (JobSpec(gpus=8, gpu_model="h100-sxm"), 2),
    (JobSpec(gpus=1, min_vram_bytes=40 * GIB), 8),
    (JobSpec(gpus=4, min_vram_bytes=80 * GIB), 3),
    (JobSpec(gpus=2, min_tflops=30.0), 6),
    (JobSpec(gpus=1, gpu_model="cpu"), 8),
    (JobSpec(gpus=1, gpu_model="t4", max_price_per_gpu_hour=tokens("0.2")), 5),  # tight: fails when busy
    (JobSpec(gpus=2, gpu_model="l40s", min_tflops=80.0), 4),
    (JobSpec(gpus=1, gpu_model="a10", max_price_per_gpu_hour=tokens("0.6")), 5),
)


@dataclass(frozen=True)
class Size:
    """How big one run is."""

    providers: int
    pools: int
    jobs: int
    renters: int
    mean_duration: int  # ticks (placements) a job runs on average
    refresh_every: int  # placements between two pool snapshots in the churn phase
    distinct_prices: bool = False  # every job its own price ceiling: no two specs alike


class BenchError(Exception):
    """The benchmark cannot go on (e.g. jobs that can never be placed)."""


def _address(kind: int, i: int) -> str:
    return f"0x{kind:02x}{i:038x}"


def build_pools(rng: random.Random, size: Size) -> list[PoolSnapshot]:
    """``size.providers`` offers spread round robin over ``size.pools`` queens."""
    models, weights = list(MODEL_WEIGHTS), list(MODEL_WEIGHTS.values())
    queens = [_address(0xEE, q) for q in range(size.pools)]
    members: list[list[ProviderOffer]] = [[] for _ in queens]
    for i in range(size.providers):
        model = rng.choices(models, weights)[0]
        fp = FINGERPRINTS[model]
        q = i % size.pools
        members[q].append(
            ProviderOffer(
                provider=_address(0xAA, i),
                queen=queens[q],
                gpu_model=model,
                gpus=rng.choices(GPU_COUNTS, GPU_WEIGHTS)[0],
                vram_bytes=fp.memory_bytes if fp.memory_bytes is not None else 16 * GIB,
                tflops=0.0 if rng.random() < 0.1 else round(fp.fp32_tflops * rng.uniform(0.85, 1.0), 2),
                ask_per_gpu_hour=int(_base(model) * rng.uniform(0.4, 1.1)),
                reputation=rng.randint(2000, 10_000),
                uptime=round(rng.uniform(0.7, 1.0), 4),
            )
        )
    return [PoolSnapshot(queen=queens[q], providers=tuple(members[q]), seq=1) for q in range(size.pools)]


def build_jobs(rng: random.Random, size: Size) -> list[tuple[str, str, JobSpec, int]]:
    """``(job_id, renter, spec, duration)`` for every job, renters Zipf-like."""
    renters = [_address(0xBB, r) for r in range(size.renters)]
    renter_weights = [1.0 / (r + 1) for r in range(size.renters)]
    specs, spec_weights = [s for s, _ in JOB_MIX], [w for _, w in JOB_MIX]
    out = []
    for j in range(size.jobs):
        renter = rng.choices(renters, renter_weights)[0]
        spec = rng.choices(specs, spec_weights)[0]
        if size.distinct_prices:
            base = spec.max_price_per_gpu_hour or tokens("4.0")
            spec = replace(spec, max_price_per_gpu_hour=int(base * rng.uniform(0.9, 1.5)))
        duration = max(1, int(size.mean_duration * rng.uniform(0.2, 1.8)))
        out.append((f"job-{j}", renter, spec, duration))
    return out


def _refreshed(rng: random.Random, snap: PoolSnapshot) -> PoolSnapshot:
    """The pool's next snapshot: 5% of its providers with a new reputation and uptime."""
    offers = list(snap.providers)
    for i in rng.sample(range(len(offers)), max(1, len(offers) // 20)):
        o = offers[i]
        offers[i] = ProviderOffer(
            provider=o.provider,
            queen=o.queen,
            gpu_model=o.gpu_model,
            gpus=o.gpus,
            vram_bytes=o.vram_bytes,
            tflops=o.tflops,
            ask_per_gpu_hour=o.ask_per_gpu_hour,
            reputation=min(10_000, max(0, o.reputation + rng.randint(-300, 300))),
            uptime=min(1.0, max(0.0, round(o.uptime + rng.uniform(-0.02, 0.02), 4))),
        )
    return PoolSnapshot(queen=snap.queen, providers=tuple(offers), seq=snap.seq + 1)


def _ms_stats(values_ns: Sequence[int]) -> dict[str, float | int | None]:
    if not values_ns:
        return {"n": 0, "p50": None, "p99": None, "max": None, "mean": None}
    p50, p99 = percentile(values_ns, 50), percentile(values_ns, 99)
    assert p50 is not None and p99 is not None
    return {
        "n": len(values_ns),
        "p50": round(p50 / 1e6, 4),
        "p99": round(p99 / 1e6, 4),
        "max": round(max(values_ns) / 1e6, 4),
        "mean": round(sum(values_ns) / len(values_ns) / 1e6, 4),
    }


def run_once(size: Size, seed: int) -> dict[str, Any]:
    """One whole run (setup, fill, churn) with its figures."""
    rng = random.Random(seed)
    pools = build_pools(rng, size)
    jobs = build_jobs(rng, size)
    duration = {job_id: d for job_id, _, _, d in jobs}
    sched = Scheduler(Pricer(), min_reputation=MIN_REPUTATION)

    t0 = time.perf_counter()
    for snap in pools:
        sched.update_pool(snap)
    t_pools = time.perf_counter() - t0
    t0 = time.perf_counter()
    for job_id, renter, spec, _ in jobs:
        sched.submit(job_id, renter, spec)
    t_submit = time.perf_counter() - t0
    gpus_total = sum(o.gpus_total for o in sched.offers())

    # fill: one unbounded call
    t0 = time.perf_counter()
    filled = sched.schedule()
    t_fill = time.perf_counter() - t0
    running: list[tuple[int, str]] = [(duration[p.job_id], p.job_id) for p in filled]
    heapq.heapify(running)
    util_after_fill = sum(p.gpus for p in filled) / gpus_total

    # churn: release what is due, place one job, advance the clock by one per placement
    now = 0
    latency: list[int] = []
    empty_calls: list[int] = []
    release_ns: list[int] = []
    refresh_ns: list[int] = []
    clock_jumps = 0
    refresh_pool = 0
    busy_gpus = sum(p.gpus for p in filled)
    util_samples: list[float] = []
    gc.collect()
    t_churn0 = time.perf_counter()
    while sched.queued():
        while running and running[0][0] <= now:
            _, job_id = heapq.heappop(running)
            placement = sched.placement(job_id)
            assert placement is not None
            busy_gpus -= placement.gpus
            t = time.perf_counter_ns()
            sched.release(job_id)
            release_ns.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        out = sched.schedule(max_placements=1)
        dt = time.perf_counter_ns() - t
        if not out:
            empty_calls.append(dt)
            if not running:
                raise BenchError(f"{sched.queued()} jobs can never be placed")
            now = running[0][0]
            clock_jumps += 1
            continue
        latency.append(dt)
        now += 1
        heapq.heappush(running, (now + duration[out[0].job_id], out[0].job_id))
        busy_gpus += out[0].gpus
        if len(latency) % size.refresh_every == 0:
            util_samples.append(busy_gpus / gpus_total)
            pools[refresh_pool] = _refreshed(rng, pools[refresh_pool])
            t = time.perf_counter_ns()
            sched.update_pool(pools[refresh_pool])
            refresh_ns.append(time.perf_counter_ns() - t)
            refresh_pool = (refresh_pool + 1) % len(pools)
    t_churn = time.perf_counter() - t_churn0

    churn_placements = len(latency)
    lat = _ms_stats(latency)
    return {
        "seed": seed,
        "gpus_total": gpus_total,
        "setup": {
            "update_pool_s": round(t_pools, 3),
            "submit_s": round(t_submit, 3),
            "submits_per_s": round(size.jobs / t_submit, 1),
        },
        "fill": {
            "placements": len(filled),
            "secs": round(t_fill, 3),
            "placements_per_s": round(len(filled) / t_fill, 1) if t_fill else None,
            "gpu_utilization_after": round(util_after_fill, 3),
        },
        "churn": {
            "placements": churn_placements,
            "secs": round(t_churn, 3),
            "placements_per_s": round(churn_placements / t_churn, 1) if t_churn else None,
            "schedule_only_placements_per_s": (
                round(churn_placements / (sum(latency) / 1e9), 1) if latency else None
            ),
            "latency_ms": lat,
            "empty_schedule_calls_ms": _ms_stats(empty_calls),
            "clock_jumps": clock_jumps,
            "releases": len(release_ns),
            "release_ms": _ms_stats(release_ns),
            "snapshot_refreshes": len(refresh_ns),
            "snapshot_refresh_ms": _ms_stats(refresh_ns),
            "gpu_utilization_mean": round(statistics.fmean(util_samples), 3) if util_samples else None,
        },
        "placements_per_s": round(churn_placements / t_churn, 1) if t_churn else None,
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
    }


SCENARIOS = {
    "mixed_specs": "the job mix as listed: 14 specs, each with its fixed price ceiling",
    "distinct_prices": "the same mix, each job with its own ceiling (0.9-1.5 x the listed one, 4 tokens "
    "where none): no two jobs share a spec",
}
HEADLINE = "mixed_specs"


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    median = sorted(runs, key=lambda r: r["placements_per_s"])[len(runs) // 2]
    return {
        "placements_per_s": median["placements_per_s"],
        "p50_ms": median["p50_ms"],
        "p99_ms": median["p99_ms"],
        "median_seed": median["seed"],
        "target_met": median["placements_per_s"] >= TARGET_PLACEMENTS_PER_S
        and median["p99_ms"] <= TARGET_P99_MS,
        "runs": runs,
    }


def run_scheduler_part(size: Size, seeds: Sequence[int]) -> dict[str, Any]:
    """Runs every scenario once per seed; each reports its median run, the headline is ``mixed_specs``."""
    scenarios: dict[str, Any] = {}
    for name in SCENARIOS:
        runs = []
        for seed in seeds:
            run = run_once(replace(size, distinct_prices=name == "distinct_prices"), seed)
            print(
                f"  {name} seed {seed}: {run['placements_per_s']:.0f} placements/s, "
                f"p50 {run['p50_ms']:.3f} ms, p99 {run['p99_ms']:.3f} ms"
            )
            runs.append(run)
        scenarios[name] = {"description": SCENARIOS[name], **_summary(runs)}
    head = scenarios[HEADLINE]
    return {
        "placements_per_s": head["placements_per_s"],
        "p50_ms": head["p50_ms"],
        "p99_ms": head["p99_ms"],
        "headline_scenario": HEADLINE,
        "targets": {"placements_per_s": TARGET_PLACEMENTS_PER_S, "p99_ms": TARGET_P99_MS},
        "target_met": all(sc["target_met"] for sc in scenarios.values()),
        "params": {
            "providers": size.providers,
            "pools": size.pools,
            "jobs": size.jobs,
            "renters": size.renters,
            "mean_duration_ticks": size.mean_duration,
            "refresh_every": size.refresh_every,
            "min_reputation": MIN_REPUTATION,
            "job_mix": [
                {
                    "gpus": s.gpus,
                    "gpu_model": s.gpu_model,
                    "min_vram_gib": s.min_vram_bytes // GIB,
                    "min_tflops": s.min_tflops,
                    "max_price_tokens": s.max_price_per_gpu_hour / 10**18,
                    "weight": w,
                }
                for s, w in JOB_MIX
            ],
        },
        "definitions": {
            "placements_per_s": "churn phase: placements / wall seconds of the loop (releases and "
            "snapshot refreshes included)",
            "latency_ms": "one schedule(max_placements=1) call that placed a job",
            "schedule_only_placements_per_s": "churn placements / seconds spent inside those calls",
            "fill": "one unbounded schedule() call with every job queued",
            "empty_schedule_calls_ms": "schedule(max_placements=1) calls that found nothing to place",
        },
        "scenarios": scenarios,
    }


def _table(part: dict[str, Any]) -> str:
    rows = []
    for name, scenario in part["scenarios"].items():
        for run in scenario["runs"]:
            fill, churn = run["fill"], run["churn"]
            rows.append(
                [
                    f"{name} #{run['seed']}",
                    f"{fill['placements']}",
                    f"{fill['placements_per_s']:.0f}",
                    f"{churn['placements']}",
                    f"{churn['placements_per_s']:.0f}",
                    f"{churn['latency_ms']['p50']:.3f}",
                    f"{churn['latency_ms']['p99']:.3f}",
                    f"{churn['latency_ms']['max']:.2f}",
                    f"{churn['release_ms']['p99']:.3f}",
                    f"{churn['snapshot_refresh_ms']['p99']:.1f}",
                    f"{churn['gpu_utilization_mean']:.2f}",
                ]
            )
    head = [
        "scenario #seed",
        "fill",
        "fill/s",
        "churn",
        "churn/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "release p99 ms",
        "snapshot p99 ms",
        "util",
    ]
    return format_table(head, rows)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints a table and writes the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one run per scenario instead of --repeat")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output (default %(default)s)")
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--renters", type=int, default=200)
    parser.add_argument("--mean-duration", type=int, default=15_000, help="mean job run time in placements")
    parser.add_argument("--refresh-every", type=int, default=1000, help="placements between pool snapshots")
    parser.add_argument("--repeat", type=int, default=3, help="runs (seeds) per scenario in the full mode")
    parser.add_argument("--seed", type=int, default=1, help="first seed")
    args = parser.parse_args(argv)
    if min(args.providers, args.pools, args.jobs, args.renters, args.mean_duration, args.refresh_every) < 1:
        parser.error("sizes must be >= 1")
    size = Size(args.providers, args.pools, args.jobs, args.renters, args.mean_duration, args.refresh_every)
    seeds = [args.seed] if args.quick else [args.seed + i for i in range(max(1, args.repeat))]
    started = time.monotonic()
    print(
        f"scheduler: {size.providers} providers in {size.pools} pools, {size.jobs} jobs from "
        f"{size.renters} renters, {len(seeds)} run(s) per scenario"
    )
    try:
        part = run_scheduler_part(size, seeds)
    except BenchError as exc:
        print(f"scheduler benchmark failed: {exc}")
        return 1
    report: dict[str, Any] = {
        "benchmark": "scheduler",
        "mode": "quick" if args.quick else "full",
        "placements_per_s": part["placements_per_s"],
        "p50_ms": part["p50_ms"],
        "p99_ms": part["p99_ms"],
        "providers": size.providers,
        "pools": size.pools,
        "jobs": size.jobs,
        "renters": size.renters,
        "machine": machine_info(),
        "scheduler": part,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print()
    print(_table(part))
    for name, scenario in part["scenarios"].items():
        print(
            f"{name}: placements_per_s = {scenario['placements_per_s']:.0f} "
            f"(target >= {TARGET_PLACEMENTS_PER_S:.0f}), p99_ms = {scenario['p99_ms']:.3f} "
            f"(target <= {TARGET_P99_MS:g}): {'met' if scenario['target_met'] else 'NOT met'}"
        )
    write_json(args.out, report)
    print(f"wrote {args.out} ({report['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
