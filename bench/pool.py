"""Benchmark of one queen under thousands of concurrent provider streams, against a bare ``grpc.aio`` server.

Two servers run one after the other, each in its own process, under the identical load from a separate
load-generator process (asyncio, many ``QueenService.Connect`` streams per channel):

* ``queen``: the real queen (``queen.app.start_queen``: plaintext, admission "open", SQLite store in a
  temporary home, tick loop running), admitting every stream with a real EIP-712 signature.
* ``bare_grpc``: a ``grpc.aio`` server whose ``Connect`` does only the minimal protocol: hello → admission
  challenge, any admission response → admitted, then it reads heartbeats and counts them.

Each stream is admitted, answers every challenge at once with a ``ChallengeError`` (so challenges cost the
queen nothing but bookkeeping), then sends a heartbeat every ``--interval`` seconds (1 Hz), spread evenly.
After a warm-up, a steady window measures on the server side:

* handled heartbeats/s: heartbeats whose handling completed in the window, divided by its length;
* handling latency: from the moment the read of a heartbeat returns to the handler (the servicer's read
  loop gets the message) to the moment its handling returns; for the queen that is its servicer's
  ``_dispatch`` (wrapped in the server process, the queen's code is not changed), for the bare server
  the same wrapper around its minimal handler;
* delivery latency: from the client's ``write`` call (the heartbeat's ``seq`` carries the client's
  CLOCK_MONOTONIC reading, shared by all processes on the machine) to the moment the server's read returns:
  client queueing + transport + server queueing, where a loaded asyncio server's latency hides;
* event-loop lag: oversleep of a task that sleeps 10 ms in a loop in the server process;
* CPU seconds of the server process (all threads) during the window.

Then a saturation window: every stream sends heartbeats back to back, and the maximum handled rate of each
server is measured the same way.

Figures: ``heartbeat_ratio_vs_bare_grpc`` = queen handled/s ÷ bare handled/s at 1 Hz (target ≥ 0.5; both
servers keeping up with the offered rate gives ≈ 1.0), and ``saturation_ratio_vs_bare_grpc`` = the same
ratio of the saturated rates. On a machine with few cores the load generator may saturate before the bare
server does; the output says so (then the bare maximum is a lower bound and the saturation ratio an
upper bound).

Processes are pinned when there are at least two CPUs: the server to CPU 0, load generators to the rest.
Provider keys are derived deterministically and their addresses cached in the temp folder, so only the
first run pays for deriving them.

``--quick`` (for ``make test``): 200 streams instead of 2,000 and short phases (warm-up 0.5 s, 1 Hz window 2 s,
saturation 0.5 s + 1.5 s in 3 parts, against 10 s, 60 s, 3 s + 20 s in 5 parts): a smoke run, its figures are
not comparable with the full ones.

Usage: ``python bench/pool.py [--quick] [--streams 2000] [--out bench/results/pool.json] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import itertools
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from _common import format_table, machine_info, percentile, result_path, write_json

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.5
SERVERS = ("queen", "bare_grpc")

HANDSHAKE_TIMEOUT_S = 30.0  # per handshake message, client side
HANDSHAKE_CONCURRENCY = 64  # admissions in flight per load generator (signing blocks its loop)
STREAM_DEADLINE_S = 3600.0  # deadline of each Connect call; far beyond any run
LAG_TICK_S = 0.010
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 30.0
RAMP_TIMEOUT_S = 240.0
BARE_QUEEN_ADDRESS = "0x000000000000000000000000000000000000bEEF"
IDENTITY_CACHE = Path(tempfile.gettempdir()) / "blendr-bench" / "pool-identities.json"


@dataclass(frozen=True)
class Phases:
    """Seconds of each phase, per server."""

    warmup_s: float
    window_s: float
    sat_warmup_s: float
    sat_window_s: float
    sat_parts: int  # the saturation window is also reported in this many parts (its rate is noisy)


QUICK = Phases(warmup_s=0.5, window_s=2.0, sat_warmup_s=0.5, sat_window_s=1.5, sat_parts=3)
FULL = Phases(warmup_s=10.0, window_s=60.0, sat_warmup_s=3.0, sat_window_s=20.0, sat_parts=5)
FULL_STREAMS, QUICK_STREAMS = 2000, 200


class BenchError(Exception):
    """The benchmark cannot go on (a process failed to start, died, or did not answer in time)."""


# ---------------------------------------------------------------------------------------------- helpers


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _stats(values_ns: Sequence[int], scale: float) -> dict[str, float | int | None]:
    """p50/p99/max/mean of nanosecond samples, divided by ``scale`` (1e3: µs, 1e6: ms)."""
    if not values_ns:
        return {"n": 0, "p50": None, "p99": None, "max": None, "mean": None}
    p50, p99 = percentile(values_ns, 50), percentile(values_ns, 99)
    assert p50 is not None and p99 is not None
    return {
        "n": len(values_ns),
        "p50": round(p50 / scale, 3),
        "p99": round(p99 / scale, 3),
        "max": round(max(values_ns) / scale, 3),
        "mean": round(sum(values_ns) / len(values_ns) / scale, 3),
    }


def _provider_key(i: int) -> bytes:
    return hashlib.sha256(b"blendr-bench-pool/%d" % i).digest()


def _provider_address(i: int) -> str:
    from blendr.identity import NodeIdentity

    return NodeIdentity.from_key(_provider_key(i)).address


def ensure_identities(n: int) -> Path:
    """Make sure the cache holds the addresses of provider keys 0..n-1 (deriving one costs ~6 ms)."""
    cached: list[str] = []
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads(IDENTITY_CACHE.read_text(encoding="utf-8"))
        if data.get("version") == 1 and data["addresses"] and data["addresses"][0] == _provider_address(0):
            cached = list(data["addresses"])
    if len(cached) < n:
        t0 = time.monotonic()
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as ex:
            cached += list(ex.map(_provider_address, range(len(cached), n), chunksize=64))
        print(f"derived {n} provider keys in {time.monotonic() - t0:.1f}s (cached in {IDENTITY_CACHE})")
        IDENTITY_CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = IDENTITY_CACHE.with_name(f".{IDENTITY_CACHE.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"version": 1, "addresses": cached}), encoding="utf-8")
        os.replace(tmp, IDENTITY_CACHE)
    return IDENTITY_CACHE


# ---------------------------------------------------------------------------------------------- child side


class Control:
    """A child's control channel: JSON commands on stdin, JSON replies on a private copy of stdout.

    Anything else the process prints goes to stderr (the child's log file), never into the channel.
    """

    def __init__(self) -> None:
        self._out: TextIO = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        os.dup2(2, 1)

    async def commands(self) -> AsyncIterator[dict[str, Any]]:
        """Yield commands until stdin closes (the parent is gone or done)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            yield json.loads(line)

    def reply(self, **fields: Any) -> None:
        self._out.write(json.dumps(fields) + "\n")


class Window:
    """Samples since the last ``mark``: heartbeats, handling and delivery latency, loop lag, CPU."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        self.t0 = time.monotonic_ns()
        self.cpu0 = _cpu_seconds()
        self.heartbeats = 0
        self.other = 0
        self.handling: list[int] = []
        self.delivery: list[int] = []
        self.lag: list[int] = []

    def observe(self, msg: Any, t_read: int, t_done: int) -> None:
        if msg.WhichOneof("body") == "heartbeat":
            self.heartbeats += 1
            self.handling.append(t_done - t_read)
            sent = msg.heartbeat.seq
            if sent:
                self.delivery.append(t_read - sent)
        else:
            self.other += 1

    def report(self) -> dict[str, Any]:
        secs = (time.monotonic_ns() - self.t0) / 1e9
        cpu = _cpu_seconds() - self.cpu0
        return {
            "secs": round(secs, 3),
            "heartbeats": self.heartbeats,
            "heartbeats_per_s": round(self.heartbeats / secs, 1),
            "other_messages": self.other,
            "handling_us": _stats(self.handling, 1e3),
            "delivery_ms": _stats(self.delivery, 1e6),
            "loop_lag_ms": _stats(self.lag, 1e6),
            "cpu_s": round(cpu, 3),
            "cpu_util": round(cpu / secs, 3),
            "cpu_us_per_heartbeat": round(cpu / self.heartbeats * 1e6, 1) if self.heartbeats else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }


async def _lag_monitor(window: Window) -> None:
    """Oversleep of a 10 ms sleep, sampled continuously into the current window."""
    while True:
        t = time.monotonic_ns()
        await asyncio.sleep(LAG_TICK_S)
        window.lag.append(time.monotonic_ns() - t - int(LAG_TICK_S * 1e9))


def _timed(window: Window, dispatch: Any) -> Any:
    """Wrap a servicer's per-message handler ``(self, *args, msg)`` to record handling latency."""

    async def timed(self: Any, *args: Any) -> None:
        t_read = time.monotonic_ns()
        await dispatch(self, *args)
        window.observe(args[-1], t_read, time.monotonic_ns())

    return timed


class _LogCounter:
    """Counts WARNING and ERROR log records of the queen (a logging handler)."""

    def __init__(self) -> None:
        import logging

        self.counts: Counter[str] = Counter()
        counts = self.counts

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                counts[f"{record.levelname}: {record.getMessage()[:60]}"] += 1

        self.handler = Handler(logging.WARNING)


async def _serve_queen(window: Window, home: Path) -> tuple[int, Any, Any]:
    import logging

    from blendr.config import load_config
    from blendr.telemetry import configure_logging
    from queen.app import start_queen
    from queen.service import QueenServicer

    home.mkdir(parents=True, exist_ok=True)
    # The queen logs at INFO as in production, to a file (admissions and challenge verdicts; no heartbeat logs).
    log_file = (home / "queen.log").open("w", encoding="utf-8")
    configure_logging("INFO", stream=log_file)
    log_counter = _LogCounter()
    logging.getLogger().addHandler(log_counter.handler)
    QueenServicer._dispatch = _timed(window, QueenServicer._dispatch)  # type: ignore[method-assign]
    cfg = load_config(
        home,
        env={},
        overrides={
            "queen.listen": "127.0.0.1:0",
            "queen.admin_listen": "127.0.0.1:0",
            "queen.admission": "open",
            "rpc.tls": False,
            "queen.heartbeat_interval_s": 1.0,
            "queen.suspect_after_s": 10.0,
            "queen.dead_after_s": 30.0,
            "queen.challenge_mean_interval_s": 1e6,
            "metrics.port": -1,
        },
    )
    app = await start_queen(cfg)
    metric = app.core.metrics.heartbeats if app.core.metrics else None
    marked_metric = [0.0]
    marked_logs: list[Counter[str]] = [Counter()]

    def metric_value() -> float:
        try:
            return float(metric._value.get()) if metric is not None else float("nan")
        except AttributeError:  # prometheus_client internals moved: the cross-check is optional
            return float("nan")

    def on_mark() -> None:
        marked_metric[0] = metric_value()
        marked_logs[0] = Counter(log_counter.counts)

    def extra() -> dict[str, Any]:
        core = app.core
        connected = sum(1 for r in core.providers() if core.is_connected(r.address))
        logs = Counter(log_counter.counts)
        logs.subtract(marked_logs[0])
        return {
            "streams": connected,
            "metric_heartbeats": metric_value() - marked_metric[0],
            "log_warnings_errors": {k: v for k, v in logs.items() if v},
        }

    async def stop() -> dict[str, Any]:
        await app.stop()
        log_file.close()
        return {"log_warnings_errors_total": dict(log_counter.counts)}

    return app.port, (on_mark, extra), stop


async def _serve_bare(window: Window) -> tuple[int, Any, Any]:
    import grpc

    from protos.blendr.v1 import queen_pb2 as pb
    from protos.blendr.v1 import queen_pb2_grpc as pb_grpc

    class BareServicer(pb_grpc.QueenServiceServicer):  # type: ignore[misc]
        """The minimal protocol: a handshake that checks nothing, then count heartbeats."""

        def __init__(self) -> None:
            self.streams = 0
            self.heartbeats = 0

        async def Connect(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
            first = await asyncio.wait_for(anext(request_iterator), HANDSHAKE_TIMEOUT_S)
            yield pb.QueenMessage(
                admission_challenge=pb.AdmissionChallenge(nonce=bytes(32), queen_address=BARE_QUEEN_ADDRESS)
            )
            await asyncio.wait_for(anext(request_iterator), HANDSHAKE_TIMEOUT_S)
            yield pb.QueenMessage(
                admitted=pb.Admitted(
                    provider_address=first.hello.address,
                    heartbeat_interval_seconds=1.0,
                    queen_address=BARE_QUEEN_ADDRESS,
                )
            )
            self.streams += 1
            try:
                async for msg in request_iterator:
                    await self._dispatch(msg)
            finally:
                self.streams -= 1

        async def _dispatch(self, msg: Any) -> None:
            if msg.WhichOneof("body") == "heartbeat":
                self.heartbeats += 1

    BareServicer._dispatch = _timed(window, BareServicer._dispatch)  # type: ignore[method-assign]
    servicer = BareServicer()
    server = grpc.aio.server()
    pb_grpc.add_QueenServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise BenchError("the bare server cannot bind 127.0.0.1:0")
    await server.start()
    state = {"hb0": 0}

    def on_mark() -> None:
        state["hb0"] = servicer.heartbeats

    def extra() -> dict[str, Any]:
        return {"streams": servicer.streams, "handler_heartbeats": servicer.heartbeats - state["hb0"]}

    async def stop() -> dict[str, Any]:
        await server.stop(2.0)
        return {}

    return port, (on_mark, extra), stop


async def server_main(kind: str, home: Path, ctl: Control) -> None:
    """A server process: start, say ``ready``, then answer mark/report/stop."""
    window = Window()
    lag = asyncio.create_task(_lag_monitor(window))
    if kind == "queen":
        port, (on_mark, extra), stop = await _serve_queen(window, home)
    else:
        port, (on_mark, extra), stop = await _serve_bare(window)
    ctl.reply(event="ready", port=port, pid=os.getpid())
    async for cmd in ctl.commands():
        if cmd["cmd"] == "mark":
            window.mark()
            on_mark()
            ctl.reply(ok=True)
        elif cmd["cmd"] == "count":
            ctl.reply(ok=True, heartbeats=window.heartbeats, t_ns=time.monotonic_ns())
        elif cmd["cmd"] == "report":
            rep = window.report()
            ctl.reply(ok=True, **rep, **extra())
        elif cmd["cmd"] == "stop":
            lag.cancel()
            ctl.reply(ok=True, **await stop())
            return
        else:
            ctl.reply(ok=False, error=f"unknown command {cmd['cmd']!r}")
    await stop()  # the parent went away


@dataclass
class LoadState:
    saturate: bool = False
    interval_s: float = 1.0
    sent: int = 0
    admitted: int = 0
    challenges: int = 0
    errors_window: int = 0


class BenchStream:
    """One provider stream: handshake, answer challenges, heartbeat on schedule or back to back."""

    def __init__(
        self,
        ident: Any,
        channel: Any,
        state: LoadState,
        errors: Counter[str],
        phase: float,
        sign: bool,
        gate: asyncio.Semaphore,
    ) -> None:
        from protos.blendr.v1 import queen_pb2_grpc as pb_grpc

        self.ident = ident
        self.stub = pb_grpc.QueenServiceStub(channel)
        self.state = state
        self.errors = errors
        self.phase = phase
        self.sign = sign
        self.gate = gate
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.lock = asyncio.Lock()  # one write in flight per call

    async def run(self) -> None:
        import grpc

        from protos.blendr.v1 import queen_pb2 as pb

        call: Any = None
        reader: asyncio.Task[None] | None = None
        try:
            async with self.gate:
                # The call starts here, inside the gate: a burst of thousands of new calls overflows a gRPC
                # server's queue of calls not yet picked up by the application (it cancels the excess).
                call = self.stub.Connect(timeout=STREAM_DEADLINE_S)
                self.call_write = call.write
                await call.write(
                    pb.ProviderMessage(
                        hello=pb.Hello(
                            address=self.ident.address,
                            software_version="bench",
                            devices=[
                                pb.Device(
                                    index=0,
                                    kind=pb.DEVICE_KIND_CPU,
                                    name="bench",
                                    model="cpu",
                                    memory_bytes=1 << 30,
                                )
                            ],
                        )
                    )
                )
                msg = await asyncio.wait_for(call.read(), HANDSHAKE_TIMEOUT_S)
                if msg is grpc.aio.EOF or msg.WhichOneof("body") != "admission_challenge":
                    raise BenchError(f"expected an admission challenge, got {msg}")
                ch = msg.admission_challenge
                sig = self.ident.sign_admission(ch.queen_address, bytes(ch.nonce)) if self.sign else bytes(65)
                await call.write(pb.ProviderMessage(admission_response=pb.AdmissionResponse(signature=sig)))
                msg = await asyncio.wait_for(call.read(), HANDSHAKE_TIMEOUT_S)
                if msg is grpc.aio.EOF or msg.WhichOneof("body") != "admitted":
                    raise BenchError(f"expected admitted, got {msg}")
            self.state.admitted += 1
            self.ready.set_result(True)
            reader = asyncio.create_task(self._read(call))
            await self._beat(call)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as exc:
            self._failed(f"{exc.code().name}: {exc.details()}")
        except Exception as exc:
            what = f"{type(exc).__name__}: {exc}"
            if call is not None and call.done():  # a write on an ended call: report why it ended
                with contextlib.suppress(Exception):
                    what = f"{(await call.code()).name}: {await call.details()}"
            self._failed(what)
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            if call is not None:
                call.cancel()

    def _failed(self, what: str) -> None:
        self.errors[what] += 1
        self.state.errors_window += 1
        if not self.ready.done():
            self.ready.set_result(False)

    async def _write(self, msg: Any) -> None:
        async with self.lock:
            await self.call_write(msg)

    async def _read(self, call: Any) -> None:
        import grpc

        from protos.blendr.v1 import queen_pb2 as pb

        while (msg := await call.read()) is not grpc.aio.EOF:
            if msg.WhichOneof("body") == "challenge":
                self.state.challenges += 1
                await self._write(
                    pb.ProviderMessage(
                        challenge_error=pb.ChallengeError(
                            challenge_id=msg.challenge.challenge_id, reason="bench client"
                        )
                    )
                )

    async def _beat(self, call: Any) -> None:
        from protos.blendr.v1 import queen_pb2 as pb

        loop = asyncio.get_running_loop()
        state = self.state
        next_t = loop.time() + self.phase * state.interval_s
        while True:
            if not state.saturate:
                delay = next_t - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_t += state.interval_s
                if next_t < loop.time() - state.interval_s:
                    next_t = loop.time()  # fell far behind: resume the schedule, do not burst
            await self._write(pb.ProviderMessage(heartbeat=pb.Heartbeat(seq=time.monotonic_ns())))
            state.sent += 1


async def loadgen_main(
    ids_path: Path, first: int, count: int, per_channel: int, interval_s: float, ctl: Control
) -> None:
    """A load-generator process: connect/mode/mark/report/close commands over its streams."""
    import grpc

    from blendr.identity import Address, NodeIdentity

    addresses = json.loads(ids_path.read_text(encoding="utf-8"))["addresses"][first : first + count]
    if len(addresses) < count:
        raise BenchError(f"identity cache {ids_path} holds too few addresses")
    idents = [NodeIdentity(Address(a), _provider_key(first + i)) for i, a in enumerate(addresses)]
    state = LoadState(interval_s=interval_s)
    errors: Counter[str] = Counter()
    window = Window()
    lag = asyncio.create_task(_lag_monitor(window))
    channels: list[Any] = []
    tasks: list[asyncio.Task[None]] = []
    marks = {"sent": 0, "t": time.monotonic()}

    async def close() -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        tasks.clear()
        for ch in channels:
            await ch.close()
        channels.clear()
        state.saturate = False
        state.admitted = 0

    ctl.reply(event="ready", pid=os.getpid())
    try:
        async for cmd in ctl.commands():
            c = cmd["cmd"]
            if c == "connect":
                await close()
                errors.clear()
                target = f"127.0.0.1:{cmd['port']}"
                n_ch = -(-count // per_channel)
                # A local subchannel pool per channel: each channel gets its own TCP connection.
                channels.extend(
                    grpc.aio.insecure_channel(
                        target, options=[("grpc.use_local_subchannel_pool", 1), ("bench.channel", i)]
                    )
                    for i in range(n_ch)
                )
                gate = asyncio.Semaphore(HANDSHAKE_CONCURRENCY)
                streams = [
                    BenchStream(
                        ident,
                        channels[i // per_channel],
                        state,
                        errors,
                        (i * 0.618034) % 1.0,
                        bool(cmd["sign"]),
                        gate,
                    )
                    for i, ident in enumerate(idents)
                ]
                t0 = time.monotonic()
                tasks.extend(asyncio.create_task(s.run()) for s in streams)
                await asyncio.wait([s.ready for s in streams], timeout=RAMP_TIMEOUT_S)  # never cancels them
                oks = [s.ready.done() and s.ready.result() for s in streams]
                ctl.reply(
                    ok=True,
                    admitted=sum(oks),
                    failed=len(oks) - sum(oks),
                    secs=round(time.monotonic() - t0, 3),
                    errors=dict(errors),
                )
            elif c == "mode":
                state.saturate = bool(cmd["saturate"])
                ctl.reply(ok=True)
            elif c == "mark":
                window.mark()
                marks.update(sent=state.sent, t=time.monotonic())
                state.errors_window = 0
                ctl.reply(ok=True)
            elif c == "report":
                rep = window.report()
                secs = time.monotonic() - marks["t"]
                sent = state.sent - marks["sent"]
                ctl.reply(
                    ok=True,
                    secs=round(secs, 3),
                    sent=sent,
                    sent_per_s=round(sent / secs, 1),
                    active=sum(1 for t in tasks if not t.done()),
                    errors_window=state.errors_window,
                    errors=dict(errors),
                    challenges_answered=state.challenges,
                    cpu_s=rep["cpu_s"],
                    cpu_util=rep["cpu_util"],
                    loop_lag_ms=rep["loop_lag_ms"],
                )
            elif c == "close":
                await close()
                ctl.reply(ok=True)
            else:
                ctl.reply(ok=False, error=f"unknown command {c!r}")
    finally:
        lag.cancel()
        await close()


def child_main(args: argparse.Namespace) -> int:
    """Entry of a child process (``--role``)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(
            1, signal.SIGTERM
        )  # PR_SET_PDEATHSIG: die with the parent
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    ctl = Control()
    try:
        if args.role == "loadgen":
            coro = loadgen_main(Path(args.ids), args.first, args.count, args.per_channel, args.interval, ctl)
        else:
            coro = server_main(args.role, Path(args.home), ctl)
        asyncio.run(coro)
    except BaseException as exc:  # report why to the parent, then fail
        import traceback

        traceback.print_exc()
        ctl.reply(event="error", ok=False, error=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------- parent side


class Child:
    """A child process of this script and its control channel (stderr goes to a log file)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, name: str, args: Sequence[str], cpus: str, log_dir: Path) -> Child:
        log = log_dir / f"{name}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).resolve()),
                "--role",
                *args,
                "--cpus",
                cpus,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                limit=1 << 22,
            )
        return cls(name, proc, log)

    def _tail(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines[-15:])

    async def recv(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchError(f"{self.name} did not answer within {timeout:.0f}s\n{self._tail()}") from None
        if not line:
            rc = await self.proc.wait()
            raise BenchError(f"{self.name} exited (status {rc})\n{self._tail()}")
        msg: dict[str, Any] = json.loads(line)
        if not msg.get("ok", True):
            raise BenchError(f"{self.name} failed: {msg.get('error')}\n{self._tail()}")
        return msg

    async def call(self, timeout: float = CALL_TIMEOUT_S, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.recv(timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Close its stdin (it then stops by itself); terminate, then kill, if it does not."""
        if self.proc.returncode is not None:
            return
        if self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
        for sig_timeout, action in ((timeout, None), (5.0, self.proc.terminate), (5.0, self.proc.kill)):
            if action is not None:
                with contextlib.suppress(ProcessLookupError):
                    action()
            try:
                await asyncio.wait_for(self.proc.wait(), sig_timeout)
                return
            except TimeoutError:
                continue


async def _measure(srv: Child, loadgens: Sequence[Child], secs: float, splits: int = 1) -> dict[str, Any]:
    """One measurement window; with ``splits`` > 1 also the handled rate of each part of it."""
    host0 = _host_cpu()
    await srv.call(cmd="mark")
    for lg in loadgens:
        await lg.call(cmd="mark")
    counts = [await srv.call(cmd="count")]
    for _ in range(splits):
        await asyncio.sleep(secs / splits)
        if splits > 1:
            counts.append(await srv.call(cmd="count"))
    server = await srv.call(cmd="report")
    clients = [await lg.call(cmd="report") for lg in loadgens]
    host = _host_cpu_delta(host0, _host_cpu())
    server.pop("ok", None)
    merged_errors: Counter[str] = Counter()
    for c in clients:
        merged_errors.update(c["errors"])
    offered = sum(c["sent_per_s"] for c in clients)
    parts = [
        round((b["heartbeats"] - a["heartbeats"]) / ((b["t_ns"] - a["t_ns"]) / 1e9), 1)
        for a, b in itertools.pairwise(counts)
    ]
    return {
        "handled_per_s": server["heartbeats_per_s"],
        "offered_per_s": round(offered, 1),
        **({"handled_per_s_by_part": parts} if parts else {}),
        "server": server,
        "clients": {
            "processes": len(clients),
            "sent": sum(c["sent"] for c in clients),
            "sent_per_s": round(offered, 1),
            "active_streams": sum(c["active"] for c in clients),
            "stream_errors_in_window": sum(c["errors_window"] for c in clients),
            "stream_errors_total": dict(merged_errors),
            "cpu_util": [c["cpu_util"] for c in clients],
            "loop_lag_ms_p99": max((c["loop_lag_ms"]["p99"] or 0.0) for c in clients),
        },
        "host_cpu": host,
    }


def _host_cpu() -> dict[str, list[int]]:
    """Per-CPU jiffies from /proc/stat (empty where there is none)."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return {}
    return {
        p[0]: [int(x) for x in p[1:9]]
        for p in (ln.split() for ln in lines)
        if p[0][:3] == "cpu" and p[0] != "cpu"
    }


def _host_cpu_delta(a: dict[str, list[int]], b: dict[str, list[int]]) -> dict[str, Any]:
    """Busy and stolen (hypervisor) percent of each CPU between two readings: noise shows here."""
    out: dict[str, Any] = {}
    for cpu in sorted(set(a) & set(b)):
        d = [y - x for x, y in zip(a[cpu], b[cpu], strict=True)]
        total = sum(d) or 1
        idle = d[3] + d[4]  # idle + iowait
        out[cpu] = {
            "busy_pct": round(100 * (total - idle - d[7]) / total, 1),
            "steal_pct": round(100 * d[7] / total, 1),
        }
    return out


def _bottleneck(m: dict[str, Any]) -> str:
    server_busy = m["server"]["cpu_util"] >= 0.9
    client_busy = max(m["clients"]["cpu_util"]) >= 0.9
    if server_busy and not client_busy:
        return "server"
    if client_busy and not server_busy:
        return "client"
    return "both" if server_busy else "neither"


class Profiler:
    """py-spy on a server process from ``start`` to ``stop`` (SIGINT); summarises the hottest functions."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.proc: asyncio.subprocess.Process | None = None
        self.error: str | None = None

    async def start(self) -> Profiler:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            self.error = "py-spy not installed"
            return self
        # --nonblocking: sample without pausing the server; raw: one collapsed stack per line.
        self.proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(self.pid), "--duration", "3600", "--rate", "200", "--nonblocking",
            "--format", "raw", "--output", str(self.out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return self

    async def stop(self) -> dict[str, Any]:
        """Stop sampling; the top functions by own and by inclusive share of the busy samples."""
        if self.proc is None:
            return {"error": self.error}
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = await asyncio.wait_for(self.proc.communicate(), 30)
        except TimeoutError:
            self.proc.kill()
            return {"error": "py-spy did not stop"}
        if not self.out.exists():
            return {"error": f"py-spy failed: {err.decode(errors='replace')[-300:]}"}
        own: Counter[str] = Counter()
        incl: Counter[str] = Counter()
        total = 0
        for line in self.out.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            total += int(n)
            frames = [_frame_name(f) for f in stack.split(";")]
            own[frames[-1]] += int(n)
            for f in set(frames):
                incl[f] += int(n)
        if not total:
            return {"error": "py-spy recorded no samples"}

        def top(c: Counter[str], k: int) -> list[dict[str, Any]]:
            return [{"function": f, "pct": round(100 * v / total, 1)} for f, v in c.most_common(k)]

        project = Counter({f: v for f, v in incl.items() if f.partition(" (")[2].startswith(PROJECT_CODE)})
        return {
            "busy_samples": total,
            "top_own": top(own, 15),
            "top_inclusive": top(incl, 30),
            "top_project_inclusive": top(project, 15),
        }


PROJECT_CODE = ("queen/", "blendr/")


def _frame_name(frame: str) -> str:
    """``func (path/file.py:123)`` → ``func (path/file.py)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rstrip(')').rsplit(':', 1)[0] or '?'})"


async def _run_server(
    kind: str,
    loadgens: Sequence[Child],
    phases: Phases,
    args: argparse.Namespace,
    tmp: Path,
    server_cpus: str,
) -> dict[str, Any]:
    """One server through admission, the 1 Hz window and the saturation window; stopped in any case."""
    print(f"[{kind}] starting server", flush=True)
    srv = await Child.start(kind, [kind, "--home", str(tmp / kind)], server_cpus, tmp)
    profiles: dict[str, dict[str, Any]] = {}

    async def profiler(phase: str) -> Profiler | None:
        return (
            await Profiler(ready["pid"], tmp / f"{kind}.{phase}.pyspy.txt").start() if args.profile else None
        )

    async def done(phase: str, prof: Profiler | None) -> None:
        if prof is not None:
            profiles[phase] = await prof.stop()

    try:
        ready = await srv.recv(START_TIMEOUT_S)
        if ready.get("event") != "ready":
            raise BenchError(f"{kind} did not start: {ready}")
        prof = await profiler("admission")
        await srv.call(cmd="mark")
        t0 = time.monotonic()
        ramps = await asyncio.gather(*(
            lg.call(timeout=RAMP_TIMEOUT_S + 30, cmd="connect", port=ready["port"], sign=kind == "queen")
            for lg in loadgens
        ))  # fmt: skip
        errs: Counter[str] = Counter()
        for r in ramps:
            errs.update(r["errors"])
        admission = {
            "admitted": sum(r["admitted"] for r in ramps),
            "failed": sum(r["failed"] for r in ramps),
            "secs": round(time.monotonic() - t0, 2),
            "errors": dict(errs),
        }
        during = await srv.call(cmd="report")  # the server while it admitted the streams
        admission["server"] = {k: during[k] for k in ("cpu_s", "cpu_util", "loop_lag_ms", "delivery_ms")}
        await done("admission", prof)
        print(
            f"[{kind}] admitted {admission['admitted']}/{args.streams} streams in {admission['secs']}s"
            + (f" (errors {dict(errs)})" if errs else ""),
            flush=True,
        )
        if admission["admitted"] == 0:
            raise BenchError(f"{kind}: no stream was admitted ({dict(errs)})\n{srv._tail()}")

        await asyncio.sleep(phases.warmup_s)
        print(f"[{kind}] steady window {phases.window_s:g}s at {1 / args.interval:g} Hz", flush=True)
        prof = await profiler("steady")
        steady = await _measure(srv, loadgens, phases.window_s)
        await done("steady", prof)

        for lg in loadgens:
            await lg.call(cmd="mode", saturate=True)
        await asyncio.sleep(phases.sat_warmup_s)
        print(f"[{kind}] saturation window {phases.sat_window_s:g}s", flush=True)
        prof = await profiler("saturation")
        saturation = await _measure(srv, loadgens, phases.sat_window_s, phases.sat_parts)
        await done("saturation", prof)
        saturation["bottleneck"] = _bottleneck(saturation)
        # Kept up: handled what the load generators could offer, so its own maximum is at least this.
        saturation["kept_up_with_load"] = saturation["handled_per_s"] >= 0.97 * saturation["offered_per_s"]

        result: dict[str, Any] = {"admission": admission, "steady": steady, "saturation": saturation}
        if profiles:
            result["profile"] = profiles
        for lg in loadgens:
            await lg.call(timeout=60, cmd="close")
        final = await srv.call(timeout=60, cmd="stop")
        final.pop("ok", None)
        if final:
            result["final"] = final
        return result
    finally:
        await srv.close()


def _code_version() -> dict[str, Any]:
    """The commit measured, and whether the queen's code had uncommitted changes."""
    import subprocess

    def git(*cmd: str) -> str:
        return subprocess.run(
            ["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "HEAD"),
            "queen_dirty": bool(git("status", "--porcelain", "queen", "blendr")),
        }
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "queen_dirty": None}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _table(servers: dict[str, Any]) -> str:
    head = (
        "phase",
        "server",
        "streams",
        "offered/s",
        "handled/s",
        "handling µs p50/p99",
        "delivery ms p50/p99",
        "loop lag ms p99/max",
        "CPU s (util)",
        "CPU µs/hb",
        "busy CPU",
        "kept up",
    )
    rows = []

    def f(x: float | None, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    for phase in ("steady", "saturation"):
        for kind in SERVERS:
            m = servers[kind][phase]
            s = m["server"]
            rows.append(
                (
                    "1 Hz" if phase == "steady" else "saturation",
                    kind,
                    str(s["streams"]),
                    f(m["offered_per_s"], ".0f"),
                    f(m["handled_per_s"], ".0f"),
                    f"{f(s['handling_us']['p50'], '.1f')}/{f(s['handling_us']['p99'], '.1f')}",
                    f"{f(s['delivery_ms']['p50'], '.2f')}/{f(s['delivery_ms']['p99'], '.2f')}",
                    f"{f(s['loop_lag_ms']['p99'], '.2f')}/{f(s['loop_lag_ms']['max'], '.1f')}",
                    f"{s['cpu_s']:.2f} ({s['cpu_util']:.2f})",
                    f(s["cpu_us_per_heartbeat"], ".0f"),
                    m.get("bottleneck", "-"),
                    {True: "yes", False: "no"}.get(m.get("kept_up_with_load"), "-"),
                )
            )
    return format_table(head, rows)


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    """The whole run: both servers under the same load; the report as a dict."""
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM cancels the run like Ctrl-C does, so the child processes are stopped on the way out.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    phases = QUICK if args.quick else FULL
    started = time.monotonic()
    ids = ensure_identities(args.streams)
    ncpu = len(os.sched_getaffinity(0))
    pin = args.pin and ncpu >= 2
    server_cpus = "0" if pin else ""
    client_cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[1:]) if pin else ""
    tmp = Path(tempfile.mkdtemp(prefix="blendr-bench-pool-"))
    loadgens: list[Child] = []
    try:
        share, extra = divmod(args.streams, args.clients)
        first = 0
        for i in range(args.clients):
            n = share + (1 if i < extra else 0)
            lg = await Child.start(
                f"loadgen{i}",
                [
                    "loadgen",
                    "--ids",
                    str(ids),
                    "--first",
                    str(first),
                    "--count",
                    str(n),
                    "--per-channel",
                    str(args.per_channel),
                    "--interval",
                    str(args.interval),
                ],
                client_cpus,
                tmp,
            )
            loadgens.append(lg)
            first += n
        for lg in loadgens:
            ready = await lg.recv(START_TIMEOUT_S)
            if ready.get("event") != "ready":
                raise BenchError(f"{lg.name} did not start: {ready}")
        servers = {
            kind: await _run_server(kind, loadgens, phases, args, tmp, server_cpus) for kind in SERVERS
        }
    except BaseException:
        print(f"(logs kept in {tmp})", file=sys.stderr)
        raise
    finally:
        for lg in loadgens:
            await lg.close()
    shutil.rmtree(tmp, ignore_errors=True)

    q, b = servers["queen"], servers["bare_grpc"]
    notes = []
    for kind in SERVERS:
        m = servers[kind]
        if m["admission"]["admitted"] < args.streams:
            notes.append(f"{kind}: only {m['admission']['admitted']} of {args.streams} streams were admitted")
        if m["steady"]["handled_per_s"] < 0.95 * m["steady"]["offered_per_s"]:
            notes.append(f"{kind}: did not keep up with the offered 1 Hz load")
    if b["saturation"]["kept_up_with_load"]:
        notes.append(
            "bare_grpc kept up with all the load generator could offer under saturation: its maximum is at "
            "least the figure shown, so saturation_ratio_vs_bare_grpc is an upper bound"
        )
    ratio = _ratio(q["steady"]["handled_per_s"], b["steady"]["handled_per_s"])
    return {
        "benchmark": "pool",
        "mode": "quick" if args.quick else "full",
        "heartbeat_ratio_vs_bare_grpc": ratio,
        "saturation_ratio_vs_bare_grpc": _ratio(
            q["saturation"]["handled_per_s"], b["saturation"]["handled_per_s"]
        ),
        # CPU per heartbeat at 1 Hz (the whole server process, tick loop included): > 1 = queen costs more.
        "cpu_per_heartbeat_vs_bare_grpc": _ratio(
            q["steady"]["server"]["cpu_us_per_heartbeat"] or 0.0,
            b["steady"]["server"]["cpu_us_per_heartbeat"] or 0.0,
        ),
        "target": TARGET,
        "target_met": ratio is not None and ratio >= TARGET,
        "definitions": {
            "handled_per_s": "heartbeats whose handling completed in the window (server side) / window seconds",
            "handling_us": "server: read of the heartbeat returned to the servicer's read loop -> its handler "
            "(queen: QueenServicer._dispatch; bare: minimal counter) returned",
            "delivery_ms": "client write() called (CLOCK_MONOTONIC in Heartbeat.seq) -> server read returned",
            "loop_lag_ms": "oversleep of a 10 ms asyncio.sleep in the server process",
            "cpu_s": "user+system CPU of the server process (all threads) during the window",
            "cpu_us_per_heartbeat": "cpu_s / heartbeats handled in the window (includes the tick loop etc.)",
            "busy_cpu": "which side used >= 90% of its CPU in the saturation window (server, client, both)",
            "kept_up_with_load": "saturation: handled >= 97% of what the load generators offered",
        },
        "params": {
            "streams": args.streams,
            "interval_s": args.interval,
            "streams_per_channel": args.per_channel,
            "load_generators": args.clients,
            "handshake_concurrency": HANDSHAKE_CONCURRENCY,
            "pinned": pin,
            "server_cpus": server_cpus,
            "client_cpus": client_cpus,
            "phases": asdict(phases),
            "profile": args.profile,
        },
        "machine": machine_info(("grpcio", "protobuf", "prometheus-client")),
        "code": _code_version(),
        "servers": servers,
        "notes": notes,
        "wall_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark (or, with ``--role``, one of its child processes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_STREAMS} streams and short phases: a smoke run of a few seconds per server")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default: bench/results/pool.json, with --quick bench/results/quick/pool.json)")
    parser.add_argument(
        "--streams", type=int, default=None,
        help=f"concurrent provider streams (default {FULL_STREAMS}, --quick {QUICK_STREAMS})",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between heartbeats per stream")
    parser.add_argument("--per-channel", type=int, default=50, help="streams per gRPC channel (default 50)")
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes (default 1)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes to CPUs")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy each server during its measurement windows (perturbs the numbers)",
    )
    for hidden in ("--role", "--home", "--ids", "--cpus"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return child_main(args)
    args.out = result_path("pool", args.quick, args.out)
    if args.streams is None:
        args.streams = QUICK_STREAMS if args.quick else FULL_STREAMS
    if args.streams < 1 or args.clients < 1 or args.per_channel < 1 or args.interval <= 0:
        parser.error("--streams, --clients and --per-channel must be >= 1 and --interval > 0")

    try:
        report = asyncio.run(orchestrate(args))
    except BenchError as exc:
        print(f"pool benchmark failed: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("pool benchmark interrupted; its processes were stopped", file=sys.stderr)
        return 130
    servers = report["servers"]
    print()
    print(
        f"pool: {args.streams} streams, {1 / args.interval:g} Hz, {report['mode']} "
        f"(window {report['params']['phases']['window_s']:g}s, "
        f"saturation {report['params']['phases']['sat_window_s']:g}s)"
    )
    print(_table(servers))
    print()
    for kind in SERVERS:
        a = servers[kind]["admission"]
        lag = a["server"]["loop_lag_ms"]
        print(
            f"admission {kind}: {a['admitted']} streams in {a['secs']:.1f}s, failed {a['failed']}; server CPU "
            f"{a['server']['cpu_s']:.1f}s, loop lag p99/max {lag['p99']}/{lag['max']} ms"
        )
    for kind in SERVERS:
        for phase, prof in servers[kind].get("profile", {}).items():
            if "top_own" not in prof:
                print(f"\n{kind} {phase} profile: {prof.get('error')}")
                continue
            print(
                f"\n{kind} {phase}: % of {prof['busy_samples']} busy py-spy samples (own | queen/blendr incl.)"
            )
            for own, mine in itertools.zip_longest(prof["top_own"][:8], prof["top_project_inclusive"][:8]):
                left = f"{own['pct']:5.1f}% {own['function']}" if own else ""
                right = f"{mine['pct']:5.1f}% {mine['function']}" if mine else ""
                print(f"  {left[:70]:<70} | {right}")
    print(
        f"\nheartbeat_ratio_vs_bare_grpc = {report['heartbeat_ratio_vs_bare_grpc']} "
        f"(target >= {TARGET}: {'met' if report['target_met'] else 'NOT met'})"
    )
    sat = {k: servers[k]["saturation"].get("handled_per_s_by_part") for k in SERVERS}
    print(
        f"saturation_ratio_vs_bare_grpc = {report['saturation_ratio_vs_bare_grpc']} "
        f"(handled/s by part: queen {sat['queen']}, bare {sat['bare_grpc']})"
    )
    print(f"cpu_per_heartbeat_vs_bare_grpc = {report['cpu_per_heartbeat_vs_bare_grpc']} (1 Hz window)")
    for note in report["notes"]:
        print(f"note: {note}")
    write_json(args.out, report)
    print(f"wrote {args.out} ({report['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
