"""The king's Prometheus metrics (``[metrics] port``): read from the running king at each scrape, so they cost nothing
between scrapes and never drift from what the king holds.

``blendr_king_leader`` is what an operator of several kings watches first: exactly one king should report 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily

from blendr.telemetry import get_logger
from king.job import JobState

if TYPE_CHECKING:
    from king.app import KingApp

log = get_logger("blendr.king.metrics")


class KingCollector:
    """Gauges of one king: whether it leads (and at which lease epoch), the queens connected to it, its unfinished
    jobs by state, and what the network offers (providers, free and total GPUs)."""

    def __init__(self, app: Callable[[], KingApp | None]) -> None:
        self._app = app

    def collect(self) -> Iterator[Any]:
        app = self._app()
        if app is None:
            return
        role = app.role
        leader = GaugeMetricFamily("blendr_king_leader", "1 when this king leads (serves every call), else 0")
        leader.add_metric([], 1.0 if role is not None else 0.0)
        yield leader
        epoch = GaugeMetricFamily("blendr_king_lease_epoch",
                                  "the leader lease epoch this king leads at (several kings); 0: not leading or alone")
        epoch.add_metric([], float(app.leadership.epoch) if app.leadership is not None else 0.0)
        yield epoch
        queens = GaugeMetricFamily("blendr_king_queens_connected", "queens with an open session to this king")
        jobs = GaugeMetricFamily("blendr_king_jobs", "unfinished jobs on this king by state", labels=["state"])
        providers = GaugeMetricFamily("blendr_king_offered_providers", "providers offered to renters, by GPU model",
                                      labels=["gpu_model"])
        gpus_free = GaugeMetricFamily("blendr_king_gpus_free", "free GPUs offered to renters, by GPU model",
                                      labels=["gpu_model"])
        gpus_total = GaugeMetricFamily("blendr_king_gpus_total", "GPUs of the offered providers, by GPU model",
                                       labels=["gpu_model"])
        if role is not None:
            queens.add_metric([], float(len(role.hub.sessions)))
            # Read from the scrape's thread while the king's loop runs: a read that collides with a change (a dict
            # resized mid-iteration) leaves these samples out of this scrape rather than reporting false zeros.
            counts: dict[JobState, int] | None = None
            offers: list[Any] = []
            try:
                counts = role.jobs.job_states()
                offers = role.jobs.offers()
            except Exception as exc:  # a scrape must never take the king down
                log.warning("metrics read failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            if counts is not None:
                for state in JobState:
                    if state is not JobState.SETTLED:  # kept until settled; settled jobs are history
                        jobs.add_metric([state.value], float(counts.get(state, 0)))
            for o in offers:
                providers.add_metric([o.gpu_model], float(o.providers))
                gpus_free.add_metric([o.gpu_model], float(o.gpus_free))
                gpus_total.add_metric([o.gpu_model], float(o.gpus_total))
        else:
            queens.add_metric([], 0.0)
        yield from (queens, jobs, providers, gpus_free, gpus_total)
