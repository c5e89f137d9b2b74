"""A provider sends each finished job attempt's outputs back to the renter, through its queen.

A job writes its outputs under ``$BLENDR_OUTPUT_DIR`` (:func:`output_dir_of`: ``<home>/outputs/<run id>``,
outside its working directory). When the attempt ends — succeeded, failed or stopped: a renter wants partial
outputs too — :class:`OutputShipper` packs the directory's regular files (links and special files are left out,
never followed) sealed to the renter's key from the job's payload (:mod:`blendr.outputs`) into a spool file, and
uploads it with the ``upload`` callback (the agent's ``QueenService.UploadOutput`` to its current queen).

Guarantees:

- Bounded: what is packed is at most the king's ``max_output_bytes`` for the job (or the provider's own
  :data:`~blendr.outputs.MAX_OUTPUT_BYTES`); over it, the upload carries only the error, and the renter sees why.
- A missing or empty output directory is an empty archive (the renter gets no files, not an error).
- Every finished attempt is answered exactly once (outputs or an error), retried while the queen or king is
  unreachable or not yet expecting it (the queen relays the job's end on another stream), for at most
  :data:`GIVE_UP_S`.
- Nothing of the job's outputs stays on the provider afterwards: the directory and the spool file are removed
  whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from blendr.errors import BlendrError, FailedPreconditionError, UnavailableError
from blendr.outputs import CHUNK, MAX_OUTPUT_BYTES, OutputError, Packed, output_aad, pack_outputs, sign_upload
from blendr.rpc.status import STATUS
from blendr.telemetry import get_logger

log = get_logger("blendr.provider.outputs")

GIVE_UP_S = 300.0
UPLOAD_TIMEOUT_S = 3600.0
NO_KEY = "the job's payload names no key to seal its outputs to"

Upload = Callable[[str, int, str, "Path | None"], Awaitable[int]]
"""``upload(job_id, attempt, error, spool)``: sends the spooled sealed file (or, with ``spool`` None, only
``error``); returns the bytes the king stored. Raises BlendrError (UnavailableError: try again)."""


def error_for_status(exc: grpc.aio.AioRpcError) -> BlendrError:
    """The project's error for a queen's (or king's) refusal of an upload; UnavailableError when the status
    maps to none (UNAVAILABLE, a deadline, INTERNAL), so it is tried again."""
    cls: type[BlendrError] = UnavailableError
    for err, code in STATUS.items():
        if code == exc.code():
            cls = err
            break
    return cls(f"{exc.code().name}: {(exc.details() or '')[:300]}")


async def upload_output(channel: grpc.aio.Channel, account: Any, job_id: str, attempt: int, error: str,
                        spool: Path | None) -> int:
    """``QueenService.UploadOutput`` on ``channel``: a header signed by ``account`` (the provider's node key),
    then the spooled sealed file in 1 MiB chunks, read as gRPC takes them; returns the bytes the king stored.

    Raises:
        BlendrError: the queen's (or the king's) refusal; UnavailableError when either cannot be reached.
    """
    from protos.blendr.v1 import outputs_pb2 as opb
    from protos.blendr.v1 import queen_pb2_grpc as pb_grpc

    size = spool.stat().st_size if spool is not None else 0
    ts = int(time.time())
    header = opb.OutputHeader(job_id=job_id, attempt=attempt, signer=account.address, timestamp=ts, error=error,
                              size=size, signature=sign_upload(account, job_id, attempt, ts, error, size))

    async def upload() -> AsyncIterator[opb.OutputUpload]:
        yield opb.OutputUpload(header=header)
        if spool is not None:
            with open(spool, "rb") as fh:
                while data := await asyncio.to_thread(fh.read, CHUNK):
                    yield opb.OutputUpload(chunk=data)

    try:
        receipt = await pb_grpc.QueenServiceStub(channel).UploadOutput(upload(), timeout=UPLOAD_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        raise error_for_status(exc) from None
    return int(receipt.stored_bytes)


def output_dir_of(home: Path, run_id: str) -> Path:
    """Where a job attempt writes its outputs (``$BLENDR_OUTPUT_DIR``)."""
    return home / "outputs" / run_id


class OutputShipper:
    """Packs and uploads finished attempts' outputs (one task per attempt; use from the agent's loop)."""

    def __init__(self, home: Path, upload: Upload, *, retry_s: float = 1.0, give_up_s: float = GIVE_UP_S) -> None:
        self.home = home
        self.upload = upload
        self.retry_s = retry_s
        self.give_up_s = give_up_s
        self.tasks: set[asyncio.Task[None]] = set()

    def ship(self, job_id: str, attempt: int, run_id: str, output_key: bytes, max_bytes: int) -> None:
        """Sends the attempt's outputs in the background."""
        task = asyncio.create_task(self.send(job_id, attempt, run_id, output_key, max_bytes),
                                   name=f"outputs-{run_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def send(self, job_id: str, attempt: int, run_id: str, output_key: bytes, max_bytes: int) -> None:
        """Packs and uploads one attempt's outputs (never raises but CancelledError; failures are logged)."""
        src = output_dir_of(self.home, run_id)
        spool = self.home / "outputs" / f"{run_id}.sealed"
        try:
            error = NO_KEY if not output_key else ""
            if output_key:
                try:
                    packed = await asyncio.to_thread(self._pack, src, spool, output_key,
                                                     output_aad(job_id, attempt), max_bytes or MAX_OUTPUT_BYTES)
                    log.info("job outputs packed", job=job_id, attempt=attempt, files=packed.files,
                             bytes=packed.plain_bytes, sealed=packed.sealed_bytes, skipped=packed.skipped)
                except OutputError as exc:
                    error = str(exc)[:500]
            async for retry in AsyncRetrying(
                    retry=retry_if_exception_type((UnavailableError, FailedPreconditionError)),
                    stop=stop_after_delay(self.give_up_s) | stop_after_attempt(30),
                    wait=wait_exponential_jitter(multiplier=self.retry_s, max=30.0), reraise=True):
                with retry:
                    stored = await self.upload(job_id, attempt, error, None if error else spool)
            log.info("job outputs delivered", job=job_id, attempt=attempt, bytes=stored, error=error or None)
        except BlendrError as exc:
            log.error("job outputs could not be delivered", job=job_id, attempt=attempt, error=str(exc)[:300])
        finally:
            with contextlib.suppress(OSError):
                spool.unlink(missing_ok=True)
            await asyncio.to_thread(shutil.rmtree, src, True)

    @staticmethod
    def _pack(src: Path, spool: Path, key: bytes, aad: bytes, max_bytes: int) -> Packed:
        spool.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            with open(spool, "wb") as out:
                return pack_outputs(src, out, key, aad, max_bytes=max_bytes)
        except BaseException:
            spool.unlink(missing_ok=True)
            raise

    async def close(self) -> None:
        """Cancels the deliveries in flight (each removes its files as it ends)."""
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
