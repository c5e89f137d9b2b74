"""TLS material for gRPC: a devnet CA, node certificates it signs, and gRPC credentials from PEM files.

On a dev network every node generates (once) a CA in ``<home>/tls/`` and a server certificate signed by
it; clients trust the queen's ``ca.crt``. Real networks point ``rpc.ca_file``/``rpc.cert_file``/
``rpc.key_file`` at operator certificates and only the ``load_*`` functions are used.

Key material is never logged: log lines name files, never their contents.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from blendr.errors import TLSError
from blendr.telemetry import get_logger

__all__ = [
    "CA_VALIDITY_DAYS",
    "LEAF_VALIDITY_DAYS",
    "REISSUE_BEFORE_DAYS",
    "TLSFiles",
    "devnet_tls",
    "ensure_devnet_ca",
    "ensure_server_cert",
    "load_channel_credentials",
    "load_server_credentials",
]

log = get_logger("blendr.rpc.tls")

CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 365
#: A node certificate that expires within this many days is reissued.
REISSUE_BEFORE_DAYS = 30
#: Names every generated node certificate covers, so local clients always verify.
ALWAYS_HOSTNAMES = ("localhost", "127.0.0.1")
# Backdate notBefore so peers with slightly slow clocks accept a certificate issued just now.
_CLOCK_SKEW = dt.timedelta(minutes=5)

_CA_HINT = "generate one with `blendr queen run` on a fresh home, or point rpc.ca_file at the queen's ca.crt"
_NODE_HINT = (
    "delete it to have the node issue a new one from its devnet CA, "
    "or point rpc.cert_file/rpc.key_file at valid PEM files"
)

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class TLSFiles:
    """Paths of a node's TLS material: the CA to trust and, for a server, its certificate and key."""

    ca_cert: Path
    cert: Path | None
    key: Path | None


# --- generation ---------------------------------------------------------------------------------------


def ensure_devnet_ca(
    tls_dir: Path, *, common_name: str = "BlendrChain devnet CA", clock: Clock = _utcnow
) -> tuple[Path, Path]:
    """Create a self-signed EC P-256 CA in ``tls_dir`` unless one is there; return its cert and key paths.

    The files are ``ca.crt`` and ``ca.key`` (mode 0600), each written atomically. An existing CA is reused
    unchanged, so certificates it issued stay valid.

    Raises:
        TLSError: Only one of the two files exists, they are unreadable or invalid, the key does not match
            the certificate, the CA has expired, or the files cannot be written.
    """
    tls_dir = Path(tls_dir)
    cert_path, key_path = tls_dir / "ca.crt", tls_dir / "ca.key"
    if cert_path.exists() or key_path.exists():
        if not (cert_path.exists() and key_path.exists()):
            present, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
            raise TLSError(
                f"devnet CA is incomplete: {present} exists but {missing} does not; restore it, or remove "
                f"{present} to generate a new CA (certificates issued by the old one stop working)"
            )
        cert = _load_cert(cert_path, _CA_HINT)
        key = _load_key(key_path, _CA_HINT)
        if not _same_public_key(cert, key):
            raise TLSError(f"{key_path} is not the key of {cert_path}; restore the matching pair")
        if cert.not_valid_after_utc <= clock():
            raise TLSError(
                f"devnet CA {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; {_CA_HINT}"
            )
        return cert_path, key_path

    _make_private_dir(tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = clock()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a present ca.crt always has its key beside it.
    _atomic_write(key_path, _key_pem(key), mode=0o600)
    _atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("devnet CA created", cert_file=str(cert_path), subject=common_name)
    return cert_path, key_path


def ensure_server_cert(
    tls_dir: Path,
    hostnames: Sequence[str],
    *,
    ca_cert: Path,
    ca_key: Path,
    name: str = "node",
    clock: Clock = _utcnow,
) -> tuple[Path, Path]:
    """Make sure ``tls_dir`` holds a valid node certificate for ``hostnames``; return its cert and key paths.

    The certificate (``<name>.crt``, key ``<name>.key`` with mode 0600) is an EC P-256 leaf signed by the CA
    with a SAN for every hostname (an IP address entry when it parses as one, else a DNS name) plus
    ``localhost`` and ``127.0.0.1``, and extended key usages serverAuth and clientAuth (so it also serves as
    an mTLS client certificate). It is (re)issued with a fresh key when missing, unreadable, expiring
    within :data:`REISSUE_BEFORE_DAYS`, not signed by this CA, not matching its key, or not covering every
    requested hostname; otherwise it is reused unchanged.

    Raises:
        TLSError: The CA files are missing or invalid, or the files cannot be written.
    """
    tls_dir = Path(tls_dir)
    cert_path, key_path = tls_dir / f"{name}.crt", tls_dir / f"{name}.key"
    ca = _load_cert(Path(ca_cert), _CA_HINT)
    ca_private = _load_key(Path(ca_key), _CA_HINT)
    if not _same_public_key(ca, ca_private):
        raise TLSError(f"{ca_key} is not the key of {ca_cert}; restore the matching pair")
    dns_names, ips = _split_hostnames([*ALWAYS_HOSTNAMES, *hostnames])

    reason = _reissue_reason(cert_path, key_path, ca, dns_names, ips, clock())
    if reason is None:
        return cert_path, key_path

    _make_private_dir(tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = clock()
    first = next((h for h in hostnames if h.strip()), "localhost").strip()
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns_names)]
    san += [x509.IPAddress(ip) for ip in sorted(ips, key=lambda a: (a.version, int(a)))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[:64])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(min(now + dt.timedelta(days=LEAF_VALIDITY_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_private, hashes.SHA256())
    )
    _atomic_write(key_path, _key_pem(key), mode=0o600)
    _atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    log.info("node certificate issued", cert_file=str(cert_path), reason=reason, names=len(san))
    return cert_path, key_path


def devnet_tls(home: Path, hostnames: Sequence[str]) -> TLSFiles:
    """Ensure the devnet CA and this node's certificate under ``home/tls`` and return their paths.

    Files: ``ca.crt``, ``ca.key``, ``node.crt``, ``node.key``.

    Raises:
        TLSError: As :func:`ensure_devnet_ca` and :func:`ensure_server_cert`.
    """
    tls_dir = Path(home).expanduser() / "tls"
    ca_cert, ca_key = ensure_devnet_ca(tls_dir)
    cert, key = ensure_server_cert(tls_dir, hostnames, ca_cert=ca_cert, ca_key=ca_key)
    return TLSFiles(ca_cert=ca_cert, cert=cert, key=key)


# --- gRPC credentials ---------------------------------------------------------------------------------


def load_server_credentials(
    cert: Path, key: Path, *, client_ca: Path | None = None
) -> grpc.ServerCredentials:
    """Build gRPC server credentials from PEM files.

    Args:
        cert: The server certificate (chain) PEM.
        key: Its private key PEM.
        client_ca: When given, clients must present a certificate signed by this CA (mTLS).

    Raises:
        TLSError: A file is missing, unreadable or not valid PEM, or the key does not match the certificate.
    """
    cert_pem, key_pem = _read_pair(Path(cert), Path(key))
    root = _read_cert_pem(Path(client_ca), _CA_HINT) if client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=root, require_client_auth=client_ca is not None
    )


