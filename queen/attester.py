"""A queen's bridge duty: attest every message of both chains' outboxes, once it is deep enough.

For each chain the queen follows that chain's BridgeOutbox with an :class:`EventFollower` at the chain's
confirmation depth (deep on ETC), so a message from a block that a shallower reorg removes is never seen,
let alone signed. Each message bound for the other chain is signed (EIP-712, for the destination inbox)
and the attestation is written in the same store commit as the follower's cursor; a sender then hands it to
the king (``KingControl.SubmitAttestation``) until the king has it. Nothing is lost across restarts: an
attestation not yet acknowledged is sent again.

Optionally (``relay.self_deliver_after_s``) the queen delivers a message itself when the king has not done so
in time, with the attestations the king has gathered: any holder of k attestations can deliver, and the inbox
executes a message once whoever races.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from blendr.chain.bridge import BridgeMessage, attest
from blendr.chain.client import ChainClient
from blendr.chain.contracts import BridgeInbox, BridgeOutbox
from blendr.chain.follower import Changes, EventFollower
from blendr.chain.relay import deliver_message
from blendr.clock import Clock
from blendr.config import RelayConfig
from blendr.errors import BlendrError, InvalidArgumentError, NotFoundError, PermissionDeniedError
from blendr.retry import Backoff, rounds
from blendr.store import Store
from blendr.store.base import Batch
from blendr.telemetry import get_logger
from queen.verification import EventSource

log = get_logger("blendr.queen.attester")

NS_ATTESTATIONS = "attestations"
# Refusals that sending again cannot fix: the attestation is kept with the error, and not retried.
FINAL_ERRORS = (InvalidArgumentError, PermissionDeniedError)
# An attested message still short of k attestations this long: the bridge lacks live attesters (said every
# minute, looking at the oldest few waiting messages).
SHORT_AFTER_S = 60.0
SHORT_WARN_EVERY_S = 60.0
MAX_SHORT_CHECKS = 5


@dataclass(frozen=True)
class KingAck:
    """The king's answer to an attestation."""

    state: str  # the message's delivery state at the king: "DELIVERY_STATE_GATHERING", …
    attestations: int
    threshold: int


class KingPort(Protocol):
    """The king's attestation API as the attester uses it (:class:`queen.kingclient.GrpcKing`, or a fake).

    Both calls raise only BlendrError subclasses.
    """

    async def submit_attestation(self, msg: BridgeMessage, signature: bytes) -> KingAck: ...

    async def attestations(self, message_hash: bytes) -> tuple[BridgeMessage, dict[str, bytes]]: ...


@dataclass(frozen=True)
class Route:
    """One direction of the bridge as this queen follows it."""

    src: ChainClient
    outbox: BridgeOutbox
    dst: ChainClient
    inbox: BridgeInbox
    start_block: int = 0


