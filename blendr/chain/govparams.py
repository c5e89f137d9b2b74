"""Every governance parameter of both chains, in one registry: the CLI, the King, the queens and the tests read it.

A :class:`Param` names one value a proposal can change: the contract and chain it lives on, the getter that
reads it, the setter that changes it, the bounds the contract enforces and its unit (how to parse and print
it). Setters that take several values (``setDurationBounds(min, max)``, ``setAttesters(list, threshold)``,
``setScoreParams(tuple)``) are shared by several parameters: a proposal that sets one of them passes the
others' current values unchanged (:func:`setter_args`).

Guarantees: the bounds here are the contract's own (a value inside them passes the setter's checks, a value
outside fails before any transaction); ``tests/unit/chain/test_govparams.py`` fails when a contract gains a
``set*``/``update*`` function that is neither registered here nor listed in :data:`NOT_PARAMETERS`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from eth_utils import is_address, to_checksum_address

from blendr.errors import InvalidArgumentError
from blendr.units import TOKEN, fmt_duration, fmt_tokens, parse_duration, parse_tokens

ChainName = Literal["eth", "etc"]
Value = int | str | tuple[str, ...]
"""A parameter's value: an integer (base units), a checksummed address, or a tuple of addresses."""

U96 = 2**96 - 1
U128 = 2**128 - 1
U32 = 2**32 - 1
U48 = 2**48 - 1
U64 = 2**64 - 1
DAY = 86_400


class Unit(enum.Enum):
    """How a value is written, read and shown."""

    GPUTOKEN = "GPUTOKEN"
    GPUTOKEN_PER_GPU_HOUR = "GPUTOKEN/GPU-hour"
    GPUTOKEN_PER_SECOND = "GPUTOKEN/s"
    BPS = "bps"
    SECONDS = "seconds"
    BLOCKS = "blocks"
    COUNT = "count"
    QUORUM = "% of supply"
    ADDRESS = "address"
    ADDRESSES = "addresses"


_TOKEN_UNITS = (Unit.GPUTOKEN, Unit.GPUTOKEN_PER_GPU_HOUR, Unit.GPUTOKEN_PER_SECOND)


def parse_value(unit: Unit, text: str, what: str) -> Value:
    """``text`` as a value of ``unit`` in base units (wei, seconds, bps...).

    Token amounts are whole GPUTOKEN (``2.5``); seconds take ``90s``/``30m``/``2h``/``7d`` or a plain number;
    bps take ``250`` or ``2.5%``; addresses are hex; address lists are comma-separated.

    Raises:
        InvalidArgumentError: ``text`` is not a value of ``unit`` (names ``what``).
    """
    t = text.strip()
    if unit in _TOKEN_UNITS:
        return int(parse_tokens(t, what))
    if unit is Unit.SECONDS:
        if t.isdigit():
            return int(t)
        seconds = parse_duration(t, what)
        if seconds != int(seconds):
            raise InvalidArgumentError(f"{what} {t!r}: give whole seconds")
        return int(seconds)
    if unit is Unit.BPS and t.endswith("%"):
        try:
            bps = Decimal(t[:-1]) * 100
        except InvalidOperation:
            bps = Decimal("NaN")
        if not bps.is_finite() or bps != bps.to_integral_value():
            raise InvalidArgumentError(f"{what} {t!r}: give basis points (250) or a percentage with at most two "
                                       "decimals (2.5%)")
        return int(bps)
    if unit in (Unit.BPS, Unit.BLOCKS, Unit.COUNT, Unit.QUORUM):
        if not t.isascii() or not t.isdigit():
            raise InvalidArgumentError(f"{what} must be a whole non-negative number (got {t[:40]!r})")
        return int(t)
    if unit is Unit.ADDRESS:
        return _address(t, what)
    parts = [p.strip() for p in t.split(",") if p.strip()]
    return tuple(_address(p, what) for p in parts)


def _address(text: str, what: str) -> str:
    if not is_address(text):
        raise InvalidArgumentError(f"{what} must be an address, 0x and 40 hex digits (got {text[:60]!r})")
    return str(to_checksum_address(text))


