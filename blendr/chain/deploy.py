"""Deploys and wires every BlendrChain contract on Ethereum and Ethereum Classic.

One function, :func:`deploy_system`, does it for any network: deploy, wire the bridge (each inbox trusts
the other chain's outbox; GPURental and WorkVerification may send), grant the operational roles (the king
schedules rentals, GPURental slashes, WorkVerification records reputation, queens attest), then hand every
admin and parameter role to governance — the ETH timelock, and on ETC the bridge governance executor that
runs what the timelock sends over the bridge — and renounce the deployer's. ``deploy_devnet`` adds the
devnet's funding (GPUTOKEN and stakes for the well-known accounts).

Genesis (:func:`genesis`, reasoning in docs/chains.md "Governance at genesis"): the initial supply is
minted to TokenDistributor, which at once vests Team, Investors and Advisors shares in VotesVestingWallets
of the configured beneficiaries (their votes count from the first block), sends the Treasury share to the
Timelock and keeps the Community share under the Timelock's allocator role. Guarantee: a deployment with
these parameters can pass a proposal — :func:`check_governable` refuses parameters where the votes that
exist at genesis cannot reach quorum, or no beneficiary reaches the proposal threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from blendr.chain.devkeys import DEV_KEYS, ETC_CHAIN_ID, ETH_CHAIN_ID, ROLES
from blendr.chain.manifest import ChainDeployment, Manifest
from blendr.chain.rewards import setup_rewards
from blendr.errors import ConfigError
from blendr.units import parse_tokens, tokens

if TYPE_CHECKING:
    from web3.contract import Contract

    from blendr.chain.client import ChainClient
    from blendr.config import Config

ZERO = "0x0000000000000000000000000000000000000000"
DEFAULT_ADMIN_ROLE = b"\x00" * 32


def role(name: str) -> bytes:
    return bytes(keccak(text=name))


# TokenDistributor's Category enum, and each category's share of the initial supply (its categoryBps)
CATEGORIES = {"team": 0, "investors": 1, "advisors": 2, "community": 3, "treasury": 4}
CATEGORY_BPS = {"team": 1_500, "investors": 1_500, "advisors": 500, "community": 4_500, "treasury": 2_000}
VESTED = ("team", "investors", "advisors")
YEAR_S = 365 * 24 * 3600


@dataclass(frozen=True)
class Grant:
    """A genesis allocation to ``beneficiary``, vesting in a VotesVestingWallet whose votes count for it.

    ``amount`` (wei) None: the category's whole share (then the only grant of its category).
    """

    beneficiary: str
    amount: int | None = None


@dataclass(frozen=True)
class Vesting:
    """A vesting schedule: nothing releasable before ``cliff_s``, everything after ``duration_s``."""

    cliff_s: int
    duration_s: int


def _default_vesting() -> dict[str, Vesting]:
    return {"team": Vesting(YEAR_S, 4 * YEAR_S), "investors": Vesting(YEAR_S, 2 * YEAR_S),
            "advisors": Vesting(YEAR_S // 2, 2 * YEAR_S)}


@dataclass
class DeployParams:
    """Everything a deployment decides; defaults are the production ones (the devnet shortens the clocks)."""

    treasury: str  # receives protocol fees and slashed stake (the Treasury *share* of the supply: the Timelock)
    scheduler: str  # the king's address: may create rentals
    attesters: list[str]  # queens that sign bridge attestations
    threshold: int
    guardian: str  # may pause the inboxes (an operator's hot key; unpausing is governance's)
    # genesis beneficiaries of the vested categories (15 %, 15 %, 5 % of the initial supply); their votes
    # are the only ones that exist at genesis, so each category needs at least one
    team: list[Grant]
    investors: list[Grant]
    advisors: list[Grant]
    vesting: dict[str, Vesting] = field(default_factory=_default_vesting)
    vesting_start: int = 0  # unix seconds; 0: the genesis block's time
    token_cap: int = tokens(1_000_000_000)
    distributor_supply: int = tokens(100_000_000)
    min_stake_provider_per_gpu: int = tokens(1_000)
    min_stake_queen: int = tokens(5_000)
    min_stake_king: int = tokens(10_000)
    unbonding_delay_s: int = 7 * 24 * 3600
    timelock_delay_s: int = 2 * 24 * 3600
    # seconds: GPUToken's votes (and so Governance) run on a timestamp clock (ERC-6372 mode=timestamp)
    voting_delay_s: int = 24 * 3600  # a proposal's snapshot, and the start of its vote, a day after it
    voting_period_s: int = 7 * 24 * 3600
    proposal_threshold_bps: int = 1  # of the initial supply: 0.01 % (10,000 GPUTOKEN of 100 M)
    quorum_percent: int = 4  # of total supply at the snapshot (4 M of 100 M; 35 M can vote at genesis)
    rate_window_s: int = 3_600
    rate_max_messages: int = 10_000
    max_fail_bps: int = 1_000
    finalize_grace_s: int = 3 * 24 * 3600
    max_batch_size: int = 1_000
    min_rental_s: int = 600
    max_rental_s: int = 30 * 24 * 3600
    challenge_interval_s: int = 300  # the longest mean interval between a rented provider's challenges
    # GPU-hours as tokens: ComputeVoucher classes listed at deployment (model -> GPUTOKEN wei per GPU-hour; None:
    # every model of the king's reference price table at its base price), and the share of protocol fees burned.
    voucher_classes: dict[str, int] | None = None
    fee_burn_bps: int = 0
    voucher_redeem_fee_bps: int = 100

    @property
    def proposal_threshold(self) -> int:
        """Votes needed to propose, in wei: ``proposal_threshold_bps`` of the initial supply."""
        return self.distributor_supply * self.proposal_threshold_bps // 10_000

    def genesis_amounts(self) -> dict[str, list[tuple[str, int]]]:
        """(beneficiary, wei) per vested category, with whole-share grants resolved.

        Raises:
            ConfigError: a category without a beneficiary, a whole-share grant beside others, a zero amount,
                or grants above the category's share.
        """
        out: dict[str, list[tuple[str, int]]] = {}
        for cat in VESTED:
            grants: list[Grant] = getattr(self, cat)
            share = self.distributor_supply * CATEGORY_BPS[cat] // 10_000
            if not grants:
                raise ConfigError(f"genesis: no {cat} beneficiary (the {cat} share vests in its beneficiaries' "
                                  f"wallets, whose votes are the ones that exist at genesis): set {cat} = [\"0x…\"]")
            if any(g.amount is None for g in grants) and len(grants) > 1:
                raise ConfigError(f"genesis: {cat}: a grant without an amount takes the whole share, so it must be "
                                  f"the only one (give every {cat} grant an amount)")
            amounts = [(g.beneficiary, share if g.amount is None else g.amount) for g in grants]
            if any(a <= 0 for _, a in amounts):
                raise ConfigError(f"genesis: {cat}: every grant needs a positive amount")
            total = sum(a for _, a in amounts)
            if total > share:
                raise ConfigError(f"genesis: {cat} grants total {total} wei, above the {cat} share of "
                                  f"{CATEGORY_BPS[cat] / 100:g} % ({share} wei)")
            if cat not in self.vesting or not 0 <= self.vesting[cat].cliff_s <= self.vesting[cat].duration_s \
                    or self.vesting[cat].duration_s <= 0:
                raise ConfigError(f"genesis: {cat} needs a vesting schedule with 0 <= cliff <= duration, duration > 0")
            out[cat] = amounts
        return out


def check_governable(p: DeployParams) -> None:
    """Refuses parameters under which no proposal could ever pass: the votes that exist at genesis (the vested
    grants, delegated to their beneficiaries) must reach quorum, and some beneficiary the proposal threshold.

    Raises:
        ConfigError: with the numbers that do not add up.
    """
    amounts = p.genesis_amounts()
    if not 0 < p.quorum_percent <= 100 or not 0 <= p.proposal_threshold_bps <= 10_000:
        raise ConfigError(f"quorum {p.quorum_percent} % / threshold {p.proposal_threshold_bps} bps out of range")
    if not 0 <= p.voting_delay_s < 2**48 or not 0 < p.voting_period_s < 2**32:
        raise ConfigError(f"voting delay {p.voting_delay_s} s / period {p.voting_period_s} s out of range "
                          "(delay 0 or more, period 1 s or more)")
    voting = sum(a for grants in amounts.values() for _, a in grants)
    quorum = p.distributor_supply * p.quorum_percent // 100
    if voting < quorum:
        raise ConfigError(f"genesis: {voting} wei can vote at genesis, below the quorum of {quorum} wei "
                          f"({p.quorum_percent} % of the supply): no proposal could pass")
    largest = max(a for grants in amounts.values() for _, a in grants)
    if largest < p.proposal_threshold:
        raise ConfigError(f"genesis: the largest grant ({largest} wei) is below the proposal threshold "
                          f"({p.proposal_threshold} wei): nobody could propose")


def check_depths(depths: dict[str, int]) -> None:
    """Refuses confirmation depths Governance would refuse (1..MAX_ETH_CONFIRMATIONS on ETH, 1..MAX_ETC_CONFIRMATIONS
    on ETC), before any transaction.

    Raises:
        ConfigError: naming the depth and its bounds.
    """
    from blendr.chain import govparams as gp

    for chain, depth in depths.items():
        p = gp.param(gp.DEPTHS[chain])
        assert p.lo is not None and p.hi is not None
        if not p.lo <= depth <= p.hi:
            raise ConfigError(f"{chain}_confirmations {depth} is out of bounds: governance allows {p.lo}..{p.hi} "
                              "blocks")


Echo = Callable[[str], None]


def _send_all(client: ChainClient, calls: list[Any]) -> None:
    """Sends independent transactions back to back, then waits for all of them."""
    hashes = [client.transact(fn, wait=False) for fn in calls]
    for h in hashes:
        client.wait(str(h))


def deploy_system(eth: ChainClient, etc: ChainClient, p: DeployParams, *, network: str,
                  echo: Echo = print) -> Manifest:
    """Deploys, wires and hands over every contract; returns the manifest (not yet saved).

    Raises:
        ConfigError: the parameters are inconsistent (e.g. threshold above the attester count).
        ContractRevertError / UnavailableError: a transaction failed.
    """
    if not len(p.attesters) < 2 * p.threshold <= 2 * len(p.attesters):
        raise ConfigError(f"bridge threshold {p.threshold} must be a majority of the {len(p.attesters)} attesters")
    check_governable(p)
    depths = {"eth": eth.settings.confirmations, "etc": etc.settings.confirmations}
    check_depths(depths)
    eth.check_chain_id()
    etc.check_chain_id()
    d = eth.address
    if etc.address != d:
        raise ConfigError("deploy with the same key on both chains (the deployer renounces on both)")
    eth_id, etc_id = eth.settings.chain_id, etc.settings.chain_id
    eth_start, etc_start = eth.block_number(), etc.block_number()

    echo(f"eth: deploying to chain {eth_id} from {d}")
    token = eth.deploy("GPUToken", d, p.token_cap)
    timelock = eth.deploy("BlendrTimelock", p.timelock_delay_s, [], [], d)
    staking = eth.deploy("StakingManager", d, token.address, p.treasury,
                         [p.min_stake_provider_per_gpu, p.min_stake_queen, p.min_stake_king], p.unbonding_delay_s)
    # the nodes' confirmation depths start as the network's (its config's, the devnet's 1): governance's from now on
    governance = eth.deploy("Governance", token.address, staking.address, timelock.address, p.voting_delay_s,
                            p.voting_period_s, p.proposal_threshold, p.quorum_percent, depths["eth"], depths["etc"])
    eth_outbox = eth.deploy("BridgeOutbox", d)
    eth_inbox = eth.deploy("BridgeInbox", d, p.attesters, p.threshold, p.rate_window_s, p.rate_max_messages)
    rental = eth.deploy("GPURental", d, token.address, staking.address, eth_outbox.address, eth_inbox.address,
                        p.treasury)
    distributor = eth.deploy("TokenDistributor", d, token.address, timelock.address)  # Treasury share: governance's

    echo(f"etc: deploying to chain {etc_id} from {d}")
    etc_outbox = etc.deploy("BridgeOutbox", d)
    etc_inbox = etc.deploy("BridgeInbox", d, p.attesters, p.threshold, p.rate_window_s, p.rate_max_messages)
    reputation = etc.deploy("ReputationSystem", d)
    work = etc.deploy("WorkVerification", d, etc_inbox.address, etc_outbox.address, eth_id, rental.address,
                      reputation.address, p.max_fail_bps, p.finalize_grace_s, p.max_batch_size)
    executor = etc.deploy("BridgeGovernanceExecutor", etc_inbox.address, eth_id, timelock.address)

    echo("wiring the bridge and roles")
    _send_all(eth, [
        eth_outbox.functions.grantRole(role("SENDER_ROLE"), rental.address),
        eth_outbox.functions.grantRole(role("SENDER_ROLE"), timelock.address),
        eth_inbox.functions.setSource(etc_id, etc_outbox.address, True),
        eth_inbox.functions.grantRole(role("GUARDIAN_ROLE"), p.guardian),
        rental.functions.setEtcPeers(etc_id, work.address, reputation.address),
        rental.functions.setDurationBounds(p.min_rental_s, p.max_rental_s),
        rental.functions.grantRole(role("SCHEDULER_ROLE"), p.scheduler),
        staking.functions.grantRole(role("SLASHER_ROLE"), rental.address),
        staking.functions.setLocker(rental.address),  # open rentals reserve provider stake until they settle
        token.functions.grantRole(role("MINTER_ROLE"), d),
        timelock.functions.grantRole(role("PROPOSER_ROLE"), governance.address),
        timelock.functions.grantRole(role("CANCELLER_ROLE"), governance.address),
        timelock.functions.grantRole(role("EXECUTOR_ROLE"), ZERO),  # anyone may execute a passed proposal
        distributor.functions.grantRole(role("ALLOCATOR_ROLE"), timelock.address),  # allocations by governance
        # epoch reward roots move up to the community allocation: governance publishes them, not a hot key
        distributor.functions.grantRole(role("REWARDS_ROLE"), timelock.address),
    ])
    # --- rewards (issue 13): the king publishes reward epochs, each within the caps governance sets ---
    setup_rewards(eth, distributor, p.scheduler)
    _send_all(etc, [
        etc_outbox.functions.grantRole(role("SENDER_ROLE"), work.address),
        etc_inbox.functions.setSource(eth_id, eth_outbox.address, True),
        etc_inbox.functions.grantRole(role("GUARDIAN_ROLE"), p.guardian),
        reputation.functions.grantRole(role("RECORDER_ROLE"), work.address),
        reputation.functions.setInbox(etc_inbox.address),
        reputation.functions.setPeer(eth_id, rental.address),
        work.functions.setChallengeInterval(p.challenge_interval_s),
    ])
    # each outbox's busiest sender (holding SENDER_ROLE by now) sends without a role lookup
    eth.transact(eth_outbox.functions.setPrimarySender(rental.address))
    etc.transact(etc_outbox.functions.setPrimarySender(work.address))
    eth.transact(token.functions.mint(distributor.address, p.distributor_supply))
    allocations = genesis(eth, distributor, timelock.address, p, echo=echo)

    contracts_eth = {
        "GPUToken": token, "BlendrTimelock": timelock, "StakingManager": staking, "Governance": governance,
        "BridgeOutbox": eth_outbox, "BridgeInbox": eth_inbox, "GPURental": rental, "TokenDistributor": distributor,
    }
    contracts_eth["ComputeVoucher"] = deploy_vouchers(eth, rental, token.address, p, echo=echo)
    contracts_etc = {
        "BridgeOutbox": etc_outbox, "BridgeInbox": etc_inbox, "ReputationSystem": reputation,
        "WorkVerification": work, "BridgeGovernanceExecutor": executor,
    }
    manifest = Manifest(
        network=network,
        eth=ChainDeployment(eth.settings.rpc_url, eth_id, eth.settings.confirmations, eth.settings.eip1559,
                            eth_start, {k: c.address for k, c in contracts_eth.items()}),
        etc=ChainDeployment(etc.settings.rpc_url, etc_id, etc.settings.confirmations, etc.settings.eip1559,
                            etc_start, {k: c.address for k, c in contracts_etc.items()}),
        deployer=d,
    )
    manifest.accounts["treasury"] = p.treasury
    manifest.accounts["scheduler"] = p.scheduler
    manifest.accounts["attesters"] = list(p.attesters)
    manifest.accounts["threshold"] = p.threshold
    manifest.accounts["guardian"] = p.guardian
    manifest.accounts["genesis"] = allocations
    return manifest


def genesis(eth: ChainClient, distributor: Contract, timelock: str, p: DeployParams, *,
            echo: Echo = print) -> dict[str, list[dict[str, Any]]]:
    """Hands out the initial supply held by ``distributor``: the vested grants into VotesVestingWallets (their
    votes count for the beneficiaries at once), the Treasury share to the Timelock; the Community share stays
    in the distributor under the Timelock's allocator role. The deployer holds ALLOCATOR_ROLE only meanwhile.

    Returns per category the grants made: beneficiary, wallet, amount (wei), start, cliff, duration.
    """
    from web3.logs import DISCARD

    amounts = p.genesis_amounts()
    start = p.vesting_start or int(eth.w3.eth.get_block("latest")["timestamp"])
    d = eth.address
    eth.transact(distributor.functions.grantRole(role("ALLOCATOR_ROLE"), d))
    calls: list[Any] = []
    for cat in VESTED:
        v = p.vesting[cat]
        for who, amount in amounts[cat]:
            calls.append(distributor.functions.allocate(CATEGORIES[cat], who, amount, start, v.cliff_s, v.duration_s))
    treasury_share = p.distributor_supply * CATEGORY_BPS["treasury"] // 10_000
    calls.append(distributor.functions.allocate(CATEGORIES["treasury"], timelock, treasury_share, 0, 0, 0))
    voting = sum(a for grants in amounts.values() for _, a in grants)
    echo(f"genesis: {voting} wei vesting with votes in {len(calls) - 1} wallets, {treasury_share} wei to the "
         "timelock, the community share stays in the distributor")
    hashes = [eth.transact(fn, wait=False) for fn in calls]
    out: dict[str, list[dict[str, Any]]] = {}
    names = {v: k for k, v in CATEGORIES.items()}
    for h in hashes:
        receipt = eth.wait(str(h))
        for ev in distributor.events.Allocated().process_receipt(receipt, errors=DISCARD):  # skip Transfer & co
            a = ev["args"]
            out.setdefault(names[int(a["category"])], []).append({
                "beneficiary": a["beneficiary"], "wallet": a["wallet"], "amount": int(a["amount"]),
                "start": int(a["start"]), "cliff": int(a["cliff"]), "duration": int(a["duration"])})
    eth.transact(distributor.functions.renounceRole(role("ALLOCATOR_ROLE"), d))
    return out


def reference_voucher_classes() -> dict[str, int]:
    """One class per model of the king's reference price table, at its base price per GPU-hour (wei)."""
    from blendr.prices import DEFAULT_BASE_PER_GPU_HOUR

    return dict(DEFAULT_BASE_PER_GPU_HOUR)


