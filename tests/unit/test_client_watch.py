"""The SDK's ``watch``: it reconnects a broken event stream from the last event seen, with bounded, growing
waits, and gives up with a RenterError; a scripted stub plays the king."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from eth_account import Account

from blendr.chain.devkeys import DEV_KEYS
from blendr.client import WATCH_ATTEMPTS, KingClient, KingUnreachableError, RenterError
from protos.blendr.v1 import renter_pb2 as rpb


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=f"scripted {code.name}")


class ScriptedCall:
    """One WatchJob stream: yields its events, then ends (EOF) or breaks with ``error``."""

    def __init__(self, events: list[Any], error: grpc.aio.AioRpcError | None) -> None:
        self.items = list(events)
        self.error = error
        self.cancelled = False

    async def read(self) -> Any:
        if self.items:
            return self.items.pop(0)
        if self.error is not None:
            raise self.error
        return grpc.aio.EOF

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class ScriptedStub:
    def __init__(self, streams: list[tuple[list[Any], grpc.aio.AioRpcError | None]]) -> None:
        self.streams = streams
        self.opened: list[int] = []  # after_seq of each WatchJob
        self.calls: list[ScriptedCall] = []

    def WatchJob(self, req: Any, metadata: Any = ()) -> ScriptedCall:
        self.opened.append(req.after_seq)
        call = ScriptedCall(*self.streams.pop(0))
        self.calls.append(call)
        return call


def event(seq: int) -> Any:
    return rpb.JobEvent(job_id="j1", seq=seq, kind=rpb.JOB_EVENT_KIND_QUEUED, message=f"event {seq}")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between reconnects, recorded instead of slept."""
    out: list[float] = []

    async def no_sleep(delay: float, result: Any = None) -> Any:
        out.append(delay)
        return result

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    return out


def client(stub: ScriptedStub) -> KingClient:
    c = KingClient("127.0.0.1:1", Account.from_key(DEV_KEYS[9]), insecure=True)
    c._stubs = [stub]
    c._token, c._expires = "session", int(time.time()) + 3600
    return c


async def collect(c: KingClient, after_seq: int = 0) -> list[int]:
    return [ev.seq async for ev in c.watch("j1", after_seq)]


async def test_a_broken_stream_resumes_after_the_last_event_seen(sleeps: list[float]) -> None:
    unavailable = rpc_error(grpc.StatusCode.UNAVAILABLE)
    stub = ScriptedStub([([event(1), event(2)], unavailable), ([], unavailable), ([event(3)], None)])
    assert await collect(client(stub)) == [1, 2, 3]
    assert stub.opened == [0, 2, 2]
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 10  # one wait: the reconnect that got nothing
    assert all(call.cancelled for call in stub.calls)


async def test_an_unreachable_king_is_given_up_after_the_bounded_attempts(sleeps: list[float]) -> None:
    stub = ScriptedStub([([], rpc_error(grpc.StatusCode.UNAVAILABLE))] * WATCH_ATTEMPTS)
    with pytest.raises(KingUnreachableError, match="unreachable"):
        await collect(client(stub), after_seq=7)
    assert stub.opened == [7] * WATCH_ATTEMPTS
    assert len(sleeps) == WATCH_ATTEMPTS - 1
    assert all(0 < s <= 10 for s in sleeps) and sleeps[1] > sleeps[0]  # grows, bounded


async def test_a_refusal_is_raised_at_once(sleeps: list[float]) -> None:
    stub = ScriptedStub([([], rpc_error(grpc.StatusCode.NOT_FOUND))])
    with pytest.raises(RenterError, match="scripted NOT_FOUND") as info:
        await collect(client(stub))
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert stub.opened == [0] and sleeps == []


async def test_a_consumer_that_stops_early_ends_the_stream() -> None:
    stub = ScriptedStub([([event(1), event(2), event(3)], None)])
    stream = client(stub).watch("j1")
    first = await anext(stream)
    await stream.aclose()
    assert first.seq == 1 and first.kind == "queued" and first.message == "event 1"
    assert stub.calls[0].cancelled


async def test_a_stream_whose_king_dies_resumes_at_another_king_without_a_gap(sleeps: list[float]) -> None:
    """Several kings (king.ha): the king watched dies after event 2; the SDK resumes at the next king after the last
    event seen, so the renter sees every event once."""
    unavailable = rpc_error(grpc.StatusCode.UNAVAILABLE)
    dead = ScriptedStub([([event(1), event(2)], unavailable), ([], unavailable)])
    alive = ScriptedStub([([event(3), event(4)], None)])
    c = KingClient("127.0.0.1:1,127.0.0.1:2", Account.from_key(DEV_KEYS[9]), insecure=True)
    c._stubs = [dead, alive]
    c._token, c._expires = "session", int(time.time()) + 3600
    assert c.targets == ["127.0.0.1:1", "127.0.0.1:2"]
    assert await collect(c) == [1, 2, 3, 4]
    assert dead.opened == [0, 2] and alive.opened == [2]
