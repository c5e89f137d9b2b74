"""Node configuration: defaults < TOML file < environment < command-line flags.

Every node keeps its keys, config and state under one home directory: ``--home``, else the environment
variable ``BLENDR_HOME``, else ``~/.blendr``. The config file is ``<home>/config.toml`` unless ``--config``
names another. Environment overrides use ``BLENDR_<SECTION>__<KEY>`` (for example
``BLENDR_QUEEN__LISTEN=0.0.0.0:7470``); flags arrive as dotted keys (``queen.listen``).
Unknown sections or keys and values of the wrong type raise :class:`~blendr.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blendr.errors import ConfigError
from blendr.proof.params import MAX_COUNT, MAX_N

ENV_HOME = "BLENDR_HOME"
ENV_PREFIX = "BLENDR_"


@dataclass
class RPCConfig:
    """gRPC transport settings shared by every node."""

    tls: bool = True
    # Trust anchor a client uses to check the server; empty: <home>/tls/ca.crt.
    ca_file: str = ""
    # Server certificate and key; empty: issued by the devnet CA in <home>/tls/.
    cert_file: str = ""
    key_file: str = ""
    # Names put in a generated server certificate (localhost and 127.0.0.1 are always added).
    hostnames: list[str] = field(default_factory=lambda: ["localhost", "127.0.0.1"])
    max_message_bytes: int = 8 * 1024 * 1024
    keepalive_time_s: float = 20.0
    keepalive_timeout_s: float = 10.0
    call_timeout_s: float = 10.0
    grace_s: float = 2.0


@dataclass
class MetricsConfig:
    """Prometheus endpoint of a node; port -1 disables it, 0 picks a free port."""

    host: str = "127.0.0.1"
    port: int = -1


@dataclass
class LogConfig:
    level: str = "INFO"
    format: str = "console"


@dataclass
class QueenConfig:
    """A queen: its listener, admission, liveness and proof-of-GPU challenge policy."""

    listen: str = "0.0.0.0:7470"
    # "allowlist": only addresses in the queen's allowlist may join; "open": any valid signature.
    admission: str = "allowlist"
    heartbeat_interval_s: float = 5.0
    suspect_after_s: float = 15.0
    dead_after_s: float = 45.0
    tick_s: float = 0.25
    # Mean seconds between random (Poisson) challenges per provider, besides the one at admission.
    challenge_mean_interval_s: float = 300.0
    # Work per challenge, in seconds at the claimed model's fingerprint speed.
    challenge_target_s: float = 1.0
    challenge_n_gpu: int = 2048
    challenge_n_cpu: int = 256
    challenge_max_count: int = 256
    # Fraction of a GPU's memory a challenge's working set may use.
    challenge_memory_fraction: float = 0.5
    openings_k: int = 16
    opening_timeout_s: float = 10.0
    # Seconds added to a challenge's deadline for transfer, generation and hashing.
    grace_s: float = 5.0
    speed_min_fraction: float = 0.25
    speed_max_fraction: float = 1.3
    memory_tolerance: float = 0.1
    max_devices: int = 64
    # Keep the last N challenge records per provider in the store (0 keeps all).
    keep_challenges: int = 0


@dataclass
class ProviderConfig:
    """A provider agent: where its queens are and how it reaches its Ray cluster."""

    queens: list[str] = field(default_factory=list)
    # Empty: start a local Ray with the GPUs found. Otherwise a Ray address (e.g. 127.0.0.1:6379).
    ray_address: str = ""
    # Custom Ray resource the agent pins its tasks to (several agents on one shared cluster).
    ray_resource: str = ""
    use_gpu: bool = True
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 10.0
    # Give up (exit non-zero) after this many seconds without reaching any queen.
    reconnect_give_up_s: float = 3600.0


@dataclass
class Config:
    """The whole configuration of a node."""

    home: Path
    rpc: RPCConfig = field(default_factory=RPCConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    queen: QueenConfig = field(default_factory=QueenConfig)
    provider: ProviderConfig = field(default_factory=ProviderConfig)

    def path(self, *parts: str) -> Path:
        """A path inside the node's home directory."""
        return self.home.joinpath(*parts)


SECTIONS: dict[str, type[Any]] = {
    "rpc": RPCConfig,
    "metrics": MetricsConfig,
    "log": LogConfig,
    "queen": QueenConfig,
    "provider": ProviderConfig,
}


def resolve_home(flag: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Path:
    """The node's home: the flag, else ``$BLENDR_HOME``, else ``~/.blendr`` (expanded, absolute)."""
    env = os.environ if env is None else env
    raw = flag if flag else env.get(ENV_HOME) or "~/.blendr"
    return Path(raw).expanduser().resolve()


def _coerce(section: str, key: str, ftype: Any, value: Any, *, from_text: bool) -> Any:
    where = f"{section}.{key}"
    origin = typing.get_origin(ftype)
    try:
        if ftype is bool:
            if isinstance(value, bool):
                return value
            if from_text and isinstance(value, str):
                low = value.strip().lower()
                if low in {"1", "true", "yes", "on"}:
                    return True
                if low in {"0", "false", "no", "off"}:
                    return False
            raise ValueError("expected true or false")
        if ftype is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            if isinstance(value, int):
                return value
            if from_text and isinstance(value, str):
                return int(value.strip())
            raise ValueError("expected an integer")
        if ftype is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            if isinstance(value, int | float):
                return float(value)
            if from_text and isinstance(value, str):
                return float(value.strip())
            raise ValueError("expected a number")
        if ftype is str:
            if isinstance(value, str):
                return value
            raise ValueError("expected a string")
        if origin is list:
            if from_text and isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise ValueError("expected a list of strings")
    except ValueError as exc:
        raise ConfigError(f"config {where}: {exc} (got {value!r})") from None
    raise ConfigError(f"config {where}: unsupported type {ftype!r}")


def _apply(cfg: Config, dotted: str, value: Any, *, from_text: bool, source: str) -> None:
    if "." not in dotted:
        raise ConfigError(f"{source}: {dotted!r} is not a section.key setting")
    section, key = dotted.split(".", 1)
    if section not in SECTIONS:
        raise ConfigError(f"{source}: unknown section [{section}] (known: {', '.join(sorted(SECTIONS))})")
    obj = getattr(cfg, section)
    hints = typing.get_type_hints(type(obj))
    if key not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(obj))
        raise ConfigError(f"{source}: unknown setting {section}.{key} (known in [{section}]: {known})")
    setattr(obj, key, _coerce(section, key, hints[key], value, from_text=from_text))


