"""Durable node state: the :class:`Store` port, its SQLite adapter and its in-memory fake."""

from __future__ import annotations

import re
from pathlib import Path

from blendr.errors import StoreError
from blendr.store.base import Batch, Store
from blendr.store.memory import MemoryStore
from blendr.store.sqlite import SQLiteStore

__all__ = ["Batch", "MemoryStore", "SQLiteStore", "Store", "open_store"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)


def open_store(url_or_path: str | Path) -> Store:
    """Open the store named by a URL or a file path.

    ``"memory://"`` gives a fresh :class:`MemoryStore`; ``"sqlite:///abs/file.db"``,
    ``"sqlite://relative.db"`` or a plain path gives a :class:`SQLiteStore` on that file.

    Raises:
        StoreError: The URL has an unknown scheme, or the SQLite file cannot be opened.
    """
    if isinstance(url_or_path, Path):
        return SQLiteStore(url_or_path)
    match = _SCHEME.match(url_or_path)
    if match is None:
        return SQLiteStore(url_or_path)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        if not rest:
            raise StoreError(f"store URL {url_or_path!r} names no file; use sqlite:///path/to/state.db")
        return SQLiteStore(rest)
    raise StoreError(f"unknown store URL scheme {scheme!r} in {url_or_path!r}; use memory:// or a file path")
