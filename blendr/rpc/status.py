"""Our errors to gRPC status: the one mapping table, and the bound on every status text we send.

:class:`blendr.rpc.interceptor.ErrorInterceptor` (installed on every server by
:func:`blendr.rpc.server.start_server`) answers a servicer's :class:`~blendr.errors.BlendrError` with
``status_for(exc)`` and ``details_for(exc)``; servicers only raise.
"""

from __future__ import annotations

import grpc

from blendr.errors import (
    AlreadyExistsError,
    AuthenticationError,
    BlendrError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SignatureError,
    UnavailableError,
)

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
