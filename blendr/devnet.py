"""`blendr devnet up|down|status`: two local anvil chains with every contract deployed and wired.

``up`` starts ``eth`` (chain id 31337, prague) and ``etc`` (chain id 63, shanghai: the EVM Ethereum
Classic runs) as background processes that keep their state in ``<home>/devnet/`` across ``down``/``up``,
deploys the contracts (once), funds the well-known devnet accounts with GPUTOKEN and stakes, and writes
``<home>/deployment.json``. The devnet accounts are anvil's public test keys: worthless by design.

The devnet that runs on a pair of ports is recorded (its home and manifest) in a per-user file under the
system's temporary directory, so ``up`` from another home reuses the running chains and copies their
manifest into that home, and ``down`` from another home names the one that started them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
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


def registry_path(cfg: Config) -> Path:
    """Where the devnet running on this config's ports is recorded (home and manifest), per user."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    host = cfg.devnet.host.replace(":", "_")
    return Path(tempfile.gettempdir()) / f"blendr-devnet-{uid}" / f"{host}-{cfg.devnet.eth_port}-{cfg.devnet.etc_port}.json"


def _record(cfg: Config, manifest: Path) -> None:
    path = registry_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"home": str(cfg.home), "manifest": str(manifest)}) + "\n")
    os.replace(tmp, path)


def running_elsewhere(cfg: Config) -> dict[str, str] | None:
    """The record of the devnet on this config's ports when another home started it and it still runs."""
    try:
        rec = json.loads(registry_path(cfg).read_text())
        home, manifest = Path(rec["home"]), Path(rec["manifest"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return None
    if home.resolve() == cfg.home.resolve():
        return None
    for ch in _chains(cfg):
        try:
            if int(rpc(cfg.devnet.host, ch.port, "eth_chainId"), 16) != ch.chain_id:
                return None
        except BlendrError:
            return None
    return {"home": str(home), "manifest": str(manifest)}


def _chain_id_at(cfg: Config, port: int) -> int | None:
    try:
        return int(rpc(cfg.devnet.host, port, "eth_chainId"), 16)
    except BlendrError:
        return None


def up(cfg: Config, *, echo: Callable[[str], None] = print) -> Any:
    """Starts the chains (if not running), deploys (if not deployed), funds, writes the manifest.

    Returns the Manifest. Safe to run again: a running devnet is reused, also one started from another home
    (its manifest is then copied into this home's ``deployment.json``).

    Raises:
        UnavailableError: a chain did not start.
        ConfigError: a chain's port is taken by something that is not this devnet.
    """
    from blendr.chain.anvil import start_anvil
    from blendr.chain.manifest import manifest_path

    path = manifest_path(cfg)
    other = running_elsewhere(cfg)
    if other is not None:
        return _adopt(cfg, other, path, echo)
    for ch in _chains(cfg):
        if _pid(cfg, ch.name) is None and (got := _chain_id_at(cfg, ch.port)) is not None:
            raise ConfigError(
                f"{cfg.devnet.host}:{ch.port} already serves chain {got}, not a devnet this home or a known one "
                f"started: stop it, or pick other ports ([devnet] {ch.name}_port)")
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
    existing = _existing_manifest(cfg, path)
    if existing is not None:
        echo(f"contracts already deployed (manifest {path})")
        manifest = existing
    else:
        from blendr.chain.deploy import deploy_devnet

        t0 = time.monotonic()
        manifest = deploy_devnet(cfg, echo=echo)
        manifest.save(path)
        echo(f"deployed and funded in {time.monotonic() - t0:.1f} s")
    _record(cfg, path.resolve())
    _echo_where(path, echo)
    return manifest


def _adopt(cfg: Config, other: dict[str, str], path: Path, echo: Callable[[str], None]) -> Any:
    """Reuses the devnet another home started: its manifest, checked live, copied to ``path``."""
    src = Path(other["manifest"])
    m = _existing_manifest(cfg, src)
    if m is None:
        raise ConfigError(
            f"the devnet on ports {cfg.devnet.eth_port}/{cfg.devnet.etc_port} was started from {other['home']}, "
            f"but its manifest {src} is missing or names contracts that are not on the chains: run "
            f"`blendr devnet up --home {other['home']}` first")
    echo(f"eth and etc: already running, started from {other['home']}")
    if src.resolve() != path.resolve():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)
        echo(f"copied its manifest {src} to {path}")
    _echo_where(path, echo)
    return m


def _echo_where(path: Path, echo: Callable[[str], None]) -> None:
    echo(f"deployment: {path}")
    echo(f"nodes find it with --deployment {path} (king run, queen run, chain info, stake), or "
         "[chain] deployment in their config.toml, or by default in their own home after "
         "`blendr devnet up --home NODE_HOME`")


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
    other = running_elsewhere(cfg)
    if other is not None and all(_pid(cfg, ch.name) is None for ch in _chains(cfg)):
        raise ConfigError(f"the devnet on ports {cfg.devnet.eth_port}/{cfg.devnet.etc_port} was started from "
                          f"{other['home']}: stop it with `blendr devnet down --home {other['home']}`")
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
    if all(_pid(cfg, ch.name) is None for ch in _chains(cfg)):
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
            if Path(json.loads(registry_path(cfg).read_text())["home"]).resolve() == cfg.home.resolve():
                registry_path(cfg).unlink()
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
            raise IdentityError(
                f"{path} already holds another key ({existing.address}), not the devnet {role}'s "
                f"({ident.address}); nothing was changed. Give the {role} a home of its own (--home DIR), or, "
                f"if that key holds nothing you need (a deleted key cannot be recovered), remove {path} and run "
                "this again")
        return f"{cfg.home} already has the {role} key ({ident.address})"
    ident.save(cfg.home)
    return f"installed the devnet {role} key ({ident.address}) in {path}"

