"""A whole verification network for integration tests: devnet chains, a king, queens and providers.

Everything is real: two anvil chains with the contracts deployed by ``deploy_devnet`` (devnet roles and
keys), the king's KingControl server and queens' gRPC servers on port 0 with TLS, provider agents on the
session's local Ray. Rentals are created on chain directly with the king's key, as the gateway will.
Chain time moves with ``evm_increaseTime``; the queens' wall clocks (:class:`ShiftedClock`) move with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eth_account import Account

from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import GPURental, GPUToken, RentalIntent, ReputationSystem, WorkVerification
from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.chain.manifest import Manifest
from blendr.clock import ShiftedClock
from blendr.config import Config, load_config
from blendr.identity import NodeIdentity
from blendr.units import tokens
from king.app import KingApp, start_king
from provider.agent import ProviderAgent
from provider.compute import RayRuntime
from provider.gpus import cpu_device
from queen.app import QueenApp, start_queen
from tests.integration.helpers import PINS, QUEEN_DEFAULTS, running_agent, wait_for

ACCOUNTS = {name: Account.from_key(DEV_KEYS[i]) for name, i in ROLES.items()}
PRICE = tokens("2.5")  # per GPU-hour
DURATION = 600  # seconds of rental (devnet minimum: 60)

RELAY = {
    "relay.enabled": True,
    "relay.poll_s": 0.1,
    "relay.rental_challenge_mean_interval_s": 0.4,
    "relay.batch_interval_s": 1.0,
    "relay.retry_initial_s": 0.1,
    "relay.retry_max_s": 1.0,
    "chain.rpc_retries": 8,
    "chain.rpc_timeout_s": 5.0,
}


def client(url: str, chain: str, account: Any) -> ChainClient:
    chain_id = 31337 if chain == "eth" else 63
    return ChainClient(ChainSettings(chain, url, chain_id, eip1559=chain == "eth", poll_s=0.02), account)


def rpc(url: str, method: str, params: list[Any]) -> Any:
    from urllib.parse import urlparse

    from blendr.chain.anvil import rpc as anvil_rpc

    u = urlparse(url)
    return anvil_rpc(u.hostname or "127.0.0.1", int(u.port or 80), method, params, timeout=30.0)


@dataclass
class Net:
    """The chains and manifest (module scope); nodes are started per test with :meth:`nodes`."""

    eth_url: str
    etc_url: str
    manifest: Manifest
    tmp: Path
    clocks: list[ShiftedClock] = field(default_factory=list)
    nonce: int = 0

    # -------------------------------------------------------------- chain helpers
    def c(self, chain: str, who: str) -> ChainClient:
        return client(self.eth_url if chain == "eth" else self.etc_url, chain, ACCOUNTS[who])

    def token(self) -> GPUToken:
        return GPUToken(self.c("eth", "deployer"), self.manifest.eth.address("GPUToken"))

    def rental(self, who: str = "renter") -> GPURental:
        return GPURental(self.c("eth", who), self.manifest.eth.address("GPURental"))

    def wv(self) -> WorkVerification:
        return WorkVerification(self.c("etc", "deployer"), self.manifest.etc.address("WorkVerification"))

    def reputation(self) -> ReputationSystem:
        return ReputationSystem(self.c("etc", "deployer"), self.manifest.etc.address("ReputationSystem"))

    def balances(self) -> dict[str, int]:
        t = self.token()
        return {who: t.balance_of(ACCOUNTS[who].address) for who in ("renter", "provider1", "deployer")}

    def create_rental(self, *, queen: str = "queen1", provider: str = "provider1", gpus: int = 1,
                      duration: int = DURATION) -> int:
        """The king creates a rental from the renter's signed intent; returns its id."""
        self.nonce += 1
        addr = self.manifest.eth.address("GPURental")
        renter = ACCOUNTS["renter"]
        GPUToken(self.c("eth", "renter"), self.manifest.eth.address("GPUToken")).approve(addr, 2**256 - 1)
        now = int(self.c("eth", "deployer").w3.eth.get_block("latest")["timestamp"])
        intent = RentalIntent(renter.address, ACCOUNTS[provider].address, gpus, b"\x01" * 32, tokens(3), duration,
                              self.nonce, now + 3600, bytes(32), ACCOUNTS["king"].address)
        self.rental("king").create(intent, intent.sign(renter, 31337, addr), PRICE, ACCOUNTS[queen].address)
        return intent.rental_id(31337, addr)

    def warp(self, seconds: int) -> None:
        """Moves both chains and every queen's wall clock forward."""
        for url in (self.eth_url, self.etc_url):
            rpc(url, "evm_increaseTime", [seconds])
            rpc(url, "evm_mine", [])
        for clk in self.clocks:
            clk.shift(seconds)

    # -------------------------------------------------------------- nodes
    def home(self, name: str, key: str | None) -> Path:
        home = self.tmp / name
        home.mkdir(parents=True, exist_ok=True)
        if key is not None and not (home / "node.key").exists():
            NodeIdentity.from_key(bytes(ACCOUNTS[key].key)).save(home)
        return home

    def king_config(self, **ov: Any) -> Config:
        home = self.home("king", "king")
        return load_config(home, overrides={"king.listen": "127.0.0.1:0", "king.poll_s": 0.1,
                                            "king.retry_initial_s": 0.1, "king.retry_max_s": 1.0,
                                            "chain.rpc_retries": 8, "chain.rpc_timeout_s": 5.0, **ov}, env={})

    def queen_config(self, name: str, king_port: int | None, **ov: Any) -> Config:
        home = self.home(name, name)
        overrides = {**QUEEN_DEFAULTS, **RELAY, "queen.admission": "open",
                     "rpc.ca_file": str(self.tmp / "king" / "tls" / "ca.crt"),
                     "relay.king": f"127.0.0.1:{king_port}" if king_port else "",
                     "relay.king_address": ACCOUNTS["king"].address, **ov}
        return load_config(home, overrides=overrides, env={})

    def provider_agent(self, name: str, queen_home: Path, port: int, pin: str, runtime: Any = None) -> ProviderAgent:
        home = self.home(name, name)
        cfg = load_config(home, overrides={"rpc.ca_file": str(queen_home / "tls" / "ca.crt"),
                                           "provider.reconnect_initial_s": 0.1, "provider.reconnect_max_s": 0.5,
                                           "rpc.call_timeout_s": 5.0}, env={})
        ident = NodeIdentity.load(home)
        devs = [cpu_device()]
        rt = runtime or RayRuntime(address="", pin_resource=pin, devices=devs, use_gpu=False)
        return ProviderAgent(cfg, ident, devs, rt, [f"127.0.0.1:{port}"])

    async def start_king(self, manifest: Manifest | None = None, **ov: Any) -> KingApp:
        return await start_king(self.king_config(**ov), manifest=manifest or self.manifest)

    async def start_queen(self, name: str, king: KingApp | None, manifest: Manifest | None = None,
                          **ov: Any) -> QueenApp:
        clk = ShiftedClock()
        # chain time may be ahead of the wall clock (earlier warps): start the queen's clock there
        import time as _time

        ahead = int(self.c("eth", "deployer").w3.eth.get_block("latest")["timestamp"]) - _time.time()
        clk.offset = max(0.0, ahead)
        self.clocks.append(clk)
        return await start_queen(self.queen_config(name, king.port if king else None, **ov), clock=clk,
                                 manifest=manifest or self.manifest)

    @contextlib.asynccontextmanager
    async def nodes(self, queens: tuple[str, ...] = ("queen1", "queen2", "queen3"), *,
                    provider_runtime: Any = None) -> AsyncIterator[Nodes]:
        """A king, the named queens (queen1 hosts provider1), and provider1 on local Ray."""
        king = await self.start_king()
        started: dict[str, QueenApp] = {}
        try:
            for q in queens:
                started[q] = await self.start_queen(q, king)
            q1 = started.get("queen1")
            agent = None
            if q1 is not None:
                agent = self.provider_agent("provider1", q1.cfg.home, q1.port, PINS[0], provider_runtime)
            async with contextlib.AsyncExitStack() as stack:
                if agent is not None:
                    await stack.enter_async_context(running_agent(agent))
                    await wait_for(lambda: q1.core.providers() and q1.core.providers()[0].passed >= 1, 60,
                                   "provider1 admitted and passing an idle challenge")
                yield Nodes(self, king, started, agent)
        finally:
            for app in started.values():
                await app.stop()
            await king.stop()


@dataclass
class Nodes:
    net: Net
    king: KingApp
    queens: dict[str, QueenApp]
    agent: ProviderAgent | None

    async def task_opened(self, rid: int, timeout: float = 60) -> None:
        wv = self.net.wv()
        await wait_for(lambda: wv.task(rid)[0] != "0x" + "00" * 20, timeout, "the OPEN message delivered to ETC")

    async def settled(self, rid: int, timeout: float = 90) -> Any:
        r = self.net.rental()
        from blendr.chain.contracts import RentalStatus

        await wait_for(lambda: r.rental(rid).status == RentalStatus.SETTLED, timeout, "the rental settled on ETH")
        return r.rental(rid)


def local_manifest(m: Manifest, **chains: Any) -> Manifest:
    """A copy of ``m`` with per-chain fields replaced, e.g. ``etc={"rpc_url": proxy.url}``."""
    return replace(m, eth=replace(m.eth, **chains.get("eth", {})), etc=replace(m.etc, **chains.get("etc", {})),
                   accounts=dict(m.accounts))


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)
