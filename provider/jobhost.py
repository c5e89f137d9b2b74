"""The provider agent's job core: decrypt an assignment, run it, report its numbered updates.

Transport-free: the agent's stream converts the queen's ``JobStart``/``JobStopRequest`` to
:class:`~provider.jobtypes.Assignment`/:class:`~provider.jobtypes.StopRequest` and every
:class:`~provider.jobtypes.JobUpdate` back (:mod:`provider.convert`); nothing here sees protobuf or gRPC.
The host runs jobs through a :class:`JobExecutor` (the real one is :class:`provider.jobs.JobRunner`, Ray's
job submission API; tests use ``tests.fakes.jobhost.FakeExecutor``). Jobs outlive queen sessions: the
host keeps each job's recent updates and, whenever a session starts (:meth:`JobHost.attach`), sends them
again, so a stream that broke mid-job loses nothing the queen has not seen (the queen drops updates whose
``seq`` it already has).

Guarantees:

- Idempotent by ``(job_id, attempt)``: a repeated assignment never starts a job twice; the host reports
  the job's latest update again.
- Per job and attempt, updates are numbered from 1 and sent in order: ``accepted`` first (once the payload
  is decrypted), then the executor's ``running``, ``log``, ``progress`` and one terminal event
  (``succeeded``, ``failed`` or ``stopped``); states move along :data:`provider.jobtypes.TRANSITIONS`
  only. A payload that does not open with this node's key is answered ``failed`` alone.
- Neither the node key nor the payload is ever logged.
- Only :class:`~blendr.errors.BlendrError` is handled as an expected failure: the executor and the update
  sink (the stream) translate their libraries' errors. Anything else is a bug, logged with its traceback;
  the job it hit still gets its one terminal update.

The payload: ``sealed_key`` is the 32-byte AES key sealed to this node's public key
(:func:`blendr.payload.seal`, associated data = the request id ``aad``), and ``ciphertext`` is
``nonce (12 bytes) || AES-256-GCM(JobPayload.encode(), key, associated data = aad)``.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from blendr.clock import Clock, SystemClock
from blendr.errors import BlendrError, ComputeError, FailedPreconditionError, UnavailableError
from blendr.payload import JobPayload, PayloadError, open_sealed
from blendr.telemetry import get_logger
from provider.jobtypes import (
    RUNNER_KINDS,
    TERMINAL_KINDS,
    TERMINAL_STATES,
    Assignment,
    JobEvent,
    JobId,
    JobState,
    JobUpdate,
    RunId,
    StopRequest,
    UnixSeconds,
    UpdateKind,
    next_state,
    run_id_of,
)
from provider.outputs import OutputShipper

log = get_logger("blendr.provider.jobs")

# Updates kept per job for re-sending after a reconnect, and finished jobs kept to re-report them.
HISTORY = 256
KEEP_FINISHED = 32
STOP_ON_CLOSE_S = 10.0
UNDECRYPTABLE = "payload cannot be decrypted with this provider's key"
NO_EXECUTOR = "this provider agent runs no renter jobs"
SHUTTING_DOWN = "the provider agent is shutting down"
_NONCE = 12
_TAG = 16

UpdateSink = Callable[[JobUpdate], Awaitable[None]]
"""Delivers one update to the current queen session; raises UnavailableError once that session's stream is
closed (the updates wait for the next session)."""


class JobExecutor(Protocol):
    """Runs jobs by id (``provider.jobs.JobRunner`` is one; ``tests.fakes.jobhost.FakeExecutor`` another).

    Implementations raise only :class:`~blendr.errors.BlendrError` subclasses for expected failures.
    """

    async def start(self, job_id: str, payload: JobPayload, *, gpus: int, deadline_unix: float) -> None:
        """Start the job, or re-attach to it when the cluster already runs it (idempotent per id); stop it
        at ``deadline_unix`` (terminal ``stopped``, reason ``"rental ended"``).

        Raises:
            BlendrError: the job cannot start (e.g. ComputeError, FailedPreconditionError).
        """

    def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        """The started job's events, ending after one terminal event (or early, when the executor closes)."""

    async def stop(self, job_id: str, reason: str) -> None:
        """Stop the job; its terminal event says ``stopped``. Idempotent.

        Raises:
            BlendrError: the cluster cannot be reached or refused the stop.
        """

    async def close(self) -> None:
        """Release the executor (jobs keep running on the cluster)."""

    async def probe(self, timeout_s: float) -> None:
        """Check that a trivial job runs to the end within ``timeout_s`` (the provider's readiness).

        Raises:
            BlendrError: it does not (the reason is reported to the queen).
        """


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


