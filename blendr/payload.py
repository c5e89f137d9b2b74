"""A renter job's payload: its working directory as a tar.gz, framed with the entrypoint and environment,
and sealed (ECIES on secp256k1) to the chosen provider's node key.

Only the provider holding the private key can open a sealed payload, and only for the job whose id was
bound in as associated data: a payload lifted from one job cannot be replayed into another. Every
malformed, tampered or oversized input raises :class:`PayloadError` (or its subclass
:class:`PayloadTooLargeError`); nothing here logs plaintext or keys.

Sealed format (version 1)::

    0x01 | ephemeral public key (65 bytes, uncompressed SEC1) | nonce (12 bytes) | AES-256-GCM ciphertext+tag

The AES key is HKDF-SHA256 over the ECDH shared secret, salted with both public keys; the GCM associated
data is the 78-byte header followed by the caller's ``aad`` (e.g. the job id).
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import os
import re
import secrets
import shutil
import stat
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from blendr.errors import InvalidArgumentError, ResourceExhaustedError
from blendr.identity import Address

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

MAX_PAYLOAD_BYTES = 50 * 2**20
MAX_ENTRIES = 100_000
IGNORE_FILE = ".blendrignore"
# Never shipped: VCS metadata, bytecode caches and virtualenvs are large, machine-specific and rebuilt anyway.
ALWAYS_SKIPPED = frozenset({".git", "__pycache__", ".venv"})

SEAL_VERSION = 1
_PUB_LEN = 65
_NONCE_LEN = 12
_TAG_LEN = 16
_HEADER_LEN = 1 + _PUB_LEN + _NONCE_LEN
_HKDF_INFO = b"blendr/payload/v1"
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_DOC_MAGIC = b"BLJP"
_DOC_VERSION = 1
_DOC_PREFIX = struct.Struct(">4sBI")
MAX_DOC_HEADER_BYTES = 1 * 2**20
MAX_ENTRYPOINT_CHARS = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Renter-declared pip requirements (``--pip``): plain requirement specifiers, never pip options.
MAX_PIP_REQUIREMENTS = 64
MAX_PIP_REQUIREMENT_CHARS = 256
_COPY_CHUNK = 1 << 20


class PayloadError(InvalidArgumentError):
    """Raised when a job payload is malformed, fails authentication (tampered, wrong key, wrong job) or
    holds an unsafe working directory entry."""


class PayloadTooLargeError(ResourceExhaustedError, PayloadError):
    """Raised when a working directory or payload is over its size or entry-count limit."""


def _size(n: int) -> str:
    """Human size in binary units ("73.2 MB", "50 MB", "512 bytes")."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = (n / 2**20, "MB") if n >= 2**20 else (n / 1024, "KB")
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"


def _over(n: int, limit: int) -> tuple[str, str]:
    """Size and limit as text, with exact byte counts when rounding would make them look equal."""
    a, b = _size(n), _size(limit)
    if a == b:
        return f"{a} ({n} bytes)", f"{b} ({limit} bytes)"
    return a, b


# --- working directory -> tar.gz ------------------------------------------------------------------------


@dataclass(frozen=True)
class _IgnoreRule:
    pattern: str
    dir_only: bool
    anchored: bool

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.anchored:
            return fnmatch.fnmatchcase(rel, self.pattern)
        return fnmatch.fnmatchcase(PurePosixPath(rel).name, self.pattern)


def _read_ignore_rules(root: Path) -> list[_IgnoreRule]:
    """Parse ``<root>/.blendrignore``: one glob per line, ``#`` comments, a trailing ``/`` matches only
    directories, a pattern with a ``/`` matches the path from the root, otherwise the name at any depth.

    Raises:
        PayloadError: the file is unreadable or uses ``!`` negation (unsupported: refusing beats guessing).
    """
    path = root / IGNORE_FILE
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PayloadError(f"cannot read {path}: {exc}") from None
    rules = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise PayloadError(f"{path}:{lineno}: negated patterns ('!') are not supported")
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        if line:
            rules.append(_IgnoreRule(line, dir_only, anchored))
    return rules


