"""The queen's job book and its king link without a network: a fake KingControl stream, a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from _queen_fakes import FakeLink, cpu, gpu, hello
from eth_utils import keccak, to_checksum_address

from blendr.clock import ManualClock
from blendr.config import QueenConfig, RelayConfig
from blendr.errors import ConfigError, InvalidArgumentError, SignatureError
from blendr.identity import Address, NodeIdentity
from blendr.rpc.registration import queen_registration_text, recover_queen_registration
from blendr.store import MemoryStore
from blendr.types import DeviceInfo, Verdict
from protos.blendr.v1 import king_pb2 as kpb
from queen.admission import OpenOracle
from queen.challenges import Outcome
from queen.core import QueenCore
from queen.jobs import MAX_UNPERSISTED, NS_JOBS, Assignment, JobEvent, JobStartOut, JobStopOut, job_key
from queen.kinglink import KingLink

CFG = QueenConfig(challenge_mean_interval_s=10_000.0, suspect_after_s=15.0, dead_after_s=45.0)
QUEEN = NodeIdentity.generate()
KING = NodeIdentity.generate()


class Node:
    """A provider: its key, devices and the stream the queen holds for it."""

    def __init__(self, *devices: DeviceInfo, ask: str = "0") -> None:
        self.identity = NodeIdentity.generate()
        self.devices = devices or (cpu(),)
        self.link = FakeLink()
        self.ask = ask

    @property
    def address(self) -> Address:
        return self.identity.address

    def join(self, core: QueenCore) -> None:
        self.link = FakeLink()
        nonce = core.admission.new_nonce()
        sig = self.identity.sign_admission(core.address, nonce)
        core.admit(hello(self.address, *self.devices), nonce, sig, self.link, ask_per_gpu_hour=self.ask)

    def starts(self) -> list[JobStartOut]:
        return self.link.of(JobStartOut)

    def stops(self) -> list[JobStopOut]:
        return self.link.of(JobStopOut)


class Events:
    """The core's job events for the king, in order."""

    def __init__(self, core: QueenCore) -> None:
        self.seen: list[JobEvent] = []
        core.job_listeners.append(self.seen.append)

    def kinds(self) -> list[tuple[int, str]]:
        return [(e.seq, e.kind) for e in self.seen]


def make_core(store: MemoryStore | None = None, clock: ManualClock | None = None) -> QueenCore:
    core = QueenCore(QUEEN.address, CFG, store or MemoryStore(), clock or ManualClock(), OpenOracle(),
                     rng=random.Random(3))
    core.start()
    return core


def clock_of(core: QueenCore) -> ManualClock:
    assert isinstance(core.clock, ManualClock)
    return core.clock


def assignment(node: Node, job: str = "job-1", attempt: int = 1, gpus: int = 1, **kw: Any) -> Assignment:
    base: dict[str, Any] = {"job_id": job, "attempt": attempt, "provider": node.address.lower(), "gpus": gpus,
                            "rental_id": b"\x01" * 32, "deadline_unix": 0.0, "ciphertext": b"ct",
                            "sealed_key": b"sk", "aad": "req-0001"}
    return Assignment(**{**base, **kw})


def update(seq: int, kind: str, job: str = "job-1", attempt: int = 1, **kw: Any) -> JobEvent:
    return JobEvent(job, attempt, seq, kind, **kw)


# --- the job book --------------------------------------------------------------------------------------


def test_an_assignment_starts_once_and_a_repeat_reports_the_current_state() -> None:
    core, node = make_core(), Node(gpu(0, "t4"), gpu(1, "t4"))
    events = Events(core)
    node.join(core)
    core.assign(assignment(node, gpus=2))
    [start] = node.starts()
    assert start.assignment.provider == node.address  # checksummed for the provider
    assert (start.assignment.ciphertext, start.assignment.sealed_key, start.assignment.aad) == (b"ct", b"sk",
                                                                                               "req-0001")
    assert core.jobs.busy_gpus(node.address) == 2
    # Not answered yet: the start may have died with an earlier stream, so a repeat re-sends it.
    core.assign(assignment(node, gpus=2))
    assert len(node.starts()) == 2
    core.job_update(node.address, update(1, "accepted"))
    core.job_update(node.address, update(2, "running"))
    assert events.kinds() == [(1, "accepted"), (2, "running")]
    core.assign(assignment(node, gpus=2))
    assert len(node.starts()) == 2  # answered, never started again
    assert events.kinds()[-1] == (2, "running")  # the current state, reported again
    stored = core.store.get(NS_JOBS, job_key("job-1", 1))
    assert stored is not None and stored["state"] == "running" and stored["provider"] == node.address


