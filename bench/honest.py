"""Benchmark: honest providers answering challenges while every core is kept busy; no honest one may fail.

One real queen (``queen.app.start_queen``: plaintext gRPC on loopback, admission "open", its SQLite store,
its tick loop and every deadline of the protocol at the queen's defaults) challenges honest provider agents
(``provider.agent.ProviderAgent`` with the thread runtime and one CPU device each, the code path a CPU
provider runs) as fast as it may: one challenge in flight per provider, the next due at once. The agents run
in a process each; ``--load`` other processes (default: one per core) spin on the CPU for the whole
run, so the queen, the providers and the load share every core as on a busy CI machine.

Challenges are small (``n = 128``, at most 8 products) so that 1,000 of them take minutes; everything else is
the queen's default configuration. Liveness settings are the defaults too, so a provider the load delays past
its heartbeat deadline shows up as a missed challenge.

Figures: ``challenges`` (decided challenges) and ``false_failures`` (decided challenges whose verdict is not
"passed": every provider is honest), with each failure's reason. Goal: 0 false failures out of at least
1,000 challenges (``--quick``: a few dozen, in a few seconds, for ``make test``).

Usage: ``python bench/honest.py [--quick] [--challenges 1000] [--providers 4] [--load N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import format_table, machine_info, result_path, write_json

GOAL_CHALLENGES = 1000
QUICK_CHALLENGES = 12
CHALLENGE_N = 128
CHALLENGE_MAX_COUNT = 8
TIMEOUT_FACTOR_S = 2.0
"""Seconds allowed per challenge asked for before the run gives up (a run that cannot reach its count fails)."""
PRELOAD = ("__main__", "numpy", "grpc", "eth_account", "blendr.config", "blendr.identity", "blendr.telemetry",
           "provider.agent", "provider.compute", "provider.gpus")
"""What the fork server imports once, before the load starts: every provider and load process is forked from it
(its own process, as on separate machines) without importing the provider's code again under the load."""


