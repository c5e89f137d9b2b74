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

Every key is required except the depths (defaults: eth 12, etc 4000) and ``eth_eip1559`` (true) /
``etc_eip1559`` (false: Ethereum Classic has no EIP-1559).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

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
    if not len(net.attesters) < 2 * net.threshold <= 2 * len(net.attesters):
        raise ConfigError(f"[network.{name}]: threshold {net.threshold} must be a majority of the "
                          f"{len(net.attesters)} attesters")
    if net.eth_confirmations < 1 or net.etc_confirmations < 1:
        raise ConfigError(f"[network.{name}]: confirmation depths must be >= 1")
    return net


_DEFAULTED = {"eth_confirmations", "etc_confirmations", "eth_eip1559", "etc_eip1559"}