def test_updates_are_relayed_in_order_and_duplicates_dropped() -> None:
    core, node = make_core(), Node()
    events = Events(core)
    node.join(core)
    core.assign(assignment(node))
    for ev in [update(1, "accepted"), update(2, "running"), update(3, "log", message="hello"),
               update(2, "running"), update(3, "log", message="hello"), update(4, "progress", progress=0.5),
               update(5, "bogus"), update(5, "succeeded", exit_code=0)]:
        core.job_update(node.address, ev)
    assert events.kinds() == [(1, "accepted"), (2, "running"), (3, "log"), (4, "progress"), (5, "succeeded")]
    assert events.seen[2].message == "hello" and events.seen[3].progress == 0.5
    assert core.jobs.busy_gpus(node.address) == 0
    # After the final state nothing more is relayed for the attempt.
    core.job_update(node.address, update(6, "log", message="late"))
    assert len(events.seen) == 5


def test_an_assignment_for_a_provider_without_a_stream_is_lost_at_once() -> None:
    core, node = make_core(), Node()
    events = Events(core)
    core.assign(assignment(node))
    [lost] = events.seen
    assert (lost.seq, lost.kind) == (1, "lost")
    assert lost.message == f"provider {node.address} is not connected to this queen"
    core.assign(assignment(node))
    assert events.seen == [lost, lost]
    node.join(core)
    core.assign(assignment(node))
    assert node.starts() == []  # the attempt is over; the king moves the job with a new attempt


@pytest.mark.parametrize(("changes", "why"), [
    ({"gpus": 0}, "gpus >= 1"),
    ({"provider": "not-an-address"}, "not an Ethereum address"),
])
def test_a_malformed_assignment_is_answered_failed(changes: dict[str, Any], why: str) -> None:
    core, node = make_core(), Node()
    events = Events(core)
    node.join(core)
    core.assign(assignment(node, **changes))
    [ev] = events.seen
    assert ev.kind == "failed" and why in ev.message and ev.message.startswith("invalid assignment")
    assert node.starts() == []


def test_a_dead_provider_loses_its_jobs_after_the_liveness_timeout() -> None:
    core, node = make_core(), Node()
    events = Events(core)
    node.join(core)
    core.assign(assignment(node, job="a"))
    core.assign(assignment(node, job="b"))
    core.job_update(node.address, update(1, "accepted", job="a"))
    core.job_update(node.address, update(2, "running", job="a"))
    core.detach(node.address, node.link)
    clock = clock_of(core)
    clock.advance(CFG.suspect_after_s + 1)
    core.tick()
    assert [e.kind for e in events.seen] == ["accepted", "running"]  # suspect: it may still come back
    clock.advance(CFG.dead_after_s)
    core.tick()
    lost = {e.job_id: e for e in events.seen if e.kind == "lost"}
    assert (lost["a"].seq, lost["b"].seq) == (3, 1)
    assert "went away" in lost["a"].message
    assert core.jobs.busy_gpus(node.address) == 0
    # Back after being declared lost, still running it: told to stop.
    node.join(core)
    core.job_update(node.address, update(3, "log", job="a"))
    assert [(s.job_id, s.reason) for s in node.stops()] == [("a", "the queen declared this job lost")]
    assert [e.kind for e in events.seen].count("log") == 0


def test_a_provider_back_within_the_liveness_timeout_keeps_its_jobs() -> None:
    core, node = make_core(), Node()
    events = Events(core)
    node.join(core)
    core.assign(assignment(node))
    core.job_update(node.address, update(1, "accepted"))
    core.detach(node.address, node.link)
    clock_of(core).advance(CFG.suspect_after_s + 1)
    core.tick()
    node.join(core)
    clock_of(core).advance(CFG.dead_after_s)
    core.heartbeat(node.address)
    core.tick()
    core.job_update(node.address, update(1, "accepted"))  # the provider re-reports its jobs
    core.job_update(node.address, update(2, "running"))
    assert events.kinds() == [(1, "accepted"), (2, "running")]


