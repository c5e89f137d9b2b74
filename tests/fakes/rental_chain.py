"""An in-memory GPURental + GPUToken behind the king's ``RentalChain`` port, with failure injection.

It keeps the money like the contracts do: token balances, allowances (ERC-2612 permits applied), escrow
locked per rental, and settlement (provider payment, fee, refund) for the verified time. ``escrow_ok()``
checks the invariant of the real contract: the tokens GPURental holds equal the escrow of its rentals not
settled yet. Failures are injected per call (``fail_next``): a revert, an RPC error before the call, or an
RPC error *after* the transaction landed (the king must adopt what landed, never create it twice).

Thread-safe: the king calls it from worker threads. ``gate_create`` makes ``create`` wait for a test's
signal (to race a cancel against a placement).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from eth_utils import to_checksum_address

from blendr.chain.contracts import RentalIntent, RentalStatus, is_candidate
from blendr.errors import ContractRevertError, UnavailableError
from blendr.store import Store
from king.job import PermitDoc
from king.rentals import (
    TOKEN_NAME,
    Created,
    RentalParams,
    intent_signer,
    permit_signer,
    voucher_intent_signer,
)
from king.settlements import NS_RENTALS, rid_key

CHAIN_ID = 31337
RENTAL_ADDRESS = "0x00000000000000000000000000000000000Be7A1"
TOKEN_ADDRESS = "0x00000000000000000000000000000000000bE70C"
TREASURY = "0x000000000000000000000000000000000000fEE5"
FEE_BPS = 500
REDEEM_FEE_BPS = 100  # ComputeVoucher's redemption fee, charged on a voucher rental's refund below one GPU-hour
SCHEDULER = to_checksum_address("0x" + "5c" * 20)  # the king's address, as GPURental knows it
ZERO = "0x" + "00" * 20


class Fault(Enum):
    REVERT = "revert"  # the call reverts with ``error``
    DOWN = "down"  # the RPC fails before anything happens
    LANDED = "landed"  # the transaction lands, then the reply is lost (UnavailableError)


@dataclass
class _Injected:
    fault: Fault
    error: str = ""


@dataclass
class FakeRental:
    rental_id: int
    renter: str
    provider: str
    queen: str
    gpus: int
    price: int
    escrow: int
    start: int
    duration: int
    status: RentalStatus = RentalStatus.ACTIVE
    ended_at: int = 0
    tx: str = ""
    settlement: dict[str, object] = field(default_factory=dict)
    voucher_id: int = 0  # nonzero: paid with vouchers of this class (the unused whole GPU-hours come back as such)


class FakeRentalChain:
    chain_id = CHAIN_ID
    rental_address = RENTAL_ADDRESS
    token_address = TOKEN_ADDRESS
    token_name = TOKEN_NAME
    scheduler = SCHEDULER

    def __init__(self, *, now: Callable[[], float], params: RentalParams | None = None, default_balance: int = 0,
                 verify_signatures: bool = True) -> None:
        """Args:
            now: the chain's clock (block time).
            default_balance: balance and allowance of an address never funded (benches: many renters).
            verify_signatures: recover each intent's signer in ``create`` as GPURental does (benches that
                measure the king's own CPU turn it off: this fake runs in the king's process).
        """
        self._now = now
        self.params_now = params or RentalParams(60, 30 * 86400, 64, 10**16, 50 * 10**18)
        self.default_balance = default_balance
        self.verify_signatures = verify_signatures
        self._lock = threading.Lock()
        self.balances: dict[str, int] = {}
        self.allowances: dict[str, int] = {}
        self.permit_nonces: dict[str, int] = {}
        self.rentals: dict[int, FakeRental] = {}
        self.voucher_prices: dict[int, int] = {}  # ComputeVoucher class -> price per GPU-hour
        self.voucher_models: dict[int, str] = {}  # ComputeVoucher class -> GPU model key
        self.vouchers: dict[tuple[str, int], int] = {}  # (holder, class) -> GPU-hours
        self.understaked: set[str] = set()
        self.contract_balance = 0
        self.calls: dict[str, int] = {}
        self._faults: dict[str, list[_Injected]] = {}
        self._tx = itertools.count(1)
        self.create_gate: threading.Event | None = None
        self.create_entered = threading.Event()

    # ------------------------------------------------------------------ test controls
    def fund(self, who: str, amount: int, allowance: int = 0) -> None:
        who = to_checksum_address(who)
        self.balances[who] = self.balances.get(who, 0) + amount
        self.allowances[who] = allowance

    def fail_next(self, method: str, fault: Fault, error: str = "", times: int = 1) -> None:
        self._faults.setdefault(method, []).extend(_Injected(fault, error) for _ in range(times))

    def gate_create(self) -> threading.Event:
        """``create`` waits until the returned event is set (``create_entered`` is set as it starts waiting)."""
        self.create_gate = threading.Event()
        return self.create_gate

    def _fault(self, method: str) -> _Injected | None:
        self.calls[method] = self.calls.get(method, 0) + 1
        queue = self._faults.get(method)
        return queue.pop(0) if queue else None

    def _before(self, method: str) -> _Injected | None:
        f = self._fault(method)
        if f is None:
            return None
        if f.fault == Fault.REVERT:
            raise ContractRevertError(f"{method} reverted: {f.error}", error=f.error)
        if f.fault == Fault.DOWN:
            raise UnavailableError(f"eth RPC: {method} failed (injected)")
        return f

    def escrow_ok(self) -> bool:
        """GPURental's invariant: its token balance equals the escrow of rentals not settled."""
        open_escrow = sum(r.escrow for r in self.rentals.values() if r.status != RentalStatus.SETTLED)
        return self.contract_balance == open_escrow

    def total_supply_seen(self) -> int:
        return sum(self.balances.values()) + self.contract_balance

    def settle(self, rental_id: int, verified_seconds: int, store: Store | None = None, *,
               failed: bool = False) -> dict[str, object]:
        """Settles a rental that ended (or was cancelled) for ``verified_seconds``, as the RESULT message over
        the bridge does; writes the record the king's settlement follower would (when ``store`` is given)."""
        with self._lock:
            r = self.rentals[rental_id]
            if r.status == RentalStatus.SETTLED:
                raise ContractRevertError("already settled", error="GPURentalNotActive")
            ran = (r.ended_at or int(self._now())) - r.start
            seconds = 0 if failed else max(0, min(verified_seconds, ran, r.duration))
            gross = min(r.escrow, r.price * r.gpus * seconds // 3600)
            fee = gross * FEE_BPS // 10_000
            refund = r.escrow - gross
            self.balances[r.provider] = self.balances.get(r.provider, 0) + gross - fee
            self.balances[TREASURY] = self.balances.get(TREASURY, 0) + fee
            if r.voucher_id:  # ComputeVoucher.refundFromRental: whole GPU-hours as vouchers, the rest less the fee
                back, rest = divmod(refund, r.price)
                key = (r.renter, r.voucher_id)
                self.vouchers[key] = self.vouchers.get(key, 0) + back
                redeem_fee = rest * REDEEM_FEE_BPS // 10_000
                self.balances[TREASURY] = self.balances.get(TREASURY, 0) + redeem_fee
                self.balances[r.renter] = self.balances.get(r.renter, 0) + rest - redeem_fee
            else:
                self.balances[r.renter] = self.balances.get(r.renter, 0) + refund
            self.contract_balance -= r.escrow
            r.status = RentalStatus.SETTLED
            tx = f"0x{next(self._tx):064x}"
            r.settlement = {"rental_id": rid_key(rental_id), "state": "settled", "verified_seconds": seconds,
                            "failed": failed, "provider_payment": str(gross - fee), "fee": str(fee),
                            "refund": str(refund), "settled_tx": tx, "slashed": "0"}
        if store is not None:
            store.put(NS_RENTALS, rid_key(rental_id), r.settlement)
        return r.settlement

    # ------------------------------------------------------------------ RentalChain
    def params(self) -> RentalParams:
        self._before("params")
        return self.params_now

    def balance(self, who: str) -> int:
        self._before("balance")
        return self.balances.get(to_checksum_address(who), self.default_balance)

    def allowance(self, who: str) -> int:
        self._before("allowance")
        return self.allowances.get(to_checksum_address(who), self.default_balance)

    def permit_nonce(self, who: str) -> int:
        self._before("permit_nonce")
        return self.permit_nonces.get(to_checksum_address(who), 0)

    def nonce_used(self, renter: str, nonce: int) -> bool:
        self._before("nonce_used")
        rid = RentalIntent(renter, renter, 0, bytes(32), 0, 0, nonce, 0, bytes(32), ZERO).rental_id(CHAIN_ID,
                                                                                                 RENTAL_ADDRESS)
        return rid in self.rentals

    def status(self, rental_id: int) -> RentalStatus:
        self._before("status")
        r = self.rentals.get(rental_id)
        return RentalStatus.NONE if r is None else r.status

    def now(self) -> int:
        self._before("now")
        return int(self._now())

    def voucher_price(self, voucher_id: int) -> int:
        self._before("voucher_price")
        return self.voucher_prices.get(voucher_id, 0)

    def voucher_model(self, voucher_id: int) -> str:
        self._before("voucher_model")
        return self.voucher_models.get(voucher_id, "") if voucher_id in self.voucher_prices else ""

    def voucher_balance(self, who: str, voucher_id: int) -> int:
        self._before("voucher_balance")
        return self.vouchers.get((to_checksum_address(who), voucher_id), 0)

    def create(self, intent: RentalIntent, signature: bytes, price: int, queen: str, provider: str,
               permit: PermitDoc | None, proof: Sequence[bytes], voucher_id: int = 0) -> Created:
        if self.create_gate is not None:
            self.create_entered.set()
            self.create_gate.wait(30)
        injected = self._before("create")
        with self._lock:
            rid = intent.rental_id(CHAIN_ID, RENTAL_ADDRESS)
            existing = self.rentals.get(rid)
            if existing is not None:  # adopted, as king.rentals.EthRentals does
                if existing.provider != to_checksum_address(provider):
                    raise ContractRevertError("nonce used by another provider's rental", error="GPURentalNonceUsed")
                return Created(rid, "", existing.start, existing.duration, existing.escrow)
            if voucher_id:
                created = self._create_with_vouchers(rid, intent, signature, voucher_id, queen, provider, proof)
            else:
                created = self._create(rid, intent, signature, price, queen, provider, permit, proof)
        if injected is not None and injected.fault == Fault.LANDED:
            raise UnavailableError("eth RPC: no receipt for createRental (injected; it landed)")
        return created

    def _create(self, rid: int, intent: RentalIntent, signature: bytes, price: int, queen: str, provider: str,
                permit: PermitDoc | None, proof: Sequence[bytes]) -> Created:
        renter = to_checksum_address(intent.renter)
        provider = to_checksum_address(provider)
        now = int(self._now())
        if to_checksum_address(intent.scheduler) != SCHEDULER:
            raise ContractRevertError("not the intent's scheduler", error="GPURentalNotScheduler")
        if int(intent.provider, 16) == 0 and not is_candidate(intent.candidates_root, provider, proof):
            raise ContractRevertError("not a candidate", error="GPURentalProviderNotCandidate")
        if self.verify_signatures and intent_signer(intent, signature, CHAIN_ID, RENTAL_ADDRESS) != renter:
            raise ContractRevertError("bad signature", error="GPURentalInvalidSignature")
        if intent.deadline < now:
            raise ContractRevertError("intent expired", error="GPURentalIntentExpired")
        if price > intent.max_price_per_gpu_hour:
            raise ContractRevertError("price above max", error="GPURentalInvalidPrice")
        if provider in self.understaked:
            raise ContractRevertError("provider stake too low", error="GPURentalInsufficientStake")
        escrow = price * intent.gpus * intent.duration // 3600
        if permit is not None and permit.value > 0:
            nonce = self.permit_nonces.get(renter, 0)
            if self.verify_signatures and permit_signer(permit, renter, RENTAL_ADDRESS, nonce, token_name=TOKEN_NAME,
                                                        chain_id=CHAIN_ID, token=TOKEN_ADDRESS) != renter:
                raise ContractRevertError("permit signer", error="ERC2612InvalidSigner")
            if permit.deadline < now:
                raise ContractRevertError("permit expired", error="ERC2612ExpiredSignature")
            self.allowances[renter] = permit.value
            self.permit_nonces[renter] = nonce + 1
        allowance = self.allowances.get(renter, self.default_balance)
        balance = self.balances.get(renter, self.default_balance)
        if allowance < escrow:
            raise ContractRevertError("allowance", error="ERC20InsufficientAllowance")
        if balance < escrow:
            raise ContractRevertError("balance", error="ERC20InsufficientBalance")
        self.allowances[renter] = allowance - escrow
        self.balances[renter] = balance - escrow
        self.contract_balance += escrow
        tx = f"0x{next(self._tx):064x}"
        self.rentals[rid] = FakeRental(rid, renter, provider, to_checksum_address(queen), intent.gpus, price, escrow,
                                       now, intent.duration, tx=tx)
        return Created(rid, tx, now, intent.duration, escrow)

    def _create_with_vouchers(self, rid: int, intent: RentalIntent, signature: bytes, voucher_id: int, queen: str,
                              provider: str, proof: Sequence[bytes]) -> Created:
        """GPURental.createRentalWithVouchers: the class price, whole GPU-hours, the renter's vouchers burned."""
        renter = to_checksum_address(intent.renter)
        price = self.voucher_prices.get(voucher_id, 0)
        if price == 0:
            raise ContractRevertError("unknown class", error="GPURentalUnknownVoucherClass")
        if (intent.gpus * intent.duration) % 3600:
            raise ContractRevertError("partial hour", error="GPURentalVoucherPartialHour")
        if self.verify_signatures and voucher_intent_signer(intent, voucher_id, signature, CHAIN_ID,
                                                            RENTAL_ADDRESS) != renter:
            raise ContractRevertError("bad signature", error="GPURentalInvalidSignature")
        hours = intent.gpus * intent.duration // 3600
        held = self.vouchers.get((renter, voucher_id), 0)
        if held < hours:
            raise ContractRevertError("vouchers", error="ERC1155InsufficientBalance")
        escrow = price * hours
        # the rest of the checks are createRental's; the escrow comes from the vouchers' backing
        self.balances[renter] = self.balances.get(renter, self.default_balance) + escrow
        self.allowances[renter] = self.allowances.get(renter, self.default_balance) + escrow
        saved = self.verify_signatures
        self.verify_signatures = False  # the voucher signature was checked above
        try:
            created = self._create(rid, intent, signature, price, queen, provider, None, proof)
        except ContractRevertError:
            self.balances[renter] -= escrow
            self.allowances[renter] -= escrow
            raise
        finally:
            self.verify_signatures = saved
        self.vouchers[(renter, voucher_id)] = held - hours
        self.rentals[rid].voucher_id = voucher_id
        return created

    def cancel(self, rental_id: int) -> str:
        self._before("cancel")
        with self._lock:
            r = self.rentals.get(rental_id)
            if r is None or r.status != RentalStatus.ACTIVE:
                return ""
            now = int(self._now())
            if now >= r.start + r.duration:
                return ""
            r.status = RentalStatus.CANCELLED
            r.ended_at = now
            return f"0x{next(self._tx):064x}"
