"""The king's rental port on Ethereum: create a rental from a renter's intent (escrow in), cancel one.

``RentalChain`` is the small interface the job manager uses; ``EthRentals`` is the adapter over GPURental
and GPUToken with the king's ChainClient (its own nonce pipeline, bounded retries, and recognition of a
transaction whose reply was lost, so a retried create never lands twice). Every method blocks: the job
manager runs them in a worker thread. Every error they raise is a BlendrError (web3's are translated here).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from eth_utils import to_checksum_address

from blendr.chain.contracts import ComputeVoucher, GPURental, GPUToken, RentalIntent, RentalStatus
from blendr.errors import BlendrError, ContractRevertError, InvalidArgumentError, UnavailableError
from blendr.hashing import checksum_address, keccak256
from blendr.telemetry import get_logger
from king.job import PermitDoc

log = get_logger("blendr.king.rentals")
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Created:
    rental_id: int
    tx: str
    start: int
    duration: int
    escrow: int


@dataclass(frozen=True)
class RentalParams:
    min_duration: int
    max_duration: int
    max_gpus: int
    # Governance bounds of a quote per GPU-hour (wei).
    min_quote: int = 0
    max_quote: int = 0


TOKEN_NAME = "BlendrChain GPU Token"  # GPUTOKEN's ERC-20 name, the name in its ERC-2612 permit domain


class RentalChain(Protocol):
    chain_id: int
    rental_address: str
    token_address: str
    token_name: str
    scheduler: str  # the king's address (SCHEDULER_ROLE), the scheduler its renters bind their intents to

    def params(self) -> RentalParams: ...
    def balance(self, who: str) -> int: ...
    def allowance(self, who: str) -> int: ...
    def permit_nonce(self, who: str) -> int: ...
    def nonce_used(self, renter: str, nonce: int) -> bool: ...
    def voucher_price(self, voucher_id: int) -> int: ...
    def voucher_model(self, voucher_id: int) -> str: ...
    def voucher_balance(self, who: str, voucher_id: int) -> int: ...
    def create(self, intent: RentalIntent, signature: bytes, price: int, queen: str, provider: str,
               permit: PermitDoc | None, proof: Sequence[bytes], voucher_id: int = 0) -> Created: ...
    def cancel(self, rental_id: int) -> str: ...
    def status(self, rental_id: int) -> RentalStatus: ...
    def now(self) -> int: ...


_DOMAIN_TYPE = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_INTENT_TYPE = keccak256(b"RentalIntent(address renter,address provider,uint32 gpus,bytes32 specHash,"
                      b"uint256 maxPricePerGpuHour,uint64 duration,uint256 nonce,uint64 deadline,"
                      b"bytes32 candidatesRoot,address scheduler)")
_VOUCHER_INTENT_TYPE = keccak256(b"VoucherRentalIntent(RentalIntent intent,uint256 voucherId)RentalIntent(address renter,"
                                 b"address provider,uint32 gpus,bytes32 specHash,uint256 maxPricePerGpuHour,"
                                 b"uint64 duration,uint256 nonce,uint64 deadline,bytes32 candidatesRoot,"
                                 b"address scheduler)")
_PERMIT_TYPE = keccak256(b"Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _addr(a: str) -> bytes:
    return bytes(12) + bytes.fromhex(a[2:] if a[:2] in ("0x", "0X") else a)


@functools.lru_cache(maxsize=16)
def _domain_separator(name: bytes, chain_id: int, contract: str) -> bytes:
    return keccak256(_DOMAIN_TYPE + keccak256(name) + keccak256(b"1") + _word(chain_id) + _addr(contract))


def intent_digest(intent: RentalIntent, chain_id: int, rental: str) -> bytes:
    """The EIP-712 digest GPURental checks for ``intent`` (the same bytes ``encode_typed_data`` hashes)."""
    return keccak256(b"\x19\x01" + _domain_separator(b"BlendrGPURental", chain_id, rental.lower()) + _intent_struct(intent))


def voucher_intent_digest(intent: RentalIntent, voucher_id: int, chain_id: int, rental: str) -> bytes:
    """The EIP-712 digest of ``VoucherRentalIntent(intent, voucher_id)``: ``intent`` paid with ComputeVoucher
    GPU-hours of class ``voucher_id`` (GPURental.voucherIntentDigest)."""
    if not 0 <= voucher_id < 2**256:
        raise InvalidArgumentError("the voucher class id is out of range for uint256")
    struct = keccak256(_VOUCHER_INTENT_TYPE + _intent_struct(intent) + _word(voucher_id))
    return keccak256(b"\x19\x01" + _domain_separator(b"BlendrGPURental", chain_id, rental.lower()) + struct)


def _intent_struct(intent: RentalIntent) -> bytes:
    """EIP-712 hashStruct of ``intent``; InvalidArgumentError for a field out of its type's range."""
    if not 0 <= intent.gpus < 2**32 or not 0 <= intent.duration < 2**64 or not 0 <= intent.deadline < 2**64 \
            or not 0 <= intent.max_price_per_gpu_hour < 2**256 or not 0 <= intent.nonce < 2**256 \
            or len(intent.spec_hash) != 32 or len(intent.candidates_root) != 32:
        raise InvalidArgumentError("an intent field is out of range for its EIP-712 type")
    return keccak256(_INTENT_TYPE + _addr(intent.renter) + _addr(intent.provider) + _word(intent.gpus)
                     + intent.spec_hash + _word(intent.max_price_per_gpu_hour) + _word(intent.duration)
                     + _word(intent.nonce) + _word(intent.deadline) + intent.candidates_root
                     + _addr(intent.scheduler))


