"""ReputationSystem on a real ETC anvil (chain id 63, shanghai): outcomes from the recorder, renter feedback from
the bridge, the documented score formula, and who may change what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tests.contracts.chainkit import deploy, reverts, send

ETH_CHAIN_ID = 31337
OPEN, FEEDBACK = 1, 4
GOVERNOR_ROLE = keccak(text="GOVERNOR_ROLE")
RECORDER_ROLE = keccak(text="RECORDER_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32
DEFAULT_PARAMS = (100, 5, 5, 5_000, 3_000, 2_000)  # priors: challenges, tasks, ratings; weights in bps
ZERO = "0x" + "00" * 20


def feedback_msg(rental_id: int, provider: str, renter: str, rating: int) -> bytes:
    body = encode(["uint256", "address", "address", "uint8"], [rental_id, provider, renter, rating])
    return encode(["uint8", "bytes"], [FEEDBACK, body])


def expected_score(stats: tuple[int, ...], params: tuple[int, ...] = DEFAULT_PARAMS) -> int:
    """The formula documented in ReputationSystem.sol, in integer arithmetic."""
    issued, passed, _failed, _missed, tasks, tasks_failed, ratings, rating_sum = stats
    cp, tp, rp, cw, tw, rw = params
    challenge = (passed * 10_000 + cp * 5_000) // (issued + cp)
    task = ((tasks - tasks_failed) * 10_000 + tp * 5_000) // (tasks + tp)
    rating = ((rating_sum - ratings) * 2_500 + rp * 5_000) // (ratings + rp)
    return (cw * challenge + tw * task + rw * rating) // 10_000


@dataclass
class Env:
    w3: Web3
    rep: Contract
    admin: str
    recorder: str
    inbox: str
    provider: str
    provider2: str
    renter: str
    stranger: str
    gpu_rental: str

    def feedback(
        self,
        rental_id: int,
        rating: int,
        *,
        provider: str | None = None,
        sender: str | None = None,
        src_chain: int = ETH_CHAIN_ID,
        caller: str | None = None,
    ) -> Any:
        data = feedback_msg(rental_id, provider or self.provider, self.renter, rating)
        fn = self.rep.functions.onBridgeMessage(src_chain, sender or self.gpu_rental, data)
        return send(fn, caller or self.inbox)

    def outcome(
        self,
        issued: int,
        passed: int,
        failed_count: int,
        missed: int,
        failed: bool = False,
        *,
        provider: str | None = None,
        caller: str | None = None,
    ) -> Any:
        fn = self.rep.functions.recordOutcome(
            provider or self.provider, issued, passed, failed_count, missed, failed
        )
        return send(fn, caller or self.recorder)

    def stats(self, provider: str | None = None) -> tuple[int, ...]:
        return tuple(self.rep.functions.statsOf(provider or self.provider).call())

    def score(self, provider: str | None = None) -> int:
        return int(self.rep.functions.score(provider or self.provider).call())


def make_env(w3: Web3) -> Env:
    a: list[str] = list(w3.eth.accounts)
    admin, recorder, inbox, provider, provider2, renter, stranger = a[:7]
    gpu_rental = a[9]
    rep = deploy(w3, "etc", "ReputationSystem", admin)
    send(rep.functions.grantRole(RECORDER_ROLE, recorder), admin)  # stands in for WorkVerification
    send(rep.functions.setInbox(inbox), admin)
    send(rep.functions.setPeer(ETH_CHAIN_ID, gpu_rental), admin)
    return Env(w3, rep, admin, recorder, inbox, provider, provider2, renter, stranger, gpu_rental)


@pytest.fixture(scope="module")
def deployed(etc_session: Web3) -> Env:
    """Deployed once per module, before any test's snapshot."""
    return make_env(etc_session)


@pytest.fixture
def env(deployed: Env, etc: Web3) -> Env:
    """The deployed contract inside this test's snapshot."""
    return deployed


# ------------------------------------------------------------------ construction and reads


def test_constructor_roles_and_defaults(env: Env) -> None:
    """admin gets both roles; default score params; a new provider scores a neutral 5000 with zero counters."""
    rep = env.rep.functions
    assert rep.hasRole(DEFAULT_ADMIN_ROLE, env.admin).call()
    assert rep.hasRole(GOVERNOR_ROLE, env.admin).call()
    assert rep.GOVERNOR_ROLE().call() == GOVERNOR_ROLE
    assert rep.RECORDER_ROLE().call() == RECORDER_ROLE
    assert tuple(rep.scoreParams().call()) == DEFAULT_PARAMS
    assert env.stats(env.stranger) == (0,) * 8
    assert env.score(env.stranger) == 5_000


