"""A fake ``BridgeInbox``: the checks the real inbox makes on ``deliver``, and failures on demand.

It checks what the contract checks (each signature canonical — low s, v 27/28 —, from a current attester,
signers ascending, at least ``threshold`` of them) and executes a message once; a second ``deliver`` of an
executed message raises ``BridgeInboxAlreadyExecuted`` like the contract. Failures are injected per call:
``fail_next`` raises before anything happens (an RPC outage, a revert), ``land_then_fail`` executes the
message and then raises (a transaction that landed while its answer was lost).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from blendr.chain.bridge import BridgeMessage, recover_attester
from blendr.errors import ContractRevertError

SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@dataclass
class FakeInbox:
    """One destination chain's inbox, in memory."""

    address: str
    attester_set: list[str]
    k: int
    executions: dict[bytes, int] = field(default_factory=dict)  # message hash -> times executed (must stay <= 1)
    calls: list[str] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)  # raised by the next deliver calls, before execution
    land_then_fail: list[Exception] = field(default_factory=list)  # raised by the next deliver calls, after it
    read_failures: list[Exception] = field(default_factory=list)  # raised by the next reads (attesters, executed)
    txs: int = 0

    def _read(self, what: str) -> None:
        self.calls.append(what)
        if self.read_failures:
            raise self.read_failures.pop(0)

    def attesters(self) -> list[str]:
        self._read("attesters")
        return list(self.attester_set)

    def threshold(self) -> int:
        self._read("threshold")
        return self.k

    def executed(self, msg: BridgeMessage) -> bool:
        self._read("executed")
        return self.executions.get(msg.message_hash, 0) > 0

    def deliver(self, msg: BridgeMessage, signatures: Sequence[bytes]) -> dict[str, Any]:
        self.calls.append("deliver")
        if self.fail_next:
            raise self.fail_next.pop(0)
        if self.executions.get(msg.message_hash, 0):
            raise ContractRevertError("deliver reverted: BridgeInboxAlreadyExecuted()", error="BridgeInboxAlreadyExecuted")
        last = 0
        members = {a.lower() for a in self.attester_set}
        for i, sig in enumerate(signatures):
            if len(sig) != 65 or sig[64] not in (27, 28) or int.from_bytes(sig[32:64], "big") > SECP256K1_HALF_N:
                raise ContractRevertError(f"deliver reverted: BridgeInboxInvalidSignature({i})",
                                          error="BridgeInboxInvalidSignature")
            signer = recover_attester(msg, self.address, sig)
            if signer.lower() not in members:
                raise ContractRevertError("deliver reverted: BridgeInboxSignerNotAttester",
                                          error="BridgeInboxSignerNotAttester")
            if int(signer, 16) <= last:
                raise ContractRevertError("deliver reverted: BridgeInboxSignersNotSorted",
                                          error="BridgeInboxSignersNotSorted")
            last = int(signer, 16)
        if len(signatures) < self.k:
            raise ContractRevertError("deliver reverted: BridgeInboxNotEnoughSignatures",
                                      error="BridgeInboxNotEnoughSignatures")
        self.executions[msg.message_hash] = self.executions.get(msg.message_hash, 0) + 1
        self.txs += 1
        if self.land_then_fail:
            raise self.land_then_fail.pop(0)
        return {"transactionHash": self.txs.to_bytes(32, "big")}
