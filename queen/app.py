"""Wiring of a queen process: config, identity, store, TLS server, metrics and the tick loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blendr.chain.depths import DEPTH_PARAMS
from blendr.clock import Clock, SystemClock
from blendr.config import Config, check_queen_limits
from blendr.errors import BlendrError, IdentityError, TLSError
from blendr.identity import KEY_FILE, NodeIdentity
from blendr.rpc.server import ServerHandle, start_server
from blendr.store import SQLiteStore, Store
from blendr.telemetry import Metrics, get_logger
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc
from queen.admission import AllowlistOracle, OpenOracle, StakeOracle
from queen.core import QUARANTINE_PARAMS, QueenCore, QueenMetrics
from queen.service import QueenAdminServicer, QueenServicer

log = get_logger("blendr.queen")

SERVICES = ("blendr.v1.QueenService",)
ADMIN_SERVICES = ("blendr.v1.QueenAdmin",)


def open_queen_store(cfg: Config) -> SQLiteStore:
    return SQLiteStore(cfg.path("queen", "state.sqlite3"))


def make_oracle(cfg: Config, store: Store, clock: Clock, manifest: Any = None) -> StakeOracle:
    if cfg.queen.admission == "open":
        return OpenOracle()
    if cfg.queen.admission == "stake":
        from queen.stake_oracle import make_chain_oracle

        return make_chain_oracle(cfg, manifest)
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
    verifier: Any = None  # queen.verification.RentalVerifier when relay.enabled
    attester: Any = None  # queen.attester.Attester when relay.enabled
    _relay_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _king_channel: Any = None
    gov: Any = None  # blendr.chain.govwatch.GovWatch: the governance parameters this queen obeys, when it has a manifest
    depths: Any = None  # blendr.chain.depths.Depths: the confirmation depths its chain clients use (with gov)
    kinglink: Any = None  # queen.kinglink.KingLink when relay.king is set
    chain_clients: list[Any] = field(default_factory=list)  # its ChainClients (chain duties), closed at stop

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
                # Loop boundary: liveness and challenges of the whole pool run from this loop, which must
                # outlive a bug in one tick; the traceback is logged and the next tick runs as usual.
                log.exception("queen tick failed")
            await asyncio.sleep(self.cfg.queen.tick_s)

    async def stop(self) -> None:
        for c in self.chain_clients:  # chain calls still running in worker threads end now, not after retries
            c.close()
        for t in [*self._relay_tasks, *([self._ticker] if self._ticker else [])]:
            t.cancel()
        for t in [*self._relay_tasks, *([self._ticker] if self._ticker else [])]:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._king_channel is not None:
            await self._king_channel.close()
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
    manifest: Any = None,
) -> QueenApp:
    """Start a queen from its config: load its key (creating it for a queen without chain duties), its
    pool, then serve.

    Nothing is written (key, store, TLS files) before the preconditions hold: the limits, the deployment
    manifest when the queen needs one (``--relay`` or stake admission), and for chain duties an existing key
    (only a key named as a bridge attester at deployment can attest).

    Raises:
        ConfigError, IdentityError, TLSError, StoreError: with a message saying what to fix.
    """
    check_queen_limits(cfg)
    clock = clock or SystemClock()
    if manifest is None and (cfg.relay.enabled or cfg.queen.admission == "stake"):
        from blendr.chain.manifest import load_manifest

        manifest = load_manifest(cfg)
    king_ca = Path(cfg.relay.king_ca_file).expanduser() if cfg.relay.king_ca_file else None
    if cfg.relay.king and cfg.rpc.tls and king_ca is not None and not king_ca.is_file():
        raise TLSError(f"no CA certificate at {king_ca} (--king-ca-file): copy the king's <king home>/tls/ca.crt "
                       "to this machine and pass its path")
    if cfg.relay.enabled and not (cfg.home / KEY_FILE).exists():
        raise IdentityError(
            f"no queen key at {cfg.home / KEY_FILE}, and chain duties (--relay) need the key of a bridge "
            f"attester: on a devnet `blendr devnet key queen1 --home {cfg.home}` (queen1..queen3 are the "
            "attesters); on a real network the key whose address the deployment named as an attester")
    ident, created = NodeIdentity.load_or_create(cfg.home)
    if created:
        log.info("created queen key", address=ident.address, home=str(cfg.home))
    store = store or open_queen_store(cfg)
    metrics = Metrics()
    oracle = make_oracle(cfg, store, clock, manifest)
    core = QueenCore(ident.address, cfg.queen, store, clock, oracle, metrics=QueenMetrics(metrics), rng=rng)
    known = core.start()
    servicer = QueenServicer(core)
    server = await start_server(
        cfg, cfg.queen.listen,
        [lambda s: pb_grpc.add_QueenServiceServicer_to_server(servicer, s)],
        service_names=SERVICES,
        health_listen=cfg.rpc.health_listen,
    )
    # The operator view lists every provider: on its own listener, loopback by default.
    try:
        admin = await start_server(
            cfg, cfg.queen.admin_listen,
            [lambda s: pb_grpc.add_QueenAdminServicer_to_server(QueenAdminServicer(core), s)],
            service_names=ADMIN_SERVICES,
        )
    except BaseException:  # a start that fails stops what it started (a running server left to the GC can hang it)
        await server.stop(0)
        core.shutdown()
        raise
    app = QueenApp(cfg, core, server, admin, metrics, None, store)
    try:
        if cfg.metrics.port >= 0:
            app.metrics_port = metrics.start_http_server(cfg.metrics.host, cfg.metrics.port)
        if manifest is not None:
            await _read_governance(app, manifest)  # before the chain loops start: they begin at governance's depths
        if cfg.relay.king:
            _start_king_link(app, ident, clock, run=run_ticker)
            from queen.outputs import OutputRelay

            servicer.outputs = OutputRelay(core.jobs, ident.account(), clock, _kings(app).current)
        if cfg.relay.enabled:
            _start_relay(app, ident, clock, manifest, run=run_ticker)
        if manifest is not None:
            _start_gov_watch(app, oracle, run=run_ticker)
        if run_ticker:
            app._ticker = asyncio.create_task(app._tick_loop())
    except BaseException:
        await app.stop()
        raise
    log.info("queen serving", address=ident.address, port=server.port, admin_port=admin.port, tls=server.tls,
             known_providers=known,
             admission=cfg.queen.admission, metrics_port=app.metrics_port)
    return app


class KingEndpoints:
    """The king's control API at one address or several (``relay.king = "HOST:PORT[,HOST:PORT…]"``: kings sharing one
    store, king.ha), one channel each. The king link moves to the next address each time it redials; the attester
    and the output relay call the address the link last used."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.targets = [t.strip() for t in cfg.relay.king.split(",") if t.strip()]
        self._channels: dict[str, Any] = {}
        self._i = 0
        self._dialled = False

    def _stub(self, target: str) -> Any:
        from blendr.rpc.server import open_channel
        from protos.blendr.v1 import king_pb2_grpc as kpb_grpc

        if target not in self._channels:
            self._channels[target] = open_channel(self.cfg, target, ca_file=self.cfg.relay.king_ca_file)
        return kpb_grpc.KingControlStub(self._channels[target])

    def current(self) -> Any:
        """The control stub at the address in use."""
        return self._stub(self.targets[self._i])

    def redial(self) -> Any:
        """The stub for the king link's next session: the first address at first, then the next one each time."""
        if self._dialled:
            self._i = (self._i + 1) % len(self.targets)
        self._dialled = True
        return self.current()

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()


