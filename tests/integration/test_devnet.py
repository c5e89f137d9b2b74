"""`blendr devnet up|down|status` and `blendr chain deploy` as real processes against real anvil chains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from blendr.chain.anvil import AnvilProcess, start_anvil
from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.deploy import DEFAULT_ADMIN_ROLE, role
from blendr.chain.devkeys import DEV_KEYS, ROLES
from blendr.chain.manifest import Manifest
from blendr.config import load_config
from blendr.ports import free_port
from blendr.units import tokens
from queen.stake_oracle import ChainStakeOracle

REPO = Path(__file__).resolve().parents[2]


def blendr(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "blendrctl", *args, "--home", str(home)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    if check and proc.returncode != 0:
        raise AssertionError(f"blendr {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def devnet_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("devnet")
    (home / "config.toml").write_text(f"[devnet]\neth_port = {free_port()}\netc_port = {free_port()}\n")
    blendr("devnet", "up", home=home)
    yield home
    blendr("devnet", "down", "--reset", home=home, check=False)


def test_devnet_up_deploys_everything_and_writes_the_manifest(devnet_home: Path) -> None:
    m = Manifest.from_json(json.loads((devnet_home / "deployment.json").read_text()))
    assert m.network == "devnet" and m.eth.chain_id == 31337 and m.etc.chain_id == 63
    assert m.eth.eip1559 and not m.etc.eip1559
    assert set(m.eth.contracts) == {"GPUToken", "BlendrTimelock", "StakingManager", "Governance", "BridgeOutbox",
                                    "BridgeInbox", "GPURental", "TokenDistributor", "ComputeVoucher"}
    assert set(m.etc.contracts) == {"BridgeOutbox", "BridgeInbox", "ReputationSystem", "WorkVerification",
                                    "BridgeGovernanceExecutor"}
    eth = Web3(Web3.HTTPProvider(m.eth.rpc_url))
    etc = Web3(Web3.HTTPProvider(m.etc.rpc_url))
    for w3, dep in ((eth, m.eth), (etc, m.etc)):
        for name, addr in dep.contracts.items():
            assert len(w3.eth.get_code(addr)) > 0, name
    st = blendr("devnet", "status", "--json", home=devnet_home)
    status = json.loads(st.stdout)
    assert status["chains"]["eth"]["contracts_live"] == 9 and status["chains"]["etc"]["contracts_live"] == 5


def test_devnet_accounts_are_funded_staked_and_roles_handed_to_governance(devnet_home: Path) -> None:
    cfg = load_config(devnet_home, env={})
    m = Manifest.from_json(json.loads((devnet_home / "deployment.json").read_text()))
    eth = ChainClient(ChainSettings("eth", m.eth.rpc_url, m.eth.chain_id))
    etc = ChainClient(ChainSettings("etc", m.etc.rpc_url, m.etc.chain_id, eip1559=False))
    token = eth.contract("GPUToken", m.eth.address("GPUToken"))
    staking = eth.contract("StakingManager", m.eth.address("StakingManager"))
    roles = m.accounts["roles"]
    assert token.functions.balanceOf(roles["renter"]).call() == cfg.devnet.fund_tokens * 10**18
    assert staking.functions.stakeOf(roles["provider1"], 0).call() == cfg.devnet.provider_stake * 10**18
    assert staking.functions.stakeOf(roles["queen2"], 1).call() == cfg.devnet.queen_stake * 10**18
    assert staking.functions.stakeOf(roles["king"], 2).call() == cfg.devnet.king_stake * 10**18
    deployer = m.deployer
    timelock = m.eth.address("BlendrTimelock")
    executor = m.etc.address("BridgeGovernanceExecutor")
    for name, addr in m.eth.contracts.items():
        if name in {"Governance"}:
            continue
        c = eth.contract(name, addr)
        assert not c.functions.hasRole(DEFAULT_ADMIN_ROLE, deployer).call(), name
        if name != "BlendrTimelock":
            assert c.functions.hasRole(DEFAULT_ADMIN_ROLE, timelock).call(), name
    for name, addr in m.etc.contracts.items():
        if name == "BridgeGovernanceExecutor":
            continue
        c = etc.contract(name, addr)
        assert not c.functions.hasRole(DEFAULT_ADMIN_ROLE, deployer).call(), name
        assert c.functions.hasRole(DEFAULT_ADMIN_ROLE, executor).call(), name
    assert token.functions.hasRole(role("MINTER_ROLE"), timelock).call()
    assert not token.functions.hasRole(role("MINTER_ROLE"), deployer).call()
    rental = eth.contract("GPURental", m.eth.address("GPURental"))
    assert rental.functions.hasRole(role("SCHEDULER_ROLE"), roles["king"]).call()


def test_stake_oracle_admits_staked_providers_only(devnet_home: Path) -> None:
    m = Manifest.from_json(json.loads((devnet_home / "deployment.json").read_text()))
    oracle = ChainStakeOracle(ChainClient(ChainSettings("eth", m.eth.rpc_url, m.eth.chain_id)),
                              m.eth.address("StakingManager"))
    ok = oracle.check(m.accounts["roles"]["provider1"])
    assert ok.allowed and "minimum" in ok.reason
    stranger = Account.create().address
    no = oracle.check(stranger)
    assert not no.allowed and "below the minimum" in no.reason


def test_stake_oracle_fails_closed_when_the_chain_is_down() -> None:
    settings = ChainSettings("eth", f"http://127.0.0.1:{free_port()}", 31337, retries=1, rpc_timeout_s=0.5)
    oracle = ChainStakeOracle(ChainClient(settings), "0x" + "11" * 20)
    decision = oracle.check(Account.create().address)
    assert not decision.allowed and "cannot read" in decision.reason


def test_devnet_survives_down_and_up(devnet_home: Path) -> None:
    """State is kept across down/up: the same contracts answer, nothing is redeployed."""
    before = json.loads((devnet_home / "deployment.json").read_text())
    m = Manifest.from_json(before)
    eth = Web3(Web3.HTTPProvider(m.eth.rpc_url))
    token = eth.eth.contract(address=m.eth.address("GPUToken"), abi=[{
        "type": "function", "name": "totalSupply", "inputs": [], "outputs": [{"type": "uint256", "name": ""}],
        "stateMutability": "view"}])
    supply = token.functions.totalSupply().call()
    blendr("devnet", "down", home=devnet_home)
    st = blendr("devnet", "status", home=devnet_home, check=False)
    assert st.returncode == 1 and "not running" in st.stdout
    out = blendr("devnet", "up", home=devnet_home)
    assert "already deployed" in out.stdout
    assert json.loads((devnet_home / "deployment.json").read_text()) == before
    assert token.functions.totalSupply().call() == supply


@pytest.fixture
def two_chains() -> tuple[AnvilProcess, AnvilProcess]:
    eth = start_anvil(31337)
    etc = start_anvil(63, hardfork="shanghai")
    yield eth, etc
    eth.stop()
    etc.stop()


def test_chain_deploy_to_a_configured_network_refuses_to_overwrite(
    tmp_path: Path, two_chains: tuple[AnvilProcess, AnvilProcess]
) -> None:
    eth, etc = two_chains
    key = tmp_path / "deployer.key"
    key.write_text(DEV_KEYS[ROLES["deployer"]] + "\n")
    key.chmod(0o600)
    attesters = [Account.from_key(DEV_KEYS[i]).address for i in (2, 3, 4)]
    (tmp_path / "config.toml").write_text(f"""
