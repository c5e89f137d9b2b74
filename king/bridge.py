"""The king's side of the bridge: gather queens' attestations, deliver each message once k are in.

``submit`` checks an attestation completely before keeping it: the message must travel between the two
chains of this deployment (source outbox and destination chain from the manifest), the signature must
recover to an attester of the destination inbox (its current set, read from the chain and cached). The
king is trusted with nothing it could forge: it holds only signatures the inbox checks again.

Delivery runs in one loop per king: as soon as a message has k attestations it is delivered; a failed
delivery (RPC down, inbox paused or rate limited, target reverting) is retried with bounded exponential
backoff, and a message someone else delivered first is recognised (``executed`` on the inbox, or the
inbox's ``BridgeInboxAlreadyExecuted``). Messages and attestations live in the store, so a restarted king
resumes every pending delivery.

Guarantees:

- One attestation per (message, attester): the key is the *recovered signer*, never the signature's bytes,
  and the signature is kept in its canonical form (``r || low-s || v`` with v 27/28, the only form the
  inbox's ``ECDSA.tryRecover`` takes). A high-s (malleated) signature is refused; a replay with another
  encoding of ``v`` (0/1, 27/28, 37/38) is the same attestation.
- A message is delivered at most once by this king: a delivery whose transaction landed but whose answer
  was lost (timeout, RPC outage, restart) is recognised on the next try as already executed, never sent as
  a second execution; ``on_delivered`` is called once per message per king process.
- Nothing is lost: a failed delivery stays ``delivering`` and is retried (tenacity's exponential wait with
  jitter, capped at ``king.retry_max_s``); a restart resumes it from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import to_checksum_address

from blendr.aio import wait_event
from blendr.chain.bridge import BridgeMessage, recover_attester
from blendr.chain.contracts import BridgeInbox
from blendr.chain.relay import deliver_message
from blendr.clock import Clock
from blendr.config import KingConfig
from blendr.errors import (
    BlendrError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
)
from blendr.identity import canonical_signature
from blendr.retry import delay, exponential
from blendr.store import Store
from blendr.telemetry import get_logger

log = get_logger("blendr.king.bridge")

NS_MESSAGES = "bridge_messages"
NS_ATTESTATIONS = "bridge_attestations"
GATHERING, DELIVERING, DELIVERED = "gathering", "delivering", "delivered"
# A message gathering attestations this long means the bridge lacks live attesters; said every minute.
SHORT_AFTER_S = 60.0
SHORT_WARN_EVERY_S = 60.0
OPEN_MSG, CLOSE_MSG, RESULT_MSG = 1, 2, 3  # RentalMessages kinds (contracts/interfaces/RentalMessages.sol)


def rental_message(data: bytes) -> tuple[int, int] | None:
    """(kind, rental id) of a RentalMessages payload (``abi.encode(uint8 kind, bytes body)``, the body's first
    word the rental id); None for anything else."""
    if len(data) < 128 or int.from_bytes(data[32:64], "big") != 64:
        return None
    kind = int.from_bytes(data[:32], "big")
    if kind not in (OPEN_MSG, CLOSE_MSG, RESULT_MSG):
        return None
    return kind, int.from_bytes(data[96:128], "big")


class InboxPort(Protocol):
    """What the book needs of a destination chain's ``BridgeInbox`` (the real one, or a fake in tests)."""

    address: str

    def attesters(self) -> list[str]: ...

    def threshold(self) -> int: ...

    def executed(self, msg: BridgeMessage) -> bool: ...

    def deliver(self, msg: BridgeMessage, signatures: Sequence[bytes]) -> Any: ...



@dataclass(frozen=True)
class Lane:
    """One destination chain: the inbox that executes there and the outbox on the other chain that feeds it."""

    inbox: BridgeInbox | InboxPort
    src_chain_id: int
    src_outbox: str
    dst_chain_id: int = 0  # 0: the chain of the inbox's client

    @property
    def chain_id(self) -> int:
        if self.dst_chain_id:
            return self.dst_chain_id
        assert isinstance(self.inbox, BridgeInbox), "a lane over a fake inbox names its dst_chain_id"
        return self.inbox.client.settings.chain_id


@dataclass(frozen=True)
class SubmitResult:
    message_hash: bytes
    attester: str
    attestations: int
    threshold: int
    state: str
    tx_hash: str


