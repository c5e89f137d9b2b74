"""The king obeys GPURental's governance parameters: quote bounds and rental limits, re-read on change."""

from __future__ import annotations

import pytest

from blendr.errors import InvalidArgumentError
from blendr.jobspec import Spec
from blendr.store import MemoryStore
from king.core import KingCore
from king.pricing import Pricer, PricingParams, tokens
from king.rentals import RentalParams
from king.scheduler import PoolSnapshot, ProviderOffer, Scheduler
from tests.fakes.queens import FakeClock


class Chain:
    chain_id, rental_address, token_address = 31337, "0x" + "11" * 20, "0x" + "22" * 20

    def __init__(self) -> None:
        self.p = RentalParams(60, 86400, 8, tokens("0.01"), tokens("50"))

    def params(self) -> RentalParams:
        return self.p


class Queens:
    def connected(self, queen: str) -> bool:
        return True

    def assign(self, queen: str, a: object) -> bool:
        return True

    def stop(self, queen: str, job_id: str, attempt: int, reason: str) -> bool:
        return True


async def test_quotes_follow_the_governance_bounds_and_specs_the_rental_limits() -> None:
    chain = Chain()
    sched = Scheduler(Pricer(PricingParams(base_per_gpu_hour={"h100-sxm": tokens("2.5")}, surge=0.0)))
    jobs = KingCore(MemoryStore(), FakeClock(1_000_000.0), sched, chain, Queens())  # type: ignore[arg-type]
    await jobs.prepare()
    sched.update_pool(PoolSnapshot("0xQ", (ProviderOffer("0xP", "0xQ", "h100-sxm", 8, 80 * 2**30, 60.0,
                                                         tokens("0.1"), 5000, 1.0),), 1))
    spec = Spec(gpus=1, duration_s=3600, max_price_per_gpu_hour=tokens("10"), gpu_model="h100-sxm")
    assert jobs.quote(spec).price == tokens("2.5")
    chain.p = RentalParams(60, 86400, 8, tokens("0.01"), tokens("2"))  # governance lowers the ceiling
    await jobs.prepare()
    assert jobs.quote(spec).price == tokens("2")
    with pytest.raises(InvalidArgumentError, match="gpus must be at most 8"):
        jobs.quote(Spec(gpus=9, duration_s=3600, max_price_per_gpu_hour=tokens("10")))
    with pytest.raises(InvalidArgumentError, match="duration must be between 1 min and 24 h"):
        jobs.quote(Spec(gpus=1, duration_s=30, max_price_per_gpu_hour=tokens("10")))
