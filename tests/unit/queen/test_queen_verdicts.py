"""Every challenge gets exactly one verdict whatever the provider sends or the queen meets, and a provider that
fails again and again is quarantined (issue 12 §2). The core without gRPC; the stream's status is in
test_queen_stream_status.py."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest
from _queen_fakes import FakeLink
from test_queen_core import CFG, Node, clock_of, commit_honestly, honest_openings, make_core, record

from blendr.chain import govparams as gp
from blendr.chain.govwatch import GovWatch
from blendr.errors import InvalidArgumentError, PermissionDeniedError, StoreError
from blendr.store import MemoryStore
from blendr.types import Verdict
from protos.blendr.v1 import queen_pb2 as pb
from queen.app import QUEEN_GOV_PARAMS
from queen.challenges import DeviceCommitmentIn, Outcome
from queen.convert import provider_info_to_proto, provider_to_proto
from queen.core import NS_CHALLENGES, QUARANTINE_PARAMS, ChallengeOut, QuarantineBounds, QueenCore, ResultOut
from queen.pool import NS_PROVIDERS
from queen.poolview import render, rows

QCFG = replace(CFG, quarantine_failures=3, quarantine_window=5, quarantine_s=600.0)


class Verdicts:
    """An outcome listener: the verdicts heard, per challenge id."""

    def __init__(self, core: QueenCore) -> None:
        self.heard: dict[str, list[Verdict]] = {}
        core.outcome_listeners.append(self)

    def __call__(self, _addr: Any, outcome: Outcome) -> None:
        self.heard.setdefault(str(outcome.record["challenge_id"]), []).append(outcome.verdict)


def challenge(core: QueenCore, node: Node, link: FakeLink | None = None) -> str:
    """Make the provider due, tick, and return the id of the challenge it was sent."""
    core.challenger.schedule(node.address, immediate=True)
    core.tick()
    return (link or node.link).of(ChallengeOut)[-1].pending.challenge_id


def commit(core: QueenCore, node: Node, cid: str, work_seconds: float, peak: int = 1024) -> None:
    core.commitment(node.address, cid, [DeviceCommitmentIn(0, b"\x00" * 32, work_seconds, peak)])


# --- bad numbers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("work", [float("inf"), float("-inf"), float("nan"), -1.0, 1e300])
def test_a_commitment_with_bad_work_seconds_fails_and_is_recorded(work: float) -> None:
    """The finding: work_seconds=+inf ended the stream with a store key in its text and left no verdict."""
    core, node = make_core(), Node()
    heard = Verdicts(core)
    node.join(core)
    cid = challenge(core, node)
    clock_of(core).advance(0.01)
    with pytest.raises(InvalidArgumentError, match="work_seconds must be a finite number") as err:
        commit(core, node, cid, work)
    assert "challenges/" not in str(err.value)
    rec = record(core, node)
    assert (rec.issued, rec.failed, rec.uptime) == (1, 1, 0.0)
    assert heard.heard == {cid: [Verdict.FAILED]}
    [(_, stored)] = core.store.scan(NS_CHALLENGES)
    assert stored["verdict"] == "failed" and "work_seconds" in stored["reason"]
    assert [m.verdict for m in node.link.of(ResultOut)] == [Verdict.FAILED]
    assert core.open_challenges() == {}


def test_an_absurd_peak_memory_fails_the_challenge() -> None:
    core, node = make_core(), Node()
    node.join(core)
    cid = challenge(core, node)
    with pytest.raises(InvalidArgumentError, match="peak_memory_bytes must be in"):
        commit(core, node, cid, 0.001, peak=2**64 - 1)
    assert record(core, node).failed == 1


# --- the queen's own failures -----------------------------------------------------------------------------


class FailingStore(MemoryStore):
    """A store whose writes of one namespace fail."""

    def __init__(self, ns: str) -> None:
        super().__init__()
        self.ns = ns

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        if ns == self.ns:
            raise StoreError(f"value for {ns}/{key} cannot be written")
        super().put(ns, key, value)


@pytest.mark.parametrize("ns", [NS_CHALLENGES, NS_PROVIDERS])
def test_a_store_that_fails_does_not_lose_the_verdict(ns: str) -> None:
    store = FailingStore("none")
    core, node = make_core(store=store), Node()
    heard = Verdicts(core)
    node.join(core)
    cid = challenge(core, node)
    store.ns = ns
    core.challenge_error(node.address, cid, "cannot run")
    assert heard.heard == {cid: [Verdict.FAILED]}
    assert record(core, node).failed == 1 and core.open_challenges() == {}
    assert [m.verdict for m in node.link.of(ResultOut)] == [Verdict.FAILED]


def test_every_listener_runs_even_when_one_raises() -> None:
    core, node = make_core(), Node()

    def broken(_addr: Any, _outcome: Outcome) -> None:
        raise RuntimeError("a bug in a listener")

    core.outcome_listeners.append(broken)
    heard = Verdicts(core)
    node.join(core)
    cid = challenge(core, node)
    core.challenge_error(node.address, cid, "cannot run")
    assert heard.heard == {cid: [Verdict.FAILED]}


def test_an_unexpected_error_handling_a_commitment_abandons_the_challenge(monkeypatch: pytest.MonkeyPatch) -> None:
    core, node = make_core(), Node()
    heard = Verdicts(core)
    node.join(core)
    cid = challenge(core, node)

    def bug(*_: Any) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(core.challenger, "on_commitment", bug)
    with pytest.raises(ZeroDivisionError):
        commit(core, node, cid, 0.001)
    assert heard.heard == {cid: [Verdict.ABANDONED]}
    reason = record(core, node).last_challenge["reason"]  # type: ignore[index]
    assert re.fullmatch(r"abandoned: the queen could not handle the provider's message \(error [0-9a-f]{8}\)", reason)
    # The stream ends (the servicer detaches it): nothing more is decided.
    core.detach(node.address, node.link)
    assert heard.heard == {cid: [Verdict.ABANDONED]} and record(core, node).abandoned == 1


async def test_an_unexpected_error_verifying_openings_abandons_the_challenge(monkeypatch: pytest.MonkeyPatch) -> None:
    core, node = make_core(), Node()
    heard = Verdicts(core)
    node.join(core)
    core.tick()
    req = commit_honestly(core, node)

    def bug(*_: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(core.challenger, "verify_openings", bug)
    with pytest.raises(KeyError):
        await core.openings(node.address, req.plan.challenge_id, honest_openings(node, req))
    assert heard.heard == {req.plan.challenge_id: [Verdict.ABANDONED]}
    assert core.open_challenges() == {}


async def test_a_disconnect_while_openings_are_verified_keeps_their_verdict() -> None:
    """Openings that arrived are judged even if the stream ends meanwhile (the detach does not abandon them)."""
    core, node = make_core(), Node()
    heard = Verdicts(core)
    node.join(core)
    core.tick()
    req = commit_honestly(core, node)
    core._verifying.add(req.plan.challenge_id)  # what openings() does while the check runs in a thread
    p = core.challenger.take_openings(node.address, req.plan.challenge_id)
    core.detach(node.address, node.link)
    assert heard.heard == {} and core.open_challenges() == {node.address: req.plan.challenge_id}
    core._verifying.discard(req.plan.challenge_id)
    assert p is not None
    core._record(p, core.challenger.verify_openings(p, honest_openings(node, req), False))
    assert heard.heard == {req.plan.challenge_id: [Verdict.PASSED]}


def test_a_second_verdict_for_a_decided_challenge_is_ignored() -> None:
    core, node = make_core(), Node()
    heard = Verdicts(core)
    node.join(core)
    cid = challenge(core, node)
    p = core.challenger.pending(node.address)
    assert p is not None
    core.challenge_error(node.address, cid, "cannot run")
    core._record(p, core.challenger.finish(p, Verdict.PASSED, ""))
    assert heard.heard == {cid: [Verdict.FAILED]} and record(core, node).passed == 0


# --- reconnecting ------------------------------------------------------------------------------------------


def test_reconnecting_mid_challenge_does_not_dodge_it() -> None:
    core, node = make_core(), Node()
    heard = Verdicts(core)
    node.join(core)
    cid = challenge(core, node)
    core.detach(node.address, node.link)  # the stream ends...
    second = FakeLink()
    node.join(core, second)  # ...and the provider comes back at once
    assert heard.heard == {cid: [Verdict.ABANDONED]}
    assert record(core, node).uptime == 0.0
    # Replaced by a second stream while the first is still open: the same.
    cid2 = challenge(core, node, second)
    node.join(core, FakeLink())
    assert heard.heard[cid2] == [Verdict.ABANDONED] and second.closed
    assert record(core, node).abandoned == 2


# --- quarantine ------------------------------------------------------------------------------------------


def fail_challenges(core: QueenCore, node: Node, n: int, link: FakeLink | None = None) -> None:
    for _ in range(n):
        core.challenge_error(node.address, challenge(core, node, link), "cannot run")


def test_repeated_failures_quarantine_the_provider_and_it_gets_no_jobs() -> None:
    store = MemoryStore()
    core, node = make_core(cfg=QCFG, store=store), Node()
    snapshots: list[bool] = []
    core.pool_listeners.append(lambda: snapshots.append(provider_to_proto(record(core, node), 0).alive))
    node.join(core)
    fail_challenges(core, node, 2)
    assert not node.link.refused and record(core, node).ready
    snapshots.clear()
    fail_challenges(core, node, 1)
    # Cut off, and the king hears at once that it is not alive (so it is offered nothing).
    [why] = node.link.refused
    assert why.startswith("quarantined until ") and "3 of its last 3 challenges failed" in why
    assert not core.is_connected(node.address) and snapshots and snapshots[-1] is False
    rec = record(core, node)
    assert not rec.ready and rec.quarantines == 1 and rec.recent == []
    info = provider_info_to_proto(rec, 0.0)
    assert info.quarantined_until_unix == rec.quarantined_until and info.not_ready.startswith("3 of its last")
    view = rows(pb.ListProvidersResponse(providers=[info]))[0]
    assert (view["ready"], view["failed"], view["quarantined_until"]) == (False, 3, rec.quarantined_until)
    table = render(pb.ListProvidersResponse(providers=[info]))
    assert " quarantined " in table and "0/3/0" in table and "3 of its last 3 challenges failed" in table
    # Refused admission for the back-off, also by a queen restarted on the same store.
    with pytest.raises(PermissionDeniedError, match="is quarantined until"):
        node.join(core, FakeLink())
    clock = clock_of(core)
    restarted = make_core(cfg=QCFG, store=store, clock=clock)
    restarted.start()
    with pytest.raises(PermissionDeniedError, match="is quarantined until"):
        node.join(restarted, FakeLink())
    # After it, the provider may join again and starts afresh.
    clock.advance(QCFG.quarantine_s + 1)
    restarted.tick()
    lifted = record(restarted, node)
    assert lifted.ready and lifted.quarantine == "" and provider_to_proto(lifted, 0).alive is False
    back = FakeLink()
    node.join(restarted, back)
    assert provider_to_proto(record(restarted, node), 0).alive
    fail_challenges(restarted, node, 2, back)
    assert not back.refused


def test_failures_spread_beyond_the_window_do_not_quarantine() -> None:
    core, node = make_core(cfg=QCFG), Node()
    node.join(core)
    for _ in range(4):
        fail_challenges(core, node, 1)
        for _ in range(QCFG.quarantine_window):  # passes push the failure out of the window
            cid = challenge(core, node)
            core._record(p := core.challenger.pending(node.address),  # type: ignore[arg-type]
                         core.challenger.finish(p, Verdict.PASSED, ""))  # type: ignore[arg-type]
            assert cid not in core.open_challenges().values()
    assert not node.link.refused and record(core, node).failed == 4


def test_abandoned_challenges_count_towards_quarantine() -> None:
    core, node = make_core(cfg=QCFG), Node()
    heard = Verdicts(core)
    for _ in range(3):
        link = FakeLink()
        node.join(core, link)
        challenge(core, node, link)
        core.detach(node.address, link)
    assert [v for vs in heard.heard.values() for v in vs] == [Verdict.ABANDONED] * 3
    assert record(core, node).quarantines == 1
    with pytest.raises(PermissionDeniedError):
        node.join(core, FakeLink())


def test_quarantine_off_with_zero_failures() -> None:
    core, node = make_core(cfg=replace(QCFG, quarantine_failures=0)), Node()
    node.join(core)
    fail_challenges(core, node, 8)
    assert not node.link.refused and record(core, node).quarantines == 0


def pass_challenge(core: QueenCore, node: Node) -> None:
    challenge(core, node)
    p = core.challenger.pending(node.address)
    assert p is not None
    core._record(p, core.challenger.finish(p, Verdict.PASSED, ""))


class Chain:
    """WorkVerification's quarantine bounds as a governance reader sees them."""

    def __init__(self, window: int, failures: int, seconds: int) -> None:
        self.set(window, failures, seconds)

    def set(self, window: int, failures: int, seconds: int) -> None:
        self.values: dict[str, gp.Value] = dict(zip(QUARANTINE_PARAMS, (window, failures, seconds), strict=True))

    def read(self, names: Sequence[str]) -> dict[str, gp.Value]:
        return {n: self.values[n] for n in names}


