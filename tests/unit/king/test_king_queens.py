"""What the king takes from a queen's pool snapshot: only providers that admitted themselves to that queen."""

from __future__ import annotations

import os

from eth_account import Account

from blendr.identity import NodeIdentity
from blendr.payload import public_key_of
from king.queens import _offer
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
