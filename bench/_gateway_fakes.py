"""What is *not* the king in the gateway part of ``bench/scheduler.py``.

* Ethereum: ``tests.fakes.rental_chain.FakeRentalChain`` (the fake the king's unit tests use), with a huge
  balance and allowance for every renter and intent signatures not re-checked in ``create`` (that fake runs in
  the king's process; GPURental's check is not the king's CPU). Reads answer at once, ``create`` lands at once:
  no block time, RPC round trip or gas is in the figures.
* Queens: ``tests.fakes.queens.FakeQueens``, every queen connected, every assignment taken (recorded, not sent).
* :func:`provider_pool` builds the providers the queens would report, with real secp256k1 keys (64-byte public
  keys whose addresses match), so the renter SDK seals the payload key for them as it would for real
  providers. They are fed to ``KingCore.on_snapshot`` as a queen's snapshot would be.

Everything else on the king side is the real code: ``blendr.rpc.server.start_server`` (with its error
interceptor), the ``RenterGatewayServicer``, ``Sessions``, ``KingCore`` with its placement loop, ``Scheduler``
+ ``Pricer`` and the SQLite store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from king.scheduler import ProviderOffer

FAKES = (
    "Ethereum: tests/fakes FakeRentalChain (balance and allowance 10^30 wei for every renter, create() lands at "
    "once): chain latency is NOT part of these figures. Queens: tests/fakes FakeQueens, always connected, "
    "every assignment taken (recorded, not sent). Providers: {providers} providers x {gpus} {model} GPUs in "
    "{pools} pools with real secp256k1 keys, fed to KingCore.on_snapshot as queens' snapshots would be."
)

BIG = 10**30


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
