"""The provider's job core (JobHost) without a queen or Ray: the fake job runner and a fake update sink."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blendr.clock import ManualClock
from blendr.config import Config
from blendr.errors import ComputeError, ConfigError, FailedPreconditionError, UnavailableError
from blendr.identity import NodeIdentity
from blendr.payload import JobPayload, PayloadError, public_key_of, seal
from blendr.types import DeviceInfo, DeviceKind
from protos.blendr.v1 import queen_pb2 as pb
from provider import convert
from provider.agent import ProviderAgent, ask_in_wei, update_sink
from provider.compute import ThreadRuntime
from provider.jobhost import NO_EXECUTOR, UNDECRYPTABLE, JobHost, open_payload
from provider.jobs import RENTAL_ENDED
from provider.jobtypes import (
    Assignment,
    JobEvent,
    JobId,
    JobState,
    JobUpdate,
    StopRequest,
    UnixSeconds,
    UpdateKind,
)
from tests.fakes.jobhost import FakeCluster, FakeExecutor

NODE = NodeIdentity.generate()
KEY = bytes(NODE.account().key)
AAD = "req-0123456789abcdef"
PAYLOAD = JobPayload(entrypoint="python train.py", env={"EPOCHS": "3"}, workdir_tar=b"")
GPUS = [DeviceInfo(index=i, kind=DeviceKind.GPU, name="NVIDIA T4", model="t4", memory_bytes=16 * 2**30)
        for i in range(2)]
T0 = 1_700_000_000.0  # ManualClock's start
FAR = 2e9


def encrypt(payload: JobPayload, public_key: bytes, aad: str = AAD) -> tuple[bytes, bytes]:
    """What a renter's SDK sends: nonce || AES-GCM(payload), and the AES key sealed to the provider."""
    key, nonce = os.urandom(32), os.urandom(12)
    ciphertext = nonce + AESGCM(key).encrypt(nonce, payload.encode(), aad.encode())
    return ciphertext, seal(key, public_key, aad=aad.encode())


def job_start(job: str = "j-1", attempt: int = 1, gpus: int = 1, *, to: bytes | None = None, aad: str = AAD,
              deadline: float = FAR) -> pb.JobStart:
    """The queen's ``JobStart`` for a job sealed to this node (or to ``to``)."""
    ciphertext, sealed = encrypt(PAYLOAD, to or public_key_of(KEY), aad)
    return pb.JobStart(job_id=job, attempt=attempt, gpus=gpus, deadline_unix=deadline, ciphertext=ciphertext,
                       sealed_key=sealed, aad=aad)


def assign(job: str = "j-1", attempt: int = 1, gpus: int = 1, **kw: Any) -> Assignment:
    return convert.assignment_from_proto(job_start(job, attempt, gpus, **kw))


def stop(job: str = "j-1", attempt: int = 1, reason: str = "") -> StopRequest:
    return StopRequest(JobId(job), attempt, reason)


class Sink:
    """A session's update sink: the updates it carried, and an optional break."""

    def __init__(self) -> None:
        self.updates: list[JobUpdate] = []
        self.broken = False

    async def __call__(self, update: JobUpdate) -> None:
        if self.broken:
            raise UnavailableError("stream broken")
        self.updates.append(update)

    def of(self, job: str = "j-1", attempt: int = 1) -> list[JobUpdate]:
        return [u for u in self.updates if (u.job_id, u.attempt) == (job, attempt)]

    def kinds(self, job: str = "j-1", attempt: int = 1) -> list[tuple[int, str]]:
        return [(u.seq, u.kind.value) for u in self.of(job, attempt)]


