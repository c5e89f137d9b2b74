"""The king's rental port on Ethereum: create a rental from a renter's intent (escrow in), cancel one.

``RentalChain`` is the small interface the job manager uses; ``EthRentals`` is the adapter over GPURental
and GPUToken with the king's ChainClient (its own nonce pipeline, bounded retries, and recognition of a
transaction whose reply was lost, so a retried create never lands twice). Every method blocks: the job
manager runs them in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

from blendr.chain.contracts import GPURental, GPUToken, RentalIntent, RentalStatus
from blendr.errors import ContractRevertError


@dataclass(frozen=True)
class PermitDoc:
    value: int
    deadline: int
    v: int
    r: bytes
    s: bytes


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


class RentalChain(Protocol):
    chain_id: int
    rental_address: str
    token_address: str

    def params(self) -> RentalParams: ...
    def balance(self, who: str) -> int: ...
    def allowance(self, who: str) -> int: ...
    def permit_nonce(self, who: str) -> int: ...
    def nonce_used(self, renter: str, nonce: int) -> bool: ...
    def create(self, intent: RentalIntent, signature: bytes, price: int, queen: str, provider: str,
               permit: PermitDoc | None) -> Created: ...
    def cancel(self, rental_id: int) -> str: ...
    def status(self, rental_id: int) -> RentalStatus: ...
    def now(self) -> int: ...


def intent_signer(intent: RentalIntent, signature: bytes, chain_id: int, rental: str) -> str:
    """The address that signed ``intent`` for this GPURental; '' for a malformed signature."""
    try:
        msg = encode_typed_data(full_message=intent.typed_data(chain_id, rental))
        return str(to_checksum_address(Account.recover_message(msg, signature=signature)))
    except Exception:  # eth_account raises several types for a malformed signature
        return ""


class EthRentals:
    """GPURental + GPUToken with the king's key (SCHEDULER_ROLE)."""

    def __init__(self, rental: GPURental, token: GPUToken) -> None:
        self.rental = rental
        self.token = token
        self.chain_id = rental.client.settings.chain_id
        self.rental_address = rental.address
        self.token_address = token.address

    def params(self) -> RentalParams:
        """GPURental's governance parameters the king obeys (read from the chain on every call)."""
        f = self.rental.fn
        lo, hi = self.rental._call(f.quoteBounds())
        return RentalParams(int(self.rental._call(f.minDuration())), int(self.rental._call(f.maxDuration())),
                            int(self.rental._call(f.maxGpus())), int(lo), int(hi))

    def balance(self, who: str) -> int:
        return int(self.token.balance_of(who))

    def allowance(self, who: str) -> int:
        return int(self.token.allowance(who, self.rental_address))

    def permit_nonce(self, who: str) -> int:
        return int(self.token.nonces(who))

    def nonce_used(self, renter: str, nonce: int) -> bool:
        rid = int(self.rental._call(self.rental.fn.rentalIdOf(renter, nonce)))
        return self.status(rid) != RentalStatus.NONE

    def status(self, rental_id: int) -> RentalStatus:
        return self.rental.rental(rental_id).status

    def create(self, intent: RentalIntent, signature: bytes, price: int, queen: str, provider: str,
               permit: PermitDoc | None) -> Created:
        """Creates the rental, or adopts it when a previous attempt already created it (same renter and nonce).

        Raises:
            ContractRevertError: naming GPURental's custom error (stake, allowance, price, expired intent...).
        """
        rid = intent.rental_id(self.chain_id, self.rental_address)
        info = self.rental.rental(rid)
        if info.status == RentalStatus.NONE:
            try:
                if permit is not None and permit.value > 0:
                    receipt: Any = self.rental.create_with_permit(intent, signature, price, queen, permit.value,
                                                                  permit.deadline, permit.v, permit.r, permit.s,
                                                                  provider=provider)
                else:
                    receipt = self.rental.create(intent, signature, price, queen, provider=provider)
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

    def cancel(self, rental_id: int) -> str:
        """Cancels an active rental before its end; '' when it is no longer active or has ended."""
        try:
            receipt = self.rental.cancel(rental_id)
        except ContractRevertError as exc:
            if exc.error in ("GPURentalNotActive", "GPURentalAlreadyEnded"):
                return ""
            raise
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def now(self) -> int:
        c = self.rental.client
        return int(c.retry("get_block", lambda: c.w3.eth.get_block("latest"))["timestamp"])