def test_constructor_rejects_zero_admin(env: Env) -> None:
    with reverts("ReputationSystemZeroAddress"):
        deploy(env.w3, "etc", "ReputationSystem", ZERO)


# ------------------------------------------------------------------ outcomes


def test_record_outcome_updates_counters_and_score(env: Env) -> None:
    """Outcomes add up per provider; the score follows the documented formula and is in the event."""
    receipt = env.outcome(100, 95, 2, 3)
    assert env.stats() == (100, 95, 2, 3, 1, 0, 0, 0)
    (ev,) = env.rep.events.OutcomeRecorded().process_receipt(receipt, errors=DISCARD)
    assert ev.args.score == env.score() == expected_score(env.stats())
    env.outcome(50, 10, 30, 10, True)
    assert env.stats() == (150, 105, 32, 13, 2, 1, 0, 0)
    assert env.score() == expected_score(env.stats())
    assert env.stats(env.provider2) == (0,) * 8


def test_good_outcomes_raise_and_failures_lower_the_score(env: Env) -> None:
    """Passing every challenge moves a provider above neutral; a failed verdict moves another below."""
    env.outcome(200, 200, 0, 0)
    assert env.score() > 5_000
    env.outcome(200, 100, 100, 0, True, provider=env.provider2)
    assert env.score(env.provider2) < 5_000
    high = env.score()
    env.outcome(200, 0, 0, 200)  # missed challenges lower it too, even in a task that did not fail
    assert env.score() < high


def test_record_outcome_requires_recorder_role(env: Env) -> None:
    """Only RECORDER_ROLE (WorkVerification) records outcomes; not even the admin."""
    for who in (env.stranger, env.admin, env.inbox):
        with reverts("AccessControlUnauthorizedAccount"):
            env.outcome(1, 1, 0, 0, caller=who)
    assert env.stats() == (0,) * 8


def test_record_outcome_rejects_zero_provider(env: Env) -> None:
    with reverts("ReputationSystemZeroAddress"):
        env.outcome(1, 1, 0, 0, provider=ZERO)


def test_record_outcome_rejects_inconsistent_counts(env: Env) -> None:
    """passed + failed + missed may not exceed issued."""
    with reverts("ReputationSystemInvalidOutcome"):
        env.outcome(3, 2, 1, 1)


# ------------------------------------------------------------------ feedback


def test_feedback_counts_rating(env: Env) -> None:
    """A FEEDBACK from GPURental through the inbox adds the rating and marks the rental counted."""
    receipt = env.feedback(11, 5)
    assert env.stats() == (0, 0, 0, 0, 0, 0, 1, 5)
    assert env.rep.functions.feedbackCounted(11).call()
    assert not env.rep.functions.feedbackCounted(12).call()
    (ev,) = env.rep.events.FeedbackRecorded().process_receipt(receipt, errors=DISCARD)
    assert (ev.args.rentalId, ev.args.provider, ev.args.renter, ev.args.rating) == (
        11,
        env.provider,
        env.renter,
        5,
    )
    assert ev.args.score == env.score() == expected_score(env.stats()) > 5_000


def test_low_ratings_lower_the_score(env: Env) -> None:
    env.feedback(1, 1)
    env.feedback(2, 2)
    assert env.score() < 5_000
    assert env.score() == expected_score(env.stats())


def test_feedback_for_same_rental_counts_once(env: Env) -> None:
    """A repeated FEEDBACK for a rental changes nothing and emits FeedbackIgnored."""
    env.feedback(7, 5)
    before, score = env.stats(), env.score()
    receipt = env.feedback(7, 1)
    assert env.stats() == before and env.score() == score
    assert len(env.rep.events.FeedbackIgnored().process_receipt(receipt, errors=DISCARD)) == 1
    assert env.rep.events.FeedbackRecorded().process_receipt(receipt, errors=DISCARD) == ()


def test_feedback_only_from_inbox(env: Env) -> None:
    """Nobody but the inbox may deliver feedback, not even the admin or the recorder."""
    for who in (env.stranger, env.admin, env.recorder):
        with reverts("ReputationSystemUnauthorizedInbox"):
            env.feedback(1, 5, caller=who)
    assert env.stats() == (0,) * 8