async def until(pred: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := pred()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
    return value


def make_host(executor: FakeExecutor | None, devices: int = 2, gpu_devices: int = 2) -> JobHost:
    clock = executor.cluster.clock if executor else ManualClock()
    return JobHost(executor, KEY, devices=devices, gpu_devices=gpu_devices, clock=clock)


async def started(ex: FakeExecutor, run_id: str = "j-1.1") -> None:
    await until(lambda: run_id in ex.started, f"the start of {run_id}")


# --- one job from assignment to end ---------------------------------------------------------------------


async def test_a_job_is_decrypted_started_and_its_events_streamed_in_order() -> None:
    ex, out = FakeExecutor(), Sink()
    cluster = ex.cluster
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign(gpus=2, deadline=1.8e9))
    await started(ex)
    payload, gpus, deadline = ex.started["j-1.1"]
    assert payload == PAYLOAD and (gpus, deadline) == (2, 1.8e9)
    assert host.busy_gpus() == 2 and host.state("j-1", 1) is JobState.ACCEPTED
    cluster.running("j-1.1")
    cluster.clock.advance(5)
    cluster.log("j-1.1", "epoch 1", "BLENDR_PROGRESS 0.5", "epoch 2")
    cluster.fail("j-1.1", "entrypoint exited with code 3", exit_code=3)
    await until(lambda: len(out.updates) == 7, "seven updates")
    assert out.kinds() == [(1, "accepted"), (2, "running"), (3, "log"), (4, "log"), (5, "progress"), (6, "log"),
                           (7, "failed")]
    first, _, line, _, progress, _, end = out.updates
    assert (line.message, line.progress, line.ts_unix) == ("epoch 1", 0.0, T0 + 5)  # the runner's time
    assert progress.progress == 0.5
    assert first.ts_unix == T0  # the host's own updates carry its clock
    assert (end.exit_code, end.message, end.attempt) == (3, "entrypoint exited with code 3", 1)
    assert host.busy_gpus() == 0 and host.state("j-1", 1) is JobState.FAILED
    assert host.updates("j-1", 1) == out.updates


async def test_a_success_and_a_failure_without_an_exit_code() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign("a"))
    host.handle_start(assign("b"))
    await started(ex, "a.1")
    await started(ex, "b.1")
    ex.cluster.running("a.1")
    ex.cluster.succeed("a.1")
    ex.cluster.fail("b.1", "the Ray cluster no longer knows this job (was it restarted?)")
    await until(lambda: len(out.of("a")) == 3 and len(out.of("b")) == 2, "both ends")
    assert [(u.kind, u.exit_code) for u in out.of("a")][-1] == (UpdateKind.SUCCEEDED, 0)
    assert [(u.kind, u.exit_code) for u in out.of("b")][-1] == (UpdateKind.FAILED, -1)


async def test_a_runners_fault_counts_only_before_the_job_ran() -> None:
    """Ray refusing a job is the provider's fault; a failure after the job ran never is (the renter's code may
    have crashed Ray's supervisor on purpose)."""
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign("a"))
    host.handle_start(assign("b"))
    await started(ex, "a.1")
    await started(ex, "b.1")
    ex.cluster.fail("a.1", "the Ray job agent refused the job", provider_fault=True)
    ex.cluster.running("b.1")
    ex.cluster.fail("b.1", "the job supervisor died", provider_fault=True)
    await until(lambda: len(out.of("a")) == 2 and len(out.of("b")) == 3, "both ends")
    assert [(u.kind, u.provider_fault) for u in out.of("a")][-1] == (UpdateKind.FAILED, True)
    assert [(u.kind, u.provider_fault) for u in out.of("b")][-1] == (UpdateKind.FAILED, False)


@pytest.mark.parametrize("how", ["another key", "another request id"])
async def test_a_payload_that_does_not_open_is_answered_failed(how: str) -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    if how == "another key":
        m = job_start(to=public_key_of(bytes(NodeIdentity.generate().account().key)))
    else:
        m = job_start()
        m.aad = "req-somebody-else-0000"
    host.handle_start(convert.assignment_from_proto(m))
    await until(lambda: out.updates, "an answer")
    [u] = out.updates
    assert (u.seq, u.kind, u.message) == (1, UpdateKind.FAILED, UNDECRYPTABLE)
    assert ex.started == {} and host.busy_gpus() == 0
    assert UNDECRYPTABLE == "payload cannot be decrypted with this provider's key"


# --- idempotency, stops -----------------------------------------------------------------------------------


async def test_a_repeated_assignment_is_not_started_again_but_reported() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    a = assign()
    host.handle_start(a)
    host.handle_start(a)  # while decrypting: already known
    await started(ex)
    ex.cluster.running("j-1.1")
    await until(lambda: len(out.updates) == 2, "two updates")
    host.handle_start(a)
    await until(lambda: len(out.updates) == 3, "the state again")
    assert out.kinds() == [(1, "accepted"), (2, "running"), (2, "running")]
    assert ex.cluster.start_calls == ["j-1.1"] and host.busy_gpus() == 1
    # Another attempt of the same job is another run.
    host.handle_start(assign(attempt=2))
    await started(ex, "j-1.2")
    assert ex.cluster.submissions == ["j-1.1", "j-1.2"]


