"""End-to-end fixtures: devnet chains with every contract (per module), a Ray head for renters' jobs (per
session), and a chain snapshot reverted after each test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blendr.chain.anvil import AnvilProcess, start_anvil
from blendr.chain.deploy import deploy_devnet
from blendr.config import load_config
from tests.integration.relay_net import rpc
from tests.rayhead import RayHead, ray_head


@pytest.fixture(scope="session")
def jobs_ray() -> Iterator[RayHead]:
    with ray_head(num_gpus=4, num_cpus=4) as head:
        yield head


@pytest.fixture(scope="module")
def chains() -> Iterator[tuple[AnvilProcess, AnvilProcess]]:
    eth = start_anvil(31337)
    etc = start_anvil(63, hardfork="shanghai")
    yield eth, etc
    eth.stop()
    etc.stop()


@pytest.fixture(scope="module")
def deployed(chains: tuple[AnvilProcess, AnvilProcess], tmp_path_factory: pytest.TempPathFactory) -> Any:
    eth, etc = chains
    cfg = load_config(tmp_path_factory.mktemp("deployer"), env={})
    return deploy_devnet(cfg, echo=lambda s: None, eth_url=eth.url, etc_url=etc.url)


@pytest.fixture
def snapshot(chains: tuple[AnvilProcess, AnvilProcess]) -> Iterator[None]:
    eth, etc = chains
    snaps = [rpc(eth.url, "evm_snapshot", []), rpc(etc.url, "evm_snapshot", [])]
    yield
    rpc(eth.url, "evm_revert", [snaps[0]])
    rpc(etc.url, "evm_revert", [snaps[1]])
    # anvil's clock goes back with a revert (by the time since the snapshot): bring both chains to the wall
    # clock again, since these tests run in real time
    for url in (eth.url, etc.url):
        rpc(url, "evm_setNextBlockTimestamp", [int(time.time()) + 1])
        rpc(url, "evm_mine", [])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A renter's project: a script that logs, reports progress, reads a data file and its env, and exits."""
    d = tmp_path / "proj"
    d.mkdir()
    (d / "data.txt").write_text("forty-two\n")
    (d / "job.py").write_text(
        "import os, sys, time\n"
        "steps = int(sys.argv[1]) if len(sys.argv) > 1 else 4\n"
        "print('data:', open('data.txt').read().strip(), 'greeting:', os.environ.get('GREETING'), flush=True)\n"
        "for i in range(steps):\n"
        "    time.sleep(float(os.environ.get('STEP_S', '0.5')))\n"
        "    print(f'step {i + 1}/{steps}', flush=True)\n"
        "    print(f'BLENDR_PROGRESS {(i + 1) / steps:.2f}', flush=True)\n"
        "sys.exit(int(os.environ.get('EXIT', '0')))\n")
    return d
