"""GPURental on a real anvil (prague): intents, escrow, bridge settlement, cancel, reclaim, feedback, governance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode, encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tests.contracts.chainkit import DEV_KEYS, deploy, increase_time, now, reverts, send

E18 = 10**18
ETC_CHAIN_ID = 63
WORK_VERIFICATION = Web3.to_checksum_address("0x" + "57" * 20)
REPUTATION = Web3.to_checksum_address("0x" + "4e" * 20)
PROVIDER_MIN = 100 * E18  # per GPU
QUEEN_MIN = 1_000 * E18
PRICE = 3 * E18  # per GPU-hour
HOUR = 3600
RESULT_TIMEOUT = 7 * 24 * HOUR  # GPURental default
TIER_PROVIDER, TIER_QUEEN = 0, 1
NONE, ACTIVE, CANCELLED, SETTLED, EXPIRED = range(5)
OPEN, CLOSE, RESULT, FEEDBACK = 1, 2, 3, 4
OPEN_T = "(uint256,address,address,uint32,uint64,uint64)"
CLOSE_T = "(uint256,uint64)"
RESULT_T = "(uint256,uint64,bool,uint32,uint32,uint32,uint32)"
FEEDBACK_T = "(uint256,address,address,uint8)"
INTENT_TYPES = [
    {"name": "renter", "type": "address"},
    {"name": "provider", "type": "address"},
    {"name": "gpus", "type": "uint32"},
    {"name": "specHash", "type": "bytes32"},
    {"name": "maxPricePerGpuHour", "type": "uint256"},
    {"name": "duration", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
    {"name": "candidatesRoot", "type": "bytes32"},
    {"name": "scheduler", "type": "address"},
]


@dataclass
class Env:
    """The deployed contracts and the actors of one test."""

    w3: Web3
    rental: Contract
    token: Contract
    staking: Contract
    outbox: Contract
    admin: str
    king: str
    renter: str
    provider: str
    queen: str
    treasury: str
    inbox: str
    renter2: str
    outsider: str

    def balance(self, who: str) -> int:
        return int(self.token.functions.balanceOf(who).call())


def _deploy_env(w3: Web3, peers: bool = True) -> Env:
    a = w3.eth.accounts
    admin, king, renter, provider, queen, treasury, inbox, renter2, _, outsider = a[:10]
    token = deploy(w3, "eth", "RentalTestToken")
    staking = deploy(w3, "eth", "MockRentalStaking")
    outbox = deploy(w3, "eth", "MockRentalOutbox")
    rental = deploy(
        w3, "eth", "GPURental", admin, token.address, staking.address, outbox.address, inbox, treasury
    )
    if peers:
        send(rental.functions.setEtcPeers(ETC_CHAIN_ID, WORK_VERIFICATION, REPUTATION), admin)
    send(rental.functions.grantRole(rental.functions.SCHEDULER_ROLE().call(), king), admin)
    send(staking.functions.setMinStake(TIER_PROVIDER, PROVIDER_MIN), admin)
    send(staking.functions.setMinStake(TIER_QUEEN, QUEEN_MIN), admin)
    send(staking.functions.setStake(provider, TIER_PROVIDER, PROVIDER_MIN * 8), admin)
    send(staking.functions.setStake(queen, TIER_QUEEN, QUEEN_MIN), admin)
    for who in (renter, renter2):
        send(token.functions.mint(who, 1_000_000 * E18), admin)
        send(token.functions.approve(rental.address, 2**256 - 1), who)
    return Env(
        w3,
        rental,
        token,
        staking,
        outbox,
        admin,
        king,
        renter,
        provider,
        queen,
        treasury,
        inbox,
        renter2,
        outsider,
    )


@pytest.fixture(scope="module")
def deployed(eth_session: Web3) -> Env:
    """Deployed once per module (before any test's snapshot), so each test only pays for a snapshot revert."""
    return _deploy_env(eth_session)


@pytest.fixture
def env(deployed: Env, eth: Web3) -> Env:
    assert deployed.w3 is eth
    return deployed


def _key_of(w3: Web3, address: str) -> str:
    return DEV_KEYS[w3.eth.accounts.index(address)]


def make_intent(env: Env, renter: str | None = None, **over: Any) -> dict[str, Any]:
    intent: dict[str, Any] = {
        "renter": renter or env.renter,
        "provider": env.provider,
        "gpus": 2,
        "specHash": b"\x11" * 32,
        "maxPricePerGpuHour": PRICE,
        "duration": 2 * HOUR,
        "nonce": 1,
        "deadline": now(env.w3) + 600,
        "candidatesRoot": b"\0" * 32,
        "scheduler": env.king,
    }
    intent.update(over)
    return intent


def typed_intent(env: Env, intent: dict[str, Any]) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "RentalIntent": INTENT_TYPES,
        },
        "primaryType": "RentalIntent",
        "domain": {
            "name": "BlendrGPURental",
            "version": "1",
            "chainId": env.w3.eth.chain_id,
            "verifyingContract": env.rental.address,
        },
        "message": intent,
    }


def sign_intent(env: Env, intent: dict[str, Any], key: str | None = None) -> bytes:
    key = key or _key_of(env.w3, intent["renter"])
    return bytes(Account.sign_typed_data(key, full_message=typed_intent(env, intent)).signature)


