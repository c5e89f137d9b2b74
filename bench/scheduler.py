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
``--repeat`` seeds and reports its median run; ``--quick`` runs each once, at 1,000 providers, 5,000 jobs,
a mean run time of 1,500 placements and a snapshot every 100 (a smoke run: its figures are not comparable with
the full ones). The top-level figures are those of ``mixed_specs``; ``scheduler.target_met`` needs both
scenarios to meet the targets.

Second part, ``gateway``: the same path through the real gateway on loopback. A server process (pinned to
CPU 0 when there are two) runs the king's renter API as production wires it (``king.app``):
``blendr.rpc.server.start_server`` with TLS off (``rpc.tls=false``), ``RenterGatewayServicer``, ``Sessions``,
``KingCore`` with its placement loop, ``Scheduler`` + ``Pricer``, the real ``SQLiteStore`` (the king's default
store, in a temporary home: every job, event and payload is committed as in production) and INFO logging
to a file. Fake, and not in the figures (see ``bench/_gateway_fakes.py``): Ethereum (an in-memory
``RentalChain`` that answers at once: balances and allowances huge, no nonce used, ``create`` returns a
rental immediately: chain latency is NOT part of these figures) and the queens (always connected, every
assignment accepted); the providers are what queens' snapshots would report, with real secp256k1 keys,
fed to ``KingCore.on_snapshot``.

The pool: ``--gw-providers`` (default ``JobsConfig.candidates`` = 16) h100-sxm providers of ``--gw-gpus``
(128) GPUs each, spread over 10 pools with ``--gw-other-providers`` (984; quick 184) rtx-4090 providers of 8
GPUs, so a quote scans a 1,000-provider pool (quick 200). The renters' jobs (1 × h100-sxm for an hour) match
only the 16: every provider that can take a job is one of the quote's candidates the SDK wrapped the payload
key for. With
more matching providers than candidates the king today places most jobs on a provider outside the
candidates and retries provider after provider (``king.placement.Placer.place`` excludes and requeues); see the
``placement_attempts`` figure, which equals ``jobs`` when that does not happen.

Load: ``--gw-renters`` (100; quick 10) renters with their own eth_account keys, each a real SDK client
(``blendr.client.KingClient`` on its own channel) in this process (CPU 1), sign in and prepare their
``--gw-jobs`` jobs (2 with ``--quick``, 20 otherwise; no job ends, so all must fit the 2,048 GPUs) before
the timer (``prepare``: quote, wallet, payload encryption, key wrapping for the candidates, 4 EIP-712
intents). First one renter alone submits ``solo_jobs`` (20; quick 5) jobs one after the
other (``one_renter``: latency without queueing; it also warms the king up); then all renters at once, each
one job after the other: ``SubmitJob`` (``send``), then ``WatchJob`` (``watch``) until the job's
``scheduled`` event arrives, and the watch is cancelled (which ends the stream on the king).

* ``submit_to_scheduled_ms``: from the start of ``send`` to the arrival of the ``scheduled`` event at the
  client (the renter's view: SubmitJob, the placement loop, the WatchJob call that reports it);
  ``submit_to_scheduled_event_ms``: the same start to the king's timestamp on that event (wall clocks of
  one machine), i.e. without the watch;
* ``submit_rpc_ms``: the SubmitJob call alone;
* ``throughput_jobs_per_s``: jobs / wall seconds of the timed phase (submitted and seen scheduled).

``reads_ms``: one renter's GetQuote, GetWallet and ListJobs, 20 calls each (quick 5), before the timed phase
and after it.

Baseline, in the same run: a bare ``grpc.aio`` unary server (no servicer code: a generic handler that
answers every request with bytes of the size of a SubmitJob answer), in its own process on CPU 0, driven by
the same number of concurrent clients from this process, each its own channel, sending the bytes of a real
``SubmitJobRequest`` with the same authorization metadata, one call after the other (``--gw-bare-calls`` each:
5 per job of a renter, at least 50; quick 20).
``throughput_ratio`` = gateway jobs/s ÷ bare calls/s. Each job takes two calls (SubmitJob and WatchJob)
and the king's placement loop, the bare server one call; when the load generator is busier than the bare
server (see the CPU figures) the bare rate is a lower bound and the ratio an upper bound.

The same gateway load then runs once more against a king whose store is a PostgreSQL database (a fresh one on
a local PostgreSQL 16 started by ``tests/pg.py`` from the ``pgserver`` wheel, fsync off) instead of its SQLite
file: ``gateway.stores`` (also ``gateway_store`` at the top level) gives both submit rates and
``ratio_postgres_to_sqlite``.

