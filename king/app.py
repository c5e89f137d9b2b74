"""Wiring of a king process: config, identity, chains, store, the KingControl server and its loops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from blendr.chain.client import ChainClient
from blendr.chain.contracts import (
    BridgeInbox,
    ComputeVoucher,
    GPURental,
    GPUToken,
    ReputationSystem,
    StakingManager,
    Tier,
)
from blendr.chain.depths import DEPTH_PARAMS, Depths
from blendr.chain.governing import Governor
from blendr.chain.govwatch import GovWatch
from blendr.chain.manifest import Manifest, chain_settings, load_manifest
from blendr.clock import Clock, SystemClock
from blendr.config import Config
from blendr.errors import BlendrError, FailedPreconditionError, IdentityError
from blendr.identity import KEY_FILE, NodeIdentity
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.rpc.server import ServerHandle, open_channel, start_server
from blendr.store import PostgresStore, SQLiteStore, Store, open_store
from blendr.telemetry import Metrics, get_logger
from blendr.units import fmt_tokens
from king.auth import Sessions, SignInOrigin
from king.bridge import AttestationBook, Lane
from king.context import JobsConfig
from king.control import KingControlServicer
from king.core import KingCore
from king.gateway import RenterGatewayServicer, StoreGateway
from king.governance import ProposalBook
from king.ha import LeaderLink, Leadership, LeaseConfig, routed
from king.metrics import KingCollector
from king.netview import NetworkDesk, NetworkInfo
from king.network import NetworkViewServicer, network_info
from king.outputs import OutputStore
from king.pricing import Pricer, PricingParams
from king.queens import QueenHub
from king.rentals import EthRentals
from king.rewards import follow as follow_rewards
from king.rewards import publisher_for
from king.scheduler import Scheduler
from king.settlements import SettlementBook
from king.stakes import StakeBook, StakingReader
from king.stakes import follow as follow_stakes
from king.vouchers import EthVouchers
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from protos.blendr.v1 import network_pb2 as npb
from protos.blendr.v1 import network_pb2_grpc as npb_grpc
from protos.blendr.v1 import renter_pb2 as rpb
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc

if TYPE_CHECKING:
    from king.web import WebServer

log = get_logger("blendr.king")

SERVICES = ("blendr.v1.KingControl", "blendr.v1.RenterGateway", "blendr.v1.NetworkView")



@dataclass
class Role:
    """What the leading king runs: the jobs, the queens' sessions, bridge deliveries and settlements, their servicers
    and loops. A king alone (SQLite) has one for its whole life; kings sharing PostgreSQL (king.ha) build one each
    time they win the leader lease and drop it when they lose it."""

    jobs: KingCore
    hub: QueenHub
    book: AttestationBook
    settlements: SettlementBook
    clients: dict[str, ChainClient]
    control: KingControlServicer
    gateway: RenterGatewayServicer
    network: NetworkDesk
    netview: NetworkViewServicer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        self.jobs.stop()
        for c in self.clients.values():  # chain calls still running in worker threads end now, not after retries
            c.close()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for sess in list(self.hub.sessions.values()):
            sess.close()  # the queens redial: a follower passes their sessions to the new leader


@dataclass
class KingApp:
    cfg: Config
    address: str
    server: ServerHandle
    store: Store
    sessions: Sessions
    role: Role | None = None  # None: another king leads (king.ha)
    leadership: Leadership | None = None  # None: this king is alone on its store and always leads
    proposals: ProposalBook | None = None  # governance proposals for the gateway (king.governance)
    depths: Depths | None = None  # the confirmation depths the leader's chain clients use (governance's)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _link: LeaderLink | None = None
    metrics: Metrics | None = None  # the Prometheus endpoint ([metrics] port >= 0)
    metrics_port: int | None = None
    web: WebServer | None = None  # the dApp's listener (king.web_listen), None when off

    @property
    def port(self) -> int:
        return self.server.port

    def _leader(self) -> Role:
        if self.role is None:
            raise FailedPreconditionError("this king does not lead now")
        return self.role

    @property
    def jobs(self) -> KingCore:
        return self._leader().jobs

    @property
    def hub(self) -> QueenHub:
        return self._leader().hub

    @property
    def book(self) -> AttestationBook:
        return self._leader().book

    @property
    def settlements(self) -> SettlementBook:
        return self._leader().settlements

    @property
    def clients(self) -> dict[str, ChainClient]:
        return self._leader().clients

    async def _follow_proposals(self) -> None:
        """Every ``chain.gov_refresh_s``: the proposals into the gateway's book (every king serves them)."""
        while True:
            if self.proposals is not None:
                try:
                    await asyncio.to_thread(self.proposals.refresh)
                except BlendrError as exc:
                    log.warning("proposals read failed; keeping the last known", error=str(exc)[:200])
                except Exception as exc:  # loop boundary: a hostile proposal must not stop the refresh
                    log.exception("proposals refresh failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
            await asyncio.sleep(self.cfg.chain.gov_refresh_s)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.role is not None:
            await self.role.stop()
            self.role = None
        if self.leadership is not None:
            await self.leadership.release()
        if self.web is not None:  # first: its streams are calls to the gRPC server
            await self.web.stop()
        await self.server.stop(self.cfg.rpc.grace_s)
        if self._link is not None:
            await self._link.close()
        if self.metrics is not None:
            self.metrics.stop_http_server()
        self.store.close()
        log.info("king stopped")

    def start_metrics(self) -> None:
        """Serve the king's metrics (king.metrics) on ``[metrics] host:port`` when the port is not -1."""
        if self.cfg.metrics.port < 0:
            return
        self.metrics = Metrics()
        self.metrics.registry.register(KingCollector(lambda: self))
        self.metrics_port = self.metrics.start_http_server(self.cfg.metrics.host, self.cfg.metrics.port)


async def _follow_settlements(cfg: Config, role: Role) -> None:
    """Follows GPURental's settlements into the jobs, forever; a chain failure is retried with bounded exponential
    backoff (tenacity), then the next round starts over."""
    kc = cfg.king

    def poll_all() -> None:
        while role.settlements.poll():
            pass

    while True:
        try:
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(BlendrError), stop=stop_after_attempt(8),
                    wait=wait_exponential_jitter(multiplier=kc.retry_initial_s, max=kc.retry_max_s),
                    before_sleep=lambda st: log.warning(
                        "settlement follower failed; retrying", attempt=st.attempt_number,
                        error=str(st.outcome.exception() if st.outcome else "")[:300])):
                with attempt:
                    await asyncio.to_thread(poll_all)
            role.jobs.poll_settlements()
        except RetryError:
            log.error("settlement follower still failing; trying again next round")
        await asyncio.sleep(kc.poll_s)


