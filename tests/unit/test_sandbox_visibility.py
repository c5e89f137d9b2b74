"""A provider that runs renters' jobs unsandboxed is visible as such: in its hello, the queen's pool table, the
snapshot the king gets, and the offers renters see."""

from __future__ import annotations

import os
from dataclasses import replace

from blendr.identity import NodeIdentity
from blendr.rpc import convert as rpc_convert
from blendr.types import DeviceInfo, DeviceKind, Hello
from king import convert as king_convert
from king.scheduler import ModelOffer
from protos.blendr.v1 import queen_pb2 as pb
from queen import poolview
from tests.unit.king.test_king_queens import QUEEN_A, entry
from tests.unit.king.test_king_scheduler import H100, QA, offer, sched, snap

ADDR = "0x" + "ab" * 20


def test_hello_carries_the_sandbox_and_unknown_words_read_as_none() -> None:
    dev = DeviceInfo(index=0, kind=DeviceKind.CPU, name="cpu", model="cpu", memory_bytes=2**30)
    for sent, read in (("bubblewrap", "bubblewrap"), ("gvisor", "gvisor"), ("none", "none"), ("", "none"),
                       ("docker-ish", "none")):
        msg = rpc_convert.hello_to_proto(Hello(ADDR, (dev,), sandbox=sent))
        assert rpc_convert.hello_from_proto(msg, max_devices=8).sandbox == read


def test_the_pool_table_shows_an_unsandboxed_provider() -> None:
    resp = pb.ListProvidersResponse(queen_address=QA, providers=[
        pb.ProviderInfo(address="0x" + "11" * 20, sandbox="bubblewrap"),
        pb.ProviderInfo(address="0x" + "22" * 20, sandbox="none")])
    table = poolview.render(resp, now=0.0)
    assert "SANDBOX" in table and "bubblewrap" in table and "NONE (unsandboxed)" in table
    assert [r["sandbox"] for r in poolview.rows(resp, now=0.0)] == ["bubblewrap", "none"]


def test_offers_count_unsandboxed_providers() -> None:
    s = sched(snap(QA, offer("A1", QA, gpus=2), replace(offer("A2", QA, gpus=2), sandboxed=False)))
    [o] = s.offers()
    assert o.gpu_model == H100 and o.providers == 2 and o.unsandboxed == 1
    assert king_convert.model_offer_to_proto(o).unsandboxed_providers == 1
    assert king_convert.model_offer_to_proto(ModelOffer(H100, 1, 1, 1, 1, 1, 1)).unsandboxed_providers == 0


def test_a_snapshot_without_a_known_sandbox_is_taken_as_unsandboxed() -> None:
    ident = NodeIdentity.from_key(os.urandom(32))
    for word, sandboxed in (("bubblewrap", True), ("gvisor", True), ("none", False), ("", False), ("jail", False)):
        got = king_convert.offer_from_proto(entry(ident, QUEEN_A, sandbox=word), QUEEN_A)
        assert got is not None and got[0].sandboxed is sandboxed, word