def devnet_voucher_classes(min_price: int) -> dict[str, int]:
    """The reference classes, none priced below ``min_price`` wei per GPU-hour (the devnet providers' ask)."""
    return {model: max(price, min_price) for model, price in reference_voucher_classes().items()}


def deploy_vouchers(eth: ChainClient, rental: Contract, token: str, p: DeployParams, *, echo: Echo = print) -> Contract:
    """Deploys ComputeVoucher for ``rental``, points GPURental at it, lists the classes and sets the fee burn.

    Runs while the deployer still governs GPURental (before :func:`hand_over`, which hands ComputeVoucher's roles
    to the timelock with the rest of the manifest).
    """
    classes = reference_voucher_classes() if p.voucher_classes is None else p.voucher_classes
    echo(f"eth: deploying ComputeVoucher with {len(classes)} GPU classes")
    vouchers = eth.deploy("ComputeVoucher", eth.address, token, rental.address)
    calls: list[Any] = [rental.functions.setComputeVoucher(vouchers.address)]
    if p.fee_burn_bps:
        calls.append(rental.functions.setFeeBurnBps(p.fee_burn_bps))
    if p.voucher_redeem_fee_bps != 100:
        calls.append(vouchers.functions.setRedeemFeeBps(p.voucher_redeem_fee_bps))
    calls += [vouchers.functions.listClass(model, price) for model, price in sorted(classes.items())]
    _send_all(eth, calls)
    return vouchers