def format_value(unit: Unit, value: Value) -> str:
    """A value of ``unit`` as people read it (``2.5 GPUTOKEN/GPU-hour``, ``250 bps (2.5%)``, ``7 d``)."""
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(none)"
    if isinstance(value, str):
        return value
    if unit in _TOKEN_UNITS:
        return f"{fmt_tokens(value, places=18 if 0 < value < TOKEN // 10**6 else 6)} {unit.value}"
    if unit is Unit.BPS:
        return f"{value} bps ({Decimal(value) / 100:f}%)"
    if unit is Unit.SECONDS:
        return f"{value // DAY} d" if value and value % DAY == 0 else fmt_duration(value)
    if unit is Unit.QUORUM:
        return f"{value}%"
    if unit is Unit.BLOCKS:
        return f"{value} block{'' if value == 1 else 's'}"
    return str(value)


@dataclass(frozen=True)
class Const:
    """A fixed setter argument (``setMinStake(tier, ...)``'s tier)."""

    value: Any


SetterArg = str | Const | tuple[str, ...]
"""A setter argument: a parameter's name, a constant, or a tuple (struct) of parameters' names."""


@dataclass(frozen=True)
class Param:
    """One governance parameter."""

    name: str
    chain: ChainName
    contract: str  # the contract's name in the deployment manifest
    setter: str
    setter_args: tuple[SetterArg, ...]
    getter: str
    unit: Unit
    lo: int | None = None  # inclusive, in base units; None: no bound (addresses)
    hi: int | None = None
    doc: str = ""
    getter_args: tuple[Any, ...] = ()
    getter_index: int | str | None = None  # an element of a tuple (index) or struct (field name) result
    min_len: int = 0  # ADDRESSES: fewest elements
    max_len: int = 0
    zero_ok: bool = False  # ADDRESS: the zero address is allowed

    def bounds_text(self) -> str:
        """The allowed range, as people read it."""
        if self.unit is Unit.ADDRESS:
            return "any address" if self.zero_ok else "non-zero address"
        if self.unit is Unit.ADDRESSES:
            return f"{self.min_len}..{self.max_len} distinct non-zero addresses"
        lo = "" if self.lo is None else format_value(self.unit, self.lo)
        if self.unit in _TOKEN_UNITS and self.lo == 1:
            lo = "1 wei"
        if self.hi is None:
            return f"at least {lo}"
        hi = format_value(self.unit, self.hi)
        if self.hi in (U32, U48, U64, U96, U128):
            hi = f"2^{self.hi.bit_length()}-1" + (" wei" if self.unit in _TOKEN_UNITS else "")
        return f"{lo} .. {hi}"

    def check(self, value: Value) -> None:
        """Raises InvalidArgumentError unless ``value`` is inside this parameter's bounds."""
        if self.unit is Unit.ADDRESS:
            if not isinstance(value, str):
                raise InvalidArgumentError(f"{self.name} takes one address")
            if not self.zero_ok and int(value, 16) == 0:
                raise InvalidArgumentError(f"{self.name} may not be the zero address")
            return
        if self.unit is Unit.ADDRESSES:
            if not isinstance(value, tuple):
                raise InvalidArgumentError(f"{self.name} takes a comma-separated list of addresses")
            if not self.min_len <= len(value) <= self.max_len:
                raise InvalidArgumentError(f"{self.name} must list {self.min_len}..{self.max_len} addresses "
                                           f"(got {len(value)})")
            if len({v.lower() for v in value}) != len(value) or any(int(v, 16) == 0 for v in value):
                raise InvalidArgumentError(f"{self.name} may not repeat an address or hold the zero address")
            return
        if not isinstance(value, int):
            raise InvalidArgumentError(f"{self.name} takes a number")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise InvalidArgumentError(f"{self.name} = {format_value(self.unit, value)} is out of bounds: allowed "
                                       f"{self.bounds_text()}")


def _p(name: str, chain: ChainName, contract: str, setter: str, getter: str, unit: Unit, lo: int | None = None,
       hi: int | None = None, doc: str = "", *, args: tuple[SetterArg, ...] | None = None, **kw: Any) -> Param:
    return Param(name, chain, contract, setter, args if args is not None else (name,), getter, unit, lo, hi, doc,
                 **kw)