async def _follow_reputation(jobs: KingCore, rep: ReputationSystem, scores: dict[str, int]) -> None:
    """Keeps the providers' on-chain reputation (ETC) fresh for the scheduler."""
    while True:
        for provider in list(jobs.market.pool):
            try:
                scores[provider] = await asyncio.to_thread(rep.score, provider)
            except BlendrError as exc:  # an ETC outage leaves the last known score in place
                log.debug("reputation read failed", provider=provider, error=str(exc)[:200])
                break
        await asyncio.sleep(30.0)


async def _follow_governance(cfg: Config, role: Role) -> None:
    """Every ``chain.gov_refresh_s``: GPURental's parameters (quote bounds, durations, GPUs) into the jobs, and both
    inboxes' attester sets and thresholds into the bridge book; a chain outage keeps the last known ones. (The
    confirmation depths have a GovWatch of their own, :func:`start_king`, which every role's clients follow.)"""
    while True:
        try:
            await role.jobs.prepare()
        except BlendrError as exc:
            log.warning("GPURental parameters read failed; keeping the last known", error=str(exc)[:200])
        for chain_id in list(role.book.lanes):
            try:
                await asyncio.to_thread(role.book.attester_set, chain_id, refresh=True)
            except BlendrError as exc:
                log.warning("bridge attester set read failed; keeping the last known", chain_id=chain_id,
                            error=str(exc)[:200])
        await asyncio.sleep(cfg.chain.gov_refresh_s)


