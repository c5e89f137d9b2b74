"""A job's outputs: packed on the provider, sealed to the renter's key, opened and unpacked by the renter.

The provider packs the regular files a job wrote under ``$BLENDR_OUTPUT_DIR`` into a tar (uncompressed) and seals
it, as it writes, to the renter's public key (the key the renter put in its sealed job payload, so neither the
king nor a queen can swap it): only the renter can read its outputs. Everything streams: a 512 MiB output is never whole
in memory on the provider, a queen, the king or the renter.

Sealed stream format (version 1), chunked AES-256-GCM in the manner of the STREAM construction::

    "BLOS" | 0x01 | ephemeral public key (65 bytes) | nonce prefix (7 bytes)
    then records: u32 ciphertext length | AES-256-GCM(chunk of at most 1 MiB)

Record ``i`` uses the nonce ``prefix | last flag (1 byte) | i (u32)`` and the associated data ``header | aad``
(``aad`` names the job and attempt, :func:`output_aad`), so records cannot be reordered, dropped, cut off after
any record but the last, or moved to another job. The AES key is HKDF over the ECDH secret, as in
:mod:`blendr.payload`.

Guarantees of :func:`unpack_outputs` against a hostile provider: only regular files and directories are
written, under ``dest`` only (no absolute paths, ``..``, links or devices), within ``max_bytes`` and
``max_entries`` counted while extracting (an archive that declares or yields more stops early), and on any error ``dest`` is
left as it was found. Every failure is an :class:`OutputError` (or :class:`OutputsTooLargeError`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import struct
import tarfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from blendr.errors import InvalidArgumentError, PermissionDeniedError, ResourceExhaustedError, SignatureError
from blendr.identity import SECP256K1_HALF_N, Address, to_address
from blendr.payload import PayloadError, _derive_key, _private_key, _public_key, _uncompressed

OUTPUT_DIR_ENV = "BLENDR_OUTPUT_DIR"
CHUNK = 1 << 20
MAX_OUTPUT_BYTES = 1 << 30  # a provider's own bound when the king names none
MAX_ENTRIES = 100_000
MAGIC = b"BLOS"
VERSION = 1
_PUB_LEN = 65
_PREFIX_LEN = 7
HEADER_LEN = len(MAGIC) + 1 + _PUB_LEN + _PREFIX_LEN
_TAG_LEN = 16
_LEN = struct.Struct(">I")
_UPLOAD_HEADER = "BlendrChain job output"


class Readable(Protocol):
    """What a sealed stream is read from: a binary file, or a :class:`ChunkPipe`."""

    def read(self, n: int = -1, /) -> bytes: ...


class OutputError(InvalidArgumentError):
    """Raised when a job's outputs cannot be packed, or a sealed output is malformed, tampered with, sealed to
    another key or job, or holds an unsafe archive entry."""


class OutputsTooLargeError(ResourceExhaustedError, OutputError):
    """Raised when outputs are over a size or entry-count limit (while packing, storing or unpacking)."""


def output_aad(job_id: str, attempt: int) -> bytes:
    """The associated data a job attempt's outputs are sealed with."""
    return f"blendr/outputs/v1|{job_id}|{int(attempt)}".encode()


# --- sealing as a stream --------------------------------------------------------------------------------