def test_a_stop_reaches_the_provider_now_or_when_it_is_back() -> None:
    core, node = make_core(), Node()
    events = Events(core)
    node.join(core)
    core.assign(assignment(node, job="a"))
    core.assign(assignment(node, job="b"))
    core.stop_job("a", 1, "renter cancelled")
    assert [(s.job_id, s.attempt, s.reason) for s in node.stops()] == [("a", 1, "renter cancelled")]
    core.detach(node.address, node.link)
    core.stop_job("b", 1, "")
    node.join(core)
    # Both again on the new stream: "a" has not confirmed, so its stop may have died with the old one.
    assert [(s.job_id, s.reason) for s in node.stops()] == [("a", "renter cancelled"), ("b", "stopped by the king")]
    core.job_update(node.address, update(1, "stopped", job="b"))
    core.stop_job("b", 1, "again")  # finished: its final state is reported again
    assert events.kinds()[-2:] == [(1, "stopped"), (1, "stopped")]
    core.stop_job("nope", 1, "x")  # unknown: nothing to do
    assert len(node.stops()) == 2


def test_updates_for_jobs_not_assigned_to_the_provider_are_refused() -> None:
    core, node, other = make_core(), Node(), Node()
    events = Events(core)
    node.join(core)
    other.join(core)
    core.assign(assignment(node))
    core.job_update(other.address, update(1, "running"))  # another provider's job
    core.job_update(other.address, update(1, "running", job="foreign"))  # failed over from another queen
    core.job_update(other.address, update(2, "succeeded", job="foreign"))
    assert events.seen == []
    assert [(s.job_id, s.reason) for s in other.stops()] == [("job-1", "not assigned through this queen"),
                                                             ("foreign", "not assigned through this queen")]


def test_a_job_without_a_final_state_by_its_deadline_is_lost() -> None:
    core, node = make_core(), Node()
    events = Events(core)
    node.join(core)
    now = core.clock.time()
    core.assign(assignment(node, deadline_unix=now + 10))
    core.job_update(node.address, update(1, "running"))
    clock_of(core).advance(10 + CFG.dead_after_s - 1)
    core.heartbeat(node.address)
    core.tick()
    assert events.kinds() == [(1, "running")]
    clock_of(core).advance(2)
    core.heartbeat(node.address)
    core.tick()
    assert events.kinds()[-1] == (2, "lost")
    assert "by the job's deadline" in events.seen[-1].message


def test_a_restarted_queen_answers_repeats_and_replays_unreported_finals() -> None:
    store, clock = MemoryStore(), ManualClock()
    core, node = make_core(store, clock), Node()
    node.join(core)
    core.assign(assignment(node, job="open"))
    core.assign(assignment(node, job="done"))
    core.job_update(node.address, update(1, "running", job="open"))
    for seq in range(2, 12):
        core.job_update(node.address, update(seq, "log", job="open"))  # not persisted until a flush
    core.job_update(node.address, update(1, "succeeded", job="done"))
    assert [e.job_id for e in core.jobs.replay()] == ["open", "done"]
    core.jobs.sent(update(1, "succeeded", job="done"))
    assert [e.job_id for e in core.jobs.replay()] == ["open"]

    again = make_core(store, clock)  # the queen restarts (without a clean shutdown)
    events = Events(again)
    assert [(e.job_id, e.seq, e.kind) for e in again.jobs.replay()] == [("open", 1, "running")]
    assert again.jobs.busy_gpus(node.address) == 1
    again.assign(assignment(node, job="open"))
    assert events.kinds() == [(1, "running")]
    # Logs after its last write may have reached the king: "lost" jumps past them.
    clock.advance(CFG.dead_after_s + 1)
    again.tick()
    assert events.kinds()[-1] == (1 + 1 + MAX_UNPERSISTED, "lost")


