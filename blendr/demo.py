"""``make demo``: a queen and three providers on this machine, challenged live.

Starts one local Ray (shared by the providers, each pinned to its own resource), a queen with an
allowlist holding the three providers, and three ``blendr provider run`` processes; then shows the
pool table as challenges come and go, and stops everything it started. Everything lives under
``.demo/`` (homes, keys, logs), fresh on every run.

Environment: ``BLENDR_DEMO_SECONDS`` (default 45) sets how long the live table runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PROVIDERS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m" if sys.stdout.isatty() else f"==> {msg}", flush=True)


def main() -> int:
    from blendr.clock import SystemClock
    from blendr.config import load_config
    from blendr.identity import NodeIdentity
    from blendr.store import SQLiteStore
    from blendr.telemetry import configure_logging
    from queen.admission import AllowlistOracle

    configure_logging("WARNING")
    seconds = float(os.environ.get("BLENDR_DEMO_SECONDS", "45"))
    root = Path(".demo").resolve()
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True)
    qhome = root / "queen"
    qhome.mkdir()
    port = _free_port()
    admin_port = _free_port()
    (qhome / "config.toml").write_text(
        "[queen]\n"
        f'listen = "127.0.0.1:{port}"\n'
        f'admin_listen = "127.0.0.1:{admin_port}"\n'
        'admission = "allowlist"\n'
        "heartbeat_interval_s = 1.0\n"
        "suspect_after_s = 4.0\n"
        "dead_after_s = 10.0\n"
        "challenge_mean_interval_s = 8.0\n"
        "challenge_n_cpu = 256\n"
        "challenge_max_count = 8\n"
    )
    pins = [f"blendr-demo-p{i}" for i in range(1, PROVIDERS + 1)]
    homes = [root / f"provider-{i}" for i in range(1, PROVIDERS + 1)]
    idents = [NodeIdentity.load_or_create(h)[0] for h in homes]
    with SQLiteStore(qhome / "queen" / "state.sqlite3") as store:
        oracle = AllowlistOracle(store, SystemClock())
        for ident in idents:
            oracle.allow(ident.address, "demo provider")
    _say(f"allowlisted {PROVIDERS} providers: " + ", ".join(i.address[:10] + "…" for i in idents))

    _say("starting a local Ray (shared by the providers, one pinned resource each)")
    import ray

    # One logical CPU per provider, so no provider's challenge queues behind another's on a small machine.
    ray.init(num_cpus=max(PROVIDERS, os.cpu_count() or 1), resources={p: 1000.0 for p in pins}, include_dashboard=False,
             namespace="blendr-demo", log_to_driver=False, logging_level="ERROR")
    gcs = ray.get_runtime_context().gcs_address
    procs: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDR_")}
    env["PYTHONUNBUFFERED"] = "1"

    def spawn(name: str, args: list[str]) -> None:
        fh = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        procs.append(subprocess.Popen([sys.executable, "-m", "blendr.cli", *args], stdout=fh,
                                      stderr=subprocess.STDOUT, env=env, start_new_session=True))

    try:
        _say(f"starting the queen on 127.0.0.1:{port} (TLS with its devnet CA in {qhome / 'tls'})")
        spawn("queen", ["queen", "run", "--home", str(qhome)])
        deadline = time.monotonic() + 60
        while not (qhome / "queen" / "port").is_file():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                print((logs / "queen.log").read_text()[-2000:], file=sys.stderr)
                raise SystemExit("the queen did not start; its log is above")
            time.sleep(0.2)
        ca = qhome / "tls" / "ca.crt"
        for i, (home, pin) in enumerate(zip(homes, pins, strict=True), 1):
            _say(f"starting provider {i} ({idents[i - 1].address[:10]}…)")
            spawn(f"provider-{i}", ["provider", "run", "--home", str(home), "--queen", f"127.0.0.1:{port}",
                                    "--ca-file", str(ca), "--ray-address", gcs, "--ray-resource", pin])
        return asyncio.run(_watch(load_config(qhome, env={}), f"127.0.0.1:{admin_port}", seconds, logs, procs))
    finally:
        _say("stopping everything the demo started")
        for p in reversed(procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        ray.shutdown()


async def _watch(cfg: object, target: str, seconds: float, logs: Path, procs: list[subprocess.Popen[bytes]]) -> int:
    import grpc

    from queen.poolview import fetch_pool, render

    tty = sys.stdout.isatty()
    start = time.monotonic()
    last = None
    printed = 0.0
    while time.monotonic() - start < seconds:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            print(f"a demo process exited early (code {dead[0].returncode}); see {logs}", file=sys.stderr)
            return 1
        try:
            last = await fetch_pool(cfg, target)  # type: ignore[arg-type]
        except grpc.aio.AioRpcError as exc:
            print(f"queen not answering yet: {exc.code().name}", flush=True)
            await asyncio.sleep(1)
            continue
        elapsed = time.monotonic() - start
        if tty:
            print("\033[2J\033[H", end="")
            print(f"BlendrChain demo — live pool ({elapsed:.0f}s of {seconds:.0f}s; logs in {logs})\n")
            print(render(last), flush=True)
        elif elapsed - printed >= 10 or printed == 0.0:
            printed = elapsed or 0.001
            print(f"\n--- pool at {elapsed:.0f}s ---\n{render(last)}", flush=True)
        await asyncio.sleep(1.0)
    if last is None:
        print("the queen never answered", file=sys.stderr)
        return 1
    print(f"\n--- final pool ---\n{render(last)}\n")
    passed = sum(p.challenges_passed for p in last.providers)
    failed = sum(p.challenges_failed + p.challenges_missed for p in last.providers)
    ok = len(last.providers) == PROVIDERS and all(p.challenges_passed >= 1 for p in last.providers)
    _say(f"{len(last.providers)} providers, {passed} challenges passed, {failed} failed or missed")
    if not ok:
        print(f"not every provider passed a challenge; see the logs in {logs}", file=sys.stderr)
    return 0 if ok and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
