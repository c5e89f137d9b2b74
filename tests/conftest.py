"""Shared fixtures: node configs in temporary homes, the session's local Ray, devnet chains per module."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blendr.chain import artifacts
from blendr.chain.anvil import AnvilProcess, rpc, start_anvil
from blendr.chain.deploy import deploy_devnet
from blendr.config import Config, load_config
from tests.integration.helpers import PINS
from tests.pg import PostgresServer, start_postgres

# test-only contracts (mocks, attackers, receivers) are built next to the tests, not into the package
artifacts.add_artifacts_dir(Path(__file__).resolve().parent / "contracts" / "artifacts")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL 16 (pgserver's binaries) on a free port, for the whole session."""
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database of its own for one test (dropped after it)."""
    postgres_server.start_if_stopped()
    name = f"t{uuid.uuid4().hex[:16]}"
    url = postgres_server.database(name)
    yield url
    postgres_server.start_if_stopped()
    postgres_server.drop(name)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build a Config for a node in its own home under tmp_path, ignoring the real environment."""
    counter = {"n": 0}

    def make(name: str | None = None, **overrides: Any) -> Config:
        counter["n"] += 1
        home = tmp_path / (name or f"node{counter['n']}")
        home.mkdir(parents=True, exist_ok=True)
        return load_config(home, overrides={k.replace("__", "."): v for k, v in overrides.items()}, env={})

    return make


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray for the whole session, with two logical GPUs and a resource per provider pin."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=8, num_gpus=2, resources={p: 1000.0 for p in PINS}, include_dashboard=False,
                 namespace="blendr-tests", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def chains() -> Iterator[tuple[AnvilProcess, AnvilProcess]]:
    """Devnet chains for one module: eth (31337, prague) and etc (63, shanghai) anvil processes."""
    eth = start_anvil(31337)
    etc = start_anvil(63, hardfork="shanghai")
    yield eth, etc
    eth.stop()
    etc.stop()


# The session's first devnet deployment: both chains' state (anvil_dumpState) and the manifest, by the chains' node
# settings (hard fork, chain id, gas): later modules load it instead of deploying again.
_DEPLOYMENTS: dict[str, tuple[str, str, Any, tuple[int, int]]] = {}


def _node_key(node: AnvilProcess) -> str:
    info = rpc(node.host, node.port, "anvil_nodeInfo")
    return json.dumps([info["hardFork"], info["environment"]], sort_keys=True)


def _height(node: AnvilProcess) -> int:
    return int(rpc(node.host, node.port, "eth_blockNumber"), 16)


@pytest.fixture(scope="module")
def deployed(chains: tuple[AnvilProcess, AnvilProcess], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every contract deployed on ``chains`` with the devnet roles and keys (a module may define its own).

    The session's first module deploys with ``deploy_devnet`` (as ``blendr devnet`` does); its chains' state is
    kept (``anvil_dumpState``: accounts, code, storage, blocks, receipts and logs) and later modules on fresh chains
    of the same settings load it (``anvil_loadState``): the same contracts, blocks, events and balances as a
    deployment of their own, without its ~130 transactions. Chains that are not fresh get a deployment of
    their own."""
    eth, etc = chains
    key = _node_key(eth) + _node_key(etc)
    kept = _DEPLOYMENTS.get(key)
    if kept is not None and _height(eth) == 0 and _height(etc) == 0:
        eth_state, etc_state, manifest, heights = kept
        for node, state in ((eth, eth_state), (etc, etc_state)):
            if rpc(node.host, node.port, "anvil_loadState", [state], timeout=60.0) is not True:
                raise RuntimeError(f"anvil_loadState failed on chain {node.chain_id}")
        if (_height(eth), _height(etc)) != heights:
            raise RuntimeError(f"the loaded deployment's chains are at {(_height(eth), _height(etc))}, not {heights}")
        loaded = copy.deepcopy(manifest)
        loaded.eth.rpc_url, loaded.etc.rpc_url = eth.url, etc.url
        return loaded
    fresh = _height(eth) == 0 and _height(etc) == 0
    cfg = load_config(tmp_path_factory.mktemp("deployer"), env={})
    manifest = deploy_devnet(cfg, echo=lambda s: None, eth_url=eth.url, etc_url=etc.url)
    if fresh and kept is None:
        _DEPLOYMENTS[key] = (rpc(eth.host, eth.port, "anvil_dumpState", timeout=60.0),
                             rpc(etc.host, etc.port, "anvil_dumpState", timeout=60.0), copy.deepcopy(manifest),
                             (_height(eth), _height(etc)))
    return manifest
