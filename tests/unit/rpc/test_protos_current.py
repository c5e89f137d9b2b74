"""The committed generated gRPC code must match a fresh `make protos`."""

from __future__ import annotations

from blendr.rpc import protogen
from protos.blendr.v1 import queen_pb2 as pb


def test_generated_code_is_current() -> None:
    stale = protogen.stale_files()
    assert stale == [], f"generated code is stale, run `make protos`: {stale}"


def test_every_enum_starts_unspecified() -> None:
    for enum in pb.DESCRIPTOR.enum_types_by_name.values():
        zero = enum.values_by_number[0].name
        assert zero.endswith("_UNSPECIFIED"), f"{enum.name} starts with {zero}"

