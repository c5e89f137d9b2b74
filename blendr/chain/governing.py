"""Governance as its users see it: parameter values, proposals built from ``NAME=VALUE``, their state and tallies.

Used by ``blendr gov`` (with a key: propose, vote, queue, execute, delegate) and by the King's gateway
(read-only). ETC parameters are set by the ETH timelock through the bridge: a proposal's call for one is
``BridgeOutbox.sendMessage(etcChainId, BridgeGovernanceExecutor, abi.encode(target, 0, calldata))`` on ETH,
which the queens' relay delivers on ETC after execution.

Guarantees: every ``check_*`` function raises before a transaction is sent when the chain would refuse it
(unknown parameter, value out of bounds, too few votes to propose, voting closed, not yet executable).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode
from eth_utils import keccak, to_checksum_address

from blendr.chain import govparams as gp
from blendr.chain.contracts import bridge_call
from blendr.errors import ContractRevertError, FailedPreconditionError, InvalidArgumentError, NotFoundError
from blendr.units import fmt_tokens

if TYPE_CHECKING:
    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import Manifest


class ProposalState(enum.IntEnum):
    """OpenZeppelin Governor's ProposalState."""

    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7


SUPPORT = {"against": 0, "for": 1, "abstain": 2}


LOG_RANGE = 5_000
"""Blocks one ``eth_getLogs`` request spans at most when proposals are read (public RPCs refuse wide ranges)."""

@dataclass(frozen=True)
class Call:
    """One call of a proposal (on ETH), and what it does in plain words."""

    target: str
    value: int
    calldata: bytes
    text: str


@dataclass
class Proposal:
    """A proposal as the chain holds it now."""

    proposal_id: int
    proposer: str
    description: str
    state: ProposalState
    votes_for: int
    votes_against: int
    votes_abstain: int
    quorum: int  # votes (for + abstain) needed, at the snapshot
    snapshot: int  # unix seconds (the governor's clock is timestamps): votes are weighed as of this time
    deadline: int  # unix seconds: voting is open after ``snapshot``, up to and including ``deadline``
    eta: int  # unix time from which a queued proposal may execute (0: not queued)
    created_block: int
    calls: list[Call] = field(default_factory=list)

    @property
    def description_hash(self) -> bytes:
        return bytes(keccak(text=self.description))