async def test_a_stop_reaches_the_executor_even_before_the_start_finished() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign("a"))
    await started(ex, "a.1")
    host.handle_stop(stop("a", reason="renter cancelled"))
    await until(lambda: out.kinds("a")[-1:] == [(2, "stopped")], "a stopped")
    assert ex.stops == [("a.1", "renter cancelled")]
    assert out.updates[-1].message == "renter cancelled"

    ex.cluster.gate = asyncio.Event()  # the next start hangs in the executor
    host.handle_start(assign("b"))
    await until(lambda: out.kinds("b") == [(1, "accepted")], "b accepted")
    host.handle_stop(stop("b"))
    host.handle_stop(stop("b", reason="again"))  # a second stop of a stopping job changes nothing
    ex.cluster.gate.set()
    await until(lambda: out.kinds("b")[-1:] == [(2, "stopped")], "b stopped once started")
    assert ex.stops[1:] == [("b.1", "stopped by the queen")]
    assert out.updates[-1].message == "stopped by the queen"


async def test_a_stop_before_decryption_ends_the_job_without_starting_it() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign())
    host.handle_stop(stop(reason="moved"))  # the payload is still being decrypted (in a thread)
    await until(lambda: out.kinds()[-1:] == [(2, "stopped")], "stopped")
    assert out.kinds() == [(1, "accepted"), (2, "stopped")] and out.updates[-1].message == "moved"
    assert ex.started == {} and ex.stops == []


async def test_a_stop_for_an_unknown_or_stale_attempt() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    # Unknown to this agent (e.g. started before a restart): stopped on the cluster anyway, nothing reported.
    host.handle_stop(stop("old", 4, "x"))
    await until(lambda: ex.stops == [("old.4", "x")], "the stop of an unknown job")
    # A stale stop for an attempt that already ended: its final state is reported again, nothing is stopped.
    host.handle_start(assign())
    await started(ex)
    ex.cluster.succeed("j-1.1")
    await until(lambda: out.kinds()[-1:] == [(2, "succeeded")], "the end")
    host.handle_stop(stop(reason="too late"))
    await until(lambda: len(out.updates) == 3, "the end again")
    assert out.kinds() == [(1, "accepted"), (2, "succeeded"), (2, "succeeded")]
    assert ex.stops == [("old.4", "x")]
    # Another attempt of the job is not touched by a stop of the first.
    host.handle_start(assign(attempt=2))
    await started(ex, "j-1.2")
    host.handle_stop(stop(attempt=1))
    await until(lambda: len(out.updates) == 5, "attempt 1's end once more")
    assert host.state("j-1", 2) is JobState.ACCEPTED and ex.stops == [("old.4", "x")]


async def test_a_stop_the_cluster_refuses_is_logged_and_the_job_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign())
    await started(ex)
    ex.cluster.fail_stop = ComputeError("cannot reach the Ray dashboard")
    with caplog.at_level(logging.WARNING, logger="blendr.provider.jobs"):
        host.handle_stop(stop(reason="r"))
        await until(lambda: ex.stops, "the stop attempt")
        await until(lambda: "cannot stop job" in caplog.text, "the warning")
    assert host.state("j-1", 1) is JobState.ACCEPTED and host.busy_gpus() == 1


# --- failures -------------------------------------------------------------------------------------------


async def test_jobs_beyond_the_free_devices_or_without_an_executor_fail() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign("big", gpus=3))
    host.handle_start(assign("a", gpus=2))
    await started(ex, "a.1")
    host.handle_start(assign("b", gpus=1))
    host.handle_start(assign("none", gpus=0))
    await until(lambda: out.of("big") and out.of("b") and out.of("none"), "the refusals")
    assert out.of("big")[0].message == "the job asks for 3 devices; this provider has 2 free of 2"
    assert [(u.kind, u.message) for u in out.of("b")] == [
        (UpdateKind.FAILED, "the job asks for 1 devices; this provider has 0 free of 2")]
    assert out.of("none")[0].message == "the job asks for 0 devices; this provider has 0 free of 2"

    none, out2 = make_host(None), Sink()
    none.attach(out2)
    none.handle_start(assign())
    await until(lambda: out2.updates, "the refusal")
    assert [(u.kind, u.message) for u in out2.updates] == [(UpdateKind.FAILED, NO_EXECUTOR)]
    assert NO_EXECUTOR == "this provider agent runs no renter jobs"


