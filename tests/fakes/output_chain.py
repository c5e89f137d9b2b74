"""A job's outputs through real gRPC servers: provider upload -> queen relay -> king -> renter fetch.

What is real: the king's ``KingCore`` with its :class:`king.outputs.OutputStore` on disk, its
``RenterGatewayServicer`` and ``KingControlServicer`` on one ``start_server`` (TLS from the node's home unless
``rpc.tls`` is off), a queen's ``QueenServicer.UploadOutput`` with a real :class:`queen.outputs.OutputRelay` over
a queen :class:`queen.jobs.JobBook`, the provider's :func:`provider.outputs.upload_output` and the renter SDK's
``KingClient.get_output``. What is not: Ethereum (``FakeRentalChain``), the queens' sessions to the king
(``FakeQueens``: the job's end is fed to ``KingCore.on_queen_event`` as a session would) and the provider's Ray
(the test writes the job's output files itself). Used by tests/unit/king/test_king_outputs.py and
bench/outputs.py.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_account import Account

from blendr.client import JobRequest, KingClient
from blendr.clock import Clock
from blendr.config import Config
from blendr.identity import NodeIdentity
from blendr.outputs import output_aad, pack_outputs
from blendr.payload import public_key_of
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.rpc.server import ServerHandle, open_channel, start_server
from blendr.store import MemoryStore
from king.auth import Sessions
from king.context import JobsConfig
from king.control import KingControlServicer
from king.core import KingCore
from king.gateway import RenterGatewayServicer
from king.lifecycle import QueenEvent
from king.outputs import OutputStore
from king.pricing import Pricer, PricingParams, tokens
from king.scheduler import ProviderOffer, Scheduler
from protos.blendr.v1 import king_pb2_grpc as kpb_grpc
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc
from provider.outputs import upload_output
from queen.jobs import Assignment, JobBook
from queen.outputs import OutputRelay
from queen.service import QueenServicer
from tests.fakes.queens import FakeQueens
from tests.fakes.rental_chain import FakeRentalChain


@dataclass
class OutputChain:
    cfg: Config
    core: KingCore
    store: OutputStore
    king_server: ServerHandle
    queen_server: ServerHandle
    chain: FakeRentalChain
    queens: FakeQueens
    queen_jobs: JobBook
    queen: NodeIdentity
    provider: NodeIdentity
    king_channel: Any
    seq: int = 0

    def client(self, account: Any) -> KingClient:
        ca = self.cfg.path("tls", "ca.crt") if self.cfg.rpc.tls else None
        return KingClient(f"127.0.0.1:{self.king_server.port}", account, ca_file=ca, insecure=not self.cfg.rpc.tls,
                          timeout_s=30)

    async def run_job(self, king: KingClient, work: Path, *, name: str = "out", kind: str = "succeeded") -> tuple[
            str, int]:
        """Submits a job, places it on the provider and ends it there (``kind``); returns (job id, attempt)."""
        self.seq += 1
        (work / "job.py").write_text("print('hi')\n")
        self.chain.fund(king.account.address, tokens("1000"))
        job = await king.submit(JobRequest(entrypoint="python job.py", gpus=1, hours=1, max_price="2",
                                           gpu_model="cpu", workdir=work, name=name,
                                           request_id=f"output-chain-{self.seq:08d}-{os.getpid()}"))
        await self.core.placer.run_pass()
        a = self.queens.last(job.job_id)
        self.queen_jobs.assign(Assignment(a.job_id, a.attempt, a.provider, a.gpus, a.rental_id, a.deadline_unix,
                                          b"", b"", a.aad))
        q = self.queen.address
        self.core.on_queen_event(q, QueenEvent(job.job_id, a.attempt, 1, "running"))
        self.core.on_queen_event(q, QueenEvent(job.job_id, a.attempt, 2, kind, "done" if kind != "succeeded" else ""))
        return job.job_id, a.attempt

    async def upload(self, job_id: str, attempt: int, src: Path, renter_public_key: bytes, spool: Path, *,
                     error: str = "") -> int:
        """What the provider does when an attempt ends: pack ``src`` sealed to the renter into ``spool``, then
        upload it to the queen (over TLS from the node's home when on)."""
        if not error:
            with open(spool, "wb") as out:
                pack_outputs(src, out, renter_public_key, output_aad(job_id, attempt))
        async with open_channel(self.cfg, f"127.0.0.1:{self.queen_server.port}") as channel:
            return await upload_output(channel, self.provider.account(), job_id, attempt, error,
                                       None if error else spool)

    async def close(self) -> None:
        await self.king_channel.close()
        await self.queen_server.stop(0)
        await self.king_server.stop(0)


async def start_output_chain(cfg: Config, clock: Clock, outputs_dir: Path, *, max_job_bytes: int = 2**30,
                             max_total_bytes: int = 4 * 2**30, retention_s: float = 3600.0,
                             wait_s: float = 600.0) -> OutputChain:
    """Starts the king and the queen (both on 127.0.0.1:0) with one provider admitted to the queen."""
    queen = NodeIdentity.from_key(os.urandom(32))
    provider = NodeIdentity.from_key(os.urandom(32))
    chain = FakeRentalChain(now=clock.time)
    queens = FakeQueens()
    queens.connect(queen.address)
    store = OutputStore(outputs_dir, clock, max_job_bytes=max_job_bytes, max_total_bytes=max_total_bytes,
                        retention_s=retention_s)
    core = KingCore(MemoryStore(), clock, Scheduler(Pricer(PricingParams(surge=0.0)), known_models=FINGERPRINTS),
                    chain, queens, JobsConfig(), outputs=store, output_wait_s=wait_s)
    await core.prepare()
    core.on_snapshot(queen.address, 1, [(ProviderOffer(provider.address, queen.address, "cpu", 1, 2**30, 1.0,
                                                       tokens("0.4"), 5000, 1.0),
                                         public_key_of(bytes(provider.account().key)), 0)])
    sessions = Sessions(MemoryStore(), clock, king=Account.create().address, chain_id=chain.chain_id)
    king_server = await start_server(cfg, "127.0.0.1:0", [
        lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(RenterGatewayServicer(core, sessions), s),
        lambda s: kpb_grpc.add_KingControlServicer_to_server(
            KingControlServicer(cast(Any, None), cast(Any, None), outputs=core.outputs), s)],
        service_names=("blendr.v1.RenterGateway", "blendr.v1.KingControl"))
    king_channel = open_channel(cfg, f"127.0.0.1:{king_server.port}")
    king_stub = kpb_grpc.KingControlStub(king_channel)
    queen_jobs = JobBook(MemoryStore(), clock, to_provider=lambda _p, _m: True, emit=lambda _e: None,
                         is_connected=lambda _p: True, lost_grace_s=60.0)
    relay = OutputRelay(queen_jobs, queen.account(), clock, lambda: king_stub)
    queen_server = await start_server(cfg, "127.0.0.1:0", [
        lambda s: pb_grpc.add_QueenServiceServicer_to_server(QueenServicer(cast(Any, None), relay), s)],
        service_names=("blendr.v1.QueenService",))
    return OutputChain(cfg, core, store, king_server, queen_server, chain, queens, queen_jobs, queen, provider,
                       king_channel)


def wall_clock_start() -> float:
    """The SDK signs deadlines on the wall clock: chains start their fake clock at it."""
    return time.time()
