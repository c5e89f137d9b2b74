"""Renter jobs as Ray jobs on a real local Ray with its dashboard and token authentication.

The session-wide ``ray_cluster`` fixture runs Ray inside the test process without a dashboard, and a
process can hold only one ``ray.init``. So this module starts its own head with the ``ray`` CLI
(``ray start --head --block``) in a new session, with every port chosen free (the dashboard agent's
default port 52365 would collide with any other Ray on the machine), token authentication on and a
random token passed by environment, so neither ~/.ray/auth_token nor other Rays are touched. The
JobRunner talks to it over HTTP only, as a provider talks to its cluster.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from blendr.clock import ManualClock
from blendr.errors import ComputeError, FailedPreconditionError, InvalidArgumentError, NotFoundError
from blendr.payload import JobPayload, PayloadTooLargeError, pack_workdir
from blendr.ports import free_ports
from provider.jobs import (
    MAX_LINE_CHARS,
    JobEvent,
    JobRunner,
    _LogCursor,
    dashboard_address_from_context,
    parse_progress,
    resolve_auth_token,
    submission_id_for,
)
from tests.rayhead import PIN, RayHead
from tests.rayhead import ray_head as start_ray_head

FAR = 4_000_000_000.0  # a deadline that never comes


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    with start_ray_head() as head:
        yield head


@pytest.fixture
async def runner(ray_head: RayHead, tmp_path: Path) -> AsyncIterator[JobRunner]:
    r = JobRunner(dashboard_address=ray_head.address, home=tmp_path, pin_resource=PIN, poll_s=0.2,
                  auth_token=ray_head.token)
    yield r
    await r.close()


class Collector:
    """Consumes a job's events in the background."""

    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self.events: list[JobEvent] = []
        self._task = asyncio.create_task(self._run(runner.events(job_id)))

    async def _run(self, it: AsyncIterator[JobEvent]) -> None:
        async for ev in it:
            self.events.append(ev)

    def logs(self) -> list[str]:
        return [e.message for e in self.events if e.kind == "log"]

    async def wait_for(self, pred: Callable[[list[JobEvent]], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self.events):
            if self._task.done() or time.monotonic() > deadline:
                pytest.fail(f"condition not met; events: {self.events}")
            await asyncio.sleep(0.05)

    async def done(self, timeout: float = 60.0) -> list[JobEvent]:
        await asyncio.wait_for(self._task, timeout)
        return self.events


def _ray_jobs(head: RayHead, job_id: str) -> list[Any]:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(head.address, headers={"Authorization": f"Bearer {head.token}"})
    return [j for j in client.list_jobs() if j.submission_id == submission_id_for(job_id)]


def _job_id() -> str:
    return f"t{secrets.token_hex(6)}"


# --- against the real Ray -----------------------------------------------------------------------------


async def test_logs_progress_and_success(runner: JobRunner, ray_head: RayHead, tmp_path: Path) -> None:
    job_id = _job_id()
    script = ("echo one; echo two; echo BLENDR_PROGRESS 0.5; printf 'three\\r\\n'; "
              "echo \"GPUS=$CUDA_VISIBLE_DEVICES\"; printf 'no newline'")
    await runner.start(job_id, JobPayload(entrypoint=script), gpus=1, deadline_unix=FAR)
    events = await Collector(runner, job_id).done()

    kinds = [e.kind for e in events]
    assert kinds[-1] == "succeeded" and kinds.count("succeeded") == 1
    assert "running" in kinds and kinds.index("running") < kinds.index("succeeded")
    logs = [e for e in events if e.kind == "log"]
    assert [e.seq for e in logs] == list(range(1, len(logs) + 1))  # every line once, in order
    mine = [e.message for e in logs if e.message in {"one", "two", "BLENDR_PROGRESS 0.5", "three"}]
    assert mine == ["one", "two", "BLENDR_PROGRESS 0.5", "three"], [e.message for e in logs]
    # The unterminated last line is delivered too (Ray may append its own "Running entrypoint" line to it).
    assert any(e.message.startswith("no newline") for e in logs)
    assert any(e.message in ("GPUS=0", "GPUS=1") for e in logs)  # Ray gave the entrypoint one of the two GPUs
    progress = [e for e in events if e.kind == "progress"]
    assert [p.progress for p in progress] == [0.5]
    line = next(e for e in logs if e.message == "BLENDR_PROGRESS 0.5")
    assert progress[0].seq == line.seq and events.index(progress[0]) == events.index(line) + 1
    assert not (tmp_path / "jobs" / job_id).exists()
    assert _ray_jobs(ray_head, job_id) == []  # nothing of an ended job stays, Ray's record included


async def test_job_reads_its_workdir_and_env(runner: JobRunner, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "data.txt").write_text("hello from the renter\n")
    # Ray would honour a .gitignore in a working directory it packs itself; ours ships it byte for byte.
    (proj / ".gitignore").write_text("data.txt\n")
    (proj / "sub" / "run.sh").write_text("#!/bin/sh\necho \"script sees $FOO\"\n")
    (proj / "sub" / "run.sh").chmod(0o755)
    job_id = _job_id()
    payload = JobPayload(entrypoint="cat data.txt && ./sub/run.sh && echo \"GPUS=${CUDA_VISIBLE_DEVICES-unset}\"",
                         env={"FOO": "bar baz"}, workdir_tar=pack_workdir(proj))
    await runner.start(job_id, payload, gpus=0, deadline_unix=FAR)
    # The job runs on a copy Ray extracted; our unpacked copy stays until the end.
    assert (tmp_path / "jobs" / job_id / "work" / "data.txt").is_file()
    collector = Collector(runner, job_id)
    events = await collector.done()
    assert events[-1].kind == "succeeded", events
    assert "hello from the renter" in collector.logs()
    assert "script sees bar baz" in collector.logs()
    assert "GPUS=" in collector.logs()  # granted no GPU: none visible (Ray 2.60 would leave them all)
    assert not (tmp_path / "jobs" / job_id).exists()


async def test_failing_job_reports_its_exit_code(runner: JobRunner, tmp_path: Path) -> None:
    job_id = _job_id()
    await runner.start(job_id, JobPayload(entrypoint="echo before; exit 3"), gpus=0, deadline_unix=FAR)
    collector = Collector(runner, job_id)
    events = await collector.done()
    assert events[-1].kind == "failed"
    assert events[-1].message == "entrypoint exited with code 3"
    assert "before" in collector.logs()
    assert not (tmp_path / "jobs" / job_id).exists()


async def test_stop_ends_a_running_job(runner: JobRunner, ray_head: RayHead) -> None:
    job_id = _job_id()
    await runner.start(job_id, JobPayload(entrypoint="echo started; sleep 60"), gpus=1, deadline_unix=FAR)
    collector = Collector(runner, job_id)
    await collector.wait_for(lambda evs: any(e.message == "started" for e in evs))
    t0 = time.monotonic()
    await runner.stop(job_id, "renter cancelled")
    assert time.monotonic() - t0 < 30
    events = await collector.done(timeout=5)
    assert (events[-1].kind, events[-1].message) == ("stopped", "renter cancelled")
    await runner.stop(job_id, "again")  # idempotent: nothing changes
    assert _ray_jobs(ray_head, job_id) == []


async def test_job_is_stopped_when_the_rental_ends(ray_head: RayHead, tmp_path: Path) -> None:
    clock = ManualClock()
    runner = JobRunner(dashboard_address=ray_head.address, home=tmp_path, pin_resource=PIN, poll_s=0.2,
                       auth_token=ray_head.token, clock=clock)
    try:
        job_id = _job_id()
        await runner.start(job_id, JobPayload(entrypoint="echo started; sleep 60"), gpus=1,
                           deadline_unix=clock.time() + 3600)
        collector = Collector(runner, job_id)
        await collector.wait_for(lambda evs: any(e.message == "started" for e in evs))
        clock.advance(3600)
        events = await collector.done(timeout=30)
        assert (events[-1].kind, events[-1].message) == ("stopped", "rental ended")
        assert not (tmp_path / "jobs" / job_id).exists()
    finally:
        await runner.close()


async def test_start_is_idempotent_and_a_restart_reattaches(ray_head: RayHead, runner: JobRunner,
                                                            tmp_path: Path) -> None:
    job_id = _job_id()
    payload = JobPayload(entrypoint="echo a; echo b; sleep 2; echo c")
    await asyncio.gather(*(runner.start(job_id, payload, gpus=0, deadline_unix=FAR) for _ in range(3)))
    await runner.start(job_id, payload, gpus=0, deadline_unix=FAR)
    first = Collector(runner, job_id)
    await first.wait_for(lambda evs: "b" in [e.message for e in evs])
    with pytest.raises(FailedPreconditionError):
        runner.events(job_id)
    delivered = max(e.seq for e in first.events if e.kind == "log")
    (info,) = _ray_jobs(ray_head, job_id)  # one submission for four starts
    assert info.metadata["blendr_job_id"] == job_id
    await runner.close()  # the provider goes away; the Ray job keeps running

    again = JobRunner(dashboard_address=ray_head.address, home=tmp_path, poll_s=0.2, auth_token=ray_head.token)
    try:
        await again.start(job_id, payload, gpus=0, deadline_unix=FAR, resume_after_line=delivered)
        events = await Collector(again, job_id).done()
    finally:
        await again.close()
    assert events[-1].kind == "succeeded"
    replayed = [e for e in events if e.kind == "log"]
    assert replayed and replayed[0].seq == delivered + 1  # nothing delivered twice
    assert "c" in [e.message for e in replayed] and "a" not in [e.message for e in replayed]
    assert _ray_jobs(ray_head, job_id) == []  # deleted once it ended


async def test_too_large_workdir_is_refused_before_ray(ray_head: RayHead, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "blob").write_bytes(bytes(200_000))
    runner = JobRunner(dashboard_address=ray_head.address, home=tmp_path, auth_token=ray_head.token,
                       max_workdir_bytes=100_000)
    job_id = _job_id()
    try:
        with pytest.raises(PayloadTooLargeError):
            await runner.start(job_id, JobPayload(entrypoint="true", workdir_tar=pack_workdir(proj)), gpus=0,
                               deadline_unix=FAR)
        assert not (tmp_path / "jobs" / job_id).exists()
        with pytest.raises(NotFoundError):
            runner.events(job_id)
    finally:
        await runner.close()
    assert _ray_jobs(ray_head, job_id) == []


async def test_wrong_token_is_a_clear_compute_error(ray_head: RayHead, tmp_path: Path) -> None:
    runner = JobRunner(dashboard_address=ray_head.address, home=tmp_path, auth_token="not-the-token")
    try:
        with pytest.raises(ComputeError, match="refused our credentials"):
            await runner.start(_job_id(), JobPayload(entrypoint="true"), gpus=0, deadline_unix=FAR)
    finally:
        await runner.close()


async def test_rental_that_already_ended_is_not_submitted(runner: JobRunner, ray_head: RayHead) -> None:
    job_id = _job_id()
    with pytest.raises(FailedPreconditionError, match="rental already ended"):
        await runner.start(job_id, JobPayload(entrypoint="true"), gpus=0, deadline_unix=time.time() - 1)
    assert _ray_jobs(ray_head, job_id) == []


# --- against a scripted cluster (failures a real local Ray will not produce on demand) ------------------


class ScriptedRay:
    """Stands in for ``JobSubmissionClient``: the same calls, the same errors, jobs moved by the test."""

    def __init__(self) -> None:
        from ray.job_submission import JobStatus

        self.status = JobStatus
        self.jobs: dict[str, SimpleNamespace] = {}
        self.no_agent_for = 0  # answer the next N submissions like a Ray whose job agent is not up yet
        self.down = False
        self.submits = 0
        self.failed_calls = 0
        self.deleted: list[str] = []

    def _check(self) -> None:
        if self.down:
            self.failed_calls += 1
            raise ConnectionError("Failed to connect to Ray at address: http://127.0.0.1:1.")

    def submit_job(self, *, submission_id: str, **_: Any) -> str:
        self._check()
        self.submits += 1
        if self.no_agent_for:
            self.no_agent_for -= 1
            raise RuntimeError("Request failed with status code 500: No available agent to submit job, "
                               "please try again later..")
        self.jobs[submission_id] = SimpleNamespace(status=self.status.RUNNING, driver_exit_code=None,
                                                   error_type=None, message="", logs="")
        return submission_id

    def get_job_info(self, sid: str) -> SimpleNamespace:
        self._check()
        if sid not in self.jobs:
            raise RuntimeError(f"Request failed with status code 404: Job {sid} does not exist.")
        return self.jobs[sid]

    def get_job_logs(self, sid: str) -> str:
        return str(self.get_job_info(sid).logs)

    def stop_job(self, sid: str) -> bool:
        job = self.get_job_info(sid)
        job.status = self.status.STOPPED
        return True

    def delete_job(self, sid: str) -> bool:
        job = self.get_job_info(sid)
        if job.status not in (self.status.SUCCEEDED, self.status.FAILED, self.status.STOPPED):
            raise RuntimeError(f"Request failed with status code 400: Job {sid} is not in a terminal state.")
        self.deleted.append(sid)
        del self.jobs[sid]
        return True


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[tuple[JobRunner, ScriptedRay, ManualClock]]:
    clock = ManualClock()
    runner = JobRunner(dashboard_address="127.0.0.1:1", home=tmp_path, poll_s=0.01, clock=clock,
                       unreachable_after_s=60)
    fake = ScriptedRay()
    runner._client = fake
    yield runner, fake, clock
    await runner.close()


async def test_submission_waits_for_a_new_clusters_job_agent(
        scripted: tuple[JobRunner, ScriptedRay, ManualClock]) -> None:
    runner, fake, _ = scripted
    fake.no_agent_for = 2
    await runner.start("j1", JobPayload(entrypoint="true"), gpus=1, deadline_unix=FAR)
    assert fake.submits == 3 and list(fake.jobs) == ["blendr-j1"]
    collector = Collector(runner, "j1")
    job = fake.jobs["blendr-j1"]
    job.logs, job.driver_exit_code, job.status = "done\n", 0, fake.status.SUCCEEDED
    assert [(e.kind, e.message) for e in await collector.done()] == [("running", ""), ("log", "done"),
                                                                     ("succeeded", "")]


async def test_a_cluster_unreachable_for_too_long_fails_the_job(
        scripted: tuple[JobRunner, ScriptedRay, ManualClock]) -> None:
    runner, fake, clock = scripted
    await runner.start("j1", JobPayload(entrypoint="true"), gpus=1, deadline_unix=FAR)
    collector = Collector(runner, "j1")
    await collector.wait_for(lambda evs: bool(evs))
    fake.down = True
    while fake.failed_calls == 0:
        await asyncio.sleep(0.01)
    clock.advance(61)
    events = await collector.done(timeout=10)
    assert events[-1].kind == "failed" and events[-1].message.startswith("lost contact with the Ray cluster for 61 s")


async def test_a_job_the_cluster_forgot_fails(scripted: tuple[JobRunner, ScriptedRay, ManualClock]) -> None:
    runner, fake, _ = scripted
    await runner.start("j1", JobPayload(entrypoint="true"), gpus=0, deadline_unix=FAR)
    collector = Collector(runner, "j1")
    await collector.wait_for(lambda evs: bool(evs))
    fake.jobs.clear()  # e.g. the head restarted
    events = await collector.done(timeout=10)
    assert (events[-1].kind, events[-1].message) == ("failed", "the Ray cluster no longer knows this job "
                                                               "(was it restarted?)")


async def test_the_rental_end_is_enforced_once_the_cluster_is_back(
        scripted: tuple[JobRunner, ScriptedRay, ManualClock]) -> None:
    runner, fake, clock = scripted
    await runner.start("j1", JobPayload(entrypoint="true"), gpus=1, deadline_unix=clock.time() + 100)
    collector = Collector(runner, "j1")
    await collector.wait_for(lambda evs: bool(evs))
    fake.down = True
    clock.advance(100)
    while fake.failed_calls < 2:
        await asyncio.sleep(0.01)
    assert fake.jobs["blendr-j1"].status == fake.status.RUNNING
    fake.down = False
    events = await collector.done(timeout=15)
    assert (events[-1].kind, events[-1].message) == ("stopped", "rental ended")


# --- without a cluster --------------------------------------------------------------------------------


async def test_unreachable_cluster_is_a_clear_compute_error(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    runner = JobRunner(dashboard_address=f"127.0.0.1:{port}", home=tmp_path, auth_token="x")
    try:
        with pytest.raises(ComputeError, match=f"cannot reach the Ray dashboard at http://127.0.0.1:{port}"):
            await runner.start(_job_id(), JobPayload(entrypoint="true"), gpus=0, deadline_unix=FAR)
        # The failed attempt is forgotten: it can be retried, and stopping it is a no-op error, not a hang.
        with pytest.raises(NotFoundError):
            runner.events("nope")
    finally:
        await runner.close()


async def test_device_visibility_is_not_the_renters_to_set(tmp_path: Path) -> None:
    runner = JobRunner(dashboard_address="127.0.0.1:1", home=tmp_path)
    with pytest.raises(InvalidArgumentError, match="CUDA_VISIBLE_DEVICES is set by the provider"):
        await runner.start("j1", JobPayload(entrypoint="true", env={"CUDA_VISIBLE_DEVICES": "0,1,2,3"}), gpus=1,
                           deadline_unix=FAR)
    await runner.close()


@pytest.mark.parametrize("job_id", ["", "../x", "a/b", "x" * 200, "-lead"])
async def test_job_ids_are_validated(tmp_path: Path, job_id: str) -> None:
    runner = JobRunner(dashboard_address="127.0.0.1:1", home=tmp_path)
    with pytest.raises(InvalidArgumentError):
        await runner.start(job_id, JobPayload(entrypoint="true"), gpus=0, deadline_unix=FAR)
    with pytest.raises(InvalidArgumentError):
        await runner.start("ok", JobPayload(entrypoint="true"), gpus=-1, deadline_unix=FAR)
    await runner.close()


def test_dashboard_address_from_context() -> None:
    assert dashboard_address_from_context(SimpleNamespace(dashboard_url="127.0.0.1:8265")) == \
        "http://127.0.0.1:8265"
    assert dashboard_address_from_context({"webui_url": "https://ray.example:443/"}) == "https://ray.example:443"
    with pytest.raises(ComputeError, match="include_dashboard=True"):
        dashboard_address_from_context(SimpleNamespace(dashboard_url=""))


def test_resolve_auth_token(tmp_path: Path) -> None:
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    (tmp_path / "tok").write_text(" from-path \n")
    assert resolve_auth_token("explicit", environ={"RAY_AUTH_TOKEN": "env"}, home=tmp_path) == "explicit"
    assert resolve_auth_token(environ={"RAY_AUTH_TOKEN": "env"}, home=tmp_path) == "env"
    assert resolve_auth_token(environ={"RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok")}, home=tmp_path) == "from-path"
    assert resolve_auth_token(environ={}, home=tmp_path) == "from-home"
    assert resolve_auth_token(environ={"RAY_AUTH_MODE": "disabled"}, home=tmp_path) == ""
    assert resolve_auth_token(environ={}, home=tmp_path / "nobody") == ""
    with pytest.raises(ComputeError, match="does not exist"):
        resolve_auth_token(environ={"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, home=tmp_path)


def test_parse_progress() -> None:
    assert parse_progress("BLENDR_PROGRESS 0.42") == 0.42
    assert parse_progress("  BLENDR_PROGRESS   1 ") == 1.0
    assert parse_progress("BLENDR_PROGRESS .5") == 0.5
    for line in ("BLENDR_PROGRESS 1.5", "BLENDR_PROGRESS -0.1", "BLENDR_PROGRESS", "progress 0.5",
                 "x BLENDR_PROGRESS 0.5", "BLENDR_PROGRESS 0.5 extra"):
        assert parse_progress(line) is None, line


def test_log_cursor_delivers_each_line_once_whatever_the_read_boundaries() -> None:
    long = "y" * (2 * MAX_LINE_CHARS + 5)
    log = f"a\n\nb\r\n{long}\nexact{'z' * (MAX_LINE_CHARS - 5)}\ntail"
    expected = ["a", "", "b", long[:MAX_LINE_CHARS], long[MAX_LINE_CHARS:2 * MAX_LINE_CHARS],
                long[2 * MAX_LINE_CHARS:], "exact" + "z" * (MAX_LINE_CHARS - 5), "tail"]
    for step in (1, 7, MAX_LINE_CHARS - 1, MAX_LINE_CHARS, len(log)):
        cursor = _LogCursor(skip_lines=0)
        got: list[tuple[int, str]] = []
        for end in range(step, len(log) + step, step):
            got += cursor.feed(log[:end], final=False)
        got += cursor.feed(log, final=True)
        assert [text for _, text in got] == expected, step
        assert [n for n, _ in got] == list(range(1, len(expected) + 1))
    resumed = _LogCursor(skip_lines=3).feed(log, final=True)
    assert [n for n, _ in resumed] == list(range(4, len(expected) + 1))
