"""`blendr` setup commands refuse bad preconditions before writing anything in a node's home (no chains
needed: these checks come before any chain is read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blendr.config import load_config
from blendr.errors import ConfigError
from blendrctl.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().err


def test_a_provider_without_its_queens_ca_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "prov"
    rc, err = run(capsys, "provider", "run", "--home", str(home), "--queen", "127.0.0.1:1")
    assert rc == 1 and f"no CA certificate at {home / 'tls' / 'ca.crt'}" in err and "--ca-file" in err
    rc, err = run(capsys, "provider", "run", "--home", str(home), "--queen", "127.0.0.1:1",
                  "--ca-file", str(tmp_path / "missing.crt"))
    assert rc == 1 and "missing.crt" in err
    assert not home.exists()


def test_a_queen_run_refuses_a_missing_king_ca_or_manifest_first(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "queen"
    rc, err = run(capsys, "queen", "run", "--home", str(home), "--king", "127.0.0.1:1",
                  "--king-ca-file", str(tmp_path / "king-ca.crt"), "--listen", "127.0.0.1:0",
                  "--admin-listen", "127.0.0.1:0")
    assert rc == 1 and "king-ca.crt (--king-ca-file)" in err
    rc, err = run(capsys, "queen", "run", "--home", str(home), "--admission", "stake", "--listen", "127.0.0.1:0")
    assert rc == 2 and "no deployment manifest" in err and "--deployment FILE" in err
    rc, err = run(capsys, "king", "run", "--home", str(home), "--deployment", str(tmp_path / "nope.json"))
    assert rc == 2 and "--deployment" in err and "no such file" in err
    assert not home.exists()


def test_the_deployment_setting_has_one_name(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[chain]\nmanifest = "/x/deployment.json"\n')
    with pytest.raises(ConfigError, match=r"chain\.manifest is now chain\.deployment"):
        load_config(tmp_path, env={})
    (tmp_path / "config.toml").write_text('[chain]\ndeployment = "/x/deployment.json"\n')
    assert load_config(tmp_path, env={}).chain.deployment == "/x/deployment.json"
    assert load_config(tmp_path, env={"BLENDR_CHAIN__DEPLOYMENT": "/y.json"}).chain.deployment == "/y.json"


def test_devnet_key_tells_what_to_do_with_another_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "king"
    assert main(["identity", "init", "--home", str(home)]) == 0
    key = (home / "node.key").read_bytes()
    rc, err = run(capsys, "devnet", "key", "king", "--home", str(home))
    assert rc == 1 and "already holds another key" in err and "nothing was changed" in err
    assert f"remove {home / 'node.key'}" in err and "--home DIR" in err
    assert (home / "node.key").read_bytes() == key
    (home / "node.key").unlink()
    assert main(["devnet", "key", "king", "--home", str(home)]) == 0
    assert main(["devnet", "key", "king", "--home", str(home)]) == 0  # the same key again: nothing to do
