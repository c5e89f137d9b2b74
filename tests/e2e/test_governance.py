"""An executed proposal changes how the running nodes behave, within a minute and without a restart.

A real network on the devnet chains (deploy_devnet): the king, two relaying queens (the bridge's 2-of-3
attesters), queen1 admitting providers by stake. A holder (the devnet deployer, votes from the team's vesting wallet at genesis) runs
``blendr gov`` propose → vote → queue → execute for an ETH parameter the king obeys (the lowest quote), one
the queens obey on ETH (the provider stake minimum) and one on ETC (the rented providers' challenge interval,
carried by the bridge that the queens and king relay). The nodes run with the default ``chain.gov_refresh_s``
(30 s) and must show the new values within 60 s of the change landing.
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
        await net.start_queen("queen2")
        assert king.cfg.chain.gov_refresh_s == 30.0 and q1.cfg.chain.gov_refresh_s == 30.0  # the default
        provider = ACCOUNTS["provider1"].address  # staked 4000 GPUTOKEN on the devnet
        spec = Spec(gpus=1, duration_s=3600, max_price_per_gpu_hour=tokens(100), gpu_model="h100-sxm")
        async with net.renter() as renter:
            before = int((await renter.quote(spec)).price_per_gpu_hour)
        assert before == tokens("2.5")  # h100-sxm's base price, inside the devnet's bounds
        assert q1.core.admission.oracle.check(provider).allowed
        assert q1.verifier.rental_rate() == 10.0  # the devnet's challengeInterval (below the queen's 3600)

        voter = ACCOUNTS["deployer"]  # the devnet's team beneficiary: its vesting wallet's votes are its own
        home = tmp_path / "voter"
        deployed.save(home / "deployment.json")
        NodeIdentity.from_key(bytes(voter.key)).save(home)
        p = _gov(home, capsys, "propose", "--set", "rental.min_quote=10", "--set", "staking.min_stake_provider=5000",
                 "--set", "verification.challenge_interval=20s", "--description", "Dearer GPUs, more stake, calmer "
                 "challenges")
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
        # ETC: the bridge carries the change first (the queens attest, the king delivers), then the queen follows
        etc_deadline = WITHIN_S + 60.0  # the relay's own confirmation and delivery time on top
        await wait_for(lambda: q1.verifier.rental_rate() == 20.0, etc_deadline,
                       "queen1 to challenge rented providers every 20 s")
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
