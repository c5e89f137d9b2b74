"""``blendr rewards``: input a person gets wrong is refused with a clear error before any chain or manifest read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from blendrctl.cli import main


@pytest.mark.parametrize("args", [["verify", "-1"], ["claim", "3", "-2"], ["verify", "3.5"]])
def test_an_epoch_is_a_whole_number_not_below_zero(args: list[str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rewards", *args, "--home", str(tmp_path)])
    assert exc.value.code == 2
    assert "EPOCH must be a whole number, 0 or more" in capsys.readouterr().err


@pytest.mark.parametrize("action", [["ls"], ["claim"]])
def test_a_malformed_address_is_named_before_the_manifest_is_looked_for(
        action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tmp_path holds no deployment manifest: the address is what the person must fix first."""
    assert main(["rewards", *action, "--address", "0x12", "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--address '0x12' is not a 20-byte hex address" in err and "manifest" not in err


class _Chain:
    """What blendrctl.rewards reads of RewardsChain: epoch 5 is final here, epoch 6 was published as soon as it
    ended and is not yet at this node's confirmation depth (a deeper ``eth_confirmations`` than the king's)."""

    def __init__(self) -> None:
        from blendr.rewards import RewardKind, Settlement
        from blendr.units import Wei

        self.me = "0x" + "11" * 20
        self.inputs = {5: [Settlement(1, self.me, "0x" + "22" * 20, 1, 3600, Wei(100))]}
        self.kind = RewardKind.RENTER_LOYALTY
        self.claimed: list[int] = []

    def now(self) -> int:
        return 0

    def published_epochs(self) -> list[Any]:
        return [self.published(e, self.kind) for e in (5, 6)]

    def published(self, epoch: int, kind: Any) -> Any:
        from blendr.chain.rewards import Published
        from blendr.rewards import compute
        from blendr.units import Wei

        root = compute(epoch, kind, self.inputs.get(epoch, []), 1000).root if epoch == 5 else b"\x06" * 32
        return Published(epoch, kind, root, Wei(1000), Wei(0))

    def settlements(self, epoch: int) -> list[Any]:
        from blendr.errors import FailedPreconditionError

        if epoch == 6:
            raise FailedPreconditionError("reward epoch 6 ends at unix time 4233600; the confirmed chain is at 0")
        return self.inputs[epoch]

    def compute(self, epoch: int, kind: Any, pool: int, settlements: Any = None) -> Any:
        from blendr.rewards import compute

        return compute(epoch, kind, self.settlements(epoch) if settlements is None else settlements, pool)

    def is_claimed(self, epoch: int, kind: Any, account: str) -> bool:
        return epoch in self.claimed

    def claim_deadline(self, epoch: int, kind: Any) -> int:
        return 10**12

    def cap(self, kind: Any) -> int:
        return 1000

    def claim(self, rewards: Any, account: str) -> Any:
        self.claimed.append(rewards.epoch)
        return {"transactionHash": bytes(32)}


def test_an_epoch_published_before_it_is_final_here_does_not_block_the_others(
        capsys: pytest.CaptureFixture[str]) -> None:
    """ls shows it as not final yet; claim pays the final epochs and says why it left that one."""
    import argparse

    from eth_utils import to_checksum_address

    from blendrctl import rewards as cmd

    chain = _Chain()
    me = to_checksum_address(chain.me)
    assert cmd._ls(chain, me, argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    assert "epoch      5  renter" in out and "claimable" in out
    assert re.search(r"epoch +6 +renter +\? GPUTOKEN  not final at this node's confirmation depth yet", out)
    assert "not final at this node's confirmation depth yet" in out
    assert cmd._ls(chain, me, argparse.Namespace(json=True)) == 0
    rows = json.loads(capsys.readouterr().out)["rewards"]
    assert [(r["epoch"], r["final"], r["amount_gputoken"]) for r in rows] == [(5, True, "0.000000000000001"),
                                                                             (6, False, None)]
    assert cmd._claim(chain, me, argparse.Namespace(json=False, epochs=[])) == 0 and chain.claimed == [5]
    assert cmd._claim(chain, me, argparse.Namespace(json=False, epochs=[6])) == 1
    assert "epoch 6 renter: not final at this node's confirmation depth yet" in capsys.readouterr().err


def test_wallet_rewards_unavailable_is_a_reason_not_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`blendr wallet`'s rewards lines: no manifest, an RPC that refuses, or a chain slower than the bound each
    give ``rewards    unavailable (reason)`` (the wallet's other lines still print)."""
    import threading

    import blendrctl.rewards as rw
    from blendr.config import load_config

    cfg = load_config(tmp_path, overrides={"chain.deployment": str(tmp_path / "absent.json")}, env={})
    r = rw.wallet_rewards(cfg, "0x" + "11" * 20)
    assert "no deployment manifest" in r["unavailable"]
    rw.print_wallet_rewards(r)
    assert capsys.readouterr().out.startswith("rewards    unavailable (no deployment manifest at ")
    assert rw.wallet_rewards_json(r) == {"available": False, "reason": r["unavailable"]}

    release = threading.Event()
    monkeypatch.setattr(rw, "recent_rewards", lambda chain, address: release.wait(30))
    monkeypatch.setattr("blendr.chain.manifest.load_manifest", lambda cfg: _Manifest())
    try:
        r = rw.wallet_rewards(cfg, "0x" + "11" * 20, timeout_s=0.2)
    finally:
        release.set()
    assert r == {"unavailable": "the chain did not answer in 0.2 s"}


class _Manifest:
    """A deployment whose ETH RPC nobody serves (the reader is stubbed before any read)."""

    class eth:  # the attribute the code reads
        deploy_block = 0

        @staticmethod
        def address(name: str) -> str:
            return "0x" + "22" * 20

    def chain(self, name: str) -> Any:
        from blendr.chain.manifest import ChainDeployment

        return ChainDeployment(rpc_url="http://127.0.0.1:9", chain_id=31337, confirmations=1, eip1559=True,
                               contracts={})
