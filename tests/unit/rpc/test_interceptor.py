"""ErrorInterceptor through a real grpc.aio server on port 0, built by ``start_server`` like every node's.

The test service speaks the health messages (any protobuf would do): the request's ``service`` field says
what the servicer does (``ok``, ``invalid``, ``huge``, ``bug``, ``abort``, ``unimplemented``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from blendr.config import load_config
from blendr.errors import BlendrError, InvalidArgumentError, NotFoundError, ResourceExhaustedError
from blendr.rpc.interceptor import message_type_name
from blendr.rpc.server import ServerHandle, start_server
from blendr.rpc.status import MAX_DETAILS_BYTES, bounded, details_for, status_for

SERVICE = "test.Errors"
Req = health_pb2.HealthCheckRequest
Resp = health_pb2.HealthCheckResponse
OK = Resp(status=Resp.SERVING)
SECRET_URL = "https://rpc.example/v2/SECRET-API-KEY"
GARBAGE = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, a length far beyond the message: protobuf refuses it


class TheirError(BlendrError):
    """A BlendrError subclass without its own row in the table (so INTERNAL, with its message)."""


def act(what: str) -> None:
    """What every test behaviour does before answering."""
    if what == "invalid":
        raise InvalidArgumentError("job id must be 32 hex characters")
    if what == "huge":
        raise ResourceExhaustedError("echo: " + "é" * (1 << 20))
    if what == "bug":
        raise RuntimeError(f"connection to {SECRET_URL} refused")
    if what == "theirs":
        raise TheirError("not in the table")
    if what == "unimplemented":
        raise NotImplementedError("Method not implemented!")


class Servicer:
    """One behaviour of every shape grpc.aio runs: async and sync, unary and streaming, both stream APIs."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.closed: asyncio.Event = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def unary(self, request: Any, context: Any) -> Any:
        self.seen.append(request.service)
        if request.service == "abort":
            await context.abort(grpc.StatusCode.NOT_FOUND, "aborted by the servicer")
        if request.service == "set_code":
            context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
            context.set_details("set by the servicer")
            return Resp()
        if request.service == "hang":
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        act(request.service)
        return OK

    def sync_unary(self, request: Any, context: Any) -> Any:
        self.seen.append(request.service)
        act(request.service)
        return OK

    async def server_stream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.seen.append(request.service)
        try:
            yield OK
            if request.service == "hang":
                await asyncio.sleep(60)
            act(request.service)
            yield OK
        finally:
            self.closed.set()

    def sync_stream(self, request: Any, context: Any) -> Iterator[Any]:
        self.seen.append(request.service)
        yield OK
        act(request.service)
        yield OK

    async def client_stream(self, requests: AsyncIterator[Any], context: Any) -> Any:
        async for request in requests:
            self.seen.append(request.service)
            act(request.service)
        return OK

    async def bidi(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for request in requests:
            self.seen.append(request.service)
            act(request.service)
            yield OK

    async def reader_writer(self, request: Any, context: Any) -> None:
        self.seen.append(request.service)
        await context.write(OK)
        act(request.service)
        await context.write(OK)

    async def reads_in_a_task(self, requests: AsyncIterator[Any], context: Any) -> Any:
        """Like the queen's provider stream: a task reads, and the handler reports what the task raised."""
        async def read() -> None:
            async for request in requests:
                self.seen.append(request.service)
        try:
            await asyncio.create_task(read())
        except InvalidArgumentError as exc:
            raise NotFoundError(f"reader stopped: {exc}") from None
        return OK

    def handler(self) -> grpc.GenericRpcHandler:
        des, ser = Req.FromString, Resp.SerializeToString
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary, des, ser),
            "SyncUnary": grpc.unary_unary_rpc_method_handler(self.sync_unary, des, ser),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream, des, ser),
            "SyncStream": grpc.unary_stream_rpc_method_handler(self.sync_stream, des, ser),
            "ReaderWriter": grpc.unary_stream_rpc_method_handler(self.reader_writer, des, ser),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream, des, ser),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi, des, ser),
            "ReadsInATask": grpc.stream_unary_rpc_method_handler(self.reads_in_a_task, des, ser),
        })


Server = tuple[Servicer, grpc.aio.Channel]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    cfg = load_config(tmp_path, overrides={"rpc.tls": False, "metrics.port": -1}, env={})
    servicer = Servicer()
    handle: ServerHandle = await start_server(
        cfg, "127.0.0.1:0", [lambda s: s.add_generic_rpc_handlers((servicer.handler(),))], service_names=[SERVICE])
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}")
    yield servicer, channel
    await channel.close()
    await handle.stop(None)


def unary(channel: grpc.aio.Channel, name: str, *, raw: bool = False) -> Any:
    return channel.unary_unary(f"/{SERVICE}/{name}", request_serializer=None if raw else Req.SerializeToString,
                               response_deserializer=Resp.FromString)