def _addr(name: str, chain: ChainName, contract: str, setter: str, getter: str, doc: str, *,
          args: tuple[SetterArg, ...] | None = None, zero_ok: bool = False) -> Param:
    return _p(name, chain, contract, setter, getter, Unit.ADDRESS, doc=doc, args=args, zero_ok=zero_ok)


def _bridge(chain: ChainName) -> list[Param]:
    b = f"bridge_{chain}"
    into = f"the bridge inbox on {chain.upper()}"
    att = (f"{b}.attesters", f"{b}.threshold")
    rate = (f"{b}.rate_window", f"{b}.rate_max_messages")
    return [
        _p(f"{b}.attesters", chain, "BridgeInbox", "setAttesters", "attesters", Unit.ADDRESSES,
           doc=f"queens whose signatures {into} accepts", args=att, min_len=1, max_len=32),
        _p(f"{b}.threshold", chain, "BridgeInbox", "setAttesters", "threshold", Unit.COUNT, 1, 32,
           doc=f"signatures {into} needs per message (at most the number of attesters)", args=att),
        _p(f"{b}.rate_window", chain, "BridgeInbox", "setRateLimit", "rateLimit", Unit.SECONDS, 1, 30 * DAY,
           doc=f"rate-limit window of {into}", args=rate, getter_index=0),
        _p(f"{b}.rate_max_messages", chain, "BridgeInbox", "setRateLimit", "rateLimit", Unit.COUNT, 1, U32,
           doc=f"deliveries {into} accepts per window", args=rate, getter_index=1),
        _addr(f"outbox_{chain}.primary_sender", chain, "BridgeOutbox", "setPrimarySender", "primarySender",
              f"the sender the {chain.upper()} outbox checks first (must hold SENDER_ROLE; zero: none)", zero_ok=True),
    ]


#: The deepest confirmation depths governance may set (Governance.MAX_ETH_CONFIRMATIONS / MAX_ETC_CONFIRMATIONS):
#: about 3.3 h of ETH's 12 s blocks, about 3 days of ETC's 13 s blocks (reasoning in contracts/eth/Governance.sol).
MAX_ETH_CONFIRMATIONS = 1_000
MAX_ETC_CONFIRMATIONS = 20_000
#: The registry's names of the two depths, by chain (the same names as the node config's overrides).
DEPTHS: Mapping[str, str] = {"eth": "chain.eth_confirmations", "etc": "chain.etc_confirmations"}
_DEPTHS = (DEPTHS["eth"], DEPTHS["etc"])
_DUR = ("rental.min_duration", "rental.max_duration")
_QUOTE = ("rental.min_quote", "rental.max_quote")
_RENTAL_PEERS = ("rental.etc_chain_id", "rental.work_verification", "rental.reputation_system")
_WV_PEER = ("verification.eth_chain_id", "verification.gpu_rental")
_QUARANTINE = ("verification.quarantine_window", "verification.quarantine_failures", "verification.quarantine_s")
_REP_PEER = ("reputation.eth_chain_id", "reputation.gpu_rental")
_SCORE = ("reputation.challenge_prior", "reputation.task_prior", "reputation.rating_prior",
          "reputation.challenge_weight_bps", "reputation.task_weight_bps", "reputation.rating_weight_bps")
_SCORE_FIELDS = ("challengePrior", "taskPrior", "ratingPrior", "challengeWeightBps", "taskWeightBps",
                 "ratingWeightBps")

