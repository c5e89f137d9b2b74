"""``blendr vouchers buy|ls|transfer|redeem`` against ComputeVoucher as ``deploy_devnet`` deploys it (the
reference classes, the default 1 % redemption fee), on real anvil chains."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import ComputeVoucher, GPUToken
from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.identity import NodeIdentity
from blendr.units import tokens
from blendrctl.cli import main

RENTER = Account.from_key(DEV_KEYS[ROLES["renter"]])


@pytest.fixture
def home(tmp_path: Path, deployed: Any) -> tuple[Path, str]:
    h = tmp_path / "renter"
    h.mkdir()
    NodeIdentity.from_key(bytes(RENTER.key)).save(h)
    manifest = tmp_path / "deployment.json"
    deployed.save(manifest)
    return h, str(manifest)


def run(capsys: pytest.CaptureFixture[str], home: tuple[Path, str], *args: str) -> tuple[int, str, str]:
    rc = main(["vouchers", args[0], "--home", str(home[0]), "--deployment", home[1], *args[1:]])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_buy_list_transfer_redeem(capsys: pytest.CaptureFixture[str], home: tuple[Path, str], deployed: Any) -> None:
    eth = ChainClient(ChainSettings("eth", deployed.eth.rpc_url, deployed.eth.chain_id), None)
    token = GPUToken(eth, deployed.eth.address("GPUToken"))
    vouchers = ComputeVoucher(eth, deployed.eth.address("ComputeVoucher"))
    rc, out, _ = run(capsys, home, "ls", "--json")
    assert rc == 0
    listed = {c["gpu_model"]: c for c in json.loads(out)["classes"]}
    assert listed["h100-sxm"]["price_per_gpu_hour_gputoken"] == "2.5" and listed["h100-sxm"]["on_sale"]
    assert json.loads(out)["redeem_fee_bps"] == 100

    before = int(token.balance_of(RENTER.address))
    rc, out, err = run(capsys, home, "buy", "--gpu-model", "h100-sxm", "--hours", "10")
    assert rc == 0, err
    assert "bought 10 GPU-hours of h100-sxm" in out and "for 25 GPUTOKEN" in out
    assert before - int(token.balance_of(RENTER.address)) == tokens(25)
    vid = vouchers.current_class_of("h100-sxm")
    assert vouchers.balance_of(RENTER.address, vid) == 10

    other = Account.create().address
    rc, out, err = run(capsys, home, "transfer", other, "--gpu-model", "h100-sxm", "--hours", "3")
    assert rc == 0, err
    assert vouchers.balance_of(other, vid) == 3 and vouchers.balance_of(RENTER.address, vid) == 7

    before = int(token.balance_of(RENTER.address))
    rc, out, err = run(capsys, home, "redeem", "--id", str(vid), "--hours", "2", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert Decimal(doc["paid_gputoken"]) == Decimal("4.95") and Decimal(doc["fee_gputoken"]) == Decimal("0.05")
    assert int(token.balance_of(RENTER.address)) - before == tokens("4.95")
    rc, out, _ = run(capsys, home, "ls")
    assert rc == 0 and "holds 5 GPU-hours backed by 12.5 GPUTOKEN" in out
    assert int(vouchers.total_backing()) == (5 + 3) * tokens("2.5")

    # refused before any transaction, with the reason
    rc, _, err = run(capsys, home, "buy", "--gpu-model", "h900", "--hours", "1")
    assert rc == 2 and "no class of 'h900' is on sale" in err
    rc, _, err = run(capsys, home, "redeem", "--gpu-model", "h100-sxm", "--hours", "6")
    assert rc == 2 and "holds 5 GPU-hours of class" in err and "fewer than 6" in err
    rc, _, err = run(capsys, home, "transfer", "0x1234", "--gpu-model", "h100-sxm", "--hours", "1")
    assert rc == 2 and "is not an Ethereum address" in err
    rc, _, err = run(capsys, home, "buy", "--gpu-model", "h100-sxm", "--hours", "0")
    assert rc == 2 and "positive whole number" in err
    rc, _, err = run(capsys, home, "buy", "--gpu-model", "h100-sxm", "--hours", "1", "--max-price", "2")
    assert rc == 2 and "above --max-price 2" in err
    # a class id that no uint256 holds is refused as input, not a traceback; an unknown one names the class
    for bad in ("-1", str(2**256)):
        rc, _, err = run(capsys, home, "redeem", "--id", bad, "--hours", "1")
        assert rc == 2 and f"--id {bad} is not a voucher class id" in err
        rc, _, err = run(capsys, home, "transfer", other, "--id", bad, "--hours", "1")
        assert rc == 2 and f"--id {bad} is not a voucher class id" in err
    rc, _, err = run(capsys, home, "redeem", "--id", "999", "--hours", "1")
    assert rc != 0 and "ComputeVoucherUnknownClass" in err
    assert vouchers.balance_of(RENTER.address, vid) == 5
