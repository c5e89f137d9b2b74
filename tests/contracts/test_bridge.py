"""Bridge contracts (BridgeOutbox, BridgeInbox, BridgeGovernanceExecutor) on the real eth and etc anvils.

Messages are sent on one chain's outbox, read back from its MessageSent event, attested in Python with
EIP-712 signatures of anvil dev keys, and delivered to the other chain's inbox.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from tests.contracts.chainkit import (
    DEV_KEYS,
    deploy,
    error_name,
    increase_time,
    now,
    reverts,
    send,
    snapshot,
)

ETH_ID = 31337
ETC_ID = 63
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GOVERNOR_ROLE = keccak(text="GOVERNOR_ROLE")
GUARDIAN_ROLE = keccak(text="GUARDIAN_ROLE")
SENDER_ROLE = keccak(text="SENDER_ROLE")
ZERO = "0x" + "00" * 20
WINDOW = 3600
MAX_PER_WINDOW = 100
# Attesters are dev accounts 5..9 (3-of-5); account 0 deploys/administers, 1 is an authorized sender.
ATTESTER_KEYS = DEV_KEYS[5:10]
ATTESTERS = [Account.from_key(k).address for k in ATTESTER_KEYS]
THRESHOLD = 3

MESSAGE_FIELDS = [
    {"name": "srcChainId", "type": "uint256"},
    {"name": "srcOutbox", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "dstChainId", "type": "uint256"},
    {"name": "sender", "type": "address"},
    {"name": "target", "type": "address"},
    {"name": "data", "type": "bytes"},
]
DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


# ------------------------------------------------------------------------------------------------------
# Signing helpers
# ------------------------------------------------------------------------------------------------------


def typed_message(msg: dict[str, Any], chain_id: int, inbox: str) -> dict[str, Any]:
    """The EIP-712 full message attesters sign for ``msg`` on the inbox at ``inbox`` on ``chain_id``."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Message": MESSAGE_FIELDS},
        "primaryType": "Message",
        "domain": {
            "name": "BlendrBridgeInbox",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": inbox,
        },
        "message": msg,
    }


def sign(key: str, msg: dict[str, Any], chain_id: int, inbox: str) -> bytes:
    """One attester's 65-byte (r, s, v) signature."""
    return bytes(Account.sign_typed_data(key, full_message=typed_message(msg, chain_id, inbox)).signature)


def attest(keys: list[str], msg: dict[str, Any], chain_id: int, inbox: str) -> list[bytes]:
    """Signatures of ``keys``, ordered by signer address ascending as the inbox requires."""
    return [sign(k, msg, chain_id, inbox) for k in sorted_keys(keys)]


def sorted_keys(keys: list[str]) -> list[str]:
    """``keys`` ordered by their address, ascending."""
    return sorted(keys, key=lambda k: int(Account.from_key(k).address, 16))


def message_hash(msg: dict[str, Any]) -> bytes:
    """The chain-independent message id: the EIP-712 struct hash (domain-independent)."""
    body: bytes = encode_typed_data(full_message=typed_message(msg, 1, ZERO)).body
    return bytes(body)


def as_tuple(msg: dict[str, Any]) -> tuple[Any, ...]:
    """The BridgeMessage struct as a web3 argument."""
    return tuple(msg[f["name"]] for f in MESSAGE_FIELDS)


def high_s(sig: bytes) -> bytes:
    """The malleable twin of ``sig``: s -> n - s and v flipped (recovers the same signer with plain ecrecover)."""
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


def sent_message(w3: Web3, outbox: Contract, receipt: Any) -> dict[str, Any]:
    """The BridgeMessage an outbox transaction emitted, as a dict in struct field order."""
    (event,) = outbox.events.MessageSent().process_receipt(receipt, errors=DISCARD)
    a = event["args"]
    msg = {
        "srcChainId": w3.eth.chain_id,
        "srcOutbox": outbox.address,
        "nonce": a["nonce"],
        "dstChainId": a["dstChainId"],
        "sender": a["sender"],
        "target": a["target"],
        "data": bytes(a["data"]),
    }
    assert bytes(a["messageHash"]) == message_hash(msg)
    return msg


def inner_error(exc: ContractCustomError) -> tuple[bytes, bytes]:
    """(selector, args) of the revert data wrapped in a BridgeInboxTargetFailed(bytes reason)."""
    data = bytes.fromhex(str(exc.data)[2:])
    assert data[:4] == keccak(text="BridgeInboxTargetFailed(bytes)")[:4]
    (reason,) = abi_decode(["bytes"], data[4:])
    return reason[:4], reason[4:]


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


# ------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------


@dataclass
class Route:
    """A one-way bridge: an outbox on ``src`` and an inbox on ``dst`` trusting it, plus a receiver."""

    src: Web3
    dst: Web3
    src_name: str
    dst_name: str
    outbox: Contract
    inbox: Contract
    receiver: Contract

    @property
    def admin(self) -> str:
        return self.dst.eth.accounts[0]

    @property
    def app(self) -> str:
        """The authorized sender on the source chain (stands in for GPURental / WorkVerification)."""
        return self.src.eth.accounts[1]

    def send(self, data: bytes = b"hello", target: str | None = None) -> dict[str, Any]:
        """Sends a message through the outbox and returns it as emitted."""
        fn = self.outbox.functions.sendMessage(self.dst.eth.chain_id, target or self.receiver.address, data)
        return sent_message(self.src, self.outbox, send(fn, self.app))

    def sigs(self, msg: dict[str, Any], keys: list[str] | None = None) -> list[bytes]:
        keys = ATTESTER_KEYS[:THRESHOLD] if keys is None else keys
        return attest(keys, msg, self.dst.eth.chain_id, self.inbox.address)

    def deliver(self, msg: dict[str, Any], sigs: list[bytes] | None = None, sender: str | None = None) -> Any:
        sigs = self.sigs(msg) if sigs is None else sigs
        return send(self.inbox.functions.deliver(as_tuple(msg), sigs), sender or self.dst.eth.accounts[2])

    def try_deliver(self, msg: dict[str, Any], sigs: list[bytes]) -> None:
        """Delivers, letting a revert propagate as web3's exception (for chainkit.reverts)."""
        self.inbox.functions.deliver(as_tuple(msg), sigs).transact({"from": self.dst.eth.accounts[2]})


