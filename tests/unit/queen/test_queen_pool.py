"""The pool registry: admission, liveness (alive -> suspect -> dead), persistence and statistics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from _queen_fakes import ADDR_A, ADDR_B, cpu, gpu, hello

from blendr.clock import ManualClock
from blendr.identity import Address
from blendr.store import MemoryStore, SQLiteStore, Store
from blendr.store.base import Op
from blendr.types import ProviderState, RayInfo, Verdict
from queen.pool import NS_PROVIDERS, Pool, ProviderRecord, Transition

SUSPECT, DEAD = 15.0, 45.0


class CountingStore(MemoryStore):
    """A MemoryStore that records every write (single puts and batches)."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []
        self.batches: list[tuple[Op, ...]] = []

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        self.puts.append(key)
        super().put(ns, key, value)

    def _apply(self, ops: tuple[Op, ...]) -> None:
        self.batches.append(ops)
        super()._apply(ops)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def stored(store: Store, address: str = ADDR_A) -> dict[str, Any]:
    value = store.get(NS_PROVIDERS, address)
    assert value is not None
    return value


def record(pool: Pool, address: Address = ADDR_A) -> ProviderRecord:
    rec = pool.get(address)
    assert rec is not None
    return rec


def make_pool(store: Store, clock: ManualClock) -> Pool:
    return Pool(store, clock, suspect_after_s=SUSPECT, dead_after_s=DEAD)


@pytest.mark.parametrize(("suspect", "dead"), [(0.0, 10.0), (10.0, 10.0), (20.0, 10.0), (-1.0, 5.0)])
def test_bounds_must_be_ordered(suspect: float, dead: float) -> None:
    with pytest.raises(ValueError, match="0 < suspect_after_s < dead_after_s"):
        Pool(MemoryStore(), ManualClock(), suspect_after_s=suspect, dead_after_s=dead)