def _context() -> Any:
    """The multiprocessing context of the provider and load processes (a fork server with :data:`PRELOAD`)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def _spin(stop: Any) -> None:
    """Keeps one core busy until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(200_000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def _run_providers(target: str, homes: list[str], stop: Any) -> None:
    """Runs honest provider agents (thread runtime, one CPU device each) until ``stop`` is set."""
    from blendr.config import load_config
    from blendr.identity import NodeIdentity
    from blendr.telemetry import configure_logging
    from provider.agent import ProviderAgent
    from provider.compute import ThreadRuntime
    from provider.gpus import cpu_device

    configure_logging("ERROR")

    async def main() -> None:
        agents = []
        for home in homes:
            cfg = load_config(Path(home), env={}, overrides={"rpc.tls": False, "metrics.port": -1})
            ident, _ = NodeIdentity.load_or_create(Path(home))
            devices = [cpu_device()]
            agents.append(ProviderAgent(cfg, ident, devices, ThreadRuntime(), [target]))
        tasks = [asyncio.create_task(a.run()) for a in agents]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


async def _measure(home: Path, providers: int, challenges: int, stop: Any) -> dict[str, Any]:
    from blendr.config import load_config
    from blendr.telemetry import configure_logging
    from queen.app import start_queen

    configure_logging("ERROR")  # verdicts are counted from the store, not the log
    cfg = load_config(home / "queen", env={}, overrides={
        "queen.listen": "127.0.0.1:0",
        "queen.admin_listen": "127.0.0.1:0",
        "queen.admission": "open",
        "rpc.tls": False,
        "metrics.port": -1,
        "queen.challenge_mean_interval_s": 0.01,
        "queen.tick_s": 0.02,
        "queen.challenge_n_cpu": CHALLENGE_N,
        "queen.challenge_max_count": CHALLENGE_MAX_COUNT,
    })
    app = await start_queen(cfg)
    homes = [str(home / f"p{i}") for i in range(providers)]
    # One process per provider, as on separate machines (several agents in one process would also contend for
    # its interpreter lock, which no real provider does).
    procs = [_context().Process(target=_run_providers, args=(f"127.0.0.1:{app.port}", [h], stop)) for h in homes]
    for proc in procs:
        proc.start()
    started = time.monotonic()
    limit = started + 60.0 + TIMEOUT_FACTOR_S * challenges
    try:
        while True:
            recs = app.core.providers()
            decided = sum(r.passed + r.failed + r.missed + r.abandoned for r in recs)
            if decided >= challenges:
                break
            if time.monotonic() > limit:
                raise SystemExit(f"only {decided} of {challenges} challenges decided in {limit - started:.0f} s")
            await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        records = [rec for r in app.core.providers() for rec in app.core.challenge_records(r.address)]
    finally:
        stop.set()
        for proc in procs:
            await asyncio.to_thread(proc.join, 30)
            if proc.is_alive():
                proc.kill()
        await app.stop()
    verdicts = Counter(str(r.get("verdict")) for r in records)
    failures = [r for r in records if r.get("verdict") != "passed"]
    reasons = Counter(str(r.get("reason", ""))[:160] for r in failures)
    return {
        "challenges": len(records),
        "false_failures": len(failures),
        "verdicts": dict(verdicts),
        "failure_reasons": dict(reasons.most_common(20)),
        "providers": len(homes),
        "wall_s": round(wall, 2),
        "challenges_per_s": round(len(records) / wall, 2) if wall > 0 else None,
        "commit_seconds_max": max((float(r.get("commit_seconds") or 0.0) for r in records), default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark, prints a table and writes JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CHALLENGES} challenges, a few seconds")
    parser.add_argument("--challenges", type=int, default=None, help=f"decided challenges to reach "
                        f"(default {GOAL_CHALLENGES}, --quick {QUICK_CHALLENGES})")
    parser.add_argument("--providers", type=int, default=None, help="honest providers (default 4, --quick 3)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1, help="busy processes (default: one per core)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: bench/results/honest.json, "
                        "with --quick bench/results/quick/honest.json)")
    args = parser.parse_args(argv)
    out = result_path("honest", args.quick, args.out)
    challenges = args.challenges or (QUICK_CHALLENGES if args.quick else GOAL_CHALLENGES)
    providers = args.providers or (3 if args.quick else 4)

    ctx = _context()
    stop = ctx.Event()
    # the first process started waits for the fork server's imports, so they are done before the load is on
    burners = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    try:
        with tempfile.TemporaryDirectory(prefix="blendr-honest-") as tmp:
            result = asyncio.run(_measure(Path(tmp), providers, challenges, stop))
    finally:
        stop.set()
        for b in burners:
            b.join(10)
            if b.is_alive():
                b.kill()
    report = {
        "benchmark": "honest",
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(("numpy", "grpcio")),
        "load_processes": args.load,
        "challenge": {"n": CHALLENGE_N, "max_count": CHALLENGE_MAX_COUNT, "runtime": "threads, one CPU device"},
        "goal": {"false_failures": 0, "challenges_at_least": GOAL_CHALLENGES},
        "target_met": result["false_failures"] == 0 and result["challenges"] >= challenges,
        **result,
    }
    print(format_table(
        ("providers", "load procs", "challenges", "false failures", "challenges/s", "max commit s", "wall s"),
        [(str(result["providers"]), str(args.load), str(result["challenges"]), str(result["false_failures"]),
          str(result["challenges_per_s"]), f"{result['commit_seconds_max']:.3f}", str(result["wall_s"]))]))
    for reason, n in result["failure_reasons"].items():
        print(f"  {n} x {reason}")
    print(f"goal: 0 false failures of >= {GOAL_CHALLENGES} challenges: "
          f"{'met' if report['target_met'] and result['challenges'] >= GOAL_CHALLENGES else 'not met'}")
    write_json(out, report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
