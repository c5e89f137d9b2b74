"""The on-chain stake oracle: a provider may join when its stake in ``StakingManager`` covers one GPU.

Reads ``stakeOf(provider, Tier.Provider)`` and ``minStake(Tier.Provider)`` (per GPU) on Ethereum. Answers
are cached for ``ttl_s`` so reconnect storms do not turn into RPC storms; the chain is asked with a short
timeout and few retries because admission runs on the queen's event loop. When the chain cannot be read,
admission fails closed with a reason the operator can act on.
"""

from __future__ import annotations

import threading
from typing import Any

from blendr.chain.contracts import StakingManager, Tier
from blendr.clock import Clock, SystemClock
from blendr.errors import BlendrError
from blendr.identity import Address
from blendr.units import fmt_tokens
from queen.admission import StakeDecision, StakeOracle


class ChainStakeOracle(StakeOracle):
    """Admits addresses whose provider-tier stake is at least the per-GPU minimum."""

    def __init__(self, client: Any, staking_address: str, *, ttl_s: float = 30.0, clock: Clock | None = None) -> None:
        """Args:
            client: a blendr.chain.client.ChainClient on Ethereum (no key needed).
            staking_address: the StakingManager from the deployment manifest.

        Raises:
            ChainError: ``staking_address`` is not an address.
        """
        self._staking = StakingManager(client, staking_address)
        self._ttl = ttl_s
        self._clock = clock or SystemClock()
        self._cache: dict[str, tuple[float, StakeDecision]] = {}
        self._lock = threading.Lock()
        # governance parameters as the queen follows them (blendr.chain.govwatch.GovWatch); None: read here
        self.gov: Any = None

    def forget(self) -> None:
        """Drops every cached decision (the minimum changed: decide again)."""
        with self._lock:
            self._cache.clear()

    def _minimum(self) -> int:
        followed = self.gov.get("staking.min_stake_provider") if self.gov is not None else None
        return followed if isinstance(followed, int) else int(self._staking.min_stake(Tier.PROVIDER))

    def check(self, address: Address) -> StakeDecision:
        now = self._clock.time()
        with self._lock:
            hit = self._cache.get(address)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        try:
            stake = self._staking.stake_of(address, Tier.PROVIDER)
            minimum = self._minimum()
        except BlendrError as exc:
            return StakeDecision(False, f"cannot read the provider's stake on chain ({exc}); try again later")
        # All 18 places: a stake just below the minimum must not read as equal to it.
        staked, least = fmt_tokens(stake, places=18), fmt_tokens(minimum, places=18)
        if stake >= minimum and stake > 0:
            decision = StakeDecision(True, f"staked {staked} GPUTOKEN (minimum {least} per GPU)")
        else:
            decision = StakeDecision(
                False, f"provider stake {staked} GPUTOKEN is below the minimum {least} per GPU: "
                       "stake with `blendr stake provider AMOUNT` first")
        with self._lock:
            self._cache[address] = (now, decision)
        return decision


def make_chain_oracle(cfg: Any, manifest: Any = None) -> ChainStakeOracle:
    """The oracle for a queen configured with ``queen.admission = "stake"``, from its deployment manifest."""
    from dataclasses import replace

    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import chain_settings, load_manifest

    m = manifest or load_manifest(cfg)
    settings = replace(chain_settings(cfg, m, "eth"), rpc_timeout_s=2.0, retries=2, retry_max_wait_s=0.5)
    return ChainStakeOracle(ChainClient(settings), m.eth.address("StakingManager"))


__all__ = ["ChainStakeOracle", "make_chain_oracle"]
