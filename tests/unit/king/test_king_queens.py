"""What the king takes from a queen's pool snapshot: only providers that admitted themselves to that queen."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from eth_account import Account

from blendr.errors import InvalidArgumentError
from blendr.identity import NodeIdentity
from blendr.payload import public_key_of
from king.convert import offer_from_proto as _offer
from protos.blendr.v1 import king_pb2 as kpb
from tests.fakes.queens import FakeClock

QUEEN_A, QUEEN_B = Account.create().address, Account.create().address


def entry(ident: NodeIdentity, queen: str, **kw: object) -> kpb.PoolProvider:
    nonce = os.urandom(32)
    fields = {"address": ident.address, "gpu_model": "cpu", "gpus": 1, "ask_per_gpu_hour": "5", "uptime": 1.0,
              "alive": True, "admission_nonce": nonce, "admission_signature": ident.sign_admission(queen, nonce),
              "public_key": public_key_of(bytes(ident.account().key))}
    fields.update(kw)
    return kpb.PoolProvider(**fields)  # type: ignore[arg-type]


def test_a_provider_admitted_to_the_queen_is_offered_with_the_key_that_signed() -> None:
    ident = NodeIdentity.from_key(os.urandom(32))
    got = _offer(entry(ident, QUEEN_A), QUEEN_A)
    assert got is not None
    offer, pub, _ = got
    assert offer.alive and offer.ask_per_gpu_hour == 5 and pub == public_key_of(bytes(ident.account().key))


def test_a_queen_cannot_list_a_provider_that_joined_another_queen_or_swap_its_key() -> None:
    ident = NodeIdentity.from_key(os.urandom(32))
    assert _offer(entry(ident, QUEEN_A), QUEEN_B) is None  # signed for queen A, listed by queen B
    assert _offer(entry(ident, QUEEN_A, admission_signature=b""), QUEEN_A) is None  # no proof at all
    other = public_key_of(os.urandom(32))
    assert _offer(entry(ident, QUEEN_A, public_key=other), QUEEN_A) is None  # a key the provider did not sign with


@pytest.mark.parametrize("bad", [{"uptime": 5.0}, {"uptime": float("nan")}, {"tflops": float("nan")},
                                 {"tflops": -1.0}, {"gpus": 100_000}, {"busy_gpus": 2}, {"address": "0xnope"},
                                 {"ask_per_gpu_hour": "-1"}])
def test_a_malformed_snapshot_entry_is_an_invalid_argument(bad: dict[str, object]) -> None:
    ident = NodeIdentity.from_key(os.urandom(32))
    with pytest.raises(InvalidArgumentError):
        _offer(entry(ident, QUEEN_A, **bad), QUEEN_A)


async def test_queen_registrations_name_this_king_are_fresh_and_used_once() -> None:
    import pytest

    from blendr.errors import PermissionDeniedError
    from blendr.rpc.registration import sign_queen_registration
    from king.queens import QueenHub

    king, other = Account.create().address, Account.create().address
    queen = Account.create()
    hub = QueenHub(king, FakeClock(1_000_000), stake_check=lambda q: (True, "staked"))

    def reg(for_king: str, ts: int = 1_000_000) -> kpb.QueenRegistration:
        return kpb.QueenRegistration(queen_address=queen.address, king_address=for_king, timestamp=ts,
                                     endpoint="q:7470", signature=sign_queen_registration(queen, for_king, ts, "q:7470"))

    assert await hub.register(reg(king)) == queen.address
    for bad, match in ((reg(king), "used already"), (reg(other, 1_000_001), f"not {king}"),
                       (reg("", 1_000_002), "names no king"), (reg(king, 1_000_000 - 301), "stale")):
        with pytest.raises(PermissionDeniedError, match=match):
            await hub.register(bad)
    forged = reg(king, 1_000_003)
    forged.queen_address = other  # signed by the queen's key, claimed for another address
    with pytest.raises(PermissionDeniedError, match="refused"):
        await hub.register(forged)
    unstaked = QueenHub(king, FakeClock(1_000_000), stake_check=lambda q: (False, "queen stake 0 is below 10000"))
    with pytest.raises(PermissionDeniedError, match="below 10000"):
        await unstaked.register(reg(king, 1_000_004))
    lenient = QueenHub(king, FakeClock(1_000_000), stake_check=lambda q: (True, ""), accept_any_king=True)
    assert await lenient.register(reg("", 1_000_005)) == queen.address


class Feed:
    """A queen's side of a session: the test puts messages, None ends the stream."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[kpb.QueenToKing | None] = asyncio.Queue()

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> kpb.QueenToKing:
        m = await self.q.get()
        if m is None:
            raise StopAsyncIteration
        return m


class Listener:
    def __init__(self) -> None:
        self.snapshots: list[list[tuple[object, bytes, int]]] = []
        self.events: list[object] = []
        self.connected: list[str] = []
        self.disconnected: list[str] = []

    def on_snapshot(self, queen: str, seq: int, providers: list[tuple[object, bytes, int]]) -> None:
        self.snapshots.append(providers)

    def on_queen_event(self, queen: str, ev: object) -> None:
        self.events.append(ev)

    def on_queen_connected(self, queen: str) -> None:
        self.connected.append(queen)

    def on_queen_disconnected(self, queen: str) -> None:
        self.disconnected.append(queen)


