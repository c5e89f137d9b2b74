"""An executed proposal changes how the running nodes behave, within a minute and without a restart.

A real network on the devnet chains (deploy_devnet): the king, two relaying queens (the bridge's 2-of-3
attesters), queen1 admitting providers by stake. A holder (the devnet deployer, votes from the team's vesting wallet at genesis) runs
``blendr gov`` propose → vote → queue → execute for an ETH parameter the king obeys (the lowest quote), one
the queens obey on ETH (the provider stake minimum), two on ETC (the rented providers' challenge interval and
the quarantine's failures, carried by the bridge that the queens and king relay) and ETH's confirmation depth,
which every node follows
(queen2's operator keeps a deeper one of its own: the deeper depth wins). The nodes run with the default
``chain.gov_refresh_s`` (30 s) and must show the new values within 60 s of the change landing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from blendr.chain.anvil import AnvilProcess
from blendr.chain.manifest import Manifest
from blendr.identity import NodeIdentity
from blendr.jobspec import Spec
from blendr.units import tokens
from blendrctl.cli import main
from queen.core import QuarantineBounds
from tests.e2e.net import ACCOUNTS, Net
from tests.integration.helpers import wait_for
from tests.integration.relay_net import rpc
from tests.rayhead import RayHead

pytestmark = [pytest.mark.usefixtures("snapshot"), pytest.mark.timeout(420)]

WITHIN_S = 60.0  # the bound: a change reaches every running node within a minute


def _gov(home: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    code = main(["gov", argv[0], "--home", str(home), *argv[1:], "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


async def test_an_executed_proposal_changes_the_running_king_and_queens(
        chains: tuple[AnvilProcess, AnvilProcess], deployed: Manifest, jobs_ray: RayHead, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    eth, etc = chains
    net = Net(eth.url, etc.url, deployed, jobs_ray, tmp_path)
    try:
        king = await net.start_king()
        q1 = await net.start_queen("queen1", **{"queen.admission": "stake",
                                                "relay.rental_challenge_mean_interval_s": 3600.0})
        q2 = await net.start_queen("queen2", **{"chain.eth_confirmations": 4})  # its operator's own ETH depth
        assert king.cfg.chain.gov_refresh_s == 30.0 and q1.cfg.chain.gov_refresh_s == 30.0  # the default
        # ETH's depth is governance's (the devnet deploys 1), but never below an operator's explicit one
        assert (king.depths.depth("eth"), q1.depths.depth("eth"), q2.depths.depth("eth")) == (1, 1, 4)
        provider = ACCOUNTS["provider1"].address  # staked 4000 GPUTOKEN on the devnet
        spec = Spec(gpus=1, duration_s=3600, max_price_per_gpu_hour=tokens(100), gpu_model="h100-sxm")
        async with net.renter() as renter:
            before = int((await renter.quote(spec)).price_per_gpu_hour)
        assert before == tokens("2.5")  # h100-sxm's base price, inside the devnet's bounds
        assert q1.core.admission.oracle.check(provider).allowed
        assert q1.verifier.rental_rate() == 10.0  # the devnet's challengeInterval (below the queen's 3600)
        assert q1.core.quarantine_bounds() == QuarantineBounds(10, 5, 3600.0)  # WorkVerification's initial ones

        voter = ACCOUNTS["deployer"]  # the devnet's team beneficiary: its vesting wallet's votes are its own
        home = tmp_path / "voter"
        deployed.save(home / "deployment.json")
        NodeIdentity.from_key(bytes(voter.key)).save(home)
        p = _gov(home, capsys, "propose", "--set", "rental.min_quote=10", "--set", "staking.min_stake_provider=5000",
                 "--set", "verification.challenge_interval=20s", "--set", "chain.eth_confirmations=3",
                 "--set", "verification.quarantine_failures=3",
                 "--description", "Dearer GPUs, more stake, calmer challenges, deeper ETH confirmations, "
                 "quicker quarantine")
        pid = p["proposal_id"]
        # the devnet's vote: opens 1 s after the proposal, lasts 300 s (the governor's clock is timestamps)
        rpc(eth.url, "evm_increaseTime", [2])
        rpc(eth.url, "evm_mine", [])
        _gov(home, capsys, "vote", pid, "for")
        rpc(eth.url, "evm_increaseTime", [301])
        rpc(eth.url, "evm_mine", [])
        _gov(home, capsys, "queue", pid)
        rpc(eth.url, "evm_increaseTime", [61])
        rpc(eth.url, "evm_mine", [])
        _gov(home, capsys, "execute", pid)
        loop = asyncio.get_running_loop()
        landed = loop.time()
        # 3 blocks on top of the execution: its ETC message is 4 deep, as queen2's own depth wants before it attests
        rpc(eth.url, "anvil_mine", [hex(3)])

        async def quote_now() -> int:
            async with net.renter() as r:
                return int((await r.quote(spec)).price_per_gpu_hour)

        deadline = landed + WITHIN_S
        while (price := await quote_now()) != tokens(10):
            assert loop.time() < deadline, f"the king still quotes {price} wei {WITHIN_S} s after the change"
            await asyncio.sleep(1.0)
        await wait_for(lambda: not q1.core.admission.oracle.check(provider).allowed, deadline - loop.time() + 1,
                       "queen1 to refuse a provider staked below the new minimum")
        assert "below the minimum 5000" in q1.core.admission.oracle.check(provider).reason
        # ETH's depth, from the same refresh: queen1 attests ETH messages 3 deep now; queen2 stays at its own 4
        await wait_for(lambda: q1.depths.depth("eth") == 3, 5.0, "queen1 to take ETH's depth 3")
        eth_outbox = {name: q.attester.followers[0] for name, q in (("queen1", q1), ("queen2", q2))}
        assert (eth_outbox["queen1"].confirmations, eth_outbox["queen2"].confirmations) == (3, 4)

        def head() -> int:
            return int(rpc(eth.url, "eth_blockNumber", []), 16)

        def trails(follower: Any, depth: int) -> bool:  # its cursor sits depth - 1 below the head
            cursor = follower.cursor()
            return cursor is not None and cursor[0] == head() - (depth - 1)

        rpc(eth.url, "anvil_mine", [hex(2)])  # at depth 1 a follower would scan up to the head
        for name, depth in (("queen1", 3), ("queen2", 4)):
            await wait_for(lambda f=eth_outbox[name], d=depth: trails(f, d), 10.0,
                           f"{name}'s ETH outbox follower to trail the head by {depth - 1} blocks")
        await asyncio.sleep(0.5)  # several polls later (relay.poll_s 0.1 s) they still hold back
        assert trails(eth_outbox["queen1"], 3) and trails(eth_outbox["queen2"], 4)
        # ETC: the bridge carries the change first (the queens attest, the king delivers), then the queen follows
        etc_deadline = WITHIN_S + 60.0  # the relay's own confirmation and delivery time on top
        await wait_for(lambda: q1.verifier.rental_rate() == 20.0, etc_deadline,
                       "queen1 to challenge rented providers every 20 s")
        # the quarantine's change, a second bridge message from the same execution (read in the same refresh, or
        # the next one if the relay delivered it after that read)
        await wait_for(lambda: q1.core.quarantine_bounds() == QuarantineBounds(10, 3, 3600.0), etc_deadline,
                       "queen1 to quarantine at 3 failures of the last 10")
        # the king's depth watch has its own 30 s round: its settlement follower on ETH trails by 2 blocks too
        await wait_for(lambda: king.depths.depth("eth") == 3, landed + WITHIN_S - loop.time() + 1,
                       "the king to take ETH's depth 3")
        assert king.clients["eth"].settings.confirmations == 3 and king.clients["etc"].settings.confirmations == 1
        rpc(eth.url, "anvil_mine", [hex(2)])
        await asyncio.sleep(1.0)  # several polls later (king.poll_s 0.2 s) it still holds back
        assert trails(king.settlements.follower, 3), "the king's settlement follower does not trail the head by 2"
        # the king's gateway lists the proposal, executed, with its tally (NOT_FOUND until its next refresh)
        import grpc

        from blendr.client import RenterError
        from protos.blendr.v1 import renter_pb2 as rpb

        while True:
            async with net.renter() as r:
                try:
                    shown = await r.proposal(pid)
                except RenterError as exc:
                    assert exc.code == grpc.StatusCode.NOT_FOUND, exc
                    shown = None
            if shown is not None and shown.state == rpb.PROPOSAL_STATE_EXECUTED:
                break
            assert loop.time() < landed + WITHIN_S, f"the king does not show proposal {pid} executed"
            await asyncio.sleep(1.0)
        assert int(shown.votes_for) == tokens(15_000_000) and shown.calls[2].text.startswith("on ETC over the bridge")
        assert shown.deadline_unix == shown.snapshot_unix + 300 and shown.snapshot_unix == int(p["snapshot_unix"])
        async with net.renter() as r:
            assert [x.proposal_id for x in await r.proposals(["executed"])] == [pid]
            assert await r.proposals(["active"]) == []
            for bad in (r.proposal("0xabc"), r.proposals(limit=501)):
                with pytest.raises(RenterError) as info:
                    await bad
                assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await net.close()