PARAMS: tuple[Param, ...] = (
    # -- ETH: GPURental
    _p("rental.fee_bps", "eth", "GPURental", "setFeeBps", "feeBps", Unit.BPS, 0, 2_000,
       "protocol fee on every settled rental"),
    _p("rental.slash_bps", "eth", "GPURental", "setSlashBps", "slashBps", Unit.BPS, 0, 10_000,
       "share of a provider's reserved stake slashed when verification fails"),
    _p("rental.result_timeout", "eth", "GPURental", "setResultTimeout", "resultTimeout", Unit.SECONDS, DAY, 30 * DAY,
       "after a rental's end, how long before its renter may reclaim an unsettled escrow"),
    _p("rental.min_duration", "eth", "GPURental", "setDurationBounds", "minDuration", Unit.SECONDS, 60, 365 * DAY,
       "shortest rental", args=_DUR),
    _p("rental.max_duration", "eth", "GPURental", "setDurationBounds", "maxDuration", Unit.SECONDS, 60, 365 * DAY,
       "longest rental", args=_DUR),
    _p("rental.min_quote", "eth", "GPURental", "setQuoteBounds", "quoteBounds", Unit.GPUTOKEN_PER_GPU_HOUR, 1, U128,
       "lowest price per GPU-hour a king may quote", args=_QUOTE, getter_index=0),
    _p("rental.max_quote", "eth", "GPURental", "setQuoteBounds", "quoteBounds", Unit.GPUTOKEN_PER_GPU_HOUR, 1, U128,
       "highest price per GPU-hour a king may quote (surge stops there)", args=_QUOTE, getter_index=1),
    _p("rental.max_gpus", "eth", "GPURental", "setMaxGpus", "maxGpus", Unit.COUNT, 1, 2**16 - 1,
       "most GPUs in one rental"),
    _addr("rental.treasury", "eth", "GPURental", "setTreasury", "treasury", "receives the protocol fees"),
    _addr("rental.inbox", "eth", "GPURental", "setInbox", "inbox", "the bridge inbox allowed to settle rentals"),
    _p("rental.fee_burn_bps", "eth", "GPURental", "setFeeBurnBps", "feeBurnBps", Unit.BPS, 0, 10_000,
       "share of every protocol fee burned (the usage burn); the rest goes to the treasury"),
    _addr("rental.compute_voucher", "eth", "GPURental", "setComputeVoucher", "computeVoucher",
          "the ComputeVoucher contract whose GPU-hours may pay a rental's escrow"),
    _p("vouchers.redeem_fee_bps", "eth", "ComputeVoucher", "setRedeemFeeBps", "redeemFeeBps", Unit.BPS, 0, 1_000,
       "fee on redeeming GPU-hour vouchers for the GPUTOKEN behind them"),
    _addr("vouchers.rental", "eth", "ComputeVoucher", "setRental", "rental",
          "the GPURental that may spend vouchers as a rental's escrow"),
    _addr("rental.outbox", "eth", "GPURental", "setOutbox", "outbox", "the bridge outbox rentals are sent through"),
    _p("rental.etc_chain_id", "eth", "GPURental", "setEtcPeers", "etcChainId", Unit.COUNT, 1, U64,
       "chain id of ETC (not ETH's)", args=_RENTAL_PEERS),
    _addr("rental.work_verification", "eth", "GPURental", "setEtcPeers", "workVerification",
          "WorkVerification on ETC", args=_RENTAL_PEERS),
    _addr("rental.reputation_system", "eth", "GPURental", "setEtcPeers", "reputationSystem",
          "ReputationSystem on ETC", args=_RENTAL_PEERS),
    # -- ETH: StakingManager
    _p("staking.min_stake_provider", "eth", "StakingManager", "setMinStake", "minStake", Unit.GPUTOKEN, 1, U96,
       "a provider's minimum stake per GPU offered (queens admit, rentals reserve by it)",
       args=(Const(0), "staking.min_stake_provider"), getter_args=(0,)),
    _p("staking.min_stake_queen", "eth", "StakingManager", "setMinStake", "minStake", Unit.GPUTOKEN, 1, U96,
       "a queen's minimum stake", args=(Const(1), "staking.min_stake_queen"), getter_args=(1,)),
    _p("staking.min_stake_king", "eth", "StakingManager", "setMinStake", "minStake", Unit.GPUTOKEN, 1, U96,
       "a king's minimum stake", args=(Const(2), "staking.min_stake_king"), getter_args=(2,)),
    _p("staking.unbonding_delay", "eth", "StakingManager", "setUnbondingDelay", "unbondingDelay", Unit.SECONDS, 0,
       90 * DAY, "wait between an unstake request and the withdrawal"),
    _p("staking.slash_burn_bps", "eth", "StakingManager", "setSlashBurnBps", "slashBurnBps", Unit.BPS, 0, 10_000,
       "share of slashed stake burned (the rest goes to the treasury)"),
    _p("staking.reward_rate", "eth", "StakingManager", "setRewardRate", "rewardRate", Unit.GPUTOKEN_PER_SECOND, 0,
       10**24, "staking rewards emitted per second, shared by all active stake"),
    _addr("staking.treasury", "eth", "StakingManager", "setTreasury", "treasury",
          "receives the part of slashed stake that is not burned"),
    _addr("staking.locker", "eth", "StakingManager", "setLocker", "locker",
          "the contract whose open rentals reserve provider stake (zero: none)", zero_ok=True),
    # -- ETH: TokenDistributor
    _addr("distributor.treasury", "eth", "TokenDistributor", "setTreasury", "treasury",
          "receives expired epoch rewards"),
    _p("rewards.provider_cap", "eth", "TokenDistributor", "setEpochRewardCap", "epochRewardCap", Unit.GPUTOKEN, 0,
       1_000_000 * 10**18, "most GPUTOKEN one epoch's provider staking rewards may total (0: none paid)",
       args=(Const(0), "rewards.provider_cap"), getter_args=(0,)),
    _p("rewards.renter_cap", "eth", "TokenDistributor", "setEpochRewardCap", "epochRewardCap", Unit.GPUTOKEN, 0,
       1_000_000 * 10**18, "most GPUTOKEN one epoch's renter loyalty rewards may total (0: none paid)",
       args=(Const(1), "rewards.renter_cap"), getter_args=(1,)),
    # -- ETH: Governance and its timelock (they govern themselves)
    _p("governance.voting_delay", "eth", "Governance", "setVotingDelay", "votingDelay", Unit.SECONDS, 0, 30 * DAY,
       "seconds between a proposal and the start of its vote (its snapshot; the governor's clock is timestamps)"),
    _p("governance.voting_period", "eth", "Governance", "setVotingPeriod", "votingPeriod", Unit.SECONDS, 5 * 60,
       90 * DAY, "seconds a vote stays open"),
    _p("governance.proposal_threshold", "eth", "Governance", "setProposalThreshold", "proposalThreshold",
       Unit.GPUTOKEN, 0, None, "voting power needed to propose"),
    _p("governance.quorum", "eth", "Governance", "updateQuorumNumerator", "quorumNumerator", Unit.QUORUM, 0, 100,
       "votes for + abstain needed, as a share of GPUTOKEN's supply at the snapshot"),
    _p("timelock.min_delay", "eth", "BlendrTimelock", "updateDelay", "getMinDelay", Unit.SECONDS, 0, None,
       "wait between a proposal's queueing and its execution"),
    # -- ETH: the nodes' confirmation depths (Governance holds them; only the nodes read them)
    _p(DEPTHS["eth"], "eth", "Governance", "setConfirmations", "confirmations", Unit.BLOCKS, 1,
       MAX_ETH_CONFIRMATIONS, "blocks an ETH block needs (itself included) before the nodes act on its events and "
       "receipts (an operator's deeper chain.eth_confirmations wins)", args=_DEPTHS, getter_index=0),
    _p(DEPTHS["etc"], "eth", "Governance", "setConfirmations", "confirmations", Unit.BLOCKS, 1,
       MAX_ETC_CONFIRMATIONS, "blocks an ETC block needs (itself included) before the nodes act on its events and "
       "receipts (an operator's deeper chain.etc_confirmations wins)", args=_DEPTHS, getter_index=1),
    *_bridge("eth"),
    # -- ETC: WorkVerification (through BridgeGovernanceExecutor)
    _p("verification.challenge_interval", "etc", "WorkVerification", "setChallengeInterval", "challengeInterval",
       Unit.SECONDS, 10, DAY, "longest mean interval between a rented provider's challenges (queens follow it)"),
    _p("verification.max_fail_bps", "etc", "WorkVerification", "setMaxFailBps", "maxFailBps", Unit.BPS, 0, 10_000,
       "share of failed challenges above which a rental is judged failed"),
    _p("verification.finalize_grace", "etc", "WorkVerification", "setFinalizeGrace", "finalizeGrace", Unit.SECONDS,
       3600, 90 * DAY, "after a task's end, how long its queen has to finalize it before anyone may expire it"),
    _p("verification.max_batch_size", "etc", "WorkVerification", "setMaxBatchSize", "maxBatchSize", Unit.COUNT, 1,
       1_000, "most results in one batch"),
    _p(_QUARANTINE[0], "etc", "WorkVerification", "setQuarantine", "quarantine", Unit.COUNT, 1, 1_000,
       "a provider's last decided challenges that quarantine judges (queens follow it)", args=_QUARANTINE,
       getter_index=0),
    _p(_QUARANTINE[1], "etc", "WorkVerification", "setQuarantine", "quarantine", Unit.COUNT, 0, 1_000,
       "failed or abandoned challenges among them that quarantine the provider: cut off, refused admission, "
       "offered to no renter (at most verification.quarantine_window; 0: never)", args=_QUARANTINE, getter_index=1),
    _p(_QUARANTINE[2], "etc", "WorkVerification", "setQuarantine", "quarantine", Unit.SECONDS, 60, 30 * DAY,
       "how long a quarantine lasts", args=_QUARANTINE, getter_index=2),
    _addr("verification.inbox", "etc", "WorkVerification", "setInbox", "inbox", "the ETC bridge inbox it obeys"),
    _addr("verification.outbox", "etc", "WorkVerification", "setOutbox", "outbox",
          "the ETC bridge outbox results go through"),
    _addr("verification.reputation", "etc", "WorkVerification", "setReputation", "reputation",
          "the ReputationSystem outcomes are recorded in"),
    _p("verification.eth_chain_id", "etc", "WorkVerification", "setPeer", "ethChainId", Unit.COUNT, 1, None,
       "chain id of ETH", args=_WV_PEER),
    _addr("verification.gpu_rental", "etc", "WorkVerification", "setPeer", "gpuRental", "GPURental on ETH",
          args=_WV_PEER),
    # -- ETC: ReputationSystem
    _addr("reputation.inbox", "etc", "ReputationSystem", "setInbox", "inbox", "the ETC bridge inbox feedback arrives by"),
    _p("reputation.eth_chain_id", "etc", "ReputationSystem", "setPeer", "ethChainId", Unit.COUNT, 1, None,
       "chain id of ETH", args=_REP_PEER),
    _addr("reputation.gpu_rental", "etc", "ReputationSystem", "setPeer", "gpuRental", "GPURental on ETH",
          args=_REP_PEER),
    *(
        _p(name, "etc", "ReputationSystem", "setScoreParams", "scoreParams",
           Unit.BPS if name.endswith("_bps") else Unit.COUNT, 0 if name.endswith("_bps") else 1,
           10_000 if name.endswith("_bps") else 1_000_000,
           ("weight of " if name.endswith("_bps") else "prior (pseudo-count) of ")
           + name.split(".")[1].split("_")[0] + " outcomes in the score (the three weights sum to 10000)",
           args=(_SCORE,), getter_index=field)
        for name, field in zip(_SCORE, _SCORE_FIELDS, strict=True)
    ),
    *_bridge("etc"),
)

