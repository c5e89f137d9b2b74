"""Proof-of-GPU challenges from the queen's side: when to challenge, how big, and the verdict.

Pure domain logic (no grpc). A challenge goes issue → commitment (roots, timings) → [memory probe:
opening request with a probe key and no rows → a second commitment carrying the probe answers] →
opening request (k random rows per device) → openings → verdict, exactly as DESIGN.md §4:

* the commitment must arrive before a deadline derived from the claimed model's fingerprint, so a slow
  device claiming a fast model is late;
* the provider's own work time must fit inside the queen's clock and give a throughput inside the
  fingerprint's band;
* each device's claimed memory must match its model's fingerprint, and (for models with a memory
  figure) the device must hold every product it committed to: the challenge is sized so that they fill
  ``probe_fill`` of the claimed memory, and the keyed hashes of all of them must come back within a
  deadline far shorter than computing them again (:mod:`blendr.proof.memory`); one device answering
  for several must hold all their products at once;
* every opened row must hash to its leaf, prove into the committed root, and equal the row the queen
  recomputes with NumPy.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from blendr.clock import Clock
from blendr.config import QueenConfig
from blendr.errors import InvalidArgumentError, ProofError
from blendr.identity import Address
from blendr.proof import fingerprints, memory, sizing, verifier
from blendr.proof.fingerprints import Fingerprint
from blendr.proof.params import ChallengeParams
from blendr.proof.prover import Opening
from blendr.types import DeviceInfo, DeviceKind, Verdict

# Seconds allowed per committed row for hashing and building the Merkle tree on the provider's host.
ROW_ALLOWANCE_S = 5e-6
# Seconds allowed per committed row for the memory probe's host side (copying digests, hashing blocks).
PROBE_ROW_ALLOWANCE_S = 2e-7
# Seconds the speed floor on the queen's clock allows for the round trip and for starting the work.
DISPATCH_ALLOWANCE_S = 0.5
# Bounds on a commitment's figures: no challenge is sized for a day of work, no device holds a PiB.
MAX_WORK_SECONDS = 86_400.0
MAX_PEAK_MEMORY_BYTES = 1 << 50


class RandomnessBeacon(Protocol):
    def latest(self) -> bytes | None:
        """Public randomness to mix into challenge seeds (a recent ETC block hash), or None."""


class NoBeacon:
    """No public randomness source: seeds come from the queen's OS randomness alone.

    The ETC block-hash beacon arrives with the chain layer; the seed derivation already mixes it in.
    """

    def latest(self) -> bytes | None:
        return None


@dataclass(frozen=True)
class DeviceCommitmentIn:
    device_index: int
    root: bytes
    work_seconds: float
    peak_memory_bytes: int
    # The memory probe's answer (block hashes, :func:`blendr.proof.memory.block_hashes`); empty otherwise.
    probe: bytes = b""


@dataclass
class PendingChallenge:
    params: ChallengeParams
    address: Address
    devices: list[DeviceInfo]
    fingerprint: dict[int, Fingerprint]
    issued_wall: float
    issued_mono: float
    deadline_mono: float
    timeout_s: float
    phase: str = "commit"
    commitments: dict[int, DeviceCommitmentIn] = field(default_factory=dict)
    committed_mono: float | None = None
    rows: dict[int, list[int]] = field(default_factory=dict)
    reported_tflops: float = 0.0
    wall_tflops: float = 0.0
    # Memory probe: its key once sent, its deadline, each device's answer and how long it took.
    probe_key: bytes = b""
    probe_timeout_s: float = 0.0
    probe_hashes: dict[int, bytes] = field(default_factory=dict)
    probe_seconds: float | None = None

    @property
    def challenge_id(self) -> str:
        return self.params.challenge_id

    @property
    def device_indices(self) -> list[int]:
        return [d.index for d in self.devices]

    def summary(self, verdict: Verdict, reason: str = "") -> dict[str, Any]:
        return {
            "challenge_id": self.challenge_id,
            "verdict": verdict.value,
            "reason": reason,
            "issued": self.issued_wall,
            "n": self.params.n,
            "count": self.params.count,
            "reported_tflops": self.reported_tflops,
            "wall_tflops": self.wall_tflops,
        }


@dataclass(frozen=True)
class Outcome:
    """A decided challenge: its verdict and the record the queen keeps."""

    verdict: Verdict
    reason: str
    reported_tflops: float
    wall_tflops: float
    record: dict[str, Any]


@dataclass(frozen=True)
class OpeningPlan:
    challenge_id: str
    rows: list[tuple[int, int]]
    timeout_s: float
    # Set (and ``rows`` empty) when this request is the memory probe.
    probe_key: bytes = b""


@dataclass(frozen=True)
class Policy:
    """The challenge policy, from the queen's config."""

    mean_interval_s: float
    target_s: float
    n_gpu: int
    n_cpu: int
    max_count: int
    memory_fraction: float
    k: int
    opening_timeout_s: float
    grace_s: float
    min_fraction: float
    max_fraction: float
    memory_tolerance: float
    b_epoch_s: float = 3600.0
    # Fraction of the speed floor the queen's own clock must confirm (1.0: the same floor).
    wall_factor: float = 1.0
    # Memory probe: "memory" for challenges whose devices' models all have a memory figure (GPUs), "always",
    # or "off"; the share of the claimed memory the held products fill; the probe's deadline as a fraction of
    # the challenge's work at the fingerprint's speed, plus a fixed grace for the round trip.
    memory_probe: str = "memory"
    probe_fill: float = 0.8
    probe_fraction: float = 0.1
    probe_grace_s: float = 1.0

    @classmethod
    def from_config(cls, q: QueenConfig) -> Policy:
        return cls(
            mean_interval_s=q.challenge_mean_interval_s, target_s=q.challenge_target_s,
            n_gpu=q.challenge_n_gpu, n_cpu=q.challenge_n_cpu, max_count=q.challenge_max_count,
            memory_fraction=q.challenge_memory_fraction, k=q.openings_k,
            opening_timeout_s=q.opening_timeout_s, grace_s=q.grace_s, min_fraction=q.speed_min_fraction,
            max_fraction=q.speed_max_fraction, memory_tolerance=q.memory_tolerance,
            b_epoch_s=q.challenge_b_epoch_s, wall_factor=q.speed_wall_factor,
            memory_probe=q.memory_probe, probe_fill=q.memory_probe_fill, probe_fraction=q.memory_probe_fraction,
            probe_grace_s=q.memory_probe_grace_s,
        )