def load_channel_credentials(
    ca_cert: Path, *, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """Build gRPC channel credentials that trust ``ca_cert``, optionally presenting a client certificate.

    Raises:
        TLSError: Only one of ``cert``/``key`` is given, or a file is missing, unreadable, not valid PEM,
            or the key does not match the certificate.
    """
    root = _read_cert_pem(Path(ca_cert), _CA_HINT)
    if (cert is None) != (key is None):
        raise TLSError("a client certificate needs both cert and key (got only one)")
    if cert is None or key is None:
        return grpc.ssl_channel_credentials(root_certificates=root)
    cert_pem, key_pem = _read_pair(Path(cert), Path(key))
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key_pem, certificate_chain=cert_pem
    )


# --- helpers ------------------------------------------------------------------------------------------


def _reissue_reason(
    cert_path: Path,
    key_path: Path,
    ca: x509.Certificate,
    dns_names: set[str],
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address],
    now: dt.datetime,
) -> str | None:
    """Why the node certificate must be (re)issued, or None when it can be reused."""
    if not (cert_path.is_file() and key_path.is_file()):
        return "missing"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return "unreadable"
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_public_key(cert, key):
        return "key mismatch"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by this CA"
    if cert.not_valid_after_utc - now < dt.timedelta(days=REISSUE_BEFORE_DAYS):
        return "expiring"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "hostnames"
    have_dns = {d.lower() for d in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    if not (dns_names <= have_dns and ips <= have_ips):
        return "hostnames"
    return None


def _split_hostnames(
    hostnames: Sequence[str],
) -> tuple[set[str], set[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    dns: set[str] = set()
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for raw in hostnames:
        host = raw.strip()
        if host.startswith("[") and host.endswith("]"):  # "[::1]" as written in URLs
            host = host[1:-1]
        if not host:
            continue
        try:
            ips.add(ipaddress.ip_address(host))
            continue
        except ValueError:
            pass
        try:
            # Certificates carry ASCII (IDNA "A-label") DNS names.
            ascii_host = host if host.isascii() else host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise TLSError(f"hostname {raw!r} is neither an IP address nor a valid DNS name") from exc
        dns.add(ascii_host.lower())
    return dns, ips


def _same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise TLSError(f"{what} {path} does not exist; {hint}") from exc
    except OSError as exc:
        raise TLSError(f"cannot read {what} {path} ({exc.strerror}); {hint}") from exc


def _load_cert(path: Path, hint: str) -> x509.Certificate:
    data = _read(path, "certificate", hint)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise TLSError(f"{path} is not a valid PEM certificate; {hint}") from exc


def _load_key(path: Path, hint: str) -> ec.EllipticCurvePrivateKey:
    data = _read(path, "private key", hint)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # The exception text never contains key bytes, but keep the message to the file name anyway.
        raise TLSError(f"{path} is not a valid unencrypted PEM private key; {hint}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TLSError(f"{path} is a {type(key).__name__}, expected an EC private key; {hint}")
    return key


def _read_cert_pem(path: Path, hint: str) -> bytes:
    """Read a PEM file and check that it holds at least one certificate; return its bytes."""
    data = _read(path, "certificate", hint)
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TLSError(f"{path} is not a valid PEM certificate; {hint}") from exc
    return data


def _read_pair(cert: Path, key: Path) -> tuple[bytes, bytes]:
    """Read a certificate (chain) and its private key, checking that they belong together."""
    cert_pem = _read(cert, "certificate", _NODE_HINT)
    key_pem = _read(key, "private key", _NODE_HINT)
    try:
        leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError as exc:
        raise TLSError(f"{cert} is not a valid PEM certificate; {_NODE_HINT}") from exc
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TLSError(f"{key} is not a valid unencrypted PEM private key; {_NODE_HINT}") from exc
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if leaf.public_key().public_bytes(*fmt) != private.public_key().public_bytes(*fmt):
        raise TLSError(f"{key} is not the private key of {cert}; {_NODE_HINT}")
    return cert_pem, key_pem


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise TLSError(f"cannot create TLS directory {path}: {exc}") from exc


def _atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename (never half-written)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600, so key bytes are never readable by others, even briefly.
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise TLSError(f"cannot write {path}: {exc}") from exc
