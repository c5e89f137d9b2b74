"""ComputeVoucher (GPU-hours as ERC-1155 tokens) and GPURental's voucher-paid rentals and fee burn, on a real
anvil (prague) with the real GPUToken; the staking and outbox are GPURental's test mocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tests.contracts.chainkit import DEV_KEYS, deploy, increase_time, now, reverts, send
from tests.contracts.test_rental import (
    ETC_CHAIN_ID,
    HOUR,
    PROVIDER_MIN,
    QUEEN_MIN,
    REPUTATION,
    TIER_PROVIDER,
    TIER_QUEEN,
    WORK_VERIFICATION,
    as_tuple,
    result_data,
    typed_intent,
)

E18 = 10**18
ZERO = "0x" + "00" * 20
H100 = 2 * E18 + 5 * 10**17  # 2.5 GPUTOKEN per GPU-hour
A100 = 15 * 10**17
GOVERNOR_ROLE = Web3.keccak(text="GOVERNOR_ROLE")
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
SETTLED = 3


@dataclass
class VEnv:
    """Field names follow test_rental's Env, so its intent helpers work on this one."""

    w3: Web3
    rental: Contract
    token: Contract
    staking: Contract
    outbox: Contract
    vouchers: Contract
    admin: str
    king: str
    renter: str
    provider: str
    queen: str
    treasury: str
    inbox: str
    buyer: str
    outsider: str

    def balance(self, who: str) -> int:
        return int(self.token.functions.balanceOf(who).call())

    def held(self, who: str, vid: int) -> int:
        return int(self.vouchers.functions.balanceOf(who, vid).call())


def _deploy(w3: Web3) -> VEnv:
    a = w3.eth.accounts
    admin, king, renter, provider, queen, treasury, inbox, buyer, _, outsider = a[:10]
    token = deploy(w3, "eth", "GPUToken", admin, 10**9 * E18)
    send(token.functions.grantRole(MINTER_ROLE, admin), admin)
    staking = deploy(w3, "eth", "MockRentalStaking")
    outbox = deploy(w3, "eth", "MockRentalOutbox")
    rental = deploy(w3, "eth", "GPURental", admin, token.address, staking.address, outbox.address, inbox, treasury)
    vouchers = deploy(w3, "eth", "ComputeVoucher", admin, token.address, rental.address)
    send(rental.functions.setEtcPeers(ETC_CHAIN_ID, WORK_VERIFICATION, REPUTATION), admin)
    send(rental.functions.grantRole(rental.functions.SCHEDULER_ROLE().call(), king), admin)
    send(rental.functions.setComputeVoucher(vouchers.address), admin)
    send(staking.functions.setMinStake(TIER_PROVIDER, PROVIDER_MIN), admin)
    send(staking.functions.setMinStake(TIER_QUEEN, QUEEN_MIN), admin)
    send(staking.functions.setStake(provider, TIER_PROVIDER, PROVIDER_MIN * 64), admin)
    send(staking.functions.setStake(queen, TIER_QUEEN, QUEEN_MIN), admin)
    send(vouchers.functions.listClass("h100-sxm", H100), admin)  # id 1
    send(vouchers.functions.listClass("a100-80gb", A100), admin)  # id 2
    for who in (renter, buyer, outsider):
        send(token.functions.mint(who, 1_000_000 * E18), admin)
        send(token.functions.approve(vouchers.address, 2**256 - 1), who)
        send(token.functions.approve(rental.address, 2**256 - 1), who)
    return VEnv(w3, rental, token, staking, outbox, vouchers, admin, king, renter, provider, queen, treasury, inbox,
                buyer, outsider)


@pytest.fixture(scope="module")
def deployed(eth_session: Web3) -> VEnv:
    return _deploy(eth_session)


@pytest.fixture
def env(deployed: VEnv, eth: Web3) -> VEnv:
    assert deployed.w3 is eth
    return deployed


def intent_of(env: VEnv, renter: str | None = None, **over: Any) -> dict[str, Any]:
    intent: dict[str, Any] = {
        "renter": renter or env.renter, "provider": env.provider, "gpus": 2, "specHash": b"\x11" * 32,
        "maxPricePerGpuHour": 3 * E18, "duration": 2 * HOUR, "nonce": 1, "deadline": now(env.w3) + 600,
        "candidatesRoot": b"\0" * 32, "scheduler": env.king,
    }
    intent.update(over)
    return intent


def sign_voucher_intent(env: VEnv, intent: dict[str, Any], vid: int) -> bytes:
    plain = typed_intent(env, intent)  # type: ignore[arg-type]
    data = {
        "types": {**plain["types"], "VoucherRentalIntent": [{"name": "intent", "type": "RentalIntent"},
                                                            {"name": "voucherId", "type": "uint256"}]},
        "primaryType": "VoucherRentalIntent", "domain": plain["domain"],
        "message": {"intent": intent, "voucherId": vid},
    }
    key = DEV_KEYS[env.w3.eth.accounts.index(intent["renter"])]
    return bytes(Account.sign_message(encode_typed_data(full_message=data), key).signature)


