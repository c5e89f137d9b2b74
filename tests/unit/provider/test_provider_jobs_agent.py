"""The provider agent's job handling without a queen or Ray: a fake executor and a fake stream ``send``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blendr.config import Config
from blendr.errors import ComputeError, ConfigError
from blendr.identity import NodeIdentity
from blendr.payload import JobPayload, PayloadError, public_key_of, seal
from blendr.types import DeviceInfo, DeviceKind
from protos.blendr.v1 import queen_pb2 as pb
from provider.agent import ProviderAgent, ask_in_wei
from provider.compute import ThreadRuntime
from provider.jobhost import UNDECRYPTABLE, JobHost, open_payload, run_id_of

NODE = NodeIdentity.generate()
KEY = bytes(NODE.account().key)
AAD = "req-0123456789abcdef"
PAYLOAD = JobPayload(entrypoint="python train.py", env={"EPOCHS": "3"}, workdir_tar=b"")
GPUS = [DeviceInfo(index=i, kind=DeviceKind.GPU, name="NVIDIA T4", model="t4", memory_bytes=16 * 2**30)
        for i in range(2)]


def encrypt(payload: JobPayload, public_key: bytes, aad: str = AAD) -> tuple[bytes, bytes]:
    """What a renter's SDK sends: nonce || AES-GCM(payload), and the AES key sealed to the provider."""
    key, nonce = os.urandom(32), os.urandom(12)
    ciphertext = nonce + AESGCM(key).encrypt(nonce, payload.encode(), aad.encode())
    return ciphertext, seal(key, public_key, aad=aad.encode())


def job_start(job: str = "j-1", attempt: int = 1, gpus: int = 1, *, to: bytes | None = None, aad: str = AAD,
              deadline: float = 2e9) -> pb.JobStart:
    ciphertext, sealed = encrypt(PAYLOAD, to or public_key_of(KEY), aad)
    return pb.JobStart(job_id=job, attempt=attempt, gpus=gpus, deadline_unix=deadline, ciphertext=ciphertext,
                       sealed_key=sealed, aad=aad)


@dataclass(frozen=True)
class Ev:
    kind: str
    message: str = ""
    progress: float = -1.0
    ts: float = 123.0


class FakeExecutor:
    """Records starts and stops; the test feeds each job's events."""

    def __init__(self, *, fail_start: str = "") -> None:
        self.started: dict[str, tuple[JobPayload, int, float]] = {}
        self.stops: list[tuple[str, str]] = []
        self.queues: dict[str, asyncio.Queue[Ev | None]] = {}
        self.fail_start = fail_start
        self.closed = False
        self.gate: asyncio.Event | None = None

    async def start(self, job_id: str, payload: JobPayload, *, gpus: int, deadline_unix: float) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_start:
            raise ComputeError(self.fail_start)
        assert job_id not in self.started, "started twice"
        self.started[job_id] = (payload, gpus, deadline_unix)
        self.queues[job_id] = asyncio.Queue()

    def events(self, job_id: str) -> AsyncIterator[Ev]:
        return self._iterate(self.queues[job_id])

    @staticmethod
    async def _iterate(q: asyncio.Queue[Ev | None]) -> AsyncIterator[Ev]:
        while (e := await q.get()) is not None:
            yield e
            if e.kind in ("succeeded", "failed", "stopped"):
                return

    def emit(self, job_id: str, *events: Ev) -> None:
        for e in events:
            self.queues[job_id].put_nowait(e)

    async def stop(self, job_id: str, reason: str) -> None:
        self.stops.append((job_id, reason))
        if job_id in self.queues:
            self.queues[job_id].put_nowait(Ev("stopped", reason))

    async def close(self) -> None:
        self.closed = True
        for q in self.queues.values():
            q.put_nowait(None)


class Stream:
    """A session's ``send``: the job updates it carried, and an optional break."""

    def __init__(self) -> None:
        self.updates: list[pb.JobUpdate] = []
        self.broken = False

    async def __call__(self, msg: pb.ProviderMessage) -> None:
        if self.broken:
            raise ConnectionError("stream broken")
        assert msg.WhichOneof("body") == "job_update"
        self.updates.append(msg.job_update)

    def kinds(self, job: str = "j-1") -> list[tuple[int, str]]:
        return [(u.seq, u.kind) for u in self.updates if u.job_id == job]


