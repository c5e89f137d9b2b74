"""Node configuration: defaults < TOML file < BLENDR_* environment < dotted flags, and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from blendr.config import Config, load_config, resolve_home
from blendr.errors import ConfigError


def write_toml(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- resolve_home ---------------------------------------------------------------------------------


def test_home_flag_wins_over_environment(tmp_path: Path) -> None:
    assert resolve_home(tmp_path / "flag", {"BLENDR_HOME": str(tmp_path / "env")}) == tmp_path / "flag"


def test_home_from_environment_without_flag(tmp_path: Path) -> None:
    assert resolve_home(None, {"BLENDR_HOME": str(tmp_path / "env")}) == tmp_path / "env"


@pytest.mark.parametrize("env", [{}, {"BLENDR_HOME": ""}])
def test_home_defaults_to_dot_blendr(env: dict[str, str]) -> None:
    assert resolve_home(None, env) == (Path.home() / ".blendr").resolve()


def test_home_is_absolute_and_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_home("rel", {}) == tmp_path / "rel"
    assert resolve_home("~/x", {}) == (Path.home() / "x").resolve()


# --- layering -------------------------------------------------------------------------------------


def test_defaults_without_file_or_environment(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, env={})
    assert cfg == Config(home=tmp_path)
    assert cfg.queen.listen == "0.0.0.0:7470"
    assert cfg.rpc.hostnames == ["localhost", "127.0.0.1"]
    assert cfg.path("tls", "ca.crt") == tmp_path / "tls" / "ca.crt"


def test_home_comes_from_env_mapping_passed_in(tmp_path: Path) -> None:
    assert load_config(env={"BLENDR_HOME": str(tmp_path)}).home == tmp_path


def test_toml_overrides_defaults(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        '[queen]\nlisten = "127.0.0.1:9000"\nmax_devices = 8\n[rpc]\ntls = false\n'
        'hostnames = ["a.example"]\n[metrics]\nport = 9100\n',
    )
    cfg = load_config(tmp_path, env={})
    assert cfg.queen.listen == "127.0.0.1:9000"
    assert cfg.queen.max_devices == 8
    assert cfg.rpc.tls is False
    assert cfg.rpc.hostnames == ["a.example"]
    assert cfg.metrics.port == 9100
    assert cfg.queen.admission == "allowlist"  # untouched keys keep their defaults


def test_toml_int_is_accepted_for_a_float_setting(tmp_path: Path) -> None:
    write_toml(tmp_path, "[queen]\ntick_s = 1\n")
    tick = load_config(tmp_path, env={}).queen.tick_s
    assert tick == 1.0
    assert isinstance(tick, float)


def test_environment_overrides_toml(tmp_path: Path) -> None:
    write_toml(tmp_path, '[queen]\nlisten = "127.0.0.1:9000"\n')
    cfg = load_config(tmp_path, env={"BLENDR_QUEEN__LISTEN": "0.0.0.0:7000"})
    assert cfg.queen.listen == "0.0.0.0:7000"


def test_flags_override_environment_and_none_is_skipped(tmp_path: Path) -> None:
    write_toml(tmp_path, '[queen]\nlisten = "toml:1"\n')
    cfg = load_config(
        tmp_path,
        env={"BLENDR_QUEEN__LISTEN": "env:2", "BLENDR_QUEEN__ADMISSION": "open"},
        overrides={"queen.listen": "flag:3", "queen.admission": None},
    )
    assert cfg.queen.listen == "flag:3"
    assert cfg.queen.admission == "open"


@pytest.mark.parametrize(
    ("name", "text", "section", "key", "expected"),
    [
        ("BLENDR_RPC__TLS", "false", "rpc", "tls", False),
        ("BLENDR_RPC__TLS", " Yes ", "rpc", "tls", True),
        ("BLENDR_RPC__TLS", "0", "rpc", "tls", False),
        ("BLENDR_QUEEN__MAX_DEVICES", " 12 ", "queen", "max_devices", 12),
        ("BLENDR_QUEEN__TICK_S", "0.5", "queen", "tick_s", 0.5),
        ("BLENDR_RPC__HOSTNAMES", "a.example, b.example,,", "rpc", "hostnames", ["a.example", "b.example"]),
        ("BLENDR_PROVIDER__QUEENS", "q1:7470,q2:7470", "provider", "queens", ["q1:7470", "q2:7470"]),
        ("blendr_queen__listen", "x", "queen", "listen", "0.0.0.0:7470"),  # prefix is case-sensitive
    ],
)
def test_environment_values_are_parsed_from_text(
    tmp_path: Path, name: str, text: str, section: str, key: str, expected: object
) -> None:
    cfg = load_config(tmp_path, env={name: text})
    assert getattr(getattr(cfg, section), key) == expected


def test_environment_names_are_case_insensitive_after_the_prefix(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={"BLENDR_Queen__Listen": "h:1"}).queen.listen == "h:1"


def test_unrelated_environment_variables_are_ignored(tmp_path: Path) -> None:
    env = {"PATH": "/bin", "BLENDR_DEBUG": "1", "OTHER__X": "y", "BLENDR_HOME": str(tmp_path)}
    assert load_config(env=env) == Config(home=tmp_path)


def test_flag_values_keep_their_python_type(tmp_path: Path) -> None:
    cfg = load_config(
        tmp_path,
        env={},
        overrides={"queen.max_devices": 3, "rpc.tls": False, "provider.queens": ["a:1", "b:2"]},
    )
    assert (cfg.queen.max_devices, cfg.rpc.tls, cfg.provider.queens) == (3, False, ["a:1", "b:2"])


def test_string_flags_are_parsed_like_environment_values(tmp_path: Path) -> None:
    cfg = load_config(tmp_path, env={}, overrides={"queen.max_devices": "4", "provider.queens": "a:1,b:2"})
    assert cfg.queen.max_devices == 4
    assert cfg.provider.queens == ["a:1", "b:2"]


def test_explicit_config_file_replaces_home_file(tmp_path: Path) -> None:
    write_toml(tmp_path / "home", '[queen]\nlisten = "home:1"\n')
    other = tmp_path / "other.toml"
    other.write_text('[queen]\nlisten = "other:2"\n', encoding="utf-8")
    cfg = load_config(tmp_path / "home", config_file=other, env={})
    assert cfg.queen.listen == "other:2"


# --- errors ---------------------------------------------------------------------------------------


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_config(tmp_path, config_file=tmp_path / "nope.toml", env={})


def test_invalid_toml(tmp_path: Path) -> None:
    write_toml(tmp_path, "[queen\nlisten = \n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path, env={})


def test_top_level_scalar_in_toml(tmp_path: Path) -> None:
    write_toml(tmp_path, "listen = 1\n")
    with pytest.raises(ConfigError, match=r"top-level key 'listen' must be a \[section\]"):
        load_config(tmp_path, env={})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[kong]\nx = 1\n", r"unknown section \[kong\] \(known: chain, devnet, king, log, metrics, provider, queen, relay, renter, rewards, rpc, store\)"),
        ("[king]\nx = 1\n", r"unknown setting king.x \(known in \[king\]: listen, "),
        ("[queen]\nlisen = 'x'\n", r"unknown setting queen.lisen \(known in \[queen\]: listen, "),
        ("[queen]\nmax_devices = '8'\n", r"config queen.max_devices: expected an integer \(got '8'\)"),
        ("[queen]\nmax_devices = 8.0\n", r"config queen.max_devices: expected an integer"),
        ("[queen]\nmax_devices = true\n", r"config queen.max_devices: expected an integer"),
        ("[queen]\ntick_s = true\n", r"config queen.tick_s: expected a number"),
        ("[queen]\ntick_s = '1'\n", r"config queen.tick_s: expected a number"),
        ("[rpc]\ntls = 'false'\n", r"config rpc.tls: expected true or false"),
        ("[rpc]\ntls = 1\n", r"config rpc.tls: expected true or false"),
        ("[queen]\nlisten = 7470\n", r"config queen.listen: expected a string"),
        ("[rpc]\nhostnames = 'a,b'\n", r"config rpc.hostnames: expected a list of strings"),
        ("[rpc]\nhostnames = ['a', 1]\n", r"config rpc.hostnames: expected a list of strings"),
    ],
)
def test_toml_errors_name_the_setting(tmp_path: Path, toml: str, message: str) -> None:
    path = write_toml(tmp_path, toml)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env={})
    if "unknown" in message:
        with pytest.raises(ConfigError, match=str(path).replace(".", r"\.")):
            load_config(tmp_path, env={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BLENDR_KONG__X": "1"}, r"\$BLENDR_KONG__X: unknown section \[kong\]"),
        ({"BLENDR_QUEEN__NOPE": "1"}, r"\$BLENDR_QUEEN__NOPE: unknown setting queen.nope"),
        ({"BLENDR_RPC__TLS": "maybe"}, r"config rpc.tls: expected true or false \(got 'maybe'\)"),
        ({"BLENDR_QUEEN__MAX_DEVICES": "1.5"}, r"config queen.max_devices: .*\(got '1.5'\)"),
        ({"BLENDR_QUEEN__TICK_S": "fast"}, r"config queen.tick_s: .*\(got 'fast'\)"),
    ],
)
def test_environment_errors_name_the_variable_or_setting(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env=env)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listen": "x"}, r"flag listen: 'listen' is not a section.key setting"),
        ({"kong.x": 1}, r"flag kong.x: unknown section \[kong\]"),
        ({"queen.nope": 1}, r"flag queen.nope: unknown setting queen.nope"),
        ({"queen.max_devices": 2.5}, r"config queen.max_devices: expected an integer"),
    ],
)
def test_flag_errors(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env={}, overrides=overrides)


# --- cross-field validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"queen.admission": "closed"}, r"queen.admission must be 'allowlist', 'open' or 'stake' \(got 'closed'\)"),
        ({"queen.tick_s": 0}, r"config queen.tick_s must be > 0 \(got 0.0\)"),
        ({"queen.heartbeat_interval_s": -1}, r"queen.heartbeat_interval_s must be > 0"),
        ({"queen.challenge_mean_interval_s": 0}, r"queen.challenge_mean_interval_s must be > 0"),
        ({"queen.opening_timeout_s": 0}, r"queen.opening_timeout_s must be > 0"),
        ({"rpc.call_timeout_s": 0}, r"rpc.call_timeout_s must be > 0"),
        ({"provider.reconnect_max_s": 0}, r"provider.reconnect_max_s must be > 0"),
        (
            {"queen.suspect_after_s": 5},
            r"queen.heartbeat_interval_s < queen.suspect_after_s < "
            r"queen.dead_after_s \(got 5.0, 5.0, 45.0\)",
        ),
        ({"queen.dead_after_s": 15}, r"queen.suspect_after_s < queen.dead_after_s"),
        ({"queen.speed_min_fraction": 2.0}, r"0 < queen.speed_min_fraction < queen.speed_max_fraction"),
        ({"queen.speed_min_fraction": 0}, r"0 < queen.speed_min_fraction < queen.speed_max_fraction"),
        ({"queen.challenge_memory_fraction": 1.5}, r"queen.challenge_memory_fraction must be in \(0, 1\]"),
        ({"queen.challenge_memory_fraction": 0}, r"queen.challenge_memory_fraction must be in \(0, 1\]"),
        ({"queen.openings_k": 0}, r"config queen.openings_k must be >= 1 \(got 0\)"),
        ({"queen.max_devices": 0}, r"config queen.max_devices must be >= 1"),
        ({"rpc.max_message_bytes": 0}, r"config rpc.max_message_bytes must be >= 1"),
        ({"metrics.port": -2}, r"metrics.port must be -1 \(off\), 0 \(any\) or a port \(got -2\)"),
        ({"metrics.port": 65536}, r"metrics.port must be .*\(got 65536\)"),
        ({"log.format": "xml"}, r"log.format must be 'console' or 'json' \(got 'xml'\)"),
    ],
)
def test_cross_field_rules(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, env={}, overrides=overrides)


@pytest.mark.parametrize("port", [-1, 0, 1, 65535])
def test_metrics_port_edges_are_valid(tmp_path: Path, port: int) -> None:
    assert load_config(tmp_path, env={}, overrides={"metrics.port": port}).metrics.port == port


def test_validation_applies_to_the_final_layered_value(tmp_path: Path) -> None:
    # The file alone is invalid (suspect == dead) but the environment fixes it.
    write_toml(tmp_path, "[queen]\nsuspect_after_s = 45\n")
    cfg = load_config(tmp_path, env={"BLENDR_QUEEN__DEAD_AFTER_S": "90"})
    assert (cfg.queen.suspect_after_s, cfg.queen.dead_after_s) == (45.0, 90.0)


@pytest.mark.parametrize("name", ["queen.tick_s", "queen.challenge_target_s", "rpc.call_timeout_s"])
def test_nan_is_not_a_positive_number(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be > 0"):
        load_config(tmp_path, env={}, overrides={name: "nan"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"queen.grace_s": -1.0},
        {"queen.memory_tolerance": -0.1},
        {"queen.challenge_n_gpu": 20000},
        {"queen.challenge_n_cpu": 20000},
    ],
    ids=["negative-grace", "negative-memory-tolerance", "n-gpu-over-max", "n-cpu-over-max"],
)
def test_out_of_range_challenge_settings_are_config_errors(
    tmp_path: Path, overrides: dict[str, object]
) -> None:
    with pytest.raises(ConfigError):
        load_config(tmp_path, env={}, overrides=overrides)
