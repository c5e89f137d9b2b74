"""The provider's compute port: run a challenge on its devices, one task per device.

``RayRuntime`` runs each device's work as a Ray task (``num_gpus=1`` per GPU, pinned to the agent's
custom resource on a shared cluster) with CuPy on a GPU and NumPy otherwise. A local Ray it starts includes
the dashboard, whose job submission API runs renters' jobs (:attr:`RayRuntime.dashboard_address`).
``ThreadRuntime`` runs the same code in threads, for fast unit tests.

A local Ray is a head started with ``ray start --head --block`` (:class:`LocalRayHead`) with every port
chosen free at start (GCS, dashboard, dashboard agent HTTP and gRPC, metrics export, runtime env agent, node
and object managers, Ray client; workers on ports the OS picks) and its own temp directory, so several
providers on one machine each get a working job API: ``ray.init()`` cannot set the dashboard agent's port,
and two such Rays fight over the default 52365, the second one admitted with a job API that never answers.
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blendr.errors import ChallengeExpiredError, ComputeError, ProofError
from blendr.ports import free_ports
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import DeviceProof, answer_probe, get_array_module, prove_device
from blendr.telemetry import get_logger
from blendr.types import DeviceInfo, DeviceKind, RayInfo

log = get_logger("blendr.provider.compute")


def run_device_proof(params: ChallengeParams, device_index: int, timeout_s: float, use_gpu: bool) -> DeviceProof:
    """One device's share of a challenge, in whatever process runs it (a Ray worker or a thread).

    With ``params.hold`` the proof keeps its products (``DeviceProof.held``) for the memory probe.
    """
    deadline = time.monotonic() + timeout_s
    xp, _ = get_array_module(prefer_gpu=use_gpu)
    return prove_device(params, device_index, xp=xp, deadline=deadline, hold=params.hold)


class HeldDevice:
    """One device's share of a challenge that holds its products until the memory probe (a Ray actor).

    The products stay in this process (on its GPU); only the commitment and, later, the probe's answer
    leave it. The actor is killed after the probe, or when the challenge is dropped.
    """

    def __init__(self) -> None:
        self._proof: DeviceProof | None = None
        self._params: ChallengeParams | None = None
        self._use_gpu = False

    def prove(self, params: ChallengeParams, device_index: int, timeout_s: float, use_gpu: bool) -> DeviceProof:
        proof = run_device_proof(params, device_index, timeout_s, use_gpu)
        self._proof, self._params, self._use_gpu = proof, params, use_gpu
        # What leaves the actor: the commitment and the tree, not the held products.
        return DeviceProof(proof.device_index, proof.root, proof.leaf_digests, proof.work_seconds,
                           proof.peak_memory_bytes, proof.backend, proof.tree)

    def probe(self, key: bytes) -> tuple[bytes, bytes]:
        """``(block hashes, keyed row digests)``; raises ComputeError when nothing is held."""
        if self._proof is None or self._params is None:
            raise ComputeError("no challenge is held by this device")
        xp, _ = get_array_module(prefer_gpu=self._use_gpu)
        hashes = answer_probe(self._params, self._proof, key, xp=xp)
        digests = self._proof.probe_digests
        self._proof = None
        return hashes, digests


def answer_held_probe(params: ChallengeParams, proof: DeviceProof, key: bytes, use_gpu: bool) -> bytes:
    """The memory probe's answer from a proof held in this process (threads); sets ``proof.probe_digests``."""
    xp, _ = get_array_module(prefer_gpu=use_gpu)
    return answer_probe(params, proof, key, xp=xp)


# How long a local Ray head may take to answer on its dashboard, and how many times a start is retried with
# fresh ports (a port found free can be taken by another process before Ray binds it).
HEAD_START_TIMEOUT_S = 120.0
HEAD_START_ATTEMPTS = 3
_PORT_FLAGS = ("--port", "--dashboard-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
               "--metrics-export-port", "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port",
               "--ray-client-server-port")


