"""Proof-of-GPU challenges from the queen's side: scheduling, sizing, commitments, openings, verdicts."""

from __future__ import annotations

import random
import statistics
from dataclasses import replace

import pytest
from _queen_fakes import ADDR_A, ADDR_B, cpu, gpu

from blendr.clock import ManualClock
from blendr.config import QueenConfig
from blendr.errors import InvalidArgumentError
from blendr.proof import sizing
from blendr.proof.fingerprints import FINGERPRINTS, GIB
from blendr.proof.merkle import MerkleTree
from blendr.proof.prover import Opening, open_rows, prove_device
from blendr.types import DeviceInfo, Verdict
from queen.challenges import (
    DISPATCH_ALLOWANCE_S,
    ROW_ALLOWANCE_S,
    Challenger,
    DeviceCommitmentIn,
    OpeningPlan,
    Outcome,
    PendingChallenge,
    Policy,
)

H100_NAME = FINGERPRINTS["h100-sxm"].name

# Small numbers: CPU challenges are 16x16 matrices, 2 products (32 rows); GPU ones are sized for t4/h100
# but never computed (the tests choose the reported work time).
POLICY = Policy(
    mean_interval_s=60.0,
    target_s=1.0,
    n_gpu=64,
    n_cpu=16,
    max_count=2,
    memory_fraction=0.5,
    k=4,
    opening_timeout_s=5.0,
    grace_s=1.0,
    min_fraction=0.25,
    max_fraction=1.3,
    memory_tolerance=0.1,
    # The manual clock here does not move with the reported work; the queen-clock check has its own tests.
    wall_factor=0.0,
    # The memory probe has its own tests (tests/unit/queen/test_queen_memory_probe.py).
    memory_probe="off",
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ch(clock: ManualClock) -> Challenger:
    return Challenger(POLICY, clock, rng=random.Random(1234))


def work_at(p: PendingChallenge, fraction: float, device: int = 0) -> float:
    """Work seconds that report ``fraction`` of the device's fingerprint throughput."""
    return p.params.flops / (fraction * p.fingerprint[device].fp32_tflops * 1e12)


def commits(
    p: PendingChallenge,
    fraction: float = 1.0,
    roots: dict[int, bytes] | None = None,
) -> list[DeviceCommitmentIn]:
    return [
        DeviceCommitmentIn(
            d.index, (roots or {}).get(d.index, bytes([d.index]) * 32), work_at(p, fraction, d.index), 1024
        )
        for d in p.devices
    ]


def honest_openings(p: PendingChallenge, plan: OpeningPlan) -> tuple[dict[int, bytes], list[Opening]]:
    """Prove every device for real and open the planned rows; returns (roots, openings)."""
    roots, out = {}, []
    for d in p.devices:
        proof = prove_device(p.params, d.index)
        roots[d.index] = proof.root
        tree = MerkleTree.from_row_digests(proof.leaf_digests)
        out.extend(open_rows(p.params, d.index, tree, [r for dev, r in plan.rows if dev == d.index]))
    return roots, out


def committed(
    ch: Challenger, clock: ManualClock, devices: list[DeviceInfo]
) -> tuple[PendingChallenge, OpeningPlan, list[Opening]]:
    """Issue a challenge, commit to honest roots at fingerprint speed, and return the honest openings."""
    p = ch.issue(ADDR_A, devices)
    roots = {d.index: prove_device(p.params, d.index).root for d in devices}
    clock.advance(0.01)
    plan = ch.on_commitment(ADDR_A, p.challenge_id, commits(p, 1.0, roots))
    assert isinstance(plan, OpeningPlan)
    _, openings = honest_openings(p, plan)
    return p, plan, openings


# --- scheduling -----------------------------------------------------------------------------------


def test_immediate_schedule_is_due_at_once_and_only_once(ch: Challenger, clock: ManualClock) -> None:
    assert ch.schedule(ADDR_A, immediate=True) == clock.monotonic()
    assert ch.due() == [ADDR_A]
    assert ch.due() == []


def test_random_schedule_is_due_at_its_time(ch: Challenger, clock: ManualClock) -> None:
    when = ch.schedule(ADDR_A)
    assert when > clock.monotonic()
    clock.advance(when - clock.monotonic() - 1e-6)
    assert ch.due() == []
    clock.advance(1e-6)
    assert ch.due() == [ADDR_A]


def test_rescheduling_replaces_and_unschedule_removes(ch: Challenger, clock: ManualClock) -> None:
    ch.schedule(ADDR_A)
    ch.schedule(ADDR_A, immediate=True)
    ch.schedule(ADDR_B, immediate=True)
    ch.unschedule(ADDR_B)
    ch.unschedule(ADDR_B)  # unknown: no error
    assert ch.due() == [ADDR_A]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_delays_have_the_configured_mean(clock: ManualClock, seed: int) -> None:
    ch = Challenger(POLICY, clock, rng=random.Random(seed))
    now = clock.monotonic()
    delays = [ch.schedule(ADDR_A) - now for _ in range(4000)]
    assert all(d > 0 for d in delays)
    mean = statistics.fmean(delays)
    # Standard error of the mean is mean / sqrt(4000) ~ 1.6%; allow ~4 of them.
    assert mean == pytest.approx(POLICY.mean_interval_s, rel=0.065)
    # Exponential, not fixed: the standard deviation equals the mean.
    assert statistics.pstdev(delays) == pytest.approx(POLICY.mean_interval_s, rel=0.1)


def test_policy_from_config() -> None:
    q = QueenConfig(challenge_mean_interval_s=7.0, openings_k=3, speed_min_fraction=0.2, grace_s=2.5)
    pol = Policy.from_config(q)
    assert (pol.mean_interval_s, pol.k, pol.min_fraction, pol.grace_s) == (7.0, 3, 0.2, 2.5)
    assert (pol.n_gpu, pol.n_cpu, pol.max_count) == (
        q.challenge_n_gpu,
        q.challenge_n_cpu,
        q.challenge_max_count,
    )
    assert (pol.max_fraction, pol.memory_tolerance) == (q.speed_max_fraction, q.memory_tolerance)


# --- issuing --------------------------------------------------------------------------------------


def test_issue_is_sized_for_the_slowest_device(clock: ManualClock) -> None:
    policy = replace(POLICY, n_gpu=1024, target_s=0.001, max_count=1000)
    ch = Challenger(policy, clock, rng=random.Random(0))
    t4 = FINGERPRINTS["t4"]
    mixed = ch.issue(ADDR_A, [gpu(0, "h100-sxm"), gpu(1, "t4")])
    expected = sizing.size_challenge(t4, 1024, 0.001, 1000, 0.5)
    assert (mixed.params.n, mixed.params.count) == expected
    fast = ch.issue(ADDR_B, [gpu(0, "h100-sxm")])
    assert (fast.params.n, fast.params.count) == sizing.size_challenge(
        FINGERPRINTS["h100-sxm"], 1024, 0.001, 1000, 0.5
    )
    assert fast.params.count > mixed.params.count  # the faster model alone gets more work
    # The deadline is the slowest model's too, plus an allowance per committed row.
    deadline = sizing.deadline_seconds(mixed.params, t4, policy.min_fraction, policy.grace_s)
    assert mixed.timeout_s == pytest.approx(deadline + mixed.params.rows * ROW_ALLOWANCE_S)
    assert mixed.deadline_mono == clock.monotonic() + mixed.timeout_s
    assert {k: fp.key for k, fp in mixed.fingerprint.items()} == {0: "h100-sxm", 1: "t4"}
    assert mixed.device_indices == [0, 1]
    assert mixed.phase == "commit"


def test_issue_for_a_cpu_uses_the_cpu_size(ch: Challenger) -> None:
    p = ch.issue(ADDR_A, [cpu()])
    assert (p.params.n, p.params.count) == (16, 2)
    assert ch.pending(ADDR_A) is p


def test_each_challenge_has_a_fresh_id_and_seed(ch: Challenger) -> None:
    issued = [ch.issue(ADDR_A, [cpu()]) for _ in range(5)]
    assert len({p.challenge_id for p in issued}) == 5
    assert len({p.params.seed for p in issued}) == 5
    assert all(len(p.params.seed) == 32 for p in issued)
    assert ch.pending(ADDR_A) is issued[-1]


def test_issue_rejects_unknown_models_and_empty_device_lists(ch: Challenger) -> None:
    with pytest.raises(
        InvalidArgumentError, match=r"device 1 claims unknown model 'gtx-1080' \(known: .*h100-sxm"
    ):
        ch.issue(ADDR_A, [gpu(0), replace(gpu(1), model="gtx-1080")])
    with pytest.raises(InvalidArgumentError, match="provider has no devices to challenge"):
        ch.issue(ADDR_A, [])
    assert ch.pending(ADDR_A) is None


# --- commitments ----------------------------------------------------------------------------------


WORK_SECONDS = r"device 0: work_seconds must be a finite number in \[0, 86400\]"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda cs: cs[:1], r"devices \[0\] do not match the challenged devices \[0, 1\]"),
        (lambda cs: [*cs, replace(cs[0], device_index=7)], r"devices \[0, 1, 7\] do not match"),
        (lambda cs: [cs[0], replace(cs[1], device_index=0)], r"devices \[0, 0\] do not match"),
        (
            lambda cs: [cs[0], replace(cs[1], root=b"\x01" * 31)],
            r"device 1: root must be 32 bytes \(got 31\)",
        ),
        (lambda cs: [replace(cs[0], work_seconds=-1.0), cs[1]], WORK_SECONDS),
        (lambda cs: [replace(cs[0], work_seconds=float("nan")), cs[1]], WORK_SECONDS),
        (lambda cs: [replace(cs[0], work_seconds=float("inf")), cs[1]], WORK_SECONDS),
        (lambda cs: [cs[0], replace(cs[1], work_seconds=float("-inf"))], WORK_SECONDS.replace("0", "1", 1)),
        (lambda cs: [replace(cs[0], work_seconds=1e300), cs[1]], WORK_SECONDS),
        (lambda cs: [replace(cs[0], peak_memory_bytes=-1), cs[1]], r"device 0: peak_memory_bytes must be in"),
        (lambda cs: [replace(cs[0], peak_memory_bytes=2**64 - 1), cs[1]], r"device 0: peak_memory_bytes must be"),
    ],
)
def test_malformed_commitments_raise_and_drop_the_challenge(
    ch: Challenger, clock: ManualClock, mutate: object, message: str
) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "t4"), gpu(1, "t4")])
    clock.advance(0.01)
    with pytest.raises(InvalidArgumentError, match="malformed commitment: " + message):
        ch.on_commitment(ADDR_A, p.challenge_id, mutate(commits(p)))  # type: ignore[operator]
    assert ch.pending(ADDR_A) is None


