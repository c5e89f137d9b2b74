"""Job outputs: packing sealed to the renter, and unpacking what a hostile provider may send (blendr.outputs)."""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account

from blendr.errors import PermissionDeniedError
from blendr.outputs import (
    CHUNK,
    ChunkPipe,
    OutputError,
    OutputsTooLargeError,
    SealWriter,
    output_aad,
    pack_outputs,
    sign_upload,
    unpack_outputs,
    verify_upload,
)
from blendr.payload import public_key_of

KEY = bytes.fromhex("11" * 32)
PUB = public_key_of(KEY)
AAD = output_aad("j-0123456789abcdef0123", 1)


def sealed(src: Path, **kw: int) -> bytes:
    buf = io.BytesIO()
    pack_outputs(src, buf, PUB, AAD, **kw)
    return buf.getvalue()


def open_into(blob: bytes, dest: Path, *, key: bytes = KEY, aad: bytes = AAD, **kw: int) -> int:
    return unpack_outputs(io.BytesIO(blob), key, aad, dest, **kw)


def hostile(dest_blob: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A sealed archive holding exactly these members (what a hostile provider could send)."""
    buf = io.BytesIO()
    w = SealWriter(buf, PUB, AAD)
    with tarfile.open(fileobj=w, mode="w|") as tar:  # type: ignore[call-overload]
        for info, data in dest_blob:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    w.close()
    return buf.getvalue()


def member(name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[
        tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def test_outputs_round_trip_byte_identical_and_links_are_left_out(tmp_path: Path) -> None:
    src = tmp_path / "out"
    (src / "a" / "b").mkdir(parents=True)
    big = os.urandom(3 * CHUNK + 5)
    (src / "a" / "b" / "big.bin").write_bytes(big)
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "secret").symlink_to("/etc/hostname")
    blob = sealed(src)
    assert big[:64] not in blob  # sealed, not just packed
    assert open_into(blob, tmp_path / "got") == 2
    assert (tmp_path / "got" / "a" / "b" / "big.bin").read_bytes() == big
    assert os.access(tmp_path / "got" / "run.sh", os.X_OK)
    assert not (tmp_path / "got" / "secret").exists()


def test_a_missing_or_empty_output_dir_is_an_empty_archive(tmp_path: Path) -> None:
    assert open_into(sealed(tmp_path / "absent"), tmp_path / "got") == 0
    assert list((tmp_path / "got").iterdir()) == []


def test_packing_is_bounded(tmp_path: Path) -> None:
    src = tmp_path / "out"
    src.mkdir()
    (src / "f").write_bytes(b"z" * 5000)
    with pytest.raises(OutputsTooLargeError):
        sealed(src, max_bytes=4000)
    for i in range(5):
        (src / f"n{i}").write_bytes(b"")
    with pytest.raises(OutputsTooLargeError, match="entries"):
        sealed(src, max_entries=3)


@pytest.mark.parametrize("members, why", [
    ([member("../escape")], "unsafe path"),
    ([member("a/../../escape")], "unsafe path"),
    ([member("/etc/escape")], "unsafe path"),
    ([member("link", kind=tarfile.SYMTYPE, link="/etc/passwd")], "link"),
    ([member("hard", kind=tarfile.LNKTYPE, link="/etc/passwd")], "link"),
    ([member("dev", kind=tarfile.CHRTYPE)], "special file"),
    ([member("fifo", kind=tarfile.FIFOTYPE)], "special file"),
    ([member("same"), member("same")], "duplicated"),
])
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path: Path, members: list[tuple[tarfile.TarInfo,
                                                        bytes | None]], why: str) -> None:
    dest = tmp_path / "got"
    with pytest.raises(OutputError, match=why):
        open_into(hostile([member("ok.txt"), *members]), dest)
    assert not dest.exists() and not (tmp_path / "escape").exists()


def test_an_archive_larger_than_allowed_is_stopped_while_it_is_extracted(tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.mkdir()
    with open(src / "zeros", "wb") as fh:
        fh.truncate(8 * 2**20)
    (src / "small").write_bytes(b"s")
    with pytest.raises(OutputsTooLargeError):
        open_into(sealed(src), tmp_path / "got", max_bytes=2**20)
    assert not (tmp_path / "got").exists()
    # the budget is for the whole archive: a later member over what is left stops it
    with pytest.raises(OutputsTooLargeError):
        open_into(hostile([member("first", b"y" * 40), member("next", b"x" * 20)]), tmp_path / "two", max_bytes=50)
    assert not (tmp_path / "two").exists()
    with pytest.raises(OutputsTooLargeError, match="entries"):
        open_into(hostile([member(f"f{i}") for i in range(10)]), tmp_path / "many", max_entries=5)


def test_sealed_outputs_open_only_whole_with_the_renters_key_and_the_jobs_aad(tmp_path: Path) -> None:
    src = tmp_path / "out"
    src.mkdir()
    (src / "f").write_bytes(os.urandom(2 * CHUNK + 3))
    blob = sealed(src)
    cases = {
        "another key": dict(key=bytes.fromhex("22" * 32)),
        "another attempt": dict(aad=output_aad("j-0123456789abcdef0123", 2)),
    }
    for i, (_, kw) in enumerate(cases.items()):
        with pytest.raises(OutputError, match="authentication failed"):
            open_into(blob, tmp_path / f"k{i}", **kw)  # type: ignore[arg-type]
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    with pytest.raises(OutputError):
        open_into(bytes(flipped), tmp_path / "flipped")
    record = 4 + CHUNK + 16
    head = len(blob) - (len(blob) - 77) % record  # cut after a whole record: the last one is missing
    for cut in (blob[:head], blob[:-1], blob + b"extra"):
        with pytest.raises(OutputError):
            open_into(cut, tmp_path / "cut")
        assert not (tmp_path / "cut").exists()
    with pytest.raises(OutputError, match="not an empty directory"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("mine")
        open_into(blob, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "mine"


def test_upload_headers_are_signed_by_their_sender_and_fresh() -> None:
    acct = Account.create()
    now = int(time.time())
    sig = sign_upload(acct, "j-1", 2, now, "", 100)
    assert verify_upload(acct.address, "j-1", 2, now, "", 100, sig, now=now) == acct.address
    with pytest.raises(PermissionDeniedError):
        verify_upload(Account.create().address, "j-1", 2, now, "", 100, sig, now=now)  # someone else's
    with pytest.raises(PermissionDeniedError):
        verify_upload(acct.address, "j-1", 2, now, "", 101, sig, now=now)  # another size
    with pytest.raises(PermissionDeniedError, match="stale"):
        verify_upload(acct.address, "j-1", 2, now, "", 100, sig, now=now + 600)
    with pytest.raises(PermissionDeniedError):
        verify_upload(acct.address, "j-1\nerror: x", 2, now, "", 100, sig, now=now)


def test_packing_writes_the_same_tar_as_tarfile(tmp_path: Path) -> None:
    """The provider's own tar writer (1 MiB copies) writes byte for byte what tarfile's ``w|`` would."""
    from blendr.outputs import _info, _TarWriter

    files = {"a": b"", "b": os.urandom(511), "c": os.urandom(3 * CHUNK + 7), "d/é": os.urandom(513)}
    ref = io.BytesIO()
    with tarfile.open(fileobj=ref, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK) as tar:
        for name, data in files.items():
            tar.addfile(_info(name, tarfile.REGTYPE, len(data), 0o644), io.BytesIO(data))
    ours = io.BytesIO()
    w = _TarWriter(ours)  # type: ignore[arg-type]  # any binary sink
    for name, data in files.items():
        w.add(_info(name, tarfile.REGTYPE, len(data), 0o644), io.BytesIO(data))
    w.close()
    assert ours.getvalue() == ref.getvalue()
    with pytest.raises(OSError, match="unexpected end of data"):  # a file that shrank while packed
        _TarWriter(io.BytesIO()).add(_info("x", tarfile.REGTYPE, 10, 0o644), io.BytesIO(b"short"))  # type: ignore[arg-type]


def feed(pipe: ChunkPipe, blob: bytes, *, cut: int | None = None, error: str = "",
         peak: list[int] | None = None) -> threading.Thread:
    """Feeds ``blob`` (up to ``cut``) into ``pipe`` from a thread in 64 KiB pieces, then ends it; ``peak`` gets
    the most bytes the pipe held."""
    def run() -> None:
        end = len(blob) if cut is None else cut
        for i in range(0, end, 65536):
            pipe.wait_room()
            pipe.feed(blob[i:min(i + 65536, end)])
            if peak is not None:
                peak.append(pipe._held)
        pipe.end(error)
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_pipe_fed_while_it_is_unpacked_opens_like_a_file_and_holds_little(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    payload = os.urandom(3 * CHUNK + 5)
    (tmp_path / "src" / "f.bin").write_bytes(payload)
    blob = sealed(tmp_path / "src")
    pipe = ChunkPipe(limit=256 * 1024)
    peak: list[int] = []
    t = feed(pipe, blob, peak=peak)
    assert unpack_outputs(pipe, KEY, AAD, tmp_path / "out") == 1
    t.join()
    assert (tmp_path / "out" / "f.bin").read_bytes() == payload
    assert len(peak) > 40 and max(peak) <= 256 * 1024 + 65536  # bounded: the limit and one piece at most


@pytest.mark.parametrize("error", ["", "UNAVAILABLE: the king went away"])
def test_a_download_that_breaks_mid_way_leaves_nothing(tmp_path: Path, error: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.bin").write_bytes(os.urandom(2 * CHUNK))
    blob = sealed(tmp_path / "src")
    pipe = ChunkPipe()
    t = feed(pipe, blob, cut=len(blob) - 100, error=error)
    with pytest.raises(OutputError, match="the download broke" if error else "truncated"):
        unpack_outputs(pipe, KEY, AAD, tmp_path / "out")
    t.join()
    assert not (tmp_path / "out").exists()


def test_a_closed_pipe_releases_its_feeder() -> None:
    pipe = ChunkPipe(limit=10)
    pipe.feed(b"x" * 10)
    assert pipe.full()
    waiter = threading.Thread(target=pipe.wait_room)
    waiter.start()
    pipe.close()  # the reader stopped (it failed): the feeder must not wait for room forever
    waiter.join(timeout=10)
    assert not waiter.is_alive() and not pipe.full()
    pipe.feed(b"more")  # dropped
    assert pipe.read() == b""