def _session_has(sid: int, comm: str) -> bool:
    """Whether a process named ``comm`` runs in session ``sid`` (the head's processes, all under its guard)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1:text.rfind(")")]
        fields = text[text.rfind(")") + 2:].split()
        if name == comm and len(fields) > 3 and fields[3] == str(sid):
            return True
    return False


class LocalRayHead:
    """A Ray head of this provider's own, on 127.0.0.1, in its own process group and temp directory.

    Guarantees: every port of the head is one that was free when it started (never a Ray default), so any
    number of providers on one machine each have a working job API; :meth:`stop` ends every process of the
    head and deletes its temp directory (its session: logs and renters' unpacked working directories); an agent
    that dies without stopping it (SIGKILL) takes the head and its temp directory with it (:mod:`provider.headguard`).
    """

    def __init__(self, *, num_gpus: int, resources: dict[str, float], num_cpus: int | None = None) -> None:
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus
        self.resources = dict(resources)
        self.temp_dir: Path | None = None
        self.gcs_address = ""
        self.dashboard_url = ""
        # Unless the operator chose Ray's auth mode (RAY_AUTH_MODE), the head runs with token authentication
        # and a token of its own; its drivers (this agent) and job API clients must present it.
        self.auth_env: dict[str, str] = {}
        if "RAY_AUTH_MODE" not in os.environ:
            self.auth_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self._proc: subprocess.Popen[bytes] | None = None
        self._agent_alive_w: int | None = None  # the head's guard stops the head on EOF (see provider.headguard)

    @property
    def token(self) -> str | None:
        """The head's own auth token; None when the operator's Ray settings decide (see resolve_auth_token)."""
        return self.auth_env.get("RAY_AUTH_TOKEN")

    @property
    def session_dir(self) -> Path | None:
        """The head's current session directory (``<temp>/session_latest``), once started."""
        return None if self.temp_dir is None else self.temp_dir / "session_latest"

    def start(self) -> None:
        """Start the head and wait for its dashboard (blocking; run it in a thread).

        Raises:
            ComputeError: ``ray start`` failed or the dashboard did not answer in time, on every attempt.
        """
        errors = []
        for _ in range(HEAD_START_ATTEMPTS):
            try:
                self._start_once()
                # A head outlives its agent unless stopped (it runs in its own session): stop it at exit too.
                atexit.register(self.stop)
                return
            except ComputeError as exc:
                errors.append(str(exc))
                self.stop(grace_s=5.0)  # a head that failed to start has nothing worth a long wait
        raise ComputeError(f"cannot start a local Ray head ({HEAD_START_ATTEMPTS} attempts): {errors[-1]}")

    def _start_once(self) -> None:
        # Short: Ray's socket paths live under it and must fit 107 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="blendr-ray-", dir="/tmp"))
        ports = free_ports(len(_PORT_FLAGS))
        # The node's own IP (as ray.init would pick; Ray rewrites 127.0.0.1 to it when connecting), the
        # dashboard on loopback (Ray's default).
        cmd = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
               "--include-dashboard=true", "--disable-usage-stats",
               f"--temp-dir={self.temp_dir}", f"--num-gpus={self.num_gpus}",
               f"--resources={json.dumps(self.resources)}",
               # 0: each worker binds a port the OS picks (the default range is shared by every Ray here).
               "--min-worker-port=0", "--max-worker-port=0",
               *(f"{flag}={port}" for flag, port in zip(_PORT_FLAGS, ports, strict=True))]
        if self.num_cpus is not None:
            cmd.append(f"--num-cpus={self.num_cpus}")
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **self.auth_env)
        out = self.temp_dir / "ray-start.out"
        # The head runs under provider.headguard, which stops it (and deletes its temp directory) when this
        # process goes away in any way, SIGKILL included: EOF on a pipe whose write end only we hold.
        agent_alive_r, self._agent_alive_w = os.pipe()
        guard = [sys.executable, "-m", "provider.headguard", str(agent_alive_r), "--rmtree", str(self.temp_dir),
                 "--", *cmd]
        with out.open("wb") as fh:
            try:
                self._proc = subprocess.Popen(guard, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                              start_new_session=True, pass_fds=(agent_alive_r,))
            except OSError as exc:
                raise ComputeError(f"cannot run {cmd[0]}: {exc}") from None
            finally:
                os.close(agent_alive_r)
        self.gcs_address = f"127.0.0.1:{ports[0]}"
        self.dashboard_url = f"http://127.0.0.1:{ports[1]}"
        self._wait_for_head(out)

    def _wait_for_head(self, out: Path) -> None:
        """Waits until the dashboard answers and the head's node is alive in its GCS (its raylet registered).

        The raylet starts last: one that cannot bind its port (taken between its choice and Ray's start) dies
        while ``ray start --block`` goes on, so a head is not ready until its node is alive. A dead raylet is
        found at once and the start fails (and is tried again on fresh ports), not the first driver.
        """
        import urllib.error
        import urllib.request

        assert self._proc is not None
        deadline = time.monotonic() + HEAD_START_TIMEOUT_S
        from provider.jobs import resolve_auth_token

        try:  # our own token, else the one the operator's Ray settings name (RAY_AUTH_MODE set by them)
            token = self.token or resolve_auth_token()
        except ComputeError:
            token = ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        dashboard = raylet_seen = False
        while True:
            if self._proc.poll() is not None:
                tail = out.read_text(errors="replace")[-2000:]
                raise ComputeError(f"ray start exited with {self._proc.returncode}: {tail}")
            if not dashboard:
                try:
                    # Any HTTP answer (even 401 from a cluster with token auth) means the dashboard is up.
                    with urllib.request.urlopen(self.dashboard_url + "/api/version", timeout=2):
                        dashboard = True
                except urllib.error.HTTPError:
                    dashboard = True
                except OSError:
                    pass
            if dashboard:
                raylet = _session_has(self._proc.pid, "raylet")
                fatal = self._raylet_fatal()
                if fatal or (raylet_seen and not raylet):
                    raise ComputeError(f"the local Ray head's raylet failed: {fatal or self._raylet_tail()}")
                raylet_seen = raylet_seen or raylet
                try:
                    req = urllib.request.Request(self.dashboard_url + "/api/v0/nodes?limit=10", headers=headers)
                    with urllib.request.urlopen(req, timeout=5) as resp:
                        nodes = json.loads(resp.read())["data"]["result"]["result"]
                    if any(n.get("state") == "ALIVE" for n in nodes):
                        return
                except urllib.error.HTTPError as exc:
                    # The operator's auth mode and a token we cannot find: the raylet running with no fatal error
                    # logged is what can be checked.
                    if exc.code in (401, 403) and raylet_seen:
                        return
                except (OSError, ValueError, KeyError, TypeError):
                    pass
            if time.monotonic() > deadline:
                what = (f"the local Ray dashboard at {self.dashboard_url} did not answer" if not dashboard else
                        "the local Ray head's node did not come alive")
                raise ComputeError(f"{what} within {HEAD_START_TIMEOUT_S:.0f} s")
            time.sleep(0.3)

    def _raylet_log(self) -> str:
        try:
            return (self.session_dir / "logs" / "raylet.err").read_text(errors="replace") if self.session_dir else ""
        except OSError:
            return ""

    def _raylet_fatal(self) -> str:
        """The raylet's fatal error line, once it logged one (it lingers for many seconds after, dumping)."""
        for line in self._raylet_log().splitlines():
            if " C " in line[:48] and "(raylet)" in line:  # "[date time,ms C pid tid] (raylet) file:line: ..."
                return line[line.find("Check failed"):][:400] if "Check failed" in line else line[:400]
        return ""

    def _raylet_tail(self) -> str:
        return self._raylet_log().strip()[-300:] or "it exited without an error logged"

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop every process of the head (killed after ``grace_s``) and delete its temp directory. Idempotent;
        blocking."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            # The guard passes SIGTERM on to `ray start --block`, which stops the head's processes; the group
            # kill (the guard leads the group) catches stragglers.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace_s)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        if self._agent_alive_w is not None:
            os.close(self._agent_alive_w)
            self._agent_alive_w = None
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


