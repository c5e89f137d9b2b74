"""A provider's readiness through a real queen (grpc.aio on port 0, TLS): a provider that cannot run jobs is
admitted, listed (with its reason) and challenged, but never offered to the king; once it can, it is offered
again, and losing readiness takes it off the market again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blendr.identity import NodeIdentity
from provider.agent import ProviderAgent
from provider.compute import ThreadRuntime
from provider.gpus import cpu_device
from queen import convert as qconvert
from queen.app import start_queen
from queen.poolview import fetch_pool, render
from tests.fakes.jobhost import FakeCluster, FakeExecutor
from tests.integration.helpers import client_config, queen_config, running_agent, wait_for


def offered(app: Any, address: str) -> bool:
    """Whether the queen's next pool snapshot would offer the provider to the king."""
    rec = app.core.pool.get(address)
    return rec is not None and qconvert.provider_to_proto(rec, 0).alive


async def test_not_ready_provider_is_listed_but_not_offered_until_it_recovers(node_home: Any) -> None:
    qhome = node_home("queen")
    app = await start_queen(queen_config(qhome, queen__challenge_mean_interval_s=0.5, metrics__port=0,
                                         queen__heartbeat_interval_s=0.2))
    cluster = FakeCluster()
    cluster.not_ready = "No available agent to submit job"
    home: Path = node_home("p0")
    cfg = client_config(home, qhome, provider__readiness_interval_s=0.2, provider__readiness_timeout_s=5.0)
    ident, _ = NodeIdentity.load_or_create(home)
    agent = ProviderAgent(cfg, ident, [cpu_device()], ThreadRuntime(), [f"127.0.0.1:{app.port}"],
                          executor=FakeExecutor(cluster))
    addr = ident.address
    admin = client_config(node_home("admin"), qhome)
    try:
        async with running_agent(agent):
            # Admitted and challenged like any provider, with its reason in the pool table...
            await wait_for(lambda: (r := app.core.pool.get(addr)) is not None and r.passed >= 1, 60,
                           "the provider admitted and passing a challenge")
            assert not offered(app, addr)
            resp = await fetch_pool(admin, f"127.0.0.1:{app.admin_port}")
            assert resp.providers[0].not_ready == "No available agent to submit job"
            assert "not ready for jobs (not offered):" in render(resp)
            # ...offered once a check passes (reported with the next heartbeat)...
            cluster.not_ready = ""
            await wait_for(lambda: offered(app, addr), 20, "the provider offered once ready")
            resp = await fetch_pool(admin, f"127.0.0.1:{app.admin_port}")
            assert resp.providers[0].not_ready == "" and "not ready" not in render(resp).split("\n", 2)[1]
            # ...and off the market again when it loses readiness.
            cluster.not_ready = "a trivial job failed"
            await wait_for(lambda: not offered(app, addr), 20, "the provider withdrawn once not ready")
            assert app.core.pool.get(addr).not_ready == "a trivial job failed"  # type: ignore[union-attr]
            assert cluster.probes >= 3
    finally:
        await agent.close()
        await app.stop()


async def test_provider_without_a_job_runner_is_never_offered(node_home: Any) -> None:
    qhome = node_home("queen")
    app = await start_queen(queen_config(qhome, metrics__port=0))
    home: Path = node_home("p0")
    ident, _ = NodeIdentity.load_or_create(home)
    agent = ProviderAgent(client_config(home, qhome), ident, [cpu_device()], ThreadRuntime(),
                          [f"127.0.0.1:{app.port}"])
    try:
        async with running_agent(agent):
            rec = await wait_for(lambda: app.core.pool.get(ident.address), 30, "the provider admitted")
            assert "no Ray job API" in rec.not_ready and not offered(app, ident.address)
    finally:
        await agent.close()
        await app.stop()
