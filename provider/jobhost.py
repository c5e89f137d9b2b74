"""Renters' jobs on a provider agent: decrypt the queen's ``JobStart``, run it, stream ``JobUpdate``s back.

The agent hands every ``JobStart`` and ``JobStopRequest`` to a :class:`JobHost`, which runs jobs through a
:class:`JobExecutor` (the real one is :class:`provider.jobs.JobRunner`, Ray's job submission API; tests use
fakes). Jobs outlive queen sessions: the host keeps each job's recent updates and, whenever a session
starts (:meth:`JobHost.attach`), sends them again, so a stream that broke mid-job loses nothing the queen
has not seen (the queen drops updates whose ``seq`` it already has).

Guarantees:

- Idempotent by ``(job_id, attempt)``: a repeated ``JobStart`` never starts a job twice; the host reports
  the job's latest update again.
- Per job and attempt, updates are numbered from 1 and sent in order: ``accepted`` first (once the payload
  is decrypted), then the executor's ``running``, ``log``, ``progress`` and one terminal event
  (``succeeded``, ``failed`` or ``stopped``). A payload that does not open with this node's key is
  answered ``failed`` alone.
- Neither the node key nor the payload is ever logged.

The payload: ``sealed_key`` is the 32-byte AES key sealed to this node's public key
(:func:`blendr.payload.seal`, associated data = the request id ``aad``), and ``ciphertext`` is
``nonce (12 bytes) || AES-256-GCM(JobPayload.encode(), key, associated data = aad)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from blendr.errors import BlendrError
from blendr.payload import JobPayload, PayloadError, open_sealed
from blendr.telemetry import get_logger
from protos.blendr.v1 import queen_pb2 as pb

log = get_logger("blendr.provider.jobs")

TERMINAL = frozenset({"succeeded", "failed", "stopped"})
EXECUTOR_KINDS = frozenset({"running", "log", "progress", *TERMINAL})
# Updates kept per job for re-sending after a reconnect, and finished jobs kept to re-report them.
HISTORY = 256
KEEP_FINISHED = 32
STOP_ON_CLOSE_S = 10.0
UNDECRYPTABLE = "payload cannot be decrypted with this provider's key"
_NONCE = 12
_TAG = 16
_EXIT_CODE = re.compile(r"exited with code (-?\d+)")

Send = Callable[[pb.ProviderMessage], Awaitable[None]]


class ExecutorEvent(Protocol):
    """One event of a running job, as an executor reports it."""

    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def progress(self) -> float: ...
    @property
    def ts(self) -> float: ...


class JobExecutor(Protocol):
    """Runs jobs by id (``provider.jobs.JobRunner`` is one)."""

    async def start(self, job_id: str, payload: JobPayload, *, gpus: int, deadline_unix: float) -> None:
        """Start the job (idempotent per id). Raises a BlendrError when it cannot."""

    def events(self, job_id: str) -> AsyncIterator[ExecutorEvent]:
        """The started job's events, ending after one terminal event (or early, when the executor closes)."""

    async def stop(self, job_id: str, reason: str) -> None:
        """Stop the job; its terminal event says ``stopped``. Idempotent."""

    async def close(self) -> None:
        """Release the executor."""


def open_payload(ciphertext: bytes, sealed_key: bytes, private_key: bytes, aad: str) -> JobPayload:
    """Decrypt a job's payload with the node's private key.

    Raises:
        PayloadError: the key or the ciphertext does not open with this key and ``aad``, or the
            decrypted document is malformed.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = open_sealed(sealed_key, private_key, aad=aad.encode())
    if len(key) != 32:
        raise PayloadError(f"the sealed payload key is {len(key)} bytes, not 32")
    if len(ciphertext) < _NONCE + _TAG:
        raise PayloadError(f"the payload ciphertext is truncated ({len(ciphertext)} bytes)")
    try:
        plain = AESGCM(key).decrypt(ciphertext[:_NONCE], ciphertext[_NONCE:], aad.encode())
    except InvalidTag:
        raise PayloadError("the payload ciphertext does not authenticate with its key and request id") from None
    return JobPayload.decode(plain)


def run_id_of(job_id: str, attempt: int) -> str:
    """The executor's id for one attempt of a job (attempts of a job never share a Ray job)."""
    return f"{job_id}.{attempt}"


