"""The whole deployed system through the real bridge: a rental end to end, and ETC governed from ETH.

Deploys with the production code (``deploy_system`` + ``hand_over``) onto the session's anvil chains and
relays every bridge message by hand with real attester signatures, as the queens' relay will.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from blendr.chain.bridge import BridgeMessage, attest, ordered
from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.contracts import (
    BridgeInbox,
    BridgeOutbox,
    ChallengeResult,
    Governance,
    GPURental,
    GPUToken,
    RentalIntent,
    RentalStatus,
    ReputationSystem,
    StakingManager,
    Tier,
    WorkVerification,
    bridge_call,
    results_tree,
)
from blendr.chain.deploy import DeployParams, Grant, deploy_system, hand_over
from blendr.chain.manifest import Manifest
from blendr.errors import ContractRevertError
from blendr.units import tokens
from tests.contracts.chainkit import DEV_KEYS, increase_time

ACCT = [Account.from_key(k) for k in DEV_KEYS]
DEPLOYER, KING, QUEENS, PROVIDER, VOTER, RENTER = ACCT[0], ACCT[1], ACCT[2:5], ACCT[5], ACCT[6], ACCT[9]
TREASURY = ACCT[7].address


@dataclass
class System:
    eth: Web3
    etc: Web3
    m: Manifest

    def client(self, chain: str, account: Any) -> ChainClient:
        w3 = self.eth if chain == "eth" else self.etc
        s = ChainSettings(chain, w3.provider.endpoint_uri, int(w3.eth.chain_id), eip1559=chain == "eth",  # type: ignore[attr-defined]
                          poll_s=0.01)
        return ChainClient(s, account)

    def relay(self, msg: BridgeMessage, signers: list[Any] | None = None) -> Any:
        """Attests ``msg`` with two queens (2-of-3) and delivers it on its destination chain."""
        chain = "etc" if msg.dst_chain_id == 63 else "eth"
        inbox = BridgeInbox(self.client(chain, ACCT[8]), self.m.chain(chain).address("BridgeInbox"))
        sigs = {q.address: attest(q, msg, inbox.address) for q in (signers or QUEENS[:2])}
        return inbox.deliver(msg, ordered(sigs))


@pytest.fixture(scope="module")
def deployed(eth_session: Web3, etc_session: Web3) -> Manifest:
    snap_eth = eth_session.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    snap_etc = etc_session.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    sys_ = System(eth_session, etc_session, None)  # type: ignore[arg-type]
    eth, etc = sys_.client("eth", DEPLOYER), sys_.client("etc", DEPLOYER)
    params = DeployParams(
        treasury=TREASURY, scheduler=KING.address, attesters=sorted((q.address for q in QUEENS), key=lambda a: int(a, 16)),
        threshold=2, guardian=DEPLOYER.address, team=[Grant(DEPLOYER.address)], investors=[Grant(RENTER.address)],
        advisors=[Grant(PROVIDER.address)], distributor_supply=tokens(1_000), timelock_delay_s=60,
        voting_delay_s=1, voting_period_s=5, quorum_percent=4)
    m = deploy_system(eth, etc, params, network="test", echo=lambda s: None)
    token = GPUToken.from_manifest(eth, m)
    staking = StakingManager.from_manifest(eth, m)
    for who, amount in ((RENTER, 10_000), (PROVIDER, 10_000), (VOTER, 1_000_000), (DEPLOYER, 20_000)):
        token._send(token.fn.mint(who.address, tokens(amount)))
    token.approve(staking.address, tokens(20_000))
    staking.stake_for(PROVIDER.address, Tier.PROVIDER, tokens(2_000))
    for q in QUEENS:
        staking.stake_for(q.address, Tier.QUEEN, tokens(5_000))
    hand_over(eth, etc, m, echo=lambda s: None)
    yield m
    eth_session.provider.make_request("evm_revert", [snap_eth])  # type: ignore[arg-type]
    etc_session.provider.make_request("evm_revert", [snap_etc])  # type: ignore[arg-type]


@pytest.fixture
def system(deployed: Manifest, eth: Web3, etc: Web3) -> Iterator[System]:
    yield System(eth, etc, deployed)


def _rental(s: System, *, hours: int = 2, gpus: int = 2, price: str = "2.5", nonce: int = 1) -> tuple[RentalIntent, Any]:
    renter_eth = s.client("eth", RENTER)
    rental_addr = s.m.eth.address("GPURental")
    GPUToken(renter_eth, s.m.eth.address("GPUToken")).approve(rental_addr, 2**256 - 1)
    now = int(s.eth.eth.get_block("latest")["timestamp"])
    intent = RentalIntent(RENTER.address, PROVIDER.address, gpus, b"\x01" * 32, tokens(3), hours * 3600, nonce,
                          now + 3600, bytes(32), KING.address)
    king = GPURental(s.client("eth", KING), rental_addr)
    receipt = king.create(intent, intent.sign(RENTER, 31337, rental_addr), tokens(price), QUEENS[0].address)
    return intent, receipt


def test_rental_end_to_end_through_the_bridge_settles_exactly(system: System) -> None:
    s = system
    token = GPUToken(s.client("eth", DEPLOYER), s.m.eth.address("GPUToken"))
    before = {a: token.balance_of(a) for a in (RENTER.address, PROVIDER.address, TREASURY)}
    intent, receipt = _rental(s)
    escrow = tokens("2.5") * 2 * 2  # price x GPUs x hours
    assert token.balance_of(RENTER.address) == before[RENTER.address] - escrow
    # GPURental -> etc: the OPEN message opens the verification task
    [open_msg] = BridgeOutbox(s.client("eth", DEPLOYER), s.m.eth.address("BridgeOutbox")).messages(receipt)
    s.relay(open_msg)
    rid = intent.rental_id(31337, s.m.eth.address("GPURental"))
    wv = WorkVerification(s.client("etc", QUEENS[0]), s.m.etc.address("WorkVerification"))
    assert wv.task(rid)[0] == PROVIDER.address
    # the queen reports cumulative counts: 10 challenges, 8 passed, 2 missed
    result = ChallengeResult(rid, 10, 8, 0, 2)
    batch = b"batch-1".ljust(32, b"\0")
    wv.submit_batch(batch, b"\x42" * 32, [result])
    _, [proof] = results_tree(batch, [result])
    increase_time(s.eth, 2 * 3600 + 1)
    increase_time(s.etc, 2 * 3600 + 1)
    fin = wv.finalize(batch, result, proof)
    [result_msg] = BridgeOutbox(s.client("etc", DEPLOYER), s.m.etc.address("BridgeOutbox")).messages(fin)
    assert result_msg.dst_chain_id == 31337
    s.relay(result_msg, signers=QUEENS[1:])
    # settled: verified 80% of 2 h on 2 GPUs at 2.5/GPU-hour; fee 2.5 %
    paid = tokens("2.5") * 2 * (2 * 3600 * 8 // 10) // 3600
    fee = paid * 250 // 10_000
    assert token.balance_of(PROVIDER.address) == before[PROVIDER.address] + paid - fee
    GPURental(s.client("eth", DEPLOYER), s.m.eth.address("GPURental")).collect_fees()  # the fee waits until collected
    assert token.balance_of(TREASURY) == before[TREASURY] + fee
    assert token.balance_of(RENTER.address) == before[RENTER.address] - paid
    rental = GPURental(s.client("eth", RENTER), s.m.eth.address("GPURental"))
    assert rental.rental(rid).status == RentalStatus.SETTLED
    # the same result again is refused by the inbox: money moves once
    with pytest.raises(ContractRevertError) as exc:
        s.relay(result_msg)
    assert exc.value.error == "BridgeInboxAlreadyExecuted"
    # reputation moved on etc; feedback crosses the bridge and counts once
    rep = ReputationSystem(s.client("etc", DEPLOYER), s.m.etc.address("ReputationSystem"))
    assert rep.score(PROVIDER.address) != 5_000
    fb = rental.feedback(rid, 5)
    [fb_msg] = BridgeOutbox(s.client("eth", DEPLOYER), s.m.eth.address("BridgeOutbox")).messages(fb)
    before_score = rep.score(PROVIDER.address)
    s.relay(fb_msg)
    stats = rep._call(rep.fn.statsOf(PROVIDER.address))
    assert stats[6] == 1 and stats[7] == 5  # one rating, sum 5
    assert rep.score(PROVIDER.address) > before_score


def test_a_provider_cannot_unstake_while_a_rental_may_still_slash_it(system: System) -> None:
    s = system
    _rental(s, nonce=3)
    staking = StakingManager(s.client("eth", PROVIDER), s.m.eth.address("StakingManager"))
    # the open 2-GPU rental may slash 10 % of 2 GPUs' minimum (1,000 each): that much cannot unbond
    assert staking.reserved_stake_of(PROVIDER.address) == tokens(200)
    with pytest.raises(ContractRevertError) as exc:
        staking.request_unstake(Tier.PROVIDER, tokens(1_801))
    assert exc.value.error == "StakingManagerStakeReserved"
    assert s.m.eth.address("GPURental") == staking._call(staking.fn.locker())
    _rental(s, nonce=4, gpus=1)  # a second rental's possible slash is covered too
    assert staking.reserved_stake_of(PROVIDER.address) == tokens(300)


def test_attestations_from_non_attesters_or_too_few_are_refused(system: System) -> None:
    s = system
    _, receipt = _rental(s, nonce=7)
    [msg] = BridgeOutbox(s.client("eth", DEPLOYER), s.m.eth.address("BridgeOutbox")).messages(receipt)
    with pytest.raises(ContractRevertError) as exc:
        s.relay(msg, signers=[QUEENS[0], ACCT[8]])  # a forged attestation from a non-attester
    assert exc.value.error == "BridgeInboxSignerNotAttester"
    with pytest.raises(ContractRevertError) as exc:
        s.relay(msg, signers=[QUEENS[0]])
    assert exc.value.error == "BridgeInboxNotEnoughSignatures"
    s.relay(msg)  # still deliverable with a valid 2-of-3


def test_governance_on_eth_changes_a_parameter_on_etc_over_the_bridge(system: System) -> None:
    """propose -> vote -> queue -> execute on ETH; the timelock's message runs on ETC via the executor."""
    s = system
    voter_eth = s.client("eth", VOTER)
    GPUToken(voter_eth, s.m.eth.address("GPUToken")).delegate(VOTER.address)
    increase_time(s.eth, 1)  # the governor's clock is timestamps: votes count from the next second
    wv_addr = s.m.etc.address("WorkVerification")
    wv = WorkVerification(s.client("etc", DEPLOYER), wv_addr)
    assert wv._call(wv.fn.maxFailBps()) == 1_000
    outbox = BridgeOutbox(voter_eth, s.m.eth.address("BridgeOutbox"))
    inner = bytes.fromhex(wv.fn.setMaxFailBps(2_000)._encode_transaction_data()[2:])
    send = bytes.fromhex(outbox.fn.sendMessage(
        63, s.m.etc.address("BridgeGovernanceExecutor"), bridge_call(wv_addr, inner))._encode_transaction_data()[2:])
    gov = Governance(voter_eth, s.m.eth.address("Governance"))
    desc = "Raise the failure threshold on ETC to 20%"
    pid = gov.propose([outbox.address], [0], [send], desc)
    increase_time(s.eth, 2)  # past the 1 s voting delay
    gov.cast_vote(pid, 1)
    increase_time(s.eth, 6)  # past the 5 s voting period
    assert gov.state(pid) == 4  # Succeeded
    gov.queue([outbox.address], [0], [send], desc)
    increase_time(s.eth, 61)
    executed = gov.execute([outbox.address], [0], [send], desc)
    assert gov.state(pid) == 7
    [msg] = BridgeOutbox(voter_eth, outbox.address).messages(executed)
    assert msg.sender == s.m.eth.address("BlendrTimelock")
    s.relay(msg)
    assert wv._call(wv.fn.maxFailBps()) == 2_000


def test_nobody_but_governance_can_change_parameters_after_hand_over(system: System) -> None:
    s = system
    wv = WorkVerification(s.client("etc", DEPLOYER), s.m.etc.address("WorkVerification"))
    with pytest.raises(ContractRevertError) as exc:
        wv._send(wv.fn.setMaxFailBps(2_000))
    assert exc.value.error == "AccessControlUnauthorizedAccount"
    rental = GPURental(s.client("eth", DEPLOYER), s.m.eth.address("GPURental"))
    with pytest.raises(ContractRevertError) as exc:
        rental._send(rental.fn.setFeeBps(0))
    assert exc.value.error == "AccessControlUnauthorizedAccount"
