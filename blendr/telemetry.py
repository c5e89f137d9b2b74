"""Structured logging and per-node Prometheus metrics.

Logging is plain stdlib :mod:`logging` with structured fields: ``get_logger(name).info("provider
admitted", address=addr, devices=2)`` puts the keyword fields on the record, and the handler installed by
:func:`configure_logging` renders them as ``key=value`` (console) or as one JSON object per line (json).
Fields whose name suggests a secret are replaced by ``<redacted>`` before any handler sees them.

Metrics live in a :class:`Metrics` object that owns its own ``CollectorRegistry`` (not the process-global
default), so several nodes in one process (tests, the devnet) never clash.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sys
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TextIO, TypeAlias

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import start_http_server as _prom_start_http_server

from blendr.errors import ConfigError

__all__ = [
    "REDACTED",
    "SENSITIVE_WORDS",
    "BoundLogger",
    "Metrics",
    "configure_logging",
    "get_logger",
    "redact",
]

#: Field names containing any of these words (case-insensitive) are never rendered.
SENSITIVE_WORDS = ("key", "secret", "password", "signature", "token", "private")
REDACTED = "<redacted>"

# The LogRecord attribute our structured fields travel in (one attribute, so field names can never clash
# with LogRecord's own attributes such as "name" or "message").
_FIELDS_ATTR = "blendr_fields"
# Keys of a JSON log line; a caller's field with one of these names is written with a trailing "_".
_RESERVED = frozenset({"ts", "level", "logger", "event", "exc", "stack"})

ExcInfo: TypeAlias = (
    bool | BaseException | tuple[type[BaseException], BaseException, TracebackType | None] | None
)


# --- logging ------------------------------------------------------------------------------------------


def redact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``fields`` with every sensitive field's value replaced by ``<redacted>``.

    A field is sensitive when its name contains one of :data:`SENSITIVE_WORDS` (so ``api_key`` and
    ``public_key`` are redacted too: erring towards hiding is the safe side). Nested mappings, and mappings
    inside lists/tuples, are redacted the same way.
    """
    return {k: REDACTED if _is_sensitive(k) else _redact_value(v) for k, v in fields.items()}