class Governor:
    """Governance of one deployment: both chains read, ETH written with ``eth``'s key (if any)."""

    def __init__(self, eth: ChainClient, etc: ChainClient, m: Manifest) -> None:
        self.eth, self.etc, self.m = eth, etc, m
        self.gov = eth.contract("Governance", m.eth.address("Governance"))
        self.token = eth.contract("GPUToken", m.eth.address("GPUToken"))

    # ------------------------------------------------------------------ parameters
    def _client(self, chain: str) -> ChainClient:
        return self.eth if chain == "eth" else self.etc

    def _contract(self, p: gp.Param) -> Any:
        return self._client(p.chain).contract(p.contract, self.m.chain(p.chain).address(p.contract))

    def value(self, p: gp.Param) -> gp.Value:
        """``p``'s current value on its chain (ChainError / UnavailableError when it cannot be read)."""
        c = self._contract(p)
        return gp.from_chain(p, self._client(p.chain).call(getattr(c.functions, p.getter)(*p.getter_args)))

    def values(self, names: Sequence[str] | None = None) -> dict[str, gp.Value]:
        """Current values of ``names`` (default: every parameter)."""
        return {n: self.value(gp.BY_NAME[n]) for n in (names or [p.name for p in gp.PARAMS])}

    def calls_for(self, changes: Mapping[str, str]) -> list[Call]:
        """The proposal's calls that set ``changes`` (NAME -> VALUE text), one per setter; siblings a setter
        also takes keep their current values.

        Raises:
            InvalidArgumentError: an unknown parameter, a malformed value, or one out of bounds.
        """
        parsed: dict[str, gp.Value] = {}
        for name, text in changes.items():
            p = gp.param(name)
            parsed[name] = gp.parse_value(p.unit, text, name)
            p.check(parsed[name])
        calls: list[Call] = []
        for group in gp.setter_groups(list(parsed)):
            p = gp.BY_NAME[group[0]]
            values = {n: (parsed[n] if n in parsed else self.value(gp.BY_NAME[n])) for n in gp.siblings(p)}
            args = gp.setter_args(p, values)
            c = self._contract(p)
            inner = bytes.fromhex(getattr(c.functions, p.setter)(*args)._encode_transaction_data()[2:])
            text = "; ".join(f"{n} = {gp.format_value(gp.BY_NAME[n].unit, parsed[n])}" for n in group)
            if p.chain == "eth":
                calls.append(Call(c.address, 0, inner, f"{text} ({p.contract}.{p.setter} on ETH)"))
            else:
                outbox = self.eth.contract("BridgeOutbox", self.m.eth.address("BridgeOutbox"))
                executor = self.m.etc.address("BridgeGovernanceExecutor")
                send = outbox.functions.sendMessage(self.m.etc.chain_id, executor, bridge_call(c.address, inner))
                calls.append(Call(outbox.address, 0, bytes.fromhex(send._encode_transaction_data()[2:]),
                                  f"{text} ({p.contract}.{p.setter} on ETC, over the bridge)"))
        return calls

    def describe(self, target: str, value: int, calldata: bytes) -> str:
        """A call of a proposal in plain words (parameters by name where the call sets registered ones)."""
        target = to_checksum_address(target)
        eth_names = {to_checksum_address(a): n for n, a in self.m.eth.contracts.items()}
        name = eth_names.get(target)
        if name is None:
            return f"call {target} with {len(calldata)} bytes" + (f", sending {value} wei" if value else "")
        fn, args = self._decode(self.eth, name, target, calldata)
        if fn is None:
            return f"{name}: unknown call 0x{calldata[:4].hex()}" + (f", sending {value} wei" if value else "")
        if name == "BridgeOutbox" and fn == "sendMessage" and \
                to_checksum_address(args["target"]) == to_checksum_address(
                    self.m.etc.address("BridgeGovernanceExecutor")):
            if int(args["dstChainId"]) != self.m.etc.chain_id:
                return f"BridgeOutbox: a message to chain {args['dstChainId']}, not this deployment's ETC (never applied)"
            try:
                etc_target, etc_value, inner = decode(["address", "uint256", "bytes"], args["data"])
            except Exception:  # hostile or truncated data: shown as what it is, never as a parameter
                return f"BridgeOutbox: a message to ETC's governance executor with undecodable data " \
                       f"({len(args['data'])} bytes)"
            etc_names = {to_checksum_address(a): n for n, a in self.m.etc.contracts.items()}
            etc_name = etc_names.get(to_checksum_address(etc_target))
            sending = f", sending {etc_value} wei" if etc_value else ""
            if etc_name is None:
                return f"on ETC over the bridge: call {to_checksum_address(etc_target)}{sending}"
            efn, eargs = self._decode(self.etc, etc_name, etc_target, inner)
            return f"on ETC over the bridge: {self._words('etc', etc_name, efn, eargs)}{sending}"
        return self._words("eth", name, fn, args) + (f", sending {value} wei" if value else "")

    def _decode(self, client: ChainClient, name: str, address: str, data: bytes) -> tuple[str | None, dict[str, Any]]:
        try:
            fn, args = client.contract(name, address).decode_function_input(data)
        except Exception:  # hostile calldata (eth_abi raises its own errors): an unknown call, never a crash
            return None, {}
        return str(fn.fn_name), dict(args)

    @staticmethod
    def _words(chain: str, contract: str, fn: str | None, args: dict[str, Any]) -> str:
        if fn is None:
            return f"{contract}: unknown call"
        params = [p for p in gp.PARAMS if p.chain == chain and p.contract == contract and p.setter == fn]
        arglist = list(args.values())
        consts = [a for a in (params[0].setter_args if params else ()) if isinstance(a, gp.Const)]
        if params and consts:  # setMinStake(tier, amount): the tier picks the parameter
            params = [p for p in params
                      if all(arglist[i] == a.value for i, a in enumerate(p.setter_args) if isinstance(a, gp.Const))]
        if not params:
            return f"{contract}.{fn}({', '.join(str(v) for v in arglist)})"
        p0 = params[0]
        flat: dict[str, Any] = {}
        for a, v in zip(p0.setter_args, arglist, strict=False):
            if isinstance(a, str):
                flat[a] = v
            elif isinstance(a, tuple):
                flat.update(zip(a, v, strict=True))
        return "; ".join(f"set {n} to {gp.format_value(gp.BY_NAME[n].unit, gp.from_chain(_plain(gp.BY_NAME[n]), v))}"
                         for n, v in flat.items())

    # ------------------------------------------------------------------ proposals
    def proposals(self) -> list[Proposal]:
        """Every proposal since the deployment, oldest first, with its state and tallies now."""
        ev = self.gov.events.ProposalCreated()
        head = self.eth.block_number()
        logs: list[Any] = []
        for lo in range(self.m.eth.deploy_block, head + 1, LOG_RANGE):  # bounded ranges: RPCs refuse wide ones
            hi = min(lo + LOG_RANGE - 1, head)
            logs += self.eth.retry("get_logs ProposalCreated",
                                   lambda lo=lo, hi=hi: ev.get_logs(from_block=lo, to_block=hi))  # type: ignore[misc]
        return [self._proposal(dict(lg["args"]), int(lg["blockNumber"])) for lg in logs]

    def proposal(self, proposal_id: int) -> Proposal:
        """One proposal.

        Raises:
            NotFoundError: no proposal has that id.
        """
        for p in self.proposals():
            if p.proposal_id == proposal_id:
                return p
        raise NotFoundError(f"no proposal {proposal_id} on this deployment (`blendr gov list` lists them)")

    def _proposal(self, a: dict[str, Any], block: int) -> Proposal:
        pid = int(a["proposalId"])
        f = self.gov.functions
        against, for_, abstain = self.eth.call(f.proposalVotes(pid))
        snapshot = int(a["voteStart"])
        now = self.clock()
        quorum = int(self.eth.call(f.quorum(snapshot))) if snapshot < now else int(self.eth.call(f.quorum(now - 1)))
        calls = [Call(to_checksum_address(t), int(v), bytes(c), self.describe(t, int(v), bytes(c)))
                 for t, v, c in zip(a["targets"], a["values"], a["calldatas"], strict=True)]
        return Proposal(pid, to_checksum_address(a["proposer"]), str(a["description"]),
                        ProposalState(int(self.eth.call(f.state(pid)))), int(for_), int(against), int(abstain),
                        quorum, snapshot, int(a["voteEnd"]), int(self.eth.call(f.proposalEta(pid))), block, calls)

    def clock(self) -> int:
        """The governor's clock now (ERC-6372, GPUToken's): the latest block's timestamp, unix seconds."""
        return int(self.eth.call(self.gov.functions.clock()))

    # ------------------------------------------------------------------ checks before a transaction
    def check_can_propose(self, who: str) -> None:
        """Raises FailedPreconditionError unless ``who`` has the proposal threshold's votes (a second ago)."""
        f = self.gov.functions
        threshold = int(self.eth.call(f.proposalThreshold()))
        votes = int(self.eth.call(f.getVotes(who, self.clock() - 1)))
        if votes < threshold:
            raise FailedPreconditionError(
                f"{who} has {fmt_tokens(votes)} votes, fewer than the {fmt_tokens(threshold)} needed to propose "
                "(votes count from the first block a second or more after `blendr gov delegate` or a stake)")

    def check_can_vote(self, p: Proposal, who: str) -> None:
        """Raises FailedPreconditionError unless ``p`` is open for votes and ``who`` has not voted."""
        if p.state is ProposalState.PENDING:
            raise FailedPreconditionError(f"voting on proposal {p.proposal_id} opens after {utc(p.snapshot)}")
        if p.state is not ProposalState.ACTIVE:
            raise FailedPreconditionError(f"voting on proposal {p.proposal_id} is closed (it is {p.state.name.lower()})")
        if self.eth.call(self.gov.functions.hasVoted(p.proposal_id, who)):
            raise FailedPreconditionError(f"{who} has already voted on proposal {p.proposal_id}")
        if int(self.eth.call(self.gov.functions.getVotes(who, p.snapshot))) == 0:
            raise FailedPreconditionError(
                f"{who} had no votes at proposal {p.proposal_id}'s snapshot ({utc(p.snapshot)}): votes count "
                "only when delegated (`blendr gov delegate`) or staked before the snapshot")

    def check_can_queue(self, p: Proposal) -> None:
        if p.state is not ProposalState.SUCCEEDED:
            raise FailedPreconditionError(f"proposal {p.proposal_id} cannot be queued: it is {p.state.name.lower()} "
                                          "(only a succeeded proposal is queued)")

    def check_can_execute(self, p: Proposal, now: int) -> None:
        if p.state is not ProposalState.QUEUED:
            raise FailedPreconditionError(f"proposal {p.proposal_id} cannot be executed: it is {p.state.name.lower()} "
                                          "(queue it first once it has succeeded)")
        if now < p.eta:
            raise FailedPreconditionError(f"proposal {p.proposal_id} is not yet executable: the timelock releases it "
                                          f"in {p.eta - now} s")

    # ------------------------------------------------------------------ transactions (eth's key)
    def propose(self, calls: Sequence[Call], description: str) -> tuple[int, bool]:
        """Submits the proposal (checking the proposer's votes first); returns (its id, whether it is new).

        Idempotent: the same calls and description again answer the existing proposal's id, unsent (the
        Governor derives the id from them, and would refuse them twice).
        """
        if not description.strip():
            raise InvalidArgumentError("a proposal needs a --description")
        if not calls:
            raise InvalidArgumentError("a proposal needs at least one --set NAME=VALUE")
        args = ([c.target for c in calls], [c.value for c in calls], [c.calldata for c in calls])
        f = self.gov.functions
        pid = int(self.eth.call(f.hashProposal(*args, keccak(text=description))))
        if int(self.eth.call(f.proposalSnapshot(pid))) != 0:
            return pid, False
        self.check_can_propose(self.eth.address)
        self.eth.transact(f.propose(*args, description))
        return pid, True

    def vote(self, proposal_id: int, support: str, reason: str = "") -> Any:
        if support not in SUPPORT:
            raise InvalidArgumentError(f"vote {support!r}: give for, against or abstain")
        p = self.proposal(proposal_id)
        self.check_can_vote(p, self.eth.address)
        f = self.gov.functions
        fn = f.castVoteWithReason(proposal_id, SUPPORT[support], reason) if reason else \
            f.castVote(proposal_id, SUPPORT[support])
        return self._raced(proposal_id, fn, lambda q: self.check_can_vote(q, self.eth.address))

    def _raced(self, proposal_id: int, fn: Any, check: Any) -> Any:
        """Sends ``fn``; when it reverts, says why in words if the proposal changed meanwhile (another executor, a
        second vote landing first, the vote closing), by running ``check`` again on the proposal as it is now."""
        try:
            return self.eth.transact(fn)
        except ContractRevertError:
            check(self.proposal(proposal_id))  # raises FailedPreconditionError naming what changed
            raise

    def _args(self, p: Proposal) -> tuple[list[str], list[int], list[bytes], bytes]:
        return [c.target for c in p.calls], [c.value for c in p.calls], [c.calldata for c in p.calls], \
            p.description_hash

    def queue(self, proposal_id: int) -> Any:
        p = self.proposal(proposal_id)
        self.check_can_queue(p)
        return self._raced(proposal_id, self.gov.functions.queue(*self._args(p)), self.check_can_queue)

    def execute(self, proposal_id: int) -> Any:
        p = self.proposal(proposal_id)
        now = int(self.eth.retry("get_block", lambda: self.eth.w3.eth.get_block("latest"))["timestamp"])
        self.check_can_execute(p, now)
        return self._raced(proposal_id, self.gov.functions.execute(*self._args(p)),
                           lambda q: self.check_can_execute(q, now))

    def delegate(self, to: str) -> Any:
        return self.eth.transact(self.token.functions.delegate(to_checksum_address(to)))


def utc(unix: int) -> str:
    """``unix`` seconds as a UTC date and time (``2026-12-06 15:30:00 UTC``), as deadlines are shown."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _plain(p: gp.Param) -> gp.Param:
    """``p`` without its getter's tuple index (a setter's argument is the bare value)."""
    from dataclasses import replace

    return replace(p, getter_index=None)


__all__ = ["SUPPORT", "Call", "Governor", "Proposal", "ProposalState"]
