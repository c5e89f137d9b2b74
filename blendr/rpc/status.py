"""Our errors to gRPC status codes (servicers abort with ``status_for(exc)`` and the error's message)."""

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


def status_for(exc: BlendrError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.INTERNAL