def load_king_identity(cfg: Config) -> NodeIdentity:
    """The king's existing key: a king never creates one, since only a key granted GPURental's scheduler role
    at deployment can create rentals.

    Raises:
        IdentityError: no key (saying how to install one), or it is unreadable.
    """
    if not (cfg.home / KEY_FILE).exists():
        raise IdentityError(
            f"no king key at {cfg.home / KEY_FILE}: on a devnet install the king's with "
            f"`blendr devnet key king --home {cfg.home}`; on a real network put there the key whose address "
            "was given GPURental's scheduler role at deployment")
    return NodeIdentity.load(cfg.home)


def check_scheduler(rental: GPURental, address: str, cfg: Config) -> None:
    """Raises FailedPreconditionError unless ``address`` may create rentals (ChainError: the chain is not
    reachable)."""
    if not rental.is_scheduler(address):
        raise FailedPreconditionError(
            f"the king key {address} in {cfg.home} does not hold GPURental's scheduler role on this deployment: "
            "use the key the deployment named as scheduler (on a devnet: "
            f"`blendr devnet key king --home DIR` in an empty home), or have governance grant the role")


def output_store(cfg: Config, clock: Clock) -> OutputStore:
    """The king's store of jobs' outputs, from the ``[king]`` outputs settings."""
    kc = cfg.king
    root = Path(kc.outputs_dir).expanduser() if kc.outputs_dir else cfg.path("king", "outputs")
    return OutputStore(root, clock, max_job_bytes=kc.max_output_bytes, max_total_bytes=kc.max_outputs_total_bytes,
                       retention_s=kc.outputs_retention_s)


def _vouchers_view(m: Manifest, rental: GPURental) -> EthVouchers | None:
    """Renters' voucher holdings and the burn totals, where the deployment has a ComputeVoucher."""
    if "ComputeVoucher" not in m.eth.contracts:
        return None
    return EthVouchers(ComputeVoucher(rental.client, m.eth.address("ComputeVoucher")), rental)


def chain_clients(cfg: Config, m: Manifest, account: Any) -> dict[str, ChainClient]:
    return {name: ChainClient(chain_settings(cfg, m, name), account) for name in ("eth", "etc")}


def king_store(cfg: Config) -> Store:
    """The king's store: ``store.url`` (PostgreSQL, shared by several kings), else its SQLite file in its home."""
    url = cfg.store.url
    return open_store(url) if url else SQLiteStore(cfg.path("king", "state.sqlite3"))


def shared_store(store: Store) -> bool:
    """Whether several kings may share ``store`` (then they elect a leader: king.ha)."""
    return isinstance(store, PostgresStore)


def advertised(cfg: Config, port: int) -> str:
    """``HOST:PORT`` at which the other kings reach this one: ``king.advertise``, else this host's name."""
    if cfg.king.advertise:
        return cfg.king.advertise
    host = cfg.king.listen.rsplit(":", 1)[0].strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    return f"{host}:{port}"


def sign_in_origin(cfg: Config) -> SignInOrigin:
    """The page renters sign in at, named in their sign-in messages (EIP-4361 domain and URI): ``king.web_origin``;
    else ``king.web_listen``; else the king's gRPC listener (a wildcard host reads as localhost, a port 0 is left
    out), over https when rpc.tls is on. Never ``king.advertise``: kings sharing a store differ there, and a
    challenge one of them issues must read the same at the others."""
    if cfg.king.web_origin:
        authority = cfg.king.web_origin.split("://", 1)[1].rstrip("/")
        return SignInOrigin(authority, cfg.king.web_origin.rstrip("/") + "/")
    listen = cfg.king.web_listen or cfg.king.listen
    host, _, port = listen.rpartition(":")
    host = "localhost" if host.strip("[]") in ("", "0.0.0.0", "::") else host
    authority = host if port in ("", "0") else f"{host}:{port}"
    return SignInOrigin(authority, f"{'https' if cfg.rpc.tls else 'http'}://{authority}/")


def _methods(service: Any) -> dict[str, str]:
    return {m.name: ("s" if m.client_streaming else "u") + ("s" if m.server_streaming else "u")
            for m in service.methods}