def _kings(app: QueenApp) -> KingEndpoints:
    """The king's endpoints, shared by the king link, the attester and the output relay."""
    if app._king_channel is None:
        app._king_channel = KingEndpoints(app.cfg)
    kings: KingEndpoints = app._king_channel
    return kings


def _start_king_link(app: QueenApp, ident: NodeIdentity, clock: Clock, *, run: bool) -> None:
    """The session with the king (``relay.king``): pool snapshots and job events out, assignments in."""
    from queen.kinglink import KingLink

    cfg = app.cfg
    endpoint = cfg.relay.endpoint or f"{cfg.queen.listen.rsplit(':', 1)[0]}:{app.port}"
    app.kinglink = KingLink(app.core, ident.account(), cfg.relay, stub=_kings(app).redial, clock=clock,
                            endpoint=endpoint, call_timeout_s=cfg.rpc.call_timeout_s)
    if run:
        app._relay_tasks.append(asyncio.create_task(app.kinglink.run()))
    log.info("queen links to its king", king=cfg.relay.king, king_address=cfg.relay.king_address or "(any)",
             endpoint=endpoint)


def _start_relay(app: QueenApp, ident: NodeIdentity, clock: Clock, manifest: Any, *, run: bool) -> None:
    """The chain duties (``[relay]``): rental verification on ETC and bridge attestations."""
    from blendr.chain.client import ChainClient
    from blendr.chain.contracts import BridgeInbox, BridgeOutbox, WorkVerification
    from blendr.chain.manifest import chain_settings, load_manifest
    from queen.attester import Attester, Route
    from queen.verification import RentalVerifier

    cfg = app.cfg
    m = manifest or load_manifest(cfg)
    account = ident.account()
    eth = ChainClient(chain_settings(cfg, m, "eth"), account)
    etc = ChainClient(chain_settings(cfg, m, "etc"), account)
    app.chain_clients += [eth, etc]
    if app.depths is not None:
        app.depths.attach(eth, etc)  # governance's confirmation depths, now and whenever they change
    wv = WorkVerification(etc, m.etc.address("WorkVerification"))
    app.verifier = RentalVerifier(app.core, cfg.relay, wv, app.store, clock, start_block=m.etc.deploy_block)
    open_tasks = app.verifier.load()
    if app.kinglink is not None:  # the king's network view: verdicts with their rentals, and the batches that land
        app.kinglink.rental_of = app.verifier.rental_of
        app.verifier.batch_listeners.append(app.kinglink.batch_landed)
    routes = [
        Route(eth, BridgeOutbox(eth, m.eth.address("BridgeOutbox")), etc, BridgeInbox(etc, m.etc.address("BridgeInbox")),
              m.eth.deploy_block),
        Route(etc, BridgeOutbox(etc, m.etc.address("BridgeOutbox")), eth, BridgeInbox(eth, m.eth.address("BridgeInbox")),
              m.etc.deploy_block),
    ]
    king = None
    if cfg.relay.king:
        from queen.kingclient import GrpcKing

        king = GrpcKing(_kings(app).current, timeout_s=10.0)
    app.attester = Attester(account, routes, app.store, clock, cfg.relay, king=king)
    if run:
        app._relay_tasks += [asyncio.create_task(app.verifier.run()), asyncio.create_task(app.attester.run())]
    log.info("queen chain duties on", network=m.network, open_tasks=open_tasks, king=cfg.relay.king or "(none)")


