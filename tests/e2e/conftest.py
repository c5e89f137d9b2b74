"""End-to-end fixtures: a Ray head for renters' jobs (per session) and a chain snapshot reverted after each test
(the devnet chains with every contract, ``chains`` and ``deployed``, are in tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from blendr.chain.anvil import AnvilProcess
from tests.integration.relay_net import rpc
from tests.rayhead import RayHead, ray_head


@pytest.fixture(scope="session")
def jobs_ray() -> Iterator[RayHead]:
    with ray_head(num_gpus=4, num_cpus=4) as head:
        yield head


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
    """A renter's project: a script that logs, reports progress, reads a data file and its env, writes two outputs
    under $BLENDR_OUTPUT_DIR (``result.bin``, ``logs/steps.txt``) and exits."""
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
        "out = os.environ.get('BLENDR_OUTPUT_DIR')\n"
        "if out:\n"
        "    os.makedirs(os.path.join(out, 'logs'), exist_ok=True)\n"
        "    open(os.path.join(out, 'result.bin'), 'wb').write(bytes(range(256)) * 4099)\n"
        "    open(os.path.join(out, 'logs', 'steps.txt'), 'w').write(f'{steps} steps\\n')\n"
        "sys.exit(int(os.environ.get('EXIT', '0')))\n")
    return d
