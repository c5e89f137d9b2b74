"""Jobs' outputs on the king: received from queens as they stream in, kept on disk for a retention period,
served to their renters.

The king cannot read outputs (they are sealed to the renter's key, :mod:`blendr.outputs`); it only stores and
serves bytes. :class:`OutputStore` is the disk: one sealed file per job (the last attempt's), written chunk by
chunk, never whole in memory. :class:`OutputDesk` ties it to the jobs: when a job attempt ends on its provider
the job's output is ``pending`` (its renter's follow waits for it), and it becomes ``ready`` when the attempt's
queen has streamed it in, or ``failed`` (too large, the provider had none to send, or nothing arrived in
``wait_s``). Settlement never waits on outputs.

Guarantees:

- Limits are checked while bytes arrive: a job's output over ``max_job_bytes``, or one that would take the
  store over ``max_total_bytes`` (counting uploads in flight), is refused with
  :class:`~blendr.outputs.OutputsTooLargeError` (RESOURCE_EXHAUSTED for the queen, and so for the provider)
  and the job's output fails with that reason.
- Only the queen that ran an attempt may upload its output, once, and only after the attempt ended.
- A broken upload leaves nothing behind (its partial file is removed, its reservation released) and the
  output stays ``pending``, so the provider may send it again until it is due.
- Outputs older than ``retention_s`` are removed by :meth:`OutputDesk.tick`; the job's output is then
  ``expired`` (NOT_FOUND on a fetch).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from blendr.clock import Clock
from blendr.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError
from blendr.hashing import checksum_address
from blendr.outputs import CHUNK, OutputsTooLargeError
from blendr.telemetry import get_logger
from king.context import KingContext
from king.job import EventKind, Job, JobId, check_job_id

log = get_logger("blendr.king.outputs")

PENDING, READY, FAILED, EXPIRED = "pending", "ready", "failed", "expired"
ENDINGS = frozenset({"succeeded", "failed", "stopped"})
MAX_CHUNK = CHUNK + 64 * 1024  # a chunk on the wire: 1 MiB of sealed bytes, with room for a record header


@dataclass(frozen=True)
class StoredOutput:
    job_id: str
    attempt: int
    size: int
    stored_at: float
    expires: float


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class Incoming:
    """One upload being written (:meth:`OutputStore.begin`): :meth:`write` each chunk, then :meth:`commit` or
    :meth:`abort` (idempotent; a crash leaves only a ``.part`` file, removed at the next start)."""

    def __init__(self, store: OutputStore, job_id: str, attempt: int) -> None:
        self._store = store
        self.job_id = job_id
        self.attempt = attempt
        self.size = 0
        self.path = store.root / f"{job_id}.{attempt}.part"
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed by commit/abort
        self._open = True

    def write(self, chunk: bytes) -> None:
        """Appends ``chunk``.

        Raises:
            OutputsTooLargeError: the job's limit, or the store's total limit, would be passed.
        """
        s = self._store
        if self.size + len(chunk) > s.max_job_bytes:
            raise OutputsTooLargeError(f"the job's outputs are over this king's limit of {_mib(s.max_job_bytes)} "
                                       "per job")
        if s.used + s.reserved + len(chunk) > s.max_total_bytes:
            raise OutputsTooLargeError(f"this king's output storage is full ({_mib(s.max_total_bytes)}); try again "
                                       "when older outputs have expired")
        self._fh.write(chunk)
        self.size += len(chunk)
        s.reserved += len(chunk)

    def commit(self) -> StoredOutput:
        """Makes the upload the job's output (replacing an older one) and returns it."""
        s = self._store
        self._fh.close()
        self._open = False
        s.reserved -= self.size
        final = s.root / f"{self.job_id}.out"
        old = s.get(self.job_id)
        os.replace(self.path, final)
        if old is not None:
            s.used -= old.size
        now = s.clock.time()
        out = StoredOutput(self.job_id, self.attempt, self.size, now, now + s.retention_s)
        meta = s.root / f"{self.job_id}.json"
        tmp = meta.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(out.__dict__))
        os.replace(tmp, meta)
        s.used += self.size
        s._index[self.job_id] = out
        return out

    def abort(self) -> None:
        if self._open:
            self._fh.close()
            self._open = False
            self._store.reserved -= self.size
            self.path.unlink(missing_ok=True)


