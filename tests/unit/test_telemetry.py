"""Structured logging (console/json, redaction) and per-node Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blendr.errors import ConfigError
from blendr.telemetry import REDACTED, Metrics, configure_logging, get_logger, redact


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


# --- logging ------------------------------------------------------------------------------------------


def test_json_line_shape() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    get_logger("blendr.queen").info("provider admitted", address="0xabc", devices=2, path=Path("/x"))
    (line,) = lines(out)
    record = json.loads(line)
    assert record == {
        "ts": record["ts"],
        "level": "info",
        "logger": "blendr.queen",
        "event": "provider admitted",
        "address": "0xabc",
        "devices": 2,
        "path": "/x",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])


def test_json_reserved_names_and_exceptions() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    log = get_logger("blendr.test")
    log.debug("odd fields", level="mine", ratio=float("nan"))
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("it failed", step=3)
    first, second = (json.loads(x) for x in lines(out))
    assert first["level"] == "debug" and first["level_"] == "mine" and first["ratio"] == "nan"
    assert second["level"] == "error" and second["step"] == 3
    assert "ValueError: bad thing" in second["exc"]


def test_console_line() -> None:
    out = io.StringIO()
    configure_logging("info", "console", stream=out)
    get_logger("blendr.queen").bind(pool="eu").warning("provider slow", address="0xabc", note="two words")
    (line,) = lines(out)
    assert re.fullmatch(
        r"\S+Z WARNING blendr\.queen: provider slow pool=eu address=0xabc note=\"two words\"", line
    ), line


def test_levels_filter_and_stdlib_records_are_rendered() -> None:
    out = io.StringIO()
    configure_logging("WARNING", "json", stream=out)
    get_logger("blendr.x").info("hidden")
    logging.getLogger("thirdparty").warning("plain %s", "stdlib")
    (line,) = lines(out)
    assert json.loads(line)["event"] == "plain stdlib"


def test_configure_logging_is_idempotent() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "json", stream=first)
    configure_logging("INFO", "json", stream=second)
    configure_logging("INFO", "json", stream=second)
    get_logger("blendr.x").info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1


def test_configure_logging_rejects_unknown_values() -> None:
    with pytest.raises(ConfigError, match="log level"):
        configure_logging("LOUD")
    with pytest.raises(ConfigError, match="log format"):
        configure_logging("INFO", "xml")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_sensitive_fields_are_redacted(fmt: str) -> None:
    out = io.StringIO()
    configure_logging("INFO", fmt, stream=out)  # type: ignore[arg-type]
    secrets: dict[str, Any] = {
        "private_key": "0xdeadbeef01",
        "api_key": "sk-live-02",
        "client_secret": "hunter03",
        "Password": "hunter04",
        "signature": "0xsig05",
        "auth_token": "tok06",
    }
    get_logger("blendr.x").bind(session_token="tok07").info(
        "signed in", address="0xabc", nested={"keystore": {"private": "p08"}, "ok": 1}, **secrets
    )
    text = out.getvalue()
    for value in [*secrets.values(), "tok07", "p08"]:
        assert value not in text
    assert "0xabc" in text and REDACTED in text
    if fmt == "json":
        record = json.loads(text)
        assert record["private_key"] == REDACTED and record["Password"] == REDACTED
        assert record["nested"] == {"keystore": REDACTED, "ok": 1}


def test_redaction_reaches_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    get_logger("blendr.x").info("x", private_key="0xdeadbeef")
    assert "0xdeadbeef" not in str(caplog.records[0].__dict__)


def test_redact_helper() -> None:
    assert redact({"key_id": 1, "a": [{"token": "t"}, 2]}) == {
        "key_id": REDACTED,
        "a": [{"token": REDACTED}, 2],
    }


def test_records_point_at_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    get_logger("blendr.x").info("here")
    assert caplog.records[0].funcName == "test_records_point_at_the_caller"


# --- metrics ------------------------------------------------------------------------------------------


def test_metrics_are_created_once() -> None:
    m = Metrics()
    c = m.counter("jobs", "Jobs", ("state",))
    assert m.counter("jobs", "Jobs", ("state",)) is c
    h = m.histogram("latency_seconds", "Latency", buckets=(0.1, 1.0))
    assert m.histogram("latency_seconds", "Latency", buckets=(0.1, 1.0)) is h
    with pytest.raises(ValueError, match="jobs"):
        m.gauge("jobs", "Jobs", ("state",))
    with pytest.raises(ValueError, match="jobs"):
        m.counter("jobs", "Jobs", ("other",))


def test_registries_are_isolated() -> None:
    a, b = Metrics(), Metrics()
    a.counter("challenges", "Challenges", ("verdict",)).labels(verdict="passed").inc(3)
    b.counter("challenges", "Challenges", ("verdict",)).labels(verdict="passed").inc()
    a.gauge("providers", "Providers").set(7)
    assert 'blendr_challenges_total{verdict="passed"} 3.0' in a.render().decode()
    assert 'blendr_challenges_total{verdict="passed"} 1.0' in b.render().decode()
    assert "blendr_providers" not in b.render().decode()


def test_namespace_prefixes_names() -> None:
    m = Metrics(namespace="queen1")
    m.histogram("verify_seconds", "Verify time", buckets=(0.5, 1.0)).observe(0.7)
    text = m.render().decode()
    assert 'queen1_verify_seconds_bucket{le="1.0"} 1.0' in text
    assert 'queen1_verify_seconds_bucket{le="0.5"} 0.0' in text


def test_http_endpoint_serves_and_stops() -> None:
    m = Metrics()
    m.gauge("providers", "Providers in the pool").set(5)
    port = m.start_http_server("127.0.0.1", 0)
    try:
        assert port > 0
        with pytest.raises(RuntimeError, match="already running"):
            m.start_http_server("127.0.0.1", 0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
        assert "blendr_providers 5.0" in body
    finally:
        m.stop_http_server()
    m.stop_http_server()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    # It can be started again after stopping.
    port2 = m.start_http_server("127.0.0.1", 0)
    m.stop_http_server()
    assert port2 > 0


def test_http_endpoint_port_in_use_is_a_config_error() -> None:
    a, b = Metrics(), Metrics()
    port = a.start_http_server("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=str(port)):
            b.start_http_server("127.0.0.1", port)
    finally:
        a.stop_http_server()
