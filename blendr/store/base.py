"""The store port: a small namespaced key-value interface with ordered keys.

Every node keeps its durable state behind :class:`Store`. Values are JSON objects; keys are ordered by
the byte order of their UTF-8 encoding, which is the same as Python's ordering of ``str`` (UTF-8
preserves code-point order), so every adapter returns scans in the same order.
"""

from __future__ import annotations

import abc
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from blendr.errors import FencedError, StoreError

__all__ = [
    "Batch",
    "FencedStore",
    "Lease",
    "Op",
    "Store",
    "decode_value",
    "encode_value",
    "prefix_upper_bound",
    "validate_key",
    "validate_limit",
    "validate_prefix",
]


@dataclass(frozen=True)
class Op:
    """One buffered write of a :class:`Batch`: ``value`` is the encoded JSON text for a put, None for a delete."""

    kind: Literal["put", "delete"]
    ns: str
    key: str
    value: str | None = None


class Batch:
    """Writes buffered by :meth:`Store.batch`, applied atomically (all or nothing) when the block exits.

    Operations are validated when they are added (a bad key or a non-JSON value raises
    :class:`~blendr.errors.StoreError` at once) and applied in the order they were added. Reads made
    inside the block do not see the buffered writes.
    """

    def __init__(self) -> None:
        self._ops: list[Op] = []

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        """Buffer ``put(ns, key, value)``.

        Raises:
            StoreError: ``ns``/``key`` are invalid or ``value`` is not a JSON-serialisable mapping.
        """
        validate_key(ns, key)
        self._ops.append(Op("put", ns, key, encode_value(ns, key, value)))

    def delete(self, ns: str, key: str) -> None:
        """Buffer ``delete(ns, key)``; deleting a missing key is not an error.

        Raises:
            StoreError: ``ns``/``key`` are invalid.
        """
        validate_key(ns, key)
        self._ops.append(Op("delete", ns, key))

    @property
    def ops(self) -> tuple[Op, ...]:
        """The buffered operations, in order."""
        return tuple(self._ops)

    def __len__(self) -> int:
        return len(self._ops)


MAX_LEASE_NAME = 200  # characters of a lease's name or holder


@dataclass(frozen=True)
class Lease:
    """A named lease as the store holds it (:meth:`Store.acquire_lease`); times are the store's clock, unix seconds."""

    name: str
    holder: str  # "" when never held
    epoch: int  # the fencing epoch: +1 at every change of holder (the first holder gets 1)
    expires_at: float
    address: str  # what the holder advertised (e.g. its HOST:PORT)
    now: float  # the store's clock when this was read

    @property
    def held(self) -> bool:
        """Whether someone holds it now (it has a holder and has not lapsed)."""
        return bool(self.holder) and self.expires_at > self.now


def validate_lease(name: str, holder: str, ttl_s: float | None = None) -> None:
    """Raises StoreError for an empty or over-long name or holder, or a ttl that is not a positive finite number."""
    for what, text in (("lease name", name), ("lease holder", holder)):
        if not isinstance(text, str) or not text or len(text) > MAX_LEASE_NAME:
            raise StoreError(f"{what} must be 1..{MAX_LEASE_NAME} characters, got {str(text)[:40]!r}")
        _validate_text(what, text)
    if ttl_s is not None and not (isinstance(ttl_s, (int, float)) and math.isfinite(ttl_s) and ttl_s > 0):
        raise StoreError(f"lease ttl must be a positive number of seconds, got {ttl_s!r}")


