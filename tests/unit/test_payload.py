"""Job payloads: deterministic, bounded workdir archives, safe extraction, and ECIES sealing bound to a job."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import grpc
import pytest

from blendr.errors import InvalidArgumentError, ResourceExhaustedError
from blendr.identity import NodeIdentity
from blendr.payload import (
    JobPayload,
    PayloadError,
    PayloadTooLargeError,
    address_of_public_key,
    open_sealed,
    pack_workdir,
    public_key_of,
    seal,
    unpack,
)
from blendr.rpc.status import status_for

KEY_ONE = (1).to_bytes(32, "big")
# Private key 1: its public key is the generator point G; its address is a well-known test vector.
G_X = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
G_Y = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8
KEY_ONE_ADDRESS = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
AAD = b"job-0001"


def key_of(ident: NodeIdentity) -> bytes:
    return bytes(ident._key)


@pytest.fixture(scope="module")
def provider() -> NodeIdentity:
    return NodeIdentity.generate()


def make_tree(root: Path) -> Path:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "main.py").write_text("print('hi')\n")
    (root / "src" / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "src" / "data.bin").write_bytes(bytes(range(256)) * 10)
    (root / "ünïcode.txt").write_text("é\n", encoding="utf-8")
    run = root / "run.sh"
    run.write_text("#!/bin/sh\necho run\n")
    run.chmod(0o755)
    return root


def tree_of(root: Path) -> dict[str, bytes | None]:
    """Relative path -> contents (None for a directory)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        out[p.relative_to(root).as_posix()] = None if p.is_dir() else p.read_bytes()
    return out


def tree_of_packed(src: Path, dest: Path) -> dict[str, bytes | None]:
    unpack(pack_workdir(src), dest)
    return tree_of(dest)


def evil_tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def member(name: str, data: bytes = b"x", *, type_: bytes = tarfile.REGTYPE, linkname: str = "",
           mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mode = mode
    info.linkname = linkname
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    return info, data


# --- keys -------------------------------------------------------------------------------------------------


def test_public_key_and_address_match_known_vector() -> None:
    pub = public_key_of(KEY_ONE)
    assert pub == G_X.to_bytes(32, "big") + G_Y.to_bytes(32, "big")
    assert address_of_public_key(pub) == KEY_ONE_ADDRESS
    assert address_of_public_key(b"\x04" + pub) == KEY_ONE_ADDRESS
    assert address_of_public_key(b"\x02" + pub[:32]) == KEY_ONE_ADDRESS  # G.y is even


def test_address_of_public_key_is_the_identity_address(provider: NodeIdentity) -> None:
    assert address_of_public_key(public_key_of(key_of(provider))) == provider.address


@pytest.mark.parametrize("bad", [b"", bytes(32), bytes(64), b"\x05" + bytes(64), b"\x04" + bytes(63)])
def test_invalid_public_keys_are_refused(bad: bytes) -> None:
    with pytest.raises(PayloadError):
        address_of_public_key(bad)
    with pytest.raises(PayloadError):
        seal(b"x", bad, aad=AAD)


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(32), (2**256 - 1).to_bytes(32, "big")])
def test_invalid_private_keys_are_refused(bad: bytes) -> None:
    with pytest.raises(PayloadError):
        public_key_of(bad)


# --- sealing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["raw64", "sec65", "compressed33"])
def test_seal_round_trip(provider: NodeIdentity, form: str) -> None:
    pub = public_key_of(key_of(provider))
    recipient = {"raw64": pub, "sec65": b"\x04" + pub,
                 "compressed33": bytes([2 + (pub[63] & 1)]) + pub[:32]}[form]
    blob = seal(b"secret job", recipient, aad=AAD)
    assert b"secret job" not in blob
    assert open_sealed(blob, key_of(provider), aad=AAD) == b"secret job"


def test_each_seal_uses_a_fresh_ephemeral_key(provider: NodeIdentity) -> None:
    pub = public_key_of(key_of(provider))
    a, b = seal(b"same", pub, aad=AAD), seal(b"same", pub, aad=AAD)
    assert a[1:66] != b[1:66] and a[66:] != b[66:]