@dataclass(eq=False)
class _Job:
    job_id: str
    attempt: int
    gpus: int
    seq: int = 0
    state: str = ""
    history: deque[pb.JobUpdate] = field(default_factory=lambda: deque(maxlen=HISTORY))
    sent_seq: int = 0
    started: bool = False
    stop_reason: str = ""
    task: asyncio.Task[None] | None = None

    @property
    def run_id(self) -> str:
        return run_id_of(self.job_id, self.attempt)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


class JobHost:
    """The jobs of one provider agent, across its queen sessions."""

    def __init__(self, executor: JobExecutor | None, private_key: bytes, *, devices: int, gpu_devices: int,
                 clock: Callable[[], float] = time.time) -> None:
        """
        Args:
            executor: Runs the jobs; None: every job is answered ``failed`` (the agent runs no jobs).
            private_key: The node's 32-byte secp256k1 key (payload keys are sealed to it).
            devices: Devices the provider offers (a job may use at most the free ones).
            gpu_devices: How many of them are GPUs: a CPU provider's job asks its executor for no GPU.
            clock: Wall clock for update timestamps.
        """
        self._executor = executor
        self._key = private_key
        self._devices = devices
        self._gpu_devices = gpu_devices
        self._clock = clock
        self._jobs: OrderedDict[tuple[str, int], _Job] = OrderedDict()
        self._send: Send | None = None
        self._sender: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stoppers: set[asyncio.Task[None]] = set()
        self._closing = False

    def __repr__(self) -> str:
        return f"JobHost(jobs={len(self._jobs)})"

    @property
    def has_executor(self) -> bool:
        return self._executor is not None

    def set_executor(self, executor: JobExecutor) -> None:
        """Use ``executor`` for jobs started from now on."""
        self._executor = executor

    # ------------------------------------------------------------------ sessions
    def attach(self, send: Send) -> None:
        """A queen session started: send every job's kept updates again, then new ones as they come."""
        self.detach()
        self._send = send
        for job in self._jobs.values():
            job.sent_seq = 0
        self._sender = asyncio.create_task(self._pump(send))
        self._wake.set()

    def detach(self) -> None:
        """The session ended: keep updates until the next one."""
        self._send = None
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None

    async def _pump(self, send: Send) -> None:
        while True:
            self._wake.clear()
            for job in list(self._jobs.values()):
                for u in list(job.history):
                    if u.seq > job.sent_seq:
                        try:
                            await send(pb.ProviderMessage(job_update=u))
                        except asyncio.CancelledError:
                            raise
                        except Exception as exc:
                            # The stream broke: the session is ending; the next one sends these again.
                            log.info("job updates wait for the next queen session", error=type(exc).__name__)
                            return
                        job.sent_seq = u.seq
            await self._wake.wait()

    # ------------------------------------------------------------------ from the queen
    def handle_start(self, m: pb.JobStart) -> None:
        """Start a job (or report it again if it is known). Never blocks: the work runs in a task."""
        key = (m.job_id, m.attempt)
        job = self._jobs.get(key)
        if job is not None:
            if job.history:
                # Already running or done: report its latest state again (the queen drops it if seen).
                job.sent_seq = min(job.sent_seq, job.history[-1].seq - 1)
                self._wake.set()
            return
        free = self._devices - self.busy_gpus()
        job = _Job(m.job_id, m.attempt, m.gpus)
        self._jobs[key] = job
        self._forget_old()
        # Checked here, not in the task: jobs arriving together see each other's devices as taken.
        if self._executor is None:
            self._publish(job, "failed", "this provider agent runs no renter jobs")
        elif job.gpus < 1 or job.gpus > free:
            self._publish(job, "failed", f"the job asks for {job.gpus} devices; this provider has "
                                         f"{max(0, free)} free of {self._devices}")
        else:
            job.task = asyncio.create_task(self._run(job, m), name=f"job-{job.run_id}")

    def handle_stop(self, m: pb.JobStopRequest) -> None:
        """Stop a job; one this agent does not know is stopped on the executor anyway (it may outlive us)."""
        job = self._jobs.get((m.job_id, m.attempt))
        reason = m.reason or "stopped by the queen"
        if job is None:
            if self._executor is not None:
                self._spawn_stop(run_id_of(m.job_id, m.attempt), reason)
            return
        if job.done:
            job.sent_seq = min(job.sent_seq, job.history[-1].seq - 1) if job.history else job.sent_seq
            self._wake.set()
            return
        if job.stop_reason:
            return
        job.stop_reason = reason
        log.info("stopping job", job=job.job_id, attempt=job.attempt, reason=reason)
        if job.started:
            self._spawn_stop(job.run_id, reason)

    def _spawn_stop(self, run_id: str, reason: str) -> None:
        assert self._executor is not None
        task = asyncio.create_task(self._stop(run_id, reason))
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    async def _stop(self, run_id: str, reason: str) -> None:
        assert self._executor is not None
        try:
            await self._executor.stop(run_id, reason)
        except BlendrError as exc:
            log.warning("cannot stop job", run=run_id, error=str(exc))

    # ------------------------------------------------------------------ one job
    async def _run(self, job: _Job, m: pb.JobStart) -> None:
        try:
            await self._run_inner(job, m)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job handling failed", job=job.job_id, attempt=job.attempt)
            if not job.done:
                self._publish(job, "failed", f"the provider agent failed: {type(exc).__name__}")

    async def _run_inner(self, job: _Job, m: pb.JobStart) -> None:
        assert self._executor is not None
        try:
            payload = await asyncio.to_thread(open_payload, bytes(m.ciphertext), bytes(m.sealed_key), self._key,
                                              m.aad)
        except PayloadError as exc:
            # Which step failed is safe to log (never the key or the plaintext); the queen gets the contract text.
            log.warning("job payload refused", job=job.job_id, attempt=job.attempt, reason=str(exc))
            self._publish(job, "failed", UNDECRYPTABLE)
            return
        self._publish(job, "accepted")
        if job.stop_reason:
            self._publish(job, "stopped", job.stop_reason)
            return
        gpus = job.gpus if self._gpu_devices else 0
        try:
            await self._executor.start(job.run_id, payload, gpus=gpus, deadline_unix=m.deadline_unix)
        except BlendrError as exc:
            self._publish(job, "failed", f"cannot start the job: {exc}")
            return
        del payload
        job.started = True
        log.info("job started", job=job.job_id, attempt=job.attempt, gpus=job.gpus)
        if job.stop_reason:
            self._spawn_stop(job.run_id, job.stop_reason)
        async for e in self._executor.events(job.run_id):
            if e.kind not in EXECUTOR_KINDS:
                continue
            exit_code = 0
            if e.kind == "failed":
                found = _EXIT_CODE.search(e.message)
                exit_code = int(found.group(1)) if found else -1
            self._publish(job, e.kind, e.message, progress=e.progress if e.kind == "progress" else 0.0,
                          ts=e.ts, exit_code=exit_code)
            if e.kind in TERMINAL:
                log.info("job ended", job=job.job_id, attempt=job.attempt, kind=e.kind)
                return
        if not self._closing:
            self._publish(job, "failed", "the job runner ended without a final state")

    def _publish(self, job: _Job, kind: str, message: str = "", *, progress: float = 0.0, ts: float = 0.0,
                 exit_code: int = 0) -> None:
        job.seq += 1
        if kind not in ("log", "progress"):
            job.state = kind
        job.history.append(pb.JobUpdate(job_id=job.job_id, attempt=job.attempt, seq=job.seq, kind=kind,
                                        message=message, progress=progress, ts_unix=ts or self._clock(),
                                        exit_code=exit_code))
        self._wake.set()

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.done]
        for k in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[k]

    # ------------------------------------------------------------------ queries and shutdown
    def busy_gpus(self) -> int:
        """Devices held by jobs that have not ended."""
        return sum(j.gpus for j in self._jobs.values() if not j.done)

    def updates(self, job_id: str, attempt: int) -> list[pb.JobUpdate]:
        """The updates kept for a job (tests, diagnostics)."""
        job = self._jobs.get((job_id, attempt))
        return list(job.history) if job else []

    async def close(self) -> None:
        """Stop every running job (a rental must not run on unsupervised) and release the executor."""
        self._closing = True
        self.detach()
        if self._executor is None:
            return
        running = [j for j in self._jobs.values() if j.started and not j.done]
        if running:
            stops = [asyncio.create_task(self._stop(j.run_id, "the provider agent is shutting down")) for j in running]
            _, pending = await asyncio.wait(stops, timeout=STOP_ON_CLOSE_S)
            for t in pending:
                t.cancel()
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        tasks += list(self._stoppers)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._executor.close()


__all__ = ["UNDECRYPTABLE", "ExecutorEvent", "JobExecutor", "JobHost", "open_payload", "run_id_of"]