class SealWriter:
    """A write-only file object that seals what is written to it onto ``out`` (see the module's format).

    :meth:`close` writes the last record; a stream without it does not open. ``written`` counts the sealed
    bytes put on ``out``.
    """

    def __init__(self, out: IO[bytes], recipient_public_key: bytes, aad: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            recipient = _public_key(recipient_public_key)
        except PayloadError as exc:
            raise OutputError(f"cannot seal outputs: {exc}") from None
        ephemeral = ec.generate_private_key(ec.SECP256K1())
        eph_pub = _uncompressed(ephemeral.public_key())
        key = _derive_key(ephemeral.exchange(ec.ECDH(), recipient), eph_pub, _uncompressed(recipient))
        self._prefix = secrets.token_bytes(_PREFIX_LEN)
        self._header = MAGIC + bytes([VERSION]) + eph_pub + self._prefix
        self._aead = AESGCM(key)
        self._aad = self._header + bytes(aad)
        self._out = out
        self._buf = bytearray()
        self._index = 0
        self.closed = False
        out.write(self._header)
        self.written = len(self._header)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("write to a closed SealWriter")
        mv = memoryview(data).cast("B")
        n = len(mv)
        # a record is sealed only once more bytes follow it: the last record must hold the tail
        if self._buf:
            need = CHUNK - len(self._buf)
            if n <= need:
                self._buf += mv
                return n
            self._buf += mv[:need]
            mv = mv[need:]
            self._record(self._buf, last=False)
            self._buf = bytearray()
        while len(mv) > CHUNK:  # whole records straight from the caller's bytes, no copy
            self._record(mv[:CHUNK], last=False)
            mv = mv[CHUNK:]
        self._buf += mv
        return n

    def _record(self, chunk: bytes | bytearray | memoryview, *, last: bool) -> None:
        if self._index >= 2**32 - 1:
            raise OutputsTooLargeError("outputs are too large to seal (record counter exhausted)")
        nonce = self._prefix + (b"\x01" if last else b"\x00") + self._index.to_bytes(4, "big")
        ct = self._aead.encrypt(nonce, chunk, self._aad)  # any buffer is taken
        self._out.write(_LEN.pack(len(ct)))
        self._out.write(ct)
        self.written += _LEN.size + len(ct)
        self._index += 1

    def flush(self) -> None:
        """Nothing to do: records are written whole (tarfile calls this)."""

    def close(self) -> None:
        """Writes the last record (idempotent)."""
        if not self.closed:
            self._record(self._buf, last=True)
            self._buf = bytearray()
            self.closed = True


class OpenReader:
    """A read-only file object over a sealed output stream: the plaintext, authenticated record by record.

    Raises (from :meth:`read`):
        OutputError: bad magic or version, a truncated, reordered or tampered record, another key or ``aad``,
            or bytes after the last record.
    """

    def __init__(self, src: Readable, private_key: bytes, aad: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        header = _read_exact(src, HEADER_LEN)
        if header[:4] != MAGIC:
            raise OutputError("not a sealed job output (bad magic)")
        if header[4] != VERSION:
            raise OutputError(f"sealed output has unknown version {header[4]} (this client reads {VERSION})")
        eph_pub = header[5:5 + _PUB_LEN]
        try:
            me = _private_key(private_key)
            ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), eph_pub)
        except (PayloadError, ValueError):
            raise OutputError("sealed output authentication failed (invalid key)") from None
        key = _derive_key(me.exchange(ec.ECDH(), ephemeral), eph_pub, _uncompressed(me.public_key()))
        self._aead = AESGCM(key)
        self._prefix = header[5 + _PUB_LEN:]
        self._aad = header + bytes(aad)
        self._src = src
        self._index = 0
        self._buf = b""
        self._pos = 0
        self._done = False

    def _next(self) -> None:
        from cryptography.exceptions import InvalidTag

        raw_len = self._src.read(_LEN.size)
        if len(raw_len) < _LEN.size:
            raise OutputError("sealed output is truncated (its last record is missing)")
        (n,) = _LEN.unpack(raw_len)
        if not _TAG_LEN <= n <= CHUNK + _TAG_LEN:
            raise OutputError(f"sealed output has a record of {n} bytes (corrupt)")
        ct = _read_exact(self._src, n)
        for flag in (b"\x00", b"\x01"):
            nonce = self._prefix + flag + self._index.to_bytes(4, "big")
            try:
                self._buf = self._aead.decrypt(nonce, ct, self._aad)
                self._pos = 0
            except InvalidTag:
                continue
            self._index += 1
            if flag == b"\x01":
                self._done = True
                if self._src.read(1):
                    raise OutputError("sealed output has bytes after its last record")
            return
        raise OutputError("sealed output authentication failed: it was tampered with, sealed to another key, "
                          "or sealed for another job")

    def read(self, n: int = -1) -> bytes:
        parts: list[bytes | memoryview] = []
        got = 0
        while (n < 0 or got < n) and not (self._done and self._pos >= len(self._buf)):
            left = len(self._buf) - self._pos
            if not left:
                self._next()
                continue
            take = left if n < 0 else min(n - got, left)
            if take == len(self._buf):  # a whole record: no copy
                parts.append(self._buf)
            else:
                parts.append(memoryview(self._buf)[self._pos:self._pos + take])
            self._pos += take
            got += take
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)