@dataclass
class _Entry:
    rel: str
    source: Path  # what to read (a symlink's resolved target)
    is_dir: bool
    size: int
    executable: bool


def _collect(root: Path, shown: str, rules: list[_IgnoreRule], max_entries: int) -> list[_Entry]:
    """Walk ``root`` in sorted order, applying skips and ignore rules before any type checks (so an
    ignored symlink or socket never stops a pack)."""
    entries: list[_Entry] = []
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            children = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise PayloadError(f"cannot list {directory}: {exc}") from None
        subdirs: list[tuple[Path, str]] = []
        for child in children:
            rel = f"{prefix}{child.name}"
            path = Path(child.path)
            if child.name in ALWAYS_SKIPPED:
                continue
            try:
                st = path.lstat()
            except OSError as exc:
                raise PayloadError(f"cannot stat {path}: {exc}") from None
            is_dir = stat.S_ISDIR(st.st_mode)
            is_link = stat.S_ISLNK(st.st_mode)
            if is_link:
                try:
                    target = path.resolve(strict=True)
                    st = target.stat()
                except (OSError, RuntimeError):
                    raise PayloadError(f"workdir {shown}: {rel} is a broken symlink; remove it or list it "
                                       f"in {IGNORE_FILE}") from None
                is_dir = stat.S_ISDIR(st.st_mode)
            if any(r.matches(rel, is_dir) for r in rules):
                continue
            source = path
            if is_link:
                if not target.is_relative_to(root):
                    raise PayloadError(f"workdir {shown}: {rel} is a symlink to {target}, outside the workdir; "
                                       f"copy the file in or list the link in {IGNORE_FILE}")
                if is_dir:
                    raise PayloadError(f"workdir {shown}: {rel} is a symlink to a directory, which is not "
                                       f"supported; replace it with the directory or list it in {IGNORE_FILE}")
                source = target
            if not is_dir and not stat.S_ISREG(st.st_mode):
                raise PayloadError(f"workdir {shown}: {rel} is not a regular file or directory; remove it "
                                   f"or list it in {IGNORE_FILE}")
            entries.append(_Entry(rel, source, is_dir, 0 if is_dir else st.st_size, bool(st.st_mode & 0o111)))
            if len(entries) > max_entries:
                raise PayloadTooLargeError(f"workdir {shown} has more than {max_entries} entries; add a "
                                           f"{IGNORE_FILE} or trim it")
            if is_dir:
                subdirs.append((path, rel + "/"))
        # Reversed onto the stack so directories come out in sorted order (depth first).
        stack.extend(reversed(subdirs))
    return entries


