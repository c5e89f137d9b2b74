"""king.ha: the leader lease decides who leads, a lapsed leader is fenced from the store and the chains, and a
king steps down when another one takes the lease. Against the in-memory and SQLite stores (PostgreSQL: the
store conformance suite and tests/e2e/test_kings.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from blendr.errors import FencedError
from blendr.store import MemoryStore, SQLiteStore, Store
from king.ha import LEASE, Leadership, LeaseConfig


class Recorder:
    def __init__(self) -> None:
        self.led: list[int] = []
        self.followed: list[str] = []

    async def lead(self, epoch: int) -> None:
        self.led.append(epoch)

    async def follow(self, why: str) -> None:
        self.followed.append(why)


def king(store: Store, name: str, rec: Recorder, ttl: float = 5.0) -> Leadership:
    return Leadership(store, name, f"{name}:7480", LeaseConfig(ttl_s=ttl, renew_s=ttl / 5), rec.lead, rec.follow)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")


async def test_one_king_leads_and_the_other_follows_it(store: Store) -> None:
    ra, rb = Recorder(), Recorder()
    a, b = king(store, "a", ra), king(store, "b", rb)
    await a.step()
    await a.started()
    await b.step()
    assert ra.led == [1] and rb.led == [] and a.leading and not b.leading
    assert b.leader_address == "a:7480" and b.leader_epoch == 1
    a.guard()  # a may act on chain
    with pytest.raises(FencedError):
        b.guard()
    await a.step()  # a renewal keeps the epoch and does not start the leader's work again
    assert ra.led == [1] and a.epoch == 1


async def test_a_lapsed_leader_is_fenced_and_steps_down(store: Store) -> None:
    ra, rb = Recorder(), Recorder()
    a, b = king(store, "a", ra, ttl=0.4), king(store, "b", rb, ttl=0.4)
    await a.step()
    view = a.view()
    view.put("jobs", "x", {"by": "a"})
    # a is paused (no renewal): once its lease lapsed by the store's clock, b takes it at the next epoch
    while not (lease := store.read_lease(LEASE)) or lease.held:
        await asyncio.sleep(0.05)
    with pytest.raises(FencedError):
        a.guard()  # its own clock says the lease may have lapsed: no chain transaction
    await b.step()
    await b.started()
    assert rb.led == [2] and b.leading
    with pytest.raises(FencedError):
        view.put("jobs", "x", {"by": "a, stale"})  # the store refuses the stale epoch's write
    with pytest.raises(FencedError), view.batch() as batch:
        batch.put("jobs", "y", {"by": "a"})
    assert store.get("jobs", "x") == {"by": "a"} and store.get("jobs", "y") is None
    await a.step()
    assert a.epoch == 0 and ra.followed and "fenced" in ra.followed[0] and "epoch 2" in ra.followed[0]
    b.view().put("jobs", "x", {"by": "b"})
    assert store.get("jobs", "x") == {"by": "b"}


async def test_a_released_lease_is_taken_at_once(store: Store) -> None:
    ra, rb = Recorder(), Recorder()
    a, b = king(store, "a", ra), king(store, "b", rb)
    await a.step()
    await a.release()
    t0 = time.monotonic()
    await b.step()
    await b.started()
    assert b.leading and rb.led == [2] and time.monotonic() - t0 < 5.0
    with pytest.raises(FencedError):
        a.guard()


def test_the_renewal_must_be_shorter_than_the_lease() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="shorter"):
        Leadership(MemoryStore(), "a", "", LeaseConfig(ttl_s=1.0, renew_s=1.0), rec.lead, rec.follow)
