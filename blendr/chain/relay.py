"""Delivering attested bridge messages, shared by the king and by queens that deliver themselves.

Delivery is safe to race: the inbox marks a message executed before it runs it, so of several relayers
with k attestations exactly one transaction executes it and the others revert with
``BridgeInboxAlreadyExecuted``, which :func:`deliver_message` reports as ``"already"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils import to_checksum_address

from blendr.chain.bridge import BridgeMessage, ordered, recover_attester
from blendr.chain.contracts import BridgeInbox
from blendr.errors import ContractRevertError, InvalidArgumentError, SignatureError
from blendr.identity import canonical_signature
from protos.blendr.v1 import king_pb2 as kpb

MAX_DATA = 64 * 1024


@dataclass(frozen=True)
class DeliveryOutcome:
    state: str  # "delivered" (our tx executed it), "already" (executed before), "short" (fewer than k valid)
    tx_hash: str = ""
    signatures: int = 0
    threshold: int = 0


def deliver_message(inbox: BridgeInbox, msg: BridgeMessage, signatures: Mapping[str, bytes]) -> DeliveryOutcome:
    """Delivers ``msg`` to ``inbox`` with the first k valid attestations of current attesters (blocking).

    Signatures are delivered in their canonical form (:func:`~blendr.identity.canonical_signature`: low s,
    v 27/28), whatever encoding of ``v`` they came in. Signatures from signers outside the inbox's current
    attester set, malleable (high-s) or malformed ones, and ones that do not recover to the signer they are
    filed under, are left out.

    Raises:
        ContractRevertError: the inbox refused for another reason (paused, rate limited, target failed).
        UnavailableError: the RPC endpoint kept failing.
    """
    if inbox.executed(msg):
        return DeliveryOutcome("already")
    attesters = {a.lower() for a in inbox.attesters()}
    threshold = inbox.threshold()
    valid: dict[str, bytes] = {}
    for signer, sig in signatures.items():
        if signer.lower() not in attesters:
            continue
        try:
            # The inbox takes only r || low-s || v 27/28: another encoding of v is put in that form here.
            sig = canonical_signature(sig)
            if recover_attester(msg, inbox.address, sig).lower() != signer.lower():
                continue
        except SignatureError:  # malformed, malleable (high s), or recovers to no key: left out
            continue
        valid[to_checksum_address(signer)] = sig
    if len(valid) < threshold:
        return DeliveryOutcome("short", signatures=len(valid), threshold=threshold)
    chosen = ordered(valid)[:threshold]  # a prefix of an ascending list is ascending
    try:
        receipt = inbox.deliver(msg, chosen)
    except ContractRevertError as exc:
        if exc.error == "BridgeInboxAlreadyExecuted":
            return DeliveryOutcome("already", signatures=len(valid), threshold=threshold)
        raise
    return DeliveryOutcome("delivered", "0x" + bytes(receipt["transactionHash"]).hex(), len(valid), threshold)


def message_to_proto(msg: BridgeMessage) -> kpb.BridgeMessage:
    return kpb.BridgeMessage(
        src_chain_id=msg.src_chain_id, src_outbox=bytes.fromhex(msg.src_outbox[2:]), nonce=msg.nonce,
        dst_chain_id=msg.dst_chain_id, sender=bytes.fromhex(msg.sender[2:]), target=bytes.fromhex(msg.target[2:]),
        data=msg.data)


def message_from_proto(m: kpb.BridgeMessage) -> BridgeMessage:
    """Raises InvalidArgumentError naming the bad field."""
    for name in ("src_outbox", "sender", "target"):
        if len(getattr(m, name)) != 20:
            raise InvalidArgumentError(f"message.{name} must be a 20-byte address (got {len(getattr(m, name))} bytes)")
    if m.src_chain_id == 0 or m.dst_chain_id == 0:
        raise InvalidArgumentError("message.src_chain_id and message.dst_chain_id must be set")
    if m.nonce == 0:
        raise InvalidArgumentError("message.nonce starts at 1")
    if len(m.data) > MAX_DATA:
        raise InvalidArgumentError(f"message.data is {len(m.data)} bytes; at most {MAX_DATA}")
    return BridgeMessage(int(m.src_chain_id), to_checksum_address(bytes(m.src_outbox)), int(m.nonce),
                         int(m.dst_chain_id), to_checksum_address(bytes(m.sender)), to_checksum_address(bytes(m.target)),
                         bytes(m.data))