BY_NAME: Mapping[str, Param] = {p.name: p for p in PARAMS}

#: Setters of governed contracts that are not parameters, and why.
NOT_PARAMETERS: Mapping[tuple[str, str], str] = {
    ("BridgeInbox", "setSource"): "a trust list keyed by (chain, outbox), not one value: a raw proposal changes it",
    ("TokenDistributor", "setEpochRoot"): "publishes an epoch's rewards (REWARDS_ROLE), not a parameter",
    ("Governance", "updateTimelock"): "moves governance to another timelock: a raw proposal, never a parameter edit",
    ("ComputeVoucher", "setApprovalForAll"): "an ERC-1155 holder's approval of an operator, not governance's",
}

#: Relations between the values one setter takes, as the contract checks them.
_RELATIONS: Mapping[str, Callable[[Mapping[str, Value]], str]] = {
    "setDurationBounds": lambda v: "" if _int(v, _DUR[0]) <= _int(v, _DUR[1]) else
    "rental.min_duration must not exceed rental.max_duration",
    "setQuoteBounds": lambda v: "" if _int(v, _QUOTE[0]) <= _int(v, _QUOTE[1]) else
    "rental.min_quote must not exceed rental.max_quote",
    "setQuarantine": lambda v: "" if _int(v, _QUARANTINE[1]) <= _int(v, _QUARANTINE[0]) else
    "verification.quarantine_failures must not exceed verification.quarantine_window",
    "setScoreParams": lambda v: "" if sum(_int(v, n) for n in _SCORE[3:]) == 10_000 else
    "reputation.challenge_weight_bps + task_weight_bps + rating_weight_bps must sum to 10000",
}