@dataclass
class _Parts:
    """What a king builds once and every role it takes uses."""

    cfg: Config
    manifest: Manifest
    ident: NodeIdentity
    clock: Clock
    sessions: Sessions
    proposals: ProposalBook
    depths: Depths
    info: NetworkInfo  # GetNetworkInfo's answer, but for the leader flag


async def _build_role(p: _Parts, store: Store, *, run_loops: bool, guard: Any = None) -> Role:
    """The leader's parts on ``store`` (fenced where kings share it), loaded from it; with ``run_loops``, their loops
    started. ``guard`` is checked before every chain transaction (king.ha)."""
    cfg, m, clock, kc = p.cfg, p.manifest, p.clock, p.cfg.king
    clients = chain_clients(cfg, m, p.ident.account())
    for c in clients.values():
        c.guard = guard
    p.depths.attach(*clients.values())  # governance's confirmation depths, now and whenever they change
    rental = GPURental(clients["eth"], m.eth.address("GPURental"))
    lanes = [
        Lane(BridgeInbox(clients["etc"], m.etc.address("BridgeInbox")), m.eth.chain_id, m.eth.address("BridgeOutbox")),
        Lane(BridgeInbox(clients["eth"], m.eth.address("BridgeInbox")), m.etc.chain_id, m.etc.address("BridgeOutbox")),
    ]
    book = AttestationBook(lanes, store, clock, kc)
    pending = book.load()
    settlements = SettlementBook(rental, store, start_block=m.eth.deploy_block)
    # The quote's bounds are governance parameters on GPURental (read by jobs.prepare); surge is this king's.
    pricer = Pricer(PricingParams(surge=kc.price_surge))
    scheduler = Scheduler(pricer, known_models=FINGERPRINTS)
    staking = StakingManager(clients["eth"], m.eth.address("StakingManager"))

    def queen_stake(queen: str) -> tuple[bool, str]:
        stake, minimum = int(staking.stake_of(queen, Tier.QUEEN)), int(staking.min_stake(Tier.QUEEN))
        if stake >= minimum and stake > 0:
            return True, "staked"
        return False, f"queen stake {fmt_tokens(stake)} GPUTOKEN is below the minimum {fmt_tokens(minimum)}"

    hub = QueenHub(p.ident.address, clock, stake_check=queen_stake, snapshot_interval_s=kc.snapshot_interval_s,
                   accept_any_king=kc.accept_any_king_registration)
    scores: dict[str, int] = {}
    # Providers are offered only for the GPUs GPURental would accept of them (their stake and their queen's).
    stakes = StakeBook(StakingReader(staking, rental), clock, ttl_s=kc.stake_cache_s)
    vouchers = (ComputeVoucher(clients["eth"], m.eth.address("ComputeVoucher"))
                if "ComputeVoucher" in m.eth.contracts else None)
    jobs = KingCore(store, clock, scheduler,
                    EthRentals(rental, GPUToken(clients["eth"], m.eth.address("GPUToken")), vouchers),
                    hub, JobsConfig.of(kc),
                    reputation=lambda prov: scores.get(prov, 5000), outputs=output_store(cfg, clock),
                    output_wait_s=kc.outputs_wait_s, stakes=stakes, bridge=book, vouchers=_vouchers_view(m, rental))
    await jobs.prepare()
    live = jobs.load()
    # the pools kept in the store are offered at once: read their stakes before serving (else the first second
    # after a start or a takeover would offer nothing)
    try:
        if await asyncio.to_thread(stakes.refresh, stakes.due(jobs.market.staked_pairs())):
            jobs.market.restake()
    except BlendrError as exc:  # the stake follower reads them again in a second
        log.warning("reading the kept pools' stakes failed", error=str(exc)[:200])
    desk = NetworkDesk(clock, jobs.market, hub, jobs.offers, price_interval_s=kc.price_sample_s,
                       price_retention_s=max(kc.price_retention_s, kc.price_sample_s))
    hub.network = desk  # the queens' challenge verdicts and landed batches
    role = Role(jobs, hub, book, settlements, clients,
                KingControlServicer(book, settlements, hub, jobs, jobs.outputs),
                RenterGatewayServicer(jobs, p.sessions, p.proposals),
                desk, NetworkViewServicer(p.info, lambda: True, desk))
    if run_loops:
        rep = ReputationSystem(clients["etc"], m.etc.address("ReputationSystem"))
        role.tasks = [asyncio.create_task(book.run()), asyncio.create_task(_follow_settlements(cfg, role)),
                      asyncio.create_task(jobs.run()), asyncio.create_task(_follow_reputation(jobs, rep, scores)),
                      asyncio.create_task(follow_stakes(stakes, jobs.market)),
                      asyncio.create_task(_follow_governance(cfg, role)),
                      # reward epochs: the king publishes each ended epoch's roots to TokenDistributor (king/rewards.py)
                      asyncio.create_task(follow_rewards(publisher_for(clients["eth"], m, store, cfg.rewards),
                                                         cfg.rewards.poll_s)),
                      asyncio.create_task(desk.run_sampler())]  # GetPriceHistory: the quotes over time
    log.info("king leads", pending_deliveries=pending, live_jobs=live)
    return role