def test_logs_are_persisted_by_the_flush_and_every_max_unpersisted() -> None:
    store = MemoryStore()
    core, node = make_core(store), Node()
    node.join(core)
    core.assign(assignment(node))
    for seq in range(1, MAX_UNPERSISTED + 3):
        core.job_update(node.address, update(seq, "log"))
    value = store.get(NS_JOBS, job_key("job-1", 1))
    assert value is not None and value["last_seq"] == MAX_UNPERSISTED
    assert core.jobs.flush() == 1
    value = store.get(NS_JOBS, job_key("job-1", 1))
    assert value is not None and value["last_seq"] == MAX_UNPERSISTED + 2
    assert core.jobs.flush() == 0


def test_admission_keeps_the_public_key_and_the_ask() -> None:
    core, node = make_core(), Node(ask="1500000000000000000")
    node.join(core)
    rec = core.pool.get(node.address)
    assert rec is not None
    pub = bytes.fromhex(rec.public_key)
    assert len(pub) == 64 and to_checksum_address(keccak(pub)[-20:]) == node.address
    assert rec.ask_per_gpu_hour == "1500000000000000000"


@pytest.mark.parametrize(("text", "expected"), [("", "0"), ("007", "7"), ("10" * 30, "10" * 30)])
def test_asks_are_whole_numbers_of_wei(text: str, expected: str) -> None:
    assert QueenCore.check_ask(text) == expected


@pytest.mark.parametrize("text", ["-1", "1.5", "0x10", "1e18", "١", "9" * 79])
def test_malformed_asks_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="whole number of wei"):
        QueenCore.check_ask(text)


# --- the registration text -----------------------------------------------------------------------------


def test_the_registration_text_names_queen_king_time_and_endpoint() -> None:
    text = queen_registration_text(QUEEN.address.lower(), "", 1700000000, "queen.example:7470")
    assert text == ("BlendrChain queen registration\n"
                    f"queen: {QUEEN.address}\nking: any\ntimestamp: 1700000000\nendpoint: queen.example:7470")
    assert f"king: {KING.address}\n" in queen_registration_text(QUEEN.address, KING.address.lower(), 1, "")
    with pytest.raises(InvalidArgumentError, match="one line"):
        queen_registration_text(QUEEN.address, "", 1, "a:1\nking: 0x00")


def test_a_registration_signed_for_one_king_does_not_verify_for_another() -> None:
    from blendr.rpc.registration import sign_queen_registration

    sig = sign_queen_registration(QUEEN.account(), KING.address, 17, "q:1")
    assert recover_queen_registration(QUEEN.address, KING.address, 17, "q:1", sig) == QUEEN.address
    with pytest.raises(SignatureError):
        recover_queen_registration(QUEEN.address, "", 17, "q:1", sig)
    with pytest.raises(SignatureError):
        recover_queen_registration(QUEEN.address, KING.address, 18, "q:1", sig)
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_queen_registration(QUEEN.address, KING.address, 17, "q:1", sig[:64])


# --- the king link over a fake stream ------------------------------------------------------------------


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class FakeCall:
    """One QueenSession stream as the queen's client sees it; the test plays the king."""

    def __init__(self, *, register: bool = True) -> None:
        self.written: list[kpb.QueenToKing] = []
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = False
        if register:
            self.inbox.put_nowait(kpb.KingToQueen(registered=kpb.QueenRegistered(king_address=KING.address,
                                                                                snapshot_interval_s=0)))

    async def write(self, msg: kpb.QueenToKing) -> None:
        if self.cancelled:
            raise asyncio.InvalidStateError("RPC already finished")
        self.written.append(msg)
        await asyncio.sleep(0)

    async def read(self) -> Any:
        item = await self.inbox.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        self.cancelled = True

    async def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.OK

    async def details(self) -> str:
        return ""

    def of(self, kind: str) -> list[Any]:
        return [getattr(m, kind) for m in self.written if m.WhichOneof("body") == kind]


class FakeKing:
    """Hands out the prepared calls in order (a fresh registered one when they run out)."""

    def __init__(self, *calls: FakeCall) -> None:
        self.pending = list(calls)
        self.calls: list[FakeCall] = []

    def QueenSession(self) -> FakeCall:
        call = self.pending.pop(0) if self.pending else FakeCall()
        self.calls.append(call)
        return call