class ComputeRuntime(abc.ABC):
    """Runs challenge work on a provider's devices."""

    @abc.abstractmethod
    async def start(self) -> RayInfo:
        """Connect to (or start) the compute backend; returns what the agent reports in its hello."""

    @abc.abstractmethod
    async def prove(self, params: ChallengeParams, devices: Sequence[DeviceInfo], timeout_s: float) -> list[DeviceProof]:
        """Prove ``params`` on every device in parallel.

        Raises:
            ChallengeExpiredError: the deadline passed before the work finished.
            ComputeError: the backend failed.
        """

    async def probe(self, params: ChallengeParams, proofs: Sequence[DeviceProof], key: bytes) -> list[bytes]:
        """Answer the memory probe ``key`` of a challenge proved with ``params.hold``: one answer per proof, in
        order; each proof's ``probe_digests`` is set and its held products are released.

        Raises:
            ComputeError: the products are not held (any more) or the backend failed (a runtime that cannot
                hold products always raises it).
        """
        raise ComputeError(f"{type(self).__name__} cannot hold products for a memory probe")

    def release(self, challenge_id: str) -> None:
        """Drop whatever a challenge still holds (it ended without a probe). Idempotent."""
        return None

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the backend."""


class ThreadRuntime(ComputeRuntime):
    """Runs each device's work in a thread of this process (unit tests, no Ray)."""

    def __init__(self, use_gpu: bool = False) -> None:
        self.use_gpu = use_gpu

    async def start(self) -> RayInfo:
        return RayInfo()

    async def close(self) -> None:
        return None

    async def prove(self, params: ChallengeParams, devices: Sequence[DeviceInfo], timeout_s: float) -> list[DeviceProof]:
        return list(await asyncio.gather(*[
            asyncio.to_thread(run_device_proof, params, d.index, timeout_s, self.use_gpu) for d in devices]))

    async def probe(self, params: ChallengeParams, proofs: Sequence[DeviceProof], key: bytes) -> list[bytes]:
        try:
            return list(await asyncio.gather(*[
                asyncio.to_thread(answer_held_probe, params, p, key, self.use_gpu) for p in proofs]))
        except ProofError as exc:
            raise ComputeError(f"cannot answer the memory probe: {exc}") from None

    def release(self, challenge_id: str) -> None:
        return None  # held products live in the proofs, which the agent drops


