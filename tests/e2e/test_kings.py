"""Several kings on one PostgreSQL (king.ha), with real processes: two ``blendr king run`` on a real PostgreSQL
(pgserver), the devnet chains, queens and a provider in this process, a renter through the SDK given both kings.
Two queens (bridge attesters) are given both kings. The lease is the default one (5 s, renewed every second): what a
deployment gets.

* The leader SIGKILLed mid-job: the other king leads within the lease, the job completes on its rental, created
  once and settled once with exact balances, and the renter's watch stream, which was on the dead king, goes on
  at the other one without missing or repeating an event.
* The leader SIGSTOPped past its lease and SIGCONTed: the other king leads; the paused one is fenced (it says so,
  and acts on nothing), and serves again as a follower; then PostgreSQL restarts mid-job: the kings retry, and
  the job completes, nothing lost or doubled.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from blendr.chain.anvil import AnvilProcess
from blendr.client import KingClient
from blendr.config import load_config
from blendr.rpc.server import open_channel
from protos.blendr.v1 import network_pb2 as npb
from protos.blendr.v1 import network_pb2_grpc as npb_grpc
from queen.app import start_queen
from tests.e2e.kings import KingProc, Kings
from tests.e2e.net import ACCOUNTS, Net
from tests.e2e.test_jobs import balances, check_settlement, job
from tests.e2e.webkings import WEB, check_web_api_routed_as_grpc
from tests.integration.helpers import QUEEN_DEFAULTS, wait_for
from tests.integration.relay_net import RELAY
from tests.pg import PostgresServer
from tests.rayhead import RayHead

pytestmark = [pytest.mark.usefixtures("ray_cluster", "snapshot"), pytest.mark.timeout(600)]


async def two_kings(net: Net, kings: Kings) -> tuple[KingProc, KingProc]:
    """Starts king1 (it leads: it is alone), then king2 (it follows); returns (leader, follower)."""
    k1 = kings.start("king1")
    await wait_for(lambda: kings.ready(k1), 60, "king1 serving")
    await wait_for(lambda: kings.leader() is k1, 30, "king1 leading")
    k2 = kings.start("king2")
    await wait_for(lambda: kings.ready(k2), 60, "king2 serving")
    return k1, k2


async def queen_and_provider(net: Net, kings: Kings) -> None:
    """queen1 and queen2 (bridge attesters: 2 of 3 deliver), each given both kings, and provider1 in queen1's pool."""
    for name in ("queen1", "queen2"):
        cfg = load_config(net.home(name, name), overrides={
            **QUEEN_DEFAULTS, **RELAY, "queen.admission": "open", "relay.king": kings.targets(),
            "relay.king_ca_file": str(kings.ca_file), "relay.snapshot_interval_s": 1.0,
            "relay.king_address": ACCOUNTS["king"].address, "relay.rental_challenge_mean_interval_s": 2.0}, env={})
        net.queens[name] = await start_queen(cfg, manifest=net.manifest)
    await net.start_provider("provider1", "queen1", 0)


def renter(kings: Kings, first: KingProc) -> KingClient:
    return KingClient(kings.targets(first), ACCOUNTS["renter"], ca_file=kings.ca_file, timeout_s=30)


async def offered(king: KingClient) -> None:
    async def any_offer() -> bool:
        return any(o.providers > 0 and o.gpus_free > 0 for o in await king.offers())

    deadline = time.monotonic() + 90
    while not await any_offer():
        assert time.monotonic() < deadline, "the leading king never offered provider1"
        await asyncio.sleep(0.5)


async def network_view_on_the_follower(kings: Kings, follower: KingProc, home: Path) -> None:
    """A king that does not lead answers GetNetworkInfo itself (leader: false) and passes the rest of NetworkView to
    the leader, which has heard provider1's challenge verdicts from queen1."""
    home.mkdir(parents=True, exist_ok=True)
    cfg = load_config(home, overrides={"rpc.ca_file": str(kings.ca_file)}, env={})
    p1 = ACCOUNTS["provider1"].address
    async with open_channel(cfg, follower.target) as ch:
        stub = npb_grpc.NetworkViewStub(ch)
        info = await stub.GetNetworkInfo(npb.NetworkInfoRequest(), timeout=30)
        assert not info.leader and info.king_address == ACCOUNTS["king"].address
        deadline = time.monotonic() + 90
        while True:
            got = await stub.ListChallenges(npb.ListChallengesRequest(provider=p1), timeout=30)
            if any(c.verdict == "passed" for c in got.challenges):
                break
            assert time.monotonic() < deadline, "the leader never showed provider1's passed challenges"
            await asyncio.sleep(0.5)
        provs = await stub.ListNetworkProviders(npb.ListNetworkProvidersRequest(), timeout=30)
        assert any(p.address == p1 and p.challenges_passed > 0 for p in provs.providers)


