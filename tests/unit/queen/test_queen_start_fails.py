"""A queen whose start fails after its first listener is up stops what it started: the provider port is free
again (no running server left behind for the garbage collector) and the error names the address."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from blendr.clock import ManualClock
from blendr.config import Config
from blendr.errors import ConfigError
from blendr.ports import free_port
from blendr.store import MemoryStore
from queen.app import start_queen


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("taken", ["admin", "metrics"])
async def test_a_taken_second_port_fails_the_start_and_frees_the_first(make_config: Callable[..., Config],
                                                                         taken: str) -> None:
    listen = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        cfg = make_config("queen", rpc__tls=False, queen__listen=f"127.0.0.1:{listen}",
                          queen__admin_listen=f"127.0.0.1:{busy}" if taken == "admin" else "127.0.0.1:0",
                          queen__admission="open",
                          metrics__port=busy if taken == "metrics" else -1)
        with pytest.raises((ConfigError, OSError), match=str(busy)):
            await start_queen(cfg, store=MemoryStore(), clock=ManualClock(), run_ticker=False)
    assert bindable(listen), "the queen's provider listener outlived its failed start"
