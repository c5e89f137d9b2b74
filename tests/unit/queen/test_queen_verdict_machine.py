"""A property test of the queen's challenge state machine (queen.core over queen.challenges): whatever the
providers send, in whatever order, whatever the store does and however time passes, every challenge issued
reaches exactly one verdict, and every verdict reaches every outcome listener.

Hypothesis drives two providers (one CPU, one with two GPUs) through admission, replacement, disconnects,
heartbeats, honest and arbitrary commitments and memory probe answers (any float, any int, any bytes; current,
stale and unknown challenge ids), honest, corrupted and arbitrary openings, challenge errors, a store that fails and heals, and a manual
clock moving by arbitrary steps. A handler that raises ends the provider's stream, as the servicer does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from _queen_fakes import FakeLink, gpu
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_queen_core import CFG, QUEEN, Node

from blendr.clock import ManualClock
from blendr.errors import StoreError
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.proof.prover import DeviceProof, Opening, answer_probe, open_rows, prove_device
from blendr.store import MemoryStore
from blendr.types import Verdict
from queen.admission import OpenOracle
from queen.challenges import DeviceCommitmentIn, Outcome
from queen.core import ChallengeOut, QueenCore

MCFG = replace(CFG, quarantine_failures=3, quarantine_window=4, quarantine_s=120.0, challenge_mean_interval_s=30.0)
FLOATS = st.one_of(st.floats(), st.floats(0, 1e-3), st.sampled_from([0.0, -0.0, float("inf"), float("-inf"),
                                                                     float("nan"), 1e300, 5e-324]))
UINT64 = st.one_of(st.integers(0, 2**20), st.integers(0, 2**64 - 1))
INDEX = st.one_of(st.integers(0, 2), st.integers(0, 2**32 - 1))
ROOT = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
WHICH = st.sampled_from(["current", "stale", "unknown"])


class FlakyStore(MemoryStore):
    """A store whose writes fail while ``broken`` names their namespace ("*": every one)."""

    broken = ""

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        if self.broken in (ns, "*"):
            raise StoreError(f"value for {ns}/{key} cannot be written")
        super().put(ns, key, value)


class VerdictMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.store = FlakyStore()
        self.core = QueenCore(QUEEN, MCFG, self.store, self.clock, OpenOracle(), rng=random.Random(3))
        self.heard: dict[str, list[Verdict]] = {}
        self.broken_calls = 0

        def broken_listener(_addr: Any, _outcome: Outcome) -> None:
            self.broken_calls += 1
            raise RuntimeError("a listener with a bug")

        def listener(_addr: Any, outcome: Outcome) -> None:
            self.heard.setdefault(str(outcome.record["challenge_id"]), []).append(outcome.verdict)

        self.core.outcome_listeners += [broken_listener, listener]
        self.nodes = [Node(), Node(gpu(0, "t4"), gpu(1, "t4"))]
        self.links: dict[int, FakeLink | None] = {0: None, 1: None}
        self.all_links: list[FakeLink] = []
        self.node_links: dict[int, list[FakeLink]] = {0: [], 1: []}
        self.loop = asyncio.new_event_loop()
        self.proofs: dict[str, list[DeviceProof]] = {}

    def teardown(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    # ------------------------------------------------------------------ helpers
    def _handle(self, i: int, call: Any) -> None:
        """Run a provider message's handler; when it raises, the stream ends (what the servicer does)."""
        try:
            result = call()
            if asyncio.iscoroutine(result):
                self.loop.run_until_complete(result)
        except Exception:
            link = self.links[i]
            if link is not None:
                self.core.detach(self.nodes[i].address, link)
                self.links[i] = None

    def _issued_ids(self, i: int) -> list[str]:
        return [m.pending.challenge_id for link in self.node_links[i] for m in link.of(ChallengeOut)]

    def _challenge_id(self, i: int, which: str) -> str:
        ids = self._issued_ids(i)
        if which == "current" and ids:
            return ids[-1]
        if which == "stale" and len(ids) > 1:
            return ids[0]
        return "f" * 32

    # ------------------------------------------------------------------ rules
    @initialize()
    def start(self) -> None:
        self.core.start()

    @rule(i=st.integers(0, 1))
    def join(self, i: int) -> None:
        link = FakeLink()
        self.node_links[i].append(link)
        self.all_links.append(link)
        try:
            self.nodes[i].join(self.core, link)
        except Exception:
            return  # refused (quarantined): no stream
        self.links[i] = link

    @rule(i=st.integers(0, 1))
    def disconnect(self, i: int) -> None:
        link = self.links[i]
        if link is not None:
            self.core.detach(self.nodes[i].address, link)
            self.links[i] = None

    @rule(dt=st.one_of(st.floats(0, 2), st.floats(0, 200)))
    def time_passes(self, dt: float) -> None:
        self.clock.advance(dt)
        self.core.tick()

    @rule(i=st.integers(0, 1))
    def challenge_now(self, i: int) -> None:
        self.core.challenger.schedule(self.nodes[i].address, immediate=True)
        self.core.tick()

    @rule(i=st.integers(0, 1))
    def heartbeat(self, i: int) -> None:
        if self.links[i] is not None:
            self._handle(i, lambda: self.core.heartbeat(self.nodes[i].address))

    @rule(ns=st.sampled_from(["", "challenges", "providers", "*"]))
    def store_breaks_or_heals(self, ns: str) -> None:
        self.store.broken = ns

    @rule(i=st.integers(0, 1), which=WHICH,
          commits=st.lists(st.builds(DeviceCommitmentIn, INDEX, ROOT, FLOATS, UINT64, st.binary(max_size=80)),
                           max_size=3))
    def arbitrary_commitment(self, i: int, which: str, commits: list[DeviceCommitmentIn]) -> None:
        if self.links[i] is not None:
            cid = self._challenge_id(i, which)
            self._handle(i, lambda: self.core.commitment(self.nodes[i].address, cid, commits))

    @rule(i=st.integers(0, 1), dt=st.floats(0, 0.05), corrupt=st.booleans())
    def honest_step(self, i: int, dt: float, corrupt: bool) -> None:
        """What an honest provider sends next: its commitment, its memory probe answer, or its openings (one
        corrupted row when ``corrupt``)."""
        p = self.core.challenger.pending(self.nodes[i].address)
        if self.links[i] is None or p is None:
            return
        self.clock.advance(dt)
        addr = self.nodes[i].address
        if p.phase == "commit":
            proofs = [prove_device(p.params, d.index, xp=np, hold=p.params.hold) for d in p.devices]
            self.proofs[p.challenge_id] = proofs
            work = p.params.flops / (FINGERPRINTS[p.devices[0].model].fp32_tflops * 1e12)
            commits = [DeviceCommitmentIn(pr.device_index, pr.root, work, pr.peak_memory_bytes) for pr in proofs]
            self._handle(i, lambda: self.core.commitment(addr, p.challenge_id, commits))
        elif p.phase == "probe":
            proofs = self.proofs[p.challenge_id]
            answers = [DeviceCommitmentIn(pr.device_index, pr.root, 0.0, 0,
                                          answer_probe(p.params, pr, p.probe_key, xp=np)) for pr in proofs]
            self._handle(i, lambda: self.core.commitment(addr, p.challenge_id, answers))
        elif p.phase == "open":
            out: list[Opening] = []
            for pr in self.proofs[p.challenge_id]:
                assert pr.tree is not None
                out.extend(open_rows(p.params, pr.device_index, pr.tree, p.rows[pr.device_index], pr.probe_digests))
            if corrupt and out:
                out[0] = replace(out[0], values=bytes(len(out[0].values)))
            self._handle(i, lambda: self.core.openings(addr, p.challenge_id, out))

    @rule(i=st.integers(0, 1))
    def honest_answer(self, i: int) -> None:
        """A whole honest round at once (so that passes are common, not only reachable)."""
        for _ in range(3):
            self.honest_step(i, 0.01, False)

    @rule(i=st.integers(0, 1), which=WHICH,
          openings=st.lists(st.builds(Opening, INDEX, st.integers(-2, 2**40), st.binary(max_size=80),
                                      st.lists(st.binary(max_size=40), max_size=3)), max_size=3))
    def arbitrary_openings(self, i: int, which: str, openings: list[Opening]) -> None:
        if self.links[i] is not None:
            cid = self._challenge_id(i, which)
            self._handle(i, lambda: self.core.openings(self.nodes[i].address, cid, openings))

    @rule(i=st.integers(0, 1), which=WHICH, reason=st.text(max_size=300))
    def challenge_error(self, i: int, which: str, reason: str) -> None:
        if self.links[i] is not None:
            cid = self._challenge_id(i, which)
            self._handle(i, lambda: self.core.challenge_error(self.nodes[i].address, cid, reason))

    # ------------------------------------------------------------------ invariants
    @invariant()
    def at_most_one_verdict_each_and_every_listener_hears_it(self) -> None:
        assert all(len(v) == 1 for v in self.heard.values()), self.heard
        assert self.broken_calls == len(self.heard)
        open_ids = set(self.core.open_challenges().values())
        assert not open_ids & set(self.heard)

    @invariant()
    def issued_is_decided_plus_open(self) -> None:
        open_ = self.core.open_challenges()
        for n in self.nodes:
            rec = self.core.pool.get(n.address)
            if rec is not None:
                decided = rec.passed + rec.failed + rec.abandoned + rec.missed
                assert rec.issued == decided + (n.address in open_), rec

    @invariant()
    def every_challenge_sent_is_decided_or_open(self) -> None:
        sent = {m.pending.challenge_id for link in self.all_links for m in link.of(ChallengeOut)}
        assert sent <= set(self.heard) | set(self.core.open_challenges().values())

    def check_every_challenge_ends_with_one_verdict(self) -> None:
        """Providers gone and every deadline past: nothing is left open, each challenge decided exactly once."""
        for i, link in self.links.items():
            if link is not None:
                self.core.detach(self.nodes[i].address, link)
                self.links[i] = None
        self.clock.advance(MCFG.opening_timeout_s + 10_000)
        self.core.tick()
        assert self.core.open_challenges() == {}
        sent = {m.pending.challenge_id for link in self.all_links for m in link.of(ChallengeOut)}
        assert sent <= set(self.heard) and all(len(v) == 1 for v in self.heard.values())
        issued = sum(r.issued for r in self.core.pool.all())
        assert issued == len(self.heard)


class EndingMachine(VerdictMachine):
    def teardown(self) -> None:
        try:
            self.check_every_challenge_ends_with_one_verdict()
        finally:
            super().teardown()


EndingMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEveryChallengeGetsOneVerdict = EndingMachine.TestCase
