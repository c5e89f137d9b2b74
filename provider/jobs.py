"""Renter jobs, each in its own sandbox, supervised as Ray jobs on the provider's Ray cluster (Ray's job API).

A job's decrypted :class:`~blendr.payload.JobPayload` is unpacked (safely, within limits) into
``<home>/jobs/<job_id>/work`` (mode 0700). Its :class:`~provider.sandbox.SandboxSpec` (the renter's entrypoint
and environment variables, the folders to bind, the network, the limits) is written beside it (mode 0600), and
the Ray job's entrypoint is our launcher, ``python -m provider.jail run <spec>``: Ray supervises it (status,
logs, stop, re-attach after a restart), and the renter's command runs only inside the sandbox the launcher
starts (see :mod:`provider.sandbox`). Nothing of the renter's goes through Ray: no working-directory package
(so nothing decrypted is left in Ray's session or GCS), no renter variables in Ray's job record. The
entrypoint reserves the rented GPUs (``entrypoint_num_gpus``; the launcher binds only their device nodes) and,
on a shared cluster, a sliver of the agent's pin resource so it lands on this provider's nodes. The Ray
submission id is ``blendr-<job_id>``: a restarted provider calling :meth:`JobRunner.start` again re-attaches to
the running Ray job instead of submitting it twice.

Why logs are polled (``get_job_logs``) rather than tailed (``tail_job_logs``): the tail websocket sleeps
a second at every end of file and waits a second for the supervisor, so a short job's last lines arrive
seconds late, and a dropped socket restarts from the first line anyway. Polling the status first and
the logs second gives a simple guarantee: once a poll sees a terminal status, the log read after it is
complete, so every line is delivered before the terminal event. The cost is that each poll transfers the
whole log; the interval grows with the log's size to bound that.

Ray 2.60 clusters enable token authentication by default. The token is taken, in order, from the
``auth_token`` argument, ``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH``, or
``~/.ray/auth_token`` (the places Ray itself looks), and sent as ``Authorization: Bearer``. A cluster
without authentication ignores it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import re
import secrets
import shlex
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from blendr.aio import wait_event, within
from blendr.clock import Clock, SystemClock
from blendr.errors import (
    BlendrError,
    ComputeError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from blendr.outputs import OUTPUT_DIR_ENV
from blendr.payload import MAX_PAYLOAD_BYTES, JobPayload, unpack
from blendr.telemetry import get_logger
from provider.envs import EnvCache, EnvInstallError, JobEnv
from provider.jail import reap
from provider.jobtypes import JobEvent, UpdateKind
from provider.outputs import output_dir_of
from provider.sandbox import (
    DEFAULT_JOB_UID,
    JOB_OUTPUTS,
    NETWORKS,
    SANDBOXES,
    Limits,
    SandboxError,
    SandboxSpec,
    check_backend,
    gvisor_memory_advice,
    host_thp,
)

log = get_logger("blendr.provider.jobs")

T = TypeVar("T")

RENTAL_ENDED = "rental ended"
SUBMISSION_PREFIX = "blendr-"
# When a job's session files are removed after it ends (seconds after the previous removal).
SESSION_SWEEP_DELAYS_S = (0.0, 2.0, 10.0)
# Readiness probes' submission ids (never a job id: those are the king's, without this prefix's dash pattern).
PROBE_PREFIX = "blendr-readiness-probe-"
SPEC_FILE = "sandbox.json"
# A job's share of the agent's pin resource: enough to place it on this provider's nodes, small enough
# never to block challenge tasks (0.01 each) or other jobs (the agent holds 1000 units).
PIN_SHARE = 0.001
# Log lines longer than this are cut into pieces of exactly this size (cut points depend only on the
# content, so line numbers stay the same when a restarted provider reads the log again).
MAX_LINE_CHARS = 16_384
# The poll interval grows with the log's size (each poll reads the whole log) up to MAX_POLL_S.
LOG_POLL_CHARS_PER_S = 2_000_000
MAX_POLL_S = 5.0
# How long a submission waits for a just-started cluster's job agent.
AGENT_WAIT_S = 30.0
_PROGRESS = re.compile(r"BLENDR_PROGRESS\s+([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*")
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_STATUS_CODE = re.compile(r"status code (\d{3})")
# Device visibility is the provider's to set (the launcher sets it for the GPUs Ray grants, whose device nodes
# are the only ones in the sandbox); a renter's value is refused rather than silently replaced.
RESERVED_ENV = frozenset({"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
                          "ROCR_VISIBLE_DEVICES"})


class _RayRequestError(ComputeError):
    """Raised when the Ray dashboard answers a job API request with an HTTP error (``status`` when known)."""

    def __init__(self, what: str, text: str) -> None:
        m = _STATUS_CODE.search(text)
        self.status = int(m.group(1)) if m else None
        self.text = text
        # Ray puts the server's whole traceback in the message; its last line is the actual reason.
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        self.reason = (lines[-1] if lines else text).rstrip(".")[:500]
        super().__init__(f"the Ray cluster refused to {what}: {self.reason}")


def _agent_not_ready(exc: BaseException) -> bool:
    """A just-started cluster's job agent is not up yet, or the dashboard dropped the connection (seen on a busy
    host): worth another try. A submission is idempotent (its id), so a retry never submits twice."""
    if isinstance(exc, _RayRequestError):
        return "No available agent" in exc.text
    return isinstance(exc, ComputeError) and "Connection aborted" in str(exc)


def submission_id_for(job_id: str) -> str:
    """The Ray submission id of a BlendrChain job (deterministic, so a restart re-attaches)."""
    return SUBMISSION_PREFIX + job_id


def parse_progress(line: str) -> float | None:
    """The fraction in a ``BLENDR_PROGRESS <x>`` line (0 <= x <= 1), or None for any other line."""
    m = _PROGRESS.fullmatch(line.strip())
    if not m:
        return None
    value = float(m.group(1))
    return value if 0.0 <= value <= 1.0 else None


def dashboard_address_from_context(ctx: Any) -> str:
    """The job API address (``http://host:port``) of the Ray a ``ray.init(...)`` call returned.

    Raises:
        ComputeError: that Ray runs without its dashboard, which the job submission API needs.
    """
    url = getattr(ctx, "dashboard_url", None)
    if url is None and isinstance(ctx, Mapping):
        url = ctx.get("dashboard_url") or ctx.get("webui_url")
    if not url:
        raise ComputeError("this Ray cluster runs without its dashboard, which renter jobs need: start it "
                           "with ray.init(include_dashboard=True) or `ray start --include-dashboard=true`")
    url = str(url).rstrip("/")
    return url if "://" in url else f"http://{url}"


def resolve_auth_token(explicit: str | None = None, *, environ: Mapping[str, str] | None = None,
                       home: Path | None = None) -> str:
    """The Ray auth token to present: ``explicit``, else ``RAY_AUTH_TOKEN``, else the file at
    ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``; ``""`` when there is none or ``RAY_AUTH_MODE``
    is ``disabled``.

    Raises:
        ComputeError: ``RAY_AUTH_TOKEN_PATH`` names a file that cannot be read.
    """
    if explicit:
        return explicit.strip()
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        return ""
    if token := env.get("RAY_AUTH_TOKEN", "").strip():
        return token
    configured = env.get("RAY_AUTH_TOKEN_PATH", "").strip()
    path = Path(configured).expanduser() if configured else (home or Path.home()) / ".ray" / "auth_token"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if configured:
            raise ComputeError(f"RAY_AUTH_TOKEN_PATH names {path}, which does not exist") from None
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ComputeError(f"cannot read the Ray auth token at {path}: {exc}") from None


class _LogCursor:
    """Turns successive reads of a growing log into new lines, each exactly once, numbered from 1."""

    def __init__(self, skip_lines: int) -> None:
        self.offset = 0  # characters of the log already turned into lines
        self.count = 0  # lines produced so far (including skipped ones)
        self.skip = skip_lines
        self._midline = False  # the last piece produced was a cut of a longer, unfinished line

    def feed(self, text: str, *, final: bool) -> list[tuple[int, str]]:
        """New lines in ``text`` (the whole log so far); with ``final``, also the unterminated rest."""
        new = text[self.offset:]
        pieces: list[str] = []
        pos = 0
        while (nl := new.find("\n", pos)) >= 0:
            line = new[pos:nl]
            if line or not self._midline:
                pieces.extend(self._cut(line, complete=True))
            self._midline = False
            pos = nl + 1
        rest = new[pos:]
        if final and rest:
            pieces.extend(self._cut(rest, complete=True))
            pos = len(new)
        elif len(rest) >= MAX_LINE_CHARS:
            whole = len(rest) - len(rest) % MAX_LINE_CHARS
            pieces.extend(self._cut(rest[:whole], complete=False))
            self._midline = True
            pos += whole
        self.offset += pos
        out = []
        for piece in pieces:
            self.count += 1
            if self.count > self.skip:
                out.append((self.count, piece.removesuffix("\r")))
        return out

    @staticmethod
    def _cut(line: str, *, complete: bool) -> list[str]:
        if len(line) <= MAX_LINE_CHARS and complete:
            return [line]
        return [line[i:i + MAX_LINE_CHARS] for i in range(0, len(line), MAX_LINE_CHARS)]


@dataclass(eq=False)
class _Job:
    job_id: str
    submission_id: str
    deadline_unix: float
    workdir: Path
    skip_lines: int
    queue: asyncio.Queue[JobEvent | None] = field(default_factory=asyncio.Queue)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    starting: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    stop_reason: str = ""
    stop_sent: bool = False
    consumed: bool = False
    terminal: JobEvent | None = None
    env: JobEnv | None = None  # the environment this runner acquired for the job (None when re-attached)
    spec: SandboxSpec | None = None  # the job's sandbox (re-read from its file after a re-attach)


class _Outage:
    """A tenacity stop condition: every poll has failed for ``limit_s`` on ``clock`` (from the first failure)."""

    def __init__(self, clock: Clock, limit_s: float) -> None:
        self._clock = clock
        self._limit_s = limit_s
        self._since: float | None = None
        self.elapsed_s = 0.0

    def __call__(self, retry_state: RetryCallState) -> bool:
        now = self._clock.monotonic()
        self._since = now if self._since is None else self._since
        self.elapsed_s = now - self._since
        return self.elapsed_s >= self._limit_s


def _log_poll_failure(job: _Job, retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
    log.warning("renter job poll failed", job_id=job.job_id, error=str(exc))


class JobRunner:
    """Runs renter jobs as Ray jobs on one Ray cluster, reached through its dashboard's job API.

    Events come from :meth:`events`, one async iterator per job (a single consumer): every log line
    exactly once and in order, then exactly one terminal event, after which the job's files under
    ``<home>/jobs/<job_id>/`` are already gone. Events are buffered from :meth:`start` on, so a consumer
    that attaches late misses nothing. Jobs are stopped automatically at their ``deadline_unix`` (the end
    of the rental; terminal ``stopped`` with reason ``"rental ended"``).

    :meth:`close` detaches without stopping the Ray jobs: a new runner (a restarted provider) that calls
    :meth:`start` with the same job ids picks them up again, replaying their logs from line
    ``resume_after_line + 1``.
    """

    def __init__(self, *, dashboard_address: str, home: Path, pin_resource: str = "", poll_s: float = 0.5,
                 clock: Clock | None = None, auth_token: str | None = None,
                 max_workdir_bytes: int = MAX_PAYLOAD_BYTES, request_timeout_s: float = 60.0,
                 unreachable_after_s: float = 120.0, envs: EnvCache | None = None,
                 session_dir: Path | None = None,
                 sandbox: str = "bubblewrap",
                 job_network: str = "none", limits: Callable[[int], Limits] | None = None,
                 job_uid: int = DEFAULT_JOB_UID) -> None:
        """Configure the runner; nothing is contacted before the first :meth:`start` or :meth:`stop`.

        Args:
            dashboard_address: the Ray dashboard (``http://host:8265``; a bare ``host:port`` is accepted).
            home: the provider's home; job files go under ``<home>/jobs/``.
            pin_resource: the agent's custom Ray resource on a shared cluster ("" for none).
            poll_s: how often to poll each job's status and logs.
            clock: wall clock for deadlines and event times (tests pass a manual one).
            auth_token: the cluster's token; None looks where Ray looks (see :func:`resolve_auth_token`).
            max_workdir_bytes: the unpacked size limit of a job's working directory.
            request_timeout_s: the longest one job API call may take.
            unreachable_after_s: a running job whose cluster stays unreachable this long is reported failed.
            envs: builds jobs' environments (default: an :class:`~provider.envs.EnvCache` in ``<home>/envs``).
            session_dir: the Ray session directory on this machine (a local head's), whose per-job files (driver
                log, unpacked working directory) are deleted when a job ends; None when not on this machine.
            sandbox: where jobs run (:data:`provider.sandbox.SANDBOXES`); ``"none"`` only by the operator's choice.
            job_network: ``"none"`` or ``"outbound"`` (see :mod:`provider.sandbox`).
            limits: a job's limits from its GPU count (default: none).
            job_uid: the user a root agent's jobs run as.

        Raises:
            InvalidArgumentError: an empty address or a non-positive interval.
        """
        if not dashboard_address.strip():
            raise InvalidArgumentError("the Ray dashboard address is empty")
        if poll_s <= 0 or request_timeout_s <= 0 or unreachable_after_s <= 0:
            raise InvalidArgumentError("poll_s, request_timeout_s and unreachable_after_s must be > 0")
        addr = dashboard_address.strip().rstrip("/")
        self.address = addr if "://" in addr else f"http://{addr}"
        self.home = home
        self.pin = pin_resource
        self._poll_s = poll_s
        self._clock: Clock = clock or SystemClock()
        self._auth_token = auth_token
        self._max_workdir_bytes = max_workdir_bytes
        self._timeout_s = request_timeout_s
        self._unreachable_after_s = unreachable_after_s
        self._envs = envs or EnvCache(home / "envs", sandbox=sandbox, job_uid=job_uid)
        self._session_dir = session_dir
        self._sweeps: set[asyncio.Task[None]] = set()
        if sandbox not in SANDBOXES or job_network not in NETWORKS:
            raise InvalidArgumentError(f"provider.sandbox must be one of {', '.join(SANDBOXES)} and "
                                       f"provider.job_network one of {', '.join(NETWORKS)}")
        self.sandbox = sandbox
        self.job_network = job_network
        try:
            check_backend(sandbox, job_network)
        except SandboxError as exc:  # the readiness check fails with the same words: not offered until fixed
            log.error("renters' jobs cannot run in the configured sandbox", sandbox=sandbox, error=str(exc))
        else:
            if sandbox == "gvisor" and (advice := gvisor_memory_advice(host_thp())):
                log.warning("gVisor jobs will run slower than they could", advice=advice)
        self._limits = limits or (lambda gpus: Limits())
        self._job_uid = job_uid
        # Our own threads: the Ray SDK blocks (requests, no timeouts), and a hung dashboard must not
        # starve the default executor the rest of the provider uses.
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="blendr-jobs")
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._jobs: dict[str, _Job] = {}
        self._closed = False

    # --- public API ---------------------------------------------------------------------------------

    async def start(self, job_id: str, payload: JobPayload, *, gpus: int, deadline_unix: float,
                    resume_after_line: int = 0) -> None:
        """Submit the job to Ray, or re-attach to it if Ray already has it. Idempotent per ``job_id``: a
        second call (even a concurrent one) waits for the first and submits nothing.

        Raises:
            InvalidArgumentError: a malformed job id or GPU count, or an env var in :data:`RESERVED_ENV`.
            PayloadError: the working directory archive is unsafe or corrupt.
            PayloadTooLargeError: it unpacks to more than ``max_workdir_bytes``.
            FailedPreconditionError: the runner is closed, or the rental ended before the job was submitted.
            ComputeError: the Ray cluster is unreachable, refused our token, or refused the job; or the
                job's files cannot be written under ``<home>/jobs/``.
        """
        if self._closed:
            raise FailedPreconditionError("the job runner is closed")
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise InvalidArgumentError(f"job id {job_id!r} must be 1-128 characters of [A-Za-z0-9_.-]")
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
            raise InvalidArgumentError(f"job {job_id}: the GPU count must be a whole number >= 0 (got {gpus!r})")
        if reserved := sorted(RESERVED_ENV & set(payload.env)):
            raise InvalidArgumentError(f"job {job_id}: {', '.join(reserved)} is set by the provider, not the job")
        job = self._jobs.get(job_id)
        if job is None:
            job = _Job(job_id, submission_id_for(job_id), float(deadline_unix), self.home / "jobs" / job_id,
                       max(0, int(resume_after_line)))
            self._jobs[job_id] = job
            job.starting = asyncio.create_task(self._start(job, payload, gpus), name=f"start-job-{job_id}")
            job.starting.add_done_callback(functools.partial(self._start_done, job))
        assert job.starting is not None
        # Shielded: a caller that gives up does not abort a submission other callers (and Ray) depend on.
        await asyncio.shield(job.starting)

    def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        """The job's events from the start: ``running``, ``log``/``progress`` lines in order, then one
        terminal event, after which the iterator ends. It also ends, without a terminal event, if the
        start fails or the runner is closed.

        Raises:
            NotFoundError: no job with this id was started on this runner.
            FailedPreconditionError: the job's events already have a consumer.
        """
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id} on this provider")
        if job.consumed:
            raise FailedPreconditionError(f"job {job_id}'s events already have a consumer")
        job.consumed = True
        return self._iterate(job)

    async def stop(self, job_id: str, reason: str) -> None:
        """Stop the job and wait for its terminal event (``stopped``, with ``reason``). Idempotent: a job
        that already ended keeps its own terminal event; a job this runner never started is stopped on
        Ray if Ray has it, without events.

        Raises:
            FailedPreconditionError: the runner is closed.
            ComputeError: the Ray cluster is unreachable or refused the stop (the runner keeps trying).
        """
        if self._closed:
            raise FailedPreconditionError("the job runner is closed")
        job = self._jobs.get(job_id)
        if job is not None and job.starting is not None and not job.starting.done():
            await asyncio.wait({job.starting})  # its outcome goes to start()'s callers, not here
            job = self._jobs.get(job_id)
        if job is None or job.watcher is None:
            await self._stop_on_ray(submission_id_for(job_id))
            return
        if job.finished.is_set():
            return
        job.stop_reason = job.stop_reason or reason or "stopped by the provider"
        if not job.stop_sent:
            await self._stop_on_ray(job.submission_id)
            job.stop_sent = True
        job.wake.set()
        await job.finished.wait()

    async def probe(self, timeout_s: float) -> None:
        """Check that this cluster really runs jobs: submit a trivial job (the job's base environment's
        ``python``, no GPU, on this provider's nodes), wait for it to succeed, then delete it from Ray.

        Raises:
            ComputeError: the job API does not answer or refuses the job (e.g. no job agent), or the job
                failed or did not finish within ``timeout_s``.
        """
        from ray.job_submission import JobStatus

        if self._closed:
            raise ComputeError("the job runner is closed")
        submission_id = f"{PROBE_PREFIX}{secrets.token_hex(6)}"
        probe_dir = self.home / "jobs" / submission_id

        async def run() -> None:
            client = await self._get_client()
            await self._run(self._write_spec, submission_id, probe_dir, "python -c \"import ray, numpy; "
                                   "print('blendr ready')\"", self._envs.base(), {}, 0)
            entrypoint = self._launcher(probe_dir)
            runtime_env = {"env_vars": self._base_env(None, submission_id)}
            retrying = AsyncRetrying(retry=retry_if_exception(_agent_not_ready), stop=stop_after_delay(timeout_s),
                                     wait=wait_exponential_jitter(multiplier=0.25, max=2.0), reraise=True)
            async for attempt in retrying:
                with attempt:
                    await self._call("submit a trivial job", client.submit_job, entrypoint=entrypoint,
                                     submission_id=submission_id, runtime_env=runtime_env,
                                     entrypoint_resources={self.pin: PIN_SHARE} if self.pin else None)
            while True:
                info = await self._call("read the trivial job's status", client.get_job_info, submission_id)
                if info.status == JobStatus.SUCCEEDED:
                    return
                if info.status in (JobStatus.FAILED, JobStatus.STOPPED):
                    logs = await self._call("read the trivial job's logs", client.get_job_logs, submission_id)
                    tail = " | ".join((logs or "").strip().splitlines()[-3:])
                    message = str(info.message or "").split(", last available logs")[0].strip()
                    raise ComputeError(f"a trivial job {str(info.status).lower()}: {message}: {tail}"[:1000])
                await asyncio.sleep(0.2)

        try:
            await asyncio.wait_for(run(), timeout_s)
        except TimeoutError:
            raise ComputeError(f"a trivial job did not finish within {timeout_s:g} s") from None
        finally:
            await asyncio.shield(self._forget_on_ray(submission_id))
            self._sweep_session(submission_id)
            await asyncio.shield(self._run(self._reap_dir, probe_dir))
            await asyncio.shield(self._run(shutil.rmtree, output_dir_of(self.home, submission_id), True))

    async def _forget_on_ray(self, submission_id: str) -> None:
        """Stop (if needed) and delete a job's record on Ray; best effort, bounded (a cleanup never raises)."""
        from ray.job_submission import JobStatus

        try:
            client = await self._get_client()
            info = await self._job_info_by_id(client, submission_id)
            if info is None:
                return
            if info.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                await self._call("stop the job", client.stop_job, submission_id)
                for _ in range(50):
                    info = await self._job_info_by_id(client, submission_id)
                    if info is None or info.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                        break
                    await asyncio.sleep(0.2)
            await self._call("delete the job", client.delete_job, submission_id)
        except ComputeError as exc:
            log.warning("cannot delete a job's record on Ray", submission_id=submission_id, error=str(exc))

    async def close(self) -> None:
        """Stop watching every job (the Ray jobs keep running) and end all event iterators. Idempotent."""
        self._closed = True
        for sweep in list(self._sweeps):  # no later sweep will come: do it now
            sweep.cancel()
        await asyncio.gather(*self._sweeps, return_exceptions=True)
        tasks = [t for j in self._jobs.values() for t in (j.starting, j.watcher) if t is not None and not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in self._jobs.values():
            if not job.finished.is_set():
                job.finished.set()
                job.queue.put_nowait(None)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- starting -----------------------------------------------------------------------------------

    def _start_done(self, job: _Job, task: asyncio.Task[None]) -> None:
        # Retrieve the outcome here so a start nobody awaits any more never logs "exception never retrieved".
        failed = task.cancelled() or task.exception() is not None
        if failed and self._jobs.get(job.job_id) is job:
            # Forget the attempt so a later start() can try again; end a consumer already waiting.
            del self._jobs[job.job_id]
            job.finished.set()
            job.queue.put_nowait(None)

    async def _start(self, job: _Job, payload: JobPayload, gpus: int) -> None:
        client = await self._get_client()
        info = await self._job_info(client, job)
        if info is None:
            if self._clock.time() >= job.deadline_unix:
                raise FailedPreconditionError(f"job {job.job_id}: its rental already ended")
            try:
                attached = await self._submit(client, job, payload, gpus)
            except EnvInstallError as exc:
                # The renter's dependencies: the job's own failure, reported with pip's words in its log.
                self._emit_lines(job, [(i, line[:MAX_LINE_CHARS]) for i, line in enumerate(exc.tail, 1)
                                       if i > job.skip_lines])
                await self._finish(job, UpdateKind.FAILED, str(exc))
                return
        else:
            attached = True
            # A job re-attached after a restart keeps its cached environment from eviction while it runs.
            env_vars = (getattr(info, "runtime_env", None) or {}).get("env_vars") or {}
            job.env = self._envs.adopt(str(env_vars.get("VIRTUAL_ENV", "")))
            with contextlib.suppress(OSError, ValueError, TypeError, BlendrError):
                job.spec = SandboxSpec.from_json((job.workdir / SPEC_FILE).read_text())
        log.info("renter job attached" if attached else "renter job submitted", job_id=job.job_id,
                 submission_id=job.submission_id, gpus=gpus)
        job.watcher = asyncio.create_task(self._watch(client, job), name=f"watch-job-{job.job_id}")
        job.watcher.add_done_callback(functools.partial(self._watch_done, job))

    def _watch_done(self, job: _Job, task: asyncio.Task[None]) -> None:
        if task.cancelled() or job.finished.is_set():
            return
        # A bug, not a Ray failure (those end the job in _watch): still honour the one-terminal-event
        # contract so the consumer (and the renter) is not left waiting forever.
        exc = task.exception()
        log.error("renter job watcher crashed", job_id=job.job_id, exc_info=exc)
        shutil.rmtree(job.workdir, ignore_errors=True)
        event = JobEvent(job.job_id, UpdateKind.FAILED,
                         f"the provider lost track of the job ({type(exc).__name__})", ts=self._clock.time(),
                         provider_fault=True)
        job.terminal = event
        job.queue.put_nowait(event)
        job.finished.set()

    async def _submit(self, client: Any, job: _Job, payload: JobPayload, gpus: int) -> bool:
        """Submit the job; returns True if Ray already had it (a racing or timed-out earlier submission)."""
        try:
            try:
                await self._run(self._prepare_workdir, job, payload)
            except OSError as exc:  # disk full, permissions: the provider's problem, not the renter's
                raise ComputeError(f"cannot prepare job {job.job_id}'s files under {job.workdir}: {exc}") from None
            job.env = await self._envs.acquire(job.workdir / "work", payload.pip, job.workdir)
            try:
                job.spec = await self._run(self._write_spec, job.job_id, job.workdir, payload.entrypoint, job.env,
                                           payload.env, gpus)
            except OSError as exc:
                raise ComputeError(f"cannot prepare job {job.job_id}'s sandbox under {job.workdir}: {exc}") from None
            # The Ray record holds no renter variable: only what a re-attach needs (its cached environment).
            runtime_env = {"env_vars": self._base_env(job.env, job.job_id)}
            if not gpus:  # Ray leaves a job granted no GPU free to use them all; the launcher binds none
                runtime_env["env_vars"]["CUDA_VISIBLE_DEVICES"] = ""
            # A freshly started Ray answers "No available agent to submit job, please try again later"
            # until its node's job agent registers (seconds): wait for it rather than fail the rental.
            retrying = AsyncRetrying(retry=retry_if_exception(_agent_not_ready),
                                     stop=stop_after_attempt(30) | stop_after_delay(AGENT_WAIT_S),
                                     wait=wait_exponential_jitter(multiplier=0.25, max=2.0), reraise=True)
            async for attempt in retrying:
                with attempt:
                    await self._call(
                        "submit the job", client.submit_job, entrypoint=self._launcher(job.workdir),
                        submission_id=job.submission_id, runtime_env=runtime_env,
                        metadata={"blendr_job_id": job.job_id,
                                  "blendr_deadline_unix": f"{job.deadline_unix:.0f}"},
                        entrypoint_num_gpus=gpus or None,
                        entrypoint_resources={self.pin: PIN_SHARE} if self.pin else None)
        except _RayRequestError as exc:
            if "already exists" in exc.text:
                return True
            self._release_env(job)
            await self._run(self._remove_workdir, job)
            raise ComputeError(f"the Ray cluster refused job {job.job_id}: {exc.reason}") from None
        except BaseException:
            self._release_env(job)
            await asyncio.shield(self._run(self._remove_workdir, job))
            raise
        return False

    def _prepare_workdir(self, job: _Job, payload: JobPayload) -> None:
        jobs_dir = job.workdir.parent
        jobs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if job.workdir.exists():  # left by an attempt that never reached Ray
            shutil.rmtree(job.workdir)
        job.workdir.mkdir(mode=0o700)
        unpack(payload.workdir_tar, job.workdir / "work", max_bytes=self._max_workdir_bytes)

    def _write_spec(self, job_id: str, job_dir: Path, command: str, env: JobEnv, renter_env: Mapping[str, str],
                    gpus: int) -> SandboxSpec:
        """Write the job's sandbox spec (mode 0600) into ``job_dir``, creating its work and outputs folders."""
        job_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (job_dir / "work").mkdir(mode=0o700, exist_ok=True)
        # Outside the job folder's work tree; the provider's OutputShipper packs and removes it after the job.
        out_dir = output_dir_of(self.home, job_id)
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        sandboxed = self.sandbox != "none"
        variables = {**self._base_env(env, job_id), **renter_env}
        variables[OUTPUT_DIR_ENV] = JOB_OUTPUTS if sandboxed else str(out_dir)
        ro = [sys.base_prefix, sys.prefix, str(self._envs.base_bin.parent)]
        if env.bin_dir != self._envs.base_bin:
            ro.append(str(env.bin_dir.parent))
        spec = SandboxSpec(job_id=job_id, kind=self.sandbox, command=command, workdir=str(job_dir / "work"),
                           outdir=str(out_dir), state_dir=str(job_dir / "sandbox"), env=variables,
                           ro_paths=list(dict.fromkeys(ro)), gpus=gpus, network=self.job_network,
                           limits=self._limits(gpus), job_uid=self._job_uid)
        spec.validate()
        path = job_dir / SPEC_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(spec.to_json())
        return spec

    @staticmethod
    def _launcher(job_dir: Path) -> str:
        """The Ray entrypoint: our launcher, with the job's spec (the renter's command is inside the spec)."""
        return f"{shlex.quote(sys.executable)} -m provider.jail run {shlex.quote(str(job_dir / SPEC_FILE))}"

    def _reap_dir(self, job_dir: Path) -> None:
        """Leave nothing of a job's sandbox (its processes, its state) and remove its folder."""
        with contextlib.suppress(OSError, ValueError, TypeError, BlendrError):
            reap(SandboxSpec.from_json((job_dir / SPEC_FILE).read_text()))
        shutil.rmtree(job_dir, ignore_errors=True)

    def _remove_workdir(self, job: _Job) -> None:
        if job.spec is not None:
            with contextlib.suppress(OSError, BlendrError):
                reap(job.spec)
        shutil.rmtree(job.workdir, ignore_errors=True)

    # --- watching -----------------------------------------------------------------------------------

    async def _iterate(self, job: _Job) -> AsyncIterator[JobEvent]:
        while True:
            event = await job.queue.get()
            if event is None:
                return
            yield event
            if event.terminal:
                return

    def _emit(self, job: _Job, kind: UpdateKind, message: str = "", *, progress: float = -1.0,
              seq: int = 0) -> None:
        job.queue.put_nowait(JobEvent(job.job_id, kind, message, progress, self._clock.time(), seq))

    def _emit_lines(self, job: _Job, lines: list[tuple[int, str]]) -> None:
        for seq, line in lines:
            self._emit(job, UpdateKind.LOG, line, seq=seq)
            if (value := parse_progress(line)) is not None:
                self._emit(job, UpdateKind.PROGRESS, progress=value, seq=seq)

    async def _watch(self, client: Any, job: _Job) -> None:
        from ray.job_submission import JobStatus

        cursor = _LogCursor(job.skip_lines)
        running = False
        while True:
            outage = _Outage(self._clock, self._unreachable_after_s)
            # A failing poll is retried with a growing pause (from twice the poll interval up to MAX_POLL_S)
            # until the cluster has been unreachable for unreachable_after_s on the runner's clock: the bound
            # is that time, not a count, because it is how long a renter's job may go unsupervised. A stop
            # request wakes the pause early.
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(ComputeError), stop=outage,
                wait=wait_exponential_jitter(multiplier=2 * self._poll_s, max=MAX_POLL_S, jitter=self._poll_s),
                sleep=functools.partial(self._sleep, job), before_sleep=functools.partial(_log_poll_failure, job),
                reraise=True)
            try:
                async for attempt in retrying:
                    with attempt:
                        polled = await self._poll(client, job)
            except ComputeError as exc:
                await self._finish(job, UpdateKind.FAILED,
                                   f"lost contact with the Ray cluster for {outage.elapsed_s:.0f} s: {exc}",
                                   provider_fault=True)
                return
            if polled is None:
                await self._finish(job, UpdateKind.FAILED,
                                   "the Ray cluster no longer knows this job (was it restarted?)", provider_fault=True)
                return
            info, logs = polled
            status = info.status
            terminal = status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
            ran = status == JobStatus.RUNNING or (terminal and info.driver_exit_code is not None)
            if ran and not running:
                running = True
                self._emit(job, UpdateKind.RUNNING)
            self._emit_lines(job, cursor.feed(logs, final=terminal))
            if terminal:
                kind, reason, exit_code = self._outcome(job, info, status)
                # A failure that is not the entrypoint's own exit is Ray's or the provider's (the job agent, the
                # supervisor, the provider's runtime environment): the provider's fault, not the renter's.
                await self._finish(job, kind, reason, exit_code,
                                   provider_fault=kind is UpdateKind.FAILED and exit_code is None)
                return
            interval = max(self._poll_s, min(MAX_POLL_S, len(logs) / LOG_POLL_CHARS_PER_S))
            # Wake up in time for the deadline rather than a poll later.
            interval = min(interval, max(0.05, job.deadline_unix - self._clock.time()))
            await self._sleep(job, interval)

    async def _poll(self, client: Any, job: _Job) -> tuple[Any, str] | None:
        """Stop the job if due, then read its status and logs; None when Ray no longer has the job.

        Raises:
            ComputeError: the cluster is unreachable or refused a request.
        """
        await self._stop_if_due(job)
        # Status first, logs second: a terminal status means the log read after it is complete.
        info = await self._job_info(client, job)
        if info is None:
            return None
        logs = await self._call("read the job's logs", client.get_job_logs, job.submission_id)
        return info, logs or ""

    async def _stop_if_due(self, job: _Job) -> None:
        if not job.stop_reason and self._clock.time() >= job.deadline_unix:
            job.stop_reason = RENTAL_ENDED
            log.info("renter job reached the end of its rental", job_id=job.job_id)
        if job.stop_reason and not job.stop_sent:
            await self._stop_on_ray(job.submission_id)
            job.stop_sent = True

    def _outcome(self, job: _Job, info: Any, status: Any) -> tuple[UpdateKind, str, int | None]:
        """The terminal kind, reason and entrypoint exit code (None unless the entrypoint failed)."""
        from ray.job_submission import JobStatus

        if status == JobStatus.SUCCEEDED:
            return UpdateKind.SUCCEEDED, "", None
        if status == JobStatus.STOPPED:
            return UpdateKind.STOPPED, job.stop_reason or "stopped on the Ray cluster, outside BlendrChain", None
        code = info.driver_exit_code
        if code is not None and str(info.error_type or "") == "JOB_ENTRYPOINT_COMMAND_ERROR":
            return UpdateKind.FAILED, f"entrypoint exited with code {code}", int(code)
        # Ray appends the last log lines to its message; they were streamed already.
        message = str(info.message or "").split(", last available logs")[0].strip()
        return UpdateKind.FAILED, (message.splitlines()[0] if message else "the job failed")[:1000], None

    async def _finish(self, job: _Job, kind: UpdateKind, reason: str, exit_code: int | None = None, *,
                      provider_fault: bool = False) -> None:
        # Clean up before announcing the end: whoever sees the terminal event can rely on it.
        await self._run(self._remove_workdir, job)
        await self._forget(job)
        event = JobEvent(job.job_id, kind, reason, ts=self._clock.time(), exit_code=exit_code,
                         provider_fault=provider_fault)
        job.terminal = event
        job.queue.put_nowait(event)
        job.finished.set()
        log.info("renter job ended", job_id=job.job_id, outcome=kind.value, reason=reason)

    async def _forget(self, job: _Job) -> None:
        """Leave nothing of the ended job on the provider: its environment hold, Ray's record of it, its driver log
        and unpacked working directory in the Ray session, and its package in GCS (best effort, never raises)."""
        self._release_env(job)
        await self._forget_on_ray(job.submission_id)
        self._sweep_session(job.submission_id)

    def _release_env(self, job: _Job) -> None:
        if job.env is not None:
            self._envs.release(job.env)
            job.env = None

    def _sweep_session(self, submission_id: str) -> None:
        """Remove the job's driver log from the Ray session, and its record on Ray, now and again a few seconds later
        (Ray's job supervisor may still write the driver log's last lines, and its last status, which stores the
        record again, after the job's terminal status); on close, the last sweep runs at once. The driver log only
        where the session is known (a local head), the record on any cluster."""

        async def sweep() -> None:
            try:
                for delay in SESSION_SWEEP_DELAYS_S:
                    await asyncio.sleep(delay)
                    await self._run(self._remove_session_files, submission_id)
                    if delay:
                        await self._forget_on_ray(submission_id)
            except asyncio.CancelledError:
                self._remove_session_files(submission_id)
                await self._forget_on_ray(submission_id)

        task = asyncio.create_task(sweep(), name=f"sweep-{submission_id}")
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    def _remove_session_files(self, submission_id: str) -> None:
        """Delete the job's driver log from the local Ray session, if known."""
        if self._session_dir is None:
            return
        with contextlib.suppress(OSError):
            (self._session_dir / "logs" / f"job-driver-{submission_id}.log").unlink(missing_ok=True)

    def _base_env(self, env: JobEnv | None, job_id: str) -> dict[str, str]:
        """The variables every job sees: PATH with its environment's ``bin`` (then the base one's) first, and
        ``BLENDR_JOB_ID`` (the king's job id). See :mod:`provider.envs` for what the environment holds."""
        bins = [str(self._envs.base_bin)]
        out: dict[str, str] = {}
        if env is not None and env.bin_dir != self._envs.base_bin:
            bins.insert(0, str(env.bin_dir))
            out["VIRTUAL_ENV"] = str(env.bin_dir.parent)
        out["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
        out["BLENDR_JOB_ID"] = job_id.rsplit(".", 1)[0] if re.fullmatch(r".+\.\d+", job_id) else job_id
        return out

    async def _sleep(self, job: _Job, seconds: float) -> None:
        await wait_event(job.wake, seconds)
        job.wake.clear()

    # --- the Ray job API ----------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def _get_client(self) -> Any:
        async with self._client_lock:
            if self._client is None:
                # Import Ray off the event loop (it takes a second) before anything below needs it.
                await self._run(importlib.import_module, "ray.job_submission")
                from ray.job_submission import JobSubmissionClient

                token = await self._run(resolve_auth_token, self._auth_token)
                headers = {"Authorization": f"Bearer {token}"} if token else None
                self._client = await self._call("answer", JobSubmissionClient, self.address, headers=headers)
            return self._client

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One blocking SDK call in our threads, with a deadline; every failure becomes a ComputeError."""
        from ray.exceptions import AuthenticationError

        try:
            return await within(self._run(fn, *args, **kwargs), self._timeout_s)
        except TimeoutError:
            raise ComputeError(f"the Ray dashboard at {self.address} did not {what} within "
                               f"{self._timeout_s:g} s") from None
        except AuthenticationError:
            raise ComputeError(f"the Ray dashboard at {self.address} refused our credentials: give the "
                               f"cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)"
                               ) from None
        except OSError as exc:  # requests' ConnectionError and the SDK's own
            raise ComputeError(f"cannot reach the Ray dashboard at {self.address}: {exc}") from None
        except RuntimeError as exc:  # the SDK's HTTP errors
            raise _RayRequestError(what, str(exc)) from None

    async def _job_info(self, client: Any, job: _Job) -> Any:
        """Ray's record of the job, or None if Ray has no such job."""
        return await self._job_info_by_id(client, job.submission_id)

    async def _job_info_by_id(self, client: Any, submission_id: str) -> Any:
        try:
            return await self._call("read the job's status", client.get_job_info, submission_id)
        except _RayRequestError as exc:
            if exc.status == 404:
                return None
            raise

    async def _stop_on_ray(self, submission_id: str) -> None:
        client = await self._get_client()
        try:
            await self._call("stop the job", client.stop_job, submission_id)
        except _RayRequestError as exc:
            if exc.status != 404:  # a job Ray does not have is as stopped as it gets
                raise


__all__ = [
    "MAX_LINE_CHARS",
    "RENTAL_ENDED",
    "RESERVED_ENV",
    "JobEvent",
    "JobRunner",
    "dashboard_address_from_context",
    "parse_progress",
    "resolve_auth_token",
    "submission_id_for",
]