def test_late_commitment_fails(ch: Challenger, clock: ManualClock) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(p.timeout_s + 0.5)
    out = ch.on_commitment(ADDR_A, p.challenge_id, commits(p))
    assert isinstance(out, Outcome)
    assert out.verdict is Verdict.FAILED
    assert out.reason.startswith(
        f"late: commitment after {p.timeout_s + 0.5:.2f}s (deadline {p.timeout_s:.2f}s)"
    )
    assert ch.pending(ADDR_A) is None


def test_commitment_exactly_at_the_deadline_is_in_time(ch: Challenger, clock: ManualClock) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(p.timeout_s)
    assert isinstance(ch.on_commitment(ADDR_A, p.challenge_id, commits(p)), OpeningPlan)


@pytest.mark.parametrize(
    ("work", "wall", "reason"),
    [
        (0.0, 0.5, "implausible timing: work 0 s"),
        (0.6, 0.5, "implausible timing: work 0.6 s, wall 0.5 s"),  # more work than the queen saw pass
        (1e-12, 0.5, "faster than the claimed model can be"),
    ],
)
def test_timing_checks_fail_the_challenge(
    ch: Challenger, clock: ManualClock, work: float, wall: float, reason: str
) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(wall)
    out = ch.on_commitment(ADDR_A, p.challenge_id, [DeviceCommitmentIn(0, b"\x00" * 32, work, 0)])
    assert isinstance(out, Outcome)
    assert out.verdict is Verdict.FAILED
    assert out.reason.startswith(f"device 0 ({FINGERPRINTS['t4'].name}): " + reason)
    assert out.record["verdict"] == "failed"
    assert out.record["work_seconds"] == {"0": work}
    assert out.record["commit_seconds"] == pytest.approx(wall)
    assert ch.pending(ADDR_A) is None


