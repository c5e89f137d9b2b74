"""The provider's compute port: run a challenge on its devices, one task per device.

``RayRuntime`` runs each device's work as a Ray task (``num_gpus=1`` per GPU, pinned to the agent's
custom resource on a shared cluster) with CuPy on a GPU and NumPy otherwise. A local Ray it starts includes
the dashboard, whose job submission API runs renters' jobs (:attr:`RayRuntime.dashboard_address`).
``ThreadRuntime`` runs the same code in threads, for fast unit tests.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from blendr.errors import ChallengeExpiredError, ComputeError
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import DeviceProof, get_array_module, prove_device
from blendr.telemetry import get_logger
from blendr.types import DeviceInfo, DeviceKind, RayInfo

log = get_logger("blendr.provider.compute")


def run_device_proof(params: ChallengeParams, device_index: int, timeout_s: float, use_gpu: bool) -> DeviceProof:
    """One device's share of a challenge, in whatever process runs it (a Ray worker or a thread)."""
    deadline = time.monotonic() + timeout_s
    xp, _ = get_array_module(prefer_gpu=use_gpu)
    return prove_device(params, device_index, xp=xp, deadline=deadline)


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
        self._owns_ray = False

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
                try:
                    # The dashboard serves the job submission API that renters' jobs run through.
                    ctx = ray.init(num_gpus=gpus, resources={self.pin: 1000.0}, namespace="blendr",
                                   include_dashboard=True, log_to_driver=False)
                except ray_errors as exc:
                    raise ComputeError(f"cannot start a local Ray: {type(exc).__name__}: {exc}") from None
                self._owns_ray = True
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
        for d in devices:
            gpu = d.kind is DeviceKind.GPU
            opts: dict[str, Any] = {"num_gpus": 1 if gpu else 0, "num_cpus": 1, "resources": {self.pin: 0.01},
                                    "max_retries": 0}
            refs.append(self._remote.options(**opts).remote(params, d.index, timeout_s, self.use_gpu and gpu))
        gathered = asyncio.gather(*refs)
        # Retrieve the outcome even when the caller is cancelled first (no "never retrieved" noise).
        gathered.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return list(await asyncio.wait_for(gathered, timeout_s + 5.0))
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            for r in refs:
                ray.cancel(r, force=True)
            if isinstance(cause, ChallengeExpiredError):
                raise ChallengeExpiredError(str(cause)) from None
            raise ComputeError(f"challenge task failed: {type(cause).__name__}: {cause}") from None
        except ray.exceptions.RayError as exc:  # a worker crashed or a result was lost: the cluster's fault
            for r in refs:
                ray.cancel(r, force=True)
            raise ComputeError(f"challenge task lost: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            for r in refs:
                ray.cancel(r, force=True)
            raise ChallengeExpiredError(f"challenge {params.challenge_id} passed its deadline") from None

    async def close(self) -> None:
        if self._owns_ray:
            import ray

            await asyncio.to_thread(ray.shutdown)
