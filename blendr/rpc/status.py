"""Our errors to gRPC status: the one mapping table, and the bound on every status text we send.

:class:`blendr.rpc.interceptor.ErrorInterceptor` (installed on every server by
:func:`blendr.rpc.server.start_server`) answers a servicer's exception with :func:`status_of`; servicers only
raise. Stream tasks of their own (the queen's provider streams) end their streams with the same function.

Guarantees: an error whose class has a row in :data:`STATUS` is answered with that code and its message
(bounded); anything else (one of our errors without a row, such as a store or chain failure, or a bug) is
INTERNAL with :func:`internal_details` only — an error id that the server logged with the exception — so no
internal name, key, path or exception repr reaches a client.
"""

from __future__ import annotations

import secrets

import grpc

from blendr.errors import (
    AlreadyExistsError,
    AuthenticationError,
    BlendrError,
    DeadlineExceededError,
    FailedPreconditionError,
    FencedError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SignatureError,
    StoreUnavailableError,
    UnavailableError,
)
from blendr.telemetry import get_logger

log = get_logger("blendr.rpc")

STATUS: dict[type[BlendrError], grpc.StatusCode] = {
    InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    SignatureError: grpc.StatusCode.UNAUTHENTICATED,
    AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    UnavailableError: grpc.StatusCode.UNAVAILABLE,
    # the king's database is away, or this king lost its leadership mid-call: the caller tries again (king.ha)
    StoreUnavailableError: grpc.StatusCode.UNAVAILABLE,
    FencedError: grpc.StatusCode.UNAVAILABLE,
}

#: At most this many UTF-8 bytes of status text are sent. gRPC percent-encodes non-ASCII bytes (x3), and
#: clients refuse trailers over 8 KiB by default, so 1 KiB stays well inside the limit whatever the text.
MAX_DETAILS_BYTES = 1024
_CUT = "…"


def status_for(exc: BlendrError) -> grpc.StatusCode:
    """The status code for one of our errors (its nearest mapped class; INTERNAL when none is mapped)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.INTERNAL


def bounded(text: str, max_bytes: int = MAX_DETAILS_BYTES) -> str:
    """``text`` unchanged when its UTF-8 form fits ``max_bytes``, else cut on a character boundary and ended
    with "…" so that the result (marker included) fits."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return data.decode("utf-8")  # ``text`` itself unless it held lone surrogates (now "?")
    room = max(0, max_bytes - len(_CUT.encode()))
    return data[:room].decode("utf-8", "ignore") + _CUT


def details_for(exc: BlendrError) -> str:
    """The status text for one of our errors: its message, bounded by :data:`MAX_DETAILS_BYTES`."""
    return bounded(str(exc))


def internal_details(error_id: str) -> str:
    """The status text of an INTERNAL error: says where to look, carries nothing from the exception."""
    return f"internal error {error_id}; the server logged it"


def status_of(exc: BaseException, where: str) -> tuple[grpc.StatusCode, str]:
    """The status code and text to answer ``exc`` with (``where``: the method or stream, for the log).

    A mapped :class:`BlendrError` is answered with its message and logged by nobody (the caller gets the whole
    story). ``NotImplementedError`` is UNIMPLEMENTED. Anything else is logged once, with its traceback and a
    fresh error id, and answered INTERNAL with :func:`internal_details` of that id.
    """
    if isinstance(exc, BlendrError):
        code = status_for(exc)
        if code is not grpc.StatusCode.INTERNAL:
            return code, details_for(exc)
    elif isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED, f"{where} is not implemented by this server"
    error_id = secrets.token_hex(6)
    log.error("internal error answered as INTERNAL", where=where, error_id=error_id, error_type=type(exc).__name__,
              exc_info=exc)
    return grpc.StatusCode.INTERNAL, internal_details(error_id)
