"""Regenerate the committed gRPC code from ``protos/`` (``make protos``) and check it is current.

``python -m blendr.rpc.protogen`` writes ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` beside each
``.proto``; ``--check`` exits 1 when the committed files differ from a fresh generation.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "protos" / "blendr" / "v1"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Generate code for every proto into ``out_root`` (mirroring the repo layout); returns the files."""
    from grpc_tools import protoc

    protos = [str(p.relative_to(ROOT)) for p in proto_files()]
    args = ["protoc", f"-I{ROOT}", f"--python_out={out_root}", f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p for p in (out_root / "protos").rglob("*") if p.name.endswith(SUFFIXES))


def stale_files() -> list[str]:
    """Generated files that differ from (or are missing next to) a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        stale = []
        for fresh in generate(out):
            committed = ROOT / fresh.relative_to(out)
            if not committed.is_file() or committed.read_bytes() != fresh.read_bytes():
                stale.append(str(committed.relative_to(ROOT)))
        return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale generated files")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: {name} (run `make protos`)")
        return 1 if stale else 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for fresh in generate(out):
            target = ROOT / fresh.relative_to(out)
            shutil.copyfile(fresh, target)
            print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
