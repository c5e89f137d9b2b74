"""PostgreSQL :class:`~blendr.store.base.Store` (psycopg 3): the store several kings share (king.ha).

Same data model as the SQLite adapter: a ``kv`` table of (ns, key, JSON text) whose text columns use the ``C``
collation, so keys sort by the byte order of their UTF-8 encoding as the Store contract states, and a ``leases``
table timed by the server's clock (``clock_timestamp()``), so the hosts' clocks do not matter.

One connection per store, shared by threads under a lock. A dropped connection (PostgreSQL restarted, a network
cut) is replaced on the next call; a call that fails on it is retried once on a fresh connection when doing it
twice cannot change its outcome (reads, puts, deletes, batches of those, leases), otherwise it raises
:class:`~blendr.errors.StoreUnavailableError` (``put_if_absent``: it may have landed). Messages name the server
and database, never the password.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from blendr.errors import StoreError, StoreUnavailableError
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

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

SCHEMA_VERSION = 1
_LOCK_ID = 0x626C656E6472  # the advisory lock that serialises schema creation by several kings at once
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
_DDL = (
    'CREATE TABLE IF NOT EXISTS blendr_meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS blendr_kv (ns TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, '
    "value TEXT NOT NULL, PRIMARY KEY (ns, key))",
    'CREATE TABLE IF NOT EXISTS blendr_leases (name TEXT COLLATE "C" PRIMARY KEY, holder TEXT NOT NULL, '
    "epoch BIGINT NOT NULL, expires_at DOUBLE PRECISION NOT NULL, address TEXT NOT NULL)",
)
_UPSERT = ("INSERT INTO blendr_kv (ns, key, value) VALUES (%s, %s, %s) "
           "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value")

T = TypeVar("T")


def _where(url: str) -> str:
    """``host:port/db`` of a connection URL, without user or password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(url)
    except Exception:  # a malformed URL: say nothing of it that could hold a secret
        return "PostgreSQL (unparseable URL)"
    return f"PostgreSQL at {d.get('host') or 'localhost'}:{d.get('port') or 5432}/{d.get('dbname') or ''}"


