"""A real queen between a scripted king (a real grpc.aio KingControl server on port 0, TLS with its own CA)
and a real provider agent on the session's local Ray: registration, pool snapshots, an assignment whose
payload is sealed to the key the snapshot advertised, its events back in order, a stop, a provider lost
mid-job, and the queen's reconnect to its king.

The provider runs jobs through a scripted executor: the session's Ray has no dashboard, which the real
``JobRunner`` needs (its own tests run it against a real Ray)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_utils import keccak, to_checksum_address

from blendr.config import load_config
from blendr.identity import NodeIdentity
from blendr.payload import JobPayload, seal
from blendr.rpc.registration import recover_queen_registration
from blendr.rpc.server import ServerHandle, start_server
from protos.blendr.v1 import king_pb2 as kpb
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from provider.agent import ProviderAgent
from provider.compute import RayRuntime
from provider.gpus import cpu_device
from queen.app import start_queen
from tests.integration.helpers import PINS, client_config, queen_config, running_agent, wait_for

pytestmark = pytest.mark.usefixtures("ray_cluster")

KING = NodeIdentity.generate()
PAYLOAD = JobPayload(entrypoint="python render.py --frames 1-10", env={"SCENE": "city"})
AAD = "req-integration-0001"


class ScriptedKing(kpb_grpc.KingControlServicer):
    """Records what queens send; sends what the test puts in the current session's outbox."""

    def __init__(self) -> None:
        self.registrations: list[kpb.QueenRegistration] = []
        self.snapshots: list[kpb.PoolSnapshotMsg] = []
        self.events: list[kpb.QueenJobEvent] = []
        self.outbox: asyncio.Queue[kpb.KingToQueen | None] = asyncio.Queue()

    async def QueenSession(self, request_iterator: AsyncIterator[kpb.QueenToKing],
                           context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[kpb.KingToQueen]:
        first = await anext(request_iterator)
        assert first.WhichOneof("body") == "registration"
        self.registrations.append(first.registration)
        outbox = self.outbox = asyncio.Queue()
        yield kpb.KingToQueen(registered=kpb.QueenRegistered(king_address=KING.address, snapshot_interval_s=0.5))

        async def read() -> None:
            async for msg in request_iterator:
                if msg.WhichOneof("body") == "snapshot":
                    self.snapshots.append(msg.snapshot)
                elif msg.WhichOneof("body") == "job_event":
                    self.events.append(msg.job_event)
            outbox.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await outbox.get()) is not None:
                yield item
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    def send(self, msg: kpb.KingToQueen) -> None:
        self.outbox.put_nowait(msg)

    def end_session(self) -> None:
        self.outbox.put_nowait(None)

    def provider(self, address: str) -> kpb.PoolProvider | None:
        if not self.snapshots:
            return None
        return next((p for p in self.snapshots[-1].providers if p.address == address), None)

    def job(self, job_id: str) -> list[tuple[int, str]]:
        """The job's events as the real king keeps them: each seq once, ignoring any not above the last."""
        out: list[tuple[int, str]] = []
        for e in self.events:
            if e.job_id == job_id and (not out or e.seq > out[-1][0]):
                out.append((e.seq, e.kind))
        return out


@dataclass(frozen=True)
class Ev:
    kind: str
    message: str = ""
    progress: float = -1.0
    ts: float = 0.0


class ScriptedExecutor:
    """Runs each job as: running, two log lines, then waits for a stop (or the test)."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[JobPayload, int]] = {}
        self.starts = 0
        self.stops: list[tuple[str, str]] = []
        self.queues: dict[str, asyncio.Queue[Ev | None]] = {}

    async def start(self, job_id: str, payload: JobPayload, *, gpus: int, deadline_unix: float) -> None:
        self.starts += 1
        self.started[job_id] = (payload, gpus)
        q = self.queues[job_id] = asyncio.Queue()
        for e in (Ev("running"), Ev("log", "frame 1"), Ev("log", "frame 2")):
            q.put_nowait(e)

    def events(self, job_id: str) -> AsyncIterator[Ev]:
        return self._iterate(self.queues[job_id])

    @staticmethod
    async def _iterate(q: asyncio.Queue[Ev | None]) -> AsyncIterator[Ev]:
        while (e := await q.get()) is not None:
            yield e
            if e.kind == "stopped":
                return

    async def stop(self, job_id: str, reason: str) -> None:
        self.stops.append((job_id, reason))
        if job_id in self.queues:
            self.queues[job_id].put_nowait(Ev("stopped", reason))

    async def probe(self, timeout_s: float) -> None:
        return None  # always ready: this test is about the job flow

    async def close(self) -> None:
        for q in self.queues.values():
            q.put_nowait(None)


def assignment(job_id: str, provider: kpb.PoolProvider, gpus: int = 1) -> kpb.KingToQueen:
    """What the king sends: the payload encrypted as the renter did, its key sealed to the snapshot's key."""
    key, nonce = os.urandom(32), os.urandom(12)
    ciphertext = nonce + AESGCM(key).encrypt(nonce, PAYLOAD.encode(), AAD.encode())
    sealed = seal(key, bytes(provider.public_key), aad=AAD.encode())
    return kpb.KingToQueen(assign=kpb.JobAssignment(
        job_id=job_id, attempt=1, provider=provider.address, gpus=gpus, rental_id=b"\x07" * 32,
        deadline_unix=2e9, ciphertext=ciphertext, sealed_key=sealed, aad=AAD))