def device_fingerprint(dev: DeviceInfo) -> Fingerprint:
    """The fingerprint of the model a device claims.

    Raises:
        InvalidArgumentError: unknown model key.
    """
    try:
        return fingerprints.get(dev.model)
    except ProofError:
        known = ", ".join(sorted(fingerprints.FINGERPRINTS))
        raise InvalidArgumentError(f"device {dev.index} claims unknown model {dev.model!r} (known: {known})") from None


class Challenger:
    """Schedules challenges at Poisson times per provider and decides their verdicts."""

    def __init__(
        self, policy: Policy, clock: Clock, *, rng: random.Random | None = None,
        beacon: RandomnessBeacon | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._beacon = beacon or NoBeacon()
        self._due: dict[Address, float] = {}
        self._interval: dict[Address, float] = {}
        self._b_seed = b""
        self._b_epoch_started = float("-inf")
        self._pending: dict[Address, PendingChallenge] = {}

    # ------------------------------------------------------------------ scheduling
    def schedule(self, address: Address, *, immediate: bool = False) -> float:
        """Schedule the provider's next challenge: now, or after an exponential (Poisson) wait."""
        mean = self._interval.get(address, self.policy.mean_interval_s)
        delay = 0.0 if immediate else self._rng.expovariate(1.0 / mean)
        when = self._clock.monotonic() + delay
        self._due[address] = when
        return when

    def set_interval(self, address: Address, mean_s: float | None) -> None:
        """Challenge ``address`` every ``mean_s`` on average (a rental's rate), or at the policy's rate (None).

        A provider scheduled under the old rate is redrawn at the new one (Poisson waits are memoryless,
        so the redraw is fair), except when a rental rate starts: then it is due at once. A provider not
        scheduled at all (dropped) stays so.
        """
        old = self._interval.get(address)
        if old == mean_s:
            return
        if mean_s is None:
            del self._interval[address]
        else:
            if not mean_s > 0:
                raise ValueError("a challenge interval must be > 0")
            self._interval[address] = mean_s
        if address in self._due:
            if old is None and mean_s is not None:
                # A rental starts: challenge at once, so even a short rental is verified from its start.
                self._due[address] = self._clock.monotonic()
            else:
                self.schedule(address)

    def interval(self, address: Address) -> float:
        return self._interval.get(address, self.policy.mean_interval_s)

    def unschedule(self, address: Address) -> None:
        self._due.pop(address, None)

    def due(self) -> list[Address]:
        """Providers whose challenge time has come (each returned once; reschedule after issuing)."""
        now = self._clock.monotonic()
        out = [a for a, t in self._due.items() if t <= now]
        for a in out:
            del self._due[a]
        return out

    def pending(self, address: Address) -> PendingChallenge | None:
        return self._pending.get(address)

    def drop(self, address: Address) -> PendingChallenge | None:
        return self._pending.pop(address, None)

    # ------------------------------------------------------------------ issuing
    def _seed(self) -> bytes:
        beacon = self._beacon.latest() or b""
        return hashlib.sha256(b"blendr-challenge-seed" + os.urandom(32) + beacon).digest()

    def b_seed(self) -> bytes:
        """The current B epoch's seed, rotated every ``b_epoch_s``."""
        now = self._clock.monotonic()
        if now - self._b_epoch_started >= self.policy.b_epoch_s:
            self._b_seed = hashlib.sha256(b"blendr-b-epoch" + os.urandom(32)).digest()
            self._b_epoch_started = now
        return self._b_seed

    def issue(self, address: Address, devices: Sequence[DeviceInfo]) -> PendingChallenge:
        """Create a challenge sized for the provider's slowest claimed device.

        Raises:
            InvalidArgumentError: a device claims an unknown model.
            ProofError: no valid challenge size exists for the devices.
        """
        if not devices:
            raise InvalidArgumentError("provider has no devices to challenge")
        fps = {d.index: device_fingerprint(d) for d in devices}
        slowest = min(fps.values(), key=lambda f: f.fp32_tflops)
        all_cpu = all(d.kind is DeviceKind.CPU for d in devices)
        n0 = self.policy.n_cpu if all_cpu else self.policy.n_gpu
        n, count = sizing.size_challenge(
            slowest, n0, self.policy.target_s, self.policy.max_count, self.policy.memory_fraction
        )
        hold = self._probes(list(fps.values()))
        if hold:
            smallest = min(fps.values(), key=lambda f: f.memory_bytes or 0)
            count = sizing.size_memory_challenge(smallest, n, count, self.policy.probe_fill, self.policy.max_count)
        params = ChallengeParams(challenge_id=uuid.uuid4().hex, seed=self._seed(), n=n, count=count,
                                 b_seed=self.b_seed(), hold=hold)
        params.validate()
        timeout = sizing.deadline_seconds(params, slowest, self.policy.min_fraction, self.policy.grace_s)
        timeout += params.rows * ROW_ALLOWANCE_S
        # The probe reads what the device holds; computing it again takes the whole challenge's work, of which
        # the deadline allows only probe_fraction (at the fastest claimed device's fingerprint).
        fastest = max(f.fp32_tflops for f in fps.values())
        probe_timeout = (self.policy.probe_grace_s + params.rows * PROBE_ROW_ALLOWANCE_S
                         + self.policy.probe_fraction * params.flops / (fastest * 1e12)) if hold else 0.0
        mono = self._clock.monotonic()
        pending = PendingChallenge(
            params=params, address=address, devices=list(devices), fingerprint=fps,
            issued_wall=self._clock.time(), issued_mono=mono, deadline_mono=mono + timeout, timeout_s=timeout,
            probe_timeout_s=probe_timeout,
        )
        self._pending[address] = pending
        return pending

    def _probes(self, fps: list[Fingerprint]) -> bool:
        """Whether a challenge of these models holds its products for a memory probe."""
        mode = self.policy.memory_probe
        return mode == "always" or (mode == "memory" and all(f.memory_bytes is not None for f in fps))

    # ------------------------------------------------------------------ commitment
    def on_commitment(
        self, address: Address, challenge_id: str, commits: Sequence[DeviceCommitmentIn]
    ) -> OpeningPlan | Outcome | None:
        """Take a provider's commitment. Returns the rows to open, a failing outcome, or None (stale).

        Raises:
            InvalidArgumentError: the commitment is malformed (wrong devices, root size, negative values);
                the challenge is failed as well.
        """
        p = self._pending.get(address)
        if p is not None and p.challenge_id == challenge_id and p.phase == "probe":
            return self._on_probe(p, commits)
        if p is None or p.challenge_id != challenge_id or p.phase != "commit":
            return None
        now = self._clock.monotonic()
        problem = self._malformed(p, commits)
        if problem:
            self._pending.pop(address, None)
            raise InvalidArgumentError(f"malformed commitment: {problem}")
        if now > p.deadline_mono:
            return self.finish(p, Verdict.FAILED, f"late: commitment after {now - p.issued_mono:.2f}s "
                                f"(deadline {p.timeout_s:.2f}s)")
        p.commitments = {c.device_index: c for c in commits}
        p.committed_mono = now
        wall = max(now - p.issued_mono, 1e-9)
        reported: list[float] = []
        for dev in p.devices:
            c = p.commitments[dev.index]
            fp = p.fingerprint[dev.index]
            low, high = fp.band(self.policy.min_fraction, self.policy.max_fraction)
            # The provider's report is checked for plausibility and the ceiling only: slowness is judged below, on
            # the queen's clock, which a report cannot shorten and which is the same for every honest provider.
            speed = verifier.check_speed(p.params.flops, c.work_seconds, wall, fp.fp32_tflops, low, high,
                                         floor=False)
            reported.append(speed.reported_tflops)
            p.wall_tflops = speed.wall_tflops
            p.reported_tflops = sum(reported) / len(reported)
            if not speed.ok:
                return self.finish(p, Verdict.FAILED, f"device {dev.index} ({fp.name}): {speed.reason}")
            # The floor on the queen's clock: the device's work (FLOPs and elements, sizing.device_seconds) at
            # floor x its fingerprint, plus the host's Merkle tree and a small dispatch allowance (not the grace,
            # which only sets the deadline and would open the floor to devices several times slower).
            # A model without a speed floor (the CPU reference) is held to its deadline only.
            floor = low * self.policy.wall_factor
            allowed = (sizing.device_seconds(fp, p.params.n, p.params.count) / floor
                       + p.params.rows * ROW_ALLOWANCE_S + DISPATCH_ALLOWANCE_S) if floor > 0 and fp.speed_floor \
                else math.inf
            if wall > allowed:
                return self.finish(p, Verdict.FAILED, (
                    f"device {dev.index} ({fp.name}): too slow on the queen's clock: {wall:.3g}s "
                    f"({speed.wall_tflops:.4g} TFLOP/s), allowed {allowed:.3g}s at {floor:.2g}x its fingerprint "
                    f"({fp.fp32_tflops:.4g} TFLOP/s)"))
            mem = verifier.check_memory(dev.memory_bytes, fp.memory_bytes, self.policy.memory_tolerance)
            if not mem.ok:
                return self.finish(p, Verdict.FAILED, f"device {dev.index} ({fp.name}): {mem.reason}")
        if p.params.hold:
            # The key is drawn only now, after every product is committed, from the OS (never the seeded rng).
            p.probe_key = secrets.token_bytes(memory.KEY_BYTES)
            p.phase = "probe"
            p.deadline_mono = now + p.probe_timeout_s
            return OpeningPlan(p.challenge_id, [], p.probe_timeout_s, probe_key=p.probe_key)
        return self._plan_openings(p, now)

    def _on_probe(self, p: PendingChallenge, commits: Sequence[DeviceCommitmentIn]) -> OpeningPlan | Outcome:
        """The probe's answers: late or malformed fails the challenge; else the rows to open.

        Raises:
            InvalidArgumentError: the answers name other devices or have the wrong size (the challenge is
                failed as well).
        """
        now = self._clock.monotonic()
        got = sorted(c.device_index for c in commits)
        want = memory.num_blocks(p.params.rows) * memory.HASH_BYTES
        problem = ""
        if got != sorted(p.device_indices):
            problem = f"devices {got} do not match the challenged devices {sorted(p.device_indices)}"
        for c in commits:
            if not problem and len(c.probe) != want:
                problem = f"device {c.device_index}: probe answer must be {want} bytes (got {len(c.probe)})"
        if problem:
            self._pending.pop(p.address, None)
            raise InvalidArgumentError(f"malformed memory probe answer: {problem}")
        p.probe_seconds = now - (p.deadline_mono - p.probe_timeout_s)
        if now > p.deadline_mono:
            return self.finish(p, Verdict.FAILED, (
                f"memory: probe answered after {p.probe_seconds:.2f}s (deadline {p.probe_timeout_s:.2f}s); the "
                f"device does not hold the products it committed to"))
        p.probe_hashes = {c.device_index: c.probe for c in commits}
        return self._plan_openings(p, now)

    def _plan_openings(self, p: PendingChallenge, now: float) -> OpeningPlan:
        rows: list[tuple[int, int]] = []
        for dev in p.devices:
            chosen = verifier.choose_rows(self._rng, p.params.rows, self.policy.k)
            p.rows[dev.index] = chosen
            rows.extend((dev.index, r) for r in chosen)
        p.phase = "open"
        p.deadline_mono = now + self.policy.opening_timeout_s
        return OpeningPlan(p.challenge_id, rows, self.policy.opening_timeout_s)

    @staticmethod
    def _malformed(p: PendingChallenge, commits: Sequence[DeviceCommitmentIn]) -> str:
        got = [c.device_index for c in commits]
        if sorted(got) != sorted(p.device_indices):
            return f"devices {sorted(got)} do not match the challenged devices {sorted(p.device_indices)}"
        for c in commits:
            if len(c.root) != 32:
                return f"device {c.device_index}: root must be 32 bytes (got {len(c.root)})"
            # Non-finite or absurd figures would poison the speed check and the records (JSON has no inf).
            if not (isinstance(c.work_seconds, (int, float)) and math.isfinite(c.work_seconds)
                    and 0 <= c.work_seconds <= MAX_WORK_SECONDS):
                return f"device {c.device_index}: work_seconds must be a finite number in [0, {MAX_WORK_SECONDS:g}]"
            if not (isinstance(c.peak_memory_bytes, int) and 0 <= c.peak_memory_bytes <= MAX_PEAK_MEMORY_BYTES):
                return f"device {c.device_index}: peak_memory_bytes must be in [0, {MAX_PEAK_MEMORY_BYTES}]"
        return ""

    # ------------------------------------------------------------------ openings
    def take_openings(self, address: Address, challenge_id: str) -> PendingChallenge | None:
        """The pending challenge waiting for these openings, removed from the book (None when stale)."""
        p = self._pending.get(address)
        if p is None or p.challenge_id != challenge_id or p.phase != "open":
            return None
        del self._pending[address]
        return p

    def verify_openings(self, p: PendingChallenge, openings: Sequence[Opening], late: bool) -> Outcome:
        """Check every opened row (CPU work: run it off the event loop).

        Raises:
            InvalidArgumentError: rows that were not asked for, or values of the wrong length.
        """
        if late:
            return self.finish(p, Verdict.FAILED, "late: openings after the opening deadline")
        by_dev: dict[int, list[Opening]] = {}
        for o in openings:
            if o.device_index not in p.rows:
                raise InvalidArgumentError(f"opening for device {o.device_index}, which was not challenged")
            if len(o.values) != p.params.n * 4:
                raise InvalidArgumentError(
                    f"row {o.row} of device {o.device_index}: {len(o.values)} bytes, expected {p.params.n * 4}"
                )
            by_dev.setdefault(o.device_index, []).append(o)
        for dev, rows in p.rows.items():
            root = p.commitments[dev].root
            v = verifier.verify_openings(p.params, dev, root, by_dev.get(dev, []), rows, probe_key=p.probe_key,
                                         probe_hashes=p.probe_hashes.get(dev, b""))
            if not v.ok:
                return self.finish(p, Verdict.FAILED, v.reason)
        return self.finish(p, Verdict.PASSED, "")

    # ------------------------------------------------------------------ deadlines
    def expired(self, is_connected: Any) -> list[Outcome]:
        """Fail every pending challenge past its deadline.

        A challenge that was delivered and not answered in time is a failure even when the provider
        has left meanwhile: leaving must not turn a failure into a mere miss.
        """
        now = self._clock.monotonic()
        out = []
        for address, p in list(self._pending.items()):
            if now <= p.deadline_mono:
                continue
            del self._pending[address]
            what = {"commit": "commitment", "probe": "memory probe answer"}.get(p.phase, "openings")
            limit = {"commit": p.timeout_s, "probe": p.probe_timeout_s}.get(p.phase, self.policy.opening_timeout_s)
            away = "" if is_connected(address) else " (the provider left during the challenge)"
            out.append(self.finish(p, Verdict.FAILED, f"late: no {what} within {limit:.2f}s{away}"))
        return out

    def fail(self, address: Address, challenge_id: str, reason: str) -> Outcome | None:
        """Fail a pending challenge the provider says it cannot run."""
        p = self._pending.get(address)
        if p is None or p.challenge_id != challenge_id:
            return None
        del self._pending[address]
        return self.finish(p, Verdict.FAILED, f"provider error: {reason[:200]}")

    def finish(self, p: PendingChallenge, verdict: Verdict, reason: str) -> Outcome:
        """Decide ``p`` now: remove it from the book and build its record."""
        if self._pending.get(p.address) is p:
            del self._pending[p.address]
        record = {
            **p.summary(verdict, reason),
            "address": p.address,
            "seed": p.params.seed.hex(),
            "b_seed": p.params.b_seed.hex(),
            "devices": p.device_indices,
            "models": {str(k): fp.key for k, fp in p.fingerprint.items()},
            "roots": {str(k): c.root.hex() for k, c in p.commitments.items()},
            "work_seconds": {str(k): c.work_seconds for k, c in p.commitments.items()},
            "peak_memory_bytes": {str(k): c.peak_memory_bytes for k, c in p.commitments.items()},
            "opened_rows": {str(k): v for k, v in p.rows.items()},
            "commit_seconds": None if p.committed_mono is None else p.committed_mono - p.issued_mono,
            "memory_probe": p.params.hold,
            "probe_seconds": p.probe_seconds,
            "decided": self._clock.time(),
        }
        return Outcome(verdict, reason, _finite(p.reported_tflops), _finite(p.wall_tflops), _json_safe(record))


def _finite(x: float) -> float:
    """``x`` when it is a finite number, else 0.0 (a figure the queen could not measure)."""
    return x if math.isfinite(x) else 0.0


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so a decided record can always be stored."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
