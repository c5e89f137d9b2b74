"""Bridge attestations at the chain adapter: a malformed signature is a SignatureError, and delivery hands the
inbox only canonical signatures (low s, v 27/28) of current attesters."""

from __future__ import annotations

import pytest
from eth_account import Account

from blendr.chain.bridge import BridgeMessage, attest, recover_attester
from blendr.chain.relay import deliver_message
from blendr.errors import SignatureError
from blendr.identity import SECP256K1_N
from tests.fakes.bridge_inbox import FakeInbox

INBOX = "0x" + "ec" * 20
A, B = Account.from_key(b"\x01" * 32), Account.from_key(b"\x02" * 32)
MSG = BridgeMessage(31337, "0x" + "e1" * 20, 1, 63, "0x" + "5e" * 20, "0x" + "7a" * 20, b"open rental")


@pytest.mark.parametrize("bad", [b"", b"\x00" * 64, b"\x00" * 65, b"\xff" * 65, b"\x01" * 64 + bytes([5])])
def test_a_malformed_attestation_is_a_signature_error(bad: bytes) -> None:
    with pytest.raises(SignatureError, match="bad attestation signature"):
        recover_attester(MSG, INBOX, bad)


def test_a_good_attestation_recovers_its_signer() -> None:
    assert recover_attester(MSG, INBOX, attest(A, MSG, INBOX)) == A.address


def test_delivery_sends_canonical_signatures_whatever_the_encoding_of_v() -> None:
    inbox = FakeInbox(INBOX, [A.address, B.address], k=2)
    sigs = {acct.address: attest(acct, MSG, INBOX) for acct in (A, B)}
    as_ids = {k: s[:64] + bytes([s[64] - 27]) for k, s in sigs.items()}  # v 0/1
    as_eip155 = {k: s[:64] + bytes([s[64] - 27 + 35 + 2 * 63]) for k, s in sigs.items()}
    out = deliver_message(inbox, MSG, as_ids)  # type: ignore[arg-type]  # a fake inbox
    assert out.state == "delivered" and inbox.executions == {MSG.message_hash: 1}
    assert deliver_message(inbox, MSG, as_eip155).state == "already"  # type: ignore[arg-type]


def test_delivery_leaves_out_malleated_malformed_and_misfiled_signatures() -> None:
    inbox = FakeInbox(INBOX, [A.address, B.address], k=2)
    a, b = attest(A, MSG, INBOX), attest(B, MSG, INBOX)
    high_s = b[:32] + (SECP256K1_N - int.from_bytes(b[32:64], "big")).to_bytes(32, "big") + bytes([55 - b[64]])
    for b_sig in (high_s, b"\x00" * 65, a, b[:64]):  # malleated, malformed, A's under B's name, short
        out = deliver_message(inbox, MSG, {A.address: a, B.address: b_sig})  # type: ignore[arg-type]
        assert (out.state, out.signatures, out.threshold) == ("short", 1, 2)
    assert "deliver" not in inbox.calls and inbox.executions == {}