async def start_king(
    cfg: Config,
    *,
    manifest: Manifest | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    run_loops: bool = True,
) -> KingApp:
    """Start a king from its config: the deployment manifest, its key (which must exist and hold GPURental's
    scheduler role; it pays for rentals and deliveries), the renter gateway and control server, and its loops.

    Alone on its store (SQLite) a king leads for its whole life. On a store several kings share (PostgreSQL) it
    serves renters and queens at once and runs the leader's work only while it holds the leader lease (king.ha).

    Nothing is written (store, TLS files) before the manifest, the key and its role have been checked.

    Raises:
        ConfigError, IdentityError, FailedPreconditionError, ChainError, TLSError, StoreError: with a message
            saying what to fix.
    """
    clock = clock or SystemClock()
    m = manifest or load_manifest(cfg)
    ident = load_king_identity(cfg)
    check_scheduler(GPURental(chain_clients(cfg, m, ident.account())["eth"], m.eth.address("GPURental")),
                    ident.address, cfg)
    store = store or king_store(cfg)
    kc = cfg.king
    ha = shared_store(store)
    sessions = Sessions(store, clock, king=ident.address, chain_id=m.eth.chain_id, ttl_s=kc.session_ttl_s, shared=ha,
                        origin=sign_in_origin(cfg))
    governor = Governor(ChainClient(chain_settings(cfg, m, "eth")), ChainClient(chain_settings(cfg, m, "etc")), m)
    proposals = ProposalBook(governor.proposals, governor.eth.block_number)
    try:
        await asyncio.to_thread(proposals.refresh)
    except BlendrError as exc:  # the gateway serves an empty list until the next refresh
        log.warning("proposals read failed", error=str(exc)[:200])
    # the confirmation depths are governance's (Governance.confirmations), read before the leader's loops start
    depths = Depths.for_node(cfg, m)
    depth_watch = GovWatch(governor.values, DEPTH_PARAMS, cfg.chain.gov_refresh_s)
    depth_watch.on_change(depths.apply)
    try:
        await asyncio.to_thread(depth_watch.refresh)
    except BlendrError as exc:  # the deployment's depths until the next refresh
        log.warning("confirmation depths read failed; using the deployment's", error=str(exc)[:200])
    parts = _Parts(cfg, m, ident, clock, sessions, proposals, depths, network_info(m, ident.address, kc))
    local = ""
    if kc.web_listen:  # the web listener forwards every call to this server through a socket only this user reaches
        from king.web import local_socket

        local = str(local_socket(cfg))
    if not ha:
        role = await _build_role(parts, store, run_loops=run_loops)
        server = await start_server(
            cfg, kc.listen,
            [lambda s: kpb_grpc.add_KingControlServicer_to_server(role.control, s),
             lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(role.gateway, s),
             lambda s: npb_grpc.add_NetworkViewServicer_to_server(role.netview, s)],
            service_names=SERVICES, health_listen=cfg.rpc.health_listen, local_socket=local)
        app = KingApp(cfg, ident.address, server, store, sessions, role=role, proposals=proposals)
    else:
        app = await _start_ha(parts, store, run_loops=run_loops, local_socket=local)
    app.depths = depths
    if run_loops:
        app._tasks += [asyncio.create_task(app._follow_proposals()), asyncio.create_task(depth_watch.run())]
    try:
        app.start_metrics()
        if local:
            from king.web import start_web

            app.web = await start_web(cfg, Path(local))
    except BaseException:
        await app.stop()
        raise
    log.info("king serving", address=ident.address, port=app.port, tls=app.server.tls, network=m.network,
             leads=app.role is not None, metrics_port=app.metrics_port, health_port=app.server.probe_port,
             web=app.web.url() if app.web is not None else None)
    return app


