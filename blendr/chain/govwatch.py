"""A running node's view of governance parameters: re-read from the chains every ``chain.gov_refresh_s``.

Guarantees: :meth:`GovWatch.get` answers at once from memory (the last value read, or the node's configured
fallback before the first successful read); a value the chain changed is seen within one refresh interval
(at most 30 s, :mod:`blendr.config`), and every listener is called once per change with the changed names;
a chain that cannot be read keeps the last known values (logged) and is tried again next round.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from blendr.chain import govparams as gp
from blendr.errors import BlendrError
from blendr.telemetry import get_logger

if TYPE_CHECKING:
    from blendr.chain.manifest import Manifest
    from blendr.config import Config

log = get_logger("blendr.chain.govwatch")

Reader = Callable[[Sequence[str]], Mapping[str, gp.Value]]
Listener = Callable[[Mapping[str, gp.Value], set[str]], None]


class GovWatch:
    """Follows some governance parameters of a deployment (names from :mod:`blendr.chain.govparams`)."""

    def __init__(self, read: Reader, names: Sequence[str], interval_s: float,
                 fallback: Mapping[str, gp.Value] | None = None) -> None:
        """Args:
            read: reads the named parameters' current values (e.g. :meth:`Governor.values`); may raise BlendrError.
            names: the parameters this node obeys.
            interval_s: seconds between reads (``chain.gov_refresh_s``).
            fallback: values used until the first read succeeds (the node's config).
        """
        for n in names:
            gp.param(n)  # InvalidArgumentError for a name the registry does not know
        self._read, self.names, self.interval_s = read, list(names), interval_s
        self._values: dict[str, gp.Value] = dict(fallback or {})
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self.reads = 0  # successful reads so far

    def get(self, name: str, default: gp.Value | None = None) -> gp.Value | None:
        with self._lock:
            return self._values.get(name, default)

    def values(self) -> dict[str, gp.Value]:
        with self._lock:
            return dict(self._values)

    def on_change(self, listener: Listener) -> None:
        """Calls ``listener(values, changed_names)`` after every refresh that changed something."""
        self._listeners.append(listener)

    def refresh(self) -> set[str]:
        """Reads every parameter now (blocking); returns the names whose value changed.

        Raises:
            BlendrError: the chain could not be read (the last known values stay).
        """
        fresh = {}
        for name, value in dict(self._read(self.names)).items():
            try:
                gp.BY_NAME[name].check(value)
            except BlendrError as exc:  # a lying RPC, or a contract that allows what the registry does not
                log.warning("governance parameter out of its bounds on chain; keeping the last known", name=name,
                            error=str(exc)[:200])
                continue
            fresh[name] = value
        with self._lock:
            changed = {n for n, v in fresh.items() if self._values.get(n) != v}
            self._values.update(fresh)
            self.reads += 1
            snapshot = dict(self._values)
        if changed:
            log.info("governance parameters changed", changed={n: gp.format_value(gp.BY_NAME[n].unit, snapshot[n])
                                                              for n in sorted(changed)})
            for listener in self._listeners:
                try:
                    listener(snapshot, changed)
                except Exception as exc:  # one node part failing to apply a value must not stop the others
                    log.exception("applying governance parameters failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return changed

    async def run(self) -> None:
        """Refreshes every ``interval_s``, forever (cancel to stop)."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except BlendrError as exc:
                log.warning("governance parameters could not be read; keeping the last known",
                            error=str(exc)[:300])
            except Exception as exc:  # loop boundary: a malformed answer must not end following governance
                log.exception("governance refresh failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
            await asyncio.sleep(self.interval_s)


def chain_reader(cfg: Config, m: Manifest) -> Reader:
    """A reader of both chains of manifest ``m`` under node config ``cfg`` (no key: reads only)."""
    from blendr.chain.client import ChainClient
    from blendr.chain.governing import Governor
    from blendr.chain.manifest import chain_settings

    g = Governor(ChainClient(chain_settings(cfg, m, "eth")), ChainClient(chain_settings(cfg, m, "etc")), m)
    return g.values


__all__ = ["GovWatch", "chain_reader"]