class ChunkPipe:
    """A blocking, read-only file object fed with chunks from another thread (an event loop), holding at most
    about ``limit`` bytes: a download can be opened and unpacked while it arrives, never whole in memory.

    The feeder calls :meth:`feed` (after :meth:`wait_room` in a worker thread when :meth:`full`) and then
    :meth:`end` (with an error when the download broke, which :meth:`read` then raises as an
    :class:`OutputError`); the reader calls :meth:`close` when it stops, which drops what is queued and makes
    :meth:`feed` a no-op.
    """

    def __init__(self, limit: int = 8 * CHUNK) -> None:
        import threading
        from collections import deque

        self._cv = threading.Condition()
        self._q: deque[bytes] = deque()
        self._held = 0
        self._limit = limit
        self._eof = False
        self._error = ""
        self.closed = False
        self._cur = memoryview(b"")

    def full(self) -> bool:
        return self._held >= self._limit and not self.closed

    def wait_room(self) -> None:
        with self._cv:
            self._cv.wait_for(lambda: self._held < self._limit or self.closed)

    def feed(self, data: bytes) -> None:
        with self._cv:
            if self.closed or self._eof:
                return
            self._q.append(data)
            self._held += len(data)
            self._cv.notify_all()

    def end(self, error: str = "") -> None:
        with self._cv:
            self._eof, self._error = True, error
            self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._q.clear()
            self._held = 0
            self._cv.notify_all()

    def read(self, n: int = -1) -> bytes:
        parts: list[bytes | memoryview] = []
        got = 0
        while n < 0 or got < n:
            if not self._cur:
                with self._cv:
                    self._cv.wait_for(lambda: bool(self._q) or self._eof or self.closed)
                    if self._q:
                        data = self._q.popleft()
                        self._held -= len(data)
                        self._cv.notify_all()
                    elif self._error:
                        raise OutputError(f"the download broke: {self._error}")
                    else:
                        break
                self._cur = memoryview(data)
            take = len(self._cur) if n < 0 else min(n - got, len(self._cur))
            parts.append(self._cur[:take])
            self._cur = self._cur[take:]
            got += take
        return b"".join(parts)


def _read_exact(src: Readable, n: int) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise OutputError("sealed output is truncated")
    return data


# --- packing on the provider ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Packed:
    """What :func:`pack_outputs` wrote: files packed, their bytes, sealed bytes, entries left out (links,
    special files: never followed, so a job cannot ship the provider's own files)."""

    files: int
    plain_bytes: int
    sealed_bytes: int
    skipped: int


def pack_outputs(src: Path, out: IO[bytes], recipient_public_key: bytes, aad: bytes, *,
                 max_bytes: int = MAX_OUTPUT_BYTES, max_entries: int = MAX_ENTRIES) -> Packed:
    """Pack the regular files and directories under ``src`` into a tar sealed to the recipient, onto ``out``.

    A missing or empty ``src`` packs to a valid, empty archive. Symbolic links and special files are left
    out, never followed.

    Raises:
        OutputsTooLargeError: the files add up to more than ``max_bytes``, the sealed archive is larger than
            ``max_bytes``, or there are more than ``max_entries`` entries.
        OutputError: a file cannot be read, or the public key is invalid.
    """
    sealer = SealWriter(out, recipient_public_key, aad)
    files = total = skipped = entries = 0
    try:
        # Not compressed: outputs are mostly compressed already (images, checkpoints, archives), and zlib would
        # cost the provider more CPU time than the transfer it saves; a job compresses what it wants to.
        tar = _TarWriter(sealer)
        stack = [(src, "")] if src.is_dir() and not src.is_symlink() else []
        while stack:
            directory, prefix = stack.pop()
            for child in sorted(os.scandir(directory), key=lambda e: e.name):
                rel = prefix + child.name
                st = os.lstat(child.path)
                if stat.S_ISDIR(st.st_mode):
                    tar.add(_info(rel, tarfile.DIRTYPE, 0, 0o755))
                    stack.append((Path(child.path), rel + "/"))
                elif stat.S_ISREG(st.st_mode):
                    fd = os.open(child.path, os.O_RDONLY | os.O_NOFOLLOW)
                    with os.fdopen(fd, "rb", buffering=0) as fh:
                        size = os.fstat(fh.fileno()).st_size
                        total += size
                        if total > max_bytes:
                            raise OutputsTooLargeError(f"the job's outputs are over the {_mib(max_bytes)} "
                                                       f"limit")
                        tar.add(_info(rel, tarfile.REGTYPE, size, 0o755 if st.st_mode & 0o111 else 0o644), fh)
                    files += 1
                else:
                    skipped += 1
                    continue
                entries += 1
                if entries > max_entries:
                    raise OutputsTooLargeError(f"the job's outputs have more than {max_entries} entries")
                if sealer.written > max_bytes:
                    raise OutputsTooLargeError(f"the job's outputs are over the {_mib(max_bytes)} limit")
        tar.close()
        sealer.close()
    except OSError as exc:
        raise OutputError(f"cannot pack the job's outputs: {exc.strerror or exc}") from None
    if sealer.written > max_bytes:
        raise OutputsTooLargeError(f"the job's outputs seal to {sealer.written} bytes, over the "
                                   f"{_mib(max_bytes)} limit")
    return Packed(files, total, sealer.written, skipped)


