"""Shared fixtures: node configs in temporary homes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from blendr.config import Config, load_config


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build a Config for a node in its own home under tmp_path, ignoring the real environment."""
    counter = {"n": 0}

    def make(name: str | None = None, **overrides: Any) -> Config:
        counter["n"] += 1
        home = tmp_path / (name or f"node{counter['n']}")
        home.mkdir(parents=True, exist_ok=True)
        return load_config(home, overrides={k.replace("__", "."): v for k, v in overrides.items()}, env={})

    return make
