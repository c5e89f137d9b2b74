"""Shared fixtures: node configs in temporary homes, the session's local Ray, devnet chains per module."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blendr.chain import artifacts
from blendr.chain.anvil import AnvilProcess, start_anvil
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


@pytest.fixture(scope="module")
def deployed(chains: tuple[AnvilProcess, AnvilProcess], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every contract deployed on ``chains`` with the devnet roles and keys (a module may define its own)."""
    eth, etc = chains
    cfg = load_config(tmp_path_factory.mktemp("deployer"), env={})
    return deploy_devnet(cfg, echo=lambda s: None, eth_url=eth.url, etc_url=etc.url)


# A timed-out test's asyncio tasks, each with the chain of awaits it is suspended in (pytest-timeout dumps only
# threads, and an async test's main thread just sits in the event loop's select).
_STUCK_TASKS: dict[str, list[str]] = {}


def _await_chain(task_coro: Any) -> str:
    frames, coro = [], task_coro
    while coro is not None:
        f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if f is not None:
            frames.append(f"{'/'.join(f.f_code.co_filename.split('/')[-2:])}:{f.f_lineno} {f.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return " <- ".join(reversed(frames)) or repr(task_coro)


def pytest_configure(config: pytest.Config) -> None:
    import asyncio

    import pytest_timeout

    original = pytest_timeout.timeout_sigalrm

    def with_tasks(item: Any, settings: Any) -> Any:
        __tracebackhide__ = True
        loop = asyncio._get_running_loop()
        if loop is not None:
            tasks = [f"{t.get_name()}: {_await_chain(t.get_coro())}" for t in asyncio.all_tasks(loop)]
            _STUCK_TASKS[item.nodeid] = sorted(tasks, key=lambda t: ("tests/" in t, t))  # the test's own last
        return original(item, settings)

    pytest_timeout.timeout_sigalrm = with_tasks


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Last in the output (CI keeps its tail): where each timed-out test was stuck: its asyncio tasks' awaits
    and pytest-timeout's traceback."""
    for rep in terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", []):
        text = str(getattr(rep, "longrepr", "") or "")
        if "Timeout" not in text:
            continue
        terminalreporter.write_sep("=", f"where {rep.nodeid} was stuck when it timed out ({rep.when})")
        tasks = _STUCK_TASKS.get(rep.nodeid, [])
        for line in [*text.splitlines()[-30:], f"-- its {len(tasks)} asyncio tasks (innermost await first; the tests' own last) --", *tasks]:
            terminalreporter.write_line(line[:400])
