"""Queens' sessions on the king (``KingControl.QueenSession``): registration, pool snapshots, job traffic.

A queen proves who it is with a registration it signed for this king (fresh timestamp), and must hold the
queen-tier stake on Ethereum. One session per queen: a new one replaces the old. Snapshots and job events go
to the job manager; assignments and stops go back down the queen's stream (``QueenHub.assign`` returns
False when the queen is not connected, so the job manager can move the job).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from eth_utils import to_checksum_address

from blendr.clock import Clock
from blendr.errors import BlendrError, InvalidArgumentError, PermissionDeniedError
from blendr.jobspec import parse_wei
from blendr.rpc.registration import recover_queen_registration
from blendr.rpc.status import status_for
from blendr.telemetry import get_logger
from king.scheduler import ProviderOffer
from protos.blendr.v1 import king_pb2 as kpb

log = get_logger("blendr.king.queens")

MAX_SKEW_S = 300


@dataclass
class _Session:
    queen: str
    queue: asyncio.Queue[kpb.KingToQueen | None]


class QueenHub:
    """The connected queens and their outgoing streams (used from the king's event loop)."""

    def __init__(self, king_address: str, clock: Clock, *, stake_check: Callable[[str], tuple[bool, str]],
                 snapshot_interval_s: float = 5.0, accept_any_king: bool = False) -> None:
        self.king = to_checksum_address(king_address)
        self.clock = clock
        self.accept_any_king = accept_any_king
        self._used: dict[bytes, float] = {}  # registration signatures seen, until they are stale anyway
        self.stake_check = stake_check
        self.snapshot_interval_s = snapshot_interval_s
        self.sessions: dict[str, _Session] = {}
        self.jobs: Any = None  # king.jobs.JobManager, set by the app

    def connected(self, queen: str) -> bool:
        return to_checksum_address(queen) in self.sessions

    def assign(self, queen: str, a: dict[str, Any]) -> bool:
        s = self.sessions.get(to_checksum_address(queen))
        if s is None:
            return False
        s.queue.put_nowait(kpb.KingToQueen(assign=kpb.JobAssignment(
            job_id=a["job_id"], attempt=a["attempt"], provider=a["provider"], gpus=a["gpus"], rental_id=a["rental_id"],
            deadline_unix=a["deadline_unix"], ciphertext=a["ciphertext"], sealed_key=a["sealed_key"], aad=a["aad"])))
        return True

    def stop(self, queen: str, job_id: str, attempt: int, reason: str) -> bool:
        s = self.sessions.get(to_checksum_address(queen))
        if s is None:
            return False
        s.queue.put_nowait(kpb.KingToQueen(stop=kpb.JobStop(job_id=job_id, attempt=attempt, reason=reason)))
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
        for sig, until in list(self._used.items()):
            if until < now:
                del self._used[sig]
        if bytes(reg.signature) in self._used:
            raise PermissionDeniedError("this registration was used already (a replay?): the queen signs a fresh "
                                        "one for every session")
        self._used[bytes(reg.signature)] = reg.timestamp + MAX_SKEW_S
        ok, why = await asyncio.to_thread(self.stake_check, queen)
        if not ok:
            raise PermissionDeniedError(f"queen {queen} may not serve this king: {why}")
        return str(queen)

    async def session(self, request_iterator: AsyncIterator[kpb.QueenToKing],
                      context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[kpb.KingToQueen]:
        reader: asyncio.Task[None] | None = None
        sess: _Session | None = None
        try:
            try:
                first = await asyncio.wait_for(request_iterator.__anext__(), 30)
            except (StopAsyncIteration, TimeoutError):
                raise InvalidArgumentError("a queen session starts with a registration") from None
            if first.WhichOneof("body") != "registration":
                raise InvalidArgumentError("the first message of a queen session must be its registration")
            queen = await self.register(first.registration)
            old = self.sessions.get(queen)
            if old is not None:
                old.queue.put_nowait(None)
            sess = _Session(queen, asyncio.Queue())
            self.sessions[queen] = sess
            log.info("queen registered", queen=queen, endpoint=first.registration.endpoint)
            yield kpb.KingToQueen(registered=kpb.QueenRegistered(king_address=self.king,
                                                                 snapshot_interval_s=self.snapshot_interval_s))
            if self.jobs is not None:
                self.jobs.on_queen_connected(queen)
            reader = asyncio.create_task(self._read(queen, request_iterator, sess))
            while True:
                item = await sess.queue.get()
                if item is None:
                    return
                yield item
        except BlendrError as exc:
            await context.abort(status_for(exc), str(exc))
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            if sess is not None and self.sessions.get(sess.queen) is sess:
                del self.sessions[sess.queen]
                log.info("queen session ended", queen=sess.queen)
                if self.jobs is not None:
                    self.jobs.on_queen_disconnected(sess.queen)

    async def _read(self, queen: str, it: AsyncIterator[kpb.QueenToKing], sess: _Session) -> None:
        try:
            async for msg in it:
                kind = msg.WhichOneof("body")
                if self.jobs is None:
                    continue
                if kind == "snapshot":
                    self.jobs.on_snapshot(queen, msg.snapshot.seq, [_offer(p, queen) for p in msg.snapshot.providers])
                elif kind == "job_event":
                    e = msg.job_event
                    self.jobs.on_queen_event(queen, {"job_id": e.job_id, "attempt": e.attempt, "seq": e.seq,
                                                     "kind": e.kind, "message": e.message, "progress": e.progress,
                                                     "ts": e.ts_unix, "exit_code": e.exit_code})
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except BlendrError as exc:
            log.warning("bad message from a queen", queen=queen, error=str(exc))
        finally:
            sess.queue.put_nowait(None)


def _offer(p: kpb.PoolProvider, queen: str) -> tuple[ProviderOffer, bytes, int]:
    try:
        ask = parse_wei(p.ask_per_gpu_hour or "0", "ask_per_gpu_hour")
        addr = to_checksum_address(p.address)
    except (BlendrError, ValueError):
        raise InvalidArgumentError(f"malformed provider {p.address!r} in a pool snapshot") from None
    from blendr.identity import recover_admission_key

    # The provider's own signature admitting it to this queen: a queen cannot list a provider that never joined
    # it, and the payload key is sealed to the key that signed (not to a key the queen merely names).
    try:
        pub = recover_admission_key(queen, addr, bytes(p.admission_nonce), bytes(p.admission_signature))
        valid = len(pub) == 64 and (not p.public_key or bytes(p.public_key) == pub)
    except BlendrError:
        valid = False
    if not valid:
        log.warning("a pool snapshot lists a provider without its admission to this queen", provider=addr,
                    queen=queen)
        pub = b""
    offer = ProviderOffer(addr, to_checksum_address(queen), p.gpu_model, int(p.gpus), int(p.vram_bytes),
                          float(p.tflops), ask, 5000, float(p.uptime), bool(p.alive) and valid)
    return offer, pub, int(p.busy_gpus)
