"""The queen's core without gRPC: admission, sessions, liveness and the challenge flow end to end."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from _queen_fakes import FakeLink, cpu, gpu, hello

from blendr.clock import ManualClock
from blendr.config import QueenConfig
from blendr.errors import InvalidArgumentError, PermissionDeniedError, ResourceExhaustedError, SignatureError
from blendr.identity import Address, NodeIdentity
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.proof.merkle import MerkleTree
from blendr.proof.prover import Opening, open_rows, prove_device
from blendr.store import MemoryStore
from blendr.telemetry import Metrics
from blendr.types import DeviceInfo, ProviderState, Verdict
from queen.admission import AllowlistOracle, OpenOracle, StakeOracle
from queen.challenges import DeviceCommitmentIn
from queen.core import (
    NS_CHALLENGES,
    AdmittedOut,
    ChallengeOut,
    OpeningRequestOut,
    QueenCore,
    QueenMetrics,
    ResultOut,
)
from queen.pool import NS_PROVIDERS, ProviderRecord

QUEEN = NodeIdentity.generate().address
CFG = QueenConfig(
    challenge_n_cpu=16,
    challenge_n_gpu=16,
    challenge_max_count=2,
    openings_k=4,
    grace_s=1.0,
    max_devices=4,
    challenge_mean_interval_s=10_000.0,
    opening_timeout_s=5.0,
    # The manual clock does not move with the reported work; the queen-clock check is tested in
    # test_queen_challenges.py.
    speed_wall_factor=1e-9,
    # Off here: these tests fail challenges on purpose; quarantine is tested in test_queen_verdicts.py.
    quarantine_failures=0,
)
CPU_TFLOPS = FINGERPRINTS["cpu"].fp32_tflops


class Node:
    """One provider: its key, its devices and the stream the queen holds for it."""

    def __init__(self, *devices: DeviceInfo) -> None:
        self.identity = NodeIdentity.generate()
        self.devices = devices or (cpu(),)
        self.link = FakeLink()

    @property
    def address(self) -> Address:
        return self.identity.address

    def join(self, core: QueenCore, link: FakeLink | None = None) -> AdmittedOut:
        nonce = core.admission.new_nonce()
        sig = self.identity.sign_admission(core.address, nonce)
        h = hello(self.address, *self.devices)
        core.check_hello(h)
        return core.admit(h, nonce, sig, link or self.link)


def make_core(
    cfg: QueenConfig = CFG,
    oracle: StakeOracle | None = None,
    store: MemoryStore | None = None,
    clock: ManualClock | None = None,
    metrics: QueenMetrics | None = None,
) -> QueenCore:
    return QueenCore(
        QUEEN,
        cfg,
        store or MemoryStore(),
        clock or ManualClock(),
        oracle or OpenOracle(),
        metrics=metrics,
        rng=random.Random(7),
    )


def clock_of(core: QueenCore) -> ManualClock:
    assert isinstance(core.clock, ManualClock)
    return core.clock


def commit_honestly(core: QueenCore, node: Node, link: FakeLink | None = None) -> OpeningRequestOut:
    """Answer the last challenge sent to ``node`` with real roots at fingerprint speed."""
    link = link or node.link
    p = link.of(ChallengeOut)[-1].pending
    clock_of(core).advance(0.01)
    work = p.params.flops / (CPU_TFLOPS * 1e12)
    core.commitment(
        node.address,
        p.challenge_id,
        [DeviceCommitmentIn(d.index, prove_device(p.params, d.index).root, work, 1024) for d in p.devices],
    )
    req = link.sent[-1]
    assert isinstance(req, OpeningRequestOut)
    return req


def honest_openings(node: Node, req: OpeningRequestOut) -> list[Opening]:
    """The rows ``req`` asks for, opened from real proofs of the last challenge sent to ``node``."""
    p = node.link.of(ChallengeOut)[-1].pending
    out = []
    for d in p.devices:
        tree = MerkleTree.from_row_digests(prove_device(p.params, d.index).leaf_digests)
        out.extend(open_rows(p.params, d.index, tree, [r for dev, r in req.plan.rows if dev == d.index]))
    return out


def record(core: QueenCore, node: Node) -> ProviderRecord:
    rec = core.pool.get(node.address)
    assert rec is not None
    return rec


def stored(core: QueenCore, node: Node) -> dict[str, Any]:
    value = core.store.get(NS_PROVIDERS, node.address)
    assert value is not None
    return value


def results(link: FakeLink) -> list[tuple[Verdict, str]]:
    return [(m.verdict, m.reason) for m in link.of(ResultOut)]


# --- hello checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("devices", "error", "message"),
    [
        ((), InvalidArgumentError, "hello lists no devices"),
        (
            tuple(gpu(i) for i in range(5)),
            ResourceExhaustedError,
            "hello lists 5 devices; this queen accepts at most 4",
        ),
        ((gpu(0), gpu(0, "t4")), InvalidArgumentError, "hello lists duplicate device indices"),
        (
            (gpu(0), replace(gpu(1), model="gtx-1080")),
            InvalidArgumentError,
            "device 1 claims unknown model 'gtx-1080'",
        ),
        ((cpu(0), cpu(1)), InvalidArgumentError, "a CPU provider offers exactly one CPU device"),
        ((cpu(0), gpu(1)), InvalidArgumentError, "a CPU provider offers exactly one CPU device"),
        ((gpu(0, memory_bytes=0),), InvalidArgumentError, "device 0: memory_bytes must be > 0"),
        ((gpu(0), gpu(1, "t4")), InvalidArgumentError, "one provider offers one GPU model"),
        ((gpu(0, "cpu"),), InvalidArgumentError, "does not fit model 'cpu'"),
        ((replace(cpu(0), model="h100-sxm"),), InvalidArgumentError, "kind cpu does not fit model 'h100-sxm'"),
    ],
)
def test_check_hello_rejects(devices: tuple[DeviceInfo, ...], error: type[Exception], message: str) -> None:
    h = replace(hello(Address("0x" + "aa" * 20)), devices=devices)
    with pytest.raises(error, match=message):
        make_core().check_hello(h)


@pytest.mark.parametrize("devices", [(cpu(),), (gpu(0, "t4"), gpu(1, "t4"), gpu(5, "t4"))])
def test_check_hello_accepts(devices: tuple[DeviceInfo, ...]) -> None:
    make_core().check_hello(hello(Address("0x" + "aa" * 20), *devices))


# --- admission ------------------------------------------------------------------------------------


def test_admitted_provider_is_alive_connected_and_challenged_at_once() -> None:
    core, node = make_core(), Node()
    out = node.join(core)
    assert (out.address, out.resumed, out.queen) == (node.address, False, QUEEN)
    assert out.heartbeat_interval_s == CFG.heartbeat_interval_s
    assert core.is_connected(node.address)
    assert [r.address for r in core.providers()] == [node.address]
    assert node.link.sent == []
    core.tick()
    [msg] = node.link.sent
    assert isinstance(msg, ChallengeOut)
    p = msg.pending
    assert (p.address, p.device_indices, p.params.n, p.params.count) == (node.address, [0], 16, 2)
    assert record(core, node).issued == 1


async def test_full_challenge_flow_passes_and_is_recorded() -> None:
    registry = Metrics()
    core, node = make_core(metrics=QueenMetrics(registry)), Node()
    node.join(core)
    core.tick()
    req = commit_honestly(core, node)
    p = node.link.of(ChallengeOut)[0].pending
    assert req.plan.challenge_id == p.challenge_id
    assert len(req.plan.rows) == CFG.openings_k
    await core.openings(node.address, p.challenge_id, honest_openings(node, req))
    [res] = node.link.of(ResultOut)
    assert (res.verdict, res.reason, res.challenge_id) == (Verdict.PASSED, "", p.challenge_id)
    assert res.reported_tflops == pytest.approx(CPU_TFLOPS)
    rec = core.pool.get(node.address)
    assert rec is not None
    assert (rec.issued, rec.passed, rec.failed, rec.missed) == (1, 1, 0, 0)
    # What the pool shows as measured is the queen's own clock, not the provider's report.
    assert rec.measured_tflops == pytest.approx(res.wall_tflops) and res.wall_tflops > 0
    assert rec.fingerprint_tflops == CPU_TFLOPS
    assert rec.last_challenge is not None and rec.last_challenge["verdict"] == "passed"
    assert rec.state is ProviderState.ALIVE
    stored = core.store.scan(NS_CHALLENGES)
    assert len(stored) == 1
    key, value = stored[0]
    assert key.startswith(f"{node.address}/") and key.endswith(f"/{p.challenge_id}")
    assert (value["verdict"], value["address"], value["models"]) == ("passed", node.address, {"0": "cpu"})
    assert core.challenge_records(node.address.lower()) == [value]
    body = registry.render().decode()
    assert 'blendr_queen_admissions_total{result="admitted"} 1.0' in body
    assert 'blendr_queen_challenges_total{verdict="passed"} 1.0' in body
    assert 'blendr_queen_providers{state="alive"} 1.0' in body
    assert "blendr_queen_verification_seconds_count 1.0" in body


def test_bad_signature_is_refused_and_counted() -> None:
    registry = Metrics()
    core, node = make_core(metrics=QueenMetrics(registry)), Node()
    nonce = core.admission.new_nonce()
    replayed = node.identity.sign_admission(core.address, core.admission.new_nonce())
    with pytest.raises(SignatureError, match="not made by the provider's key"):
        core.admit(hello(node.address), nonce, replayed, node.link)
    assert not core.is_connected(node.address)
    assert core.providers() == []
    assert 'blendr_queen_admissions_total{result="SignatureError"} 1.0' in registry.render().decode()
    core.tick()
    assert node.link.sent == []


def test_allowlist_refusal_and_admission() -> None:
    store, clock = MemoryStore(), ManualClock()
    oracle = AllowlistOracle(store, clock)
    core, node = make_core(oracle=oracle, store=store, clock=clock), Node()
    with pytest.raises(PermissionDeniedError, match="is not on this queen's allowlist"):
        node.join(core)
    assert core.providers() == []
    oracle.allow(node.address)
    assert node.join(core).resumed is False


def test_second_connection_replaces_the_first() -> None:
    core, node = make_core(), Node()
    old, new = FakeLink(), FakeLink()
    node.join(core, old)
    clock_of(core).advance(3)
    out = node.join(core, new)
    assert out.resumed is True
    assert old.closed == ["replaced by a newer connection from the same provider"]
    assert new.closed == []
    # The old stream ending later must not disconnect the new one.
    core.detach(node.address, old)
    assert core.is_connected(node.address)
    assert core.pool.is_connected(node.address)
    core.tick()
    assert len(new.of(ChallengeOut)) == 1
    assert old.of(ChallengeOut) == []
    core.detach(node.address, new)
    assert not core.is_connected(node.address)
    assert not core.pool.is_connected(node.address)
    assert record(core, node).connected_seconds == 3.0


def test_replacement_mid_challenge_abandons_the_challenge() -> None:
    core, node = make_core(), Node()
    old, new = FakeLink(), FakeLink()
    node.join(core, old)
    core.tick()
    [msg] = old.of(ChallengeOut)
    node.join(core, new)
    rec = core.pool.get(node.address)
    assert rec is not None and (rec.abandoned, rec.failed, rec.missed) == (1, 0, 0) and rec.uptime == 0.0
    [(_, value)] = core.store.scan(NS_CHALLENGES)
    assert (value["verdict"], value["reason"]) == ("abandoned", "abandoned: connection replaced mid-challenge")
    assert value["challenge_id"] == msg.pending.challenge_id
    assert core.challenger.pending(node.address) is None
    # The new session is challenged afresh.
    core.tick()
    assert len(new.of(ChallengeOut)) == 1


def test_detach_of_unknown_provider_is_ignored() -> None:
    core = make_core()
    core.detach(Address("0x" + "cc" * 20), FakeLink())
    assert core.providers() == []


# --- liveness -------------------------------------------------------------------------------------


def test_liveness_through_tick() -> None:
    core, node = make_core(), Node()
    node.join(core)
    clock = clock_of(core)
    core.tick()  # admission challenge
    clock.advance(CFG.suspect_after_s + 1)
    core.tick()
    assert record(core, node).state is ProviderState.SUSPECT
    # The unanswered challenge expired while connected: a failure, not a miss.
    assert results(node.link)[-1][0] is Verdict.FAILED
    assert results(node.link)[-1][1].startswith("late: no commitment within")
    core.heartbeat(node.address)
    assert record(core, node).state is ProviderState.ALIVE
    clock.advance(CFG.dead_after_s + 1)
    core.tick()
    assert record(core, node).state is ProviderState.DEAD
    # A dead provider is still challenged: each unanswered challenge counts against its uptime.
    sent = len(node.link.sent)
    core.challenger.drop(node.address)
    core.challenger.schedule(node.address, immediate=True)
    clock.advance(100_000)
    core.tick()
    assert len(node.link.sent) > sent


def test_challenge_due_while_away_and_suspect_is_missed() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.detach(node.address, node.link)
    clock_of(core).advance(CFG.suspect_after_s + 1)
    core.tick()
    rec = core.pool.get(node.address)
    assert rec is not None
    assert rec.state is ProviderState.SUSPECT
    assert (rec.issued, rec.missed, rec.failed) == (1, 1, 0)
    assert rec.uptime == 0.0
    [(_, value)] = core.store.scan(NS_CHALLENGES)
    assert (value["verdict"], value["reason"]) == ("missed", "provider away when challenged")
    assert node.link.sent == []
    assert core.challenger.pending(node.address) is None


def test_disconnect_mid_challenge_abandons_it_at_once() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    p = node.link.of(ChallengeOut)[0].pending
    core.detach(node.address, node.link)
    [(_, value)] = core.store.scan(NS_CHALLENGES)
    assert (value["challenge_id"], value["verdict"]) == (p.challenge_id, "abandoned")
    assert value["reason"] == "abandoned: the provider disconnected mid-challenge"
    # Its deadline passing later decides nothing more.
    clock_of(core).advance(p.timeout_s + 0.1)
    core.tick()
    assert len(core.store.scan(NS_CHALLENGES)) == 1 and record(core, node).abandoned == 1


def test_one_challenge_in_flight_per_provider() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    core.challenger.schedule(node.address, immediate=True)
    core.tick()
    assert len(node.link.of(ChallengeOut)) == 1


def test_heartbeats_are_flushed_every_few_seconds() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.challenger.unschedule(node.address)  # no challenge: its records would write the provider too
    clock = clock_of(core)
    from queen.pool import NS_SEEN, SEEN_KEY

    admitted_seen = stored(core, node)["last_seen"]
    clock.advance(2)
    core.heartbeat(node.address)
    core.tick()
    core.pool.write(core.flush_due())
    assert core.store.get(NS_SEEN, SEEN_KEY) is None
    clock.advance(3)
    core.tick()
    core.pool.write(core.flush_due())
    assert core.store.get(NS_SEEN, SEEN_KEY) == {node.address: admitted_seen + 2}


def test_restart_loads_the_pool_as_suspect() -> None:
    store, clock = MemoryStore(), ManualClock()
    core, node = make_core(store=store, clock=clock), Node(gpu(0, "t4"), gpu(1, "t4"))
    node.join(core)
    core.tick()  # the admission challenge is in flight when the queen stops
    core.shutdown()
    again = make_core(store=store, clock=clock)
    assert again.start() == 1
    rec = again.pool.get(node.address)
    assert rec is not None and (rec.issued, rec.missed) == (1, 1)  # lost by the queen: a miss
    assert rec.last_challenge is not None and "restarted" in rec.last_challenge["reason"]
    assert [r.address for r in again.providers([ProviderState.SUSPECT])] == [node.address]
    assert again.providers([ProviderState.ALIVE]) == []
    assert not again.is_connected(node.address)
    assert node.join(again).resumed is True


# --- failing answers ------------------------------------------------------------------------------


def test_malformed_commitment_raises_and_fails_the_challenge() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    p = node.link.of(ChallengeOut)[0].pending
    with pytest.raises(InvalidArgumentError, match=r"root must be 32 bytes \(got 31\)"):
        core.commitment(node.address, p.challenge_id, [DeviceCommitmentIn(0, b"\x00" * 31, 0.1, 0)])
    [(verdict, reason)] = results(node.link)
    assert verdict is Verdict.FAILED
    assert reason.startswith("malformed commitment: device 0: root must be 32 bytes")
    assert record(core, node).failed == 1


def test_stale_commitment_is_ignored() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    core.commitment(node.address, "old-id", [DeviceCommitmentIn(0, b"\x00" * 32, 0.1, 0)])
    assert len(node.link.sent) == 1
    assert core.challenger.pending(node.address) is not None


async def test_stale_openings_are_ignored() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    await core.openings(node.address, "old-id", [])
    assert results(node.link) == []
    assert core.store.scan(NS_CHALLENGES) == []


async def test_slow_commitment_fails() -> None:
    # The CPU reference proves no hardware: it is held to its deadline (a liveness bound) on the queen's clock.
    core, node = make_core(replace(CFG, speed_wall_factor=1.0)), Node()
    node.join(core)
    core.tick()
    p = node.link.of(ChallengeOut)[0].pending
    clock_of(core).advance(p.timeout_s + 0.01)
    core.commitment(node.address, p.challenge_id, [DeviceCommitmentIn(0, b"\x00" * 32, 0.8, 0)])
    [(verdict, reason)] = results(node.link)
    assert verdict is Verdict.FAILED
    assert reason.startswith("late: commitment after")
    assert record(core, node).measured_tflops == 0.0


async def test_late_openings_fail() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    req = commit_honestly(core, node)
    openings = honest_openings(node, req)
    clock_of(core).advance(CFG.opening_timeout_s + 0.1)
    await core.openings(node.address, req.plan.challenge_id, openings)
    assert results(node.link) == [(Verdict.FAILED, "late: openings after the opening deadline")]


async def test_corrupted_openings_fail() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    req = commit_honestly(core, node)
    openings = honest_openings(node, req)
    openings[0] = replace(openings[0], values=bytes(len(openings[0].values)))
    await core.openings(node.address, req.plan.challenge_id, openings)
    [(verdict, reason)] = results(node.link)
    assert verdict is Verdict.FAILED
    assert reason == f"row {openings[0].row} of device 0 does not match the commitment"
    assert record(core, node).failed == 1


async def test_malformed_openings_raise_and_fail_the_challenge() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    req = commit_honestly(core, node)
    openings = honest_openings(node, req)
    openings[0] = replace(openings[0], device_index=9)
    with pytest.raises(InvalidArgumentError, match="opening for device 9, which was not challenged"):
        await core.openings(node.address, req.plan.challenge_id, openings)
    [(verdict, reason)] = results(node.link)
    assert verdict is Verdict.FAILED
    assert reason.startswith("malformed openings: opening for device 9")


def test_provider_challenge_error_fails_the_challenge() -> None:
    core, node = make_core(), Node()
    node.join(core)
    core.tick()
    p = node.link.of(ChallengeOut)[0].pending
    core.challenge_error(node.address, "old-id", "ignored")
    assert results(node.link) == []
    core.challenge_error(node.address, p.challenge_id, "no GPU")
    assert results(node.link) == [(Verdict.FAILED, "provider error: no GPU")]
    assert record(core, node).failed == 1


def test_keep_challenges_prunes_old_records() -> None:
    core, node = make_core(cfg=replace(CFG, keep_challenges=2)), Node()
    node.join(core)
    ids = []
    for _ in range(4):
        core.challenger.schedule(node.address, immediate=True)
        core.tick()
        p = node.link.of(ChallengeOut)[-1].pending
        ids.append(p.challenge_id)
        core.challenge_error(node.address, p.challenge_id, "busy")
        clock_of(core).advance(1)
    kept = [v["challenge_id"] for v in core.challenge_records(node.address)]
    assert kept == ids[:1:-1]  # newest first, the two latest
    assert record(core, node).failed == 4


def _challenges_while_heartbeating(core: QueenCore, node: Node, seconds: int) -> int:
    before = len(node.link.of(ChallengeOut))
    for _ in range(seconds // 5):
        clock_of(core).advance(5)
        core.heartbeat(node.address)
        core.tick()
        for msg in node.link.of(ChallengeOut)[before:]:
            core.challenge_error(node.address, msg.pending.challenge_id, "busy")
    return len(node.link.of(ChallengeOut)) - before


def test_random_challenges_keep_coming_while_a_provider_is_alive() -> None:
    core, node = make_core(cfg=replace(CFG, challenge_mean_interval_s=20.0)), Node()
    node.join(core)
    assert _challenges_while_heartbeating(core, node, 600) >= 10


def test_random_challenges_resume_when_a_dead_but_connected_provider_comes_back() -> None:
    core, node = make_core(cfg=replace(CFG, challenge_mean_interval_s=20.0)), Node()
    node.join(core)
    core.tick()
    p = node.link.of(ChallengeOut)[0].pending
    core.challenge_error(node.address, p.challenge_id, "busy")
    clock_of(core).advance(CFG.dead_after_s + 1)  # the stream stays open but goes quiet
    core.tick()
    assert record(core, node).state is ProviderState.DEAD
    core.heartbeat(node.address)
    assert record(core, node).state is ProviderState.ALIVE
    assert _challenges_while_heartbeating(core, node, 600) >= 10


async def test_a_provider_that_does_not_read_its_stream_is_cut_off() -> None:
    """A full outbound queue ends that stream (RESOURCE_EXHAUSTED) instead of breaking the queen's tick."""
    import grpc

    from queen.service import OUTBOUND_QUEUE, StreamLink, _Closed

    link = StreamLink()
    core, node = make_core(), Node()
    node.join(core, link)  # type: ignore[arg-type]
    for _ in range(OUTBOUND_QUEUE + 5):
        core.challenger.drop(node.address)
        core.challenger.schedule(node.address, immediate=True)
        core.tick()
    items = [link.queue.get_nowait() for _ in range(link.queue.qsize())]
    closed = [i for i in items if isinstance(i, _Closed)]
    assert closed and closed[0].code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_readiness_from_hello_and_heartbeats_decides_what_the_king_is_offered() -> None:
    from blendr.types import Readiness
    from protos.blendr.v1 import queen_pb2 as pb
    from queen import convert as qconvert
    from queen.poolview import render, rows

    core = make_core()
    changes: list[int] = []
    core.pool_listeners.append(lambda: changes.append(1))
    node = Node()
    nonce = core.admission.new_nonce()
    h = replace(hello(node.address, cpu()), readiness=Readiness(False, "the Ray job agent does not answer"))
    core.admit(h, nonce, node.identity.sign_admission(core.address, nonce), node.link)
    rec = core.pool.get(node.address)
    assert rec is not None and rec.state is ProviderState.ALIVE and not rec.ready
    # Admitted, listed and challenged, but not offered: the king's snapshot says it takes no jobs.
    assert rec.not_ready == "the Ray job agent does not answer"
    assert not qconvert.provider_to_proto(rec, 0).alive
    view = pb.ListProvidersResponse(providers=[qconvert.provider_info_to_proto(rec, 0.0)], queen_address=QUEEN)
    assert rows(view)[0]["ready"] is False
    assert "not ready for jobs (not offered):" in render(view) and "the Ray job agent does not answer" in render(view)
    # Heartbeats without readiness change nothing; a recovery is announced to the king once.
    before = len(changes)
    core.heartbeat(node.address)
    core.heartbeat(node.address, Readiness(False, "the Ray job agent does not answer"))
    assert len(changes) == before and not rec.ready
    core.heartbeat(node.address, Readiness(True))
    assert rec.ready and qconvert.provider_to_proto(rec, 0).alive and len(changes) == before + 1
    assert rows(pb.ListProvidersResponse(providers=[qconvert.provider_info_to_proto(rec, 0.0)]))[0]["ready"] is True
    # Losing readiness again (a snapshot interval later) takes it off the market; the record (and its reason)
    # persists.
    clock_of(core).advance(core.readiness_snapshot_gap_s)
    core.heartbeat(node.address, Readiness(False, "a trivial job failed: exit 1"))
    assert not qconvert.provider_to_proto(rec, 0).alive and len(changes) == before + 2
    stored = ProviderRecord.from_dict(core.store.get(NS_PROVIDERS, node.address))
    assert stored.not_ready == "a trivial job failed: exit 1"
    # A reconnect with a ready hello clears it.
    node.join(core)
    assert rec.ready


