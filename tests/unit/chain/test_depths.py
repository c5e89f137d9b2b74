"""Depths: governance's confirmation depths applied to a node's chain clients, never below the operator's."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from blendr.chain.client import ChainClient, ChainSettings
from blendr.chain.depths import DEPTH_PARAMS, Depths
from blendr.chain.govwatch import GovWatch
from blendr.chain.manifest import ChainDeployment, Manifest
from blendr.config import load_config
from blendr.errors import ChainError


def _client(chain: str, depth: int = 1) -> ChainClient:
    return ChainClient(ChainSettings(chain, "http://127.0.0.1:9", 31337 if chain == "eth" else 63,
                                     confirmations=depth))


def test_governance_sets_every_attached_client_of_its_chain() -> None:
    d = Depths({"eth": 12, "etc": 4000})
    eth1, eth2, etc = _client("eth"), _client("eth"), _client("etc")
    d.attach(eth1, eth2, etc)
    assert [c.settings.confirmations for c in (eth1, eth2, etc)] == [12, 12, 4000]  # the manifest's, at once
    d.apply({"chain.eth_confirmations": 20, "chain.etc_confirmations": 5000, "rental.fee_bps": 250})
    assert [c.settings.confirmations for c in (eth1, eth2, etc)] == [20, 20, 5000]
    d.apply({"chain.eth_confirmations": 3})  # a read without ETC's leaves it
    assert (eth1.settings.confirmations, etc.settings.confirmations, d.depth("eth"), d.depth("etc")) == (3, 5000, 3, 5000)
    late = _client("eth")
    d.attach(late)  # a client built later (a new leader's) starts at the current depth
    assert late.settings.confirmations == 3


def test_the_operators_deeper_depth_wins_and_a_shallower_one_does_not() -> None:
    """Effective depth = max(governance's, the operator's explicit one); -1 is no operator depth."""
    d = Depths({"eth": 1, "etc": 1}, operator={"eth": 30, "etc": -1})
    eth, etc = _client("eth"), _client("etc")
    d.attach(eth, etc)
    assert (eth.settings.confirmations, etc.settings.confirmations) == (30, 1)
    d.apply({"chain.eth_confirmations": 12, "chain.etc_confirmations": 4000})
    assert (eth.settings.confirmations, etc.settings.confirmations) == (30, 4000)  # the operator's 30 > 12
    d.apply({"chain.eth_confirmations": 64})
    assert eth.settings.confirmations == 64  # governance went deeper than the operator
    shallow = Depths({"eth": 0, "etc": 0}, operator={"eth": 0, "etc": 0})  # an operator's 0 (a devnet habit)
    c = _client("eth")
    shallow.attach(c)
    assert c.settings.confirmations == 1  # never below 1
    shallow.apply({"chain.eth_confirmations": 12})
    assert c.settings.confirmations == 12


def test_nonsense_from_a_read_is_ignored() -> None:
    d = Depths({"eth": 12, "etc": 4000})
    c = _client("eth")
    d.attach(c)
    d.apply({"chain.eth_confirmations": 0})
    d.apply({"chain.eth_confirmations": "0x12"})
    assert c.settings.confirmations == 12
    with pytest.raises(ChainError, match="below 1"):
        c.set_confirmations(0)


def test_for_node_reads_the_manifest_and_the_operators_config(tmp_path: Path) -> None:
    m = Manifest("t", ChainDeployment("http://e", 31337, 12, True), ChainDeployment("http://c", 63, 4000, False))
    cfg = load_config(tmp_path, overrides={"chain.etc_confirmations": 6000}, env={})
    d = Depths.for_node(cfg, m)
    assert (d.depth("eth"), d.depth("etc")) == (12, 6000)
    d.apply({"chain.eth_confirmations": 15, "chain.etc_confirmations": 5000})
    assert (d.depth("eth"), d.depth("etc")) == (15, 6000)


def test_a_gov_watch_carries_a_change_to_the_clients_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    """The path a node uses: GovWatch reads, Depths listens; each change is logged with its source."""
    chain = {"chain.eth_confirmations": 12, "chain.etc_confirmations": 4000}
    watch = GovWatch(lambda names: {n: chain[n] for n in names}, DEPTH_PARAMS, 30.0)
    d = Depths({"eth": 12, "etc": 4000}, operator={"etc": 4500})
    watch.on_change(d.apply)
    eth, etc = _client("eth"), _client("etc")
    d.attach(eth, etc)
    with caplog.at_level(logging.INFO, logger="blendr.chain.depths"):
        watch.refresh()
        chain["chain.eth_confirmations"] = 24
        watch.refresh()
    assert (eth.settings.confirmations, etc.settings.confirmations) == (24, 4500)
    fields = [r.blendr_fields for r in caplog.records if r.getMessage() == "confirmation depth"]  # type: ignore[attr-defined]
    seen = [(f["chain"], f["old"], f["new"], f["source"]) for f in fields]
    assert seen == [("eth", 12, 12, "governance"), ("etc", 4500, 4500, "operator"), ("eth", 12, 24, "governance")]