def make_route(src: Web3, src_name: str, dst: Web3, dst_name: str) -> Route:
    outbox = deploy(src, src_name, "BridgeOutbox", src.eth.accounts[0])
    send(outbox.functions.grantRole(SENDER_ROLE, src.eth.accounts[1]), src.eth.accounts[0])
    inbox = deploy(
        dst, dst_name, "BridgeInbox", dst.eth.accounts[0], ATTESTERS, THRESHOLD, WINDOW, MAX_PER_WINDOW
    )
    send(inbox.functions.setSource(src.eth.chain_id, outbox.address, True), dst.eth.accounts[0])
    receiver = deploy(dst, dst_name, "BridgeRecordingReceiver")
    return Route(src, dst, src_name, dst_name, outbox, inbox, receiver)


@pytest.fixture
def route(eth: Web3, etc: Web3) -> Route:
    """ETH outbox -> ETC inbox (the GPURental -> WorkVerification direction)."""
    return make_route(eth, "eth", etc, "etc")


@pytest.fixture
def back_route(eth: Web3, etc: Web3) -> Route:
    """ETC outbox -> ETH inbox (the WorkVerification -> GPURental direction)."""
    return make_route(etc, "etc", eth, "eth")


# ------------------------------------------------------------------------------------------------------
# Outbox
# ------------------------------------------------------------------------------------------------------


def test_outbox_numbers_messages_from_one_and_emits_their_hash(route: Route) -> None:
    """Nonces count from 1 per outbox; the event carries the chain-independent message hash."""
    assert route.outbox.functions.nextNonce().call() == 1
    first = route.send(b"one")
    second = route.send(b"two")
    assert (first["nonce"], second["nonce"]) == (1, 2)
    assert route.outbox.functions.nextNonce().call() == 3
    assert first["sender"] == route.app and first["dstChainId"] == ETC_ID
    # the inbox on the other chain computes the same id
    assert bytes(route.inbox.functions.messageHash(as_tuple(first)).call()) == message_hash(first)


def test_outbox_refuses_unauthorized_sender(route: Route) -> None:
    """Only SENDER_ROLE holders may send."""
    stranger = route.src.eth.accounts[3]
    with reverts("BridgeOutboxUnauthorizedSender"):
        route.outbox.functions.sendMessage(ETC_ID, route.receiver.address, b"").transact({"from": stranger})
    send(route.outbox.functions.grantRole(SENDER_ROLE, stranger), route.src.eth.accounts[0])
    send(route.outbox.functions.sendMessage(ETC_ID, route.receiver.address, b""), stranger)
    send(route.outbox.functions.revokeRole(SENDER_ROLE, stranger), route.src.eth.accounts[0])
    with reverts("BridgeOutboxUnauthorizedSender"):
        route.outbox.functions.sendMessage(ETC_ID, route.receiver.address, b"").transact({"from": stranger})


def test_outbox_primary_sender_is_a_sender_role_holder_and_saves_the_role_lookup(route: Route) -> None:
    """The admin may make a SENDER_ROLE holder the primary sender (its sends read only the nonce's slot, one cold
    storage read less); a non-holder cannot be one, and revoking the role clears it."""
    admin, stranger = route.src.eth.accounts[0], route.src.eth.accounts[3]
    with reverts("AccessControlUnauthorizedAccount"):
        route.outbox.functions.setPrimarySender(route.app).transact({"from": route.app})
    with reverts("BridgeOutboxNotASender") as err:
        route.outbox.functions.setPrimarySender(stranger).transact({"from": admin})
    assert err.args == [stranger]
    role_lookup = route.send(b"x")  # warm the nonce slot's non-zero value; then compare the same send
    before = send(route.outbox.functions.sendMessage(ETC_ID, route.receiver.address, b"y"), route.app)["gasUsed"]
    r = send(route.outbox.functions.setPrimarySender(route.app), admin)
    assert route.outbox.events.PrimarySenderChanged().process_receipt(r, errors=DISCARD)[0]["args"]["sender"] == route.app
    assert route.outbox.functions.primarySender().call() == route.app
    after = send(route.outbox.functions.sendMessage(ETC_ID, route.receiver.address, b"y"), route.app)["gasUsed"]
    assert before - after >= 2_000 and role_lookup["nonce"] == 1
    send(route.outbox.functions.revokeRole(SENDER_ROLE, route.app), admin)
    assert route.outbox.functions.primarySender().call() == ZERO
    with reverts("BridgeOutboxUnauthorizedSender"):
        route.outbox.functions.sendMessage(ETC_ID, route.receiver.address, b"").transact({"from": route.app})


def test_outbox_sender_role_is_administered_by_admin_only(route: Route) -> None:
    """A non-admin cannot grant SENDER_ROLE."""
    with reverts("AccessControlUnauthorizedAccount"):
        route.outbox.functions.grantRole(SENDER_ROLE, route.app).transact({"from": route.app})


@pytest.mark.parametrize("dst", [0, ETH_ID])
def test_outbox_refuses_invalid_destination(route: Route, dst: int) -> None:
    """Destination 0 and the outbox's own chain are refused."""
    with reverts("BridgeOutboxInvalidDestination"):
        route.outbox.functions.sendMessage(dst, route.receiver.address, b"").transact({"from": route.app})


def test_outbox_refuses_zero_target(route: Route) -> None:
    """A message must name a target."""
    with reverts("BridgeOutboxInvalidTarget"):
        route.outbox.functions.sendMessage(ETC_ID, ZERO, b"").transact({"from": route.app})


# ------------------------------------------------------------------------------------------------------
# Inbox: construction and views
# ------------------------------------------------------------------------------------------------------