def as_tuple(intent: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(intent[f["name"]] for f in INTENT_TYPES)


def create(
    env: Env, intent: dict[str, Any] | None = None, price: int = PRICE, sig: bytes | None = None,
    provider: str | None = None, proof: list[bytes] | None = None, sender: str | None = None,
) -> tuple[int, Any]:
    """Creates a rental from the king (or ``sender``); returns (rentalId, receipt)."""
    intent = intent or make_intent(env)
    sig = sign_intent(env, intent) if sig is None else sig
    fn = env.rental.functions.createRental(as_tuple(intent), sig, price, env.queen, provider or intent["provider"],
                                           proof or [])
    receipt = send(fn, sender or env.king)
    rental_id = env.rental.functions.rentalIdOf(intent["renter"], intent["nonce"]).call()
    return rental_id, receipt


def messages(env: Env, receipt: Any) -> list[tuple[int, str, int, bytes]]:
    """(dstChainId, target, kind, body) of every MessageSent in ``receipt``."""
    out = []
    for ev in env.outbox.events.MessageSent().process_receipt(receipt, errors=DISCARD):
        kind, body = decode(["uint8", "bytes"], ev["args"]["data"])
        out.append((ev["args"]["dstChainId"], ev["args"]["target"], kind, body))
    return out


def dec(types: list[str], body: bytes) -> tuple[Any, ...]:
    """Decodes one ABI tuple, with checksummed addresses (eth-abi gives them lower-case)."""
    (values,) = decode(types, body)
    return tuple(Web3.to_checksum_address(v) if isinstance(v, str) else v for v in values)


def result_data(rental_id: int, verified: int, failed: bool = False) -> bytes:
    body = encode([RESULT_T], [(rental_id, verified, failed, 10, 9, 1 if failed else 0, 0)])
    return encode(["uint8", "bytes"], [RESULT, body])


def deliver(env: Env, rental_id: int, verified: int, failed: bool = False) -> Any:
    fn = env.rental.functions.onBridgeMessage(
        ETC_CHAIN_ID, WORK_VERIFICATION, result_data(rental_id, verified, failed)
    )
    return send(fn, env.inbox)


def escrow_of(price: int, gpus: int, duration: int) -> int:
    return price * gpus * duration // HOUR


# ---------------------------------------------------------------- creation


def test_create_rental_locks_escrow_records_and_opens_task(env: Env) -> None:
    """createRental pulls the escrow, stores the rental, emits RentalCreated and sends OPEN to WorkVerification."""
    before = env.balance(env.renter)
    intent = make_intent(env)
    rental_id, receipt = create(env, intent, price=PRICE - 1)
    escrow = escrow_of(PRICE - 1, 2, 2 * HOUR)
    assert env.balance(env.renter) == before - escrow
    assert env.balance(env.rental.address) == escrow
    start = env.w3.eth.get_block(receipt["blockNumber"])["timestamp"]

    info = env.rental.functions.rental(rental_id).call()
    assert info == (
        env.renter,
        env.provider,
        env.king,
        ACTIVE,
        False,
        2,
        start,
        2 * HOUR,
        start + 2 * HOUR,
        0,
        PRICE - 1,
        escrow,
    )
    assert env.rental.functions.rentalStatus(rental_id).call() == ACTIVE

    (ev,) = env.rental.events.RentalCreated().process_receipt(receipt, errors=DISCARD)
    assert ev["args"]["rentalId"] == rental_id
    assert (ev["args"]["renter"], ev["args"]["provider"], ev["args"]["queen"]) == (
        env.renter,
        env.provider,
        env.queen,
    )
    assert ev["args"]["escrow"] == escrow and ev["args"]["pricePerGpuHour"] == PRICE - 1
    assert (ev["args"]["start"], ev["args"]["duration"], ev["args"]["gpus"]) == (start, 2 * HOUR, 2)

    ((dst, target, kind, body),) = messages(env, receipt)
    assert (dst, target, kind) == (ETC_CHAIN_ID, WORK_VERIFICATION, OPEN)
    opened = dec([OPEN_T], body)
    assert opened == (rental_id, env.provider, env.queen, 2, start, 2 * HOUR)


def test_rental_id_is_hash_of_renter_and_nonce(env: Env) -> None:
    """rentalIdOf is keccak256(abi.encode(chainid, rental, renter, nonce)): bound to this chain and contract."""
    expected = int.from_bytes(Web3.keccak(encode(["uint256", "address", "address", "uint256"],
                                                 [31337, env.rental.address, env.renter, 7])), "big")
    assert env.rental.functions.rentalIdOf(env.renter, 7).call() == expected


def test_intent_digest_matches_eip712(env: Env) -> None:
    """intentDigest equals the EIP-712 hash eth-account computes for the same intent and domain."""
    intent = make_intent(env, nonce=42)
    expected = encode_typed_data(full_message=typed_intent(env, intent))
    digest = env.rental.functions.intentDigest(as_tuple(intent)).call()
    assert digest == Web3.keccak(b"\x19\x01" + expected.header + expected.body)


def _permit_sig(env: Env, owner: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
    token = env.token
    msg = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": token.functions.name().call(),
            "version": "1",
            "chainId": env.w3.eth.chain_id,
            "verifyingContract": token.address,
        },
        "message": {
            "owner": owner,
            "spender": env.rental.address,
            "value": value,
            "nonce": token.functions.nonces(owner).call(),
            "deadline": deadline,
        },
    }
    signed = Account.sign_typed_data(_key_of(env.w3, owner), full_message=msg)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def _create_with_permit(
    env: Env, intent: dict[str, Any], value: int, deadline: int, vrs: tuple[int, bytes, bytes]
) -> Any:
    v, r, s = vrs
    fn = env.rental.functions.createRentalWithPermit(
        as_tuple(intent), sign_intent(env, intent), PRICE, env.queen, intent["provider"], [], (value, deadline, v, r, s)
    )
    return send(fn, env.king)


def test_create_with_permit_needs_no_prior_approval(env: Env) -> None:
    """createRentalWithPermit applies the renter's ERC-2612 permit, then locks exactly the escrow."""
    send(env.token.functions.approve(env.rental.address, 0), env.renter)
    intent = make_intent(env)
    escrow = escrow_of(PRICE, 2, 2 * HOUR)
    deadline = now(env.w3) + 600
    _create_with_permit(env, intent, escrow, deadline, _permit_sig(env, env.renter, escrow, deadline))
    assert env.balance(env.rental.address) == escrow
    assert env.token.functions.allowance(env.renter, env.rental.address).call() == 0
    assert env.token.functions.nonces(env.renter).call() == 1


def test_create_with_front_run_permit_still_succeeds(env: Env) -> None:
    """A permit already submitted by someone else does not block the rental (the allowance is there)."""
    send(env.token.functions.approve(env.rental.address, 0), env.renter)
    intent = make_intent(env)
    escrow = escrow_of(PRICE, 2, 2 * HOUR)
    deadline = now(env.w3) + 600
    vrs = _permit_sig(env, env.renter, escrow, deadline)
    send(env.token.functions.permit(env.renter, env.rental.address, escrow, deadline, *vrs), env.outsider)
    _create_with_permit(env, intent, escrow, deadline, vrs)
    assert (
        env.rental.functions.rentalStatus(env.rental.functions.rentalIdOf(env.renter, 1).call()).call()
        == ACTIVE
    )


def test_create_with_bad_permit_and_no_allowance_fails_on_transfer(env: Env) -> None:
    """An invalid permit is swallowed, and the escrow pull then fails for lack of allowance."""
    send(env.token.functions.approve(env.rental.address, 0), env.renter)
    intent = make_intent(env)
    with reverts("ERC20InsufficientAllowance"):
        _create_with_permit(env, intent, 10**30, now(env.w3) + 600, (27, b"\x01" * 32, b"\x02" * 32))


def test_create_requires_scheduler_role(env: Env) -> None:
    """Only SCHEDULER_ROLE may create rentals (and createRentalWithPermit likewise)."""
    intent = make_intent(env)
    with reverts("AccessControlUnauthorizedAccount"):
        send(
            env.rental.functions.createRental(as_tuple(intent), sign_intent(env, intent), PRICE, env.queen,
                                              intent["provider"], []),
            env.renter,
        )
    with reverts("AccessControlUnauthorizedAccount"):
        fn = env.rental.functions.createRentalWithPermit(
            as_tuple(intent), sign_intent(env, intent), PRICE, env.queen, intent["provider"], [],
            (0, 0, 27, b"\x00" * 32, b"\x00" * 32)
        )
        send(fn, env.renter)
    # an intent naming the renter as its scheduler does not make the renter one
    own = make_intent(env, scheduler=env.renter)
    with reverts("AccessControlUnauthorizedAccount"):
        create(env, own, sender=env.renter)