STRICT = replace(POLICY, wall_factor=1.0, n_gpu=8192, target_s=2.0, max_count=4096, grace_s=100.0)
"""Seconds of work, so that the floor (4x the work at 0.25) is far above the dispatch allowance."""


def over_floor(p: PendingChallenge, fraction: float) -> float:
    """Seconds on the queen's clock of a device at ``fraction`` of its fingerprint, beyond the host allowance."""
    fp = p.fingerprint[p.device_indices[0]]
    return (sizing.device_seconds(fp, p.params.n, p.params.count) / fraction + p.params.rows * ROW_ALLOWANCE_S
            + DISPATCH_ALLOWANCE_S)


def test_speed_band_edges(clock: ManualClock) -> None:
    ch = Challenger(STRICT, clock, rng=random.Random(3))
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(over_floor(p, 0.26))
    assert isinstance(ch.on_commitment(ADDR_A, p.challenge_id, commits(p, 0.26)), OpeningPlan)
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(over_floor(p, 0.24))
    out = ch.on_commitment(ADDR_A, p.challenge_id, commits(p, 0.24))
    assert isinstance(out, Outcome) and "too slow on the queen's clock" in out.reason
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(work_at(p, 1.31, 0) + 0.001)
    out = ch.on_commitment(ADDR_A, p.challenge_id, commits(p, 1.31))
    assert isinstance(out, Outcome) and "faster than" in out.reason