def permit_digest(owner: str, spender: str, value: int, nonce: int, deadline: int, *, token_name: str,
                  chain_id: int, token: str) -> bytes:
    """The EIP-712 digest of an ERC-2612 ``Permit`` of ``token`` (OpenZeppelin's ERC20Permit, version 1)."""
    if not 0 <= value < 2**256 or not 0 <= nonce < 2**256 or not 0 <= deadline < 2**256:
        raise InvalidArgumentError("a permit field is out of range for its EIP-712 type")
    struct = keccak256(_PERMIT_TYPE + _addr(owner) + _addr(spender) + _word(value) + _word(nonce) + _word(deadline))
    return keccak256(b"\x19\x01" + _domain_separator(token_name.encode(), chain_id, token.lower()) + struct)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The address that signed ``digest``, as OpenZeppelin's ECDSA recovers it; '' for a signature it refuses
    (not 65 bytes, v not 27/28, s in the upper half, r or s out of range)."""
    from coincurve import PublicKey

    if len(signature) != 65 or signature[64] not in (27, 28):
        return ""
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
    if not 0 < r < 2 * _HALF_N + 1 or not 0 < s <= _HALF_N:
        return ""
    try:
        pub = PublicKey.from_signature_and_message(signature[:64] + bytes([signature[64] - 27]), digest, hasher=None)
    except ValueError:  # coincurve: no point recovers from this signature
        return ""
    return checksum_address("0x" + keccak256(pub.format(compressed=False)[1:])[-20:].hex())


def intent_signer(intent: RentalIntent, signature: bytes, chain_id: int, rental: str) -> str:
    """The address that signed ``intent`` for this GPURental, as GPURental would recover it ('' if none)."""
    try:
        return recover_signer(intent_digest(intent, chain_id, rental), signature)
    except InvalidArgumentError:
        return ""


def voucher_intent_signer(intent: RentalIntent, voucher_id: int, signature: bytes, chain_id: int, rental: str) -> str:
    """The address that signed ``intent`` paid with vouchers of class ``voucher_id`` ('' if none)."""
    try:
        return recover_signer(voucher_intent_digest(intent, voucher_id, chain_id, rental), signature)
    except InvalidArgumentError:
        return ""


def permit_signer(permit: PermitDoc, owner: str, spender: str, nonce: int, *, token_name: str, chain_id: int,
                  token: str) -> str:
    """The address that signed ``permit`` for ``spender`` at the owner's permit ``nonce`` ('' if none)."""
    if not 0 <= permit.v < 256:
        return ""
    try:
        digest = permit_digest(owner, spender, permit.value, nonce, permit.deadline, token_name=token_name,
                               chain_id=chain_id, token=token)
    except InvalidArgumentError:
        return ""
    return recover_signer(digest, permit.r + permit.s + bytes([permit.v]))