Third part, ``deep-queue`` (the king with a long queue, as one renter with 8,100 queued jobs found it): a king
server process as in the gateway part, but its pool has ONE h100-sxm provider with one GPU (and 999 rtx-4090
providers of 8 GPUs; quick 199). A first job takes that GPU and no job ends, so every later job stays queued,
although each is valid and accepted (its quote has that provider as candidate, at a price under the job's max).
``--dq-jobs-per-renter`` (10) jobs per renter, so the renters are ~1,000 SDK clients for 10,000 jobs: the
king's per-renter limit of open jobs (an operator setting) is not what is measured. Every job carries one
intent and one wrapped key. Sequence: the first job is placed; empty queue: health checks on the idle king
for ``--dq-window`` s (6; quick 0.5), then a timed batch of ``--dq-batch`` (500; quick 50) SubmitJob calls from
``--dq-concurrency`` (100; quick 20) renters at once; the fill, through the gateway the same way, up to
``--dq-queued`` (10,000; quick 150) jobs queued; then the same health window and timed batch with the queue
deep. The bench fails if any job left the queue. Health checks are the standard gRPC health service's Check,
started every 10 ms without waiting for the previous one (so a stalled event loop counts for every check it
delays).

* ``deep_queue.health_p99_ms``: health Check p99 over the idle window with the queue deep (goal <= 50 ms);
* ``deep_queue.submit_ratio``: SubmitJob rate of the batch with the queue deep / with it empty (goal >= 0.8).

The report is ``{"scheduler": {...}, "gateway": {...}, "deep_queue": {...}, "placements_per_s": ..., ...}``.

Usage: ``python bench/scheduler.py [--quick] [--part all|scheduler|gateway|deep-queue] [--out PATH]``; the
default output is bench/results/scheduler.json, with ``--quick`` bench/results/quick/scheduler.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import heapq
import itertools
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import format_table, machine_info, percentile, result_path, write_json

from blendr.jobspec import Spec
from blendr.proof.fingerprints import FINGERPRINTS
from king.pricing import DEFAULT_BASE_PER_GPU_HOUR, Pricer, tokens
from king.scheduler import PoolSnapshot, ProviderOffer, Scheduler

ROOT = Path(__file__).resolve().parent.parent
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


ANY_PRICE = tokens("1000000")
"""The ceiling of a mix job that takes any price: far above every ask and quote (a spec always has one)."""


def _spec(gpus: int, gpu_model: str = "", *, min_vram_bytes: int = 0, min_tflops: float = 0.0,
          max_price_per_gpu_hour: int = ANY_PRICE) -> Spec:
    """A renter's spec of the mix; its duration is not used (the scheduler ignores it; jobs run for ticks)."""
    return Spec(gpus, 3600, max_price_per_gpu_hour, gpu_model, min_vram_bytes, min_tflops)


# (spec, weight): the job mix. Ceilings are in tokens per GPU-hour; none given: ANY_PRICE.
JOB_MIX: tuple[tuple[Spec, int], ...] = (
    (_spec(gpus=1), 18),
    (_spec(gpus=2), 6),
    (_spec(gpus=1, gpu_model="rtx-4090", max_price_per_gpu_hour=tokens("1.0")), 14),
    (_spec(gpus=1, gpu_model="rtx-3090"), 8),
    (_spec(gpus=2, gpu_model="a100-80gb"), 8),
    (_spec(gpus=4, gpu_model="h100-sxm", max_price_per_gpu_hour=tokens("5.0")), 5),
    (_spec(gpus=8, gpu_model="h100-sxm"), 2),
    (_spec(gpus=1, min_vram_bytes=40 * GIB), 8),
    (_spec(gpus=4, min_vram_bytes=80 * GIB), 3),
    (_spec(gpus=2, min_tflops=30.0), 6),
    (_spec(gpus=1, gpu_model="cpu"), 8),
    (_spec(gpus=1, gpu_model="t4", max_price_per_gpu_hour=tokens("0.2")), 5),  # tight: fails when busy
    (_spec(gpus=2, gpu_model="l40s", min_tflops=80.0), 4),
    (_spec(gpus=1, gpu_model="a10", max_price_per_gpu_hour=tokens("0.6")), 5),
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


def build_jobs(rng: random.Random, size: Size) -> list[tuple[str, str, Spec, int]]:
    """``(job_id, renter, spec, duration)`` for every job, renters Zipf-like."""
    renters = [_address(0xBB, r) for r in range(size.renters)]
    renter_weights = [1.0 / (r + 1) for r in range(size.renters)]
    specs, spec_weights = [s for s, _ in JOB_MIX], [w for _, w in JOB_MIX]
    out = []
    for j in range(size.jobs):
        renter = rng.choices(renters, renter_weights)[0]
        spec = rng.choices(specs, spec_weights)[0]
        if size.distinct_prices:
            base = tokens("4.0") if spec.max_price_per_gpu_hour == ANY_PRICE else spec.max_price_per_gpu_hour
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


# ---------------------------------------------------------------------------------------------- gateway

GW_MODEL = "h100-sxm"
GW_OTHER_MODEL = "rtx-4090"
GW_POOLS = 10
GW_JOB_GPUS = 1
GW_JOB: dict[str, Any] = {"gpus": GW_JOB_GPUS, "hours": 1.0, "max_price": "10", "gpu_model": GW_MODEL}
BARE_METHOD = "/blendr.bench.Bare/SubmitJob"
KING_ADDRESS = "0x000000000000000000000000000000000000C0DE"
CHILD_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class GatewaySize:
    """How big the gateway part is."""

    renters: int
    jobs_per_renter: int
    providers: int  # h100-sxm providers: the ones that can take the renters' jobs
    gpus: int  # GPUs of each of them
    other_providers: int  # rtx-4090 providers of 8 GPUs that fill the pool
    bare_calls_per_client: int  # calls of each baseline client
    solo_jobs: int = 20  # jobs of one renter alone, before the concurrent phase (and bare calls of one client)
    reads: int = 20  # calls of each read (GetQuote, GetWallet, ListJobs) before and after the timed phase


def _cpus() -> list[int]:
    """The CPUs this process may run on (sorted)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _pin(cpu: int | None) -> None:
    """Runs this process on ``cpu`` only (None: leaves it as it is)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _server_child(kind: str, conn: Any, params: dict[str, Any]) -> None:
    """Entry of a server process: ``kind`` is "king" or "bare"; commands come over ``conn``."""
    _pin(params.get("cpu"))
    try:
        asyncio.run(_serve(kind, conn, params))
    except BaseException as exc:  # the parent reads why the child failed
        with contextlib.suppress(OSError):
            conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


async def _serve(kind: str, conn: Any, params: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    home = Path(tempfile.mkdtemp(prefix="blendr-bench-gateway-"))
    try:
        if kind == "king":
            port, stats, stop = await _start_king(home, params)
        else:
            port, stats, stop = await _start_bare(params)
        conn.send({"port": port})
        loop = asyncio.get_running_loop()
        mark = {"cpu": _cpu_s(), "t": time.monotonic()}
        with ThreadPoolExecutor(1) as control:
            while True:
                cmd = await loop.run_in_executor(control, conn.recv)
                if cmd == "mark":
                    mark = {"cpu": _cpu_s(), "t": time.monotonic()}
                    conn.send(stats())
                elif cmd == "stats":
                    conn.send({"cpu_s": round(_cpu_s() - mark["cpu"], 3),
                               "wall_s": round(time.monotonic() - mark["t"], 3), **stats()})
                else:
                    break
        await stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def king_candidates() -> int:
    """How many candidate providers a quote names (the king's job settings): the gateway part's default
    number of matching providers."""
    from king.context import JobsConfig

    return JobsConfig().candidates


@dataclass
class BenchKing:
    """The king's renter API as the bench runs it, built by :func:`build_king`."""

    servicers: list[Any]  # functions that add a servicer to a grpc.aio server (start_server's argument)
    service_names: tuple[str, ...]
    run: Any  # () -> coroutine: the king's background loop (placement)
    stats: Any  # () -> dict: counters the bench reports
    close: Any  # () -> None: closes the store


async def build_king(cfg: Any, feeds: list[dict[str, list[Any]]], store_url: str = "") -> BenchKing:
    """The king's internals as ``king.app.start_king`` wires them, with the fakes of ``_gateway_fakes``.

    The ONE place of the bench that constructs king-internal objects (store, scheduler, pricing, job
    manager, sessions, servicer): adapt it here when the king's core changes. ``cfg`` is the loaded
    ``blendr.config.Config``; ``feeds`` are per-queen ``on_snapshot`` arguments (see
    ``_gateway_fakes.snapshots``), merged per queen. Returns a king ready to serve (chain parameters read,
    pool known); its placement loop starts with ``run()``. ``store_url``: the king's store (``[store] url``;
    empty: a SQLite file in the king's home, the default).

    No per-renter limit of open jobs is set here: the deep-queue case spreads its jobs over many renters
    (``--dq-jobs-per-renter`` each), so it stays under any sensible default of such a limit.
    """
    import time

    from _gateway_fakes import BIG

    from blendr.clock import SystemClock
    from blendr.store import SQLiteStore, Store, open_store
    from king.auth import Sessions
    from king.context import JobsConfig
    from king.core import KingCore
    from king.gateway import RenterGatewayServicer
    from king.pricing import PricingParams
    from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc
    from tests.fakes.queens import FakeQueens
    from tests.fakes.rental_chain import FakeRentalChain

    kc = cfg.king
    store: Store = open_store(store_url) if store_url else SQLiteStore(cfg.path("king", "state.sqlite3"))
    clock = SystemClock()
    chain = FakeRentalChain(now=time.time, default_balance=BIG, verify_signatures=False)
    queens = FakeQueens(up={q for feed in feeds for q in feed})
    # The quote's bounds are governance parameters on GPURental (read by core.prepare); surge is this king's.
    scheduler = Scheduler(Pricer(PricingParams(surge=kc.price_surge)), known_models=FINGERPRINTS)
    placements = [0]
    schedule = scheduler.schedule

    def counted(max_placements: int | None = None) -> list[Any]:
        out = schedule(max_placements)
        placements[0] += len(out)
        return out

    scheduler.schedule = counted  # type: ignore[method-assign]  # counts what the loop is offered
    core = KingCore(store, clock, scheduler, chain, queens,
                    JobsConfig.of(kc))
    sessions = Sessions(store, clock, king=KING_ADDRESS, chain_id=chain.chain_id, ttl_s=kc.session_ttl_s)

    await core.prepare()
    core.load()
    for queen in sorted({q for feed in feeds for q in feed}):
        core.on_snapshot(queen, 1, [offer for feed in feeds for offer in feed.get(queen, [])])

    def stats() -> dict[str, Any]:
        return {"placement_attempts": placements[0], "rentals_created": len(chain.rentals),
                "assignments": len(queens.assigned), "jobs_in_store": store.count("jobs"),
                "queued_in_scheduler": scheduler.queued(),
                "open_watchers": len(core.book.watched_ids())}

    return BenchKing(
        servicers=[lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(RenterGatewayServicer(core, sessions), s)],
        service_names=("blendr.v1.RenterGateway",), run=core.run, stats=stats, close=store.close)


async def _start_king(home: Path, params: dict[str, Any]) -> tuple[int, Any, Any]:
    """A king server process's setup: config, logging, the fake pool, :func:`build_king`, the gRPC server."""
    from _gateway_fakes import provider_pool, snapshots

    from blendr.config import load_config
    from blendr.rpc.server import start_server
    from blendr.telemetry import configure_logging

    cfg = load_config(home, overrides={"rpc.tls": False, "king.listen": "127.0.0.1:0"}, env={})
    log_file = (home / "king.log").open("w", encoding="utf-8")
    configure_logging("INFO", "json", stream=log_file)
    pool = provider_pool(params["providers"] + params["other_providers"], GW_POOLS)
    fp, other = FINGERPRINTS[GW_MODEL], FINGERPRINTS[GW_OTHER_MODEL]
    feeds = [snapshots(pool[: params["providers"]], model=GW_MODEL, gpus=params["gpus"],
                       vram_bytes=fp.memory_bytes or 80 * GIB, tflops=fp.fp32_tflops, ask=tokens("1.5")),
             snapshots(pool[params["providers"]:], model=GW_OTHER_MODEL, gpus=8,
                       vram_bytes=other.memory_bytes or 24 * GIB, tflops=other.fp32_tflops, ask=tokens("0.4"))]
    king = await build_king(cfg, feeds, params.get("store_url", ""))
    server = await start_server(cfg, cfg.king.listen, king.servicers, service_names=king.service_names)
    runner = asyncio.create_task(king.run())

    async def stop() -> None:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await server.stop(0)
        king.close()  # the log file stays open: servicer tasks may still log while the loop closes

    return server.port, king.stats, stop


async def _start_bare(params: dict[str, Any]) -> tuple[int, Any, Any]:
    """A bare ``grpc.aio`` server: one unary method that answers ``response_bytes`` bytes, nothing else."""
    import grpc

    answer = bytes(int(params["response_bytes"]))
    served = [0]

    async def submit(request: bytes, context: Any) -> bytes:
        served[0] += 1
        return answer

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "blendr.bench.Bare", {"SubmitJob": grpc.unary_unary_rpc_method_handler(submit)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def stop() -> None:
        await server.stop(0)

    return port, lambda: {"calls_served": served[0]}, stop


SERVER_MODULES = ("__main__", "_gateway_fakes", "grpc", "blendr.config", "blendr.rpc.server", "blendr.telemetry",
                  "blendr.store", "king.auth", "king.context", "king.core", "king.gateway",
                  "protos.blendr.v1.renter_pb2_grpc", "tests.fakes.queens", "tests.fakes.rental_chain")
"""What a server process imports, loaded once by the fork server every server process is forked from."""


def _server_context() -> Any:
    """The multiprocessing context of the server processes; starts its fork server (which imports
    :data:`SERVER_MODULES` in the background) if it is not running yet."""
    import multiprocessing
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(SERVER_MODULES))
    forkserver.ensure_running()
    return ctx


class _ServerProcess:
    """A server process and its command pipe.

    Server processes are forked from one fork server that has imported :data:`SERVER_MODULES` (a fresh process,
    no thread, no gRPC channel or server), so each starts without importing the king again."""

    def __init__(self, kind: str, params: dict[str, Any]) -> None:
        ctx = _server_context()
        self.kind = kind
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_server_child, args=(kind, child, params), daemon=True)
        self.proc.start()
        child.close()

    def _recv(self, timeout: float) -> dict[str, Any]:
        if not self.conn.poll(timeout):
            raise BenchError(f"the {self.kind} server did not answer within {timeout:.0f}s")
        try:
            reply: dict[str, Any] = self.conn.recv()
        except EOFError:
            raise BenchError(f"the {self.kind} server exited (code {self.proc.exitcode})") from None
        if "error" in reply:
            raise BenchError(f"the {self.kind} server failed: {reply['error']}")
        return reply

    async def port(self) -> int:
        return int((await asyncio.to_thread(self._recv, CHILD_TIMEOUT_S))["port"])

    async def call(self, cmd: str) -> dict[str, Any]:
        self.conn.send(cmd)
        return await asyncio.to_thread(self._recv, CHILD_TIMEOUT_S)

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self.conn.send("stop")
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


def _renter_key(i: int) -> bytes:
    return hashlib.sha256(b"blendr-bench-gateway-renter/%d" % i).digest()


def _job_request(entrypoint: str, **kw: Any) -> Any:
    """The renters' job (``blendr.client.JobRequest``): one h100-sxm GPU for an hour, at most 10 tokens/h."""
    from blendr.client import JobRequest

    return JobRequest(entrypoint=entrypoint, **GW_JOB, **kw)


async def _until_scheduled(king: Any, job_id: str) -> float:
    """Watches the job (``KingClient.watch``) until its ``scheduled`` event; returns the king's stamp on it.

    The watch runs in a task that is cancelled once the event is in: cancelling a ``grpc.aio`` call while it
    waits for a message ends the WatchJob stream on the king. (Leaving the SDK's generator with ``break`` or
    ``aclose()`` does not: the stream stays open on the king until the client's call is garbage collected.)
    """
    loop = asyncio.get_running_loop()
    seen: asyncio.Future[float] = loop.create_future()

    async def consume() -> None:
        async for ev in king.watch(job_id):
            if ev.kind == "scheduled" and not seen.done():
                seen.set_result(float(ev.ts))
            elif ev.kind in ("failed", "cancelled") and not seen.done():
                raise BenchError(f"job {job_id} {ev.kind}: {ev.message}")
        if not seen.done():
            raise BenchError(f"the watch of job {job_id} ended before it was scheduled")

    task = loop.create_task(consume())
    try:
        await asyncio.wait((seen, task), return_when=asyncio.FIRST_COMPLETED)
        if not seen.done():
            task.result()  # raises what ended the watch
        return seen.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Samples:
    """Latencies of jobs submitted and watched until scheduled."""

    def __init__(self) -> None:
        self.e2e: list[int] = []  # start of SubmitJob -> 'scheduled' event seen, ns
        self.rpc: list[int] = []  # the SubmitJob call, ns
        self.event: list[int] = []  # start of SubmitJob (wall clock) -> the king's stamp on the event, ns
        self.answer_bytes: list[int] = []
        self.done_at: list[int] = []  # perf_counter_ns when the 'scheduled' event was seen

    async def job(self, king: Any, sub: Any) -> None:
        wall0, t = time.time(), time.perf_counter_ns()
        job = await king.send(sub)
        t_rpc = time.perf_counter_ns()
        ts = await _until_scheduled(king, job.job_id)
        t_seen = time.perf_counter_ns()
        self.rpc.append(t_rpc - t)
        self.e2e.append(t_seen - t)
        self.event.append(int((ts - wall0) * 1e9))
        self.answer_bytes.append(job.ByteSize())
        self.done_at.append(t_seen)


async def _read_latency(king: Any, n: int) -> dict[str, Any]:
    """Latency of reads whose cost may grow with the king's store: GetQuote, GetWallet, ListJobs."""
    spec = _job_request("true").spec()
    out: dict[str, Any] = {}
    for name, call in (("get_quote", lambda: king.quote(spec)), ("get_wallet", king.wallet),
                       ("list_jobs", lambda: king.list(limit=50))):
        samples = []
        for _ in range(n):
            t = time.perf_counter_ns()
            await call()
            samples.append(time.perf_counter_ns() - t)
        out[name] = _ms_stats(samples)
    return out


async def _gateway_load(size: GatewaySize, port: int, server: _ServerProcess) -> dict[str, Any]:
    """Signs the renters in, prepares their jobs, then runs the timed phase against the king at ``port``."""
    from eth_account import Account

    from blendr.client import KingClient

    target = f"127.0.0.1:{port}"
    kings = [KingClient(target, Account.from_key(_renter_key(i)), insecure=True, timeout_s=60.0)
             for i in range(size.renters)]
    try:
        t0 = time.monotonic()
        await asyncio.gather(*(k.sign_in() for k in kings))
        t_sign_in = time.monotonic() - t0

        async def prepare(r: int, k: KingClient) -> list[Any]:
            n = size.jobs_per_renter if r >= 0 else size.solo_jobs
            return [await k.prepare(_job_request("python train.py --epochs 3", name=f"bench-{r}-{j}",
                                                 env={"BATCH": "64", "SEED": str(j)}))
                    for j in range(n)]

        t0 = time.monotonic()
        subs = await asyncio.gather(*(prepare(r, k) for r, k in enumerate(kings)))
        solo_subs = await prepare(-1, kings[0])
        t_prepare = time.monotonic() - t0
        reads_before = await _read_latency(kings[0], size.reads)

        # One renter alone first (latency without queueing; it also warms the king up), then all at once.
        solo = _Samples()
        for sub in solo_subs:
            await solo.job(kings[0], sub)
        run = _Samples()

        async def renter(k: KingClient, mine: list[Any]) -> None:
            for sub in mine:
                await run.job(k, sub)

        at_mark = await server.call("mark")
        cpu0, t0 = _cpu_s(), time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(renter(k, s) for k, s in zip(kings, subs, strict=True))),
                                   timeout=max(60.0, 0.2 * size.renters * size.jobs_per_renter))
        except TimeoutError:
            st = await server.call("stats")
            raise BenchError(
                f"timed out: {len(run.e2e)} of {size.renters * size.jobs_per_renter} jobs seen scheduled; king: "
                f"{st['placement_attempts'] - at_mark['placement_attempts']} placement attempts, "
                f"{st['queued_in_scheduler']} jobs still queued (more attempts than jobs: the scheduler chose "
                "providers outside the jobs' quote candidates)") from None
        wall = time.perf_counter() - t0
        client_cpu = _cpu_s() - cpu0
        king_stats = await server.call("stats")
        for key in ("placement_attempts", "rentals_created", "assignments"):
            king_stats[key] -= at_mark[key]
        reads_after = await _read_latency(kings[0], size.reads)
        sample = subs[0][0]
        return {
            "run": run, "solo": solo, "wall_s": wall, "client_cpu_s": client_cpu,
            "server": king_stats, "sign_in_s": t_sign_in, "prepare_s": t_prepare,
            "prepared": sum(len(mine) for mine in subs) + len(solo_subs),
            "request_bytes": int(statistics.median(s.ByteSize() for mine in subs for s in mine)),
            "response_bytes": int(statistics.median(run.answer_bytes)),
            "request_sample": sample.SerializeToString(),
            "metadata": (("authorization", f"Bearer {kings[0]._token}"),),
            "intents": len(sample.intents), "wrapped_keys": len(sample.payload.keys),
            "reads": {"jobs_in_store_before": 0, "before": reads_before,
                      "jobs_in_store_after": king_stats["jobs_in_store"], "after": reads_after},
        }
    finally:
        await asyncio.gather(*(k.close() for k in kings), return_exceptions=True)