class _TarWriter:
    """A POSIX (pax) tar stream onto ``out``, as ``tarfile`` in ``w|`` mode writes it, copying file data in
    1 MiB reads rather than tarfile's 16 KiB ones."""

    def __init__(self, out: SealWriter) -> None:
        self._out = out
        self._offset = 0

    def add(self, info: tarfile.TarInfo, fh: IO[bytes] | None = None) -> None:
        """Writes ``info``'s header and, for a file, exactly ``info.size`` bytes of ``fh``.

        Raises:
            OSError: ``fh`` ends before ``info.size`` bytes (the file shrank while being packed).
        """
        head = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        self._out.write(head)
        self._offset += len(head)
        if fh is None:
            return
        left = info.size
        while left:
            data = fh.read(min(CHUNK, left))
            if not data:
                raise OSError("unexpected end of data (a file shrank while it was packed)")
            self._out.write(data)
            left -= len(data)
        pad = -info.size % tarfile.BLOCKSIZE
        if pad:
            self._out.write(tarfile.NUL * pad)
        self._offset += info.size + pad

    def close(self) -> None:
        """The two zero blocks that end an archive, padded to a whole record."""
        self._offset += 2 * tarfile.BLOCKSIZE
        self._out.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE + (-self._offset % tarfile.RECORDSIZE)))


