"""GovWatch: answers from memory, sees changes at the next refresh, tells listeners once, survives outages."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from blendr.chain import govparams as gp
from blendr.chain.govwatch import GovWatch
from blendr.errors import InvalidArgumentError, UnavailableError


class Chain:
    def __init__(self) -> None:
        self.values: dict[str, gp.Value] = {"verification.challenge_interval": 300, "staking.min_stake_provider": 7}
        self.down = False

    def read(self, names: Sequence[str]) -> Mapping[str, gp.Value]:
        if self.down:
            raise UnavailableError("etc RPC down")
        return {n: self.values[n] for n in names}


def test_fallback_until_the_first_read_then_changes_reach_listeners_once() -> None:
    chain = Chain()
    w = GovWatch(chain.read, list(chain.values), 30.0, fallback={"verification.challenge_interval": 120})
    seen: list[set[str]] = []
    w.on_change(lambda values, changed: seen.append(set(changed)))
    assert w.get("verification.challenge_interval") == 120 and w.get("staking.min_stake_provider") is None
    assert w.refresh() == {"verification.challenge_interval", "staking.min_stake_provider"}
    assert w.refresh() == set()
    chain.values["staking.min_stake_provider"] = 9
    assert w.refresh() == {"staking.min_stake_provider"}
    assert seen == [{"verification.challenge_interval", "staking.min_stake_provider"}, {"staking.min_stake_provider"}]
    assert w.get("staking.min_stake_provider") == 9


def test_an_outage_keeps_the_last_values_and_the_loop_goes_on() -> None:
    chain = Chain()
    w = GovWatch(chain.read, ["verification.challenge_interval"], 0.01)
    w.refresh()
    chain.down = True
    with pytest.raises(UnavailableError):
        w.refresh()
    assert w.get("verification.challenge_interval") == 300

    async def run_a_while() -> None:
        task = asyncio.create_task(w.run())
        await asyncio.sleep(0.05)
        chain.down, chain.values["verification.challenge_interval"] = False, 60
        for _ in range(200):
            if w.get("verification.challenge_interval") == 60:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run_a_while())
    assert w.get("verification.challenge_interval") == 60


def test_unknown_names_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        GovWatch(Chain().read, ["verification.challenge_intervall"], 30.0)


def test_an_out_of_bounds_value_on_chain_is_not_applied_and_a_failing_listener_stops_nothing() -> None:
    """A lying RPC (or a contract allowing what the registry does not) answering a challenge interval of 0 leaves
    the last good value; a listener that raises does not keep the next one from hearing the change."""
    chain = Chain()
    w = GovWatch(chain.read, list(chain.values), 30.0)
    heard: list[set[str]] = []

    def broken(values: Mapping[str, gp.Value], changed: set[str]) -> None:
        raise RuntimeError("a node part failed to apply it")

    w.on_change(broken)
    w.on_change(lambda values, changed: heard.append(set(changed)))
    w.refresh()
    chain.values["verification.challenge_interval"] = 0  # the registry's bounds: 10 s .. 1 day
    chain.values["staking.min_stake_provider"] = 8
    assert w.refresh() == {"staking.min_stake_provider"}
    assert w.get("verification.challenge_interval") == 300
    assert heard[-1] == {"staking.min_stake_provider"}
