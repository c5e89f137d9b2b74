"""Helpers for integration tests (configs, waiting, running agents, subprocess commands)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from blendr.config import Config, load_config

PINS = [f"blendr-test-p{i}" for i in range(8)]

# Small, fast challenges for a 2-core CPU machine.
QUEEN_DEFAULTS: dict[str, Any] = {
    "queen.listen": "127.0.0.1:0",
    "queen.admin_listen": "127.0.0.1:0",
    "queen.admission": "open",
    "queen.heartbeat_interval_s": 0.3,
    "queen.suspect_after_s": 1.5,
    "queen.dead_after_s": 3.0,
    "queen.tick_s": 0.05,
    "queen.challenge_mean_interval_s": 3600.0,
    "queen.challenge_n_cpu": 256,
    "queen.challenge_n_gpu": 64,
    "queen.challenge_max_count": 16,
    "queen.openings_k": 8,
    # Challenges here are milliseconds of work, so Ray dispatch shows on the queen's clock.
    "queen.speed_wall_factor": 0.2,
    "queen.grace_s": 10.0,
    "queen.opening_timeout_s": 10.0,
    "metrics.port": -1,
}


def queen_config(home: Path, **overrides: Any) -> Config:
    ov = dict(QUEEN_DEFAULTS)
    ov.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_config(home, overrides=ov, env={})


def client_config(home: Path, queen_home: Path, **overrides: Any) -> Config:
    """A provider/admin config trusting the queen's devnet CA."""
    ov: dict[str, Any] = {"rpc.ca_file": str(queen_home / "tls" / "ca.crt"), "provider.reconnect_initial_s": 0.1,
                          "provider.reconnect_max_s": 0.5, "rpc.call_timeout_s": 5.0}
    ov.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_config(home, overrides=ov, env={})


async def wait_for(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = pred()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_agent(agent: Any) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(agent.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def blendr_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "blendrctl", *args]


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDR_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env
