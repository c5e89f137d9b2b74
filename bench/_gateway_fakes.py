"""Fakes for the gateway part of ``bench/scheduler.py``: what is *not* the king in that benchmark.

* :class:`InstantChain` stands in for Ethereum (``king.rentals.RentalChain``): every renter holds a huge
  balance and allowance, no intent nonce is used, and ``create`` answers at once with a rental whose id is
  the one GPURental would derive. No block time, RPC round trip or gas is in the figures.
* :class:`AcceptingQueens` stands in for the queens' sessions (``king.jobs.QueenPort``): every queen is
  connected and takes every assignment (it is only counted).
* :func:`provider_pool` builds the providers the queens would report, with real secp256k1 keys (64-byte
  public keys whose addresses match), so the renter SDK seals the payload key for them as it would for real
  providers. They are fed to ``JobManager.on_snapshot`` as a queen's snapshot would be.

Everything else on the king side is the real code: ``blendr.rpc.server.start_server``, the
``RenterGatewayServicer``, ``Sessions``, ``JobManager`` with its placement loop, ``Scheduler`` + ``Pricer``
and the store.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

from blendr.chain.contracts import RentalIntent, RentalStatus
from king.rentals import Created, PermitDoc, RentalParams
from king.scheduler import ProviderOffer

FAKES = (
    "Ethereum: an in-memory RentalChain (balance and allowance 10^30 wei, no nonce used, create() answers at "
    "once with a fresh rental): chain latency is NOT part of these figures. Queens: a QueenPort that is "
    "always connected and accepts every assignment (counted, not sent). Providers: {providers} providers "
    "x {gpus} {model} GPUs in {pools} pools with real secp256k1 keys, fed to JobManager.on_snapshot as "
    "queens' snapshots would be."
)

BIG = 10**30
RENTAL_ADDRESS = "0x00000000000000000000000000000000000Be7A1"
TOKEN_ADDRESS = "0x00000000000000000000000000000000000bE70C"
CHAIN_ID = 31337


class InstantChain:
    """An in-memory ``RentalChain``: reads answer at once, ``create`` returns a rental immediately.

    Thread-safe (the job manager calls it from worker threads). ``create`` adopts a rental already created
    for the same renter and nonce, as the real adapter does.
    """

    chain_id = CHAIN_ID
    rental_address = RENTAL_ADDRESS
    token_address = TOKEN_ADDRESS

    def __init__(self, *, min_duration: int = 60, max_duration: int = 30 * 86400, max_gpus: int = 64) -> None:
        self._params = RentalParams(min_duration, max_duration, max_gpus)
        self._lock = threading.Lock()
        self._rentals: dict[int, Created] = {}
        self._tx = itertools.count(1)
        self.creates = 0
        self.cancels = 0

    def params(self) -> RentalParams:
        return self._params

    def balance(self, who: str) -> int:
        return BIG

    def allowance(self, who: str) -> int:
        return BIG

    def permit_nonce(self, who: str) -> int:
        return 0

    def nonce_used(self, renter: str, nonce: int) -> bool:
        return False

    def create(self, intent: RentalIntent, signature: bytes, price: int, queen: str, provider: str,
               permit: PermitDoc | None) -> Created:
        rid = intent.rental_id(self.chain_id, self.rental_address)
        with self._lock:
            prior = self._rentals.get(rid)
            if prior is not None:
                return Created(rid, "", prior.start, prior.duration, prior.escrow)
            created = Created(rid, f"0x{next(self._tx):064x}", int(time.time()), intent.duration,
                              price * intent.gpus * intent.duration // 3600)
            self._rentals[rid] = created
            self.creates += 1
        return created

    def cancel(self, rental_id: int) -> str:
        with self._lock:
            self.cancels += 1
        return ""

    def status(self, rental_id: int) -> RentalStatus:
        with self._lock:
            return RentalStatus.ACTIVE if rental_id in self._rentals else RentalStatus.NONE

    def now(self) -> int:
        return int(time.time())


class AcceptingQueens:
    """A ``QueenPort`` whose queens are all connected and accept every assignment."""

    def __init__(self) -> None:
        self.assigned = 0
        self.stopped = 0

    def connected(self, queen: str) -> bool:
        return True

    def assign(self, queen: str, assignment: dict[str, Any]) -> bool:
        self.assigned += 1
        return True

    def stop(self, queen: str, job_id: str, attempt: int, reason: str) -> bool:
        self.stopped += 1
        return True


@dataclass(frozen=True)
class FakeProvider:
    address: str
    public_key: bytes
    queen: str


def provider_key(i: int) -> bytes:
    """Deterministic provider private key ``i`` (a valid secp256k1 scalar with overwhelming probability)."""
    return hashlib.sha256(b"blendr-bench-gateway-provider/%d" % i).digest()


def queen_address(q: int) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(f"0x{0xEE:02x}{q:038x}"))


def provider_pool(providers: int, pools: int) -> list[FakeProvider]:
    """``providers`` providers with real keys, spread round robin over ``pools`` queens."""
    from blendr.payload import address_of_public_key, public_key_of

    out = []
    for i in range(providers):
        pub = public_key_of(provider_key(i))
        out.append(FakeProvider(str(address_of_public_key(pub)), pub, queen_address(i % pools)))
    return out


def snapshots(pool: list[FakeProvider], *, model: str, gpus: int, vram_bytes: int, tflops: float, ask: int,
              ) -> dict[str, list[tuple[ProviderOffer, bytes, int]]]:
    """Per queen, the ``on_snapshot`` argument a queen's snapshot turns into (nothing busy)."""
    out: dict[str, list[tuple[ProviderOffer, bytes, int]]] = {}
    for p in pool:
        offer = ProviderOffer(p.address, p.queen, model, gpus, vram_bytes, tflops, ask, 5000, 1.0, True)
        out.setdefault(p.queen, []).append((offer, p.public_key, 0))
    return out
