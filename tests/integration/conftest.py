"""Integration fixtures: node homes in a temporary directory (the session's local Ray is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def node_home(tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        home = tmp_path / name
        home.mkdir(parents=True, exist_ok=True)
        return home

    return make