def test_a_slow_second_device_makes_the_commitment_too_slow(clock: ManualClock) -> None:
    """Devices commit together: one slow device shows on the queen's clock (its own report proves nothing)."""
    ch = Challenger(STRICT, clock, rng=random.Random(3))
    p = ch.issue(ADDR_A, [gpu(0, "h100-sxm"), gpu(1, "h100-sxm")])
    clock.advance(over_floor(p, 0.25) + 0.2)  # past the floor, before the deadline (whose grace is larger)
    cs = commits(p)
    cs[1] = replace(cs[1], work_seconds=cs[1].work_seconds * 10)
    out = ch.on_commitment(ADDR_A, p.challenge_id, cs)
    assert isinstance(out, Outcome)
    assert out.reason.startswith(f"device 0 ({H100_NAME}): too slow on the queen's clock")


@pytest.mark.parametrize(
    ("gib", "word"),
    [
        (40, "claims 40.0 GiB, less than"),
        (100, "claims 100.0 GiB, more than"),
        (0, "implausible memory claim"),
    ],
)
def test_memory_that_does_not_match_the_model_fails(
    ch: Challenger, clock: ManualClock, gib: int, word: str
) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "h100-sxm", memory_bytes=gib * GIB)])
    clock.advance(0.01)
    out = ch.on_commitment(ADDR_A, p.challenge_id, commits(p))
    assert isinstance(out, Outcome)
    assert out.verdict is Verdict.FAILED
    assert out.reason.startswith(f"device 0 ({H100_NAME}): {word}")


def test_memory_within_tolerance_passes(ch: Challenger, clock: ManualClock) -> None:
    # NVML reports a little less than the datasheet.
    p = ch.issue(ADDR_A, [gpu(0, "h100-sxm", memory_bytes=int(79.1 * GIB))])
    clock.advance(0.01)
    assert isinstance(ch.on_commitment(ADDR_A, p.challenge_id, commits(p)), OpeningPlan)