[network.local]
eth_rpc_url = "{eth.url}"
eth_chain_id = 31337
eth_confirmations = 1
etc_rpc_url = "{etc.url}"
etc_chain_id = 63
etc_confirmations = 1
key_file = "{key}"
treasury = "{Account.from_key(DEV_KEYS[0]).address}"
scheduler = "{Account.from_key(DEV_KEYS[1]).address}"
attesters = {json.dumps(attesters)}
threshold = 2
guardian = "{Account.from_key(DEV_KEYS[0]).address}"
team = ["{Account.from_key(DEV_KEYS[5]).address}"]
advisors = ["{Account.from_key(DEV_KEYS[6]).address}=1000000", "{Account.from_key(DEV_KEYS[7]).address}=2000000"]
""")
    # the genesis needs investors: the flag gives them where the config has none
    missing = blendr("chain", "deploy", "--network", "local", home=tmp_path, check=False)
    assert missing.returncode == 2 and "investors: no genesis beneficiary" in missing.stderr
    blendr("chain", "deploy", "--network", "local", "--investors", Account.from_key(DEV_KEYS[8]).address,
           home=tmp_path)
    m = Manifest.from_json(json.loads((tmp_path / "deployment.json").read_text()))
    assert m.network == "local" and m.etc.confirmations == 1
    assert [g["amount"] for g in m.accounts["genesis"]["advisors"]] == [tokens(1_000_000), tokens(2_000_000)]
    assert m.accounts["genesis"]["investors"][0]["beneficiary"] == Account.from_key(DEV_KEYS[8]).address
    again = blendr("chain", "deploy", "--network", "local", home=tmp_path, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    info = blendr("chain", "info", home=tmp_path)
    assert m.eth.address("GPURental") in info.stdout
    wrong = blendr("chain", "deploy", "--network", "nope", home=tmp_path, check=False)
    assert wrong.returncode == 2 and "no [network.nope]" in wrong.stderr


def test_chain_deploy_checks_the_chain_id(tmp_path: Path, two_chains: tuple[AnvilProcess, AnvilProcess]) -> None:
    _, etc = two_chains
    key = tmp_path / "deployer.key"
    key.write_text(DEV_KEYS[0] + "\n")
    key.chmod(0o600)
    a = Account.from_key(DEV_KEYS[0]).address
    (tmp_path / "config.toml").write_text(f"""