#: The governance parameters a queen obeys while it runs (blendr.chain.govparams names).
QUEEN_GOV_PARAMS = ("verification.challenge_interval", *QUARANTINE_PARAMS, "staking.min_stake_provider",
                    *DEPTH_PARAMS)


async def _read_governance(app: QueenApp, manifest: Any) -> None:
    """The queen's governance parameters (``app.gov``) and confirmation depths (``app.depths``), read once now; a
    chain that cannot be read leaves the manifest's depths and the config's values until the next refresh."""
    from blendr.chain.depths import Depths
    from blendr.chain.govwatch import GovWatch, chain_reader

    app.depths = Depths.for_node(app.cfg, manifest)
    app.gov = GovWatch(chain_reader(app.cfg, manifest), QUEEN_GOV_PARAMS, app.cfg.chain.gov_refresh_s)
    app.gov.on_change(app.depths.apply)
    try:
        await asyncio.to_thread(app.gov.refresh)
    except BlendrError as exc:
        log.warning("governance parameters could not be read at start; using the deployment's until the next "
                    "refresh", error=str(exc)[:300])


def _start_gov_watch(app: QueenApp, oracle: StakeOracle, *, run: bool) -> None:
    """Follows the queen's governance parameters (``chain.gov_refresh_s``): the rented providers' challenge
    interval, the quarantine bounds, the provider stake minimum of stake admission and the confirmation depths
    change while the queen runs."""
    from queen.stake_oracle import ChainStakeOracle

    watch = app.gov
    app.core.gov = watch
    if app.verifier is not None:
        app.verifier.gov = watch
    if isinstance(oracle, ChainStakeOracle):
        chain_oracle = oracle
        chain_oracle.gov = watch
        watch.on_change(lambda values, changed: chain_oracle.forget() if "staking.min_stake_provider" in changed
                        else None)
    if run:
        app._relay_tasks.append(asyncio.create_task(watch.run()))


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
