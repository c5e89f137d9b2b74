"""The queen's Attester on fake outboxes, a fake king and a fake inbox: each outbox message attested once,
handed to the king until it has it, and never lost across restarts, outages or reorgs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account

from blendr.chain.bridge import BridgeMessage, recover_attester
from blendr.clock import ManualClock
from blendr.config import RelayConfig
from blendr.errors import InvalidArgumentError, PermissionDeniedError, UnavailableError
from blendr.store import MemoryStore
from queen.attester import Attester, Route
from tests.fakes.bridge_inbox import FakeInbox
from tests.fakes.event_chain import FakeEventChain
from tests.fakes.king_control import FakeKing

ETH, ETC = 31337, 63
ETH_OUTBOX, ETC_OUTBOX = "0x" + "e1" * 20, "0x" + "e2" * 20
ETC_INBOX, ETH_INBOX = "0x" + "ec" * 20, "0x" + "ee" * 20
QUEEN = Account.from_key(b"\x61" * 32)
CFG = RelayConfig(retry_initial_s=1.0, retry_max_s=8.0, self_deliver_after_s=30.0)


def chain(name: str, chain_id: int) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(name=name, chain_id=chain_id))


class Rig:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = ManualClock()
        self.eth, self.etc = FakeEventChain(), FakeEventChain()
        self.etc_inbox = FakeInbox(ETC_INBOX, [QUEEN.address], k=1)
        self.eth_inbox = FakeInbox(ETH_INBOX, [QUEEN.address], k=1)
        self.king = FakeKing(ETC_INBOX, threshold=1)
        self.restart()

    def restart(self) -> None:
        routes = [Route(chain("eth", ETH), SimpleNamespace(address=ETH_OUTBOX), chain("etc", ETC),  # type: ignore[arg-type]
                        self.etc_inbox),  # type: ignore[arg-type]
                  Route(chain("etc", ETC), SimpleNamespace(address=ETC_OUTBOX), chain("eth", ETH),  # type: ignore[arg-type]
                        self.eth_inbox)]  # type: ignore[arg-type]
        self.att = Attester(QUEEN, routes, self.store, self.clock, CFG, king=self.king,
                            followers=[self.eth.follower(self.store, "queen-eth-outbox"),
                                       self.etc.follower(self.store, "queen-etc-outbox")])

    def send(self, nonce: int, dst: int = ETC) -> BridgeMessage:
        ev = self.eth.emit("BridgeOutbox", "MessageSent", {"nonce": nonce, "dstChainId": dst, "sender": "0x" + "5e" * 20,
                                                           "target": "0x" + "7a" * 20, "data": b"open"})
        return BridgeMessage.from_event(ev.args, ETH, ETH_OUTBOX)

    def step(self) -> None:
        asyncio.run(self.att.step())


def test_each_message_is_attested_once_and_handed_to_the_king() -> None:
    rig = Rig()
    m1, m2 = rig.send(1), rig.send(2)
    rig.send(3, dst=1)  # for a chain this queen does not bridge: not attested
    rig.step()
    docs = rig.att.attestations()
    assert len(docs) == 2 and all(d["sent"] for d in docs)
    for m in (m1, m2):
        _, sigs = rig.king.held[m.message_hash]
        assert list(sigs) == [QUEEN.address]
        assert recover_attester(m, ETC_INBOX, sigs[QUEEN.address]) == QUEEN.address
    rig.step()
    assert rig.king.submissions == 2  # nothing handed twice


def test_king_outage_then_recovery_and_restart_lose_nothing() -> None:
    rig = Rig()
    m = rig.send(1)
    rig.king.fail_next.append(UnavailableError("king: UNAVAILABLE: connection refused"))
    with pytest.raises(UnavailableError):
        rig.step()
    assert rig.att.attestations(unsent_only=True)  # kept, signed, not sent
    rig.restart()  # a new queen process over the same store
    rig.step()
    assert rig.king.submissions == 1 and m.message_hash in rig.king.held
    assert len(rig.att.attestations()) == 1  # the restart signed nothing again


@pytest.mark.parametrize("refusal", [InvalidArgumentError("king: bad"), PermissionDeniedError("king: not attester")])
def test_a_final_refusal_is_recorded_and_not_retried(refusal: Exception) -> None:
    rig = Rig()
    rig.send(1)
    rig.king.fail_next.append(refusal)
    rig.step()
    (doc,) = rig.att.attestations()
    assert doc["error"] and not doc["sent"]
    rig.step()
    assert rig.king.submissions == 0


def test_an_outbox_outage_then_recovery() -> None:
    rig = Rig()
    rig.send(1)
    rig.eth.outages = 1
    with pytest.raises(UnavailableError):
        rig.step()
    rig.step()
    assert rig.king.submissions == 1


def test_a_reorg_before_sending_withdraws_the_attestation() -> None:
    rig = Rig()
    rig.send(1)
    rig.king.fail_next.append(UnavailableError("king away"))
    with pytest.raises(UnavailableError):
        rig.step()
    rig.eth.reorg(list(rig.eth.events))
    rig.step()
    assert rig.att.attestations() == [] and rig.king.submissions == 0


def test_stalled_message_is_delivered_by_the_queen_once() -> None:
    rig = Rig()
    m = rig.send(1)
    rig.step()
    rig.clock.advance(CFG.self_deliver_after_s + 1)
    rig.step()
    assert rig.etc_inbox.executions == {m.message_hash: 1}
    (doc,) = rig.att.attestations()
    assert doc["executed"] and doc["delivered_by_us"]
    rig.clock.advance(CFG.self_deliver_after_s + 1)
    rig.step()
    assert rig.etc_inbox.executions == {m.message_hash: 1} and rig.etc_inbox.calls.count("deliver") == 1


@pytest.mark.parametrize(("code", "error"), [
    ("INVALID_ARGUMENT", InvalidArgumentError), ("PERMISSION_DENIED", PermissionDeniedError),
    ("UNAVAILABLE", UnavailableError), ("DEADLINE_EXCEEDED", UnavailableError), ("INTERNAL", UnavailableError)])
def test_the_kings_status_becomes_our_error(code: str, error: type[Exception]) -> None:
    import grpc

    from queen.kingclient import error_from_status

    exc = grpc.aio.AioRpcError(getattr(grpc.StatusCode, code), grpc.aio.Metadata(), grpc.aio.Metadata(),
                               details="x" * 10_000)
    got = error_from_status(exc)
    assert type(got) is error and code in str(got) and len(str(got)) < 400


def _hold_as(rig: Rig, m: BridgeMessage, encode: Any) -> None:
    _, sigs = rig.king.held[m.message_hash]
    sigs[QUEEN.address] = encode(sigs[QUEEN.address])


def test_self_delivery_puts_the_kings_signatures_in_canonical_form() -> None:
    rig = Rig()
    m = rig.send(1)
    rig.step()
    _hold_as(rig, m, lambda s: s[:64] + bytes([s[64] - 27]))  # v as a recovery id (0/1): the inbox refuses that
    rig.clock.advance(CFG.self_deliver_after_s + 1)
    rig.step()
    assert rig.etc_inbox.executions == {m.message_hash: 1}
    (doc,) = rig.att.attestations()
    assert doc["executed"] and doc["delivered_by_us"]


@pytest.mark.parametrize("bad", ["high-s", "no key"])
def test_self_delivery_leaves_out_signatures_with_no_canonical_form(bad: str) -> None:
    from blendr.identity import SECP256K1_N

    def encode(s: bytes) -> bytes:
        if bad == "high-s":  # the malleated twin: the same signer, but the inbox refuses it
            return s[:32] + (SECP256K1_N - int.from_bytes(s[32:64], "big")).to_bytes(32, "big") + bytes([55 - s[64]])
        return (1).to_bytes(32, "big") + (1).to_bytes(32, "big") + bytes([27])  # recovers to some key, not ours

    rig = Rig()
    m = rig.send(1)
    rig.step()
    _hold_as(rig, m, encode)
    rig.clock.advance(CFG.self_deliver_after_s + 1)
    rig.step()
    assert rig.etc_inbox.executions == {} and "deliver" not in rig.etc_inbox.calls
    (doc,) = rig.att.attestations()
    assert not doc.get("executed") and not doc["delivered_by_us"]


def test_a_bridge_short_of_attesters_and_a_key_that_is_no_attester_are_said() -> None:
    other = Account.from_key(b"\x62" * 32)
    rig = Rig()
    rig.etc_inbox = FakeInbox(ETC_INBOX, [QUEEN.address, other.address], k=2)
    rig.eth_inbox = FakeInbox(ETH_INBOX, [other.address], k=1)  # this queen is not an attester into eth
    rig.king = FakeKing(ETC_INBOX, threshold=2)
    rig.restart()
    m = rig.send(1)
    rig.step()  # attested, handed to the king: 1 of 2
    assert [p for p in asyncio.run(rig.att.check_bridge()) if "short" in p] == []  # not yet: others may lag
    rig.clock.advance(60.0)
    problems = asyncio.run(rig.att.check_bridge())
    assert len(problems) == 2
    assert f"{QUEEN.address} is not an attester of the bridge inbox on chain {ETH}" in problems[0]
    assert "short of attesters: 1 message(s)" in problems[1] and "1 of 2 attestations after 60 s" in problems[1]
    assert "queen run --relay" in problems[1]
    rig.king.held[m.message_hash][1][other.address] = b"\x00" * 65  # a second queen attested
    assert [p for p in asyncio.run(rig.att.check_bridge()) if "short" in p] == []
    rig.king.held[m.message_hash][1].pop(other.address)
    rig.etc_inbox.executions[m.message_hash] = 1  # delivered by someone: no longer waiting
    assert [p for p in asyncio.run(rig.att.check_bridge()) if "short" in p] == []
    (doc,) = rig.att.attestations()
    assert doc["executed"] is True
