"""A fake chain's event log and a follower of it, with the guarantees of ``blendr.chain.follower``.

``FakeEventChain`` holds decoded events by block; tests emit events, mine blocks, reorganize events out
(``reorg``) or make the next polls fail (``outages``). ``FakeFollower`` follows it like
:class:`~blendr.chain.follower.EventFollower`: only blocks ``confirmations`` deep, each event delivered
once, events that vanished from the chain reported as ``withdrawn``, and the handler's writes committed in
one store batch with the follower's cursor (a handler that raises commits nothing; the same changes come
again). Its cursor lives in the store, so a new follower over the same store resumes where the old one was.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from blendr.chain.follower import NS_CURSOR, ChainEvent, Changes, Handler
from blendr.errors import UnavailableError
from blendr.store import Store

_ids = itertools.count(1)


@dataclass
class FakeEventChain:
    """Events of some contracts on one chain."""

    head: int = 0
    events: list[ChainEvent] = field(default_factory=list)
    outages: int = 0  # the next polls raise UnavailableError
    polls: int = 0

    def emit(self, contract: str, event: str, args: dict[str, Any], *, block: int | None = None) -> ChainEvent:
        """An event in ``block`` (default: a new block on top of the head)."""
        if block is None:
            block = self.head + 1
        self.head = max(self.head, block)
        n = next(_ids)
        ev = ChainEvent(id=f"ev{n}", contract=contract, address="0x" + "c0" * 20, event=event, args=dict(args),
                        block_number=block, block_hash=f"0x{block:064x}", tx_hash=f"0x{n:064x}", log_index=0)
        self.events.append(ev)
        return ev

    def mine(self, blocks: int = 1) -> None:
        self.head += blocks

    def reorg(self, gone: Iterable[ChainEvent]) -> None:
        """Removes events from the canonical chain (their blocks were replaced by blocks without them)."""
        ids = {e.id for e in gone}
        self.events = [e for e in self.events if e.id not in ids]

    def follower(self, store: Store, name: str, *, confirmations: int = 0) -> FakeFollower:
        return FakeFollower(self, store, name, confirmations)


@dataclass
class FakeFollower:
    chain: FakeEventChain
    store: Store
    name: str
    confirmations: int = 0

    def poll(self, handler: Handler) -> Changes:
        self.chain.polls += 1
        if self.chain.outages:
            self.chain.outages -= 1
            raise UnavailableError("fake RPC: connection refused")
        doc = self.store.get(NS_CURSOR, self.name) or {"block": 0, "events": []}
        confirmed = self.chain.head - self.confirmations + 1 if self.confirmations > 0 else self.chain.head
        canonical = [e for e in self.chain.events if e.block_number <= confirmed]
        delivered = {d["id"]: d for d in doc["events"]}
        ids = {e.id for e in canonical}
        changes = Changes(new=[e for e in canonical if e.id not in delivered],
                          withdrawn=sorted((ChainEvent.from_json(d) for i, d in delivered.items() if i not in ids),
                                           key=lambda e: (e.block_number, e.log_index), reverse=True),
                          cursor_block=max(confirmed, 0))
        with self.store.batch() as b:
            if changes.new or changes.withdrawn:
                handler(changes, b)
            b.put(NS_CURSOR, self.name, {"block": changes.cursor_block,
                                         "events": [e.to_json() for e in canonical]})
        return changes
