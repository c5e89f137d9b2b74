"""`blendr devnet up|down|status`: two local anvil chains with every contract deployed and wired.

``up`` starts ``eth`` (chain id 31337, prague) and ``etc`` (chain id 63, shanghai: the EVM Ethereum
Classic runs) as background processes that keep their state in ``<home>/devnet/`` across ``down``/``up``,
deploys the contracts (once), funds the well-known devnet accounts with GPUTOKEN and stakes, and writes
``<home>/deployment.json``. The devnet accounts are anvil's public test keys: worthless by design.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendr.chain.anvil import rpc
from blendr.chain.devkeys import DEV_KEYS, ETC_CHAIN_ID, ETH_CHAIN_ID, ROLES
from blendr.config import Config
from blendr.errors import BlendrError, ConfigError


@dataclass(frozen=True)
class ChainProcess:
    name: str
    chain_id: int
    port: int
    hardfork: str | None


def _chains(cfg: Config) -> list[ChainProcess]:
    return [
        ChainProcess("eth", ETH_CHAIN_ID, cfg.devnet.eth_port, None),
        ChainProcess("etc", ETC_CHAIN_ID, cfg.devnet.etc_port, "shanghai"),
    ]


def devnet_dir(cfg: Config) -> Path:
    return cfg.path("devnet")


def _pid(cfg: Config, name: str) -> int | None:
    try:
        pid = int((devnet_dir(cfg) / f"{name}.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def up(cfg: Config, *, echo: Callable[[str], None] = print) -> Any:
    """Starts the chains (if not running), deploys (if not deployed), funds, writes the manifest.

    Returns the Manifest. Safe to run again: a running devnet is reused.

    Raises:
        UnavailableError: a chain did not start (e.g. its port is taken by something else).
    """
    from blendr.chain.anvil import start_anvil
    from blendr.chain.manifest import manifest_path

    d = devnet_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    for ch in _chains(cfg):
        if _pid(cfg, ch.name) is not None:
            echo(f"{ch.name}: already running (pid {_pid(cfg, ch.name)}) on {cfg.devnet.host}:{ch.port}")
            continue
        node = start_anvil(
            ch.chain_id, host=cfg.devnet.host, port=ch.port, block_time=cfg.devnet.block_time_s or None,
            hardfork=ch.hardfork, state_file=d / f"{ch.name}-state.json", log_file=d / f"{ch.name}.log",
            detach=True)
        (d / f"{ch.name}.pid").write_text(f"{node.process.pid}\n")
        echo(f"{ch.name}: chain {ch.chain_id} on {node.url} (pid {node.process.pid}, log {d / (ch.name + '.log')})")
    path = manifest_path(cfg)
    existing = _existing_manifest(cfg, path)
    if existing is not None:
        echo(f"contracts already deployed (manifest {path})")
        return existing
    from blendr.chain.deploy import deploy_devnet

    t0 = time.monotonic()
    manifest = deploy_devnet(cfg, echo=echo)
    manifest.save(path)
    echo(f"deployed and funded in {time.monotonic() - t0:.1f} s; manifest {path}")
    return manifest


def _existing_manifest(cfg: Config, path: Path) -> Any:
    """The manifest if it describes contracts that exist on the running chains, else None."""
    from blendr.chain.manifest import Manifest

    if not path.is_file():
        return None
    try:
        m = Manifest.from_json(json.loads(path.read_text()))
    except (ConfigError, json.JSONDecodeError):
        return None
    if m.network != "devnet":
        raise ConfigError(f"{path} is a manifest for network {m.network!r}; the devnet will not replace it")
    for ch in _chains(cfg):
        dep = m.chain(ch.name)
        for addr in dep.contracts.values():
            if rpc(cfg.devnet.host, ch.port, "eth_getCode", [addr, "latest"]) in ("0x", "0x0"):
                return None  # chains were reset: deploy again
    return m


def down(cfg: Config, *, reset: bool = False, echo: Callable[[str], None] = print) -> None:
    """Stops the chains (their state is saved unless ``reset``, which also removes the manifest)."""
    from blendr.chain.manifest import manifest_path

    d = devnet_dir(cfg)
    for ch in _chains(cfg):
        pid = _pid(cfg, ch.name)
        if pid is None:
            echo(f"{ch.name}: not running")
        else:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if _pid(cfg, ch.name) is None:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
            echo(f"{ch.name}: stopped (pid {pid})")
        (d / f"{ch.name}.pid").unlink(missing_ok=True)
        if reset:
            (d / f"{ch.name}-state.json").unlink(missing_ok=True)
    if reset:
        path = manifest_path(cfg)
        if path.is_file():
            try:
                network = json.loads(path.read_text()).get("network")
            except json.JSONDecodeError:
                network = None
            if network == "devnet":
                path.unlink()
                echo(f"removed {path}")


def status(cfg: Config) -> dict[str, Any]:
    """What runs: per chain its pid, RPC URL, head block, and whether the deployed contracts exist."""
    from blendr.chain.manifest import manifest_path

    path = manifest_path(cfg)
    manifest = None
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError:
            manifest = None
    out: dict[str, Any] = {"manifest": str(path) if manifest else None, "chains": {}}
    for ch in _chains(cfg):
        entry: dict[str, Any] = {"chain_id": ch.chain_id, "url": f"http://{cfg.devnet.host}:{ch.port}",
                                 "pid": _pid(cfg, ch.name), "running": False}
        try:
            entry["block"] = int(rpc(cfg.devnet.host, ch.port, "eth_blockNumber"), 16)
            entry["running"] = True
            contracts = (manifest or {}).get(ch.name, {}).get("contracts", {})
            entry["contracts"] = len(contracts)
            entry["contracts_live"] = sum(
                1 for a in contracts.values()
                if rpc(cfg.devnet.host, ch.port, "eth_getCode", [a, "latest"]) not in ("0x", "0x0"))
        except BlendrError:  # not answering (anvil.rpc raises UnavailableError): reported as not running
            pass
        out["chains"][ch.name] = entry
    return out


def install_key(cfg: Config, role: str) -> str:
    """Writes the devnet account of ``role`` as ``<home>/node.key`` (refuses to replace another key)."""
    from blendr.errors import IdentityError
    from blendr.identity import KEY_FILE, NodeIdentity

    if role not in ROLES:
        raise ConfigError(f"unknown devnet role {role!r} (known: {', '.join(ROLES)})")
    ident = NodeIdentity.from_key(bytes.fromhex(DEV_KEYS[ROLES[role]][2:]))
    path = cfg.home / KEY_FILE
    if path.exists():
        existing = NodeIdentity.load(cfg.home)
        if existing.address != ident.address:
            raise IdentityError(f"{path} already holds the key of {existing.address}; use another --home")
        return f"{cfg.home} already has the {role} key ({ident.address})"
    ident.save(cfg.home)
    return f"installed the devnet {role} key ({ident.address}) in {path}"