def _tarinfo(name: str, *, is_dir: bool, size: int, executable: bool) -> tarfile.TarInfo:
    """A header with nothing machine-specific in it (owner, times), so packing is deterministic."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o755 if is_dir or executable else 0o644
    info.size = 0 if is_dir else size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_workdir(path: Path, *, max_bytes: int = MAX_PAYLOAD_BYTES, max_entries: int = MAX_ENTRIES) -> bytes:
    """Pack a working directory into a deterministic tar.gz (the same tree always gives the same bytes).

    Regular files and directories only; ``.git``, ``__pycache__`` and ``.venv`` are skipped, as is
    anything matched by ``<path>/.blendrignore``. A symlink to a file inside the directory is stored as a
    copy of that file. An empty directory packs to a valid, empty archive.

    Raises:
        PayloadError: ``path`` is not a directory, or holds a symlink pointing outside it (or to a
            directory), a broken symlink, or a special file (socket, FIFO, device) that is not ignored.
        PayloadTooLargeError: the files add up to more than ``max_bytes`` (uncompressed), the archive
            compresses to more than ``max_bytes``, or there are more than ``max_entries`` entries.
    """
    shown = str(path)
    if not path.is_dir():
        raise PayloadError(f"workdir {shown} is not a directory")
    root = path.resolve()
    entries = _collect(root, shown, _read_ignore_rules(root), max_entries)
    total = sum(e.size for e in entries)
    if total > max_bytes:
        size, limit = _over(total, max_bytes)
        raise PayloadTooLargeError(f"workdir {shown} is {size}, over the {limit} limit; add a {IGNORE_FILE} "
                                   f"or trim it")
    buf = io.BytesIO()
    # mtime=0 and no file name in the gzip header: byte-identical output for identical trees.
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = _tarinfo(e.rel, is_dir=e.is_dir, size=e.size, executable=e.executable)
            if e.is_dir:
                tar.addfile(info)
                continue
            try:
                with e.source.open("rb") as fh:
                    tar.addfile(info, fh)
            except OSError as exc:  # unreadable, or it shrank while we packed
                raise PayloadError(f"workdir {shown}: cannot read {e.rel}: {exc}") from None
            if buf.tell() > max_bytes:
                break
    if buf.tell() > max_bytes:
        size, limit = _over(buf.tell(), max_bytes)
        raise PayloadTooLargeError(f"workdir {shown} compresses to {size}, over the {limit} limit; add a "
                                   f"{IGNORE_FILE} or trim it")
    return buf.getvalue()


def _safe_member_path(name: str) -> PurePosixPath:
    """The relative path a tar member may be written to.

    Raises:
        PayloadError: absolute, empty, contains ``..`` or a NUL byte.
    """
    if not name or "\x00" in name or name.startswith("/"):
        raise PayloadError(f"workdir archive entry {name!r} has an unsafe path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise PayloadError(f"workdir archive entry {name!r} has an unsafe path")
    return PurePosixPath(*parts)


def _copy_bounded(src: IO[bytes], dst: IO[bytes], budget: int) -> int:
    """Copy until EOF; returns the bytes copied, or budget + 1 as soon as more than ``budget`` came."""
    copied = 0
    while chunk := src.read(_COPY_CHUNK):
        copied += len(chunk)
        if copied > budget:
            return budget + 1
        dst.write(chunk)
    return copied


def _clear(dest: Path, existed: bool) -> None:
    if not existed:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def unpack(data: bytes, dest: Path, *, max_bytes: int = MAX_PAYLOAD_BYTES, max_entries: int = MAX_ENTRIES) -> None:
    """Extract a workdir tar.gz into ``dest`` (absent or an empty directory; created with mode 0700).

    Only regular files and directories are written (modes reduced to 0644/0755: no setuid, no links,
    no devices); no entry may be absolute or climb out with ``..``; duplicate entries are refused. Empty
    ``data`` (a job without a working directory) leaves an empty ``dest``. On any error ``dest`` is left
    as it was found (absent, or empty).

    Raises:
        PayloadError: ``dest`` is not empty, the archive is corrupt, or an entry is unsafe.
        PayloadTooLargeError: the contents exceed ``max_bytes`` or ``max_entries`` (checked while
            decompressing, so a compression bomb is stopped early).
    """
    existed = dest.exists()
    if existed and (not dest.is_dir() or dest.is_symlink() or any(dest.iterdir())):
        raise PayloadError(f"cannot unpack into {dest}: it is not an empty directory")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if data:
            _extract(data, dest, max_bytes, max_entries)
    except BaseException:
        _clear(dest, existed)
        raise


def _extract(data: bytes, dest: Path, max_bytes: int, max_entries: int) -> None:
    total = 0
    count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                count += 1
                if count > max_entries:
                    raise PayloadTooLargeError(f"workdir archive has more than {max_entries} entries")
                rel = _safe_member_path(member.name)
                target = dest.joinpath(*rel.parts)
                if member.isdir():
                    if target.exists() and not target.is_dir():
                        raise PayloadError(f"workdir archive entry {member.name!r} is duplicated")
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise PayloadError(f"workdir archive entry {member.name!r} is a {kind}; only regular "
                                       f"files and directories are allowed")
                if total + member.size > max_bytes:
                    raise PayloadTooLargeError(f"workdir archive unpacks to more than {_size(max_bytes)}")
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:  # pragma: no cover - isreg() members always have a file object
                    raise PayloadError(f"workdir archive entry {member.name!r} cannot be read")
                mode = 0o755 if member.mode & 0o111 else 0o644
                # O_EXCL refuses duplicates, O_NOFOLLOW refuses to write through anything but a plain file.
                try:
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
                except FileExistsError:
                    raise PayloadError(f"workdir archive entry {member.name!r} is duplicated") from None
                with src, os.fdopen(fd, "wb") as out:
                    total += _copy_bounded(src, out, max_bytes - total)
                if total > max_bytes:
                    raise PayloadTooLargeError(f"workdir archive unpacks to more than {_size(max_bytes)}")
                os.chmod(target, mode)  # the umask may have narrowed it
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PayloadError(f"workdir archive is corrupt: {exc}") from None
    except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
        raise PayloadError(f"workdir archive has conflicting entries: {exc.filename}") from None


# --- keys and sealing -----------------------------------------------------------------------------------


def _private_key(private_key: bytes) -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(private_key, bytes | bytearray) or len(private_key) != 32:
        raise PayloadError("a private key must be 32 bytes")
    k = int.from_bytes(private_key, "big")
    if not 0 < k < _SECP256K1_N:
        raise PayloadError("not a valid secp256k1 private key")
    return ec.derive_private_key(k, ec.SECP256K1())


def _public_key(pub: bytes) -> ec.EllipticCurvePublicKey:
    """Load a secp256k1 public key: 64 raw bytes (x || y, as eth-keys gives it), 65 uncompressed (0x04
    prefix) or 33 compressed SEC1 bytes.

    Raises:
        PayloadError: any other length, or not a point on the curve.
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(pub, bytes | bytearray):
        raise PayloadError("a public key must be bytes")
    data = bytes(pub)
    if len(data) == 64:
        data = b"\x04" + data
    if len(data) not in (33, 65):
        raise PayloadError(f"a public key must be 64, 65 or 33 bytes (got {len(pub)})")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), data)
    except ValueError:
        raise PayloadError("not a valid secp256k1 public key") from None