@pytest.mark.parametrize("wrong", ["chain", "sender"])
def test_feedback_only_from_gpu_rental(env: Env, wrong: str) -> None:
    """Feedback from another chain or another sender contract is refused."""
    with reverts("ReputationSystemUnknownPeer"):
        if wrong == "chain":
            env.feedback(1, 5, src_chain=61)
        else:
            env.feedback(1, 5, sender=env.stranger)


def test_feedback_before_peer_is_configured_is_refused(env: Env) -> None:
    """A fresh ReputationSystem has no inbox: nobody can deliver."""
    fresh = deploy(env.w3, "etc", "ReputationSystem", env.admin)
    data = feedback_msg(1, env.provider, env.renter, 5)
    with reverts("ReputationSystemUnauthorizedInbox"):
        send(fresh.functions.onBridgeMessage(ETH_CHAIN_ID, env.gpu_rental, data), env.inbox)


@pytest.mark.parametrize("kind", [OPEN, 2, 3, 0])
def test_only_feedback_messages_are_accepted(env: Env, kind: int) -> None:
    data = encode(["uint8", "bytes"], [kind, b"\x00" * 128])
    with reverts("ReputationSystemUnsupportedMessage"):
        send(env.rep.functions.onBridgeMessage(ETH_CHAIN_ID, env.gpu_rental, data), env.inbox)


@pytest.mark.parametrize("rating", [0, 6, 255])
def test_feedback_rating_must_be_1_to_5(env: Env, rating: int) -> None:
    with reverts("ReputationSystemInvalidRating"):
        env.feedback(1, rating)
    assert not env.rep.functions.feedbackCounted(1).call()


def test_feedback_rejects_zero_provider(env: Env) -> None:
    with reverts("ReputationSystemZeroAddress"):
        env.feedback(1, 4, provider=ZERO)


# ------------------------------------------------------------------ governance


def test_setters_update_and_emit(env: Env) -> None:
    """setInbox, setPeer and setScoreParams store their values and emit events."""
    rep = env.rep
    new = list(env.w3.eth.accounts)[8]
    receipt = send(rep.functions.setInbox(new), env.admin)
    assert rep.functions.inbox().call() == new
    assert rep.events.InboxChanged().process_receipt(receipt)[0].args.inbox == new
    receipt = send(rep.functions.setPeer(1, new), env.admin)
    assert (rep.functions.ethChainId().call(), rep.functions.gpuRental().call()) == (1, new)
    ev = rep.events.PeerChanged().process_receipt(receipt)[0]
    assert (ev.args.ethChainId, ev.args.gpuRental) == (1, new)
    params = (10, 1, 1_000_000, 10_000, 0, 0)
    receipt = send(rep.functions.setScoreParams(params), env.admin)
    assert tuple(rep.functions.scoreParams().call()) == params
    assert tuple(rep.events.ScoreParamsChanged().process_receipt(receipt)[0].args.params.values()) == params


def test_score_params_change_the_score(env: Env) -> None:
    """With all weight on ratings, the score is the rating average pulled towards neutral by its prior."""
    env.outcome(100, 0, 100, 0, True)
    env.feedback(1, 5)
    params = (100, 5, 1, 0, 0, 10_000)
    send(env.rep.functions.setScoreParams(params), env.admin)
    assert env.score() == expected_score(env.stats(), params) == (10_000 + 5_000) // 2


def test_setters_require_governor_role(env: Env) -> None:
    rep = env.rep.functions
    for fn in (rep.setInbox(env.stranger), rep.setPeer(1, env.stranger), rep.setScoreParams(DEFAULT_PARAMS)):
        with reverts("AccessControlUnauthorizedAccount"):
            send(fn, env.stranger)