class RayRuntime(ComputeRuntime):
    """Runs each device's work as a Ray task on the provider's Ray cluster."""

    def __init__(self, *, address: str, pin_resource: str, devices: Sequence[DeviceInfo], use_gpu: bool,
                 dashboard: str = "") -> None:
        """
        Args:
            address: A Ray cluster to join; empty: start a local Ray (with its dashboard).
            dashboard: The cluster's dashboard (job API) URL, when Ray cannot tell (e.g. behind a proxy).
        """
        self.address = address
        self.pin = pin_resource
        self.devices = list(devices)
        self.use_gpu = use_gpu
        # The Ray job submission API of the cluster; "" when it has none (renters' jobs then fail).
        self.dashboard_address = dashboard
        self._remote: Any = None
        self._held_actor: Any = None
        # Actors holding the products of a challenge until its memory probe, by challenge id.
        self._held: dict[str, list[Any]] = {}
        self._owns_ray = False
        # The local head this runtime started (None on a cluster given by address).
        self.head: LocalRayHead | None = None

    def _init(self) -> RayInfo:
        import ray

        gpus = sum(1 for d in self.devices if d.kind is DeviceKind.GPU)
        ctx: Any = None
        if not ray.is_initialized():
            # What ray.init raises: ConnectionError (no cluster there), ValueError (a malformed address),
            # RuntimeError (a version mismatch, a node that fails to start) and Ray's own errors.
            ray_errors = (OSError, RuntimeError, ValueError, ray.exceptions.RayError)
            if self.address:
                try:
                    ctx = ray.init(address=self.address, namespace="blendr", log_to_driver=False)
                except ray_errors as exc:
                    raise ComputeError(f"cannot connect to the Ray cluster at {self.address}: {exc}") from None
            else:
                # The head's dashboard serves the job submission API that renters' jobs run through.
                head = LocalRayHead(num_gpus=gpus, resources={self.pin: 1000.0})
                self.head = head
                head.start()
                # This process is the head's driver: it presents the head's token. Ray reads its auth settings
                # into caches when imported, so they are reloaded after the environment changes.
                os.environ.update(head.auth_env)
                if head.auth_env:
                    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

                    Config.initialize("")
                    AuthenticationTokenLoader.instance().reset_cache()
                try:
                    ctx = ray.init(address=head.gcs_address, namespace="blendr", log_to_driver=False)
                except ray_errors as exc:
                    head.stop()
                    raise ComputeError(f"cannot connect to the local Ray head: {type(exc).__name__}: {exc}") from None
                self._owns_ray = True
                if not self.dashboard_address:
                    self.dashboard_address = head.dashboard_url
        if not self.dashboard_address and ctx is not None:
            from provider.jobs import dashboard_address_from_context

            try:
                self.dashboard_address = dashboard_address_from_context(ctx)
            except ComputeError as exc:
                log.warning("renter jobs cannot run on this Ray cluster", reason=str(exc))
        resources = ray.cluster_resources()
        if resources.get(self.pin, 0) <= 0:
            raise ComputeError(
                f"the Ray cluster has no resource {self.pin!r}: start it with "
                f"--resources '{{\"{self.pin}\": 1000}}', or drop --ray-resource to use a default one"
            )
        if gpus and resources.get("GPU", 0) < gpus:
            raise ComputeError(f"the Ray cluster offers {resources.get('GPU', 0)} GPUs; this provider has {gpus}")
        self._remote = ray.remote(run_device_proof)
        self._held_actor = ray.remote(HeldDevice)
        return RayInfo(ray_version=ray.__version__, num_cpus=float(resources.get("CPU", 0)),
                       num_gpus=float(resources.get("GPU", 0)), pin_resource=self.pin)

    async def start(self) -> RayInfo:
        info = await asyncio.to_thread(self._init)
        await self._warm_up()
        return info

    async def _warm_up(self) -> None:
        """Run a tiny proof on every device so Ray workers (and CuPy) are up before the first challenge.

        A cold worker takes seconds to start; the queen's clock would count that against the device.
        """
        params = ChallengeParams(challenge_id="warm-up", seed=bytes(16), n=16, count=1)
        try:
            await self.prove(params, self.devices, timeout_s=120.0)
        except (ChallengeExpiredError, ComputeError) as exc:
            raise ComputeError(f"the compute runtime cannot run a trivial task: {exc}") from None

    async def prove(self, params: ChallengeParams, devices: Sequence[DeviceInfo], timeout_s: float) -> list[DeviceProof]:
        import ray

        if self._remote is None:
            raise ComputeError("Ray runtime not started")
        refs = []
        actors: list[Any] = []
        for d in devices:
            gpu = d.kind is DeviceKind.GPU
            opts: dict[str, Any] = {"num_gpus": 1 if gpu else 0, "num_cpus": 1, "resources": {self.pin: 0.01}}
            if params.hold:
                # The products must stay on the device after the task: an actor holds them until the probe.
                actor = self._held_actor.options(**opts).remote()
                actors.append(actor)
                refs.append(actor.prove.remote(params, d.index, timeout_s, self.use_gpu and gpu))
                continue
            opts["max_retries"] = 0
            refs.append(self._remote.options(**opts).remote(params, d.index, timeout_s, self.use_gpu and gpu))
        if actors:
            self.release(params.challenge_id)
            self._held[params.challenge_id] = actors
        gathered = asyncio.gather(*refs)
        # Retrieve the outcome even when the caller is cancelled first (no "never retrieved" noise).
        gathered.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return list(await asyncio.wait_for(gathered, timeout_s + 5.0))
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            self._abort(params, refs)
            if isinstance(cause, ChallengeExpiredError):
                raise ChallengeExpiredError(str(cause)) from None
            raise ComputeError(f"challenge task failed: {type(cause).__name__}: {cause}") from None
        except ray.exceptions.RayError as exc:  # a worker crashed or a result was lost: the cluster's fault
            self._abort(params, refs)
            raise ComputeError(f"challenge task lost: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            self._abort(params, refs)
            raise ChallengeExpiredError(f"challenge {params.challenge_id} passed its deadline") from None

    def _abort(self, params: ChallengeParams, refs: Sequence[Any]) -> None:
        """Stop a challenge's work: kill its holding actors, or cancel its tasks."""
        import ray

        if params.hold:
            self.release(params.challenge_id)
            return
        for r in refs:
            ray.cancel(r, force=True)

    async def probe(self, params: ChallengeParams, proofs: Sequence[DeviceProof], key: bytes) -> list[bytes]:
        import ray

        actors = self._held.get(params.challenge_id)
        if actors is None or len(actors) != len(proofs):
            raise ComputeError(f"challenge {params.challenge_id} holds no products (dropped or never held)")
        try:
            answers = await asyncio.gather(*[a.probe.remote(key) for a in actors])
        except ray.exceptions.RayError as exc:
            raise ComputeError(f"memory probe failed: {type(exc).__name__}: {exc}") from None
        finally:
            self.release(params.challenge_id)
        out = []
        for proof, (hashes, digests) in zip(proofs, answers, strict=True):
            proof.probe_digests = digests
            out.append(hashes)
        return out

    def release(self, challenge_id: str) -> None:
        actors = self._held.pop(challenge_id, None)
        if actors:
            import ray

            for a in actors:
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.kill(a)

    async def close(self) -> None:
        for cid in list(self._held):
            self.release(cid)
        if self._owns_ray:
            import ray

            await asyncio.to_thread(ray.shutdown)
        if self.head is not None:
            await asyncio.to_thread(self.head.stop)