[network.mixed]
eth_rpc_url = "{etc.url}"
eth_chain_id = 1
etc_rpc_url = "{etc.url}"
etc_chain_id = 63
key_file = "{key}"
treasury = "{a}"
scheduler = "{a}"
attesters = ["{a}"]
threshold = 1
guardian = "{a}"
team = ["{a}"]
investors = ["{a}"]
advisors = ["{a}"]
""")
    out = blendr("chain", "deploy", "--network", "mixed", home=tmp_path, check=False)
    assert out.returncode == 1 and "serves chain 63, expected 1" in out.stderr


def _ports_of(devnet_home: Path, home: Path) -> Path:
    """A node home configured for the module's devnet ports (as every node on that machine would be)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text((devnet_home / "config.toml").read_text())
    return home


def test_devnet_up_from_another_home_reuses_the_chains_and_copies_the_manifest(devnet_home: Path,
                                                                              tmp_path: Path) -> None:
    king = _ports_of(devnet_home, tmp_path / "king")
    out = blendr("devnet", "up", home=king)
    assert f"already running, started from {devnet_home}" in out.stdout
    assert f"deployment: {king / 'deployment.json'}" in out.stdout and "--deployment" in out.stdout
    assert json.loads((king / "deployment.json").read_text()) == json.loads(
        (devnet_home / "deployment.json").read_text())
    assert not (king / "devnet").exists()  # nothing of its own started
    down = blendr("devnet", "down", home=king, check=False)
    assert down.returncode == 2 and f"blendr devnet down --home {devnet_home}" in down.stderr
    assert blendr("devnet", "status", home=devnet_home).returncode == 0  # still running


def test_nodes_create_nothing_before_their_preconditions_hold(devnet_home: Path, tmp_path: Path) -> None:
    """`king run` and `queen run --relay` refuse a missing manifest or key before writing anything; the king
    refuses a key without the scheduler role; `devnet key` then installs the devnet key in that same home."""
    king = tmp_path / "king"
    no_manifest = blendr("king", "run", home=king, check=False)
    assert no_manifest.returncode == 2 and "no deployment manifest" in no_manifest.stderr
    assert "--deployment FILE" in no_manifest.stderr and not king.exists()
    deployment = str(devnet_home / "deployment.json")
    no_key = blendr("king", "run", "--deployment", deployment, home=king, check=False)
    assert no_key.returncode == 1 and f"blendr devnet key king --home {king}" in no_key.stderr
    assert not king.exists()
    queen = tmp_path / "queen"
    relay = blendr("queen", "run", "--relay", "--deployment", deployment, home=queen, check=False)
    assert relay.returncode == 1 and "devnet key queen1" in relay.stderr and not queen.exists()
    assert "installed the devnet king key" in blendr("devnet", "key", "king", home=king).stdout
    assert sorted(p.name for p in king.iterdir()) == ["node.key"]

    other = tmp_path / "other"
    blendr("identity", "init", home=other)
    no_role = blendr("king", "run", "--deployment", deployment, home=other, check=False)
    assert no_role.returncode == 1 and "does not hold GPURental's scheduler role" in no_role.stderr
    assert sorted(p.name for p in other.iterdir()) == ["node.key"]
    refused = blendr("devnet", "key", "king", home=other, check=False)
    assert refused.returncode == 1 and "already holds another key" in refused.stderr
    assert f"remove {other / 'node.key'}" in refused.stderr
    missing = blendr("chain", "info", "--deployment", str(tmp_path / "nope.json"), home=other, check=False)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_chain_info_names_the_bridge_attesters_and_stake_shows_and_adds(devnet_home: Path, tmp_path: Path) -> None:
    deployment = str(devnet_home / "deployment.json")
    info = blendr("chain", "info", "--deployment", deployment, home=tmp_path / "any")
    queens = [Account.from_key(DEV_KEYS[ROLES[q]]).address for q in ("queen1", "queen2", "queen3")]
    for chain in ("eth", "etc"):
        line = next(x for x in info.stdout.splitlines() if x.startswith(f"bridge into {chain}:"))
        assert "2 of 3 attesters" in line and all(q in line for q in queens), line
    prov = _ports_of(devnet_home, tmp_path / "prov")
    blendr("devnet", "key", "provider4", home=prov)
    before = json.loads(blendr("stake", "show", "--json", "--deployment", deployment, home=prov).stdout)
    blendr("stake", "add", "provider", "250", "--deployment", deployment, home=prov)
    after = json.loads(blendr("stake", "show", "--json", "--deployment", deployment, home=prov).stdout)
    staked = Decimal(after["stakes"]["provider"]["stake_gputoken"]) - Decimal(before["stakes"]["provider"]["stake_gputoken"])
    assert staked == 250  # --json amounts are exact decimal GPUTOKEN
    assert Decimal(before["balance_gputoken"]) - Decimal(after["balance_gputoken"]) == 250
    poor = tmp_path / "poor"
    blendr("identity", "init", home=poor)
    refused = blendr("stake", "add", "queen", "5000", "--deployment", deployment, home=poor, check=False)
    assert refused.returncode == 2 and "less than the 5000" in refused.stderr