def test_setters_check_bounds(env: Env) -> None:
    rep = env.rep.functions
    cases = [
        (rep.setInbox(ZERO), "ReputationSystemZeroAddress"),
        (rep.setPeer(ETH_CHAIN_ID, ZERO), "ReputationSystemZeroAddress"),
        (rep.setPeer(0, env.gpu_rental), "ReputationSystemInvalidChainId"),
        (rep.setPeer(63, env.gpu_rental), "ReputationSystemInvalidChainId"),
    ]
    bad_params = [
        (0, 5, 5, 5_000, 3_000, 2_000),
        (100, 0, 5, 5_000, 3_000, 2_000),
        (100, 5, 0, 5_000, 3_000, 2_000),
        (1_000_001, 5, 5, 5_000, 3_000, 2_000),
        (100, 1_000_001, 5, 5_000, 3_000, 2_000),
        (100, 5, 1_000_001, 5_000, 3_000, 2_000),
        (100, 5, 5, 5_000, 3_000, 1_999),
        (100, 5, 5, 5_000, 3_000, 2_001),
    ]
    cases += [(rep.setScoreParams(p), "ReputationSystemInvalidScoreParams") for p in bad_params]
    for fn, error in cases:
        with reverts(error):
            send(fn, env.admin)


# ------------------------------------------------------------------ through WorkVerification


def test_work_verification_finalize_moves_reputation(env: Env) -> None:
    """A real WorkVerification holding RECORDER_ROLE records its finalized verdict here."""
    w3 = env.w3
    outbox = deploy(w3, "etc", "MockBridgeOutbox")
    wv = deploy(
        w3,
        "etc",
        "WorkVerification",
        env.admin,
        env.inbox,
        outbox.address,
        ETH_CHAIN_ID,
        env.gpu_rental,
        env.rep.address,
        2_000,
        86_400,
        100,
    )
    send(outbox.functions.setAuthorized(wv.address, True), env.admin)
    send(env.rep.functions.grantRole(RECORDER_ROLE, wv.address), env.admin)
    start = int(w3.eth.get_block("latest")["timestamp"]) - 100
    queen = list(w3.eth.accounts)[7]
    body = encode(
        ["uint256", "address", "address", "uint32", "uint64", "uint64"],
        [1, env.provider, queen, 1, start, 50],
    )
    send(
        wv.functions.onBridgeMessage(ETH_CHAIN_ID, env.gpu_rental, encode(["uint8", "bytes"], [OPEN, body])),
        env.inbox,
    )
    batch = b"\x01" * 32
    send(wv.functions.submitBatch(batch, b"\x00" * 32, [(1, 40, 40, 0, 0)]), queen)
    send(wv.functions.finalize(1, batch, (1, 40, 40, 0, 0), []), queen)
    assert env.stats() == (40, 40, 0, 0, 1, 0, 0, 0)
    assert env.score() == expected_score(env.stats()) > 5_000


# ------------------------------------------------------------------ properties


class ReputationMachine(RuleBasedStateMachine):
    """Random outcomes and feedback for two providers against a Python model of the counters and the score."""

    env: Env

    def __init__(self) -> None:
        super().__init__()
        self.w3 = self.env.w3
        self.snap = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self.model = {p: [0] * 8 for p in (self.env.provider, self.env.provider2)}
        self.rated: set[int] = set()

    def teardown(self) -> None:
        self.w3.provider.make_request("evm_revert", [self.snap])  # type: ignore[arg-type]

    @rule(second=st.booleans(), counts=st.tuples(*[st.integers(0, 2**20)] * 3), failed=st.booleans())
    def outcome(self, second: bool, counts: tuple[int, int, int], failed: bool) -> None:
        provider = self.env.provider2 if second else self.env.provider
        passed, failed_count, missed = counts
        issued = passed + failed_count + missed
        self.env.outcome(issued, passed, failed_count, missed, failed, provider=provider)
        m = self.model[provider]
        for i, v in enumerate((issued, passed, failed_count, missed, 1, int(failed))):
            m[i] += v

    @rule(second=st.booleans(), rental=st.integers(1, 6), rating=st.integers(1, 5))
    def feedback(self, second: bool, rental: int, rating: int) -> None:
        provider = self.env.provider2 if second else self.env.provider
        self.env.feedback(rental, rating, provider=provider)
        if rental not in self.rated:
            self.rated.add(rental)
            self.model[provider][6] += 1
            self.model[provider][7] += rating

    @invariant()
    def matches_model(self) -> None:
        for provider, m in self.model.items():
            assert self.env.stats(provider) == tuple(m)
            score = self.env.score(provider)
            assert 0 <= score <= 10_000
            assert score == expected_score(tuple(m))


def test_reputation_state_machine(env: Env) -> None:
    """Invariants: counters match the model, each rental's feedback counts once, score in 0..10000 per formula."""
    ReputationMachine.env = env
    run_state_machine_as_test(
        ReputationMachine, settings=settings(max_examples=10, stateful_step_count=12, deadline=None)
    )