async def _bare_load(size: GatewaySize, port: int, server: _ServerProcess, request: bytes,
                     metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The same number of concurrent clients, one unary call after the other against the bare server."""
    import grpc

    opts = [("grpc.max_receive_message_length", 32 * 2**20), ("grpc.max_send_message_length", 32 * 2**20)]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) for _ in range(size.renters)]
    try:
        calls = [ch.unary_unary(BARE_METHOD) for ch in channels]
        await asyncio.gather(*(c(request, metadata=metadata, timeout=30) for c in calls))  # connect
        solo: list[int] = []
        lat: list[int] = []

        async def client(call: Any, n: int, out: list[int]) -> None:
            for _ in range(n):
                t = time.perf_counter_ns()
                await call(request, metadata=metadata, timeout=30)
                out.append(time.perf_counter_ns() - t)

        await client(calls[0], size.solo_jobs, solo)  # one client alone
        await server.call("mark")
        cpu0, t0 = _cpu_s(), time.perf_counter()
        await asyncio.gather(*(client(c, size.bare_calls_per_client, lat) for c in calls))
        wall = time.perf_counter() - t0
        client_cpu = _cpu_s() - cpu0
        return {"lat": lat, "solo": solo, "wall_s": wall, "client_cpu_s": client_cpu, "server": await server.call("stats")}
    finally:
        await asyncio.gather(*(ch.close() for ch in channels), return_exceptions=True)


async def _gateway_async(size: GatewaySize, server_cpu: int | None, postgres_url: str = "") -> dict[str, Any]:
    king = _ServerProcess("king", {"providers": size.providers, "gpus": size.gpus,
                                   "other_providers": size.other_providers, "cpu": server_cpu})
    try:
        gw = await _gateway_load(size, await king.port(), king)
    finally:
        king.close()
    pg: dict[str, Any] | None = None
    if postgres_url:
        # The same king and load with its store in PostgreSQL (a fresh database) instead of the SQLite file.
        king = _ServerProcess("king", {"providers": size.providers, "gpus": size.gpus, "store_url": postgres_url,
                                       "other_providers": size.other_providers, "cpu": server_cpu})
        try:
            pg = await _gateway_load(size, await king.port(), king)
        finally:
            king.close()
    bare = _ServerProcess("bare", {"response_bytes": gw["response_bytes"], "cpu": server_cpu})
    try:
        base = await _bare_load(size, await bare.port(), bare, gw.pop("request_sample"), gw.pop("metadata"))
    finally:
        bare.close()
    return {"gateway": gw, "bare": base, "postgres": pg}


def _store_comparison(sqlite: dict[str, Any], pg: dict[str, Any], server_version: str) -> dict[str, Any]:
    """The gateway's figures with the king's store in SQLite against PostgreSQL, same run, same load."""

    def figures(raw: dict[str, Any]) -> dict[str, Any]:
        run = raw["run"]
        return {"jobs": len(run.e2e), "throughput_jobs_per_s": round(len(run.e2e) / raw["wall_s"], 1),
                "submit_rpc_ms": _ms_stats(run.rpc), "submit_to_scheduled_ms": _ms_stats(run.e2e),
                "server_cpu_ms_per_job": round(1000 * raw["server"]["cpu_s"] / max(1, len(run.e2e)), 3)}

    a, b = figures(sqlite), figures(pg)
    return {"sqlite": a, "postgres": b, "postgres_version": server_version,
            "ratio_postgres_to_sqlite": round(b["throughput_jobs_per_s"] / a["throughput_jobs_per_s"], 3),
            "meaning": "the gateway's submit rate (SubmitJob + WatchJob until scheduled, jobs/s) with the king's "
                       "store in a local PostgreSQL (tests/pg.py: pgserver's binaries, fsync off, one connection "
                       "per king) against its SQLite file, same load, same run"}


# -------------------------------------------------------------------------------------------- deep queue

DQ_TARGET_HEALTH_P99_MS = 50.0
DQ_TARGET_SUBMIT_RATIO = 0.8
HEALTH_SERVICE = "blendr.v1.RenterGateway"


@dataclass(frozen=True)
class DeepQueueSize:
    """How big the deep-queue case is."""

    queued: int  # jobs in the queue when the deep figures are taken (10,000; quick 150)
    batch: int  # jobs of each timed submit batch (500; quick 50)
    concurrency: int  # renters submitting at once (100; quick 20)
    jobs_per_renter: int  # jobs of each renter identity: renters = ceil(all jobs / this)
    window_s: float  # seconds of health checks on an idle king (6; quick 0.5)
    probe_interval_s: float = 0.01


async def _health_probe(stub: Any, stop: asyncio.Event, out: list[int], interval: float) -> None:
    """Starts a standard gRPC health Check every ``interval`` seconds until ``stop``, without waiting for the
    previous one (open loop, as a load balancer's probes come), so a king that stalls for a while has every
    check of that while in the figures, not one; waits for the checks in flight, then returns."""
    from grpc_health.v1 import health_pb2

    req = health_pb2.HealthCheckRequest(service=HEALTH_SERVICE)

    async def check() -> None:
        t = time.perf_counter_ns()
        answer = await stub.Check(req, timeout=60)
        out.append(time.perf_counter_ns() - t)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            raise BenchError(f"the king's health service answered {answer.status}")

    in_flight: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    ticks = 0
    while not stop.is_set():
        task = asyncio.create_task(check())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        ticks += 1
        delay = start + ticks * interval - time.perf_counter()  # a fixed schedule, not drifting with load
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    await asyncio.gather(*in_flight)


RETRIED_CODES = ("CANCELLED", "UNAVAILABLE", "DEADLINE_EXCEEDED")
SUBMIT_TRIES = 4


async def _submit_all(work: list[tuple[Any, Any]], concurrency: int, failures: dict[str, int]) -> float:
    """Sends every prepared ``(client, request)`` with ``concurrency`` senders; returns the wall seconds.

    A call that ends CANCELLED, UNAVAILABLE or DEADLINE_EXCEEDED is sent again (SubmitJob is idempotent by
    request id), up to ``SUBMIT_TRIES`` times; every such failure is counted in ``failures`` by code (a king
    that drops calls under a deep queue is a finding, not a reason to lose the run).
    """
    from blendr.client import RenterError

    it = iter(work)

    async def sender() -> None:
        for king, sub in it:
            for attempt in range(1, SUBMIT_TRIES + 1):
                try:
                    await king.send(sub)
                    break
                except RenterError as exc:
                    code = exc.code.name if exc.code is not None else "UNKNOWN"
                    if code not in RETRIED_CODES or attempt == SUBMIT_TRIES:
                        raise
                    failures[code] = failures.get(code, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def _deep_phase(stub: Any, work: list[tuple[Any, Any]], size: DeepQueueSize, server: Any) -> dict[str, Any]:
    """Health checks on the idle king for ``window_s``, then one timed submit batch with health checks going on."""
    idle: list[int] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_health_probe(stub, stop, idle, size.probe_interval_s))
    await asyncio.sleep(size.window_s)
    stop.set()
    await probe
    busy: list[int] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_health_probe(stub, stop, busy, size.probe_interval_s))
    failures: dict[str, int] = {}
    await server.call("mark")
    try:
        wall = await _submit_all(work, size.concurrency, failures)
        king = await server.call("stats")
    finally:
        stop.set()
        await probe
    cpu_s = float(king["cpu_s"])
    return {"health_ms": _ms_stats(idle), "health_during_submits_ms": _ms_stats(busy), "submits": len(work),
            "failed_calls_retried": failures,
            "submit_wall_s": round(wall, 3), "submits_per_s": round(len(work) / wall, 1),
            # the king's own CPU over the batch (SubmitJob, plus the health checks running beside it)
            "king_cpu_s": round(cpu_s, 3), "king_cpu_ms_per_submit": round(1000 * cpu_s / len(work), 3),
            "submits_per_king_cpu_s": round(len(work) / cpu_s, 1) if cpu_s else None}


async def _deep_queue_load(size: DeepQueueSize, port: int, server: _ServerProcess) -> dict[str, Any]:
    """Fills the king's queue through the gateway and takes health and submit figures, empty and deep."""
    import grpc
    from eth_account import Account
    from grpc_health.v1 import health_pb2_grpc

    from blendr.client import KingClient

    target = f"127.0.0.1:{port}"
    total = 1 + size.queued + size.batch  # the job that takes the only GPU, the queue, the deep batch
    renters = -(-total // size.jobs_per_renter)
    kings = [KingClient(target, Account.from_key(_renter_key(10_000 + i)), insecure=True, timeout_s=120.0)
             for i in range(renters)]
    health_channel = grpc.aio.insecure_channel(target)
    stub = health_pb2_grpc.HealthStub(health_channel)
    gate = asyncio.Semaphore(size.concurrency)
    try:
        async def limited(coro: Any) -> Any:
            async with gate:
                return await coro

        t0 = time.monotonic()
        await asyncio.gather(*(limited(k.sign_in()) for k in kings))
        t_sign_in = time.monotonic() - t0
        # One intent per job and one candidate (the only provider that fits): the jobs are cheap to prepare;
        # both timed batches send the same kind of job.
        owners = [kings[j % renters] for j in range(total)]
        t0 = time.monotonic()
        subs = await asyncio.gather(*(limited(k.prepare(_job_request("python train.py", name=f"deep-{j}",
                                                                      spare_intents=0)))
                                      for j, k in enumerate(owners)))
        t_prepare = time.monotonic() - t0
        work = list(zip(owners, subs, strict=True))
        first, work = work[0], work[1:]
        await _until_scheduled(first[0], (await first[0].send(first[1])).job_id)
        before = await server.call("stats")
        if before["queued_in_scheduler"] != 0 or before["rentals_created"] != 1:
            raise BenchError(f"the king should hold one placed job and an empty queue: {before}")
        empty_batch, fill, deep_batch = work[:size.batch], work[size.batch:size.queued], work[size.queued:]
        empty = await _deep_phase(stub, empty_batch, size, server)
        fill_failures: dict[str, int] = {}
        t_fill = await _submit_all(fill, size.concurrency, fill_failures)
        filled = await server.call("stats")
        if filled["queued_in_scheduler"] != size.queued:
            raise BenchError(f"{filled['queued_in_scheduler']} jobs queued after the fill, not {size.queued}")
        deep = await _deep_phase(stub, deep_batch, size, server)
        after = await server.call("stats")
        if after["queued_in_scheduler"] != size.queued + size.batch or after["rentals_created"] != 1:
            raise BenchError(f"jobs left the queue (they must stay queued): {after}")
        return {"renters": renters, "sign_in_s": round(t_sign_in, 3), "prepare_s": round(t_prepare, 3),
                "fill": {"submits": len(fill), "wall_s": round(t_fill, 3), "failed_calls_retried": fill_failures,
                         "submits_per_s": round(len(fill) / t_fill, 1) if t_fill else None},
                "empty": empty, "deep": deep, "server_after": after}
    finally:
        await health_channel.close()
        await asyncio.gather(*(k.close() for k in kings), return_exceptions=True)


async def _deep_queue_async(size: DeepQueueSize, server_cpu: int | None, other_providers: int) -> dict[str, Any]:
    # One h100-sxm provider with one GPU, taken by the first job: every later job fits it (so its quote has
    # a candidate and the king accepts it at a max price above the quote) but none can be placed.
    king = _ServerProcess("king", {"providers": 1, "gpus": 1, "other_providers": other_providers,
                                   "cpu": server_cpu})
    try:
        return await _deep_queue_load(size, await king.port(), king)
    finally:
        king.close()


def run_deep_queue_part(size: DeepQueueSize, other_providers: int) -> dict[str, Any]:
    """The deep-queue case: health p99 and submit rate with ``size.queued`` jobs queued vs an empty queue."""
    _server_context()  # before pinning: the fork server may use every CPU
    cpus = _cpus()
    pinned = len(cpus) >= 2
    try:
        if pinned:
            _pin(cpus[1])
        raw = asyncio.run(_deep_queue_async(size, cpus[0] if pinned else None, other_providers))
    finally:
        if pinned:
            os.sched_setaffinity(0, set(cpus))
    empty, deep = raw["empty"], raw["deep"]
    health_p99 = deep["health_ms"]["p99"]
    ratio = round(deep["submits_per_s"] / empty["submits_per_s"], 4)
    return {
        "queued_jobs": size.queued,
        "health_p99_ms": health_p99,
        "submit_ratio": ratio,
        "targets": {"health_p99_ms": DQ_TARGET_HEALTH_P99_MS, "submit_ratio": DQ_TARGET_SUBMIT_RATIO},
        "target_met": health_p99 <= DQ_TARGET_HEALTH_P99_MS and ratio >= DQ_TARGET_SUBMIT_RATIO,
        "empty_queue": empty,
        "deep_queue": deep,
        "fill": raw["fill"],
        "setup": {"renters": raw["renters"], "sign_in_s": raw["sign_in_s"], "prepare_s": raw["prepare_s"]},
        "server_after": raw["server_after"],
        "params": {"queued": size.queued, "batch": size.batch, "concurrency": size.concurrency,
                   "jobs_per_renter": size.jobs_per_renter, "renters": raw["renters"],
                   "health_window_s": size.window_s, "probe_interval_s": size.probe_interval_s,
                   "job": {**GW_JOB, "intents": 1}, "pool": f"1 {GW_MODEL} provider x 1 GPU (taken by a first "
                   f"job, so every later job stays queued) + {other_providers} {GW_OTHER_MODEL} providers x 8 GPUs",
                   "cpu_pinning": (f"server process on CPU {cpus[0]}, clients on CPU {cpus[1]}" if pinned
                                   else "none (one CPU)")},
        "definitions": {
            "health_p99_ms": "p99 of the standard gRPC health Check (one client starting a call every "
            f"{size.probe_interval_s * 1e3:g} ms, not waiting for the previous one) over {size.window_s:g} s with {size.queued} jobs queued and "
            "no other calls",
            "submit_ratio": "SubmitJob rate of a batch sent with the queue deep / the same with the queue empty "
            f"({size.batch} jobs each, {size.concurrency} renters at once, SubmitJob only)",
            "health_during_submits_ms": "the same health Check while the timed batch is being submitted",
            "fill": "the submissions that bring the queue from the empty batch to queued_jobs (not timed "
            "against a goal)",
        },
    }


@contextlib.contextmanager
def _postgres() -> Any:
    """A PostgreSQL 16 (tests/pg.py) with a fresh database: yields (its URL, the server's version)."""
    import psycopg

    from tests.pg import start_postgres

    server = start_postgres()
    try:
        url = server.database("bench")
        with psycopg.connect(url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        yield url, str(row[0] if row else "?")
    finally:
        server.stop()
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


def run_gateway_part(size: GatewaySize) -> dict[str, Any]:
    """Runs the gateway and the bare server one after the other and reports them side by side.

    With two CPUs or more, the server process runs on the first and this process (the clients) on the
    second, so neither takes CPU time from the other.
    """
    from _gateway_fakes import FAKES

    _server_context()  # imports in the background while PostgreSQL starts; before pinning: it may use every CPU
    cpus = _cpus()
    pinned = len(cpus) >= 2
    try:
        if pinned:
            _pin(cpus[1])
        with _postgres() as (pg_url, pg_version):
            raw = asyncio.run(_gateway_async(size, cpus[0] if pinned else None, pg_url))
    finally:
        if pinned:
            os.sched_setaffinity(0, set(cpus))
    gw, base = raw["gateway"], raw["bare"]
    stores = _store_comparison(gw, raw["postgres"], pg_version)
    run, solo = gw["run"], gw["solo"]
    jobs = len(run.e2e)
    e2e, rpc, event, bare_lat = _ms_stats(run.e2e), _ms_stats(run.rpc), _ms_stats(run.event), _ms_stats(base["lat"])
    throughput = jobs / gw["wall_s"]
    done = sorted(run.done_at)
    quarters = [done[round(i * (jobs - 1) / 4)] for i in range(5)]
    by_quarter = [round((jobs / 4) / ((b - a) / 1e9), 1) if b > a else None
                  for a, b in itertools.pairwise(quarters)]
    bare_throughput = len(base["lat"]) / base["wall_s"]
    srv, bsrv = gw["server"], base["server"]
    return {
        "renters": size.renters,
        "jobs": jobs,
        "stores": stores,
        "submit_to_scheduled_ms": e2e,
        "submit_to_scheduled_event_ms": event,
        "submit_rpc_ms": rpc,
        "throughput_jobs_per_s": round(throughput, 1),
        "throughput_by_quarter_jobs_per_s": by_quarter,
        "baseline": {
            "p50_ms": bare_lat["p50"],
            "p99_ms": bare_lat["p99"],
            "throughput_per_s": round(bare_throughput, 1),
            "calls": len(base["lat"]),
            "latency_ms": bare_lat,
            "one_client_ms": _ms_stats(base["solo"]),
            "wall_s": round(base["wall_s"], 3),
            "server_cpu_s": bsrv["cpu_s"],
            "server_cpu_share": round(bsrv["cpu_s"] / base["wall_s"], 3),
            "client_cpu_share": round(base["client_cpu_s"] / base["wall_s"], 3),
        },
        "throughput_ratio": round(throughput / bare_throughput, 4),
        "one_renter": {
            "jobs": len(solo.e2e),
            "submit_to_scheduled_ms": _ms_stats(solo.e2e),
            "submit_to_scheduled_event_ms": _ms_stats(solo.event),
            "submit_rpc_ms": _ms_stats(solo.rpc),
        },
        "server_cpu_ms_per_job": round(srv["cpu_s"] / jobs * 1e3, 3),
        "fakes": FAKES.format(providers=size.providers, gpus=size.gpus, model=GW_MODEL, pools=GW_POOLS)
        + f" Besides them {size.other_providers} {GW_OTHER_MODEL} providers x 8 GPUs fill the pool.",
        "store": "SQLiteStore in a temporary home (the king's default, durable store: every job, event and "
        "payload is committed to SQLite, WAL mode, as in production)",
        "wall_s": round(gw["wall_s"], 3),
        "server_cpu_s": srv["cpu_s"],
        "server_cpu_share": round(srv["cpu_s"] / gw["wall_s"], 3),
        "client_cpu_share": round(gw["client_cpu_s"] / gw["wall_s"], 3),
        "placement_attempts": srv["placement_attempts"],
        "rentals_created": srv["rentals_created"],
        "assignments": srv["assignments"],
        "watch_streams_open_after": srv["open_watchers"],
        "setup": {"sign_in_s": round(gw["sign_in_s"], 3), "prepare_s": round(gw["prepare_s"], 3),
                  "prepare_ms_per_job": round(gw["prepare_s"] / gw["prepared"] * 1e3, 3)},
        "messages": {"submit_request_bytes": gw["request_bytes"], "job_response_bytes": gw["response_bytes"],
                     "intents_per_job": gw["intents"], "wrapped_keys_per_job": gw["wrapped_keys"]},
        "reads_ms": gw["reads"],
        "params": {
            "renters": size.renters,
            "jobs_per_renter": size.jobs_per_renter,
            "job": GW_JOB,
            "matching_providers": size.providers,
            "gpus_per_matching_provider": size.gpus,
            "other_providers": size.other_providers,
            "pools": GW_POOLS,
            "bare_calls_per_client": size.bare_calls_per_client,
            "one_renter_jobs": size.solo_jobs,
            "cpu_pinning": (f"server process on CPU {cpus[0]}, clients on CPU {cpus[1]}" if pinned
                            else "none (one CPU)"),
        },
        "definitions": {
            "submit_to_scheduled_ms": "client: start of SubmitJob to the arrival of the job's 'scheduled' "
            "event on its WatchJob stream (opened when SubmitJob returns)",
            "submit_to_scheduled_event_ms": "client's wall clock at the start of SubmitJob to the king's "
            "timestamp of the 'scheduled' event (same machine): without the WatchJob call",
            "submit_rpc_ms": "the SubmitJob call alone",
            "throughput_jobs_per_s": "jobs / wall seconds of the timed phase (every job submitted and seen "
            "scheduled)",
            "throughput_by_quarter_jobs_per_s": "the same rate over each quarter of the jobs in the order they were "
            "seen scheduled (falling: a cost that grows with the jobs stored)",
            "baseline": "bare grpc.aio unary server answering bytes of a Job's size to the bytes of a real "
            "SubmitJobRequest, same number of concurrent clients (own channel each), one call after another",
            "throughput_ratio": "throughput_jobs_per_s / baseline.throughput_per_s (a job is SubmitJob + "
            "WatchJob + placement; a bare call is one unary call)",
            "placement_attempts": "placements the scheduler offered the job manager's loop (equal to jobs "
            "when every placement lands on one of the job's candidates)",
            "reads_ms": f"one client, {size.reads} calls each, before the timed phase (no job stored) and after it",
            "one_renter": "one renter alone, one job after the other, before the concurrent phase: latency "
            "without queueing (baseline.one_client_ms: the same for one bare client)",
            "server_cpu_ms_per_job": "CPU time of the king's process (all threads) in the timed phase / jobs",
        },
    }


def _gateway_table(part: dict[str, Any]) -> str:
    def lat(name: str, d: dict[str, Any], n: str = "", wall: str = "", rate: str = "", cpu: tuple[str, str] = ("", ""),
            ratio: str = "") -> list[str]:
        return [name, n or f"{d['n']}", wall, rate, ratio, f"{d['p50']:.2f}", f"{d['p99']:.2f}", f"{d['max']:.1f}",
                *cpu]

    b, one = part["baseline"], part["one_renter"]
    rows = [
        lat(f"gateway, {part['renters']} renters: submit -> scheduled", part["submit_to_scheduled_ms"],
            wall=f"{part['wall_s']:.2f}", rate=f"{part['throughput_jobs_per_s']:.0f}",
            ratio=f"{part['throughput_ratio']:.3f}", cpu=(f"{part['server_cpu_share']:.2f}", f"{part['client_cpu_share']:.2f}")),
        lat("  SubmitJob call", part["submit_rpc_ms"]),
        lat("  to the king's 'scheduled' stamp", part["submit_to_scheduled_event_ms"]),
        lat("gateway, 1 renter: submit -> scheduled", one["submit_to_scheduled_ms"]),
        lat("  SubmitJob call", one["submit_rpc_ms"]),
        lat(f"bare grpc.aio, {part['renters']} clients: unary", b["latency_ms"], wall=f"{b['wall_s']:.2f}",
            rate=f"{b['throughput_per_s']:.0f}", ratio="1", cpu=(f"{b['server_cpu_share']:.2f}", f"{b['client_cpu_share']:.2f}")),
        lat("bare grpc.aio, 1 client: unary", b["one_client_ms"]),
    ]
    head = ["", "n", "wall s", "per s", "vs bare", "p50 ms", "p99 ms", "max ms", "server cpu", "client cpu"]
    return format_table(head, rows)


def _deep_table(part: dict[str, Any]) -> str:
    rows = []
    for name, ph in (("empty queue", part["empty_queue"]), (f"{part['queued_jobs']} jobs queued", part["deep_queue"])):
        h, hb = ph["health_ms"], ph["health_during_submits_ms"]
        rows.append([name, f"{h['p50']:.2f}", f"{h['p99']:.2f}", f"{hb['p99']:.2f}", f"{ph['submits']}",
                     f"{ph['submits_per_s']:.0f}", f"{ph['king_cpu_ms_per_submit']:.2f}",
                     f"{ph['submits_per_king_cpu_s'] or 0:.0f}"])
    head = ["", "health p50 ms", "health p99 ms", "p99 while submitting", "submits", "submits/s",
            "king CPU ms/submit", "submits per king CPU-s"]
    return format_table(head, rows)


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
    parser.add_argument("--quick", action="store_true",
                        help="CI size: one run per scenario, every part smaller (each default says its quick size)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: bench/results/scheduler.json, with --quick bench/results/quick/scheduler.json)")
    parser.add_argument("--part", choices=("all", "scheduler", "gateway", "deep-queue"), default="all",
                        help="what to run")
    parser.add_argument("--providers", type=int, default=None, help="default 10,000 (quick 1,000)")
    parser.add_argument("--pools", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=None, help="default 50,000 (quick 5,000)")
    parser.add_argument("--renters", type=int, default=200)
    parser.add_argument("--mean-duration", type=int, default=None,
                        help="mean job run time in placements (default 15,000, quick 1,500)")
    parser.add_argument("--refresh-every", type=int, default=None,
                        help="placements between pool snapshots (default 1,000, quick 100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs (seeds) per scenario in the full mode")
    parser.add_argument("--seed", type=int, default=1, help="first seed")
    parser.add_argument("--gw-renters", type=int, default=None,
                        help="concurrent renters (SDK clients; default 100, quick 10)")
    parser.add_argument("--gw-jobs", type=int, default=None, help="jobs per renter (default 2 quick, 20 full)")
    parser.add_argument("--gw-providers", type=int, default=king_candidates(),
                        help=f"{GW_MODEL} providers, the ones the jobs match (default: the quote's candidates)")
    parser.add_argument("--gw-gpus", type=int, default=128, help=f"GPUs per {GW_MODEL} provider")
    parser.add_argument("--gw-other-providers", type=int, default=None,
                        help=f"{GW_OTHER_MODEL} providers (default 984, quick 184)")
    parser.add_argument("--gw-bare-calls", type=int, default=None,
                        help="calls per baseline client (default 5x the jobs per renter, at least 50; quick 20)")
    parser.add_argument("--dq-queued", type=int, default=None,
                        help="deep queue: jobs queued for the deep figures (default 10,000, quick 150)")
    parser.add_argument("--dq-batch", type=int, default=None,
                        help="deep queue: jobs of each timed submit batch (default 500, quick 50)")
    parser.add_argument("--dq-concurrency", type=int, default=None,
                        help="deep queue: renters submitting at once (default 100, quick 20)")
    parser.add_argument("--dq-jobs-per-renter", type=int, default=10,
                        help="deep queue: jobs of each renter (the renters are as many as the jobs need)")
    parser.add_argument("--dq-window", type=float, default=None,
                        help="deep queue: seconds of health checks on the idle king (default 6, quick 0.5)")
    args = parser.parse_args(argv)
    args.out = result_path("scheduler", args.quick, args.out)
    # --quick is a smoke run of every part: the scheduler part at 1/10 of the full size (same jobs per provider),
    # fewer renters, jobs and calls through the gateway, a shorter deep queue.
    for name, full, quick in (("providers", 10_000, 1_000), ("jobs", 50_000, 5_000),
                              ("mean_duration", 15_000, 1_500), ("refresh_every", 1000, 100),
                              ("gw_renters", 100, 10), ("gw_other_providers", 984, 184),
                              ("dq_queued", 10_000, 150), ("dq_batch", 500, 50), ("dq_concurrency", 100, 20),
                              ("dq_window", 6.0, 0.5)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if min(args.providers, args.pools, args.jobs, args.renters, args.mean_duration, args.refresh_every) < 1:
        parser.error("sizes must be >= 1")
    gw_jobs = args.gw_jobs if args.gw_jobs is not None else (2 if args.quick else 20)
    bare_calls = 20 if args.quick else max(50, 5 * gw_jobs)
    gw = GatewaySize(args.gw_renters, gw_jobs, args.gw_providers, args.gw_gpus, args.gw_other_providers,
                     args.gw_bare_calls if args.gw_bare_calls is not None else bare_calls,
                     **({"solo_jobs": 5, "reads": 5} if args.quick else {}))
    if min(gw.renters, gw.jobs_per_renter, gw.providers, gw.gpus, gw.bare_calls_per_client) < 1:
        parser.error("gateway sizes must be >= 1")
    if gw.other_providers < 0:
        parser.error("--gw-other-providers must be >= 0")
    if (gw.renters * gw.jobs_per_renter + gw.solo_jobs) * GW_JOB_GPUS > gw.providers * gw.gpus:
        parser.error("the gateway jobs need more GPUs than the matching providers have (no job ends)")
    dq = DeepQueueSize(args.dq_queued, args.dq_batch, args.dq_concurrency, args.dq_jobs_per_renter, args.dq_window)
    if min(dq.batch, dq.concurrency, dq.jobs_per_renter) < 1 or dq.window_s <= 0 or dq.queued < dq.batch:
        parser.error("deep-queue sizes must be >= 1, --dq-window > 0 and --dq-queued >= --dq-batch")
    size = Size(args.providers, args.pools, args.jobs, args.renters, args.mean_duration, args.refresh_every)
    seeds = [args.seed] if args.quick else [args.seed + i for i in range(max(1, args.repeat))]
    started = time.monotonic()
    report: dict[str, Any] = {"benchmark": "scheduler", "mode": "quick" if args.quick else "full"}
    part: dict[str, Any] | None = None
    gateway: dict[str, Any] | None = None
    deep: dict[str, Any] | None = None
    try:
        if args.part in ("all", "scheduler"):
            print(
                f"scheduler: {size.providers} providers in {size.pools} pools, {size.jobs} jobs from "
                f"{size.renters} renters, {len(seeds)} run(s) per scenario"
            )
            part = run_scheduler_part(size, seeds)
            report.update(
                placements_per_s=part["placements_per_s"],
                p50_ms=part["p50_ms"],
                p99_ms=part["p99_ms"],
                providers=size.providers,
                pools=size.pools,
                jobs=size.jobs,
                renters=size.renters,
            )
        if args.part in ("all", "gateway"):
            print(
                f"gateway: {gw.renters} renters x {gw.jobs_per_renter} jobs through the real gateway on loopback "
                f"({gw.providers} {GW_MODEL} providers x {gw.gpus} GPUs + {gw.other_providers} others), then a "
                f"bare grpc.aio server ({gw.renters} clients x {gw.bare_calls_per_client} calls)"
            )
            gateway = run_gateway_part(gw)
        if args.part in ("all", "deep-queue"):
            print(
                f"deep queue: {dq.queued} jobs queued through the gateway by {dq.concurrency} renters at once, "
                f"health checks for {dq.window_s:g}s and {dq.batch} timed submits, empty queue vs deep queue"
            )
            deep = run_deep_queue_part(dq, gw.other_providers + gw.providers - 1)
    except BenchError as exc:
        print(f"benchmark failed: {exc}")
        return 1
    report["machine"] = machine_info(("grpcio", "protobuf"))
    if part is not None:
        report["scheduler"] = part
    if gateway is not None:
        report["gateway"] = gateway
        report["gateway_store"] = gateway["stores"]
    if deep is not None:
        report["deep_queue"] = deep
    if deep is not None and gateway is not None:
        # SubmitJob alone (jobs that stay queued, king pinned to one CPU) against the bare grpc.aio server of the
        # gateway part, in the same run
        empty = deep["empty_queue"]
        report["submit_job"] = {
            "submits_per_s": empty["submits_per_s"],
            "king_cpu_ms_per_submit": empty["king_cpu_ms_per_submit"],
            "submits_per_king_cpu_s": empty["submits_per_king_cpu_s"],
            "bare_calls_per_s": gateway["baseline"]["throughput_per_s"],
            "ratio_to_bare": round(empty["submits_per_s"] / gateway["baseline"]["throughput_per_s"], 4),
            "goals": {"submits_per_king_cpu_s": 1000, "ratio_to_bare": 0.2},
        }
    report["wall_s"] = round(time.monotonic() - started, 1)
    if part is not None:
        print()
        print(_table(part))
        for name, scenario in part["scenarios"].items():
            print(
                f"{name}: placements_per_s = {scenario['placements_per_s']:.0f} "
                f"(target >= {TARGET_PLACEMENTS_PER_S:.0f}), p99_ms = {scenario['p99_ms']:.3f} "
                f"(target <= {TARGET_P99_MS:g}): {'met' if scenario['target_met'] else 'NOT met'}"
            )
    if gateway is not None:
        print()
        print(_gateway_table(gateway))
        e2e = gateway["submit_to_scheduled_ms"]
        print(
            f"gateway: submit->scheduled p50 {e2e['p50']:.2f} ms, p99 {e2e['p99']:.2f} ms with {gateway['renters']} "
            f"renters; {gateway['throughput_jobs_per_s']:.0f} jobs/s, {gateway['server_cpu_ms_per_job']:.2f} ms of "
            f"king CPU per job; throughput_ratio {gateway['throughput_ratio']:.3f} of the bare grpc.aio server "
            f"({gateway['baseline']['throughput_per_s']:.0f} calls/s); {gateway['placement_attempts']} placement "
            f"attempts for {gateway['jobs']} jobs"
        )
        reads = gateway["reads_ms"]
        print(
            "reads p50 ms, no job stored -> "
            f"{reads['jobs_in_store_after']} jobs stored: "
            + ", ".join(f"{k} {reads['before'][k]['p50']:.2f} -> {reads['after'][k]['p50']:.2f}"
                        for k in reads["before"])
        )
        print(f"fakes: {gateway['fakes']}")
        stores = gateway["stores"]
        print(
            f"king's store: SQLite {stores['sqlite']['throughput_jobs_per_s']:.0f} jobs/s (SubmitJob p50 "
            f"{stores['sqlite']['submit_rpc_ms']['p50']:.2f} ms), PostgreSQL {stores['postgres_version']} "
            f"{stores['postgres']['throughput_jobs_per_s']:.0f} jobs/s (SubmitJob p50 "
            f"{stores['postgres']['submit_rpc_ms']['p50']:.2f} ms): ratio PostgreSQL/SQLite "
            f"{stores['ratio_postgres_to_sqlite']:.3f}"
        )
    if deep is not None:
        print()
        print(_deep_table(deep))
        print(
            f"deep queue ({deep['queued_jobs']} jobs): health_p99_ms = {deep['health_p99_ms']:.2f} (goal <= "
            f"{DQ_TARGET_HEALTH_P99_MS:g}), submit_ratio = {deep['submit_ratio']:.3f} (goal >= "
            f"{DQ_TARGET_SUBMIT_RATIO:g}): {'met' if deep['target_met'] else 'NOT met'}"
        )
    if "submit_job" in report:
        sj = report["submit_job"]
        print(f"SubmitJob alone: {sj['submits_per_s']:.0f} submits/s, {sj['king_cpu_ms_per_submit']:.2f} ms of king "
              f"CPU each ({sj['submits_per_king_cpu_s']:.0f} per king CPU-second; goal >= 1000), "
              f"{sj['ratio_to_bare']:.3f} of the bare grpc.aio server (goal >= 0.2)")
    write_json(args.out, report)
    print(f"wrote {args.out} ({report['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