def _translated(fn: Callable[P, T]) -> Callable[P, T]:
    """Adapter boundary: a library error from web3 or the transport becomes UnavailableError (logged here),
    so the job modules see only BlendrError."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except BlendrError:
            raise
        except Exception as exc:  # the adapter boundary: whatever web3 raises is translated here, once
            log.warning("Ethereum call failed", op=fn.__name__, error=f"{type(exc).__name__}: {str(exc)[:200]}")
            raise UnavailableError(f"Ethereum did not answer {fn.__name__} ({type(exc).__name__})") from exc

    return run


class EthRentals:
    """GPURental + GPUToken (+ ComputeVoucher, for rentals paid with vouchers) with the king's key (SCHEDULER_ROLE)."""

    def __init__(self, rental: GPURental, token: GPUToken, vouchers: ComputeVoucher | None = None) -> None:
        self.rental = rental
        self.token = token
        self.vouchers = vouchers
        self.chain_id = rental.client.settings.chain_id
        self.rental_address = rental.address
        self.token_address = token.address
        self.token_name = TOKEN_NAME
        self.scheduler = checksum_address(rental.client.address)

    @_translated
    def params(self) -> RentalParams:
        """GPURental's governance parameters the king obeys (read from the chain on every call)."""
        f = self.rental.fn
        lo, hi = self.rental._call(f.quoteBounds())
        return RentalParams(int(self.rental._call(f.minDuration())), int(self.rental._call(f.maxDuration())),
                            int(self.rental._call(f.maxGpus())), int(lo), int(hi))

    @_translated
    def balance(self, who: str) -> int:
        return int(self.token.balance_of(who))

    @_translated
    def allowance(self, who: str) -> int:
        return int(self.token.allowance(who, self.rental_address))

    @_translated
    def permit_nonce(self, who: str) -> int:
        return int(self.token.nonces(who))

    @_translated
    def nonce_used(self, renter: str, nonce: int) -> bool:
        rid = int(self.rental._call(self.rental.fn.rentalIdOf(renter, nonce)))
        return self.status(rid) != RentalStatus.NONE

    @_translated
    def voucher_price(self, voucher_id: int) -> int:
        """GPUTOKEN wei per GPU-hour of voucher class ``voucher_id``; 0 for an unknown class or no ComputeVoucher."""
        return 0 if self.vouchers is None else int(self.vouchers.price_of(voucher_id))

    @_translated
    def voucher_model(self, voucher_id: int) -> str:
        """The GPU model key of voucher class ``voucher_id``; '' for an unknown class or no ComputeVoucher."""
        if self.vouchers is None or not int(self.vouchers.price_of(voucher_id)):
            return ""
        return self.vouchers.class_of(voucher_id).model

    @_translated
    def voucher_balance(self, who: str, voucher_id: int) -> int:
        return 0 if self.vouchers is None else self.vouchers.balance_of(who, voucher_id)

    @_translated
    def status(self, rental_id: int) -> RentalStatus:
        return self.rental.rental(rental_id).status

    @_translated
    def create(self, intent: RentalIntent, signature: bytes, price: int, queen: str, provider: str,
               permit: PermitDoc | None, proof: Sequence[bytes], voucher_id: int = 0) -> Created:
        """Creates the rental, or adopts it when a previous attempt already created it (same renter and nonce).

        ``proof``: that ``provider`` is one of the intent's candidates (:func:`blendr.chain.contracts.candidates_tree`).
        ``voucher_id``: nonzero, the escrow is the renter's ComputeVoucher GPU-hours of that class at its price
        (``signature`` then signs the VoucherRentalIntent; ``price`` and ``permit`` are not used).

        Raises:
            ContractRevertError: naming GPURental's custom error (stake, allowance, price, expired intent...).
        """
        rid = intent.rental_id(self.chain_id, self.rental_address)
        info = self.rental.rental(rid)
        if info.status == RentalStatus.NONE:
            try:
                if voucher_id:
                    receipt: Any = self.rental.create_with_vouchers(intent, voucher_id, signature, queen,
                                                                    provider=provider, proof=proof)
                elif permit is not None and permit.value > 0:
                    receipt = self.rental.create_with_permit(intent, signature, price, queen, permit.value,
                                                                  permit.deadline, permit.v, permit.r, permit.s,
                                                                  provider=provider, proof=proof)
                else:
                    receipt = self.rental.create(intent, signature, price, queen, provider=provider, proof=proof)
            except ContractRevertError as exc:
                if exc.error != "GPURentalNonceUsed":
                    raise
            else:
                info = self.rental.rental(rid)
                return Created(rid, "0x" + bytes(receipt["transactionHash"]).hex(), info.start, info.duration,
                               int(info.escrow))
            info = self.rental.rental(rid)
        if to_checksum_address(info.provider) != to_checksum_address(provider):
            raise ContractRevertError("the intent's nonce was used by a rental of another provider",
                                      error="GPURentalNonceUsed")
        return Created(rid, "", info.start, info.duration, int(info.escrow))

    @_translated
    def cancel(self, rental_id: int) -> str:
        """Cancels an active rental before its end; '' when it is no longer active or has ended."""
        try:
            receipt = self.rental.cancel(rental_id)
        except ContractRevertError as exc:
            if exc.error in ("GPURentalNotActive", "GPURentalAlreadyEnded"):
                return ""
            raise
        return "0x" + bytes(receipt["transactionHash"]).hex()

    @_translated
    def now(self) -> int:
        c = self.rental.client
        return int(c.retry("get_block", lambda: c.w3.eth.get_block("latest"))["timestamp"])
