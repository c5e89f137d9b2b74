"""The governance parameter registry: complete against the contracts' ABIs, and its bounds and units."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blendr.chain import artifacts
from blendr.chain import govparams as gp
from blendr.errors import InvalidArgumentError
from blendr.units import tokens

ROOT = Path(__file__).resolve().parents[3]
SETTER = re.compile(r"^(set|update)[A-Z]")


def _system_contracts() -> set[str]:
    """Contracts declared in contracts/eth, contracts/etc and contracts/bridge (not mocks, not interfaces)."""
    names: set[str] = set()
    for d in ("eth", "etc", "bridge"):
        for sol in (ROOT / "contracts" / d).glob("*.sol"):
            names |= set(re.findall(r"^contract\s+(\w+)", sol.read_text(), re.M))
    return names


def test_every_governance_setter_in_the_abis_is_registered_or_excused() -> None:
    registered = {(p.contract, p.setter) for p in gp.PARAMS} | set(gp.NOT_PARAMETERS)
    missing = []
    for chain in ("eth", "etc"):
        for path in sorted((artifacts.ARTIFACTS_DIR / chain).glob("*.json")):
            if path.stem not in _system_contracts():
                continue
            for item in artifacts.load(chain, path.stem).abi:
                if item.get("type") == "function" and SETTER.match(item["name"]) and \
                        item.get("stateMutability") not in ("view", "pure") and \
                        (path.stem, item["name"]) not in registered:
                    missing.append(f"{chain} {path.stem}.{item['name']}")
    assert not missing, (f"governance setters missing from blendr/chain/govparams.py: {sorted(set(missing))} "
                         "(register them in PARAMS, or say why not in NOT_PARAMETERS)")


@pytest.mark.parametrize("p", gp.PARAMS, ids=lambda p: p.name)
def test_each_parameter_names_a_real_setter_and_getter(p: gp.Param) -> None:
    abi = {i["name"]: i for i in artifacts.load(p.chain, p.contract).abi if i.get("type") == "function"}
    assert p.setter in abi and len(abi[p.setter]["inputs"]) == len(p.setter_args)
    assert p.getter in abi and len(abi[p.getter]["inputs"]) == len(p.getter_args)
    assert p.name in gp.siblings(p)
    for s in gp.siblings(p):  # siblings share the setter
        assert (gp.BY_NAME[s].contract, gp.BY_NAME[s].setter, gp.BY_NAME[s].chain) == (p.contract, p.setter, p.chain)


def test_names_are_unique() -> None:
    assert len(gp.BY_NAME) == len(gp.PARAMS)


def test_units_parse_what_people_write() -> None:
    assert gp.parse_value(gp.Unit.GPUTOKEN_PER_GPU_HOUR, "2.5", "x") == tokens("2.5")
    assert gp.parse_value(gp.Unit.SECONDS, "2h", "x") == 7200
    assert gp.parse_value(gp.Unit.SECONDS, "7d", "x") == 7 * 86400
    assert gp.parse_value(gp.Unit.SECONDS, "90", "x") == 90
    assert gp.parse_value(gp.Unit.BPS, "2.5%", "x") == 250
    assert gp.parse_value(gp.Unit.BPS, "300", "x") == 300
    a = "0x" + "ab" * 20
    assert gp.parse_value(gp.Unit.ADDRESSES, f"{a}, 0x{a[2:].upper()}", "x") == (
        gp.parse_value(gp.Unit.ADDRESS, a, "x"),) * 2
    for unit, text in ((gp.Unit.BPS, "2.555%"), (gp.Unit.COUNT, "-1"), (gp.Unit.SECONDS, "soon"),
                       (gp.Unit.ADDRESS, "0x12"), (gp.Unit.GPUTOKEN, "-3")):
        with pytest.raises(InvalidArgumentError):
            gp.parse_value(unit, text, "x")


def test_bounds_are_the_contracts() -> None:
    fee = gp.param("rental.fee_bps")
    fee.check(2_000)
    with pytest.raises(InvalidArgumentError, match="out of bounds"):
        fee.check(2_001)
    with pytest.raises(InvalidArgumentError, match="out of bounds"):
        gp.param("verification.challenge_interval").check(9)
    with pytest.raises(InvalidArgumentError, match="unknown governance parameter"):
        gp.param("rental.nonsense")


def test_voting_lengths_are_seconds_with_sensible_bounds() -> None:
    """The governor's clock is timestamps: delay 0 s .. 30 d, period 5 min .. 90 d, written as durations."""
    delay, period = gp.param("governance.voting_delay"), gp.param("governance.voting_period")
    assert delay.unit is period.unit is gp.Unit.SECONDS
    assert gp.parse_value(period.unit, "7d", period.name) == 7 * 86_400
    delay.check(0)
    delay.check(30 * 86_400)
    period.check(300)
    period.check(90 * 86_400)
    for p, bad in ((delay, 30 * 86_400 + 1), (period, 299), (period, 90 * 86_400 + 1)):
        with pytest.raises(InvalidArgumentError, match="out of bounds"):
            p.check(bad)


