"""The provider agent: dial out to a queen, pass admission, heartbeat, answer challenges, run renters' jobs.

Connects to the first reachable queen of its list and fails over to the next; after losing a queen it
reconnects with bounded exponential backoff (tenacity). Challenges run on the compute runtime (Ray
tasks, one per device); openings are recomputed on the host from the committed row digests. Renters' jobs
(``JobStart``/``JobStopRequest``) go to a :class:`~provider.jobhost.JobHost`, which outlives sessions and
reports every job again to the next queen session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import grpc
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

import blendr
from blendr.aio import within
from blendr.config import Config
from blendr.errors import (
    BlendrError,
    ChallengeExpiredError,
    ConfigError,
    InvalidArgumentError,
    UnavailableError,
)
from blendr.identity import NodeIdentity
from blendr.proof.merkle import MerkleTree
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import DeviceProof, open_rows
from blendr.rpc import convert
from blendr.rpc.server import open_channel
from blendr.telemetry import Metrics, get_logger
from blendr.types import DeviceInfo, DeviceKind, Hello, RayInfo
from blendr.units import TOKEN, Wei
from protos.blendr.v1 import queen_pb2 as pb
from protos.blendr.v1 import queen_pb2_grpc as pb_grpc
from provider import convert as job_convert
from provider.compute import ComputeRuntime
from provider.jobhost import JobExecutor, JobHost, UpdateSink
from provider.jobtypes import JobUpdate
from provider.outputs import OutputShipper, upload_output
from provider.readiness import ReadinessMonitor

log = get_logger("blendr.provider")

KEEP_PROOFS = 4
FATAL_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED}

Send = Callable[[pb.ProviderMessage], Awaitable[None]]


def update_sink(send: Send) -> UpdateSink:
    """The job host's view of a session's stream: job updates in, ``ProviderMessage``s out.

    The sink raises UnavailableError when the stream is closed or broken (grpc.aio raises AioRpcError
    after the call ended with a status, InvalidStateError once it is finished or half-closed).
    """

    async def sink(update: JobUpdate) -> None:
        try:
            await send(job_convert.update_message(update))
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            raise UnavailableError(f"the queen's stream is closed ({type(exc).__name__})") from None

    return sink


def ask_in_wei(tokens: str) -> Wei:
    """``provider.ask_per_gpu_hour`` (GPUTOKEN, e.g. ``"0.5"``) in wei, as the hello carries it.

    Raises:
        ConfigError: not a non-negative number, or finer than one wei.
    """
    try:
        amount = Decimal(tokens.strip())
    except InvalidOperation:
        raise ConfigError(f"config provider.ask_per_gpu_hour must be a number of GPUTOKEN (got {tokens!r})") from None
    wei = amount * TOKEN
    if not amount.is_finite() or amount < 0 or wei != wei.to_integral_value():
        raise ConfigError(f"config provider.ask_per_gpu_hour must be >= 0 with at most 18 decimals (got {tokens!r})")
    return Wei(int(wei))


class _QueensUnreachable(Exception):
    """No queen of the list accepted a session this round (retried with backoff)."""


class FatalQueenError(BlendrError):
    """Raised when a queen refuses this provider in a way retrying cannot fix (e.g. malformed hello)."""


@dataclass
class _Proof:
    params: ChallengeParams
    proofs: dict[int, DeviceProof]
    trees: dict[int, MerkleTree] = field(default_factory=dict)


class ProviderMetrics:
    """The provider agent's Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.connected = metrics.gauge("provider_connected", "1 while admitted to a queen")
        self.sessions = metrics.counter("provider_sessions", "Sessions admitted by a queen")
        self.challenges = metrics.counter("provider_challenges", "Challenge results from the queen", ("verdict",))
        self.challenge_seconds = metrics.histogram(
            "provider_challenge_work_seconds", "Seconds to compute and commit one challenge",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


@dataclass
class AgentStatus:
    queen: str = ""
    admitted: bool = False
    sessions: int = 0
    challenges: int = 0
    results: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


class ProviderAgent:
    """One provider agent: an identity, its devices, a compute runtime and a list of queens."""

    def __init__(
        self, cfg: Config, identity: NodeIdentity, devices: Sequence[DeviceInfo], runtime: ComputeRuntime,
        queens: Sequence[str],
        *,
        metrics: ProviderMetrics | None = None,
        executor: JobExecutor | None = None,
        make_executor: Callable[[], JobExecutor | None] | None = None,
    ) -> None:
        """
        Args:
            executor: Runs renters' jobs; ``make_executor`` instead builds it once the runtime has started
                (the local Ray's dashboard address is known only then). Neither: jobs are answered failed.

        Raises:
            InvalidArgumentError: no queen.
            ConfigError: a malformed ``provider.ask_per_gpu_hour``.
        """
        if not queens:
            raise InvalidArgumentError("no queen to connect to: pass --queen HOST:PORT[,HOST:PORT...]")
        self.cfg = cfg
        self.identity = identity
        self.devices = list(devices)
        self.runtime = runtime
        self.queens = list(queens)
        self.status = AgentStatus()
        self.metrics = metrics
        self.ray = RayInfo()
        self._proofs: OrderedDict[str, _Proof] = OrderedDict()
        self._replaced = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.ask_wei = ask_in_wei(cfg.provider.ask_per_gpu_hour)
        self._make_executor = make_executor
        self.jobs = JobHost(executor, bytes(identity.account().key), devices=len(self.devices),
                            gpu_devices=sum(1 for d in self.devices if d.kind is DeviceKind.GPU))
        # Whether renters' jobs can run here: in the hello and every heartbeat (the queen offers only ready
        # providers). Checked once the runtime is up, then every provider.readiness_interval_s.
        self.readiness = ReadinessMonitor(executor.probe if executor is not None else None,
                                          interval_s=cfg.provider.readiness_interval_s,
                                          timeout_s=cfg.provider.readiness_timeout_s)
        self.jobs.outputs = OutputShipper(cfg.home, self._upload_output)

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """Serve until cancelled. Raises UnavailableError after ``provider.reconnect_give_up_s`` without a queen."""
        self.ray = await self.runtime.start()
        if self._make_executor is not None and not self.jobs.has_executor:
            executor = self._make_executor()
            if executor is not None:
                self.jobs.set_executor(executor)
                self.readiness.set_probe(executor.probe)
        await self.readiness.check()
        checks = asyncio.create_task(self.readiness.run(), name="readiness")
        try:
            await self._serve()
        finally:
            checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checks

    async def _serve(self) -> None:
        p = self.cfg.provider
        first = True
        while True:
            if not first:
                # A session ended: never redial at once (two agents sharing a key would replace each
                # other in a tight loop, and a restarting queen needs a moment).
                await asyncio.sleep(p.reconnect_max_s if self._replaced else p.reconnect_initial_s)
            first = False
            self._replaced = False
            retrying = AsyncRetrying(
                stop=stop_after_delay(p.reconnect_give_up_s),
                wait=wait_exponential_jitter(multiplier=p.reconnect_initial_s, max=p.reconnect_max_s),
                retry=retry_if_exception_type(_QueensUnreachable),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._one_round()
            except _QueensUnreachable as exc:
                raise UnavailableError(
                    f"no queen reachable for {p.reconnect_give_up_s:.0f}s ({', '.join(self.queens)}): {exc}"
                ) from None
            # A session ended after admission: start over with a fresh backoff.

    async def _one_round(self) -> None:
        errors = []
        refused = []
        for target in self.queens:
            try:
                admitted = await self._session(target)
            except grpc.aio.AioRpcError as exc:
                msg = f"{target}: {exc.code().name}: {exc.details()}"
                if exc.code() in FATAL_CODES:
                    # This queen will never take this hello; another queen of the list may.
                    log.error("queen refuses this provider's hello", queen=target, reason=exc.details())
                    refused.append(msg)
                    continue
                if exc.code() is grpc.StatusCode.PERMISSION_DENIED:
                    log.warning("queen refuses this provider; will retry", queen=target, reason=exc.details())
                errors.append(msg)
                self.status.last_error = msg
                continue
            except (OSError, BlendrError) as exc:
                errors.append(f"{target}: {exc}")
                self.status.last_error = str(exc)
                continue
            finally:
                self.status.admitted = False
            if admitted:
                return
        if refused and len(refused) == len(self.queens):
            raise FatalQueenError("every queen refused this provider: " + "; ".join(refused))
        raise _QueensUnreachable("; ".join(errors + refused) or "no queen answered")

    # ------------------------------------------------------------------ one session
    async def _session(self, target: str) -> bool:
        """Run one stream to ``target``. Returns True when it was admitted (and has now ended)."""
        hello = Hello(address=self.identity.address, devices=tuple(self.devices), ray=self.ray,
                      software_version=f"blendrchain/{blendr.__version__}", readiness=self.readiness.current,
                      sandbox=self.cfg.provider.sandbox)
        admitted = False
        async with open_channel(self.cfg, target) as channel:
            stub = pb_grpc.QueenServiceStub(channel)
            call = stub.Connect()
            lock = asyncio.Lock()

            async def send(msg: pb.ProviderMessage) -> None:
                async with lock:
                    await call.write(msg)

            timeout = self.cfg.rpc.call_timeout_s
            hello_pb = convert.hello_to_proto(hello)
            hello_pb.ask_per_gpu_hour = str(self.ask_wei)
            await send(pb.ProviderMessage(hello=hello_pb))
            first = await within(call.read(), timeout)
            if first is grpc.aio.EOF or first.WhichOneof("body") != "admission_challenge":
                await call.code()
                raise UnavailableError(f"queen {target} did not send an admission challenge")
            ch = first.admission_challenge
            sig = self.identity.sign_admission(ch.queen_address, bytes(ch.nonce))
            await send(pb.ProviderMessage(admission_response=pb.AdmissionResponse(signature=sig)))
            second = await within(call.read(), timeout)
            if second is grpc.aio.EOF:
                await self._raise_status(call)
                raise UnavailableError(f"queen {target} closed the stream during admission")
            if second.WhichOneof("body") != "admitted":
                raise UnavailableError(f"queen {target} sent {second.WhichOneof('body')} instead of admitted")
            adm = second.admitted
            admitted = True
            self.status.queen, self.status.admitted = target, True
            self.status.sessions += 1
            if self.metrics:
                self.metrics.sessions.inc()
                self.metrics.connected.set(1)
            log.info("joined queen", queen=target, queen_address=adm.queen_address, resumed=adm.resumed,
                     devices=len(self.devices))
            beat = asyncio.create_task(self._heartbeats(send, adm.heartbeat_interval_seconds))
            # Every job's updates again: whatever the last stream lost reaches this queen.
            self.jobs.attach(update_sink(send))
            try:
                while True:
                    msg = await call.read()
                    if msg is grpc.aio.EOF:
                        break
                    self._handle(msg, send)
                code = await call.code()
                details = await call.details()
                log.warning("queen ended the stream", queen=target, code=code.name, details=details)
                if code is grpc.StatusCode.ABORTED:
                    self._replaced = True
                    log.error("another agent with this provider's key connected to the queen; "
                              "each key must run in one agent only", queen=target)
            except grpc.aio.AioRpcError as exc:
                log.warning("lost the queen", queen=target, code=exc.code().name, details=exc.details())
            finally:
                if self.metrics:
                    self.metrics.connected.set(0)
                self.jobs.detach()
                beat.cancel()
                for t in list(self._tasks):
                    t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
                call.cancel()
        return admitted

    async def _upload_output(self, job_id: str, attempt: int, error: str, spool: Path | None) -> int:
        """Sends one attempt's sealed outputs (or only ``error``) to the current queen (see
        :func:`provider.outputs.upload_output`); UnavailableError when there is no queen session now."""
        target = self.status.queen if self.status.admitted else ""
        if not target:
            raise UnavailableError("no queen session to send the job's outputs through")
        async with open_channel(self.cfg, target) as channel:
            return await upload_output(channel, self.identity.account(), job_id, attempt, error, spool)

    @staticmethod
    async def _raise_status(call: Any) -> None:
        code = await call.code()
        if code is not grpc.StatusCode.OK:
            raise grpc.aio.AioRpcError(code, await call.initial_metadata(), await call.trailing_metadata(),
                                       details=await call.details())

    async def _heartbeats(self, send: Send, interval: float) -> None:
        seq = 0
        interval = max(0.05, interval)
        while True:
            seq += 1
            await send(pb.ProviderMessage(heartbeat=pb.Heartbeat(
                seq=seq, busy_devices=self.jobs.busy_gpus(),
                readiness=convert.readiness_to_proto(self.readiness.current))))
            await asyncio.sleep(interval)

    def _handle(self, msg: pb.QueenMessage, send: Send) -> None:
        kind = msg.WhichOneof("body")
        if kind == "challenge":
            self._spawn(self._on_challenge(msg.challenge, send))
        elif kind == "opening_request":
            self._spawn(self._on_openings(msg.opening_request, send))
        elif kind == "job_start":
            self.jobs.handle_start(job_convert.assignment_from_proto(msg.job_start))
        elif kind == "job_stop":
            self.jobs.handle_stop(job_convert.stop_from_proto(msg.job_stop))
        elif kind == "challenge_result":
            r = msg.challenge_result
            verdict = convert.VERDICT_FROM_PB.get(r.verdict)
            name = verdict.value if verdict else str(r.verdict)
            self.status.results[name] = self.status.results.get(name, 0) + 1
            if self.metrics:
                self.metrics.challenges.labels(verdict=name).inc()
            log.info("challenge result", challenge=r.challenge_id, verdict=name, reason=r.reason,
                     tflops=round(r.reported_tflops, 4))
        else:
            log.warning("unexpected message from queen", kind=kind)

    async def close(self) -> None:
        """Stop the agent's jobs and release their executor (the compute runtime is the caller's)."""
        await self.jobs.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ challenges
    async def _on_challenge(self, m: pb.Challenge, send: Send) -> None:
        self.status.challenges += 1
        try:
            params, timeout_s, wanted = convert.challenge_from_proto(m)
            by_index = {d.index: d for d in self.devices}
            missing = [i for i in wanted if i not in by_index]
            if missing:
                raise InvalidArgumentError(f"challenge names devices {missing} this provider does not have")
            devices = [by_index[i] for i in wanted]
            # A queen has one challenge in flight per provider: whatever an older one still holds is released
            # (its products would take the memory, and on Ray the devices, this one needs).
            for old in list(self._proofs):
                self._release(old)
            started = asyncio.get_running_loop().time()
            proofs = await self.runtime.prove(params, devices, timeout_s)
            if self.metrics:
                self.metrics.challenge_seconds.observe(asyncio.get_running_loop().time() - started)
        except (BlendrError, ChallengeExpiredError) as exc:
            log.warning("cannot answer challenge", challenge=m.challenge_id, error=str(exc))
            await send(pb.ProviderMessage(challenge_error=pb.ChallengeError(challenge_id=m.challenge_id,
                                                                            reason=str(exc)[:500])))
            return
        self._proofs[params.challenge_id] = _Proof(params, {p.device_index: p for p in proofs})
        while len(self._proofs) > KEEP_PROOFS:
            old = next(iter(self._proofs))
            self._release(old)
            self._proofs.pop(old, None)
        await send(pb.ProviderMessage(commitment=pb.Commitment(
            challenge_id=params.challenge_id,
            devices=[pb.DeviceCommitment(device_index=p.device_index, root=p.root, work_seconds=p.work_seconds,
                                         peak_memory_bytes=p.peak_memory_bytes) for p in proofs])))

    async def _on_openings(self, m: pb.OpeningRequest, send: Send) -> None:
        entry = self._proofs.get(m.challenge_id)
        if entry is None:
            log.warning("opening request for an unknown challenge", challenge=m.challenge_id)
            return
        if m.probe_key:
            await self._on_probe(entry, bytes(m.probe_key), send)
            return
        openings = await asyncio.to_thread(self._open, entry, [(r.device_index, r.row) for r in m.rows])
        await send(pb.ProviderMessage(openings=convert.openings_to_proto(m.challenge_id, openings)))
        self._release(m.challenge_id)
        self._proofs.pop(m.challenge_id, None)

    def _release(self, challenge_id: str) -> None:
        """Drop the products a challenge still holds, here and in the runtime (its commitment stays)."""
        entry = self._proofs.get(challenge_id)
        if entry is not None:
            for proof in entry.proofs.values():
                proof.held = []
        self.runtime.release(challenge_id)

    async def _on_probe(self, entry: _Proof, key: bytes, send: Send) -> None:
        """Answer a memory probe from the held products: a second commitment carrying the probe answers."""
        cid = entry.params.challenge_id
        proofs = list(entry.proofs.values())
        try:
            answers = await self.runtime.probe(entry.params, proofs, key)
        except (BlendrError, ChallengeExpiredError) as exc:
            log.warning("cannot answer the memory probe", challenge=cid, error=str(exc))
            await send(pb.ProviderMessage(challenge_error=pb.ChallengeError(challenge_id=cid, reason=str(exc)[:500])))
            return
        await send(pb.ProviderMessage(commitment=pb.Commitment(
            challenge_id=cid,
            devices=[pb.DeviceCommitment(device_index=p.device_index, root=p.root, work_seconds=p.work_seconds,
                                         peak_memory_bytes=p.peak_memory_bytes, probe=a)
                     for p, a in zip(proofs, answers, strict=True)])))

    @staticmethod
    def _open(entry: _Proof, rows: Sequence[tuple[int, int]]) -> list[Any]:
        out: list[Any] = []
        by_dev: dict[int, list[int]] = {}
        for dev, row in rows:
            by_dev.setdefault(dev, []).append(row)
        for dev, wanted in by_dev.items():
            proof = entry.proofs.get(dev)
            if proof is None:
                continue
            tree = entry.trees.get(dev) or proof.tree
            if tree is None:
                tree = MerkleTree.from_row_digests(proof.leaf_digests)
            entry.trees[dev] = tree
            valid = [r for r in wanted if 0 <= r < entry.params.rows]
            out.extend(open_rows(entry.params, dev, tree, valid, proof.probe_digests))
        return out
