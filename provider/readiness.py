"""Whether this provider can run renters' jobs now: part of its admission (the hello) and of its health
(every heartbeat).

A provider is ready when its job API answers and a trivial job runs to the end on it (the job runner's
``probe``). :class:`ReadinessMonitor` checks at start and every ``interval_s`` (each check bounded by
``timeout_s``) and keeps the last answer; the agent reports it, and the queen never offers a provider that is
not ready to the king. A provider without a job runner at all is never ready.

Guarantees: :attr:`ReadinessMonitor.current` always holds the outcome of the last finished check (never ready
before the first); a check never raises (its failure is the not-ready reason); checks never overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from blendr.errors import BlendrError
from blendr.telemetry import get_logger
from blendr.types import Readiness

log = get_logger("blendr.provider.readiness")

NO_RUNNER = "this provider has no Ray job API: renters' jobs cannot run (pass --ray-dashboard URL)"
NOT_CHECKED = "readiness not checked yet"

Probe = Callable[[float], Awaitable[None]]


class ReadinessMonitor:
    """Runs the readiness check and keeps its last outcome."""

    def __init__(self, probe: Probe | None, *, interval_s: float = 60.0, timeout_s: float = 60.0,
                 on_change: Callable[[Readiness], None] | None = None) -> None:
        """
        Args:
            probe: runs a trivial job within the given seconds, raising BlendrError when it cannot; None: the
                provider has no job runner (never ready).
            on_change: called with the new readiness whenever a check changes it.
        """
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be > 0")
        self._probe = probe
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.on_change = on_change
        self.current = Readiness(False, NOT_CHECKED if probe is not None else NO_RUNNER)
        self._lock = asyncio.Lock()

    def set_probe(self, probe: Probe | None) -> None:
        """Use ``probe`` from the next check on (the job runner is known only once the runtime is up)."""
        self._probe = probe

    async def check(self) -> Readiness:
        """Run one bounded check now; its outcome becomes :attr:`current`."""
        async with self._lock:
            if self._probe is None:
                result = Readiness(False, NO_RUNNER)
            else:
                try:
                    await asyncio.wait_for(self._probe(self.timeout_s), self.timeout_s + 5.0)
                    result = Readiness()
                except TimeoutError:
                    result = Readiness(False, f"a trivial job did not finish within {self.timeout_s:g} s")
                except BlendrError as exc:
                    result = Readiness(False, str(exc)[:500] or type(exc).__name__)
            if result != self.current:
                if result.ready:
                    log.info("ready to run renters' jobs")
                else:
                    log.warning("cannot run renters' jobs; not offered until this is fixed", reason=result.reason)
                self.current = result
                if self.on_change is not None:
                    self.on_change(result)
            return result

    async def run(self) -> None:
        """Check every ``interval_s`` until cancelled (the first check is the caller's, at start)."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()