def load_config(
    home: str | os.PathLike[str] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load a node's config: defaults, then the TOML file, then ``BLENDR_*`` variables, then overrides.

    Args:
        home: The ``--home`` flag (None: environment, then ``~/.blendr``).
        config_file: A TOML file to read instead of ``<home>/config.toml``; it must exist.
        overrides: Dotted ``section.key`` values from flags; ``None`` values are skipped.
        env: The environment (tests pass their own).

    Raises:
        ConfigError: the file is unreadable or invalid TOML, or a setting is unknown or mistyped.
    """
    env = os.environ if env is None else env
    cfg = Config(home=resolve_home(home, env))
    path = Path(config_file).expanduser() if config_file else cfg.path("config.toml")
    if config_file and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: top-level key {section!r} must be a [section]")
            for key, value in values.items():
                _apply(cfg, f"{section}.{key}", value, from_text=False, source=str(path))
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == ENV_HOME:
            continue
        section, key = name[len(ENV_PREFIX) :].split("__", 1)
        _apply(cfg, f"{section.lower()}.{key.lower()}", value, from_text=True, source=f"${name}")
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _apply(cfg, dotted, value, from_text=isinstance(value, str), source=f"flag {dotted}")
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Check cross-field rules; raises ConfigError naming the setting to fix."""
    q = cfg.queen
    if q.admission not in {"allowlist", "open"}:
        raise ConfigError(f"config queen.admission must be 'allowlist' or 'open' (got {q.admission!r})")
    positive = {
        "queen.heartbeat_interval_s": q.heartbeat_interval_s,
        "queen.tick_s": q.tick_s,
        "queen.challenge_mean_interval_s": q.challenge_mean_interval_s,
        "queen.challenge_target_s": q.challenge_target_s,
        "queen.opening_timeout_s": q.opening_timeout_s,
        "rpc.call_timeout_s": cfg.rpc.call_timeout_s,
        "provider.reconnect_initial_s": cfg.provider.reconnect_initial_s,
        "provider.reconnect_max_s": cfg.provider.reconnect_max_s,
    }
    for name, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"config {name} must be > 0 (got {value})")
    for name, value in {
        "queen.grace_s": q.grace_s,
        "queen.memory_tolerance": q.memory_tolerance,
        "queen.suspect_after_s": q.suspect_after_s,
        "queen.dead_after_s": q.dead_after_s,
        "provider.reconnect_give_up_s": cfg.provider.reconnect_give_up_s,
    }.items():
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"config {name} must be >= 0 (got {value})")
    for name, n in {"queen.challenge_n_gpu": q.challenge_n_gpu, "queen.challenge_n_cpu": q.challenge_n_cpu}.items():
        if not 1 <= n <= MAX_N:
            raise ConfigError(f"config {name} must be in 1..{MAX_N} (got {n})")
    if not 1 <= q.challenge_max_count <= MAX_COUNT:
        raise ConfigError(f"config queen.challenge_max_count must be in 1..{MAX_COUNT} (got {q.challenge_max_count})")
    if not q.heartbeat_interval_s < q.suspect_after_s < q.dead_after_s:
        raise ConfigError(
            "config needs queen.heartbeat_interval_s < queen.suspect_after_s < queen.dead_after_s "
            f"(got {q.heartbeat_interval_s}, {q.suspect_after_s}, {q.dead_after_s})"
        )
    if not (math.isfinite(q.speed_max_fraction) and 0 < q.speed_min_fraction < q.speed_max_fraction):
        raise ConfigError("config needs 0 < queen.speed_min_fraction < queen.speed_max_fraction")
    if not (0 < q.challenge_memory_fraction <= 1):
        raise ConfigError("config queen.challenge_memory_fraction must be in (0, 1]")
    for name, value in {
        "queen.openings_k": q.openings_k,
        "queen.challenge_n_gpu": q.challenge_n_gpu,
        "queen.challenge_n_cpu": q.challenge_n_cpu,
        "queen.challenge_max_count": q.challenge_max_count,
        "queen.max_devices": q.max_devices,
        "rpc.max_message_bytes": cfg.rpc.max_message_bytes,
    }.items():
        if value < 1:
            raise ConfigError(f"config {name} must be >= 1 (got {value})")
    if cfg.metrics.port < -1 or cfg.metrics.port > 65535:
        raise ConfigError(f"config metrics.port must be -1 (off), 0 (any) or a port (got {cfg.metrics.port})")
    if cfg.log.format not in {"console", "json"}:
        raise ConfigError(f"config log.format must be 'console' or 'json' (got {cfg.log.format!r})")