def test_good_commitment_asks_for_k_distinct_rows_per_device(ch: Challenger, clock: ManualClock) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "t4"), gpu(1, "t4"), gpu(2, "t4")])
    clock.advance(0.01)
    plan = ch.on_commitment(ADDR_A, p.challenge_id, commits(p))
    assert isinstance(plan, OpeningPlan)
    assert plan.challenge_id == p.challenge_id
    assert plan.timeout_s == POLICY.opening_timeout_s
    for dev in (0, 1, 2):
        rows = [r for d, r in plan.rows if d == dev]
        assert len(rows) == len(set(rows)) == POLICY.k
        assert all(0 <= r < p.params.rows for r in rows)
        assert p.rows[dev] == rows
    assert len(plan.rows) == 3 * POLICY.k
    assert p.phase == "open"
    assert p.deadline_mono == clock.monotonic() + POLICY.opening_timeout_s
    assert p.reported_tflops == pytest.approx(FINGERPRINTS["t4"].fp32_tflops)
    assert p.wall_tflops == pytest.approx(p.params.flops / 0.01 / 1e12)


def test_k_larger_than_the_rows_opens_every_row(clock: ManualClock) -> None:
    ch = Challenger(replace(POLICY, k=100), clock, rng=random.Random(0))
    p = ch.issue(ADDR_A, [cpu()])
    clock.advance(0.01)
    plan = ch.on_commitment(ADDR_A, p.challenge_id, commits(p))
    assert isinstance(plan, OpeningPlan)
    assert [r for _, r in plan.rows] == list(range(p.params.rows))


def test_stale_commitments_are_ignored(ch: Challenger, clock: ManualClock) -> None:
    assert ch.on_commitment(ADDR_A, "nothing-pending", []) is None
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(0.01)
    assert ch.on_commitment(ADDR_A, "another-id", commits(p)) is None
    assert ch.on_commitment(ADDR_B, p.challenge_id, commits(p)) is None
    assert ch.pending(ADDR_A) is p and p.phase == "commit"
    assert isinstance(ch.on_commitment(ADDR_A, p.challenge_id, commits(p)), OpeningPlan)
    # A second commitment for the same challenge, now waiting for openings, is stale too.
    assert ch.on_commitment(ADDR_A, p.challenge_id, commits(p)) is None
    assert p.phase == "open"


# --- openings -------------------------------------------------------------------------------------


def test_honest_openings_pass(ch: Challenger, clock: ManualClock) -> None:
    p, plan, openings = committed(ch, clock, [cpu()])
    assert ch.take_openings(ADDR_A, "another-id") is None
    taken = ch.take_openings(ADDR_A, p.challenge_id)
    assert taken is p
    assert ch.pending(ADDR_A) is None
    assert ch.take_openings(ADDR_A, p.challenge_id) is None  # only once
    clock.advance(0.5)
    out = ch.verify_openings(p, openings, late=False)
    assert (out.verdict, out.reason) == (Verdict.PASSED, "")
    assert out.reported_tflops == pytest.approx(FINGERPRINTS["cpu"].fp32_tflops)
    rec = out.record
    assert rec["verdict"] == "passed"
    assert rec["address"] == ADDR_A
    assert rec["challenge_id"] == p.challenge_id
    assert rec["models"] == {"0": "cpu"}
    assert rec["seed"] == p.params.seed.hex()
    assert rec["opened_rows"] == {"0": [r for _, r in plan.rows]}
    assert rec["roots"] == {"0": prove_device(p.params, 0).root.hex()}
    assert rec["commit_seconds"] == pytest.approx(0.01)
    assert rec["decided"] == clock.time()
    assert (rec["n"], rec["count"]) == (16, 2)


def test_take_openings_is_refused_before_the_commitment(ch: Challenger) -> None:
    p = ch.issue(ADDR_A, [cpu()])
    assert ch.take_openings(ADDR_A, p.challenge_id) is None
    assert ch.pending(ADDR_A) is p


def test_corrupted_row_fails(ch: Challenger, clock: ManualClock) -> None:
    p, _, openings = committed(ch, clock, [cpu()])
    ch.take_openings(ADDR_A, p.challenge_id)
    bad = openings[1]
    values = bytearray(bad.values)
    values[0] ^= 1
    openings[1] = replace(bad, values=bytes(values))
    out = ch.verify_openings(p, openings, late=False)
    assert out.verdict is Verdict.FAILED
    assert out.reason == f"row {bad.row} of device 0 does not match the commitment"


