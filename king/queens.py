"""Queens' sessions on the king (``KingControl.QueenSession``): registration, pool snapshots, job traffic.

A queen proves who it is with a registration it signed for this king (fresh timestamp, used once: the replay
check is keyed on what was signed, not on the signature's bytes, whose ``v`` has several encodings), and must
hold the queen-tier stake on Ethereum. One session per queen: a new one replaces the old. Incoming snapshots
and job events are converted (king.convert) and handed to a :class:`QueenListener` (the king's core); challenge
verdicts and landed ETC batches (for the network view) to a :class:`NetworkSink`, which bounds and checks them
(king.netview: a queen may only report on its own pool, and only change its own reports);
assignments and stops go back down the queen's stream (``QueenHub.assign`` returns False when the queen is not
connected, so the core can move the job).
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from eth_utils import to_checksum_address

from blendr.aio import within
from blendr.clock import Clock
from blendr.errors import BlendrError, InvalidArgumentError, PermissionDeniedError, StoreError
from blendr.rpc.registration import recover_queen_registration
from blendr.telemetry import get_logger
from king import convert
from king.context import Assignment
from king.lifecycle import QueenEvent
from king.netview import Accepted, RawVerdict, SessionInfo
from king.scheduler import ProviderOffer
from protos.blendr.v1 import king_pb2 as kpb

log = get_logger("blendr.king.queens")

MAX_SKEW_S = 300
MAX_SNAPSHOT_PROVIDERS = 10_000  # providers one pool snapshot may list


HEARTBEAT_S = 2.0  # a quiet session carries QueenRegistered again this often (QueenRegistered.heartbeat_interval_s)


class QueenListener(Protocol):
    """What the king does with a queen's traffic (king.core.KingCore)."""

    def on_snapshot(self, queen: str, seq: int, providers: list[tuple[ProviderOffer, bytes, int]]) -> None: ...
    def on_queen_event(self, queen: str, ev: QueenEvent) -> None: ...
    def on_queen_connected(self, queen: str) -> None: ...
    def on_queen_disconnected(self, queen: str) -> None: ...


SESSION_QUEUE = 10_000  # messages to one queen not yet taken by its stream; more end the session
STAKE_CACHE_S = 60.0  # a queen's stake check is reused this long (a flood of registrations costs one read)


class NetworkSink(Protocol):
    """What the king does with a queen's challenge reports (king.netview.NetworkDesk)."""

    def on_verdicts(self, queen: str, verdicts: Sequence[RawVerdict]) -> Accepted: ...
    def on_batch_landed(self, queen: str, batch_id: str, tx: str,
                        rentals: Sequence[tuple[bytes, Sequence[str]]]) -> int: ...


