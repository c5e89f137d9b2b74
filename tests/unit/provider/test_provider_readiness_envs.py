"""The readiness monitor and which requirement sets may name the job's own files (never cached)."""

from __future__ import annotations

import asyncio

import pytest

from blendr.errors import ComputeError
from blendr.types import Readiness
from provider.envs import _needs_private_env
from provider.readiness import NO_RUNNER, NOT_CHECKED, ReadinessMonitor


@pytest.mark.parametrize(("line", "local"), [
    ("numpy==2.1", False), ("scipy>=1.13; python_version>'3.9'", False), ("# ./comment", False), ("", False),
    ("--pre", False), ("--only-binary=:all:", False), ("--prefer-binary", False),
    ("pkg @ https://example.com/pkg-1.0.tar.gz", False),
    ("./mypkg", True), ("mypkg/", True), ("/abs/pkg", True), ("file:./x", True), ("-e .", True),
    ("-r other.txt", True), ("--requirement=other.txt", True), ("-c constraints.txt", True),
    ("--find-links ./wheels", True), ("-f./wheels", True), ("pkg @ file:///tmp/pkg", True),
    # a bare archive is read from the working directory; index options may point into it
    ("mypkg-1.0-py3-none-any.whl", True), ("x.tar.gz", True), ("X.ZIP", True),
    ("--extra-index-url file:./idx", True), ("-i ./idx", True), ("--index-url=./idx", True),
    ("--no-index", True), ("--index-url https://pypi.org/simple", True), ("--trusted-host evil", True),
    ("pkg @ FILE:///tmp/pkg", True),
])
def test_requirements_that_may_name_the_workdir_get_a_private_env(line: str, local: bool) -> None:
    assert _needs_private_env(line) is local


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