async def _start_ha(p: _Parts, store: Store, *, run_loops: bool, local_socket: str = "") -> KingApp:
    """A king on a store several kings share: routed servicers, then the leader lease (its first round at once, so a
    king alone takes the lease before it answers anyone)."""
    cfg, kc = p.cfg, p.cfg.king
    app: KingApp | None = None
    follower = StoreGateway(store, p.clock, p.sessions, p.proposals,
                            max_watchers_per_renter=JobsConfig.of(kc).max_watchers_per_renter)
    own = {"GetSignInChallenge", "SignIn", "GetJob", "WatchJob", "ListProposals", "GetProposal"}

    def leader(which: str) -> Any:
        return None if app is None or app.role is None else getattr(app.role, which)

    def link() -> LeaderLink:
        assert app is not None and app._link is not None
        return app._link

    control = routed(kpb_grpc.KingControlServicer, kpb_grpc.KingControlStub,
                     _methods(kpb.DESCRIPTOR.services_by_name["KingControl"]), lambda: leader("control"), link)
    gateway = routed(rpb_grpc.RenterGatewayServicer, rpb_grpc.RenterGatewayStub,
                     _methods(rpb.DESCRIPTOR.services_by_name["RenterGateway"]), lambda: leader("gateway"), link,
                     {name: (lambda: follower) for name in own})
    # the network view: a follower answers GetNetworkInfo itself (leader: false), the rest comes from the leader
    own_view = NetworkViewServicer(p.info, lambda: app is not None and app.role is not None)
    netview = routed(npb_grpc.NetworkViewServicer, npb_grpc.NetworkViewStub,
                     _methods(npb.DESCRIPTOR.services_by_name["NetworkView"]), lambda: leader("netview"), link,
                     {"GetNetworkInfo": lambda: own_view})
    server = await start_server(
        cfg, kc.listen,
        [lambda s: kpb_grpc.add_KingControlServicer_to_server(control, s),
         lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(gateway, s),
         lambda s: npb_grpc.add_NetworkViewServicer_to_server(netview, s)],
        service_names=SERVICES, health_listen=cfg.rpc.health_listen, local_socket=local_socket)
    app = KingApp(cfg, p.ident.address, server, store, p.sessions, proposals=p.proposals)

    async def lead(epoch: int) -> None:
        assert app is not None and app.leadership is not None
        app.role = await _build_role(p, app.leadership.view(), run_loops=run_loops, guard=app.leadership.guard)

    async def follow(why: str) -> None:
        assert app is not None
        role, app.role = app.role, None
        if role is not None:
            await role.stop()

    holder = f"{p.ident.address[:10]}@{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
    app.leadership = Leadership(store, holder, advertised(cfg, server.port),
                                LeaseConfig(ttl_s=kc.lease_ttl_s, renew_s=kc.lease_renew_s), lead, follow)
    app._link = LeaderLink(app.leadership, lambda target: open_channel(cfg, target, tls_name=kc.peer_tls_name))
    await app.leadership.step()
    await app.leadership.started()
    app._tasks.append(asyncio.create_task(app.leadership.run()))
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
    role = "" if app.leadership is None else (", leading" if app.role is not None else
                                              f", following the leader at {app.leadership.leader_address or '(none yet)'}")
    web = f"; web page at {app.web.url()}" if app.web is not None else ""
    print(f"king {app.address} serving renters and queens on port {app.port} "
          f"(tls={'on' if app.server.tls else 'off'}{role}){web}", flush=True)
    await stop.wait()
    await app.stop()
