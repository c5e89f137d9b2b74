"""The renter's CLI against the real network: offers, wallet, submit --detach, list, status, logs -f, cancel,
and the errors a renter sees (the king unreachable, a bad flag)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from blendr.chain.anvil import AnvilProcess
from blendr.identity import NodeIdentity
from tests.e2e.net import ACCOUNTS, network
from tests.integration.helpers import blendr_cmd, subprocess_env
from tests.rayhead import RayHead

pytestmark = [pytest.mark.usefixtures("ray_cluster", "snapshot"), pytest.mark.timeout(600)]


async def blendr(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    n = 1 if args[0] in ("offers", "wallet") else 2  # --home goes after the command, before any "--"
    argv = [*args[:n], "--home", str(home), *args[n:]]
    return await asyncio.to_thread(subprocess.run, blendr_cmd(*argv), capture_output=True, text=True,
                                   env=subprocess_env(), timeout=timeout)


async def test_a_renter_uses_the_cli_end_to_end(chains: tuple[AnvilProcess, AnvilProcess], deployed: Any,
                                                 jobs_ray: RayHead, tmp_path: Path, workdir: Path) -> None:
    eth, etc = chains
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path, providers=(("provider1", "queen1"),)) as net:
        assert net.king is not None
        home = tmp_path / "renter"
        home.mkdir()
        NodeIdentity.from_key(bytes(ACCOUNTS["renter"].key)).save(home)
        (home / "config.toml").write_text(f'[renter]\nking = "127.0.0.1:{net.king.port}"\n'
                                          f'[rpc]\nca_file = "{tmp_path / "king" / "tls" / "ca.crt"}"\n')
        offers = await blendr(home, "offers")
        assert offers.returncode == 0 and "cpu" in offers.stdout and "1/1" in offers.stdout, offers
        wallet = await blendr(home, "wallet", "--json")
        assert json.loads(wallet.stdout)["address"] == ACCOUNTS["renter"].address
        sub = await blendr(home, "job", "submit", "--detach", "--json", "--gpus", "1", "--gpu-model", "cpu",
                           "--hours", str(60 / 3600), "--max-price", "2", "--workdir", str(workdir), "--env",
                           "GREETING=cli", "--name", "from-cli", "--", "python", "job.py", "3")
        assert sub.returncode == 0, sub.stderr
        job_id = json.loads(sub.stdout)["job_id"]
        logs = await blendr(home, "job", "logs", "-f", job_id)  # follows until the job has settled
        assert logs.returncode == 0, logs.stderr
        assert "data: forty-two greeting: cli" in logs.stdout and "step 3/3" in logs.stdout
        assert f"job {job_id}: settled" in logs.stdout
        status = await blendr(home, "job", "status", job_id, "--json")
        doc = json.loads(status.stdout)
        assert doc["state"] == "settled" and doc["name"] == "from-cli" and len(doc["rentals"]) == 1
        listed = await blendr(home, "job", "list")
        assert job_id in listed.stdout and "settled" in listed.stdout
        again = await blendr(home, "job", "cancel", job_id)
        assert again.returncode == 1 and "has already settled" in again.stderr
        bad = await blendr(home, "job", "submit", "--gpus", "1", "--gpu-model", "h900", "--", "true")
        assert bad.returncode == 1 and "unknown GPU model 'h900'" in bad.stderr
        no_cmd = await blendr(home, "job", "submit", "--gpus", "1")
        assert no_cmd.returncode == 2 and "give the command to run after --" in no_cmd.stderr
        down = await blendr(home, "offers", "--king", "127.0.0.1:1")
        assert down.returncode == 1 and "unreachable" in down.stderr