def test_inbox_initial_state(route: Route) -> None:
    """Constructor sets roles, attesters, threshold, rate limit and an EIP-712 domain bound to the chain."""
    inbox = route.inbox
    assert inbox.functions.attesters().call() == ATTESTERS
    assert all(inbox.functions.isAttester(a).call() for a in ATTESTERS)
    assert not inbox.functions.isAttester(route.admin).call()
    assert inbox.functions.threshold().call() == THRESHOLD
    window, max_messages, start, used = inbox.functions.rateLimit().call()
    assert (window, max_messages, used) == (WINDOW, MAX_PER_WINDOW, 0)
    assert start == now(route.dst) - now(route.dst) % WINDOW
    assert inbox.functions.hasRole(GOVERNOR_ROLE, route.admin).call()
    assert inbox.functions.hasRole(b"\x00" * 32, route.admin).call()
    assert not inbox.functions.hasRole(GUARDIAN_ROLE, route.admin).call()
    assert inbox.functions.isTrustedSource(ETH_ID, route.outbox.address).call()
    _, name, version, chain_id, verifying, _, _ = inbox.functions.eip712Domain().call()
    assert (name, version, chain_id, verifying) == ("BlendrBridgeInbox", "1", ETC_ID, inbox.address)


def test_message_digest_matches_python_eip712(route: Route) -> None:
    """messageDigest is exactly the EIP-712 digest attesters sign (domain on the inbox's chain)."""
    msg = route.send(b"\x01\x02")
    signable = encode_typed_data(full_message=typed_message(msg, ETC_ID, route.inbox.address))
    expected = keccak(b"\x19\x01" + signable.header + signable.body)
    assert bytes(route.inbox.functions.messageDigest(as_tuple(msg)).call()) == expected


@pytest.mark.parametrize(
    ("attesters", "threshold", "error"),
    [
        ([], 0, "BridgeInboxInvalidAttesterSet"),
        (ATTESTERS, 0, "BridgeInboxInvalidAttesterSet"),
        (ATTESTERS, 6, "BridgeInboxInvalidAttesterSet"),
        (ATTESTERS, 2, "BridgeInboxInvalidAttesterSet"),  # 2 of 5 is not a majority
        ([ATTESTERS[0], ATTESTERS[0]], 2, "BridgeInboxInvalidAttester"),
        ([ATTESTERS[0], ZERO], 2, "BridgeInboxInvalidAttester"),
    ],
)
def test_inbox_constructor_rejects_invalid_attester_set(
    etc: Web3, attesters: list[str], threshold: int, error: str
) -> None:
    """The constructor applies the same attester-set checks as setAttesters."""
    with reverts(error):
        deploy(etc, "etc", "BridgeInbox", etc.eth.accounts[0], attesters, threshold, WINDOW, MAX_PER_WINDOW)


def test_inbox_constructor_rejects_invalid_rate_limit(etc: Web3) -> None:
    """The constructor applies the same rate-limit bounds as setRateLimit."""
    with reverts("BridgeInboxInvalidRateLimit"):
        deploy(etc, "etc", "BridgeInbox", etc.eth.accounts[0], ATTESTERS, THRESHOLD, 0, MAX_PER_WINDOW)


# ------------------------------------------------------------------------------------------------------
# Inbox: delivery happy paths
# ------------------------------------------------------------------------------------------------------


def test_deliver_eth_to_etc(route: Route) -> None:
    """A message sent on ETH executes on ETC with 3-of-5 signatures, calling the target once."""
    msg = route.send(b"open rental 7")
    assert not route.inbox.functions.executed(ETH_ID, route.outbox.address, 1).call()
    receipt = route.deliver(msg)
    (event,) = route.inbox.events.MessageExecuted().process_receipt(receipt, errors=DISCARD)
    assert bytes(event["args"]["messageHash"]) == message_hash(msg)
    assert (event["args"]["srcChainId"], event["args"]["nonce"]) == (ETH_ID, 1)
    assert (event["args"]["srcOutbox"], event["args"]["target"]) == (
        route.outbox.address,
        route.receiver.address,
    )
    r = route.receiver.functions
    assert r.calls().call() == 1
    assert (r.lastSrcChainId().call(), r.lastSender().call()) == (ETH_ID, route.app)
    assert (r.lastCaller().call(), bytes(r.lastData().call())) == (route.inbox.address, b"open rental 7")
    assert route.inbox.functions.executed(ETH_ID, route.outbox.address, 1).call()
    assert not route.inbox.functions.executed(ETH_ID, route.outbox.address, 2).call()
    assert route.inbox.functions.rateLimit().call()[3] == 1


def test_deliver_etc_to_eth(back_route: Route) -> None:
    """The other direction: ETC outbox -> ETH inbox (prague) works the same."""
    msg = back_route.send(b"result")
    assert msg["srcChainId"] == ETC_ID and msg["dstChainId"] == ETH_ID
    back_route.deliver(msg)
    assert back_route.receiver.functions.calls().call() == 1
    assert back_route.receiver.functions.lastSrcChainId().call() == ETC_ID


def test_deliver_accepts_all_attesters_and_out_of_order_nonces(route: Route) -> None:
    """More than threshold signatures are fine; nonces may be delivered in any order."""
    first, second = route.send(b"a"), route.send(b"b")
    route.deliver(second, route.sigs(second, ATTESTER_KEYS))
    route.deliver(first)
    assert route.receiver.functions.calls().call() == 2
    assert bytes(route.receiver.functions.lastData().call()) == b"a"


def test_nonces_across_bitmap_words(route: Route) -> None:
    """Nonces 255, 256 and 257 (two bitmap words) are tracked independently."""
    src = route.src.eth.accounts[0]
    send(route.inbox.functions.setSource(ETH_ID, src, True), route.admin)
    for nonce in (255, 256, 257):
        msg = {
            "srcChainId": ETH_ID,
            "srcOutbox": src,
            "nonce": nonce,
            "dstChainId": ETC_ID,
            "sender": route.app,
            "target": route.receiver.address,
            "data": nonce.to_bytes(2, "big"),
        }
        route.deliver(msg)
        assert route.inbox.functions.executed(ETH_ID, src, nonce).call()
        with reverts("BridgeInboxAlreadyExecuted"):
            route.try_deliver(msg, route.sigs(msg))
    assert not route.inbox.functions.executed(ETH_ID, src, 254).call()
    assert not route.inbox.functions.executed(ETH_ID, src, 258).call()


