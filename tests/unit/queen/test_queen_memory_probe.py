"""The memory probe, end to end on the queen's side, at CPU scale.

A made-up model, "tiny-gpu", claims 2 MiB of memory and 1 GFLOP/s, so a challenge that fills 80 % of its
memory is 100 products of 64x64 (52 MFLOP). The provers really compute, hold and drop products (a prover
with less memory keeps only what fits, exactly as a smaller card would) and really hash what they hold. The
queen's clock is a manual clock moved by what each phase costs the device at the model's speed: the products
at 1 GFLOP/s, and in the probe every product the prover must compute again (a read of a held product is
taken as 1 ms for all of them). That is the one modelled part: CPUs hash about as fast as they multiply
small matrices, so their own wall time would not show a GPU's ratio between reading and computing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pytest

from blendr.clock import ManualClock
from blendr.errors import InvalidArgumentError
from blendr.proof import fingerprints, memory
from blendr.proof.fingerprints import Fingerprint
from blendr.proof.prover import DeviceProof, answer_probe, open_rows, prove_device
from blendr.proof.rowhash import DIGEST_BYTES
from blendr.types import DeviceInfo, DeviceKind, Verdict
from queen.challenges import Challenger, DeviceCommitmentIn, OpeningPlan, Outcome, PendingChallenge, Policy

MIB = 2**20
TINY = Fingerprint("tiny-gpu", "Tiny test GPU", fp32_tflops=1e-3, fp16_tflops=0.0, bf16_tflops=0.0,
                   memory_bytes=2 * MIB, source="made up for tests")
POLICY = Policy(mean_interval_s=60.0, target_s=0.001, n_gpu=64, n_cpu=16, max_count=4096, memory_fraction=0.5,
                k=16, opening_timeout_s=5.0, grace_s=1.0, min_fraction=0.25, max_fraction=1.3,
                memory_tolerance=0.1, memory_probe="memory", probe_fill=0.8, probe_fraction=0.1,
                probe_grace_s=0.0)
READ_S = 0.001
ADDR = "0x" + "ab" * 20


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprints, "FINGERPRINTS", MappingProxyType({**fingerprints.FINGERPRINTS, TINY.key: TINY}))


def tiny(index: int) -> DeviceInfo:
    return DeviceInfo(index=index, kind=DeviceKind.GPU, name=TINY.name, model=TINY.key,
                      memory_bytes=2 * MIB, uuid=f"GPU-{index}")


@dataclass
class Prover:
    """``devices`` real devices of ``memory_bytes`` each; share ``i`` of a challenge runs on device ``i % devices``."""

    memory_bytes: int
    devices: int = 1
    recompute: bool = True  # False: answer blocks it cannot have with zeros instead of computing again

    def prove(self, p: PendingChallenge) -> list[DeviceProof]:
        left = [self.memory_bytes] * self.devices
        proofs = []
        for i, d in enumerate(p.device_indices):
            real = i % self.devices
            proof = prove_device(p.params, d, xp=np, hold=True, hold_limit_bytes=left[real])
            left[real] -= sum(h.nbytes for h in proof.held if h is not None)
            proofs.append(proof)
        return proofs

    def commit_seconds(self, p: PendingChallenge) -> float:
        """A real device computes the shares it answers for one after another."""
        shares = -(-len(p.device_indices) // self.devices)
        return shares * p.params.flops / (TINY.fp32_tflops * 1e12)

    def probe(self, p: PendingChallenge, proofs: Sequence[DeviceProof], key: bytes) -> tuple[list[bytes], int]:
        """The answers and how many products had to be computed again."""
        missing = sum(h is None for pr in proofs for h in pr.held)
        if self.recompute:
            return [answer_probe(p.params, pr, key, xp=np) for pr in proofs], missing
        answers = []
        n = p.params.n
        keys = memory.key_vector(key, n)
        for pr in proofs:
            digests = np.zeros((p.params.rows, DIGEST_BYTES), dtype=np.uint8)
            for c, held in enumerate(pr.held):
                if held is not None:
                    digests[c * n : (c + 1) * n] = memory.probe_digests(np, held, keys)
            pr.probe_digests = digests.tobytes()
            answers.append(memory.block_hashes(pr.probe_digests))
        return answers, 0


def run(devices: list[DeviceInfo], prover: Prover, seed: int = 7) -> tuple[Outcome, PendingChallenge]:
    clock = ManualClock()
    ch = Challenger(POLICY, clock, rng=random.Random(seed))
    p = ch.issue(ADDR, devices)
    proofs = prover.prove(p)
    work = p.params.flops / (TINY.fp32_tflops * 1e12)
    clock.advance(prover.commit_seconds(p))
    commits = [DeviceCommitmentIn(pr.device_index, pr.root, work, pr.peak_memory_bytes) for pr in proofs]
    plan = ch.on_commitment(ADDR, p.challenge_id, commits)
    assert isinstance(plan, OpeningPlan) and plan.rows == [] and len(plan.probe_key) == memory.KEY_BYTES
    answers, recomputed = prover.probe(p, proofs, plan.probe_key)
    clock.advance(READ_S + recomputed * 2 * p.params.n**3 / (TINY.fp32_tflops * 1e12))
    second = [DeviceCommitmentIn(pr.device_index, pr.root, work, pr.peak_memory_bytes, a)
              for pr, a in zip(proofs, answers, strict=True)]
    res = ch.on_commitment(ADDR, p.challenge_id, second)
    if isinstance(res, Outcome):
        return res, p
    assert isinstance(res, OpeningPlan) and res.rows
    openings = []
    for pr in proofs:
        rows = [r for d, r in res.rows if d == pr.device_index]
        assert pr.tree is not None
        openings.extend(open_rows(p.params, pr.device_index, pr.tree, rows, pr.probe_digests))
    taken = ch.take_openings(ADDR, p.challenge_id)
    assert taken is p
    return ch.verify_openings(p, openings, late=False), p


def test_challenge_is_sized_to_fill_the_claimed_memory() -> None:
    p = Challenger(POLICY, ManualClock()).issue(ADDR, [tiny(0)])
    assert p.params.hold and p.params.n == 64
    assert p.params.count == 100  # 0.8 * 2 MiB / 16 KiB products, less room for B and one A
    assert 0 < p.probe_timeout_s < p.params.flops / (TINY.fp32_tflops * 1e12) / 5


def test_an_honest_device_holding_its_products_passes() -> None:
    outcome, _ = run([tiny(0)], Prover(2 * MIB))
    assert (outcome.verdict, outcome.reason) == (Verdict.PASSED, "")
    assert outcome.record["memory_probe"] is True and outcome.record["probe_seconds"] == pytest.approx(READ_S)


def test_a_device_with_less_memory_than_claimed_is_too_slow_for_the_probe() -> None:
    outcome, _ = run([tiny(0)], Prover(MIB))  # a 1 MiB card claiming 2 MiB: 36 products to compute again
    assert outcome.verdict is Verdict.FAILED
    assert outcome.reason.startswith("memory: probe answered after")
    assert "does not hold the products it committed to" in outcome.reason


def test_a_device_with_less_memory_that_guesses_fails_its_openings() -> None:
    outcome, _ = run([tiny(0)], Prover(MIB, recompute=False))
    assert outcome.verdict is Verdict.FAILED
    assert "probe" in outcome.reason and "device 0" in outcome.reason


def test_two_honest_devices_pass() -> None:
    outcome, _ = run([tiny(0), tiny(1)], Prover(2 * MIB, devices=2))
    assert outcome.verdict is Verdict.PASSED


def test_one_device_answering_for_two_fails() -> None:
    # It computes both shares one after the other (inside the loose speed floor) but cannot hold both.
    outcome, _ = run([tiny(0), tiny(1)], Prover(2 * MIB))
    assert outcome.verdict is Verdict.FAILED
    assert outcome.reason.startswith("memory: probe answered after")


def test_one_device_answering_for_two_by_guessing_fails_its_openings() -> None:
    outcome, _ = run([tiny(0), tiny(1)], Prover(2 * MIB, recompute=False))
    assert outcome.verdict is Verdict.FAILED
    assert "device 1" in outcome.reason and "probe" in outcome.reason


def test_a_probe_answer_of_the_wrong_size_is_malformed_and_fails() -> None:
    clock = ManualClock()
    ch = Challenger(POLICY, clock, rng=random.Random(1))
    p = ch.issue(ADDR, [tiny(0)])
    commit = DeviceCommitmentIn(0, bytes(32), 0.06, 0)
    clock.advance(0.06)
    assert isinstance(ch.on_commitment(ADDR, p.challenge_id, [commit]), OpeningPlan)
    with pytest.raises(InvalidArgumentError, match="probe answer must be"):
        ch.on_commitment(ADDR, p.challenge_id, [DeviceCommitmentIn(0, bytes(32), 0.06, 0, b"short")])
    assert ch.pending(ADDR) is None


def test_an_unanswered_probe_expires() -> None:
    clock = ManualClock()
    ch = Challenger(POLICY, clock, rng=random.Random(1))
    p = ch.issue(ADDR, [tiny(0)])
    clock.advance(0.06)
    assert isinstance(ch.on_commitment(ADDR, p.challenge_id, [DeviceCommitmentIn(0, bytes(32), 0.06, 0)]),
                      OpeningPlan)
    clock.advance(p.probe_timeout_s + 0.001)
    (outcome,) = ch.expired(lambda _: True)
    assert outcome.verdict is Verdict.FAILED and outcome.reason.startswith("late: no memory probe answer")


def test_models_without_a_memory_figure_are_not_probed() -> None:
    cpu = DeviceInfo(index=0, kind=DeviceKind.CPU, name="cpu", model="cpu", memory_bytes=2**30)
    assert not Challenger(POLICY, ManualClock()).issue(ADDR, [cpu]).params.hold
