"""The king's proposal book: answers from memory, newest first, filters, refuses bad ids and limits."""

from __future__ import annotations

import pytest

from blendr.chain.governing import Call, Proposal, ProposalState
from blendr.errors import InvalidArgumentError, NotFoundError, UnavailableError
from king import convert
from king.governance import ProposalBook
from protos.blendr.v1 import renter_pb2 as rpb


def _p(pid: int, state: ProposalState) -> Proposal:
    return Proposal(pid, "0x" + "11" * 20, f"proposal {pid}", state, 30, 2, 1, 10, 100 + pid, 120 + pid, 0, 99,
                    [Call("0x" + "22" * 20, 0, b"\x01\x02", "set rental.fee_bps to 300 bps (3%)")])


class Source:
    def __init__(self) -> None:
        self.proposals = [_p(1, ProposalState.EXECUTED), _p(2, ProposalState.ACTIVE)]
        self.down = False

    def read(self) -> list[Proposal]:
        if self.down:
            raise UnavailableError("eth down")
        return list(self.proposals)


def test_lists_newest_first_and_filters_by_state() -> None:
    src = Source()
    book = ProposalBook(src.read, lambda: 321)
    assert book.list() == []  # nothing until the first refresh
    book.refresh()
    assert [p.proposal_id for p in book.list()] == [2, 1]
    assert [p.proposal_id for p in book.list({ProposalState.EXECUTED})] == [1]
    assert [p.proposal_id for p in book.list(limit=1)] == [2]
    assert book.as_of_block == 321
    assert book.get("1").state is ProposalState.EXECUTED


def test_bad_ids_and_limits_are_invalid_unknown_ids_not_found() -> None:
    book = ProposalBook(Source().read, lambda: 1)
    book.refresh()
    for bad in ("", "0x01", "-1", "1e3", "1" * 79):
        with pytest.raises(InvalidArgumentError):
            book.get(bad)
    with pytest.raises(NotFoundError):
        book.get("3")
    with pytest.raises(InvalidArgumentError):
        book.list(limit=501)


def test_a_failed_refresh_keeps_the_last_list() -> None:
    src = Source()
    book = ProposalBook(src.read, lambda: 1)
    book.refresh()
    src.down = True
    with pytest.raises(UnavailableError):
        book.refresh()
    assert len(book.list()) == 2


def test_proto_carries_state_tallies_and_calls() -> None:
    pb = convert.proposal_to_proto(_p(2, ProposalState.ACTIVE))
    assert (pb.proposal_id, pb.state, pb.votes_for, pb.votes_against, pb.votes_abstain, pb.quorum) == (
        "2", rpb.PROPOSAL_STATE_ACTIVE, "30", "2", "1", "10")
    assert pb.calls[0].text == "set rental.fee_bps to 300 bps (3%)" and pb.calls[0].calldata == b"\x01\x02"
    # the governor's clock is timestamps: unix deadlines in the new fields, the old block fields left 0
    assert (pb.snapshot_unix, pb.deadline_unix, pb.snapshot_block, pb.deadline_block) == (102, 122, 0, 0)
    assert convert.proposal_states_from_proto([rpb.PROPOSAL_STATE_QUEUED, rpb.PROPOSAL_STATE_UNSPECIFIED, 99]) == {
        ProposalState.QUEUED}
