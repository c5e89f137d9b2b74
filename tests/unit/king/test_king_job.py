"""The job record: its state machine (every pair of states), its stored form, and the intents it signs."""

from __future__ import annotations

import itertools
import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.chain.contracts import RentalIntent
from blendr.jobspec import Spec
from king.job import (
    TRANSITIONS,
    Attempt,
    IllegalTransitionError,
    IntentRecord,
    Job,
    JobId,
    JobState,
    PermitDoc,
    RentalRecord,
    check_job_id,
    job_id_of,
)
from king.rentals import intent_digest, intent_signer

RENTAL = "0x00000000000000000000000000000000000Be7A1"


def job(state: JobState = JobState.QUEUED) -> Job:
    return Job(job_id=JobId("j-" + "0" * 20), request_id="r" * 16, renter=Account.create().address, name="n",
               spec=Spec(gpus=2, duration_s=3600, max_price_per_gpu_hour=10**18, gpu_model="h100-sxm"),
               spec_hash=os.urandom(32), fingerprint="f", intents=[IntentRecord(1, 2, b"s" * 65)], permit=None,
               candidates=[], submitted=1.0, state=state)


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(JobState, JobState)))
def test_every_pair_of_states_is_allowed_exactly_when_the_table_says(src: JobState, dst: JobState) -> None:
    j = job(src)
    if dst in TRANSITIONS[src]:
        j.move_to(dst)
        assert j.state == dst
    else:
        with pytest.raises(IllegalTransitionError):
            j.move_to(dst)
        assert j.state == src  # an illegal transition changes nothing


def test_every_state_is_reachable_from_queued_and_every_path_ends_settled() -> None:
    seen, todo = {JobState.QUEUED}, [JobState.QUEUED]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(JobState)
    assert TRANSITIONS[JobState.SETTLED] == frozenset()
    for s in JobState:  # nothing is a dead end but settled
        assert TRANSITIONS[s] or s == JobState.SETTLED


def test_a_job_round_trips_through_its_stored_document() -> None:
    j = job(JobState.RUNNING)
    j.permit = PermitDoc(10**20, 123, 27, os.urandom(32), os.urandom(32))
    j.current = Attempt(3, "0xP", "0xQ", 5 * 10**17, 0, "ab" * 32, 99.5, 7)
    j.rentals = [RentalRecord("ab" * 32, "0xP", "0xQ", 5 * 10**17, 10**18, "0xtx", 10, 10.5, 3600, "settled", 60,
                              True, 1, 2, 3, "0xs", 4)]
    j.excluded, j.last_seq, j.logs, j.progress = ["0xX"], 12, 3, 0.25
    assert Job.from_doc(j.to_doc()) == j


def test_job_ids_are_checked_before_any_lookup() -> None:
    jid = job_id_of(Account.create().address, "r" * 16)
    assert check_job_id(jid) == jid
    for bad in ("", "j-" + "0" * 19, "j-" + "0" * 19 + "\x00", "j-" + "G" * 20, "x" * 22, "j-" + "0" * 2000):
        assert check_job_id(bad) == ""


@settings(max_examples=30, deadline=None)
@given(gpus=st.integers(0, 2**32 - 1), price=st.integers(0, 2**256 - 1), duration=st.integers(0, 2**64 - 1),
       nonce=st.integers(0, 2**256 - 1), deadline=st.integers(0, 2**64 - 1), chain_id=st.integers(1, 2**64),
       spec_hash=st.binary(min_size=32, max_size=32), root=st.binary(min_size=32, max_size=32),
       scheduler=st.binary(min_size=20, max_size=20))
def test_the_intent_digest_is_the_eip712_hash_eth_account_signs(gpus: int, price: int, duration: int, nonce: int,
                                                                deadline: int, chain_id: int, spec_hash: bytes,
                                                                root: bytes, scheduler: bytes) -> None:
    acct = Account.create()
    it = RentalIntent(acct.address, "0x" + "00" * 20, gpus, spec_hash, price, duration, nonce, deadline, root,
                      "0x" + scheduler.hex())
    signable = encode_typed_data(full_message=it.typed_data(chain_id, RENTAL))
    from eth_utils import keccak

    assert intent_digest(it, chain_id, RENTAL) == bytes(keccak(b"\x19" + signable.version + signable.header
                                                               + signable.body))
    sig = it.sign(acct, chain_id, RENTAL)
    assert intent_signer(it, sig, chain_id, RENTAL) == acct.address


def test_a_jobs_intents_bind_its_candidates_and_each_candidate_has_a_proof() -> None:
    """The root the king rebuilds from a job's candidates is the renter's (order and case do not matter), and
    every candidate's proof verifies against it as GPURental checks it; a non-candidate has none."""
    from blendr.chain.contracts import candidates_root, is_candidate

    cands = [Account.create().address for _ in range(5)]
    root = candidates_root([c.lower() for c in reversed(cands)])
    spec = Spec(gpus=1, duration_s=3600, max_price_per_gpu_hour=10**18)
    job = Job(job_id=JobId("j-" + "0" * 20), request_id="r", renter=Account.create().address, name="", spec=spec,
              spec_hash=bytes(32), fingerprint="", intents=[IntentRecord(1, 2**40, b"")], permit=None,
              candidates=sorted(cands), submitted=0.0, scheduler="0x" + "5c" * 20)
    intent = job.intent(0)
    assert intent.candidates_root == root and intent.scheduler == "0x" + "5c" * 20
    for c in cands:
        assert is_candidate(root, c, job.candidate_proof(c))
        assert not is_candidate(root, c, job.candidate_proof(cands[0] if c != cands[0] else cands[1]))
    stranger = Account.create().address
    assert job.candidate_proof(stranger) == [] and not is_candidate(root, stranger, [])
    assert Job.from_doc(job.to_doc()).intent(0) == intent


def test_signatures_the_contract_would_refuse_recover_no_one() -> None:
    acct = Account.create()
    it = RentalIntent(acct.address, "0x" + "00" * 20, 1, os.urandom(32), 10**18, 3600, 5, 2**40, os.urandom(32),
                      "0x" + "5c" * 20)
    sig = it.sign(acct, 1, RENTAL)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    high_s = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])  # same signer, malleated
    for bad in (sig[:64] + bytes([sig[64] - 27]), high_s, sig[:64], sig + b"\x00", bytes(65), b"\xff" * 65):
        assert intent_signer(it, bad, 1, RENTAL) == ""
    assert intent_signer(it, sig, 2, RENTAL) != acct.address  # another chain's domain