def create_with_vouchers(env: VEnv, intent: dict[str, Any], vid: int, sig: bytes | None = None) -> tuple[int, Any]:
    sig = sign_voucher_intent(env, intent, vid) if sig is None else sig
    fn = env.rental.functions.createRentalWithVouchers(as_tuple(intent), vid, sig, env.queen, intent["provider"], [])
    receipt = send(fn, env.king)
    return env.rental.functions.rentalIdOf(intent["renter"], intent["nonce"]).call(), receipt


def settle(env: VEnv, rental_id: int, verified: int, failed: bool = False) -> Any:
    fn = env.rental.functions.onBridgeMessage(ETC_CHAIN_ID, WORK_VERIFICATION, result_data(rental_id, verified, failed))
    return send(fn, env.inbox)


def events(contract: Contract, receipt: Any, name: str) -> list[dict[str, Any]]:
    return [dict(e["args"]) for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)]


# ---------------------------------------------------------------- classes


def test_classes_are_listed_by_governance_within_the_quote_bounds(env: VEnv) -> None:
    """listClass: GOVERNOR_ROLE only, a model name, a price inside GPURental's quote bounds; relisting a model
    opens a new id at the new price and closes the old one for sale (its vouchers stay)."""
    v = env.vouchers
    assert v.functions.classCount().call() == 2
    assert v.functions.classOf(1).call() == ("h100-sxm", H100, True)
    assert v.functions.currentClassOf("h100-sxm").call() == 1
    assert v.functions.currentClassOf("rtx-4090").call() == 0
    with reverts("AccessControlUnauthorizedAccount"):
        send(v.functions.listClass("rtx-4090", E18), env.outsider)
    with reverts("ComputeVoucherEmptyModel"):
        send(v.functions.listClass("", E18), env.admin)
    lo, hi = env.rental.functions.quoteBounds().call()
    with reverts("ComputeVoucherInvalidPrice") as err:
        send(v.functions.listClass("rtx-4090", lo - 1), env.admin)
    assert err.args == [lo - 1, lo, hi]
    with reverts("ComputeVoucherInvalidPrice"):
        send(v.functions.listClass("rtx-4090", hi + 1), env.admin)
    send(v.functions.buy(1, 3, env.buyer), env.buyer)
    r = send(v.functions.listClass("h100-sxm", 3 * E18), env.admin)
    assert events(v, r, "ClassClosed") == [{"id": 1}]
    assert events(v, r, "ClassListed") == [{"id": 3, "model": "h100-sxm", "pricePerHour": 3 * E18}]
    assert v.functions.currentClassOf("h100-sxm").call() == 3
    assert v.functions.classOf(1).call() == ("h100-sxm", H100, False)
    with reverts("ComputeVoucherNotOnSale"):
        send(v.functions.buy(1, 1, env.buyer), env.buyer)
    with reverts("ComputeVoucherUnknownClass"):
        send(v.functions.buy(9, 1, env.buyer), env.buyer)
    with reverts("ComputeVoucherUnknownClass"):
        v.functions.classOf(9).call()
    # the closed class's vouchers are still backed at their own price
    assert v.functions.backingOf(1).call() == 3 * H100
    send(v.functions.closeClass(2), env.admin)
    assert v.functions.currentClassOf("a100-80gb").call() == 0
    with reverts("ComputeVoucherNotOnSale"):
        send(v.functions.closeClass(2), env.admin)


def test_buy_locks_the_price_and_mints_transferable_vouchers(env: VEnv) -> None:
    """buy locks price * hours of the caller's GPUTOKEN and mints hours vouchers to `to`; they transfer like any
    ERC-1155."""
    v = env.vouchers
    before = env.balance(env.buyer)
    r = send(v.functions.buy(1, 10, env.outsider), env.buyer)
    assert env.balance(env.buyer) == before - 10 * H100
    assert env.balance(v.address) == 10 * H100 == v.functions.totalBacking().call()
    assert env.held(env.outsider, 1) == 10 and env.held(env.buyer, 1) == 0
    assert events(v, r, "VouchersBought") == [
        {"buyer": env.buyer, "to": env.outsider, "id": 1, "amount": 10, "paid": 10 * H100}]
    assert events(v, r, "TransferSingle")[0]["to"] == env.outsider
    with reverts("ComputeVoucherZeroAmount"):
        send(v.functions.buy(1, 0, env.buyer), env.buyer)
    send(v.functions.safeTransferFrom(env.outsider, env.buyer, 1, 4, b""), env.outsider)
    assert (env.held(env.outsider, 1), env.held(env.buyer, 1)) == (6, 4)
    assert v.functions.totalSupply(1).call() == 10
    with reverts("ERC1155MissingApprovalForAll"):
        send(v.functions.safeTransferFrom(env.outsider, env.buyer, 1, 1, b""), env.buyer)
    # a contract that does not accept ERC-1155 cannot receive vouchers
    with reverts("ERC1155InvalidReceiver"):
        send(v.functions.buy(1, 1, env.rental.address), env.buyer)