# ------------------------------------------------------------------------------------------------------
# Inbox: security scenarios
# ------------------------------------------------------------------------------------------------------


def test_replayed_message_is_refused(route: Route) -> None:
    """A delivered message cannot execute again, even with a different valid signer set."""
    msg = route.send()
    route.deliver(msg)
    with reverts("BridgeInboxAlreadyExecuted"):
        route.try_deliver(msg, route.sigs(msg))
    with reverts("BridgeInboxAlreadyExecuted"):
        route.try_deliver(msg, route.sigs(msg, ATTESTER_KEYS[2:]))
    assert route.receiver.functions.calls().call() == 1


def test_signature_for_another_chain_is_refused(route: Route) -> None:
    """Signatures made for domain chainId 31337 do not verify on chain 63 (they recover to strangers)."""
    msg = route.send()
    wrong = attest(ATTESTER_KEYS[:THRESHOLD], msg, ETH_ID, route.inbox.address)
    with reverts("BridgeInboxSignerNotAttester"):
        route.try_deliver(msg, wrong)
    assert not route.inbox.functions.executed(ETH_ID, route.outbox.address, 1).call()


def test_signature_for_another_inbox_is_refused(route: Route) -> None:
    """The domain binds the inbox address too."""
    msg = route.send()
    wrong = attest(ATTESTER_KEYS[:THRESHOLD], msg, ETC_ID, route.receiver.address)
    with reverts("BridgeInboxSignerNotAttester"):
        route.try_deliver(msg, wrong)


def test_tampered_message_is_refused(route: Route) -> None:
    """Changing any field after attestation invalidates the signatures."""
    msg = route.send(b"pay 1")
    sigs = route.sigs(msg)
    with reverts("BridgeInboxSignerNotAttester"):
        route.try_deliver({**msg, "data": b"pay 9"}, sigs)


def test_threshold_minus_one_signature_is_refused(route: Route) -> None:
    """threshold - 1 valid attester signatures are not enough."""
    msg = route.send()
    with reverts("BridgeInboxNotEnoughSignatures"):
        route.try_deliver(msg, route.sigs(msg, ATTESTER_KEYS[: THRESHOLD - 1]))
    with reverts("BridgeInboxNotEnoughSignatures"):
        route.try_deliver(msg, [])


def test_same_signer_twice_is_refused(route: Route) -> None:
    """One attester's signature repeated cannot make up the threshold."""
    msg = route.send()
    a, b = sorted_keys(ATTESTER_KEYS[:2])
    sig_a, sig_b = route.sigs(msg, [a]), route.sigs(msg, [b])
    with reverts("BridgeInboxSignersNotSorted"):
        route.try_deliver(msg, sig_a + sig_b + sig_b)
    # the malleable twin of a signature is the same signer too, but is refused earlier as high-s
    with reverts("BridgeInboxInvalidSignature"):
        route.try_deliver(msg, sig_a + sig_b + [high_s(sig_b[0])])


def test_unsorted_signers_are_refused(route: Route) -> None:
    """Signers must be strictly ascending by address."""
    msg = route.send()
    sigs = route.sigs(msg)
    with reverts("BridgeInboxSignersNotSorted"):
        route.try_deliver(msg, list(reversed(sigs)))


def test_high_s_signature_is_refused(route: Route) -> None:
    """A malleable (high-s, v flipped) twin of a valid signature is refused."""
    msg = route.send()
    sigs = route.sigs(msg)
    sigs[1] = high_s(sigs[1])
    with reverts("BridgeInboxInvalidSignature"):
        route.try_deliver(msg, sigs)
    route.deliver(msg)  # the canonical signatures still work


@pytest.mark.parametrize("bad", [b"\x01" * 64, b"", b"\x00" * 65])
def test_malformed_signature_is_refused(route: Route, bad: bytes) -> None:
    """Wrong lengths and unrecoverable signatures are refused as invalid."""
    msg = route.send()
    sigs = route.sigs(msg)
    sigs[0] = bad
    with reverts("BridgeInboxInvalidSignature"):
        route.try_deliver(msg, sigs)


def test_non_attester_signer_is_refused(route: Route) -> None:
    """A signature by a key outside the attester set is refused."""
    msg = route.send()
    with reverts("BridgeInboxSignerNotAttester"):
        route.try_deliver(msg, route.sigs(msg, [*ATTESTER_KEYS[:2], DEV_KEYS[4]]))


def test_wrong_destination_chain_is_refused(route: Route) -> None:
    """A message addressed to another chain does not execute here."""
    msg = {**route.send(), "dstChainId": 1}
    with reverts("BridgeInboxWrongChain"):
        route.try_deliver(msg, route.sigs(msg))


def test_unknown_source_is_refused(route: Route) -> None:
    """Messages from an untrusted outbox, or from a source governance distrusted, are refused."""
    msg = route.send()
    forged = {**msg, "srcOutbox": route.src.eth.accounts[5]}
    with reverts("BridgeInboxUnknownSource"):
        route.try_deliver(forged, route.sigs(forged))
    receipt = send(route.inbox.functions.setSource(ETH_ID, route.outbox.address, False), route.admin)
    (event,) = route.inbox.events.SourceChanged().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["trusted"] is False
    assert not route.inbox.functions.isTrustedSource(ETH_ID, route.outbox.address).call()
    with reverts("BridgeInboxUnknownSource"):
        route.try_deliver(msg, route.sigs(msg))
    send(route.inbox.functions.setSource(ETH_ID, route.outbox.address, True), route.admin)
    route.deliver(msg)


