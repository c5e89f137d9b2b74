"""The king's read-only view of GPU-hours as tokens and of the usage burn, for renters' wallets.

``VoucherView`` is the small port KingCore reads; ``EthVouchers`` the adapter over ComputeVoucher and GPURental
(every error it raises is a BlendrError: web3's become UnavailableError). Guarantees: holdings list only the
classes the renter holds (nonzero), in class-id order; burn totals add GPURental's burned settlement-fee shares
and ComputeVoucher's burned redemption-fee shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from blendr.chain.contracts import ComputeVoucher, GPURental
from king.rentals import _translated


@dataclass(frozen=True)
class VoucherHolding:
    """``hours`` vouchers of class ``id``: GPU-hours of ``model`` backed by ``price_per_hour`` wei each."""

    id: int
    model: str
    price_per_hour: int
    hours: int


@dataclass(frozen=True)
class BurnTotals:
    """Protocol fees burned so far (wei), set aside for the next burn (wei), and the share burned (bps)."""

    burned: int
    pending: int
    burn_bps: int


class VoucherView(Protocol):
    address: str

    def holdings(self, who: str) -> list[VoucherHolding]: ...
    def burn_totals(self) -> BurnTotals: ...


class EthVouchers:
    """ComputeVoucher + GPURental, read with the king's client."""

    def __init__(self, vouchers: ComputeVoucher, rental: GPURental) -> None:
        self.vouchers = vouchers
        self.rental = rental
        self.address = vouchers.address

    @_translated
    def holdings(self, who: str) -> list[VoucherHolding]:
        held = self.vouchers.balances(who)
        out = []
        for vid in sorted(held):
            c = self.vouchers.class_of(vid)
            out.append(VoucherHolding(vid, c.model, int(c.price_per_hour), held[vid]))
        return out

    @_translated
    def burn_totals(self) -> BurnTotals:
        burned, pending = self.rental.fee_burn_totals()
        return BurnTotals(int(burned) + int(self.vouchers.total_burned()), int(pending), self.rental.fee_burn_bps())
