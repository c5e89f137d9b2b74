"""Wiring of a king process: config, identity, chains, store, the KingControl server and its loops."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from typing import Any

from blendr.chain.client import ChainClient
from blendr.chain.contracts import BridgeInbox, GPURental
from blendr.chain.manifest import Manifest, chain_settings, load_manifest
from blendr.clock import Clock, SystemClock
from blendr.config import Config
from blendr.identity import NodeIdentity
from blendr.rpc.server import ServerHandle, start_server
from blendr.store import SQLiteStore, Store
from blendr.telemetry import get_logger
from king.bridge import AttestationBook, Lane
from king.control import KingControlServicer
from king.settlements import SettlementBook
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc

log = get_logger("blendr.king")

SERVICES = ("blendr.v1.KingControl",)


@dataclass
class KingApp:
    cfg: Config
    address: str
    server: ServerHandle
    book: AttestationBook
    settlements: SettlementBook
    store: Store
    clients: dict[str, ChainClient]
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    async def _follow_settlements(self) -> None:
        failures = 0
        while True:
            delay = self.cfg.king.poll_s
            try:
                while await asyncio.to_thread(self.settlements.poll):
                    pass
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = min(self.cfg.king.retry_max_s, self.cfg.king.retry_initial_s * 2 ** (failures - 1))
                log.warning("settlement follower failed; retrying", error=str(exc)[:300], retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.server.stop(self.cfg.rpc.grace_s)
        self.store.close()
        log.info("king stopped")


def chain_clients(cfg: Config, m: Manifest, account: Any) -> dict[str, ChainClient]:
    return {name: ChainClient(chain_settings(cfg, m, name), account) for name in ("eth", "etc")}


async def start_king(
    cfg: Config,
    *,
    manifest: Manifest | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    run_loops: bool = True,
) -> KingApp:
    """Start a king from its config: its key (created if absent; it pays for deliveries), the deployment
    manifest, the control server, the delivery loop and the settlement follower.

    Raises:
        ConfigError, IdentityError, TLSError, StoreError: with a message saying what to fix.
    """
    clock = clock or SystemClock()
    ident, created = NodeIdentity.load_or_create(cfg.home)
    if created:
        log.info("created king key", address=ident.address, home=str(cfg.home))
    m = manifest or load_manifest(cfg)
    clients = chain_clients(cfg, m, ident.account())
    store = store or SQLiteStore(cfg.path("king", "state.sqlite3"))
    lanes = [
        Lane(BridgeInbox(clients["etc"], m.etc.address("BridgeInbox")), m.eth.chain_id, m.eth.address("BridgeOutbox")),
        Lane(BridgeInbox(clients["eth"], m.eth.address("BridgeInbox")), m.etc.chain_id, m.etc.address("BridgeOutbox")),
    ]
    book = AttestationBook(lanes, store, clock, cfg.king)
    pending = book.load()
    settlements = SettlementBook(GPURental(clients["eth"], m.eth.address("GPURental")), store,
                                 start_block=m.eth.deploy_block)
    server = await start_server(
        cfg, cfg.king.listen, [lambda s: kpb_grpc.add_KingControlServicer_to_server(KingControlServicer(book, settlements), s)],
        service_names=SERVICES)
    app = KingApp(cfg, ident.address, server, book, settlements, store, clients)
    if run_loops:
        app._tasks = [asyncio.create_task(book.run()), asyncio.create_task(app._follow_settlements())]
    log.info("king serving", address=ident.address, port=server.port, tls=server.tls, network=m.network,
             pending_deliveries=pending)
    return app


async def run_king(cfg: Config) -> None:
    """Run a king until SIGINT/SIGTERM."""
    app = await start_king(cfg)
    (cfg.home / "king").mkdir(parents=True, exist_ok=True)
    (cfg.home / "king" / "port").write_text(f"{app.port}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"king {app.address} control API on port {app.port} (tls={'on' if app.server.tls else 'off'})", flush=True)
    await stop.wait()
    await app.stop()