def test_admit_registers_an_alive_connected_provider(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    rec, resumed = pool.admit(hello(ADDR_A, gpu(0), gpu(1)))
    assert resumed is False
    assert rec.state is ProviderState.ALIVE
    assert [d.index for d in rec.devices] == [0, 1]
    assert rec.admitted_at == rec.last_seen == rec.connected_since == clock.time()
    assert pool.is_connected(ADDR_A)
    assert pool.get(ADDR_A) is rec
    # Admission is written through at once.
    assert ProviderRecord.from_dict(stored(store)) == rec


def test_admit_again_resumes_and_updates_devices(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    first, _ = pool.admit(hello(ADDR_A, cpu()))
    admitted_at = first.admitted_at
    clock.advance(10)
    rec, resumed = pool.admit(hello(ADDR_A, gpu(0), version="v2"))
    assert resumed is True
    assert rec is first
    assert rec.admitted_at == admitted_at
    assert rec.last_seen == clock.time()
    assert [d.model for d in rec.devices] == ["h100-sxm"]
    assert rec.software_version == "v2"
    # The replaced connection's time is banked, the new one starts now.
    assert rec.connected_seconds == 10.0
    assert rec.connected_since == clock.time()


def test_heartbeat_of_unknown_provider_is_ignored(store: Store, clock: ManualClock) -> None:
    assert make_pool(store, clock).heartbeat(ADDR_A) is None


def test_sweep_moves_alive_to_suspect_then_dead_at_the_bounds(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    pool.admit(hello(ADDR_A))
    clock.advance(SUSPECT)
    assert pool.sweep() == []  # exactly at the bound: not yet
    clock.advance(0.001)
    assert pool.sweep() == [Transition(ADDR_A, ProviderState.ALIVE, ProviderState.SUSPECT)]
    assert pool.sweep() == []  # reported once
    clock.advance(DEAD - SUSPECT - 0.001)
    assert pool.sweep() == []
    clock.advance(0.001)
    assert pool.sweep() == [Transition(ADDR_A, ProviderState.SUSPECT, ProviderState.DEAD)]
    assert pool.sweep() == []
    assert stored(store)["state"] == "dead"


def test_alive_goes_straight_to_dead_after_a_long_silence(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    pool.admit(hello(ADDR_A))
    clock.advance(DEAD + 1)
    assert pool.sweep() == [Transition(ADDR_A, ProviderState.ALIVE, ProviderState.DEAD)]


def test_heartbeats_keep_a_provider_alive(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    pool.admit(hello(ADDR_A))
    for _ in range(10):
        clock.advance(SUSPECT - 1)
        assert pool.heartbeat(ADDR_A) is None
        assert pool.sweep() == []
    assert record(pool).state is ProviderState.ALIVE


def test_suspect_becomes_alive_on_heartbeat_while_connected(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    pool.admit(hello(ADDR_A))
    clock.advance(SUSPECT + 1)
    pool.sweep()
    assert pool.heartbeat(ADDR_A) == Transition(ADDR_A, ProviderState.SUSPECT, ProviderState.ALIVE)
    assert stored(store)["state"] == "alive"
    clock.advance(SUSPECT)
    assert pool.sweep() == []  # the heartbeat reset the silence


def test_disconnected_suspect_stays_suspect_on_heartbeat(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    pool.admit(hello(ADDR_A))
    pool.disconnected(ADDR_A)
    assert not pool.is_connected(ADDR_A)
    clock.advance(SUSPECT + 1)
    pool.sweep()
    assert pool.heartbeat(ADDR_A) is None
    assert record(pool).state is ProviderState.SUSPECT


def test_disconnected_banks_connected_time(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    rec, _ = pool.admit(hello(ADDR_A))
    clock.advance(7)
    assert pool.connected_seconds(rec) == 7.0
    pool.disconnected(ADDR_A)
    clock.advance(100)
    assert rec.connected_since is None
    assert pool.connected_seconds(rec) == 7.0
    assert stored(store)["connected_seconds"] == 7.0
    pool.disconnected(ADDR_B)  # unknown: no error


def test_heartbeats_are_written_only_on_flush_as_one_document() -> None:
    from queen.pool import NS_SEEN, SEEN_KEY

    store, clock = CountingStore(), ManualClock()
    pool = make_pool(store, clock)
    pool.admit(hello(ADDR_A))
    pool.admit(hello(ADDR_B))
    assert store.puts == [ADDR_A, ADDR_B]
    assert pool.flush() == 0
    assert store.puts == [ADDR_A, ADDR_B]
    clock.advance(3)
    pool.heartbeat(ADDR_A)
    pool.heartbeat(ADDR_A)
    assert store.puts == [ADDR_A, ADDR_B]
    assert stored(store)["last_seen"] == clock.time() - 3
    assert pool.flush() == 2  # one document with both providers' times
    assert store.puts == [ADDR_A, ADDR_B, SEEN_KEY]
    seen = store.get(NS_SEEN, SEEN_KEY)
    assert seen == {ADDR_A: clock.time(), ADDR_B: clock.time() - 3}
    assert pool.flush() == 0
    assert store.puts == [ADDR_A, ADDR_B, SEEN_KEY]


def test_restart_brings_records_back_as_suspect_then_dead(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    pool.admit(hello(ADDR_A, gpu(0), gpu(1, "t4")))
    pool.admit(hello(ADDR_B))
    pool.record_issued(ADDR_A, {"challenge_id": "c1"})
    pool.record_verdict(
        ADDR_A, Verdict.PASSED, {"challenge_id": "c1"}, measured_tflops=60.0, fingerprint_tflops=37.55
    )
    pool.disconnected(ADDR_B)
    clock.advance(DEAD + 1)
    pool.sweep()  # B (and A) dead before the restart
    pool.heartbeat(ADDR_A)  # A is connected: alive again, its last heartbeat only in memory
    assert record(pool).state is ProviderState.ALIVE
    pool.flush()

    clock.advance(1000)  # the queen is down for a while
    restarted = make_pool(store, clock)
    assert restarted.load() == 2
    a, b = restarted.get(ADDR_A), restarted.get(ADDR_B)
    assert a is not None and b is not None
    assert (a.state, b.state) == (ProviderState.SUSPECT, ProviderState.DEAD)
    assert [d.model for d in a.devices] == ["h100-sxm", "t4"]
    assert (a.issued, a.passed, a.measured_tflops, a.fingerprint_tflops) == (1, 1, 60.0, 37.55)
    assert a.ray == RayInfo(ray_version="2.50.0")
    assert a.connected_since is None
    assert not restarted.is_connected(ADDR_A)
    assert stored(store)["state"] == "suspect"
    # Silence counts from the restart, not from before it.
    clock.advance(DEAD)
    assert restarted.sweep() == []
    clock.advance(1)
    assert restarted.sweep() == [Transition(ADDR_A, ProviderState.SUSPECT, ProviderState.DEAD)]
    # A provider that comes back is resumed.
    rec, resumed = restarted.admit(hello(ADDR_A, gpu(0)))
    assert resumed is True
    assert rec.state is ProviderState.ALIVE
    assert rec.passed == 1


def test_counts_by_state(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    assert pool.counts_by_state() == dict.fromkeys(ProviderState, 0)
    pool.admit(hello(ADDR_A))
    clock.advance(SUSPECT + 1)
    pool.admit(hello(ADDR_B))
    pool.sweep()
    assert pool.counts_by_state() == {ProviderState.ALIVE: 1, ProviderState.SUSPECT: 1, ProviderState.DEAD: 0}
    assert [r.address for r in pool.all()] == sorted([ADDR_A, ADDR_B])


def test_verdicts_count_and_uptime_is_passed_over_decided(store: Store, clock: ManualClock) -> None:
    pool = make_pool(store, clock)
    rec, _ = pool.admit(hello(ADDR_A))
    assert rec.uptime == 1.0  # nothing decided yet
    for _ in range(4):
        pool.record_issued(ADDR_A, {"challenge_id": "x"})
    pool.record_verdict(ADDR_A, Verdict.PASSED, {"n": 1}, measured_tflops=0.1)
    pool.record_verdict(ADDR_A, Verdict.FAILED, {"n": 2}, measured_tflops=0.0)
    pool.record_verdict(ADDR_A, Verdict.MISSED, {"n": 3})
    pool.record_verdict(ADDR_A, Verdict.MISSED, {"n": 4})
    assert (rec.issued, rec.passed, rec.failed, rec.missed) == (4, 1, 1, 2)
    assert rec.answered == 2
    assert rec.uptime == 0.25  # only passed challenges prove availability
    assert rec.measured_tflops == 0.1  # a zero measurement does not erase the last one
    assert rec.last_challenge == {"n": 4}
    stored = store.get(NS_PROVIDERS, ADDR_A)
    assert stored is not None
    assert (stored["passed"], stored["failed"], stored["missed"], stored["issued"]) == (1, 1, 2, 4)
    # Unknown providers are ignored.
    pool.record_verdict(ADDR_B, Verdict.PASSED, {})
    pool.record_issued(ADDR_B, {})
    assert pool.get(ADDR_B) is None


def test_record_round_trips_through_dict() -> None:
    pool = make_pool(MemoryStore(), ManualClock())
    rec, _ = pool.admit(hello(ADDR_A, gpu(0), gpu(1, "a100-80gb")))
    rec.last_challenge = {"challenge_id": "c", "verdict": "passed"}
    d = rec.to_dict()
    assert "last_seen_mono" not in d
    assert d["state"] == "alive"
    assert d["devices"][1]["kind"] == "gpu"
    assert ProviderRecord.from_dict(d) == rec
