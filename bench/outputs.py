"""Job outputs: from the provider to ``blendr job get``, through a queen and the king, against bare gRPC.

For each size (1, 64 and 512 MiB of random bytes; ``--quick``: 1 and 4 MiB) one job's output goes the whole
way as it does in a network, timed phase by phase:

* ``pack``: the provider packs the output directory into a tar (uncompressed) sealed to the renter's key
  (blendr.outputs.pack_outputs) into its spool file;
* ``upload``: the provider streams the spool to the queen (``QueenService.UploadOutput``), the queen checks it
  and relays it chunk by chunk to the king (``KingControl.UploadOutput``), which writes it to disk;
* ``get``: the renter SDK's ``KingClient.get_output`` (what ``blendr job get`` calls): the king streams the
  sealed file (``RenterGateway.GetJobOutput``) into the renter's spool, which is opened and unpacked.

Every server is a real ``grpc.aio`` server from ``blendr.rpc.server.start_server`` over loopback TLS (the
node's devnet CA), on 127.0.0.1; see tests/fakes/output_chain.py for what is faked (Ethereum, the queens'
sessions, Ray). The received file is checked byte for byte (SHA-256) against what the job wrote.

The baseline, in the same run and over the same TLS: a bare ``grpc.aio`` server with raw-bytes handlers, the
same sealed bytes streamed up in 1 MiB messages (client stream, written to disk) and back down (server stream,
written to disk): one hop each way, no signatures, no relay, no encryption. ``ratio`` is the baseline's time
over ours for upload + get (the goal: >= 0.5x); ``ratio_with_pack`` adds the provider's packing to ours.
``ratio_same_hops`` is a second view, not the goal's: our upload crosses two hops (provider -> queen -> king)
where the baseline's crosses one, so it counts the baseline's upload twice, ``(2 * bare_up + bare_down) /
(upload + get)``.

Each size runs ``repeats`` times (3; quick: 1) after one warm-up round that is not kept; the best by ratio is
reported.

Memory: the king, the queen, the provider and the renter run in this one process; its resident set is sampled
every 10 ms, and ``peak_rss_growth_mib`` is the peak during upload + get over the RSS before them — an upper
bound for the king's own growth while it receives and serves an output (outputs stream to disk; a king that
held one whole would grow by its size).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import format_table, machine_info, result_path, write_json

MIB = 2**20
FULL_SIZES = (1, 64, 512)
QUICK_SIZES = (1, 4)
GOAL = 0.5


class RssSampler:
    """Samples this process's VmRSS every ``interval`` seconds in a thread; ``peak`` since :meth:`reset`."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def reset(self) -> int:
        now = self.rss()
        self.peak = now
        return now

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def write_random(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            h.update(block)
            fh.write(block)
            left -= len(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(MIB):
            h.update(block)
    return h.hexdigest()


def pack(src: Path, spool: Path, key: bytes, aad: bytes) -> None:
    """What the provider does when the job ends: pack ``src`` sealed to the renter into its spool file."""
    from blendr.outputs import pack_outputs

    with open(spool, "wb") as out:
        pack_outputs(src, out, key, aad, max_bytes=2 * 1024 * MIB)


# --- the bare baseline ------------------------------------------------------------------------------------


async def start_bare(cfg: Any, workdir: Path) -> tuple[Any, int]:
    """A grpc.aio server with raw-bytes methods: /bare/Up (stream -> file) and /bare/Down (file -> stream)."""
    import grpc

    from blendr.rpc.server import server_credentials

    async def up(it: AsyncIterator[bytes], context: Any) -> bytes:
        n = 0
        with open(workdir / "bare-up.bin", "wb") as fh:
            async for chunk in it:
                await asyncio.to_thread(fh.write, chunk)
                n += len(chunk)
        return str(n).encode()

    async def down(request: bytes, context: Any) -> AsyncIterator[bytes]:
        with open(workdir / "bare-up.bin", "rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, MIB):
                yield chunk

    ident = lambda b: b  # noqa: E731 - raw bytes both ways
    handler = grpc.method_handlers_generic_handler("bare", {
        "Up": grpc.stream_unary_rpc_method_handler(up, request_deserializer=ident, response_serializer=ident),
        "Down": grpc.unary_stream_rpc_method_handler(down, request_deserializer=ident, response_serializer=ident),
    })
    limit = cfg.rpc.max_message_bytes
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                      ("grpc.max_send_message_length", limit)])
    server.add_generic_rpc_handlers((handler,))
    creds = server_credentials(cfg)
    port = server.add_secure_port("127.0.0.1:0", creds) if creds else server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def bare_round_trip(cfg: Any, port: int, src: Path, dst: Path) -> tuple[float, float]:
    """Streams ``src`` up and back down into ``dst``; returns (up seconds, down seconds)."""
    from blendr.rpc.server import open_channel

    ident = lambda b: b  # noqa: E731
    async with open_channel(cfg, f"127.0.0.1:{port}") as ch:
        up = ch.stream_unary("/bare/Up", request_serializer=ident, response_deserializer=ident)
        down = ch.unary_stream("/bare/Down", request_serializer=ident, response_deserializer=ident)

        async def chunks() -> AsyncIterator[bytes]:
            with open(src, "rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, MIB):
                    yield chunk

        t0 = time.perf_counter()
        await up(chunks(), timeout=3600)
        t1 = time.perf_counter()
        with open(dst, "wb") as fh:
            async for chunk in down(b"", timeout=3600):
                await asyncio.to_thread(fh.write, chunk)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


# --- one size the whole way -------------------------------------------------------------------------------


async def run(sizes: tuple[int, ...], work: Path, repeats: int) -> list[dict[str, Any]]:
    from eth_account import Account

    from blendr.clock import SystemClock
    from blendr.config import load_config
    from blendr.outputs import output_aad
    from blendr.payload import public_key_of
    from blendr.rpc.server import open_channel
    from provider.outputs import upload_output
    from tests.fakes.output_chain import start_output_chain

    home = work / "home"
    home.mkdir()
    cfg = load_config(home, overrides={"rpc.tls": True}, env={})
    chain = await start_output_chain(cfg, SystemClock(), work / "king-outputs", max_job_bytes=2 * 1024 * MIB,
                                     max_total_bytes=8 * 1024 * MIB)
    bare, bare_port = await start_bare(cfg, work)
    sampler = RssSampler()
    sampler.start()
    rows: list[dict[str, Any]] = []
    try:
        renter = Account.create()
        key = public_key_of(bytes(renter.key))
        async with chain.client(renter) as king:
            for size_mib in sizes:
                size = size_mib * MIB
                best: dict[str, Any] | None = None
                peak_growth = 0.0
                # the first round of a size warms both paths up (connections, TLS sessions, thread pools) and is
                # not kept
                for rep in range(-1, repeats):
                    src = work / f"out-{size_mib}-{rep + 1}"
                    src.mkdir()
                    digest = await asyncio.to_thread(write_random, src / "output.bin", size)
                    (work / "w").mkdir(exist_ok=True)
                    job_id, attempt = await chain.run_job(king, work / "w", name=f"out{size_mib}")
                    spool = work / "spool.sealed"
                    base = sampler.reset()
                    t0 = time.perf_counter()

                    await asyncio.to_thread(pack, src, spool, key, output_aad(job_id, attempt))
                    t1 = time.perf_counter()
                    async with open_channel(cfg, f"127.0.0.1:{chain.queen_server.port}") as channel:
                        stored = await upload_output(channel, chain.provider.account(), job_id, attempt, "", spool)
                    t2 = time.perf_counter()
                    dest = work / f"got-{size_mib}-{rep + 1}"
                    files = await king.get_output(job_id, dest)
                    t3 = time.perf_counter()
                    peak = sampler.peak
                    ok = files == 1 and sha256_of(dest / "output.bin") == digest
                    bare_up, bare_down = await bare_round_trip(cfg, bare_port, spool, work / "bare-down.bin")
                    same = sha256_of(work / "bare-down.bin") == sha256_of(spool)
                    row = {
                        "size_mib": size_mib, "sealed_bytes": stored, "pack_s": t1 - t0, "upload_s": t2 - t1,
                        "get_s": t3 - t2, "bare_up_s": bare_up, "bare_down_s": bare_down,
                        "byte_identical": ok and same,
                        "peak_rss_growth_mib": round((peak - base) / MIB, 1), "rss_before_mib": round(base / MIB, 1),
                    }
                    row["ratio"] = (bare_up + bare_down) / (row["upload_s"] + row["get_s"])
                    row["ratio_same_hops"] = (2 * bare_up + bare_down) / (row["upload_s"] + row["get_s"])
                    row["ratio_with_pack"] = (bare_up + bare_down) / (row["pack_s"] + row["upload_s"] + row["get_s"])
                    row["mib_per_s"] = size_mib / (row["pack_s"] + row["upload_s"] + row["get_s"])
                    for p in (src, dest):
                        shutil.rmtree(p, ignore_errors=True)
                    for f in (spool, work / "bare-down.bin", work / "bare-up.bin"):
                        f.unlink(missing_ok=True)
                    chain.store.remove(job_id)  # the king's disk: one size at a time
                    peak_growth = max(peak_growth, row["peak_rss_growth_mib"])  # the warm-up's counts too
                    if rep >= 0 and (best is None or row["ratio"] > best["ratio"]):
                        best = row
                assert best is not None
                best["peak_rss_growth_mib"] = peak_growth
                best["repeats"] = repeats
                rows.append(best)
                print(f"  {size_mib} MiB: ours {best['upload_s'] + best['get_s']:.2f} s (+pack {best['pack_s']:.2f} s), "
                      f"bare {best['bare_up_s'] + best['bare_down_s']:.2f} s, ratio {best['ratio']:.2f}x, "
                      f"peak RSS +{best['peak_rss_growth_mib']} MiB", flush=True)
    finally:
        sampler.stop()
        await bare.stop(0)
        await chain.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = ["size", "pack s", "upload s", "get s", "bare up+down s", "ratio", "ratio w/ pack",
            "ratio same hops", "MiB/s", "peak RSS +MiB", "identical"]
    return format_table(head, [[f"{r['size_mib']} MiB", f"{r['pack_s']:.2f}", f"{r['upload_s']:.2f}",
                                f"{r['get_s']:.2f}", f"{r['bare_up_s'] + r['bare_down_s']:.2f}", f"{r['ratio']:.2f}x",
                                f"{r['ratio_with_pack']:.2f}x", f"{r.get('ratio_same_hops', 0.0):.2f}x",
                                f"{r['mib_per_s']:.0f}",
                                f"{r['peak_rss_growth_mib']:.1f}", "yes" if r["byte_identical"] else "NO"]
                               for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 and 4 MiB, once each (seconds)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default: bench/results/outputs.json, with --quick "
                             "bench/results/quick/outputs.json)")
    parser.add_argument("--repeats", type=int, default=0, help="runs per size, the best kept (default 3; quick 1)")
    parser.add_argument("--sizes", default="", help="sizes in MiB, comma-separated (default 1,64,512; quick 1,4)")
    args = parser.parse_args(argv)
    out = result_path("outputs", args.quick, args.out)
    sizes = tuple(int(x) for x in args.sizes.split(",")) if args.sizes else QUICK_SIZES if args.quick else FULL_SIZES
    repeats = args.repeats or (1 if args.quick else 3)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="blendr-bench-outputs-") as tmp:
        rows = asyncio.run(run(sizes, Path(tmp), repeats))
    print(table(rows))
    print("ratio: bare (one hop up, one down) over ours (upload: two hops, provider -> queen -> king; get: one); "
          "ratio same hops counts the bare upload twice")
    met = all(r["ratio"] >= GOAL for r in rows)
    report = {
        "benchmark": "outputs", "mode": "quick" if args.quick else "full",
        "sizes_mib": list(sizes), "goal_ratio": GOAL, "target_met": met, "all_byte_identical":
            all(r["byte_identical"] for r in rows),
        "results": rows,
        "notes": ("one process hosts king, queen, provider and renter (fakes: Ethereum, queen sessions, Ray; see "
                  "tests/fakes/output_chain.py); loopback TLS; the best of `repeats` runs per size by ratio (after an "
                  "unkept warm-up round), and the highest RSS growth of all of them; peak_rss_growth_mib bounds the king's own growth"),
        "machine": machine_info(["grpcio", "cryptography"]),
        "wall_s": round(time.monotonic() - started, 1),
    }
    write_json(out, report)
    print(f"goal ratio >= {GOAL}x: {'met' if met else 'NOT met'}; report in {out}")
    return 0 if report["all_byte_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
