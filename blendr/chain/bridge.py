"""Bridge messages as Python sees them: read from outbox events, hashed, attested (EIP-712), delivered.

A message's identity (``message_hash``) is the EIP-712 ``hashStruct`` of
``Message(uint256 srcChainId,address srcOutbox,uint256 nonce,uint256 dstChainId,address sender,address target,bytes data)``
— the same 32 bytes on both chains. What an attester signs is the EIP-712 digest of that struct under the
*destination* inbox's domain (name "BlendrBridgeInbox", version "1", the destination chain id, the inbox
address), so a signature is valid on one inbox of one chain only. The inbox wants signatures ordered by
signer address, ascending (that is how it refuses a repeated signer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_utils import keccak, to_checksum_address

from blendr.errors import SignatureError

MESSAGE_TYPE = [
    {"name": "srcChainId", "type": "uint256"},
    {"name": "srcOutbox", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "dstChainId", "type": "uint256"},
    {"name": "sender", "type": "address"},
    {"name": "target", "type": "address"},
    {"name": "data", "type": "bytes"},
]
MESSAGE_TYPEHASH = keccak(
    text="Message(uint256 srcChainId,address srcOutbox,uint256 nonce,uint256 dstChainId,address sender,"
         "address target,bytes data)")
INBOX_DOMAIN_NAME = "BlendrBridgeInbox"
INBOX_DOMAIN_VERSION = "1"


@dataclass(frozen=True)
class BridgeMessage:
    """A message numbered by a source outbox, for one destination chain."""

    src_chain_id: int
    src_outbox: str
    nonce: int
    dst_chain_id: int
    sender: str
    target: str
    data: bytes

    @property
    def message_hash(self) -> bytes:
        return bytes(keccak(encode(
            ["bytes32", "uint256", "address", "uint256", "uint256", "address", "address", "bytes32"],
            [MESSAGE_TYPEHASH, self.src_chain_id, self.src_outbox, self.nonce, self.dst_chain_id, self.sender,
             self.target, keccak(self.data)])))

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple the inbox's ``deliver`` takes."""
        return (self.src_chain_id, to_checksum_address(self.src_outbox), self.nonce, self.dst_chain_id,
                to_checksum_address(self.sender), to_checksum_address(self.target), self.data)

    def to_json(self) -> dict[str, Any]:
        return {"src_chain_id": self.src_chain_id, "src_outbox": self.src_outbox, "nonce": self.nonce,
                "dst_chain_id": self.dst_chain_id, "sender": self.sender, "target": self.target,
                "data": "0x" + self.data.hex()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BridgeMessage:
        data = d["data"]
        return cls(int(d["src_chain_id"]), str(d["src_outbox"]), int(d["nonce"]), int(d["dst_chain_id"]),
                   str(d["sender"]), str(d["target"]), bytes.fromhex(data[2:] if data.startswith("0x") else data))

    @classmethod
    def from_event(cls, args: dict[str, Any], src_chain_id: int, src_outbox: str) -> BridgeMessage:
        """From a decoded ``MessageSent`` event of ``src_outbox`` on ``src_chain_id``."""
        data = args["data"]
        if isinstance(data, str):
            data = bytes.fromhex(data[2:] if data.startswith("0x") else data)
        return cls(src_chain_id, to_checksum_address(src_outbox), int(args["nonce"]), int(args["dstChainId"]),
                   to_checksum_address(args["sender"]), to_checksum_address(args["target"]), bytes(data))


def typed_data(msg: BridgeMessage, inbox: str) -> dict[str, Any]:
    """The full EIP-712 typed data an attester signs for delivery to ``inbox`` on ``msg.dst_chain_id``."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Message": MESSAGE_TYPE,
        },
        "primaryType": "Message",
        "domain": {"name": INBOX_DOMAIN_NAME, "version": INBOX_DOMAIN_VERSION, "chainId": msg.dst_chain_id,
                   "verifyingContract": to_checksum_address(inbox)},
        "message": {"srcChainId": msg.src_chain_id, "srcOutbox": to_checksum_address(msg.src_outbox),
                    "nonce": msg.nonce, "dstChainId": msg.dst_chain_id, "sender": to_checksum_address(msg.sender),
                    "target": to_checksum_address(msg.target), "data": msg.data},
    }


def attest(account: Any, msg: BridgeMessage, inbox: str) -> bytes:
    """An attester's 65-byte signature (r || s || v) of ``msg`` for ``inbox``."""
    from eth_account.messages import encode_typed_data

    signed = account.sign_message(encode_typed_data(full_message=typed_data(msg, inbox)))
    return bytes(signed.signature)


def recover_attester(msg: BridgeMessage, inbox: str, signature: bytes) -> str:
    """The address that made ``signature`` over ``msg`` for ``inbox`` (checks nothing else: not the form of s or v).

    Raises:
        SignatureError: the signature is malformed or recovers to no key.
    """
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    digest = encode_typed_data(full_message=typed_data(msg, inbox))
    try:
        return str(Account.recover_message(digest, signature=signature))
    except Exception as exc:  # eth-keys and eth-account raise BadSignature, ValueError, TypeError, ...
        raise SignatureError(f"bad attestation signature: {type(exc).__name__}") from None


def ordered(signatures: dict[str, bytes]) -> list[bytes]:
    """Signatures keyed by signer, in the order the inbox requires (signer address ascending)."""
    return [sig for _, sig in sorted(signatures.items(), key=lambda kv: int(kv[0], 16))]
