"""A queen relays a job attempt's outputs from its provider to the king, as they arrive.

The provider's upload (``QueenService.UploadOutput``) is checked — the header signed by the provider's key, for
a job attempt this queen assigned to that provider — then streamed on to the king (``KingControl.UploadOutput``)
under a header the queen signs itself. Nothing is buffered beyond gRPC's flow-control windows: the queen reads
the provider's next chunk only when the king's stream takes the last (backpressure end to end). The king's
refusal (too large, not expected) is the provider's answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from blendr.clock import Clock
from blendr.errors import InvalidArgumentError, PermissionDeniedError
from blendr.outputs import sign_upload, verify_upload
from blendr.telemetry import get_logger
from protos.blendr.v1 import outputs_pb2 as opb
from queen.jobs import JobBook, check_job_id
from queen.kingclient import error_from_status

log = get_logger("blendr.queen.outputs")

UPLOAD_TIMEOUT_S = 3600.0  # one output of up to the king's limit, at a slow link's pace


class OutputRelay:
    """Relays providers' output uploads to the king (``stub`` returns a ``KingControlStub``)."""

    def __init__(self, jobs: JobBook, account: Any, clock: Clock, stub: Callable[[], Any], *,
                 timeout_s: float = UPLOAD_TIMEOUT_S) -> None:
        self.jobs = jobs
        self.account = account
        self.clock = clock
        self.stub = stub
        self.timeout_s = timeout_s

    async def relay(self, header: opb.OutputHeader, rest: AsyncIterator[opb.OutputUpload]) -> int:
        """Checks the provider's header and streams the upload to the king; returns the bytes the king stored.

        Raises:
            PermissionDeniedError: a bad or stale signature, or not this provider's job attempt through this queen.
            InvalidArgumentError: a malformed job id.
            BlendrError: the king's refusal (ResourceExhaustedError, FailedPreconditionError, ...) or
                UnavailableError when it cannot be reached.
        """
        h = header
        provider = verify_upload(h.signer, h.job_id, h.attempt, h.timestamp, h.error, h.size, bytes(h.signature),
                                 now=self.clock.time())
        check_job_id(h.job_id)
        rec = self.jobs.get(h.job_id, h.attempt)
        if rec is None or rec.provider != provider:
            raise PermissionDeniedError(f"job {h.job_id} attempt {h.attempt} was not assigned to {provider} here")
        ts = int(self.clock.time())
        sig = sign_upload(self.account, h.job_id, h.attempt, ts, h.error, h.size)
        ours = opb.OutputHeader(job_id=h.job_id, attempt=h.attempt, signer=self.account.address, timestamp=ts,
                                signature=sig, error=h.error, size=h.size)

        async def upload() -> AsyncIterator[opb.OutputUpload]:
            yield opb.OutputUpload(header=ours)
            async for msg in rest:
                if msg.WhichOneof("body") != "chunk":
                    # ending short makes the king drop the upload (it announced its size)
                    log.warning("provider sent a second header in an output upload", provider=provider)
                    return
                yield msg

        try:
            receipt = await self.stub().UploadOutput(upload(), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise error_from_status(exc) from None
        log.info("job outputs relayed to the king", job=h.job_id, attempt=h.attempt, bytes=receipt.stored_bytes)
        return int(receipt.stored_bytes)


async def first_header(it: AsyncIterator[opb.OutputUpload]) -> opb.OutputHeader:
    """The header an upload starts with.

    Raises:
        InvalidArgumentError: the upload is empty or starts with a chunk.
    """
    first = await anext(it, None)
    if first is None or first.WhichOneof("body") != "header":
        raise InvalidArgumentError("an output upload starts with its header")
    return first.header