def test_target_without_code_is_refused(route: Route) -> None:
    """A message to an address without code does not execute (and stays deliverable)."""
    msg = route.send(target=route.dst.eth.accounts[7])
    with reverts("BridgeInboxTargetNotContract"):
        route.try_deliver(msg, route.sigs(msg))
    assert not route.inbox.functions.executed(ETH_ID, route.outbox.address, msg["nonce"]).call()


def test_rate_limit_exceeded_then_new_window(route: Route) -> None:
    """At most maxMessages per window; the next window allows deliveries again."""
    send(route.inbox.functions.setRateLimit(WINDOW, 2), route.admin)
    # start at the beginning of a fresh window so the three deliveries share it
    increase_time(route.dst, WINDOW - now(route.dst) % WINDOW)
    msgs = [route.send(bytes([i])) for i in range(4)]
    route.deliver(msgs[0])
    route.deliver(msgs[1])
    with reverts("BridgeInboxRateLimited"):
        route.try_deliver(msgs[2], route.sigs(msgs[2]))
    assert route.inbox.functions.rateLimit().call()[3] == 2
    increase_time(route.dst, WINDOW)
    assert route.inbox.functions.rateLimit().call()[3] == 0
    route.deliver(msgs[2])
    route.deliver(msgs[3])
    assert route.receiver.functions.calls().call() == 4


def test_paused_inbox_refuses_until_unpaused(route: Route) -> None:
    """The guardian pauses, deliveries revert while paused; the governor (or the guardian) unpauses."""
    guardian = route.dst.eth.accounts[3]
    send(route.inbox.functions.grantRole(GUARDIAN_ROLE, guardian), route.admin)
    msg = route.send()
    send(route.inbox.functions.pause(), guardian)
    assert route.inbox.functions.paused().call()
    with reverts("EnforcedPause"):
        route.try_deliver(msg, route.sigs(msg))
    with reverts("EnforcedPause"):
        route.inbox.functions.pause().transact({"from": guardian})
    with reverts("AccessControlUnauthorizedAccount"):
        route.inbox.functions.unpause().transact({"from": route.dst.eth.accounts[4]})
    send(route.inbox.functions.unpause(), route.admin)
    with reverts("ExpectedPause"):
        route.inbox.functions.unpause().transact({"from": route.admin})
    route.deliver(msg)
    assert route.receiver.functions.calls().call() == 1


def test_a_pause_lifts_itself_and_cannot_be_renewed_at_once(route: Route) -> None:
    """A guardian cannot freeze the inbox for good: pauses expire, and a cooldown follows each one."""
    guardian = route.dst.eth.accounts[3]
    send(route.inbox.functions.grantRole(GUARDIAN_ROLE, guardian), route.admin)
    msg = route.send()
    send(route.inbox.functions.pause(), guardian)
    max_pause = route.inbox.functions.MAX_PAUSE().call()
    cooldown = route.inbox.functions.PAUSE_COOLDOWN().call()
    assert route.inbox.functions.pausedUntil().call() == now(route.dst) + max_pause
    increase_time(route.dst, max_pause + 1)
    assert not route.inbox.functions.paused().call()
    with reverts("BridgeInboxPauseCooldown"):
        route.inbox.functions.pause().transact({"from": guardian})
    route.deliver(msg)  # the window governance's messages get
    assert route.receiver.functions.calls().call() == 1
    increase_time(route.dst, cooldown)
    send(route.inbox.functions.pause(), guardian)
    assert route.inbox.functions.paused().call()


def test_guardian_can_unpause_where_governance_arrives_through_the_inbox(route: Route) -> None:
    """On ETC governance's messages come through the paused inbox itself, so the guardian can resume."""
    guardian = route.dst.eth.accounts[3]
    send(route.inbox.functions.grantRole(GUARDIAN_ROLE, guardian), route.admin)
    send(route.inbox.functions.pause(), guardian)
    send(route.inbox.functions.unpause(), guardian)
    assert not route.inbox.functions.paused().call()
    msg = route.send()
    route.deliver(msg)
    assert route.receiver.functions.calls().call() == 1


def test_reentrant_target_cannot_execute_twice(route: Route) -> None:
    """A target that re-enters deliver() (same message, then another one) is stopped by the guard."""
    reentrant = deploy(route.dst, route.dst_name, "BridgeReentrantReceiver")
    msg = route.send(target=reentrant.address)
    sigs = route.sigs(msg)
    other = route.send(target=route.receiver.address)
    for armed, armed_sigs in ((msg, sigs), (other, route.sigs(other))):
        with snapshot(route.dst):
            send(reentrant.functions.arm(as_tuple(armed), armed_sigs), route.admin)
            route.deliver(msg, sigs)
            assert reentrant.functions.calls().call() == 1
            assert not reentrant.functions.reentrySucceeded().call()
            assert bytes(reentrant.functions.reentryError().call()) == selector(
                "ReentrancyGuardReentrantCall()"
            )
            assert route.receiver.functions.calls().call() == 0
            assert not route.inbox.functions.executed(ETH_ID, route.outbox.address, other["nonce"]).call()
            with reverts("BridgeInboxAlreadyExecuted"):
                route.try_deliver(msg, sigs)


def test_reverting_target_leaves_message_deliverable(route: Route) -> None:
    """If the target reverts the delivery reverts with its reason; once it stops, the message executes."""
    target = deploy(route.dst, route.dst_name, "BridgeRevertingReceiver")
    msg = route.send(target=target.address)
    sigs = route.sigs(msg)
    with pytest.raises(ContractCustomError) as info:
        route.try_deliver(msg, sigs)
    sel, args = inner_error(info.value)
    assert sel == selector("BridgeRevertingReceiverRefused(uint256)")
    assert abi_decode(["uint256"], args) == (ETH_ID,)
    assert not route.inbox.functions.executed(ETH_ID, route.outbox.address, msg["nonce"]).call()
    assert route.inbox.functions.rateLimit().call()[3] == 0
    send(target.functions.setReverting(False), route.admin)
    route.deliver(msg, sigs)
    assert target.functions.calls().call() == 1
    with reverts("BridgeInboxAlreadyExecuted"):
        route.try_deliver(msg, sigs)