@pytest.mark.parametrize(
    ("over", "price", "error"),
    [
        ({"deadline": 1}, PRICE, "GPURentalIntentExpired"),
        ({}, 0, "GPURentalInvalidPrice"),
        ({}, PRICE + 1, "GPURentalInvalidPrice"),
        ({"maxPricePerGpuHour": 2**100}, 2**80, "GPURentalInvalidPrice"),
        ({"gpus": 0}, PRICE, "GPURentalInvalidGpus"),
        ({"gpus": 65}, PRICE, "GPURentalInvalidGpus"),
        ({"duration": 10 * 60 - 1}, PRICE, "GPURentalInvalidDuration"),
        ({"duration": 30 * 24 * HOUR + 1}, PRICE, "GPURentalInvalidDuration"),
        ({"gpus": 9}, PRICE, "GPURentalInsufficientStake"),
        ({"gpus": 1, "duration": 600}, 5, "GPURentalZeroEscrow"),
    ],
)
def test_create_rejects_bad_terms(env: Env, over: dict[str, Any], price: int, error: str) -> None:
    """Expired intents, prices out of range, bad GPU counts/durations, thin provider stake, zero escrow."""
    intent = make_intent(env, **over)
    with reverts(error):
        create(env, intent, price=price)


def test_create_accepts_boundary_terms(env: Env) -> None:
    """The limits themselves are allowed: price == max, 64 GPUs, min and max durations, stake exactly enough."""
    send(env.staking.functions.setStake(env.provider, TIER_PROVIDER, PROVIDER_MIN * 65), env.admin)
    create(env, make_intent(env, gpus=64, duration=10 * 60, nonce=1))
    create(env, make_intent(env, gpus=1, duration=30 * 24 * HOUR, nonce=2))
    assert env.balance(env.rental.address) == escrow_of(PRICE, 64, 600) + escrow_of(PRICE, 1, 30 * 24 * HOUR)


def test_create_rejects_queen_with_thin_stake(env: Env) -> None:
    """The queen must hold minStake(Queen)."""
    send(env.staking.functions.setStake(env.queen, TIER_QUEEN, QUEEN_MIN - 1), env.admin)
    with reverts("GPURentalInsufficientQueenStake"):
        create(env)


def test_open_rentals_reserve_the_provider_stake_and_exposure_beyond_it_is_refused(env: Env) -> None:
    """Each open rental holds what it may slash of its provider's stake (here, at a 100 % slash, minStake per
    GPU): concurrent rentals never owe more slashes than the stake, a rental whose possible slash the unreserved
    stake cannot cover is refused, and settling or reclaiming frees the reservation."""
    send(env.rental.functions.setSlashBps(10_000), env.admin)
    reserved = env.rental.functions.reservedGpusOf
    a, _ = create(env, make_intent(env, gpus=5, nonce=1))  # the provider stakes for 8 GPUs
    assert reserved(env.provider).call() == 5
    assert env.staking.functions.stakeOf(env.provider, TIER_PROVIDER).call() == 8 * PROVIDER_MIN
    with reverts("GPURentalStakeReserved") as err:  # 5 + 4 > 8, though 4 alone would be covered
        create(env, make_intent(env, gpus=4, nonce=2))
    assert err.args == [env.provider, 3 * PROVIDER_MIN, 4 * PROVIDER_MIN]
    b, _ = create(env, make_intent(env, gpus=3, nonce=3))
    assert reserved(env.provider).call() == 8
    with reverts("GPURentalStakeReserved"):
        create(env, make_intent(env, gpus=1, nonce=4))
    deliver(env, a, HOUR)  # settled: its 5 GPUs are free again
    assert reserved(env.provider).call() == 3
    c, _ = create(env, make_intent(env, gpus=5, nonce=5))
    deliver(env, b, 0, failed=True)  # slashed 10 % of 3 GPUs' minimum; the stake still covers c's 5 GPUs
    assert reserved(env.provider).call() == 5
    increase_time(env.w3, 2 * HOUR + RESULT_TIMEOUT)
    send(env.rental.functions.reclaimEscrow(c), env.outsider)  # anyone may free it: the escrow goes to the renter
    assert reserved(env.provider).call() == 0


