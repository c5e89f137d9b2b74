"""Wiring of a queen process: config, identity, store, TLS server, metrics and the tick loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from dataclasses import dataclass, field

from blendr.clock import Clock, SystemClock
from blendr.config import Config, check_queen_limits
from blendr.identity import NodeIdentity
from blendr.rpc.server import ServerHandle, start_server
from blendr.store import SQLiteStore, Store
from blendr.telemetry import Metrics, get_logger
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc
from queen.admission import AllowlistOracle, OpenOracle, StakeOracle
from queen.core import QueenCore, QueenMetrics
from queen.service import QueenAdminServicer, QueenServicer

log = get_logger("blendr.queen")

SERVICES = ("blendr.v1.QueenService",)
ADMIN_SERVICES = ("blendr.v1.QueenAdmin",)


def open_queen_store(cfg: Config) -> SQLiteStore:
    return SQLiteStore(cfg.path("queen", "state.sqlite3"))


def make_oracle(cfg: Config, store: Store, clock: Clock) -> StakeOracle:
    if cfg.queen.admission == "open":
        return OpenOracle()
    if cfg.queen.admission == "stake":
        from queen.stake_oracle import make_chain_oracle

        return make_chain_oracle(cfg)
    return AllowlistOracle(store, clock)


@dataclass
class QueenApp:
    """A running queen; ``await app.stop()`` shuts it down gracefully."""

    cfg: Config
    core: QueenCore
    server: ServerHandle
    admin: ServerHandle
    metrics: Metrics
    metrics_port: int | None
    store: Store
    _ticker: asyncio.Task[None] | None = field(default=None)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def admin_port(self) -> int:
        return self.admin.port

    async def _tick_loop(self) -> None:
        while True:
            try:
                self.core.tick()
                seen = self.core.flush_due()
                if seen:
                    # Heartbeat times of the whole pool, one document, written off the event loop.
                    await asyncio.to_thread(self.core.pool.write, seen)
            except Exception:
                log.exception("queen tick failed")
            await asyncio.sleep(self.cfg.queen.tick_s)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.server.stop(self.cfg.rpc.grace_s)
        await self.admin.stop(self.cfg.rpc.grace_s)
        self.core.shutdown()
        self.metrics.stop_http_server()
        self.store.close()
        log.info("queen stopped")


async def start_queen(
    cfg: Config,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    run_ticker: bool = True,
) -> QueenApp:
    """Start a queen from its config: load its key (creating it), its pool, then serve.

    Raises:
        ConfigError, IdentityError, TLSError, StoreError: with a message saying what to fix.
    """
    check_queen_limits(cfg)
    clock = clock or SystemClock()
    ident, created = NodeIdentity.load_or_create(cfg.home)
    if created:
        log.info("created queen key", address=ident.address, home=str(cfg.home))
    store = store or open_queen_store(cfg)
    metrics = Metrics()
    core = QueenCore(ident.address, cfg.queen, store, clock, make_oracle(cfg, store, clock),
                     metrics=QueenMetrics(metrics), rng=rng)
    known = core.start()
    server = await start_server(
        cfg, cfg.queen.listen,
        [lambda s: pb_grpc.add_QueenServiceServicer_to_server(QueenServicer(core), s)],
        service_names=SERVICES,
    )
    # The operator view lists every provider: on its own listener, loopback by default.
    admin = await start_server(
        cfg, cfg.queen.admin_listen,
        [lambda s: pb_grpc.add_QueenAdminServicer_to_server(QueenAdminServicer(core), s)],
        service_names=ADMIN_SERVICES,
    )
    metrics_port = None
    if cfg.metrics.port >= 0:
        metrics_port = metrics.start_http_server(cfg.metrics.host, cfg.metrics.port)
    app = QueenApp(cfg, core, server, admin, metrics, metrics_port, store)
    if run_ticker:
        app._ticker = asyncio.create_task(app._tick_loop())
    log.info("queen serving", address=ident.address, port=server.port, admin_port=admin.port, tls=server.tls,
             known_providers=known,
             admission=cfg.queen.admission, metrics_port=metrics_port)
    return app


async def run_queen(cfg: Config) -> None:
    """Run a queen until SIGINT/SIGTERM."""
    app = await start_queen(cfg)
    (cfg.home / "queen").mkdir(parents=True, exist_ok=True)
    (cfg.home / "queen" / "admin_port").write_text(f"{app.admin_port}\n")
    (cfg.home / "queen" / "port").write_text(f"{app.port}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"queen {app.core.address} listening on port {app.port}, admin on {cfg.queen.admin_listen.rsplit(':', 1)[0]}:"
          f"{app.admin_port} (tls={'on' if app.server.tls else 'off'})",
          flush=True)
    await stop.wait()
    await app.stop()
