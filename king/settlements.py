"""The king follows GPURental on Ethereum: each rental's creation, cancellation, settlement or reclaim.

One document per rental in the store, updated in the same commit as the follower's cursor, so after a
restart nothing is missed or counted twice. Served by ``KingControl.GetSettlement`` (and, with the gateway,
part of a renter's job view).

Guarantees:

- Each event is applied once: the follower delivers it once, in the commit that moves its cursor; a poll
  that fails (RPC outage, store error) commits nothing and the same events come again.
- A reorg deeper than the confirmation depth that withdraws an event undoes that event's effect (a
  withdrawn settlement puts the rental back to active or cancelled, without payment figures) and flags
  the rental ``reorged``; if the event lands again in another block it is applied again, once.
"""

from __future__ import annotations

from typing import Any, Protocol

from blendr.chain.contracts import GPURental
from blendr.chain.follower import ChainEvent, Changes, EventFollower, Handler
from blendr.errors import NotFoundError
from blendr.store import Store
from blendr.store.base import Batch
from blendr.telemetry import get_logger

log = get_logger("blendr.king.settlements")

NS_RENTALS = "rentals"
FOLLOWER = "king-eth-rental"


SETTLEMENT_FIELDS = ("verified_seconds", "failed", "provider_payment", "fee", "refund", "settled_tx", "settled_block")


def rid_key(rental_id: int) -> str:
    return f"{rental_id:064x}"


class EventSource(Protocol):
    """A follower of contract events (:class:`~blendr.chain.follower.EventFollower`, or a fake)."""

    def poll(self, handler: Handler) -> Changes: ...


class SettlementBook:
    """Rentals as GPURental's events tell them."""

    def __init__(self, rental: GPURental | None, store: Store, *, start_block: int = 0,
                 confirmations: int | None = None, follower: EventSource | None = None) -> None:
        """Args:
            rental: GPURental on ETH, whose events are followed (unused when ``follower`` is given).
            follower: the event source (tests pass a fake); default: an EventFollower of ``rental``.
        """
        self.store = store
        if follower is None:
            assert rental is not None, "a SettlementBook needs GPURental or a follower"
            follower = EventFollower(rental.client, store, FOLLOWER, {"GPURental": rental.contract},
                                     confirmations=confirmations, start_block=start_block)
        self.follower = follower

    def _handle(self, changes: Changes, b: Batch) -> None:
        staged: dict[str, dict[str, Any]] = {}

        def doc(rid: int) -> dict[str, Any]:
            key = rid_key(rid)
            if key not in staged:
                staged[key] = dict(self.store.get(NS_RENTALS, key) or {"rental_id": key, "state": "unknown"})
            return staged[key]

        # What vanished from the chain is undone first; then the (new) canonical events apply.
        for ev in changes.withdrawn:
            if "rentalId" in ev.args:
                self._undo(doc(int(ev.args["rentalId"])), ev)
        for ev in changes.new:
            a = ev.args
            if "rentalId" not in a:
                continue
            d = doc(int(a["rentalId"]))
            if ev.event == "RentalCreated":
                d.update(state="active", renter=a["renter"], provider=a["provider"], queen=a["queen"],
                         gpus=int(a["gpus"]), escrow=str(a["escrow"]), price_per_gpu_hour=str(a["pricePerGpuHour"]),
                         start=int(a["start"]), duration=int(a["duration"]), created_tx=ev.tx_hash,
                         created_block=ev.block_number)
            elif ev.event == "RentalCancelled":
                d.update(state="cancelled", cancelled_at=int(a["cancelledAt"]), cancelled_tx=ev.tx_hash)
            elif ev.event == "RentalSettled":
                d.update(state="settled", verified_seconds=int(a["verifiedSeconds"]), failed=bool(a["failed"]),
                         provider_payment=str(a["providerPayment"]), fee=str(a["fee"]), refund=str(a["refund"]),
                         settled_tx=ev.tx_hash, settled_block=ev.block_number)
                log.info("rental settled", rental=d["rental_id"][:12], verified_seconds=d["verified_seconds"],
                         failed=d["failed"], provider_payment=d["provider_payment"], refund=d["refund"], tx=ev.tx_hash)
            elif ev.event == "ProviderSlashed":
                d.update(slashed=str(a["slashed"]))
            elif ev.event == "EscrowReclaimed":
                d.update(state="expired", refund=str(a["amount"]), settled_tx=ev.tx_hash)
                log.info("escrow reclaimed by the renter", rental=d["rental_id"][:12], amount=str(a["amount"]))
            elif ev.event == "FeedbackSubmitted":
                d.update(rating=int(a["rating"]))
        for key, d in staged.items():
            b.put(NS_RENTALS, key, d)

    @staticmethod
    def _undo(d: dict[str, Any], ev: ChainEvent) -> None:
        """Undoes a withdrawn event (rare: a reorg deeper than the confirmation depth) if it made the doc."""
        d["reorged"] = True
        log.warning("rental event withdrawn by a reorg", rental=d["rental_id"][:12], event=ev.event, tx=ev.tx_hash)
        back = "cancelled" if "cancelled_at" in d else "active"
        if ev.event == "RentalCreated" and d.get("created_tx") == ev.tx_hash:
            d["state"] = "unknown"
        elif ev.event == "RentalCancelled" and d.get("cancelled_tx") == ev.tx_hash:
            d.pop("cancelled_at", None)
            d.pop("cancelled_tx", None)
            if d["state"] == "cancelled":
                d["state"] = "active"
        elif ev.event in ("RentalSettled", "EscrowReclaimed") and d.get("settled_tx") == ev.tx_hash:
            for f in SETTLEMENT_FIELDS:
                d.pop(f, None)
            d["state"] = back
        elif ev.event == "ProviderSlashed":
            d.pop("slashed", None)
        elif ev.event == "FeedbackSubmitted":
            d.pop("rating", None)

    def poll(self) -> int:
        """One follower poll (blocking); returns how many events it applied."""
        return len(self.follower.poll(self._handle).new)

    def get(self, rental_id: int) -> dict[str, Any]:
        """Raises NotFoundError when the king has not seen the rental."""
        d = self.store.get(NS_RENTALS, rid_key(rental_id))
        if d is None:
            raise NotFoundError(f"no rental {rid_key(rental_id)} seen on GPURental")
        return d