def _info(name: str, kind: bytes, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = kind, size, mode, 0
    return info


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


# --- unpacking at the renter ----------------------------------------------------------------------------


def _safe_path(name: str) -> PurePosixPath:
    if not name or "\x00" in name or name.startswith("/") or "\\" in name:
        raise OutputError(f"output archive entry {name[:200]!r} has an unsafe path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OutputError(f"output archive entry {name[:200]!r} has an unsafe path")
    return PurePosixPath(*parts)


def unpack_outputs(src: Readable, private_key: bytes, aad: bytes, dest: Path, *,
                   max_bytes: int = MAX_OUTPUT_BYTES * 4, max_entries: int = MAX_ENTRIES) -> int:
    """Open a sealed output stream and extract it into ``dest`` (absent or an empty directory); returns the
    number of files written. See the module's guarantees.

    Raises:
        OutputError: ``dest`` is not empty, the stream does not open, or an entry is unsafe.
        OutputsTooLargeError: the contents exceed ``max_bytes`` or ``max_entries``.
    """
    existed = dest.exists()
    if existed and (dest.is_symlink() or not dest.is_dir() or any(dest.iterdir())):
        raise OutputError(f"cannot unpack into {dest}: it is not an empty directory")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return _extract(OpenReader(src, private_key, aad), dest, max_bytes, max_entries)
    except BaseException:
        _clear(dest, existed)
        raise


def _extract(reader: OpenReader, dest: Path, max_bytes: int, max_entries: int) -> int:
    total = count = files = 0
    try:
        with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
            for member in tar:
                count += 1
                if count > max_entries:
                    raise OutputsTooLargeError(f"output archive has more than {max_entries} entries")
                target = dest.joinpath(*_safe_path(member.name).parts)
                if member.isdir():
                    if target.exists() and (target.is_symlink() or not target.is_dir()):
                        raise OutputError(f"output archive entry {member.name[:200]!r} is duplicated")
                    target.mkdir(mode=0o755, parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise OutputError(f"output archive entry {member.name[:200]!r} is a {kind}; only regular "
                                      "files and directories are allowed")
                if total + member.size > max_bytes:
                    raise OutputsTooLargeError(f"output archive unpacks to more than {_mib(max_bytes)}")
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                fh = tar.extractfile(member)
                if fh is None:  # pragma: no cover - regular members always have one
                    raise OutputError(f"output archive entry {member.name[:200]!r} cannot be read")
                mode = 0o755 if member.mode & 0o111 else 0o644
                try:
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
                except FileExistsError:
                    raise OutputError(f"output archive entry {member.name[:200]!r} is duplicated") from None
                with fh, os.fdopen(fd, "wb") as out:
                    # the header's size is what tarfile reads; the budget check above already covered it, and
                    # the copy is bounded again in case a reader yields more
                    copied = 0
                    while chunk := fh.read(CHUNK):
                        copied += len(chunk)
                        if total + copied > max_bytes:
                            raise OutputsTooLargeError(f"output archive unpacks to more than {_mib(max_bytes)}")
                        out.write(chunk)
                total += copied
                files += 1
        if reader.read(CHUNK):  # the archive ended: only the (authenticated) last record may remain
            raise OutputError("output archive has data after its end")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, NotADirectoryError | IsADirectoryError | FileExistsError):
            raise OutputError(f"output archive has conflicting entries: {exc.filename}") from None
        raise OutputError(f"output archive is corrupt: {exc}") from None
    return files


def _clear(dest: Path, existed: bool) -> None:
    if not existed:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# --- who uploads ----------------------------------------------------------------------------------------


def upload_text(signer: str, job_id: str, attempt: int, timestamp: int, error: str, size: int) -> str:
    """The exact text a provider (to its queen) or a queen (to the king) signs to upload a job's outputs.

    Raises:
        SignatureError: ``signer`` is not an address.
        InvalidArgumentError: a line break in ``job_id`` or ``error``, or a negative timestamp or attempt.
    """
    if timestamp < 0 or attempt < 0 or size < 0:
        raise InvalidArgumentError("output upload timestamp, attempt and size must be >= 0")
    if any(c in job_id + error for c in "\r\n"):
        raise InvalidArgumentError("output upload job id and error must be one line each")
    return (f"{_UPLOAD_HEADER}\nsigner: {to_address(signer)}\njob: {job_id}\nattempt: {int(attempt)}\n"
            f"timestamp: {int(timestamp)}\nsize: {int(size)}\nerror: {error}")


def sign_upload(account: Any, job_id: str, attempt: int, timestamp: int, error: str = "", size: int = 0) -> bytes:
    """``personal_sign`` of :func:`upload_text` by ``account`` (an eth-account LocalAccount)."""
    from eth_account.messages import encode_defunct

    text = upload_text(account.address, job_id, attempt, timestamp, error, size)
    return bytes(account.sign_message(encode_defunct(text=text)).signature)


def recover_upload(signer: str, job_id: str, attempt: int, timestamp: int, error: str, size: int,
                   signature: bytes) -> Address:
    """Checks an upload header's signature; returns the signer's address.

    Raises:
        SignatureError: malformed or malleable signature, or signed by another key than ``signer``.
        InvalidArgumentError: the fields cannot form an upload text.
    """
    from eth_account import Account
    from eth_account.messages import encode_defunct

    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes (got {len(signature)})")
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > SECP256K1_HALF_N:
        raise SignatureError("malleable or invalid signature (s out of range)")
    text = upload_text(signer, job_id, attempt, timestamp, error, size)
    try:
        who = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception as exc:  # eth-keys raises BadSignature, ValueError, ...
        raise SignatureError(f"bad signature: {type(exc).__name__}") from None
    if to_address(who) != to_address(signer):
        raise SignatureError("the output upload was not signed by its signer's key")
    return to_address(signer)


UPLOAD_MAX_SKEW_S = 300
DRAIN_BYTES = 64 * 2**20
DRAIN_S = 5.0


async def drain_upload(it: AsyncIterator[Any], *, max_bytes: int = DRAIN_BYTES, max_s: float = DRAIN_S) -> None:
    """Reads and drops what is left of a refused upload (at most ``max_bytes`` or ``max_s``) before the refusal
    is answered: a server that answers while the client is still sending may have its status replaced by
    INTERNAL on the client, and the sender must learn why it was refused."""
    import asyncio

    async def run() -> None:
        seen = 0
        async for msg in it:
            seen += len(getattr(msg, "chunk", b""))
            if seen > max_bytes:
                return

    try:
        await asyncio.wait_for(run(), max_s)
    except Exception:
        return


def verify_upload(signer: str, job_id: str, attempt: int, timestamp: int, error: str, size: int, signature: bytes,
                  *, now: float) -> Address:
    """The signer of an upload header, checked and fresh (within :data:`UPLOAD_MAX_SKEW_S` of ``now``).

    Raises:
        PermissionDeniedError: a bad signature, malformed fields, or a stale timestamp.
    """
    try:
        who = recover_upload(signer, job_id, attempt, timestamp, error, size, signature)
    except (SignatureError, InvalidArgumentError) as exc:
        raise PermissionDeniedError(f"output upload refused: {exc}") from None
    if abs(now - timestamp) > UPLOAD_MAX_SKEW_S:
        raise PermissionDeniedError("output upload refused: its timestamp is stale (more than 5 minutes off); "
                                    "check the clock")
    return who


__all__ = [
    "CHUNK",
    "OUTPUT_DIR_ENV",
    "ChunkPipe",
    "OpenReader",
    "OutputError",
    "OutputsTooLargeError",
    "Packed",
    "SealWriter",
    "drain_upload",
    "output_aad",
    "pack_outputs",
    "recover_upload",
    "sign_upload",
    "unpack_outputs",
    "upload_text",
    "verify_upload",
]