def _uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def public_key_of(private_key: bytes) -> bytes:
    """The 64-byte public key (x || y, no 0x04 prefix) of a 32-byte secp256k1 private key.

    Raises:
        PayloadError: not a valid private key.
    """
    return _uncompressed(_private_key(private_key).public_key())[1:]


def address_of_public_key(pub: bytes) -> Address:
    """The EIP-55 checksum Ethereum address of a public key (last 20 bytes of keccak256(x || y)), so a
    king can check that the key a provider advertises belongs to its address.

    Raises:
        PayloadError: not a valid secp256k1 public key (see :func:`seal` for the accepted forms).
    """
    from eth_utils import keccak, to_checksum_address

    raw = _uncompressed(_public_key(pub))[1:]
    return Address(to_checksum_address(bytes(keccak(raw))[-20:]))


def _derive_key(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    # Salting with both public keys binds the AES key to this exact exchange.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + recipient_pub, info=_HKDF_INFO).derive(shared)


def seal(plaintext: bytes, recipient_public_key: bytes, *, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` so only the holder of the recipient's private key can read it, bound to
    ``aad`` (e.g. the job id) which must be presented again to open it.

    ``recipient_public_key`` may be 64 bytes (x || y, as eth-keys gives it), 65 bytes (0x04 || x || y)
    or 33 bytes (compressed). A fresh ephemeral key is used for every call.

    Raises:
        PayloadError: the public key is invalid.
    """
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    recipient = _public_key(recipient_public_key)
    ephemeral = ec.generate_private_key(ec.SECP256K1())
    eph_pub = _uncompressed(ephemeral.public_key())
    shared = ephemeral.exchange(ec.ECDH(), recipient)
    key = _derive_key(shared, eph_pub, _uncompressed(recipient))
    nonce = secrets.token_bytes(_NONCE_LEN)
    header = bytes([SEAL_VERSION]) + eph_pub + nonce
    return header + AESGCM(key).encrypt(nonce, bytes(plaintext), header + bytes(aad))


def open_sealed(blob: bytes, private_key: bytes, *, aad: bytes) -> bytes:
    """Decrypt a payload made by :func:`seal` for this private key and this ``aad``.

    Raises:
        PayloadError: unknown version, truncated blob, invalid ephemeral key, or authentication failure
            (tampered bytes, another recipient's key, or another job's ``aad``).
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(blob) < _HEADER_LEN + _TAG_LEN:
        raise PayloadError(f"sealed payload is truncated ({len(blob)} bytes)")
    if blob[0] != SEAL_VERSION:
        raise PayloadError(f"sealed payload has unknown version {blob[0]} (this node reads {SEAL_VERSION})")
    me = _private_key(private_key)
    eph_pub = bytes(blob[1:1 + _PUB_LEN])
    nonce = bytes(blob[1 + _PUB_LEN:_HEADER_LEN])
    try:
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), eph_pub)
    except ValueError:
        raise PayloadError("sealed payload authentication failed (invalid ephemeral key)") from None
    shared = me.exchange(ec.ECDH(), ephemeral)
    key = _derive_key(shared, eph_pub, _uncompressed(me.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, bytes(blob[_HEADER_LEN:]), bytes(blob[:_HEADER_LEN]) + bytes(aad))
    except InvalidTag:
        raise PayloadError("sealed payload authentication failed: it was tampered with, sealed to another "
                           "key, or sealed for another job") from None


# --- the job payload document ---------------------------------------------------------------------------


def check_pip_requirements(pip: Any) -> None:
    """Raises PayloadError unless ``pip`` is a sequence of at most :data:`MAX_PIP_REQUIREMENTS` requirement
    specifiers (``numpy==2.1``, ``./mypkg``), each 1-256 printable characters without spaces, none a pip option."""
    if isinstance(pip, str | bytes) or not isinstance(pip, list | tuple):
        raise PayloadError("job pip requirements must be a list of strings")
    if len(pip) > MAX_PIP_REQUIREMENTS:
        raise PayloadError(f"a job declares at most {MAX_PIP_REQUIREMENTS} pip requirements (got {len(pip)})")
    for req in pip:
        if (not isinstance(req, str) or not 0 < len(req) <= MAX_PIP_REQUIREMENT_CHARS or not req.isprintable()
                or any(c.isspace() for c in req)):
            raise PayloadError(f"pip requirement {str(req)[:80]!r} must be 1-{MAX_PIP_REQUIREMENT_CHARS} printable "
                               "characters without spaces")
        if req.startswith("-"):
            raise PayloadError(f"pip requirement {req[:80]!r} is an option; put pip options in requirements.txt")


@dataclass(frozen=True)
class JobPayload:
    """What a renter's job needs on the provider: a shell command, its environment and its working
    directory (a :func:`pack_workdir` tar.gz; empty bytes for none). This whole document is sealed.

    Raises (on construction):
        PayloadError: empty or oversized entrypoint, NUL bytes, or an invalid environment variable name.
    """

    entrypoint: str
    env: dict[str, str] = field(default_factory=dict)
    workdir_tar: bytes = b""
    # Extra pip requirements for the job's environment (besides a requirements.txt in the working directory).
    pip: tuple[str, ...] = ()
    # The renter's public key (64 bytes) the job's outputs are sealed to (blendr.outputs); empty: none sent back.
    # Inside the sealed document, so neither the king nor a queen can swap it.
    output_key: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.entrypoint, str) or not self.entrypoint.strip():
            raise PayloadError("job entrypoint is empty")
        if len(self.entrypoint) > MAX_ENTRYPOINT_CHARS or "\x00" in self.entrypoint:
            raise PayloadError(f"job entrypoint must be at most {MAX_ENTRYPOINT_CHARS} characters, without NUL")
        if not isinstance(self.env, dict):
            raise PayloadError("job env must be a mapping of names to strings")
        for name, value in self.env.items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                raise PayloadError(f"job env name {name!r} is not a valid variable name")
            if not isinstance(value, str) or "\x00" in value:
                raise PayloadError(f"job env {name} must be a string without NUL bytes")
        if not isinstance(self.workdir_tar, bytes | bytearray):
            raise PayloadError("job workdir_tar must be bytes")
        check_pip_requirements(self.pip)
        if self.output_key:
            _public_key(bytes(self.output_key))  # PayloadError unless a secp256k1 point
        object.__setattr__(self, "pip", tuple(self.pip))

    def encode(self) -> bytes:
        """``BLJP`` | version | u32 header length | JSON header (entrypoint, env) | workdir tar.gz."""
        doc: dict[str, Any] = {"entrypoint": self.entrypoint, "env": self.env}
        if self.pip:  # absent when empty: a payload without requirements reads as before
            doc["pip"] = list(self.pip)
        if self.output_key:
            doc["output_key"] = bytes(self.output_key).hex()
        header = json.dumps(doc, sort_keys=True,
                            separators=(",", ":"), ensure_ascii=False).encode()
        if len(header) > MAX_DOC_HEADER_BYTES:
            raise PayloadTooLargeError(f"job entrypoint and env take {_size(len(header))}, over the "
                                       f"{_size(MAX_DOC_HEADER_BYTES)} limit")
        return _DOC_PREFIX.pack(_DOC_MAGIC, _DOC_VERSION, len(header)) + header + bytes(self.workdir_tar)

    @classmethod
    def decode(cls, data: bytes) -> JobPayload:
        """The inverse of :meth:`encode`.

        Raises:
            PayloadError: wrong magic or version, truncated, or a malformed header.
            PayloadTooLargeError: the header is over its limit.
        """
        if len(data) < _DOC_PREFIX.size:
            raise PayloadError("job payload is truncated")
        magic, version, hlen = _DOC_PREFIX.unpack_from(data)
        if magic != _DOC_MAGIC:
            raise PayloadError("not a job payload (bad magic)")
        if version != _DOC_VERSION:
            raise PayloadError(f"job payload has unknown version {version} (this node reads {_DOC_VERSION})")
        if hlen > MAX_DOC_HEADER_BYTES:
            raise PayloadTooLargeError(f"job payload header is {_size(hlen)}, over the "
                                       f"{_size(MAX_DOC_HEADER_BYTES)} limit")
        end = _DOC_PREFIX.size + hlen
        if len(data) < end:
            raise PayloadError("job payload is truncated")
        try:
            header = json.loads(bytes(data[_DOC_PREFIX.size:end]).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise PayloadError("job payload header is not valid JSON") from None
        if not isinstance(header, dict) or not {"entrypoint", "env"} <= set(header) <= {"entrypoint", "env", "pip",
                                                                                       "output_key"}:
            raise PayloadError("job payload header must hold 'entrypoint' and 'env' (and optionally 'pip')")
        pip = header.get("pip", [])
        if not isinstance(pip, list):
            raise PayloadError("job payload 'pip' must be a list of requirements")
        try:
            output_key = bytes.fromhex(header.get("output_key", ""))
        except (TypeError, ValueError):
            raise PayloadError("job payload 'output_key' must be hex") from None
        return cls(entrypoint=header["entrypoint"], env=header["env"], workdir_tar=bytes(data[end:]), pip=tuple(pip),
                   output_key=output_key)