async def _session(hub: object, queen: Any, king: str, ts: int, listener: Listener) -> tuple[Feed, asyncio.Task[list[Any]]]:
    from blendr.rpc.registration import sign_queen_registration

    feed = Feed()
    feed.q.put_nowait(kpb.QueenToKing(registration=kpb.QueenRegistration(
        queen_address=queen.address, king_address=king, timestamp=ts, endpoint="q:7470",
        signature=sign_queen_registration(queen, king, ts, "q:7470"))))

    async def run() -> list[Any]:
        return [m async for m in hub.session(feed, listener)]  # type: ignore[attr-defined]

    return feed, asyncio.create_task(run())


async def _until(cond: Any) -> None:
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_bad_message_from_a_queen_is_dropped_and_its_session_goes_on() -> None:
    from king.queens import QueenHub

    king, queen = Account.create().address, Account.create()
    hub = QueenHub(king, FakeClock(1_000_000), stake_check=lambda q: (True, "staked"))
    listener = Listener()
    feed, task = await _session(hub, queen, king, 1_000_000, listener)
    await _until(lambda: listener.connected)
    ident = NodeIdentity.from_key(os.urandom(32))
    feed.q.put_nowait(kpb.QueenToKing(job_event=kpb.QueenJobEvent(job_id="j", attempt=1, seq=1, kind="progress",
                                                                  progress=float("nan"))))
    feed.q.put_nowait(kpb.QueenToKing(snapshot=kpb.PoolSnapshotMsg(seq=1, providers=[
        entry(ident, queen.address, uptime=5.0)])))
    feed.q.put_nowait(kpb.QueenToKing(snapshot=kpb.PoolSnapshotMsg(seq=2, providers=[
        kpb.PoolProvider(address=Account.create().address) for _ in range(10_001)])))
    feed.q.put_nowait(kpb.QueenToKing(snapshot=kpb.PoolSnapshotMsg(seq=3, providers=[
        entry(ident, queen.address), entry(NodeIdentity.from_key(os.urandom(32)), queen.address, admission_signature=b"")])))  # the second never admitted
    feed.q.put_nowait(kpb.QueenToKing(job_event=kpb.QueenJobEvent(job_id="j", attempt=1, seq=2, kind="progress",
                                                                  progress=7.0)))
    await _until(lambda: listener.events)
    assert hub.connected(queen.address) and not listener.disconnected
    assert [len(s) for s in listener.snapshots] == [1]  # only the good snapshot, only the admitted provider
    assert [e.progress for e in listener.events] == [1.0]  # type: ignore[attr-defined]  # clamped
    feed.q.put_nowait(None)
    await task
    assert listener.disconnected == [queen.address] and not hub.connected(queen.address)


async def test_a_replaced_or_unread_session_ends_at_once_and_frees_what_it_held() -> None:
    from king.context import Assignment
    from king.queens import SESSION_QUEUE, QueenHub

    king, queen = Account.create().address, Account.create()
    hub = QueenHub(king, FakeClock(1_000_000), stake_check=lambda q: (True, "staked"))
    first = Listener()
    _, task1 = await _session(hub, queen, king, 1_000_000, first)
    await _until(lambda: first.connected)
    a = Assignment("j", 1, queen.address, 1, b"\1" * 32, 0.0, b"x" * 1000, b"k", "aad")
    second = Listener()
    _, task2 = await _session(hub, queen, king, 1_000_001, second)
    await asyncio.wait_for(task1, 5)  # the old session ends as the new one registers
    await _until(lambda: second.connected)
    assert first.disconnected == [] and hub.connected(queen.address)  # the new session holds the queen
    # the second session's queen reads nothing: its queue fills, the session is ended, the king is told
    task2.cancel()  # (the test stops reading; the hub must still end the session on overflow)
    third = Listener()
    _, task3 = await _session(hub, queen, king, 1_000_002, third)
    await _until(lambda: third.connected)
    sess = hub.sessions[queen.address]
    sends = [hub.assign(queen.address, a) for _ in range(SESSION_QUEUE + 1)]
    assert sends[-1] is False and all(sends[:-1]) and sess.queue.qsize() <= 1
    await asyncio.wait_for(task3, 5)
    assert third.disconnected == [queen.address] and not hub.connected(queen.address)


async def test_refused_registrations_are_not_remembered_and_stake_reads_are_cached() -> None:
    from king.queens import QueenHub

    king, queen = Account.create().address, Account.create()
    reads = []

    def unstaked(q: str) -> tuple[bool, str]:
        reads.append(q)
        return False, "queen stake 0 is below 10000"

    hub = QueenHub(king, FakeClock(1_000_000), stake_check=unstaked)
    for ts in range(1_000_000, 1_000_050):
        listener = Listener()
        _, task = await _session(hub, queen, king, ts, listener)
        with pytest.raises(Exception, match="below 10000"):
            await task
    assert hub._used == {} and len(reads) == 1
