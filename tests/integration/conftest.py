"""Integration fixtures: a real local Ray (two logical GPUs and one pinned resource per provider) and
node homes in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import PINS


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray for the whole session, with two logical GPUs and a resource per provider pin."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=8, num_gpus=2, resources={p: 1000.0 for p in PINS}, include_dashboard=False,
                 namespace="blendr-tests", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def node_home(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        home = tmp_path / name
        home.mkdir(parents=True, exist_ok=True)
        return home

    return make
