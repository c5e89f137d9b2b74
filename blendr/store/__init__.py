"""Durable node state: the :class:`Store` port, its SQLite adapter and its in-memory fake."""

from __future__ import annotations

import re
from pathlib import Path

from blendr.errors import StoreError
from blendr.store.base import Batch, FencedStore, Lease, Store
from blendr.store.memory import MemoryStore
from blendr.store.postgres import PostgresStore
from blendr.store.sqlite import SQLiteStore

__all__ = ["Batch", "FencedStore", "Lease", "MemoryStore", "PostgresStore", "SQLiteStore", "Store", "open_store"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)


def open_store(url_or_path: str | Path) -> Store:
    """Open the store named by a URL or a file path.

    ``"memory://"`` gives a fresh :class:`MemoryStore`; ``"sqlite:///abs/file.db"``,
    ``"sqlite://relative.db"`` or a plain path gives a :class:`SQLiteStore` on that file;
    ``"postgresql://USER:PASSWORD@HOST:PORT/DB"`` (or ``postgres://``) a :class:`PostgresStore`.

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
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url_or_path)
    raise StoreError(f"unknown store URL scheme {scheme!r}; use postgresql://, sqlite://, memory:// or a file path")
