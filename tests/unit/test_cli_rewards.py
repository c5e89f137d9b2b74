"""``blendr rewards``: input a person gets wrong is refused with a clear error before any chain or manifest read."""

from __future__ import annotations

from pathlib import Path

import pytest

from blendrctl.cli import main


@pytest.mark.parametrize("args", [["verify", "-1"], ["claim", "3", "-2"], ["verify", "3.5"]])
def test_an_epoch_is_a_whole_number_not_below_zero(args: list[str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["rewards", *args, "--home", str(tmp_path)])
    assert exc.value.code == 2
    assert "EPOCH must be a whole number, 0 or more" in capsys.readouterr().err


@pytest.mark.parametrize("action", [["ls"], ["claim"]])
def test_a_malformed_address_is_named_before_the_manifest_is_looked_for(
        action: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tmp_path holds no deployment manifest: the address is what the person must fix first."""
    assert main(["rewards", *action, "--address", "0x12", "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--address '0x12' is not a 20-byte hex address" in err and "manifest" not in err
