"""Jobs paid with ComputeVoucher GPU-hours, through KingCore over the fake GPURental (tests/fakes): intake checks
the renter's voucher signature, class, price and holdings; the rental is created with the vouchers and settles
like any other, the unused whole GPU-hours refunded as vouchers (the rest as GPUTOKEN less the redemption fee)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from blendr.chain.contracts import candidates_root
from blendr.errors import FailedPreconditionError, InvalidArgumentError
from blendr.jobspec import Spec, spec_hash
from king.job import JobState, SignedIntent, Submission, rental_intent
from king.pricing import tokens
from tests.fakes.rental_chain import CHAIN_ID, REDEEM_FEE_BPS, RENTAL_ADDRESS, SCHEDULER
from tests.unit.king.test_king_core import MODEL, P1, P2, P3, Net

CLASS = 7
PRICE = tokens("2.5")


@pytest.fixture
async def net() -> Net:
    n = Net()
    n.chain.voucher_prices[CLASS] = PRICE
    n.chain.voucher_models[CLASS] = MODEL
    n.chain.vouchers[(n.renter.address, CLASS)] = 5
    await n.start()
    return n


def voucher_submission(net: Net, *, voucher_id: int = CLASS, signed_for: int | None = None, gpus: int = 2,
                       duration_s: int = 3600, max_price: int = PRICE, request_id: str = "req-vouchers-000001",
                       gpu_model: str = MODEL) -> Submission:
    spec = Spec(gpus=gpus, duration_s=duration_s, max_price_per_gpu_hour=max_price, gpu_model=gpu_model)
    ct = os.urandom(300)
    sh = spec_hash(spec, ct)
    providers = (P1, P2, P3)
    root = candidates_root(providers)
    signed = []
    for _ in range(2):
        nonce, deadline = int.from_bytes(os.urandom(32), "big"), int(net.clock.time()) + 86400
        intent = rental_intent(net.renter.address, spec, sh, nonce, deadline, root, SCHEDULER)
        sig = intent.sign_vouchers(net.renter, CHAIN_ID, RENTAL_ADDRESS, voucher_id if signed_for is None else signed_for)
        signed.append(SignedIntent(nonce, deadline, sig))
    return Submission(request_id, "vouchers", spec, sh, tuple(signed), None, ct,
                      {p: os.urandom(120) for p in providers}, voucher_id=voucher_id)


async def test_a_job_paid_with_vouchers_burns_them_and_refunds_the_unused_hours_as_vouchers(net: Net) -> None:
    tokens_before = net.chain.balances[net.renter.address]
    job = await net.core.submit(net.renter.address, voucher_submission(net))
    assert job.voucher_id == CLASS
    await net.core.placer.run_pass()
    job = net.job(job.job_id)
    assert job.state == JobState.SCHEDULED and len(job.rentals) == 1
    assert net.chain.vouchers[(net.renter.address, CLASS)] == 3  # 2 GPUs x 1 hour
    r = job.rentals[0]
    assert r.price == PRICE and r.escrow == 2 * PRICE
    assert net.chain.balances[net.renter.address] == tokens_before  # no GPUTOKEN was drawn
    net.event(job.job_id, "running", 1)
    net.clock.advance(900)
    net.event(job.job_id, "succeeded", 2)
    await net.settle_ended()
    job = net.job(job.job_id)
    assert job.state == JobState.SETTLED
    r = job.rentals[0]
    assert r.provider_payment + r.fee == 2 * PRICE * 900 // 3600
    # the unused 1.5 GPU-hours: one comes back as a voucher, the half hour as GPUTOKEN less the redemption fee
    assert r.refund == 2 * PRICE - 2 * PRICE * 900 // 3600 == PRICE + PRICE // 2
    assert net.chain.vouchers[(net.renter.address, CLASS)] == 3 + 1
    rest = PRICE // 2
    assert net.chain.balances[net.renter.address] - tokens_before == rest - rest * REDEEM_FEE_BPS // 10_000
    assert "as class" in job.reason and "vouchers for whole GPU-hours" in job.reason
    assert net.chain.escrow_ok()


async def test_the_job_terms_keep_the_voucher_class_across_a_restart(net: Net) -> None:
    job = await net.core.submit(net.renter.address, voucher_submission(net))
    await net.restart()
    assert net.job(job.job_id).voucher_id == CLASS
    await net.core.placer.run_pass()
    assert net.chain.vouchers[(net.renter.address, CLASS)] == 3


@pytest.mark.parametrize(("change", "error", "words"), [
    ({"signed_for": CLASS + 1}, InvalidArgumentError, "is not signed by the renter"),
    ({"voucher_id": 99}, InvalidArgumentError, "does not exist"),
    ({"max_price": PRICE + 1}, InvalidArgumentError, r"has their price as its max price: 2.5/h, not 2.500000000000000001/h"),
    ({"duration_s": 1800, "gpus": 1}, InvalidArgumentError, "whole GPU-hours"),
    ({"gpus": 6}, FailedPreconditionError, "fewer than the 6 this job needs"),
])
async def test_intake_refuses_a_voucher_job_that_cannot_be_paid(net: Net, change: dict[str, int],
                                                                 error: type[Exception], words: str) -> None:
    sub = voucher_submission(net, **change)
    with pytest.raises(error, match=words):
        await net.core.submit(net.renter.address, sub)
    assert not net.chain.rentals


async def test_a_plain_token_signature_is_not_a_voucher_payment(net: Net) -> None:
    """Intents signed for GPUTOKEN escrow cannot be charged to the renter's vouchers."""
    plain = net.submission(max_price=PRICE, gpus=2)
    with pytest.raises(InvalidArgumentError, match="is not signed by the renter"):
        await net.core.submit(net.renter.address, replace(plain, voucher_id=CLASS))


async def test_vouchers_gone_by_the_time_of_the_rental_fail_the_job_with_the_reason(net: Net) -> None:
    """Checked at intake, the vouchers may be transferred away before a provider is found: the create reverts
    and the job fails (nothing was drawn) with what to do."""
    job = await net.core.submit(net.renter.address, voucher_submission(net))
    net.chain.vouchers[(net.renter.address, CLASS)] = 1  # sold meanwhile
    await net.core.placer.run_pass()
    job = net.job(job.job_id)
    assert job.state == JobState.FAILED and "too few vouchers" in job.reason and not job.rentals
    assert not net.chain.rentals and net.chain.escrow_ok()


@pytest.mark.parametrize("gpu_model", ["a100-80gb", ""])
async def test_vouchers_pay_only_for_their_own_gpu_model(net: Net, gpu_model: str) -> None:
    """A voucher is a GPU-hour of its class's model: a job for another model, or for any model, cannot be paid
    with it (a hostile client could otherwise spend, say, A100 hours on whatever GPU asks no more)."""
    net.chain.voucher_models[CLASS] = "h100-sxm-other"
    with pytest.raises(InvalidArgumentError, match="vouchers of class 7 are GPU-hours of h100-sxm-other"):
        await net.core.submit(net.renter.address, voucher_submission(net))
    net.chain.voucher_models[CLASS] = MODEL
    with pytest.raises(InvalidArgumentError, match=f"vouchers of class 7 are GPU-hours of {MODEL}"):
        await net.core.submit(net.renter.address, voucher_submission(net, gpu_model=gpu_model))
    assert not net.chain.rentals
