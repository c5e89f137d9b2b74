"""Genesis beneficiaries from `[network.NAME]` keys and `blendr chain deploy` flags: parsed, or refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from blendr.chain.deploy import DeployParams, Grant
from blendr.chain.networks import load_network, parse_grants
from blendr.config import load_config
from blendr.errors import ConfigError
from blendr.units import tokens

A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def test_grants_parse_whole_shares_and_amounts() -> None:
    assert parse_grants([A.lower()], "team") == [Grant(A, None)]
    assert parse_grants([f"{A}=1000000.5", f" {B} = 2 "], "investors") == [
        Grant(A, tokens("1000000.5")), Grant(B, tokens(2))]


@pytest.mark.parametrize(("entries", "message"), [
    ([], "team: no genesis beneficiary"),
    (["0x1234"], "not an Ethereum address"),
    ([f"{A}=lots"], "must be a number of GPUTOKEN"),
    ([f"{A}=0"], "must be positive"),
    ([7], "expected"),
])
def test_bad_grants_are_refused_with_the_key_named(entries: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        parse_grants(entries, "team")
    assert str(exc.value).startswith("team")


def test_genesis_amounts_resolve_whole_shares_and_refuse_what_does_not_fit() -> None:
    p = DeployParams(treasury=A, scheduler=A, attesters=[A], threshold=1, guardian=A, team=[Grant(A)],
                     investors=[Grant(A, tokens(10_000_000)), Grant(B, tokens(5_000_000))], advisors=[Grant(B)])
    got = p.genesis_amounts()
    assert got == {"team": [(A, tokens(15_000_000))],
                   "investors": [(A, tokens(10_000_000)), (B, tokens(5_000_000))],
                   "advisors": [(B, tokens(5_000_000))]}
    p.investors.append(Grant(A, 1))
    with pytest.raises(ConfigError, match="above the investors share"):
        p.genesis_amounts()


def test_network_genesis_keys_are_checked_when_loaded(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, env={})
    base = f"""[network.x]
eth_rpc_url = "http://127.0.0.1:1"
eth_chain_id = 1
etc_rpc_url = "http://127.0.0.1:2"
etc_chain_id = 61
key_file = "k"
treasury = "{A}"
scheduler = "{A}"
attesters = ["{A}"]
threshold = 1
guardian = "{A}"
"""
    (tmp_path / "config.toml").write_text(base)  # genesis keys may come from flags instead
    assert load_network(cfg, "x").team == []
    (tmp_path / "config.toml").write_text(base + f'team = ["{A}=abc"]\n')
    with pytest.raises(ConfigError, match=r"\[network.x\] team"):
        load_network(cfg, "x")
    (tmp_path / "config.toml").write_text(base + f'team = "{A}"\n')
    with pytest.raises(ConfigError, match="team: expected list"):
        load_network(cfg, "x")
    # the depths become Governance's: its bounds (1..1000 on ETH, 1..20000 on ETC) are checked before any transaction
    (tmp_path / "config.toml").write_text(base)
    net = load_network(cfg, "x")
    assert (net.eth_confirmations, net.etc_confirmations) == (12, 4000)
    for depths in ("eth_confirmations = 0", "eth_confirmations = 1001", "etc_confirmations = 20001"):
        (tmp_path / "config.toml").write_text(base + depths + "\n")
        with pytest.raises(ConfigError, match=r"\[network.x\]: .*_confirmations .* out of bounds"):
            load_network(cfg, "x")
    (tmp_path / "config.toml").write_text(base + "eth_confirmations = 1000\netc_confirmations = 20000\n")
    net = load_network(cfg, "x")
    assert (net.eth_confirmations, net.etc_confirmations) == (1000, 20000)