def test_openings_against_a_wrong_root_fail(ch: Challenger, clock: ManualClock) -> None:
    p = ch.issue(ADDR_A, [cpu()])
    clock.advance(0.01)
    plan = ch.on_commitment(ADDR_A, p.challenge_id, commits(p))  # roots that are not the real ones
    assert isinstance(plan, OpeningPlan)
    _, openings = honest_openings(p, plan)
    out = ch.verify_openings(p, openings, late=False)
    assert out.verdict is Verdict.FAILED
    assert "does not match the commitment" in out.reason


def test_missing_row_fails(ch: Challenger, clock: ManualClock) -> None:
    p, plan, openings = committed(ch, clock, [cpu()])
    out = ch.verify_openings(p, openings[1:], late=False)
    assert out.verdict is Verdict.FAILED
    assert out.reason == f"row {plan.rows[0][1]} of device 0 was not opened"


def test_late_openings_fail_without_checking(ch: Challenger, clock: ManualClock) -> None:
    p, _, openings = committed(ch, clock, [cpu()])
    out = ch.verify_openings(p, openings, late=True)
    assert (out.verdict, out.reason) == (Verdict.FAILED, "late: openings after the opening deadline")


def test_openings_for_unchallenged_device_or_wrong_width_raise(ch: Challenger, clock: ManualClock) -> None:
    p, _, openings = committed(ch, clock, [cpu()])
    with pytest.raises(InvalidArgumentError, match="opening for device 3, which was not challenged"):
        ch.verify_openings(p, [*openings, replace(openings[0], device_index=3)], late=False)
    short = replace(openings[0], values=openings[0].values[:-4])
    with pytest.raises(InvalidArgumentError, match=f"row {short.row} of device 0: 60 bytes, expected 64"):
        ch.verify_openings(p, [short, *openings[1:]], late=False)


def test_honest_openings_pass_for_two_devices(ch: Challenger, clock: ManualClock) -> None:
    # Two "GPUs" proved with NumPy on a tiny size: only the Merkle and row checks matter here.
    p = ch.issue(ADDR_A, [gpu(0, "t4"), gpu(1, "t4")])
    p.params = replace(p.params, n=16, count=2)
    roots = {d: prove_device(p.params, d).root for d in (0, 1)}
    clock.advance(0.01)
    plan = ch.on_commitment(ADDR_A, p.challenge_id, commits(p, 1.0, roots))
    assert isinstance(plan, OpeningPlan)
    _, openings = honest_openings(p, plan)
    assert ch.take_openings(ADDR_A, p.challenge_id) is p
    assert ch.verify_openings(p, openings, late=False).verdict is Verdict.PASSED
    # Device 1's rows opened as if they were device 0's do not verify.
    swapped = [replace(o, device_index=1 - o.device_index) if o.device_index == 1 else o for o in openings]
    assert ch.verify_openings(p, swapped, late=False).verdict is Verdict.FAILED


# --- deadlines and provider errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("connected", "verdict", "reason"),
    [
        (True, Verdict.FAILED, "late: no commitment within {t:.2f}s"),
        (False, Verdict.FAILED, "late: no commitment within {t:.2f}s (the provider left during the challenge)"),
    ],
)
def test_expired_commitment(
    ch: Challenger, clock: ManualClock, connected: bool, verdict: Verdict, reason: str
) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(p.timeout_s)
    assert ch.expired(lambda a: connected) == []  # not past the deadline yet
    clock.advance(0.001)
    asked: list[str] = []

    def is_connected(address: str) -> bool:
        asked.append(address)
        return connected

    out = ch.expired(is_connected)
    assert asked == [ADDR_A]
    assert [(o.verdict, o.reason) for o in out] == [(verdict, reason.format(t=p.timeout_s))]
    assert out[0].record["address"] == ADDR_A
    assert ch.pending(ADDR_A) is None
    assert ch.expired(lambda a: connected) == []