# ------------------------------------------------------------------------------------------------------
# Inbox: governance
# ------------------------------------------------------------------------------------------------------


def test_set_attesters_fully_replaces_the_set(route: Route) -> None:
    """Old attesters lose their power; the new set and threshold apply at once."""
    new_keys = DEV_KEYS[2:5]
    new = [Account.from_key(k).address for k in new_keys]
    receipt = send(route.inbox.functions.setAttesters(new, 2), route.admin)
    (event,) = route.inbox.events.AttestersChanged().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["attesters"], event["args"]["threshold"]) == (new, 2)
    assert route.inbox.functions.attesters().call() == new
    assert route.inbox.functions.threshold().call() == 2
    assert not any(route.inbox.functions.isAttester(a).call() for a in ATTESTERS)
    msg = route.send()
    with reverts("BridgeInboxSignerNotAttester"):
        route.try_deliver(msg, route.sigs(msg, ATTESTER_KEYS[:THRESHOLD]))
    with reverts("BridgeInboxNotEnoughSignatures"):
        route.try_deliver(msg, route.sigs(msg, new_keys[:1]))
    route.deliver(msg, route.sigs(msg, new_keys[:2]))
    # a set that keeps some old members works too
    send(route.inbox.functions.setAttesters([new[0], ATTESTERS[0]], 2), route.admin)
    assert [route.inbox.functions.isAttester(a).call() for a in new] == [True, False, False]


@pytest.mark.parametrize(
    ("count", "threshold", "error"),
    [
        (0, 0, "BridgeInboxInvalidAttesterSet"),
        (3, 0, "BridgeInboxInvalidAttesterSet"),
        (3, 1, "BridgeInboxInvalidAttesterSet"),  # a minority
        (4, 2, "BridgeInboxInvalidAttesterSet"),  # half is not a majority
        (3, 4, "BridgeInboxInvalidAttesterSet"),
        (33, 17, "BridgeInboxInvalidAttesterSet"),
    ],
)
def test_set_attesters_rejects_invalid_sizes(route: Route, count: int, threshold: int, error: str) -> None:
    """Size 1..32 and a threshold that is a majority of the set (n/2 < threshold <= n) are enforced."""
    addrs = [Web3.to_checksum_address((i + 1).to_bytes(20, "big")) for i in range(count)]
    with reverts(error):
        route.inbox.functions.setAttesters(addrs, threshold).transact({"from": route.admin})


def test_set_attesters_accepts_the_maximum(route: Route) -> None:
    """Exactly 32 attesters is allowed."""
    addrs = [Web3.to_checksum_address((i + 1).to_bytes(20, "big")) for i in range(32)]
    send(route.inbox.functions.setAttesters(addrs, 32), route.admin)
    assert len(route.inbox.functions.attesters().call()) == 32


@pytest.mark.parametrize("bad", ["duplicate", "zero"])
def test_set_attesters_rejects_zero_and_duplicates(route: Route, bad: str) -> None:
    """No zero address, no duplicate (including one duplicated from the old set)."""
    second = ATTESTERS[0] if bad == "duplicate" else ZERO
    with reverts("BridgeInboxInvalidAttester"):
        route.inbox.functions.setAttesters([ATTESTERS[0], second], 2).transact({"from": route.admin})
    assert route.inbox.functions.attesters().call() == ATTESTERS


def test_set_rate_limit(route: Route) -> None:
    """The governor sets the rate limit within bounds; an event records it."""
    receipt = send(route.inbox.functions.setRateLimit(86400, 7), route.admin)
    (event,) = route.inbox.events.RateLimitChanged().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["window"], event["args"]["maxMessages"]) == (86400, 7)
    assert route.inbox.functions.rateLimit().call()[:2] == [86400, 7]
    send(route.inbox.functions.setRateLimit(30 * 86400, 2**32 - 1), route.admin)


@pytest.mark.parametrize(("window", "max_messages"), [(0, 1), (30 * 86400 + 1, 1), (60, 0), (60, 2**32)])
def test_set_rate_limit_rejects_out_of_bounds(route: Route, window: int, max_messages: int) -> None:
    """Window 1 s..30 days and 1..2^32-1 messages."""
    with reverts("BridgeInboxInvalidRateLimit"):
        route.inbox.functions.setRateLimit(window, max_messages).transact({"from": route.admin})


@pytest.mark.parametrize(
    ("chain", "outbox"), [(0, "0x" + "11" * 20), (ETC_ID, "0x" + "11" * 20), (ETH_ID, ZERO)]
)
def test_set_source_rejects_invalid(route: Route, chain: int, outbox: str) -> None:
    """A source needs a foreign, non-zero chain id and a non-zero outbox."""
    with reverts("BridgeInboxInvalidSource"):
        route.inbox.functions.setSource(chain, Web3.to_checksum_address(outbox), True).transact(
            {"from": route.admin}
        )


@pytest.mark.parametrize(
    "call",
    [
        lambda i: i.functions.setAttesters(ATTESTERS, 2),
        lambda i: i.functions.setRateLimit(60, 1),
        lambda i: i.functions.setSource(1, ATTESTERS[0], True),
        lambda i: i.functions.pause(),
        lambda i: i.functions.unpause(),
    ],
)
def test_privileged_functions_need_their_role(route: Route, call: Any) -> None:
    """Setters and unpause need GOVERNOR_ROLE, pause needs GUARDIAN_ROLE (the admin lacks it)."""
    stranger = route.dst.eth.accounts[4]
    with reverts("AccessControlUnauthorizedAccount"):
        call(route.inbox).transact({"from": stranger})
    if call(route.inbox).fn_name == "pause":
        with reverts("AccessControlUnauthorizedAccount"):
            call(route.inbox).transact({"from": route.admin})


