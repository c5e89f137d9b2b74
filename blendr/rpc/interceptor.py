"""The one place where a servicer's errors become gRPC status, for every service of every node.

:func:`blendr.rpc.server.start_server` installs :class:`ErrorInterceptor` ahead of any other interceptor,
so the king's, the queen's (and any later) servicers only ``raise``; none needs a try/abort block.

Guarantees, for every method (unary or streaming requests and responses; async or sync behaviours):

- A :class:`~blendr.errors.BlendrError` with a row in :data:`~blendr.rpc.status.STATUS` raised by the
  servicer ends the call with that code and its message cut to :data:`~blendr.rpc.status.MAX_DETAILS_BYTES`
  (with "…"), so even a megabyte of echoed input never exceeds gRPC's metadata limit. Nothing is logged: the
  caller gets the whole story. One without a row (a store, chain or TLS failure) is handled as a bug, below:
  its text may name store keys, paths or URLs.
- A request message that cannot be decoded ends the call with INVALID_ARGUMENT
  "the request could not be decoded as <message type>", and no traceback is logged. A unary request is
  refused before the servicer runs; in a request stream, reading the bad message raises
  :class:`~blendr.errors.InvalidArgumentError` inside the servicer (so a servicer that reads the stream in
  a task of its own sees a domain error it already handles), and unless the servicer handles it the call
  ends as above.
- ``NotImplementedError`` (what the generated base servicer raises for a method a servicer does not
  implement) ends the call with UNIMPLEMENTED.
- Any other exception is a bug: it is logged once, with its traceback, the method name and a fresh error id,
  and the call ends with INTERNAL and :func:`~blendr.rpc.status.internal_details` of that id. The
  exception's text never reaches the client (it may carry an RPC URL with an API key).
- ``context.abort(...)`` (``grpc.aio.AbortError``), gRPC's other own errors (``grpc.aio.BaseError``) and
  ``asyncio.CancelledError`` pass through untouched, as do statuses a servicer sets with ``set_code``.

Async behaviours end a failed call with ``context.abort``; sync ones (run by grpc.aio in a worker thread) with
``set_code``/``set_details`` and a return, because an abort from that thread races grpc's own writes.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, NoReturn

import grpc

from blendr.errors import InvalidArgumentError
from blendr.rpc.status import status_of

#: Wrapped handlers kept per method name (a generic handler answering any name cannot grow it past this).
MAX_CACHED_HANDLERS = 1024

Handler = Any  # grpc.RpcMethodHandler; grpc ships no type hints
Behaviour = Callable[..., Any]


class _Undecodable:
    """Stands for a unary request whose bytes did not decode; the wrapped behaviour refuses it."""

    __slots__ = ()


_UNDECODABLE = _Undecodable()


def _outcome(exc: Exception, method: str) -> tuple[grpc.StatusCode, str]:
    """The status for an exception a servicer raised (logging it when it is a bug)."""
    return status_of(exc, method)


async def _abort(context: Any, code: grpc.StatusCode, details: str) -> NoReturn:
    await context.abort(code, details)
    raise AssertionError("grpc.aio context.abort returned instead of raising AbortError")


def _fail_sync(context: Any, code: grpc.StatusCode, details: str) -> None:
    # Not context.abort: from the worker thread a sync behaviour runs in, abort races grpc.aio's own write of
    # the previous response (GRPC_CALL_ERROR_TOO_MANY_OPERATIONS). The status set here is sent when the
    # behaviour returns.
    context.set_code(code)
    context.set_details(details)


def message_type_name(deserializer: Callable[[bytes], Any]) -> str:
    """The protobuf type a deserializer (``Message.FromString``) decodes, e.g. ``blendr.v1.SignInRequest``."""
    owner = getattr(deserializer, "__self__", None)
    name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", None) or getattr(owner, "__name__", None)
    return str(name) if name else "the method's request message"


class _Method:
    """The wrapped behaviours of one method handler."""

    def __init__(self, method: str, decode_error: str) -> None:
        self.method = method
        self.decode_error = decode_error

    # ---- deserializers
    def lenient(self, deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """For a unary request, decoded by grpc before the servicer runs: a bad message becomes a sentinel."""
        def decode(raw: bytes) -> Any:
            try:
                return deserialize(raw)
            except Exception:  # protobuf raises DecodeError, a custom deserializer anything
                return _UNDECODABLE
        return decode

    def strict(self, deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """For a request stream, decoded as the servicer reads it: a bad message raises our own error there."""
        def decode(raw: bytes) -> Any:
            try:
                return deserialize(raw)
            except Exception:
                raise InvalidArgumentError(self.decode_error) from None
        return decode

    # ---- behaviours returning one response (or none: the reader/writer streaming API)
    def unary_async(self, behaviour: Behaviour) -> Behaviour:
        async def call(request: Any, context: Any) -> Any:
            if request is _UNDECODABLE:
                await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, self.decode_error)
            try:
                return await behaviour(request, context)
            except grpc.aio.BaseError:
                raise
            except Exception as exc:
                await _abort(context, *_outcome(exc, self.method))
        return call

    def unary_sync(self, behaviour: Behaviour) -> Behaviour:
        def call(request: Any, context: Any) -> Any:
            if request is _UNDECODABLE:
                _fail_sync(context, grpc.StatusCode.INVALID_ARGUMENT, self.decode_error)
                return None
            try:
                return behaviour(request, context)
            except grpc.aio.BaseError:
                raise
            except Exception as exc:
                _fail_sync(context, *_outcome(exc, self.method))
                return None
        return call

    # ---- behaviours yielding responses
    def stream_async(self, behaviour: Behaviour) -> Behaviour:
        async def call(request: Any, context: Any) -> AsyncIterator[Any]:
            if request is _UNDECODABLE:
                await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, self.decode_error)
            try:
                # aclosing: when grpc drops this generator, the servicer's own generator is closed too (its
                # ``finally`` blocks run now, not whenever it is collected).
                async with contextlib.aclosing(behaviour(request, context)) as responses:
                    async for response in responses:
                        yield response
            except grpc.aio.BaseError:
                raise
            except Exception as exc:
                await _abort(context, *_outcome(exc, self.method))
        return call

    def stream_sync(self, behaviour: Behaviour) -> Behaviour:
        def call(request: Any, context: Any) -> Iterator[Any]:
            if request is _UNDECODABLE:
                _fail_sync(context, grpc.StatusCode.INVALID_ARGUMENT, self.decode_error)
                return
            try:
                yield from behaviour(request, context)
            except grpc.aio.BaseError:
                raise
            except Exception as exc:
                _fail_sync(context, *_outcome(exc, self.method))
        return call


def wrap_handler(handler: Handler, method: str) -> Handler:
    """``handler`` with the guarantees of this module (see its docstring) around its behaviour."""
    streaming_requests = bool(handler.request_streaming)
    streaming_responses = bool(handler.response_streaming)
    deserialize = handler.request_deserializer
    m = _Method(method, f"the request could not be decoded as {message_type_name(deserialize)}"
                if deserialize is not None else "the request could not be decoded")
    if deserialize is not None:
        deserialize = m.strict(deserialize) if streaming_requests else m.lenient(deserialize)
    kind = {(False, False): "unary_unary", (False, True): "unary_stream",
            (True, False): "stream_unary", (True, True): "stream_stream"}[streaming_requests, streaming_responses]
    behaviour: Behaviour = getattr(handler, kind)
    # The same tests grpc.aio applies to pick how to run a behaviour, so the wrapper is run the same way.
    if inspect.isasyncgenfunction(behaviour):
        wrapped = m.stream_async(behaviour)
    elif inspect.iscoroutinefunction(behaviour):
        wrapped = m.unary_async(behaviour)
    elif streaming_responses:
        wrapped = m.stream_sync(behaviour)
    else:
        wrapped = m.unary_sync(behaviour)
    make = getattr(grpc, f"{kind}_rpc_method_handler")
    return make(wrapped, request_deserializer=deserialize, response_serializer=handler.response_serializer)


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    """Maps every servicer's errors to gRPC status (see the module docstring for the contract)."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Handler]],
                                handler_call_details: Any) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = str(handler_call_details.method)
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = wrap_handler(handler, method)
        if len(self._wrapped) < MAX_CACHED_HANDLERS or method in self._wrapped:
            self._wrapped[method] = (handler, wrapped)
        return wrapped


__all__ = ["ErrorInterceptor", "message_type_name", "wrap_handler"]