def make_link(core: QueenCore, king: FakeKing, **relay: Any) -> KingLink:
    cfg = RelayConfig(**{"retry_initial_s": 0.01, "retry_max_s": 0.05, "snapshot_interval_s": 30.0, **relay})
    return KingLink(core, QUEEN.account(), cfg, stub=lambda: king, clock=core.clock, endpoint="127.0.0.1:7470",
                    call_timeout_s=2.0)


async def until(pred: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := pred()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
    return value


@contextlib.asynccontextmanager
async def running(link: KingLink) -> Any:
    task = asyncio.create_task(link.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_link_registers_then_sends_a_snapshot_at_once() -> None:
    core, node = make_core(), Node(gpu(0, "t4"), gpu(1, "t4", memory_bytes=15 * 2**30), ask="7")
    node.join(core)
    king = FakeKing()
    link = make_link(core, king, king_address=KING.address)
    async with running(link):
        call = await until(lambda: king.calls and king.calls[0].of("snapshot") and king.calls[0], "a snapshot")
        [reg] = call.of("registration")
        assert (reg.queen_address, reg.king_address, reg.endpoint) == (QUEEN.address, KING.address, "127.0.0.1:7470")
        assert reg.timestamp == int(core.clock.time())
        assert recover_queen_registration(reg.queen_address, reg.king_address, reg.timestamp, reg.endpoint,
                                          bytes(reg.signature)) == QUEEN.address
        assert call.written[0].WhichOneof("body") == "registration"
        [snap] = call.of("snapshot")
        [p] = snap.providers
        assert (p.address, p.gpu_model, p.gpus, p.vram_bytes, p.ask_per_gpu_hour, p.alive, p.busy_gpus) == (
            node.address, "t4", 2, 15 * 2**30, "7", True, 0)
        assert to_checksum_address(keccak(bytes(p.public_key))[-20:]) == node.address
        assert p.uptime == 1.0 and p.tflops == 0.0
        assert link.status.connected and link.status.king_address == KING.address
        # A job changes the load, a provider leaving changes liveness: each sends a fresh snapshot.
        core.assign(assignment(node, gpus=2))
        await until(lambda: len(call.of("snapshot")) >= 2, "a snapshot after the assignment")
        assert call.of("snapshot")[-1].providers[0].busy_gpus == 2
        core.detach(node.address, node.link)
        clock_of(core).advance(CFG.dead_after_s + 1)
        core.tick()
        await until(lambda: not call.of("snapshot")[-1].providers[0].alive, "a snapshot with the dead provider")
        seqs = [s.seq for s in call.of("snapshot")]
        assert seqs == sorted(set(seqs)) and seqs[0] >= int(core.clock.time() * 1000) - 100_000


async def test_a_registration_without_a_king_address_signs_for_any_king() -> None:
    king = FakeKing()
    link = make_link(make_core(), king)
    async with running(link):
        call = await until(lambda: king.calls and king.calls[0].of("registration") and king.calls[0], "registration")
        [reg] = call.of("registration")
        assert reg.king_address == ""
        assert "king: any" in queen_registration_text(reg.queen_address, "", reg.timestamp, reg.endpoint)
        recover_queen_registration(reg.queen_address, "", reg.timestamp, reg.endpoint, bytes(reg.signature))


async def test_assignments_and_stops_from_the_king_reach_the_provider() -> None:
    core, node = make_core(), Node()
    node.join(core)
    first = FakeCall()
    link = make_link(core, FakeKing(first))
    async with running(link):
        first.inbox.put_nowait(kpb.KingToQueen(assign=kpb.JobAssignment(
            job_id="j", attempt=2, provider=node.address, gpus=1, rental_id=b"\x02" * 32, deadline_unix=0,
            ciphertext=b"c", sealed_key=b"k", aad="a")))
        await until(node.starts, "the job start")
        first.inbox.put_nowait(kpb.KingToQueen(stop=kpb.JobStop(job_id="j", attempt=2, reason="cancelled")))
        await until(node.stops, "the job stop")
        assert [(s.job_id, s.attempt, s.reason) for s in node.stops()] == [("j", 2, "cancelled")]
        core.job_update(node.address, update(1, "accepted", job="j", attempt=2))
        core.job_update(node.address, update(2, "stopped", job="j", attempt=2, message="cancelled"))
        events = await until(lambda: len(first.of("job_event")) >= 2 and first.of("job_event"), "the events")
        assert [(e.job_id, e.attempt, e.seq, e.kind) for e in events] == [("j", 2, 1, "accepted"), ("j", 2, 2, "stopped")]
        record = core.jobs.get("j", 2)
        assert record is not None and record.final_sent


async def test_events_made_while_the_king_is_away_are_sent_in_order_after_the_reconnect() -> None:
    core, node = make_core(), Node()
    node.join(core)
    refused = FakeCall(register=False)
    refused.inbox.put_nowait(rpc_error(grpc.StatusCode.UNAVAILABLE, "king down"))
    up = FakeCall()
    king = FakeKing(refused, up)
    link = make_link(core, king)
    core.assign(assignment(node))
    for seq, kind in enumerate(["accepted", "running", "log", "log", "succeeded"], start=1):
        core.job_update(node.address, update(seq, kind))
    assert link.pending_events == 5
    async with running(link):
        await until(lambda: len(up.of("job_event")) >= 5, "the buffered events")
        assert [e.seq for e in up.of("job_event")] == [1, 2, 3, 4, 5]
        assert link.status.last_error == "" and link.status.sessions == 1
        # The buffer drops an event once its write returns, which may be just after the king has read it.
        await until(lambda: link.pending_events == 0, "the buffer drained")


async def test_the_tail_written_before_a_break_is_sent_again() -> None:
    core, node = make_core(), Node()
    node.join(core)
    first, second = FakeCall(), FakeCall()
    link = make_link(core, FakeKing(first, second))
    core.assign(assignment(node))
    async with running(link):
        core.job_update(node.address, update(1, "accepted"))
        core.job_update(node.address, update(2, "running"))
        await until(lambda: len(first.of("job_event")) == 2, "two events")
        first.inbox.put_nowait(rpc_error(grpc.StatusCode.UNAVAILABLE, "connection reset"))
        await until(lambda: second.of("snapshot"), "the second session")
        core.job_update(node.address, update(3, "succeeded"))
        await until(lambda: len(second.of("job_event")) >= 3, "the events again")
        # Resent first (the king ignores what it has seen), then the new one: per job, seq never goes back.
        assert [e.seq for e in second.of("job_event")] == [1, 2, 3]


async def test_a_refusing_king_is_redialled_with_bounded_backoff() -> None:
    calls = []
    for _ in range(4):
        c = FakeCall(register=False)
        c.inbox.put_nowait(rpc_error(grpc.StatusCode.PERMISSION_DENIED, "queen not staked"))
        calls.append(c)
    king = FakeKing(*calls)
    link = make_link(make_core(), king)
    async with running(link):
        await until(lambda: len(king.calls) >= 5 and link.status.connected, "a later session")
    assert all(c.cancelled for c in king.calls[:4])
    delays = [link.backoff(n) for n in range(1, 40)]
    assert all(0.01 <= d <= 0.05 for d in delays) and delays[-1] == 0.05


def test_a_full_buffer_drops_the_oldest_logs_first() -> None:
    core = make_core()
    link = make_link(core, FakeKing(), king_event_buffer=3)
    for ev in [update(1, "accepted"), update(2, "log"), update(3, "progress"), update(4, "log"), update(5, "failed")]:
        link.enqueue(ev)
    assert [e.seq for e in link._buffer] == [1, 4, 5]
    assert link.status.events_dropped == 2
    for seq in (6, 7):
        link.enqueue(update(seq, "running", job="x"))
    assert [e.seq for e in link._buffer] == [5, 6, 7]  # only state events left: the oldest goes


@pytest.mark.parametrize(("relay", "match"), [
    ({"snapshot_interval_s": 0.0}, "snapshot_interval_s"),
    ({"king_event_buffer": 0}, "king_event_buffer"),
    ({"king_address": "king"}, "king_address"),
])
def test_bad_link_settings_are_config_errors(relay: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_link(make_core(), FakeKing(), **relay)


async def test_a_burst_of_pool_changes_costs_a_few_snapshots() -> None:
    king = FakeKing()
    link = make_link(make_core(), king)
    async with running(link):
        call = await until(lambda: king.calls and king.calls[0].of("snapshot") and king.calls[0], "a snapshot")
        for _ in range(200):
            link.pool_changed()
            await asyncio.sleep(0)  # the writer runs between changes, yet waits out the gap
        await until(lambda: len(call.of("snapshot")) >= 2, "a snapshot after the burst")
        await asyncio.sleep(0.3)
        assert len(call.of("snapshot")) == 2


# --- the network view's reports -------------------------------------------------------------------------------


def outcome(verdict: Verdict, cid: str, issued: float, reason: str = "") -> Outcome:
    return Outcome(verdict, reason, 1.0, 1.0, {"challenge_id": cid, "issued": issued, "decided": issued + 2.0})


async def test_verdicts_and_landed_batches_go_to_the_king_bounded_per_message() -> None:
    core, node = make_core(), Node()
    node.join(core)
    king = FakeKing()
    link = make_link(core, king, king_address=KING.address)
    rid = 0x1234
    link.rental_of = lambda addr, issued: rid if issued >= 100.0 else None
    async with running(link):
        call = await until(lambda: king.calls and king.calls[0].of("snapshot") and king.calls[0], "a snapshot")
        for i in range(250):
            link.on_outcome(node.address, outcome(Verdict.PASSED if i % 2 else Verdict.FAILED, f"c{i}", 50.0 + i,
                                                  "late" * 100))
        link.on_outcome(node.address, outcome(Verdict.MISSED, "", 10.0))  # no challenge id: not reported
        ids = [f"r{i}" for i in range(4500)]
        await asyncio.to_thread(link.batch_landed, "0x" + "ab" * 32, "0x" + "cd" * 32, [(rid, ids), (7, ["c1"])])
        await until(lambda: sum(len(m.rentals) for m in call.of("batch_landed")) >= 4, "the batch reports")
        sent = [v for m in call.of("verdicts") for v in m.verdicts]
        assert [len(m.verdicts) for m in call.of("verdicts")] == [200, 50]
        assert [v.challenge_id for v in sent] == [f"c{i}" for i in range(250)]
        assert sent[0].verdict == "failed" and len(sent[0].reason) == 200 and sent[0].rental_id == b""
        assert sent[1].verdict == "passed" and sent[1].decided_unix == sent[1].issued_unix + 2.0
        assert sent[60].rental_id == rid.to_bytes(32, "big")  # issued at 110: inside the rental
        reports = call.of("batch_landed")
        assert all(sum(len(r.challenge_ids) for r in m.rentals) <= 2000 for m in reports)
        assert [cid for m in reports for r in m.rentals if r.rental_id == rid.to_bytes(32, "big")
                for cid in r.challenge_ids] == ids
        assert {(m.batch_id, m.tx) for m in reports} == {("0x" + "ab" * 32, "0x" + "cd" * 32)}
        assert link.status.verdicts_sent == 250


async def test_a_verdict_never_reaches_the_king_before_a_snapshot_listing_its_provider(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider's first challenge is decided moments after it joins, inside the gap between snapshots; the king
    refuses verdicts for providers it does not know in the queen's pool, so the snapshot goes first."""
    import queen.kinglink as kl

    monkeypatch.setattr(kl, "CHANGE_GAP_S", 60.0)  # the join's snapshot would otherwise wait a whole minute
    core, node = make_core(), Node()
    king = FakeKing()
    link = make_link(core, king, king_address=KING.address)
    async with running(link):
        call = await until(lambda: king.calls and king.calls[0].of("snapshot") and king.calls[0], "a snapshot")
        assert not call.of("snapshot")[0].providers
        node.join(core)
        link.on_outcome(node.address, outcome(Verdict.PASSED, "c1", core.clock.time() - 3))
        await until(lambda: call.of("verdicts"), "the verdict sent")
        kinds = [(m.WhichOneof("body"), [p.address for p in m.snapshot.providers]) for m in call.written]
        first_verdict = next(i for i, (k, _) in enumerate(kinds) if k == "verdicts")
        assert any(k == "snapshot" and node.address in listed for k, listed in kinds[:first_verdict]), kinds
