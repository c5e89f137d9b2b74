"""The king's metrics, read at scrape time (king.metrics), rendered by a real prometheus_client registry."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from blendr.telemetry import Metrics
from king.job import JobState
from king.metrics import KingCollector
from king.scheduler import ModelOffer


def scrape(app: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    m = Metrics()
    m.registry.register(KingCollector(lambda: app))
    out = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def leading_app(*, epoch: int | None, fail: bool = False) -> Any:
    def job_states() -> dict[JobState, int]:
        if fail:
            raise RuntimeError("store gone")
        return {JobState.QUEUED: 3, JobState.RUNNING: 2}

    offers = [ModelOffer("H100", providers=2, gpus_free=5, gpus_total=16, min_ask_per_gpu_hour=1,
                         quote_per_gpu_hour=2, best_reputation=90)]
    role = SimpleNamespace(hub=SimpleNamespace(sessions={"0xq1": 1, "0xq2": 2}),
                           jobs=SimpleNamespace(job_states=job_states, offers=lambda: offers))
    return SimpleNamespace(role=role, leadership=None if epoch is None else SimpleNamespace(epoch=epoch))


def test_a_leading_king_reports_its_jobs_queens_and_offers() -> None:
    got = scrape(leading_app(epoch=7))
    assert got[("blendr_king_leader", ())] == 1
    assert got[("blendr_king_lease_epoch", ())] == 7
    assert got[("blendr_king_queens_connected", ())] == 2
    assert got[("blendr_king_jobs", (("state", "queued"),))] == 3
    assert got[("blendr_king_jobs", (("state", "running"),))] == 2
    assert got[("blendr_king_jobs", (("state", "scheduled"),))] == 0
    assert ("blendr_king_jobs", (("state", "settled"),)) not in got
    assert got[("blendr_king_gpus_free", (("gpu_model", "H100"),))] == 5
    assert got[("blendr_king_gpus_total", (("gpu_model", "H100"),))] == 16
    assert got[("blendr_king_offered_providers", (("gpu_model", "H100"),))] == 2


def test_a_follower_reports_zero_and_a_king_alone_epoch_zero() -> None:
    follower = scrape(SimpleNamespace(role=None, leadership=SimpleNamespace(epoch=0)))
    assert follower[("blendr_king_leader", ())] == 0
    assert follower[("blendr_king_queens_connected", ())] == 0
    assert not any(name == "blendr_king_jobs" for name, _ in follower)
    assert scrape(leading_app(epoch=None))[("blendr_king_lease_epoch", ())] == 0


def test_a_failing_read_still_answers_the_scrape() -> None:
    got = scrape(leading_app(epoch=1, fail=True))
    assert got[("blendr_king_leader", ())] == 1
    # the jobs it could not read are left out, not reported as zero
    assert not any(name == "blendr_king_jobs" for name, _ in got)