def hand_over(eth: ChainClient, etc: ChainClient, m: Manifest, *, echo: Echo = print) -> None:
    """Gives every admin and parameter role to governance and renounces the deployer's roles."""
    d = eth.address
    timelock = m.eth.address("BlendrTimelock")
    executor = m.etc.address("BridgeGovernanceExecutor")
    echo(f"handing admin and parameter roles to the timelock {timelock} (eth) and executor {executor} (etc)")
    _hand(eth, m.eth.contracts, timelock, d, skip={"BlendrTimelock", "Governance"},
          extra_renounce={"GPUToken": ["MINTER_ROLE"]}, extra_grant={"GPUToken": ["MINTER_ROLE"]})
    _hand(etc, m.etc.contracts, executor, d, skip={"BridgeGovernanceExecutor"})
    tl = eth.contract("BlendrTimelock", timelock)
    eth.transact(tl.functions.renounceRole(DEFAULT_ADMIN_ROLE, d))


def _hand(client: ChainClient, contracts: dict[str, str], owner: str, deployer: str, *, skip: set[str],
          extra_renounce: dict[str, list[str]] | None = None, extra_grant: dict[str, list[str]] | None = None) -> None:
    grants: list[Any] = []
    renounces: list[Any] = []
    for name, addr in contracts.items():
        if name in skip:
            continue
        c = client.contract(name, addr)
        roles = [DEFAULT_ADMIN_ROLE]
        if _has_role_constant(c, "GOVERNOR_ROLE"):
            roles.append(role("GOVERNOR_ROLE"))
        for r in roles + [role(x) for x in (extra_grant or {}).get(name, [])]:
            grants.append(c.functions.grantRole(r, owner))
        for r in [role(x) for x in (extra_renounce or {}).get(name, [])] + roles[::-1]:
            renounces.append(c.functions.renounceRole(r, deployer))
    _send_all(client, grants)
    _send_all(client, renounces)


