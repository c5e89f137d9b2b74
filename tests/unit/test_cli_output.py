"""What the renter's commands print: --json in one form per unit, durations, a reader that goes away, and
the follow view's state beside each event."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from blendr.errors import InvalidArgumentError
from blendr.units import parse_duration
from blendrctl.jsonout import to_json
from protos.blendr.v1 import renter_pb2 as rpb


def test_json_says_amounts_in_gputoken_and_ids_in_hex_in_every_renter_message() -> None:
    job = rpb.Job(job_id="j-1", state=rpb.JOB_STATE_SETTLED, cost_so_far="450000000000000001",
                  spec=rpb.JobSpec(gpus=2, max_price_per_gpu_hour="450000000000000000"),
                  rentals=[rpb.RentalSummary(rental_id=bytes(range(32)), escrow=str(10**18), fee="1",
                                             provider_payment="0", refund="")])
    d = to_json(job)
    assert d["state"] == "settled" and d["spec"]["max_price_per_gpu_hour_gputoken"] == "0.45"
    assert d["cost_so_far_gputoken"] == "0.450000000000000001"  # exact to the wei
    r = d["rentals"][0]
    assert r["rental_id"] == "0x" + bytes(range(32)).hex()
    assert (r["escrow_gputoken"], r["fee_gputoken"], r["refund_gputoken"]) == ("1", "0.000000000000000001", "0")
    assert not any(k in d for k in ("cost_so_far", "rentals_gputoken")) and "escrow" not in r
    offer = to_json(rpb.Offer(gpu_model="h100-sxm", min_ask_per_gpu_hour="2500000000000000000",
                              quote_per_gpu_hour="3000000000000000000"))
    assert (offer["min_ask_per_gpu_hour_gputoken"], offer["quote_per_gpu_hour_gputoken"]) == ("2.5", "3")
    wallet = to_json(rpb.Wallet(address="0xabc", balance="1000000000000000000000", allowance="0", in_escrow="5"))
    assert wallet["balance_gputoken"] == "1000" and Decimal(wallet["in_escrow_gputoken"]) == Decimal("5e-18")
    event = to_json(rpb.JobEvent(seq=3, kind=rpb.JOB_EVENT_KIND_RENTAL_CREATED, state=rpb.JOB_STATE_SCHEDULED))
    assert (event["kind"], event["state"], event["job"]) == ("rental_created", "scheduled", None)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("30min", 1800),
                                               ("2h", 7200), ("1.5h", 5400), ("1d", 86400)])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "soon", "h", "inf", "nan", ""])
def test_a_bad_duration_is_refused_naming_it(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="--max-wait"):
        parse_duration(text, "--max-wait")


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`blendr job list | head -1`: no BrokenPipeError traceback, status 141 (128 + SIGPIPE)."""
    code = ("import sys\nfrom blendrctl import cli\n"
            "def fake(argv):\n    for i in range(20000):\n        print('job', i, 'x' * 60)\n    return 0\n"
            "cli._main = fake\nsys.exit(cli.main([]))\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    assert p.stdout.readline().startswith(b"job 0 ")
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 141
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_the_follow_view_shows_the_state_each_event_left_the_job_in(capsys: pytest.CaptureFixture[str]) -> None:
    from blendrctl.renter import _follow

    now = rpb.Job(job_id="j-1", state=rpb.JOB_STATE_SETTLED, last_seq=3)  # the job as it is now
    events = [SimpleNamespace(kind="queued", message="waiting for a provider", progress=-1.0, job=now,
                              state="queued", seq=1),
              SimpleNamespace(kind="scheduled", message="placed on provider 0xP", progress=-1.0, job=now,
                              state="scheduled", seq=2),
              SimpleNamespace(kind="settled", message="every rental of the job is settled", progress=-1.0, job=now,
                              state="settled", seq=3)]

    class King:
        async def watch(self, job_id: str, after: int) -> Any:
            for ev in events:
                yield ev

    asyncio.run(_follow(King(), "j-1", show_logs=True))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[queued   ] queued ")
    assert lines[1].startswith("[scheduled] scheduled ")
    assert lines[2].startswith("[settled  ] settled ")


def test_wallet_shows_vouchers_and_the_fee_burn(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`blendr wallet` lists the ComputeVoucher GPU-hours held and the burn totals (Wallet fields 10-14)."""
    from blendrctl.renter import _wallet

    w = rpb.Wallet(address="0xabc", balance="0", allowance="0", in_escrow="0", voucher_contract="0xv",
                   vouchers=[rpb.VoucherHolding(id=3, gpu_model="h100-sxm", price_per_gpu_hour=str(25 * 10**17),
                                                hours=4)],
                   fees_burned=str(12 * 10**17), fees_burn_pending="5", fee_burn_bps=2000)

    class King:
        async def wallet(self) -> Any:
            return w

    from blendr.config import load_config

    cfg = load_config(tmp_path, env={})  # no deployment here: the rewards line says they are unavailable
    assert asyncio.run(_wallet(King(), SimpleNamespace(json=False), cfg)) == 0
    out = capsys.readouterr().out
    assert "rewards    unavailable" in out
    assert "vouchers   4 GPU-hours of h100-sxm (class 3, backed by 10 GPUTOKEN)" in out
    assert "fee burn   20 % of every protocol fee; 1.2 GPUTOKEN burned so far" in out
    assert asyncio.run(_wallet(King(), SimpleNamespace(json=True), cfg)) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["vouchers"][0]["price_per_gpu_hour_gputoken"] == "2.5" and d["fees_burned_gputoken"] == "1.2"
    assert d["fees_burn_pending_gputoken"] == "0.000000000000000005" and d["fee_burn_bps"] == 2000
