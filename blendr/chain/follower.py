"""An event follower with a durable cursor that survives restarts and undoes reorganized-out events.

The follower scans a chain for the logs of some contracts, ``confirmations`` blocks behind the head, and
hands each poll's changes to a handler together with a store batch: the handler's own writes and the
follower's cursor land in one atomic commit, so after a crash an event is neither lost nor applied twice.

The cursor is the last scanned block's number *and hash*, and the follower remembers the hashes of recent
blocks and the events it delivered from them. When the cursor's block is no longer canonical (a reorg
deeper than ``confirmations``), it walks back to the newest remembered block that is still canonical,
rescans from there, and reports the difference: events that vanished are *withdrawn*, events that moved
to another block are not reported again, new ones are delivered. A reorg deeper than the remembered
history raises :class:`~blendr.errors.ReorgError` (operators then pick a deeper ``history``).

The depth may change between polls (governance sets it; :mod:`blendr.chain.depths`): the cursor stays where it
is, so a shallower depth scans on from the block after the cursor (nothing skipped, nothing delivered twice) and
a deeper one waits until the head is that far past the cursor (what was delivered stays delivered).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blendr.errors import ChainError, ReorgError
from blendr.store import Store
from blendr.store.base import Batch
from blendr.telemetry import get_logger

if TYPE_CHECKING:
    from web3.contract import Contract

    from blendr.chain.client import ChainClient

log = get_logger("blendr.chain.follower")
NS_CURSOR = "chain_cursor"


@dataclass(frozen=True)
class ChainEvent:
    """A decoded contract event. ``id`` stays the same if a reorg moves it to another block."""

    id: str
    contract: str  # our name for the emitting contract, e.g. "BridgeOutbox"
    address: str
    event: str  # event name, e.g. "MessageSent"
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "contract": self.contract, "address": self.address, "event": self.event,
            "args": _jsonable(self.args), "block_number": self.block_number, "block_hash": self.block_hash,
            "tx_hash": self.tx_hash, "log_index": self.log_index,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChainEvent:
        return cls(**d)


@dataclass
class Changes:
    """What one poll found: events to apply, events to undo, and where the cursor now stands."""

    new: list[ChainEvent] = field(default_factory=list)
    withdrawn: list[ChainEvent] = field(default_factory=list)
    cursor_block: int = 0


Handler = Callable[[Changes, Batch], None]


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if hasattr(v, "hex") and not isinstance(v, int | str):
        h = v.hex()
        return h if h.startswith("0x") else "0x" + h
    return v


class EventFollower:
    """Follows the events of ``contracts`` on one chain (one instance per chain and purpose)."""

    def __init__(
        self,
        client: ChainClient,
        store: Store,
        name: str,
        contracts: dict[str, Contract],
        *,
        confirmations: int | None = None,
        start_block: int = 0,
        max_range: int = 2_000,
        history: int = 1_024,
    ) -> None:
        """Args:
            client: the chain to follow.
            store: where the cursor, recent block hashes and delivered events persist.
            name: this follower's key in the store (e.g. "queen-eth-outbox").
            contracts: our name -> web3 contract, whose events are followed.
            confirmations: depth a block needs before its events are delivered; None: the client's at each poll
                (so a depth governance changes applies from the next poll, :meth:`ChainClient.set_confirmations`).
            start_block: first block to scan when there is no cursor yet (e.g. the deployment block).
            max_range: most blocks one ``eth_getLogs`` asks for.
            history: blocks of hashes and delivered events remembered for undoing reorgs.
        """
        self.client = client
        self.store = store
        self.name = name
        self.contracts = contracts
        self._confirmations = confirmations
        self.start_block = start_block
        self.max_range = max_range
        self.history = history
        self._ns_blocks = f"chain_blocks:{name}"
        self._ns_events = f"chain_events:{name}"
        self._by_address = {c.address.lower(): (n, c) for n, c in contracts.items()}

    @property
    def confirmations(self) -> int:
        """The depth the next poll uses: this follower's own, else its client's current one."""
        return self.client.settings.confirmations if self._confirmations is None else self._confirmations

    @confirmations.setter
    def confirmations(self, depth: int | None) -> None:
        self._confirmations = depth

    # -- state ----------------------------------------------------------------------------------------
    def cursor(self) -> tuple[int, str] | None:
        """(block number, block hash) of the last block scanned, or None before the first poll."""
        doc = self.store.get(NS_CURSOR, self.name)
        return (int(doc["block"]), str(doc["hash"])) if doc else None

    def _block_hash(self, number: int) -> str:
        block = self.client.retry("get_block", lambda: self.client.w3.eth.get_block(number))
        return "0x" + bytes(block["hash"]).hex()

    # -- polling --------------------------------------------------------------------------------------
    def poll(self, handler: Handler) -> Changes:
        """Scans up to ``max_range`` confirmed blocks and hands the changes to ``handler``.

        The handler runs inside a store batch; its writes commit atomically with the new cursor. If it
        raises, nothing is committed and the same changes come again on the next poll.

        Raises:
            ReorgError: the chain reorganized deeper than ``history`` blocks.
            UnavailableError: the RPC endpoint kept failing.
        """
        head = self.client.block_number()
        depth = self.confirmations  # read once: governance may change it while this poll runs
        target = head - depth + 1 if depth > 0 else head
        cur = self.cursor()
        changes = Changes(cursor_block=cur[0] if cur else self.start_block - 1)
        withdrawn_ids: dict[str, ChainEvent] = {}
        rescan_from: int
        if cur is None:
            rescan_from = self.start_block
        else:
            block, bhash = cur
            if block <= head and self._block_hash(block) == bhash:
                rescan_from = block + 1
            else:
                ancestor = self._common_ancestor(block, head)
                log.warning("reorg", follower=self.name, from_block=block, ancestor=ancestor)
                for _key, doc in self.store.scan(self._ns_events, start_after=f"{ancestor:012d}:~"):
                    ev = ChainEvent.from_json(doc)
                    withdrawn_ids[ev.id] = ev
                rescan_from = ancestor + 1
        end = min(target, rescan_from + self.max_range - 1)
        if end < rescan_from and not withdrawn_ids:
            return changes
        found = self._scan(rescan_from, end) if end >= rescan_from else []
        end_hash = self._block_hash(end) if end >= 0 and end >= rescan_from else None
        for ev in found:
            if ev.id in withdrawn_ids:
                del withdrawn_ids[ev.id]  # survived the reorg (maybe in another block): not new, not withdrawn
            else:
                changes.new.append(ev)
        changes.withdrawn = sorted(withdrawn_ids.values(), key=lambda e: (e.block_number, e.log_index), reverse=True)
        new_cursor = (end, end_hash) if end_hash is not None else None
        with self.store.batch() as b:
            if changes.new or changes.withdrawn:
                handler(changes, b)
            if withdrawn_ids or (cur is not None and rescan_from <= cur[0]):
                # drop remembered state above the ancestor; re-add what the rescan found
                for key, _ in self.store.scan(self._ns_events, start_after=f"{rescan_from - 1:012d}:~"):
                    b.delete(self._ns_events, key)
                for key, _ in self.store.scan(self._ns_blocks, start_after=f"{rescan_from - 1:012d}"):
                    b.delete(self._ns_blocks, key)
            for ev in found:
                b.put(self._ns_events, f"{ev.block_number:012d}:{ev.log_index:06d}", ev.to_json())
                b.put(self._ns_blocks, f"{ev.block_number:012d}", {"hash": ev.block_hash})
            if new_cursor is not None:
                b.put(self._ns_blocks, f"{new_cursor[0]:012d}", {"hash": new_cursor[1]})
                b.put(NS_CURSOR, self.name, {"block": new_cursor[0], "hash": new_cursor[1]})
                changes.cursor_block = new_cursor[0]
            self._prune(b, changes.cursor_block)
        for ev in changes.withdrawn:
            log.warning("event withdrawn by reorg", follower=self.name, event=ev.event, block=ev.block_number, tx=ev.tx_hash)
        return changes

    def poll_until_idle(self, handler: Handler, *, max_polls: int = 1_000) -> list[Changes]:
        """Polls until a poll finds nothing more to scan (catching up after downtime)."""
        out = []
        for _ in range(max_polls):
            before = self.cursor()
            ch = self.poll(handler)
            out.append(ch)
            if self.cursor() == before and not ch.withdrawn:
                break
        return out

    def _common_ancestor(self, block: int, head: int) -> int:
        """The newest remembered block at or below ``block`` whose hash is still canonical."""
        upper = min(block, head)
        for key, doc in self.store.scan(self._ns_blocks, reverse=True, start_after=f"{upper + 1:012d}"):
            number = int(key)
            if self._block_hash(number) == doc["hash"]:
                return number
        # No remembered block survived. Everything since start_block is still remembered unless pruning
        # began, so rescanning from the start is exact; after pruning the lost history cannot be undone.
        if block - self.history > self.start_block:
            raise ReorgError(
                f"follower {self.name}: no block of the last {self.history} it remembers is still canonical; "
                "the reorg is deeper than its history: raise the follower's history or rebuild its state")
        return self.start_block - 1

    def _prune(self, b: Batch, cursor_block: int) -> None:
        floor = cursor_block - self.history
        if floor <= 0:
            return
        for key, _ in self.store.scan(self._ns_blocks, limit=256):
            if int(key) >= floor:
                break
            b.delete(self._ns_blocks, key)
        for key, _ in self.store.scan(self._ns_events, limit=256):
            if int(key.split(":")[0]) >= floor:
                break
            b.delete(self._ns_events, key)

    def _scan(self, start: int, end: int) -> list[ChainEvent]:
        addresses = [c.address for c in self.contracts.values()]
        logs = self.client.retry(
            "get_logs", lambda: self.client.w3.eth.get_logs({"address": addresses, "fromBlock": start, "toBlock": end}))
        out: list[ChainEvent] = []
        seen: dict[str, int] = {}
        for lg in logs:
            entry = self._by_address.get(str(lg["address"]).lower())
            if entry is None:
                continue
            cname, contract = entry
            decoded = _decode(contract, lg)
            if decoded is None:
                continue
            event_name, args = decoded
            tx_hash = "0x" + bytes(lg["transactionHash"]).hex()
            fingerprint = hashlib.sha256(
                (str(lg["address"]).lower() + "".join("0x" + bytes(t).hex() for t in lg["topics"])
                 + "0x" + bytes(lg["data"]).hex()).encode()).hexdigest()[:16]
            base = f"{tx_hash}:{fingerprint}"
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append(ChainEvent(
                id=f"{base}:{n}", contract=cname, address=contract.address, event=event_name,
                args=_jsonable(dict(args)), block_number=int(lg["blockNumber"]),
                block_hash="0x" + bytes(lg["blockHash"]).hex(), tx_hash=tx_hash, log_index=int(lg["logIndex"])))
        return out


def _decode(contract: Contract, lg: Any) -> tuple[str, Any] | None:
    """(event name, arguments) of a log of ``contract``; None for an event not in its ABI.

    Raises:
        ChainError: the log has the topic of one of the contract's events but does not decode as it.
    """
    from eth_abi.exceptions import DecodingError
    from eth_utils import event_abi_to_log_topic
    from web3._utils.events import get_event_data
    from web3.exceptions import Web3Exception

    topic0 = bytes(lg["topics"][0]) if lg["topics"] else b""
    for item in contract.abi:
        if item.get("type") == "event" and event_abi_to_log_topic(item) == topic0:
            try:
                data = get_event_data(contract.w3.codec, item, lg)
            except (Web3Exception, DecodingError) as exc:
                raise ChainError(f"a {item.get('name')} log of {contract.address} does not decode: {exc}") from exc
            return str(data["event"]), data["args"]
    return None