def test_a_shared_setter_keeps_relations_the_contract_checks() -> None:
    p = gp.param("rental.min_duration")
    assert gp.setter_args(p, {"rental.min_duration": 120, "rental.max_duration": 3600}) == [120, 3600]
    with pytest.raises(InvalidArgumentError, match="must not exceed"):
        gp.setter_args(p, {"rental.min_duration": 7200, "rental.max_duration": 3600})
    t = gp.param("bridge_eth.threshold")
    a = tuple("0x" + f"{i:040x}" for i in (1, 2))
    with pytest.raises(InvalidArgumentError, match="exceeds"):
        gp.setter_args(t, {"bridge_eth.attesters": a, "bridge_eth.threshold": 3})
    s = gp.param("reputation.task_weight_bps")
    vals = {n: 1 for n in gp.siblings(s)}
    with pytest.raises(InvalidArgumentError, match="sum to 10000"):
        gp.setter_args(s, vals)
    assert gp.setter_args(gp.param("staking.min_stake_queen"), {"staking.min_stake_queen": 5}) == [1, 5]


def test_confirmation_depths_are_blocks_in_one_setter_with_the_contracts_bounds() -> None:
    """Both depths live in Governance.setConfirmations(eth, etc): one call sets both (the other at its current
    value); bounds 1..1000 and 1..20000, the contract's constants."""
    eth, etc = gp.param("chain.eth_confirmations"), gp.param("chain.etc_confirmations")
    assert eth.unit is etc.unit is gp.Unit.BLOCKS and eth.chain == etc.chain == "eth"
    assert gp.parse_value(eth.unit, "64", eth.name) == 64 and gp.format_value(eth.unit, 1) == "1 block"
    source = (ROOT / "contracts" / "eth" / "Governance.sol").read_text()
    for p, constant in ((eth, "MAX_ETH_CONFIRMATIONS"), (etc, "MAX_ETC_CONFIRMATIONS")):
        declared = re.search(rf"{constant} = ([\d_]+);", source)
        assert declared is not None and p.hi is not None and int(declared.group(1).replace("_", "")) == p.hi
        p.check(1)
        p.check(p.hi)
        for bad in (0, p.hi + 1):
            with pytest.raises(InvalidArgumentError, match="out of bounds"):
                p.check(bad)
    assert gp.setter_groups([eth.name, etc.name]) == [[eth.name, etc.name]]
    assert gp.setter_args(etc, {eth.name: 12, etc.name: 6_000}) == [12, 6_000]
    with pytest.raises(InvalidArgumentError, match="out of bounds"):
        gp.setter_args(eth, {eth.name: 12, etc.name: 0})
    assert gp.from_chain(etc, [12, 4_000]) == 4_000


def test_the_quarantine_bounds_share_one_setter_with_the_contracts_bounds() -> None:
    """WorkVerification.setQuarantine(window, failures, duration) sets all three (the others at their current
    values), read from quarantine()'s tuple; window 1..1000, failures 0..window, 1 min..30 d."""
    window, failures, seconds = (gp.param(f"verification.quarantine_{n}") for n in ("window", "failures", "s"))
    assert gp.siblings(failures) == [window.name, failures.name, seconds.name]
    assert {p.setter for p in (window, failures, seconds)} == {"setQuarantine"} and failures.chain == "etc"
    assert gp.setter_groups([failures.name, seconds.name]) == [[failures.name, seconds.name]]
    assert gp.from_chain(seconds, [10, 5, 3600]) == 3600 and gp.from_chain(window, (10, 5, 3600)) == 10
    assert gp.parse_value(seconds.unit, "2h", seconds.name) == 7200
    assert gp.setter_args(failures, {window.name: 10, failures.name: 3, seconds.name: 3600}) == [10, 3, 3600]
    assert gp.setter_args(failures, {window.name: 1, failures.name: 0, seconds.name: 60}) == [1, 0, 60]
    gp.setter_args(failures, {window.name: 1_000, failures.name: 1_000, seconds.name: 30 * 86_400})
    with pytest.raises(InvalidArgumentError, match="quarantine_failures must not exceed"):
        gp.setter_args(failures, {window.name: 10, failures.name: 11, seconds.name: 3600})
    for name, bad in ((window.name, 0), (window.name, 1_001), (seconds.name, 59), (seconds.name, 30 * 86_400 + 1)):
        values: dict[str, gp.Value] = {window.name: 10, failures.name: 5, seconds.name: 3600, name: bad}
        with pytest.raises(InvalidArgumentError, match="out of bounds"):
            gp.setter_args(failures, values)
    source = (ROOT / "contracts" / "etc" / "WorkVerification.sol").read_text()
    assert "_MAX_QUARANTINE_WINDOW = 1_000;" in source and "_MIN_QUARANTINE_DURATION = 1 minutes;" in source
    assert "_MAX_QUARANTINE_DURATION = 30 days;" in source
