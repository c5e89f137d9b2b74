"""The pool registry: who is in a queen's pool, their devices, liveness and challenge statistics.

Pure domain logic over the :class:`~blendr.store.Store` port and an injected clock. Records survive a
queen restart; on load every provider is ``suspect`` until it reconnects (or ``dead`` once
``dead_after_s`` passes without it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from blendr.clock import Clock
from blendr.errors import StoreError
from blendr.identity import Address
from blendr.store import Store
from blendr.telemetry import get_logger
from blendr.types import DeviceInfo, Hello, ProviderState, RayInfo, Readiness, Verdict

log = get_logger("blendr.queen.pool")

NS_PROVIDERS = "providers"
# Heartbeat times of the whole pool in one document, so that persisting them costs one write, not one per provider.
NS_SEEN = "providers_seen"
SEEN_KEY = "last_seen"
# Verdicts that count as failures (for uptime and quarantine).
FAILING = frozenset({Verdict.FAILED.value, Verdict.ABANDONED.value})


@dataclass
class ProviderRecord:
    """Everything a queen keeps about one provider."""

    address: Address
    devices: list[DeviceInfo]
    software_version: str
    ray: RayInfo
    state: ProviderState
    admitted_at: float
    last_seen: float
    connected_since: float | None = None
    connected_seconds: float = 0.0
    issued: int = 0
    passed: int = 0
    failed: int = 0
    missed: int = 0
    abandoned: int = 0
    measured_tflops: float = 0.0
    fingerprint_tflops: float = 0.0
    last_challenge: dict[str, Any] | None = None
    # Hex of the 64-byte secp256k1 public key recovered from the last admission signature (what the king
    # seals renters' payload keys to), and the provider's floor price per GPU-hour in token wei.
    public_key: str = ""
    ask_per_gpu_hour: str = "0"
    # The last admission (hex): the queen's nonce and the provider's signature, which the king checks.
    admission_nonce: str = ""
    admission_signature: str = ""
    # Why the provider cannot run renters' jobs now, from its hello and heartbeats ("" when it can). A provider
    # that is not ready stays in the pool (and is challenged) but is never offered to the king.
    not_ready: str = ""
    # Where renters' code runs on it (Hello.sandbox): "bubblewrap", "gvisor" or "none".
    sandbox: str = "none"
    # The verdicts of the last decided challenges (oldest first, at most the pool's window), what quarantine
    # judges; emptied when a quarantine starts so the provider starts afresh after it.
    recent: list[str] = field(default_factory=list)
    # Quarantine: why and until when (unix time; 0: not quarantined), and how many times it happened.
    quarantine: str = ""
    quarantined_until: float = 0.0
    quarantines: int = 0
    # Monotonic reading of the last heartbeat; not persisted (meaningless across processes).
    last_seen_mono: float = field(default=0.0, compare=False)

    @property
    def ready(self) -> bool:
        """Whether the provider can be offered renters' jobs: it said it can (last hello or heartbeat) and it is
        not quarantined."""
        return not self.not_ready and not self.quarantine

    @property
    def answered(self) -> int:
        return self.passed + self.failed

    @property
    def uptime(self) -> float:
        """Passed over decided challenges (1.0 before the first is decided): proven availability. Abandoned
        challenges count as failed."""
        decided = self.passed + self.failed + self.abandoned + self.missed
        return 1.0 if decided == 0 else self.passed / decided

    @property
    def recent_failures(self) -> int:
        """Failed or abandoned challenges among the recent ones."""
        return sum(v in FAILING for v in self.recent)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("last_seen_mono")
        d["devices"] = [dev.to_dict() for dev in self.devices]
        d["state"] = self.state.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProviderRecord:
        d = dict(d)
        d["devices"] = [DeviceInfo.from_dict(x) for x in d["devices"]]
        d["ray"] = RayInfo(**d["ray"])
        d["state"] = ProviderState(d["state"])
        d["address"] = Address(d["address"])
        return cls(**d)


@dataclass(frozen=True)
class Transition:
    address: Address
    old: ProviderState
    new: ProviderState


class Pool:
    """The registry of a queen's providers and their liveness (alive → suspect → dead)."""

    def __init__(self, store: Store, clock: Clock, *, suspect_after_s: float, dead_after_s: float,
                 recent_window: int = 10) -> None:
        if not 0 < suspect_after_s < dead_after_s:
            raise ValueError("need 0 < suspect_after_s < dead_after_s")
        self._window: int
        self.recent_window = recent_window
        self._store = store
        self._clock = clock
        self._suspect_after = suspect_after_s
        self._dead_after = dead_after_s
        self._records: dict[Address, ProviderRecord] = {}
        self._connected: set[Address] = set()
        self._dirty: set[Address] = set()
        self._unsaved: set[Address] = set()

    # ------------------------------------------------------------------ persistence
    def load(self) -> int:
        """Load every record from the store; providers not yet reconnected start as suspect."""
        now_mono = self._clock.monotonic()
        seen = self._store.get(NS_SEEN, SEEN_KEY) or {}
        for _, value in self._store.scan(NS_PROVIDERS):
            rec = ProviderRecord.from_dict(value)
            rec.last_seen = max(rec.last_seen, float(seen.get(rec.address, 0.0)))
            rec.last_seen_mono = now_mono
            rec.connected_since = None
            if rec.state is ProviderState.ALIVE:
                rec.state = ProviderState.SUSPECT
            self._records[rec.address] = rec
            self._save(rec)
        return len(self._records)

    def _save(self, rec: ProviderRecord) -> None:
        # A store that fails must not stop the pool (or a verdict being counted): the record stays
        # authoritative in memory and is written again at the next take_dirty.
        try:
            self._store.put(NS_PROVIDERS, rec.address, rec.to_dict())
        except StoreError as exc:
            if rec.address not in self._unsaved:
                log.error("cannot store a provider record; kept in memory and retried", provider=rec.address,
                          error=str(exc))
            self._unsaved.add(rec.address)
            return
        self._unsaved.discard(rec.address)
        self._dirty.discard(rec.address)

    def take_dirty(self) -> dict[str, float] | None:
        """The last-heartbeat times of the pool when any changed since the last call, else None (records whose
        write failed are written again first)."""
        for address in list(self._unsaved):
            self._save(self._records[address])
        if not self._dirty:
            return None
        self._dirty.clear()
        return {str(a): r.last_seen for a, r in self._records.items()}

    def write(self, seen: dict[str, float] | None) -> None:
        """Persist a snapshot from :meth:`take_dirty` (one write; safe to run in a worker thread)."""
        if seen:
            self._store.put(NS_SEEN, SEEN_KEY, seen)

    def flush(self) -> int:
        """Persist the heartbeat times if any changed; returns how many providers the snapshot holds."""
        seen = self.take_dirty()
        self.write(seen)
        return len(seen or {})

    # ------------------------------------------------------------------ membership
    def admit(self, hello: Hello, *, public_key: bytes = b"", ask_per_gpu_hour: str = "0",
              admission: tuple[bytes, bytes] = (b"", b"")) -> tuple[ProviderRecord, bool]:
        """Register (or resume) a provider that has just passed admission. Returns (record, resumed).

        ``public_key`` (recovered from the admission signature) and ``ask_per_gpu_hour`` (wei, decimal) come
        from this connection and replace what an earlier one said.
        """
        now, mono = self._clock.time(), self._clock.monotonic()
        rec = self._records.get(hello.address)
        resumed = rec is not None
        if rec is None:
            rec = ProviderRecord(
                address=hello.address, devices=list(hello.devices), software_version=hello.software_version,
                ray=hello.ray, state=ProviderState.ALIVE, admitted_at=now, last_seen=now,
            )
            self._records[hello.address] = rec
        else:
            self._close_connection(rec, now)
            rec.devices = list(hello.devices)
            rec.software_version = hello.software_version
            rec.ray = hello.ray
            rec.state = ProviderState.ALIVE
            rec.last_seen = now
        if public_key:
            rec.public_key = public_key.hex()
        if admission[1]:
            rec.admission_nonce, rec.admission_signature = admission[0].hex(), admission[1].hex()
        rec.ask_per_gpu_hour = ask_per_gpu_hour
        rec.not_ready = "" if hello.readiness.ready else hello.readiness.reason or "not ready"
        rec.sandbox = hello.sandbox or "none"
        rec.last_seen_mono = mono
        rec.connected_since = now
        self._connected.add(rec.address)
        self._save(rec)
        return rec, resumed

    def heartbeat(self, address: Address) -> Transition | None:
        """Note a sign of life; a suspect provider becomes alive again."""
        rec = self._records.get(address)
        if rec is None:
            return None
        rec.last_seen = self._clock.time()
        rec.last_seen_mono = self._clock.monotonic()
        self._dirty.add(address)
        if rec.state is not ProviderState.ALIVE and address in self._connected:
            old, rec.state = rec.state, ProviderState.ALIVE
            self._save(rec)
            return Transition(address, old, ProviderState.ALIVE)
        return None

    def set_readiness(self, address: Address, readiness: Readiness) -> bool:
        """Record what the provider says of its readiness; True when ``ready`` flipped (unknown address: False).

        Only a flip is written to the store; a new reason while it stays not ready replaces the one in memory
        (what the pool listing shows) and is stored with the record's next write.
        """
        rec = self._records.get(address)
        if rec is None:
            return False
        not_ready = "" if readiness.ready else readiness.reason or "not ready"
        if not_ready == rec.not_ready:
            return False
        flipped = readiness.ready != rec.ready
        rec.not_ready = not_ready
        if flipped:
            self._save(rec)
        return flipped

    def _close_connection(self, rec: ProviderRecord, now: float) -> None:
        if rec.connected_since is not None:
            rec.connected_seconds += max(0.0, now - rec.connected_since)
            rec.connected_since = None

    def disconnected(self, address: Address) -> None:
        """The provider's stream ended; liveness now runs down from its last heartbeat."""
        rec = self._records.get(address)
        self._connected.discard(address)
        if rec is not None:
            self._close_connection(rec, self._clock.time())
            self._save(rec)

    def is_connected(self, address: Address) -> bool:
        return address in self._connected

    def sweep(self) -> list[Transition]:
        """Apply liveness rules from the time since each provider's last heartbeat."""
        mono = self._clock.monotonic()
        out: list[Transition] = []
        for rec in self._records.values():
            silent = mono - rec.last_seen_mono
            new = rec.state
            if silent > self._dead_after:
                new = ProviderState.DEAD
            elif silent > self._suspect_after and rec.state is ProviderState.ALIVE:
                new = ProviderState.SUSPECT
            if new is not rec.state:
                out.append(Transition(rec.address, rec.state, new))
                rec.state = new
                self._save(rec)
        return out

    @property
    def recent_window(self) -> int:
        """How many of a provider's last decided challenges its record keeps for quarantine to judge."""
        return self._window

    @recent_window.setter
    def recent_window(self, n: int) -> None:
        """A new window (governance's ``verification.quarantine_window``) applies to each provider from its next
        verdict: a shorter one drops its older verdicts then, a longer one fills as verdicts come."""
        if n < 1:
            raise ValueError("need recent_window >= 1")
        self._window = n

    # ------------------------------------------------------------------ challenges
    def record_verdict(
        self,
        address: Address,
        verdict: Verdict,
        summary: dict[str, Any],
        *,
        measured_tflops: float | None = None,
        fingerprint_tflops: float | None = None,
    ) -> None:
        """Count a decided challenge against the provider and keep its summary as the last challenge."""
        rec = self._records.get(address)
        if rec is None:
            return
        if verdict is Verdict.PASSED:
            rec.passed += 1
        elif verdict is Verdict.FAILED:
            rec.failed += 1
        elif verdict is Verdict.MISSED:
            rec.missed += 1
        elif verdict is Verdict.ABANDONED:
            rec.abandoned += 1
        if verdict is not Verdict.MISSED:  # away when challenged is uptime's business, not quarantine's
            rec.recent = [*rec.recent, verdict.value][-self._window:]
        if measured_tflops is not None and measured_tflops > 0:
            rec.measured_tflops = measured_tflops
        if fingerprint_tflops is not None:
            rec.fingerprint_tflops = fingerprint_tflops
        rec.last_challenge = summary
        self._save(rec)

    # ------------------------------------------------------------------ quarantine
    def quarantine(self, address: Address, until: float, reason: str) -> ProviderRecord | None:
        """Quarantine the provider until ``until`` (unix time) and start its recent verdicts afresh."""
        rec = self._records.get(address)
        if rec is None:
            return None
        rec.quarantine, rec.quarantined_until = reason, until
        rec.quarantines += 1
        rec.recent = []
        self._save(rec)
        return rec

    def quarantined(self, address: Address) -> ProviderRecord | None:
        """The provider's record while it is quarantined now, else None (an ended quarantine is lifted)."""
        rec = self._records.get(address)
        if rec is None or not rec.quarantine:
            return None
        if self._clock.time() < rec.quarantined_until:
            return rec
        self._lift(rec)
        return None

    def lift_ended_quarantines(self) -> list[Address]:
        """Lift every quarantine whose time is over; returns the providers lifted."""
        now = self._clock.time()
        out = []
        for rec in self._records.values():
            if rec.quarantine and now >= rec.quarantined_until:
                self._lift(rec)
                out.append(rec.address)
        return out

    def _lift(self, rec: ProviderRecord) -> None:
        rec.quarantine, rec.quarantined_until = "", 0.0
        self._save(rec)

    def record_issued(self, address: Address, summary: dict[str, Any]) -> None:
        rec = self._records.get(address)
        if rec is None:
            return
        rec.issued += 1
        rec.last_challenge = summary
        self._save(rec)

    # ------------------------------------------------------------------ queries
    def get(self, address: Address) -> ProviderRecord | None:
        return self._records.get(address)

    def all(self) -> list[ProviderRecord]:
        return sorted(self._records.values(), key=lambda r: r.address)

    def connected_seconds(self, rec: ProviderRecord) -> float:
        extra = 0.0 if rec.connected_since is None else max(0.0, self._clock.time() - rec.connected_since)
        return rec.connected_seconds + extra

    def counts_by_state(self) -> dict[ProviderState, int]:
        out = dict.fromkeys(ProviderState, 0)
        for rec in self._records.values():
            out[rec.state] += 1
        return out