@pytest.mark.parametrize(
    ("connected", "verdict", "reason"),
    [
        (True, Verdict.FAILED, "late: no openings within 5.00s"),
        (False, Verdict.FAILED, "late: no openings within 5.00s (the provider left during the challenge)"),
    ],
)
def test_expired_openings(
    ch: Challenger, clock: ManualClock, connected: bool, verdict: Verdict, reason: str
) -> None:
    p = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(0.01)
    assert isinstance(ch.on_commitment(ADDR_A, p.challenge_id, commits(p)), OpeningPlan)
    clock.advance(POLICY.opening_timeout_s + 0.001)
    out = ch.expired(lambda a: connected)
    assert [(o.verdict, o.reason) for o in out] == [(verdict, reason)]
    assert out[0].record["roots"] == {"0": (b"\x00" * 32).hex()}


def test_expired_only_decides_overdue_providers(ch: Challenger, clock: ManualClock) -> None:
    pa = ch.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(pa.timeout_s / 2)
    pb = ch.issue(ADDR_B, [gpu(0, "t4")])
    clock.advance(pa.timeout_s / 2 + 0.001)
    assert [o.record["address"] for o in ch.expired(lambda a: True)] == [ADDR_A]
    assert ch.pending(ADDR_B) is pb


def test_provider_error_fails_the_challenge(ch: Challenger) -> None:
    p = ch.issue(ADDR_A, [cpu()])
    assert ch.fail(ADDR_A, "another-id", "boom") is None
    assert ch.pending(ADDR_A) is p
    out = ch.fail(ADDR_A, p.challenge_id, "CUDA out of memory" + "x" * 500)
    assert out is not None
    assert out.verdict is Verdict.FAILED
    assert out.reason == "provider error: " + ("CUDA out of memory" + "x" * 500)[:200]
    assert ch.pending(ADDR_A) is None
    assert ch.fail(ADDR_A, p.challenge_id, "again") is None


def test_drop_removes_the_pending_challenge(ch: Challenger) -> None:
    p = ch.issue(ADDR_A, [cpu()])
    assert ch.drop(ADDR_A) is p
    assert ch.drop(ADDR_A) is None


# --- per-model speed bands -----------------------------------------------------------------------


def test_cpu_speed_band_uses_the_fingerprint_edges(ch: Challenger, clock: ManualClock) -> None:
    cpu_fp = FINGERPRINTS["cpu"]
    low, high = cpu_fp.band(POLICY.min_fraction, POLICY.max_fraction)
    assert (low, high) == (cpu_fp.min_fraction, cpu_fp.max_fraction)
    assert low < POLICY.min_fraction and high > POLICY.max_fraction  # CPUs vary: a wider band than GPUs
    # Just inside the CPU's own band passes although it is outside the policy's ...
    for fraction in (high * 0.99, low * 1.01):
        p = ch.issue(ADDR_A, [cpu()])
        clock.advance(0.01)
        out = ch.on_commitment(ADDR_A, p.challenge_id, commits(p, fraction))
        assert isinstance(out, OpeningPlan), getattr(out, "reason", out)
    # ... and its edges still apply: the ceiling to the report, the floor to the queen's clock.
    p = ch.issue(ADDR_A, [cpu()])
    clock.advance(0.01)
    out = ch.on_commitment(ADDR_A, p.challenge_id, commits(p, high * 1.01))
    assert isinstance(out, Outcome) and "faster than" in out.reason
    # The CPU reference proves no hardware: past its floor on the queen's clock it is held to its deadline only.
    assert not cpu_fp.speed_floor
    strict = Challenger(STRICT, clock, rng=random.Random(3))
    p = strict.issue(ADDR_A, [cpu()])
    clock.advance(over_floor(p, low * 0.99))
    assert isinstance(strict.on_commitment(ADDR_A, p.challenge_id, commits(p, low * 0.99)), OpeningPlan)
    p = strict.issue(ADDR_A, [cpu()])
    clock.advance(p.timeout_s + 0.01)
    out = strict.on_commitment(ADDR_A, p.challenge_id, commits(p, low * 0.99))
    assert isinstance(out, Outcome) and out.reason.startswith("late: commitment after")


