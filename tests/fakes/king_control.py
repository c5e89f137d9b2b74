"""A fake of the king's attestation API as a queen's attester sees it (``queen.attester.KingPort``).

It keeps attestations by (message hash, recovered signer) like the king's AttestationBook, so a replay is
one attestation; ``fail_next`` makes the next calls raise (the king away, or refusing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blendr.chain.bridge import BridgeMessage, recover_attester
from queen.kingclient import KingAck


@dataclass
class FakeKing:
    inbox: str
    threshold: int = 2
    held: dict[bytes, tuple[BridgeMessage, dict[str, bytes]]] = field(default_factory=dict)
    submissions: int = 0
    fail_next: list[Exception] = field(default_factory=list)

    async def submit_attestation(self, msg: BridgeMessage, signature: bytes) -> KingAck:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.submissions += 1
        signer = recover_attester(msg, self.inbox, signature)
        _, sigs = self.held.setdefault(msg.message_hash, (msg, {}))
        sigs.setdefault(signer, signature)
        state = "DELIVERY_STATE_DELIVERING" if len(sigs) >= self.threshold else "DELIVERY_STATE_GATHERING"
        return KingAck(state, len(sigs), self.threshold)

    async def attestations(self, message_hash: bytes) -> tuple[BridgeMessage, dict[str, bytes]]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        msg, sigs = self.held[message_hash]
        return msg, dict(sigs)