async def until(pred: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := pred()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
    return value


def make_host(executor: FakeExecutor | None, devices: int = 2, gpu_devices: int = 2) -> JobHost:
    return JobHost(executor, KEY, devices=devices, gpu_devices=gpu_devices, clock=lambda: 1000.0)


async def test_a_job_is_decrypted_started_and_its_events_streamed_in_order() -> None:
    ex, out = FakeExecutor(), Stream()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(job_start(gpus=2, deadline=1.7e9))
    await until(lambda: "j-1.1" in ex.started, "the start")
    payload, gpus, deadline = ex.started[run_id_of("j-1", 1)]
    assert payload == PAYLOAD and (gpus, deadline) == (2, 1.7e9)
    assert host.busy_gpus() == 2
    ex.emit("j-1.1", Ev("running"), Ev("log", "epoch 1"), Ev("progress", progress=0.5), Ev("log", "epoch 2"),
            Ev("failed", "entrypoint exited with code 3"))
    await until(lambda: len(out.updates) == 6, "six updates")
    assert out.kinds() == [(1, "accepted"), (2, "running"), (3, "log"), (4, "progress"), (5, "log"), (6, "failed")]
    assert out.updates[2].message == "epoch 1" and out.updates[3].progress == 0.5
    assert out.updates[2].progress == 0.0 and out.updates[2].ts_unix == 123.0
    assert out.updates[0].ts_unix == 1000.0  # the host's own updates carry its clock
    assert out.updates[-1].exit_code == 3 and out.updates[-1].attempt == 1
    assert host.busy_gpus() == 0


@pytest.mark.parametrize("how", ["another key", "another request id"])
async def test_a_payload_that_does_not_open_is_answered_failed(how: str) -> None:
    ex, out = FakeExecutor(), Stream()
    host = make_host(ex)
    host.attach(out)
    if how == "another key":
        m = job_start(to=public_key_of(bytes(NodeIdentity.generate().account().key)))
    else:
        m = job_start()
        m.aad = "req-somebody-else-0000"
    host.handle_start(m)
    await until(lambda: out.updates, "an answer")
    [u] = out.updates
    assert (u.seq, u.kind, u.message) == (1, "failed", UNDECRYPTABLE)
    assert ex.started == {}
    assert UNDECRYPTABLE == "payload cannot be decrypted with this provider's key"


async def test_a_repeated_start_is_not_started_again_but_reported() -> None:
    ex, out = FakeExecutor(), Stream()
    host = make_host(ex)
    host.attach(out)
    m = job_start()
    host.handle_start(m)
    host.handle_start(m)  # while decrypting: already known
    await until(lambda: "j-1.1" in ex.started, "the start")
    ex.emit("j-1.1", Ev("running"))
    await until(lambda: len(out.updates) == 2, "two updates")
    host.handle_start(m)
    await until(lambda: len(out.updates) == 3, "the state again")
    assert out.kinds() == [(1, "accepted"), (2, "running"), (2, "running")]
    assert list(ex.started) == ["j-1.1"]
    # Another attempt of the same job is another run.
    host.handle_start(job_start(attempt=2))
    await until(lambda: "j-1.2" in ex.started, "the second attempt")


async def test_a_stop_reaches_the_executor_even_before_the_start_finished() -> None:
    ex, out = FakeExecutor(), Stream()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(job_start("a"))
    await until(lambda: "a.1" in ex.started, "the start of a")
    host.handle_stop(pb.JobStopRequest(job_id="a", attempt=1, reason="renter cancelled"))
    await until(lambda: out.kinds("a")[-1:] == [(2, "stopped")], "a stopped")
    assert ex.stops == [("a.1", "renter cancelled")]
    assert out.updates[-1].message == "renter cancelled"

    ex.gate = asyncio.Event()  # the next start hangs in the executor
    host.handle_start(job_start("b"))
    await until(lambda: out.kinds("b") == [(1, "accepted")], "b accepted")
    host.handle_stop(pb.JobStopRequest(job_id="b", attempt=1, reason=""))
    ex.gate.set()
    await until(lambda: out.kinds("b")[-1:] == [(2, "stopped")], "b stopped once started")
    assert ex.stops[-1] == ("b.1", "stopped by the queen")
    # A stop for a job this agent does not know still reaches the executor (Ray may run it from before).
    host.handle_stop(pb.JobStopRequest(job_id="old", attempt=4, reason="x"))
    await until(lambda: ex.stops[-1] == ("old.4", "x"), "the stop of an unknown job")


async def test_updates_made_between_sessions_reach_the_next_session_in_order() -> None:
    ex, first = FakeExecutor(), Stream()
    host = make_host(ex)
    host.attach(first)
    host.handle_start(job_start())
    await until(lambda: "j-1.1" in ex.started, "the start")
    ex.emit("j-1.1", Ev("running"))
    await until(lambda: len(first.updates) == 2, "two updates")
    first.broken = True
    ex.emit("j-1.1", Ev("log", "lost on the broken stream"))
    await asyncio.sleep(0.02)
    host.detach()
    ex.emit("j-1.1", Ev("log", "while away"), Ev("succeeded"))
    await until(lambda: host.busy_gpus() == 0, "the job to end")
    second = Stream()
    host.attach(second)
    await until(lambda: len(second.updates) == 5, "everything again")
    assert second.kinds() == [(1, "accepted"), (2, "running"), (3, "log"), (4, "log"), (5, "succeeded")]
    assert [u.message for u in second.updates[2:4]] == ["lost on the broken stream", "while away"]


async def test_jobs_beyond_the_free_devices_or_without_an_executor_fail() -> None:
    ex, out = FakeExecutor(), Stream()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(job_start("big", gpus=3))
    host.handle_start(job_start("a", gpus=2))
    await until(lambda: "a.1" in ex.started, "a")
    host.handle_start(job_start("b", gpus=1))
    await until(lambda: out.kinds("big") and out.kinds("b"), "the refusals")
    assert out.updates[0].message == "the job asks for 3 devices; this provider has 2 free of 2"
    assert [(u.kind, u.message) for u in out.updates if u.job_id == "b"] == [
        ("failed", "the job asks for 1 devices; this provider has 0 free of 2")]

    none, out2 = make_host(None), Stream()
    none.attach(out2)
    none.handle_start(job_start())
    await until(lambda: out2.updates, "the refusal")
    assert [(u.kind, u.message) for u in out2.updates] == [("failed", "this provider agent runs no renter jobs")]


async def test_an_executor_that_cannot_start_the_job_fails_it() -> None:
    ex, out = FakeExecutor(fail_start="the Ray cluster refused job j-1.1: no GPUs"), Stream()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(job_start())
    await until(lambda: len(out.updates) == 2, "two updates")
    assert out.kinds() == [(1, "accepted"), (2, "failed")]
    assert out.updates[1].message == "cannot start the job: the Ray cluster refused job j-1.1: no GPUs"


async def test_a_cpu_provider_runs_jobs_without_asking_ray_for_gpus() -> None:
    ex, out = FakeExecutor(), Stream()
    host = make_host(ex, devices=1, gpu_devices=0)
    host.attach(out)
    host.handle_start(job_start(gpus=1))
    await until(lambda: "j-1.1" in ex.started, "the start")
    assert ex.started["j-1.1"][1] == 0


async def test_close_stops_running_jobs_and_the_executor() -> None:
    ex, out = FakeExecutor(), Stream()
    host = make_host(ex)
    host.attach(out)
    host.handle_start(job_start())
    await until(lambda: "j-1.1" in ex.started, "the start")
    await host.close()
    assert ex.stops == [("j-1.1", "the provider agent is shutting down")]
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


# --- the agent -----------------------------------------------------------------------------------------


def make_agent(tmp_path: Path, **provider: Any) -> ProviderAgent:
    cfg = Config(home=tmp_path)
    for k, v in provider.items():
        setattr(cfg.provider, k, v)
    return ProviderAgent(cfg, NODE, GPUS, ThreadRuntime(), ["127.0.0.1:7470"], executor=FakeExecutor())


@pytest.mark.parametrize(("tokens", "wei"), [("0.5", 5 * 10**17), ("0", 0), ("2", 2 * 10**18),
                                             ("0.000000000000000001", 1)])
def test_the_ask_is_sent_in_wei(tokens: str, wei: int) -> None:
    assert ask_in_wei(tokens) == wei


@pytest.mark.parametrize("tokens", ["-1", "abc", "0.0000000000000000001", "inf", "NaN"])
def test_a_malformed_ask_is_a_config_error(tmp_path: Path, tokens: str) -> None:
    with pytest.raises(ConfigError, match="ask_per_gpu_hour"):
        make_agent(tmp_path, ask_per_gpu_hour=tokens)


async def test_the_agent_hands_job_messages_to_its_host(tmp_path: Path) -> None:
    agent, out = make_agent(tmp_path, ask_per_gpu_hour="1.25"), Stream()
    assert agent.ask_wei == 125 * 10**16
    agent.jobs.attach(out)
    agent._handle(pb.QueenMessage(job_start=job_start()), out)
    await until(lambda: out.kinds() == [(1, "accepted")], "accepted")
    assert agent.jobs.busy_gpus() == 1
    agent._handle(pb.QueenMessage(job_stop=pb.JobStopRequest(job_id="j-1", attempt=1, reason="r")), out)
    await until(lambda: out.kinds()[-1:] == [(2, "stopped")], "stopped")
    await agent.close()