class AttestationBook:
    """Attestations per message, the delivery state of each message, and the delivery loop."""

    def __init__(self, lanes: list[Lane], store: Store, clock: Clock, cfg: KingConfig, *,
                 short_after_s: float = SHORT_AFTER_S, warn_every_s: float = SHORT_WARN_EVERY_S) -> None:
        """``short_after_s``: a message gathering attestations this long means the bridge is short of live
        attesters, said in the log at most every ``warn_every_s``."""
        self.short_after_s = short_after_s
        self.warn_every_s = warn_every_s
        self._gathering: dict[str, tuple[float, int, int, int]] = {}  # key -> (since, have, need, dst chain)
        self._warned_at: float | None = None
        self.lanes = {lane.chain_id: lane for lane in lanes}
        self.store = store
        self.clock = clock
        self.cfg = cfg
        self._wait = exponential(cfg.retry_initial_s, cfg.retry_max_s)
        self._attesters: dict[int, tuple[set[str], int, float]] = {}
        self._delivering: set[str] = set()
        self._wake = asyncio.Event()
        self.on_delivered: list[Callable[[BridgeMessage, str], None]] = []
        self._by_rental: dict[int, dict[int, str]] = {}  # rental id -> RentalMessages kind -> message key

    def load(self) -> int:
        """Resumes the messages that were waiting for delivery; returns how many."""
        docs = list(self.store.scan(NS_MESSAGES, ""))
        self._delivering = {k for k, d in docs if d["state"] == DELIVERING}
        now = self.clock.monotonic()
        for k, d in docs:
            if d["state"] == GATHERING:
                msg = BridgeMessage.from_json(d["message"])
                self._gathering[k] = (now, len(self._signatures(k)), 0, msg.dst_chain_id)
            if d["state"] != DELIVERED:
                self._index(k, BridgeMessage.from_json(d["message"]))
        return len(self._delivering)

    def _index(self, key: str, msg: BridgeMessage) -> None:
        rm = rental_message(msg.data)
        if rm is not None:
            self._by_rental.setdefault(rm[1], {})[rm[0]] = key

    def rental_wait(self, rental_id: int) -> str:
        """What a rental's settlement waits for on the bridge, in a renter's words ('' when this king holds
        nothing pending for it: no attestation of its messages has arrived, or they are delivered). Reads no
        chain (the attester set as last cached)."""
        keys = self._by_rental.get(rental_id, {})
        for kind, what in ((RESULT_MSG, "its verification result"), (CLOSE_MSG, "its cancellation"),
                           (OPEN_MSG, "its opening on Ethereum Classic")):
            key = keys.get(kind)
            doc = self.store.get(NS_MESSAGES, key) if key else None
            if key is None or doc is None or doc["state"] == DELIVERED:
                continue
            cached = self._attesters.get(BridgeMessage.from_json(doc["message"]).dst_chain_id)
            n = len(self._valid_signers(key, cached[0]) if cached else self._signatures(key))
            of = f"{n} of {cached[1]} attestations" if cached else f"{n} attestation{'s' if n != 1 else ''} so far"
            if doc["state"] == GATHERING:
                return f"{what} is waiting for the bridge ({of})"
            err = f": {doc['last_error'][:120]}" if doc.get("last_error") else ""
            return f"{what} is being delivered over the bridge (try {int(doc['attempts']) + 1}{err})"
        return ""

    # ------------------------------------------------------------------ attester sets
    def attester_set(self, chain_id: int, *, refresh: bool = False) -> tuple[set[str], int]:
        """(attesters lower-cased, threshold) of the inbox on ``chain_id``, cached ``king.attester_cache_s``."""
        cached = self._attesters.get(chain_id)
        now = self.clock.monotonic()
        if cached is None or refresh or now - cached[2] > self.cfg.attester_cache_s:
            inbox = self.lanes[chain_id].inbox
            cached = ({a.lower() for a in inbox.attesters()}, inbox.threshold(), now)
            self._attesters[chain_id] = cached
        return cached[0], cached[1]

    # ------------------------------------------------------------------ submissions
    def submit(self, msg: BridgeMessage, signature: bytes) -> SubmitResult:
        """Keeps a valid attestation (blocking: may read the attester set from the chain).

        An attester's second attestation of a message (under any encoding of the same signature) changes
        nothing and answers the message's current state.

        Raises:
            InvalidArgumentError: a chain or outbox this deployment does not bridge, or a malformed or
                malleable (high-s) signature.
            PermissionDeniedError: the signer is not an attester of the destination inbox.
            UnavailableError: the attester set could not be read.
        """
        lane = self.lanes.get(msg.dst_chain_id)
        if lane is None:
            raise InvalidArgumentError(f"message for chain {msg.dst_chain_id}, which this king does not bridge "
                                       f"(it bridges {sorted(self.lanes)})")
        if msg.src_chain_id != lane.src_chain_id or msg.src_outbox.lower() != lane.src_outbox.lower():
            raise InvalidArgumentError(
                f"message from outbox {msg.src_outbox} on chain {msg.src_chain_id}; chain {msg.dst_chain_id}'s inbox "
                f"takes messages from {lane.src_outbox} on chain {lane.src_chain_id}")
        try:
            signature = canonical_signature(signature)
        except SignatureError as exc:
            raise InvalidArgumentError(str(exc)) from None
        try:
            signer = to_checksum_address(recover_attester(msg, lane.inbox.address, signature))
        except SignatureError:  # no point on the curve for this (r, v)
            raise InvalidArgumentError("signature does not recover to any address") from None
        attesters, threshold = self.attester_set(msg.dst_chain_id)
        if signer.lower() not in attesters:
            attesters, threshold = self.attester_set(msg.dst_chain_id, refresh=True)
            if signer.lower() not in attesters:
                log.warning("attestation from a non-attester refused", signer=signer, nonce=msg.nonce,
                            dst_chain=msg.dst_chain_id)
                raise PermissionDeniedError(f"{signer} is not an attester of the inbox on chain {msg.dst_chain_id}")
        key = msg.message_hash.hex()
        now = self.clock.time()
        self._index(key, msg)
        self.store.put_if_absent(NS_MESSAGES, key, {
            "message": msg.to_json(), "state": GATHERING, "received": now, "attempts": 0, "next_try": 0.0,
            "last_error": "", "tx_hash": ""})
        if self.store.put_if_absent(NS_ATTESTATIONS, f"{key}/{signer}", {"signature": "0x" + signature.hex(),
                                                                         "received": now}):
            log.info("attestation received", attester=signer, nonce=msg.nonce, hash=key[:16],
                     dst_chain=msg.dst_chain_id)
        count = len(self._valid_signers(key, attesters))
        doc = self.store.get(NS_MESSAGES, key)
        assert doc is not None
        if doc["state"] == GATHERING and count < threshold:
            since = self._gathering.get(key, (self.clock.monotonic(),))[0]
            self._gathering[key] = (since, count, threshold, msg.dst_chain_id)
        if doc["state"] == GATHERING and count >= threshold:
            self._gathering.pop(key, None)
            doc = {**doc, "state": DELIVERING, "next_try": 0.0}
            self.store.put(NS_MESSAGES, key, doc)
            self._delivering.add(key)
            self._wake.set()
            log.info("message has k attestations; delivering", hash=key[:16], attestations=count, threshold=threshold)
        return SubmitResult(msg.message_hash, signer, count, threshold, doc["state"], doc["tx_hash"])

    def _signatures(self, key: str) -> dict[str, bytes]:
        # Kept canonical since they are stored canonical; normalised again for documents of older kings.
        out = {}
        for k, d in self.store.scan(NS_ATTESTATIONS, f"{key}/"):
            with contextlib.suppress(SignatureError):
                out[k.split("/", 1)[1]] = canonical_signature(bytes.fromhex(d["signature"][2:]))
        return out

    def _valid_signers(self, key: str, attesters: set[str]) -> list[str]:
        return [s for s in self._signatures(key) if s.lower() in attesters]

    def get(self, message_hash: bytes) -> tuple[dict[str, Any], dict[str, bytes], int]:
        """(message doc, signatures by attester, threshold).

        Raises:
            NotFoundError: no attestation for this message.
        """
        key = message_hash.hex()
        doc = self.store.get(NS_MESSAGES, key)
        if doc is None:
            raise NotFoundError(f"no attestations for message {key}")
        msg = BridgeMessage.from_json(doc["message"])
        _, threshold = self.attester_set(msg.dst_chain_id)
        return doc, self._signatures(key), threshold

    # ------------------------------------------------------------------ delivery
    def deliver_due(self) -> list[str]:
        """One pass over the messages waiting for delivery (blocking chain I/O); returns the keys delivered."""
        done = []
        now = self.clock.time()
        for key in sorted(self._delivering):
            doc = self.store.get(NS_MESSAGES, key)
            if doc is None or doc["state"] != DELIVERING:
                self._delivering.discard(key)
                continue
            if doc["next_try"] > now:
                continue
            msg = BridgeMessage.from_json(doc["message"])
            lane = self.lanes[msg.dst_chain_id]
            try:
                # A try whose transaction landed but whose answer was lost is seen as executed next time.
                outcome = deliver_message(lane.inbox,  # type: ignore[arg-type]  # an InboxPort is what it uses
                                           msg, self._signatures(key))
            except BlendrError as exc:
                attempts = int(doc["attempts"]) + 1
                wait_s = delay(self._wait, attempts)
                self.store.put(NS_MESSAGES, key, {**doc, "attempts": attempts, "next_try": now + wait_s,
                                                  "last_error": str(exc)[:500]})
                log.warning("delivery failed; will retry", hash=key[:16], attempt=attempts, retry_in_s=round(wait_s, 2),
                            error=str(exc)[:300])
                continue
            if outcome.state == "short":
                # The attester set changed under us: wait for more attestations.
                self.store.put(NS_MESSAGES, key, {**doc, "state": GATHERING,
                                                  "last_error": f"only {outcome.signatures} of {outcome.threshold} "
                                                                "attestations are from current attesters"})
                self._delivering.discard(key)
                self._gathering[key] = (self.clock.monotonic(), outcome.signatures, outcome.threshold,
                                        msg.dst_chain_id)
                continue
            self.store.put(NS_MESSAGES, key, {**doc, "state": DELIVERED, "tx_hash": outcome.tx_hash,
                                              "attempts": int(doc["attempts"]) + 1, "delivered": now,
                                              "by_us": outcome.state == "delivered", "last_error": ""})
            self._delivering.discard(key)
            done.append(key)
            log.info("message delivered" if outcome.state == "delivered" else "message was already delivered",
                     hash=key[:16], nonce=msg.nonce, dst_chain=msg.dst_chain_id, tx=outcome.tx_hash)
            for cb in self.on_delivered:
                cb(msg, outcome.tx_hash)
        return done

    # ------------------------------------------------------------------ attesters missing
    def short_of_attesters(self) -> list[tuple[str, float, int, int, int]]:
        """Messages gathering attestations for longer than ``short_after_s``, oldest first: (message hash,
        seconds waiting, attestations, threshold (0: not known yet), destination chain id)."""
        now = self.clock.monotonic()
        out = [(k, now - since, have, need, dst) for k, (since, have, need, dst) in self._gathering.items()
               if now - since >= self.short_after_s]
        return sorted(out, key=lambda x: -x[1])

    def warn_if_short(self) -> bool:
        """Logs, at most every ``warn_every_s``, that the bridge lacks live attesters when messages wait
        longer than ``short_after_s`` for k attestations (rentals then neither open on ETC nor settle).
        Returns whether it warned."""
        now = self.clock.monotonic()
        if self._warned_at is not None and now - self._warned_at < self.warn_every_s:
            return False
        short = self.short_of_attesters()
        if not short:
            return False
        self._warned_at = now
        key, waited, have, need, dst = short[0]
        cached = self._attesters.get(dst)
        need = need or (cached[1] if cached else 0)
        log.warning(
            "the bridge is short of attesters: messages wait for attestations, so rentals neither open on ETC "
            "nor settle; run more queens whose keys are bridge attesters with `blendr queen run --relay` "
            "(`blendr chain info` lists the attesters)",
            waiting_messages=len(short), oldest_hash=key[:16], oldest_waited_s=round(waited),
            attestations=have, needed=need or "?", dst_chain=dst,
            attesters=sorted(cached[0]) if cached else "?")
        return True

    async def run(self) -> None:
        """Delivers whenever woken by a k-th attestation, and every ``king.poll_s`` for retries; says in the
        log when the bridge is short of attesters (:meth:`warn_if_short`)."""
        while True:
            self.warn_if_short()
            try:
                if self._delivering:
                    await asyncio.to_thread(self.deliver_due)
            except asyncio.CancelledError:
                raise
            except BlendrError as exc:  # a store failure: the pass stopped; the next one resumes from the store
                log.warning("delivery pass failed", error=str(exc)[:300])
            except Exception:
                # Loop boundary: deliveries are the king's money path and must outlive a bug in one pass;
                # the traceback is logged and the pass retried after poll_s.
                log.exception("delivery pass failed (bug)")
            self._wake.clear()
            await wait_event(self._wake, self.cfg.poll_s)