@dataclass(eq=False)
class _Job:
    """One attempt of a job on this host: its state, its numbered updates, and its task."""

    job_id: JobId
    attempt: int
    gpus: int
    seq: int = 0
    state: JobState = JobState.NEW
    history: deque[JobUpdate] = field(default_factory=lambda: deque(maxlen=HISTORY))
    sent_seq: int = 0
    started: bool = False
    stop_reason: str = ""
    task: asyncio.Task[None] | None = None
    # The renter's key from the opened payload (outputs are sealed to it) and the king's bound on them.
    output_key: bytes = field(default=b"", repr=False)
    max_output_bytes: int = 0

    @property
    def run_id(self) -> RunId:
        return run_id_of(self.job_id, self.attempt)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    def resend_latest(self) -> None:
        """Have the pump send the latest kept update again (the queen drops it if it has it)."""
        if self.history:
            self.sent_seq = min(self.sent_seq, self.history[-1].seq - 1)


class JobHost:
    """The jobs of one provider agent, across its queen sessions (no transport: see the module docstring)."""

    def __init__(self, executor: JobExecutor | None, private_key: bytes, *, devices: int, gpu_devices: int,
                 clock: Clock | None = None) -> None:
        """
        Args:
            executor: Runs the jobs; None: every job is answered ``failed`` (the agent runs no jobs).
            private_key: The node's 32-byte secp256k1 key (payload keys are sealed to it).
            devices: Devices the provider offers (a job may use at most the free ones).
            gpu_devices: How many of them are GPUs: a CPU provider's job asks its executor for no GPU.
            clock: Wall clock for the host's own update timestamps.
        """
        self._executor = executor
        self._key = private_key
        self._devices = devices
        self._gpu_devices = gpu_devices
        self._clock: Clock = clock or SystemClock()
        self._jobs: OrderedDict[tuple[str, int], _Job] = OrderedDict()
        self._sender: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stoppers: set[asyncio.Task[None]] = set()
        self._closing = False
        # Sends each ended attempt's outputs (provider.outputs); None: none are sent (tests, no queen link).
        self.outputs: OutputShipper | None = None

    def __repr__(self) -> str:
        return f"JobHost(jobs={len(self._jobs)})"

    @property
    def has_executor(self) -> bool:
        return self._executor is not None

    def set_executor(self, executor: JobExecutor) -> None:
        """Use ``executor`` for jobs started from now on."""
        self._executor = executor

    # ------------------------------------------------------------------ sessions
    def attach(self, sink: UpdateSink) -> None:
        """A queen session started: send every job's kept updates again, then new ones as they come."""
        self.detach()
        for job in self._jobs.values():
            job.sent_seq = 0
        self._sender = asyncio.create_task(self._pump(sink), name="job-updates")
        self._sender.add_done_callback(_log_crash)
        self._wake.set()

    def detach(self) -> None:
        """The session ended: keep updates until the next one."""
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None

    async def _pump(self, sink: UpdateSink) -> None:
        while True:
            self._wake.clear()
            for job in list(self._jobs.values()):
                for u in list(job.history):
                    if u.seq > job.sent_seq:
                        try:
                            await sink(u)
                        except UnavailableError as exc:
                            # The stream broke: the session is ending; the next one sends these again.
                            log.info("job updates wait for the next queen session", error=str(exc))
                            return
                        job.sent_seq = u.seq
            await self._wake.wait()

    # ------------------------------------------------------------------ from the queen
    def handle_start(self, a: Assignment) -> None:
        """Start a job (or report it again if it is known). Never blocks: the work runs in a task."""
        key = (a.job_id, a.attempt)
        job = self._jobs.get(key)
        if job is not None:
            # Already running or done: report its latest state again.
            job.resend_latest()
            self._wake.set()
            return
        free = self._devices - self.busy_gpus()
        job = _Job(a.job_id, a.attempt, a.gpus, max_output_bytes=a.max_output_bytes)
        self._jobs[key] = job
        self._forget_old()
        # Checked here, not in the task: jobs arriving together see each other's devices as taken.
        if self._executor is None:
            self._publish(job, UpdateKind.FAILED, NO_EXECUTOR, provider_fault=True)
        elif job.gpus < 1 or job.gpus > free:
            self._publish(job, UpdateKind.FAILED, f"the job asks for {job.gpus} devices; this provider has "
                                                  f"{max(0, free)} free of {self._devices}", provider_fault=True)
        else:
            job.task = asyncio.create_task(self._run(job, a), name=f"job-{job.run_id}")
            job.task.add_done_callback(functools.partial(self._job_task_done, job))

    def handle_stop(self, r: StopRequest) -> None:
        """Stop a job; one this agent does not know is stopped on the executor anyway (it may outlive us)."""
        job = self._jobs.get((r.job_id, r.attempt))
        reason = r.reason or "stopped by the queen"
        if job is None:
            if self._executor is not None:
                self._spawn_stop(run_id_of(r.job_id, r.attempt), reason)
            return
        if job.done:
            job.resend_latest()
            self._wake.set()
            return
        if job.stop_reason:
            return
        job.stop_reason = reason
        log.info("stopping job", job=job.job_id, attempt=job.attempt, reason=reason)
        if job.started:
            self._spawn_stop(job.run_id, reason)

    def _spawn_stop(self, run_id: RunId, reason: str) -> None:
        task = asyncio.create_task(self._stop(run_id, reason), name=f"stop-{run_id}")
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)
        task.add_done_callback(_log_crash)

    async def _stop(self, run_id: RunId, reason: str) -> None:
        if self._executor is None:
            return
        try:
            await self._executor.stop(run_id, reason)
        except BlendrError as exc:
            log.warning("cannot stop job", run=run_id, error=str(exc))

    # ------------------------------------------------------------------ one job
    def _job_task_done(self, job: _Job, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        # A bug, not a job failure (those are reported in _run): the job still gets its one terminal update,
        # so neither the queen nor the renter waits for it forever.
        log.error("job handling failed", job=job.job_id, attempt=job.attempt, exc_info=exc)
        if not job.done:
            self._publish(job, UpdateKind.FAILED, f"the provider agent failed: {type(exc).__name__}",
                          provider_fault=True)

    async def _run(self, job: _Job, a: Assignment) -> None:
        assert self._executor is not None
        try:
            payload = await asyncio.to_thread(open_payload, a.ciphertext, a.sealed_key, self._key, a.aad)
        except PayloadError as exc:
            # Which step failed is safe to log (never the key or the plaintext); the queen gets the contract text.
            log.warning("job payload refused", job=job.job_id, attempt=job.attempt, reason=str(exc))
            self._publish(job, UpdateKind.FAILED, UNDECRYPTABLE)
            return
        job.output_key = payload.output_key
        self._publish(job, UpdateKind.ACCEPTED)
        if job.stop_reason:
            self._publish(job, UpdateKind.STOPPED, job.stop_reason)
            return
        gpus = job.gpus if self._gpu_devices else 0
        try:
            await self._executor.start(job.run_id, payload, gpus=gpus, deadline_unix=a.deadline_unix)
        except BlendrError as exc:
            # The runner's own failure (Ray refused or cannot be reached, the provider's files) is the provider's;
            # anything else (the renter's payload, a rental already over) is not.
            self._publish(job, UpdateKind.FAILED, f"cannot start the job: {exc}",
                          provider_fault=isinstance(exc, ComputeError))
            return
        del payload
        job.started = True
        log.info("job started", job=job.job_id, attempt=job.attempt, gpus=job.gpus)
        if job.stop_reason:
            self._spawn_stop(job.run_id, job.stop_reason)
        async for e in self._executor.events(job.run_id):
            if self._on_event(job, e):
                log.info("job ended", job=job.job_id, attempt=job.attempt, kind=str(e.kind))
                return
        if not self._closing:
            self._publish(job, UpdateKind.FAILED, "the job runner ended without a final state", provider_fault=True)

    def _on_event(self, job: _Job, e: JobEvent) -> bool:
        """Publish one executor event; True when it ended the job."""
        if e.kind not in RUNNER_KINDS or next_state(job.state, UpdateKind(e.kind)) is None:
            log.warning("job event out of order dropped", job=job.job_id, attempt=job.attempt,
                        state=job.state.value, kind=str(e.kind))
            return False
        kind = UpdateKind(e.kind)
        exit_code = 0
        if kind is UpdateKind.FAILED:
            exit_code = e.exit_code if e.exit_code is not None else -1
        self._publish(job, kind, e.message, progress=e.progress if kind is UpdateKind.PROGRESS else 0.0,
                      ts=e.ts, exit_code=exit_code, provider_fault=kind is UpdateKind.FAILED and e.provider_fault)
        return kind in TERMINAL_KINDS

    def _publish(self, job: _Job, kind: UpdateKind, message: str = "", *, progress: float = 0.0, ts: float = 0.0,
                 exit_code: int = 0, provider_fault: bool = False) -> None:
        """Number and keep the job's next update (``provider_fault``: a failure on the provider's side).

        Raises:
            FailedPreconditionError: ``kind`` is not allowed in the job's state (a bug in this module).
        """
        state = next_state(job.state, kind)
        if state is None:
            raise FailedPreconditionError(f"job {job.run_id}: {kind.value} is not allowed once {job.state.value}")
        # A job that reached running had the devices: however it ends then (its code may kill Ray's supervisor
        # or the agent's Ray on purpose), that time is the renter's, never a provider fault that costs nothing.
        provider_fault = provider_fault and job.state is not JobState.RUNNING
        job.state = state
        job.seq += 1
        job.history.append(JobUpdate(job_id=job.job_id, attempt=job.attempt, seq=job.seq, kind=kind,
                                     message=message, progress=progress,
                                     ts_unix=UnixSeconds(ts or self._clock.time()), exit_code=exit_code,
                                     provider_fault=provider_fault))
        self._wake.set()
        if state in TERMINAL_STATES and self.outputs is not None:
            # the end is reported first (settlement never waits on outputs), then the outputs follow
            self.outputs.ship(job.job_id, job.attempt, job.run_id, job.output_key, job.max_output_bytes)

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.done]
        for k in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[k]

    # ------------------------------------------------------------------ queries and shutdown
    def busy_gpus(self) -> int:
        """Devices held by jobs that have not ended."""
        return sum(j.gpus for j in self._jobs.values() if not j.done)

    def updates(self, job_id: str, attempt: int) -> list[JobUpdate]:
        """The updates kept for a job (tests, diagnostics)."""
        job = self._jobs.get((job_id, attempt))
        return list(job.history) if job else []

    def state(self, job_id: str, attempt: int) -> JobState | None:
        """A job attempt's state, or None when this host does not know it (any more)."""
        job = self._jobs.get((job_id, attempt))
        return job.state if job else None

    async def close(self) -> None:
        """Stop every running job (a rental must not run on unsupervised) and release the executor."""
        self._closing = True
        self.detach()
        if self.outputs is not None:
            # outputs on their way are dropped (their files removed): with the stream gone the queen declares the
            # jobs lost, and the king expects no outputs of a lost attempt
            await self.outputs.close()
        if self._executor is None:
            return
        running = [j for j in self._jobs.values() if j.started and not j.done]
        if running:
            stops = [asyncio.create_task(self._stop(j.run_id, SHUTTING_DOWN)) for j in running]
            _, pending = await asyncio.wait(stops, timeout=STOP_ON_CLOSE_S)
            for t in pending:
                t.cancel()
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        tasks += list(self._stoppers)
        for t in tasks:
            t.cancel()
        if tasks:
            # Outcomes are taken by each task's done callback (a crash is logged there), not raised here.
            await asyncio.wait(tasks)
        await self._executor.close()


def _log_crash(task: asyncio.Task[Any]) -> None:
    """Done callback of the host's background tasks: a crash is a bug, logged with its traceback."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("job host task crashed", task=task.get_name(), exc_info=exc)


__all__ = ["NO_EXECUTOR", "UNDECRYPTABLE", "JobExecutor", "JobHost", "UpdateSink", "open_payload", "run_id_of"]