def unary_stream(channel: grpc.aio.Channel, name: str, *, raw: bool = False) -> Any:
    return channel.unary_stream(f"/{SERVICE}/{name}", request_serializer=None if raw else Req.SerializeToString,
                                response_deserializer=Resp.FromString)


def stream_unary(channel: grpc.aio.Channel, name: str) -> Any:
    return channel.stream_unary(f"/{SERVICE}/{name}", request_serializer=None, response_deserializer=Resp.FromString)


def stream_stream(channel: grpc.aio.Channel, name: str) -> Any:
    return channel.stream_stream(f"/{SERVICE}/{name}", request_serializer=None,
                                 response_deserializer=Resp.FromString)


def msg(what: str) -> bytes:
    return bytes(Req(service=what).SerializeToString())


async def failure(call: Any) -> grpc.aio.AioRpcError:
    """The error a call ends with, after reading every response it streams (at most one before the error)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if hasattr(call, "__aiter__"):
            got = [r async for r in call]
            assert len(got) <= 1
        else:
            await call
    return info.value


UNARY_SHAPES = ["Unary", "SyncUnary"]
STREAMING_SHAPES = ["ServerStream", "SyncStream", "ReaderWriter"]


def call_shape(channel: grpc.aio.Channel, shape: str, what: str) -> Any:
    if shape in UNARY_SHAPES:
        return unary(channel, shape)(Req(service=what), timeout=10)
    if shape in STREAMING_SHAPES:
        return unary_stream(channel, shape)(Req(service=what), timeout=10)
    if shape == "ClientStream":
        return stream_unary(channel, shape)(iter([msg("ok"), msg(what)]), timeout=10)
    return stream_stream(channel, shape)(iter([msg("ok"), msg(what)]), timeout=10)


ALL_SHAPES = [*UNARY_SHAPES, *STREAMING_SHAPES, "ClientStream", "Bidi"]


# --- our errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ALL_SHAPES)
async def test_a_blendr_error_becomes_its_status_and_message(server: Server, shape: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    _, channel = server
    err = await failure(call_shape(channel, shape, "invalid"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "job id must be 32 hex characters"
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("shape", ["Unary", "SyncUnary", "ServerStream", "Bidi"])
async def test_a_megabyte_message_is_cut_and_the_code_survives(server: Server, shape: str) -> None:
    _, channel = server
    err = await failure(call_shape(channel, shape, "huge"))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = err.details()
    assert details.startswith("echo: éé") and details.endswith("…")
    assert len(details.encode()) <= MAX_DETAILS_BYTES


async def test_an_error_class_without_a_row_is_internal_with_an_error_id_only(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    # Such errors (a store, chain or TLS failure) may name store keys, paths or URLs: none reaches the client.
    _, channel = server
    caplog.set_level(logging.DEBUG)
    err = await failure(unary(channel, "Unary")(Req(service="theirs"), timeout=10))
    assert err.code() == grpc.StatusCode.INTERNAL and "not in the table" not in (err.details() or "")
    assert _logged_error_id(err, caplog) is not None


# --- bugs -------------------------------------------------------------------------------------------------


def _logged_error_id(err: grpc.aio.AioRpcError, caplog: pytest.LogCaptureFixture) -> str | None:
    """The error id the status text names, when exactly that id was logged with the exception."""
    details = err.details() or ""
    m = re.fullmatch(r"internal error ([0-9a-f]{12}); the server logged it", details)
    assert m, details
    logged = [r for r in caplog.records if r.exc_info and r.__dict__.get("blendr_fields", {}).get("error_id") == m[1]]
    return m[1] if len(logged) == 1 else None


@pytest.mark.parametrize("shape", ALL_SHAPES)
async def test_a_bug_is_internal_with_a_generic_text_and_logged_once(server: Server, shape: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    _, channel = server
    caplog.set_level(logging.DEBUG)
    err = await failure(call_shape(channel, shape, "bug"))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "SECRET" not in (err.debug_error_string() or "") and "RuntimeError" not in (err.details() or "")
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1, [r.getMessage() for r in caplog.records]
    record = with_traceback[0]
    assert _logged_error_id(err, caplog) is not None
    assert record.name == "blendr.rpc" and f"/{SERVICE}/{shape}" in str(record.__dict__["blendr_fields"])
    assert isinstance(record.exc_info[1], RuntimeError)  # type: ignore[index]


@pytest.mark.parametrize("shape", ["Unary", "SyncUnary"])
async def test_not_implemented_is_unimplemented(server: Server, shape: str) -> None:
    _, channel = server
    err = await failure(unary(channel, shape)(Req(service="unimplemented"), timeout=10))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    assert err.details() == f"/{SERVICE}/{shape} is not implemented by this server"


# --- what passes through ----------------------------------------------------------------------------------


async def test_abort_set_code_and_success_pass_through(server: Server) -> None:
    _, channel = server
    call = unary(channel, "Unary")
    err = await failure(call(Req(service="abort"), timeout=10))
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "aborted by the servicer")
    err = await failure(call(Req(service="set_code"), timeout=10))
    assert (err.code(), err.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "set by the servicer")
    assert await call(Req(service="ok"), timeout=10) == OK
    assert [r async for r in unary_stream(channel, "ServerStream")(Req(service="ok"), timeout=10)] == [OK, OK]
    assert await stream_unary(channel, "ClientStream")(iter([msg("ok")] * 3), timeout=10) == OK


async def test_cancellation_reaches_the_servicer_and_logs_nothing(server: Server,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    servicer, channel = server
    caplog.set_level(logging.DEBUG, logger="blendr.rpc")
    call = unary(channel, "Unary")(Req(service="hang"), timeout=10)
    while "hang" not in servicer.seen:
        await asyncio.sleep(0.01)
    call.cancel()
    await asyncio.wait_for(servicer.cancelled.wait(), 5)
    # a streaming servicer's generator is closed (its finally runs) when the client goes away
    stream = unary_stream(channel, "ServerStream")(Req(service="hang"), timeout=10)
    assert await stream.read() == OK
    stream.cancel()
    await asyncio.wait_for(servicer.closed.wait(), 5)
    assert not [r for r in caplog.records if r.name == "blendr.rpc"]


# --- undecodable requests ---------------------------------------------------------------------------------


DECODE_ERROR = "the request could not be decoded as grpc.health.v1.HealthCheckRequest"


@pytest.mark.parametrize("shape", ["Unary", "SyncUnary", "ServerStream", "SyncStream", "ReaderWriter"])
async def test_an_undecodable_unary_request_is_invalid_and_the_servicer_never_runs(
        server: Server, shape: str, caplog: pytest.LogCaptureFixture) -> None:
    servicer, channel = server
    caplog.set_level(logging.DEBUG)
    stub = unary(channel, shape, raw=True) if shape in UNARY_SHAPES else unary_stream(channel, shape, raw=True)
    err = await failure(stub(GARBAGE, timeout=10))
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, DECODE_ERROR)
    assert servicer.seen == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


@pytest.mark.parametrize("shape", ["ClientStream", "Bidi"])
async def test_an_undecodable_message_in_a_stream_is_invalid(server: Server, shape: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    servicer, channel = server
    caplog.set_level(logging.DEBUG)
    make = stream_unary if shape == "ClientStream" else stream_stream
    err = await failure(make(channel, shape)(iter([msg("first"), GARBAGE, msg("never read")]), timeout=10))
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, DECODE_ERROR)
    assert servicer.seen == ["first"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


async def test_a_stream_read_in_a_task_sees_a_domain_error(server: Server) -> None:
    servicer, channel = server
    err = await failure(stream_unary(channel, "ReadsInATask")(iter([msg("first"), GARBAGE]), timeout=10))
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, f"reader stopped: {DECODE_ERROR}")
    assert servicer.seen == ["first"]


async def test_unknown_methods_stay_unimplemented_and_health_is_served(server: Server) -> None:
    _, channel = server
    err = await failure(unary(channel, "Nope")(Req(), timeout=10))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=Req.SerializeToString,
                                response_deserializer=Resp.FromString)
    assert (await check(Req(service=SERVICE), timeout=10)).status == Resp.SERVING
    err = await failure(check(Req(service="no.Such"), timeout=10))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # the health servicer's own abort passes through
    err = await failure(channel.unary_unary("/grpc.health.v1.Health/Check")(GARBAGE, timeout=10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- the helpers ------------------------------------------------------------------------------------------


def test_bounded_keeps_short_text_and_cuts_on_a_character_boundary() -> None:
    assert bounded("short") == "short"
    assert bounded("a" * MAX_DETAILS_BYTES) == "a" * MAX_DETAILS_BYTES
    cut = bounded("a" * (MAX_DETAILS_BYTES + 1))
    assert cut.endswith("…") and len(cut.encode()) == MAX_DETAILS_BYTES
    for text in ("€" * 2000, "a" + "😀" * 500, "\ud800" * 10):  # 3- and 4-byte characters, a lone surrogate
        out = bounded(text, 64)
        assert len(out.encode()) <= 64
    assert bounded("\ud800x") == "?x"


def test_status_for_uses_the_nearest_mapped_class_and_details_are_bounded() -> None:
    assert status_for(TheirError("x")) == grpc.StatusCode.INTERNAL
    assert status_for(ResourceExhaustedError("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(details_for(InvalidArgumentError("x" * 10_000)).encode()) == MAX_DETAILS_BYTES


def test_message_type_name() -> None:
    assert message_type_name(Req.FromString) == "grpc.health.v1.HealthCheckRequest"
    assert message_type_name(lambda raw: raw) == "the method's request message"
