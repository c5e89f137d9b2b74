"""In-memory :class:`~blendr.store.base.Store`: the fake for fast unit tests.

It keeps each value as the same JSON text the SQLite adapter writes, so both adapters share every
semantic the contract suite checks (copies in and out, JSON round-trip, key order, error cases).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from blendr.errors import StoreError
from blendr.store.base import (
    Lease,
    Op,
    Store,
    decode_value,
    encode_value,
    fenced_error,
    validate_key,
    validate_lease,
    validate_limit,
    validate_prefix,
)

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """A thread-safe store that lives in this process only; nothing survives :meth:`close`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, str]] = {}
        self._leases: dict[str, tuple[str, int, float, str]] = {}  # name -> (holder, epoch, expires_at, address)
        self._closed = False

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        """See :meth:`Store.get`."""
        validate_key(ns, key)
        with self._lock:
            self._check_open()
            text = self._data.get(ns, {}).get(key)
        return None if text is None else decode_value(text)

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        """See :meth:`Store.put`."""
        validate_key(ns, key)
        text = encode_value(ns, key, value)
        with self._lock:
            self._check_open()
            self._data.setdefault(ns, {})[key] = text

    def delete(self, ns: str, key: str) -> bool:
        """See :meth:`Store.delete`."""
        validate_key(ns, key)
        with self._lock:
            self._check_open()
            return self._delete_locked(ns, key)

    def put_if_absent(self, ns: str, key: str, value: Mapping[str, Any]) -> bool:
        """See :meth:`Store.put_if_absent`."""
        validate_key(ns, key)
        text = encode_value(ns, key, value)
        with self._lock:
            self._check_open()
            bucket = self._data.setdefault(ns, {})
            if key in bucket:
                return False
            bucket[key] = text
            return True

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
        with self._lock:
            self._check_open()
            items = [(k, v) for k, v in self._data.get(ns, {}).items() if k.startswith(prefix)]
        # Python orders str by code point, which is the byte order of UTF-8 (and of SQLite's BINARY
        # collation); sorting by the encoded key states that contract explicitly.
        items.sort(key=lambda kv: kv[0].encode("utf-8"), reverse=reverse)
        if start_after is not None:
            after = start_after.encode("utf-8")
            if reverse:
                items = [kv for kv in items if kv[0].encode("utf-8") < after]
            else:
                items = [kv for kv in items if kv[0].encode("utf-8") > after]
        if limit is not None:
            items = items[:limit]
        return [(k, decode_value(v)) for k, v in items]

    def count(self, ns: str, prefix: str = "") -> int:
        """See :meth:`Store.count`."""
        validate_key(ns, prefix)
        with self._lock:
            self._check_open()
            return sum(1 for k in self._data.get(ns, {}) if k.startswith(prefix))

    def close(self) -> None:
        """See :meth:`Store.close`."""
        with self._lock:
            self._closed = True
            self._data = {}

    def _apply(self, ops: tuple[Op, ...]) -> None:
        with self._lock:
            self._check_open()
            self._write_locked(ops)

    def _write_locked(self, ops: tuple[Op, ...]) -> None:
        # Ops were validated when buffered, so applying them cannot fail half-way.
        for op in ops:
            if op.kind == "put":
                assert op.value is not None
                self._data.setdefault(op.ns, {})[op.key] = op.value
            else:
                self._delete_locked(op.ns, op.key)

    # ------------------------------------------------------------------ leases (this process's clock)
    def _lease_locked(self, name: str, now: float) -> Lease | None:
        got = self._leases.get(name)
        return None if got is None else Lease(name, got[0], got[1], got[2], got[3], now)

    def acquire_lease(self, name: str, holder: str, ttl_s: float, address: str = "") -> Lease:
        """See :meth:`Store.acquire_lease`."""
        validate_lease(name, holder, ttl_s)
        with self._lock:
            self._check_open()
            now = time.time()
            cur = self._lease_locked(name, now)
            if cur is None or cur.holder == holder or not cur.held:
                epoch = cur.epoch if cur is not None and cur.holder == holder else (cur.epoch if cur else 0) + 1
                self._leases[name] = (holder, epoch, now + ttl_s, address)
            lease = self._lease_locked(name, now)
            assert lease is not None
            return lease

    def release_lease(self, name: str, holder: str) -> bool:
        """See :meth:`Store.release_lease`."""
        validate_lease(name, holder)
        with self._lock:
            self._check_open()
            got = self._leases.get(name)
            if got is None or got[0] != holder:
                return False
            self._leases[name] = (got[0], got[1], time.time(), got[3])
            return True

    def read_lease(self, name: str) -> Lease | None:
        """See :meth:`Store.read_lease`."""
        validate_lease(name, "reader")
        with self._lock:
            self._check_open()
            return self._lease_locked(name, time.time())

    def _check_fence_locked(self, name: str, holder: str, epoch: int) -> None:
        lease = self._lease_locked(name, time.time())
        if lease is None or lease.holder != holder or lease.epoch != epoch or not lease.held:
            raise fenced_error(name, epoch, lease)

    def _apply_fenced(self, ops: tuple[Op, ...], name: str, holder: str, epoch: int) -> None:
        with self._lock:
            self._check_open()
            self._check_fence_locked(name, holder, epoch)
            self._write_locked(ops)

    def _put_if_absent_fenced(self, ns: str, key: str, text: str, name: str, holder: str, epoch: int) -> bool:
        with self._lock:
            self._check_open()
            self._check_fence_locked(name, holder, epoch)
            bucket = self._data.setdefault(ns, {})
            if key in bucket:
                return False
            bucket[key] = text
            return True

    def _delete_locked(self, ns: str, key: str) -> bool:
        bucket = self._data.get(ns)
        if bucket is None or key not in bucket:
            return False
        del bucket[key]
        if not bucket:
            del self._data[ns]
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("memory store is closed")
