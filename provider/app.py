"""Wiring of a provider agent process: identity, GPU discovery, Ray runtime, queens."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from blendr.config import Config, ProviderConfig
from blendr.identity import NodeIdentity
from blendr.rpc.server import start_health_only
from blendr.telemetry import Metrics, get_logger
from provider.agent import ProviderAgent, ProviderMetrics
from provider.compute import RayRuntime
from provider.gpus import discover
from provider.jobhost import JobExecutor
from provider.sandbox import Limits

log = get_logger("blendr.provider")


def default_pin(address: str) -> str:
    return f"blendr-provider-{address[2:10].lower()}"


def build_agent(cfg: Config, metrics: Metrics | None = None) -> ProviderAgent:
    """A provider agent from config: loads (or creates) its key and discovers its devices."""
    ident, created = NodeIdentity.load_or_create(cfg.home)
    if created:
        log.info("created provider key", address=ident.address, home=str(cfg.home))
    inv = discover() if cfg.provider.use_gpu else discover(nvml=_NoNVML())
    if inv.cpu_only:
        log.warning("running as a CPU provider", reason=inv.note)
    else:
        log.info("GPUs found", summary=inv.note)
    pin = cfg.provider.ray_resource or default_pin(ident.address)
    runtime = RayRuntime(address=cfg.provider.ray_address, pin_resource=pin, devices=inv.devices,
                         use_gpu=cfg.provider.use_gpu, dashboard=cfg.provider.ray_dashboard)

    def make_executor() -> JobExecutor | None:
        # Built once Ray is up: a local Ray's dashboard address is known only then.
        if not runtime.dashboard_address:
            log.warning("no Ray dashboard: renters' jobs will be refused (pass --ray-dashboard URL)")
            return None
        from provider.envs import EnvCache
        from provider.jobs import JobRunner

        log.info("renter jobs run through the Ray job API", dashboard=runtime.dashboard_address)
        p = cfg.provider
        envs = EnvCache(cfg.home / "envs", install_timeout_s=p.env_install_timeout_s, max_envs=p.env_cache_max,
                        max_bytes=int(p.env_cache_max_gb * 2**30), sandbox=p.sandbox)
        head = runtime.head
        # On the agent's own head (this machine) a job's driver log is deleted from the session when it ends.
        own = head is not None and not p.ray_dashboard
        if p.sandbox == "none":
            log.error("RENTERS' JOBS RUN WITHOUT A SANDBOX (provider.sandbox = \"none\"): a job can read this "
                      "provider's key and files and reach its ports; queens, the king and renters are shown this")
        return JobRunner(dashboard_address=runtime.dashboard_address, home=cfg.home, pin_resource=pin, envs=envs,
                         auth_token=head.token if head is not None else None,
                         session_dir=head.session_dir if own and head is not None else None,
                         sandbox=p.sandbox,
                         job_network=p.job_network, limits=job_limits(p, inv.gpu_count))

    return ProviderAgent(cfg, ident, inv.devices, runtime, cfg.provider.queens,
                         metrics=ProviderMetrics(metrics) if metrics else None, make_executor=make_executor)


def job_limits(p: ProviderConfig, provider_gpus: int) -> Callable[[int], Limits]:
    """A job's limits from its GPU count: the configured ones, or its share of the machine (see the config)."""
    total_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cores = os.cpu_count() or 1

    def limits(gpus: int) -> Limits:
        share = min(1.0, max(gpus, 1) / max(provider_gpus, 1))
        mem = int(p.job_memory_gb * 2**30) if p.job_memory_gb else int(0.8 * total_mem * share)
        cpus = p.job_cpus if p.job_cpus else max(1.0, round(cores * share, 2))
        return Limits(memory_bytes=mem, cpus=cpus, pids=p.job_pids)

    return limits


class _NoNVML:
    """Stands in for pynvml when GPUs are switched off by config: every call fails like a missing driver."""

    def nvmlInit(self) -> None:
        raise RuntimeError("GPUs disabled by provider.use_gpu = false")


async def run_provider(cfg: Config) -> None:
    """Run a provider agent until SIGINT/SIGTERM (or until no queen is reachable for too long)."""
    metrics = Metrics()
    agent = build_agent(cfg, metrics)
    if cfg.metrics.port >= 0:
        port = metrics.start_http_server(cfg.metrics.host, cfg.metrics.port)
        log.info("metrics endpoint", port=port)
    print(f"provider {agent.identity.address}: {len(agent.devices)} device(s): "
          + ", ".join(f"{d.name} [{d.model}]" for d in agent.devices), flush=True)
    probe = await start_health_only(cfg)
    if probe is not None:
        log.info("health endpoint", port=probe.port)
    task = asyncio.create_task(agent.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await agent.close()
        await agent.runtime.close()
        if probe is not None:
            await probe.stop(0)
        metrics.stop_http_server()
