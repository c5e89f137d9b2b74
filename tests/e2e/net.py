"""The whole network for end-to-end tests, driven through the renter SDK.

Real parts: two anvil chains with every contract deployed by ``deploy_devnet``; a king (renter gateway,
scheduler, queen sessions, bridge deliveries, settlements) and queens (pools, challenges, verification on ETC,
attestations, king link) as real gRPC servers on port 0 with TLS; provider agents whose challenges run on the
session's in-process Ray and whose renters' jobs run as Ray jobs on a separate Ray head with its dashboard
(tests/rayhead.py). Time is real: rentals are the devnet's minimum (60 s) and jobs end early, so the king
cancels the rental and it settles for the verified time.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import GPURental, GPUToken, ReputationSystem
from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.chain.manifest import Manifest
from blendr.client import KingClient
from blendr.config import Config, load_config
from blendr.identity import NodeIdentity
from king.app import KingApp, start_king
from provider.agent import ProviderAgent
from provider.compute import RayRuntime
from provider.gpus import cpu_device
from provider.jobs import JobRunner
from queen.app import QueenApp, start_queen
from tests.integration.helpers import PINS, QUEEN_DEFAULTS, running_agent, wait_for
from tests.integration.relay_net import RELAY, rpc
from tests.rayhead import RayHead

ACCOUNTS = {name: Account.from_key(DEV_KEYS[i]) for name, i in ROLES.items()}
FEE_BPS = 250


def client(url: str, chain: str, account: Any) -> ChainClient:
    return ChainClient(ChainSettings(chain, url, 31337 if chain == "eth" else 63, eip1559=chain == "eth",
                                     poll_s=0.02), account)


@dataclass
class Net:
    eth_url: str
    etc_url: str
    manifest: Manifest
    head: RayHead | None  # the Ray head renters' jobs run on; None: a network without providers
    tmp: Path
    king_overrides: dict[str, Any] = field(default_factory=dict)  # king.* settings over king_config's
    king: KingApp | None = None
    queens: dict[str, QueenApp] = field(default_factory=dict)
    agents: dict[str, tuple[ProviderAgent, asyncio.Task[None]]] = field(default_factory=dict)

    # ------------------------------------------------------------------ chain helpers
    def token(self) -> GPUToken:
        return GPUToken(client(self.eth_url, "eth", ACCOUNTS["deployer"]), self.manifest.eth.address("GPUToken"))

    def rental(self) -> GPURental:
        return GPURental(client(self.eth_url, "eth", ACCOUNTS["deployer"]), self.manifest.eth.address("GPURental"))

    def reputation(self) -> ReputationSystem:
        return ReputationSystem(client(self.etc_url, "etc", ACCOUNTS["deployer"]),
                                self.manifest.etc.address("ReputationSystem"))

    def balance(self, who: str) -> int:
        return int(self.token().balance_of(who))

    def fund(self, account: Any, amount: int) -> None:
        """A fresh renter: GPUTOKEN from a devnet account no test uses (provider4); the king pays the gas."""
        GPUToken(client(self.eth_url, "eth", ACCOUNTS["provider4"]),
                 self.manifest.eth.address("GPUToken")).transfer(account.address, amount)
        rpc(self.eth_url, "anvil_setBalance", [account.address, hex(10**18)])

    # ------------------------------------------------------------------ nodes
    def home(self, name: str, key: str | None = None) -> Path:
        home = self.tmp / name
        home.mkdir(parents=True, exist_ok=True)
        if key is not None and not (home / "node.key").exists():
            NodeIdentity.from_key(bytes(ACCOUNTS[key].key)).save(home)
        return home

    def king_config(self, **ov: Any) -> Config:
        return load_config(self.home("king", "king"), overrides={
            "king.listen": "127.0.0.1:0", "king.poll_s": 0.2, "king.retry_initial_s": 0.1, "king.retry_max_s": 1.0,
            "king.queen_grace_s": 3.0, "king.snapshot_interval_s": 1.0, "chain.rpc_retries": 8,
            "chain.rpc_timeout_s": 5.0, **ov}, env={})

    async def start_king(self, port: int = 0) -> KingApp:
        ov = {**self.king_overrides, **({"king.listen": f"127.0.0.1:{port}"} if port else {})}
        self.king = await start_king(self.king_config(**ov), manifest=self.manifest)
        return self.king

    async def start_queen(self, name: str, **ov: Any) -> QueenApp:
        assert self.king is not None
        cfg = load_config(self.home(name, name), overrides={
            **QUEEN_DEFAULTS, **RELAY, "queen.admission": "open", "relay.king": f"127.0.0.1:{self.king.port}",
            "relay.king_ca_file": str(self.tmp / "king" / "tls" / "ca.crt"), "relay.snapshot_interval_s": 1.0,
            "relay.king_address": ACCOUNTS["king"].address,
            "relay.rental_challenge_mean_interval_s": 2.0, **ov}, env={})
        app = await start_queen(cfg, manifest=self.manifest)
        self.queens[name] = app
        return app

    async def start_provider(self, name: str, queen: str, pin: int,
                             runner_cls: type[JobRunner] = JobRunner) -> ProviderAgent:
        """Starts a provider agent and waits until its queen admitted it and it passed a challenge
        (``runner_cls``: its job runner; a subclass injects a provider-side fault)."""
        q = self.queens[queen]
        assert self.head is not None, "a network with providers needs a Ray head for renters' jobs"
        home = self.home(name, name)
        cfg = load_config(home, overrides={"rpc.ca_file": str(q.cfg.home / "tls" / "ca.crt"),
                                           "provider.reconnect_initial_s": 0.1, "provider.reconnect_max_s": 0.5,
                                           "rpc.call_timeout_s": 5.0, "provider.ask_per_gpu_hour": "0.5"}, env={})
        devs = [cpu_device()]
        rt = RayRuntime(address="", pin_resource=PINS[pin], devices=devs, use_gpu=False)
        runner = runner_cls(dashboard_address=self.head.address, home=home, auth_token=self.head.token, poll_s=0.2)
        agent = ProviderAgent(cfg, NodeIdentity.load(home), devs, rt, [f"127.0.0.1:{q.port}"], executor=runner)
        stack = contextlib.AsyncExitStack()
        task = await stack.enter_async_context(running_agent(agent))
        self.agents[name] = (agent, task)
        self._stacks.append((name, stack))
        await wait_for(lambda: any(p.address == agent.identity.address and p.passed >= 1 for p in q.core.providers()),
                       60, f"{name} admitted by {queen} and passing a challenge")
        return agent

    async def kill_provider(self, name: str) -> None:
        for i, (n, stack) in enumerate(self._stacks):
            if n == name:
                del self._stacks[i]
                await stack.aclose()
                break
        self.agents.pop(name, None)

    async def stop_queen(self, name: str) -> None:
        app = self.queens.pop(name)
        await app.stop()

    async def offers_seen(self, n: int, timeout: float = 30) -> None:
        """Waits until the king offers ``n`` providers (snapshots arrived, stakes read: GPURental accepts them, and
        each provider ran its readiness job)."""
        assert self.king is not None
        k = self.king
        await wait_for(lambda: sum(1 for e in k.jobs.market.pool.values()
                                   if e.public_key and e.offer.alive and e.offer.gpus > 0) >= n, timeout,
                       f"the king to offer {n} providers")

    def renter(self, account: Any | None = None) -> KingClient:
        assert self.king is not None
        return KingClient(f"127.0.0.1:{self.king.port}", account or ACCOUNTS["renter"],
                          ca_file=self.tmp / "king" / "tls" / "ca.crt", timeout_s=30)

    def __post_init__(self) -> None:
        self._stacks: list[tuple[str, contextlib.AsyncExitStack]] = []

    async def close(self) -> None:
        """Stops every node, each within a bound: a node that does not stop in time is reported, not waited
        for (once, on a loaded machine, a teardown here waited past the test's timeout)."""

        async def bounded(what: str, aw: Any) -> None:
            try:
                await asyncio.wait_for(aw, 60)
            except TimeoutError:
                warnings.warn(f"e2e teardown: {what} did not stop within 60 s", stacklevel=2)
            except Exception as exc:  # a node failing to stop must not hide the test's own result
                warnings.warn(f"e2e teardown: {what} failed to stop: {exc!r}", stacklevel=2)

        for name, stack in reversed(self._stacks):
            await bounded(f"provider {name}", stack.aclose())
        self._stacks.clear()
        for name, app in self.queens.items():
            await bounded(f"queen {name}", app.stop())
        self.queens.clear()
        if self.king is not None:
            await bounded("the king", self.king.stop())
            self.king = None


@contextlib.asynccontextmanager
async def network(eth_url: str, etc_url: str, manifest: Manifest, head: RayHead | None, tmp: Path, *,
                  queens: tuple[str, ...] = ("queen1", "queen2"),
                  providers: tuple[tuple[str, str], ...] = (("provider1", "queen1"), ("provider2", "queen2")),
                  king: dict[str, Any] | None = None) -> AsyncIterator[Net]:
    """The network, stopped on exit (``king``: king.* settings over the defaults, e.g. king.web_listen)."""
    net = Net(eth_url, etc_url, manifest, head, tmp, king_overrides=dict(king or {}))
    try:
        await net.start_king()
        for q in queens:
            await net.start_queen(q)
        for i, (p, q) in enumerate(providers):
            await net.start_provider(p, q, i)
        await net.offers_seen(len(providers))
        yield net
    finally:
        await net.close()


async def events_until_done(king: KingClient, job_id: str, timeout: float = 240) -> list[Any]:
    out: list[Any] = []

    async def collect() -> None:
        async for ev in king.watch(job_id):
            out.append(ev)

    await asyncio.wait_for(collect(), timeout)
    return out


def follow(king: KingClient, job_id: str) -> tuple[list[Any], asyncio.Task[None]]:
    """Watches a job in the background: the events seen so far, and the task (done after the last event)."""
    seen: list[Any] = []

    async def run() -> None:
        async for ev in king.watch(job_id):
            seen.append(ev)

    return seen, asyncio.create_task(run())