def _has_role_constant(c: Contract, name: str) -> bool:
    return any(i.get("type") == "function" and i.get("name") == name for i in c.abi)


def fund_devnet(eth: ChainClient, m: Manifest, accounts: dict[str, str], cfg: Config, *, echo: Echo = print) -> None:
    """Mints GPUTOKEN to every devnet account and stakes for the king, queens and providers."""
    token = eth.contract("GPUToken", m.eth.address("GPUToken"))
    staking = eth.contract("StakingManager", m.eth.address("StakingManager"))
    dv = cfg.devnet
    stakes = {"king": (2, tokens(dv.king_stake)), "queen": (1, tokens(dv.queen_stake)),
              "provider": (0, tokens(dv.provider_stake))}
    total_stake = sum(stakes[_kind(n)][1] for n in accounts if _kind(n) in stakes)
    echo(f"funding {len(accounts)} devnet accounts with {dv.fund_tokens} GPUTOKEN each, and their stakes")
    _send_all(eth, [token.functions.mint(addr, tokens(dv.fund_tokens)) for addr in accounts.values()]
              + [token.functions.mint(eth.address, total_stake)])
    eth.transact(token.functions.approve(staking.address, total_stake))
    _send_all(eth, [staking.functions.stakeFor(addr, stakes[_kind(n)][0], stakes[_kind(n)][1])
                    for n, addr in accounts.items() if _kind(n) in stakes])