async def start_king(home: Path) -> tuple[ScriptedKing, ServerHandle]:
    cfg = load_config(home, overrides={"metrics.port": -1}, env={})
    king = ScriptedKing()
    server = await start_server(cfg, "127.0.0.1:0", [lambda s: kpb_grpc.add_KingControlServicer_to_server(king, s)],
                                service_names=("blendr.v1.KingControl",))
    return king, server


async def test_jobs_flow_from_the_king_through_the_queen_to_the_provider_and_back(node_home: Any) -> None:
    khome, qhome, phome = node_home("king"), node_home("queen"), node_home("p")
    king, king_server = await start_king(khome)
    app = await start_queen(queen_config(
        qhome, relay__king=f"127.0.0.1:{king_server.port}", relay__king_ca_file=str(khome / "tls" / "ca.crt"),
        relay__king_address=KING.address, relay__retry_initial_s=0.1, relay__retry_max_s=0.5,
        relay__endpoint="queen.test:7470"))
    executor = ScriptedExecutor()
    ident, _ = NodeIdentity.load_or_create(phome)
    devs = [cpu_device()]
    agent = ProviderAgent(client_config(phome, qhome, provider__ask_per_gpu_hour="0.75"), ident, devs,
                          RayRuntime(address="", pin_resource=PINS[5], devices=devs, use_gpu=False),
                          [f"127.0.0.1:{app.port}"], executor=executor)
    addr = ident.address
    try:
        # Registration: signed by the queen's key for this king.
        [reg] = await wait_for(lambda: king.registrations, 20, "the queen's registration")
        assert (reg.queen_address, reg.king_address, reg.endpoint) == (app.core.address, KING.address,
                                                                       "queen.test:7470")
        assert recover_queen_registration(reg.queen_address, reg.king_address, reg.timestamp, reg.endpoint,
                                          bytes(reg.signature)) == app.core.address
        async with running_agent(agent) as agent_task:
            # The snapshot: the provider with the public key its admission signature recovered to.
            p = await wait_for(lambda: king.provider(addr), 60, "the provider in a snapshot")
            assert len(p.public_key) == 64 and to_checksum_address(keccak(bytes(p.public_key))[-20:]) == addr
            assert (p.gpu_model, p.gpus, p.alive, p.busy_gpus) == ("cpu", 1, True, 0)
            assert p.ask_per_gpu_hour == str(75 * 10**16) and p.vram_bytes == devs[0].memory_bytes
            seqs = [s.seq for s in king.snapshots]
            assert seqs == sorted(set(seqs))

            # An assignment reaches the provider, decrypted; its events come back in order.
            king.send(assignment("j-1", p))
            await wait_for(lambda: king.job("j-1")[-1:] == [(4, "log")], 20, "j-1 running with its logs")
            assert king.job("j-1") == [(1, "accepted"), (2, "running"), (3, "log"), (4, "log")]
            assert [e.message for e in king.events if e.kind == "log"][:2] == ["frame 1", "frame 2"]
            assert executor.started["j-1.1"] == (PAYLOAD, 0)  # a CPU provider asks Ray for no GPU
            await wait_for(lambda: (king.provider(addr) or p).busy_gpus == 1, 10, "the busy provider in a snapshot")
            # A repeat (the king re-sends unacknowledged assignments) starts nothing.
            king.send(assignment("j-1", p))
            await asyncio.sleep(0.3)
            assert executor.starts == 1

            # A stop.
            king.send(kpb.KingToQueen(stop=kpb.JobStop(job_id="j-1", attempt=1, reason="renter cancelled")))
            await wait_for(lambda: king.job("j-1")[-1:] == [(5, "stopped")], 20, "j-1 stopped")
            assert executor.stops == [("j-1.1", "renter cancelled")]
            assert next(e.message for e in king.events if e.kind == "stopped") == "renter cancelled"

            # The king ends the session: the queen registers again and carries on.
            king.end_session()
            await wait_for(lambda: len(king.registrations) >= 2, 20, "the queen's second registration")
            p = await wait_for(lambda: king.provider(addr), 20, "a snapshot on the new session")
            king.send(assignment("j-2", p))
            await wait_for(lambda: king.job("j-2")[-1:] == [(4, "log")], 20, "j-2 running")

            # The provider's stream dies mid-job (the agent process is gone: no stop, no final state).
            agent_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await agent_task
        await wait_for(lambda: king.job("j-2")[-1:] == [(5, "lost")], 20, "j-2 lost")
        [lost] = [e for e in king.events if e.job_id == "j-2" and e.kind == "lost"]
        assert f"provider {addr} went away" in lost.message
        # Suspect snapshots came first (not alive, still busy); the one after the loss frees its device.
        gone = await wait_for(lambda: (q := king.provider(addr)) and not q.alive and q.busy_gpus == 0 and q, 10,
                              "the dead provider in a snapshot")
        assert gone.address == addr

        # An assignment for a provider that is not connected is answered lost at once.
        king.send(assignment("j-3", p))
        await wait_for(lambda: king.job("j-3") == [(1, "lost")], 10, "j-3 lost")
        assert "not connected" in next(e.message for e in king.events if e.job_id == "j-3")
        assert executor.starts == 2
    finally:
        await agent.close()
        await app.stop()
        await king_server.stop(0)