def test_redeem_pays_the_backing_less_the_fee_and_burns_its_share(env: VEnv) -> None:
    """redeem burns the vouchers and pays price * hours less redeemFeeBps; of the fee GPURental's feeBurnBps
    share is burned (total supply falls), the rest goes to GPURental's treasury."""
    v, t = env.vouchers, env.token
    send(v.functions.buy(1, 10, env.buyer), env.buyer)
    send(env.rental.functions.setFeeBurnBps(5_000), env.admin)
    send(v.functions.setRedeemFeeBps(200), env.admin)  # 2 %
    supply, tre, out = t.functions.totalSupply().call(), env.balance(env.treasury), env.balance(env.outsider)
    r = send(v.functions.redeem(env.buyer, 1, 4, env.outsider), env.buyer)
    value = 4 * H100
    fee = value * 200 // 10_000
    burned = fee // 2
    assert env.balance(env.outsider) - out == value - fee
    assert env.balance(env.treasury) - tre == fee - burned
    assert supply - t.functions.totalSupply().call() == burned
    assert v.functions.totalBurned().call() == burned
    assert env.held(env.buyer, 1) == 6
    assert v.functions.totalBacking().call() == 6 * H100 == env.balance(v.address)
    assert events(v, r, "VouchersRedeemed") == [{"from": env.buyer, "to": env.outsider, "id": 1, "amount": 4,
                                                 "paid": value - fee, "fee": fee, "burned": burned}]
    # someone else's vouchers only with their ERC-1155 approval
    with reverts("ComputeVoucherNotOwnerNorApproved"):
        send(v.functions.redeem(env.buyer, 1, 1, env.outsider), env.outsider)
    send(v.functions.setApprovalForAll(env.outsider, True), env.buyer)
    send(v.functions.redeem(env.buyer, 1, 1, env.outsider), env.outsider)
    with reverts("ERC1155InsufficientBalance"):
        send(v.functions.redeem(env.buyer, 1, 6, env.buyer), env.buyer)
    with reverts("ComputeVoucherZeroAmount"):
        send(v.functions.redeem(env.buyer, 1, 0, env.buyer), env.buyer)
    with reverts("ComputeVoucherInvalidRedeemFee"):
        send(v.functions.setRedeemFeeBps(1_001), env.admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(v.functions.setRedeemFeeBps(0), env.outsider)


@pytest.mark.parametrize("mode", [1, 2])
def test_a_receivers_hook_cannot_reenter_buy(env: VEnv, mode: int) -> None:
    """A contract receiving bought vouchers runs onERC1155Received inside buy; from there it can neither redeem
    them (mode 1) nor buy again (mode 2): ComputeVoucher's guard refuses, and the backing stays exact."""
    v = env.vouchers
    rx = deploy(env.w3, "eth", "VoucherReentrantReceiver", v.address, env.token.address)
    send(env.token.functions.mint(rx.address, 100 * E18), env.admin)
    send(rx.functions.setMode(mode), env.outsider)
    backing0, supply0 = v.functions.totalBacking().call(), v.functions.totalSupply(1).call()
    send(rx.functions.buy(1, 3), env.outsider)  # the receiver buys for itself
    send(v.functions.buy(1, 2, rx.address), env.buyer)  # someone buys for it
    assert rx.functions.hookCalls().call() == 2 and not rx.functions.reentered().call()
    guard = Web3.keccak(text="ReentrancyGuardReentrantCall()")[:4]
    assert bytes(rx.functions.lastError().call()) == guard
    assert env.held(rx.address, 1) == 5
    assert env.balance(rx.address) == 100 * E18 - 3 * H100
    assert v.functions.totalSupply(1).call() == supply0 + 5
    assert v.functions.totalBacking().call() == backing0 + 5 * H100


def test_only_the_rental_spends_vouchers(env: VEnv) -> None:
    """spendForRental and refundFromRental are GPURental's alone: no one else can burn a holder's vouchers for
    their backing, or mint vouchers of a class (closed ones too) outside buy."""
    send(env.vouchers.functions.buy(1, 2, env.buyer), env.buyer)
    with reverts("ComputeVoucherNotRental"):
        send(env.vouchers.functions.spendForRental(env.buyer, 1, 2, 0), env.outsider)
    with reverts("ComputeVoucherNotRental"):
        send(env.vouchers.functions.refundFromRental(env.outsider, 1, H100, 0), env.outsider)


# ---------------------------------------------------------------- rentals paid with vouchers


def test_rental_paid_with_vouchers_uses_the_class_price_and_refunds_vouchers(env: VEnv) -> None:
    """createRentalWithVouchers burns gpus * hours vouchers, their backing becomes the escrow at the class
    price; settlement pays the provider for verified time and returns the unused whole GPU-hours as vouchers."""
    v = env.vouchers
    send(v.functions.buy(1, 5, env.renter), env.renter)
    tokens_before = env.balance(env.renter)
    intent = intent_of(env)  # 2 GPUs x 2 hours = 4 GPU-hours
    rid, r = create_with_vouchers(env, intent, 1)
    assert env.held(env.renter, 1) == 1
    assert env.balance(env.renter) == tokens_before  # no tokens taken: the vouchers paid
    assert env.balance(env.rental.address) == 4 * H100
    assert v.functions.totalBacking().call() == H100 == env.balance(v.address)
    info = env.rental.functions.rental(rid).call()
    assert info[10] == H100 and info[11] == 4 * H100  # price per GPU-hour, escrow
    [spent] = events(v, r, "VouchersSpent")
    assert spent == {"renter": env.renter, "id": 1, "rentalId": rid, "amount": 4}
    [created] = events(env.rental, r, "RentalCreated")
    assert (created["pricePerGpuHour"], created["escrow"]) == (H100, 4 * H100)
    provider0, treasury0 = env.balance(env.provider), env.balance(env.treasury)
    r = settle(env, rid, HOUR)  # one of two hours verified
    send(env.rental.functions.collectFees(), env.outsider)
    payment = H100 * 2 * HOUR // HOUR
    fee = payment * 250 // 10_000
    assert env.balance(env.provider) - provider0 == payment - fee
    assert env.balance(env.treasury) - treasury0 == fee
    assert env.balance(env.renter) == tokens_before  # the unused part is 2 whole GPU-hours: vouchers, no tokens
    assert env.held(env.renter, 1) == 1 + 2
    [refunded] = events(v, r, "VouchersRefunded")
    assert refunded == {"renter": env.renter, "id": 1, "rentalId": rid, "amount": 2, "paid": 0, "fee": 0,
                        "burned": 0}
    assert v.functions.totalBacking().call() == 3 * H100 == env.balance(v.address)
    assert env.rental.functions.rentalStatus(rid).call() == SETTLED
    assert env.balance(env.rental.address) == 0


def test_a_cancelled_voucher_rental_returns_no_more_than_its_vouchers_locked(env: VEnv) -> None:
    """Spend vouchers, cancel after a few seconds, then try every way back: the RESULT pays at most up to the
    cancellation, provider + protocol fee + vouchers returned + GPUTOKEN refund + redemption fee add up to exactly
    the vouchers' backing, a second RESULT and a reclaim after it are refused; the GPUTOKEN part is below one
    voucher's price and pays the redemption fee."""
    v, r_ = env.vouchers, env.rental
    send(v.functions.buy(1, 4, env.renter), env.renter)
    renter0, provider0, backing0 = env.balance(env.renter), env.balance(env.provider), v.functions.totalBacking().call()
    rid, _ = create_with_vouchers(env, intent_of(env), 1)  # 4 GPU-hours
    assert env.held(env.renter, 1) == 0
    assert v.functions.totalBacking().call() == backing0 - 4 * H100
    increase_time(env.w3, 10)
    send(r_.functions.cancelRental(rid), env.renter)
    info = r_.functions.rental(rid).call()
    ran = info[9] - info[6]  # cancelledAt - start
    assert 10 <= ran < 2 * HOUR
    treasury0 = env.balance(env.treasury)
    settle(env, rid, 2 * HOUR)  # the queen claims the whole rental: capped at the cancellation
    payment = H100 * 2 * ran // HOUR
    fee = payment * 250 // 10_000
    assert env.balance(env.provider) - provider0 == payment - fee
    refund = 4 * H100 - payment
    back, rest = divmod(refund, H100)
    assert back == 3 and 0 < rest < H100  # 3 whole GPU-hours unused, the rest of the 4th
    redeem_fee = rest * 100 // 10_000
    assert env.held(env.renter, 1) == back
    assert env.balance(env.renter) - renter0 == rest - redeem_fee
    assert env.balance(env.treasury) - treasury0 == redeem_fee  # feeBurnBps is 0 here
    assert r_.functions.pendingFees().call()[0] + r_.functions.pendingFees().call()[1] == fee
    with reverts("GPURentalNotAwaitingResult"):
        settle(env, rid, 0)
    increase_time(env.w3, 31 * 24 * HOUR)
    with reverts("GPURentalNotAwaitingResult"):
        send(r_.functions.reclaimEscrow(rid), env.renter)
    with reverts("GPURentalNotActive"):
        send(r_.functions.cancelRental(rid), env.renter)
    assert env.held(env.renter, 1) == back and v.functions.totalBacking().call() == backing0 - H100
    assert env.balance(v.address) == v.functions.totalBacking().call()
    send(r_.functions.collectFees(), env.outsider)
    assert env.balance(r_.address) == 0


@pytest.mark.parametrize("way", ["settle", "reclaim"])
def test_cancel_at_once_returns_the_vouchers_not_tokens(env: VEnv, way: str) -> None:
    """The redemption-fee bypass is closed: a voucher rental cancelled at once (settled with no verified time, or
    reclaimed after the result timeout) gives back every voucher spent and not one GPUTOKEN, and any way out of a
    cancelled rental pays the renter no more GPUTOKEN than redeeming the vouchers it lost would."""
    v, r_ = env.vouchers, env.rental
    send(v.functions.buy(1, 4, env.renter), env.renter)
    renter0, backing0 = env.balance(env.renter), v.functions.totalBacking().call()
    rid, _ = create_with_vouchers(env, intent_of(env), 1)  # 4 GPU-hours
    send(r_.functions.cancelRental(rid), env.renter)
    if way == "settle":
        r = settle(env, rid, 0)
    else:
        with reverts("GPURentalReclaimTooEarly"):
            send(r_.functions.reclaimEscrow(rid), env.outsider)
        increase_time(env.w3, r_.functions.resultTimeout().call())
        r = send(r_.functions.reclaimEscrow(rid), env.outsider)
    [refunded] = events(v, r, "VouchersRefunded")
    assert (refunded["amount"], refunded["paid"], refunded["fee"]) == (4, 0, 0)
    assert env.held(env.renter, 1) == 4
    assert env.balance(env.renter) == renter0
    assert v.functions.totalBacking().call() == backing0 == env.balance(v.address)
    assert env.balance(r_.address) == 0
    # the only GPUTOKEN exit is redeem, at its fee
    paid = v.functions.redeem(env.renter, 1, 4, env.renter).call({"from": env.renter})
    assert paid == 4 * H100 - 4 * H100 * 100 // 10_000


def test_a_part_used_voucher_rental_is_no_cheaper_redeem(env: VEnv) -> None:
    """Whatever the queen verifies before a cancellation, the GPUTOKEN the renter gets back is at most what
    redeeming the vouchers it did not get back would pay (the redemption fee is charged on the GPUTOKEN part)."""
    v = env.vouchers
    send(v.functions.setRedeemFeeBps(1_000), env.admin)  # 10 %: the largest fee, the strongest temptation
    for n, verified in enumerate((1, 36, 359, 360, 3599, 3600, 3601)):
        send(v.functions.buy(1, 1, env.renter), env.renter)
        renter0 = env.balance(env.renter)
        rid, _ = create_with_vouchers(env, intent_of(env, gpus=1, duration=HOUR, nonce=100 + n), 1)
        increase_time(env.w3, 3_601)
        settle(env, rid, verified)
        back = env.held(env.renter, 1)
        got = env.balance(env.renter) - renter0
        lost = 1 - back
        redeem_value = lost * H100 - lost * H100 * 1_000 // 10_000
        assert got <= redeem_value
        if verified < HOUR:
            assert back == 0 and got > 0
        if back:
            send(v.functions.redeem(env.renter, 1, back, env.renter), env.renter)
    assert v.functions.totalBacking().call() == env.balance(v.address)


def test_voucher_rental_needs_the_renters_voucher_signature(env: VEnv) -> None:
    """The renter signs the intent with the class: a plain intent signature, another class, a partial GPU-hour,
    too few vouchers, an unknown class or a class dearer than the intent's max price are refused."""
    send(env.vouchers.functions.buy(1, 4, env.renter), env.renter)
    send(env.vouchers.functions.buy(2, 4, env.renter), env.renter)
    intent = intent_of(env)
    plain = bytes(Account.sign_message(encode_typed_data(full_message=typed_intent(env, intent)),  # type: ignore[arg-type]
                                       DEV_KEYS[env.w3.eth.accounts.index(env.renter)]).signature)
    with reverts("GPURentalInvalidSignature"):
        create_with_vouchers(env, intent, 1, sig=plain)
    with reverts("GPURentalInvalidSignature"):  # signed for class 2, spent as class 1
        create_with_vouchers(env, intent, 1, sig=sign_voucher_intent(env, intent, 2))
    with reverts("GPURentalVoucherPartialHour") as err:
        create_with_vouchers(env, intent_of(env, gpus=1, duration=90 * 60), 1)
    assert err.args == [1, 90 * 60]
    with reverts("ERC1155InsufficientBalance"):
        create_with_vouchers(env, intent_of(env, gpus=5, duration=HOUR), 1)
    with reverts("GPURentalUnknownVoucherClass"):
        create_with_vouchers(env, intent, 7)
    with reverts("GPURentalInvalidPrice"):
        create_with_vouchers(env, intent_of(env, maxPricePerGpuHour=H100 - 1), 1)
    # the same nonce cannot be used twice, whatever pays
    create_with_vouchers(env, intent, 1)
    with reverts("GPURentalNonceUsed"):
        create_with_vouchers(env, intent, 2)
    # 2 GPUs x 30 minutes is one whole GPU-hour
    create_with_vouchers(env, intent_of(env, duration=30 * 60, nonce=2), 2)
    assert env.held(env.renter, 2) == 3


def test_vouchers_unset_is_refused(env: VEnv) -> None:
    """A GPURental without a ComputeVoucher takes no voucher rental."""
    bare = deploy(env.w3, "eth", "GPURental", env.admin, env.token.address, env.staking.address, env.outbox.address,
                  env.inbox, env.treasury)
    intent = intent_of(env)
    fn = bare.functions.createRentalWithVouchers(as_tuple(intent), 1, b"\0" * 65, env.queen, env.provider, [])
    with reverts("GPURentalVouchersNotSet"):
        send(fn, env.king)
    assert bare.functions.computeVoucher().call() == ZERO
    with reverts("AccessControlUnauthorizedAccount"):
        send(bare.functions.setComputeVoucher(env.vouchers.address), env.outsider)


def test_voucher_digest_matches_eip712(env: VEnv) -> None:
    """voucherIntentDigest is the EIP-712 hash a wallet signs, and differs from the plain intent's."""
    intent = intent_of(env)
    plain = typed_intent(env, intent)  # type: ignore[arg-type]
    data = {"types": {**plain["types"], "VoucherRentalIntent": [{"name": "intent", "type": "RentalIntent"},
                                                                {"name": "voucherId", "type": "uint256"}]},
            "primaryType": "VoucherRentalIntent", "domain": plain["domain"], "message": {"intent": intent, "voucherId": 2}}
    m = encode_typed_data(full_message=data)
    expected = Web3.keccak(b"\x19" + m.version + m.header + m.body)
    got = env.rental.functions.voucherIntentDigest(as_tuple(intent), 2).call()
    assert got == expected
    assert got != env.rental.functions.intentDigest(as_tuple(intent)).call()


# ---------------------------------------------------------------- usage burn


def test_fees_add_up_then_collect_pays_the_treasury_and_burns_its_share(env: VEnv) -> None:
    """Settlement adds the fee to the pending fees, split by feeBurnBps; collectFees (anyone) pays the treasury
    its share and burns the rest; pendingFees and feeBurnTotals read the sums."""
    r_ = env.rental
    with reverts("GPURentalInvalidFeeBurnBps"):
        send(r_.functions.setFeeBurnBps(10_001), env.admin)
    with reverts("AccessControlUnauthorizedAccount"):
        send(r_.functions.setFeeBurnBps(1), env.outsider)
    rc = send(r_.functions.setFeeBurnBps(4_000), env.admin)
    assert events(r_, rc, "FeeBurnBpsChanged") == [{"feeBurnBps": 4_000}]
    assert r_.functions.feeBurnBps().call() == 4_000
    escrows = []
    for nonce in (1, 2):
        intent = intent_of(env, nonce=nonce)
        fn = r_.functions.createRental(as_tuple(intent), _plain_sig(env, intent), 3 * E18, env.queen, env.provider, [])
        send(fn, env.king)
        escrows.append(r_.functions.rentalIdOf(env.renter, nonce).call())
    treasury0 = env.balance(env.treasury)
    for rid in escrows:
        settle(env, rid, 2 * HOUR)
    fee = (3 * E18 * 2 * 2) * 250 // 10_000
    burn = fee * 4_000 // 10_000
    assert env.balance(env.treasury) == treasury0
    assert r_.functions.pendingFees().call() == [2 * (fee - burn), 2 * burn]
    assert r_.functions.feeBurnTotals().call() == [0, 2 * burn]
    assert env.balance(r_.address) == 2 * fee
    supply = env.token.functions.totalSupply().call()
    rc = send(r_.functions.collectFees(), env.outsider)
    assert events(r_, rc, "FeesCollected") == [{"treasury": env.treasury, "toTreasury": 2 * (fee - burn),
                                                "burned": 2 * burn, "totalBurned": 2 * burn}]
    assert env.balance(env.treasury) - treasury0 == 2 * (fee - burn)
    assert supply - env.token.functions.totalSupply().call() == 2 * burn
    assert r_.functions.feeBurnTotals().call() == [2 * burn, 0]
    assert r_.functions.pendingFees().call() == [0, 0]
    assert env.balance(r_.address) == 0
    rc = send(r_.functions.collectFees(), env.outsider)  # nothing pending: a no-op
    assert events(r_, rc, "FeesCollected") == [{"treasury": env.treasury, "toTreasury": 0, "burned": 0,
                                                "totalBurned": 2 * burn}]


def test_full_burn_sends_nothing_to_the_treasury(env: VEnv) -> None:
    """feeBurnBps 10000: the whole fee is burned, the treasury gets nothing."""
    send(env.rental.functions.setFeeBurnBps(10_000), env.admin)
    intent = intent_of(env)
    send(env.rental.functions.createRental(as_tuple(intent), _plain_sig(env, intent), 3 * E18, env.queen,
                                           env.provider, []), env.king)
    treasury0 = env.balance(env.treasury)
    settle(env, env.rental.functions.rentalIdOf(env.renter, 1).call(), HOUR)
    send(env.rental.functions.collectFees(), env.outsider)
    assert env.balance(env.treasury) == treasury0
    assert env.rental.functions.feeBurnTotals().call() == [3 * E18 * 2 * 250 // 10_000, 0]


def test_malformed_result_is_refused(env: VEnv) -> None:
    """A RESULT that is not the standard encoding WorkVerification sends is refused, not misread."""
    intent = intent_of(env)
    send(env.rental.functions.createRental(as_tuple(intent), _plain_sig(env, intent), 3 * E18, env.queen,
                                           env.provider, []), env.king)
    rid = env.rental.functions.rentalIdOf(env.renter, 1).call()
    good = result_data(rid, HOUR)
    word = lambda n: n.to_bytes(32, "big")  # noqa: E731
    # layout: kind, offset 0x40, length 0xe0, rentalId, verifiedSeconds, failed, four counts
    for bad in (good[:-32], good + word(0), good[:32], b"", good[:0x20] + word(0x60) + good[0x40:],
                good[:0x40] + word(0x100) + good[0x60:], good[:0x80] + word(2**64) + good[0xa0:],
                good[:0xa0] + word(2) + good[0xc0:], word(2**8 + 3) + good[0x20:]):
        with reverts("GPURentalMalformedMessage"):
            send(env.rental.functions.onBridgeMessage(ETC_CHAIN_ID, WORK_VERIFICATION, bad), env.inbox)
    settle(env, rid, HOUR)


def _plain_sig(env: VEnv, intent: dict[str, Any]) -> bytes:
    key = DEV_KEYS[env.w3.eth.accounts.index(intent["renter"])]
    return bytes(Account.sign_message(encode_typed_data(full_message=typed_intent(env, intent)), key).signature)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the backing invariant


class VoucherMachine(RuleBasedStateMachine):
    """Buys, transfers, redemptions, rentals paid with vouchers and their settlements, relistings at new prices
    and fee changes in any order: the backing always equals the vouchers outstanding (and the GPUTOKEN held),
    and GPURental holds exactly its open escrows plus the fees waiting for collectFees."""

    env: VEnv

    def __init__(self) -> None:
        super().__init__()
        e = self.env
        self._snap = e.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.holders = [e.renter, e.buyer, e.outsider]
        self.held: dict[tuple[str, int], int] = {}
        self.open: dict[int, tuple[int, int, int]] = {}  # rentalId -> (escrow, class, price)
        self.nonce = 0

    def teardown(self) -> None:
        self.env.w3.provider.make_request("evm_revert", [self._snap])  # type: ignore[arg-type]

    def _ids(self) -> list[int]:
        return list(range(1, self.env.vouchers.functions.classCount().call() + 1))

    @rule(who=st.integers(0, 2), to=st.integers(0, 2), which=st.integers(0, 9), hours=st.integers(0, 40))
    def buy(self, who: int, to: int, which: int, hours: int) -> None:
        v = self.env.vouchers
        vid = self._ids()[which % len(self._ids())]
        on_sale = v.functions.classOf(vid).call()[2]
        if not on_sale:
            with reverts("ComputeVoucherNotOnSale"):
                send(v.functions.buy(vid, max(hours, 1), self.holders[to]), self.holders[who])
        elif hours == 0:
            with reverts("ComputeVoucherZeroAmount"):
                send(v.functions.buy(vid, 0, self.holders[to]), self.holders[who])
        else:
            send(v.functions.buy(vid, hours, self.holders[to]), self.holders[who])
            key = (self.holders[to], vid)
            self.held[key] = self.held.get(key, 0) + hours

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data(), to=st.integers(0, 2))
    def transfer(self, data: st.DataObject, to: int) -> None:
        (holder, vid) = data.draw(st.sampled_from(sorted(k for k, n in self.held.items() if n)))
        n = data.draw(st.integers(1, self.held[(holder, vid)]))
        send(self.env.vouchers.functions.safeTransferFrom(holder, self.holders[to], vid, n, b""), holder)
        self.held[(holder, vid)] -= n
        key = (self.holders[to], vid)
        self.held[key] = self.held.get(key, 0) + n

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data(), extra=st.integers(0, 1))
    def redeem(self, data: st.DataObject, extra: int) -> None:
        (holder, vid) = data.draw(st.sampled_from(sorted(k for k, n in self.held.items() if n)))
        n = data.draw(st.integers(1, self.held[(holder, vid)])) + extra * self.held[(holder, vid)]
        fn = self.env.vouchers.functions.redeem(holder, vid, n, holder)
        if n > self.held[(holder, vid)]:
            with reverts("ERC1155InsufficientBalance"):
                send(fn, holder)
            return
        send(fn, holder)
        self.held[(holder, vid)] -= n

    @precondition(lambda self: any(self.held.get((self.env.renter, i), 0) for i in range(1, 10)))
    @rule(data=st.data(), gpus=st.integers(1, 4))
    def rent(self, data: st.DataObject, gpus: int) -> None:
        e = self.env
        vid = data.draw(st.sampled_from(sorted(i for (h, i), n in self.held.items() if h == e.renter and n)))
        have = self.held[(e.renter, vid)]
        hours = data.draw(st.integers(1, 3))
        self.nonce += 1
        intent = intent_of(e, gpus=gpus, duration=hours * HOUR, nonce=self.nonce, maxPricePerGpuHour=50 * E18)
        if gpus * hours > have:
            with reverts("ERC1155InsufficientBalance"):
                create_with_vouchers(e, intent, vid)
            return
        rid, _ = create_with_vouchers(e, intent, vid)
        self.held[(e.renter, vid)] -= gpus * hours
        price = e.vouchers.functions.priceOf(vid).call()
        self.open[rid] = (gpus * hours * price, vid, price)

    def _refunded(self, rid: int, refund: int) -> None:
        """The unused escrow: its whole GPU-hours come back to the renter as vouchers of the rental's class."""
        _, vid, price = self.open.pop(rid)
        key = (self.env.renter, vid)
        self.held[key] = self.held.get(key, 0) + refund // price

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), share=st.integers(0, 4), failed=st.booleans())
    def settle(self, data: st.DataObject, share: int, failed: bool) -> None:
        rid = data.draw(st.sampled_from(sorted(self.open)))
        info = self.env.rental.functions.rental(rid).call()
        start, duration, gpus, price, cancelled_at = info[6], info[7], info[5], info[10], info[9]
        verified = duration * share // 4
        settle(self.env, rid, verified, failed)
        cap = cancelled_at - start if cancelled_at else duration
        payment = 0 if failed else price * gpus * min(verified, cap) // HOUR
        self._refunded(rid, self.open[rid][0] - payment)

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), wait=st.integers(0, 600))
    def cancel(self, data: st.DataObject, wait: int) -> None:
        e = self.env
        rid = data.draw(st.sampled_from(sorted(self.open)))
        info = e.rental.functions.rental(rid).call()
        increase_time(e.w3, wait)
        fn = e.rental.functions.cancelRental(rid)
        if info[9]:
            with reverts("GPURentalNotActive"):
                send(fn, e.renter)
        elif now(e.w3) + 10 >= info[6] + info[7]:
            if now(e.w3) + 1 >= info[6] + info[7]:
                with reverts("GPURentalAlreadyEnded"):
                    send(fn, e.renter)
        else:
            send(fn, e.renter)

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data())
    def reclaim(self, data: st.DataObject) -> None:
        e = self.env
        rid = data.draw(st.sampled_from(sorted(self.open)))
        info = e.rental.functions.rental(rid).call()
        end = info[9] or info[6] + info[7]
        increase_time(e.w3, max(0, end + e.rental.functions.resultTimeout().call() - now(e.w3)))
        send(e.rental.functions.reclaimEscrow(rid), e.outsider)
        self._refunded(rid, self.open[rid][0])

    @rule(which=st.integers(0, 1), price=st.integers(E18 // 10, 5 * E18))
    def relist(self, which: int, price: int) -> None:
        send(self.env.vouchers.functions.listClass(["h100-sxm", "a100-80gb"][which], price), self.env.admin)

    @rule(redeem_fee=st.integers(0, 1_000), burn=st.integers(0, 10_000))
    def fees(self, redeem_fee: int, burn: int) -> None:
        send(self.env.vouchers.functions.setRedeemFeeBps(redeem_fee), self.env.admin)
        send(self.env.rental.functions.setFeeBurnBps(burn), self.env.admin)

    @rule()
    def collect_fees(self) -> None:
        send(self.env.rental.functions.collectFees(), self.env.outsider)

    @invariant()
    def backing_equals_vouchers_outstanding(self) -> None:
        e, v = self.env, self.env.vouchers
        outstanding = sum(v.functions.totalSupply(i).call() * v.functions.priceOf(i).call() for i in self._ids())
        assert v.functions.totalBacking().call() == outstanding == e.balance(v.address)
        for i in self._ids():
            assert v.functions.backingOf(i).call() == v.functions.totalSupply(i).call() * v.functions.priceOf(i).call()
            assert v.functions.totalSupply(i).call() == sum(n for (_, j), n in self.held.items() if j == i)

    @invariant()
    def holdings_match_the_model(self) -> None:
        for (holder, vid), n in self.held.items():
            assert self.env.held(holder, vid) == n

    @invariant()
    def rental_holds_open_escrows_and_pending_burn(self) -> None:
        e = self.env
        pending = sum(e.rental.functions.pendingFees().call())
        assert e.balance(e.rental.address) == sum(escrow for escrow, _, _ in self.open.values()) + pending


def test_backing_always_equals_vouchers_outstanding(deployed: VEnv, eth: Web3) -> None:
    VoucherMachine.env = deployed
    run_state_machine_as_test(
        VoucherMachine,
        settings=settings(max_examples=4, stateful_step_count=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]),
    )
