"""Regenerate the committed gRPC code from ``protos/`` (``make protos``) and check it is current.

``python -m blendr.rpc.protogen`` writes ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` beside each
``.proto``, and the dApp's TypeScript (``*_pb.ts``, protoc-gen-es from node_modules) under ``web/src/gen/`` for
the protos the browser speaks (:data:`WEB_PROTOS`); ``--check`` exits 1 when the committed files differ from a
fresh generation.
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
# The services the web page calls through the king's web listener (Connect protocol), generated for TypeScript.
WEB_PROTOS = ("renter.proto", "network.proto")
WEB_GEN = ROOT / "web" / "src" / "gen"
ES_PLUGIN = ROOT / "node_modules" / ".bin" / "protoc-gen-es"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def _protoc(args: list[str]) -> None:
    from grpc_tools import protoc

    if protoc.main(["protoc", f"-I{ROOT}", *args]) != 0:
        raise SystemExit("protoc failed")


def generate(out_root: Path) -> list[Path]:
    """Generate the Python code for every proto into ``out_root`` (mirroring the repo layout); returns the files."""
    protos = [str(p.relative_to(ROOT)) for p in proto_files()]
    _protoc([f"--python_out={out_root}", f"--pyi_out={out_root}", f"--grpc_python_out={out_root}", *protos])
    return sorted(p for p in (out_root / "protos").rglob("*") if p.name.endswith(SUFFIXES))


def generate_ts(out_dir: Path) -> list[Path]:
    """Generate the dApp's TypeScript (protobuf-es messages and service descriptors) into ``out_dir``."""
    if not ES_PLUGIN.exists():
        raise SystemExit(f"{ES_PLUGIN.relative_to(ROOT)} is missing: run `npm ci` (make install does)")
    protos = [str((PROTO_DIR / name).relative_to(ROOT)) for name in WEB_PROTOS if (PROTO_DIR / name).exists()]
    _protoc([f"--plugin=protoc-gen-es={ES_PLUGIN}", f"--es_out={out_dir}", "--es_opt=target=ts", *protos])
    return sorted(p for p in out_dir.rglob("*_pb.ts"))


def _fresh(tmp: Path) -> list[tuple[Path, Path]]:
    """(fresh file, committed path) for every generated file."""
    py, ts = tmp / "py", tmp / "ts"
    py.mkdir()
    ts.mkdir()
    pairs = [(f, ROOT / f.relative_to(py)) for f in generate(py)]
    pairs += [(f, WEB_GEN / f.relative_to(ts)) for f in generate_ts(ts)]
    return pairs


def stale_files() -> list[str]:
    """Generated files that differ from (or are missing next to) a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        return [str(committed.relative_to(ROOT)) for fresh, committed in _fresh(Path(tmp))
                if not committed.is_file() or committed.read_bytes() != fresh.read_bytes()]


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
        for fresh, target in _fresh(Path(tmp)):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh, target)
            print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
