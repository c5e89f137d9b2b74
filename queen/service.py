"""gRPC servicers of a queen: convert, delegate to :class:`~queen.core.QueenCore`.

No business logic here. Domain errors are raised as BlendrErrors; the interceptor every server has
(:mod:`blendr.rpc.interceptor`) maps them to precise status codes, and anything unexpected to INTERNAL
with only a logged error id. A provider stream's reader task ends its stream with the same mapping
(:func:`~blendr.rpc.status.status_of`); a message on the stream that cannot be decoded is INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from blendr.aio import within
from blendr.errors import (
    BlendrError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
)
from blendr.identity import Address
from blendr.outputs import drain_upload
from blendr.rpc import convert as shared
from blendr.rpc.status import status_of
from blendr.telemetry import get_logger
from protos.blendr.v1 import outputs_pb2 as opb
from protos.blendr.v1 import queen_pb2 as pb
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc
from queen import convert
from queen.core import Outbound, QueenCore
from queen.outputs import OutputRelay, first_header

log = get_logger("blendr.queen.rpc")

HANDSHAKE_TIMEOUT_S = 30.0
OUTBOUND_QUEUE = 256

class _Closed(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StreamLink:
    """One provider stream: a bounded outbound queue and a way to end the stream."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[pb.QueenMessage | _Closed] = asyncio.Queue(OUTBOUND_QUEUE)

    def send(self, msg: Outbound) -> None:
        try:
            self._put(convert.outbound_to_proto(msg))
        except asyncio.QueueFull:
            # The provider is not reading its stream: end it rather than block or drop silently.
            self.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "provider is not reading its stream")

    def close(self, reason: str) -> None:
        self._put(_Closed(grpc.StatusCode.ABORTED, reason), force=True)

    def refuse(self, reason: str) -> None:
        self._put(_Closed(grpc.StatusCode.PERMISSION_DENIED, reason), force=True)

    def fail(self, code: grpc.StatusCode, reason: str) -> None:
        self._put(_Closed(code, reason), force=True)

    def _put(self, item: pb.QueenMessage | _Closed, force: bool = False) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            if not force:
                raise
            # A stuck provider: make room for the close so the stream can end.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(item)


class QueenServicer(pb_grpc.QueenServiceServicer):
    """``QueenService.Connect``: admission handshake, then heartbeats and challenges on one stream."""

    def __init__(self, core: QueenCore, outputs: OutputRelay | None = None) -> None:
        self.core = core
        self.outputs = outputs  # relays jobs' outputs to the king; None: this queen has no king

    async def UploadOutput(self, request_iterator: AsyncIterator[opb.OutputUpload],
                           context: grpc.aio.ServicerContext[Any, Any]) -> opb.OutputReceipt:
        it = request_iterator.__aiter__()
        header = await first_header(it)  # first: an undecodable upload is INVALID_ARGUMENT on any queen
        if self.outputs is None:
            raise FailedPreconditionError("this queen has no king to send job outputs to")
        try:
            return opb.OutputReceipt(stored_bytes=await self.outputs.relay(header, it))
        except BlendrError:
            await drain_upload(it)
            raise

    async def Connect(
        self, request_iterator: AsyncIterator[pb.ProviderMessage], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.QueenMessage]:
        link = StreamLink()
        address: Address | None = None
        reader: asyncio.Task[None] | None = None
        try:
            first = await self._next(request_iterator, "hello")
            if first.WhichOneof("body") != "hello":
                raise InvalidArgumentError("the first message on a stream must be a hello")
            hello = shared.hello_from_proto(first.hello, max_devices=self.core.cfg.max_devices)
            self.core.check_hello(hello)
            ask = self.core.check_ask(first.hello.ask_per_gpu_hour)
            nonce = self.core.admission.new_nonce()
            yield convert.admission_challenge_to_proto(nonce, self.core.address)
            answer = await self._next(request_iterator, "admission response")
            if answer.WhichOneof("body") != "admission_response":
                raise InvalidArgumentError("expected an admission_response after the admission challenge")
            admitted = self.core.admit(hello, nonce, bytes(answer.admission_response.signature), link,
                                       ask_per_gpu_hour=ask)
            address = admitted.address
            yield convert.admitted_to_proto(admitted)
            reader = asyncio.create_task(self._read(address, request_iterator, link))
            while True:
                item = await link.queue.get()
                if not isinstance(item, _Closed):
                    yield item
                elif item.code == grpc.StatusCode.OK:
                    return
                else:
                    await context.abort(item.code, item.reason)
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
            if address is not None:
                self.core.detach(address, link)

    @staticmethod
    async def _next(it: AsyncIterator[pb.ProviderMessage], what: str) -> pb.ProviderMessage:
        try:
            return await within(anext(it), HANDSHAKE_TIMEOUT_S)
        except StopAsyncIteration:
            raise InvalidArgumentError(f"stream ended before the {what}") from None
        except TimeoutError:
            raise DeadlineExceededError(f"no {what} within {HANDSHAKE_TIMEOUT_S:.0f}s") from None

    async def _read(self, address: Address, it: AsyncIterator[pb.ProviderMessage], link: StreamLink) -> None:
        try:
            async for msg in it:
                await self._dispatch(address, msg)
            link.fail(grpc.StatusCode.OK, "provider closed the stream")
        except BlendrError as exc:
            log.warning("provider message refused", provider=address, error=str(exc))
            link.fail(*status_of(exc, f"provider stream {address}"))
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError:
            link.fail(grpc.StatusCode.CANCELLED, "stream broken")
        except Exception as exc:
            # Stream boundary: a bug handling one provider's message ends that stream with INTERNAL (an error id
            # only) instead of killing the reader silently; the traceback is logged with that id.
            link.fail(*status_of(exc, f"provider stream {address}"))

    async def _dispatch(self, address: Address, msg: pb.ProviderMessage) -> None:
        kind = msg.WhichOneof("body")
        if kind == "heartbeat":
            hb = msg.heartbeat
            self.core.heartbeat(address, shared.readiness_from_proto(hb.readiness) if hb.HasField("readiness")
                                else None)
        elif kind == "commitment":
            self.core.heartbeat(address)
            self.core.commitment(address, msg.commitment.challenge_id, convert.commitment_from_proto(msg.commitment))
        elif kind == "openings":
            self.core.heartbeat(address)
            await self.core.openings(address, msg.openings.challenge_id, shared.openings_from_proto(msg.openings))
        elif kind == "challenge_error":
            self.core.challenge_error(address, msg.challenge_error.challenge_id, msg.challenge_error.reason)
        elif kind == "job_update":
            self.core.job_update(address, convert.job_event_from_proto(msg.job_update))
        elif kind is None:
            raise InvalidArgumentError("empty provider message")
        else:
            raise InvalidArgumentError(f"unexpected {kind} after admission")


class QueenAdminServicer(pb_grpc.QueenAdminServicer):
    """``QueenAdmin.ListProviders``: the operator's view of the pool."""

    def __init__(self, core: QueenCore) -> None:
        self.core = core

    async def ListProviders(
        self, request: pb.ListProvidersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListProvidersResponse:
        out = pb.ListProvidersResponse(queen_address=self.core.address)
        for rec in self.core.providers(convert.states_from_proto(request.states)):
            out.providers.append(convert.provider_info_to_proto(rec, self.core.pool.connected_seconds(rec)))
        return out