async def test_an_executor_that_cannot_start_the_job_fails_it() -> None:
    ex, out = FakeExecutor(), Sink()
    ex.cluster.fail_start = ComputeError("the Ray cluster refused job j-1.1: no GPUs")
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign())
    await until(lambda: len(out.updates) == 2, "two updates")
    assert out.kinds() == [(1, "accepted"), (2, "failed")]
    assert out.updates[1].message == "cannot start the job: the Ray cluster refused job j-1.1: no GPUs"
    assert host.busy_gpus() == 0
    # The devices are free again: the next job starts.
    ex.cluster.fail_start = None
    host.handle_start(assign("next", gpus=2))
    await started(ex, "next.1")


async def test_an_assignment_whose_rental_already_ended_fails() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign(deadline=T0 - 1))
    await until(lambda: len(out.updates) == 2, "two updates")
    assert [(u.kind, u.message) for u in out.updates][-1] == (
        UpdateKind.FAILED, "cannot start the job: job j-1.1: its rental already ended")
    assert ex.cluster.submissions == []


async def test_the_rental_end_stops_a_running_job() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign(deadline=T0 + 3600))
    host.handle_start(assign("later", deadline=T0 + 7200))
    await started(ex)
    await started(ex, "later.1")
    ex.cluster.running("j-1.1")
    ex.cluster.advance(3599)
    await until(lambda: out.kinds() == [(1, "accepted"), (2, "running")], "running")
    ex.cluster.advance(1)
    await until(lambda: out.kinds()[-1:] == [(3, "stopped")], "the rental's end")
    assert out.updates[-1].message == RENTAL_ENDED == "rental ended"
    assert host.state("j-1", 1) is JobState.STOPPED and host.state("later", 1) is JobState.ACCEPTED
    assert host.busy_gpus() == 1
    assert ex.stops == []  # the runner enforces the deadline itself; the host sends no stop


async def test_a_bug_in_the_executor_still_ends_the_job(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeExecutor):
        def events(self, job_id: str) -> AsyncIterator[JobEvent]:
            raise KeyError(job_id)  # not a BlendrError: a bug

    ex, out = Broken(), Sink()
    host = make_host(ex)
    host.attach(out)
    with caplog.at_level(logging.ERROR, logger="blendr.provider.jobs"):
        host.handle_start(assign())
        await until(lambda: len(out.updates) == 2, "the failure")
    assert [(u.kind, u.message) for u in out.updates][-1] == (UpdateKind.FAILED,
                                                               "the provider agent failed: KeyError")
    assert "job handling failed" in caplog.text and "Traceback" in caplog.text
    assert host.busy_gpus() == 0


async def test_a_runner_that_ends_without_a_final_state_fails_the_job() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign())
    await started(ex)
    await until(lambda: out.updates, "accepted")
    await ex.close()  # e.g. the runner was closed under the host
    await until(lambda: len(out.updates) == 2, "the failure")
    assert [(u.kind, u.message) for u in out.updates][-1] == (UpdateKind.FAILED,
                                                               "the job runner ended without a final state")


async def test_events_out_of_order_are_dropped() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign())
    await started(ex)
    ex.cluster.running("j-1.1")
    ex.cluster.running("j-1.1")  # a runner must not report running twice: not a state change
    ex.cluster.log("j-1.1", "x")
    ex.cluster.succeed("j-1.1")
    await until(lambda: out.kinds()[-1:] == [(4, "succeeded")], "the end")
    assert out.kinds() == [(1, "accepted"), (2, "running"), (3, "log"), (4, "succeeded")]


# --- sessions and restarts ------------------------------------------------------------------------------


