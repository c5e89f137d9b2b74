"""The queen's calls on its king's ``KingControl`` (attestations), as an adapter: protobuf and gRPC stay here.

Domain code (:mod:`queen.attester`) sees :class:`~queen.attester.KingAck` and :class:`~blendr.chain.bridge.BridgeMessage`,
and only the project's errors: a gRPC status from the king becomes the :class:`~blendr.errors.BlendrError`
that :mod:`blendr.rpc.status` maps to it (so INVALID_ARGUMENT is an InvalidArgumentError again), and a
status with no such error (UNAVAILABLE, a deadline, INTERNAL) an :class:`~blendr.errors.UnavailableError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from blendr.chain.bridge import BridgeMessage
from blendr.errors import BlendrError, UnavailableError
from blendr.rpc.status import STATUS
from protos.blendr.v1 import king_pb2 as kpb
from queen.attester import KingAck
from queen.convert import attestation_to_proto, attestations_from_proto, king_ack_from_proto

# The error a king's status code stands for (the inverse of blendr.rpc.status; one class per code).
ERROR_FOR_STATUS: dict[grpc.StatusCode, type[BlendrError]] = {}
for _cls, _code in STATUS.items():
    ERROR_FOR_STATUS.setdefault(_code, _cls)
ERROR_FOR_STATUS[grpc.StatusCode.UNAVAILABLE] = UnavailableError
ERROR_FOR_STATUS[grpc.StatusCode.DEADLINE_EXCEEDED] = UnavailableError  # the king did not answer in time
MAX_DETAILS = 300


def error_from_status(exc: grpc.aio.AioRpcError) -> BlendrError:
    """The project's error for a king's refusal (details bounded; never a traceback)."""
    code = exc.code()
    cls = ERROR_FOR_STATUS.get(code, UnavailableError)
    return cls(f"king: {code.name}: {(exc.details() or '')[:MAX_DETAILS]}")


class GrpcKing:
    """``KingControl`` over a channel the queen keeps (``stub`` returns a ``KingControlStub``)."""

    def __init__(self, stub: Callable[[], Any], *, timeout_s: float = 10.0) -> None:
        self._stub = stub
        self._timeout = timeout_s

    async def submit_attestation(self, msg: BridgeMessage, signature: bytes) -> KingAck:
        """Raises: the BlendrError for the king's status (InvalidArgumentError, PermissionDeniedError, …)."""
        req = attestation_to_proto(msg, signature)
        try:
            resp = await self._stub().SubmitAttestation(req, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_status(exc) from None
        return king_ack_from_proto(resp)

    async def attestations(self, message_hash: bytes) -> tuple[BridgeMessage, dict[str, bytes]]:
        """The message the king holds under ``message_hash`` and its attestations by attester.

        Raises:
            NotFoundError: the king has none; InvalidArgumentError: the king answered a malformed message;
            UnavailableError: the king is unreachable.
        """
        try:
            got = await self._stub().GetAttestations(kpb.GetAttestationsRequest(message_hash=message_hash),
                                                     timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_status(exc) from None
        return attestations_from_proto(got)


__all__ = ["ERROR_FOR_STATUS", "GrpcKing", "KingAck", "error_from_status"]
