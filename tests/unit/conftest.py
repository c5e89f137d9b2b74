"""Unit tests: each gets at most UNIT_TIMEOUT_S unless it asks for its own ``pytest.mark.timeout``.

The slowest unit test takes ~11 s on a loaded 2-core machine. The ceiling is there because of what two full runs
showed: a grpc.aio server or channel left by an earlier test, garbage-collected during a unit test, can block
that test in gRPC's aio shutdown (``AioServer.__dealloc__`` joining its poller thread) until pytest-timeout's
alarm interrupts the join, which gRPC then ignores and the test goes on and passes. With the suite-wide 300 s that
cost five minutes of CI each time; here it costs at most this long.
"""

from __future__ import annotations

import pytest

UNIT_TIMEOUT_S = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/unit/" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(UNIT_TIMEOUT_S))