def _int(values: Mapping[str, Value], name: str) -> int:
    v = values[name]
    assert isinstance(v, int)
    return v


def param(name: str) -> Param:
    """The parameter called ``name``.

    Raises:
        InvalidArgumentError: no such parameter (the message lists the close ones).
    """
    try:
        return BY_NAME[name]
    except KeyError:
        prefix = name.split(".")[0]
        close = [n for n in BY_NAME if n.startswith(prefix + ".")] or sorted(BY_NAME)[:8]
        raise InvalidArgumentError(f"unknown governance parameter {name!r}; e.g. {', '.join(close)} "
                                   "(`blendr gov params` lists them all)") from None


def siblings(p: Param) -> list[str]:
    """Names of every parameter ``p``'s setter takes (``p`` included), in argument order."""
    out: list[str] = []
    for a in p.setter_args:
        if isinstance(a, str):
            out.append(a)
        elif isinstance(a, tuple):
            out.extend(a)
    return out


def setter_args(p: Param, values: Mapping[str, Value]) -> list[Any]:
    """The arguments of ``p``'s setter, from ``values`` (which must hold every sibling of ``p``).

    Raises:
        InvalidArgumentError: a value is out of bounds, or the values break a relation the contract checks
            (min above max, a threshold above the number of attesters, weights not summing to 10000).
    """
    for n in siblings(p):
        BY_NAME[n].check(values[n])
    relation = _RELATIONS.get(p.setter)
    problem = relation(values) if relation else ""
    if p.setter == "setAttesters":
        chain = p.name.split(".")[0]
        attesters, k = values[f"{chain}.attesters"], values[f"{chain}.threshold"]
        assert isinstance(attesters, tuple) and isinstance(k, int)
        if k > len(attesters):
            problem = f"{chain}.threshold {k} exceeds the {len(attesters)} attesters"
    if problem:
        raise InvalidArgumentError(problem)
    out: list[Any] = []
    for a in p.setter_args:
        if isinstance(a, Const):
            out.append(a.value)
        elif isinstance(a, tuple):
            out.append(tuple(values[n] for n in a))
        else:
            v = values[a]
            out.append(list(v) if isinstance(v, tuple) else v)
    return out