async def test_updates_made_between_sessions_reach_the_next_session_in_order() -> None:
    ex, first = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(first)
    host.handle_start(assign())
    await started(ex)
    ex.cluster.running("j-1.1")
    await until(lambda: len(first.updates) == 2, "two updates")
    first.broken = True
    ex.cluster.log("j-1.1", "lost on the broken stream")
    await until(lambda: len(host.updates("j-1", 1)) == 3, "the update kept")
    host.detach()
    ex.cluster.log("j-1.1", "while away")
    ex.cluster.succeed("j-1.1")
    await until(lambda: host.busy_gpus() == 0, "the job to end")
    second = Sink()
    host.attach(second)
    await until(lambda: len(second.updates) == 5, "everything again")
    assert second.kinds() == [(1, "accepted"), (2, "running"), (3, "log"), (4, "log"), (5, "succeeded")]
    assert [u.message for u in second.updates[2:4]] == ["lost on the broken stream", "while away"]
    assert len(first.updates) == 2


async def test_a_restarted_agent_reattaches_and_numbers_updates_as_before() -> None:
    cluster = FakeCluster()
    ex1, out1 = FakeExecutor(cluster), Sink()
    host1 = make_host(ex1)
    host1.attach(out1)
    host1.handle_start(assign())
    await started(ex1)
    cluster.running("j-1.1")
    cluster.log("j-1.1", "a", "b")
    await until(lambda: len(out1.updates) == 4, "four updates")
    # The agent dies (its runner detaches; the cluster's job runs on) and a new one starts.
    host1.detach()
    await ex1.close()
    ex2, out2 = FakeExecutor(cluster), Sink()
    host2 = make_host(ex2)
    host2.attach(out2)
    host2.handle_start(assign())  # the queen assigns the job again on the new session
    await until(lambda: len(out2.updates) == 4, "the job's updates again")
    assert out2.kinds() == out1.kinds()[:4]  # the same seq for the same update: the queen drops them
    assert [u.message for u in out2.updates] == [u.message for u in out1.updates[:4]]
    cluster.log("j-1.1", "c")
    cluster.succeed("j-1.1")
    await until(lambda: len(out2.updates) == 6, "the rest")
    assert out2.kinds()[4:] == [(5, "log"), (6, "succeeded")]
    assert cluster.submissions == ["j-1.1"]  # re-attached, never submitted twice


async def test_close_stops_running_jobs_and_the_executor() -> None:
    ex, out = FakeExecutor(), Sink()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(assign("a"))
    host.handle_start(assign("b"))
    await started(ex, "a.1")
    await started(ex, "b.1")
    ex.cluster.succeed("b.1")
    await until(lambda: out.kinds("b")[-1:] == [(2, "succeeded")], "b ended")
    await host.close()
    assert ex.stops == [("a.1", "the provider agent is shutting down")]
    assert ex.closed


def test_open_payload_round_trip_and_refusals() -> None:
    m = job_start()
    assert open_payload(bytes(m.ciphertext), bytes(m.sealed_key), KEY, AAD) == PAYLOAD
    with pytest.raises(PayloadError, match="truncated"):
        open_payload(b"\x00" * 10, bytes(m.sealed_key), KEY, AAD)
    tampered = bytearray(m.ciphertext)
    tampered[-1] ^= 1
    with pytest.raises(PayloadError, match="does not authenticate"):
        open_payload(bytes(tampered), bytes(m.sealed_key), KEY, AAD)


# --- the state table --------------------------------------------------------------------------------------


def test_publishing_an_update_the_state_does_not_allow_is_refused() -> None:
    host = make_host(FakeExecutor())
    from provider.jobhost import _Job

    job = _Job(JobId("j"), 1, 1)
    with pytest.raises(FailedPreconditionError, match="running is not allowed once new"):
        host._publish(job, UpdateKind.RUNNING)
    host._publish(job, UpdateKind.FAILED, "x")
    with pytest.raises(FailedPreconditionError, match="stopped is not allowed once failed"):
        host._publish(job, UpdateKind.STOPPED)
    assert [u.kind for u in job.history] == [UpdateKind.FAILED]


# --- the edge: the agent and the stream ---------------------------------------------------------------------


class Stream:
    """A session's ``send`` of provider messages, and an optional break the way grpc.aio breaks."""

    def __init__(self) -> None:
        self.sent: list[pb.ProviderMessage] = []
        self.error: BaseException | None = None

    async def __call__(self, msg: pb.ProviderMessage) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(msg)

    def updates(self) -> list[pb.JobUpdate]:
        return [m.job_update for m in self.sent if m.WhichOneof("body") == "job_update"]