def test_readiness_changes_cannot_make_the_queen_flood_the_king() -> None:
    from blendr.types import Readiness
    from protos.blendr.v1 import queen_pb2 as pb
    from queen import convert as qconvert
    from queen.poolview import render

    core = make_core()
    changes: list[int] = []
    core.pool_listeners.append(lambda: changes.append(1))
    nodes = [Node(), Node()]
    for n in nodes:
        n.join(core)
    a, b = (n.address for n in nodes)
    before = len(changes)
    # A new reason every heartbeat while staying not ready: no snapshot, no store write, the listing shows the last.
    core.heartbeat(a, Readiness(False, "reason 0"))
    assert len(changes) == before + 1  # the flip from ready
    for i in range(1, 50):
        core.heartbeat(a, Readiness(False, f"reason {i}"))
    rec = core.pool.get(a)
    assert rec is not None and len(changes) == before + 1 and rec.not_ready == "reason 49"
    assert ProviderRecord.from_dict(core.store.get(NS_PROVIDERS, a)).not_ready == "reason 0"
    view = pb.ListProvidersResponse(providers=[qconvert.provider_info_to_proto(rec, 0.0)], queen_address=QUEEN)
    assert "reason 49" in render(view)
    # Flips inside the gap, from any provider of this queen, wait for the next regular snapshot ...
    core.heartbeat(a, Readiness(True))
    core.heartbeat(b, Readiness(False, "busy"))
    core.heartbeat(a, Readiness(False, "again"))
    assert len(changes) == before + 1
    assert not rec.ready and not qconvert.provider_to_proto(rec, 0).alive  # ... which reads the pool as it is now
    # ... and one interval later a flip sends one again.
    clock_of(core).advance(core.readiness_snapshot_gap_s)
    core.heartbeat(a, Readiness(True))
    assert len(changes) == before + 2 and rec.ready