class PostgresStore(Store):
    """A store in one PostgreSQL database, safe for several threads, processes and hosts.

    Args:
        url: ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (libpq's URL or key=value form).
        connect_timeout_s: How long a connection attempt may take.

    Raises:
        StoreUnavailableError: The server cannot be reached now.
        StoreError: The URL is malformed, or the database holds a newer schema than this build supports.
    """

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise StoreError("the PostgreSQL store needs psycopg: pip install 'psycopg[binary]'") from exc
        self._url = url
        self._where = _where(url)
        self._timeout = connect_timeout_s
        self._lock = threading.RLock()
        self._conn: Any = None
        self._closed = False
        with self._lock:
            self._run("open", self._init_schema, retry=True)

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=max(1, int(self._timeout)),
                                   keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"{self._where} is unreachable: {_first_line(exc)}") from None
        except psycopg.Error as exc:
            raise StoreError(f"{self._where}: cannot connect: {_first_line(exc)}") from None
        except Exception as exc:  # psycopg raises ProgrammingError or ValueError for a malformed URL
            raise StoreError(f"{self._where}: malformed store URL ({type(exc).__name__})") from None

    def _run(self, action: str, fn: Callable[[Any], T], *, retry: bool) -> T:
        """``fn(connection)`` under the lock, on a live connection; a broken connection is replaced, and with ``retry``
        the call is made once more on the new one."""
        import psycopg

        with self._lock:
            if self._closed:
                raise StoreError(f"{self._where}: store is closed")
            for attempt in (1, 2):
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                try:
                    return fn(self._conn)
                except psycopg.OperationalError as exc:
                    broken = self._conn.closed or self._conn.broken
                    if broken:
                        self._drop()
                    if broken and retry and attempt == 1:
                        continue
                    raise StoreUnavailableError(f"{self._where}: {action} failed: {_first_line(exc)}") from None
                except psycopg.Error as exc:
                    if self._conn is not None and (self._conn.closed or self._conn.broken):
                        self._drop()
                    raise StoreError(f"{self._where}: {action} failed: {_first_line(exc)}") from None
            raise AssertionError("unreachable")  # pragma: no cover

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release
                conn.close()

    @contextmanager
    def _txn(self, conn: Any) -> Iterator[Any]:
        with conn.transaction():
            yield conn

    def _init_schema(self, conn: Any) -> None:
        row = conn.execute("SHOW server_encoding").fetchone()
        if row is None or str(row[0]).upper() not in ("UTF8", "UTF-8"):
            raise StoreError(f"{self._where}: the database's encoding is {row[0] if row else '?'}, not UTF8: keys and "
                             "values are Unicode text (CREATE DATABASE … ENCODING 'UTF8')")
        with self._txn(conn):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            for ddl in _DDL:
                conn.execute(ddl)
            row = conn.execute("SELECT value FROM blendr_meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO blendr_meta (key, value) VALUES ('schema_version', %s)", (str(SCHEMA_VERSION),))
            elif not row[0].isdigit() or int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"{self._where}: store schema v{row[0]} was written by a newer BlendrChain; this build "
                                 f"supports up to v{SCHEMA_VERSION}. Upgrade blendr to open it.")

    # ------------------------------------------------------------------ key-value
    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        """See :meth:`Store.get`."""
        validate_key(ns, key)
        row = self._run("get", lambda c: c.execute("SELECT value FROM blendr_kv WHERE ns = %s AND key = %s",
                                                   (ns, key)).fetchone(), retry=True)
        return None if row is None else decode_value(row[0])

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        """See :meth:`Store.put`."""
        validate_key(ns, key)
        text = encode_value(ns, key, value)
        self._run("put", lambda c: c.execute(_UPSERT, (ns, key, text)), retry=True)

    def delete(self, ns: str, key: str) -> bool:
        """See :meth:`Store.delete`."""
        validate_key(ns, key)
        return bool(self._run("delete", lambda c: c.execute("DELETE FROM blendr_kv WHERE ns = %s AND key = %s",
                                                            (ns, key)).rowcount > 0, retry=False))

    def put_if_absent(self, ns: str, key: str, value: Mapping[str, Any]) -> bool:
        """See :meth:`Store.put_if_absent`; atomic across processes (one INSERT). Not retried: it may have landed."""
        validate_key(ns, key)
        text = encode_value(ns, key, value)
        return bool(self._run("put_if_absent", lambda c: c.execute(
            "INSERT INTO blendr_kv (ns, key, value) VALUES (%s, %s, %s) ON CONFLICT (ns, key) DO NOTHING",
            (ns, key, text)).rowcount > 0, retry=False))

    def scan(self, ns: str, prefix: str = "", *, limit: int | None = None, reverse: bool = False,
             start_after: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """See :meth:`Store.scan`."""
        validate_key(ns, prefix)
        validate_limit(limit)
        if start_after is not None:
            validate_prefix(start_after)
        if limit == 0:
            return []
        where, params = _prefix_clause(ns, prefix)
        if start_after is not None:
            where += " AND key < %s" if reverse else " AND key > %s"
            params.append(start_after)
        sql = f"SELECT key, value FROM blendr_kv WHERE {where} ORDER BY key {'DESC' if reverse else 'ASC'}"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        rows = self._run("scan", lambda c: c.execute(sql, params).fetchall(), retry=True)
        return [(k, decode_value(v)) for k, v in rows]

    def count(self, ns: str, prefix: str = "") -> int:
        """See :meth:`Store.count`."""
        validate_key(ns, prefix)
        where, params = _prefix_clause(ns, prefix)
        row = self._run("count", lambda c: c.execute(f"SELECT COUNT(*) FROM blendr_kv WHERE {where}", params).fetchone(),
                        retry=True)
        return int(row[0])

    @staticmethod
    def _write_ops(conn: Any, ops: tuple[Op, ...]) -> None:
        for op in ops:
            if op.kind == "put":
                conn.execute(_UPSERT, (op.ns, op.key, op.value))
            else:
                conn.execute("DELETE FROM blendr_kv WHERE ns = %s AND key = %s", (op.ns, op.key))

    def _apply(self, ops: tuple[Op, ...]) -> None:
        def apply(conn: Any) -> None:
            with self._txn(conn):
                self._write_ops(conn, ops)

        self._run("batch", apply, retry=True)  # puts and deletes: applying them twice ends the same

    def close(self) -> None:
        """See :meth:`Store.close`."""
        with self._lock:
            self._closed = True
            self._drop()

    # ------------------------------------------------------------------ leases (the server's clock)
    @staticmethod
    def _lease_row(conn: Any, name: str, lock: str = "") -> Lease | None:
        row = conn.execute(f"SELECT holder, epoch, expires_at, address, {_NOW} FROM blendr_leases WHERE name = %s "
                           f"{lock}", (name,)).fetchone()
        return None if row is None else Lease(name, row[0], int(row[1]), float(row[2]), row[3], float(row[4]))

    def acquire_lease(self, name: str, holder: str, ttl_s: float, address: str = "") -> Lease:
        """See :meth:`Store.acquire_lease`."""
        validate_lease(name, holder, ttl_s)

        def acquire(conn: Any) -> Lease:
            with self._txn(conn):
                conn.execute("INSERT INTO blendr_leases (name, holder, epoch, expires_at, address) "
                             "VALUES (%s, '', 0, 0, '') ON CONFLICT (name) DO NOTHING", (name,))
                cur = self._lease_row(conn, name, "FOR UPDATE")
                assert cur is not None
                if cur.holder == holder or not cur.held:
                    epoch = cur.epoch if cur.holder == holder else cur.epoch + 1
                    conn.execute(f"UPDATE blendr_leases SET holder = %s, epoch = %s, expires_at = {_NOW} + %s, "
                                 "address = %s WHERE name = %s", (holder, epoch, float(ttl_s), address, name))
                lease = self._lease_row(conn, name)
                assert lease is not None
                return lease

        return self._run("acquire_lease", acquire, retry=True)

    def release_lease(self, name: str, holder: str) -> bool:
        """See :meth:`Store.release_lease`."""
        validate_lease(name, holder)
        return bool(self._run("release_lease", lambda c: c.execute(
            f"UPDATE blendr_leases SET expires_at = {_NOW} WHERE name = %s AND holder = %s",
            (name, holder)).rowcount > 0, retry=True))

    def read_lease(self, name: str) -> Lease | None:
        """See :meth:`Store.read_lease`."""
        validate_lease(name, "reader")
        lease = self._run("read_lease", lambda c: self._lease_row(c, name), retry=True)
        return None if lease is None or not lease.holder else lease

    def _check_fence(self, conn: Any, name: str, holder: str, epoch: int) -> None:
        # FOR SHARE: a takeover (FOR UPDATE in acquire_lease) waits for this write to commit, or this write for it
        lease = self._lease_row(conn, name, "FOR SHARE")
        if lease is None or lease.holder != holder or lease.epoch != epoch or not lease.held:
            raise fenced_error(name, epoch, lease if lease is not None and lease.holder else None)

    def _apply_fenced(self, ops: tuple[Op, ...], name: str, holder: str, epoch: int) -> None:
        def apply(conn: Any) -> None:
            with self._txn(conn):
                self._check_fence(conn, name, holder, epoch)
                self._write_ops(conn, ops)

        self._run("fenced batch", apply, retry=True)

    def _put_if_absent_fenced(self, ns: str, key: str, text: str, name: str, holder: str, epoch: int) -> bool:
        def put(conn: Any) -> bool:
            with self._txn(conn):
                self._check_fence(conn, name, holder, epoch)
                return bool(conn.execute("INSERT INTO blendr_kv (ns, key, value) VALUES (%s, %s, %s) "
                                         "ON CONFLICT (ns, key) DO NOTHING", (ns, key, text)).rowcount > 0)

        return self._run("fenced put_if_absent", put, retry=False)

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r})"


def _prefix_clause(ns: str, prefix: str) -> tuple[str, list[Any]]:
    where = "ns = %s"
    params: list[Any] = [ns]
    if prefix:
        where += " AND key >= %s"
        params.append(prefix)
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            where += " AND key < %s"
            params.append(upper)
    return where, params


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
