"""What a rental's settlement waits for on the bridge, as the king tells a renter (AttestationBook.rental_wait)."""

from __future__ import annotations

from eth_abi import encode

from blendr.chain.bridge import BridgeMessage
from blendr.clock import ManualClock
from blendr.store import MemoryStore
from king.bridge import CLOSE_MSG, OPEN_MSG, RESULT_MSG, rental_message
from tests.unit.king.test_bridge import ATTESTERS, ETC, ETH, ETH_OUTBOX, FakeInbox, book_over, sig

RID = 0xABC


def rental_msg(kind: int, rental_id: int, nonce: int) -> BridgeMessage:
    """A RentalMessages payload as GPURental/WorkVerification encode it: abi.encode(uint8, bytes(abi.encode(struct)))."""
    body = encode(["uint256", "uint64"], [rental_id, 123])
    return BridgeMessage(ETH, ETH_OUTBOX, nonce, ETC, "0x" + "5e" * 20, "0x" + "7a" * 20,
                         encode(["uint8", "bytes"], [kind, body]))


def test_rental_messages_are_recognised_by_kind_and_rental() -> None:
    for kind in (OPEN_MSG, CLOSE_MSG, RESULT_MSG):
        assert rental_message(rental_msg(kind, RID, 1).data) == (kind, RID)
    assert rental_message(b"open rental") is None
    assert rental_message(encode(["uint8", "bytes"], [9, encode(["uint256"], [RID])])) is None  # feedback etc.


def test_a_rental_says_how_many_attestations_its_bridge_message_has_until_it_is_delivered() -> None:
    store, clock = MemoryStore(), ManualClock()
    inbox = FakeInbox("0x" + "ec" * 20, [a.address for a in ATTESTERS], k=2)
    book = book_over(store, inbox, clock)
    assert book.rental_wait(RID) == ""  # nothing of it reached this king
    result = rental_msg(RESULT_MSG, RID, 7)
    book.submit(result, sig(ATTESTERS[0], result))
    assert book.rental_wait(RID) == "its verification result is waiting for the bridge (1 of 2 attestations)"
    assert book_over(store, inbox, clock).rental_wait(RID) == (  # a restarted king knows it (threshold unread)
        "its verification result is waiting for the bridge (1 attestation so far)")
    book.submit(result, sig(ATTESTERS[1], result))
    assert book.rental_wait(RID).startswith("its verification result is being delivered over the bridge (try 1")
    book.deliver_due()
    assert book.rental_wait(RID) == ""  # delivered: the settlement follower takes it from here
    assert book.rental_wait(RID + 1) == ""