def rentals_created(net: Net, ids: list[bytes]) -> int:
    created = net.rental().contract.events.RentalCreated().get_logs(from_block=net.manifest.eth.deploy_block)
    return sum(1 for e in created if int(e["args"]["rentalId"]).to_bytes(32, "big") in ids)


async def running(king: KingClient, workdir: Path, steps: int) -> tuple[list[Any], asyncio.Task[None]]:
    """Submits a job of ``steps`` one-second steps and watches it; returns once its second step is logged."""
    j = await king.submit(job(workdir, entrypoint=f"python job.py {steps}"))
    seen: list[Any] = []

    async def watch() -> None:
        async for ev in king.watch(j.job_id):
            seen.append(ev)

    watcher = asyncio.create_task(watch())
    await wait_for(lambda: any(e.kind == "log" and e.message == f"step 2/{steps}" for e in seen), 180, "step 2")
    return seen, watcher


def check_events(seen: list[Any]) -> None:
    """The watcher got every event once, in order: seqs 1, 2, 3, … with no gap and no repeat."""
    seqs = [e.seq for e in seen]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


async def test_the_leader_killed_mid_job_another_king_leads_and_the_job_completes(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, jobs_ray: RayHead, tmp_path: Path,
        workdir: Path, postgres_url: str) -> None:
    eth, etc = chains
    net = Net(eth.url, etc.url, deployed, jobs_ray, tmp_path)
    kings = Kings(tmp_path / "kings", postgres_url, deployed)
    try:
        leader, other = await two_kings(net, kings)
        epoch = kings.lease().epoch  # type: ignore[union-attr]
        await queen_and_provider(net, kings)
        r, p1 = ACCOUNTS["renter"].address, ACCOUNTS["provider1"].address
        before = balances(net, r, p1)
        async with renter(kings, leader) as king:  # the renter talks to the leader first
            await offered(king)
            await network_view_on_the_follower(kings, other, tmp_path / "viewer")
            seen, watcher = await running(king, workdir, 12)
            leader.signal(signal.SIGKILL)
            await wait_for(lambda: kings.leader() is other, 30, "king2 leading after king1's death")
            lease = kings.lease()
            assert lease is not None and lease.epoch == epoch + 1
            await asyncio.wait_for(watcher, 360)
        final = seen[-1].job
        assert final.state == 5 and len(final.rentals) == 1, final  # completed on its rental: not moved
        assert "step 12/12" in [e.message for e in seen if e.kind == "log"]
        check_events(seen)
        check_settlement(net, final, before, r)
        assert rentals_created(net, [bytes(x.rental_id) for x in final.rentals]) == 1
        assert "this king leads" in other.output()
    finally:
        await net.close()
        kings.close()


async def test_a_paused_leader_is_fenced_and_postgres_restarting_loses_nothing(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Any, jobs_ray: RayHead, tmp_path: Path,
        workdir: Path, postgres_server: PostgresServer, postgres_url: str) -> None:
    eth, etc = chains
    net = Net(eth.url, etc.url, deployed, jobs_ray, tmp_path)
    kings = Kings(tmp_path / "kings", postgres_url, deployed, overrides=WEB)
    try:
        leader, other = await two_kings(net, kings)
        # the page's API (Connect) at the follower is routed as its gRPC is
        await check_web_api_routed_as_grpc(kings, leader, other)
        await queen_and_provider(net, kings)
        r, p1 = ACCOUNTS["renter"].address, ACCOUNTS["provider1"].address
        before = balances(net, r, p1)
        async with renter(kings, other) as king:  # the renter talks to the follower: its calls are passed on
            await offered(king)
            seen, watcher = await running(king, workdir, 14)
            leader.signal(signal.SIGSTOP)
            await wait_for(lambda: kings.leader() is other, 30, "king2 leading while king1 is paused")
            leader.signal(signal.SIGCONT)
            await wait_for(lambda: "fenced" in leader.output(), 30, "king1 saying it was fenced")
            assert kings.leader() is other  # it does not take the lease back
            # it serves again, as a follower: a job read at king1 comes from the shared store
            async with renter(kings, leader) as at_old:
                job_id = seen[0].job_id
                assert (await at_old.get(job_id)).job_id == job_id
            step = len(seen)
            postgres_server.restart()
            await wait_for(lambda: len(seen) > step + 2, 120, "events after PostgreSQL restarted")
            await asyncio.wait_for(watcher, 360)
        final = seen[-1].job
        assert final.state == 5 and len(final.rentals) == 1, final
        assert "step 14/14" in [e.message for e in seen if e.kind == "log"]
        check_events(seen)
        check_settlement(net, final, before, r)
        assert rentals_created(net, [bytes(x.rental_id) for x in final.rentals]) == 1
    finally:
        await net.close()
        kings.close()