class Attester:
    """Follows both outboxes, signs, and hands attestations to the king."""

    def __init__(
        self,
        account: Any,
        routes: list[Route],
        store: Store,
        clock: Clock,
        cfg: RelayConfig,
        *,
        king: KingPort | None = None,
        confirmations: dict[str, int] | None = None,
        followers: list[EventSource] | None = None,
        short_after_s: float = SHORT_AFTER_S,
        warn_every_s: float = SHORT_WARN_EVERY_S,
    ) -> None:
        """Args:
            account: the queen's signing account (an attester of both inboxes).
            routes: ETH -> ETC and ETC -> ETH.
            king: the king's attestation API (None: attestations stay in the store).
            confirmations: per source chain name, overrides the chain's depth (tests).
            followers: one event source per route (unit tests); default: an EventFollower of each outbox.
            short_after_s: an attested message still short of k attestations this long means the bridge
                lacks live attesters; :meth:`check_bridge` says so at most every ``warn_every_s``.
        """
        self.short_after_s = short_after_s
        self.warn_every_s = warn_every_s
        self._checked_at: float | None = None
        self.account = account
        self.routes = routes
        self.store = store
        self.clock = clock
        self.cfg = cfg
        self._king = king
        self.followers: list[EventSource] = followers or [
            EventFollower(r.src, store, f"queen-{r.src.settings.name}-outbox", {"BridgeOutbox": r.outbox.contract},
                          confirmations=(confirmations or {}).get(r.src.settings.name), start_block=r.start_block)
            for r in routes
        ]
        self._backoff = Backoff(cfg.retry_initial_s, cfg.retry_max_s)

    # ------------------------------------------------------------------ following
    def _handler(self, route: Route) -> Callable[[Changes, Batch], None]:
        def handle(changes: Changes, b: Batch) -> None:
            for ev in changes.new:
                if ev.event != "MessageSent":
                    continue
                msg = BridgeMessage.from_event(ev.args, route.src.settings.chain_id, route.outbox.address)
                if msg.dst_chain_id != route.dst.settings.chain_id:
                    log.warning("outbox message for a chain this queen does not bridge; not attested",
                                dst_chain=msg.dst_chain_id, nonce=msg.nonce)
                    continue
                key = msg.message_hash.hex()
                if self.store.get(NS_ATTESTATIONS, key) is not None:
                    continue  # attested before (the follower redelivers nothing; this guards a replayed poll)
                sig = attest(self.account, msg, route.inbox.address)
                b.put(NS_ATTESTATIONS, key, {
                    "message": msg.to_json(), "inbox": route.inbox.address, "signature": "0x" + sig.hex(),
                    "block": ev.block_number, "tx": ev.tx_hash, "attested": self.clock.time(), "sent": False,
                    "king_state": "", "error": "", "delivered_by_us": ""})
                log.info("message attested", src=route.src.settings.name, nonce=msg.nonce, hash=key[:16],
                         block=ev.block_number)
            for ev in changes.withdrawn:
                if ev.event != "MessageSent":
                    continue
                msg = BridgeMessage.from_event(ev.args, route.src.settings.chain_id, route.outbox.address)
                key = msg.message_hash.hex()
                doc = self.store.get(NS_ATTESTATIONS, key)
                if doc is None:
                    continue
                if not doc["sent"]:
                    b.delete(NS_ATTESTATIONS, key)
                    log.warning("attestation withdrawn before it left: the message's block was reorganized out",
                                nonce=msg.nonce, hash=key[:16])
                else:
                    log.error("an attested message was reorganized out (a reorg deeper than the confirmation "
                              "depth); raise the depth of this chain", nonce=msg.nonce, hash=key[:16])
        return handle

    def poll(self) -> int:
        """One poll of each outbox (blocking); returns how many new messages were seen."""
        n = 0
        for route, follower in zip(self.routes, self.followers, strict=True):
            n += len(follower.poll(self._handler(route)).new)
        return n

    def attestations(self, *, unsent_only: bool = False) -> list[dict[str, Any]]:
        docs = [d for _, d in self.store.scan(NS_ATTESTATIONS, "")]
        return [d for d in docs if not d["sent"]] if unsent_only else docs

    # ------------------------------------------------------------------ the king
    async def send_pending(self) -> int:
        """Hands unacknowledged attestations to the king; returns how many it took.

        Raises:
            UnavailableError (or another BlendrError): the king is unreachable (the caller backs off); final
                refusals (invalid, not an attester) are recorded on the attestation and not sent again.
        """
        if self._king is None:
            return 0
        sent = 0
        for doc in self.attestations(unsent_only=True):
            if doc.get("error"):
                continue
            msg = BridgeMessage.from_json(doc["message"])
            key = msg.message_hash.hex()
            try:
                ack = await self._king.submit_attestation(msg, bytes.fromhex(doc["signature"][2:]))
            except FINAL_ERRORS as exc:
                log.error("king refused an attestation", hash=key[:16], error=str(exc))
                self.store.put(NS_ATTESTATIONS, key, {**doc, "error": str(exc)})
                continue
            self.store.put(NS_ATTESTATIONS, key, {**doc, "sent": True, "sent_at": self.clock.time(),
                                                  "king_state": ack.state})
            sent += 1
            log.info("attestation handed to the king", hash=key[:16], attestations=ack.attestations,
                     threshold=ack.threshold, state=ack.state)
        return sent

    async def deliver_stalled(self) -> int:
        """Delivers, with the king's gathered attestations, messages the king left undelivered too long."""
        if self._king is None or self.cfg.self_deliver_after_s <= 0:
            return 0
        now = self.clock.time()
        done = 0
        for doc in self.attestations():
            if not doc["sent"] or doc.get("delivered_by_us") or doc.get("executed"):
                continue
            if now - float(doc.get("sent_at", now)) < self.cfg.self_deliver_after_s:
                continue
            msg = BridgeMessage.from_json(doc["message"])
            route = next(r for r in self.routes if r.dst.settings.chain_id == msg.dst_chain_id)
            if await asyncio.to_thread(route.inbox.executed, msg):
                self.store.put(NS_ATTESTATIONS, msg.message_hash.hex(), {**doc, "executed": True})
                continue
            try:
                held, sigs = await self._king.attestations(msg.message_hash)
            except BlendrError as exc:
                log.warning("cannot fetch attestations from the king", error=str(exc)[:300])
                return done
            if held != msg:
                log.error("the king answered with another message; not delivering", hash=msg.message_hash.hex()[:16])
                continue
            outcome = await asyncio.to_thread(deliver_message, route.inbox, msg, sigs)
            log.info("delivered a stalled message ourselves", hash=msg.message_hash.hex()[:16], outcome=outcome.state,
                     tx=outcome.tx_hash)
            if outcome.state in ("delivered", "already"):
                self.store.put(NS_ATTESTATIONS, msg.message_hash.hex(),
                               {**doc, "executed": True, "delivered_by_us": outcome.tx_hash or "already"})
                done += 1
        return done

    # ------------------------------------------------------------------ the bridge's health
    async def check_bridge(self) -> list[str]:
        """Says in the log (and returns) what keeps this queen's attestations from settling rentals: its key
        not an attester of an inbox, or messages it attested that wait, ``short_after_s`` after it handed them
        to the king, with fewer than k attestations (too few attesting queens run). Checks the oldest few
        waiting messages on the chain (executed?) and at the king (how many attestations?).

        Raises:
            BlendrError: a chain read failed (the caller's round backs off).
        """
        problems: list[str] = []
        me = self.account.address.lower()
        for route in self.routes:
            attesters = await asyncio.to_thread(route.inbox.attesters)
            if me not in {a.lower() for a in attesters}:
                problems.append(
                    f"this queen's key {self.account.address} is not an attester of the bridge inbox on chain "
                    f"{route.dst.settings.chain_id}: the king refuses its attestations; run the relay with an "
                    "attester's key (`blendr chain info` lists them)")
        now = self.clock.time()
        waiting = sorted((d for d in self.attestations() if d["sent"] and not d.get("executed") and not d.get("error")
                          and now - float(d.get("sent_at", now)) >= self.short_after_s),
                         key=lambda d: float(d.get("sent_at", now)))
        short = 0
        oldest = ""
        for doc in waiting[:MAX_SHORT_CHECKS]:
            msg = BridgeMessage.from_json(doc["message"])
            route = next(r for r in self.routes if r.dst.settings.chain_id == msg.dst_chain_id)
            if await asyncio.to_thread(route.inbox.executed, msg):
                self.store.put(NS_ATTESTATIONS, msg.message_hash.hex(), {**doc, "executed": True})
                continue
            if self._king is None:
                continue
            try:
                _, sigs = await self._king.attestations(msg.message_hash)
            except NotFoundError:  # the king lost what it acknowledged (a reset store): none count
                sigs = {}
            threshold = await asyncio.to_thread(route.inbox.threshold)
            if len(sigs) < threshold:
                short += 1
                oldest = oldest or (f"{len(sigs)} of {threshold} attestations after "
                                    f"{round(now - float(doc['sent_at']))} s")
        if short:
            problems.append(
                f"the bridge is short of attesters: {short} message(s) this queen attested wait for attestations "
                f"(oldest: {oldest}), so rentals neither open on ETC nor settle; more queens whose keys are "
                "bridge attesters must run `blendr queen run --relay` (`blendr chain info` lists them)")
        for p in problems:
            log.warning(p)
        return problems

    # ------------------------------------------------------------------ the loop
    async def step(self) -> None:
        await asyncio.to_thread(self.poll)
        await self.send_pending()
        await self.deliver_stalled()
        now = self.clock.monotonic()
        if self._checked_at is None or now - self._checked_at >= self.warn_every_s:
            self._checked_at = now
            await self.check_bridge()

    async def run(self) -> None:
        """Steps every ``relay.poll_s`` until cancelled; a failed round waits (bounded backoff) and never stops it."""
        await rounds(self.step, every_s=self.cfg.poll_s, backoff=self._backoff, log=log, what="attester")
