"""A job paid with ComputeVoucher GPU-hours end to end: the renter buys vouchers on chain, submits with
``pay="vouchers"`` (what ``blendr job submit --pay vouchers`` does), the king creates the rental with them, the job
runs, settles, and the unused part of the escrow comes back in GPUTOKEN; the wallet shows the vouchers left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blendr.chain.anvil import AnvilProcess
from blendr.chain.contracts import ComputeVoucher, GPUToken
from blendr.client import JobRequest
from tests.e2e.net import ACCOUNTS, FEE_BPS, client, events_until_done, network
from tests.rayhead import RayHead

pytestmark = [pytest.mark.usefixtures("ray_cluster", "snapshot"), pytest.mark.timeout(600)]


async def test_a_job_paid_with_vouchers_settles_and_refunds_tokens(chains: tuple[AnvilProcess, AnvilProcess],
                                                                    deployed: Any, jobs_ray: RayHead, tmp_path: Path,
                                                                    workdir: Path) -> None:
    eth, etc = chains
    renter = ACCOUNTS["renter"]
    rc = client(eth.url, "eth", renter)
    vouchers = ComputeVoucher(rc, deployed.eth.address("ComputeVoucher"))
    token = GPUToken(rc, deployed.eth.address("GPUToken"))
    vid = vouchers.current_class_of("cpu")
    price = int(vouchers.price_of(vid))
    token.approve(vouchers.address, 3 * price)
    vouchers.buy(vid, 3)
    async with network(eth.url, etc.url, deployed, jobs_ray, tmp_path, providers=(("provider1", "queen1"),)) as net:
        before = net.balance(renter.address)
        async with net.renter() as king:
            w = await king.wallet()
            assert [(v.id, v.gpu_model, v.hours) for v in w.vouchers] == [(vid, "cpu", 3)]
            assert w.voucher_contract == vouchers.address
            req = JobRequest(entrypoint="python job.py 3", gpus=1, gpu_model="cpu", hours=1, max_price="3",
                             workdir=workdir, env={"GREETING": "vouchers", "STEP_S": "1"}, pay="vouchers")
            submitted = await king.submit(req)
            assert vouchers.balance_of(renter.address, vid) == 2 or submitted.state == 1
            evs = await events_until_done(king, submitted.job_id)
            final = evs[-1].job
            w = await king.wallet()
        assert final.state == 5 and final.exit_code == 0 and len(final.rentals) == 1, [e.kind for e in evs]
        r = final.rentals[0]
        assert int(r.price_per_gpu_hour) == price and int(r.escrow) == price  # one GPU-hour of vouchers
        paid = int(r.provider_payment) + int(r.fee)
        assert paid == price * r.verified_seconds // 3600 and int(r.fee) == paid * FEE_BPS // 10_000
        assert int(r.refund) == price - paid
        # the vouchers paid; what the rental left unused is below one GPU-hour, so it came back as GPUTOKEN less
        # the redemption fee (a whole unused GPU-hour would have come back as a voucher)
        assert vouchers.balance_of(renter.address, vid) == 2
        rest = int(r.refund)
        assert net.balance(renter.address) - before == rest - rest * vouchers.redeem_fee_bps() // 10_000
        assert [(v.id, v.hours) for v in w.vouchers] == [(vid, 2)]