def test_at_the_default_slash_rate_each_open_rental_reserves_a_tenth_of_its_minimum(env: Env) -> None:
    """At slashBps 10 % a stake of minStake for 8 GPUs backs ten open 8-GPU rentals (each may slash a tenth of
    it); the eleventh finds nothing unreserved. A rental must still meet minStake per GPU on its own."""
    for n in range(1, 11):
        create(env, make_intent(env, gpus=8, nonce=n))
    assert env.rental.functions.reservedGpusOf(env.provider).call() == 80
    with reverts("GPURentalStakeReserved") as err:
        create(env, make_intent(env, gpus=1, nonce=11))
    assert err.args == [env.provider, 0, PROVIDER_MIN // 10]
    with reverts("GPURentalInsufficientStake") as err:
        create(env, make_intent(env, gpus=9, nonce=12))
    assert err.args == [env.provider, 8 * PROVIDER_MIN, 9 * PROVIDER_MIN]


def test_every_slash_the_open_rentals_owe_is_paid_in_full(env: Env) -> None:
    """With the slash at 100 %, a provider whose whole stake backs concurrent rentals that all fail pays each
    slash in full; were minStake raised since, each slash is capped at its rental's share so all still pay."""
    send(env.rental.functions.setSlashBps(10_000), env.admin)
    ids = [create(env, make_intent(env, gpus=g, nonce=n))[0] for n, g in enumerate((3, 3, 2), 1)]
    for rid in ids:
        deliver(env, rid, 0, failed=True)
    records = [env.staking.functions.slashAt(i).call() for i in range(3)]
    assert [(r[2], r[3]) for r in records] == [(g * PROVIDER_MIN, g * PROVIDER_MIN) for g in (3, 3, 2)]
    assert env.staking.functions.stakeOf(env.provider, TIER_PROVIDER).call() == 0
    # governance doubles the minimum after two rentals of 4 GPUs each were created on a stake of 8 GPUs
    send(env.staking.functions.setStake(env.provider, TIER_PROVIDER, PROVIDER_MIN * 8), env.admin)
    ids = [create(env, make_intent(env, gpus=4, nonce=n))[0] for n in (10, 11)]
    send(env.staking.functions.setMinStake(TIER_PROVIDER, PROVIDER_MIN * 2), env.admin)
    for rid in ids:
        deliver(env, rid, 0, failed=True)
    records = [env.staking.functions.slashAt(i).call() for i in (3, 4)]
    assert [(r[2], r[3]) for r in records] == [(4 * PROVIDER_MIN, 4 * PROVIDER_MIN)] * 2  # share, not 8 each


def test_create_rejects_the_provider_as_its_own_queen(env: Env) -> None:
    """The queen's verdict decides the payment, so the provider cannot be the rental's queen."""
    intent = make_intent(env)
    send(env.staking.functions.setStake(env.provider, TIER_QUEEN, QUEEN_MIN), env.admin)
    with reverts("GPURentalQueenIsProvider"):
        env.rental.functions.createRental(as_tuple(intent), sign_intent(env, intent), PRICE, env.provider,
                                          env.provider, []).transact({"from": env.king})


ZERO = "0x" + "00" * 20


def test_an_open_intent_lets_the_scheduler_choose_a_staked_candidate(env: Env) -> None:
    """provider = 0: the scheduler names one of the intent's candidates, with a Merkle proof; its stake is
    checked and it is recorded. A provider outside the candidates is refused, staked or not."""
    from blendr.chain.contracts import candidates_tree

    stranger = env.w3.eth.accounts[8]
    send(env.staking.functions.setStake(stranger, TIER_PROVIDER, PROVIDER_MIN * 8), env.admin)
    root, proofs = candidates_tree([env.provider, env.outsider, env.renter2])
    intent = make_intent(env, provider=ZERO, candidatesRoot=root)
    sig = sign_intent(env, intent)

    def place(provider: str, proof: list[bytes]) -> Any:
        return send(env.rental.functions.createRental(as_tuple(intent), sig, PRICE, env.queen, provider, proof),
                    env.king)

    with reverts("GPURentalProviderMismatch"):  # someone must be named
        place(ZERO, [])
    with reverts("GPURentalProviderNotCandidate"):  # staked, but the renter's key was not wrapped for it
        place(stranger, proofs[env.provider])
    with reverts("GPURentalProviderNotCandidate"):  # a candidate with another's proof
        place(env.provider, proofs[env.outsider])
    with reverts("GPURentalInsufficientStake"):  # a candidate must still be staked for the GPUs
        place(env.outsider, proofs[env.outsider])
    receipt = place(env.provider, proofs[env.provider])
    rental_id = env.rental.functions.rentalIdOf(intent["renter"], intent["nonce"]).call()
    assert env.rental.functions.rental(rental_id).call()[1] == env.provider
    (ev,) = env.rental.events.RentalCreated().process_receipt(receipt, errors=DISCARD)
    assert ev["args"]["provider"] == env.provider


def test_an_open_intent_with_no_candidates_cannot_be_placed(env: Env) -> None:
    """The zero candidatesRoot proves no provider: an open intent without candidates creates nothing."""
    intent = make_intent(env, provider=ZERO)
    with reverts("GPURentalProviderNotCandidate"):
        create(env, intent, provider=env.provider)


def test_an_intent_naming_its_provider_cannot_go_to_another(env: Env) -> None:
    send(env.staking.functions.setStake(env.outsider, TIER_PROVIDER, PROVIDER_MIN * 8), env.admin)
    intent = make_intent(env)
    with reverts("GPURentalProviderMismatch"):
        send(env.rental.functions.createRental(as_tuple(intent), sign_intent(env, intent), PRICE, env.queen,
                                               env.outsider, []), env.king)


def test_only_the_bound_scheduler_may_place_or_cancel(env: Env) -> None:
    """Another SCHEDULER_ROLE holder can neither place an intent bound to the king nor cancel its rental; the
    renter and the bound scheduler can, until the scheduler loses its role (a re-grant does not restore it)."""
    other = env.w3.eth.accounts[8]
    role = env.rental.functions.SCHEDULER_ROLE().call()
    send(env.rental.functions.grantRole(role, other), env.admin)
    intent = make_intent(env)
    with reverts("GPURentalNotScheduler") as err:
        create(env, intent, sender=other)
    assert err.args == [env.king, other]
    with reverts("GPURentalNotScheduler"):
        fn = env.rental.functions.createRentalWithPermit(
            as_tuple(intent), sign_intent(env, intent), PRICE, env.queen, env.provider, [], (0, 0, 27, bytes(32),
                                                                                            bytes(32)))
        send(fn, other)
    rental_id, _ = create(env, intent)
    for stranger in (other, env.provider, env.outsider):
        with reverts("GPURentalNotRenterOrScheduler"):
            send(env.rental.functions.cancelRental(rental_id), stranger)
    second, _ = create(env, make_intent(env, nonce=2, gpus=1))
    send(env.rental.functions.cancelRental(rental_id), env.king)
    assert env.rental.functions.rentalStatus(rental_id).call() == CANCELLED
    send(env.rental.functions.revokeRole(role, env.king), env.admin)
    with reverts("GPURentalNotRenterOrScheduler"):
        send(env.rental.functions.cancelRental(second), env.king)
    assert env.rental.functions.rental(second).call()[2] == ZERO  # its scheduler is gone
    send(env.rental.functions.grantRole(role, env.king), env.admin)
    with reverts("GPURentalNotRenterOrScheduler"):
        send(env.rental.functions.cancelRental(second), env.king)
    send(env.rental.functions.cancelRental(second), env.renter)


def test_replayed_intent_is_refused(env: Env) -> None:
    """The same signed intent (same renter and nonce) cannot create a second rental."""
    intent = make_intent(env)
    sig = sign_intent(env, intent)
    create(env, intent, sig=sig)
    with reverts("GPURentalNonceUsed"):
        create(env, intent, sig=sig)
    with reverts("GPURentalNonceUsed"):  # even with different terms under the same nonce
        create(env, make_intent(env, gpus=1))


def test_bad_signatures_are_refused(env: Env) -> None:
    """A signature by someone else, over other terms, or malformed is GPURentalInvalidSignature."""
    intent = make_intent(env)
    with reverts("GPURentalInvalidSignature"):
        create(env, intent, sig=sign_intent(env, intent, key=DEV_KEYS[7]))
    with reverts("GPURentalInvalidSignature"):
        create(env, intent, sig=sign_intent(env, make_intent(env, gpus=1)))
    with reverts("GPURentalInvalidSignature"):
        create(env, intent, sig=b"\x01" * 10)


def test_create_needs_etc_peers(eth: Web3) -> None:
    """Before setEtcPeers there is nowhere to open the task: GPURentalPeersNotSet."""
    env = _deploy_env(eth, peers=False)
    with reverts("GPURentalPeersNotSet"):
        create(env)


# ---------------------------------------------------------------- settlement


def collect(env: Env) -> Any:
    """Pays out the fees settlements added up (collectFees, open to anyone)."""
    return send(env.rental.functions.collectFees(), env.outsider)


def _settled_balances(env: Env, verified: int, failed: bool = False) -> tuple[int, int, int, int, Any]:
    r0, p0, t0 = env.balance(env.renter), env.balance(env.provider), env.balance(env.treasury)
    rental_id, _ = create(env)
    receipt = deliver(env, rental_id, verified, failed)
    assert env.rental.functions.rentalStatus(rental_id).call() == SETTLED
    fee = env.rental.functions.pendingFees().call()[0]
    assert env.balance(env.rental.address) == fee  # the fee waits for collectFees
    assert env.balance(env.treasury) == t0
    collect(env)
    assert env.balance(env.rental.address) == 0
    return (
        env.balance(env.renter) - r0,
        env.balance(env.provider) - p0,
        env.balance(env.treasury) - t0,
        rental_id,
        receipt,
    )


@pytest.mark.parametrize(
    ("verified", "expected_payment"),
    [
        (2 * HOUR, escrow_of(PRICE, 2, 2 * HOUR)),  # full uptime
        (5 * HOUR, escrow_of(PRICE, 2, 2 * HOUR)),  # more than the rental: capped at the escrow
        (1234, PRICE * 2 * 1234 // HOUR),  # partial
        (0, 0),  # nothing verified
    ],
)
def test_settlement_pays_verified_uptime(env: Env, verified: int, expected_payment: int) -> None:
    """Provider gets payment - 2.5 % fee, treasury the fee (collectFees), renter the rest of the escrow; nothing
    stays."""
    escrow = escrow_of(PRICE, 2, 2 * HOUR)
    renter_d, provider_d, treasury_d, _, receipt = _settled_balances(env, verified)
    fee = expected_payment * 250 // 10_000
    assert provider_d == expected_payment - fee
    assert treasury_d == fee
    assert renter_d == -escrow + (escrow - expected_payment)
    (ev,) = env.rental.events.RentalSettled().process_receipt(receipt, errors=DISCARD)
    assert (ev["args"]["providerPayment"], ev["args"]["fee"], ev["args"]["refund"]) == (
        expected_payment - fee,
        fee,
        escrow - expected_payment,
    )
    assert env.staking.functions.slashCount().call() == 0


def test_failed_verification_refunds_all_and_slashes(env: Env) -> None:
    """failed: no payment, full refund, provider slashed minStake * gpus * 10 % with the rentalId as reason."""
    renter_d, provider_d, treasury_d, rental_id, receipt = _settled_balances(env, 2 * HOUR, failed=True)
    assert (renter_d, provider_d, treasury_d) == (0, 0, 0)
    assert env.staking.functions.slashCount().call() == 1
    amount = PROVIDER_MIN * 2 * 1000 // 10_000
    assert env.staking.functions.slashAt(0).call() == (
        env.provider,
        TIER_PROVIDER,
        amount,
        amount,
        rental_id.to_bytes(32, "big"),
    )
    (ev,) = env.rental.events.ProviderSlashed().process_receipt(receipt, errors=DISCARD)
    assert (ev["args"]["requested"], ev["args"]["slashed"]) == (amount, amount)


def test_failed_with_zero_slash_rate_does_not_call_staking(env: Env) -> None:
    """With slashBps 0 a failure refunds but slashes nothing."""
    send(env.rental.functions.setSlashBps(0), env.admin)
    _settled_balances(env, HOUR, failed=True)
    assert env.staking.functions.slashCount().call() == 0


def test_cancelled_rental_pays_only_up_to_cancel(env: Env) -> None:
    """After a cancel, verified time beyond the cancellation is not paid; CLOSE carries the cancel time."""
    r0, p0, t0 = env.balance(env.renter), env.balance(env.provider), env.balance(env.treasury)
    rental_id, receipt = create(env)
    start = env.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    increase_time(env.w3, 1800)
    receipt = send(env.rental.functions.cancelRental(rental_id), env.renter)
    cancelled_at = env.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    ((dst, target, kind, body),) = messages(env, receipt)
    assert (dst, target, kind) == (ETC_CHAIN_ID, WORK_VERIFICATION, CLOSE)
    assert dec([CLOSE_T], body) == (rental_id, cancelled_at)
    (ev,) = env.rental.events.RentalCancelled().process_receipt(receipt, errors=DISCARD)
    assert ev["args"]["cancelledAt"] == cancelled_at
    info = env.rental.functions.rental(rental_id).call()
    assert info[3] == CANCELLED and info[8] == cancelled_at and info[9] == cancelled_at

    deliver(env, rental_id, 2 * HOUR)  # claims more than elapsed: capped at the cancellation
    paid_seconds = cancelled_at - start
    payment = PRICE * 2 * paid_seconds // HOUR
    fee = payment * 250 // 10_000
    assert env.balance(env.provider) - p0 == payment - fee
    collect(env)
    assert env.balance(env.treasury) - t0 == fee
    assert env.balance(env.renter) - r0 == -payment
    assert env.balance(env.rental.address) == 0


def test_cancelled_rental_pays_verified_time_below_cap(env: Env) -> None:
    """A cancelled rental with less verified time than elapsed pays just the verified time."""
    p0 = env.balance(env.provider)
    rental_id, _ = create(env)
    increase_time(env.w3, 1800)
    send(env.rental.functions.cancelRental(rental_id), env.renter)
    deliver(env, rental_id, 600)
    payment = PRICE * 2 * 600 // HOUR
    assert env.balance(env.provider) - p0 == payment - payment * 250 // 10_000


def test_settlement_twice_never_pays_twice(env: Env) -> None:
    """A second RESULT for the same rental reverts and moves nothing."""
    rental_id, _ = create(env)
    deliver(env, rental_id, HOUR)
    balances = [env.balance(x) for x in (env.renter, env.provider, env.treasury)]
    with reverts("GPURentalNotAwaitingResult"):
        deliver(env, rental_id, HOUR)
    assert [env.balance(x) for x in (env.renter, env.provider, env.treasury)] == balances


def test_result_for_unknown_rental_is_refused(env: Env) -> None:
    """A RESULT for an id never created reverts."""
    with reverts("GPURentalNotAwaitingResult"):
        deliver(env, 12345, HOUR)


def test_bridge_message_checks_inbox_peer_and_kind(env: Env) -> None:
    """Only the inbox, only from (etcChainId, workVerification), only RESULT messages."""
    rental_id, _ = create(env)
    data = result_data(rental_id, HOUR)
    with reverts("GPURentalNotInbox"):
        send(env.rental.functions.onBridgeMessage(ETC_CHAIN_ID, WORK_VERIFICATION, data), env.outsider)
    with reverts("GPURentalUnknownPeer"):
        send(env.rental.functions.onBridgeMessage(ETC_CHAIN_ID + 1, WORK_VERIFICATION, data), env.inbox)
    with reverts("GPURentalUnknownPeer"):
        send(env.rental.functions.onBridgeMessage(ETC_CHAIN_ID, REPUTATION, data), env.inbox)
    close = encode(["uint8", "bytes"], [CLOSE, encode([CLOSE_T], [(rental_id, 1)])])
    with reverts("GPURentalUnsupportedMessage"):
        send(env.rental.functions.onBridgeMessage(ETC_CHAIN_ID, WORK_VERIFICATION, close), env.inbox)
    assert env.rental.functions.rentalStatus(rental_id).call() == ACTIVE


# ---------------------------------------------------------------- cancel


def test_cancel_errors(env: Env) -> None:
    """Only the renter (or its rental's scheduler), only while Active, only before the end."""
    rental_id, _ = create(env)
    with reverts("GPURentalNotRenterOrScheduler"):
        send(env.rental.functions.cancelRental(rental_id), env.outsider)
    with reverts("GPURentalNotRenterOrScheduler"):
        send(env.rental.functions.cancelRental(999), env.renter)
    send(env.rental.functions.cancelRental(rental_id), env.renter)
    with reverts("GPURentalNotActive"):
        send(env.rental.functions.cancelRental(rental_id), env.renter)
    other, _ = create(env, make_intent(env, nonce=2))
    increase_time(env.w3, 2 * HOUR)
    with reverts("GPURentalAlreadyEnded"):
        send(env.rental.functions.cancelRental(other), env.renter)


# ---------------------------------------------------------------- reclaim


def test_reclaim_after_timeout_refunds_and_blocks_late_result(env: Env) -> None:
    """After end + resultTimeout the renter gets the whole escrow back; a later RESULT is refused."""
    r0 = env.balance(env.renter)
    rental_id, _ = create(env)
    end = env.rental.functions.rental(rental_id).call()[8]
    increase_time(env.w3, end + RESULT_TIMEOUT - now(env.w3) - 5)
    with reverts("GPURentalReclaimTooEarly"):
        send(env.rental.functions.reclaimEscrow(rental_id), env.renter)
    increase_time(env.w3, 10)
    receipt = send(env.rental.functions.reclaimEscrow(rental_id), env.renter)
    (ev,) = env.rental.events.EscrowReclaimed().process_receipt(receipt, errors=DISCARD)
    assert ev["args"]["amount"] == escrow_of(PRICE, 2, 2 * HOUR)
    assert env.balance(env.renter) == r0
    assert env.balance(env.rental.address) == 0
    assert env.rental.functions.rentalStatus(rental_id).call() == EXPIRED
    with reverts("GPURentalNotAwaitingResult"):
        deliver(env, rental_id, HOUR)
    with reverts("GPURentalNotAwaitingResult"):
        send(env.rental.functions.reclaimEscrow(rental_id), env.renter)


def test_reclaim_of_cancelled_rental_counts_from_cancel(env: Env) -> None:
    """A cancelled rental's reclaim window opens resultTimeout after the cancellation."""
    rental_id, _ = create(env)
    receipt = send(env.rental.functions.cancelRental(rental_id), env.renter)
    cancelled_at = env.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    increase_time(env.w3, cancelled_at + RESULT_TIMEOUT - now(env.w3))
    send(env.rental.functions.reclaimEscrow(rental_id), env.renter)
    assert env.rental.functions.rentalStatus(rental_id).call() == EXPIRED


def test_reclaim_errors(env: Env) -> None:
    """Not once settled; anyone may reclaim after the timeout, and the escrow goes to the renter."""
    rental_id, _ = create(env)
    other, _ = create(env, make_intent(env, nonce=2, gpus=1))
    increase_time(env.w3, 2 * HOUR + RESULT_TIMEOUT)
    r0, o0 = env.balance(env.renter), env.balance(env.outsider)
    send(env.rental.functions.reclaimEscrow(other), env.outsider)
    assert env.balance(env.renter) - r0 == escrow_of(PRICE, 1, 2 * HOUR) and env.balance(env.outsider) == o0
    deliver(env, rental_id, HOUR)
    with reverts("GPURentalNotAwaitingResult"):
        send(env.rental.functions.reclaimEscrow(rental_id), env.renter)


# ---------------------------------------------------------------- feedback


def test_feedback_once_after_settlement(env: Env) -> None:
    """The renter rates a settled rental once; FEEDBACK goes to ReputationSystem."""
    rental_id, _ = create(env)
    with reverts("GPURentalNotSettled"):
        send(env.rental.functions.submitFeedback(rental_id, 4), env.renter)
    deliver(env, rental_id, HOUR)
    with reverts("GPURentalNotRenter"):
        send(env.rental.functions.submitFeedback(rental_id, 4), env.outsider)
    for bad in (0, 6):
        with reverts("GPURentalInvalidRating"):
            send(env.rental.functions.submitFeedback(rental_id, bad), env.renter)
    receipt = send(env.rental.functions.submitFeedback(rental_id, 4), env.renter)
    ((dst, target, kind, body),) = messages(env, receipt)
    assert (dst, target, kind) == (ETC_CHAIN_ID, REPUTATION, FEEDBACK)
    assert dec([FEEDBACK_T], body) == (rental_id, env.provider, env.renter, 4)
    (ev,) = env.rental.events.FeedbackSubmitted().process_receipt(receipt, errors=DISCARD)
    assert (ev["args"]["provider"], ev["args"]["rating"]) == (env.provider, 4)
    assert env.rental.functions.rental(rental_id).call()[4] is True
    with reverts("GPURentalAlreadyRated"):
        send(env.rental.functions.submitFeedback(rental_id, 5), env.renter)


# ---------------------------------------------------------------- governance and views


def test_initial_parameters_and_getters(env: Env) -> None:
    """The constructor's defaults and the wiring are readable."""
    r = env.rental.functions
    assert r.token().call() == env.token.address
    assert r.staking().call() == env.staking.address
    assert r.outbox().call() == env.outbox.address
    assert r.inbox().call() == env.inbox
    assert r.treasury().call() == env.treasury
    assert (r.etcChainId().call(), r.workVerification().call(), r.reputationSystem().call()) == (
        ETC_CHAIN_ID,
        WORK_VERIFICATION,
        REPUTATION,
    )
    assert (r.feeBps().call(), r.slashBps().call(), r.resultTimeout().call()) == (250, 1000, RESULT_TIMEOUT)
    assert (r.minDuration().call(), r.maxDuration().call(), r.maxGpus().call()) == (600, 30 * 24 * HOUR, 64)
    assert r.hasRole(r.GOVERNOR_ROLE().call(), env.admin).call()
    assert r.hasRole(b"\x00" * 32, env.admin).call()
    assert r.rental(5).call() == (
        "0x0000000000000000000000000000000000000000",
        "0x0000000000000000000000000000000000000000",
        "0x0000000000000000000000000000000000000000",
        NONE,
        False,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    )


def test_constructor_rejects_zero_addresses(eth: Web3) -> None:
    """Every constructor address must be set."""
    a = eth.eth.accounts
    with reverts("GPURentalZeroAddress"):
        deploy(eth, "eth", "GPURental", a[0], a[1], a[2], a[3], a[4], "0x" + "00" * 20)


SETTERS: list[tuple[str, tuple[Any, ...], str, str, tuple[Any, ...]]] = [
    # (setter, good args, event, bad error, bad args)
    ("setFeeBps", (2000,), "FeeBpsChanged", "GPURentalInvalidFeeBps", (2001,)),
    ("setSlashBps", (10_000,), "SlashBpsChanged", "GPURentalInvalidSlashBps", (10_001,)),
    ("setResultTimeout", (24 * HOUR,), "ResultTimeoutChanged", "GPURentalInvalidResultTimeout", (24 * HOUR - 1,)),
    (
        "setResultTimeout",
        (30 * 24 * HOUR,),
        "ResultTimeoutChanged",
        "GPURentalInvalidResultTimeout",
        (30 * 24 * HOUR + 1,),
    ),
    (
        "setDurationBounds",
        (60, 365 * 24 * HOUR),
        "DurationBoundsChanged",
        "GPURentalInvalidDurationBounds",
        (59, 600),
    ),
    ("setDurationBounds", (600, 600), "DurationBoundsChanged", "GPURentalInvalidDurationBounds", (601, 600)),
    (
        "setDurationBounds",
        (600, 700),
        "DurationBoundsChanged",
        "GPURentalInvalidDurationBounds",
        (600, 365 * 24 * HOUR + 1),
    ),
    ("setMaxGpus", (65_535,), "MaxGpusChanged", "GPURentalInvalidMaxGpus", (0,)),
    ("setTreasury", ("0x" + "aa" * 20,), "TreasuryChanged", "GPURentalZeroAddress", ("0x" + "00" * 20,)),
    ("setInbox", ("0x" + "bb" * 20,), "InboxChanged", "GPURentalZeroAddress", ("0x" + "00" * 20,)),
    ("setOutbox", ("0x" + "cc" * 20,), "OutboxChanged", "GPURentalZeroAddress", ("0x" + "00" * 20,)),
    (
        "setEtcPeers",
        (61, "0x" + "dd" * 20, "0x" + "ee" * 20),
        "EtcPeersChanged",
        "GPURentalInvalidEtcChainId",
        (0, "0x" + "dd" * 20, "0x" + "ee" * 20),
    ),
    (
        "setEtcPeers",
        (61, "0x" + "dd" * 20, "0x" + "ee" * 20),
        "EtcPeersChanged",
        "GPURentalInvalidEtcChainId",
        (31337, "0x" + "dd" * 20, "0x" + "ee" * 20),
    ),
    (
        "setEtcPeers",
        (61, "0x" + "dd" * 20, "0x" + "ee" * 20),
        "EtcPeersChanged",
        "GPURentalZeroAddress",
        (61, "0x" + "00" * 20, "0x" + "ee" * 20),
    ),
    (
        "setEtcPeers",
        (61, "0x" + "dd" * 20, "0x" + "ee" * 20),
        "EtcPeersChanged",
        "GPURentalZeroAddress",
        (61, "0x" + "dd" * 20, "0x" + "00" * 20),
    ),
]
GETTERS = {
    "setFeeBps": ["feeBps"],
    "setSlashBps": ["slashBps"],
    "setResultTimeout": ["resultTimeout"],
    "setDurationBounds": ["minDuration", "maxDuration"],
    "setMaxGpus": ["maxGpus"],
    "setTreasury": ["treasury"],
    "setInbox": ["inbox"],
    "setOutbox": ["outbox"],
    "setEtcPeers": ["etcChainId", "workVerification", "reputationSystem"],
}


@pytest.mark.parametrize(("setter", "good", "event", "error", "bad"), SETTERS)
def test_governor_setters(
    env: Env, setter: str, good: tuple[Any, ...], event: str, error: str, bad: tuple[Any, ...]
) -> None:
    """Each setter needs GOVERNOR_ROLE, enforces its bounds, stores the value and emits its event."""
    good = tuple(Web3.to_checksum_address(x) if isinstance(x, str) else x for x in good)
    bad = tuple(Web3.to_checksum_address(x) if isinstance(x, str) else x for x in bad)
    fn = getattr(env.rental.functions, setter)
    with reverts("AccessControlUnauthorizedAccount"):
        send(fn(*good), env.king)
    with reverts(error):
        send(fn(*bad), env.admin)
    receipt = send(fn(*good), env.admin)
    (ev,) = getattr(env.rental.events, event)().process_receipt(receipt, errors=DISCARD)
    assert tuple(ev["args"].values()) == good
    assert tuple(getattr(env.rental.functions, g)().call() for g in GETTERS[setter]) == good


def test_new_fee_and_limits_apply(env: Env) -> None:
    """Changed fee, GPU limit and durations govern later rentals."""
    send(env.rental.functions.setFeeBps(1000), env.admin)
    send(env.rental.functions.setMaxGpus(1), env.admin)
    with reverts("GPURentalInvalidGpus"):
        create(env)
    send(env.rental.functions.setDurationBounds(3 * HOUR, 4 * HOUR), env.admin)
    with reverts("GPURentalInvalidDuration"):
        create(env, make_intent(env, gpus=1))
    p0, t0 = env.balance(env.provider), env.balance(env.treasury)
    rental_id, _ = create(env, make_intent(env, gpus=1, duration=3 * HOUR))
    deliver(env, rental_id, 3 * HOUR)
    collect(env)
    escrow = escrow_of(PRICE, 1, 3 * HOUR)
    assert env.balance(env.treasury) - t0 == escrow // 10
    assert env.balance(env.provider) - p0 == escrow - escrow // 10


# ---------------------------------------------------------------- invariants


class RentalMachine(RuleBasedStateMachine):
    """Random creates, settlements, cancels and reclaims across three renters."""

    env: Env

    def __init__(self) -> None:
        super().__init__()
        w3 = self.env.w3
        self._snap = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.renters = [self.env.renter, self.env.renter2, w3.eth.accounts[8]]
        third = self.renters[2]
        send(self.env.token.functions.mint(third, 1_000_000 * E18), self.env.admin)
        send(self.env.token.functions.approve(self.env.rental.address, 2**256 - 1), third)
        # a stake for 12 GPUs and a 50 % slash: concurrent rentals run into the reservation (24 GPUs' worth), and
        # failed settlements shrink the stake
        send(self.env.staking.functions.setStake(self.env.provider, TIER_PROVIDER, PROVIDER_MIN * 12), self.env.admin)
        send(self.env.rental.functions.setSlashBps(5_000), self.env.admin)
        self.gpus: dict[int, int] = {}  # rentalId -> GPUs, of the open rentals
        self.nonce = 100
        self.open: dict[int, tuple[str, int]] = {}  # rentalId -> (renter, escrow), not settled nor reclaimed
        self.closed: set[int] = set()
        self.paid_out: dict[int, int] = {}
        self.ids: list[int] = []

    def teardown(self) -> None:
        self.env.w3.provider.make_request("evm_revert", [self._snap])  # type: ignore[arg-type]

    def _total(self) -> int:
        e = self.env
        return sum(e.balance(x) for x in [*self.renters, e.provider, e.treasury])

    @rule(
        who=st.integers(0, 2),
        gpus=st.integers(1, 8),
        minutes=st.integers(10, 240),
        price=st.one_of(st.integers(1, 10), st.integers(1, 10 * E18)),
    )
    def create(self, who: int, gpus: int, minutes: int, price: int) -> None:
        self.nonce += 1
        intent = make_intent(
            self.env,
            renter=self.renters[who],
            gpus=gpus,
            duration=minutes * 60,
            nonce=self.nonce,
            maxPricePerGpuHour=10 * E18,
        )
        escrow = escrow_of(price, gpus, minutes * 60)
        stake = self.env.staking.functions.stakeOf(self.env.provider, TIER_PROVIDER).call()
        if stake < PROVIDER_MIN * gpus:
            with reverts("GPURentalInsufficientStake"):
                create(self.env, intent, price=price)
            return
        if stake - PROVIDER_MIN * sum(self.gpus.values()) // 2 < PROVIDER_MIN * gpus // 2:
            with reverts("GPURentalStakeReserved"):
                create(self.env, intent, price=price)
            return
        if escrow == 0:
            with reverts("GPURentalZeroEscrow"):
                create(self.env, intent, price=price)
            return
        rental_id, _ = create(self.env, intent, price=price)
        self.open[rental_id] = (self.renters[who], escrow)
        self.gpus[rental_id] = gpus
        self.ids.append(rental_id)

    @rule(pick=st.integers(0, 10**6), verified=st.integers(0, 5 * HOUR), failed=st.booleans())
    def settle(self, pick: int, verified: int, failed: bool) -> None:
        if not self.ids:
            return
        rental_id = self.ids[pick % len(self.ids)]
        before = self._held()
        if rental_id in self.open:
            deliver(self.env, rental_id, verified, failed)
            self._close(rental_id, before)
        else:
            with reverts("GPURentalNotAwaitingResult"):
                deliver(self.env, rental_id, verified, failed)

    @rule(pick=st.integers(0, 10**6))
    def cancel(self, pick: int) -> None:
        if not self.ids:
            return
        rental_id = self.ids[pick % len(self.ids)]
        info = self.env.rental.functions.rental(rental_id).call()
        if info[3] == ACTIVE and now(self.env.w3) + 1 < info[8]:
            send(self.env.rental.functions.cancelRental(rental_id), info[0])
            assert self.env.rental.functions.rentalStatus(rental_id).call() == CANCELLED

    @rule(pick=st.integers(0, 10**6), wait=st.integers(0, 4 * 24 * HOUR))
    def reclaim(self, pick: int, wait: int) -> None:
        if not self.ids:
            return
        increase_time(self.env.w3, wait)
        rental_id = self.ids[pick % len(self.ids)]
        info = self.env.rental.functions.rental(rental_id).call()
        before = self._held()
        if rental_id not in self.open:
            with reverts("GPURentalNotAwaitingResult"):
                send(self.env.rental.functions.reclaimEscrow(rental_id), info[0])
        elif now(self.env.w3) + 1 < info[8] + RESULT_TIMEOUT:
            with reverts("GPURentalReclaimTooEarly"):
                send(self.env.rental.functions.reclaimEscrow(rental_id), info[0])
        else:
            r0 = self.env.balance(info[0])
            send(self.env.rental.functions.reclaimEscrow(rental_id), info[0])
            assert self.env.balance(info[0]) - r0 == self.open[rental_id][1]
            self._close(rental_id, before)

    def _held(self) -> int:
        """GPURental's balance less the fees waiting for collectFees: what backs the open escrows."""
        return self.env.balance(self.env.rental.address) - sum(self.env.rental.functions.pendingFees().call())

    @rule()
    def collect(self) -> None:
        t0, pending = self.env.balance(self.env.treasury), self.env.rental.functions.pendingFees().call()
        collect(self.env)
        assert self.env.balance(self.env.treasury) - t0 == pending[0] and pending[1] == 0  # no burn share here

    def _close(self, rental_id: int, before: int) -> None:
        out = before - self._held()
        assert out == self.open.pop(rental_id)[1]  # the whole escrow leaves (or waits as the fee), once
        del self.gpus[rental_id]
        assert rental_id not in self.paid_out
        self.paid_out[rental_id] = out
        self.closed.add(rental_id)

    @invariant()
    def balance_is_open_escrows(self) -> None:
        assert self._held() == sum(e for _, e in self.open.values())

    @invariant()
    def open_rentals_reserve_stake_and_every_slash_is_paid(self) -> None:
        e = self.env
        assert e.rental.functions.reservedGpusOf(e.provider).call() == sum(self.gpus.values())
        owed = sum(PROVIDER_MIN * g * 5_000 // 10_000 for g in self.gpus.values())
        assert e.staking.functions.stakeOf(e.provider, TIER_PROVIDER).call() >= owed
        for i in range(e.staking.functions.slashCount().call()):
            record = e.staking.functions.slashAt(i).call()
            assert record[2] == record[3] > 0  # requested == slashed

    @invariant()
    def statuses_match(self) -> None:
        for rental_id in self.open:
            assert self.env.rental.functions.rentalStatus(rental_id).call() in (ACTIVE, CANCELLED)
        for rental_id in self.closed:
            assert self.env.rental.functions.rentalStatus(rental_id).call() in (SETTLED, EXPIRED)


def test_escrow_invariants(env: Env) -> None:
    """Token balance == sum of open escrows; every rental pays out exactly once (settle or reclaim)."""
    RentalMachine.env = env
    run_state_machine_as_test(
        RentalMachine,
        settings=settings(
            max_examples=10, stateful_step_count=15, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )


def test_quote_bounds_are_governance_parameters(env: Env) -> None:
    """Kings read quoteBounds to clamp their quotes; only the governor sets them, 0 < min <= max."""
    assert env.rental.functions.quoteBounds().call() == [10**16, 50 * E18]
    with reverts("AccessControlUnauthorizedAccount"):
        send(env.rental.functions.setQuoteBounds(1, 2), env.king)
    with reverts("GPURentalInvalidQuoteBounds"):
        send(env.rental.functions.setQuoteBounds(0, 2), env.admin)
    with reverts("GPURentalInvalidQuoteBounds"):
        send(env.rental.functions.setQuoteBounds(3, 2), env.admin)
    receipt = send(env.rental.functions.setQuoteBounds(E18 // 10, 20 * E18), env.admin)
    (ev,) = env.rental.events.QuoteBoundsChanged().process_receipt(receipt, errors=DISCARD)
    assert (ev["args"]["minPricePerGpuHour"], ev["args"]["maxPricePerGpuHour"]) == (E18 // 10, 20 * E18)
    assert env.rental.functions.quoteBounds().call() == [E18 // 10, 20 * E18]