def _kind(name: str) -> str:
    return name.rstrip("0123456789")


def deploy_devnet(cfg: Config, *, echo: Echo = print, eth_url: str = "", etc_url: str = "",
                  confirmations: tuple[int, int] = (1, 1)) -> Manifest:
    """Deploys to the running devnet chains, funds the devnet accounts, hands over to governance.

    ``eth_url``/``etc_url`` default to the devnet ports; ``confirmations`` (eth, etc) go into the manifest.
    """
    from dataclasses import replace

    from eth_account import Account

    from blendr.chain.client import ChainClient, ChainSettings

    host = cfg.devnet.host
    deployer = Account.from_key(DEV_KEYS[ROLES["deployer"]])
    base = ChainSettings("eth", eth_url or f"http://{host}:{cfg.devnet.eth_port}", ETH_CHAIN_ID,
                         confirmations=confirmations[0], poll_s=0.02)
    eth = ChainClient(base, deployer)
    etc = ChainClient(replace(base, name="etc", rpc_url=etc_url or f"http://{host}:{cfg.devnet.etc_port}",
                              chain_id=ETC_CHAIN_ID, eip1559=False, confirmations=confirmations[1]), deployer)
    accounts = {name: Account.from_key(DEV_KEYS[i]).address for name, i in ROLES.items()}
    queens = [accounts[f"queen{i}"] for i in (1, 2, 3)]
    params = DeployParams(
        treasury=accounts["deployer"], scheduler=accounts["king"], attesters=sorted(queens), threshold=2,
        guardian=accounts["deployer"],
        # genesis votes on the devnet: well-known accounts, so a devnet session can propose and vote at once
        team=[Grant(accounts["deployer"])], investors=[Grant(accounts["renter"])],
        advisors=[Grant(accounts["provider4"])],
        # devnet governance moves in minutes, not days
        timelock_delay_s=60, voting_delay_s=1, voting_period_s=300, unbonding_delay_s=600,
        finalize_grace_s=3600,
        # devnet rentals can be a minute long, challenged at least every 10 s on average
        min_rental_s=60, challenge_interval_s=10,
        # vouchers the devnet's providers take: no class below what they ask by default (provider.ask_per_gpu_hour)
        voucher_classes=devnet_voucher_classes(parse_tokens(cfg.provider.ask_per_gpu_hour, "provider.ask_per_gpu_hour")))
    m = deploy_system(eth, etc, params, network="devnet", echo=echo)
    fund_devnet(eth, m, {k: v for k, v in accounts.items() if k != "deployer"}, cfg, echo=echo)
    hand_over(eth, etc, m, echo=echo)
    m.accounts["roles"] = accounts
    return m
