"""The provider's job records: what the queen assigns, what the agent reports, what a job runner emits.

Plain dataclasses, no protobuf: :mod:`provider.convert` turns them into wire messages and back at the
edge (the queen's stream), so the job core (:mod:`provider.jobhost`) and the job runner
(:mod:`provider.jobs`) never see a protobuf message.

A job attempt's reported state moves along :data:`TRANSITIONS` only (``log`` and ``progress`` lines are
not states: they may come while a job is ``accepted`` or ``running``)::

    (new) ──> accepted ──> running ──> succeeded | failed | stopped
      │          └──────────────────> succeeded | failed | stopped
      └──> failed          (payload that does not open, devices not free, no runner)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

JobId = NewType("JobId", str)
"""A renter job's id, as the King names it."""

RunId = NewType("RunId", str)
"""A job runner's id for one attempt of a job (``<job_id>.<attempt>``): attempts never share a Ray job."""

UnixSeconds = NewType("UnixSeconds", float)
"""Wall-clock seconds since the epoch."""


class UpdateKind(StrEnum):
    """What one update of a job attempt says (the wire's ``JobUpdate.kind`` text)."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    LOG = "log"
    PROGRESS = "progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


class JobState(StrEnum):
    """Where a job attempt stands, as its updates report it (``NEW`` before the first)."""

    NEW = "new"
    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


TERMINAL_KINDS = frozenset({UpdateKind.SUCCEEDED, UpdateKind.FAILED, UpdateKind.STOPPED})
TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED})
LINE_KINDS = frozenset({UpdateKind.LOG, UpdateKind.PROGRESS})
RUNNER_KINDS = frozenset({UpdateKind.RUNNING, *LINE_KINDS, *TERMINAL_KINDS})
"""The kinds a job runner emits (``accepted`` is the job core's own)."""

TRANSITIONS: dict[JobState, frozenset[UpdateKind]] = {
    JobState.NEW: frozenset({UpdateKind.ACCEPTED, UpdateKind.FAILED}),
    JobState.ACCEPTED: frozenset({UpdateKind.RUNNING, *LINE_KINDS, *TERMINAL_KINDS}),
    JobState.RUNNING: frozenset({*LINE_KINDS, *TERMINAL_KINDS}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.STOPPED: frozenset(),
}
"""Every update allowed in each state; anything else is refused (never a silent overwrite)."""


def next_state(state: JobState, kind: UpdateKind) -> JobState | None:
    """The state after an update of ``kind`` in ``state`` (the same for a line), or None if not allowed."""
    if kind not in TRANSITIONS[state]:
        return None
    return state if kind in LINE_KINDS else JobState(kind.value)


def run_id_of(job_id: str, attempt: int) -> RunId:
    """The job runner's id for one attempt of a job."""
    return RunId(f"{job_id}.{attempt}")


@dataclass(frozen=True)
class Assignment:
    """The queen's order to run one attempt of a job (``JobStart``); the payload is still sealed.

    ``deadline_unix`` is the rental's end (wall clock): the runner stops the job then.
    """

    job_id: JobId
    attempt: int
    gpus: int
    deadline_unix: UnixSeconds
    ciphertext: bytes = field(repr=False)
    sealed_key: bytes = field(repr=False)
    aad: str
    # The most sealed output bytes the king takes for this job (0: the provider's own limit).
    max_output_bytes: int = 0

    @property
    def run_id(self) -> RunId:
        return run_id_of(self.job_id, self.attempt)


@dataclass(frozen=True)
class StopRequest:
    """The queen's order to stop one attempt of a job (``JobStopRequest``); ``reason`` may be empty."""

    job_id: JobId
    attempt: int
    reason: str = ""


@dataclass(frozen=True)
class JobUpdate:
    """One numbered update of a job attempt, as the agent reports it to its queen (``JobUpdate``).

    ``seq`` counts from 1 per attempt; ``progress`` is in 0..1 for ``progress`` updates and 0 otherwise;
    ``exit_code`` is the entrypoint's code for ``failed`` (-1 when unknown), 0 otherwise.
    ``provider_fault`` (only on ``failed``): the provider could not run the job (its Ray refused or lost it,
    its runtime or devices were not ready), as opposed to the job's own failure.
    """

    job_id: JobId
    attempt: int
    seq: int
    kind: UpdateKind
    message: str = ""
    progress: float = 0.0
    ts_unix: UnixSeconds = UnixSeconds(0.0)
    exit_code: int = 0
    provider_fault: bool = False

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS


@dataclass(frozen=True)
class JobEvent:
    """Something that happened to a job on its runner.

    ``kind`` is one of :data:`RUNNER_KINDS`: ``running``, ``log`` (``message`` is one line, without its
    newline), ``progress`` (``progress`` in 0..1, parsed from a ``BLENDR_PROGRESS <x>`` line, which also
    comes as a ``log`` event just before), or a terminal kind (``message`` is the reason). ``seq`` numbers
    log lines from 1 (``log`` and ``progress`` events), so a consumer can drop lines it already forwarded
    before a restart. ``ts`` is the runner's clock (wall seconds). ``exit_code`` is the entrypoint's exit
    code on a ``failed`` event when the entrypoint itself failed, None otherwise. ``provider_fault`` on a
    ``failed`` event: the runner, not the job, failed (Ray lost or refused the job, its runtime was broken).
    """

    job_id: str
    kind: UpdateKind
    message: str = ""
    progress: float = -1.0
    ts: float = 0.0
    seq: int = 0
    exit_code: int | None = None
    provider_fault: bool = False

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS


__all__ = [
    "LINE_KINDS",
    "RUNNER_KINDS",
    "TERMINAL_KINDS",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Assignment",
    "JobEvent",
    "JobId",
    "JobState",
    "JobUpdate",
    "RunId",
    "StopRequest",
    "UnixSeconds",
    "UpdateKind",
    "next_state",
    "run_id_of",
]
