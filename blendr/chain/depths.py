"""The confirmation depths a running node uses: governance's, raised to its operator's where that is deeper.

Governance holds one depth per chain (``Governance.confirmations()`` on ETH; registry names ``chain.eth_confirmations``
and ``chain.etc_confirmations``, :mod:`blendr.chain.govparams`). A node follows them with a
:class:`~blendr.chain.govwatch.GovWatch` and hands every read to :meth:`Depths.apply`, which sets the depth of
every chain client the node registered (:meth:`Depths.attach`); followers and readers built on those clients
without a depth of their own use it from their next poll.

Precedence: the effective depth of a chain is ``max(governance's, the operator's)``, where the operator's is
``chain.eth_confirmations`` / ``chain.etc_confirmations`` set to 0 or more in the node's config (-1, the
default: none). An operator may keep its node more careful than governance asks, never less.

Guarantees: a node never uses a depth below 1; a client attached after a change gets the current depth at once;
each change of an effective depth, or of governance's, is logged once (chain, old, new, governance's and the
operator's, and which of them the node follows).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from blendr.chain import govparams as gp
from blendr.telemetry import get_logger

if TYPE_CHECKING:
    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import Manifest
    from blendr.config import Config

log = get_logger("blendr.chain.depths")

CHAINS = ("eth", "etc")
#: The governance parameters a node follows for its depths (give them to its GovWatch).
DEPTH_PARAMS = tuple(gp.DEPTHS[c] for c in CHAINS)


class Depths:
    """The effective confirmation depth of each chain, and the clients that use it (thread-safe)."""

    def __init__(self, initial: Mapping[str, int], operator: Mapping[str, int] | None = None) -> None:
        """Args:
            initial: per chain, the depth until governance's is read (the deployment manifest's).
            operator: per chain, the operator's explicit depth (absent or below 0: none).
        """
        self._operator = {c: d for c, d in (operator or {}).items() if d >= 0}
        self._governance: dict[str, int] = {}
        self._depth = {c: max(1, initial[c], self._operator.get(c, 0)) for c in CHAINS}
        self._clients: dict[str, weakref.WeakSet[ChainClient]] = {c: weakref.WeakSet() for c in CHAINS}
        self._lock = threading.Lock()

    @classmethod
    def for_node(cls, cfg: Config, m: Manifest) -> Depths:
        """The depths of a node with config ``cfg`` on deployment ``m``."""
        operator = {"eth": cfg.chain.eth_confirmations, "etc": cfg.chain.etc_confirmations}
        return cls({c: m.chain(c).confirmations for c in CHAINS}, operator)

    def depth(self, chain: str) -> int:
        """The depth the node uses on ``chain`` now."""
        with self._lock:
            return self._depth[chain]

    def attach(self, *clients: ChainClient) -> None:
        """Registers ``clients`` (each on its chain, ``settings.name``) and gives them the current depth now."""
        with self._lock:
            for c in clients:
                self._clients[c.settings.name].add(c)
                c.set_confirmations(self._depth[c.settings.name])

    def apply(self, values: Mapping[str, gp.Value], changed: object = None) -> None:
        """Takes governance's depths from ``values`` (a GovWatch read; other names are ignored) and sets every
        attached client to the effective depth. Fits :meth:`GovWatch.on_change` as a listener."""
        with self._lock:
            for chain in CHAINS:
                gov = values.get(gp.DEPTHS[chain])
                if not isinstance(gov, int) or gov < 1:
                    continue
                old_gov, self._governance[chain] = self._governance.get(chain), gov
                operator = self._operator.get(chain)
                new, old = max(gov, operator or 0), self._depth[chain]
                if new != old:
                    self._depth[chain] = new
                    for c in list(self._clients[chain]):
                        c.set_confirmations(new)
                if new != old or gov != old_gov:
                    log.info("confirmation depth", chain=chain, old=old, new=new, governance=gov,
                             operator=operator if operator is not None else "none",
                             source="operator" if operator is not None and operator > gov else "governance")


__all__ = ["CHAINS", "DEPTH_PARAMS", "Depths"]
