"""What the king takes from a queen's pool snapshot: only providers that admitted themselves to that queen."""

from __future__ import annotations

import os

from eth_account import Account

from blendr.identity import NodeIdentity
from blendr.payload import public_key_of
from king.convert import offer_from_proto as _offer
from protos.blendr.v1 import king_pb2 as kpb

QUEEN_A, QUEEN_B = Account.create().address, Account.create().address


def entry(ident: NodeIdentity, queen: str, **kw: object) -> kpb.PoolProvider:
    nonce = os.urandom(32)
    fields = {"address": ident.address, "gpu_model": "cpu", "gpus": 1, "ask_per_gpu_hour": "5", "uptime": 1.0,
              "alive": True, "admission_nonce": nonce, "admission_signature": ident.sign_admission(queen, nonce),
              "public_key": public_key_of(bytes(ident.account().key))}
    fields.update(kw)
    return kpb.PoolProvider(**fields)  # type: ignore[arg-type]


def test_a_provider_admitted_to_the_queen_is_offered_with_the_key_that_signed() -> None:
    ident = NodeIdentity.from_key(os.urandom(32))
    offer, pub, _ = _offer(entry(ident, QUEEN_A), QUEEN_A)
    assert offer.alive and offer.ask_per_gpu_hour == 5 and pub == public_key_of(bytes(ident.account().key))


def test_a_queen_cannot_list_a_provider_that_joined_another_queen_or_swap_its_key() -> None:
    ident = NodeIdentity.from_key(os.urandom(32))
    offer, pub, _ = _offer(entry(ident, QUEEN_A), QUEEN_B)  # signed for queen A, listed by queen B
    assert not offer.alive and pub == b""
    offer, pub, _ = _offer(entry(ident, QUEEN_A, admission_signature=b""), QUEEN_A)  # no proof at all
    assert not offer.alive and pub == b""
    other = public_key_of(os.urandom(32))
    offer, pub, _ = _offer(entry(ident, QUEEN_A, public_key=other), QUEEN_A)  # a key the provider did not sign with
    assert not offer.alive and pub == b""


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


async def test_queen_registrations_name_this_king_are_fresh_and_used_once() -> None:
    import pytest

    from blendr.errors import PermissionDeniedError
    from blendr.rpc.registration import sign_queen_registration
    from king.queens import QueenHub

    king, other = Account.create().address, Account.create().address
    queen = Account.create()
    hub = QueenHub(king, _Clock(1_000_000), stake_check=lambda q: (True, "staked"))

    def reg(for_king: str, ts: int = 1_000_000) -> kpb.QueenRegistration:
        return kpb.QueenRegistration(queen_address=queen.address, king_address=for_king, timestamp=ts,
                                     endpoint="q:7470", signature=sign_queen_registration(queen, for_king, ts, "q:7470"))

    assert await hub.register(reg(king)) == queen.address
    for bad, match in ((reg(king), "used already"), (reg(other, 1_000_001), f"not {king}"),
                       (reg("", 1_000_002), "names no king"), (reg(king, 1_000_000 - 301), "stale")):
        with pytest.raises(PermissionDeniedError, match=match):
            await hub.register(bad)
    forged = reg(king, 1_000_003)
    forged.queen_address = other  # signed by the queen's key, claimed for another address
    with pytest.raises(PermissionDeniedError, match="refused"):
        await hub.register(forged)
    unstaked = QueenHub(king, _Clock(1_000_000), stake_check=lambda q: (False, "queen stake 0 is below 10000"))
    with pytest.raises(PermissionDeniedError, match="below 10000"):
        await unstaked.register(reg(king, 1_000_004))
    lenient = QueenHub(king, _Clock(1_000_000), stake_check=lambda q: (True, ""), accept_any_king=True)
    assert await lenient.register(reg("", 1_000_005)) == queen.address
