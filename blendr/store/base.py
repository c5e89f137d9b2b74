"""The store port: a small namespaced key-value interface with ordered keys.

Every node keeps its durable state behind :class:`Store`. Values are JSON objects; keys are ordered by
the byte order of their UTF-8 encoding, which is the same as Python's ordering of ``str`` (UTF-8
preserves code-point order), so every adapter returns scans in the same order.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from blendr.errors import StoreError

__all__ = [
    "Batch",
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
