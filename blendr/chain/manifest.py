"""The deployment manifest every node reads: per chain, its RPC URL, chain id, depth and contract addresses.

Written by ``blendr devnet up`` and ``blendr chain deploy`` as ``<home>/deployment.json``; nodes find it
through ``chain.deployment`` in their config (the ``--deployment FILE`` flag). Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blendr.config import Config
from blendr.errors import ConfigError

MANIFEST_VERSION = 1
CHAINS = ("eth", "etc")


@dataclass
class ChainDeployment:
    """One chain of a deployment."""

    rpc_url: str
    chain_id: int
    confirmations: int  # the depth deployed; governance's since (Governance.confirmations, blendr.chain.depths)
    eip1559: bool
    deploy_block: int = 0
    contracts: dict[str, str] = field(default_factory=dict)

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            raise ConfigError(f"deployment has no contract {name!r} (has: {', '.join(sorted(self.contracts))})") from None


@dataclass
class Manifest:
    """A whole deployment: both chains, and (on a devnet) the roles of the well-known accounts."""

    network: str
    eth: ChainDeployment
    etc: ChainDeployment
    deployer: str = ""
    accounts: dict[str, Any] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    def chain(self, name: str) -> ChainDeployment:
        if name not in CHAINS:
            raise ConfigError(f"unknown chain {name!r} (known: eth, etc)")
        result: ChainDeployment = getattr(self, name)
        return result

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Manifest:
        try:
            if int(d.get("version", 0)) != MANIFEST_VERSION:
                raise ConfigError(f"deployment manifest version {d.get('version')} is not {MANIFEST_VERSION}")
            return cls(
                network=str(d["network"]), eth=ChainDeployment(**d["eth"]), etc=ChainDeployment(**d["etc"]),
                deployer=str(d.get("deployer", "")), accounts=dict(d.get("accounts", {})), version=MANIFEST_VERSION)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"deployment manifest is malformed: {exc!r}") from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".deployment-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.to_json(), fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)


def manifest_path(cfg: Config) -> Path:
    """Where this node's manifest is: ``chain.deployment`` or ``<home>/deployment.json``."""
    return Path(cfg.chain.deployment).expanduser() if cfg.chain.deployment else cfg.path("deployment.json")


def load_manifest(cfg: Config) -> Manifest:
    """The node's deployment manifest, with the node's RPC and depth overrides applied (a running king or queen
    then follows governance's depths, never going below the override: :mod:`blendr.chain.depths`).

    Raises:
        ConfigError: no manifest (run ``blendr devnet up`` or ``blendr chain deploy``), or it is malformed.
    """
    path = manifest_path(cfg)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no deployment manifest at {path}: pass --deployment FILE (or set chain.deployment) with the file "
            "that `blendr devnet up` or `blendr chain deploy --network NAME` wrote") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"deployment manifest {path} is not JSON: {exc}") from None
    m = Manifest.from_json(raw)
    c = cfg.chain
    if c.eth_rpc_url:
        m.eth.rpc_url = c.eth_rpc_url
    if c.etc_rpc_url:
        m.etc.rpc_url = c.etc_rpc_url
    if c.eth_confirmations >= 0:
        m.eth.confirmations = c.eth_confirmations
    if c.etc_confirmations >= 0:
        m.etc.confirmations = c.etc_confirmations
    return m


def chain_settings(cfg: Config, m: Manifest, name: str) -> Any:
    """ChainSettings for chain ``name`` of manifest ``m`` under this node's config."""
    from blendr.chain.client import ChainSettings

    d = m.chain(name)
    return ChainSettings(
        name=name, rpc_url=d.rpc_url, chain_id=d.chain_id, confirmations=d.confirmations, eip1559=d.eip1559,
        rpc_timeout_s=cfg.chain.rpc_timeout_s, retries=cfg.chain.rpc_retries,
        receipt_timeout_s=cfg.chain.receipt_timeout_s)