def test_b_epoch_is_shared_within_an_epoch_and_rotates_after(ch: Challenger, clock: ManualClock) -> None:
    first = ch.issue(ADDR_A, [cpu()])
    second = ch.issue(ADDR_B, [cpu()])
    assert len(first.params.b_seed) == 32 and first.params.b_seed == second.params.b_seed
    assert first.params.seed != second.params.seed
    clock.advance(POLICY.b_epoch_s)
    third = ch.issue(ADDR_A, [cpu()])
    assert third.params.b_seed != first.params.b_seed


def test_speed_is_judged_on_the_queens_clock(clock: ManualClock) -> None:
    """A provider that reports an H100's work time but takes a slow device's wall time fails."""
    # Seconds of work, so that the floor (4x the work at 0.25) is far above the dispatch allowance.
    strict = Challenger(replace(POLICY, wall_factor=1.0, n_gpu=8192, target_s=2.0, max_count=4096, grace_s=100.0), clock,
                        rng=random.Random(7))
    p = strict.issue(ADDR_A, [gpu(0, "h100-sxm")])
    fp = p.fingerprint[0]
    clock.advance(p.params.flops / (0.1 * fp.fp32_tflops * 1e12))  # 10% of an H100 on the queen's clock
    out = strict.on_commitment(ADDR_A, p.challenge_id, commits(p, 1.0))  # ...while claiming 100%
    assert isinstance(out, Outcome) and out.verdict is Verdict.FAILED
    assert "too slow on the queen's clock" in out.reason
    # The same claim, arriving in time on the queen's clock, goes on to the openings.
    q = strict.issue(ADDR_B, [gpu(0, "h100-sxm")])
    clock.advance(q.params.flops / (0.9 * fp.fp32_tflops * 1e12))
    assert isinstance(strict.on_commitment(ADDR_B, q.challenge_id, commits(q, 1.0)), OpeningPlan)


def test_a_rented_provider_is_challenged_as_its_rental_starts() -> None:
    """A rental rate replacing the idle rate makes the provider due at once (a short rental is still verified);
    a change between rental rates only redraws the wait."""
    clock = ManualClock()
    ch = Challenger(POLICY, clock, rng=random.Random(7))
    ch.schedule(ADDR_A)
    assert ch.due() == []
    ch.schedule(ADDR_A)
    ch.set_interval(ADDR_A, 5.0)
    assert ch.due() == [ADDR_A]
    ch.schedule(ADDR_A)
    ch.set_interval(ADDR_A, 4.0)
    assert ch.due() == []


def test_a_slow_report_alone_does_not_fail_only_the_queens_clock_does(clock: ManualClock) -> None:
    """An honest provider on a loaded host reports a long work time; inside the queen's floor it passes.

    The report proves nothing (a cheater reports what it likes), so the floor is the queen's clock's alone: the
    device's work at the floor, plus the host's tree and a dispatch allowance (a tiny challenge that waited
    0.4 s to start still passes), never the deadline's grace."""
    strict = Challenger(replace(POLICY, wall_factor=1.0), clock, rng=random.Random(7))
    p = strict.issue(ADDR_A, [gpu(0, "t4")])
    clock.advance(0.4)
    # A report of 1/1000 of the fingerprint (far under the 0.25 floor), consistent with the queen's clock.
    assert isinstance(strict.on_commitment(ADDR_A, p.challenge_id, commits(p, 0.001)), OpeningPlan)
    q = strict.issue(ADDR_B, [gpu(0, "t4")])
    device = sizing.device_seconds(q.fingerprint[0], q.params.n, q.params.count)
    clock.advance(device / 0.25 + q.params.rows * ROW_ALLOWANCE_S + DISPATCH_ALLOWANCE_S + 0.01)
    late = strict.on_commitment(ADDR_B, q.challenge_id, commits(q, 1.0))
    assert isinstance(late, Outcome) and "too slow on the queen's clock" in late.reason
