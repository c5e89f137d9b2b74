"""The host's huge-page modes as a gVisor provider reads them, and the advice it logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from provider.sandbox import gvisor_memory_advice, host_thp

ENABLED = "always [madvise] never\n"


def thp_dir(tmp_path: Path, shmem: str | None) -> Path:
    (tmp_path / "enabled").write_text(ENABLED)
    if shmem is not None:
        (tmp_path / "shmem_enabled").write_text(shmem)
    return tmp_path


@pytest.mark.parametrize(("text", "mode"), [
    ("always within_size advise [never] deny force\n", "never"),
    ("always [within_size] advise never deny force\n", "within_size"),
    ("[always] within_size advise never deny force\n", "always"),
    ("always within_size advise never [deny] force\n", "deny"),
])
def test_the_chosen_mode_is_the_bracketed_one(tmp_path: Path, text: str, mode: str) -> None:
    assert host_thp(thp_dir(tmp_path, text)) == {"enabled": "madvise", "shmem_enabled": mode}


def test_a_kernel_without_the_files_reads_as_unknown(tmp_path: Path) -> None:
    assert host_thp(tmp_path / "absent") == {"enabled": None, "shmem_enabled": None}
    assert host_thp(thp_dir(tmp_path, None))["shmem_enabled"] is None
    assert host_thp(thp_dir(tmp_path, "garbled\n"))["shmem_enabled"] is None


@pytest.mark.parametrize("mode", ["never", "deny"])
def test_shared_memory_huge_pages_off_gets_the_fix_named(mode: str) -> None:
    advice = gvisor_memory_advice({"enabled": "madvise", "shmem_enabled": mode})
    assert f"shmem_enabled = {mode}" in advice
    assert "echo within_size > /sys/kernel/mm/transparent_hugepage/shmem_enabled" in advice


@pytest.mark.parametrize("mode", ["within_size", "always", "advise", "force", None])
def test_other_modes_need_no_advice(mode: str | None) -> None:
    # advise: current gVisor releases madvise their memory file; None: nothing to say about an unknown kernel.
    assert gvisor_memory_advice({"enabled": "madvise", "shmem_enabled": mode}) == ""


def test_this_machine_reads() -> None:
    thp = host_thp()
    assert set(thp) == {"enabled", "shmem_enabled"}
    if Path("/sys/kernel/mm/transparent_hugepage/enabled").exists():
        assert thp["enabled"] in {"always", "madvise", "never"}
