"""Real networks for ``blendr chain deploy --network NAME``, declared in the node's config file.

A network is a ``[network.NAME]`` table in ``config.toml``::

    [network.testnet]
    eth_rpc_url = "https://sepolia.example/rpc"
    eth_chain_id = 11155111
    eth_confirmations = 12
    etc_rpc_url = "https://mordor.example/rpc"
    etc_chain_id = 63
    etc_confirmations = 4000       # ETC has had reorgs thousands of blocks deep
    key_file = "~/.blendr/deployer.key"   # hex private key, mode 0600, the same deployer on both chains
    treasury = "0x..."
    scheduler = "0x..."            # the king's address
    attesters = ["0x...", "0x...", "0x..."]
    threshold = 2
    guardian = "0x..."
    # genesis beneficiaries (docs/chains.md "Governance at genesis"): "ADDRESS" takes the category's whole
    # share (team 15 %, investors 15 %, advisors 5 % of the supply), "ADDRESS=TOKENS" a part of it
    team = ["0x..."]
    investors = ["0x...=10000000", "0x...=5000000"]
    advisors = ["0x..."]

Every key is required except the depths (defaults: eth 12, etc 4000; they become Governance's initial
``confirmations()``, bounds 1..1000 and 1..20000, and governance changes them afterwards) and ``eth_eip1559`` (true) /
``etc_eip1559`` (false: Ethereum Classic has no EIP-1559). The genesis keys are required too, unless
``blendr chain deploy --team/--investors/--advisors`` give them (the flags replace the keys).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from blendr.chain.deploy import Grant, check_depths
from blendr.config import Config
from blendr.errors import ConfigError, SignatureError


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    eth_rpc_url: str
    eth_chain_id: int
    etc_rpc_url: str
    etc_chain_id: int
    key_file: str
    treasury: str
    scheduler: str
    attesters: list[str]
    threshold: int
    guardian: str
    eth_confirmations: int = 12
    etc_confirmations: int = 4000
    eth_eip1559: bool = True
    etc_eip1559: bool = False
    # genesis beneficiaries: required, from here or from `blendr chain deploy --team/--investors/--advisors`
    team: list[str] = field(default_factory=list)
    investors: list[str] = field(default_factory=list)
    advisors: list[str] = field(default_factory=list)


def load_network(cfg: Config, name: str, config_file: str | None = None) -> NetworkConfig:
    """The ``[network.NAME]`` table of the node's config file.

    Raises:
        ConfigError: no such network, a missing or mistyped key, or an invalid address.
    """
    path = Path(config_file).expanduser() if config_file else cfg.path("config.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no config file {path}: declare [network.{name}] there (see `blendr chain deploy -h`)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    networks = data.get("network", {})
    if name not in networks:
        known = ", ".join(sorted(networks)) or "none"
        raise ConfigError(f"{path}: no [network.{name}] (declared: {known})")
    raw: dict[str, Any] = dict(networks[name])
    allowed = {f.name: f for f in fields(NetworkConfig) if f.name != "name"}
    unknown = set(raw) - set(allowed)
    if unknown:
        raise ConfigError(f"[network.{name}]: unknown keys {', '.join(sorted(unknown))}")
    missing = [k for k in allowed if k not in raw and k not in _DEFAULTED]
    if missing:
        raise ConfigError(f"[network.{name}]: missing {', '.join(missing)}")
    for key, value in raw.items():
        expected = {"int": int, "str": str, "bool": bool, "list[str]": list}[str(allowed[key].type)]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"[network.{name}] {key}: expected {allowed[key].type} (got {value!r})")
    net = NetworkConfig(name=name, **raw)
    from blendr.identity import to_address

    try:
        for who in [net.treasury, net.scheduler, net.guardian, *net.attesters]:
            to_address(who)
    except SignatureError as exc:
        raise ConfigError(f"[network.{name}]: invalid address: {exc}") from None
    for key in ("team", "investors", "advisors"):
        if getattr(net, key):
            parse_grants(getattr(net, key), f"[network.{name}] {key}")
    if not len(net.attesters) < 2 * net.threshold <= 2 * len(net.attesters):
        raise ConfigError(f"[network.{name}]: threshold {net.threshold} must be a majority of the "
                          f"{len(net.attesters)} attesters")
    try:
        check_depths({"eth": net.eth_confirmations, "etc": net.etc_confirmations})
    except ConfigError as exc:
        raise ConfigError(f"[network.{name}]: {exc}") from None
    return net


_DEFAULTED = {"eth_confirmations", "etc_confirmations", "eth_eip1559", "etc_eip1559", "team", "investors", "advisors"}


def parse_grants(entries: list[str], what: str) -> list[Grant]:
    """Genesis grants from ``"ADDRESS"`` (the category's whole share) or ``"ADDRESS=TOKENS"`` entries.

    Raises:
        ConfigError: not a list of such strings, an invalid address, or an amount that is not a positive number
            of GPUTOKEN (the message names ``what``).
    """
    from blendr.errors import InvalidArgumentError
    from blendr.identity import to_address
    from blendr.units import parse_tokens

    if not entries:
        raise ConfigError(f"{what}: no genesis beneficiary: give at least one (\"0xADDRESS\" for the whole share, "
                          f"\"0xADDRESS=TOKENS\" for part of it), as a config key or a `blendr chain deploy` flag")
    out: list[Grant] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ConfigError(f"{what}: expected \"0xADDRESS\" or \"0xADDRESS=TOKENS\" (got {entry!r})")
        addr, sep, amount = entry.partition("=")
        try:
            beneficiary = to_address(addr.strip())
            wei = parse_tokens(amount.strip(), what) if sep else None
        except (SignatureError, InvalidArgumentError) as exc:
            raise ConfigError(f"{what}: {entry[:100]!r}: {exc}") from None
        if wei is not None and wei <= 0:
            raise ConfigError(f"{what}: {entry[:100]!r}: the amount must be positive")
        out.append(Grant(beneficiary, wei))
    return out
