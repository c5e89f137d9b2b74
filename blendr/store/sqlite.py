"""SQLite :class:`~blendr.store.base.Store`: one file per node, the default durable store.

The file is in WAL mode so readers never block the writer and several processes may share it (a CLI
editing the allowlist while the queen runs). Within a process one connection is shared by all threads and
guarded by a lock; across processes SQLite's own locking plus ``busy_timeout`` serialise writers.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from blendr.errors import StoreError
from blendr.store.base import (
    Lease,
    Op,
    Store,
    decode_value,
    encode_value,
    fenced_error,
    prefix_upper_bound,
    validate_key,
    validate_lease,
    validate_limit,
    validate_prefix,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

#: The schema version this build writes; a file with a higher version is refused.
SCHEMA_VERSION = 1

_DDL_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
# TEXT compares with the BINARY collation (memcmp of the UTF-8 bytes), the order the Store contract states.
_DDL_KV = (
    "CREATE TABLE IF NOT EXISTS kv ("
    "ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (ns, key)"
    ") WITHOUT ROWID"
)
# Leases (Store.acquire_lease): added within schema v1, created when missing.
_DDL_LEASES = (
    "CREATE TABLE IF NOT EXISTS leases ("
    "name TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch INTEGER NOT NULL, expires_at REAL NOT NULL, "
    "address TEXT NOT NULL) WITHOUT ROWID"
)


class SQLiteStore(Store):
    """A store in one SQLite file, safe for several threads and several processes.

    Args:
        path: The database file; missing parent directories are created.
        busy_timeout_ms: How long a write waits for another process's write lock before failing.

    Raises:
        StoreError: The file cannot be created or opened, is not a SQLite database, or was written by a
            newer schema version than this build supports. The message names the path.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self._path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self._path}: cannot create the store directory: {exc}") from exc
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,  # autocommit; multi-statement writes use explicit transactions
                check_same_thread=False,  # shared by threads, serialised by self._lock
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: cannot open the store: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._init_schema(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(
                f"{self._path}: cannot open the store (is it a BlendrChain SQLite file?): {exc}"
            ) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_DDL_META)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute(_DDL_KV)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            else:
                try:
                    version = int(row[0])
                except ValueError as exc:
                    raise StoreError(f"{self._path}: unreadable schema version {row[0]!r}") from exc
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self._path}: store schema v{version} was written by a newer BlendrChain; "
                        f"this build supports up to v{SCHEMA_VERSION}. Upgrade blendr to open it."
                    )
                # Migrations from older versions go here when SCHEMA_VERSION grows.
                conn.execute(_DDL_KV)
            conn.execute(_DDL_LEASES)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _connection(self, action: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and yield the open connection, wrapping sqlite3 errors into StoreError."""
        with self._lock:
            if self._conn is None:
                raise StoreError(f"{self._path}: store is closed")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"{self._path}: {action} failed: {exc}") from exc

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        """See :meth:`Store.get`."""
        validate_key(ns, key)
        with self._connection("get") as conn:
            row = conn.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (ns, key)).fetchone()
        return None if row is None else decode_value(row[0])

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        """See :meth:`Store.put`."""
        validate_key(ns, key)
        text = encode_value(ns, key, value)
        with self._connection("put") as conn:
            conn.execute(
                "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                (ns, key, text),
            )

    def delete(self, ns: str, key: str) -> bool:
        """See :meth:`Store.delete`."""
        validate_key(ns, key)
        with self._connection("delete") as conn:
            cur = conn.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (ns, key))
            return cur.rowcount > 0

    def put_if_absent(self, ns: str, key: str, value: Mapping[str, Any]) -> bool:
        """See :meth:`Store.put_if_absent`; atomic across processes (one INSERT statement)."""
        validate_key(ns, key)
        text = encode_value(ns, key, value)
        with self._connection("put_if_absent") as conn:
            cur = conn.execute(
                "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) ON CONFLICT (ns, key) DO NOTHING",
                (ns, key, text),
            )
            return cur.rowcount > 0

    def scan(
        self,
        ns: str,
        prefix: str = "",
        *,
        limit: int | None = None,
        reverse: bool = False,
        start_after: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """See :meth:`Store.scan`."""
        validate_key(ns, prefix)
        validate_limit(limit)
        if start_after is not None:
            validate_prefix(start_after)
        if limit == 0:
            return []
        where, params = self._prefix_clause(ns, prefix)
        if start_after is not None:
            where += " AND key < ?" if reverse else " AND key > ?"
            params.append(start_after)
        sql = f"SELECT key, value FROM kv WHERE {where} ORDER BY key {'DESC' if reverse else 'ASC'}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._connection("scan") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [(k, decode_value(v)) for k, v in rows]

    def count(self, ns: str, prefix: str = "") -> int:
        """See :meth:`Store.count`."""
        validate_key(ns, prefix)
        where, params = self._prefix_clause(ns, prefix)
        with self._connection("count") as conn:
            (n,) = conn.execute(f"SELECT COUNT(*) FROM kv WHERE {where}", params).fetchone()
        return int(n)

    @staticmethod
    def _prefix_clause(ns: str, prefix: str) -> tuple[str, list[Any]]:
        # A key range instead of LIKE/GLOB: those treat %, _, * specially and LIKE ignores case; the range
        # also uses the primary-key index.
        where = "ns = ?"
        params: list[Any] = [ns]
        if prefix:
            where += " AND key >= ?"
            params.append(prefix)
            upper = prefix_upper_bound(prefix)
            if upper is not None:
                where += " AND key < ?"
                params.append(upper)
        return where, params

    @staticmethod
    def _write_ops(conn: sqlite3.Connection, ops: tuple[Op, ...]) -> None:
        """``ops`` in the open transaction of ``conn``."""
        for op in ops:
            if op.kind == "put":
                conn.execute(
                    "INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value",
                    (op.ns, op.key, op.value),
                )
            else:
                conn.execute("DELETE FROM kv WHERE ns = ? AND key = ?", (op.ns, op.key))

    def _apply(self, ops: tuple[Op, ...]) -> None:
        self._apply_fenced(ops, "", "", 0)

    # ------------------------------------------------------------------ leases (this host's clock)
    @staticmethod
    def _lease_row(conn: sqlite3.Connection, name: str, now: float) -> Lease | None:
        row = conn.execute("SELECT holder, epoch, expires_at, address FROM leases WHERE name = ?", (name,)).fetchone()
        return None if row is None else Lease(name, row[0], int(row[1]), float(row[2]), row[3], now)

    def acquire_lease(self, name: str, holder: str, ttl_s: float, address: str = "") -> Lease:
        """See :meth:`Store.acquire_lease`."""
        validate_lease(name, holder, ttl_s)
        with self._connection("acquire_lease") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                cur = self._lease_row(conn, name, now)
                if cur is None or cur.holder == holder or not cur.held:
                    epoch = cur.epoch if cur is not None and cur.holder == holder else (cur.epoch if cur else 0) + 1
                    conn.execute("INSERT INTO leases (name, holder, epoch, expires_at, address) VALUES (?, ?, ?, ?, ?) "
                                 "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, "
                                 "expires_at = excluded.expires_at, address = excluded.address",
                                 (name, holder, epoch, now + ttl_s, address))
                lease = self._lease_row(conn, name, now)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        assert lease is not None
        return lease

    def release_lease(self, name: str, holder: str) -> bool:
        """See :meth:`Store.release_lease`."""
        validate_lease(name, holder)
        with self._connection("release_lease") as conn:
            cur = conn.execute("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
                               (time.time(), name, holder))
            return cur.rowcount > 0

    def read_lease(self, name: str) -> Lease | None:
        """See :meth:`Store.read_lease`."""
        validate_lease(name, "reader")
        with self._connection("read_lease") as conn:
            return self._lease_row(conn, name, time.time())

    def _fenced_txn(self, conn: sqlite3.Connection, name: str, holder: str, epoch: int) -> None:
        lease = self._lease_row(conn, name, time.time())
        if lease is None or lease.holder != holder or lease.epoch != epoch or not lease.held:
            raise fenced_error(name, epoch, lease)

    def _apply_fenced(self, ops: tuple[Op, ...], name: str, holder: str, epoch: int) -> None:
        """``ops`` in one transaction; with a lease ``name`` (not ""), only while it is held at ``epoch``."""
        with self._connection("fenced batch" if name else "batch") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if name:
                    self._fenced_txn(conn, name, holder, epoch)
                self._write_ops(conn, ops)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _put_if_absent_fenced(self, ns: str, key: str, text: str, name: str, holder: str, epoch: int) -> bool:
        with self._connection("fenced put_if_absent") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._fenced_txn(conn, name, holder, epoch)
                cur = conn.execute("INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) ON CONFLICT (ns, key) DO NOTHING",
                                   (ns, key, text))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return cur.rowcount > 0

    def close(self) -> None:
        """See :meth:`Store.close`."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"