def test_empty_plaintext_round_trips(provider: NodeIdentity) -> None:
    blob = seal(b"", public_key_of(key_of(provider)), aad=b"")
    assert open_sealed(blob, key_of(provider), aad=b"") == b""


@pytest.mark.parametrize("offset", [0, 1, 2, 40, 65, 66, 70, 77, 78, 85, -1],
                         ids=["version", "eph-prefix", "eph-x", "eph-x2", "eph-y", "nonce0", "nonce",
                              "nonce-last", "ct0", "ct", "tag"])
def test_tampering_anywhere_is_detected(provider: NodeIdentity, offset: int) -> None:
    blob = bytearray(seal(b"plaintext that is long enough", public_key_of(key_of(provider)), aad=AAD))
    blob[offset] ^= 0x01
    with pytest.raises(PayloadError):
        open_sealed(bytes(blob), key_of(provider), aad=AAD)


def test_truncated_blob_is_refused(provider: NodeIdentity) -> None:
    blob = seal(b"abc", public_key_of(key_of(provider)), aad=AAD)
    for n in (0, 1, 78, len(blob) - 1):
        with pytest.raises(PayloadError):
            open_sealed(blob[:n], key_of(provider), aad=AAD)


def test_wrong_key_is_refused(provider: NodeIdentity) -> None:
    blob = seal(b"abc", public_key_of(key_of(provider)), aad=AAD)
    with pytest.raises(PayloadError, match="another key"):
        open_sealed(blob, key_of(NodeIdentity.generate()), aad=AAD)


def test_wrong_aad_is_refused(provider: NodeIdentity) -> None:
    """A payload sealed for one job cannot be replayed into another."""
    blob = seal(b"abc", public_key_of(key_of(provider)), aad=b"job-0001")
    with pytest.raises(PayloadError, match="another job"):
        open_sealed(blob, key_of(provider), aad=b"job-0002")


# --- packing ----------------------------------------------------------------------------------------------


def test_pack_unpack_round_trip(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "proj")
    dest = tmp_path / "out"
    unpack(pack_workdir(src), dest)
    assert tree_of(dest) == tree_of(src)
    assert os.access(dest / "run.sh", os.X_OK)
    assert not os.access(dest / "main.py", os.X_OK)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700


def test_pack_is_deterministic(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "proj")
    first = pack_workdir(src)
    os.utime(src / "main.py", (1, 1))  # times and owners are not recorded
    assert pack_workdir(src) == first
    (src / "main.py").write_text("print('changed')\n")
    assert pack_workdir(src) != first


