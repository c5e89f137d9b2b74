"""Wiring of a king process: config, identity, chains, store, the KingControl server and its loops."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from blendr.chain.governing import Governor
from blendr.chain.manifest import Manifest, chain_settings, load_manifest
from blendr.clock import Clock, SystemClock
from blendr.config import Config
from blendr.errors import BlendrError, FailedPreconditionError, IdentityError
from blendr.identity import KEY_FILE, NodeIdentity
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.rpc.server import ServerHandle, start_server
from blendr.store import SQLiteStore, Store
from blendr.telemetry import get_logger
from blendr.units import fmt_tokens
from king.auth import Sessions
from king.bridge import AttestationBook, Lane
from king.context import JobsConfig
from king.control import KingControlServicer
from king.core import KingCore
from king.gateway import RenterGatewayServicer
from king.governance import ProposalBook
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
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc

log = get_logger("blendr.king")

SERVICES = ("blendr.v1.KingControl", "blendr.v1.RenterGateway")



@dataclass
class KingApp:
    cfg: Config
    address: str
    server: ServerHandle
    book: AttestationBook
    settlements: SettlementBook
    store: Store
    clients: dict[str, ChainClient]
    jobs: KingCore
    hub: QueenHub
    sessions: Sessions
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    proposals: ProposalBook | None = None  # governance proposals for the gateway (king.governance)

    @property
    def port(self) -> int:
        return self.server.port

    async def _follow_settlements(self) -> None:
        """Follows GPURental's settlements into the jobs, forever; a chain failure is retried with bounded
        exponential backoff (tenacity), then the next round starts over."""
        kc = self.cfg.king

        def poll_all() -> None:
            while self.settlements.poll():
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
                self.jobs.poll_settlements()
            except RetryError:
                log.error("settlement follower still failing; trying again next round")
            await asyncio.sleep(kc.poll_s)

    async def _follow_reputation(self, rep: ReputationSystem, scores: dict[str, int]) -> None:
        """Keeps the providers' on-chain reputation (ETC) fresh for the scheduler."""
        while True:
            for provider in list(self.jobs.market.pool):
                try:
                    scores[provider] = await asyncio.to_thread(rep.score, provider)
                except BlendrError as exc:  # an ETC outage leaves the last known score in place
                    log.debug("reputation read failed", provider=provider, error=str(exc)[:200])
                    break
            await asyncio.sleep(30.0)

    async def _follow_governance(self) -> None:
        """Every ``chain.gov_refresh_s``: GPURental's parameters (quote bounds, durations, GPUs) into the jobs, both
        inboxes' attester sets and thresholds into the bridge book, and the proposals into the gateway's book; a
        chain outage keeps the last known ones."""
        while True:
            try:
                await self.jobs.prepare()
            except BlendrError as exc:
                log.warning("GPURental parameters read failed; keeping the last known", error=str(exc)[:200])
            for chain_id in list(self.book.lanes):
                try:
                    await asyncio.to_thread(self.book.attester_set, chain_id, refresh=True)
                except BlendrError as exc:
                    log.warning("bridge attester set read failed; keeping the last known", chain_id=chain_id,
                                error=str(exc)[:200])
            if self.proposals is not None:
                try:
                    await asyncio.to_thread(self.proposals.refresh)
                except BlendrError as exc:
                    log.warning("proposals read failed; keeping the last known", error=str(exc)[:200])
                except Exception as exc:  # loop boundary: a hostile proposal must not stop the parameters' refresh
                    log.exception("proposals refresh failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
            await asyncio.sleep(self.cfg.chain.gov_refresh_s)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.server.stop(self.cfg.rpc.grace_s)
        self.store.close()
        log.info("king stopped")


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


async def start_king(
    cfg: Config,
    *,
    manifest: Manifest | None = None,
    store: Store | None = None,
    clock: Clock | None = None,
    run_loops: bool = True,
) -> KingApp:
    """Start a king from its config: the deployment manifest, its key (which must exist and hold GPURental's
    scheduler role; it pays for rentals and deliveries), the control server, the delivery loop and the
    settlement follower.

    Nothing is written (store, TLS files) before the manifest, the key and its role have been checked.

    Raises:
        ConfigError, IdentityError, FailedPreconditionError, ChainError, TLSError, StoreError: with a message
            saying what to fix.
    """
    clock = clock or SystemClock()
    m = manifest or load_manifest(cfg)
    ident = load_king_identity(cfg)
    clients = chain_clients(cfg, m, ident.account())
    rental = GPURental(clients["eth"], m.eth.address("GPURental"))
    check_scheduler(rental, ident.address, cfg)
    store = store or SQLiteStore(cfg.path("king", "state.sqlite3"))
    lanes = [
        Lane(BridgeInbox(clients["etc"], m.etc.address("BridgeInbox")), m.eth.chain_id, m.eth.address("BridgeOutbox")),
        Lane(BridgeInbox(clients["eth"], m.eth.address("BridgeInbox")), m.etc.chain_id, m.etc.address("BridgeOutbox")),
    ]
    book = AttestationBook(lanes, store, clock, cfg.king)
    pending = book.load()
    settlements = SettlementBook(rental, store, start_block=m.eth.deploy_block)
    kc = cfg.king
    sessions = Sessions(store, clock, king=ident.address, chain_id=m.eth.chain_id, ttl_s=kc.session_ttl_s)
    # The quote's bounds are governance parameters on GPURental (read by jobs.prepare); surge is this king's.
    pricer = Pricer(PricingParams(surge=kc.price_surge))
    scheduler = Scheduler(pricer, known_models=FINGERPRINTS)
    staking = StakingManager(clients["eth"], m.eth.address("StakingManager"))

    def queen_stake(queen: str) -> tuple[bool, str]:
        stake, minimum = int(staking.stake_of(queen, Tier.QUEEN)), int(staking.min_stake(Tier.QUEEN))
        if stake >= minimum and stake > 0:
            return True, "staked"
        return False, f"queen stake {fmt_tokens(stake)} GPUTOKEN is below the minimum {fmt_tokens(minimum)}"

    hub = QueenHub(ident.address, clock, stake_check=queen_stake, snapshot_interval_s=kc.snapshot_interval_s,
                   accept_any_king=kc.accept_any_king_registration)
    scores: dict[str, int] = {}
    # Providers are offered only for the GPUs GPURental would accept of them (their stake and their queen's).
    stakes = StakeBook(StakingReader(staking, rental), clock, ttl_s=kc.stake_cache_s)
    vouchers = (ComputeVoucher(clients["eth"], m.eth.address("ComputeVoucher"))
                if "ComputeVoucher" in m.eth.contracts else None)
    jobs = KingCore(store, clock, scheduler,
                    EthRentals(rental, GPUToken(clients["eth"], m.eth.address("GPUToken")), vouchers),
                    hub, JobsConfig.of(kc),
                    reputation=lambda p: scores.get(p, 5000), outputs=output_store(cfg, clock),
                    output_wait_s=kc.outputs_wait_s, stakes=stakes, bridge=book, vouchers=_vouchers_view(m, rental))
    await jobs.prepare()
    live = jobs.load()
    governor = Governor(ChainClient(chain_settings(cfg, m, "eth")), ChainClient(chain_settings(cfg, m, "etc")), m)
    proposals = ProposalBook(governor.proposals, governor.eth.block_number)
    try:
        await asyncio.to_thread(proposals.refresh)
    except BlendrError as exc:  # the gateway serves an empty list until the next refresh
        log.warning("proposals read failed", error=str(exc)[:200])
    server = await start_server(
        cfg, kc.listen,
        [lambda s: kpb_grpc.add_KingControlServicer_to_server(KingControlServicer(book, settlements, hub, jobs,
                                                                                     jobs.outputs), s),
         lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(RenterGatewayServicer(jobs, sessions, proposals), s)],
        service_names=SERVICES)
    app = KingApp(cfg, ident.address, server, book, settlements, store, clients, jobs, hub, sessions,
                  proposals=proposals)
    if run_loops:
        rep = ReputationSystem(clients["etc"], m.etc.address("ReputationSystem"))
        app._tasks = [asyncio.create_task(book.run()), asyncio.create_task(app._follow_settlements()),
                      asyncio.create_task(jobs.run()), asyncio.create_task(app._follow_reputation(rep, scores)),
                      asyncio.create_task(follow_stakes(stakes, jobs.market)),
                      asyncio.create_task(app._follow_governance())]
        # reward epochs: the king publishes each ended epoch's roots to TokenDistributor (king/rewards.py)
        app._tasks.append(asyncio.create_task(follow_rewards(
            publisher_for(clients["eth"], m, store, cfg.rewards), cfg.rewards.poll_s)))
    log.info("king serving", address=ident.address, port=server.port, tls=server.tls, network=m.network,
             pending_deliveries=pending, live_jobs=live)
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
    print(f"king {app.address} serving renters and queens on port {app.port} (tls={'on' if app.server.tls else 'off'})", flush=True)
    await stop.wait()
    await app.stop()
