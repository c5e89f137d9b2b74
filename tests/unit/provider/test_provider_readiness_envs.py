"""The readiness monitor, and the job environment builder's bounds and base environment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from blendr.errors import ComputeError
from blendr.types import Readiness
from provider.envs import EnvCache, JobEnv
from provider.readiness import NO_RUNNER, NOT_CHECKED, ReadinessMonitor


def test_env_builder_bounds_must_be_positive_and_no_declared_dependency_is_the_base_env(tmp_path: Path) -> None:
    for bad in ({"install_timeout_s": 0}, {"max_envs": 0}, {"max_bytes": 0}):
        with pytest.raises(ComputeError, match="must be > 0"):
            EnvCache(tmp_path / "envs", **bad)  # type: ignore[arg-type]
    cache = EnvCache(tmp_path / "envs", base_python="/opt/py/bin/python3")
    env = asyncio.run(cache.acquire(tmp_path, [], tmp_path / "job"))
    assert env == JobEnv(Path("/opt/py/bin")) and not env.private and not (tmp_path / "job").exists()


async def test_monitor_reports_each_change_once_and_bounds_a_check() -> None:
    outcome: list[BaseException | None] = [ComputeError("No available agent to submit job")]
    seen: list[Readiness] = []

    async def probe(timeout_s: float) -> None:
        if outcome[0] is not None:
            raise outcome[0]

    m = ReadinessMonitor(probe, interval_s=0.01, timeout_s=1.0, on_change=seen.append)
    assert m.current == Readiness(False, NOT_CHECKED)
    assert await m.check() == Readiness(False, "No available agent to submit job")
    await m.check()
    outcome[0] = None
    assert (await m.check()).ready
    assert seen == [Readiness(False, "No available agent to submit job"), Readiness()]

    async def hangs(timeout_s: float) -> None:
        await asyncio.sleep(3600)

    slow = ReadinessMonitor(hangs, interval_s=1.0, timeout_s=0.05)
    result = await slow.check()
    assert not result.ready and "did not finish within 0.05 s" in result.reason


async def test_monitor_without_a_runner_is_never_ready_and_the_loop_rechecks() -> None:
    m = ReadinessMonitor(None, interval_s=0.01)
    assert m.current == Readiness(False, NO_RUNNER) and await m.check() == Readiness(False, NO_RUNNER)
    calls = 0

    async def probe(timeout_s: float) -> None:
        nonlocal calls
        calls += 1

    m.set_probe(probe)
    task = asyncio.create_task(m.run())
    try:
        while calls < 3:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert m.current.ready