@dataclass
class _Session:
    queen: str
    queue: asyncio.Queue[kpb.KingToQueen | None]
    endpoint: str = ""
    connected_unix: float = 0.0
    last_snapshot_unix: float = 0.0

    def close(self) -> None:
        """Ends the session's stream at once: what it had not sent is dropped (the king re-sends live jobs'
        assignments to the queen's next session)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class QueenHub:
    """The connected queens and their outgoing streams (used from the king's event loop)."""

    def __init__(self, king_address: str, clock: Clock, *, stake_check: Callable[[str], tuple[bool, str]],
                 snapshot_interval_s: float = 5.0, accept_any_king: bool = False) -> None:
        self.king = to_checksum_address(king_address)
        self.clock = clock
        self.accept_any_king = accept_any_king
        self._used: dict[tuple[str, str, int, str], float] = {}  # registrations accepted, until they are stale
        self._expiry: list[tuple[float, tuple[str, str, int, str]]] = []  # heap of (stale at, registration)
        self._stake: dict[str, tuple[float, bool, str]] = {}  # queen -> (checked at, ok, why)
        self.stake_check = stake_check
        self.snapshot_interval_s = snapshot_interval_s
        self.sessions: dict[str, _Session] = {}
        self.network: NetworkSink | None = None  # the network view's desk; None: queens' verdicts are ignored

    def session_info(self) -> list[SessionInfo]:
        """The connected queens' sessions, for the network view."""
        return [SessionInfo(s.queen, s.endpoint, s.connected_unix, s.last_snapshot_unix)
                for s in self.sessions.values()]

    def connected(self, queen: str) -> bool:
        return to_checksum_address(queen) in self.sessions

    def assign(self, queen: str, a: Assignment) -> bool:
        return self._send(queen, convert.assignment_to_proto(a))

    def stop(self, queen: str, job_id: str, attempt: int, reason: str) -> bool:
        return self._send(queen, convert.stop_to_proto(job_id, attempt, reason))

    def _send(self, queen: str, msg: kpb.KingToQueen) -> bool:
        """Queues ``msg`` for the queen's stream; False when it has none, or one that does not read (its
        session is then ended, as a queen that takes nothing cannot be given more)."""
        s = self.sessions.get(to_checksum_address(queen))
        if s is None:
            return False
        if s.queue.qsize() >= SESSION_QUEUE:
            log.warning("a queen does not read its stream; ending its session", queen=s.queen)
            s.close()  # its stream returns at once; the session's end is recorded there (jobs move after the grace)
            return False
        s.queue.put_nowait(msg)
        return True

    async def register(self, reg: kpb.QueenRegistration) -> str:
        """Checks a registration; returns the queen's address.

        Raises:
            PermissionDeniedError: a signature by another key, a registration for another king, a stale
                timestamp, or a queen without its stake.
        """
        try:
            queen = recover_queen_registration(reg.queen_address, reg.king_address, reg.timestamp, reg.endpoint,
                                               bytes(reg.signature))
        except BlendrError as exc:
            raise PermissionDeniedError(f"queen registration refused: {exc}") from None
        if reg.king_address and to_checksum_address(reg.king_address) != self.king:
            raise PermissionDeniedError(f"the registration is for king {reg.king_address}, not {self.king}")
        if not reg.king_address and not self.accept_any_king:
            raise PermissionDeniedError(f"the registration names no king: set relay.king_address = \"{self.king}\" "
                                        "on the queen")
        now = self.clock.time()
        if abs(now - reg.timestamp) > MAX_SKEW_S:
            raise PermissionDeniedError("the registration timestamp is stale (more than 5 minutes off): check the "
                                        "queen's clock")
        while self._expiry and self._expiry[0][0] < now:
            _, stale = heapq.heappop(self._expiry)
            self._used.pop(stale, None)
        # keyed on what the queen signed: the same registration under another encoding of the signature's v
        # (27/28, 0/1, 37/38) is the same registration
        key = (str(queen), to_checksum_address(reg.king_address) if reg.king_address else "", int(reg.timestamp),
               reg.endpoint)
        if key in self._used:
            raise PermissionDeniedError("this registration was used already (a replay?): the queen signs a fresh "
                                        "one for every session")
        ok, why = await self._staked(str(queen))
        if not ok:
            raise PermissionDeniedError(f"queen {queen} may not serve this king: {why}")
        if key in self._used:  # the same registration, twice at once: the first one won
            raise PermissionDeniedError("this registration was used already (a replay?)")
        # only a staked queen's registration is remembered: refused ones cost the king no memory
        self._used[key] = reg.timestamp + MAX_SKEW_S
        heapq.heappush(self._expiry, (reg.timestamp + MAX_SKEW_S, key))
        return str(queen)

    async def _staked(self, queen: str) -> tuple[bool, str]:
        now = self.clock.monotonic()
        cached = self._stake.get(queen)
        if cached is not None and now - cached[0] < STAKE_CACHE_S:
            return cached[1], cached[2]
        ok, why = await asyncio.to_thread(self.stake_check, queen)
        if len(self._stake) >= 10_000:
            self._stake.clear()
        self._stake[queen] = (now, ok, why)
        return ok, why

    async def session(self, request_iterator: AsyncIterator[kpb.QueenToKing],
                      listener: QueenListener) -> AsyncIterator[kpb.KingToQueen]:
        """Serves one queen's session: registration first, then its traffic to ``listener`` and the king's
        assignments and stops back, until either side ends it.

        Raises:
            InvalidArgumentError, PermissionDeniedError: a session that does not start with a valid registration.
        """
        reader: asyncio.Task[None] | None = None
        sess: _Session | None = None
        try:
            try:
                first = await within(request_iterator.__anext__(), 30)
            except (StopAsyncIteration, TimeoutError):
                raise InvalidArgumentError("a queen session starts with a registration") from None
            if first.WhichOneof("body") != "registration":
                raise InvalidArgumentError("the first message of a queen session must be its registration")
            queen = await self.register(first.registration)
            old = self.sessions.get(queen)
            if old is not None:
                old.close()
            sess = _Session(queen, asyncio.Queue(), first.registration.endpoint[:256], self.clock.time())
            self.sessions[queen] = sess
            log.info("queen registered", queen=queen, endpoint=first.registration.endpoint)
            hello = kpb.KingToQueen(registered=kpb.QueenRegistered(
                king_address=self.king, snapshot_interval_s=self.snapshot_interval_s,
                heartbeat_interval_s=HEARTBEAT_S))
            yield hello
            listener.on_queen_connected(queen)
            reader = asyncio.create_task(self._read(queen, request_iterator, sess, listener))
            while True:
                try:
                    item = await within(sess.queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield hello  # the heartbeat: a queen that hears nothing takes this king for paused or gone
                    continue
                if item is None:
                    return
                yield item
        finally:
            if reader is not None:
                reader.cancel()
                try:
                    await reader
                except asyncio.CancelledError:
                    pass
                except Exception:  # stream boundary: whatever ended the reader, the session must be removed
                    log.exception("a queen session's reader failed", queen=sess.queen if sess else "")
            if sess is not None and self.sessions.get(sess.queen) is sess:
                del self.sessions[sess.queen]
                log.info("queen session ended", queen=sess.queen)
                listener.on_queen_disconnected(sess.queen)

    async def _read(self, queen: str, it: AsyncIterator[kpb.QueenToKing], sess: _Session,
                    listener: QueenListener) -> None:
        """Takes the queen's messages until its stream ends. A message that is malformed, or that the king
        cannot apply, is dropped with a warning; the session goes on (one provider's bad update must not cut
        its whole queen off)."""
        try:
            async for msg in it:
                try:
                    self._apply(queen, msg, listener, sess)
                except StoreError as exc:
                    # not the queen's fault: the king could not record it (its database is away). Ending the session
                    # makes the queen redial and send its latest events again (the king ignores the ones it has).
                    log.warning("the king could not record a queen's message; ending the session so that the queen "
                                "sends it again", queen=queen, error=str(exc)[:300])
                    break
                except BlendrError as exc:
                    log.warning("a queen's message was refused", queen=queen, error=str(exc)[:300])
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except BlendrError as exc:  # the stream itself (e.g. an undecodable message): the session ends
            log.warning("bad stream from a queen; its session ends", queen=queen, error=str(exc)[:300])
        finally:
            sess.queue.put_nowait(None)

    def _apply(self, queen: str, msg: kpb.QueenToKing, listener: QueenListener, sess: _Session) -> None:
        kind = msg.WhichOneof("body")
        if kind == "snapshot":
            if len(msg.snapshot.providers) > MAX_SNAPSHOT_PROVIDERS:
                raise InvalidArgumentError(f"a pool snapshot lists {len(msg.snapshot.providers)} providers (at most "
                                           f"{MAX_SNAPSHOT_PROVIDERS})")
            offers = [o for o in (convert.offer_from_proto(p, queen) for p in msg.snapshot.providers) if o is not None]
            listener.on_snapshot(queen, msg.snapshot.seq, offers)
            sess.last_snapshot_unix = self.clock.time()
        elif kind == "job_event":
            listener.on_queen_event(queen, convert.queen_event_from_proto(msg.job_event))
        elif kind == "verdicts" and self.network is not None:
            got = self.network.on_verdicts(queen, convert.verdicts_from_proto(msg.verdicts))
            if got.refused:
                log.warning("a queen's challenge verdicts were refused", queen=queen, kept=got.kept,
                            refused=got.refused, first_reason=got.why[:200])
        elif kind == "batch_landed" and self.network is not None:
            b = msg.batch_landed
            self.network.on_batch_landed(queen, b.batch_id, b.tx, convert.batched_from_proto(b))