def test_empty_workdir_and_empty_payload(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    unpack(pack_workdir(tmp_path / "empty"), tmp_path / "a")
    unpack(b"", tmp_path / "b")
    assert tree_of(tmp_path / "a") == tree_of(tmp_path / "b") == {}


def test_pack_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(PayloadError, match="not a directory"):
        pack_workdir(tmp_path / "f")


def test_vcs_caches_and_venvs_are_skipped(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "proj")
    for d in (".git", "__pycache__", ".venv", "src/pkg/__pycache__"):
        (src / d).mkdir()
        (src / d / "junk").write_text("junk")
    dest = tmp_path / "out"
    unpack(pack_workdir(src), dest)
    assert not any(part in {".git", "__pycache__", ".venv"} for p in tree_of(dest) for part in p.split("/"))
    assert "src/pkg/mod.py" in tree_of(dest)


def test_blendrignore_is_honoured(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "proj")
    (src / "logs").mkdir()
    (src / "logs" / "a.txt").write_text("a")
    (src / "x.log").write_text("log")
    (src / "src" / "y.log").write_text("log")
    (src / "build").mkdir()
    (src / "build" / "out.o").write_text("o")
    (src / "src" / "build").write_text("a file named build, kept: /build is anchored to the root")
    (src / "cache").write_text("a file named cache, kept: cache/ matches only directories")
    (src / ".blendrignore").write_text("# comments and blanks are ignored\n\n*.log\n/build\nlogs/\ncache/\n"
                                       "src/pkg/mod.py\n")
    dest = tmp_path / "out"
    unpack(pack_workdir(src), dest)
    got = tree_of(dest)
    for gone in ("x.log", "src/y.log", "build", "logs", "src/pkg/mod.py"):
        assert gone not in got
    for kept in ("src/build", "cache", "main.py", "src/pkg", ".blendrignore"):
        assert kept in got


def test_blendrignore_negation_is_refused(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "proj")
    (src / ".blendrignore").write_text("*.py\n!main.py\n")
    with pytest.raises(PayloadError, match=r"\.blendrignore:2: negated"):
        pack_workdir(src)


def test_uncompressed_limit_names_size_and_limit(tmp_path: Path) -> None:
    src = tmp_path / "proj"
    src.mkdir()
    (src / "big.bin").write_bytes(bytes(3 * 2**20 + 2**19))  # zeros: compresses to almost nothing
    with pytest.raises(PayloadTooLargeError) as err:
        pack_workdir(src, max_bytes=2 * 2**20)
    assert str(err.value) == (f"workdir {src} is 3.5 MB, over the 2 MB limit; add a .blendrignore or trim it")


def test_compressed_limit(tmp_path: Path) -> None:
    """Incompressible data just under the limit grows past it once tar headers and gzip framing are added."""
    src = tmp_path / "proj"
    src.mkdir()
    (src / "random.bin").write_bytes(os.urandom(2**20))
    with pytest.raises(PayloadTooLargeError, match=r"compresses to 1 MB \(\d+ bytes\), over the 1 MB \(1048676"):
        pack_workdir(src, max_bytes=2**20 + 100)
    assert len(pack_workdir(src, max_bytes=2**20 + 4096)) <= 2**20 + 4096


def test_entry_limit(tmp_path: Path) -> None:
    src = tmp_path / "proj"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}").write_text("x")
    with pytest.raises(PayloadTooLargeError, match="more than 4 entries"):
        pack_workdir(src, max_entries=4)