# ------------------------------------------------------------------------------------------------------
# Governance executor
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def governed(route: Route) -> tuple[Route, Contract, str]:
    """ETC inbox owned by a BridgeGovernanceExecutor that obeys the ETH "timelock" (account 6 on ETH)."""
    timelock = route.src.eth.accounts[6]
    send(route.outbox.functions.grantRole(SENDER_ROLE, timelock), route.src.eth.accounts[0])
    executor = deploy(route.dst, "etc", "BridgeGovernanceExecutor", route.inbox.address, ETH_ID, timelock)
    inbox, admin = route.inbox, route.admin
    send(inbox.functions.grantRole(GOVERNOR_ROLE, executor.address), admin)
    send(inbox.functions.grantRole(b"\x00" * 32, executor.address), admin)
    send(inbox.functions.renounceRole(GOVERNOR_ROLE, admin), admin)
    send(inbox.functions.renounceRole(b"\x00" * 32, admin), admin)
    return route, executor, timelock


def gov_send(
    route: Route, timelock: str, executor: Contract, target: str, call_data: bytes
) -> dict[str, Any]:
    """The timelock sends a governance call for ETC through the ETH outbox."""
    payload = abi_encode(["address", "uint256", "bytes"], [target, 0, call_data])
    fn = route.outbox.functions.sendMessage(ETC_ID, executor.address, payload)
    return sent_message(route.src, route.outbox, send(fn, timelock))


def test_governance_executor_changes_etc_parameter(governed: tuple[Route, Contract, str]) -> None:
    """A rate-limit change voted on ETH is carried over the bridge and applied on ETC by the executor."""
    route, executor, timelock = governed
    assert executor.functions.inbox().call() == route.inbox.address
    assert (executor.functions.govChainId().call(), executor.functions.govSender().call()) == (
        ETH_ID,
        timelock,
    )
    call_data = route.inbox.encode_abi("setRateLimit", [7200, 5])
    msg = gov_send(route, timelock, executor, route.inbox.address, bytes.fromhex(call_data[2:]))
    receipt = route.deliver(msg)
    (event,) = executor.events.GovernanceCallExecuted().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["target"] == route.inbox.address
    assert route.inbox.functions.rateLimit().call()[:2] == [7200, 5]
    # the former admin no longer can
    with reverts("AccessControlUnauthorizedAccount"):
        route.inbox.functions.setRateLimit(60, 1).transact({"from": route.admin})


def test_governance_executor_failed_call_reverts_delivery(governed: tuple[Route, Contract, str]) -> None:
    """An invalid parameter change reverts the whole delivery with the target's error inside."""
    route, executor, timelock = governed
    call_data = route.inbox.encode_abi("setRateLimit", [0, 5])
    msg = gov_send(route, timelock, executor, route.inbox.address, bytes.fromhex(call_data[2:]))
    with pytest.raises(ContractCustomError) as info:
        route.try_deliver(msg, route.sigs(msg))
    sel, args = inner_error(info.value)
    assert sel == selector("BridgeGovernanceExecutorCallFailed(address,bytes)")
    target, reason = abi_decode(["address", "bytes"], args)
    assert Web3.to_checksum_address(target) == route.inbox.address
    assert reason[:4] == selector("BridgeInboxInvalidRateLimit(uint64,uint64)")
    assert not route.inbox.functions.executed(ETH_ID, route.outbox.address, msg["nonce"]).call()


def test_governance_executor_ignores_other_senders(governed: tuple[Route, Contract, str]) -> None:
    """A message to the executor from an authorized but non-governance ETH sender is refused."""
    route, executor, _ = governed
    call_data = route.inbox.encode_abi("setRateLimit", [7200, 5])
    payload = abi_encode(
        ["address", "uint256", "bytes"], [route.inbox.address, 0, bytes.fromhex(call_data[2:])]
    )
    msg = route.send(payload, target=executor.address)
    with pytest.raises(ContractCustomError) as info:
        route.try_deliver(msg, route.sigs(msg))
    sel, _ = inner_error(info.value)
    assert sel == selector("BridgeGovernanceExecutorUnauthorizedSource(uint256,address)")


@pytest.fixture
def bare_executor(etc: Web3) -> tuple[Contract, str, str]:
    """An executor whose "inbox" is the EOA account 1, so tests can call it directly."""
    inbox, gov = etc.eth.accounts[1], etc.eth.accounts[2]
    return deploy(etc, "etc", "BridgeGovernanceExecutor", inbox, ETH_ID, gov), inbox, gov


def test_governance_executor_refuses_other_callers(bare_executor: tuple[Contract, str, str]) -> None:
    """Only the inbox may call onBridgeMessage."""
    executor, _, gov = bare_executor
    payload = abi_encode(["address", "uint256", "bytes"], [gov, 0, b""])
    with reverts("BridgeGovernanceExecutorUnauthorizedCaller"):
        executor.functions.onBridgeMessage(ETH_ID, gov, payload).transact({"from": gov})


@pytest.mark.parametrize("which", ["chain", "sender"])
def test_governance_executor_refuses_other_sources(
    bare_executor: tuple[Contract, str, str], which: str
) -> None:
    """Only (govChainId, govSender) is obeyed."""
    executor, inbox, gov = bare_executor
    chain, sender = (1, gov) if which == "chain" else (ETH_ID, inbox)
    payload = abi_encode(["address", "uint256", "bytes"], [gov, 0, b""])
    with reverts("BridgeGovernanceExecutorUnauthorizedSource"):
        executor.functions.onBridgeMessage(chain, sender, payload).transact({"from": inbox})


def test_governance_executor_refuses_calldata_to_non_contract(
    bare_executor: tuple[Contract, str, str],
) -> None:
    """Call data sent to an address without code is a mistake, not a silent success."""
    executor, inbox, gov = bare_executor
    payload = abi_encode(["address", "uint256", "bytes"], [gov, 0, b"\x12\x34\x56\x78"])
    with reverts("BridgeGovernanceExecutorTargetNotContract"):
        executor.functions.onBridgeMessage(ETH_ID, gov, payload).transact({"from": inbox})