def test_converters_keep_the_wire_format() -> None:
    m = job_start("j-9", 3, 2, deadline=1.75e9)
    a = convert.assignment_from_proto(m)
    assert (a.job_id, a.attempt, a.gpus, a.deadline_unix, a.aad, a.run_id) == ("j-9", 3, 2, 1.75e9, AAD, "j-9.3")
    assert (a.ciphertext, a.sealed_key) == (bytes(m.ciphertext), bytes(m.sealed_key))
    assert "ciphertext" not in repr(a) and "sealed_key" not in repr(a)
    assert convert.stop_from_proto(pb.JobStopRequest(job_id="j-9", attempt=3, reason="r")) == stop("j-9", 3, "r")
    u = JobUpdate(JobId("j-9"), 3, 7, UpdateKind.FAILED, "boom", 0.0, UnixSeconds(12.5), 3)
    assert convert.update_message(u) == pb.ProviderMessage(job_update=pb.JobUpdate(
        job_id="j-9", attempt=3, seq=7, kind="failed", message="boom", progress=0.0, ts_unix=12.5, exit_code=3))
    assert {k.value for k in UpdateKind} == {"accepted", "running", "log", "progress", "succeeded", "failed",
                                             "stopped"}


@pytest.mark.parametrize("error", [asyncio.InvalidStateError("RPC already finished"),
                                   grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(),
                                                        grpc.aio.Metadata(), details="gone")])
async def test_a_closed_stream_is_unavailable_to_the_host(error: BaseException) -> None:
    stream = Stream()
    sink = update_sink(stream)
    u = JobUpdate(JobId("j"), 1, 1, UpdateKind.ACCEPTED)
    await sink(u)
    assert stream.updates() == [convert.update_to_proto(u)]
    stream.error = error
    with pytest.raises(UnavailableError, match="the queen's stream is closed"):
        await sink(u)


def make_agent(tmp_path: Path, executor: FakeExecutor | None = None, **provider: Any) -> ProviderAgent:
    cfg = Config(home=tmp_path)
    for k, v in provider.items():
        setattr(cfg.provider, k, v)
    return ProviderAgent(cfg, NODE, GPUS, ThreadRuntime(), ["127.0.0.1:7470"], executor=executor or FakeExecutor())


@pytest.mark.parametrize(("tokens", "wei"), [("0.5", 5 * 10**17), ("0", 0), ("2", 2 * 10**18),
                                             ("0.000000000000000001", 1)])
def test_the_ask_is_sent_in_wei(tokens: str, wei: int) -> None:
    assert ask_in_wei(tokens) == wei


@pytest.mark.parametrize("tokens", ["-1", "abc", "0.0000000000000000001", "inf", "NaN"])
def test_a_malformed_ask_is_a_config_error(tmp_path: Path, tokens: str) -> None:
    with pytest.raises(ConfigError, match="ask_per_gpu_hour"):
        make_agent(tmp_path, ask_per_gpu_hour=tokens)


async def test_the_agent_hands_job_messages_to_its_host_and_updates_to_the_stream(tmp_path: Path) -> None:
    ex = FakeExecutor()
    agent, out = make_agent(tmp_path, ex, ask_per_gpu_hour="1.25"), Stream()
    assert agent.ask_wei == 125 * 10**16
    agent.jobs.attach(update_sink(out))
    agent._handle(pb.QueenMessage(job_start=job_start()), out)
    await until(lambda: [(u.seq, u.kind) for u in out.updates()] == [(1, "accepted")], "accepted")
    assert agent.jobs.busy_gpus() == 1
    agent._handle(pb.QueenMessage(job_stop=pb.JobStopRequest(job_id="j-1", attempt=1, reason="r")), out)
    await until(lambda: [(u.seq, u.kind) for u in out.updates()][-1:] == [(2, "stopped")], "stopped")
    assert out.updates()[-1] == pb.JobUpdate(job_id="j-1", attempt=1, seq=2, kind="stopped", message="r",
                                             ts_unix=T0)
    assert ex.stops == [("j-1.1", "r")]
    await agent.close()