def test_too_large_is_resource_exhausted_and_a_payload_error() -> None:
    exc = PayloadTooLargeError("x")
    assert isinstance(exc, ResourceExhaustedError) and isinstance(exc, PayloadError)
    assert status_for(exc) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_for(PayloadError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(PayloadError("x"), InvalidArgumentError)


def test_symlink_outside_is_refused(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "proj")
    (tmp_path / "secret").write_text("do not ship")
    (src / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(PayloadError, match=r"leak is a symlink to .*secret, outside the workdir"):
        pack_workdir(src)
    (src / ".blendrignore").write_text("leak\n")
    assert "leak" not in tree_of_packed(src, tmp_path / "out")


def test_symlink_inside_is_stored_as_a_copy(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "proj")
    (src / "alias.py").symlink_to("main.py")
    dest = tmp_path / "out"
    got = tree_of_packed(src, dest)
    assert got["alias.py"] == got["main.py"]
    assert not (dest / "alias.py").is_symlink()


@pytest.mark.parametrize("kind", ["dir-link", "broken", "fifo"])
def test_other_special_entries_are_refused(tmp_path: Path, kind: str) -> None:
    src = make_tree(tmp_path / "proj")
    if kind == "dir-link":
        (src / "s").symlink_to("src", target_is_directory=True)
    elif kind == "broken":
        (src / "s").symlink_to("nowhere")
    else:
        os.mkfifo(src / "s")
    with pytest.raises(PayloadError, match=r"workdir .*: s is"):
        pack_workdir(src)


# --- unpacking hostile archives ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/evil", "..", "./", ""])
def test_unpack_refuses_unsafe_paths(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "out"
    with pytest.raises(PayloadError, match="unsafe path"):
        unpack(evil_tar(member("ok.txt"), member(name)), dest)
    assert not dest.exists()
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("type_,linkname", [(tarfile.SYMTYPE, "/etc/passwd"), (tarfile.LNKTYPE, "ok.txt"),
                                            (tarfile.CHRTYPE, ""), (tarfile.FIFOTYPE, "")],
                         ids=["symlink", "hardlink", "device", "fifo"])
def test_unpack_refuses_links_and_devices(tmp_path: Path, type_: bytes, linkname: str) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(PayloadError, match="only regular files and directories"):
        unpack(evil_tar(member("ok.txt"), member("bad", type_=type_, linkname=linkname)), dest)
    assert dest.is_dir() and not any(dest.iterdir())  # left as found: empty


def test_unpack_stops_a_compression_bomb(tmp_path: Path) -> None:
    bomb = evil_tar(member("zeros", bytes(4 * 2**20)))
    assert len(bomb) < 10_000
    with pytest.raises(PayloadTooLargeError, match="unpacks to more than 1 MB"):
        unpack(bomb, tmp_path / "out", max_bytes=2**20)
    assert not (tmp_path / "out").exists()


def test_unpack_counts_total_size_across_files(tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLargeError):
        unpack(evil_tar(*(member(f"f{i}", bytes(300_000)) for i in range(4))), tmp_path / "out", max_bytes=2**20)


def test_unpack_entry_limit(tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLargeError, match="more than 3 entries"):
        unpack(evil_tar(*(member(f"f{i}") for i in range(4))), tmp_path / "out", max_entries=3)


def test_unpack_refuses_duplicates_and_conflicts(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="duplicated"):
        unpack(evil_tar(member("a"), member("a")), tmp_path / "o1")
    with pytest.raises(PayloadError):
        unpack(evil_tar(member("a"), member("a/b")), tmp_path / "o2")


def test_unpack_strips_setuid(tmp_path: Path) -> None:
    unpack(evil_tar(member("suid", mode=0o4755), member("plain", mode=0o666)), tmp_path / "out")
    assert stat.S_IMODE((tmp_path / "out" / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "plain").stat().st_mode) == 0o644


def test_unpack_refuses_garbage_and_non_empty_dest(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="corrupt"):
        unpack(b"not a tarball", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(PayloadError, match="not an empty directory"):
        unpack(b"", full)


# --- the document -----------------------------------------------------------------------------------------


def test_job_payload_round_trip_through_a_seal(tmp_path: Path, provider: NodeIdentity) -> None:
    doc = JobPayload(entrypoint="python main.py --x 'é'", env={"FOO": "bar", "EMPTY": ""},
                     workdir_tar=pack_workdir(make_tree(tmp_path / "proj")))
    blob = seal(doc.encode(), public_key_of(key_of(provider)), aad=AAD)
    back = JobPayload.decode(open_sealed(blob, key_of(provider), aad=AAD))
    assert back == doc
    unpack(back.workdir_tar, tmp_path / "out")
    assert tree_of(tmp_path / "out") == tree_of(tmp_path / "proj")


def test_job_payload_without_workdir() -> None:
    doc = JobPayload(entrypoint="nvidia-smi")
    assert JobPayload.decode(doc.encode()) == doc
    assert doc.workdir_tar == b"" and doc.env == {}


@pytest.mark.parametrize("kwargs", [{"entrypoint": ""}, {"entrypoint": "  "}, {"entrypoint": "a\x00b"},
                                    {"entrypoint": "x", "env": {"1BAD": "v"}},
                                    {"entrypoint": "x", "env": {"A=B": "v"}},
                                    {"entrypoint": "x", "env": {"OK": "nul\x00"}}])
def test_job_payload_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(PayloadError):
        JobPayload(**kwargs)  # type: ignore[arg-type]


def test_job_payload_decode_refuses_malformed_documents() -> None:
    good = JobPayload(entrypoint="echo", env={"A": "1"}).encode()
    cases = {
        "truncated": good[:5],
        "magic": b"XXXX" + good[4:],
        "version": good[:4] + b"\x09" + good[5:],
        "short header": good[:12],
        "json": good[:9] + b"{" * (len(good) - 9),
        "keys": JobPayload(entrypoint="echo").encode().replace(b'"env"', b'"eNv"'),
    }
    for what, data in cases.items():
        with pytest.raises(PayloadError):
            JobPayload.decode(data)
            pytest.fail(what)
    huge = good[:5] + (2**30).to_bytes(4, "big") + good[9:]
    with pytest.raises(PayloadTooLargeError):
        JobPayload.decode(huge)