def test_governance_executor_sends_value(etc: Web3, bare_executor: tuple[Contract, str, str]) -> None:
    """The executor holds native currency and can pay it out when governance says so."""
    executor, inbox, gov = bare_executor
    payee = etc.eth.accounts[8]
    etc.eth.wait_for_transaction_receipt(
        etc.eth.send_transaction(
            {"from": etc.eth.accounts[0], "to": executor.address, "value": Web3.to_wei(1, "ether")}
        )
    )
    before = etc.eth.get_balance(payee)
    payload = abi_encode(["address", "uint256", "bytes"], [payee, 4 * 10**17, b""])
    send(executor.functions.onBridgeMessage(ETH_ID, gov, payload), inbox)
    assert etc.eth.get_balance(payee) - before == 4 * 10**17
    assert etc.eth.get_balance(executor.address) == 6 * 10**17
    too_much = abi_encode(["address", "uint256", "bytes"], [payee, 10**18, b""])
    with reverts("BridgeGovernanceExecutorCallFailed"):
        executor.functions.onBridgeMessage(ETH_ID, gov, too_much).transact({"from": inbox})


@pytest.mark.parametrize(
    ("inbox", "chain", "gov"),
    [
        (ZERO, ETH_ID, "0x" + "22" * 20),
        ("0x" + "11" * 20, 0, "0x" + "22" * 20),
        ("0x" + "11" * 20, ETC_ID, "0x" + "22" * 20),
        ("0x" + "11" * 20, ETH_ID, ZERO),
    ],
)
def test_governance_executor_rejects_invalid_config(etc: Web3, inbox: str, chain: int, gov: str) -> None:
    """Inbox and governance sender must be set, and the governance chain must be another chain."""
    with reverts("BridgeGovernanceExecutorInvalidConfig"):
        deploy(
            etc,
            "etc",
            "BridgeGovernanceExecutor",
            Web3.to_checksum_address(inbox),
            chain,
            Web3.to_checksum_address(gov),
        )


# ------------------------------------------------------------------------------------------------------
# Invariant: each message executes at most once; the receiver saw exactly the distinct delivered messages
# ------------------------------------------------------------------------------------------------------


def test_stateful_deliveries_execute_each_message_at_most_once(route: Route) -> None:
    """Random deliveries, replays and bad signer sets never execute a message twice or a bad one at all."""
    w3, inbox, receiver = route.dst, route.inbox, route.receiver
    msgs = [route.send(bytes([i]) * (i + 1)) for i in range(3)]
    good = [route.sigs(m) for m in msgs]
    stranger_key = DEV_KEYS[4]
    relayer = w3.eth.accounts[2]
    # signing is the slow part: sign every (message, key) pair once
    keys = [*ATTESTER_KEYS, stranger_key]
    signed = {(i, k): sign(k, m, ETC_ID, inbox.address) for i, m in enumerate(msgs) for k in keys}

    def sigs_of(i: int, keys: list[str]) -> list[bytes]:
        return [signed[i, k] for k in keys]

    def attempt(msg: dict[str, Any], sigs: list[bytes]) -> str | None:
        """Delivers; returns the custom error name on revert, None on success."""
        try:
            send(inbox.functions.deliver(as_tuple(msg), sigs), relayer)
        except ContractCustomError as exc:
            return error_name(exc)
        return None

    class Deliveries(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snap = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
            self.delivered: set[int] = set()

        def teardown(self) -> None:
            w3.provider.make_request("evm_revert", [self.snap])  # type: ignore[arg-type]

        @rule(i=st.integers(0, len(msgs) - 1), signers=st.sets(st.integers(0, 4), min_size=THRESHOLD))
        def deliver_valid(self, i: int, signers: set[int]) -> None:
            sigs = sigs_of(i, sorted_keys([ATTESTER_KEYS[j] for j in signers]))
            err = attempt(msgs[i], sigs)
            if i in self.delivered:
                assert err == "BridgeInboxAlreadyExecuted"
            else:
                assert err is None
                self.delivered.add(i)

        @rule(i=st.integers(0, len(msgs) - 1))
        def replay_known_good(self, i: int) -> None:
            err = attempt(msgs[i], good[i])
            if i in self.delivered:
                assert err == "BridgeInboxAlreadyExecuted"
            else:
                assert err is None
                self.delivered.add(i)

        @rule(
            i=st.integers(0, len(msgs) - 1),
            signers=st.lists(st.integers(0, 4), max_size=5),
            stranger=st.booleans(),
            shuffle=st.booleans(),
        )
        def deliver_bad_signers(self, i: int, signers: list[int], stranger: bool, shuffle: bool) -> None:
            keys = [ATTESTER_KEYS[j] for j in signers] + ([stranger_key] if stranger else [])
            ordered = sorted_keys(keys)
            if shuffle:
                ordered.reverse()
            addrs = [int(Account.from_key(k).address, 16) for k in ordered]
            valid = (
                len(ordered) >= THRESHOLD
                and not stranger
                and all(a < b for a, b in itertools.pairwise(addrs))
            )
            sigs = sigs_of(i, ordered)
            err = attempt(msgs[i], sigs)
            if i in self.delivered:
                assert err == "BridgeInboxAlreadyExecuted"
            elif valid:
                assert err is None
                self.delivered.add(i)
            else:
                assert err in {
                    "BridgeInboxNotEnoughSignatures",
                    "BridgeInboxSignerNotAttester",
                    "BridgeInboxSignersNotSorted",
                }

        @invariant()
        def executed_at_most_once(self) -> None:
            assert receiver.functions.calls().call() == len(self.delivered)
            for i, m in enumerate(msgs):
                key = keccak(
                    abi_encode(["uint256", "address", "bytes"], [m["srcChainId"], m["sender"], m["data"]])
                )
                assert receiver.functions.timesReceived(key).call() == (1 if i in self.delivered else 0)
                assert inbox.functions.executed(ETH_ID, route.outbox.address, m["nonce"]).call() == (
                    i in self.delivered
                )

    run_state_machine_as_test(
        Deliveries, settings=settings(max_examples=12, stateful_step_count=6, deadline=None)
    )
