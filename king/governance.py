"""The King's read-only view of governance: proposals and their tallies, as last read from Ethereum.

Guarantees: :meth:`ProposalBook.list` and :meth:`ProposalBook.get` answer from memory (no chain call per
request); :meth:`ProposalBook.refresh` re-reads every proposal (the King calls it every ``chain.gov_refresh_s``);
a failed refresh keeps the last list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection

from blendr.chain.governing import Proposal, ProposalState
from blendr.errors import InvalidArgumentError, NotFoundError

MAX_LIMIT = 500


class ProposalBook:
    """Proposals of one deployment, newest first."""

    def __init__(self, read: Callable[[], list[Proposal]], head: Callable[[], int]) -> None:
        """Args:
            read: every proposal, oldest first (:meth:`blendr.chain.governing.Governor.proposals`).
            head: the current ETH block number.
        """
        self._read, self._head = read, head
        self._proposals: list[Proposal] = []
        self._block = 0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Re-reads every proposal (blocking). Raises BlendrError when Ethereum cannot be read."""
        block = self._head()
        proposals = list(reversed(self._read()))
        with self._lock:
            self._proposals, self._block = proposals, block

    @property
    def as_of_block(self) -> int:
        return self._block

    def list(self, states: Collection[ProposalState] = (), limit: int = 0) -> list[Proposal]:
        """Newest first, only ``states`` (empty: all), at most ``limit`` (0: 50).

        Raises:
            InvalidArgumentError: ``limit`` above 500.
        """
        if limit > MAX_LIMIT:
            raise InvalidArgumentError(f"limit {limit} is above {MAX_LIMIT}")
        with self._lock:
            found = [p for p in self._proposals if not states or p.state in states]
        return found[: limit or 50]

    def get(self, proposal_id: str) -> Proposal:
        """Raises InvalidArgumentError for an id that is not a decimal number, NotFoundError for an unknown one."""
        if not proposal_id.isascii() or not proposal_id.isdigit() or len(proposal_id) > 78:
            raise InvalidArgumentError(f"proposal id {proposal_id[:80]!r} is not a decimal number")
        pid = int(proposal_id)
        with self._lock:
            for p in self._proposals:
                if p.proposal_id == pid:
                    return p
        raise NotFoundError(f"no proposal {pid} (as of block {self._block})")
