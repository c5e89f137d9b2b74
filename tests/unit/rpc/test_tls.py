"""Devnet CA, node certificates, and gRPC credentials against a real grpc.aio server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from blendr.errors import TLSError
from blendr.rpc.tls import (
    TLSFiles,
    devnet_tls,
    ensure_devnet_ca,
    ensure_server_cert,
    load_channel_credentials,
    load_server_credentials,
)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(path: Path) -> tuple[set[str], set[str]]:
    san = load(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the devnet CA ------------------------------------------------------------------------------------


def test_ca_is_created_once_and_reused(tmp_path: Path) -> None:
    tls_dir = tmp_path / "tls"
    cert, key = ensure_devnet_ca(tls_dir)
    assert (cert, key) == (tls_dir / "ca.crt", tls_dir / "ca.key")
    first = (cert.read_bytes(), key.read_bytes())
    assert ensure_devnet_ca(tls_dir) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first


def test_ca_certificate_shape(tmp_path: Path) -> None:
    cert_path, _ = ensure_devnet_ca(tmp_path, common_name="Test CA")
    cert = load(cert_path)
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "CN=Test CA"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= dt.timedelta(days=3650)
    cert.verify_directly_issued_by(cert)  # self-signed


def test_key_files_are_private(tmp_path: Path) -> None:
    files = devnet_tls(tmp_path, ["queen.local"])
    assert files.key is not None
    assert mode(tmp_path / "tls" / "ca.key") == 0o600
    assert mode(files.key) == 0o600
    assert mode(tmp_path / "tls") == 0o700
    assert not [p.name for p in (tmp_path / "tls").iterdir() if p.name.endswith(".tmp")]


def test_no_key_material_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    files = devnet_tls(tmp_path, ["queen.local"])
    assert caplog.records, "issuing should log which files were written"
    logged = "\n".join(str(r.__dict__) for r in caplog.records)
    assert "PRIVATE KEY" not in logged
    assert files.key is not None
    body = files.key.read_text().splitlines()[1]
    assert body not in logged


def test_incomplete_ca_is_an_error(tmp_path: Path) -> None:
    _, key = ensure_devnet_ca(tmp_path)
    key.unlink()
    with pytest.raises(TLSError, match=r"ca\.key"):
        ensure_devnet_ca(tmp_path)


def test_garbage_ca_is_an_error(tmp_path: Path) -> None:
    cert, _ = ensure_devnet_ca(tmp_path)
    cert.write_text("not a certificate")
    with pytest.raises(TLSError, match=r"ca\.crt.*blendr queen run"):
        ensure_devnet_ca(tmp_path)


# --- node certificates --------------------------------------------------------------------------------


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, Path]:
    return ensure_devnet_ca(tmp_path / "tls")


def test_server_cert_sans_issuer_and_usages(tmp_path: Path, ca: tuple[Path, Path]) -> None:
    ca_cert, ca_key = ca
    cert_path, key_path = ensure_server_cert(
        tmp_path / "tls", ["Queen.Example", "10.1.2.3", "[::1]"], ca_cert=ca_cert, ca_key=ca_key
    )
    assert (cert_path.name, key_path.name) == ("node.crt", "node.key")
    dns, ips = sans(cert_path)
    assert dns == {"queen.example", "localhost"}
    assert ips == {"10.1.2.3", "127.0.0.1", "::1"}
    cert = load(cert_path)
    cert.verify_directly_issued_by(load(ca_cert))
    assert cert.issuer == load(ca_cert).subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert ipaddress.ip_address("10.1.2.3") in cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.IPAddress)


def test_server_cert_is_reused_when_still_good(tmp_path: Path, ca: tuple[Path, Path]) -> None:
    ca_cert, ca_key = ca
    cert, key = ensure_server_cert(tmp_path / "tls", ["a.example"], ca_cert=ca_cert, ca_key=ca_key)
    before = (cert.read_bytes(), key.read_bytes())
    # A subset of the names already covered (and the implicit ones) needs no new certificate.
    ensure_server_cert(tmp_path / "tls", ["A.example", "localhost"], ca_cert=ca_cert, ca_key=ca_key)
    assert (cert.read_bytes(), key.read_bytes()) == before


def test_server_cert_is_reissued_for_a_new_hostname(tmp_path: Path, ca: tuple[Path, Path]) -> None:
    ca_cert, ca_key = ca
    cert, _ = ensure_server_cert(tmp_path / "tls", ["a.example"], ca_cert=ca_cert, ca_key=ca_key)
    before = cert.read_bytes()
    ensure_server_cert(
        tmp_path / "tls", ["a.example", "b.example", "192.168.0.9"], ca_cert=ca_cert, ca_key=ca_key
    )
    assert cert.read_bytes() != before
    dns, ips = sans(cert)
    assert {"a.example", "b.example"} <= dns
    assert "192.168.0.9" in ips


def test_server_cert_is_reissued_when_expiring(tmp_path: Path, ca: tuple[Path, Path]) -> None:
    ca_cert, ca_key = ca
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=340)  # 365-day cert: 25 days left
    cert, _ = ensure_server_cert(tmp_path / "tls", [], ca_cert=ca_cert, ca_key=ca_key, clock=lambda: long_ago)
    old_expiry = load(cert).not_valid_after_utc
    assert old_expiry - dt.datetime.now(dt.UTC) < dt.timedelta(days=30)
    ensure_server_cert(tmp_path / "tls", [], ca_cert=ca_cert, ca_key=ca_key)
    assert load(cert).not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)


def test_server_cert_is_reissued_for_another_ca(tmp_path: Path, ca: tuple[Path, Path]) -> None:
    ca_cert, ca_key = ca
    cert, _ = ensure_server_cert(tmp_path / "tls", [], ca_cert=ca_cert, ca_key=ca_key)
    other_cert, other_key = ensure_devnet_ca(tmp_path / "other", common_name="Other CA")
    ensure_server_cert(tmp_path / "tls", [], ca_cert=other_cert, ca_key=other_key)
    load(cert).verify_directly_issued_by(load(other_cert))


def test_server_cert_is_reissued_when_its_key_is_lost(tmp_path: Path, ca: tuple[Path, Path]) -> None:
    ca_cert, ca_key = ca
    cert, key = ensure_server_cert(tmp_path / "tls", [], ca_cert=ca_cert, ca_key=ca_key)
    before = cert.read_bytes()
    key.unlink()
    ensure_server_cert(tmp_path / "tls", [], ca_cert=ca_cert, ca_key=ca_key)
    assert key.is_file() and cert.read_bytes() != before
    load_server_credentials(cert, key)  # the new pair matches


def test_devnet_tls_layout(tmp_path: Path) -> None:
    files = devnet_tls(tmp_path, ["queen.local"])
    tls_dir = tmp_path / "tls"
    assert files == TLSFiles(ca_cert=tls_dir / "ca.crt", cert=tls_dir / "node.crt", key=tls_dir / "node.key")
    assert (tls_dir / "ca.key").is_file()
    assert devnet_tls(tmp_path, ["queen.local"]) == files


# --- credential loading errors ------------------------------------------------------------------------


def test_missing_ca_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.crt"
    with pytest.raises(TLSError) as info:
        load_channel_credentials(missing)
    assert str(missing) in str(info.value)
    assert "blendr queen run" in str(info.value) and "ca_file" in str(info.value)


def test_invalid_pem_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.crt"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(TLSError, match="not a valid PEM certificate"):
        load_channel_credentials(bad)
    files = devnet_tls(tmp_path / "home", [])
    assert files.cert is not None
    with pytest.raises(TLSError, match="not a valid unencrypted PEM private key"):
        load_server_credentials(files.cert, bad)


def test_mismatched_key_is_an_error(tmp_path: Path) -> None:
    a = devnet_tls(tmp_path / "a", [])
    b = devnet_tls(tmp_path / "b", [])
    assert a.cert is not None and b.key is not None
    with pytest.raises(TLSError, match="is not the private key"):
        load_server_credentials(a.cert, b.key)
    with pytest.raises(TLSError, match="is not the private key"):
        load_channel_credentials(a.ca_cert, cert=a.cert, key=b.key)


def test_client_cert_needs_both_halves(tmp_path: Path) -> None:
    files = devnet_tls(tmp_path, [])
    with pytest.raises(TLSError, match="both"):
        load_channel_credentials(files.ca_cert, cert=files.cert)


# --- a real grpc.aio server ---------------------------------------------------------------------------

Serve = Callable[[grpc.ServerCredentials], Awaitable[int]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[grpc.aio.Server] = []

    async def start(creds: grpc.ServerCredentials) -> int:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port: int = server.add_secure_port("127.0.0.1:0", creds)
        assert port > 0
        await server.start()
        servers.append(server)
        return port

    yield start
    for server in servers:
        await server.stop(None)


async def check(port: int, creds: grpc.ChannelCredentials) -> int:
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        status: int = response.status
        return status


async def test_client_trusting_the_ca_reaches_the_server(tmp_path: Path, serve: Serve) -> None:
    files = devnet_tls(tmp_path / "queen", ["queen.local"])
    assert files.cert is not None and files.key is not None
    port = await serve(load_server_credentials(files.cert, files.key))
    assert (
        await check(port, load_channel_credentials(files.ca_cert)) == health_pb2.HealthCheckResponse.SERVING
    )


async def test_client_trusting_another_ca_is_refused(tmp_path: Path, serve: Serve) -> None:
    files = devnet_tls(tmp_path / "queen", [])
    other = devnet_tls(tmp_path / "elsewhere", [])
    assert files.cert is not None and files.key is not None
    port = await serve(load_server_credentials(files.cert, files.key))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(port, load_channel_credentials(other.ca_cert))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_server_requires_a_client_certificate(tmp_path: Path, serve: Serve) -> None:
    queen = devnet_tls(tmp_path / "queen", [])
    assert queen.cert is not None and queen.key is not None
    port = await serve(load_server_credentials(queen.cert, queen.key, client_ca=queen.ca_cert))

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(port, load_channel_credentials(queen.ca_cert))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE

    # A client certificate from another CA is refused too.
    stranger = devnet_tls(tmp_path / "stranger", [])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(port, load_channel_credentials(queen.ca_cert, cert=stranger.cert, key=stranger.key))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE

    # A provider whose certificate the queen's CA signed gets in.
    tls_dir = tmp_path / "provider"
    cert, key = ensure_server_cert(
        tls_dir, ["provider.local"], ca_cert=queen.ca_cert, ca_key=queen.ca_cert.with_name("ca.key")
    )
    creds = load_channel_credentials(queen.ca_cert, cert=cert, key=key)
    assert await check(port, creds) == health_pb2.HealthCheckResponse.SERVING