def test_a_queen_quarantines_by_the_bounds_its_governance_watch_read() -> None:
    """Governance's window, failures and seconds (verification.quarantine_*) replace the config's once the
    queen's watch has read them; a later change applies from the next verdict on, the window in the pool too."""
    assert set(QUARANTINE_PARAMS) <= set(QUEEN_GOV_PARAMS)
    core, node = make_core(cfg=QCFG), Node()  # config: 3 of the last 5, for 600 s
    chain = Chain(window=4, failures=2, seconds=120)
    core.gov = GovWatch(chain.read, QUARANTINE_PARAMS, 30.0)
    assert core.quarantine_bounds() == QuarantineBounds(5, 3, 600.0)  # before the first read: the config's
    core.gov.refresh()
    assert core.quarantine_bounds() == QuarantineBounds(4, 2, 120.0)
    node.join(core)
    fail_challenges(core, node, 1)
    for _ in range(3):
        pass_challenge(core, node)
    fail_challenges(core, node, 1)  # 2 failures in the config's window of 5, 1 in governance's 4
    assert not node.link.refused and core.pool.recent_window == 4 and len(record(core, node).recent) == 4
    fail_challenges(core, node, 1)  # governance's 2 (the config wants 3)
    [why] = node.link.refused
    assert "2 of its last 4 challenges failed" in why
    clock = clock_of(core)
    assert record(core, node).quarantined_until == clock.time() + 120  # governance's seconds, not 600
    clock.advance(121)
    core.tick()
    assert record(core, node).ready
    # A shorter window and a longer quarantine, read while the provider has verdicts: the next verdict is judged
    # by them (its older verdicts drop out of the window first).
    back = FakeLink()
    node.join(core, back)
    chain.set(window=10, failures=3, seconds=60)
    assert core.gov.refresh() == set(QUARANTINE_PARAMS)
    fail_challenges(core, node, 2, back)
    for _ in range(6):
        pass_challenge(core, node)
    chain.set(window=3, failures=2, seconds=3_600)
    core.gov.refresh()
    fail_challenges(core, node, 1, back)  # 3 failures in the last 10, but 1 in the last 3
    assert not back.refused and record(core, node).recent == ["passed", "passed", "failed"]
    assert core.pool.recent_window == 3
    fail_challenges(core, node, 1, back)
    assert back.refused and record(core, node).quarantined_until == clock.time() + 3_600
    # Governance turns quarantine off (0 failures): nobody is quarantined any more.
    clock.advance(3_601)
    core.tick()
    chain.set(window=3, failures=0, seconds=3_600)
    core.gov.refresh()
    last = FakeLink()
    node.join(core, last)
    fail_challenges(core, node, 5, last)
    assert not last.refused and record(core, node).quarantines == 2


def test_a_provider_record_the_store_refused_is_written_at_the_next_flush() -> None:
    store = FailingStore(NS_PROVIDERS)
    core, node = make_core(store=store), Node()
    node.join(core)
    core.challenge_error(node.address, challenge(core, node), "cannot run")
    assert store.get(NS_PROVIDERS, node.address) is None and record(core, node).failed == 1
    store.ns = "none"
    core.pool.flush()
    stored = store.get(NS_PROVIDERS, node.address)
    assert stored is not None and (stored["issued"], stored["failed"]) == (1, 1)