class Store(abc.ABC):
    """A namespaced key-value store with ordered keys and JSON-object values.

    Guarantees shared by every adapter:

    * ``get`` returns a fresh copy: mutating it never changes stored state, and neither does mutating a
      mapping after passing it to ``put``.
    * Values round-trip through JSON (tuples come back as lists).
    * ``scan`` orders keys by the byte order of their UTF-8 encoding.
    * Every method raises :class:`~blendr.errors.StoreError` (and nothing else on purpose) when the
      arguments are invalid, the value is not JSON-serialisable, the store is closed, or the backend fails.

    Namespaces must be non-empty; namespaces and keys must be valid Unicode text without NUL characters.
    """

    @abc.abstractmethod
    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        """Return the value stored under ``(ns, key)``, or None when there is none."""

    @abc.abstractmethod
    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` under ``(ns, key)``, replacing any previous value."""

    @abc.abstractmethod
    def delete(self, ns: str, key: str) -> bool:
        """Delete ``(ns, key)``; return True when something was deleted."""

    @abc.abstractmethod
    def put_if_absent(self, ns: str, key: str, value: Mapping[str, Any]) -> bool:
        """Atomically store ``value`` only if ``(ns, key)`` has no value; return True when inserted.

        Safe across threads and, for persistent adapters, across processes: of several concurrent callers
        with the same key exactly one gets True (the basis of idempotency keys).
        """

    @abc.abstractmethod
    def scan(
        self,
        ns: str,
        prefix: str = "",
        *,
        limit: int | None = None,
        reverse: bool = False,
        start_after: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Return ``(key, value)`` pairs of ``ns`` whose key starts with ``prefix``, ordered by key.

        Args:
            ns: The namespace.
            prefix: Only keys starting with this string.
            limit: At most this many pairs (None: all; 0: none).
            reverse: Descending key order instead of ascending.
            start_after: A pagination cursor: only keys strictly after it in the scan direction (greater
                when ascending, smaller when descending). Pass the last key of the previous page.

        Raises:
            StoreError: Invalid arguments (e.g. a negative limit) or a backend failure.
        """

    @abc.abstractmethod
    def count(self, ns: str, prefix: str = "") -> int:
        """Return how many keys of ``ns`` start with ``prefix``."""

    @abc.abstractmethod
    def _apply(self, ops: tuple[Op, ...]) -> None:
        """Apply ``ops`` in order as one atomic unit (all or nothing)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources; idempotent. Later calls raise StoreError."""

    # ------------------------------------------------------------------ leases and fencing
    @abc.abstractmethod
    def acquire_lease(self, name: str, holder: str, ttl_s: float, address: str = "") -> Lease:
        """Atomically (across processes for persistent adapters): when lease ``name`` is free, lapsed, or already
        ``holder``'s, it becomes ``holder``'s until the store's now + ``ttl_s`` (its epoch + 1 when the holder
        changes; the same epoch when the same holder renews, even after it lapsed if nobody took it meanwhile);
        otherwise it is left as it is. Returns the lease as it stands afterwards (compare ``.holder``).

        Raises:
            StoreError: an invalid name, holder or ttl, or a backend failure.
        """

    @abc.abstractmethod
    def release_lease(self, name: str, holder: str) -> bool:
        """Ends lease ``name`` now if ``holder`` holds it (its epoch unchanged); True when it did."""

    @abc.abstractmethod
    def read_lease(self, name: str) -> Lease | None:
        """Lease ``name`` as it stands, or None when it was never taken."""

    @abc.abstractmethod
    def _apply_fenced(self, ops: tuple[Op, ...], name: str, holder: str, epoch: int) -> None:
        """Apply ``ops`` as one atomic unit only if, in the same transaction, lease ``name`` is held by ``holder``
        at ``epoch`` and has not lapsed; otherwise apply nothing and raise FencedError."""

    @abc.abstractmethod
    def _put_if_absent_fenced(self, ns: str, key: str, text: str, name: str, holder: str, epoch: int) -> bool:
        """:meth:`put_if_absent` of encoded ``text``, fenced as :meth:`_apply_fenced` is."""

    def fenced(self, name: str, holder: str, epoch: int) -> Store:
        """A view of this store whose every write (put, delete, put_if_absent, batch) is applied only while lease
        ``name`` is held by ``holder`` at ``epoch`` and has not lapsed, checked in the write's own transaction;
        otherwise nothing is written and :class:`~blendr.errors.FencedError` is raised. Reads pass through;
        closing the view does not close this store."""
        validate_lease(name, holder)
        return FencedStore(self, name, holder, epoch)

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Yield a :class:`Batch` whose writes are applied atomically when the block exits normally.

        An exception raised inside the block discards every buffered write and propagates unchanged.

        Raises:
            StoreError: The batch could not be applied; then none of its writes were.
        """
        batch = Batch()
        yield batch
        if len(batch):
            self._apply(batch.ops)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def validate_key(ns: str, key: str) -> None:
    """Check that ``ns`` and ``key`` can be stored by every adapter.

    Raises:
        StoreError: ``ns`` is empty, either is not a ``str``, contains NUL, or is not encodable as UTF-8.
    """
    if not isinstance(ns, str) or not ns:
        raise StoreError(f"namespace must be a non-empty string, got {ns!r}")
    if not isinstance(key, str):
        raise StoreError(f"key must be a string, got {type(key).__name__}")
    _validate_text("namespace", ns)
    _validate_text("key", key)


def validate_prefix(prefix: str) -> None:
    """Check a scan prefix or cursor with the same rules as a key.

    Raises:
        StoreError: ``prefix`` is not a valid key string.
    """
    if not isinstance(prefix, str):
        raise StoreError(f"prefix must be a string, got {type(prefix).__name__}")
    _validate_text("prefix", prefix)


def _validate_text(what: str, text: str) -> None:
    if "\x00" in text:
        raise StoreError(f"{what} {text!r} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StoreError(f"{what} {text!r} is not valid Unicode text: {exc}") from exc


def validate_limit(limit: int | None) -> None:
    """Check a scan limit.

    Raises:
        StoreError: ``limit`` is negative or not an int.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise StoreError(f"limit must be None or a non-negative int, got {limit!r}")


def encode_value(ns: str, key: str, value: Mapping[str, Any]) -> str:
    """Encode a value as compact JSON text.

    Raises:
        StoreError: ``value`` is not a mapping or is not JSON-serialisable (including NaN/Infinity).
    """
    if not isinstance(value, Mapping):
        raise StoreError(f"value for {ns}/{key} must be a mapping, got {type(value).__name__}")
    try:
        return json.dumps(dict(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(f"value for {ns}/{key} is not JSON-serialisable: {exc}") from exc


def decode_value(text: str) -> dict[str, Any]:
    """Decode JSON text written by :func:`encode_value`.

    Raises:
        StoreError: The text is not a JSON object (a corrupted row).
    """
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"stored value is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"stored value is not a JSON object: {text[:80]!r}")
    return value


def prefix_upper_bound(prefix: str) -> str | None:
    """Return the smallest string greater than every string starting with ``prefix``.

    The keys starting with ``prefix`` are exactly the half-open range ``[prefix, bound)``; None means
    unbounded (``prefix`` is empty or made only of U+10FFFF). Surrogates are skipped so the bound stays
    encodable as UTF-8.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last == 0x10FFFF:
            continue
        nxt = last + 1
        if 0xD800 <= nxt <= 0xDFFF:
            nxt = 0xE000
        return "".join(chars) + chr(nxt)
    return None


def fenced_error(name: str, epoch: int, lease: Lease | None) -> FencedError:
    """The FencedError for a write made at ``epoch`` of lease ``name``, which now stands as ``lease``."""
    if lease is None:
        return FencedError(f"lease {name!r} was never taken: a write at epoch {epoch} is refused")
    if lease.epoch != epoch:
        return FencedError(f"lease {name!r} is at epoch {lease.epoch} (held by {lease.holder}): a write made at "
                           f"epoch {epoch} is refused")
    return FencedError(f"lease {name!r} (epoch {epoch}) lapsed before this write: it is refused until the lease is "
                       "renewed")


class FencedStore(Store):
    """:meth:`Store.fenced`'s view: writes conditional on a lease's epoch, reads straight from the store."""

    def __init__(self, inner: Store, name: str, holder: str, epoch: int) -> None:
        self.inner = inner
        self.lease_name = name
        self.holder = holder
        self.epoch = epoch

    def _write(self, ops: tuple[Op, ...]) -> None:
        self.inner._apply_fenced(ops, self.lease_name, self.holder, self.epoch)

    def get(self, ns: str, key: str) -> dict[str, Any] | None:
        return self.inner.get(ns, key)

    def put(self, ns: str, key: str, value: Mapping[str, Any]) -> None:
        validate_key(ns, key)
        self._write((Op("put", ns, key, encode_value(ns, key, value)),))

    def delete(self, ns: str, key: str) -> bool:
        validate_key(ns, key)
        existed = self.inner.get(ns, key) is not None
        self._write((Op("delete", ns, key),))
        return existed

    def put_if_absent(self, ns: str, key: str, value: Mapping[str, Any]) -> bool:
        validate_key(ns, key)
        return self.inner._put_if_absent_fenced(ns, key, encode_value(ns, key, value), self.lease_name, self.holder,
                                                self.epoch)

    def scan(self, ns: str, prefix: str = "", *, limit: int | None = None, reverse: bool = False,
             start_after: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        return self.inner.scan(ns, prefix, limit=limit, reverse=reverse, start_after=start_after)

    def count(self, ns: str, prefix: str = "") -> int:
        return self.inner.count(ns, prefix)

    def _apply(self, ops: tuple[Op, ...]) -> None:
        self._write(ops)

    def close(self) -> None:
        """Closes nothing: the view does not own the store."""

    def acquire_lease(self, name: str, holder: str, ttl_s: float, address: str = "") -> Lease:
        return self.inner.acquire_lease(name, holder, ttl_s, address)

    def release_lease(self, name: str, holder: str) -> bool:
        return self.inner.release_lease(name, holder)

    def read_lease(self, name: str) -> Lease | None:
        return self.inner.read_lease(name)

    def _apply_fenced(self, ops: tuple[Op, ...], name: str, holder: str, epoch: int) -> None:
        self.inner._apply_fenced(ops, name, holder, epoch)

    def _put_if_absent_fenced(self, ns: str, key: str, text: str, name: str, holder: str, epoch: int) -> bool:
        return self.inner._put_if_absent_fenced(ns, key, text, name, holder, epoch)

    def __repr__(self) -> str:
        return f"FencedStore({self.inner!r}, {self.lease_name!r}, epoch={self.epoch})"
