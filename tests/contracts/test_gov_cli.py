"""``blendr gov`` against a deployment made with the production defaults of ``blendr chain deploy``.

Deploys with ``deploy_system`` + ``hand_over`` and the defaults of :class:`DeployParams` (100M GPUTOKEN in the
distributor, 4 % quorum, a 10000-GPUTOKEN proposal threshold, a 1-day voting delay, a 7-day vote, a 2-day
timelock: nothing shrunk, the chain's clock is moved through each wait), gives one voter its votes (the team
beneficiary's vesting wallet, from genesis), and drives a holder's whole session through the CLI: params, propose (an ETH and
an ETC parameter), show, vote, queue, execute, the bridge delivery; and every refusal before a transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from blendr.chain import artifacts
from blendr.chain.bridge import BridgeMessage, attest, ordered
from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import BridgeInbox, bridge_call
from blendr.chain.deploy import DeployParams, Grant, deploy_system, hand_over
from blendr.chain.governing import Governor
from blendr.chain.manifest import Manifest
from blendr.errors import FailedPreconditionError
from blendr.identity import NodeIdentity
from blendrctl.cli import main
from tests.contracts.chainkit import DEV_KEYS, increase_time, mine

ACCT = [Account.from_key(k) for k in DEV_KEYS]
DEPLOYER, KING, QUEENS, VOTER, NOBODY = ACCT[0], ACCT[1], ACCT[2:5], ACCT[6], ACCT[8]
DEFAULTS = DeployParams(treasury=ACCT[7].address, scheduler=KING.address,
                        attesters=sorted((q.address for q in QUEENS), key=lambda a: int(a, 16)), threshold=2,
                        guardian=DEPLOYER.address,
                        team=[Grant(VOTER.address)], investors=[Grant(ACCT[5].address)],
                        advisors=[Grant(ACCT[9].address)])  # VOTER votes the team's vesting share from genesis


def _client(w3: Web3, chain: str, account: Any = None) -> ChainClient:
    url = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    return ChainClient(ChainSettings(chain, url, int(w3.eth.chain_id), eip1559=chain == "eth", poll_s=0.01), account)


@pytest.fixture(scope="module")
def deployed(eth_session: Web3, etc_session: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    snaps = [w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
             for w3 in (eth_session, etc_session)]
    eth, etc = _client(eth_session, "eth", DEPLOYER), _client(etc_session, "etc", DEPLOYER)
    m = deploy_system(eth, etc, DEFAULTS, network="test", echo=lambda s: None)
    hand_over(eth, etc, m, echo=lambda s: None)
    yield m
    for w3, snap in zip((eth_session, etc_session), snaps, strict=True):
        w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


def _home(tmp_path: Path, m: Manifest, who: Any) -> Path:
    home = tmp_path / who.address[:10]
    m.save(home / "deployment.json")
    NodeIdentity.from_key(bytes(who.key)).save(home)
    return home


class Cli:
    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.home, self.capsys = home, capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["gov", argv[0], "--home", str(self.home), *argv[1:]])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


def test_params_lists_every_parameter_with_its_value_on_chain(deployed: Manifest, eth: Web3, etc: Web3,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from blendr.chain import govparams as gp

    cli = Cli(_home(tmp_path, deployed, NOBODY), capsys)
    rows = {r["name"]: r for r in cli.json("params")}
    assert list(rows) == [p.name for p in gp.PARAMS]
    assert rows["verification.challenge_interval"] == {**rows["verification.challenge_interval"],
                                                        "value": str(DEFAULTS.challenge_interval_s), "chain": "etc"}
    assert int(rows["staking.min_stake_queen"]["value"]) == DEFAULTS.min_stake_queen
    # the quarantine bounds a fresh WorkVerification starts with (the queens' former config defaults)
    assert [rows[f"verification.quarantine_{n}"]["value"] for n in ("window", "failures", "s")] == ["10", "5", "3600"]
    assert int(rows["governance.voting_period"]["value"]) == DEFAULTS.voting_period_s == 7 * 86_400
    assert int(rows["timelock.min_delay"]["value"]) == DEFAULTS.timelock_delay_s
    assert rows["bridge_etc.attesters"]["value"] == DEFAULTS.attesters
    # the nodes' depths, deployed from the deployer's client settings (1 here; a network's config: 12 and 4000)
    assert {n: (rows[n]["value"], rows[n]["contract"], rows[n]["chain"]) for n in gp.DEPTHS.values()} == {
        "chain.eth_confirmations": ("1", "Governance", "eth"), "chain.etc_confirmations": ("1", "Governance", "eth")}
    code, out, _ = cli("params")
    assert code == 0 and "verification.challenge_interval" in out and "10 s .. 1 d" in out
    assert "1 block .. 1000 blocks" in out and "1 block .. 20000 blocks" in out
    gov = eth.eth.contract(address=deployed.eth.address("Governance"), abi=artifacts.load("eth", "Governance").abi)
    assert gov.functions.quorumDenominator().call() == 100, (
        "govparams' governance.quorum is a percentage (bounds 0..100, shown as %): update its unit and bounds")


def test_bad_input_is_refused_before_any_transaction(deployed: Manifest, eth: Web3, etc: Web3, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(_home(tmp_path, deployed, NOBODY), capsys)
    nonce = eth.eth.get_transaction_count(NOBODY.address)
    code, _, err = cli("propose", "--set", "rental.fee_bsp=300", "--description", "typo")
    assert code == 2 and "unknown governance parameter 'rental.fee_bsp'" in err
    code, _, err = cli("propose", "--set", "rental.fee_bps=2001", "--description", "too high")
    assert code == 2 and "out of bounds" in err and "2000 bps" in err
    code, _, err = cli("propose", "--set", "rental.min_duration=400d", "--description", "min above max")
    assert code == 2 and "out of bounds" in err
    code, _, err = cli("propose", "--set", "verification.quarantine_failures=11", "--description", "above window")
    assert code == 2 and "verification.quarantine_failures must not exceed verification.quarantine_window" in err
    for bad in ("chain.eth_confirmations=0", "chain.etc_confirmations=20001", "chain.eth_confirmations=1001"):
        code, _, err = cli("propose", "--set", bad, "--description", "depth out of bounds")
        assert code == 2 and "out of bounds" in err and "blocks" in err, err
    code, _, err = cli("propose", "--set", "rental.fee_bps", "--description", "no value")
    assert code == 2 and "NAME=VALUE" in err
    code, _, err = cli("propose", "--set", "rental.fee_bps=300", "--description", "no votes")
    assert code == 1 and "fewer than the 10000 needed to propose" in err
    code, _, err = cli("vote", "12345", "for")
    assert code == 1 and "no proposal 12345" in err
    assert eth.eth.get_transaction_count(NOBODY.address) == nonce  # nothing was sent


def _relay(etc: Web3, m: Manifest, msg: BridgeMessage) -> None:
    inbox = BridgeInbox(_client(etc, "etc", ACCT[9]), m.etc.address("BridgeInbox"))
    inbox.deliver(msg, ordered({q.address: attest(q, msg, inbox.address) for q in QUEENS[:2]}))


def test_a_holders_session_changes_an_eth_and_an_etc_parameter(deployed: Manifest, eth: Web3, etc: Web3,
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(_home(tmp_path, deployed, VOTER), capsys)
    p = cli.json("propose", "--set", "rental.fee_bps=3%", "--set", "verification.challenge_interval=1m",
                 "--set", "rental.max_quote=40", "--set", "verification.quarantine_failures=3",
                 "--description", "Fee 3%, challenges every minute, cap 40, quarantine at 3 failures")
    pid = p["proposal_id"]
    assert p["state"] == "pending" and p["created"]
    nonce = eth.eth.get_transaction_count(VOTER.address)
    again = cli.json("propose", "--set", "rental.fee_bps=300", "--set", "verification.challenge_interval=60",
                     "--set", "rental.max_quote=40", "--set", "verification.quarantine_failures=3",
                     "--description", "Fee 3%, challenges every minute, cap 40, quarantine at 3 failures")
    assert (again["proposal_id"], again["created"]) == (pid, False)  # a retry: the same proposal, nothing sent
    assert eth.eth.get_transaction_count(VOTER.address) == nonce
    texts = [c["text"] for c in p["calls"]]
    assert len(texts) == 4 and texts[0] == "set rental.fee_bps to 300 bps (3%)"
    assert texts[1] == "on ETC over the bridge: set verification.challenge_interval to 1 min"
    assert texts[2].startswith("set rental.min_quote to ") and texts[2].endswith(
        "; set rental.max_quote to 40 GPUTOKEN/GPU-hour")  # the setter's sibling keeps its value
    assert texts[3] == ("on ETC over the bridge: set verification.quarantine_window to 10; set "
                        "verification.quarantine_failures to 3; set verification.quarantine_s to 1 h")
    code, _, err = cli("vote", pid, "for")
    assert code == 1 and "opens after 20" in err and " UTC" in err  # the snapshot as a UTC date
    code, out, _ = cli("show", pid)
    assert code == 0 and "opens after 20" in out and "(in 24 h)" in out and "(in 192 h)" in out  # 1 d, then 7 d
    increase_time(eth, DEFAULTS.voting_delay_s + 1)
    code, _, err = Cli(_home(tmp_path, deployed, NOBODY), capsys)("vote", pid, "for")
    assert code == 1 and "had no votes at proposal" in err
    code, out, err = cli("vote", pid, "for", "--reason", "cheaper to verify")
    assert code == 0, err
    code, _, err = cli("vote", pid, "against")
    assert code == 1 and "already voted" in err
    code, _, err = cli("queue", pid)
    assert code == 1 and "cannot be queued: it is active" in err
    increase_time(eth, DEFAULTS.voting_period_s)
    shown = cli.json("show", pid)
    assert shown["state"] == "succeeded"
    assert float(shown["votes_for_gputoken"]) == 15_000_000 > float(shown["quorum_gputoken"]) > 0
    code, _, err = cli("vote", pid, "for")
    assert code == 1 and "is closed" in err
    code, _, err = cli("execute", pid)
    assert code == 1 and "queue it first" in err
    assert cli("queue", pid)[0] == 0
    code, _, err = cli("execute", pid)
    assert code == 1 and "not yet executable" in err
    increase_time(eth, DEFAULTS.timelock_delay_s + 1)
    code, out, err = cli("execute", pid)
    assert code == 0, err
    assert "ETC changes apply once the queens' relay delivers" in out
    rental = eth.eth.contract(address=deployed.eth.address("GPURental"),
                              abi=artifacts.load("eth", "GPURental").abi)
    assert rental.functions.feeBps().call() == 300
    assert rental.functions.quoteBounds().call()[1] == 40 * 10**18
    # a second executor that checked just before the first one landed: its revert is explained in words
    g = Governor(_client(eth, "eth", NOBODY), _client(etc, "etc"), deployed)
    late = g.proposal(int(pid))
    with pytest.raises(FailedPreconditionError, match="cannot be executed: it is executed"):
        g._raced(late.proposal_id, g.gov.functions.execute(*g._args(late)), lambda q: g.check_can_execute(q, 0))
    # the timelock's bridge messages, relayed as the queens do, change ETC
    out_abi = artifacts.load("eth", "BridgeOutbox").abi
    outbox = eth.eth.contract(address=deployed.eth.address("BridgeOutbox"), abi=out_abi)
    sent = outbox.events.MessageSent().get_logs(from_block=eth.eth.block_number - 2)
    assert len(sent) == 2
    for ev in sent:
        _relay(etc, deployed, BridgeMessage.from_event(dict(ev["args"]), deployed.eth.chain_id, outbox.address))
    rows = {r["name"]: r for r in cli.json("params")}
    assert rows["verification.challenge_interval"]["value"] == "60"
    assert [rows[f"verification.quarantine_{n}"]["value"] for n in ("window", "failures", "s")] == ["10", "3", "3600"]
    assert rows["rental.fee_bps"]["shown"] == "300 bps (3%)"
    listed = cli.json("list")
    assert [x["state"] for x in listed if x["proposal_id"] == pid] == ["executed"]
    code, out, _ = cli("show", pid)
    assert "executed" in out and "on ETC over the bridge: set verification.challenge_interval to 1 min" in out


def test_hostile_calls_are_described_as_what_they_are(deployed: Manifest, eth: Web3, etc: Web3) -> None:
    """`gov show` and the king's gateway describe a proposal's calls: garbage calldata, a bridge message with
    undecodable data or for another chain are shown as such, never as a parameter change, and never crash."""
    g = Governor(_client(eth, "eth"), _client(etc, "etc"), deployed)
    rental, outbox = deployed.eth.address("GPURental"), deployed.eth.address("BridgeOutbox")
    executor = deployed.etc.address("BridgeGovernanceExecutor")
    assert g.describe(rental, 0, bytes.fromhex("deadbeef00")) == "GPURental: unknown call 0xdeadbeef"
    assert g.describe(rental, 0, b"\x01") == "GPURental: unknown call 0x01"
    ob = g.eth.contract("BridgeOutbox", outbox)

    def send(chain_id: int, data: bytes) -> bytes:
        return bytes.fromhex(ob.functions.sendMessage(chain_id, executor, data)._encode_transaction_data()[2:])

    assert "undecodable data" in g.describe(outbox, 0, send(deployed.etc.chain_id, b"\x00" * 40))
    wv = deployed.etc.address("WorkVerification")
    inner = bytes.fromhex(g.etc.contract("WorkVerification", wv).functions.setMaxFailBps(100)
                          ._encode_transaction_data()[2:])
    honest = g.describe(outbox, 0, send(deployed.etc.chain_id, bridge_call(wv, inner)))
    assert honest == "on ETC over the bridge: set verification.max_fail_bps to 100 bps (1%)", honest
    elsewhere = g.describe(outbox, 0, send(deployed.etc.chain_id + 1, bridge_call(wv, inner)))
    assert "not this deployment's ETC" in elsewhere and "set verification" not in elsewhere
    assert g.describe(rental, 5, b"") == "GPURental: unknown call 0x, sending 5 wei"


def test_proposals_are_read_in_bounded_log_ranges(deployed: Manifest, eth: Web3, etc: Web3, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the proposals asks eth_getLogs for bounded block ranges (public RPCs refuse wide ones) and finds
    the same proposals as one wide read."""
    from blendr.chain import governing

    cli = Cli(_home(tmp_path, deployed, VOTER), capsys)
    for fee in ("2%", "4%"):
        mine(eth, 3)  # log ranges are blocks, whatever the governor's clock
        cli.json("propose", "--set", f"rental.fee_bps={fee}", "--description", f"Fee {fee}")
    g = Governor(_client(eth, "eth"), _client(etc, "etc"), deployed)
    wide = [p.proposal_id for p in g.proposals()]
    assert len(wide) >= 2
    monkeypatch.setattr(governing, "LOG_RANGE", 7)
    assert [p.proposal_id for p in g.proposals()] == wide