def setter_groups(names: Sequence[str]) -> list[list[str]]:
    """``names`` grouped by the call that sets them (one call per contract and setter and constant args)."""
    groups: dict[tuple[str, str, str, tuple[Any, ...]], list[str]] = {}
    for n in names:
        p = param(n)
        key = (p.chain, p.contract, p.setter, tuple(a.value for a in p.setter_args if isinstance(a, Const)))
        groups.setdefault(key, []).append(n)
    return list(groups.values())


def from_chain(p: Param, raw: Any) -> Value:
    """A getter's raw answer as ``p``'s value."""
    if p.getter_index is not None:
        if isinstance(p.getter_index, str):
            raw = raw[p.getter_index] if isinstance(raw, dict) else raw[_SCORE_FIELDS.index(p.getter_index)]
        else:
            raw = raw[p.getter_index]
    if p.unit is Unit.ADDRESS:
        return str(to_checksum_address(raw))
    if p.unit is Unit.ADDRESSES:
        return tuple(str(to_checksum_address(a)) for a in raw)
    return int(raw)


__all__ = ["BY_NAME", "DEPTHS", "MAX_ETC_CONFIRMATIONS", "MAX_ETH_CONFIRMATIONS", "NOT_PARAMETERS", "PARAMS", "Const",
           "Param", "Unit", "Value", "format_value", "from_chain", "param", "parse_value", "setter_args",
           "setter_groups", "siblings"]