def _is_sensitive(name: object) -> bool:
    lowered = str(name).lower()
    return any(word in lowered for word in SENSITIVE_WORDS)


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class BoundLogger:
    """A stdlib logger that takes an event string plus keyword fields, with optional bound context.

    ``log.info("provider admitted", address=addr, devices=2)`` logs the event ``provider admitted`` with
    the fields ``address`` and ``devices``; ``log.bind(pool="eu")`` returns a logger that adds
    ``pool="eu"`` to every line. Sensitive fields are redacted (see :func:`redact`).
    """

    __slots__ = ("_context", "_logger")

    def __init__(self, logger: logging.Logger, context: Mapping[str, Any] | None = None) -> None:
        self._logger = logger
        self._context: dict[str, Any] = dict(context or {})

    @property
    def name(self) -> str:
        """The underlying stdlib logger's name."""
        return self._logger.name

    @property
    def stdlib(self) -> logging.Logger:
        """The underlying stdlib logger."""
        return self._logger

    def bind(self, **fields: Any) -> BoundLogger:
        """Return a logger that adds ``fields`` to every line (later keywords override bound ones)."""
        return BoundLogger(self._logger, {**self._context, **fields})

    def is_enabled_for(self, level: int) -> bool:
        """Whether a line at ``level`` would be handled (skip building expensive fields when not)."""
        return self._logger.isEnabledFor(level)

    def debug(self, event: str, /, *, exc_info: ExcInfo = None, **fields: Any) -> None:
        """Log ``event`` at DEBUG with structured ``fields``."""
        self._log(logging.DEBUG, event, exc_info, fields)

    def info(self, event: str, /, *, exc_info: ExcInfo = None, **fields: Any) -> None:
        """Log ``event`` at INFO with structured ``fields``."""
        self._log(logging.INFO, event, exc_info, fields)

    def warning(self, event: str, /, *, exc_info: ExcInfo = None, **fields: Any) -> None:
        """Log ``event`` at WARNING with structured ``fields``."""
        self._log(logging.WARNING, event, exc_info, fields)

    def error(self, event: str, /, *, exc_info: ExcInfo = None, **fields: Any) -> None:
        """Log ``event`` at ERROR with structured ``fields``."""
        self._log(logging.ERROR, event, exc_info, fields)

    def critical(self, event: str, /, *, exc_info: ExcInfo = None, **fields: Any) -> None:
        """Log ``event`` at CRITICAL with structured ``fields``."""
        self._log(logging.CRITICAL, event, exc_info, fields)

    def exception(self, event: str, /, **fields: Any) -> None:
        """Log ``event`` at ERROR with the exception being handled and structured ``fields``."""
        self._log(logging.ERROR, event, True, fields)

    def _log(self, level: int, event: str, exc_info: ExcInfo, fields: Mapping[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        merged = {**self._context, **fields} if self._context else dict(fields)
        # stacklevel=3 attributes the record to our caller, not to this helper or the level method.
        self._logger.log(level, event, exc_info=exc_info, extra={_FIELDS_ATTR: redact(merged)}, stacklevel=3)


def get_logger(name: str) -> BoundLogger:
    """Return a :class:`BoundLogger` over ``logging.getLogger(name)``."""
    return BoundLogger(logging.getLogger(name))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, _FIELDS_ATTR, None)
    return fields if isinstance(fields, dict) else {}


def _timestamp(record: logging.LogRecord) -> str:
    ts = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _plain(value: Any) -> Any:
    """Make ``value`` strict-JSON friendly: non-finite floats become strings, unknown objects str()."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``event``, the fields, and ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single-line JSON object."""
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line[f"{key}_" if key in _RESERVED else key] = _plain(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, allow_nan=False)


class ConsoleFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <event> key=value ...`` with the traceback on the following lines."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one human-readable line (plus a traceback if any)."""
        parts = [_timestamp(record), f"{record.levelname:<7}", f"{record.name}:", record.getMessage()]
        parts += [f"{key}={_console_value(value)}" for key, value in _fields(record).items()]
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


def _console_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(_plain(value), ensure_ascii=False)
    if text == "" or any(c.isspace() or c in "\"'=" for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


_config_lock = threading.Lock()


def configure_logging(
    level: str = "INFO", fmt: Literal["console", "json"] = "console", stream: TextIO | None = None
) -> None:
    """Route all logging to one handler on the root logger, replacing the one a previous call installed.

    Idempotent: calling it again never duplicates lines; the latest level, format and stream win.

    Args:
        level: A stdlib level name (DEBUG, INFO, WARNING, ERROR, CRITICAL), any case.
        fmt: ``console`` for people, ``json`` for one JSON object per line.
        stream: Where lines go; defaults to ``sys.stderr``.

    Raises:
        ConfigError: ``level`` or ``fmt`` is not one of the accepted values.
    """
    levelno = logging.getLevelNamesMapping().get(str(level).upper())
    if levelno is None:
        raise ConfigError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JSONFormatter()
    elif fmt == "console":
        formatter = ConsoleFormatter()
    else:
        raise ConfigError(f"unknown log format {fmt!r}; use console or json")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("blendr")
    root = logging.getLogger()
    with _config_lock:
        for old in [h for h in root.handlers if h.get_name() == "blendr"]:
            root.removeHandler(old)
            old.close()
        root.addHandler(handler)
        root.setLevel(levelno)


# --- metrics ------------------------------------------------------------------------------------------


class Metrics:
    """One node's Prometheus metrics: a private registry, cached metric objects and an optional endpoint.

    Metric names get the ``<namespace>_`` prefix. Asking twice for the same name returns the same object;
    asking for an existing name with a different type or label set raises ``ValueError`` (a programming
    error).
    """

    def __init__(self, namespace: str = "blendr") -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry()
        self._metrics: dict[str, tuple[str, tuple[str, ...], Any]] = {}
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        """Return the counter ``<namespace>_<name>`` (exposed with a ``_total`` suffix), creating it once."""
        return self._get_or_create("counter", Counter, name, doc, labels)

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        """Return the gauge ``<namespace>_<name>``, creating it once."""
        return self._get_or_create("gauge", Gauge, name, doc, labels)

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        """Return the histogram ``<namespace>_<name>``, creating it once with ``buckets``.

        The buckets of an existing histogram are not changed by later calls.
        """
        return self._get_or_create("histogram", Histogram, name, doc, labels, buckets=tuple(buckets))

    def _get_or_create(
        self, kind: str, cls: Any, name: str, doc: str, labels: Sequence[str], **kwargs: Any
    ) -> Any:
        label_names = tuple(labels)
        with self._lock:
            cached = self._metrics.get(name)
            if cached is not None:
                cached_kind, cached_labels, metric = cached
                if (cached_kind, cached_labels) != (kind, label_names):
                    raise ValueError(
                        f"metric {name!r} already exists as a {cached_kind} with labels {cached_labels}, "
                        f"not a {kind} with labels {label_names}"
                    )
                return metric
            metric = cls(
                name, doc, labelnames=label_names, namespace=self.namespace, registry=self.registry, **kwargs
            )
            self._metrics[name] = (kind, label_names, metric)
            return metric

    def render(self) -> bytes:
        """Return every metric of this registry in the Prometheus text exposition format."""
        return bytes(generate_latest(self.registry))

    def start_http_server(self, host: str, port: int) -> int:
        """Serve ``/metrics`` for this registry on ``host:port`` in a daemon thread; return the bound port.

        Port 0 picks a free port.

        Raises:
            RuntimeError: The endpoint is already running (stop it first).
            ConfigError: The address cannot be bound (in use, bad host).
        """
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the metrics endpoint is already running")
            try:
                server, thread = _prom_start_http_server(port, addr=host, registry=self.registry)
            except OSError as exc:
                raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
            self._server, self._thread = server, thread
            return int(server.server_port)

    def stop_http_server(self, timeout: float = 5.0) -> None:
        """Stop the endpoint started by :meth:`start_http_server` and close its socket; idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