class OutputStore:
    """Sealed outputs on disk under ``root``, one per job, with a per-job and a total size limit."""

    def __init__(self, root: Path, clock: Clock, *, max_job_bytes: int, max_total_bytes: int,
                 retention_s: float) -> None:
        """Opens (creating) ``root``, removes partial uploads a crash left, and indexes what is there.

        Raises:
            InvalidArgumentError: a non-positive limit or retention.
        """
        if max_job_bytes <= 0 or max_total_bytes <= 0 or retention_s <= 0:
            raise InvalidArgumentError("king output limits and retention must be > 0")
        self.root = root
        self.clock = clock
        self.max_job_bytes = max_job_bytes
        self.max_total_bytes = max_total_bytes
        self.retention_s = retention_s
        self.used = 0
        self.reserved = 0
        self._index: dict[str, StoredOutput] = {}
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for p in root.iterdir():
            if p.name.endswith((".part", ".tmp")):
                p.unlink(missing_ok=True)
        for p in root.glob("*.json"):
            try:
                d = json.loads(p.read_text())
                out = StoredOutput(str(d["job_id"]), int(d["attempt"]), int(d["size"]), float(d["stored_at"]),
                                   float(d["expires"]))
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("unreadable output record removed", path=str(p))
                p.unlink(missing_ok=True)
                continue
            if (root / f"{out.job_id}.out").is_file():
                self._index[out.job_id] = out
                self.used += out.size

    def begin(self, job_id: str, attempt: int) -> Incoming:
        return Incoming(self, job_id, attempt)

    def get(self, job_id: str) -> StoredOutput | None:
        return self._index.get(job_id)

    def read(self, job_id: str) -> Iterator[bytes]:
        """The job's sealed output in chunks of at most 1 MiB.

        Raises:
            NotFoundError: none is stored (never received, or removed after the retention period).
        """
        if job_id not in self._index:
            raise NotFoundError(f"job {job_id} has no outputs on this king (removed after the retention period?)")
        try:
            fh = open(self.root / f"{job_id}.out", "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise NotFoundError(f"job {job_id}'s outputs were removed") from None

        def chunks() -> Iterator[bytes]:
            with fh:
                while data := fh.read(CHUNK):
                    yield data
        return chunks()

    def remove(self, job_id: str) -> None:
        out = self._index.pop(job_id, None)
        if out is not None:
            self.used -= out.size
        (self.root / f"{job_id}.out").unlink(missing_ok=True)
        (self.root / f"{job_id}.json").unlink(missing_ok=True)

    def expire(self) -> list[str]:
        """Removes outputs past their retention; returns their job ids."""
        now = self.clock.time()
        gone = [j for j, o in self._index.items() if o.expires <= now]
        for job_id in gone:
            self.remove(job_id)
        return gone


class OutputDesk:
    """Jobs' outputs between the queens, the store and the renters (use from the king's event loop)."""

    def __init__(self, ctx: KingContext, store: OutputStore, *, wait_s: float = 600.0) -> None:
        self.ctx = ctx
        self.book = ctx.book
        self.store = store
        self.wait_s = wait_s
        self._receiving: set[tuple[str, int]] = set()
        self._pending: dict[str, float] = {}  # job id -> when its output is due

    def load(self, jobs: list[Job]) -> None:
        """After a restart: the jobs whose outputs are still on their way."""
        for job in jobs:
            if job.output == PENDING:
                self._pending[job.job_id] = job.output_due

    def on_queen_event(self, queen: str, ev_job_id: str, attempt: int, kind: str) -> None:
        """A job event the lifecycle has taken: an attempt that ended on its provider has outputs on the way."""
        if kind not in ENDINGS:
            return
        job = self.book.get(ev_job_id)
        if job is None:
            return
        c = job.current
        if c is None or c.attempt != attempt or c.queen != checksum_address(queen) or job.output_attempt >= attempt:
            return
        job.output, job.output_attempt, job.output_reason = PENDING, attempt, ""
        job.output_due = self.ctx.clock.time() + self.wait_s
        self._pending[job.job_id] = job.output_due
        self.book.save(job)

    def _fail(self, job: Job, why: str) -> None:
        job.output, job.output_reason = FAILED, why
        self._pending.pop(job.job_id, None)
        self.book.save(job, EventKind.OUTPUT_FAILED, f"no outputs: {why}")
        log.info("job outputs failed", job=job.job_id, reason=why)

    def _expected(self, queen: str, job_id: str, attempt: int) -> Job:
        job = self.book.get(check_job_id(job_id)) if check_job_id(job_id) else None
        c = job.current if job is not None else None
        if job is None or c is None or c.attempt != attempt or c.queen != checksum_address(queen):
            raise PermissionDeniedError(f"job {job_id[:40]!r} attempt {attempt} did not run through queen {queen}")
        if job.output != PENDING or job.output_attempt != attempt:
            raise FailedPreconditionError(f"the king expects no outputs of job {job_id} attempt {attempt} "
                                          f"(its outputs are {job.output or 'not due: the attempt has not ended'})")
        if (job_id, attempt) in self._receiving:
            raise FailedPreconditionError(f"job {job_id} attempt {attempt}'s outputs are being received already")
        return job

    async def receive(self, queen: str, job_id: str, attempt: int, error: str, size: int,
                      chunks: AsyncIterator[bytes]) -> int:
        """Takes one attempt's outputs (``size`` sealed bytes) as ``queen`` relays them; returns the bytes stored.

        Raises:
            PermissionDeniedError: not this queen's job attempt.
            FailedPreconditionError: no outputs of this attempt are expected (or they are being received).
            OutputsTooLargeError: over a limit (the job's output fails).
            InvalidArgumentError: a chunk over 1 MiB, or more or fewer bytes than ``size`` (nothing is kept;
                the output stays pending).
        """
        job = self._expected(queen, job_id, attempt)
        if error:
            self._fail(job, f"the provider sent none: {error[:500]}")
            return 0
        if size > self.store.max_job_bytes:
            exc = OutputsTooLargeError(f"the job's outputs are {_mib(size)}, over this king's limit of "
                                       f"{_mib(self.store.max_job_bytes)} per job")
            self._fail(job, str(exc))
            raise exc
        key = (job_id, attempt)
        self._receiving.add(key)
        inc = await asyncio.to_thread(self.store.begin, job_id, attempt)
        try:
            # each chunk is written in a worker thread while the next one arrives (at most one write in flight)
            writing: asyncio.Future[None] | None = None
            announced = 0
            try:
                async for chunk in chunks:
                    if len(chunk) > MAX_CHUNK:
                        raise InvalidArgumentError(f"an output chunk is {len(chunk)} bytes (at most {MAX_CHUNK})")
                    announced += len(chunk)
                    if announced > size:
                        raise InvalidArgumentError(f"the output upload carries more than the {size} bytes it "
                                                   "announced")
                    if writing is not None:
                        await asyncio.shield(writing)  # a cancel leaves the write to finish before the abort
                    writing = asyncio.ensure_future(asyncio.to_thread(inc.write, chunk))
            finally:
                if writing is not None:
                    await asyncio.shield(writing)  # settle the last write before a commit or an abort
            if inc.size != size:
                raise InvalidArgumentError(f"the output upload ended after {inc.size} of the {size} bytes it "
                                           "announced")
            stored = await asyncio.to_thread(inc.commit)
        except OutputsTooLargeError as exc:
            await asyncio.to_thread(inc.abort)
            job = self.book.get(job_id) or job
            if job.output == PENDING:
                self._fail(job, str(exc))
            raise
        except BaseException:
            await asyncio.shield(asyncio.to_thread(inc.abort))  # stays pending: the provider may send it again
            raise
        finally:
            self._receiving.discard(key)
        job = self.book.get(job_id) or job
        self._pending.pop(job_id, None)
        job.output, job.output_bytes, job.output_expires = READY, stored.size, stored.expires
        self.book.save(job, EventKind.OUTPUT_READY,
                        f"outputs ready ({_mib(stored.size)} sealed): blendr job get {job_id}")
        log.info("job outputs stored", job=job_id, attempt=attempt, bytes=stored.size)
        return stored.size

    def fetch(self, job: Job) -> tuple[int, int, Iterator[bytes]]:
        """The renter's job's output: (attempt, size, chunks).

        Raises:
            FailedPreconditionError: not there: not arrived yet, failed (with why), or none expected.
            NotFoundError: removed after the retention period.
        """
        if job.output == READY:
            out = self.store.get(job.job_id)
            if out is not None:
                return out.attempt, out.size, self.store.read(job.job_id)
        if job.output in (READY, EXPIRED):
            raise NotFoundError(f"job {job.job_id}'s outputs were removed after this king's retention period")
        if job.output == PENDING:
            raise FailedPreconditionError(f"job {job.job_id}'s outputs have not arrived yet; they are due within "
                                          f"{max(0, int(job.output_due - self.ctx.clock.time()))} s")
        if job.output == FAILED:
            raise FailedPreconditionError(f"job {job.job_id} has no outputs: {job.output_reason}")
        raise FailedPreconditionError(f"job {job.job_id} has no outputs (it has not ended on a provider)")

    def tick(self) -> None:
        """Fails outputs past due and removes expired ones (call every few seconds)."""
        now = self.ctx.clock.time()
        for job_id, due in list(self._pending.items()):
            if due > now or any(k[0] == job_id for k in self._receiving):
                continue  # an upload in flight finishes (or fails) first
            job = self.book.get(job_id)
            self._pending.pop(job_id, None)
            if job is not None and job.output == PENDING:
                self._fail(job, f"none arrived from the provider within {self.wait_s:.0f} s of the job's end")
        for job_id in self.store.expire():
            job = self.book.get(JobId(job_id))
            if job is not None and job.output == READY:
                job.output = EXPIRED
                self.book.save(job)
