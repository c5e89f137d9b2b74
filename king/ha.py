"""Several kings on one shared store: a leader lease with fencing, and the followers' routing.

Every king serves renters and queens. One of them, the leader, holds the lease ``king-leader`` in the shared
store (PostgreSQL) and alone runs placement, rental creation, cancels, settlement following, bridge
deliveries and reward publishing. The others follow: they answer sign-ins, jobs and their event streams from
the store, and pass every other call (submissions, cancels, quotes, queens' sessions, attestations, outputs)
to the leader over gRPC, at the address the leader advertised in its lease.

Guarantees:

* At most one king acts as leader at a time, by the store's clock: the lease is taken only when free or
  expired, and every change of holder increases its fencing epoch.
* A leader's every store write is conditional on its epoch (:meth:`blendr.store.Store.fenced`), checked by the
  store in the same transaction: a king that was paused or cut off past its lease writes nothing once another
  king took over, and steps down, saying so in its log.
* A leader signs no chain transaction once its lease may have lapsed (:meth:`Leadership.guard`, checked by
  the chain client before every send): the lease counts from before the renewal was asked for, on this host's
  monotonic clock, so a pause (SIGSTOP, a stalled VM) uses it up.
* A call passed to the leader is never passed again: a king that receives a passed call and does not lead
  answers UNAVAILABLE, and the caller tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from blendr.errors import BlendrError, FencedError, UnavailableError
from blendr.store import Store
from blendr.telemetry import get_logger

log = get_logger("blendr.king.ha")

LEASE = "king-leader"
HOLD_S = 15.0  # how long a follower holds a call without a deadline while no king leads
FORWARDED = "x-blendr-forwarded"  # metadata a follower adds to a call it passes to the leader
PASSED_METADATA = ("authorization",)  # what of the caller's metadata reaches the leader


@dataclass(frozen=True)
class LeaseConfig:
    """The leader lease: how long it lasts and how often it is renewed (or, by followers, tried)."""

    ttl_s: float = 5.0
    renew_s: float = 1.0


class Leadership:
    """Takes, renews and gives up the king's leader lease; starts the leader's work when it wins the lease and stops
    it when it loses it.

    Args:
        store: The shared store (its lease table).
        holder: This king process's name in the lease (unique per process).
        address: ``HOST:PORT`` at which the other kings reach this one.
        lead: Called with the fencing epoch when this king becomes leader; it starts the leader's work.
        follow: Called with the reason when this king stops leading; it stops the leader's work.
    """

    def __init__(self, store: Store, holder: str, address: str, cfg: LeaseConfig,
                 lead: Callable[[int], Awaitable[None]], follow: Callable[[str], Awaitable[None]]) -> None:
        if not (0 < cfg.renew_s < cfg.ttl_s):
            raise ValueError(f"the lease renewal ({cfg.renew_s} s) must be shorter than the lease ({cfg.ttl_s} s)")
        self.store = store
        self.holder = holder
        self.address = address
        self.cfg = cfg
        self._lead = lead
        self._follow = follow
        self.epoch = 0  # the epoch this king leads at; 0: it does not lead
        self.leader_address = ""  # the leader's advertised address, as last read
        self.leader_epoch = 0
        self._valid_until = 0.0  # monotonic time when this king's lease may have lapsed
        self._starting: asyncio.Task[None] | None = None  # the leader's work being started
        self._changed = asyncio.Event()  # set (and replaced) whenever the leader, as this king sees it, changes

    @property
    def leading(self) -> bool:
        return self.epoch > 0 and time.monotonic() < self._valid_until

    def guard(self) -> None:
        """Raises FencedError unless this king leads and its lease cannot have lapsed (call before acting on chain)."""
        if self.epoch == 0:
            raise FencedError("this king does not lead: it acts on no chain (another king leads)")
        if time.monotonic() >= self._valid_until:
            raise FencedError(f"this king's leader lease (epoch {self.epoch}) may have lapsed: it acts on no chain "
                              "until it renews it")

    def view(self) -> Store:
        """The store as the leader writes it: every write conditional on this king's epoch."""
        return self.store.fenced(LEASE, self.holder, self.epoch)

    async def step(self) -> None:
        """One round: take or renew the lease, then start or stop leading as the outcome says."""
        asked = time.monotonic()
        try:
            lease = await asyncio.to_thread(self.store.acquire_lease, LEASE, self.holder, self.cfg.ttl_s, self.address)
        except BlendrError as exc:
            log.warning("the leader lease could not be read", error=str(exc)[:200])
            if self.epoch and time.monotonic() >= self._valid_until:
                await self._stop(f"the lease could not be renewed before it lapsed ({str(exc)[:120]})")
            return
        seen = (lease.address, lease.epoch) if lease.held else ("", 0)
        if seen != (self.leader_address, self.leader_epoch):
            self.leader_address, self.leader_epoch = seen
            log.info("leader", address=seen[0] or "(none)", epoch=seen[1])
            self._changed.set()
            self._changed = asyncio.Event()
        if lease.holder == self.holder:
            # the lease counts from before it was asked for: the store's clock may have started it a little later
            self._valid_until = asked + self.cfg.ttl_s
            if self.epoch != lease.epoch:
                if self.epoch:
                    await self._stop(f"the lease moved to epoch {lease.epoch}")
                self.epoch = lease.epoch
                log.info("this king leads", epoch=lease.epoch, address=self.address)
                # the leader's work starts beside this loop, which goes on renewing the lease meanwhile
                self._starting = asyncio.create_task(self._start(lease.epoch))
        elif self.epoch:
            await self._stop(f"fenced: king {lease.holder} ({lease.address or 'no address'}) took the lease at "
                             f"epoch {lease.epoch}; this king led at epoch {self.epoch} and stops acting on it")

    async def _start(self, epoch: int) -> None:
        try:
            await self._lead(epoch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the leader's work could not start (a chain or the store failed): let another try
            log.exception("this king could not start leading; giving the lease up", epoch=epoch,
                          error=f"{type(exc).__name__}: {str(exc)[:200]}")
            if self.epoch == epoch:
                await self.release()

    async def _stop(self, why: str) -> None:
        epoch, self.epoch = self.epoch, 0
        log.warning("this king no longer leads", was_epoch=epoch, reason=why)
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starting
        await self._follow(why)

    async def moved(self, epoch: int) -> None:
        """Returns once the leader (as this king sees it) is no longer the one at ``epoch``: another took over, or its
        lease lapsed."""
        while self.leader_epoch == epoch:
            await self._changed.wait()

    async def started(self) -> None:
        """Waits until the leader's work that this king started has started (or failed to)."""
        if self._starting is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(self._starting)

    async def run(self) -> None:
        """Rounds until cancelled; a failing round is logged and the next one tries again."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # loop boundary: leadership must keep being decided
                log.exception("a leader-lease round failed")
            delay = self.cfg.renew_s
            if self.epoch:  # leading: renew in time even when this round was slow
                delay = min(delay, max(0.05, self._valid_until - time.monotonic() - self.cfg.renew_s))
            await asyncio.sleep(delay)

    async def release(self) -> None:
        """Gives the lease up at once (a clean shutdown), so that another king leads without waiting for it to lapse."""
        if self._starting is not None and not self._starting.done() and self._starting is not asyncio.current_task():
            self._starting.cancel()
        if self.epoch:
            epoch, self.epoch = self.epoch, 0
            with contextlib.suppress(BlendrError):
                await asyncio.to_thread(self.store.release_lease, LEASE, self.holder)
            log.info("leader lease released", epoch=epoch)


# ---------------------------------------------------------------------- followers pass calls to the leader
def forwarded(context: grpc.aio.ServicerContext[Any, Any]) -> bool:
    return any(k == FORWARDED for k, _ in (context.invocation_metadata() or ()))


def passed_metadata(context: grpc.aio.ServicerContext[Any, Any]) -> list[tuple[str, str]]:
    md = [(k, v if isinstance(v, str) else v.decode(errors="replace"))
          for k, v in (context.invocation_metadata() or ()) if k in PASSED_METADATA]
    return [*md, (FORWARDED, "1")]


class LeaderLink:
    """gRPC channels to the leader, at the address in its lease (one channel, replaced when the leader moves)."""

    def __init__(self, leadership: Leadership, connect: Callable[[str], grpc.aio.Channel]) -> None:
        self.leadership = leadership
        self._connect = connect
        self._channel: grpc.aio.Channel | None = None
        self._target = ""
        self._closing: set[asyncio.Future[None]] = set()

    def channel(self, context: grpc.aio.ServicerContext[Any, Any]) -> grpc.aio.Channel:
        """The channel to the leader.

        Raises:
            UnavailableError: no king leads now, the call was passed here already, or the leader advertised no address.
        """
        if forwarded(context):
            raise UnavailableError("the king this call was passed to no longer leads (the leader is changing); "
                                   "try again in a few seconds")
        target = self.leadership.leader_address
        if not target or self.leadership.leader_epoch == 0:
            raise UnavailableError("no king leads right now (a new leader is being chosen); try again in a few seconds")
        if target == self.leadership.address:
            raise UnavailableError("this king is taking over as leader; try again in a few seconds")
        if target != self._target or self._channel is None:
            old = self._channel
            self._channel, self._target = self._connect(target), target
            if old is not None:
                self._closing.add(task := asyncio.ensure_future(old.close()))
                task.add_done_callback(self._closing.discard)
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


async def _reraise(exc: grpc.aio.AioRpcError, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    code = exc.code()
    if code in (grpc.StatusCode.CANCELLED,) and context.cancelled():
        return
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"the leading king is unreachable ({exc.details() or 'no details'}); try again in a few seconds"
    else:
        details = exc.details() or ""
    await context.abort(code, details)


def _timeout(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    left = context.time_remaining()
    return None if left is None or left > 86400 else max(0.1, left)


Resolve = Callable[[], Any]  # the servicer to use now (the leader's own, or the follower's), or None: pass it on


def routed(base: type, stub: type, methods: dict[str, str], local: Resolve, link: Callable[[], LeaderLink],
           follower: dict[str, Resolve] | None = None) -> Any:
    """A servicer of ``base``'s service whose every method calls ``local()``'s method when it gives a servicer (this
    king leads), else ``follower[name]()``'s for the methods a follower serves itself, else passes the call to the
    leader through ``stub``.

    ``methods`` maps each method's name to its kind: ``uu``, ``us`` (server stream), ``su`` (client stream), ``ss``.
    """
    follower = follower or {}

    def target(name: str) -> Any:
        s = local()
        if s is None and name in follower:
            s = follower[name]()
        return s

    def make(name: str, kind: str) -> Callable[..., Any]:
        if kind in ("uu", "su"):
            async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                # A call waits (within its deadline) while no king leads, and one sent to a leader that stops leading
                # before it answers is sent again to the next one (a unary request can be: every one of them is
                # idempotent); a client stream cannot be replayed, so it ends UNAVAILABLE.
                loop = asyncio.get_running_loop()
                left = context.time_remaining()
                give_up = loop.time() + (left if left is not None and left < 86400 else HOLD_S)
                while True:
                    s = target(name)
                    if s is not None:
                        return await getattr(s, name)(request, context)
                    try:
                        channel = link().channel(context)
                    except UnavailableError:
                        if forwarded(context) or loop.time() + 0.2 >= give_up:
                            raise
                        await asyncio.sleep(0.2)
                        continue
                    epoch = link().leadership.leader_epoch
                    call = getattr(stub(channel), name)(request, metadata=passed_metadata(context),
                                                        timeout=_timeout(context))
                    answer = asyncio.ensure_future(call)
                    moved = asyncio.ensure_future(link().leadership.moved(epoch))
                    try:
                        await asyncio.wait({answer, moved}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        moved.cancel()
                    if not answer.done():
                        answer.cancel()
                        if kind == "su":
                            raise UnavailableError("the leading king stopped answering mid-upload; send it again")
                        continue  # the leader changed under this call: send it to the new one
                    try:
                        return answer.result()
                    except grpc.aio.AioRpcError as exc:
                        if (kind == "uu" and exc.code() == grpc.StatusCode.UNAVAILABLE
                                and link().leadership.leader_epoch != epoch and loop.time() < give_up):
                            continue  # the old leader went away answering it: the new one gets it
                        await _reraise(exc, context)
                        return None
            return unary

        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            s = target(name)
            if s is not None:
                async for msg in getattr(s, name)(request, context):
                    yield msg
                return
            epoch = link().leadership.leader_epoch
            call = getattr(stub(link().channel(context)), name)(
                request, metadata=passed_metadata(context), timeout=_timeout(context))
            moved = asyncio.ensure_future(link().leadership.moved(epoch))
            try:
                while True:
                    read = asyncio.ensure_future(call.read())
                    await asyncio.wait({read, moved}, return_when=asyncio.FIRST_COMPLETED)
                    if not read.done():  # the leader it reached no longer leads: the caller opens it again
                        read.cancel()
                        raise UnavailableError("the leading king changed; open the stream again")
                    msg = read.result()
                    if msg is grpc.aio.EOF:
                        return
                    yield msg
            except grpc.aio.AioRpcError as exc:
                await _reraise(exc, context)
            finally:
                moved.cancel()
                call.cancel()
        return stream

    attrs = {name: make(name, kind) for name, kind in methods.items()}
    return type(f"Routed{base.__name__}", (base,), attrs)()
